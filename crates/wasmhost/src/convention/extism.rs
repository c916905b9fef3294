//! The Extism plugin ABI as a calling convention: plugins built with any
//! Extism PDK run unmodified. The host functions they import are the
//! Extism kernel's (`kernel/extism.rs`); this file tells plugin
//! functions apart and calls them.
//!
//! An Extism plugin exports functions of type `() -> i32` (or `() -> ()`)
//! and imports what it needs from `extism:host/env`.
//!
//! A call: kernel memory is reset, the input is set, the export is called;
//! a non-zero return or an error message set by the plugin becomes
//! `guest_error` with the plugin's message, otherwise the output is the
//! result.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::kernel::extism::add_to_linker;
use crate::sandbox::{Handle, Sandbox};
use crate::state::HostState;

pub use crate::kernel::extism::{ENV_MODULE, MAX_VAR_BYTES, USER_MODULE};

/// Checks that `f` has an Extism plugin function's type.
pub(crate) fn check_signature(f: &wasmtime::FuncType) -> std::result::Result<(), String> {
    let results: Vec<wasmtime::ValType> = f.results().collect();
    if f.params().len() == 0 && (results.is_empty() || (results.len() == 1 && results[0].is_i32()))
    {
        Ok(())
    } else {
        Err(format!(
            "an Extism plugin function takes nothing and returns an i32; this one is {}",
            crate::code::func_type_string(f)
        ))
    }
}

/// [`Convention::Extism`](super::Convention::Extism).
pub(crate) struct Extism;

impl super::Calling for Extism {
    fn id(&self) -> super::Convention {
        super::Convention::Extism
    }

    fn names(&self) -> &'static [&'static str] {
        &["extism", "plugin"]
    }

    fn fits(
        &self,
        code: &crate::code::Code,
        traits: &super::Traits,
        function: &str,
    ) -> std::result::Result<(), String> {
        super::core_of(code)?;
        if !traits.extism {
            return Err("it imports nothing from `extism:host/env`".to_string());
        }
        check_signature(&super::core_func(code, function)?)
    }

    fn link(
        &self,
        core: &mut wasmtime::Linker<HostState>,
        key: &crate::capabilities::GrantKey,
    ) -> Result<()> {
        add_to_linker(core, key.kv())
    }

    fn call<'a>(
        &'a self,
        sb: &'a mut Sandbox,
        handle: Handle,
        _: &'a super::Traits,
        function: &'a str,
        input: &'a [u8],
        _: crate::call::ArgsFormat,
    ) -> super::CallFuture<'a> {
        Box::pin(async move {
            call(sb, handle, function, input)
                .await
                .map(super::Data::Bytes)
        })
    }
}

/// Calls plugin function `function` with `input`.
pub(crate) async fn call(
    sb: &mut Sandbox,
    handle: Handle,
    function: &str,
    input: &[u8],
) -> Result<Bytes> {
    let Handle::Core(instance) = handle else {
        return Err(Error::bad_input(
            "an Extism plugin is a core module, not a component",
        ));
    };
    let (func, ty) = sb.export(instance, function)?;
    check_signature(&ty).map_err(|why| Error::bad_input(format!("`{function}`: {why}")))?;
    sb.store
        .data_mut()
        .plugin
        .kernel
        .reset(Bytes::copy_from_slice(input));
    let mut results = [wasmtime::Val::I32(0)];
    let n = ty.results().len();
    let result = sb.call_func_raw(func, &[], &mut results[..n]).await;
    let kernel = &sb.store.data().plugin.kernel;
    let message = kernel.error_message();
    match result {
        Err(e) => {
            let err = sb.classify(e);
            // A plugin that set an error and then trapped said why first.
            Err(match (message, err) {
                (Some(message), Error::Trap { .. }) => Error::Guest {
                    message,
                    status: None,
                },
                (_, err) => err,
            })
        }
        Ok(()) => {
            let status = results[0].i32().filter(|_| n == 1).unwrap_or(0);
            if let Some(message) = message {
                return Err(Error::Guest {
                    message,
                    status: Some(status),
                });
            }
            if status != 0 {
                return Err(Error::Guest {
                    message: format!(
                        "`{function}` returned {status} without setting an error message"
                    ),
                    status: Some(status),
                });
            }
            kernel.output()
        }
    }
}
