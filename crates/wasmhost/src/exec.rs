//! How a call is driven: on the caller's async executor, or to completion
//! on the calling thread.
//!
//! Every call path of the library is written once, as an `async fn` over a
//! [`crate::sandbox::Sandbox`]. The sandbox's [`Exec`] decides how wasm runs
//! inside it:
//!
//! * [`Exec::Async`] — the async API (`*_async` methods). Guests run on a
//!   fiber stack from the engine's pool (`call_async`), host functions that
//!   wait (async host functions, WASI preview 1 and 2) are awaited on the
//!   caller's executor, and a long-running guest yields to the executor at
//!   every epoch tick, so it never holds a worker thread for longer than a
//!   tick. Dropping the future stops the guest where it is and frees its
//!   instance slot and fiber stack.
//! * [`Exec::Sync`] — the blocking API. The very same `async fn`s run with
//!   wasmtime's synchronous entry points (`call`, `instantiate`) and the
//!   synchronous flavour of the linkers, so they never suspend: the future is
//!   polled once on the calling thread ([`run_sync`]), with no fiber, no
//!   executor and no thread hop. Async host functions are then waited for in
//!   place ([`block_on`]).
//!
//! The two need different linkers (a linker holding async host functions can
//! only be instantiated asynchronously), so linkers and `InstancePre`s are
//! cached per grant shape *and* [`Exec`].

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

/// How wasm runs in a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Exec {
    /// Synchronous entry points, on the calling thread.
    Sync,
    /// `*_async` entry points, on a fiber, yielding to the executor.
    Async,
}

/// Runs a future of the blocking API: one that, driving a sandbox in
/// [`Exec::Sync`], never waits. It is polled once on the calling thread;
/// should it ever be pending after all, it is driven to completion by
/// [`block_on`]. Callers pin the future where they make it
/// (`run_sync(pin!(f(...)))`): the state machine of a call is a few
/// kilobytes, and every move of it is a copy on the hot path.
pub(crate) fn run_sync<F>(mut fut: Pin<&mut F>) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if let Poll::Ready(out) = fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        return out;
    }
    block_on(fut)
}

/// Runs `fut` to completion from synchronous code: on the caller's tokio
/// runtime when there is a multi-threaded one (through `block_in_place`),
/// else on a small runtime of wasmhost's own (from a scoped thread when the
/// caller is inside a current-thread runtime, which cannot be blocked).
pub(crate) fn block_on<F>(fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| handle.block_on(fut))
        }
        Ok(_) => std::thread::scope(|s| {
            s.spawn(|| own_runtime().block_on(fut))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }),
        Err(_) => own_runtime().block_on(fut),
    }
}

fn own_runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("wasmhost-blocking")
            .enable_all()
            .build()
            .expect("invariant: a tokio runtime can be built (threads and an I/O driver)")
    })
}

/// Runs a future of flavour `exec` (a kept instance's call, say) from
/// blocking code.
pub(crate) fn drive<F>(exec: Exec, fut: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    match exec {
        Exec::Sync => run_sync(std::pin::pin!(fut)),
        Exec::Async => block_on(fut),
    }
}
