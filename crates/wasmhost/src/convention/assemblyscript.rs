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
//! The imports such modules carry belong to this convention and are always
//! provided: `env.abort(message, file, line, column)` stops the guest with
//! `guest_error` and the message `message (file:line:column)`;
//! `env.trace(message, n, a0..a4)` is a debug log line; `env.seed()` (for
//! `Math.random`) needs the WASI random grant and is `capability_denied`
//! without it.

use wasmtime::{Caller, Extern, Memory};

use crate::error::{Error, Result, abort};
use crate::sandbox::{Handle, HostState, Sandbox};

/// The class id of `String` in every AssemblyScript runtime.
const STRING_ID: i32 = 2;

/// Most UTF-16 code units read from one string (the call's memory limit
/// bounds it anyway; this bounds host-side copies of a corrupted header).
const MAX_STRING_BYTES: u32 = 256 << 20;

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
            crate::module::func_type_string(f)
        ))
    }
}

fn memory(caller: &mut Caller<'_, HostState>) -> wasmtime::Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(wasmtime::Error::msg(
            "an AssemblyScript module must export its memory as `memory`",
        )),
    }
}

/// Reads the AssemblyScript string at `ptr` (UTF-16LE, length from the
/// object header). `None` for a null pointer.
fn read_string(data: &[u8], ptr: u32) -> std::result::Result<Option<String>, String> {
    if ptr == 0 {
        return Ok(None);
    }
    let header = ptr
        .checked_sub(4)
        .and_then(|h| data.get(h as usize..h as usize + 4))
        .ok_or_else(|| format!("string pointer {ptr} is outside the guest's memory"))?;
    let len = u32::from_le_bytes(header.try_into().map_err(|_| "short header")?);
    if len % 2 != 0 || len > MAX_STRING_BYTES {
        return Err(format!(
            "string at {ptr} has an impossible byte length {len}"
        ));
    }
    let bytes = data
        .get(ptr as usize..ptr as usize + len as usize)
        .ok_or_else(|| format!("string at {ptr} ({len} bytes) runs past the guest's memory"))?;
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units)
        .map(Some)
        .map_err(|_| format!("string at {ptr} is not valid UTF-16"))
}

/// Adds `env.abort`, `env.trace` and `env.seed` to a core linker.
pub(crate) fn add_to_linker(linker: &mut wasmtime::Linker<HostState>, random: bool) -> Result<()> {
    use crate::capabilities::link_setup;
    linker
        .func_wrap(
            "env",
            "abort",
            |mut c: Caller<'_, HostState>,
             msg: i32,
             file: i32,
             line: i32,
             col: i32|
             -> wasmtime::Result<()> {
                let mem = memory(&mut c)?;
                let data = mem.data(&c);
                let text = |p: i32| read_string(data, p as u32).ok().flatten();
                let message = text(msg).unwrap_or_else(|| "abort".to_string());
                let message = match text(file) {
                    Some(file) => format!("{message} ({file}:{line}:{col})"),
                    None => message,
                };
                Err(abort(Error::guest(message)))
            },
        )
        .map_err(link_setup)?;
    linker
        .func_wrap(
            "env",
            "trace",
            |mut c: Caller<'_, HostState>,
             msg: i32,
             n: i32,
             a0: f64,
             a1: f64,
             a2: f64,
             a3: f64,
             a4: f64|
             -> wasmtime::Result<()> {
                let mem = memory(&mut c)?;
                let text = read_string(mem.data(&c), msg as u32)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let args: Vec<String> = [a0, a1, a2, a3, a4]
                    .iter()
                    .take(n.clamp(0, 5) as usize)
                    .map(|a| a.to_string())
                    .collect();
                let message = if args.is_empty() {
                    text
                } else {
                    format!("{text} {}", args.join(", "))
                };
                c.data_mut().logs.push(crate::capabilities::LogRecord {
                    level: crate::capabilities::LogLevel::Debug,
                    message,
                });
                Ok(())
            },
        )
        .map_err(link_setup)?;
    if random {
        linker
            .func_wrap("env", "seed", || -> f64 {
                use std::hash::{BuildHasher, Hasher};
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_u64(0x5eed);
                (h.finish() >> 11) as f64
            })
            .map_err(link_setup)?;
    } else {
        linker
            .func_wrap("env", "seed", || -> wasmtime::Result<f64> {
                Err(abort(Error::CapabilityDenied {
                    capability: "random".to_string(),
                    detail: "the guest called `env.seed` (Math.random)".to_string(),
                }))
            })
            .map_err(link_setup)?;
    }
    Ok(())
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
        code: &crate::module::Code,
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
    let Some(Extern::Memory(mem)) = instance.get_export(&mut sb.store, "memory") else {
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
