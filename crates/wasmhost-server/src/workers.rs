//! Workers: a module driven in one [`Mode`], turning a message (an HTTP
//! request body, a TCP connection's bytes) into a reply. Built once at
//! startup from a [`WorkerSpec`]; the module is resolved (file or store
//! reference) and compiled then, so a bad route stops `serve` before it
//! listens rather than failing every request.

use std::sync::Arc;

use bytes::Bytes;
use wasmhost::{
    ActorSpec, CallOptions, CallStats, Capabilities, Data, Error, Instance, Module, ModuleKind,
    Result, Wasi,
};

use crate::config::{Mode, WorkerSpec};
use crate::state::AppState;
use crate::wasi_http::{HttpWorker, is_http_component};

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
    },
    /// Messages to actors of this module.
    Actor {
        /// What a new actor is made of.
        spec: Box<ActorSpec>,
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

/// Capabilities of a process-mode worker: WASI stdio only (stdin is the
/// message, stdout the reply); no files, environment, clocks or randomness.
/// With `trap_unknown_imports`, imports nothing provides are linked to
/// functions that trap when called (see [`crate::ServerConfig`]).
pub fn process_capabilities(trap_unknown_imports: bool) -> Capabilities {
    Capabilities::none()
        .with_wasi(Wasi::new())
        .with_trap_unknown_imports(trap_unknown_imports)
}

/// Capabilities of a function-mode call: none for core modules; WASI stdio
/// for components, whose toolchains import WASI whether they use it or not.
pub fn function_capabilities(module: &Module, trap_unknown_imports: bool) -> Capabilities {
    match module.kind() {
        ModuleKind::Component => process_capabilities(trap_unknown_imports),
        _ => Capabilities::none().with_trap_unknown_imports(trap_unknown_imports),
    }
}

/// Whether `module` is a WASI command (`_start`, or `wasi:cli/run`).
fn is_command(module: &Module) -> bool {
    module
        .exports()
        .iter()
        .any(|e| e.name == "_start" || e.name.starts_with("wasi:cli/run@"))
}

impl Worker {
    /// Builds the worker `spec` describes, on `state`'s runtime and store.
    pub async fn build(state: &AppState, spec: &WorkerSpec) -> Result<Worker> {
        let module = state.load_worker_module(&spec.module).await?;
        let mode = match spec.mode {
            Some(mode) => mode,
            None if is_http_component(&module) => Mode::Http,
            None if is_command(&module) => Mode::Sync,
            None => {
                return Err(Error::bad_input(format!(
                    "worker `{}`: cannot tell how to drive it (not a wasi:http component, not a \
                     WASI command); say mode=function,function=NAME, mode=async or mode=actor",
                    spec.module
                )));
            }
        };
        let needs_function = || {
            spec.function.clone().ok_or_else(|| {
                Error::bad_input(format!(
                    "worker `{}`: mode={} needs function=NAME",
                    spec.module,
                    mode.as_str()
                ))
            })
        };
        Ok(match mode {
            Mode::Sync => {
                let module = module
                    .with_capabilities(process_capabilities(state.config.trap_unknown_imports));
                if !is_command(&module) {
                    return Err(Error::bad_input(format!(
                        "worker `{}`: mode=sync needs a WASI command (`_start` or wasi:cli/run)",
                        spec.module
                    )));
                }
                Worker::Sync(module)
            }
            Mode::Async => {
                let module = module
                    .with_capabilities(process_capabilities(state.config.trap_unknown_imports));
                let export = spec
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
                let caps = function_capabilities(&module, state.config.trap_unknown_imports);
                Worker::Function {
                    module: module.with_capabilities(caps),
                    function: needs_function()?,
                }
            }
            Mode::Actor => {
                let caps = function_capabilities(&module, state.config.trap_unknown_imports);
                Worker::Actor {
                    spec: Box::new(ActorSpec::new(module.with_capabilities(caps))),
                    function: needs_function()?,
                    fixed: spec.actor.clone(),
                    scope: spec.path.trim_matches('/').to_string(),
                }
            }
            Mode::Http => Worker::Http(HttpWorker::new(&state.rt, &module)?),
        })
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
    /// rest of its path), for actor workers without a fixed id.
    /// Not for [`Worker::Http`], which takes whole requests.
    pub async fn message(
        &self,
        state: &AppState,
        actor: Option<&str>,
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
            Worker::Function { module, function } => module
                .call_async(function, &body, &CallOptions::default())
                .await
                .map(|o| Reply::from_data(&o.value, o.stats)),
            Worker::Actor {
                spec,
                function,
                fixed,
                scope,
            } => {
                let id = match (fixed, actor) {
                    (Some(id), _) => id.clone(),
                    (None, Some(name)) if !name.is_empty() => format!("{scope}/{name}"),
                    _ => {
                        return Err(Error::bad_input(
                            "this worker sends to actors by path: add the actor's name \
                             (ROUTE/NAME), or give the worker actor=ID",
                        ));
                    }
                };
                state
                    .actors
                    .send_async(&id, Some(spec), function, body)
                    .await
                    .map(|o| Reply::from_data(&o.value, o.stats))
            }
            Worker::Http(_) => Err(Error::internal(
                "a wasi:http worker takes whole requests, not messages",
            )),
        }
    }
}
