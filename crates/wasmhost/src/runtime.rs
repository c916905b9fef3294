//! The [`Runtime`]: one engine, its caches, its linkers and its epoch ticker.
//!
//! Create one per process (it is cheap to clone and thread-safe) and load
//! modules through it. Loading looks the module up in memory, then on disk,
//! and only then compiles; concurrent loads of the same bytes compile once.
//! A module file loaded again unchanged is found by its path (the path
//! index, see [`crate::cache`]) without being read or hashed.
//!
//! ```
//! use wasmhost::{Runtime, RuntimeConfig, Source, Value};
//! # fn main() -> wasmhost::Result<()> {
//! let rt = Runtime::new(RuntimeConfig::default())?;
//! let wat = r#"(module (func (export "double") (param i32) (result i32)
//!                 local.get 0 i32.const 2 i32.mul))"#;
//! let m = rt.load(&Source::Bytes(wat.into()))?;
//! assert_eq!(m.invoke("double", &[Value::I32(21)])?.value, vec![Value::I32(42)]);
//! assert_eq!(rt.cache_stats().compiles, 1);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::cache::{CacheStats, CachedModule, DiskCache, DiskRead, MemoryCache, PathIndex, Stamp};
use crate::capabilities::{GrantKey, HostFunctions, Linkers};
use crate::engine::{EpochTicker, RuntimeConfig, build_engine};
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::metrics::{self, LoadSource};
use crate::module::{self, Code, Compiled, Digest, Module, ModuleKind, Source};

/// The shared state behind a [`Runtime`] and every [`Module`] it loaded.
pub(crate) struct RuntimeInner {
    pub(crate) engine: wasmtime::Engine,
    pub(crate) config: RuntimeConfig,
    cache: MemoryCache,
    disk: Option<DiskCache>,
    linkers: Mutex<HashMap<(GrantKey, Exec), Arc<Linkers>>>,
    /// Host-function sets by name, as registered with [`Runtime::add_host_functions`].
    host_functions: Mutex<HashMap<String, HostFunctions>>,
    _ticker: EpochTicker,
    /// Module file → digest, for loads of the same unchanged file.
    paths: PathIndex,
}

impl RuntimeInner {
    /// The linkers for `key` of flavour `exec`, built on first use.
    pub(crate) fn linkers(&self, key: GrantKey, exec: Exec) -> Result<Arc<Linkers>> {
        let mut map = self.linkers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = map.get(&(key.clone(), exec)) {
            return Ok(l.clone());
        }
        let registered = self
            .host_functions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let l = Arc::new(Linkers::build(
            &self.engine,
            key.clone(),
            exec,
            &registered,
        )?);
        map.insert((key, exec), l.clone());
        Ok(l)
    }
}

/// Loads, caches and runs modules. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine, opens the disk cache (if a state directory is set)
    /// and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self> {
        if config.epoch_tick.is_zero() {
            return Err(Error::bad_input("the epoch tick must be longer than zero"));
        }
        if let Some(pool) = &config.pool
            && pool.max_memory_bytes > 4 << 30
        {
            return Err(Error::bad_input(format!(
                "the pool's largest memory is {} bytes; at most 4 GiB is supported",
                pool.max_memory_bytes
            )));
        }
        let engine = build_engine(&config)?;
        let disk = match &config.state_dir {
            Some(dir) => Some(DiskCache::open(dir, &engine).map_err(|e| {
                Error::internal(format!(
                    "cannot create the cache directory under `{}`: {e}",
                    dir.display()
                ))
            })?),
            None => None,
        };
        let ticker = EpochTicker::start(&engine, config.epoch_tick)?;
        let paths = PathIndex::new(disk.as_ref().and(config.state_dir.as_deref()));
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                cache: MemoryCache::new(config.cache.clone()),
                disk,
                linkers: Mutex::new(HashMap::new()),
                host_functions: Mutex::new(HashMap::new()),
                _ticker: ticker,
                paths,
                config,
            }),
        })
    }

    /// Registers a set of host functions under its name. Guests get them
    /// only where the set is granted
    /// ([`crate::Capabilities::with_host_functions`]). A name can be
    /// registered once: replacing functions under modules already linked
    /// against them would make calls depend on timing.
    ///
    /// ```
    /// use wasmhost::{Capabilities, HostFunctions, Runtime, RuntimeConfig, Source, Value};
    /// # fn main() -> wasmhost::Result<()> {
    /// let rt = Runtime::new(RuntimeConfig::default())?;
    /// rt.add_host_functions(HostFunctions::new("math").core("host", "triple", |x: i32| x * 3))?;
    /// let m = rt
    ///     .load(&Source::Bytes(br#"(module (import "host" "triple" (func $t (param i32) (result i32)))
    ///         (func (export "f") (param i32) (result i32) local.get 0 call $t))"#.to_vec()))?
    ///     .with_capabilities(Capabilities::none().with_host_functions("math"));
    /// assert_eq!(m.invoke("f", &[Value::I32(14)])?.value, vec![Value::I32(42)]);
    /// # Ok(()) }
    /// ```
    pub fn add_host_functions(&self, set: HostFunctions) -> Result<()> {
        let mut map = self
            .inner
            .host_functions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if map.contains_key(set.name()) {
            return Err(Error::bad_input(format!(
                "host functions `{}` are already registered with this runtime",
                set.name()
            )));
        }
        map.insert(set.name().to_string(), set);
        Ok(())
    }

    /// The configuration this runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// The wasmtime engine behind this runtime, for embedders that drive
    /// wasmtime directly on modules loaded here (the server's wasi:http
    /// worker does, with `wasmtime-wasi-http`). Its epoch advances every
    /// [`RuntimeConfig::epoch_tick`]; see [`Runtime::deadline_ticks`].
    pub fn engine(&self) -> &wasmtime::Engine {
        &self.inner.engine
    }

    /// The epoch deadline (in ticks, for `Store::set_epoch_deadline`) that
    /// covers `timeout` on this runtime's engine, never firing early.
    pub fn deadline_ticks(&self, timeout: Option<std::time::Duration>) -> u64 {
        crate::engine::deadline_ticks(timeout, self.inner.config.epoch_tick)
    }

    /// Sets up `store` (of this runtime's engine) for one call through
    /// wasmtime's async API under `limits`, exactly as the library's own
    /// sandboxes are: the [`Limiter`](crate::limits::Limiter) that `limiter`
    /// reaches, the fuel limit when the runtime meters fuel, and an epoch
    /// deadline that yields to the executor at every tick and stops the
    /// guest with a `timeout` trap once `limits.timeout` has passed (counted
    /// from now). For embedders that drive wasmtime themselves on this
    /// engine (the server's wasi:http worker); report failures with
    /// [`Error::from_wasmtime`] and calls with [`Module::record_call`].
    pub fn prepare_async_store<T: Send + 'static>(
        &self,
        store: &mut wasmtime::Store<T>,
        limits: &crate::Limits,
        limiter: fn(&mut T) -> &mut crate::limits::Limiter,
    ) -> Result<()> {
        store.limiter(move |t| limiter(t));
        if self.inner.config.fuel_metering {
            store
                .set_fuel(limits.fuel.unwrap_or(u64::MAX))
                .map_err(|e| Error::internal(format!("cannot set fuel: {e}")))?;
        }
        let started = Instant::now();
        let deadline = limits.timeout.map(|t| started + t);
        crate::sandbox::yield_at_ticks(store, self.inner.config.epoch_tick, move |_| {
            (started, deadline)
        });
        store.set_epoch_deadline(1);
        Ok(())
    }

    /// Where compiled artifacts are cached on disk, if anywhere.
    pub fn disk_cache_dir(&self) -> Option<&std::path::Path> {
        self.inner.disk.as_ref().map(|d| d.dir())
    }

    /// Loads a module from bytes, a file or stdin (wasm binary or WAT).
    ///
    /// A file loaded before, and unchanged since (same device, inode, size,
    /// mtime and ctime as recorded at least 2 s after its last change), is
    /// not read again when its compiled module is in memory or on disk: its
    /// digest comes from the path index (see [`crate::cache`]).
    pub fn load(&self, source: &Source) -> Result<Module> {
        match source {
            Source::File(path) => self.load_file(source, path),
            _ => self.load_bytes(source.read()?),
        }
    }

    /// Loads a module from bytes (wasm binary or WAT).
    pub fn load_bytes(&self, raw: impl Into<Vec<u8>>) -> Result<Module> {
        let binary = module::to_binary(raw.into())?;
        let digest = Digest::of(&binary);
        let compiled = self.compiled(digest, &binary)?;
        self.module(compiled)
    }

    /// The public handle of a compiled module, with the runtime's defaults.
    fn module(&self, compiled: Arc<Compiled>) -> Result<Module> {
        let digest = compiled.digest;
        Ok(Module {
            rt: self.inner.clone(),
            compiled,
            limits: self.inner.config.default_limits.clone(),
            caps: Default::default(),
            name: Arc::from(format!("sha256:{}", digest.short())),
            pre: Default::default(),
            metrics: Default::default(),
        })
    }

    /// [`Runtime::load`] of a file: through the path index when the file is
    /// unchanged, else read, hashed and recorded in the index.
    fn load_file(&self, source: &Source, path: &Path) -> Result<Module> {
        let inner = &self.inner;
        // The clock is read before the file is stat-ed (see `Stamp::settled`).
        let now = crate::cache::now_ns();
        let key = std::fs::canonicalize(path).ok();
        let stamp_of = |key: &Path| std::fs::metadata(key).ok().and_then(|m| Stamp::of(&m));
        let before = key.as_deref().and_then(stamp_of);
        if let (Some(key), Some(stamp)) = (&key, &before)
            && let Some(digest) = inner.paths.lookup(key, stamp)
            && let Some(compiled) = self.cached(digest)?
        {
            inner.cache.note_path_index_hit();
            return self.module(compiled);
        }
        // Read through the canonical path, so that the bytes are those of
        // the file that was stat-ed; errors name the path as given.
        let (raw, by_key) = match &key {
            Some(key) => match Source::File(key.clone()).read() {
                Ok(raw) => (raw, true),
                Err(_) => (source.read()?, false),
            },
            None => (source.read()?, false),
        };
        let binary = module::to_binary(raw)?;
        let digest = Digest::of(&binary);
        if by_key
            && let (Some(key), Some(stamp)) = (&key, before)
            && stamp_of(key) == Some(stamp)
        {
            // Unchanged while it was read: the digest is this version's.
            inner.paths.record(key, stamp, &digest, now);
        }
        let compiled = self.compiled(digest, &binary)?;
        self.module(compiled)
    }

    /// The compiled module of `digest` if it is in memory or on disk
    /// (nothing is compiled: the caller has no bytes yet). A miss in memory
    /// is counted only if the disk has it; otherwise the caller's
    /// [`Runtime::compiled`] counts it.
    fn cached(&self, digest: Digest) -> Result<Option<Arc<Compiled>>> {
        let inner = &self.inner;
        if let Some(c) = inner.cache.get(&digest, false) {
            metrics::module_loaded(&label(&digest), LoadSource::Memory, None);
            return Ok(Some(c));
        }
        inner.disk.as_ref().map_or(Ok(None), |_| {
            self.in_flight(&digest, || {
                let found = self.load_from_disk(digest);
                if found.is_some() {
                    inner.cache.note_miss();
                }
                Ok(found)
            })
        })
    }

    fn compiled(&self, digest: Digest, binary: &[u8]) -> Result<Arc<Compiled>> {
        let inner = &self.inner;
        if let Some(c) = inner.cache.get(&digest, true) {
            metrics::module_loaded(&label(&digest), LoadSource::Memory, None);
            return Ok(c);
        }
        self.in_flight(&digest, || match self.load_from_disk(digest) {
            Some(c) => Ok(c),
            None => self.compile(digest, binary),
        })
    }

    /// Runs `load` for `digest` under its compile lock, unless the module
    /// reached memory while waiting for the lock, so that concurrent loads of
    /// one module compile (or deserialize) it once.
    fn in_flight<T: From<Arc<Compiled>>>(
        &self,
        digest: &Digest,
        load: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let inner = &self.inner;
        let flight = inner.cache.flight(digest);
        let result = {
            let _guard = flight.lock().unwrap_or_else(|p| p.into_inner());
            // Someone else may have finished compiling while we waited.
            match inner.cache.get(digest, false) {
                Some(c) => Ok(c.into()),
                None => load(),
            }
        };
        drop(flight);
        inner.cache.land(digest);
        result
    }

    /// The module from the disk cache, if there (see [`DiskCache::read`]
    /// for what is checked).
    fn load_from_disk(&self, digest: Digest) -> Option<Arc<Compiled>> {
        let inner = &self.inner;
        let disk = inner.disk.as_ref()?;
        let started = Instant::now();
        match disk.read(&digest, &inner.engine) {
            DiskRead::Hit {
                code,
                wasm_bytes,
                verified,
            } => {
                let took = started.elapsed();
                let c = Arc::new(Compiled::new(digest, code, wasm_bytes, took, false));
                if verified {
                    inner.cache.note_disk_verified();
                }
                inner.cache.note_disk_hit();
                inner.cache.insert(c.clone());
                metrics::module_loaded(&label(&digest), LoadSource::Disk, Some(took));
                Some(c)
            }
            DiskRead::Rejected(why) => {
                tracing::warn!(%digest, reason = %why, "cached artifact refused; recompiling");
                inner.cache.note_disk_rejected();
                None
            }
            DiskRead::Miss => None,
        }
    }

    /// Validates and compiles `binary`, then writes the artifact to disk.
    fn compile(&self, digest: Digest, binary: &[u8]) -> Result<Arc<Compiled>> {
        let inner = &self.inner;
        let kind = module::kind_of(binary)?;
        module::validate(binary)?;
        let started = Instant::now();
        let code = match kind {
            ModuleKind::Core => {
                wasmtime::Module::from_binary(&inner.engine, binary).map(Code::Core)
            }
            ModuleKind::Component => {
                wasmtime::component::Component::from_binary(&inner.engine, binary)
                    .map(Code::Component)
            }
        }
        .map_err(|e| Error::invalid_module(format!("{e:#}"), None))?;
        let took = started.elapsed();
        inner.cache.note_compile();
        let c = Arc::new(Compiled::new(digest, code, binary.len() as u64, took, true));
        if let Some(disk) = &inner.disk {
            match c.serialize() {
                Ok(bytes) => match disk.write(&digest, kind, binary.len() as u64, &bytes) {
                    Ok(()) => inner.cache.note_disk_write(),
                    Err(e) => {
                        tracing::warn!(%digest, error = %e, "could not write the compiled artifact to disk")
                    }
                },
                Err(e) => {
                    tracing::warn!(%digest, error = %e, "could not serialize the compiled module")
                }
            }
        }
        inner.cache.insert(c.clone());
        metrics::module_loaded(&label(&digest), LoadSource::Compile, Some(took));
        Ok(c)
    }

    /// Cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.cache.stats()
    }

    /// The modules compiled in memory now, with their counters.
    pub fn cached_modules(&self) -> Vec<CachedModule> {
        self.inner.cache.modules()
    }

    /// Adds this process's per-module counters (loads, calls, errors, compile
    /// time) for `modules` to the stats file of the disk cache, so that
    /// `wasmhost cache ls` can show them across processes. Only counts not
    /// yet persisted are added; call it whenever convenient (the CLI does at
    /// the end of each command). Without a disk cache it does nothing.
    pub fn persist_stats(&self, modules: &[&Module]) -> Result<()> {
        let Some(disk) = &self.inner.disk else {
            return Ok(());
        };
        let deltas: Vec<_> = modules
            .iter()
            .filter_map(|m| m.compiled.take_stats_delta().map(|d| (m.digest(), d)))
            .collect();
        disk.add_stats(&deltas)
            .map_err(|e| Error::internal(format!("cannot write cache stats: {e}")))
    }

    /// Empties the memory cache and the disk cache (and forgets the digests
    /// of module files, see [`Runtime::load`]); returns how many entries
    /// each cache held. Modules already loaded stay usable.
    pub fn clear_cache(&self) -> Result<(usize, usize)> {
        let mem = self.inner.cache.clear();
        self.inner.paths.clear();
        let disk = match &self.inner.disk {
            Some(d) => d
                .clear()
                .map_err(|e| Error::internal(format!("cannot clear the disk cache: {e}")))?,
            None => 0,
        };
        Ok((mem, disk))
    }
}

/// A module's label in metrics: `sha256:<12 hex>`.
fn label(digest: &Digest) -> String {
    format!("sha256:{}", digest.short())
}
