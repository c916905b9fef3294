//! The state every handler shares: the runtime, the store, the actors, the
//! workers, admission control, and what the API keeps: compiled modules
//! and the workers it built for them.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use wasmhost::{ActorSystem, Digest, Error, Module, Result, Runtime};
use wasmhost_store::fetch::UrlFetcher;
use wasmhost_store::{ModuleStore, Reference, Resolver, Trust};

use crate::admission::Admission;
use crate::config::{Mode, ServerConfig};
use crate::error::with_context;
use crate::workers::{Drive, Worker, WorkerEnv, blocking};

/// Compiled modules the API keeps ready, by digest.
const API_MODULES: usize = 256;

/// Workers the API keeps (kept async-process instances), by
/// (digest, mode, export). Bounded: clients choose the exports.
const API_WORKERS: usize = 256;

/// A worker the API built, by (module digest, mode, export).
type WorkerKey = (Digest, Mode, String);

/// The modules this node answers for, and the channel that asks the
/// responder to join one more module's queue group.
#[derive(Debug, Default)]
pub(crate) struct Offers {
    pub(crate) joined: std::sync::Mutex<std::collections::HashSet<Digest>>,
    pub(crate) tx: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<Digest>>,
}

impl Offers {
    /// Joins the queue group of a module this node now holds compiled
    /// (once per module; those offered before the responder starts are
    /// joined when it does).
    pub(crate) fn offer(&self, digest: &Digest) {
        let mut joined = self.joined.lock().unwrap_or_else(|p| p.into_inner());
        if joined.insert(*digest)
            && let Some(tx) = self.tx.get()
        {
            let _ = tx.send(*digest);
        }
    }
}

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
    /// What building and running workers needs.
    pub env: WorkerEnv,
    /// Set when shutdown begins: `/readyz` turns 503.
    pub draining: AtomicBool,
    /// This node's membership of a cluster, once joined (`--cluster`).
    pub cluster: std::sync::OnceLock<wasmhost_cluster::Cluster>,
    /// The modules whose calls this node answers for its cluster's peers.
    pub(crate) offers: Offers,
    modules: Mutex<lru::LruCache<Digest, Module>>,
    /// Workers the API keeps.
    workers: Mutex<lru::LruCache<WorkerKey, Arc<Worker>>>,
}

impl AppState {
    /// State with no workers yet (see [`AppState::build_routes`]).
    pub fn new(config: ServerConfig, rt: Runtime, store: ModuleStore, actors: ActorSystem) -> Self {
        // The operator's resolver: route and TCP modules are files,
        // manifests or store references; a manifest's key-value grant is a
        // namespace of the actors' store.
        let mut resolver = Resolver::new(Trust::Operator)
            .defaults(config.limits.clone())
            .store(store.clone())
            .urls(UrlFetcher::allow(config.allow_url_hosts.iter().cloned()));
        if let Some(kv) = &actors.config().kv {
            resolver = resolver.kv(kv.clone());
        }
        let env = WorkerEnv {
            rt: rt.clone(),
            resolver,
            actors: actors.clone(),
            trap_unknown_imports: config.trap_unknown_imports,
            outbound: config.outbound,
        };
        AppState {
            admission: Admission::new(config.max_concurrent, config.max_queue),
            rt,
            store,
            actors,
            config,
            routes: Vec::new(),
            env,
            draining: AtomicBool::new(false),
            cluster: std::sync::OnceLock::new(),
            offers: Offers::default(),
            modules: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(API_MODULES).unwrap_or(NonZeroUsize::MIN),
            )),
            workers: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(API_WORKERS).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// Builds every HTTP route's worker (TCP workers are built by the
    /// listener that owns them).
    pub async fn build_routes(&mut self) -> Result<()> {
        let mut routes = Vec::new();
        for spec in &self.config.routes {
            let worker = Worker::build(&self.env, spec)
                .await
                .map_err(|e| with_context(e, &format!("route {} ({})", spec.path, spec.module)))?;
            routes.push((spec.path.clone(), Arc::new(worker)));
        }
        self.routes = routes;
        Ok(())
    }

    /// In a cluster: this node holds `digest` compiled, and answers its
    /// calls for the other nodes from now on.
    pub fn offer(&self, digest: &Digest) {
        if self.cluster.get().is_some() {
            self.offers.offer(digest);
        }
    }

    /// This node's load, as its cluster heartbeat reports it.
    pub fn load(&self) -> wasmhost_cluster::NodeLoad {
        wasmhost_cluster::NodeLoad {
            running: self.admission.running(),
            waiting: self.admission.waiting(),
            slots: self.config.max_concurrent,
            // In a cluster, the actors it owns; alone, those in memory.
            actors: match self.cluster.get() {
                Some(c) => c.leases().count(),
                None => self.actors.len(),
            },
        }
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// The module a store reference names, compiled (cached by digest),
    /// named by the reference in its canonical form (`name:tag`,
    /// `sha256:…`) so metrics see one name however clients spell it. Its
    /// limits are the server's; it has no grants.
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
                self.offer(&digest);
                self.lock_modules().put(digest, m.clone());
                m
            }
        };
        Ok(module.with_name(reference.to_string()))
    }

    /// The worker driving `module` in a process `mode` (`sync`, or `async`
    /// with `export`) for the API: built on first use and kept, so an async
    /// process keeps its instance between messages.
    pub async fn process_worker(
        &self,
        module: Module,
        mode: Mode,
        export: Option<String>,
    ) -> Result<Arc<Worker>> {
        if mode == Mode::Async {
            let export = export.as_deref().unwrap_or(wasmhost::process::POLL);
            // Only an export that exists gets an instance kept for it.
            if !module.exports().iter().any(|e| e.name == export) {
                return Err(Error::not_found(format!(
                    "export `{export}` in module {}",
                    module.name()
                )));
            }
        }
        let key = (module.digest(), mode, export.clone().unwrap_or_default());
        if let Some(w) = self.lock_workers().get(&key) {
            return Ok(w.clone());
        }
        let label = module.name().to_string();
        let drive = Drive {
            mode: Some(mode),
            export,
            label,
            ..Drive::default()
        };
        let worker = Arc::new(Worker::new(&self.env, module, drive).await?);
        Ok(self.lock_workers().get_or_insert(key, || worker).clone())
    }

    /// Drops a compiled module, and the workers built for it, from the
    /// API's sets (after a delete).
    pub fn forget(&self, digest: &Digest) {
        self.lock_modules().pop(digest);
        let mut workers = self.lock_workers();
        let stale: Vec<WorkerKey> = workers
            .iter()
            .filter(|((d, _, _), _)| d == digest)
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            workers.pop(&key);
        }
    }

    fn lock_modules(&self) -> std::sync::MutexGuard<'_, lru::LruCache<Digest, Module>> {
        self.modules.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_workers(&self) -> std::sync::MutexGuard<'_, lru::LruCache<WorkerKey, Arc<Worker>>> {
        self.workers.lock().unwrap_or_else(|p| p.into_inner())
    }
}
