//! Host functions for core modules: typed, with access to the guest's
//! memory, async, granted set by set.

use wasmhost::{Capabilities, ErrorCode, HostFunctions, HostState, Source, Value, ValueType};
use wasmtime::{Caller, Extern};

use crate::runtime;

/// Imports `host.add`, `host.upper(ptr, len)` (upper-cases guest memory in
/// place) and `host.fetch(i64) -> i64` (async).
const GUEST: &str = r#"(module
  (import "host" "add" (func $add (param i32 i32) (result i32)))
  (import "host" "upper" (func $upper (param i32 i32)))
  (import "host" "fetch" (func $fetch (param i64) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello")
  (func (export "sum") (param i32 i32) (result i32) local.get 0 local.get 1 call $add)
  (func (export "shout") (result i32)
    i32.const 16 i32.const 5 call $upper
    i32.const 16 i32.load8_u)
  (func (export "fetch") (param i64) (result i64) local.get 0 call $fetch))"#;

fn set() -> HostFunctions {
    HostFunctions::new("demo")
        .core("host", "add", |a: i32, b: i32| a.wrapping_add(b))
        .core(
            "host",
            "upper",
            |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
                let Some(Extern::Memory(mem)) = caller.get_export("memory") else {
                    return Err(wasmtime::Error::msg("no memory"));
                };
                let range = ptr as usize..(ptr as usize + len as usize);
                let data = mem
                    .data_mut(&mut caller)
                    .get_mut(range)
                    .ok_or_else(|| wasmtime::Error::msg("out of bounds"))?;
                data.make_ascii_uppercase();
                Ok(())
            },
        )
        .core_async(
            "host",
            "fetch",
            &[ValueType::I64],
            &[ValueType::I64],
            |args| async move {
                match args[0] {
                    Value::I64(k) if k >= 0 => Ok(vec![Value::I64(k * 10)]),
                    _ => Err("no such key".to_string()),
                }
            },
        )
}

#[test]
fn typed_memory_and_async_host_functions() {
    let rt = runtime();
    rt.add_host_functions(set()).unwrap();
    let m = rt
        .load(&Source::Bytes(GUEST.into()))
        .unwrap()
        .with_capabilities(Capabilities::none().with_host_functions("demo"));
    assert_eq!(
        m.invoke("sum", &[Value::I32(2), Value::I32(40)])
            .unwrap()
            .value,
        [Value::I32(42)]
    );
    assert_eq!(
        m.invoke("shout", &[]).unwrap().value,
        [Value::I32(i32::from(b'H'))]
    );
    assert_eq!(
        m.invoke("fetch", &[Value::I64(4)]).unwrap().value,
        [Value::I64(40)]
    );
    // A failing host function traps the guest with the host's message.
    let e = m.invoke("fetch", &[Value::I64(-1)]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Trap, "{e}");
    assert!(
        e.to_string()
            .contains("host function `host::fetch`: no such key"),
        "{e}"
    );
}

#[test]
fn host_functions_are_offered_only_where_granted() {
    let rt = runtime();
    rt.add_host_functions(set()).unwrap();
    let m = rt.load(&Source::Bytes(GUEST.into())).unwrap();
    let e = m
        .invoke("sum", &[Value::I32(1), Value::I32(2)])
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::LinkError, "{e}");
    for name in ["host::add", "host::upper", "host::fetch"] {
        assert!(e.to_string().contains(name), "{name} missing from {e}");
    }
    // Granting a set nobody registered says so.
    let e = m
        .clone()
        .with_capabilities(Capabilities::none().with_host_functions("nope"))
        .invoke("sum", &[Value::I32(1), Value::I32(2)])
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound, "{e}");
    assert!(e.to_string().contains("never registered"), "{e}");
    // A name is registered once.
    let e = rt
        .add_host_functions(HostFunctions::new("demo"))
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadInput, "{e}");
    // Trapping stubs instead of a link error: only a call that reaches one fails.
    let m = m.with_capabilities(Capabilities::none().with_trap_unknown_imports(true));
    let e = m
        .invoke("sum", &[Value::I32(1), Value::I32(2)])
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Trap, "{e}");
}
