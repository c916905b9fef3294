//! Raw memory transfer, for embedders who define their own conventions.
//!
//! The guest exports a memory, an allocator and functions taking
//! `(ptr: i32, len: i32, extra...)`. A call:
//!
//! 1. allocates `len` bytes with the first allocator the module exports:
//!    `alloc(len) -> ptr`, `malloc(len) -> ptr`, or
//!    `cabi_realloc(0, 0, 1, len) -> ptr`;
//! 2. writes the input there and calls `f(ptr, len, extra...)`;
//! 3. reads the result, which is either one `i64` packing a pointer and a
//!    length as `(ptr << 32) | len` — the convention this module documents —
//!    or two `i32` results `(ptr, len)`. A packed 0 is an empty result.
//! 4. frees both buffers when the guest exports `dealloc(ptr, len)` or
//!    `free(ptr)` (a fresh sandbox is dropped after the call anyway).
//!
//! ```no_run
//! use wasmhost::{CallOptions, Runtime, RuntimeConfig, Source, Value};
//! # fn main() -> wasmhost::Result<()> {
//! let rt = Runtime::new(RuntimeConfig::default())?;
//! let m = rt.load(&Source::file("image-resize.wasm"))?;
//! let png = std::fs::read("in.png").unwrap();
//! let out = m.call_raw("resize", &png, &[Value::I32(64), Value::I32(64)], &CallOptions::default())?;
//! std::fs::write("out.png", out.value).unwrap();
//! # Ok(()) }
//! ```

use wasmtime::{Extern, Val};

use crate::call::Value;
use crate::error::{Error, Result};
use crate::sandbox::{Handle, Sandbox};

/// The allocator export a module offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Allocator {
    /// `alloc(len) -> ptr`
    Alloc,
    /// `malloc(len) -> ptr`
    Malloc,
    /// `cabi_realloc(old_ptr, old_len, align, new_len) -> ptr`
    CabiRealloc,
}

impl Allocator {
    pub(crate) fn find(m: &wasmtime::Module) -> Option<Self> {
        let sig = |name: &str, params: usize| {
            matches!(m.get_export(name), Some(wasmtime::ExternType::Func(f))
                if f.params().len() == params && f.params().all(|p| p.is_i32())
                    && f.results().len() == 1 && f.results().all(|r| r.is_i32()))
        };
        if sig("alloc", 1) {
            Some(Allocator::Alloc)
        } else if sig("malloc", 1) {
            Some(Allocator::Malloc)
        } else if sig("cabi_realloc", 4) {
            Some(Allocator::CabiRealloc)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Allocator::Alloc => "alloc",
            Allocator::Malloc => "malloc",
            Allocator::CabiRealloc => "cabi_realloc",
        }
    }
}

/// Checks that `f` is `(i32, i32, <extra>) -> i64` or `-> (i32, i32)`.
pub(crate) fn check_signature(
    f: &wasmtime::FuncType,
    extra: usize,
) -> std::result::Result<(), String> {
    let params: Vec<_> = f.params().collect();
    let results: Vec<_> = f.results().collect();
    let takes = params.len() == 2 + extra && params[..2].iter().all(|p| p.is_i32());
    let gives = (results.len() == 1 && results[0].is_i64())
        || (results.len() == 2 && results.iter().all(|r| r.is_i32()));
    if takes && gives {
        Ok(())
    } else {
        Err(format!(
            "a raw function takes (ptr: i32, len: i32{}) and returns a packed i64 or (i32, i32); this one is {}",
            if extra > 0 { ", ..." } else { "" },
            crate::code::func_type_string(f)
        ))
    }
}

/// [`Convention::Raw`](super::Convention::Raw).
pub(crate) struct Raw;

impl super::Calling for Raw {
    fn id(&self) -> super::Convention {
        super::Convention::Raw
    }

    fn names(&self) -> &'static [&'static str] {
        &["raw"]
    }

    fn fits(
        &self,
        code: &crate::code::Code,
        traits: &super::Traits,
        function: &str,
    ) -> std::result::Result<(), String> {
        super::core_of(code)?;
        if traits.allocator.is_none() {
            return Err(
                "it exports no allocator (`alloc`, `malloc` or `cabi_realloc`)".to_string(),
            );
        }
        check_signature(&super::core_func(code, function)?, 0)
    }

    fn call<'a>(
        &'a self,
        sb: &'a mut Sandbox,
        handle: Handle,
        traits: &'a super::Traits,
        function: &'a str,
        input: &'a [u8],
        _: crate::call::ArgsFormat,
    ) -> super::CallFuture<'a> {
        Box::pin(async move {
            call(sb, handle, traits, function, input, &[])
                .await
                .map(|b| super::Data::Bytes(b.into()))
        })
    }
}

/// Calls `function(ptr, len, extra...)` of an instantiated module.
pub(crate) async fn call(
    sb: &mut Sandbox,
    handle: Handle,
    traits: &super::Traits,
    function: &str,
    input: &[u8],
    extra: &[Value],
) -> Result<Vec<u8>> {
    let Handle::Core(instance) = handle else {
        return Err(Error::bad_input(
            "raw transfer needs a core module, not a component",
        ));
    };
    let Some(allocator) = traits.allocator else {
        return Err(Error::bad_input(format!(
            "`{}` exports no allocator (`alloc`, `malloc` or `cabi_realloc`) for raw transfer",
            sb.name
        )));
    };
    let (func, ty) = sb.export(instance, function)?;
    check_signature(&ty, extra.len())
        .map_err(|why| Error::bad_input(format!("`{function}`: {why}")))?;
    for (i, (p, a)) in ty.params().skip(2).zip(extra).enumerate() {
        if crate::call::ValueType::from_wasm(&p) != Some(a.ty()) {
            return Err(Error::bad_input(format!(
                "`{function}`: extra argument {i} must be {p}, given {}",
                a.ty()
            )));
        }
    }
    let Some(Extern::Memory(mem)) = instance.get_export(&mut sb.store, "memory") else {
        return Err(Error::bad_input(format!(
            "`{}` must export its memory as `memory` for raw transfer",
            sb.name
        )));
    };
    let len = i32::try_from(input.len())
        .map_err(|_| Error::bad_input("the input is longer than 2 GiB"))?;
    let alloc = instance
        .get_func(&mut sb.store, allocator.name())
        .ok_or_else(|| Error::internal("the allocator export disappeared"))?;
    let alloc_args: Vec<Val> = match allocator {
        Allocator::CabiRealloc => vec![Val::I32(0), Val::I32(0), Val::I32(1), Val::I32(len)],
        _ => vec![Val::I32(len)],
    };
    let mut ptr = [Val::I32(0)];
    sb.call_func(alloc, &alloc_args, &mut ptr).await?;
    let in_ptr = ptr[0].i32().unwrap_or(0);
    let bad = |message: String| Error::Trap {
        trap_code: None,
        message,
        backtrace: None,
    };
    mem.write(&mut sb.store, in_ptr as u32 as usize, input)
        .map_err(|_| {
            bad(format!(
                "`{}` returned {in_ptr}, outside the guest's memory",
                allocator.name()
            ))
        })?;
    let mut args = vec![Val::I32(in_ptr), Val::I32(len)];
    args.extend(extra.iter().map(|v| v.to_wasm()));
    let mut results = vec![Val::I32(0); ty.results().len()];
    sb.call_func(func, &args, &mut results).await?;
    let (out_ptr, out_len) = match results.as_slice() {
        [Val::I64(packed)] => ((*packed as u64 >> 32) as u32, *packed as u64 as u32),
        [Val::I32(p), Val::I32(l)] => (*p as u32, *l as u32),
        _ => return Err(Error::internal("raw result shape was checked")),
    };
    let out = if out_ptr == 0 && out_len == 0 {
        Vec::new()
    } else {
        let data = mem.data(&sb.store);
        data.get(out_ptr as usize..out_ptr as usize + out_len as usize)
            .ok_or_else(|| {
                bad(format!(
                    "`{function}` returned {out_len} bytes at {out_ptr}, outside the guest's {}-byte memory",
                    data.len()
                ))
            })?
            .to_vec()
    };
    free(sb, instance, in_ptr, len).await?;
    if out_ptr != 0 {
        free(sb, instance, out_ptr as i32, out_len as i32).await?;
    }
    Ok(out)
}

async fn free(sb: &mut Sandbox, instance: wasmtime::Instance, ptr: i32, len: i32) -> Result<()> {
    if let Ok(dealloc) = instance.get_typed_func::<(i32, i32), ()>(&mut sb.store, "dealloc") {
        sb.call_typed(&dealloc, (ptr, len)).await
    } else if let Ok(free) = instance.get_typed_func::<i32, ()>(&mut sb.store, "free") {
        sb.call_typed(&free, ptr).await
    } else {
        Ok(())
    }
}
