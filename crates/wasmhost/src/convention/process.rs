//! The process modes of [`crate::process`] as a calling convention: the
//! input is the guest's stdin, the result what it wrote to stdout. `_start`
//! runs the WASI command (sync mode: a core module's `_start` or a
//! component's `wasi:cli/run`, exit status 0 is success), any other
//! `() -> ()` export is an async-mode message handler. Never detected: a
//! caller asks for it (`CallOptions::convention`, `--abi process`, an
//! actor's spec).

use crate::call::ArgsFormat;
use crate::module::Code;
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
                crate::module::func_type_string(&f)
            ))
        }
    }

    fn call<'a>(
        &'a self,
        sb: &'a mut Sandbox,
        handle: Handle,
        function: &'a str,
        input: &'a [u8],
        _: ArgsFormat,
    ) -> CallFuture<'a> {
        Box::pin(async move {
            let message = bytes::Bytes::copy_from_slice(input);
            crate::process::message_in(sb, handle, function, message).await?;
            // The reply is stdout, taken from the pipe (checked for an
            // overflow first, as the end of every call does).
            if let Some(overflow) = sb.captures.overflow() {
                return Err(overflow);
            }
            Ok(Data::Bytes(sb.captures.take_stdout().into()))
        })
    }
}
