//! Workers: a module driven in one [`Mode`], turning a message (an HTTP
//! request body, a TCP connection's bytes) into a reply. Route and TCP
//! workers are built once at startup from a [`WorkerSpec`]: the module is
//! resolved by the store's resolver (a file, a manifest with its limits and
//! grants, or a store reference) and compiled then, so a bad route stops
//! `serve` before it listens rather than failing every request. The API
//! builds the same workers for modules of the store ([`Worker::new`]).
//!
//! This module knows nothing of the server's shared state: what building
//! and running workers needs is a [`WorkerEnv`].

use std::sync::Arc;

use bytes::Bytes;
use wasmhost::{
    ActorSpec, ActorSystem, CallOptions, CallStats, Capabilities, Convention, Data, Error, Http,
    Instance, Module, ModuleKind, Result, Runtime, SnapshotPolicy, Wasi,
};
use wasmhost_store::{Provenance, Resolver};

use crate::config::{Mode, WorkerSpec};
use crate::outbound::OutboundLimits;
use crate::wasi_http::{HttpWorker, is_http_component};

/// What building and running workers needs.
#[derive(Debug, Clone)]
pub struct WorkerEnv {
    /// The runtime modules are compiled on.
    pub rt: Runtime,
    /// The operator's resolver (files, manifests, store references), with
    /// the server's limits as defaults and the actors' key-value store.
    pub resolver: Resolver,
    /// The actors of actor workers.
    pub actors: ActorSystem,
    /// Link imports nothing grants to functions that trap when called.
    pub trap_unknown_imports: bool,
    /// Limits of wasi:http workers' outgoing requests.
    pub outbound: OutboundLimits,
}

/// How to drive a module: a [`WorkerSpec`]'s options, or the API's.
#[derive(Debug, Clone, Default)]
pub struct Drive {
    /// The mode; detected when `None` (wasi:http component → `http`, WASI
    /// command → `sync`, a function known → `function`).
    pub mode: Option<Mode>,
    /// The function of `function` and `actor` modes.
    pub function: Option<String>,
    /// The export of `async` mode (default `poll`).
    pub export: Option<String>,
    /// One fixed actor id.
    pub actor: Option<String>,
    /// The route's path without slashes (path-named actors are `SCOPE/NAME`).
    pub scope: String,
    /// The calling convention of `function` and `actor` modes.
    pub convention: Option<Convention>,
    /// The snapshot policy of `actor` mode (default: the actor system's).
    pub snapshots: Option<SnapshotPolicy>,
    /// Per-call options of `function` mode (argument format).
    pub call: CallOptions,
    /// How messages name the worker.
    pub label: String,
}

/// A worker ready to take messages.
#[derive(Debug)]
pub enum Worker {
    /// Fresh instance per message, `_start` with the message on stdin.
    Sync(Module),
    /// One kept instance, `export` per message; messages take turns.
    Async {
        /// The instance.
        instance: Arc<tokio::sync::Mutex<Instance>>,
        /// The export called per message.
        export: String,
    },
    /// A function call per message, fresh sandbox each.
    Function {
        /// The module.
        module: Module,
        /// The function.
        function: String,
        /// Convention and argument format.
        opts: Box<CallOptions>,
    },
    /// Messages to actors of this module (or to any existing actor).
    Actor {
        /// The actors.
        actors: ActorSystem,
        /// What a new actor is made of; `None` for a worker that makes no
        /// actors ([`Worker::existing_actors`]).
        spec: Option<Box<ActorSpec>>,
        /// The function each message calls.
        function: String,
        /// One fixed actor id, else the rest of the path names the actor.
        fixed: Option<String>,
        /// The route's path without slashes: path-named actors are
        /// `SCOPE/NAME`, so two routes never share an actor by accident.
        scope: String,
    },
    /// A wasi:http component handling the request itself.
    Http(HttpWorker),
}

fn actor_id(fixed: Option<&str>, scope: &str, rest: Option<&str>) -> Option<String> {
    match (fixed, rest) {
        (Some(id), _) => Some(id.to_string()),
        (None, Some(name)) if !name.is_empty() => Some(format!("{scope}/{name}")),
        _ => None,
    }
}

/// A worker's answer to one message.
#[derive(Debug)]
pub struct Reply {
    /// The reply bytes.
    pub body: Bytes,
    /// Their media type.
    pub content_type: &'static str,
    /// What the message cost.
    pub stats: CallStats,
}

impl Reply {
    /// A function result as a reply: bytes as they are, text as text,
    /// JSON and numbers as JSON.
    pub fn from_data(data: &Data, stats: CallStats) -> Self {
        let content_type = match data {
            Data::Text(_) => "text/plain; charset=utf-8",
            Data::Json(_) | Data::Numbers(_) => "application/json",
            _ => "application/octet-stream",
        };
        let body = match data {
            // Already `Bytes`: shared, not copied.
            Data::Bytes(b) => b.clone(),
            other => Bytes::from(other.bytes().into_owned()),
        };
        Reply {
            body,
            content_type,
            stats,
        }
    }

    fn from_stdout(stdout: Vec<u8>, stats: CallStats) -> Self {
        Reply {
            body: Bytes::from(stdout),
            content_type: "application/octet-stream",
            stats,
        }
    }
}

/// Capabilities of a process-mode worker: the module's own grants (none
/// for a plain module: WASI with stdio, clocks and random, stdin the
/// message and stdout the reply; a manifest's grants, that WASI added when
/// it grants none).
/// With `trap_unknown_imports`, imports nothing provides are linked to
/// functions that trap when called (see [`crate::ServerConfig`]).
pub fn process_capabilities(base: &Capabilities, trap_unknown_imports: bool) -> Capabilities {
    let caps = base.clone();
    let caps = match caps.wasi {
        Some(_) => caps,
        None => caps.with_wasi(Wasi::standard()),
    };
    let trap = caps.trap_unknown_imports || trap_unknown_imports;
    caps.with_trap_unknown_imports(trap)
}

/// Capabilities of a function-mode call: the module's own grants (none for
/// a plain module); WASI stdio added for components, whose toolchains
/// import WASI whether they use it or not, and for the process convention.
pub fn function_capabilities(
    module: &Module,
    convention: Option<Convention>,
    trap_unknown_imports: bool,
) -> Capabilities {
    let base = module.capabilities();
    if module.kind() == ModuleKind::Component || convention == Some(Convention::Process) {
        return process_capabilities(base, trap_unknown_imports);
    }
    let trap = base.trap_unknown_imports || trap_unknown_imports;
    base.clone().with_trap_unknown_imports(trap)
}

/// Whether `module` is a WASI command (`_start`, or `wasi:cli/run`).
fn is_command(module: &Module) -> bool {
    module
        .exports()
        .iter()
        .any(|e| e.name == "_start" || e.name.starts_with("wasi:cli/run@"))
}

impl Worker {
    /// Builds the worker `spec` describes: resolves its module (a file, a
    /// manifest, a store reference), compiles it on the blocking pool and
    /// drives it as the spec (then the manifest) says. The route's own
    /// options win over the manifest's `[call]`; its allowed outbound hosts
    /// add to the manifest's `allowed_hosts`, and the server's
    /// [`OutboundLimits::max_response_bytes`] caps their responses.
    pub async fn build(env: &WorkerEnv, spec: &WorkerSpec) -> Result<Worker> {
        spec.check_hosts()?;
        let mut res = env.resolver.resolve(&spec.module).await?;
        // The route's hosts add to the manifest's; the server's size limit
        // caps every worker's responses.
        let manifest = res.capabilities.http.take();
        let mut hosts = manifest
            .as_ref()
            .map(|h| h.allowed_hosts.clone())
            .unwrap_or_default();
        hosts.extend(spec.allowed_outbound_hosts.iter().cloned());
        if !hosts.is_empty() {
            let max = manifest
                .as_ref()
                .map_or(u64::MAX, |h| h.max_response_bytes)
                .min(env.outbound.max_response_bytes);
            res.capabilities.http = Some(Arc::new(Http::allow(hosts).max_response_bytes(max)));
        }
        // Metrics name a stored module canonically, anything else as given.
        res.name = match &res.from {
            Provenance::Store(r) => r.to_string(),
            _ => spec.module.clone(),
        };
        if res.limits.fuel.is_some() && !env.rt.config().fuel_metering {
            return Err(Error::bad_input(format!(
                "worker `{}`: its manifest sets a fuel limit, and the server does not meter \
                 fuel (give the server a --fuel limit)",
                spec.module
            )));
        }
        for link in &spec.links {
            let (interface, provider) = env.resolver.resolve_link(link).await?;
            res.link(interface, provider);
        }
        let bytes = std::mem::take(&mut res.bytes);
        let linked = std::mem::take(&mut res.linked);
        let links = std::mem::take(&mut res.links);
        let has_links = !links.is_empty();
        let rt = env.rt.clone();
        let module = blocking(move || wasmhost_store::compile(&rt, bytes, linked)).await?;
        let module = res.apply(module)?;
        let rt = env.rt.clone();
        let module = blocking(move || wasmhost_store::link_components(&rt, module, links)).await?;
        if has_links
            && (spec.mode == Some(Mode::Http)
                || (spec.mode.is_none() && is_http_component(&module)))
        {
            return Err(Error::bad_input(format!(
                "worker `{}`: a wasi:http worker cannot have linked components yet; \
                 link them to a `function`, `sync`, `async` or `actor` worker",
                spec.module
            )));
        }
        let drive = Drive {
            mode: spec.mode,
            function: spec.function.clone().or(res.function),
            export: spec.export.clone(),
            actor: spec.actor.clone(),
            scope: spec.path.trim_matches('/').to_string(),
            convention: res.convention,
            snapshots: spec.snapshots.or(res.snapshots),
            call: CallOptions::default(),
            label: spec.module.clone(),
        };
        Worker::new(env, module, drive).await
    }

    /// A worker driving `module` as `drive` says, with the module's limits
    /// and grants. (No message outlives its request: the request's deadline
    /// stops the guest, whatever its own timeout.)
    pub async fn new(env: &WorkerEnv, module: Module, drive: Drive) -> Result<Worker> {
        let label = &drive.label;
        let mode = match drive.mode {
            Some(mode) => mode,
            None if is_http_component(&module) => Mode::Http,
            None if is_command(&module) => Mode::Sync,
            None if drive.function.is_some() => Mode::Function,
            None => {
                return Err(Error::bad_input(format!(
                    "worker `{label}`: cannot tell how to drive it (not a wasi:http component, \
                     not a WASI command, no function); say mode=function,function=NAME, \
                     mode=async or mode=actor"
                )));
            }
        };
        let needs_function = || {
            drive.function.clone().ok_or_else(|| {
                Error::bad_input(format!(
                    "worker `{label}`: mode={} needs function=NAME",
                    mode.as_str()
                ))
            })
        };
        let trap = env.trap_unknown_imports;
        Ok(match mode {
            Mode::Sync => {
                let caps = process_capabilities(module.capabilities(), trap);
                let module = module.with_capabilities(caps);
                if !is_command(&module) {
                    return Err(Error::bad_input(format!(
                        "worker `{label}`: mode=sync needs a WASI command (`_start` or wasi:cli/run)"
                    )));
                }
                Worker::Sync(module)
            }
            Mode::Async => {
                let caps = process_capabilities(module.capabilities(), trap);
                let module = module.with_capabilities(caps);
                let export = drive
                    .export
                    .clone()
                    .unwrap_or_else(|| wasmhost::process::POLL.to_string());
                let instance = module.instantiate_async(&CallOptions::default()).await?;
                Worker::Async {
                    instance: Arc::new(tokio::sync::Mutex::new(instance)),
                    export,
                }
            }
            Mode::Function => {
                let caps = function_capabilities(&module, drive.convention, trap);
                let mut opts = drive.call.clone();
                if let Some(c) = drive.convention {
                    opts = opts.convention(c);
                }
                Worker::Function {
                    module: module.with_capabilities(caps),
                    function: needs_function()?,
                    opts: Box::new(opts),
                }
            }
            Mode::Actor => {
                let caps = function_capabilities(&module, drive.convention, trap);
                let module = module.with_capabilities(caps);
                let mut spec = ActorSpec::new(module.clone()).limits(module.limits().clone());
                if let Some(c) = drive.convention {
                    spec = spec.convention(c);
                }
                if let Some(p) = drive.snapshots {
                    spec = spec.snapshots(p);
                }
                Worker::Actor {
                    actors: env.actors.clone(),
                    spec: Some(Box::new(spec)),
                    function: needs_function()?,
                    fixed: drive.actor.clone(),
                    scope: drive.scope.clone(),
                }
            }
            Mode::Http => Worker::Http(HttpWorker::with_outbound(&env.rt, &module, env.outbound)?),
        })
    }

    /// An actor worker of no module, which makes no actors: its messages
    /// reach actors that exist (made by an actor route, or by an earlier
    /// message that named a module), each under its own module, grants,
    /// limits and convention, and are `not_found` for an unknown actor.
    /// The API's messages that name no module. `drive` names the actor
    /// (`actor`, or `scope` and the message's name) and the `function`.
    pub fn existing_actors(env: &WorkerEnv, drive: Drive) -> Result<Worker> {
        let function = drive.function.ok_or_else(|| {
            Error::bad_input(format!(
                "worker `{}`: mode=actor needs function=NAME",
                drive.label
            ))
        })?;
        Ok(Worker::Actor {
            actors: env.actors.clone(),
            spec: None,
            function,
            fixed: drive.actor,
            scope: drive.scope,
        })
    }

    /// The module of a worker that keeps no state between messages (sync
    /// and function modes): another node serving it can take its messages.
    pub fn stateless_digest(&self) -> Option<wasmhost::Digest> {
        match self {
            Worker::Sync(module) | Worker::Function { module, .. } => Some(module.digest()),
            _ => None,
        }
    }

    /// The actor a message to this actor worker goes to: its fixed id, or
    /// `SCOPE/NAME` from `rest`, the rest of the request's path.
    pub fn actor_id(&self, rest: Option<&str>) -> Option<String> {
        match self {
            Worker::Actor { fixed, scope, .. } => actor_id(fixed.as_deref(), scope, rest),
            _ => None,
        }
    }

    /// The mode this worker runs in.
    pub fn mode(&self) -> Mode {
        match self {
            Worker::Sync(_) => Mode::Sync,
            Worker::Async { .. } => Mode::Async,
            Worker::Function { .. } => Mode::Function,
            Worker::Actor { .. } => Mode::Actor,
            Worker::Http(_) => Mode::Http,
        }
    }

    /// Handles one message. `actor` is the actor id the request named (the
    /// rest of its path), for actor workers without a fixed id; `key`, the
    /// message's idempotency key, makes an actor apply it at most once
    /// (other modes ignore it). Not for [`Worker::Http`], which takes whole
    /// requests.
    pub async fn message(
        &self,
        actor: Option<&str>,
        key: Option<&str>,
        body: Bytes,
    ) -> Result<Reply> {
        match self {
            Worker::Sync(module) => module
                .process_sync_async(body, &CallOptions::default())
                .await
                .map(|o| Reply::from_stdout(o.value, o.stats)),
            Worker::Async { instance, export } => instance
                .lock()
                .await
                .message_async(export, body)
                .await
                .map(|o| Reply::from_stdout(o.value, o.stats)),
            Worker::Function {
                module,
                function,
                opts,
            } => module
                .call_async(function, &body, opts)
                .await
                .map(|o| Reply::from_data(&o.value, o.stats)),
            Worker::Actor {
                actors,
                spec,
                function,
                fixed,
                scope,
            } => {
                let id = actor_id(fixed.as_deref(), scope, actor).ok_or_else(|| {
                    Error::bad_input(
                        "this worker sends to actors by path: add the actor's name \
                         (ROUTE/NAME), or give the worker actor=ID",
                    )
                })?;
                match key {
                    Some(key) => {
                        actors
                            .send_once_async(&id, spec.as_deref(), key, function, body)
                            .await
                    }
                    None => {
                        actors
                            .send_async(&id, spec.as_deref(), function, body)
                            .await
                    }
                }
                .map(|o| Reply::from_data(&o.value, o.stats))
            }
            Worker::Http(_) => Err(Error::internal(
                "a wasi:http worker takes whole requests, not messages",
            )),
        }
    }
}

/// Runs blocking work (compiling a module, reading a file) on tokio's
/// blocking pool, so the executor keeps serving other connections. Guest
/// calls never come here: they run on the executor, through the library's
/// async API.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("the task failed: {e}")))?
}
