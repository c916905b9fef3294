//! Bounded compilation: how big a module may be, how many compile at once,
//! how many may wait, and how long one may take ([`CompileConfig`]).
//!
//! wasmtime does not count a module that is slow or hungry to compile as a
//! vulnerability (compile-time denial of service is the host's to bound),
//! and Cranelift cannot be interrupted once it runs. So the host bounds
//! compilation from outside:
//!
//! - **size**: a module (binary or WAT text) over
//!   [`CompileConfig::max_module_bytes`] is refused before it is parsed;
//! - **concurrency**: at most [`CompileConfig::max_concurrent`] compiles (and
//!   WAT parses) run at once, which bounds the CPU and memory compiling can
//!   take; up to [`CompileConfig::max_queued`] more wait, and beyond that a
//!   load fails at once with `overloaded`;
//! - **time**: with [`CompileConfig::timeout`], a load that waited and
//!   compiled for longer fails with `timeout`. The compile itself runs to
//!   its end on its own thread (nothing can stop Cranelift), keeps its
//!   place among the concurrent ones until then, and its result is thrown
//!   away, so a module over the limit is refused every time, not cached on
//!   the second try.
//!
//! Loads that find their module in memory or in the disk cache pass no gate.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Default largest module: 128 MiB (binary or WAT text).
pub const DEFAULT_MAX_MODULE_BYTES: u64 = 128 << 20;
/// Default number of loads that may wait for a compile slot.
pub const DEFAULT_MAX_QUEUED_COMPILES: usize = 256;

/// Bounds on compilation (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompileConfig {
    /// Largest module accepted, in bytes, as given (binary or WAT text).
    pub max_module_bytes: u64,
    /// Compiles (and WAT parses) running at once. Each one may itself use
    /// every core (wasmtime compiles functions in parallel).
    pub max_concurrent: usize,
    /// Loads waiting for a compile slot; one more fails with `overloaded`.
    pub max_queued: usize,
    /// Longest a load may wait for a slot and compile; `None`: no limit.
    pub timeout: Option<Duration>,
}

impl Default for CompileConfig {
    fn default() -> Self {
        CompileConfig {
            max_module_bytes: DEFAULT_MAX_MODULE_BYTES,
            max_concurrent: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_queued: DEFAULT_MAX_QUEUED_COMPILES,
            timeout: None,
        }
    }
}

impl CompileConfig {
    /// Sets the largest module accepted.
    pub fn max_module_bytes(mut self, bytes: u64) -> Self {
        self.max_module_bytes = bytes;
        self
    }

    /// Sets how many compiles run at once (at least 1).
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n.max(1);
        self
    }

    /// Sets how many loads may wait for a compile slot.
    pub fn max_queued(mut self, n: usize) -> Self {
        self.max_queued = n;
        self
    }

    /// Sets (or with `None` removes) the compile deadline.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Refuses a module of `len` bytes if it is over the size limit.
    pub(crate) fn check_size(&self, len: usize) -> Result<()> {
        if len as u64 > self.max_module_bytes {
            return Err(Error::bad_input(format!(
                "the module is {len} bytes, over the limit of {} bytes \
                 (CompileConfig::max_module_bytes; `wasmhost serve --max-module-size`)",
                self.max_module_bytes
            )));
        }
        Ok(())
    }

    /// The deadline of a load starting now.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.timeout.map(|t| Instant::now() + t)
    }

    /// The error of a load past its deadline.
    pub(crate) fn timed_out(&self) -> Error {
        Error::CompileTimeout {
            limit: self.timeout.unwrap_or_default(),
        }
    }
}

/// Counts compiles running and waiting; hands out [`Permit`]s.
#[derive(Debug)]
pub(crate) struct CompileGate {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    max_running: usize,
    max_waiting: usize,
    counts: Mutex<Counts>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct Counts {
    running: usize,
    waiting: usize,
}

fn lock(m: &Mutex<Counts>) -> MutexGuard<'_, Counts> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A place among the compiles running; freed when dropped. It can move to
/// another thread with the compile it guards.
#[derive(Debug)]
pub(crate) struct Permit {
    shared: Arc<Shared>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        lock(&self.shared.counts).running -= 1;
        self.shared.freed.notify_one();
    }
}

impl CompileGate {
    pub(crate) fn new(config: &CompileConfig) -> Self {
        CompileGate {
            shared: Arc::new(Shared {
                max_running: config.max_concurrent.max(1),
                max_waiting: config.max_queued,
                counts: Mutex::default(),
                freed: Condvar::new(),
            }),
        }
    }

    /// Waits for a place among the compiles running, until `deadline`.
    /// Fails at once with `overloaded` when the queue is full, and with
    /// `timed_out()` when the deadline passes first.
    pub(crate) fn enter(
        &self,
        deadline: Option<Instant>,
        timed_out: impl FnOnce() -> Error,
    ) -> Result<Permit> {
        let shared = &self.shared;
        let mut counts = lock(&shared.counts);
        if counts.running >= shared.max_running {
            if counts.waiting >= shared.max_waiting {
                return Err(Error::Overloaded {
                    message: format!(
                        "{} modules are compiling and {} are waiting to: try again later \
                         (CompileConfig::max_concurrent and max_queued; \
                         `wasmhost serve --max-compiles/--compile-queue`)",
                        counts.running, counts.waiting
                    ),
                });
            }
            counts.waiting += 1;
            while counts.running >= shared.max_running {
                counts = match deadline {
                    None => shared.freed.wait(counts).unwrap_or_else(|p| p.into_inner()),
                    Some(at) => {
                        let left = at.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            counts.waiting -= 1;
                            return Err(timed_out());
                        }
                        shared
                            .freed
                            .wait_timeout(counts, left)
                            .unwrap_or_else(|p| p.into_inner())
                            .0
                    }
                };
            }
            counts.waiting -= 1;
        }
        counts.running += 1;
        Ok(Permit {
            shared: shared.clone(),
        })
    }

    /// Compiles running and waiting now.
    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let c = lock(&self.shared.counts);
        (c.running, c.waiting)
    }
}

/// Runs `work` holding `permit`, within `deadline`: on the calling thread
/// when there is no deadline, else on a thread of its own that the caller
/// waits for until the deadline. Past it the caller gets `timed_out()`; the
/// thread finishes `work`, drops its result and only then frees the permit.
pub(crate) fn run_within<T: Send + 'static>(
    permit: Permit,
    deadline: Option<Instant>,
    timed_out: impl FnOnce() -> Error,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let Some(deadline) = deadline else {
        let out = work();
        drop(permit);
        return out;
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("wasmhost-compile".into())
        .spawn(move || {
            let out = work();
            // The receiver is gone when the caller gave up: the result is
            // dropped here, not cached.
            let _ = tx.send(out);
            drop(permit);
        })
        .map_err(|e| Error::internal(format!("cannot start a compile thread: {e}")))?;
    let left = deadline.saturating_duration_since(Instant::now());
    match rx.recv_timeout(left) {
        Ok(out) => out,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(timed_out()),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            Err(Error::internal("the compile thread ended without a result"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn config(running: usize, waiting: usize) -> CompileConfig {
        CompileConfig::default()
            .max_concurrent(running)
            .max_queued(waiting)
    }

    #[test]
    fn a_full_queue_is_refused_at_once_and_a_freed_slot_lets_one_waiter_in() {
        let gate = Arc::new(CompileGate::new(&config(1, 1)));
        let never = || unreachable!("no deadline was set");
        let first = gate.enter(None, never).expect("a free slot");
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.enter(None, || unreachable!()).map(drop))
        };
        while gate.counts() != (1, 1) {
            std::thread::yield_now();
        }
        let err = gate.enter(None, never).expect_err("queue is full");
        assert_eq!(err.code(), ErrorCode::Overloaded);
        assert!(
            err.to_string()
                .contains("1 modules are compiling and 1 are waiting")
        );
        drop(first);
        waiter
            .join()
            .expect("waiter")
            .expect("the waiter got the slot");
        assert_eq!(gate.counts(), (0, 0));
    }

    #[test]
    fn a_waiter_past_its_deadline_leaves_the_queue() {
        let cfg = config(1, 4).timeout(Some(Duration::from_millis(20)));
        let gate = CompileGate::new(&cfg);
        let held = gate.enter(None, || unreachable!()).expect("a free slot");
        let err = gate
            .enter(cfg.deadline(), || cfg.timed_out())
            .expect_err("the slot stays taken");
        assert_eq!(err.code(), ErrorCode::Timeout);
        assert_eq!(gate.counts(), (1, 0));
        drop(held);
        assert_eq!(gate.counts(), (0, 0));
    }

    #[test]
    fn work_past_its_deadline_keeps_its_permit_until_it_ends() {
        let cfg = config(1, 0).timeout(Some(Duration::from_millis(10)));
        let gate = CompileGate::new(&cfg);
        let permit = gate.enter(None, || unreachable!()).expect("a free slot");
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let err = run_within(
            permit,
            cfg.deadline(),
            || cfg.timed_out(),
            move || {
                wait.recv().ok();
                Ok(())
            },
        )
        .expect_err("the work waits past the deadline");
        assert_eq!(err.code(), ErrorCode::Timeout);
        assert!(err.to_string().contains("compiling"), "{err}");
        // Still running: the next load is refused (no queue), not let in.
        assert_eq!(gate.counts(), (1, 0));
        let refused = gate.enter(None, || unreachable!()).expect_err("slot taken");
        assert_eq!(refused.code(), ErrorCode::Overloaded);
        go.send(()).expect("the work is waiting");
        while gate.counts() != (0, 0) {
            std::thread::yield_now();
        }
    }

    #[test]
    fn sizes_over_the_limit_are_bad_input() {
        let cfg = CompileConfig::default().max_module_bytes(10);
        assert!(cfg.check_size(10).is_ok());
        let err = cfg.check_size(11).expect_err("over");
        assert_eq!(err.code(), ErrorCode::BadInput);
        assert!(err.to_string().contains("11 bytes"), "{err}");
    }
}
