//! `wasmhost serve`: the HTTP API, the dashboard, HTTP and raw-TCP workers
//! and wasi:http components in one process (see `wasmhost-server` and
//! docs/serve.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use wasmhost::{ActorConfig, ActorSystem, Error, KvStore, PoolConfig, Runtime, SnapshotPolicy};
use wasmhost_server::{ConfigFile, Mode, Server, ServerConfig, WorkerSpec};

use crate::options::{LimitOptions, StateOptions, parse_size};

#[derive(Debug, Args)]
#[command(after_help = "\
With no arguments, serves the HTTP API and the dashboard on \
http://127.0.0.1:8080 over the local store in the state directory. The \
dashboard uploads modules and packet manifests (.json), calls them, and \
runs them in the browser beside the same call on the server: core modules \
in the browser's WebAssembly engine, components transpiled by jco (bundled \
into the binary when scripts/build-jco.sh ran before it was built). A \
component's imports that nothing provides are stubbed in the browser; \
--trap-unknown-imports links them to traps on the server too, so both sides \
agree: `wasmhost serve --trap-unknown-imports`, then open \
http://127.0.0.1:8080/, upload a component and press \"Run here and on the server\".

MODULE, when given, is served at / for every path the server does not \
claim: a wasi:http component handles each request itself (one fresh \
instance per request, like `wasmtime serve`); a WASI command gets the \
request body on stdin and answers with its stdout (mode sync). The \
dashboard then moves to /dashboard.

WORKERS. --route PATH=MODULE[,mode=M][,function=F][,export=E][,actor=ID][,snapshots=P] \
maps an HTTP path (and everything under it) to a module; the request body \
is the message, the response body the reply. Modes: sync (fresh instance, \
_start, stdin -> stdout), async (one kept instance, EXPORT per message), \
function (call F through the module's convention: Extism plugin, component, \
AssemblyScript, raw), actor (F on the actor named by the rest of the path, \
/counter/alice -> actor counter/alice, state kept), http (wasi:http component). \
--tcp PORT=MODULE listens on a TCP port: each connection is one message, \
read until the client closes its sending side, answered, then closed; \
--mode and --export apply as for `wasmhost run`. MODULE is a file, a \
store reference (name:tag) or a manifest (a wasmhost .toml, an Extism or \
packet .json): the worker then runs under the manifest's limits with its \
grants (WASI arguments, environment and directories, config, allowed hosts, \
key-value state, log) and convention, and without mode= or function= it \
takes the manifest's function; options given in the route win. A config \
file (--config serve.toml) describes many workers, its [[route]] and \
[[tcp]] modules taking the same, relative paths taken from the file's \
directory; see docs/serve.md.

ACTORS. An actor's whole state (memory, globals, Extism vars, key-value \
data) is kept in STATE/kv.redb. Under the default --actor-snapshots \
every-message, each message commits its snapshot, its key-value writes and \
its reply in one transaction before the reply is sent: a failed message \
leaves no trace, and after a crash (even SIGKILL) actors resume where they \
were. A request with `Idempotency-Key: K` is applied once per actor and key \
(the last 1024 keys): resent, it gets the recorded reply with \
`x-wasmhost-replayed: true`. SIGTERM saves every live actor after the \
requests in flight; idle actors are passivated after --passivate-after.

OUTGOING HTTP. A worker reaches no host unless allowed: allow-host=H in its \
--route (once per host; allowed_outbound_hosts = [...] in the config file) \
or a manifest's allowed_hosts (the route's add to them). H is a host name, \
a glob (*.example.com, * for any) or an IP address; ports and schemes are \
not matched. Hosts are compared in canonical form: 127.1, 0x7f.0.0.1 and \
[::ffff:127.0.0.1] are all 127.0.0.1. Loopback (127.0.0.1, [::1], \
localhost, or a name whose DNS answer is loopback) is reached only when a \
pattern names it exactly, never through a glob: allow-host=* cannot reach \
this server's own API. A wasi:http component's request to \
any other host fails with the wasi:http error code HTTP-request-denied; \
redirects are not followed (each request the guest makes is checked). \
Responses are cut at --outbound-max-response (HTTP-response-body-size; for \
an Extism plugin's http_request too) and requests at --outbound-timeout, \
never later than the guest's own deadline.

CLUSTER. --cluster nats://HOST:PORT joins the nodes that use the same NATS \
server (with JetStream) and --cluster-name: each lists the others at \
/api/v1/cluster. A function call, a sync process message or a request to \
a sync or function route runs where it arrives while a slot is free, else \
on a node that can run it (?placement=local|any forces either). An actor \
has one owner, the node holding its lease; its whole state lives in \
JetStream, and when its owner dies another node takes it over once the \
lease (--cluster-lease-ttl, 3s) expires. Share the module store: \
--store nats://HOST:PORT/BUCKET keeps it in JetStream too. See \
docs/cluster.md.

SECURITY. Writes (upload, delete, tag) need `Authorization: Bearer TOKEN` \
when a token is set (--token or WASMHOST_TOKEN). Without a token the server \
only listens on a loopback address.

LIMITS. At most --max-concurrent requests run at once and --max-queue wait; \
beyond that the server answers 503 with Retry-After. Bodies over --max-body \
get 413, requests over --request-timeout get 504, clients that take longer \
than --header-timeout to send headers (or idle that long between requests) \
are disconnected. Compiling is bounded too: modules over --max-module-size \
are refused, at most --max-compiles compile at once with --compile-queue \
waiting (then 503), and a load slower than --compile-timeout gets 504. SIGTERM or Ctrl-C stops accepting and lets requests in \
flight finish (up to --shutdown-grace).

EXAMPLES:
  wasmhost serve
  wasmhost serve hello-http.wasm --addr 127.0.0.1:8081
  wasmhost serve --route /echo=echo.wasm --route /count=plugin.wasm,mode=function,function=count_vowels
  wasmhost serve --route /app=app.toml --route /plugin=plugin.json,function=count_vowels
  wasmhost serve --route /counter=counter-actor.wasm,mode=actor,function=execute
  curl -d 'increment 5' -H 'Idempotency-Key: order-1' http://127.0.0.1:8080/counter/alice
  wasmhost serve --route '/fetch=fetch.wasm,allow-host=api.example.com,allow-host=*.example.org' --outbound-timeout 10s
  wasmhost serve --tcp 9000=counter.wasm --mode async --export poll
  printf 'hello' | nc -N 127.0.0.1 9000
  WASMHOST_TOKEN=secret wasmhost serve --addr 0.0.0.0:8080")]
pub struct ServeCommand {
    /// A module served at / (a wasi:http component, or a WASI command): a
    /// file, a manifest or a store reference.
    #[arg(value_name = "MODULE")]
    module: Option<String>,

    /// HTTP listen address.
    #[arg(long, value_name = "ADDR", env = "WASMHOST_ADDR")]
    addr: Option<SocketAddr>,

    /// Bearer token required for writes (upload, delete, tag).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "WASMHOST_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,

    /// An HTTP worker: PATH=MODULE[,mode=M][,function=F][,export=E][,actor=ID][,allow-host=H]...;
    /// MODULE may be a manifest (.toml, .json). allow-host= (repeatable)
    /// lets its outgoing HTTP reach hosts matching H (`api.example.com`,
    /// `*.example.com`, `*`, an IP address).
    #[arg(long, value_name = "SPEC")]
    route: Vec<String>,

    /// A raw-TCP worker: PORT=MODULE (one message per connection).
    #[arg(long, value_name = "PORT=MODULE")]
    tcp: Vec<String>,

    /// Mode of MODULE and of --tcp workers that do not say: sync, async,
    /// function, actor or http. [default: detected]
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    mode: Option<Mode>,

    /// The export called per message in async mode. [default: poll]
    #[arg(long, value_name = "NAME")]
    export: Option<String>,

    /// The function called per message in function and actor modes.
    #[arg(long, value_name = "NAME")]
    function: Option<String>,

    /// A TOML file of settings and workers (flags given here win); its
    /// relative paths are relative to its directory.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Requests running wasm at once. [default: 4 per core]
    #[arg(long, value_name = "N")]
    max_concurrent: Option<usize>,

    /// Requests waiting for a slot before the server answers 503. [default: 256]
    #[arg(long, value_name = "N")]
    max_queue: Option<usize>,

    /// HTTP connections open at once; more wait in the listen backlog.
    /// [default: 4096]
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,

    /// Largest request body (and TCP message). [default: 16MiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_body: Option<u64>,

    /// Deadline of a whole request, queueing included. [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    request_timeout: Option<Duration>,

    /// Time a client has to send its headers (and the longest an idle
    /// keep-alive connection stays open). [default: 10s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    header_timeout: Option<Duration>,

    /// How long shutdown waits for requests in flight. [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    shutdown_grace: Option<Duration>,

    /// Largest response body a wasi:http worker's outgoing request may
    /// receive (a manifest's smaller max_http_response_bytes wins).
    /// [default: 16MiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    outbound_max_response: Option<u64>,

    /// Longest one outgoing request of a wasi:http worker may take, connect
    /// to last byte; never past the guest's own deadline. [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    outbound_timeout: Option<Duration>,

    /// Largest module accepted (uploaded, routed or pulled), binary or WAT
    /// text; larger ones get bad_input. [default: 64MiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_module_size: Option<u64>,

    /// Modules compiling at once (each uses every core it can get).
    /// [default: one per two cores]
    #[arg(long, value_name = "N")]
    max_compiles: Option<usize>,

    /// Loads waiting for a compile slot; one more gets 503 overloaded at
    /// once. [default: 16]
    #[arg(long, value_name = "N")]
    compile_queue: Option<usize>,

    /// Longest a load may wait for a slot and compile; past it, 504 timeout
    /// (the compile finishes in its slot and is thrown away). [default: 60s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    compile_timeout: Option<Duration>,

    /// Let browser pages from ORIGIN call the server (`*` for any origin);
    /// repeatable. Without it no response carries CORS headers.
    #[arg(long, value_name = "ORIGIN")]
    cors: Vec<String>,

    /// Serve the files of DIR under URLPATH, e.g. /app=./web. Only what is
    /// inside DIR: `..` is refused, and a symlink leading out is a 404.
    #[arg(long = "static", value_name = "URLPATH=DIR")]
    statics: Vec<String>,

    /// Link imports nothing grants (an Extism plugin's own host functions, a
    /// component's custom interfaces) to functions that trap when called,
    /// instead of refusing the module.
    #[arg(long)]
    trap_unknown_imports: bool,

    /// Passivate actors idle for this long (their state is kept as their
    /// snapshot policy says). [default: 5m]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    passivate_after: Option<Duration>,

    /// When actors' state is saved, unless a route says otherwise
    /// (`snapshots=`): every-message (each message commits its snapshot,
    /// key-value writes and reply in one transaction), on-passivation
    /// (when idle and at shutdown), never. [default: every-message]
    #[arg(long, value_name = "POLICY", value_parser = parse_policy)]
    actor_snapshots: Option<SnapshotPolicy>,

    #[command(flatten)]
    limits: LimitOptions,

    #[command(flatten)]
    state: StateOptions,

    // Last: its help heading applies to what follows it.
    #[command(flatten)]
    cluster: ClusterOptions,
}

/// Joining a cluster of nodes over NATS JetStream.
#[derive(Debug, Args)]
#[command(next_help_heading = "Cluster")]
struct ClusterOptions {
    /// Join the cluster whose NATS server (with JetStream) is at URL:
    /// nats://HOST:PORT, several separated by commas. Without it the node
    /// serves alone.
    #[arg(long, value_name = "URL", env = "WASMHOST_CLUSTER")]
    cluster: Option<String>,

    /// The cluster's name: nodes with the same name over the same NATS
    /// server form one cluster. [default: wasmhost]
    #[arg(
        long,
        value_name = "NAME",
        env = "WASMHOST_CLUSTER_NAME",
        requires = "cluster"
    )]
    cluster_name: Option<String>,

    /// A NATS credentials file (.creds: a user JWT and its NKey seed), as
    /// `nats --creds` takes it.
    #[arg(
        long,
        value_name = "FILE",
        env = "WASMHOST_CLUSTER_CREDS",
        requires = "cluster"
    )]
    cluster_creds: Option<PathBuf>,

    /// NATS user name (with --cluster-password); or put user:password@ in
    /// the URL.
    #[arg(
        long,
        value_name = "USER",
        env = "WASMHOST_CLUSTER_USER",
        requires = "cluster_password"
    )]
    cluster_user: Option<String>,

    /// NATS password.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "WASMHOST_CLUSTER_PASSWORD",
        hide_env_values = true,
        requires = "cluster_user"
    )]
    cluster_password: Option<String>,

    /// NATS token.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "WASMHOST_CLUSTER_TOKEN",
        hide_env_values = true,
        requires = "cluster",
        conflicts_with_all = ["cluster_user", "cluster_creds"]
    )]
    cluster_token: Option<String>,

    /// How often this node refreshes its record in the member list; a node
    /// that misses three drops out of it. [default: 1s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "cluster")]
    cluster_heartbeat: Option<Duration>,

    /// How long an actor's lease lives unless its owner renews it (every
    /// third of it): after its owner dies, an actor waits this long at
    /// most before another node takes it over. [default: 3s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "cluster")]
    cluster_lease_ttl: Option<Duration>,

    /// The URL the other nodes and clients reach this node at, as the
    /// member list shows it. [default: http:// and the listen address]
    #[arg(
        long,
        value_name = "URL",
        env = "WASMHOST_ADVERTISE",
        requires = "cluster"
    )]
    advertise: Option<String>,
}

impl ClusterOptions {
    fn config(&self) -> anyhow::Result<Option<wasmhost_cluster::ClusterConfig>> {
        let Some(url) = &self.cluster else {
            return Ok(None);
        };
        let mut c = wasmhost_cluster::ClusterConfig::new(url.clone());
        if let Some(name) = &self.cluster_name {
            c.name = name.clone();
        }
        c.credentials = match (
            &self.cluster_creds,
            &self.cluster_user,
            &self.cluster_password,
            &self.cluster_token,
        ) {
            (Some(file), None, _, None) => wasmhost_cluster::Credentials::File(file.clone()),
            (None, Some(user), Some(password), None) => {
                wasmhost_cluster::Credentials::UserPassword(user.clone(), password.clone())
            }
            (None, None, _, Some(token)) => wasmhost_cluster::Credentials::Token(token.clone()),
            (None, None, _, None) => wasmhost_cluster::Credentials::None,
            _ => {
                return Err(Error::bad_input(
                    "give one of --cluster-creds, --cluster-user/--cluster-password, --cluster-token",
                )
                .into());
            }
        };
        if let Some(every) = self.cluster_heartbeat {
            c.heartbeat = every;
        }
        if let Some(ttl) = self.cluster_lease_ttl {
            c.lease_ttl = ttl;
        }
        c.check()?;
        Ok(Some(c))
    }
}

fn parse_policy(s: &str) -> Result<SnapshotPolicy, String> {
    s.parse::<SnapshotPolicy>().map_err(|e| e.to_string())
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse::<Mode>().map_err(|e| e.to_string())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration (try 500ms, 30s, 2m): {e}"))
}

impl ServeCommand {
    fn server_config(&self) -> anyhow::Result<ServerConfig> {
        let file = match &self.config {
            Some(path) => ConfigFile::read(path)?,
            None => ConfigFile::default(),
        };
        let mut c = ServerConfig::default();
        c.addr = self.addr.or(file.addr).unwrap_or(c.addr);
        c.token = self.token.clone().filter(|t| !t.is_empty()).map(Into::into);
        c.limits = self.limits.apply(c.limits.clone());
        c.max_concurrent = self
            .max_concurrent
            .or(file.max_concurrent)
            .unwrap_or(c.max_concurrent);
        c.max_queue = self.max_queue.or(file.max_queue).unwrap_or(c.max_queue);
        c.max_connections = self
            .max_connections
            .or(file.max_connections)
            .unwrap_or(c.max_connections);
        if let Some(size) = self.max_body {
            c.max_body_bytes = usize::try_from(size)?;
        } else if let Some(size) = &file.max_body {
            c.max_body_bytes = usize::try_from(parse_size(size).map_err(Error::bad_input)?)?;
        }
        if let Some(t) = self.request_timeout {
            c.request_timeout = t;
        } else if let Some(t) = &file.request_timeout {
            c.request_timeout = parse_duration(t).map_err(Error::bad_input)?;
        }
        if let Some(size) = self.outbound_max_response {
            c.outbound.max_response_bytes = size;
        } else if let Some(size) = &file.outbound_max_response {
            c.outbound.max_response_bytes = parse_size(size).map_err(Error::bad_input)?;
        }
        if let Some(t) = self.outbound_timeout {
            c.outbound.timeout = t;
        } else if let Some(t) = &file.outbound_timeout {
            c.outbound.timeout = parse_duration(t).map_err(Error::bad_input)?;
        }
        if let Some(size) = self.max_module_size {
            c.compile.max_module_bytes = size;
        } else if let Some(size) = &file.max_module_size {
            c.compile.max_module_bytes = parse_size(size).map_err(Error::bad_input)?;
        }
        if let Some(n) = self.max_compiles.or(file.max_compiles) {
            c.compile.max_concurrent = n.max(1);
        }
        if let Some(n) = self.compile_queue.or(file.compile_queue) {
            c.compile.max_queued = n;
        }
        if let Some(t) = self.compile_timeout {
            c.compile.timeout = Some(t);
        } else if let Some(t) = &file.compile_timeout {
            c.compile.timeout = Some(parse_duration(t).map_err(Error::bad_input)?);
        }
        c.header_timeout = self.header_timeout.unwrap_or(c.header_timeout);
        if let Some(t) = self.passivate_after {
            c.passivate_after = t;
        } else if let Some(t) = &file.passivate_after {
            c.passivate_after = parse_duration(t).map_err(Error::bad_input)?;
        }
        c.actor_snapshots = self
            .actor_snapshots
            .or(file.actor_snapshots)
            .unwrap_or(c.actor_snapshots);
        c.shutdown_grace = self.shutdown_grace.unwrap_or(c.shutdown_grace);
        // A call cannot outlive its request.
        if c.limits.timeout.is_none_or(|t| t > c.request_timeout) {
            c.limits = c.limits.clone().timeout(Some(c.request_timeout));
        }
        c.trap_unknown_imports = self.trap_unknown_imports;
        // Checked here, before anything starts; connected in `execute`.
        self.cluster.config()?;
        c.advertise = self.cluster.advertise.clone();
        c.allow_url_hosts = self.state.allow_url_host.clone();
        c.cors = file.cors.clone();
        c.cors.extend(self.cors.iter().cloned());
        for spec in &self.statics {
            let (path, dir) = spec.split_once('=').ok_or_else(|| {
                Error::bad_input(format!("--static `{spec}`: expected URLPATH=DIR"))
            })?;
            wasmhost_server::config::check_path(path)?;
            if path == "/" {
                return Err(Error::bad_input("--static: / belongs to the dashboard").into());
            }
            if !std::path::Path::new(dir).is_dir() {
                return Err(
                    Error::bad_input(format!("--static `{spec}`: no directory `{dir}`")).into(),
                );
            }
            c.statics.push((path.to_string(), PathBuf::from(dir)));
        }
        c.routes = file.route.clone();
        for spec in &self.route {
            c.routes.push(WorkerSpec::parse_route(spec)?);
        }
        if let Some(module) = &self.module {
            c.routes.push(WorkerSpec {
                path: "/".to_string(),
                port: 0,
                module: module.clone(),
                mode: self.mode,
                function: self.function.clone(),
                export: self.export.clone(),
                actor: None,
                snapshots: None,
                allowed_outbound_hosts: Vec::new(),
                links: Vec::new(),
            });
        }
        c.tcp = file.tcp.clone();
        for spec in &self.tcp {
            let mut w = WorkerSpec::parse_tcp(spec)?;
            w.mode = w.mode.or(self.mode);
            w.export = w.export.or_else(|| self.export.clone());
            w.function = w.function.or_else(|| self.function.clone());
            c.tcp.push(w);
        }
        let mut paths = std::collections::BTreeSet::new();
        for r in &c.routes {
            if !paths.insert(r.path.as_str()) {
                return Err(Error::bad_input(format!("two workers at route {}", r.path)).into());
            }
        }
        let mut ports = std::collections::BTreeSet::new();
        for t in &c.tcp {
            if !ports.insert(t.port) || t.port == c.addr.port() {
                return Err(Error::bad_input(format!("tcp port {} is used twice", t.port)).into());
            }
        }
        Ok(c)
    }

    pub fn execute(self) -> anyhow::Result<u8> {
        let config = self.server_config()?;
        let mut base = self
            .limits
            .runtime_config(&self.state, config.limits.fuel.is_some())?
            .pool(Some(PoolConfig::default()));
        if let Some(dir) = self.state.cache_dir() {
            base = base.state_dir(dir);
        }
        let rt_config = wasmhost_server::runtime_config(&config, base);
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("wasmhost-serve")
            .build()?;
        tokio.block_on(async move {
            let root = self.state.state_root()?;
            std::fs::create_dir_all(&root)
                .map_err(|e| Error::internal(format!("cannot create the state directory: {e}")))?;
            let store = self.state.open_store()?;
            // Held by another process: `unavailable`, saying so.
            let kv = KvStore::open(&root.join("kv.redb"))?;
            let mut actor_config = ActorConfig::default()
                .kv(kv.clone())
                .limits(config.limits.clone())
                .passivate_after(config.passivate_after)
                .snapshots(config.actor_snapshots);
            let mut config = config;
            if let Some(cluster_config) = self.cluster.config()? {
                // In a cluster, actors' state lives in JetStream, where the
                // node that takes an actor over finds it.
                let cluster = wasmhost_cluster::Cluster::connect(cluster_config).await?;
                let records = cluster.actor_store(kv).await?;
                actor_config = actor_config.records(std::sync::Arc::new(records));
                config.cluster = Some(cluster);
            }
            let actors = ActorSystem::new(actor_config);
            let rt = Runtime::new(rt_config)?;
            let location = store.location().to_string();
            let token = config.token.is_some();
            let tcp: Vec<String> = config.tcp.iter().map(|t| t.module.clone()).collect();
            let routes: Vec<(String, String)> = config
                .routes
                .iter()
                .map(|r| (r.path.clone(), r.module.clone()))
                .collect();
            let server = Server::bind(config, rt, store, actors).await?;
            let addr = server.http_addr();
            let dashboard = if routes.iter().any(|(path, _)| path == "/") {
                "/dashboard"
            } else {
                "/"
            };
            eprintln!("wasmhost serve: listening on http://{addr}");
            eprintln!("  dashboard  http://{addr}{dashboard}");
            eprintln!("  API        http://{addr}/api/v1 (OpenAPI: /openapi.json)");
            eprintln!("  metrics    http://{addr}/metrics, health /healthz, /readyz");
            eprintln!("  store      {location}");
            if let Some(cluster) = server.cluster() {
                eprintln!(
                    "  cluster    {} over {} as node {} (members: /api/v1/cluster)",
                    cluster.config().name,
                    cluster.config().shown_url(),
                    cluster.node_id()
                );
            }
            for (path, module) in &routes {
                eprintln!("  http://{addr}{path} -> {module}");
            }
            for (a, spec) in server.tcp_addrs().iter().zip(&tcp) {
                eprintln!("  tcp://{a} -> {spec}");
            }
            if !token {
                eprintln!(
                    "  no token: anyone who can reach {addr} may upload and delete modules; \
                     set --token or WASMHOST_TOKEN to require `Authorization: Bearer TOKEN`"
                );
            }
            server.run(shutdown_signal()).await?;
            eprintln!("wasmhost serve: stopped");
            Ok::<_, anyhow::Error>(0)
        })
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    eprintln!("wasmhost serve: shutting down, finishing requests in flight");
}
