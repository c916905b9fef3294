//! Durable actor benchmarks (issue 12's goals), each beside its floor, in
//! one run. The actors' store is a redb file in a temporary directory (on
//! the same disk as `target/`), so every commit is a real fsync.
//!
//! ```text
//! scripts/build-guests.sh
//! cargo bench -p wasmhost --bench durable_actors -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! * `durable_round_trip`: `send("execute", "increment 1")` to a warm
//!   Loom-style counter (`as-counter-actor.wasm`, 64 KiB of memory) under
//!   `every-message` (snapshot + commit per message), under `never` (no
//!   commit at all), and under `never` with a message id per message (one
//!   commit of the reply per message: the cost of durability without a
//!   snapshot). `redb_commit_floor`: one redb write transaction of a 2 KiB
//!   value with immediate durability — the fsync every durable message pays.
//! * `snapshot_commit_1mib`: `Instance::snapshot` of an instance with 1 MiB
//!   of touched (incompressible) memory plus `ActorStore::commit` of it;
//!   floor: writing 1 MiB to a file and `fdatasync`.
//! * `restore_vs_fresh`: a passivated counter answering its next message
//!   (read the record, instantiate, write the snapshot back, call, commit),
//!   against a new actor answering its first message (instantiate, call,
//!   commit its first record and snapshot).
//! * Printed, not timed: bytes on disk per passivated counter (1,000
//!   counters, one message each, the database file's growth) and resident
//!   memory per idle live durable actor (10,000 of them).

// Benchmarks unwrap: a failure is the benchmark failing.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use wasmhost::{
    ActorCommit, ActorConfig, ActorRecord, ActorSpec, ActorStore, ActorSystem, CallOptions,
    KvBatch, KvStore, Module, Runtime, RuntimeConfig, SnapshotPolicy, Source,
};

fn counter(rt: &Runtime) -> Module {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/guests/out/as-counter-actor.wasm");
    assert!(
        path.exists(),
        "{} missing: run scripts/build-guests.sh",
        path.display()
    );
    rt.load(&Source::File(path)).unwrap()
}

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default().pool(None)).unwrap()
}

fn system(store: &KvStore) -> ActorSystem {
    ActorSystem::new(
        ActorConfig::default()
            .passivate_after(Duration::MAX)
            .kv(store.clone()),
    )
}

fn round_trip(c: &mut Criterion, dir: &std::path::Path) {
    let rt = runtime();
    let store = KvStore::open(&dir.join("round-trip.redb")).unwrap();
    let sys = system(&store);
    let every = ActorSpec::new(counter(&rt));
    let never = ActorSpec::new(counter(&rt)).snapshots(SnapshotPolicy::Never);
    sys.send("every", Some(&every), "execute", "increment 1")
        .unwrap();
    sys.send("never", Some(&never), "execute", "increment 1")
        .unwrap();
    let ids = AtomicU64::new(0);
    let mut g = c.benchmark_group("durable_round_trip");
    g.bench_function("every_message", |b| {
        b.iter(|| black_box(sys.send("every", None, "execute", "increment 1").unwrap()))
    });
    g.bench_function("never", |b| {
        b.iter(|| black_box(sys.send("never", None, "execute", "increment 1").unwrap()))
    });
    g.bench_function("never_with_ids", |b| {
        b.iter(|| {
            let id = ids.fetch_add(1, Ordering::Relaxed).to_string();
            black_box(
                sys.send_once("never", None, &id, "execute", "increment 1")
                    .unwrap(),
            )
        })
    });
    let db = redb::Database::create(dir.join("floor.redb")).unwrap();
    let table: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("t");
    let value = vec![7u8; 2048];
    g.bench_function("redb_commit_floor", |b| {
        b.iter(|| {
            let txn = db.begin_write().unwrap();
            txn.open_table(table)
                .unwrap()
                .insert("k", value.as_slice())
                .unwrap();
            txn.commit().unwrap();
        })
    });
    g.finish();
}

/// A module with 16 pages (1 MiB) and a function that fills them with
/// xorshift bytes (incompressible) and one that changes one byte.
const MIB: &str = r#"(module (memory 16 16)
  (func (export "fill") (local $i i32) (local $x i32)
    (local.set $x (i32.const 2463534242))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.const 1048576)))
      (local.set $x (i32.xor (local.get $x) (i32.shl (local.get $x) (i32.const 13))))
      (local.set $x (i32.xor (local.get $x) (i32.shr_u (local.get $x) (i32.const 17))))
      (local.set $x (i32.xor (local.get $x) (i32.shl (local.get $x) (i32.const 5))))
      (i32.store (local.get $i) (local.get $x))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $l))))
  (func (export "poke") (i32.store8 (i32.const 0) (i32.add (i32.load8_u (i32.const 0)) (i32.const 1)))))"#;

fn snapshot_commit(c: &mut Criterion, dir: &std::path::Path) {
    let rt = runtime();
    let module = rt.load(&Source::Bytes(MIB.as_bytes().to_vec())).unwrap();
    let mut instance = module.instantiate(&CallOptions::default()).unwrap();
    instance.call("fill", "").unwrap();
    let store = KvStore::open(&dir.join("snapshot.redb")).unwrap();
    let mut record = ActorRecord::new(module.digest());
    let batch = KvBatch::default();
    let size = instance.snapshot().unwrap().len();
    println!("snapshot_commit_1mib: a snapshot of 1 MiB of touched memory is {size} bytes");
    let mut g = c.benchmark_group("snapshot_commit_1mib");
    g.bench_function("snapshot_and_commit", |b| {
        b.iter(|| {
            let snapshot = instance.snapshot().unwrap();
            record.messages += 1;
            let mut commit = ActorCommit::new(&record, &batch);
            commit.snapshot = Some(&snapshot);
            store.commit("big", commit).unwrap();
        })
    });
    g.bench_function("snapshot_only", |b| {
        b.iter(|| black_box(instance.snapshot().unwrap()))
    });
    let bytes = vec![9u8; 1 << 20];
    let path = dir.join("floor.bin");
    g.bench_function("write_fdatasync_floor", |b| {
        b.iter(|| {
            let mut f = std::fs::File::create(&path).unwrap();
            f.write_all(&bytes).unwrap();
            f.sync_data().unwrap();
        })
    });
    g.finish();
}

fn restore_vs_fresh(c: &mut Criterion, dir: &std::path::Path) {
    let rt = runtime();
    let store = KvStore::open(&dir.join("restore.redb")).unwrap();
    let sys = system(&store);
    let spec = ActorSpec::new(counter(&rt));
    sys.send("resumed", Some(&spec), "execute", "increment 1")
        .unwrap();
    let fresh = AtomicU64::new(0);
    let mut g = c.benchmark_group("restore_vs_fresh");
    // Only the message is timed: passivating before it, and removing the
    // fresh actor after it (thousands of live instances would exhaust the
    // address space), are not.
    g.bench_function("restore_passivated", |b| {
        b.iter_custom(|n| {
            let mut total = Duration::ZERO;
            for _ in 0..n {
                sys.passivate_idle_for(Duration::ZERO);
                let started = Instant::now();
                black_box(sys.send("resumed", None, "execute", "increment 1").unwrap());
                total += started.elapsed();
            }
            total
        })
    });
    g.bench_function("create_fresh", |b| {
        b.iter_custom(|n| {
            let mut total = Duration::ZERO;
            for _ in 0..n {
                let id = format!("fresh-{}", fresh.fetch_add(1, Ordering::Relaxed));
                let started = Instant::now();
                black_box(
                    sys.send(&id, Some(&spec), "execute", "increment 1")
                        .unwrap(),
                );
                total += started.elapsed();
                sys.purge(&id).unwrap();
            }
            total
        })
    });
    g.finish();
}

/// Resident set size in bytes, from /proc/self/statm (Linux).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn at_rest(dir: &std::path::Path) {
    const DISK_N: usize = 1_000;
    const LIVE_N: usize = 10_000;
    let rt = runtime();
    let path = dir.join("at-rest.redb");
    let store = KvStore::open(&path).unwrap();
    let sys = system(&store);
    let spec = ActorSpec::new(counter(&rt));
    sys.send("first", Some(&spec), "execute", "increment 1")
        .unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    for i in 0..DISK_N {
        sys.send(&format!("c-{i}"), Some(&spec), "execute", "increment 1")
            .unwrap();
    }
    sys.passivate_idle_for(Duration::ZERO);
    let after = std::fs::metadata(&path).unwrap().len();
    let per = after.saturating_sub(before) as f64 / DISK_N as f64;
    let record = sys.stored("c-0").unwrap().unwrap();
    println!(
        "disk_per_passivated_counter: {DISK_N} counters: the database grew {} bytes: {per:.0} bytes per actor (snapshot {} bytes) (goal <= 8 KiB: {})",
        after.saturating_sub(before),
        record.snapshot_bytes,
        if per <= 8192.0 { "met" } else { "not met" }
    );

    let live = system(&KvStore::open(&dir.join("live.redb")).unwrap());
    live.send("first", Some(&spec), "execute", "increment 1")
        .unwrap();
    let Some(before) = resident_bytes() else {
        println!("durable_idle_actors_memory: /proc/self/statm unavailable, skipped");
        return;
    };
    for i in 0..LIVE_N {
        live.send(&format!("a-{i}"), Some(&spec), "execute", "increment 1")
            .unwrap();
    }
    let after = resident_bytes().unwrap_or(before);
    let per = after.saturating_sub(before) as f64 / LIVE_N as f64 / 1024.0;
    println!(
        "durable_idle_actors_memory: {LIVE_N} live idle durable actors: {per:.1} KiB resident per actor (goal <= 100 KiB: {})",
        if per <= 100.0 { "met" } else { "not met" }
    );
}

fn main() {
    let dir = tempfile::tempdir_in(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")).unwrap();
    let mut c = Criterion::default().configure_from_args();
    round_trip(&mut c, dir.path());
    snapshot_commit(&mut c, dir.path());
    restore_vs_fresh(&mut c, dir.path());
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--list") {
        at_rest(dir.path());
    }
    c.final_summary();
}
