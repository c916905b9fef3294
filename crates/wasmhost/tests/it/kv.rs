//! The key-value capability with real guests: `guests/wat/kv.wat` (core,
//! `wasmhost:kv`), `guests/rust/extism-kv` (Extism, `kv_get`/`kv_set`/
//! `kv_delete`) and `guests/rust/kv-component` (`wasi:keyvalue/store`).
//! State lives in the store, not in the sandbox: every call below is a fresh
//! sandbox. The durability test kills a writer process with SIGKILL and
//! reads back every write the guest saw acknowledged.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use wasmhost::{Capabilities, ErrorCode, KeyValue, KvStore, Module, Value, Wasi};

use crate::{built, runtime, wat};

fn granted(store: &KvStore, namespace: &str) -> Capabilities {
    Capabilities::none().with_key_value(KeyValue::new(store.clone(), namespace))
}

fn core(store: &KvStore, namespace: &str) -> Module {
    runtime()
        .load(&wat("kv"))
        .unwrap()
        .with_capabilities(granted(store, namespace))
}

fn i64_of(m: &Module, export: &str, args: &[Value]) -> i64 {
    match m.invoke(export, args).unwrap().value.as_slice() {
        [Value::I64(n)] => *n,
        [Value::I32(n)] => i64::from(*n),
        other => panic!("{export}: unexpected results {other:?}"),
    }
}

fn count(m: &Module) -> i64 {
    i64_of(m, "counter", &[])
}

#[test]
fn kv_core_counter_persists_across_sandboxes_per_namespace() {
    let store = KvStore::memory();
    let a = core(&store, "a");
    assert_eq!([count(&a), count(&a), count(&a)], [1, 2, 3]);
    // Another namespace starts from nothing and does not disturb "a".
    let b = core(&store, "b");
    assert_eq!(count(&b), 1);
    // Another runtime, another module load: the state is in the store.
    assert_eq!(count(&core(&store, "a")), 4);
    assert_eq!(
        store.get("a", b"count").unwrap(),
        Some(4i64.to_le_bytes().to_vec())
    );
    assert_eq!(
        store.get("b", b"count").unwrap(),
        Some(1i64.to_le_bytes().to_vec())
    );
    assert_eq!(store.keys("a").unwrap(), vec![b"count".to_vec()]);
}

#[test]
fn kv_core_get_set_delete_and_buffers() {
    let store = KvStore::memory();
    let m = core(&store, "a");
    assert_eq!(i64_of(&m, "get_greeting", &[Value::I32(64)]), -1);
    assert_eq!(i64_of(&m, "set_greeting", &[]), 0);
    assert_eq!(
        store.get("a", b"greeting").unwrap(),
        Some(b"hello, kv".to_vec())
    );
    // Fits: written and equal. Too small a buffer: the length, nothing written.
    assert_eq!(i64_of(&m, "get_greeting", &[Value::I32(64)]), 9);
    assert_eq!(i64_of(&m, "get_greeting", &[Value::I32(9)]), 9);
    assert_eq!(i64_of(&m, "get_greeting", &[Value::I32(4)]), 9);
    assert_eq!(i64_of(&m, "get_greeting", &[Value::I32(0)]), 9);
    // The host sees and changes the same entries.
    store.set("a", b"greeting", b"hi").unwrap();
    assert_eq!(i64_of(&m, "get_greeting", &[Value::I32(64)]), -2);
    assert_eq!(i64_of(&m, "delete_greeting", &[]), 1);
    assert_eq!(i64_of(&m, "delete_greeting", &[]), 0);
    assert_eq!(i64_of(&m, "get_greeting", &[Value::I32(64)]), -1);
    assert_eq!(store.get("a", b"greeting").unwrap(), None);
}

#[test]
fn kv_core_bounds_and_bad_pointers_stop_the_guest_and_lose_nothing() {
    let store = KvStore::memory();
    let m = core(&store, "a");
    assert_eq!(i64_of(&m, "set_greeting", &[]), 0);

    let e = m.invoke("too_big", &[]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::MemoryLimit, "{e}");
    assert!(
        e.to_string()
            .contains("key-value: the value is 2000000 bytes, more than the 1048576-byte limit"),
        "{e}"
    );
    let e = m.invoke("too_long_key", &[]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::MemoryLimit, "{e}");
    assert!(
        e.to_string()
            .contains("key-value: the key is 2000 bytes, more than the 1024-byte limit"),
        "{e}"
    );
    let e = m.invoke("bad_pointer", &[]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Trap, "{e}");
    assert!(
        e.to_string()
            .contains("outside the guest's 65536-byte memory"),
        "{e}"
    );

    // Bounds are part of the grant.
    let small = m.clone().with_capabilities(
        Capabilities::none().with_key_value(KeyValue::new(store.clone(), "a").max_value_bytes(4)),
    );
    let e = small.invoke("set_greeting", &[]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::MemoryLimit, "{e}");
    assert!(
        e.to_string()
            .contains("the value is 9 bytes, more than the 4-byte limit"),
        "{e}"
    );

    // Nothing was written by the refused calls; the module still works.
    assert_eq!(store.keys("a").unwrap(), vec![b"greeting".to_vec()]);
    assert_eq!(
        store.get("a", b"greeting").unwrap(),
        Some(b"hello, kv".to_vec())
    );
    assert_eq!(count(&m), 1);
}

#[test]
fn kv_core_not_linked_without_the_grant() {
    let m = runtime().load(&wat("kv")).unwrap();
    let e = m.invoke("counter", &[]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::LinkError, "{e}");
    for f in ["get", "set", "delete"] {
        assert!(e.to_string().contains(&format!("wasmhost:kv::{f}")), "{e}");
    }
}

// ----- Extism ----------------------------------------------------------------

fn plugin(store: &KvStore, namespace: &str) -> Module {
    runtime()
        .load(&built("extism-kv.wasm"))
        .unwrap()
        .with_capabilities(granted(store, namespace))
}

fn text(m: &Module, function: &str, input: impl AsRef<[u8]>) -> String {
    m.call(function, input)
        .unwrap_or_else(|e| panic!("{function}: {e}"))
        .value
        .text()
        .unwrap()
        .to_string()
}

#[test]
fn kv_extism_counter_persists_across_sandboxes_per_namespace() {
    let store = KvStore::memory();
    let a = plugin(&store, "a");
    let counts: Vec<String> = (0..3).map(|_| text(&a, "kv_counter", "")).collect();
    assert_eq!(counts, ["1", "2", "3"]);
    assert_eq!(text(&plugin(&store, "b"), "kv_counter", ""), "1");
    assert_eq!(store.get("a", b"count").unwrap(), Some(b"3".to_vec()));

    assert_eq!(text(&a, "kv_read", "count"), "3");
    assert_eq!(text(&a, "kv_read", "missing"), "");
    a.call("kv_store", "héllo").unwrap();
    assert_eq!(
        store.get("a", b"value").unwrap(),
        Some("héllo".as_bytes().to_vec())
    );
    a.call("kv_remove", "count").unwrap();
    assert_eq!(store.get("a", b"count").unwrap(), None);
    assert_eq!(text(&a, "kv_counter", ""), "1");
    assert_eq!(store.get("b", b"count").unwrap(), Some(b"1".to_vec()));
}

#[test]
fn kv_extism_bounds_stop_the_plugin() {
    let store = KvStore::memory();
    let a = plugin(&store, "a");
    let e = a.call("kv_read", "k".repeat(2000)).unwrap_err();
    assert_eq!(e.code(), ErrorCode::MemoryLimit, "{e}");
    assert!(
        e.to_string()
            .contains("key-value: the key is 2000 bytes, more than the 1024-byte limit"),
        "{e}"
    );
    let e = a.call("kv_store", vec![7u8; (1 << 20) + 1]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::MemoryLimit, "{e}");
    assert!(
        e.to_string()
            .contains("key-value: the value is 1048577 bytes, more than the 1048576-byte limit"),
        "{e}"
    );
    // Exactly at the bound is fine.
    a.call("kv_store", vec![7u8; 1 << 20]).unwrap();
    assert_eq!(
        store.get("a", b"value").unwrap().map(|v| v.len()),
        Some(1 << 20)
    );
}

#[test]
fn kv_extism_not_linked_without_the_grant() {
    let m = runtime().load(&built("extism-kv.wasm")).unwrap();
    let e = m.call("kv_counter", "").unwrap_err();
    assert_eq!(e.code(), ErrorCode::LinkError, "{e}");
    assert!(e.to_string().contains("extism:host/user::kv_get"), "{e}");
    assert!(e.to_string().contains("extism:host/user::kv_set"), "{e}");
}

// ----- components ------------------------------------------------------------

fn component(store: &KvStore, namespace: &str) -> Module {
    // Rust's wasm32-wasip2 std imports some of WASI; grant it (stdio only).
    runtime()
        .load(&built("kv-component.wasm"))
        .unwrap()
        .with_capabilities(granted(store, namespace).with_wasi(Wasi::new()))
}

fn call(m: &Module, f: &str, args: serde_json::Value) -> serde_json::Value {
    m.call(f, args.to_string())
        .unwrap_or_else(|e| panic!("{f}({args}): {e}"))
        .value
        .json()
        .unwrap()
}

#[test]
fn kv_component_counter_persists_across_sandboxes_per_namespace() {
    let store = KvStore::memory();
    let a = component(&store, "a");
    let counts: Vec<_> = (0..3)
        .map(|_| call(&a, "increment", json!(["n"])))
        .collect();
    assert_eq!(
        counts,
        [json!({"ok": 1}), json!({"ok": 2}), json!({"ok": 3})]
    );
    assert_eq!(call(&a, "get", json!(["n"])), json!({"ok": 3}));
    assert_eq!(call(&a, "get", json!(["other"])), json!({"ok": null}));
    let b = component(&store, "b");
    assert_eq!(call(&b, "get", json!(["n"])), json!({"ok": null}));
    assert_eq!(call(&b, "increment", json!(["n"])), json!({"ok": 1}));

    // The default bucket is the one the host and core guests see.
    assert_eq!(
        store.get("a", b"n").unwrap(),
        Some(3u64.to_le_bytes().to_vec())
    );
    let shared = KvStore::memory();
    let c = core(&shared, "same-actor");
    assert_eq!([count(&c), count(&c)], [1, 2]);
    assert_eq!(
        call(
            &component(&shared, "same-actor"),
            "increment",
            json!(["count"])
        ),
        json!({"ok": 3})
    );

    // Other buckets are separate, inside the namespace.
    assert_eq!(
        call(&a, "increment-in", json!(["other", "n"])),
        json!({"ok": 1})
    );
    assert_eq!(call(&a, "increment-in", json!(["", "n"])), json!({"ok": 4}));
    assert_eq!(
        store.get_in("a", "other", b"n").unwrap(),
        Some(1u64.to_le_bytes().to_vec())
    );
    assert_eq!(store.get_in("b", "other", b"n").unwrap(), None);

    assert_eq!(call(&a, "remove", json!(["n"])), json!({"ok": true}));
    assert_eq!(call(&a, "remove", json!(["n"])), json!({"ok": false}));
    assert_eq!(store.get("a", b"n").unwrap(), None);
}

#[test]
fn kv_component_lists_keys_in_pages() {
    let store = KvStore::memory();
    let keys: Vec<String> = (0..2500).map(|i| format!("k{i:04}")).collect();
    for k in &keys {
        store.set("a", k.as_bytes(), b"").unwrap();
    }
    store.set("b", b"not-a's", b"").unwrap();
    store.set_in("a", "other", b"elsewhere", b"").unwrap();
    let a = component(&store, "a");
    // 2500 keys take three pages of wasmhost::capabilities::kv::LIST_PAGE_KEYS.
    assert_eq!(call(&a, "keys", json!(["default"])), json!({"ok": keys}));
    assert_eq!(
        call(&a, "keys", json!(["other"])),
        json!({"ok": ["elsewhere"]})
    );
    assert_eq!(call(&a, "keys", json!(["empty"])), json!({"ok": []}));
}

#[test]
fn kv_component_bounds_are_error_values() {
    let store = KvStore::memory();
    let a = component(&store, "a");
    let long = "k".repeat(2000);
    assert_eq!(
        call(&a, "increment", json!([long])),
        json!({"err": "key-value: the key is 2000 bytes, more than the 1024-byte limit"})
    );
    assert_eq!(
        call(&a, "fill", json!(["big", 2_000_000])),
        json!({"err": "key-value: the value is 2000000 bytes, more than the 1048576-byte limit"})
    );
    assert_eq!(
        call(&a, "increment-in", json!([long, "n"])),
        json!({"err": "key-value: the bucket identifier is 2000 bytes, more than the 1024-byte limit"})
    );
    assert_eq!(
        call(&a, "fill", json!(["big", 1 << 20])),
        json!({"ok": null})
    );
    assert_eq!(store.keys("a").unwrap(), vec![b"big".to_vec()]);
}

#[test]
fn kv_component_not_linked_without_the_grant() {
    let m = runtime()
        .load(&built("kv-component.wasm"))
        .unwrap()
        .with_capabilities(Capabilities::none().with_wasi(Wasi::new()));
    let e = m.call("get", json!(["n"]).to_string()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::LinkError, "{e}");
    assert!(
        e.to_string().contains("wasi:keyvalue/store@0.2.0-draft"),
        "{e}"
    );
}

// ----- durability against kill -9 -------------------------------------------

const CHILD_ENV: &str = "WASMHOST_KV_TEST_CHILD_DB";
const ROUND_ENV: &str = "WASMHOST_KV_TEST_ROUND";
const NAMESPACE: &str = "durable";

fn key(round: i64, i: i64) -> i64 {
    round * 1_000_000 + i
}

fn value(k: i64) -> i64 {
    k.wrapping_mul(7) + 1
}

/// The child process: writes keys through the core guest's `set_u64` and
/// prints `ack N` after each call returns, until it is killed (or a minute
/// has passed). Does nothing in a normal test run.
#[test]
fn kv_durability_child() {
    let Ok(db) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round: i64 = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    let store = KvStore::open(Path::new(&db)).unwrap();
    let m = core(&store, NAMESPACE);
    let started = Instant::now();
    let mut out = std::io::stdout().lock();
    for i in 0.. {
        let k = key(round, i);
        let r = m
            .invoke("set_u64", &[Value::I64(k), Value::I64(value(k))])
            .unwrap();
        assert_eq!(r.value, vec![Value::I32(0)]);
        // Acknowledged: the guest's set returned.
        use std::io::Write;
        writeln!(out, "ack {i}").unwrap();
        out.flush().unwrap();
        if started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
}

#[test]
fn kv_acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kv.redb");
    for round in 0..3i64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "kv::kv_durability_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ])
            .env(CHILD_ENV, &db)
            .env(ROUND_ENV, round.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Every `ack` line the child printed, counted as it goes.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("ack ") {
                    acked.push(n.trim().parse::<i64>().unwrap());
                    let _ = tx.send(acked.len());
                }
            }
            acked
        });
        let wanted = 20 + 15 * round as usize;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(n) if n >= wanted => break,
                Ok(_) => continue,
                Err(_) => {
                    let _ = child.kill();
                    let out = child.wait_with_output().unwrap();
                    panic!(
                        "round {round}: the writer did not acknowledge {wanted} writes:\n{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
        // Kill it somewhere in the middle of later writes.
        let jitter = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
            % 20_000;
        std::thread::sleep(Duration::from_micros(u64::from(jitter)));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the writer was not killed"
        );
        // Lines already in the pipe were acknowledged too: read them all.
        let acked = reader.join().unwrap();
        assert!(acked.len() >= wanted);
        assert_eq!(acked, (0..acked.len() as i64).collect::<Vec<_>>());

        // A new process's view: reopen the file (redb repairs it if needed).
        let store = KvStore::open(&db).unwrap();
        for i in &acked {
            let k = key(round, *i);
            assert_eq!(
                store.get(NAMESPACE, &k.to_le_bytes()).unwrap(),
                Some(value(k).to_le_bytes().to_vec()),
                "round {round}: acknowledged write {i} was lost"
            );
        }
        // Earlier rounds' writes are all still there.
        for r in 0..round {
            let k = key(r, 0);
            assert!(store.get(NAMESPACE, &k.to_le_bytes()).unwrap().is_some());
        }
        // And a guest reads them back.
        let m = core(&store, NAMESPACE);
        let last = key(round, *acked.last().unwrap());
        assert_eq!(i64_of(&m, "get_u64", &[Value::I64(last)]), value(last));
        eprintln!(
            "round {round}: killed after {} acknowledged writes; all present",
            acked.len()
        );
    }
}
