//! Admission control: at most `max_concurrent` requests run wasm at once,
//! at most `max_queue` wait for a slot, and the rest are turned away at once
//! with 503 and `Retry-After` — memory stays bounded however many clients
//! arrive. Waiting is bounded by the request's own deadline (the timeout
//! layer drops the waiter, which gives its queue place back).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ApiError, ServerCode};

/// Gauge: requests waiting for a slot.
pub const QUEUED: &str = "wasmhost_requests_queued";
/// Gauge: requests running.
pub const RUNNING: &str = "wasmhost_requests_running";
/// Counter: requests turned away (503).
pub const REJECTED: &str = "wasmhost_requests_rejected_total";

/// The slots and the queue.
#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    max_concurrent: usize,
    waiting: AtomicUsize,
    max_queue: usize,
}

/// A running request's slot; released on drop.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        metrics::gauge!(RUNNING).decrement(1.0);
    }
}

struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!(QUEUED).decrement(1.0);
    }
}

impl Admission {
    /// `max_concurrent` slots (at least one) and a queue of `max_queue`.
    pub fn new(max_concurrent: usize, max_queue: usize) -> Self {
        let max_concurrent = max_concurrent.max(1);
        Admission {
            slots: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            waiting: AtomicUsize::new(0),
            max_queue,
        }
    }

    /// A slot: at once if one is free, after waiting in the queue if there
    /// is room in it, else `overloaded`.
    pub async fn enter(&self) -> Result<Slot, ApiError> {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_queue {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    metrics::counter!(REJECTED).increment(1);
                    return Err(ApiError::server(
                        ServerCode::Overloaded,
                        format!(
                            "all {} worker slots are busy and {} requests are already waiting; retry later",
                            self.max_concurrent, self.max_queue
                        ),
                    ));
                }
                metrics::gauge!(QUEUED).increment(1.0);
                let _waiting = Waiting(&self.waiting);
                self.slots.clone().acquire_owned().await.map_err(|_| {
                    ApiError::server(ServerCode::ShuttingDown, "the server is shutting down")
                })?
            }
        };
        metrics::gauge!(RUNNING).increment(1.0);
        Ok(Slot { _permit: permit })
    }

    /// Requests running now.
    pub fn running(&self) -> usize {
        self.max_concurrent - self.slots.available_permits()
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn beyond_slots_and_queue_requests_are_refused_then_admitted_again() {
        let a = Arc::new(Admission::new(2, 1));
        let s1 = a.enter().await.expect("slot 1");
        let _s2 = a.enter().await.expect("slot 2");
        let queued = {
            let a = a.clone();
            tokio::spawn(async move { a.enter().await.map(|_| ()) })
        };
        while a.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        let refused = a.enter().await.expect_err("queue full");
        assert_eq!(refused.code(), "overloaded");
        assert_eq!(a.running(), 2);
        drop(s1);
        queued
            .await
            .expect("task")
            .expect("admitted from the queue");
        assert_eq!(a.waiting(), 0);
        let _again = a.enter().await.expect("a slot after the queue drained");
    }
}
