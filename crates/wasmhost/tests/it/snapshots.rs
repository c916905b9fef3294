//! Snapshots of an instance's state (`wasmhost::snapshot`): memories and
//! mutable globals, exported or not, and Extism vars, restored into a fresh
//! instance of the same module.

use wasmhost::{CallOptions, ErrorCode, Limits, Snapshot, Source};

use crate::runtime;

/// A counter whose state is in a non-exported global and a non-exported
/// memory (one word at 0x10000, in its second page), with a data segment
/// in its first page that the guest can wipe.
const HIDDEN: &str = r#"(module
  (memory 1 4)
  (global $n (mut i64) (i64.const 0))
  (data (i32.const 0) "seed")
  (func (export "bump") (result i64)
    (if (i32.lt_u (memory.size) (i32.const 2)) (then (drop (memory.grow (i32.const 1)))))
    (i32.store (i32.const 0x10000) (i32.add (i32.load (i32.const 0x10000)) (i32.const 10)))
    (global.set $n (i64.add (global.get $n) (i64.const 1)))
    (i64.add (global.get $n) (i64.extend_i32_u (i32.load (i32.const 0x10000)))))
  (func (export "wipe") (result i32)
    (i32.store (i32.const 0) (i32.const 0))
    (i32.load (i32.const 0)))
  (func (export "seed") (result i32) (i32.load (i32.const 0))))"#;

fn load(wat: &str) -> wasmhost::Module {
    runtime()
        .load(&Source::Bytes(wat.as_bytes().to_vec()))
        .unwrap()
}

#[test]
fn hidden_globals_and_memory_survive_a_snapshot() {
    let m = load(HIDDEN);
    let mut a = m.instantiate(&CallOptions::default()).unwrap();
    for want in [11, 22, 33] {
        assert_eq!(a.call("bump", "").unwrap().value.integer().unwrap(), want);
    }
    let saved = a.snapshot().unwrap();
    assert_eq!(saved.module(), m.digest());
    assert_eq!(saved.memory_bytes(), 2 * 65536, "the grown memory is saved");
    // Through bytes, as a store would keep it.
    let again = Snapshot::from_bytes(saved.as_bytes().to_vec()).unwrap();
    let mut b = m.instantiate_from(&CallOptions::default(), &again).unwrap();
    assert_eq!(b.call("bump", "").unwrap().value.integer().unwrap(), 44);
    // The original goes on independently.
    assert_eq!(a.call("bump", "").unwrap().value.integer().unwrap(), 44);
    // Restoring an instance in place rewinds it.
    a.restore(&saved).unwrap();
    assert_eq!(a.call("bump", "").unwrap().value.integer().unwrap(), 44);
}

#[test]
fn memory_zeroed_by_the_guest_stays_zero_after_a_restore() {
    let m = load(HIDDEN);
    let mut a = m.instantiate(&CallOptions::default()).unwrap();
    assert_ne!(a.call("seed", "").unwrap().value.integer().unwrap(), 0);
    assert_eq!(a.call("wipe", "").unwrap().value.integer().unwrap(), 0);
    let saved = a.snapshot().unwrap();
    // A fresh instance has the data segment again; the restored one must not.
    let mut b = m.instantiate_from(&CallOptions::default(), &saved).unwrap();
    assert_eq!(b.call("seed", "").unwrap().value.integer().unwrap(), 0);
}

#[test]
fn state_exports_are_hidden_from_listings() {
    let m = load(HIDDEN);
    let names: Vec<String> = m.exports().into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["bump", "wipe", "seed"]);
}

#[test]
fn untouched_memory_costs_nothing_and_touched_memory_is_compressed() {
    // 16 pages (1 MiB), one byte written.
    let m = load(
        r#"(module (memory 16) (func (export "touch") (i32.store8 (i32.const 500000) (i32.const 7))))"#,
    );
    let mut a = m.instantiate(&CallOptions::default()).unwrap();
    a.call("touch", "").unwrap();
    let saved = a.snapshot().unwrap();
    assert_eq!(saved.memory_bytes(), 1 << 20);
    assert!(saved.len() < 200, "{} bytes", saved.len());
}

#[test]
fn a_snapshot_of_another_module_is_refused() {
    let a = load(HIDDEN);
    let b = load(r#"(module (global (mut i32) (i32.const 0)) (func (export "f")))"#);
    let saved = a
        .instantiate(&CallOptions::default())
        .unwrap()
        .snapshot()
        .unwrap();
    let err = b
        .instantiate_from(&CallOptions::default(), &saved)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::SnapshotMismatch, "{err}");
    assert!(err.to_string().contains(&a.digest().short()), "{err}");
    let mut live = b.instantiate(&CallOptions::default()).unwrap();
    let err = live.restore(&saved).unwrap_err();
    assert_eq!(err.code(), ErrorCode::SnapshotMismatch, "{err}");
}

#[test]
fn damaged_snapshot_bytes_are_corrupt() {
    let m = load(HIDDEN);
    let mut a = m.instantiate(&CallOptions::default()).unwrap();
    a.call("bump", "").unwrap();
    let bytes = a.snapshot().unwrap().as_bytes().to_vec();
    for at in [0, 20, bytes.len() / 2, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x40;
        let err = Snapshot::from_bytes(bad).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Corrupt, "byte {at}: {err}");
    }
    let err = Snapshot::from_bytes(bytes[..bytes.len() - 9].to_vec()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
    assert_eq!(
        Snapshot::from_bytes(b"hello".to_vec()).unwrap_err().code(),
        ErrorCode::Corrupt
    );
}

#[test]
fn restoring_more_memory_than_the_limit_allows_fails_and_keeps_the_instance() {
    let m = load(HIDDEN);
    let mut a = m.instantiate(&CallOptions::default()).unwrap();
    a.call("bump", "").unwrap(); // grows to 2 pages
    let saved = a.snapshot().unwrap();
    let one_page = CallOptions::default().limits(Limits::default().max_memory_bytes(65536));
    let mut small = m.instantiate(&one_page).unwrap();
    let err = small.restore(&saved).unwrap_err();
    assert_eq!(err.code(), ErrorCode::MemoryLimit, "{err}");
    // The instance still works, from its own state.
    assert_eq!(
        small.call("seed", "").unwrap().value.integer().unwrap(),
        0x64656573
    );
}

#[test]
fn extism_vars_are_part_of_the_snapshot() {
    let m = crate::extism::plugin();
    let mut a = m.instantiate(&CallOptions::default()).unwrap();
    for want in ["1", "2"] {
        assert_eq!(a.call("counter", "").unwrap().value.text().unwrap(), want);
    }
    let saved = a.snapshot().unwrap();
    let mut b = m.instantiate_from(&CallOptions::default(), &saved).unwrap();
    assert_eq!(b.call("counter", "").unwrap().value.text().unwrap(), "3");
}

#[test]
fn wasi_commands_cannot_be_snapshotted() {
    let m = load(
        r#"(module (global (mut i32) (i32.const 0)) (memory (export "memory") 1) (func (export "_start")) (func (export "f")))"#,
    );
    let mut a = m.instantiate(&CallOptions::default()).unwrap();
    let err = a.snapshot().unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
    assert!(err.to_string().contains("_start"), "{err}");
}

#[test]
fn components_cannot_be_snapshotted_and_say_what_to_use() {
    let m = crate::components::component();
    let mut a = m.instantiate(&CallOptions::default()).unwrap();
    let err = a.snapshot().unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
    assert!(err.to_string().contains("wasi:keyvalue"), "{err}");
}
