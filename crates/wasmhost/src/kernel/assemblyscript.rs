//! AssemblyScript's `env`: the host side of the AssemblyScript string
//! convention ([`crate::convention::assemblyscript`]), linked for every core
//! module.
//!
//! `env.abort(message, file, line, column)` stops the guest with
//! `guest_error` and the message `message (file:line:column)`;
//! `env.trace(message, n, a0..a4)` is a debug log line (through the log
//! capability's buffer); `env.seed()` (for `Math.random`) needs the WASI
//! random grant and is `capability_denied` without it. No state of its own.

use wasmtime::{Caller, Extern, Memory};

use crate::capabilities::log::LogHost;
use crate::capabilities::{LogLevel, LogRecord, link_setup};
use crate::error::{Error, Result, abort};

/// Most UTF-16 code units read from one string (the call's memory limit
/// bounds it anyway; this bounds host-side copies of a corrupted header).
const MAX_STRING_BYTES: u32 = 256 << 20;

fn memory<T>(caller: &mut Caller<'_, T>) -> wasmtime::Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(wasmtime::Error::msg(
            "an AssemblyScript module must export its memory as `memory`",
        )),
    }
}

/// Reads the AssemblyScript string at `ptr` (UTF-16LE, length from the
/// object header). `None` for a null pointer.
pub(crate) fn read_string(data: &[u8], ptr: u32) -> std::result::Result<Option<String>, String> {
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
pub(crate) fn add_to_linker<T: LogHost>(
    linker: &mut wasmtime::Linker<T>,
    random: bool,
) -> Result<()> {
    linker
        .func_wrap(
            "env",
            "abort",
            |mut c: Caller<'_, T>,
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
            |mut c: Caller<'_, T>,
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
                c.data_mut().logs().push(LogRecord {
                    level: LogLevel::Debug,
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
