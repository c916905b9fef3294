//! Process modes: guests that are programs, reading a message on stdin and
//! answering on stdout.
//!
//! - **Sync** ([`Module::process_sync`]): one message, one fresh instance.
//!   `_start` (or a component's `wasi:cli/run`) runs once with the message
//!   on stdin until EOF; its stdout is the reply. Exit status 0 is success,
//!   anything else an [`Error::Exit`] carrying the status, stdout and
//!   stderr. Nothing survives from one message to the next.
//! - **Async** ([`Instance::message`]): one instance kept alive, created
//!   without running `_start` (a reactor's `_initialize` runs, as for any
//!   [`Instance`]). Each message calls a named export of type `() -> ()`
//!   ([`POLL`] by default) with stdin bound to that message and stdout
//!   captured for that message alone: the host refills and drains the WASI
//!   pipes between messages, while memory and globals persist. A failure
//!   inside the guest (a trap, a limit, `proc_exit` with a non-zero status)
//!   is reported for that message, and the next one runs on a fresh
//!   instance ([`Instance::restarts`]).
//!
//! One executable can serve in both modes: a core module exporting both
//! `_start` and `poll`. Both modes need WASI granted; the reply is the
//! captured stdout (empty if stdout is not captured), moved into
//! [`Outcome::value`] — [`Outcome::stdout`] is then empty. Captured output
//! keeps its limit per message: writing past it fails that message with
//! `memory_limit`.
//!
//! ```
//! use wasmhost::{Capabilities, CallOptions, Runtime, RuntimeConfig, Source, Wasi};
//! # fn main() -> wasmhost::Result<()> {
//! let rt = Runtime::new(RuntimeConfig::default())?;
//! // `poll` copies stdin to stdout: 64 bytes at a time, 8 bytes of header.
//! let m = rt.load(&Source::Bytes(br#"(module
//!   (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
//!   (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
//!   (memory (export "memory") 1)
//!   (func (export "poll")
//!     (loop $more
//!       (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 64))
//!       (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
//!       (if (i32.load (i32.const 8)) (then
//!         (i32.store (i32.const 4) (i32.load (i32.const 8)))
//!         (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 12)))
//!         (br $more))))))"#.to_vec()))?
//!     .with_capabilities(Capabilities::none().with_wasi(Wasi::new()));
//! let mut process = m.instantiate(&CallOptions::default())?;
//! assert_eq!(process.message(wasmhost::POLL, "hello")?.value, b"hello");
//! assert_eq!(process.message(wasmhost::POLL, "again")?.value, b"again");
//! # Ok(()) }
//! ```

use bytes::Bytes;

use crate::call::{CallOptions, Outcome};
use crate::capabilities::wasi::Stdin;
use crate::convention::process::into_reply;
use crate::error::{Error, Result};
use crate::exec::{Exec, run_sync};
use crate::instance::Instance;
use crate::module::Module;

/// The export an async process is sent messages through unless told otherwise.
pub const POLL: &str = "poll";

impl Module {
    /// Sync process mode: runs the WASI command in a fresh sandbox with
    /// `message` on stdin (replacing `opts.stdin`) and returns its stdout as
    /// the value (see [`crate::process`]). A non-zero exit status is an
    /// [`Error::Exit`] with the status and the captured stderr.
    pub fn process_sync(
        &self,
        message: impl Into<Bytes>,
        opts: &CallOptions,
    ) -> Result<Outcome<Vec<u8>>> {
        run_sync(std::pin::pin!(process(
            self,
            message.into(),
            opts,
            Exec::Sync
        )))
    }

    /// [`Module::process_sync`] (the sync process *mode*: a fresh instance
    /// per message) through the async API: the guest runs on the caller's
    /// executor.
    pub async fn process_sync_async(
        &self,
        message: impl Into<Bytes>,
        opts: &CallOptions,
    ) -> Result<Outcome<Vec<u8>>> {
        process(self, message.into(), opts, Exec::Async).await
    }
}

/// Sync process mode, run by `exec`.
pub(crate) async fn process(
    module: &Module,
    message: Bytes,
    opts: &CallOptions,
    exec: Exec,
) -> Result<Outcome<Vec<u8>>> {
    let caps = opts.capabilities.as_ref().unwrap_or(&module.caps);
    if caps.wasi.is_none() {
        return Err(no_wasi(&module.name));
    }
    let opts = opts.clone().stdin(Stdin::Bytes(message));
    crate::module::fresh_run(module, &opts, exec)
        .await
        .map(into_reply)
}

impl Instance {
    /// Async process mode: calls `export` (a `() -> ()` function, usually
    /// [`POLL`]) with `message` as its whole stdin and returns what it
    /// wrote to stdout as the value (see [`crate::process`]). Memory and
    /// globals persist between messages; stdin and stdout do not.
    pub fn message(&mut self, export: &str, message: impl Into<Bytes>) -> Result<Outcome<Vec<u8>>> {
        let exec = self.exec;
        crate::exec::drive(exec, self.message_in(export, message.into()))
    }

    /// [`Instance::message`] through the async API.
    pub async fn message_async(
        &mut self,
        export: &str,
        message: impl Into<Bytes>,
    ) -> Result<Outcome<Vec<u8>>> {
        self.message_in(export, message.into()).await
    }
}

fn no_wasi(name: &str) -> Error {
    Error::bad_input(format!(
        "process mode needs WASI: grant it to {name} (Capabilities::with_wasi)"
    ))
}
