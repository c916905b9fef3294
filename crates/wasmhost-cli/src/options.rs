//! Flags shared by several subcommands, flattened into each, and the
//! resolution of a MODULE argument (file, `-`, manifest or store reference).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use wasmhost::{Convention, Error, KvStore, Limits, Module, Runtime, RuntimeConfig};
use wasmhost_store::oci::Registry;
use wasmhost_store::{ModuleStore, Resolution, Resolver, Trust};

use crate::progress::with_spinner;

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
    pub fn state_root(&self) -> wasmhost::Result<PathBuf> {
        self.state
            .clone()
            .or_else(wasmhost::default_state_dir)
            .ok_or_else(|| {
                Error::bad_input("no state directory: pass --state DIR or set WASMHOST_STATE")
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
    pub fn open_store(&self) -> wasmhost::Result<ModuleStore> {
        match &self.store {
            Some(url) => ModuleStore::open(url),
            None => ModuleStore::default_for_state(&self.state_root()?),
        }
    }

    /// Opens the durable key-value store, `STATE/kv.redb`.
    pub fn open_kv(&self) -> wasmhost::Result<KvStore> {
        KvStore::open(&self.state_root()?.join("kv.redb"))
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

/// The resolver of MODULE arguments: the operator's, with the module store
/// and the key-value store (`STATE/kv.redb`) of the state directory, each
/// opened only when a MODULE needs it. `kv` is a key-value store the
/// command already holds (it is opened by one handle per process).
pub fn resolver(state: &StateOptions, kv: Option<KvStore>) -> Resolver {
    let store_state = state.clone();
    let resolver = Resolver::new(Trust::Operator)
        .store_with(move || store_state.open_store())
        .registry(registry_from_env());
    match kv {
        Some(kv) => resolver.kv(kv),
        None => {
            let state = state.clone();
            resolver.kv_with(move || state.open_kv())
        }
    }
}

/// Registry settings from the environment (see [`Registry::from_env`]),
/// with a progress bar on a terminal.
pub fn registry_from_env() -> Registry {
    let registry = Registry::from_env();
    match crate::progress::transfer_bar() {
        Some(bar) => registry.progress(bar),
        None => registry,
    }
}

/// How `pull` and `push` reach an OCI registry.
#[derive(Debug, Clone, Args)]
pub struct RegistryOptions {
    /// Reach the registry over plain HTTP instead of HTTPS (registries on
    /// loopback always are; also WASMHOST_REGISTRY_INSECURE=host[:port],…).
    #[arg(long)]
    pub insecure: bool,

    /// The registry user (the password comes from --password-stdin).
    /// Default: WASMHOST_REGISTRY_USER/WASMHOST_REGISTRY_PASSWORD, else the
    /// docker config file ($DOCKER_CONFIG/config.json or ~/.docker/config.json).
    #[arg(long, short = 'u', value_name = "USER", requires = "password_stdin")]
    pub user: Option<String>,

    /// Read the registry password (or token) from stdin, with --user.
    #[arg(long, requires = "user")]
    pub password_stdin: bool,
}

impl RegistryOptions {
    /// The registry settings: the environment's, then these flags.
    pub fn registry(&self) -> anyhow::Result<Registry> {
        let mut registry = registry_from_env().insecure_all(self.insecure);
        if let Some(user) = &self.user {
            let mut password = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut password).map_err(
                |e| Error::bad_input(format!("cannot read the password from stdin: {e}")),
            )?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err(Error::bad_input("--password-stdin: stdin held no password").into());
            }
            registry = registry.credentials(user.clone(), password);
        }
        Ok(registry)
    }
}

/// Resolves MODULE (file, `-`, manifest or store reference; see
/// [`wasmhost_store::resolve`]).
pub fn resolve(arg: &str, state: &StateOptions, kv: Option<KvStore>) -> anyhow::Result<Resolution> {
    Ok(block_on(resolver(state, kv).resolve(arg))??)
}

/// A module loaded for one command, and the runtime it was loaded on.
#[derive(Debug)]
pub struct Loaded {
    /// The runtime (for `persist_stats`).
    pub rt: Runtime,
    /// The module, with its limits, capabilities and name.
    pub module: Module,
    /// The calling convention its manifest forces.
    pub convention: Option<Convention>,
    /// Its manifest's entry function.
    pub function: Option<String>,
}

/// The one load sequence of the commands that run a module: the
/// resolution's limits with the command line's limit flags over them, a
/// runtime for them (metering fuel when a limit sets it, or when `meter`),
/// and the module compiled with its limits, grants and name. A command adds
/// its own grants to `res.capabilities` before.
pub fn load(
    mut res: Resolution,
    limits: &LimitOptions,
    state: &StateOptions,
    meter: bool,
) -> anyhow::Result<Loaded> {
    res.limits = limits.apply(res.limits.clone());
    let rt = Runtime::new(limits.runtime_config(state, meter || res.limits.fuel.is_some())?)?;
    let module = with_spinner("compiling", || res.load(&rt))?;
    Ok(Loaded {
        rt,
        module,
        convention: res.convention,
        function: res.function,
    })
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
