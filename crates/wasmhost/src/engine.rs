//! The one place where wasmtime's engine is configured.
//!
//! Every module wasmhost runs is compiled by an engine built here from a
//! [`RuntimeConfig`]: the pooling instance allocator with copy-on-write
//! memory images (so a fresh instance per call is cheap), epoch interruption
//! driven by one ticker thread per engine (so timeouts cost almost nothing),
//! and fuel metering only when asked for (it slows guests down).
//!
//! Nothing else in the workspace builds a `wasmtime::Config`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::cache::CacheConfig;
use crate::compile_gate::CompileConfig;
use crate::error::{Error, Result};
use crate::limits::Limits;

/// Default wasm stack of a call: 1 MiB.
pub const DEFAULT_MAX_WASM_STACK: usize = 1 << 20;
/// Default number of instances that can be alive at once in the pool.
pub const DEFAULT_POOL_INSTANCES: u32 = 1000;
/// Default number of fiber stacks in the pool: calls through the async API
/// (`*_async`) in flight at once. Each reserves [`DEFAULT_ASYNC_STACK`] of
/// address space (touched pages only cost memory) and costs about 2 µs at
/// engine start-up.
pub const DEFAULT_ASYNC_STACKS: u32 = 64;
/// Size of each async call's fiber stack: the wasm stack limit plus room
/// for host functions.
pub const DEFAULT_ASYNC_STACK: usize = 2 << 20;
/// Default epoch tick: the granularity of timeouts.
pub const DEFAULT_EPOCH_TICK: Duration = Duration::from_millis(10);
/// Virtual address space reserved for each pooled linear memory (wasmtime's
/// default on 64-bit hosts: 4 GiB plus a 32 MiB guard region), which lets
/// compiled code elide bounds checks. Only touched pages cost real memory.
pub const POOL_SLOT_RESERVATION: u64 = (4 << 30) + (32 << 20);

/// How the runtime is built. [`RuntimeConfig::default`] is safe for
/// untrusted modules: no disk cache, no fuel metering, default [`Limits`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RuntimeConfig {
    /// State directory; compiled modules are cached under `DIR/cache`.
    /// `None` disables the on-disk cache.
    pub state_dir: Option<PathBuf>,
    /// In-memory compiled-module cache bounds.
    pub cache: CacheConfig,
    /// Limits given to modules that do not set their own.
    pub default_limits: Limits,
    /// Enable fuel metering, needed for [`Limits::fuel`]. Costs guest speed.
    pub fuel_metering: bool,
    /// Maximum wasm stack per call, in bytes (fixed per engine by wasmtime).
    pub max_wasm_stack: usize,
    /// Instance pool sizing; `None` uses on-demand allocation instead of pooling.
    pub pool: Option<PoolConfig>,
    /// Granularity of timeouts.
    pub epoch_tick: Duration,
    /// Bounds on compiling: module size, compiles at once, queue, deadline.
    pub compile: CompileConfig,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            state_dir: None,
            cache: CacheConfig::default(),
            default_limits: Limits::default(),
            fuel_metering: false,
            max_wasm_stack: DEFAULT_MAX_WASM_STACK,
            pool: Some(PoolConfig::default()),
            epoch_tick: DEFAULT_EPOCH_TICK,
            compile: CompileConfig::default(),
        }
    }
}

impl RuntimeConfig {
    /// Uses `dir` as the state directory (enables the on-disk cache).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Enables fuel metering.
    pub fn fuel_metering(mut self, on: bool) -> Self {
        self.fuel_metering = on;
        self
    }

    /// Sets the default limits of modules.
    pub fn default_limits(mut self, limits: Limits) -> Self {
        self.default_limits = limits;
        self
    }

    /// Sets the in-memory cache bounds.
    pub fn cache(mut self, cache: CacheConfig) -> Self {
        self.cache = cache;
        self
    }

    /// Sets the maximum wasm stack per call.
    pub fn max_wasm_stack(mut self, bytes: usize) -> Self {
        self.max_wasm_stack = bytes;
        self
    }

    /// Sets the bounds on compiling (see [`CompileConfig`]).
    pub fn compile(mut self, compile: CompileConfig) -> Self {
        self.compile = compile;
        self
    }

    /// Sets (or with `None` disables) the instance pool.
    pub fn pool(mut self, pool: Option<PoolConfig>) -> Self {
        self.pool = pool;
        self
    }
}

/// The state directory used when none is given: `$WASMHOST_STATE`, else the
/// platform's data directory (`~/.local/share/wasmhost` on Linux).
pub fn default_state_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WASMHOST_STATE").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "wasmhost").map(|d| d.data_dir().to_path_buf())
}

/// Sizing of the pooling instance allocator.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Instances (and linear memories, and tables) alive at once across all calls.
    /// Each memory slot reserves [`POOL_SLOT_RESERVATION`] of virtual address space.
    pub max_instances: u32,
    /// Largest linear memory any call may ever have; per-call limits are capped by it.
    pub max_memory_bytes: u64,
    /// Largest table any call may ever have.
    pub max_table_elements: u32,
    /// Bytes at the start of each linear memory kept resident between
    /// calls and reset in place (only the pages a call dirtied, on kernels
    /// with `PAGEMAP_SCAN`) instead of being returned to the kernel. Without
    /// it every call page-faults its memory back in, and concurrent calls
    /// contend on the kernel's memory-map lock.
    pub keep_resident_bytes: u64,
    /// Fiber stacks reserved for calls through the async API: how many can
    /// be in flight at once ([`DEFAULT_ASYNC_STACKS`]). One more fails with
    /// `overloaded`. The blocking API needs none.
    pub async_stacks: u32,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_instances: DEFAULT_POOL_INSTANCES,
            max_memory_bytes: 4 << 30,
            max_table_elements: 100_000,
            keep_resident_bytes: 1 << 20,
            async_stacks: DEFAULT_ASYNC_STACKS,
        }
    }
}

impl PoolConfig {
    /// Virtual address space the pool reserves up front for linear memories.
    pub fn virtual_memory_reservation(&self) -> u64 {
        u64::from(self.max_instances) * POOL_SLOT_RESERVATION
    }
}

/// The wasmtime configuration of a runtime built from `config`: the pooled
/// one when `config.pool` is set. Public so that benchmarks can measure raw
/// wasmtime on exactly the engine wasmhost uses; wasmhost itself builds its
/// engine from it (falling back to on-demand allocation if the pool cannot be
/// reserved).
pub fn wasmtime_config(config: &RuntimeConfig) -> Config {
    let mut c = Config::new();
    c.epoch_interruption(true)
        .consume_fuel(config.fuel_metering)
        .max_wasm_stack(config.max_wasm_stack)
        .memory_init_cow(true)
        .parallel_compilation(true)
        .async_stack_size(DEFAULT_ASYNC_STACK.max(config.max_wasm_stack + (1 << 20)));
    if let Some(pool) = &config.pool {
        let keep = usize::try_from(pool.keep_resident_bytes).unwrap_or(usize::MAX);
        let mut p = PoolingAllocationConfig::default();
        p.total_core_instances(pool.max_instances)
            .total_memories(pool.max_instances)
            .total_tables(pool.max_instances)
            .total_component_instances(pool.max_instances)
            .total_stacks(pool.async_stacks)
            .linear_memory_keep_resident(keep)
            .table_keep_resident(keep.min(64 << 10))
            .pagemap_scan(wasmtime::Enabled::Auto)
            .max_memory_size(usize::try_from(pool.max_memory_bytes).unwrap_or(usize::MAX))
            .table_elements(pool.max_table_elements as usize)
            .max_tables_per_module(8)
            .max_memories_per_module(4)
            .max_core_instances_per_component(64)
            .max_memories_per_component(16)
            .max_tables_per_component(32)
            .total_gc_heaps(pool.max_instances);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    c
}

/// Builds the engine for `config`. Falls back to on-demand allocation (with a
/// warning) when the pool cannot be reserved, e.g. under a low `ulimit -v`.
pub(crate) fn build_engine(config: &RuntimeConfig) -> Result<Engine> {
    if config.pool.is_some() {
        match Engine::new(&wasmtime_config(config)) {
            Ok(engine) => return Ok(engine),
            Err(err) => tracing::warn!(
                error = %err,
                "could not reserve the instance pool; falling back to on-demand allocation"
            ),
        }
    }
    let on_demand = RuntimeConfig {
        pool: None,
        ..config.clone()
    };
    Engine::new(&wasmtime_config(&on_demand))
        .map_err(|e| Error::internal(format!("cannot create the wasm engine: {e:#}")))
}

/// The thread that advances the engine's epoch every tick. Dropping it stops
/// the thread promptly.
#[derive(Debug)]
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine, tick: Duration) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        // A weak handle: the runtime owns the engine, so dropping the runtime
        // tears the engine down right there, not later on this thread.
        let engine = engine.weak();
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("wasmhost-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(tick);
                    match engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| Error::internal(format!("cannot start the epoch thread: {e}")))?;
        Ok(EpochTicker {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            handle.thread().unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_reservation_is_reported() {
        let pool = PoolConfig::default();
        assert_eq!(
            pool.virtual_memory_reservation(),
            1000 * ((4u64 << 30) + (32 << 20))
        );
    }
}
