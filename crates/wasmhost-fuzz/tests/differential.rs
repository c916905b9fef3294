//! wasmhost's `invoke` against raw wasmtime on `wasm-smith` modules (see
//! `wasmhost_fuzz::differential`). A bounded, deterministic run: seeds
//! `START..START+COUNT` (`WASMHOST_DIFF_SEED`, default 0;
//! `WASMHOST_DIFF_MODULES`, default 2000). A failure prints the seed, which
//! reproduces it alone: `WASMHOST_DIFF_SEED=N WASMHOST_DIFF_MODULES=1`.
//! `scripts/differential.sh [COUNT]` is the long run, in release.

use wasmhost_fuzz::differential::{Differential, Tally};

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

#[test]
fn wasmhost_invoke_matches_wasmtime() {
    let start = env_u64("WASMHOST_DIFF_SEED", 0);
    let count = env_u64("WASMHOST_DIFF_MODULES", 2000);
    let diff = Differential::new();
    let mut tally = Tally::default();
    for seed in start..start + count {
        if let Err(m) = diff.check(seed, &mut tally) {
            panic!(
                "mismatch (reproduce with WASMHOST_DIFF_SEED={seed} WASMHOST_DIFF_MODULES=1):\n{m}\nso far: {tally}"
            );
        }
    }
    eprintln!("differential: {tally}");
    for (code, (seed, message)) in &tally.limit_examples {
        eprintln!("  first `{code}`: seed {seed}: {message}");
    }
    // The run must have exercised both sides, not skipped everything.
    assert!(tally.modules * 2 > count, "too few modules ran: {tally}");
    assert!(tally.calls * 2 > tally.modules, "too few calls: {tally}");
    assert!(tally.same_values > 0, "no call returned values: {tally}");
    assert!(
        !tally.same_traps.is_empty(),
        "no call trapped alike: {tally}"
    );
}

#[test]
fn nan_payloads_compare_as_wasmtime_fuzzing_does() {
    use wasmhost_fuzz::differential::same_value;
    use wasmtime::Val;
    assert!(same_value(&Val::F32(0x7fc0_0000), &Val::F32(0xffa0_0001)));
    assert!(same_value(
        &Val::F64(0x7ff8_0000_0000_0000),
        &Val::F64(0xfff4_0000_0000_0001)
    ));
    assert!(!same_value(
        &Val::F32(0.0f32.to_bits()),
        &Val::F32((-0.0f32).to_bits())
    ));
    assert!(!same_value(
        &Val::F64(1.0f64.to_bits()),
        &Val::F64(0x7ff8_0000_0000_0000)
    ));
    assert!(!same_value(&Val::I32(1), &Val::I64(1)));
}

/// Found by this run (seed 46): a `memory.grow` past the memory's own
/// declared maximum fails in any engine, but wasmhost's limiter recorded it
/// as its denial and reported `memory_limit` for the trap that followed.
#[test]
fn growth_past_the_declared_maximum_is_the_guests_own_failure() {
    let wasm = wat::parse_str(
        r#"(module (memory 1 2)
             (func (export "grow_then_trap") (result i32)
               (drop (memory.grow (i32.const 1000000)))
               (i32.load (i32.const 200000)))
             (func (export "grow") (result i32) (memory.grow (i32.const 70000))))"#,
    )
    .expect("wat");
    let diff = Differential::new();
    let mut tally = Tally::default();
    if let Err(m) = diff.check_module(0, &wasm, &mut tally) {
        panic!("{m}");
    }
    assert_eq!(tally.calls, 2, "{tally}");
    assert!(tally.limits.is_empty(), "{tally}");
    assert_eq!(
        tally.same_traps.get("MemoryOutOfBounds"),
        Some(&1),
        "{tally}"
    );
    assert_eq!(tally.same_values, 1, "{tally}");
}
