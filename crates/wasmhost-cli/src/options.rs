//! Flags shared by several subcommands, flattened into each, and the
//! resolution of a MODULE argument (file, `-`, manifest or store reference).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use wasmhost::{Error, Limits, RuntimeConfig};
use wasmhost_store::manifest::{self, AnyManifest, Resolved};
use wasmhost_store::{ModuleStore, Reference};

/// Where state lives.
#[derive(Debug, Clone, Args)]
pub struct StateOptions {
    /// State directory: compiled modules are cached under DIR/cache and the
    /// default store is DIR/store. Default: $WASMHOST_STATE, else the
    /// platform data directory (~/.local/share/wasmhost on Linux).
    #[arg(long, value_name = "DIR", env = "WASMHOST_STATE", global = true)]
    pub state: Option<PathBuf>,

    /// Do not read or write the on-disk compiled-module cache.
    #[arg(long, global = true)]
    pub no_disk_cache: bool,

    /// Module store: file:///path, memory://, s3://bucket/prefix,
    /// az://container/prefix or gs://bucket/prefix. Credentials come from the
    /// usual AWS_* / AZURE_STORAGE_* / GOOGLE_* variables.
    /// Default: DIR/store under the state directory.
    #[arg(long, value_name = "URL", env = "WASMHOST_STORE", global = true)]
    pub store: Option<String>,
}

impl StateOptions {
    /// The state directory (whether or not the disk cache is on).
    pub fn state_root(&self) -> anyhow::Result<PathBuf> {
        self.state
            .clone()
            .or_else(wasmhost::default_state_dir)
            .ok_or_else(|| {
                Error::bad_input("no state directory: pass --state DIR or set WASMHOST_STATE")
                    .into()
            })
    }

    /// The state directory for the compiled-module cache, unless disabled.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        if self.no_disk_cache {
            return None;
        }
        self.state.clone().or_else(wasmhost::default_state_dir)
    }

    /// Opens the module store.
    pub fn open_store(&self) -> anyhow::Result<ModuleStore> {
        Ok(match &self.store {
            Some(url) => ModuleStore::open(url)?,
            None => ModuleStore::default_for_state(&self.state_root()?)?,
        })
    }
}

/// Capabilities that can be granted with --grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Grant {
    /// WASI wall and monotonic clocks.
    Clocks,
    /// WASI random numbers.
    Random,
    /// The `wasmhost::log(level, ptr, len)` host function.
    Log,
}

/// WASI grants on the command line, as `wasmtime run` takes them.
#[derive(Debug, Clone, Default, Args)]
pub struct GrantOptions {
    /// Preopen a host directory read-write, at GUEST (default: the same path).
    #[arg(long, value_name = "HOST[::GUEST]")]
    pub dir: Vec<String>,

    /// Preopen a host directory read-only, at GUEST (default: the same path).
    #[arg(long, value_name = "HOST[::GUEST]")]
    pub dir_ro: Vec<String>,

    /// Give the guest an environment variable; NAME alone passes the host's value.
    #[arg(long, value_name = "NAME[=VAL]")]
    pub env: Vec<String>,

    /// Grant more capabilities (comma-separated or repeated).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "CAP")]
    pub grant: Vec<Grant>,

    /// Link imports nothing grants to functions that trap when called,
    /// instead of refusing the module (like wasmtime's -W unknown-imports-trap).
    #[arg(long)]
    pub trap_unknown_imports: bool,
}

impl GrantOptions {
    /// Whether any WASI grant was given on the command line.
    pub fn any_wasi(&self) -> bool {
        !self.dir.is_empty()
            || !self.dir_ro.is_empty()
            || !self.env.is_empty()
            || self.grant.iter().any(|g| *g != Grant::Log)
    }

    /// Whether `--grant log` was given.
    pub fn log(&self) -> bool {
        self.grant.contains(&Grant::Log)
    }

    /// `base` with the command line's WASI grants added.
    pub fn wasi(&self, base: wasmhost::Wasi) -> anyhow::Result<wasmhost::Wasi> {
        let mut wasi = base;
        wasi.clocks |= self.grant.contains(&Grant::Clocks);
        wasi.random |= self.grant.contains(&Grant::Random);
        for e in &self.env {
            let (name, value) = match e.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => (
                    e.clone(),
                    std::env::var(e).map_err(|_| {
                        Error::bad_input(format!(
                            "--env {e}: the host has no variable `{e}` to pass on"
                        ))
                    })?,
                ),
            };
            anyhow::ensure!(
                !name.is_empty(),
                Error::bad_input(format!("--env `{e}`: empty name"))
            );
            wasi = wasi.env(name, value);
        }
        for (spec, ro) in self
            .dir
            .iter()
            .map(|d| (d, false))
            .chain(self.dir_ro.iter().map(|d| (d, true)))
        {
            let (host, guest) = match spec.split_once("::") {
                Some((host, guest)) => (PathBuf::from(host), guest.to_string()),
                None => (PathBuf::from(spec), spec.to_string()),
            };
            wasi = wasi.dir(host, guest, ro);
        }
        Ok(wasi)
    }
}

/// Limits of a call. Flags given explicitly override a manifest's limits.
#[derive(Debug, Clone, Default, Args)]
pub struct LimitOptions {
    /// Fuel for the call (roughly one unit per wasm instruction); enables fuel
    /// metering, which slows guests down. [default: unmetered]
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,

    /// Most linear memory the instance may hold, e.g. 64MiB, 1GiB, 65536.
    /// [default: 256MiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<u64>,

    /// Wall-clock timeout, e.g. 500ms, 30s, 2m; `none` for no timeout.
    /// [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<Timeout>,

    /// Most elements any one table may hold. [default: 100000]
    #[arg(long, value_name = "N")]
    pub max_table_elements: Option<u64>,

    /// Most core instances the call may create (a component counts each of
    /// its own). [default: 64]
    #[arg(long, value_name = "N")]
    pub max_instances: Option<u32>,

    /// Maximum wasm stack, e.g. 512KiB, 1MiB. [default: 1MiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_stack: Option<u64>,
}

/// A parsed `--timeout`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeout(pub Option<Duration>);

impl LimitOptions {
    /// `base` with every explicitly given flag applied.
    pub fn apply(&self, base: Limits) -> Limits {
        let mut l = base;
        if let Some(v) = self.max_memory {
            l = l.max_memory_bytes(v);
        }
        if let Some(v) = self.max_table_elements {
            l = l.max_table_elements(v);
        }
        if let Some(v) = self.max_instances {
            l = l.max_instances(v);
        }
        if let Some(v) = self.fuel {
            l = l.fuel(Some(v));
        }
        if let Some(Timeout(t)) = self.timeout {
            l = l.timeout(t);
        }
        l
    }

    /// The runtime configuration for one command's calls.
    pub fn runtime_config(
        &self,
        state: &StateOptions,
        fuel: bool,
    ) -> anyhow::Result<RuntimeConfig> {
        let stack = self
            .max_stack
            .unwrap_or(wasmhost::DEFAULT_MAX_WASM_STACK as u64);
        let mut config = RuntimeConfig::default()
            .fuel_metering(fuel || self.fuel.is_some())
            .max_wasm_stack(usize::try_from(stack)?)
            .default_limits(self.apply(Limits::default()))
            // A command makes few calls: on-demand allocation starts faster
            // than reserving a pool it cannot use.
            .pool(None);
        if let Some(dir) = state.cache_dir() {
            config = config.state_dir(dir);
        }
        Ok(config)
    }
}

/// Parses `64MiB`, `1GiB`, `512KiB`, `1.5MB` or a plain byte count.
pub fn parse_size(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("`{s}` is not a size (try 64MiB, 1GiB or a byte count): {e}"))
}

fn parse_timeout(s: &str) -> Result<Timeout, String> {
    if matches!(s.trim(), "none" | "off" | "0") {
        return Ok(Timeout(None));
    }
    humantime::parse_duration(s.trim())
        .map(|d| Timeout(Some(d)))
        .map_err(|e| format!("`{s}` is not a duration (try 500ms, 30s, 2m or none): {e}"))
}

/// Runs a future to completion on a small runtime (store calls are async).
pub fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(f))
}

/// What a MODULE argument named.
#[derive(Debug)]
pub struct ModuleArg {
    /// The wasm bytes (or WAT text; the runtime accepts both).
    pub bytes: Vec<u8>,
    /// The manifest's settings, when the argument was a wasmhost manifest.
    pub manifest: Option<Resolved>,
    /// A short name for messages and argv[0].
    pub display: String,
}

/// Resolves MODULE: `-` (stdin), an existing file (a module, or a manifest
/// by its .toml/.json extension), or else a store reference (`name[:tag]`,
/// `sha256:…`).
pub fn module_arg(arg: &str, state: &StateOptions) -> anyhow::Result<ModuleArg> {
    let path = Path::new(arg);
    let display = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| arg.to_string());
    if arg == "-" {
        let bytes = wasmhost::Source::Stdin.read()?;
        return Ok(ModuleArg {
            bytes,
            manifest: None,
            display,
        });
    }
    if path.exists() {
        if manifest::is_manifest_path(path) {
            let base = path.parent().unwrap_or(Path::new("."));
            return match manifest::load(path)? {
                AnyManifest::Native(m) => {
                    resolved_arg(m.resolve(base, &Limits::default())?, state, display)
                }
                AnyManifest::Extism(m) => {
                    resolved_arg(m.resolve(&Limits::default()), state, display)
                }
                AnyManifest::Packet(p) => {
                    let bytes = p.single()?.wasm.clone();
                    Ok(ModuleArg {
                        bytes,
                        manifest: None,
                        display,
                    })
                }
                _ => Err(Error::bad_input(format!("`{arg}`: unsupported manifest")).into()),
            };
        }
        let bytes = wasmhost::Source::File(path.to_path_buf()).read()?;
        return Ok(ModuleArg {
            bytes,
            manifest: None,
            display,
        });
    }
    match arg.parse::<Reference>() {
        Ok(reference) => {
            let store = state.open_store()?;
            let (_, bytes) = block_on(store.fetch(&reference))??;
            let display = match &reference {
                Reference::Name { name, .. } => name.rsplit('/').next().unwrap_or(name).to_string(),
                Reference::Digest(d) => d.short(),
            };
            Ok(ModuleArg {
                bytes: bytes.to_vec(),
                manifest: None,
                display,
            })
        }
        Err(_) => Err(Error::not_found(format!(
            "module `{arg}`: no such file, and it is not a store reference (name[:tag] or sha256:…)"
        ))
        .into()),
    }
}

/// The module of a resolved manifest, fetched and checked against its digest.
fn resolved_arg(
    resolved: Resolved,
    state: &StateOptions,
    display: String,
) -> anyhow::Result<ModuleArg> {
    let store = match resolved.source {
        wasmhost_store::manifest::ModuleSource::Store(_) => state.open_store()?,
        _ => ModuleStore::memory(),
    };
    let bytes = block_on(manifest::module_bytes(&resolved, &store))??;
    Ok(ModuleArg {
        bytes,
        manifest: Some(resolved),
        display,
    })
}

/// Everything a resolved manifest grants, as capabilities: its own, its
/// configuration and its allowed hosts.
pub fn manifest_capabilities(m: &Resolved) -> wasmhost::Capabilities {
    let mut caps = m.capabilities.clone();
    for (k, v) in &m.config {
        caps = caps.with_config(k, v);
    }
    if !m.allowed_hosts.is_empty() && caps.http.is_none() {
        caps = caps.with_http(wasmhost::Http::allow(m.allowed_hosts.iter().cloned()));
    }
    caps
}

/// Adds the module's counters to the disk cache's stats (for `cache ls`).
/// Stats are advisory: a failure to write them is logged, not fatal.
pub fn persist_stats(rt: &wasmhost::Runtime, module: &wasmhost::Module) {
    if let Err(e) = rt.persist_stats(&[module]) {
        tracing::warn!("{e}");
    }
}

/// One line: time, fuel and peak memory of a call.
pub fn describe_stats(stats: &wasmhost::CallStats) -> String {
    format!(
        "time: {:?}  fuel: {}  peak memory: {} bytes",
        stats.duration,
        stats
            .fuel_consumed
            .map(|f| f.to_string())
            .unwrap_or_else(|| "unmetered".into()),
        stats.peak_memory_bytes
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_timeouts_parse() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("65536"), Ok(65536));
        assert!(parse_size("lots").is_err());
        assert_eq!(
            parse_timeout("500ms").map(|t| t.0),
            Ok(Some(Duration::from_millis(500)))
        );
        assert_eq!(parse_timeout("none").map(|t| t.0), Ok(None));
        assert!(parse_timeout("soon").is_err());
    }

    #[test]
    fn only_given_flags_override() {
        let opts = LimitOptions {
            max_memory: Some(1024),
            ..LimitOptions::default()
        };
        let base = Limits::default().max_instances(3);
        let l = opts.apply(base);
        assert_eq!((l.max_memory_bytes, l.max_instances), (1024, 3));
    }
}
