//! AssemblyScript string exports.
//!
//! A module built by `asc --exportRuntime` exports its runtime: `__new`,
//! `__pin`, `__unpin`, `__collect`. An export `f(s: string): string` is
//! called like this:
//!
//! 1. `ptr = __new(byteLength, 2)` (class id 2 is `String`), and the
//!    argument is written at `ptr` as UTF-16LE;
//! 2. `__pin(ptr)` keeps the garbage collector off it (where `__pin` is
//!    exported; the `stub` runtime has no collector);
//! 3. `result = f(ptr)`; the result's byte length is the `rtSize` field of
//!    its object header, the `u32` at `result - 4`; 0 is `null`;
//! 4. the result is read as UTF-16LE, then `__unpin(ptr)`.
//!
//! This works with `--runtime stub`, `minimal` and `incremental`.
//!
//! The imports such modules carry (`env.abort`, `env.trace`, `env.seed`)
//! belong to this convention and are always provided, by
//! `kernel/assemblyscript.rs`.

use crate::error::{Error, Result};
use crate::kernel::assemblyscript::{add_to_linker, read_string};
use crate::sandbox::{Handle, Sandbox};
use crate::state::HostState;

/// The class id of `String` in every AssemblyScript runtime.
const STRING_ID: i32 = 2;

/// Checks that `f` can be a string export: one i32 (a string pointer) in,
/// one i32 out; or nothing in.
pub(crate) fn check_signature(f: &wasmtime::FuncType) -> std::result::Result<(), String> {
    let params: Vec<_> = f.params().collect();
    let results: Vec<_> = f.results().collect();
    let ok = params.len() <= 1
        && params.iter().all(|p| p.is_i32())
        && results.len() == 1
        && results[0].is_i32();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "an AssemblyScript string export takes a string (i32) and returns one; this one is {}",
            crate::code::func_type_string(f)
        ))
    }
}

/// [`Convention::AssemblyScript`](super::Convention::AssemblyScript).
pub(crate) struct AssemblyScript;

impl super::Calling for AssemblyScript {
    fn id(&self) -> super::Convention {
        super::Convention::AssemblyScript
    }

    fn names(&self) -> &'static [&'static str] {
        &["assemblyscript", "as"]
    }

    fn fits(
        &self,
        code: &crate::code::Code,
        traits: &super::Traits,
        function: &str,
    ) -> std::result::Result<(), String> {
        super::core_of(code)?;
        if !traits.assemblyscript {
            return Err(
                "it does not export `__new` (build with `asc --exportRuntime`)".to_string(),
            );
        }
        check_signature(&super::core_func(code, function)?)
    }

    fn link(
        &self,
        core: &mut wasmtime::Linker<HostState>,
        key: &crate::capabilities::GrantKey,
    ) -> Result<()> {
        add_to_linker(core, key.random())
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
            let text = std::str::from_utf8(input).map_err(|e| {
                Error::bad_input(format!(
                    "an AssemblyScript string argument must be UTF-8 text: {e}"
                ))
            })?;
            call(sb, handle, function, text).await.map(|s| match s {
                Some(s) => super::Data::Text(s),
                None => super::Data::None,
            })
        })
    }
}

/// Calls string export `function` with `arg`; `None` when it returned `null`.
pub(crate) async fn call(
    sb: &mut Sandbox,
    handle: Handle,
    function: &str,
    arg: &str,
) -> Result<Option<String>> {
    let Handle::Core(instance) = handle else {
        return Err(Error::bad_input(
            "an AssemblyScript module is a core module, not a component",
        ));
    };
    let (func, ty) = sb.export(instance, function)?;
    check_signature(&ty).map_err(|why| Error::bad_input(format!("`{function}`: {why}")))?;
    let module_name = sb.name.clone();
    let runtime_missing = |name: &str| {
        Error::bad_input(format!(
            "`{module_name}` does not export `{name}` with the AssemblyScript runtime's type (build with `asc --exportRuntime`)",
        ))
    };
    let new = instance
        .get_typed_func::<(i32, i32), i32>(&mut sb.store, "__new")
        .map_err(|_| runtime_missing("__new"))?;
    let pin = instance
        .get_typed_func::<i32, i32>(&mut sb.store, "__pin")
        .ok();
    let unpin = instance
        .get_typed_func::<i32, ()>(&mut sb.store, "__unpin")
        .ok();
    let Some(wasmtime::Extern::Memory(mem)) = instance.get_export(&mut sb.store, "memory") else {
        return Err(runtime_missing("memory"));
    };

    let takes_arg = ty.params().len() == 1;
    let mut arg_ptr = 0;
    if takes_arg {
        let units: Vec<u8> = arg.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let len = i32::try_from(units.len())
            .map_err(|_| Error::bad_input("the string argument is longer than 2 GiB"))?;
        arg_ptr = sb.call_typed(&new, (len, STRING_ID)).await?;
        mem.write(&mut sb.store, arg_ptr as u32 as usize, &units)
            .map_err(|_| Error::Trap {
                trap_code: None,
                message: format!("`__new` returned {arg_ptr}, outside the guest's memory"),
                backtrace: None,
            })?;
        if let Some(pin) = &pin {
            sb.call_typed(pin, arg_ptr).await?;
        }
    }
    let args = [wasmtime::Val::I32(arg_ptr)];
    let mut result = [wasmtime::Val::I32(0)];
    sb.call_func(func, &args[..ty.params().len()], &mut result)
        .await?;
    let ptr = result[0].i32().unwrap_or(0) as u32;
    let out = read_string(mem.data(&sb.store), ptr).map_err(|why| Error::Trap {
        trap_code: None,
        message: format!("`{function}` returned a bad string: {why}"),
        backtrace: None,
    })?;
    if takes_arg && let Some(unpin) = &unpin {
        sb.call_typed(unpin, arg_ptr).await?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_read_from_their_header() {
        let mut mem = vec![0u8; 64];
        let s = "Zoë 🌍";
        let units: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
        mem[16..20].copy_from_slice(&(units.len() as u32).to_le_bytes());
        mem[20..20 + units.len()].copy_from_slice(&units);
        assert_eq!(read_string(&mem, 20).unwrap().as_deref(), Some(s));
        assert_eq!(read_string(&mem, 0).unwrap(), None);
        assert!(read_string(&mem, 2).is_err());
        mem[16..20].copy_from_slice(&1000u32.to_le_bytes());
        assert!(read_string(&mem, 20).unwrap_err().contains("past"));
    }
}
