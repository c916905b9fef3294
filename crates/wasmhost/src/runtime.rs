//! The [`Runtime`]: one engine, its caches, its linkers and its epoch ticker.
//!
//! Create one per process (it is cheap to clone and thread-safe) and load
//! modules through it (loading is in `load.rs`).
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

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::cache::{CacheStats, CachedModule, DiskCache, MemoryCache, PathIndex};
use crate::capabilities::GrantKey;
use crate::compile_gate::CompileGate;
use crate::engine::{EpochTicker, RuntimeConfig, build_engine};
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::host_functions::HostFunctions;
use crate::linking::Linkers;

/// The shared state behind a [`Runtime`] and every [`Module`] it loaded.
pub(crate) struct RuntimeInner {
    pub(crate) engine: wasmtime::Engine,
    pub(crate) config: RuntimeConfig,
    pub(crate) cache: MemoryCache,
    pub(crate) disk: Option<DiskCache>,
    linkers: Mutex<HashMap<(GrantKey, Exec), Arc<Linkers>>>,
    /// Host-function sets by name, as registered with [`Runtime::add_host_functions`].
    host_functions: Mutex<HashMap<String, HostFunctions>>,
    _ticker: EpochTicker,
    /// Module file → digest, for loads of the same unchanged file.
    pub(crate) paths: PathIndex,
    /// Compiles running and waiting (see [`crate::compile_gate`]).
    pub(crate) compiles: CompileGate,
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
    pub(crate) inner: Arc<RuntimeInner>,
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
                compiles: CompileGate::new(&config.compile),
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
        crate::limits::deadline_ticks(timeout, self.inner.config.epoch_tick)
    }

    /// Sets up `store` (of this runtime's engine) for one call through
    /// wasmtime's async API under `limits`, exactly as the library's own
    /// sandboxes are: the [`Limiter`](crate::limits::Limiter) that `limiter`
    /// reaches, the fuel limit when the runtime meters fuel, and an epoch
    /// deadline that yields to the executor at every tick and stops the
    /// guest with a `timeout` trap once `limits.timeout` has passed (counted
    /// from now). For embedders that drive wasmtime themselves on this
    /// engine (the server's wasi:http worker); report failures with
    /// [`Error::from_wasmtime`] and calls with [`crate::Module::record_call`].
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

    /// Cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.cache.stats()
    }

    /// The modules compiled in memory now, with their counters.
    pub fn cached_modules(&self) -> Vec<CachedModule> {
        self.inner.cache.modules()
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
