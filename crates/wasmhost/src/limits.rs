//! Resource limits for one call: memory, tables, instances, fuel and time,
//! and what a guest may make the host hold for it through host calls
//! (resources, random bytes, bytes passed in one call: the limits wasmtime's
//! 2026 advisory on WASI resource exhaustion introduced, set tighter here).
//!
//! [`Limits`] are set per module ([`crate::Module::with_limits`]) and can be
//! replaced per call ([`crate::CallOptions::limits`]). They are enforced by a
//! wasmtime `ResourceLimiter` (memory, tables, instances), fuel metering
//! (when the runtime was built with it) and epoch deadlines (timeout).
//!
//! The maximum wasm stack is not here: wasmtime fixes it per engine, so it is
//! [`crate::RuntimeConfig::max_wasm_stack`].
//!
//! ```
//! use std::time::Duration;
//! use wasmhost::Limits;
//! let limits = Limits::default()
//!     .max_memory_bytes(64 << 20)
//!     .timeout(Some(Duration::from_millis(500)))
//!     .fuel(Some(10_000_000));
//! assert_eq!(limits.max_memory_bytes, 64 << 20);
//! ```

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// Default cap on the linear memory of one call: 256 MiB.
pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 256 << 20;
/// Default cap on the elements of any one table.
pub const DEFAULT_MAX_TABLE_ELEMENTS: u64 = 100_000;
/// Default cap on instances in one call (a component has several core instances).
pub const DEFAULT_MAX_INSTANCES: u32 = 64;
/// Default wall-clock timeout of one call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on the host resources (WASI files, streams, pollables,
/// wasi:http fields and bodies, key-value buckets) one call holds at once:
/// 10,000 (wasmtime's own default is 1,000,000).
pub const DEFAULT_MAX_HOST_RESOURCES: usize = 10_000;
/// Default cap on the bytes one WASI random call asks for: 1 MiB
/// (wasmtime's own default is 64 MiB).
pub const DEFAULT_MAX_RANDOM_BYTES: u64 = 1 << 20;
/// Default cap on the bytes a guest passes to the host in one host call
/// (wasmtime's "hostcall fuel"): 64 MiB (wasmtime's own default is 128 MiB).
pub const DEFAULT_MAX_HOSTCALL_BYTES: u64 = 64 << 20;

/// Limits applied to one call (one fresh sandbox).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Total bytes of linear memory the instance may hold, over all its memories.
    pub max_memory_bytes: u64,
    /// Elements any single table may grow to.
    pub max_table_elements: u64,
    /// Core instances the call may create (a component counts each of its core instances).
    pub max_instances: u32,
    /// Fuel the call starts with; `None` for unmetered (needs a runtime with fuel metering to be `Some`).
    pub fuel: Option<u64>,
    /// Wall-clock deadline; `None` for no deadline.
    pub timeout: Option<Duration>,
    /// Host resources (open files, streams, pollables, wasi:http fields
    /// and bodies, key-value buckets) the call may hold at once; one more
    /// fails in the guest (WASI's `nomem`, or a trap) instead of growing
    /// the host's memory or its open file descriptors.
    pub max_host_resources: usize,
    /// Largest number of bytes one WASI `random_get` or `get-random-bytes`
    /// may ask for; a larger request stops the guest (a trap) before the
    /// host allocates it.
    pub max_random_bytes: u64,
    /// Bytes a guest may pass to the host in one host call (strings,
    /// lists, I/O vectors: wasmtime's hostcall fuel); past it the call
    /// fails in the guest (`nomem`) or traps, before the host copies it.
    pub max_hostcall_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            max_table_elements: DEFAULT_MAX_TABLE_ELEMENTS,
            max_instances: DEFAULT_MAX_INSTANCES,
            fuel: None,
            timeout: Some(DEFAULT_TIMEOUT),
            max_host_resources: DEFAULT_MAX_HOST_RESOURCES,
            max_random_bytes: DEFAULT_MAX_RANDOM_BYTES,
            max_hostcall_bytes: DEFAULT_MAX_HOSTCALL_BYTES,
        }
    }
}

impl Limits {
    /// Sets [`Limits::max_memory_bytes`].
    pub fn max_memory_bytes(mut self, bytes: u64) -> Self {
        self.max_memory_bytes = bytes;
        self
    }

    /// Sets [`Limits::max_table_elements`].
    pub fn max_table_elements(mut self, elements: u64) -> Self {
        self.max_table_elements = elements;
        self
    }

    /// Sets [`Limits::max_instances`].
    pub fn max_instances(mut self, instances: u32) -> Self {
        self.max_instances = instances;
        self
    }

    /// Sets [`Limits::fuel`].
    pub fn fuel(mut self, fuel: Option<u64>) -> Self {
        self.fuel = fuel;
        self
    }

    /// Sets [`Limits::timeout`].
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`Limits::max_host_resources`].
    pub fn max_host_resources(mut self, resources: usize) -> Self {
        self.max_host_resources = resources;
        self
    }

    /// Sets [`Limits::max_random_bytes`].
    pub fn max_random_bytes(mut self, bytes: u64) -> Self {
        self.max_random_bytes = bytes;
        self
    }

    /// Sets [`Limits::max_hostcall_bytes`].
    pub fn max_hostcall_bytes(mut self, bytes: u64) -> Self {
        self.max_hostcall_bytes = bytes;
        self
    }

    /// Applies the host-call limits to a store of the runtime's engine
    /// (its hostcall fuel) and to its resource table, for embedders that
    /// build their own store (the server's wasi:http worker).
    pub fn apply_to_host<T>(
        &self,
        store: &mut wasmtime::Store<T>,
        table: impl FnOnce(&mut T) -> &mut wasmtime::component::ResourceTable,
    ) {
        store.set_hostcall_fuel(usize::try_from(self.max_hostcall_bytes).unwrap_or(usize::MAX));
        table(store.data_mut()).set_max_capacity(self.max_host_resources);
    }
}

/// The per-store `ResourceLimiter`: enforces [`Limits`] and remembers the
/// first limit that was hit, so that the trap that usually follows a failed
/// `memory.grow` is reported as `memory_limit` rather than a bare trap.
///
/// Public for embedders that build their own wasmtime `Store` on the
/// runtime's engine (the server's wasi:http worker): install it with
/// `store.limiter(|s| &mut s.limiter)` and, when a call fails, check
/// [`Limiter::denied`] before reporting a trap.
#[derive(Debug)]
pub struct Limiter {
    max_memory: u64,
    max_table: u64,
    max_instances: usize,
    memory_total: u64,
    peak_memory: u64,
    denied: Option<String>,
}

impl Limiter {
    /// A limiter enforcing `limits` (memory, tables, instances).
    pub fn new(limits: &Limits) -> Self {
        Limiter {
            max_memory: limits.max_memory_bytes,
            max_table: limits.max_table_elements,
            max_instances: limits.max_instances as usize,
            memory_total: 0,
            peak_memory: 0,
            denied: None,
        }
    }

    /// Highest total linear memory seen, in bytes.
    pub fn peak_memory(&self) -> u64 {
        self.peak_memory
    }

    /// The description of the first limit hit, if any.
    pub fn denied(&self) -> Option<&str> {
        self.denied.as_deref()
    }

    /// Forgets a recorded denial: a kept instance starts its next call clean.
    pub(crate) fn clear_denied(&mut self) {
        self.denied = None;
    }

    fn deny(&mut self, message: String) {
        if self.denied.is_none() {
            self.denied = Some(message);
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Past the memory's own declared maximum the growth fails in any
        // engine (`memory.grow` returns -1): that is the guest's doing, not
        // a limit of ours, so it is not remembered as a denial (found by
        // the differential runs against wasmtime).
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        let total = self
            .memory_total
            .saturating_sub(current as u64)
            .saturating_add(desired as u64);
        if total > self.max_memory {
            self.deny(format!(
                "growing linear memory to {} bytes in total would exceed the limit of {} bytes",
                total, self.max_memory
            ));
            return Ok(false);
        }
        self.memory_total = total;
        self.peak_memory = self.peak_memory.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // As for memories: the table's own maximum refuses it anyway.
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        if desired as u64 > self.max_table {
            self.deny(format!(
                "growing a table to {} elements would exceed the limit of {} elements",
                desired, self.max_table
            ));
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.max_instances
    }

    fn tables(&self) -> usize {
        // Tables and memories are also bounded per module by the pooling allocator.
        10_000
    }

    fn memories(&self) -> usize {
        10_000
    }
}

/// Number of epoch ticks that covers `timeout`, rounded up, plus one so the
/// deadline never fires early.
pub(crate) fn deadline_ticks(timeout: Option<Duration>, tick: Duration) -> u64 {
    match timeout {
        None => u64::MAX / 2,
        Some(t) => {
            let tick = tick.as_nanos().max(1);
            let n = t.as_nanos().div_ceil(tick);
            u64::try_from(n).unwrap_or(u64::MAX / 2).saturating_add(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_rounds_up_and_never_fires_early() {
        let tick = Duration::from_millis(10);
        assert_eq!(deadline_ticks(Some(Duration::from_millis(500)), tick), 51);
        assert_eq!(deadline_ticks(Some(Duration::from_millis(1)), tick), 2);
        assert_eq!(deadline_ticks(Some(Duration::ZERO), tick), 1);
        assert!(deadline_ticks(None, tick) > 1 << 60);
    }

    #[test]
    fn limiter_counts_total_memory_and_remembers_first_denial() {
        let mut l = Limiter::new(&Limits::default().max_memory_bytes(3 * 65536));
        assert!(l.memory_growing(0, 65536, None).expect("grow"));
        assert!(l.memory_growing(65536, 2 * 65536, None).expect("grow"));
        assert!(!l.memory_growing(2 * 65536, 4 * 65536, None).expect("grow"));
        assert_eq!(l.peak_memory(), 2 * 65536);
        let first = l.denied().expect("denied").to_string();
        assert!(!l.table_growing(0, 1_000_000, None).expect("grow"));
        assert_eq!(l.denied(), Some(first.as_str()));
    }

    #[test]
    fn growth_past_the_declared_maximum_is_refused_but_not_our_denial() {
        let mut l = Limiter::new(&Limits::default().max_memory_bytes(3 * 65536));
        assert!(
            !l.memory_growing(65536, 1 << 40, Some(2 * 65536))
                .expect("grow")
        );
        assert!(!l.table_growing(1, 1 << 30, Some(10)).expect("grow"));
        assert_eq!(l.denied(), None);
        assert!(
            !l.memory_growing(65536, 4 * 65536, Some(8 * 65536))
                .expect("grow")
        );
        assert!(l.denied().is_some());
    }
}
