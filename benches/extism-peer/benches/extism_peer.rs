//! The same Extism plugin run through wasmhost and through Extism's own host
//! (the `extism` crate 1.13.0, on wasmtime 37), in one process, with the
//! ratio measured interleaved. Numbers and how to read them: README.md
//! beside this crate and the section "Extism 1.13 vs wasmhost" of
//! docs/benchmarks.md.
//!
//! ```text
//! scripts/build-guests.sh
//! cargo bench --manifest-path benches/extism-peer/Cargo.toml --target-dir target \
//!     -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! The plugin is `target/guests/out/extism-plugin.wasm` (extism-pdk 1.4.1);
//! its export `echo` returns its input. It also imports the user host
//! function `extism:host/user::reverse`, so both hosts provide one.
//!
//! Groups (input: 1 KiB of bytes; each group first checks once, in both
//! hosts, that the output equals the input):
//!
//! * `extism_echo_warm`: one long-lived plugin instance, `echo` called
//!   again and again. wasmhost: `Module::instantiate` then
//!   `Instance::call`; Extism: `Plugin::new` then `Plugin::call`.
//! * `extism_echo_fresh`: a new plugin instance per call from an
//!   already-compiled module. wasmhost: `Module::call` (a fresh sandbox per
//!   call); Extism: `Plugin::new_from_compiled` of one `CompiledPlugin`,
//!   then `Plugin::call`.
//!
//! Both hosts run with their defaults: wasmhost's `RuntimeConfig::default()`
//! and default limits (timeouts through epochs), Extism without WASI and
//! without a manifest (no timeout, no memory limit). Library backtraces are
//! off unless `RUST_LIB_BACKTRACE` is set (see `pin_library_backtraces`):
//! with them on, every Extism call captures one.
//!
//! Criterion measures each variant on its own. After each group the bench
//! measures both variants again interleaved (rounds of one batch of each, in
//! rotating order, as `crates/wasmhost/benches/runtime.rs` does) and prints
//! the medians and their ratio on a line starting with `ratio`. A positional
//! filter also selects which groups set up and print ratios; `--test`,
//! `--list` and `--profile-time` skip the ratio rounds.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use extism::{CompiledPlugin, CurrentPlugin, Function, PTR, Plugin, PluginBuilder, UserData, Val};
use wasmhost::{CallOptions, Capabilities, HostFunctions, Runtime, RuntimeConfig, Source};

/// The input of every call: 1 KiB.
const INPUT_LEN: usize = 1024;
/// The goal: wasmhost at least this many times faster than Extism.
const TARGET_SPEEDUP: f64 = 5.0;
/// The name wasmhost's host-function set is granted by.
const HOST_SET: &str = "text";

#[path = "../../../crates/wasmhost/benches/support/interleave.rs"]
mod interleave;
use interleave::*;

fn main() {
    let backtraces = pin_library_backtraces();
    let mode = Mode::from_args();
    let mut c = Criterion::default().configure_from_args();
    let mut report = Vec::new();
    if mode.ratios("extism_echo_warm") || mode.ratios("extism_echo_fresh") {
        emit(&mut report, format!("library backtraces: {backtraces}"));
    }
    let input: Vec<u8> = (0..INPUT_LEN).map(|i| (i * 7 % 251) as u8).collect();
    let wasm = std::fs::read(plugin_path()).unwrap();
    echo_warm(&mut c, &mode, &mut report, &wasm, &input);
    echo_fresh(&mut c, &mode, &mut report, &wasm, &input);
    c.final_summary();
    if !report.is_empty() {
        println!("\n==== Extism 1.13 vs wasmhost (interleaved rounds, medians) ====");
        for line in &report {
            println!("{line}");
        }
    }
}

/// Turns library backtraces off unless `RUST_LIB_BACKTRACE` says otherwise,
/// and says which is in force.
///
/// Extism creates an `anyhow::Error` on every call (`Store::get_fuel` on a
/// store without fuel), and anyhow captures a backtrace for each one when
/// `RUST_LIB_BACKTRACE`, or failing that `RUST_BACKTRACE`, asks for it. That
/// roughly doubles Extism's warm call. So the result would depend on whether
/// the shell happens to have `RUST_BACKTRACE=1`; the bench measures what a
/// production host sees (off). Run with `RUST_LIB_BACKTRACE=1` to measure
/// with capture on. Panics still print backtraces as `RUST_BACKTRACE` says.
fn pin_library_backtraces() -> String {
    match std::env::var("RUST_LIB_BACKTRACE") {
        Ok(v) => format!(
            "RUST_LIB_BACKTRACE={v} as given (capture {})",
            if v == "0" { "off" } else { "on" }
        ),
        Err(_) => {
            // SAFETY: the first thing `main` does: no other thread exists
            // yet that could read the environment concurrently.
            unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
            "off (the bench set RUST_LIB_BACKTRACE=0; RUST_LIB_BACKTRACE=1 turns capture on)"
                .to_string()
        }
    }
}

// ---------------------------------------------------------------------------
// The two hosts

/// `reverse` for wasmhost: bytes in, bytes out.
fn reverse(bytes: &[u8]) -> Result<Vec<u8>, String> {
    Ok(bytes.iter().rev().copied().collect())
}

/// A wasmhost runtime with `reverse` registered, and the plugin loaded with
/// the grant to use it.
fn wasmhost_module(wasm: &[u8]) -> (Runtime, wasmhost::Module) {
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    rt.add_host_functions(HostFunctions::new(HOST_SET).extism("reverse", reverse))
        .unwrap();
    let module = rt
        .load(&Source::Bytes(wasm.to_vec()))
        .unwrap()
        .with_capabilities(Capabilities::none().with_host_functions(HOST_SET));
    (rt, module)
}

/// `reverse` for Extism, in `extism:host/user`.
fn extism_reverse() -> Function {
    Function::new(
        "reverse",
        [PTR],
        [PTR],
        UserData::new(()),
        |plugin: &mut CurrentPlugin, inputs: &[Val], outputs: &mut [Val], _| {
            let reversed: Vec<u8> = plugin
                .memory_get_val::<&[u8]>(&inputs[0])?
                .iter()
                .rev()
                .copied()
                .collect();
            plugin.memory_set_val(&mut outputs[0], reversed)?;
            Ok(())
        },
    )
    .with_namespace("extism:host/user")
}

/// Checks, once per host, that both host functions are wired up: the
/// plugin's `reverse_via_host` goes through `reverse`.
fn check_reverse(module: &wasmhost::Module, extism: &mut Plugin) {
    let want = "host said: olleh";
    let ours = module.call("reverse_via_host", "hello").unwrap();
    assert_eq!(ours.value.text().unwrap(), want);
    let theirs = extism
        .call::<&str, &str>("reverse_via_host", "hello")
        .unwrap();
    assert_eq!(theirs, want);
}

// ---------------------------------------------------------------------------
// extism_echo_warm

fn echo_warm(c: &mut Criterion, mode: &Mode, report: &mut Vec<String>, wasm: &[u8], input: &[u8]) {
    const GROUP: &str = "extism_echo_warm";
    if !mode.runs(GROUP) {
        return;
    }
    let (_rt, module) = wasmhost_module(wasm);
    let mut inst = module.instantiate(&CallOptions::default()).unwrap();
    let mut plugin = Plugin::new(wasm, [extism_reverse()], false).unwrap();
    check_reverse(&module, &mut plugin);
    assert_eq!(&*inst.call("echo", input).unwrap().value.bytes(), input);
    assert_eq!(plugin.call::<&[u8], &[u8]>("echo", input).unwrap(), input);

    let mut ours = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            let out = inst.call("echo", black_box(input)).unwrap();
            black_box(out.value.bytes().len());
        }
        start.elapsed()
    };
    let mut theirs = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            let out = plugin
                .call::<&[u8], &[u8]>("echo", black_box(input))
                .unwrap();
            black_box(out.len());
        }
        start.elapsed()
    };

    let mut g = c.benchmark_group(GROUP);
    g.throughput(Throughput::Elements(1));
    g.bench_function("wasmhost", |b| b.iter_custom(&mut ours));
    g.bench_function("extism", |b| b.iter_custom(&mut theirs));
    g.finish();

    if mode.ratios(GROUP) {
        let m = interleave(
            &mut [("wasmhost", &mut ours), ("extism", &mut theirs)],
            ROUNDS,
            BATCH,
        );
        emit(report, ratio_line("warm echo 1KiB", &m[0], &m[1]));
    }
    // The instance was never restarted: every call succeeded in place.
    assert_eq!(inst.restarts(), 0);
}

// ---------------------------------------------------------------------------
// extism_echo_fresh

fn echo_fresh(c: &mut Criterion, mode: &Mode, report: &mut Vec<String>, wasm: &[u8], input: &[u8]) {
    const GROUP: &str = "extism_echo_fresh";
    if !mode.runs(GROUP) {
        return;
    }
    let (_rt, module) = wasmhost_module(wasm);
    let compiled =
        CompiledPlugin::new(PluginBuilder::new(wasm).with_functions([extism_reverse()])).unwrap();
    check_reverse(&module, &mut Plugin::new_from_compiled(&compiled).unwrap());
    assert_eq!(&*module.call("echo", input).unwrap().value.bytes(), input);
    {
        let mut plugin = Plugin::new_from_compiled(&compiled).unwrap();
        assert_eq!(plugin.call::<&[u8], &[u8]>("echo", input).unwrap(), input);
    }

    let mut ours = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            let out = module.call("echo", black_box(input)).unwrap();
            black_box(out.value.bytes().len());
        }
        start.elapsed()
    };
    let mut theirs = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            let mut plugin = Plugin::new_from_compiled(&compiled).unwrap();
            let out = plugin
                .call::<&[u8], &[u8]>("echo", black_box(input))
                .unwrap();
            black_box(out.len());
        }
        start.elapsed()
    };

    let mut g = c.benchmark_group(GROUP);
    g.throughput(Throughput::Elements(1));
    g.bench_function("wasmhost", |b| b.iter_custom(&mut ours));
    g.bench_function("extism", |b| b.iter_custom(&mut theirs));
    g.finish();

    if mode.ratios(GROUP) {
        let m = interleave(
            &mut [("wasmhost", &mut ours), ("extism", &mut theirs)],
            ROUNDS,
            BATCH,
        );
        emit(report, ratio_line("fresh plugin echo 1KiB", &m[0], &m[1]));
    }
}

fn ratio_line(what: &str, ours: &Samples, theirs: &Samples) -> String {
    let speedup = theirs.ratio(ours);
    format!(
        "ratio {what}: extism / wasmhost = {speedup:.1}x (wasmhost {}, extism {}; per-round {}); target >= {TARGET_SPEEDUP:.0}x: {}",
        fmt_ns(ours.median()),
        fmt_ns(theirs.median()),
        theirs.round_ratios(ours),
        if speedup >= TARGET_SPEEDUP {
            "met"
        } else {
            "MISSED"
        },
    )
}

// ---------------------------------------------------------------------------
// Interleaved measurement and reporting (as in crates/wasmhost/benches/runtime.rs)

/// Rounds and target batch length of the interleaved measurements.
const ROUNDS: usize = 25;
const BATCH: Duration = Duration::from_millis(20);

/// The plugin built by `scripts/build-guests.sh`.
fn plugin_path() -> PathBuf {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/guests/out/extism-plugin.wasm");
    assert!(
        path.exists(),
        "`{}` is missing: run scripts/build-guests.sh first",
        path.display()
    );
    path
}
