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
//!   `wasmtime_floor` is raw wasmtime doing the same guest work on a kept
//!   instance with the same engine settings: `__new`, UTF-16 write,
//!   `__pin`, call, read, `__unpin`.
//! * `async_process_1k`: `Instance::message("echo", 1 KiB)` on the
//!   `wasi-poll` reactor (one kept instance; stdin bound to the message,
//!   stdout captured for it alone), against raw wasmtime + wasmtime-wasi p1
//!   on a kept instance whose WASI context is replaced per message (a fresh
//!   `MemoryInputPipe`/`MemoryOutputPipe` pair).
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
    let floor = AsFloor::new(&std::fs::read(guest("as-counter-minimal.wasm")).unwrap());
    let mut floor_store = floor.store();
    assert_eq!(floor.call(&mut floor_store, "increment", "1"), "1");
    g.bench_function("wasmtime_floor", |b| {
        b.iter(|| black_box(floor.call(&mut floor_store, "increment", "1")))
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

fn guest(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/guests/out")
        .join(file)
}

/// The engine wasmhost builds for a default `RuntimeConfig` with no pool
/// (what the actor benches use).
fn floor_engine() -> wasmtime::Engine {
    wasmtime::Engine::new(&wasmhost::wasmtime_config(
        &RuntimeConfig::default().pool(None),
    ))
    .unwrap()
}

/// Raw wasmtime calling an AssemblyScript string export on a kept instance.
struct AsFloor {
    engine: wasmtime::Engine,
    pre: wasmtime::InstancePre<()>,
}

impl AsFloor {
    fn new(wasm: &[u8]) -> Self {
        let engine = floor_engine();
        let module = wasmtime::Module::new(&engine, wasm).unwrap();
        let mut linker = wasmtime::Linker::new(&engine);
        linker
            .func_wrap(
                "env",
                "abort",
                |_: i32, _: i32, _: i32, _: i32| -> wasmtime::Result<()> {
                    Err(wasmtime::Error::msg("abort"))
                },
            )
            .unwrap();
        let pre = linker.instantiate_pre(&module).unwrap();
        AsFloor { engine, pre }
    }

    fn store(&self) -> (wasmtime::Store<()>, wasmtime::Instance) {
        let mut store = wasmtime::Store::new(&self.engine, ());
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = self.pre.instantiate(&mut store).unwrap();
        (store, instance)
    }

    fn call(
        &self,
        (store, instance): &mut (wasmtime::Store<()>, wasmtime::Instance),
        f: &str,
        arg: &str,
    ) -> String {
        let new = instance
            .get_typed_func::<(i32, i32), i32>(&mut *store, "__new")
            .unwrap();
        let pin = instance
            .get_typed_func::<i32, i32>(&mut *store, "__pin")
            .unwrap();
        let unpin = instance
            .get_typed_func::<i32, ()>(&mut *store, "__unpin")
            .unwrap();
        let func = instance.get_typed_func::<i32, i32>(&mut *store, f).unwrap();
        let memory = instance.get_memory(&mut *store, "memory").unwrap();
        let units: Vec<u8> = arg.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let ptr = new.call(&mut *store, (units.len() as i32, 2)).unwrap();
        memory.write(&mut *store, ptr as usize, &units).unwrap();
        pin.call(&mut *store, ptr).unwrap();
        let out = func.call(&mut *store, ptr).unwrap() as usize;
        let data = memory.data(&*store);
        let len = u32::from_le_bytes(data[out - 4..out].try_into().unwrap()) as usize;
        let utf16: Vec<u16> = data[out..out + len]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let text = String::from_utf16(&utf16).unwrap();
        unpin.call(&mut *store, ptr).unwrap();
        text
    }
}

fn async_process(c: &mut Criterion) {
    use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
    let wasm = std::fs::read(guest("wasi-poll.wasm")).unwrap();
    let message = bytes::Bytes::from(vec![b'm'; 1024]);

    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    let module = rt
        .load_bytes(wasm.clone())
        .unwrap()
        .with_capabilities(wasmhost::Capabilities::none().with_wasi(wasmhost::Wasi::new()));
    let mut process = module.instantiate(&CallOptions::default()).unwrap();
    assert_eq!(
        process.message("echo", message.clone()).unwrap().value,
        message
    );

    let engine =
        wasmtime::Engine::new(&wasmhost::wasmtime_config(&RuntimeConfig::default())).unwrap();
    let compiled = wasmtime::Module::new(&engine, &wasm).unwrap();
    let mut linker: wasmtime::Linker<wasmtime_wasi::p1::WasiP1Ctx> = wasmtime::Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |cx| cx).unwrap();
    let mut store = wasmtime::Store::new(&engine, wasmtime_wasi::WasiCtxBuilder::new().build_p1());
    store.set_epoch_deadline(u64::MAX / 2);
    let instance = linker.instantiate(&mut store, &compiled).unwrap();
    // A reactor's `_initialize`, when it has one (as wasmhost does).
    if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
        init.call(&mut store, ()).unwrap();
    }
    let echo = instance
        .get_typed_func::<(), ()>(&mut store, "echo")
        .unwrap();
    let mut raw = |msg: &bytes::Bytes| -> bytes::Bytes {
        let out = MemoryOutputPipe::new(wasmhost::DEFAULT_CAPTURE_LIMIT + 1);
        *store.data_mut() = wasmtime_wasi::WasiCtxBuilder::new()
            .stdin(MemoryInputPipe::new(msg.clone()))
            .stdout(out.clone())
            .build_p1();
        echo.call(&mut store, ()).unwrap();
        out.contents()
    };
    assert_eq!(raw(&message), message);

    let mut g = c.benchmark_group("async_process_1k");
    g.throughput(criterion::Throughput::Bytes(message.len() as u64));
    g.bench_function("wasmhost", |b| {
        b.iter(|| black_box(process.message("echo", message.clone()).unwrap()))
    });
    g.bench_function("wasmtime_floor", |b| b.iter(|| black_box(raw(&message))));
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
    async_process(&mut c);
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--list") {
        idle_memory();
    }
    c.final_summary();
}
