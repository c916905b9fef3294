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
use wasmtime_wasi::I32Exit;

use crate::call::{CallOptions, Outcome, Stdin};
use crate::error::{Error, Result};
use crate::exec::{Exec, run_sync};
use crate::instance::Instance;
use crate::module::Module;
use crate::sandbox::{Handle, Sandbox};

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
    crate::sandbox::run_command(module, &opts, exec)
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
        crate::instance::drive(exec, self.message_in(export, message.into()))
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

/// Moves the captured stdout into the value.
pub(crate) fn into_reply<T>(mut out: Outcome<T>) -> Outcome<Vec<u8>> {
    Outcome {
        value: std::mem::take(&mut out.stdout),
        stdout: Vec::new(),
        stderr: out.stderr,
        logs: out.logs,
        stats: out.stats,
    }
}

fn no_wasi(name: &str) -> Error {
    Error::bad_input(format!(
        "process mode needs WASI: grant it to {name} (Capabilities::with_wasi)"
    ))
}

/// One message to a live instance: binds stdin, calls `export` (`_start`
/// of a component is its `wasi:cli/run`). `proc_exit(0)` ends the message
/// successfully.
pub(crate) async fn message_in(
    sb: &mut Sandbox,
    handle: Handle,
    export: &str,
    message: Bytes,
) -> Result<()> {
    let Some(stdin) = &sb.captures.stdin else {
        return Err(Error::bad_input(format!(
            "process mode needs WASI granted to {} and a stdin the host can set (not inherited)",
            sb.name
        )));
    };
    let stdin = stdin.clone();
    let run = match handle {
        Handle::Component(instance) if export == "_start" => {
            stdin.set(message);
            run_component(sb, &instance).await?
        }
        Handle::Component(_) => {
            return Err(Error::bad_input(format!(
                "`{}` is a component; only its `_start` (wasi:cli/run) is a process export",
                sb.name
            )));
        }
        Handle::Core(instance) => {
            let Some(func) = instance.get_func(&mut sb.store, export) else {
                return Err(crate::module::missing_export(
                    &sb.compiled,
                    &sb.name,
                    export,
                ));
            };
            let func = func.typed::<(), ()>(&sb.store).map_err(|_| {
                Error::bad_input(format!(
                    "export `{export}` of {} is {}; a message handler takes no arguments and returns nothing",
                    sb.name,
                    crate::module::func_type_string(&func.ty(&sb.store)),
                ))
            })?;
            stdin.set(message);
            sb.call_typed_raw(&func, ()).await
        }
    };
    match run {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.downcast_ref::<I32Exit>(), Some(I32Exit(0))) => Ok(()),
        Err(e) => Err(sb.classify(e)),
    }
}

/// `wasi:cli/run` of an instantiated component; the outer error is a
/// component that is not a command, the inner one the run's (a failed run
/// is exit status 1).
async fn run_component(
    sb: &mut Sandbox,
    instance: &wasmtime::component::Instance,
) -> Result<wasmtime::Result<()>> {
    let not_command = |e: wasmtime::Error| {
        Error::not_found(format!(
            "export `wasi:cli/run` in component {}: it is not a WASI command ({e})",
            sb.name
        ))
    };
    let run = match sb.exec {
        Exec::Sync => {
            let cmd = wasmtime_wasi::p2::bindings::sync::Command::new(&mut sb.store, instance)
                .map_err(not_command)?;
            cmd.wasi_cli_run().call_run(&mut sb.store)
        }
        Exec::Async => {
            let cmd = wasmtime_wasi::p2::bindings::Command::new(&mut sb.store, instance)
                .map_err(not_command)?;
            cmd.wasi_cli_run().call_run(&mut sb.store).await
        }
    };
    Ok(match run {
        Ok(Ok(())) => Ok(()),
        Ok(Err(())) => Err(wasmtime::Error::new(I32Exit(1))),
        Err(e) => Err(e),
    })
}
