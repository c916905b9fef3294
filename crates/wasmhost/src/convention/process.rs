//! The process modes of [`crate::process`] as a calling convention: the
//! input is the guest's stdin, the result what it wrote to stdout. `_start`
//! runs the WASI command (sync mode: a core module's `_start` or a
//! component's `wasi:cli/run`, exit status 0 is success), any other
//! `() -> ()` export is an async-mode message handler. Never detected: a
//! caller asks for it (`CallOptions::convention`, `--abi process`, an
//! actor's spec).

use bytes::Bytes;
use wasmtime_wasi::I32Exit;

use crate::call::{ArgsFormat, Outcome};
use crate::code::Code;
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::sandbox::{Handle, Sandbox};

use super::{CallFuture, Calling, Convention, Data, Traits};

/// [`Convention::Process`].
pub(crate) struct Process;

impl Calling for Process {
    fn id(&self) -> Convention {
        Convention::Process
    }

    fn names(&self) -> &'static [&'static str] {
        &["process", "stdio"]
    }

    fn detected(&self) -> bool {
        false
    }

    fn fits(&self, code: &Code, _: &Traits, function: &str) -> std::result::Result<(), String> {
        if function == "_start" {
            return Ok(());
        }
        let f = super::core_func(code, function)?;
        if f.params().len() == 0 && f.results().len() == 0 {
            Ok(())
        } else {
            Err(format!(
                "a process export takes and returns nothing; `{function}` is {}",
                crate::code::func_type_string(&f)
            ))
        }
    }

    fn call<'a>(
        &'a self,
        sb: &'a mut Sandbox,
        handle: Handle,
        _: &'a super::Traits,
        function: &'a str,
        input: &'a [u8],
        _: ArgsFormat,
    ) -> CallFuture<'a> {
        Box::pin(async move {
            let message = Bytes::copy_from_slice(input);
            message_in(sb, handle, function, message).await?;
            // The reply is stdout, taken from the pipe (checked for an
            // overflow first, as the end of every call does).
            if let Some(overflow) = sb.captures.overflow() {
                return Err(overflow);
            }
            Ok(Data::Bytes(sb.captures.take_stdout().into()))
        })
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
                return Err(sb.missing_export(export));
            };
            let func = func.typed::<(), ()>(&sb.store).map_err(|_| {
                Error::bad_input(format!(
                    "export `{export}` of {} is {}; a message handler takes no arguments and returns nothing",
                    sb.name,
                    crate::code::func_type_string(&func.ty(&sb.store)),
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
