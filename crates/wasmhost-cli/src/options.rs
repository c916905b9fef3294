//! Flags shared by several subcommands, flattened into each, and the
//! resolution of a MODULE argument (file, `-`, manifest or store reference).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use wasmhost::{Convention, Error, Http, KvStore, Limits, Module, Runtime, RuntimeConfig};
use wasmhost_store::fetch::UrlFetcher;
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
    /// az://container/prefix, gs://bucket/prefix, or
    /// nats://[USER:PASSWORD@]HOST:PORT[/BUCKET] (a NATS JetStream object
    /// store bucket, default wasmhost-modules, created if missing; a
    /// cluster then needs nothing but NATS). Credentials come from the
    /// usual AWS_* / AZURE_STORAGE_* / GOOGLE_* variables.
    /// Default: DIR/store under the state directory.
    #[arg(long, value_name = "URL", env = "WASMHOST_STORE", global = true)]
    pub store: Option<String>,

    /// A setting of a cloud module store (--store s3://…, az://…, gs://…),
    /// overriding the environment; repeatable, or comma-separated in
    /// $WASMHOST_STORE_OPTIONS. object_store keys (aws_endpoint,
    /// aws_region, …), and how long an unreachable store is waited for:
    /// timeout (one request, default 30s), connect_timeout (default 5s),
    /// max_retries (default 3), retry_timeout (no retry started after it,
    /// default 10s). A nats:// store takes connect_timeout (default 5s),
    /// timeout (one operation, default 30s), creds (a .creds file) and
    /// token. A store that cannot be reached is error[unavailable].
    #[arg(
        long = "store-option",
        value_name = "KEY=VALUE",
        env = "WASMHOST_STORE_OPTIONS",
        value_delimiter = ',',
        global = true
    )]
    pub store_options: Vec<String>,

    /// Let a manifest's modules named by URL (an Extism manifest's
    /// `{"url": …, "hash": …}`) be fetched from HOST (patterns like
    /// *.example.com; every redirect is checked too); repeatable. Without
    /// it no URL is fetched (error[capability_denied]).
    #[arg(long, value_name = "HOST", global = true)]
    pub allow_url_host: Vec<String>,
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

    /// Opens the module store, with the --store-option settings.
    pub fn open_store(&self) -> wasmhost::Result<ModuleStore> {
        let mut options = Vec::with_capacity(self.store_options.len());
        for option in self.store_options.iter().map(|o| o.trim()) {
            if option.is_empty() {
                continue;
            }
            let (key, value) = option.split_once('=').ok_or_else(|| {
                Error::bad_input(format!(
                    "store option `{option}` is not KEY=VALUE (e.g. timeout=10s)"
                ))
            })?;
            options.push((key.trim().to_string(), value.trim().to_string()));
        }
        match (&self.store, options.first()) {
            (Some(url), _) if url.trim_start().starts_with("nats://") => {
                open_nats_store(url, options)
            }
            (Some(url), _) => ModuleStore::open_with_options(url, options),
            (None, Some((key, _))) => Err(Error::bad_input(format!(
                "store option `{key}` needs a cloud or NATS store (--store s3://…, az://…, \
                 gs://… or nats://…); the default store is a directory, which takes no options"
            ))),
            (None, None) => ModuleStore::default_for_state(&self.state_root()?),
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
    /// WASI wall and monotonic clocks (part of WASI already; accepted so
    /// that older command lines keep working).
    Clocks,
    /// WASI random numbers (part of WASI already, like clocks).
    Random,
    /// The `wasmhost::log(level, ptr, len)` host function.
    Log,
}

/// Parts of WASI that can be taken away with --deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Deny {
    /// WASI wall and monotonic clocks: a guest that reads them stops with
    /// capability_denied.
    Clocks,
    /// WASI random numbers: a guest that asks for them stops with
    /// capability_denied.
    Random,
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

    /// Take clocks or random numbers out of the WASI grant, for
    /// deterministic runs (comma-separated or repeated). A guest that uses
    /// them then stops with capability_denied.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "CAP")]
    pub deny: Vec<Deny>,

    /// Preopen a host directory read-write, as Extism's CLI takes it:
    /// HOST, or HOST:GUEST (same as --dir HOST::GUEST).
    #[arg(long, value_name = "HOST[:GUEST]")]
    pub allow_path: Vec<String>,

    /// Link imports nothing grants to functions that trap when called,
    /// instead of refusing the module (like wasmtime's -W unknown-imports-trap).
    #[arg(long)]
    pub trap_unknown_imports: bool,
}

impl GrantOptions {
    /// Whether any WASI grant was given on the command line (`--deny`
    /// alone grants nothing).
    pub fn any_wasi(&self) -> bool {
        !self.dir.is_empty()
            || !self.dir_ro.is_empty()
            || !self.allow_path.is_empty()
            || !self.env.is_empty()
            || self.grant.iter().any(|g| *g != Grant::Log)
    }

    /// Whether `--grant log` was given.
    pub fn log(&self) -> bool {
        self.grant.contains(&Grant::Log)
    }

    /// `base` with the command line's WASI grants added and its denials
    /// taken away. `base` is a manifest's WASI grant, or else
    /// [`wasmhost::Wasi::standard`] (stdio, clocks and random).
    pub fn wasi(&self, base: Option<wasmhost::Wasi>) -> anyhow::Result<wasmhost::Wasi> {
        let mut wasi = base.unwrap_or_else(wasmhost::Wasi::standard);
        wasi.clocks |= self.grant.contains(&Grant::Clocks);
        wasi.random |= self.grant.contains(&Grant::Random);
        for denied in &self.deny {
            match denied {
                Deny::Clocks => wasi.clocks = false,
                Deny::Random => wasi.random = false,
            }
        }
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
        // Extism's form: HOST or HOST:GUEST (the first colon splits).
        for spec in &self.allow_path {
            let (host, guest) = match spec.split_once(':') {
                Some((host, guest)) => (host, guest),
                None => (spec.as_str(), spec.as_str()),
            };
            anyhow::ensure!(
                !host.is_empty() && !guest.is_empty(),
                Error::bad_input(format!(
                    "--allow-path `{spec}`: expected HOST or HOST:GUEST"
                ))
            );
            wasi = wasi.dir(PathBuf::from(host), guest.to_string(), false);
        }
        Ok(wasi)
    }
}

/// Where a call's input comes from, as `call`, `test` and `actor send`
/// take it (and as Extism's CLI does: `--input`/`-i`, `--stdin`).
#[derive(Debug, Clone, Default, Args)]
pub struct InputOptions {
    /// The input, given inline; `-` reads stdin.
    #[arg(
        short = 'i',
        long,
        value_name = "DATA",
        allow_hyphen_values = true,
        conflicts_with_all = ["input_file", "stdin"]
    )]
    pub input: Option<String>,

    /// Read the input from a file.
    #[arg(long, value_name = "FILE", conflicts_with = "stdin")]
    pub input_file: Option<PathBuf>,

    /// Read the input from stdin (the same as INPUT `-`).
    #[arg(long)]
    pub stdin: bool,
}

impl InputOptions {
    /// The input bytes: from the positional INPUT (`inline`), `--input`,
    /// `--input-file` or stdin, whichever was given (at most one); empty
    /// when none was. `module` is the MODULE argument, which cannot also
    /// come from stdin.
    pub fn read(&self, inline: Option<String>, module: &str) -> anyhow::Result<Vec<u8>> {
        let given = [
            inline.is_some(),
            self.input.is_some(),
            self.input_file.is_some(),
            self.stdin,
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(Error::bad_input(
                "give the input one way: INPUT, --input, --input-file or --stdin",
            )
            .into());
        }
        if let Some(path) = &self.input_file {
            return std::fs::read(path).map_err(|e| {
                Error::bad_input(format!("--input-file `{}`: {e}", path.display())).into()
            });
        }
        let text = inline.or_else(|| self.input.clone());
        if self.stdin || text.as_deref() == Some("-") {
            if module == "-" {
                return Err(Error::bad_input(
                    "the module and the input cannot both come from stdin",
                )
                .into());
            }
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                .map_err(|e| Error::bad_input(format!("cannot read the input from stdin: {e}")))?;
            return Ok(buf);
        }
        Ok(text.map(String::into_bytes).unwrap_or_default())
    }
}

/// Plugin grants on the command line, named as Extism's CLI names them.
#[derive(Debug, Clone, Default, Args)]
pub struct PluginOptions {
    /// Configuration the plugin may read (Extism `config_get`); repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub config: Vec<String>,

    /// Configuration as one JSON object of strings, merged under --config
    /// (as Extism's CLI takes it).
    #[arg(long, value_name = "JSON")]
    pub set_config: Option<String>,

    /// Let the plugin make HTTP requests to HOST (glob patterns like
    /// *.example.com); repeatable. No host: every request is refused.
    /// Loopback (127.0.0.1, localhost, a name resolving to it) only when
    /// named exactly, never through a glob such as *.
    #[arg(long, value_name = "HOST")]
    pub allow_host: Vec<String>,

    /// Which of the guest's log lines to print on stderr: trace, debug,
    /// info, warn, error or off. [default: trace, every line]
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub log_level: Option<LogLevelArg>,
}

/// A `--log-level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum LogLevelArg {
    /// Every line.
    Trace,
    /// Debug and above.
    Debug,
    /// Info and above.
    Info,
    /// Warnings and errors.
    Warn,
    /// Errors only.
    Error,
    /// None.
    Off,
}

impl LogLevelArg {
    fn rank(level: wasmhost::LogLevel) -> LogLevelArg {
        match level {
            wasmhost::LogLevel::Trace => LogLevelArg::Trace,
            wasmhost::LogLevel::Debug => LogLevelArg::Debug,
            wasmhost::LogLevel::Info => LogLevelArg::Info,
            wasmhost::LogLevel::Warn => LogLevelArg::Warn,
            _ => LogLevelArg::Error,
        }
    }
}

/// `KEY=VALUE` of the flag `--flag`.
pub fn key_value<'a>(flag: &str, spec: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    match spec.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k, v)),
        _ => Err(Error::bad_input(format!("--{flag} `{spec}`: expected KEY=VALUE")).into()),
    }
}

impl PluginOptions {
    /// `base` (a manifest's grants, or none) with the command line's
    /// config and allowed hosts added.
    pub fn apply(&self, base: wasmhost::Capabilities) -> anyhow::Result<wasmhost::Capabilities> {
        let mut caps = base;
        if let Some(json) = &self.set_config {
            let map: std::collections::BTreeMap<String, String> = serde_json::from_str(json)
                .map_err(|e| {
                    Error::bad_input(format!(
                        "--set-config: expected a JSON object of strings, like {{\"key\": \"value\"}}: {e}"
                    ))
                })?;
            for (k, v) in map {
                caps = caps.with_config(k, v);
            }
        }
        for spec in &self.config {
            let (k, v) = key_value("config", spec)?;
            caps = caps.with_config(k, v);
        }
        if !self.allow_host.is_empty() {
            let mut hosts = caps
                .http
                .as_ref()
                .map(|h| h.allowed_hosts.clone())
                .unwrap_or_default();
            hosts.extend(self.allow_host.iter().cloned());
            let max = caps
                .http
                .as_ref()
                .map(|h| h.max_response_bytes)
                .unwrap_or(wasmhost::capabilities::http::DEFAULT_MAX_RESPONSE_BYTES);
            caps = caps.with_http(Http::allow(hosts).max_response_bytes(max));
        }
        Ok(caps)
    }

    /// Prints the guest's log lines at or above `--log-level` on stderr.
    pub fn print_logs(&self, logs: &[wasmhost::LogRecord]) {
        let min = self.log_level.unwrap_or(LogLevelArg::Trace);
        for log in logs {
            if min != LogLevelArg::Off && LogLevelArg::rank(log.level) >= min {
                eprintln!("[{}] {}", log.level.as_str(), log.message);
            }
        }
    }
}

/// Runs `call` on `module`; when linking fails only because the module
/// imports Extism host functions (`extism:host/user`) that the command line
/// cannot provide, logs so (at info level) and runs it again with unknown imports
/// linked to traps (nothing of the guest ran the first time: linking comes
/// before instantiation). Returns the module the call ran on.
pub fn with_user_imports_trapped<T>(
    module: Module,
    call: impl Fn(&Module) -> wasmhost::Result<T>,
) -> (Module, wasmhost::Result<T>) {
    let result = call(&module);
    let missing = match &result {
        Err(Error::Link { missing, .. })
            if !missing.is_empty()
                && missing.iter().all(|m| m.module == USER_HOST_FUNCTIONS)
                && !module.capabilities().trap_unknown_imports =>
        {
            missing
        }
        _ => return (module, result),
    };
    let names: Vec<String> = missing.iter().map(|m| m.name.clone()).collect();
    tracing::info!(
        "the plugin imports host functions the command line does not provide \
         ({USER_HOST_FUNCTIONS}: {}); they trap if called",
        names.join(", ")
    );
    let caps = module
        .capabilities()
        .clone()
        .with_trap_unknown_imports(true);
    let module = module.with_capabilities(caps);
    let result = call(&module);
    (module, result)
}

/// The import module of an Extism plugin's host functions.
const USER_HOST_FUNCTIONS: &str = "extism:host/user";

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

    /// Most linear memory in 64 KiB wasm pages, as Extism's CLI takes it
    /// (--memory-max 16 is --max-memory 1MiB).
    #[arg(long, value_name = "PAGES", conflicts_with = "max_memory")]
    pub memory_max: Option<u32>,

    /// Wall-clock timeout, e.g. 500ms, 30s, 2m; a bare number is
    /// milliseconds (as Extism's CLI takes it); `none` or 0 for no timeout.
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
        if let Some(pages) = self.memory_max {
            l = l.max_memory_bytes(u64::from(pages) * WASM_PAGE);
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

/// Bytes in one wasm page (`--memory-max` counts these).
pub const WASM_PAGE: u64 = 65536;

/// Parses `500ms`, `30s`, `2m`, a bare number of milliseconds (Extism's
/// `--timeout 300`), or `none`/`off`/`0`.
pub fn parse_timeout(s: &str) -> Result<Timeout, String> {
    let t = s.trim();
    if matches!(t, "none" | "off") {
        return Ok(Timeout(None));
    }
    if let Ok(ms) = t.parse::<u64>() {
        return Ok(Timeout((ms > 0).then(|| Duration::from_millis(ms))));
    }
    humantime::parse_duration(t)
        .map(|d| Timeout(Some(d)))
        .map_err(|e| {
            format!("`{s}` is not a duration (try 500ms, 30s, 2m, a number of milliseconds, or none): {e}")
        })
}

/// Opens a `nats://` module store. Its NATS connection lives on a runtime of
/// its own, on a thread kept for the rest of the process, so the store works
/// from whichever runtime uses it later (a command's [`block_on`], the
/// server's), and this may be called from inside one.
fn open_nats_store(url: &str, options: Vec<(String, String)>) -> wasmhost::Result<ModuleStore> {
    let runtime = nats_runtime()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let url = url.to_string();
    runtime.spawn(async move {
        let _ = tx.send(wasmhost_cluster::open_module_store(&url, options).await);
    });
    rx.recv().map_err(|_| {
        Error::internal("the NATS module store's runtime stopped while the store was opened")
    })?
}

/// The runtime of `nats://` stores' connections (started on first use).
fn nats_runtime() -> wasmhost::Result<&'static tokio::runtime::Handle> {
    static RUNTIME: std::sync::OnceLock<Result<tokio::runtime::Handle, String>> =
        std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            std::thread::Builder::new()
                .name("wasmhost-nats".to_string())
                .spawn(move || {
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => {
                            let _ = tx.send(Ok(runtime.handle().clone()));
                            runtime.block_on(std::future::pending::<()>());
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e.to_string()));
                        }
                    }
                })
                .map_err(|e| e.to_string())?;
            rx.recv().map_err(|e| e.to_string())?
        })
        .as_ref()
        .map_err(|e| Error::internal(format!("cannot start the NATS module store's runtime: {e}")))
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
        .registry(registry_from_env())
        .urls(UrlFetcher::allow(state.allow_url_host.iter().cloned()));
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

/// `--link INTERFACE=PROVIDER`: components providing a component's imports.
#[derive(Debug, Clone, Default, Args)]
pub struct LinkOptions {
    /// Provide the component's imported INTERFACE with the interface of
    /// that name that the component PROVIDER exports (as `wac plug` would);
    /// repeatable, one per interface. PROVIDER is a component file, a
    /// manifest (.toml, .json: the provider gets its limits and grants), a
    /// store reference or oci://REGISTRY/REPOSITORY:TAG. The provider runs in
    /// its own sandbox with its own limits and grants (a file or reference:
    /// the default limits and WASI with stdio, clocks and random; none of
    /// this command's flags), made on the first call into it and kept for
    /// the call. Interfaces linked to the same PROVIDER share one instance.
    #[arg(long = "link", value_name = "INTERFACE=PROVIDER")]
    pub link: Vec<String>,
}

impl LinkOptions {
    /// Resolves each `--link` with the command's resolver and adds it to
    /// `res` (after the manifest's `[[link]]`s).
    pub fn apply(&self, res: &mut Resolution, state: &StateOptions) -> anyhow::Result<()> {
        if self.link.is_empty() {
            return Ok(());
        }
        let resolver = resolver(state, None);
        for spec in &self.link {
            let (interface, provider) = block_on(resolver.resolve_link(spec))??;
            res.link(interface, provider);
        }
        Ok(())
    }
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
    // A linked component's manifest may set a fuel limit of its own.
    let provider_fuel = res.links.iter().any(|(_, p)| p.limits.fuel.is_some());
    let meter = meter || res.limits.fuel.is_some() || provider_fuel;
    let rt = Runtime::new(limits.runtime_config(state, meter)?)?;
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
        assert_eq!(parse_timeout("0").map(|t| t.0), Ok(None));
        // A bare number is milliseconds, as Extism's CLI takes it.
        assert_eq!(
            parse_timeout("300").map(|t| t.0),
            Ok(Some(Duration::from_millis(300)))
        );
        assert!(parse_timeout("soon").is_err());
        assert!(parse_timeout("-5").is_err());
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
        let pages = LimitOptions {
            memory_max: Some(16),
            ..LimitOptions::default()
        };
        assert_eq!(pages.apply(Limits::default()).max_memory_bytes, 1 << 20);
    }
}
