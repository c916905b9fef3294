//! The state every handler shares: the runtime, the store, the actors, the
//! workers, admission control, and the compiled modules the API has loaded.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use wasmhost::{ActorSystem, Digest, Error, Instance, Module, Result, Runtime};
use wasmhost_store::{ModuleStore, Reference};

use crate::admission::Admission;
use crate::config::ServerConfig;
use crate::workers::Worker;

/// Compiled modules the API keeps ready, by digest.
const API_MODULES: usize = 256;

/// Kept async-process instances, by (digest, export).
type Processes = HashMap<(Digest, String), Arc<tokio::sync::Mutex<Instance>>>;

/// Shared by every request.
#[derive(Debug)]
pub struct AppState {
    /// The runtime (engine, compiled-module caches).
    pub rt: Runtime,
    /// The module store.
    pub store: ModuleStore,
    /// Actors, for the API and actor routes.
    pub actors: ActorSystem,
    /// The configuration.
    pub config: ServerConfig,
    /// Slots and queue.
    pub admission: Admission,
    /// HTTP workers by route path.
    pub routes: Vec<(String, Arc<Worker>)>,
    /// Set when shutdown begins: `/readyz` turns 503.
    pub draining: AtomicBool,
    modules: Mutex<lru::LruCache<Digest, Module>>,
    /// Async-process instances the API keeps, by (digest, export).
    processes: Mutex<Processes>,
}

impl AppState {
    /// State with no workers yet (see [`AppState::build_workers`]).
    pub fn new(config: ServerConfig, rt: Runtime, store: ModuleStore, actors: ActorSystem) -> Self {
        AppState {
            admission: Admission::new(config.max_concurrent, config.max_queue),
            rt,
            store,
            actors,
            config,
            routes: Vec::new(),
            draining: AtomicBool::new(false),
            modules: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(API_MODULES).unwrap_or(NonZeroUsize::MIN),
            )),
            processes: Mutex::new(HashMap::new()),
        }
    }

    /// Builds every HTTP route's worker (TCP workers are built by the
    /// listener that owns them).
    pub async fn build_routes(&mut self) -> Result<()> {
        let mut routes = Vec::new();
        for spec in &self.config.routes {
            let worker = Worker::build(self, spec)
                .await
                .map_err(|e| with_context(e, &format!("route {} ({})", spec.path, spec.module)))?;
            routes.push((spec.path.clone(), Arc::new(worker)));
        }
        self.routes = routes;
        Ok(())
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// A worker's module: a file if one exists at `module`, else a store
    /// reference. Compiled here; limits are the server's.
    pub async fn load_worker_module(&self, module: &str) -> Result<Module> {
        if Path::new(module).is_file() {
            let path = module.to_string();
            let rt = self.rt.clone();
            let loaded = blocking(move || rt.load(&wasmhost::Source::file(&path))).await?;
            return Ok(loaded
                .with_limits(self.config.limits.clone())
                .with_name(module));
        }
        let reference: Reference = module.parse().map_err(|e: Error| {
            Error::bad_input(format!(
                "`{module}` is neither a file nor a store reference: {e}"
            ))
        })?;
        self.module(&reference).await
    }

    /// The module a store reference names, compiled (cached by digest),
    /// named by the reference in its canonical form (`name:tag`,
    /// `sha256:…`) so metrics see one name however clients spell it.
    pub async fn module(&self, reference: &Reference) -> Result<Module> {
        let digest = self.store.resolve(reference).await?;
        let cached = self.lock_modules().get(&digest).cloned();
        let module = match cached {
            Some(m) => m,
            None => {
                let (digest, bytes) = self.store.fetch(&Reference::Digest(digest)).await?;
                let rt = self.rt.clone();
                let m = blocking(move || rt.load_bytes(bytes.to_vec())).await?;
                let m = m.with_limits(self.config.limits.clone());
                self.lock_modules().put(digest, m.clone());
                m
            }
        };
        Ok(module.with_name(reference.to_string()))
    }

    /// Drops a compiled module from the API's set (after a delete).
    pub fn forget(&self, digest: &Digest) {
        self.lock_modules().pop(digest);
        self.processes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(d, _), _| d != digest);
    }

    /// The kept async-process instance of `module` for `export`, created on
    /// first use.
    pub async fn process_instance(
        &self,
        module: &Module,
        export: &str,
    ) -> Result<Arc<tokio::sync::Mutex<Instance>>> {
        let key = (module.digest(), export.to_string());
        if let Some(i) = self.lock_processes().get(&key) {
            return Ok(i.clone());
        }
        let instance = module
            .instantiate_async(&wasmhost::CallOptions::default())
            .await?;
        Ok(self
            .lock_processes()
            .entry(key)
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(instance)))
            .clone())
    }

    fn lock_modules(&self) -> std::sync::MutexGuard<'_, lru::LruCache<Digest, Module>> {
        self.modules.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_processes(&self) -> std::sync::MutexGuard<'_, Processes> {
        self.processes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `e` with `context` in front of its message, same code.
pub fn with_context(e: Error, context: &str) -> Error {
    match e.code() {
        wasmhost::ErrorCode::BadInput => Error::bad_input(format!("{context}: {e}")),
        wasmhost::ErrorCode::NotFound => Error::not_found(format!("{context}: {e}")),
        wasmhost::ErrorCode::InvalidModule => {
            Error::invalid_module(format!("{context}: {e}"), None)
        }
        _ => e,
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
