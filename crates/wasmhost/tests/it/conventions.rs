//! Convention detection, numeric calls through JSON, raw memory transfer
//! (`guests/wat/raw.wat`) and typed results.

use wasmhost::{CallOptions, Convention, Data, ErrorCode, Value};

use crate::{load_wat, runtime};

#[test]
fn numeric_exports_take_json_arguments() {
    let m = load_wat("numeric");
    let out = m.call("add_i32", "[40, 2]").unwrap();
    assert_eq!(out.value, Data::Numbers(vec![Value::I32(42)]));
    assert_eq!(out.value.integer().unwrap(), 42);
    assert_eq!(
        m.call("mul_f64", "[0.5, 0.25]")
            .unwrap()
            .value
            .json()
            .unwrap(),
        0.125
    );
    assert_eq!(
        m.call("pair", "7").unwrap().value.json().unwrap(),
        serde_json::json!([7, 8])
    );
    let e = m.call("add_i32", "[1]").unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadInput, "{e}");
}

#[test]
fn raw_transfer_through_the_guest_allocator() {
    let m = load_wat("raw");
    let out = m
        .call_raw("reverse", b"hello", &[], &CallOptions::default())
        .unwrap();
    assert_eq!(out.value, b"olleh");
    // Detected for `f(ptr, len) -> i64` when the module has an allocator.
    let out = m.call("reverse", "abc").unwrap();
    assert_eq!(&*out.value.bytes(), b"cba");
    // Extra arguments after (ptr, len).
    let out = m
        .call_raw("repeat", b"ab", &[Value::I32(3)], &CallOptions::default())
        .unwrap();
    assert_eq!(out.value, b"ababab");
    let big = vec![7u8; 200_000];
    let out = m
        .call_raw("reverse", &big, &[], &CallOptions::default())
        .unwrap();
    assert_eq!(out.value, big);
    // Both buffers are freed on a kept instance.
    let mut i = m.instantiate(&CallOptions::default()).unwrap();
    i.call_raw("reverse", b"xy", &[]).unwrap();
    i.call_raw("reverse", b"xy", &[]).unwrap();
    // A pointer outside memory is refused, not read.
    let e = m
        .call_raw("wild", b"x", &[], &CallOptions::default())
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Trap, "{e}");
    assert!(e.to_string().contains("outside the guest's"), "{e}");
    let e = m
        .call_raw("repeat", b"x", &[Value::I64(1)], &CallOptions::default())
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadInput, "{e}");
}

#[test]
fn a_module_that_fits_no_convention_says_why_for_each() {
    let m = runtime()
        .load(&wasmhost::Source::Bytes(
            br#"(module (func (export "f") (param externref)))"#.to_vec(),
        ))
        .unwrap();
    let e = m.call("f", "").unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadInput, "{e}");
    let msg = e.to_string();
    for needle in [
        "component: it is a core module",
        "extism: it imports nothing from `extism:host/env`",
        "assemblyscript: it does not export `__new`",
        "raw: it exports no allocator",
        "numeric: `f` has parameters or results that are not numbers",
    ] {
        assert!(msg.contains(needle), "`{needle}` not in: {msg}");
    }
    let e = m.call("missing", "").unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound, "{e}");
}

#[test]
fn a_forced_convention_is_used() {
    let m = load_wat("raw");
    // `reverse` as a numeric function: (ptr, len) -> packed i64.
    let out = m
        .call_with(
            "reverse",
            "[1024, 0]",
            &CallOptions::default().convention(Convention::Numeric),
        )
        .unwrap();
    assert!(matches!(out.value, Data::Numbers(_)));
    let e = m
        .call_with(
            "reverse",
            "x",
            &CallOptions::default().convention(Convention::Extism),
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadInput, "{e}");
}

/// AssemblyScript's `env.seed` (behind `Math.random`) is random numbers:
/// denied without the grant, a number with it.
#[test]
fn assemblyscript_seed_needs_the_random_grant() {
    let m = runtime()
        .load(&wasmhost::Source::Bytes(
            br#"(module (import "env" "seed" (func $seed (result f64)))
                 (func (export "seed") (result f64) call $seed))"#
                .to_vec(),
        ))
        .unwrap();
    let e = m.invoke("seed", &[]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::CapabilityDenied, "{e}");
    let granted = m.with_capabilities(
        wasmhost::Capabilities::none().with_wasi(wasmhost::Wasi::new().random(true)),
    );
    let a = granted.invoke("seed", &[]).unwrap().value;
    assert!(
        matches!(a[..], [Value::F64(x)] if x.is_finite() && x >= 0.0),
        "{a:?}"
    );
}
