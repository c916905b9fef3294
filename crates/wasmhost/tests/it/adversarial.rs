//! Hostile guests: each must fail with its exact code, leave the host alive,
//! and leave the module usable for the next call.

use std::time::{Duration, Instant};

use wasmhost::{Error, ErrorCode, Limits, Runtime, RuntimeConfig, Source, Value};

use crate::{load_wat, runtime, wat};

/// The benign export every adversarial WAT guest carries.
fn still_usable(m: &wasmhost::Module) {
    let out = m
        .invoke("ok", &[])
        .expect("the next call on the same module succeeds");
    assert_eq!(out.value, vec![Value::I32(1)]);
}

#[test]
fn infinite_loop_is_stopped_by_the_timeout() {
    let timeout = Duration::from_millis(200);
    let m = load_wat("loop").with_limits(Limits::default().timeout(Some(timeout)));
    let started = Instant::now();
    let err = m.invoke("run", &[]).unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    assert!(took >= timeout, "stopped early, after {took:?}");
    // How soon after the deadline is a benchmark's question (epoch ticks
    // of 10 ms); a loaded machine may be slow to schedule the stop, so this
    // only checks that the loop was stopped by its deadline at all.
    assert!(
        took < Duration::from_secs(10),
        "stopped late, after {took:?}"
    );
    still_usable(&m);
}

#[test]
fn memory_grow_bomb_hits_the_memory_limit() {
    let m = load_wat("grow").with_limits(Limits::default().max_memory_bytes(4 << 20));
    let err = m.invoke("run", &[]).unwrap_err();
    assert_eq!(err.code(), ErrorCode::MemoryLimit, "{err}");
    assert!(
        err.to_string().contains("4194304"),
        "names the limit: {err}"
    );
    // A single grow within the limit still works, and one past it returns -1.
    let out = m
        .invoke("grow_once", &[Value::I32(1)])
        .expect("grow within limit");
    assert_eq!(out.value, vec![Value::I32(1)]);
    assert_eq!(out.stats.peak_memory_bytes, 2 * 65536);
    let out = m
        .invoke("grow_once", &[Value::I32(1000)])
        .expect("grow past limit returns -1");
    assert_eq!(out.value, vec![Value::I32(-1)]);
    still_usable(&m);
}

#[test]
fn unbounded_recursion_is_a_stack_overflow() {
    let m = load_wat("recurse");
    let err = m.invoke("run", &[Value::I32(0)]).unwrap_err();
    assert_eq!(err.code(), ErrorCode::StackOverflow, "{err}");
    still_usable(&m);
}

#[test]
fn unreachable_is_a_trap_with_code_and_backtrace() {
    let m = load_wat("unreachable");
    let err = m.invoke("run", &[]).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Trap);
    match &err {
        Error::Trap {
            trap_code,
            backtrace,
            ..
        } => {
            assert_eq!(trap_code.as_deref(), Some("UnreachableCodeReached"));
            let bt = backtrace.as_deref().expect("backtrace");
            assert!(bt.contains("inner") && bt.contains("run"), "{bt}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    still_usable(&m);
}

#[test]
fn division_by_zero_is_a_trap() {
    let m = load_wat("divzero");
    let err = m
        .invoke("div", &[Value::I32(1), Value::I32(0)])
        .unwrap_err();
    match &err {
        Error::Trap { trap_code, .. } => {
            assert_eq!(trap_code.as_deref(), Some("IntegerDivisionByZero"))
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_eq!(
        m.invoke("div", &[Value::I32(7), Value::I32(2)])
            .unwrap()
            .value,
        vec![Value::I32(3)]
    );
    still_usable(&m);
}

#[test]
fn running_out_of_fuel() {
    let rt = Runtime::new(RuntimeConfig::default().fuel_metering(true)).unwrap();
    let m = rt
        .load(&wat("burn"))
        .unwrap()
        .with_limits(Limits::default().fuel(Some(10_000)));
    let err = m.invoke("burn", &[Value::I64(1_000_000)]).unwrap_err();
    assert_eq!(err.code(), ErrorCode::OutOfFuel, "{err}");
    let out = m
        .invoke("burn", &[Value::I64(10)])
        .expect("small burn fits");
    assert_eq!(out.value, vec![Value::I64(10)]);
    let used = out.stats.fuel_consumed.expect("fuel is reported");
    assert!(used > 10 && used < 10_000, "consumed {used}");
    // Fuel grows with the work done.
    let more = m
        .invoke("burn", &[Value::I64(100)])
        .unwrap()
        .stats
        .fuel_consumed
        .unwrap();
    assert!(more > used, "{more} <= {used}");
    still_usable(&m);
}

#[test]
fn fuel_without_metering_is_bad_input() {
    let m = load_wat("burn").with_limits(Limits::default().fuel(Some(10)));
    let err = m.invoke("burn", &[Value::I64(1)]).unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
}

#[test]
fn importing_ungranted_functions_is_a_link_error_listing_all() {
    let m = load_wat("import");
    let err = m.invoke("run", &[]).unwrap_err();
    match &err {
        Error::Link { missing, .. } => {
            let names: Vec<String> = missing
                .iter()
                .map(|m| format!("{}::{}", m.module, m.name))
                .collect();
            assert_eq!(
                names,
                [
                    "env::secret",
                    "env::other_thing",
                    "wasi_snapshot_preview1::fd_write"
                ],
                "{err}"
            );
        }
        other => panic!("expected a link error, got {other:?}"),
    }
    // Granting WASI satisfies one import; the others are still listed.
    let caps = wasmhost::Capabilities::none().with_wasi(wasmhost::Wasi::new());
    let err = m
        .clone()
        .with_capabilities(caps)
        .invoke("run", &[])
        .unwrap_err();
    match &err {
        Error::Link { missing, .. } => assert_eq!(missing.len(), 2, "{err}"),
        other => panic!("expected a link error, got {other:?}"),
    }
}

#[test]
fn a_trapping_start_function_is_a_trap() {
    let m = load_wat("start_trap");
    let err = m.invoke("run", &[]).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Trap, "{err}");
}

#[test]
fn table_growth_is_limited() {
    let m = load_wat("table").with_limits(Limits::default().max_table_elements(10));
    assert_eq!(
        m.invoke("grow", &[Value::I32(5)]).unwrap().value,
        vec![Value::I32(1)]
    );
    // Past the limit table.grow returns -1, as the spec says for a failed grow.
    assert_eq!(
        m.invoke("grow", &[Value::I32(50)]).unwrap().value,
        vec![Value::I32(-1)]
    );
}

#[test]
fn bad_bytes_are_invalid_modules() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.wasm");
    std::fs::write(&empty, b"").unwrap();
    let err = rt.load(&Source::File(empty)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidModule, "{err}");

    // A real module, truncated at several points.
    let full = wat::parse_file(crate::root().join("guests/wat/numeric.wat")).unwrap();
    // (Exactly 8 bytes, the bare header, is a valid empty module.)
    for cut in [4, 6, 9, full.len() / 2, full.len() - 1] {
        let err = rt.load_bytes(full[..cut].to_vec()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidModule, "cut at {cut}: {err}");
        if cut > 8 {
            assert!(
                matches!(
                    err,
                    Error::InvalidModule {
                        offset: Some(_),
                        ..
                    }
                ),
                "cut at {cut}: the validator's offset is reported: {err:?}"
            );
        }
    }

    // Random bytes, with and without a valid magic.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..50 {
        let mut bytes: Vec<u8> = (0..200)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        if round % 2 == 0 {
            bytes[..8].copy_from_slice(b"\0asm\x01\0\0\0");
        }
        let err = rt.load_bytes(bytes).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidModule, "round {round}: {err}");
    }
    // Malformed WAT says where.
    let err = rt
        .load_bytes(b"(module\n  (func (result i32) i32.const nope))".to_vec())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidModule);
    assert!(err.to_string().contains("2:"), "line:col in {err}");
    // The runtime still works after all of that.
    assert!(rt.load(&wat("numeric")).is_ok());
}

#[test]
fn missing_files_and_directories_are_reported() {
    let rt = runtime();
    let err = rt
        .load(&Source::file("/definitely/not/here.wasm"))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    let err = rt.load(&Source::file(std::env::temp_dir())).unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
}
