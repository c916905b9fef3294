//! Benchmarks of the wasmhost runtime, each against a floor measured in the
//! same run. Numbers and how to read them: `docs/benchmarks.md`.
//!
//! ```text
//! scripts/build-guests.sh
//! cargo bench -p wasmhost --bench runtime -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Groups:
//!
//! * `fresh_call`: `Module::invoke("answer")` (fresh sandbox per call) against
//!   raw wasmtime on an engine configured like wasmhost's (pooling, CoW,
//!   epochs): `Store::new`, `InstancePre::instantiate`, typed call; and
//!   `Module::invoke_async` against raw wasmtime's `instantiate_async` +
//!   `call_async`, both on one current-thread tokio runtime.
//! * `wasi_echo_1k`: `Module::run` of the wasm32-wasip1 `wasi-echo` command
//!   echoing 1 KiB stdin to stdout, against raw wasmtime + wasmtime-wasi p1.
//! * `cold_start_1mib`: new `Runtime` + `load_bytes` + first `invoke` of a
//!   generated module of more than 1 MiB, from the disk cache against
//!   compiling; the same through `load(Source::File)` of the module written
//!   to a file (the path index then spares reading and hashing it); the
//!   loads alone; and raw wasmtime deserializing a `.cwasm` (whole cold path,
//!   and `deserialize_file` alone).
//! * `threads`: fresh-instance calls on one shared `Module` from 1 and 2
//!   threads at once, and the same for raw wasmtime.
//! * `component_record`: `Module::call("echo-person", JSON)` of the
//!   `wit-component` guest (a record with a string, an option and a list,
//!   fresh instance per call), against raw wasmtime making the same call
//!   with a prebuilt `Val` (so the floor skips the JSON conversion).
//! * `as_string`: `Module::call("echo", 1 KiB string)` of the AssemblyScript
//!   `as-counter-incremental` guest (fresh instance per call), against raw
//!   wasmtime doing the same steps by hand (`__new`, write UTF-16, `__pin`,
//!   call, read, `__unpin`).
//!
//! `wasmtime_floor` is raw wasmtime configured as `build_engine` configures
//! it. Some groups add informative peers: `wasmtime_floor_madvise_reset`
//! (the engine as wasmhost configured it before: wasmtime's default
//! `madvise` slot reset, 1000 fiber stacks), `wasmhost_with_recorder` (a
//! metrics recorder installed), `engine_new*` (building the engine alone,
//! with and without the fiber-stack pool) and `cpu_only` (how far plain
//! arithmetic scales to 2 threads on this machine).
//!
//! Criterion measures each variant on its own and does not compare them. So
//! after each group this file measures the group's variants again,
//! interleaved: several rounds, each running one batch of every variant (in
//! rotating order), and prints the per-iteration medians and their ratios on
//! lines starting with `ratio`. Interleaving makes slow drift of the machine
//! (other load, CPU frequency) hit every variant alike. Nothing here asserts
//! on time; the asserts check that each variant did the work (right result,
//! right cache path).
//!
//! A positional filter (criterion's `FILTER`) also selects which groups set
//! up and print ratios: a group runs when its name contains the filter or the
//! filter starts with its name. `--test`, `--list` and `--profile-time` skip
//! the ratio rounds.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, Throughput};
use wasmhost::{
    CallOptions, Capabilities, DEFAULT_CAPTURE_LIMIT, Runtime, RuntimeConfig, Source, Stdin, Value,
    Wasi,
};
use wasmtime::{Engine, InstancePre, Linker, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};

#[path = "support/interleave.rs"]
mod interleave;
use interleave::{Mode, emit, fmt_ns, interleave, met};

fn main() {
    let mode = Mode::from_args();
    let mut c = Criterion::default().configure_from_args();
    let mut report = Vec::new();
    fresh_call(&mut c, &mode, &mut report);
    wasi_echo_1k(&mut c, &mode, &mut report);
    cold_start_1mib(&mut c, &mode, &mut report);
    threads(&mut c, &mode, &mut report);
    component_record(&mut c, &mode, &mut report);
    as_string(&mut c, &mode, &mut report);
    c.final_summary();
    if !report.is_empty() {
        println!("\n==== wasmhost ratios (interleaved rounds, medians) ====");
        for line in &report {
            println!("{line}");
        }
    }
}

// ---------------------------------------------------------------------------
// fresh_call

fn fresh_call(c: &mut Criterion, mode: &Mode, report: &mut Vec<String>) {
    const GROUP: &str = "fresh_call";
    if !mode.runs(GROUP) {
        return;
    }
    let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let module = rt
        .load(&Source::file(guest("numeric.wat")))
        .expect("load numeric.wat");
    assert_eq!(
        module.invoke("answer", &[]).expect("answer").value,
        vec![Value::I32(42)]
    );
    let floor = Floor::new(Tuning::AsWasmhost);
    let pre = floor.numeric_pre();
    assert_eq!(floor.answer(&pre), 42);
    let madvise = Floor::new(Tuning::MadviseReset);
    let madvise_pre = madvise.numeric_pre();
    assert_eq!(madvise.answer(&madvise_pre), 42);
    // What the server pays: a metrics recorder installed (here metrics-util's
    // registry-backed debugging recorder, on this thread only).
    let recorder = metrics_util::debugging::DebuggingRecorder::new();

    let mut ours = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(module.invoke("answer", &[]).expect("invoke answer"));
        }
        start.elapsed()
    };
    let mut raw = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(floor.answer(&pre));
        }
        start.elapsed()
    };
    let mut ours_recorded = |iters: u64| {
        metrics::with_local_recorder(&recorder, || {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(module.invoke("answer", &[]).expect("invoke answer"));
            }
            start.elapsed()
        })
    };
    let mut raw_madvise = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(madvise.answer(&madvise_pre));
        }
        start.elapsed()
    };
    // The async API against raw wasmtime's async API, both driven by the
    // same current-thread tokio runtime.
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let opts = CallOptions::default();
    let mut ours_async = |iters: u64| {
        tokio_rt.block_on(async {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(
                    module
                        .invoke_async("answer", &[], &opts)
                        .await
                        .expect("invoke_async answer"),
                );
            }
            start.elapsed()
        })
    };
    let mut raw_async = |iters: u64| {
        tokio_rt.block_on(async {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(floor.answer_async(&pre).await);
            }
            start.elapsed()
        })
    };

    let mut g = c.benchmark_group(GROUP);
    g.bench_function("wasmhost", |b| b.iter_custom(&mut ours));
    g.bench_function("wasmtime_floor", |b| b.iter_custom(&mut raw));
    g.bench_function("wasmhost_with_recorder", |b| {
        b.iter_custom(&mut ours_recorded)
    });
    g.bench_function("wasmtime_floor_madvise_reset", |b| {
        b.iter_custom(&mut raw_madvise)
    });
    g.bench_function("wasmhost_async", |b| b.iter_custom(&mut ours_async));
    g.bench_function("wasmtime_floor_async", |b| b.iter_custom(&mut raw_async));
    g.finish();

    if mode.ratios(GROUP) {
        let m = interleave(
            &mut [
                ("wasmhost", &mut ours),
                ("wasmtime_floor", &mut raw),
                ("wasmhost_with_recorder", &mut ours_recorded),
                ("wasmtime_floor_madvise_reset", &mut raw_madvise),
                ("wasmhost_async", &mut ours_async),
                ("wasmtime_floor_async", &mut raw_async),
            ],
            ROUNDS,
            BATCH,
        );
        let line = format!(
            "ratio {GROUP}: wasmhost {} / wasmtime_floor {} per call = {:.2}x (per-round {}); target <= 1.25x: {}\n\
             ratio {GROUP}: wasmhost_with_recorder {} = {:.2}x the floor (per-round {}); target <= 1.30x: {}\n\
             ratio {GROUP}: wasmhost_async {} / wasmtime_floor_async {} = {:.2}x (per-round {}); target <= 1.30x: {}\n\
             ratio {GROUP}: wasmtime_floor_madvise_reset {} = {:.2}x the floor",
            fmt_ns(m[0].median()),
            fmt_ns(m[1].median()),
            m[0].ratio(&m[1]),
            m[0].round_ratios(&m[1]),
            met(m[0].ratio(&m[1]) <= 1.25),
            fmt_ns(m[2].median()),
            m[2].ratio(&m[1]),
            m[2].round_ratios(&m[1]),
            met(m[2].ratio(&m[1]) <= 1.3),
            fmt_ns(m[4].median()),
            fmt_ns(m[5].median()),
            m[4].ratio(&m[5]),
            m[4].round_ratios(&m[5]),
            met(m[4].ratio(&m[5]) <= 1.3),
            fmt_ns(m[3].median()),
            m[3].ratio(&m[1]),
        );
        emit(report, line);
    }
}

// ---------------------------------------------------------------------------
// wasi_echo_1k

fn wasi_echo_1k(c: &mut Criterion, mode: &Mode, report: &mut Vec<String>) {
    const GROUP: &str = "wasi_echo_1k";
    if !mode.runs(GROUP) {
        return;
    }
    let wasm = std::fs::read(guest("wasi-echo.wasm")).expect("read wasi-echo.wasm");
    let input: Bytes = (0..1024u32)
        .map(|i| (i.wrapping_mul(31).wrapping_add(7) % 251) as u8)
        .collect::<Vec<u8>>()
        .into();

    let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let module = rt
        .load_bytes(wasm.clone())
        .expect("load wasi-echo.wasm")
        .with_capabilities(Capabilities::none().with_wasi(Wasi::new().args(["wasi-echo", "echo"])));
    let opts = CallOptions::default().stdin(Stdin::bytes(input.clone()));
    let out = module.run(&opts).expect("run wasi-echo");
    assert_eq!(out.stdout, input, "wasmhost: stdout is not the input");

    let floor = Floor::new(Tuning::AsWasmhost);
    let pre = floor.wasi_pre(&wasm);
    assert_eq!(
        floor.echo(&pre, &input),
        input,
        "floor: stdout is not the input"
    );
    let madvise = Floor::new(Tuning::MadviseReset);
    let madvise_pre = madvise.wasi_pre(&wasm);
    assert_eq!(
        madvise.echo(&madvise_pre, &input),
        input,
        "madvise-reset floor: stdout is not the input"
    );

    let mut ours = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(module.run(&opts).expect("run wasi-echo"));
        }
        start.elapsed()
    };
    let mut raw = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(floor.echo(&pre, &input));
        }
        start.elapsed()
    };
    let mut raw_madvise = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(madvise.echo(&madvise_pre, &input));
        }
        start.elapsed()
    };

    let mut g = c.benchmark_group(GROUP);
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.bench_function("wasmhost", |b| b.iter_custom(&mut ours));
    g.bench_function("wasmtime_floor", |b| b.iter_custom(&mut raw));
    g.bench_function("wasmtime_floor_madvise_reset", |b| {
        b.iter_custom(&mut raw_madvise)
    });
    g.finish();

    if mode.ratios(GROUP) {
        let m = interleave(
            &mut [
                ("wasmhost", &mut ours),
                ("wasmtime_floor", &mut raw),
                ("wasmtime_floor_madvise_reset", &mut raw_madvise),
            ],
            ROUNDS,
            BATCH,
        );
        let line = format!(
            "ratio {GROUP}: wasmhost {} / wasmtime_floor {} per message = {:.2}x (per-round {}); target wasmhost <= 15 µs: {}\n\
             ratio {GROUP}: wasmtime_floor_madvise_reset {} per message = {:.2}x the floor",
            fmt_ns(m[0].median()),
            fmt_ns(m[1].median()),
            m[0].ratio(&m[1]),
            m[0].round_ratios(&m[1]),
            met(m[0].median() <= 15_000.0),
            fmt_ns(m[2].median()),
            m[2].ratio(&m[1]),
        );
        emit(report, line);
    }
}

// ---------------------------------------------------------------------------
// cold_start_1mib

/// Functions in the generated module, and arithmetic steps per function.
const BIG_FUNCS: usize = 2500;
const BIG_STEPS: usize = 40;

fn cold_start_1mib(c: &mut Criterion, mode: &Mode, report: &mut Vec<String>) {
    const GROUP: &str = "cold_start_1mib";
    if !mode.runs(GROUP) {
        return;
    }
    let bytes = wat::parse_str(big_module_wat(BIG_FUNCS, BIG_STEPS)).expect("generated WAT");
    assert!(
        bytes.len() >= 1 << 20,
        "the generated module is only {} bytes",
        bytes.len()
    );
    println!(
        "{GROUP}: generated module: {} bytes, {BIG_FUNCS} functions",
        bytes.len()
    );
    let epoch_baseline = settle_epoch_threads();

    // An earlier runtime compiles the module and writes the artifact.
    let state = tempfile::tempdir().expect("temp state dir");
    let disk_config = RuntimeConfig::default().state_dir(state.path());
    let expected = {
        let rt = Runtime::new(disk_config.clone()).expect("runtime");
        let m = rt.load_bytes(bytes.clone()).expect("compile big module");
        let out = m.invoke("run", &[]).expect("run big module").value;
        let stats = rt.cache_stats();
        assert_eq!((stats.compiles, stats.disk_writes), (1, 1), "{stats:?}");
        let dir = rt.disk_cache_dir().expect("disk cache dir");
        let sizes: Vec<u64> = std::fs::read_dir(dir)
            .expect("cache dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .map(|p| std::fs::metadata(p).expect("metadata").len())
            .collect();
        assert_eq!(sizes.len(), 1, "one artifact in {}", dir.display());
        println!("{GROUP}: artifact: {} bytes", sizes[0]);
        // The floor engine must compile the same code as wasmhost's engine.
        assert_eq!(
            dir.file_name().and_then(|n| n.to_str()),
            Some(engine_fingerprint(&Floor::new(Tuning::AsWasmhost).engine).as_str()),
            "the floor engine's configuration differs from wasmhost's"
        );
        out
    };
    let compile_config = RuntimeConfig::default();

    // The same module as a file, for `load(Source::File)`.
    let input_dir = tempfile::tempdir().expect("temp dir");
    let input = Source::File(input_dir.path().join("big.wasm"));
    if let Source::File(path) = &input {
        std::fs::write(path, &bytes).expect("write big.wasm");
    }
    // Stamps are trusted only once taken 2 s after the file last changed
    // (the racy-timestamp rule), so wait that long after writing the input
    // and the artifact, then load once: that load checks the artifact's
    // checksum and records its stamp, and records the file's digest in the
    // path index. Every timed load after it takes the steady-state path.
    std::thread::sleep(Duration::from_millis(2100));
    for round in 0..2 {
        let rt = Runtime::new(disk_config.clone()).expect("runtime");
        rt.load(&input).expect("load big.wasm");
        let stats = rt.cache_stats();
        assert_eq!(
            (stats.disk_hits, stats.disk_verified, stats.path_index_hits),
            (1, 1 - round, round),
            "{stats:?}"
        );
        drop(rt);
        wait_for_epoch_threads(epoch_baseline);
    }

    // Raw wasmtime: the same module precompiled to a `.cwasm` file.
    let floor_dir = tempfile::tempdir().expect("temp dir");
    let cwasm = floor_dir.path().join("big.cwasm");
    std::fs::write(
        &cwasm,
        Floor::new(Tuning::AsWasmhost)
            .engine
            .precompile_module(&bytes)
            .expect("precompile"),
    )
    .expect("write .cwasm");

    // New runtime + load + first call. The input copy, the drops and the
    // exit of the dropped runtime's epoch thread are not timed (a process
    // starting cold has no previous runtime to tear down). `source` is
    // `None` for `load_bytes` of the bytes in memory, else the file.
    let cold = |config: &RuntimeConfig, way: LoadPath, source: Option<Source>| {
        let config = config.clone();
        let bytes = &bytes;
        let expected = &expected;
        move |iters: u64| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let raw = bytes.clone();
                let start = Instant::now();
                let rt = Runtime::new(config.clone()).expect("runtime");
                let m = match &source {
                    Some(source) => rt.load(source),
                    None => rt.load_bytes(raw),
                }
                .expect("load big module");
                let out = m.invoke("run", &[]).expect("run big module");
                total += start.elapsed();
                assert_eq!(&out.value, expected);
                check_path(&rt, way);
                drop((m, rt));
                wait_for_epoch_threads(epoch_baseline);
            }
            total
        }
    };
    // The load alone, in a runtime created before the clock starts.
    let load_only = |config: &RuntimeConfig, way: LoadPath, source: Option<Source>| {
        let config = config.clone();
        let bytes = &bytes;
        move |iters: u64| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let raw = bytes.clone();
                let rt = Runtime::new(config.clone()).expect("runtime");
                let start = Instant::now();
                let m = match &source {
                    Some(source) => rt.load(source),
                    None => rt.load_bytes(raw),
                }
                .expect("load big module");
                total += start.elapsed();
                check_path(&rt, way);
                drop((m, rt));
                wait_for_epoch_threads(epoch_baseline);
            }
            total
        }
    };
    let mut disk = cold(&disk_config, LoadPath::Disk, None);
    let mut disk_file = cold(&disk_config, LoadPath::DiskByPath, Some(input.clone()));
    let mut compile = cold(&compile_config, LoadPath::Compile, None);
    let mut disk_load = load_only(&disk_config, LoadPath::Disk, None);
    let mut disk_file_load = load_only(&disk_config, LoadPath::DiskByPath, Some(input.clone()));
    let mut raw_cwasm = |iters: u64| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let start = Instant::now();
            let engine = Floor::new(Tuning::AsWasmhost).engine;
            // SAFETY: written just above by `precompile_module` of an engine
            // with this very configuration.
            let module = unsafe { wasmtime::Module::deserialize_file(&engine, &cwasm) }
                .expect("deserialize .cwasm");
            let pre = Linker::new(&engine)
                .instantiate_pre(&module)
                .expect("instantiate_pre");
            let v = call_run(&engine, &pre);
            total += start.elapsed();
            assert_eq!(vec![Value::I32(v)], expected);
        }
        total
    };
    // `deserialize_file` alone, with an engine built before the clock starts
    // (the floor of `disk_cache_load_only`).
    let mut raw_deserialize = |iters: u64| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let engine = Floor::new(Tuning::AsWasmhost).engine;
            let start = Instant::now();
            // SAFETY: as above.
            let module = unsafe { wasmtime::Module::deserialize_file(&engine, &cwasm) }
                .expect("deserialize .cwasm");
            total += start.elapsed();
            drop((module, engine));
        }
        total
    };
    // Just building the engine, as wasmhost configures it, and as it was
    // configured before (with a pool of 1000 async fiber stacks).
    let engine_only = |tuning: Tuning| {
        move |iters: u64| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let floor = Floor::new(tuning);
                total += start.elapsed();
                drop(floor);
            }
            total
        }
    };
    let mut engine_as_wasmhost = engine_only(Tuning::AsWasmhost);
    let mut engine_fiber_stacks = engine_only(Tuning::MadviseReset);

    let mut g = c.benchmark_group(GROUP);
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.bench_function("disk_cache", |b| b.iter_custom(&mut disk));
    g.bench_function("disk_cache_file", |b| b.iter_custom(&mut disk_file));
    g.bench_function("compile", |b| b.iter_custom(&mut compile));
    g.bench_function("disk_cache_load_only", |b| b.iter_custom(&mut disk_load));
    g.bench_function("disk_cache_file_load_only", |b| {
        b.iter_custom(&mut disk_file_load)
    });
    g.bench_function("wasmtime_floor_cwasm", |b| b.iter_custom(&mut raw_cwasm));
    g.bench_function("wasmtime_floor_deserialize_only", |b| {
        b.iter_custom(&mut raw_deserialize)
    });
    g.bench_function("engine_new", |b| b.iter_custom(&mut engine_as_wasmhost));
    g.bench_function("engine_new_fiber_stacks", |b| {
        b.iter_custom(&mut engine_fiber_stacks)
    });
    g.finish();

    if mode.ratios(GROUP) {
        let m = interleave(
            &mut [
                ("disk_cache", &mut disk),
                ("compile", &mut compile),
                ("disk_cache_load_only", &mut disk_load),
                ("wasmtime_floor_cwasm", &mut raw_cwasm),
                ("engine_new", &mut engine_as_wasmhost),
                ("engine_new_fiber_stacks", &mut engine_fiber_stacks),
                ("disk_cache_file", &mut disk_file),
                ("disk_cache_file_load_only", &mut disk_file_load),
                ("wasmtime_floor_deserialize_only", &mut raw_deserialize),
            ],
            COLD_ROUNDS,
            Duration::from_millis(200),
        );
        let speedup = m[1].ratio(&m[0]);
        let line = format!(
            "ratio {GROUP}: compile {} / disk_cache {} = {:.1}x faster from disk (per-round {}); target >= 20x: {}\n\
             ratio {GROUP}: disk_cache_load_only {}; wasmtime_floor_cwasm {} (disk_cache = {:.2}x it); \
             engine_new {}; engine_new_fiber_stacks {}",
            fmt_ns(m[1].median()),
            fmt_ns(m[0].median()),
            speedup,
            m[1].round_ratios(&m[0]),
            met(speedup >= 20.0),
            fmt_ns(m[2].median()),
            fmt_ns(m[3].median()),
            m[0].ratio(&m[3]),
            fmt_ns(m[4].median()),
            fmt_ns(m[5].median()),
        );
        emit(report, line);
        let line = format!(
            "ratio {GROUP}: disk_cache_file {} = {:.2}x wasmtime_floor_cwasm (per-round {}); \
             disk_cache {} = {:.2}x it\n\
             ratio {GROUP}: disk_cache_file_load_only {} = {:.2}x wasmtime_floor_deserialize_only {} \
             (per-round {}); disk_cache_load_only {} = {:.2}x it",
            fmt_ns(m[6].median()),
            m[6].ratio(&m[3]),
            m[6].round_ratios(&m[3]),
            fmt_ns(m[0].median()),
            m[0].ratio(&m[3]),
            fmt_ns(m[7].median()),
            m[7].ratio(&m[8]),
            fmt_ns(m[8].median()),
            m[7].round_ratios(&m[8]),
            fmt_ns(m[2].median()),
            m[2].ratio(&m[8]),
        );
        emit(report, line);
    }
}

/// One fresh-instance call of the big module's `run`.
fn call_run(engine: &Engine, pre: &InstancePre<()>) -> i32 {
    let mut store = Store::new(engine, ());
    store.set_epoch_deadline(DEADLINE_TICKS);
    let instance = pre.instantiate(&mut store).expect("instantiate");
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .expect("run");
    run.call(&mut store, ()).expect("call run")
}

/// Threads named `wasmhost-epoch` alive in this process (Linux; 0 elsewhere).
fn epoch_threads() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == "wasmhost-epoch")
        .count()
}

/// Waits for the epoch threads of runtimes dropped earlier to exit; returns
/// how many stay (those of live runtimes).
fn settle_epoch_threads() -> usize {
    let mut last = epoch_threads();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = epoch_threads();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// A dropped `Runtime` stops its epoch thread, which may still be running
/// when the drop returns (and, while it held a strong engine handle, used to
/// unmap the instance pool then). Waits (at most 5 s) until the thread is
/// gone, so nothing of the previous runtime overlaps the next timed iteration.
fn wait_for_epoch_threads(baseline: usize) {
    let start = Instant::now();
    while epoch_threads() > baseline && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The path a cold load is meant to take.
#[derive(Debug, Clone, Copy)]
enum LoadPath {
    /// From the disk cache, the artifact trusted by its stamp.
    Disk,
    /// The same, the digest taken from the path index (input not read).
    DiskByPath,
    /// Compiled.
    Compile,
}

/// Checks that a cold load took the path it was meant to measure.
fn check_path(rt: &Runtime, way: LoadPath) {
    let s = rt.cache_stats();
    let got = (s.disk_hits, s.disk_verified, s.compiles, s.path_index_hits);
    let want = match way {
        LoadPath::Disk => (1, 0, 0, 0),
        LoadPath::DiskByPath => (1, 0, 0, 1),
        LoadPath::Compile => (0, 0, 1, 0),
    };
    assert_eq!(got, want, "{way:?}: {s:?}");
}

/// A module of `funcs` functions of `steps` arithmetic steps each, with
/// constants from a fixed LCG (so the module is the same on every run), and
/// an export `run` that calls a few of them.
fn big_module_wat(funcs: usize, steps: usize) -> String {
    use std::fmt::Write as _;
    let mut seed: u32 = 0x2545_f491;
    let mut next = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        seed
    };
    let mut s = String::with_capacity(funcs * steps * 60);
    s.push_str("(module\n");
    for i in 0..funcs {
        let _ = writeln!(
            s,
            "(func $f{i} (param $x i32) (result i32) (local $y i32)\n local.get $x local.set $y"
        );
        for _ in 0..steps {
            let k = next() as i32;
            let _ = match next() % 4 {
                0 => writeln!(s, " local.get $y i32.const {k} i32.add local.set $y"),
                1 => writeln!(s, " local.get $y i32.const {k} i32.mul local.set $y"),
                2 => writeln!(
                    s,
                    " local.get $y local.get $x i32.xor i32.const {k} i32.rotl local.set $y"
                ),
                _ => writeln!(
                    s,
                    " local.get $y i32.const {k} i32.shr_u local.get $x i32.add local.set $y"
                ),
            };
        }
        s.push_str(" local.get $y)\n");
    }
    s.push_str("(func (export \"run\") (result i32)\n i32.const 1\n");
    for i in (0..funcs).step_by(funcs.div_ceil(16).max(1)) {
        let _ = writeln!(s, " call $f{i}");
    }
    s.push_str("))\n");
    s
}

// ---------------------------------------------------------------------------
// threads

fn threads(c: &mut Criterion, mode: &Mode, report: &mut Vec<String>) {
    const GROUP: &str = "threads";
    if !mode.runs(GROUP) {
        return;
    }
    let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let module = rt
        .load(&Source::file(guest("numeric.wat")))
        .expect("load numeric.wat");
    let floor = Floor::new(Tuning::AsWasmhost);
    let pre = floor.numeric_pre();
    let madvise = Floor::new(Tuning::MadviseReset);
    let madvise_pre = madvise.numeric_pre();
    let ours_call = || {
        black_box(module.invoke("answer", &[]).expect("invoke answer"));
    };
    let raw_call = || {
        black_box(floor.answer(&pre));
    };
    let madvise_call = || {
        black_box(madvise.answer(&madvise_pre));
    };
    // The machine's own scaling: about 2 µs of arithmetic, no memory traffic.
    let cpu_call = || {
        let mut x = black_box(0x9e37_79b9_7f4a_7c15_u64);
        for _ in 0..1500 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        black_box(x);
    };
    let mut ours1 = |iters: u64| spread(1, iters, &ours_call);
    let mut ours2 = |iters: u64| spread(2, iters, &ours_call);
    let mut raw1 = |iters: u64| spread(1, iters, &raw_call);
    let mut raw2 = |iters: u64| spread(2, iters, &raw_call);
    let mut madvise1 = |iters: u64| spread(1, iters, &madvise_call);
    let mut madvise2 = |iters: u64| spread(2, iters, &madvise_call);
    let mut cpu1 = |iters: u64| spread(1, iters, &cpu_call);
    let mut cpu2 = |iters: u64| spread(2, iters, &cpu_call);

    let mut g = c.benchmark_group(GROUP);
    // One iteration is one call, wherever it runs: time/iter is the inverse
    // of the aggregate throughput.
    g.throughput(Throughput::Elements(1));
    g.bench_function("wasmhost/1", |b| b.iter_custom(&mut ours1));
    g.bench_function("wasmhost/2", |b| b.iter_custom(&mut ours2));
    g.bench_function("wasmtime_floor/1", |b| b.iter_custom(&mut raw1));
    g.bench_function("wasmtime_floor/2", |b| b.iter_custom(&mut raw2));
    g.bench_function("wasmtime_floor_madvise_reset/1", |b| {
        b.iter_custom(&mut madvise1)
    });
    g.bench_function("wasmtime_floor_madvise_reset/2", |b| {
        b.iter_custom(&mut madvise2)
    });
    g.bench_function("cpu_only/1", |b| b.iter_custom(&mut cpu1));
    g.bench_function("cpu_only/2", |b| b.iter_custom(&mut cpu2));
    g.finish();

    if mode.ratios(GROUP) {
        let m = interleave(
            &mut [
                ("wasmhost/1", &mut ours1),
                ("wasmhost/2", &mut ours2),
                ("wasmtime_floor/1", &mut raw1),
                ("wasmtime_floor/2", &mut raw2),
                ("wasmtime_floor_madvise_reset/1", &mut madvise1),
                ("wasmtime_floor_madvise_reset/2", &mut madvise2),
                ("cpu_only/1", &mut cpu1),
                ("cpu_only/2", &mut cpu2),
            ],
            THREAD_ROUNDS,
            BATCH,
        );
        let mut lines = Vec::new();
        for (i, name) in [
            "wasmhost",
            "wasmtime_floor",
            "wasmtime_floor_madvise_reset",
            "cpu_only",
        ]
        .iter()
        .enumerate()
        {
            let (one, two) = (&m[2 * i], &m[2 * i + 1]);
            lines.push(format!(
                "ratio {GROUP}: {name}: {:.0} calls/s on 1 thread, {:.0} on 2 = scaling {:.2}x (per-round {})",
                1e9 / one.median(),
                1e9 / two.median(),
                one.ratio(two),
                one.round_ratios(two),
            ));
        }
        lines.push(format!(
            "ratio {GROUP}: wasmhost/floor time per call: {:.2}x on 1 thread, {:.2}x on 2 (ideal scaling 2.00x on 2 cores)",
            m[0].ratio(&m[2]),
            m[1].ratio(&m[3]),
        ));
        emit(report, lines.join("\n"));
    }
}

/// Runs `iters` calls spread over `threads` threads started together; returns
/// the wall time from the first thread's start to the last thread's end.
///
/// Each worker reads the clock itself: a coordinating thread that starts the
/// clock when it is woken would often be woken late on a 2-core machine whose
/// cores the workers already occupy, and the time would come out too short.
fn spread(threads: u64, iters: u64, call: &(dyn Fn() + Sync)) -> Duration {
    let barrier = Barrier::new(threads as usize);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|i| {
                let n = iters / threads + u64::from(i < iters % threads);
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..n {
                        call();
                    }
                    (start, Instant::now())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker thread"))
            .collect()
    });
    let first = spans.iter().map(|s| s.0).min().expect("one thread");
    let last = spans.iter().map(|s| s.1).max().expect("one thread");
    last - first
}

// ---------------------------------------------------------------------------
// The raw-wasmtime floor

/// The epoch deadline wasmhost sets for its default 30 s timeout and 10 ms
/// tick (the value does not change the cost; it only has to be far away).
const DEADLINE_TICKS: u64 = 3001;

/// How the floor's engine is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tuning {
    /// Exactly wasmhost's configuration (`build_engine` for the default
    /// `RuntimeConfig`): freed memory and table slots are reset in place, up
    /// to `PoolConfig::keep_resident_bytes` and 64 KiB, with the dirty pages
    /// found by `PAGEMAP_SCAN` where the kernel has it; the default pool of
    /// fiber stacks for async calls.
    AsWasmhost,
    /// What wasmhost used before: wasmtime's default slot reset
    /// (`madvise(MADV_DONTNEED)`, so the next call page-faults its memory back
    /// in) and a pool of 1000 async fiber stacks.
    MadviseReset,
}

/// Raw wasmtime with the engine configuration of
/// `crates/wasmhost/src/engine.rs::build_engine` for `RuntimeConfig::default()`.
/// Keep `Tuning::AsWasmhost` in step with `build_engine`: only the settings
/// that change compiled code are checked (by the disk-cache fingerprint in
/// `cold_start_1mib`), not the pool's.
struct Floor {
    engine: Engine,
}

impl Floor {
    fn new(tuning: Tuning) -> Self {
        // Both floors come from wasmhost's own `wasmtime_config`, so they
        // cannot drift from the engine the library builds.
        let mut rc = RuntimeConfig::default();
        if let (Tuning::MadviseReset, Some(pool)) = (tuning, rc.pool.as_mut()) {
            pool.keep_resident_bytes = 0;
            pool.async_stacks = pool.max_instances.min(1000);
        }
        Floor {
            engine: Engine::new(&wasmhost::wasmtime_config(&rc))
                .unwrap_or_else(|e| panic!("pooling engine ({tuning:?}): {e:#}")),
        }
    }

    fn numeric_pre(&self) -> InstancePre<()> {
        let wasm = wat::parse_file(guest("numeric.wat")).expect("parse numeric.wat");
        let module = wasmtime::Module::new(&self.engine, wasm).expect("compile numeric.wat");
        Linker::new(&self.engine)
            .instantiate_pre(&module)
            .expect("instantiate_pre")
    }

    /// One fresh-instance call of `answer`.
    fn answer(&self, pre: &InstancePre<()>) -> i32 {
        let mut store = Store::new(&self.engine, ());
        store.set_epoch_deadline(DEADLINE_TICKS);
        let instance = pre.instantiate(&mut store).expect("instantiate");
        let answer = instance
            .get_typed_func::<(), i32>(&mut store, "answer")
            .expect("answer");
        answer.call(&mut store, ()).expect("call answer")
    }

    /// The same call through wasmtime's async API: a fiber per call,
    /// yielding at epoch deadlines.
    async fn answer_async(&self, pre: &InstancePre<()>) -> i32 {
        let mut store = Store::new(&self.engine, ());
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let instance = pre
            .instantiate_async(&mut store)
            .await
            .expect("instantiate");
        let answer = instance
            .get_typed_func::<(), i32>(&mut store, "answer")
            .expect("answer");
        answer
            .call_async(&mut store, ())
            .await
            .expect("call answer")
    }

    fn wasi_pre(&self, wasm: &[u8]) -> InstancePre<WasiP1Ctx> {
        let module = wasmtime::Module::new(&self.engine, wasm).expect("compile wasi-echo");
        let mut linker = Linker::new(&self.engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |cx: &mut WasiP1Ctx| cx)
            .expect("add wasi p1");
        linker.instantiate_pre(&module).expect("instantiate_pre")
    }

    /// One fresh-instance run of `wasi-echo echo` with `input` on stdin;
    /// returns stdout.
    fn echo(&self, pre: &InstancePre<WasiP1Ctx>, input: &Bytes) -> Bytes {
        let stdout = MemoryOutputPipe::new(DEFAULT_CAPTURE_LIMIT + 1);
        let mut builder = WasiCtxBuilder::new();
        builder
            .args(&["wasi-echo", "echo"])
            .stdin(MemoryInputPipe::new(input.clone()))
            .stdout(stdout.clone());
        let mut store = Store::new(&self.engine, builder.build_p1());
        store.set_epoch_deadline(DEADLINE_TICKS);
        let instance = pre.instantiate(&mut store).expect("instantiate");
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .expect("_start");
        if let Err(e) = start.call(&mut store, ()) {
            match e.downcast_ref::<I32Exit>() {
                Some(I32Exit(0)) => {}
                _ => panic!("wasi-echo failed: {e:?}"),
            }
        }
        drop(store);
        stdout.contents()
    }
}

/// The name of wasmhost's disk-cache directory for `engine`, computed the way
/// `crates/wasmhost/src/cache.rs::engine_fingerprint` does.
fn engine_fingerprint(engine: &Engine) -> String {
    use std::hash::{Hash, Hasher};
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!(
        "wasmtime-{}-{:016x}",
        wasmhost::wasmtime_version(),
        h.finish()
    )
}

// ---------------------------------------------------------------------------
// component_record

fn component_record(c: &mut Criterion, mode: &Mode, report: &mut Vec<String>) {
    use wasmtime::component::{Component, Linker as ComponentLinker, Val};
    const GROUP: &str = "component_record";
    if !mode.runs(GROUP) {
        return;
    }
    let wasm = std::fs::read(guest("wit-component.wasm")).expect("read wit-component.wasm");
    let input = r#"{"name": "Ada Lovelace", "age": 36, "email": "ada@example.com", "tags": ["math", "engines", "poetry"]}"#;
    let expected: serde_json::Value = serde_json::from_str(input).expect("json");

    let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
    rt.add_host_functions(wasmhost::HostFunctions::new("greeter").component(
        "wasmhost:example/host@0.1.0",
        "greet",
        |(name,): (String,)| Ok((name,)),
    ))
    .expect("host functions");
    let module = rt
        .load_bytes(wasm.clone())
        .expect("load wit-component")
        .with_capabilities(
            Capabilities::none()
                .with_wasi(Wasi::new())
                .with_host_functions("greeter"),
        );
    let out = module.call("echo-person", input).expect("call echo-person");
    assert_eq!(out.value.json().expect("json"), expected);

    let floor = Floor::new(Tuning::AsWasmhost);
    let component = Component::new(&floor.engine, &wasm).expect("compile component");
    let mut linker: ComponentLinker<FloorP2> = ComponentLinker::new(&floor.engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi p2");
    linker
        .instance("wasmhost:example/host@0.1.0")
        .expect("host instance")
        .func_wrap("greet", |_, (name,): (String,)| Ok((name,)))
        .expect("greet");
    let pre = linker.instantiate_pre(&component).expect("instantiate_pre");
    let person = Val::Record(vec![
        ("name".into(), Val::String("Ada Lovelace".into())),
        ("age".into(), Val::U8(36)),
        (
            "email".into(),
            Val::Option(Some(Box::new(Val::String("ada@example.com".into())))),
        ),
        (
            "tags".into(),
            Val::List(
                ["math", "engines", "poetry"]
                    .iter()
                    .map(|t| Val::String((*t).into()))
                    .collect(),
            ),
        ),
    ]);
    let raw_call = || -> Val {
        let mut store = Store::new(
            &floor.engine,
            FloorP2 {
                ctx: WasiCtxBuilder::new().build(),
                table: wasmtime::component::ResourceTable::new(),
            },
        );
        store.set_epoch_deadline(DEADLINE_TICKS);
        let instance = pre.instantiate(&mut store).expect("instantiate");
        let f = instance
            .get_func(&mut store, "echo-person")
            .expect("echo-person");
        let mut results = [Val::Bool(false)];
        f.call(&mut store, std::slice::from_ref(&person), &mut results)
            .expect("call");
        let [r] = results;
        r
    };
    assert_eq!(raw_call(), person, "floor: echo-person changed its input");

    let mut ours = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(module.call("echo-person", input).expect("call"));
        }
        start.elapsed()
    };
    let mut raw = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(raw_call());
        }
        start.elapsed()
    };
    let mut g = c.benchmark_group(GROUP);
    g.bench_function("wasmhost", |b| b.iter_custom(&mut ours));
    g.bench_function("wasmtime_floor", |b| b.iter_custom(&mut raw));
    g.finish();
    if mode.ratios(GROUP) {
        let m = interleave(
            &mut [("wasmhost", &mut ours), ("wasmtime_floor", &mut raw)],
            ROUNDS,
            BATCH,
        );
        emit(
            report,
            format!(
                "ratio {GROUP}: wasmhost (JSON in and out) {} / wasmtime_floor (prebuilt Val) {} per call = {:.2}x (per-round {})",
                fmt_ns(m[0].median()),
                fmt_ns(m[1].median()),
                m[0].ratio(&m[1]),
                m[0].round_ratios(&m[1]),
            ),
        );
    }
}

/// The store data of the component floor: WASI p2 for Rust's std imports.
struct FloorP2 {
    ctx: wasmtime_wasi::WasiCtx,
    table: wasmtime::component::ResourceTable,
}

impl wasmtime_wasi::WasiView for FloorP2 {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

// ---------------------------------------------------------------------------
// as_string

fn as_string(c: &mut Criterion, mode: &Mode, report: &mut Vec<String>) {
    const GROUP: &str = "as_string";
    if !mode.runs(GROUP) {
        return;
    }
    let wasm =
        std::fs::read(guest("as-counter-incremental.wasm")).expect("read as-counter-incremental");
    let input: String = "wasmhost ✓ "
        .repeat(1024 / 12 + 1)
        .chars()
        .take(1024)
        .collect();

    let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let module = rt.load_bytes(wasm.clone()).expect("load as-counter");
    let out = module.call("echo", &input).expect("call echo");
    assert_eq!(out.value.text().expect("text"), input);

    let floor = Floor::new(Tuning::AsWasmhost);
    let compiled = wasmtime::Module::new(&floor.engine, &wasm).expect("compile");
    let mut linker: Linker<()> = Linker::new(&floor.engine);
    linker
        .func_wrap(
            "env",
            "abort",
            |_: i32, _: i32, _: i32, _: i32| -> wasmtime::Result<()> {
                Err(wasmtime::Error::msg("abort"))
            },
        )
        .expect("abort");
    let pre = linker.instantiate_pre(&compiled).expect("instantiate_pre");
    let raw_call = |s: &str| -> String {
        let mut store = Store::new(&floor.engine, ());
        store.set_epoch_deadline(DEADLINE_TICKS);
        let instance = pre.instantiate(&mut store).expect("instantiate");
        let new = instance
            .get_typed_func::<(i32, i32), i32>(&mut store, "__new")
            .expect("__new");
        let pin = instance
            .get_typed_func::<i32, i32>(&mut store, "__pin")
            .expect("__pin");
        let unpin = instance
            .get_typed_func::<i32, ()>(&mut store, "__unpin")
            .expect("__unpin");
        let echo = instance
            .get_typed_func::<i32, i32>(&mut store, "echo")
            .expect("echo");
        let memory = instance.get_memory(&mut store, "memory").expect("memory");
        let units: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let ptr = new
            .call(&mut store, (units.len() as i32, 2))
            .expect("__new");
        memory
            .write(&mut store, ptr as usize, &units)
            .expect("write");
        pin.call(&mut store, ptr).expect("__pin");
        let out = echo.call(&mut store, ptr).expect("echo") as usize;
        let data = memory.data(&store);
        let len = u32::from_le_bytes(data[out - 4..out].try_into().expect("header")) as usize;
        let utf16: Vec<u16> = data[out..out + len]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let text = String::from_utf16(&utf16).expect("utf-16");
        unpin.call(&mut store, ptr).expect("__unpin");
        text
    };
    assert_eq!(raw_call(&input), input, "floor: echo changed its input");

    let mut ours = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(module.call("echo", &input).expect("call"));
        }
        start.elapsed()
    };
    let mut raw = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(raw_call(&input));
        }
        start.elapsed()
    };
    let mut g = c.benchmark_group(GROUP);
    g.bench_function("wasmhost", |b| b.iter_custom(&mut ours));
    g.bench_function("wasmtime_floor", |b| b.iter_custom(&mut raw));
    g.finish();
    if mode.ratios(GROUP) {
        let m = interleave(
            &mut [("wasmhost", &mut ours), ("wasmtime_floor", &mut raw)],
            ROUNDS,
            BATCH,
        );
        emit(
            report,
            format!(
                "ratio {GROUP}: wasmhost {} / wasmtime_floor {} per 1 KiB string call = {:.2}x (per-round {})",
                fmt_ns(m[0].median()),
                fmt_ns(m[1].median()),
                m[0].ratio(&m[1]),
                m[0].round_ratios(&m[1]),
            ),
        );
    }
}

// ---------------------------------------------------------------------------
// Interleaved measurement and reporting

/// Rounds and target batch length of the interleaved measurements.
const ROUNDS: usize = 25;
const BATCH: Duration = Duration::from_millis(20);
const COLD_ROUNDS: usize = 7;
/// Two-thread runs are noisier on a small VM: more rounds.
const THREAD_ROUNDS: usize = 41;

/// A guest built by `scripts/build-guests.sh`.
fn guest(file: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/guests/out")
        .join(file);
    assert!(
        path.exists(),
        "guest `{}` is missing: run scripts/build-guests.sh first",
        path.display()
    );
    path
}
