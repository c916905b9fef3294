//! Actor benchmarks, each beside its floor.
//!
//! ```text
//! scripts/build-guests.sh
//! cargo bench -p wasmhost --bench actors -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! * `actor_round_trip`: `ActorSystem::send("increment", "1")` to a warm
//!   actor running the AssemblyScript counter (`as-counter-minimal`),
//!   against `Instance::call` on an instance of the same module (the floor:
//!   the same guest call with no mailbox, lookup or bookkeeping), and
//!   `send_async` from a current-thread tokio runtime (adds
//!   `spawn_blocking`).
//! * `idle_actors_memory` (printed, not timed): resident memory of 10,000
//!   live, idle counter actors, each sent one message, from
//!   `/proc/self/statm` before and after, in KiB per actor (goal: under
//!   100 KiB).

// Benchmarks unwrap: a failure is the benchmark failing.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::Criterion;
use wasmhost::{
    ActorConfig, ActorSpec, ActorSystem, CallOptions, Module, Runtime, RuntimeConfig, Source,
};

fn counter(rt: &Runtime) -> Module {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/guests/out/as-counter-minimal.wasm");
    assert!(
        path.exists(),
        "{} missing: run scripts/build-guests.sh",
        path.display()
    );
    rt.load(&Source::File(path)).unwrap()
}

fn round_trip(c: &mut Criterion) {
    let rt = Runtime::new(RuntimeConfig::default().pool(None)).unwrap();
    let module = counter(&rt);
    let system = ActorSystem::new(ActorConfig::default());
    let spec = ActorSpec::new(module.clone());
    system.send("warm", Some(&spec), "increment", "1").unwrap();
    let mut instance = module.instantiate(&CallOptions::default()).unwrap();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    let mut g = c.benchmark_group("actor_round_trip");
    g.bench_function("instance_call_floor", |b| {
        b.iter(|| black_box(instance.call("increment", "1").unwrap()))
    });
    g.bench_function("actor_send", |b| {
        b.iter(|| black_box(system.send("warm", None, "increment", "1").unwrap()))
    });
    g.bench_function("actor_send_async", |b| {
        b.iter(|| {
            tokio.block_on(async {
                black_box(
                    system
                        .send_async("warm", None, "increment", "1")
                        .await
                        .unwrap(),
                )
            })
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

fn idle_memory() {
    const N: usize = 10_000;
    let rt = Runtime::new(RuntimeConfig::default().pool(None)).unwrap();
    let module = counter(&rt);
    let system = ActorSystem::new(ActorConfig::default().passivate_after(Duration::MAX));
    let spec = ActorSpec::new(module);
    // One actor first, so one-time costs (linking, code) are not counted.
    system.send("first", Some(&spec), "increment", "1").unwrap();
    let Some(before) = resident_bytes() else {
        println!("idle_actors_memory: /proc/self/statm unavailable, skipped");
        return;
    };
    for i in 0..N {
        system
            .send(&format!("actor-{i}"), Some(&spec), "increment", "1")
            .unwrap();
    }
    let after = resident_bytes().unwrap_or(before);
    let per = after.saturating_sub(before) as f64 / N as f64 / 1024.0;
    println!(
        "idle_actors_memory: {N} live idle actors: {:.1} MiB resident ({:.1} MiB before, {:.1} MiB after): {per:.1} KiB per actor (goal < 100 KiB: {})",
        after.saturating_sub(before) as f64 / (1 << 20) as f64,
        before as f64 / (1 << 20) as f64,
        after as f64 / (1 << 20) as f64,
        if per < 100.0 { "met" } else { "not met" }
    );
    assert_eq!(system.len(), N + 1);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    round_trip(&mut c);
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--list") {
        idle_memory();
    }
    c.final_summary();
}
