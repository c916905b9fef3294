//! What a server serves and under which limits: [`ServerConfig`], built from
//! flags (`--route`, `--tcp`) or a TOML file (`--config serve.toml`), whose
//! relative paths are relative to its directory ([`module_in`]).
//!
//! ```toml
//! addr = "127.0.0.1:8080"
//! max_concurrent = 64
//! max_queue = 256
//! max_body = "16MiB"
//! request_timeout = "30s"
//! outbound_max_response = "16MiB"   # outgoing HTTP of wasi:http workers
//! outbound_timeout = "30s"
//! max_module_size = "64MiB"         # compiling: largest module,
//! max_compiles = 1                  # compiles at once,
//! compile_queue = 16                # loads waiting for a compile,
//! compile_timeout = "60s"           # longest wait + compile
//!
//! [[route]]
//! path = "/echo"
//! module = "echo.wasm"        # a file, a store reference such as echo:1.0, or a manifest
//! mode = "sync"               # sync | async | function | actor | http
//!
//! [[route]]
//! path = "/app"
//! module = "app.toml"         # a manifest: its limits, grants, convention and function
//!
//! [[route]]
//! path = "/count"
//! module = "plugin.wasm"
//! mode = "function"
//! function = "count_vowels"
//!
//! [[route]]
//! path = "/counter"          # /counter/alice is actor counter/alice
//! module = "counter.wasm"
//! mode = "actor"
//! function = "execute"
//! snapshots = "every-message"  # every-message | on-passivation | never
//!
//! [[route]]
//! path = "/fetch"
//! module = "fetch.wasm"       # a wasi:http component making outgoing requests
//! allowed_outbound_hosts = ["api.example.com", "*.example.org"]
//!
//! [[tcp]]
//! port = 9000
//! module = "counter.wasm"
//! mode = "async"
//! export = "poll"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use wasmhost::{CompileConfig, Error, Http, Limits, Result, SnapshotPolicy};
use wasmhost_store::Reference;

use crate::outbound::OutboundLimits;

/// How a worker turns a message (request body, TCP stream) into a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Sync process: a fresh instance per message, `_start` with the message
    /// on stdin; stdout is the reply.
    Sync,
    /// Async process: one kept instance, `export` (default `poll`) called per
    /// message with the message on stdin; stdout is the reply.
    Async,
    /// A function call through the module's calling convention (Extism
    /// plugin, component, AssemblyScript, raw): a fresh sandbox per message.
    Function,
    /// A named actor: state kept between messages, durable key-value store.
    Actor,
    /// A wasi:http component handling the request itself (as `wasmtime serve`).
    Http,
}

impl Mode {
    /// The flag spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sync => "sync",
            Mode::Async => "async",
            Mode::Function => "function",
            Mode::Actor => "actor",
            Mode::Http => "http",
        }
    }
}

impl FromStr for Mode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "sync" => Mode::Sync,
            "async" => Mode::Async,
            "function" => Mode::Function,
            "actor" => Mode::Actor,
            "http" => Mode::Http,
            other => {
                return Err(Error::bad_input(format!(
                    "unknown mode `{other}`: expected sync, async, function, actor or http"
                )));
            }
        })
    }
}

/// A worker: a module, how it is driven, and (for HTTP) where.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSpec {
    /// HTTP path prefix (`/echo` serves `/echo` and `/echo/...`); `/` serves
    /// every path no API endpoint claims. Unused for TCP workers.
    #[serde(default)]
    pub path: String,
    /// TCP port. Unused for HTTP routes.
    #[serde(default)]
    pub port: u16,
    /// A `.wasm`/`.wat` file, a manifest (wasmhost `.toml`, Extism or
    /// packet `.json`: the worker gets its limits, grants and convention),
    /// a store reference (`name:tag`, `sha256:…`), or a module in an OCI
    /// registry (`oci://REGISTRY/REPOSITORY:TAG`, pulled into the store by
    /// digest when the server starts).
    pub module: String,
    /// How messages are handled; detected when absent (wasi:http component →
    /// `http`, WASI command → `sync`, a function known → `function`).
    #[serde(default)]
    pub mode: Option<Mode>,
    /// The function called in `function` and `actor` modes (default: a
    /// manifest's `[call] function`).
    #[serde(default)]
    pub function: Option<String>,
    /// The export called per message in `async` mode (default `poll`).
    #[serde(default)]
    pub export: Option<String>,
    /// For `actor` mode: one fixed actor id. Without it the actor id is the
    /// rest of the path, under the route's (`/counter/alice` → actor
    /// `counter/alice`).
    #[serde(default)]
    pub actor: Option<String>,
    /// For `actor` mode: when the actors' state is saved (default: the
    /// server's `actor_snapshots`).
    #[serde(default, deserialize_with = "policy")]
    pub snapshots: Option<SnapshotPolicy>,
    /// Hosts the worker's outgoing HTTP may reach (`allow-host=` in
    /// `--route`, once per host; `allowed_outbound_hosts` in the file), in
    /// addition to a manifest's `allowed_hosts`: wasi:http
    /// `outgoing-handler` requests of an `http` worker, the Extism
    /// `http_request` of a plugin. Patterns as Extism's `allowed_hosts`
    /// (`api.example.com`, `*.example.com`, `*`, an IP address). Nothing is
    /// allowed by default.
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Interfaces the worker's component imports that other components
    /// provide, each `INTERFACE=PROVIDER` (`link=` in `--route`, once per
    /// interface; `links` in the file, a provider's relative path taken
    /// from the file's directory): the provider is a component file, a
    /// manifest (its own limits and grants), a store or `oci://`
    /// reference, run in its own sandbox. In addition to a manifest's
    /// `[[link]]`s.
    #[serde(default)]
    pub links: Vec<String>,
}

/// A snapshot policy from its name.
fn policy<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<SnapshotPolicy>, D::Error> {
    let name = Option::<String>::deserialize(d)?;
    name.map(|n| n.parse().map_err(serde::de::Error::custom))
        .transpose()
}

impl WorkerSpec {
    /// Parses `--route PATH=MODULE[,mode=M][,function=F][,export=E][,actor=ID][,snapshots=P][,allow-host=H]...[,link=INTERFACE=PROVIDER]...`
    /// (`allow-host=` once per host pattern, `link=` once per interface).
    pub fn parse_route(spec: &str) -> Result<Self> {
        let (path, rest) = spec.split_once('=').ok_or_else(|| {
            Error::bad_input(format!(
                "--route `{spec}`: expected PATH=MODULE[,mode=M][,function=F][,export=E][,allow-host=H]"
            ))
        })?;
        let mut w = Self::parse_options("--route", spec, rest)?;
        w.path = path.to_string();
        w.check_path()?;
        Ok(w)
    }

    /// Parses `--tcp PORT=MODULE[,mode=M][,export=E][,function=F]`.
    pub fn parse_tcp(spec: &str) -> Result<Self> {
        let (port, rest) = spec.split_once('=').ok_or_else(|| {
            Error::bad_input(format!(
                "--tcp `{spec}`: expected PORT=MODULE[,mode=sync|async][,export=E]"
            ))
        })?;
        let mut w = Self::parse_options("--tcp", spec, rest)?;
        w.port = port.parse().map_err(|_| {
            Error::bad_input(format!("--tcp `{spec}`: `{port}` is not a port number"))
        })?;
        Ok(w)
    }

    fn parse_options(flag: &str, spec: &str, rest: &str) -> Result<Self> {
        let mut parts = rest.split(',');
        let module = parts.next().unwrap_or_default().to_string();
        if module.is_empty() {
            return Err(Error::bad_input(format!("{flag} `{spec}`: no MODULE")));
        }
        let mut w = WorkerSpec {
            path: String::new(),
            port: 0,
            module,
            mode: None,
            function: None,
            export: None,
            actor: None,
            snapshots: None,
            allowed_outbound_hosts: Vec::new(),
            links: Vec::new(),
        };
        for opt in parts {
            let (k, v) = opt.split_once('=').ok_or_else(|| {
                Error::bad_input(format!("{flag} `{spec}`: `{opt}` is not KEY=VALUE"))
            })?;
            match k {
                "mode" => w.mode = Some(v.parse()?),
                "function" => w.function = Some(v.to_string()),
                "export" => w.export = Some(v.to_string()),
                "actor" => w.actor = Some(v.to_string()),
                "snapshots" => w.snapshots = Some(v.parse()?),
                "allow-host" => {
                    check_host(v).map_err(|why| {
                        Error::bad_input(format!("{flag} `{spec}`: allow-host={v}: {why}"))
                    })?;
                    w.allowed_outbound_hosts.push(v.to_string());
                }
                "link" => {
                    if !v
                        .split_once('=')
                        .is_some_and(|(i, p)| !i.is_empty() && !p.is_empty())
                    {
                        return Err(Error::bad_input(format!(
                            "{flag} `{spec}`: link={v}: expected link=INTERFACE=PROVIDER"
                        )));
                    }
                    w.links.push(v.to_string());
                }
                other => {
                    return Err(Error::bad_input(format!(
                        "{flag} `{spec}`: unknown option `{other}` (mode, function, export, actor, snapshots, allow-host, link)"
                    )));
                }
            }
        }
        Ok(w)
    }

    /// Checks an HTTP route's path (see [`check_path`]).
    pub fn check_path(&self) -> Result<()> {
        check_path(&self.path)
    }

    /// Checks the allowed outbound hosts ([`Http::check_pattern`]).
    pub fn check_hosts(&self) -> Result<()> {
        for h in &self.allowed_outbound_hosts {
            check_host(h).map_err(|why| {
                Error::bad_input(format!(
                    "worker `{}`: allowed_outbound_hosts entry \"{h}\": {why}",
                    self.module
                ))
            })?;
        }
        Ok(())
    }
}

/// An allow-list pattern, or why it is not one.
fn check_host(h: &str) -> std::result::Result<(), String> {
    Http::check_pattern(h).map_err(|why| {
        format!("not a host name or pattern (like `api.example.com` or `*.example.com`): {why}")
    })
}

/// Checks a route or static path: absolute, no wildcards, no trailing `/`,
/// not one of the server's own ([`RESERVED`]).
pub fn check_path(p: &str) -> Result<()> {
    if !p.starts_with('/') || p.contains(['{', '}', '*', '?', '#']) {
        return Err(Error::bad_input(format!(
            "route path `{p}`: must start with / and contain no {{}}, *, ? or #"
        )));
    }
    if p.len() > 1 && p.ends_with('/') {
        return Err(Error::bad_input(format!(
            "route path `{p}`: no trailing / (a route serves its sub-paths anyway)"
        )));
    }
    for reserved in RESERVED {
        if p == reserved || p.starts_with(&format!("{reserved}/")) {
            return Err(Error::bad_input(format!(
                "route path `{p}`: {reserved} belongs to the server"
            )));
        }
    }
    Ok(())
}

/// Paths the server keeps for itself.
pub const RESERVED: [&str; 7] = [
    "/api",
    "/metrics",
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/assets",
    "/dashboard",
];

/// The server's bearer token. Its `Debug` does not show it, so no log line
/// or error that prints a configuration can leak it.
///
/// ```
/// use wasmhost_server::config::Token;
/// let t = Token::from("s3cret");
/// assert_eq!(t.expose(), "s3cret");
/// assert!(!format!("{t:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// The token itself, to compare a request's with.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl From<String> for Token {
    fn from(s: String) -> Self {
        Token(s)
    }
}

impl From<&str> for Token {
    fn from(s: &str) -> Self {
        Token(s.to_string())
    }
}

/// Everything `wasmhost serve` needs besides the runtime and the store.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The HTTP listen address (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Bearer token required for writes; `None` leaves them open (refused on
    /// a non-loopback address).
    pub token: Option<Token>,
    /// HTTP worker routes.
    pub routes: Vec<WorkerSpec>,
    /// Raw-TCP workers.
    pub tcp: Vec<WorkerSpec>,
    /// Limits of every call the server makes.
    pub limits: Limits,
    /// Requests running wasm at once; more wait in the queue.
    pub max_concurrent: usize,
    /// HTTP connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Requests waiting for a slot; beyond it, 503 with `Retry-After`.
    pub max_queue: usize,
    /// Largest request body (and TCP message), in bytes; beyond it, 413.
    pub max_body_bytes: usize,
    /// Whole-request deadline, queueing included; beyond it, 504.
    pub request_timeout: Duration,
    /// Time a client has to send a request's headers, and the longest an
    /// idle keep-alive connection is kept.
    pub header_timeout: Duration,
    /// How long shutdown waits for in-flight requests before dropping them.
    pub shutdown_grace: Duration,
    /// Origins allowed to call the server from a browser page (`*` for any).
    pub cors: Vec<String>,
    /// Static directories: (URL path, directory).
    pub statics: Vec<(String, PathBuf)>,
    /// Link imports that nothing grants (an Extism plugin's own host
    /// functions, a component's custom interfaces) to functions that trap
    /// when called, instead of refusing the module. Grants nothing.
    pub trap_unknown_imports: bool,
    /// Actors idle for longer than this are passivated (their state kept as
    /// their snapshot policy says).
    pub passivate_after: Duration,
    /// The actors' snapshot policy, unless a route sets its own.
    pub actor_snapshots: SnapshotPolicy,
    /// Limits of the outgoing HTTP requests of wasi:http workers (response
    /// size, time); which hosts they reach is each worker's.
    pub outbound: OutboundLimits,
    /// Hosts (patterns like `*.example.com`) that manifests' modules named
    /// by URL may be fetched from; none by default.
    pub allow_url_hosts: Vec<String>,
    /// Bounds on compiling uploaded and routed modules: size, compiles at
    /// once, queue, deadline (see [`default_compile`]).
    pub compile: CompileConfig,
    /// The cluster this node joins (`--cluster`), connected
    /// ([`wasmhost_cluster::Cluster::connect`]); [`crate::Server::bind`]
    /// makes it a member. `None` serves alone.
    pub cluster: Option<wasmhost_cluster::Cluster>,
    /// The URL other nodes and clients reach this node's HTTP listener at,
    /// as the member list shows it; by default `http://` and the bound
    /// address.
    pub advertise: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            routes: Vec::new(),
            tcp: Vec::new(),
            limits: Limits::default(),
            max_concurrent: default_concurrency(),
            max_queue: 256,
            max_connections: 4096,
            max_body_bytes: 16 << 20,
            request_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
            cors: Vec::new(),
            statics: Vec::new(),
            trap_unknown_imports: false,
            passivate_after: wasmhost::actor::DEFAULT_PASSIVATE_AFTER,
            actor_snapshots: SnapshotPolicy::default(),
            outbound: OutboundLimits::default(),
            allow_url_hosts: Vec::new(),
            compile: default_compile(),
            cluster: None,
            advertise: None,
        }
    }
}

/// The server's compile bounds: one compile per two cores (each uses every
/// core it can get, and calls must keep some), 16 waiting, 60 s each, and
/// modules up to 64 MiB.
pub fn default_compile() -> CompileConfig {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    CompileConfig::default()
        .max_module_bytes(64 << 20)
        .max_concurrent((cores / 2).max(1))
        .max_queued(16)
        .timeout(Some(Duration::from_secs(60)))
}

/// Default concurrency: 4 calls per core (calls block a thread each).
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get()) * 4
}

/// The `serve.toml` file: every field optional; flags given on the command
/// line win.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Listen address.
    pub addr: Option<SocketAddr>,
    /// Requests running at once.
    pub max_concurrent: Option<usize>,
    /// Requests waiting.
    pub max_queue: Option<usize>,
    /// Connections open.
    pub max_connections: Option<usize>,
    /// Body limit, e.g. "16MiB".
    pub max_body: Option<String>,
    /// Request deadline, e.g. "30s".
    pub request_timeout: Option<String>,
    /// Idle time before an actor is passivated, e.g. "5m".
    pub passivate_after: Option<String>,
    /// The actors' snapshot policy: every-message, on-passivation or never.
    #[serde(default, deserialize_with = "policy")]
    pub actor_snapshots: Option<SnapshotPolicy>,
    /// Most bytes of a wasi:http worker's outgoing response, e.g. "16MiB".
    pub outbound_max_response: Option<String>,
    /// Longest a wasi:http worker's outgoing request may take, e.g. "30s".
    pub outbound_timeout: Option<String>,
    /// Largest module accepted, e.g. "64MiB".
    pub max_module_size: Option<String>,
    /// Compiles running at once.
    pub max_compiles: Option<usize>,
    /// Loads waiting for a compile slot.
    pub compile_queue: Option<usize>,
    /// Longest a load may wait and compile, e.g. "60s".
    pub compile_timeout: Option<String>,
    /// Allowed CORS origins.
    #[serde(default)]
    pub cors: Vec<String>,
    /// HTTP routes.
    #[serde(default)]
    pub route: Vec<WorkerSpec>,
    /// TCP workers.
    #[serde(default)]
    pub tcp: Vec<WorkerSpec>,
}

impl ConfigFile {
    /// Reads and checks a config file. A worker's module that is a
    /// relative path is relative to the file's directory, not to the
    /// working directory (see [`module_in`]).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::bad_input(format!("config file `{}`: {e}", path.display())))?;
        let mut file: ConfigFile = toml::from_str(&text)
            .map_err(|e| Error::bad_input(format!("config file `{}`: {e}", path.display())))?;
        let dir = path.parent().unwrap_or(Path::new(""));
        for w in file.route.iter_mut().chain(file.tcp.iter_mut()) {
            let in_file =
                |e: Error| Error::bad_input(format!("config file `{}`: {e}", path.display()));
            w.module = module_in(dir, &w.module).map_err(in_file)?;
            for link in &mut w.links {
                let Some((interface, provider)) = link.split_once('=') else {
                    return Err(in_file(Error::bad_input(format!(
                        "links entry \"{link}\": expected INTERFACE=PROVIDER"
                    ))));
                };
                *link = format!("{interface}={}", module_in(dir, provider).map_err(in_file)?);
            }
        }
        for r in &file.route {
            r.check_path()?;
        }
        for w in file.route.iter().chain(file.tcp.iter()) {
            w.check_hosts()
                .map_err(|e| Error::bad_input(format!("config file `{}`: {e}", path.display())))?;
        }
        if let Some(t) = file.tcp.iter().find(|t| t.port == 0) {
            return Err(Error::bad_input(format!(
                "config file `{}`: tcp worker `{}` has no port",
                path.display(),
                t.module
            )));
        }
        Ok(file)
    }
}

/// A worker's `module` as a config file in `dir` names it, spelled so
/// that the resolver (which tries a file, then a store reference) reads it
/// the same from any working directory:
///
/// - an absolute path, `-` (stdin) and an OCI reference (`oci://…`), as
///   they are;
/// - a relative path of a file in `dir` (a module or a manifest):
///   `dir/module`;
/// - otherwise, a store reference (`name[:tag]`, `sha256:…`): the
///   reference, in its canonical form (`name:tag`), never a file of the
///   working directory;
/// - anything else: `dir/module`, which then fails as a missing file.
pub fn module_in(dir: &Path, module: &str) -> Result<String> {
    if module == "-"
        || Path::new(module).is_absolute()
        || module.starts_with(wasmhost_store::oci::SCHEME)
    {
        return Ok(module.to_string());
    }
    let joined = dir.join(module);
    if !joined.is_file()
        && let Ok(reference) = module.parse::<Reference>()
    {
        return Ok(reference.to_string());
    }
    joined.to_str().map(str::to_string).ok_or_else(|| {
        Error::bad_input(format!(
            "module `{module}`: its path `{}` is not UTF-8",
            joined.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_flags_parse() {
        let r = WorkerSpec::parse_route("/count=plugin.wasm,mode=function,function=count")
            .expect("parses");
        assert_eq!(r.path, "/count");
        assert_eq!(r.module, "plugin.wasm");
        assert_eq!(r.mode, Some(Mode::Function));
        assert_eq!(r.function.as_deref(), Some("count"));
        let a = WorkerSpec::parse_route(
            "/c=c.wasm,mode=actor,function=execute,snapshots=on-passivation",
        )
        .expect("parses");
        assert_eq!(a.snapshots, Some(SnapshotPolicy::OnPassivation));
        let e = WorkerSpec::parse_route("/c=c.wasm,snapshots=sometimes").expect_err("policy");
        assert!(
            e.to_string()
                .contains("every-message, on-passivation or never"),
            "{e}"
        );
        let file: ConfigFile = toml::from_str(
            "passivate_after = \"2s\"\nactor_snapshots = \"never\"\n[[route]]\npath = \"/c\"\nmodule = \"c.wasm\"\nsnapshots = \"every-message\"\n",
        )
        .expect("config");
        assert_eq!(file.actor_snapshots, Some(SnapshotPolicy::Never));
        assert_eq!(file.passivate_after.as_deref(), Some("2s"));
        assert_eq!(file.route[0].snapshots, Some(SnapshotPolicy::EveryMessage));
        let t = WorkerSpec::parse_tcp("9000=echo:1.0,mode=async,export=handle").expect("parses");
        assert_eq!(
            (t.port, t.mode, t.export.as_deref()),
            (9000, Some(Mode::Async), Some("handle"))
        );
    }

    #[test]
    fn bad_route_flags_are_refused_with_reasons() {
        for (spec, says) in [
            ("/x", "expected PATH=MODULE"),
            ("x=a.wasm", "must start with /"),
            ("/api/x=a.wasm", "belongs to the server"),
            ("/x/=a.wasm", "no trailing /"),
            ("/x=a.wasm,mode=fast", "unknown mode"),
            ("/x=a.wasm,colour=red", "unknown option"),
            ("/x=", "no MODULE"),
        ] {
            let e = WorkerSpec::parse_route(spec).expect_err(spec);
            assert!(e.to_string().contains(says), "{spec}: {e}");
        }
        let e = WorkerSpec::parse_tcp("http=a.wasm").expect_err("port");
        assert!(e.to_string().contains("not a port number"), "{e}");
    }

    #[test]
    fn allowed_hosts_are_route_options() {
        let r =
            WorkerSpec::parse_route("/f=fetch.wasm,allow-host=localhost,allow-host=*.example.com")
                .expect("parses");
        assert_eq!(r.allowed_outbound_hosts, ["localhost", "*.example.com"]);
        let r = WorkerSpec::parse_route("/f=fetch.wasm,mode=http").expect("parses");
        assert!(r.allowed_outbound_hosts.is_empty());
        for (spec, says) in [
            ("/f=a.wasm,allow-host=", "it is empty"),
            (
                "/f=a.wasm,allow-host=https://x.com/",
                "`:` cannot be in a host name",
            ),
            ("/f=a.wasm,allow-host=x.com:8080", "ports are not matched"),
        ] {
            let e = WorkerSpec::parse_route(spec).expect_err(spec);
            assert!(e.to_string().contains(says), "{spec}: {e}");
            assert_eq!(e.code(), wasmhost::ErrorCode::BadInput);
        }
    }

    #[test]
    fn config_file_paths_are_relative_to_its_directory() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("some/dir");
        std::fs::create_dir_all(dir.join("echo")).expect("mkdir");
        std::fs::write(dir.join("app.wasm"), "(module)").expect("write");
        std::fs::write(dir.join("app.toml"), "").expect("write");
        let path = dir.join("serve.toml");
        // Elsewhere, and absolute (TOML's literal string: no escapes).
        let abs = root.path().join("abs.wasm").display().to_string();
        std::fs::write(
            &path,
            format!(
                "[[route]]\npath = \"/a\"\nmodule = \"app.wasm\"\n\
             [[route]]\npath = \"/m\"\nmodule = \"app.toml\"\n\
             [[route]]\npath = \"/abs\"\nmodule = '{abs}'\n\
             [[route]]\npath = \"/ref\"\nmodule = \"echo:1.0\"\n\
             [[route]]\npath = \"/latest\"\nmodule = \"echo\"\n\
             [[route]]\npath = \"/gone\"\nmodule = \"./gone.wasm\"\n\
             [[tcp]]\nport = 9000\nmodule = \"app.wasm\"\n"
            ),
        )
        .expect("write");
        let f = ConfigFile::read(&path).expect("reads");
        let modules: Vec<&str> = f.route.iter().map(|r| r.module.as_str()).collect();
        let at = |p: &str| dir.join(p).display().to_string();
        assert_eq!(
            modules,
            [
                at("app.wasm").as_str(),
                at("app.toml").as_str(),
                abs.as_str(),
                "echo:1.0",
                // A reference even with a directory of that name beside the
                // file: a module is a file.
                "echo:latest",
                at("./gone.wasm").as_str(),
            ]
        );
        assert_eq!(f.tcp[0].module, at("app.wasm"));
    }

    #[test]
    fn links_parse_in_routes_and_config_files() {
        let r = WorkerSpec::parse_route(
            "/g=c.wasm,mode=function,function=greet,link=a:b/c=p.wasm,link=a:b/d=p:v1",
        )
        .expect("parses");
        assert_eq!(r.links, ["a:b/c=p.wasm", "a:b/d=p:v1"]);
        let e = WorkerSpec::parse_route("/g=c.wasm,link=a:b/c").expect_err("no provider");
        assert!(e.to_string().contains("link=INTERFACE=PROVIDER"), "{e}");
        // A provider's relative path is the file's directory's.
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::write(root.path().join("p.wasm"), "(component)").expect("write");
        let path = root.path().join("serve.toml");
        std::fs::write(
            &path,
            "[[route]]\npath = \"/g\"\nmodule = \"c.wasm\"\n\
             links = [\"a:b/c=p.wasm\", \"a:b/d=p:v1\"]\n",
        )
        .expect("write");
        let f = ConfigFile::read(&path).expect("reads");
        let p = root.path().join("p.wasm").display().to_string();
        assert_eq!(
            f.route[0].links,
            [format!("a:b/c={p}"), "a:b/d=p:v1".to_string()]
        );
    }

    #[test]
    fn config_file_parses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("serve.toml");
        std::fs::write(
            &path,
            "max_concurrent = 8\n[[route]]\npath = \"/e\"\nmodule = \"e.wasm\"\nmode = \"sync\"\n\
             [[tcp]]\nport = 9000\nmodule = \"e.wasm\"\n",
        )
        .expect("write");
        let f = ConfigFile::read(&path).expect("reads");
        assert_eq!(f.max_concurrent, Some(8));
        assert_eq!(f.route[0].mode, Some(Mode::Sync));
        assert_eq!(f.tcp[0].port, 9000);
        std::fs::write(
            &path,
            "[[route]]\npath = \"/e\"\nmodule = \"e.wasm\"\nspeed = 1\n",
        )
        .expect("write");
        let e = ConfigFile::read(&path).expect_err("unknown field");
        assert!(e.to_string().contains("speed"), "{e}");
    }

    #[test]
    fn config_file_takes_outbound_hosts_and_limits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("serve.toml");
        std::fs::write(
            &path,
            "outbound_max_response = \"1MiB\"\noutbound_timeout = \"5s\"\n\
             [[route]]\npath = \"/f\"\nmodule = \"f.wasm\"\n\
             allowed_outbound_hosts = [\"api.example.com\", \"10.0.0.1\"]\n",
        )
        .expect("write");
        let f = ConfigFile::read(&path).expect("reads");
        assert_eq!(f.outbound_max_response.as_deref(), Some("1MiB"));
        assert_eq!(f.outbound_timeout.as_deref(), Some("5s"));
        assert_eq!(
            f.route[0].allowed_outbound_hosts,
            ["api.example.com", "10.0.0.1"]
        );
        std::fs::write(
            &path,
            "[[route]]\npath = \"/f\"\nmodule = \"f.wasm\"\n\
             allowed_outbound_hosts = [\"http://api.example.com\"]\n",
        )
        .expect("write");
        let e = ConfigFile::read(&path).expect_err("a URL is not a host");
        assert!(e.to_string().contains("http://api.example.com"), "{e}");
    }
}
