//! Numeric invocation, fresh sandboxes, per-call overrides, concurrency.

use std::sync::Arc;

use wasmhost::{CallOptions, ErrorCode, Limits, ModuleKind, Value, ValueType};

use crate::load_wat;

#[test]
fn every_numeric_type_round_trips() {
    let m = load_wat("numeric");
    assert_eq!(m.kind(), ModuleKind::Core);
    let call = |f: &str, args: &[Value]| m.invoke(f, args).unwrap().value;
    assert_eq!(
        call("add_i32", &[Value::I32(i32::MAX), Value::I32(1)]),
        [Value::I32(i32::MIN)]
    );
    assert_eq!(
        call("add_i64", &[Value::I64(1 << 40), Value::I64(2)]),
        [Value::I64((1 << 40) + 2)]
    );
    assert_eq!(
        call("mul_f32", &[Value::F32(1.5), Value::F32(4.0)]),
        [Value::F32(6.0)]
    );
    assert_eq!(
        call("mul_f64", &[Value::F64(0.5), Value::F64(0.25)]),
        [Value::F64(0.125)]
    );
    assert_eq!(call("noop", &[]), []);
    assert_eq!(call("answer", &[]), [Value::I32(42)]);
    assert_eq!(
        call("pair", &[Value::I32(7)]),
        [Value::I32(7), Value::I32(8)]
    );
}

#[test]
fn text_arguments_are_parsed_against_the_signature() {
    let m = load_wat("numeric");
    let sig = m.signature("mul_f64").unwrap();
    assert_eq!(sig.params, [ValueType::F64, ValueType::F64]);
    let out = m
        .invoke_text("mul_f64", &["3", "0.5"], &CallOptions::default())
        .unwrap();
    assert_eq!(out.value, [Value::F64(1.5)]);
    let err = m
        .invoke_text("add_i32", &["1"], &CallOptions::default())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput);
    assert!(err.to_string().contains("takes 2 argument(s)"), "{err}");
    let err = m
        .invoke("add_i32", &[Value::I64(1), Value::I32(2)])
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
    let err = m.invoke("nope", &[]).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert!(
        err.to_string().contains("add_i32"),
        "lists the exports: {err}"
    );
}

#[test]
fn every_call_gets_a_fresh_instance() {
    let m = load_wat("numeric");
    for _ in 0..3 {
        assert_eq!(m.invoke("counter", &[]).unwrap().value, [Value::I32(1)]);
    }
}

#[test]
fn per_call_limits_replace_the_module_limits() {
    // The module's own limit is too small for its one page of memory...
    let m = load_wat("numeric").with_limits(Limits::default().max_memory_bytes(1000));
    let err = m.invoke("answer", &[]).unwrap_err();
    assert_eq!(err.code(), ErrorCode::MemoryLimit, "{err}");
    // ...and a call may bring its own.
    let opts = CallOptions::default().limits(Limits::default().max_memory_bytes(65536));
    let out = m.invoke_with("answer", &[], &opts).unwrap();
    assert_eq!(out.value, [Value::I32(42)]);
    assert_eq!(out.stats.peak_memory_bytes, 65536);
}

#[test]
fn one_module_serves_many_threads_at_once() {
    let m = Arc::new(load_wat("numeric"));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let m = m.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let out = m
                        .invoke("add_i32", &[Value::I32(t), Value::I32(i)])
                        .unwrap();
                    assert_eq!(out.value, [Value::I32(t + i)]);
                    assert_eq!(m.invoke("counter", &[]).unwrap().value, [Value::I32(1)]);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    assert_eq!(m.stats().calls, 8 * 200 * 2);
    assert_eq!(m.stats().errors, 0);
}

#[test]
fn imports_and_exports_are_listed() {
    let m = crate::load_wat("log");
    let imports = m.imports();
    assert_eq!(imports.len(), 1);
    assert_eq!(
        (imports[0].module.as_str(), imports[0].name.as_str()),
        ("wasmhost", "log")
    );
    assert!(
        imports[0].ty.starts_with("func (i32, i32, i32)"),
        "{}",
        imports[0].ty
    );
    let exports: Vec<String> = m.exports().into_iter().map(|e| e.name).collect();
    assert!(exports.contains(&"run".to_string()) && exports.contains(&"memory".to_string()));
}

#[test]
fn reactors_are_initialized_before_each_call() {
    // `_initialize` sets the global to 100; `get` reads it.
    let m = load_wat("reactor");
    assert_eq!(m.invoke("get", &[]).unwrap().value, [Value::I32(100)]);
    assert_eq!(m.invoke("get", &[]).unwrap().value, [Value::I32(100)]);
}
