//! Bounded compilation in `wasmhost serve` (issue 15, item 6): a burst of
//! uploads of modules that are slow to compile leaves `/healthz` and calls of
//! compiled modules answering and the server's memory bounded; the queue,
//! the size limit and the compile deadline answer with their codes.

mod common;

use std::time::Duration;

use common::{http, serve, wat};

/// A WAT module of `functions` functions of straight-line arithmetic: slow
/// for Cranelift to compile (a debug build of wasmhost takes seconds), and
/// distinct for each `seed`, so that no two are one module to the cache.
fn heavy_wat(seed: u32, functions: u32) -> String {
    let mut wat = String::from("(module\n");
    for f in 0..functions {
        wat.push_str(&format!(
            "  (func (export \"f{f}\") (param i32 i32) (result i32) (local i32)\n"
        ));
        for i in 0..40 {
            let k = seed.wrapping_mul(7919).wrapping_add(f * 131 + i);
            wat.push_str(&format!(
                "    local.get {} i32.const {k} i32.mul local.get 1 i32.xor local.set 2\n",
                i % 2
            ));
            wat.push_str("    local.get 2 local.get 0 i32.add local.set 0\n");
        }
        wat.push_str("    local.get 0)\n");
    }
    wat.push_str(")\n");
    wat
}

/// Functions in a slow module: about 3 s to compile in a debug build.
const HEAVY: u32 = 250;

/// The server's peak resident memory so far (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kib * 1024
}

fn upload(addr: &str, name: &str, body: &str) -> (u16, String) {
    http(addr, "POST", &format!("/api/v1/modules?name={name}"), body)
}

#[test]
fn a_burst_of_slow_compiles_is_queued_refused_and_bounded() {
    let s = serve(&[
        "--max-compiles",
        "1",
        "--compile-queue",
        "2",
        "--route",
        &format!("/burn={},mode=function,function=burn", wat("burn")),
    ]);
    let pid = s.child.id();
    // A compiled module answers before the burst.
    assert_eq!(
        http(&s.addr, "POST", "/burn", "[1000]"),
        (200, "1000".into())
    );

    // One slow compile alone: how much it raises the peak.
    let before_one = peak_rss(pid);
    let (status, body) = upload(&s.addr, "heavy0", &heavy_wat(0, HEAVY));
    assert_eq!(status, 201, "{body}");
    let after_one = peak_rss(pid);
    let one = after_one.saturating_sub(before_one);
    eprintln!("one compile raised the peak RSS by {} KiB", one / 1024);

    // Six at once: one compiles, two wait, the rest are refused at once.
    let uploads: Vec<_> = (1..=6)
        .map(|seed| {
            let addr = s.addr.clone();
            let module = heavy_wat(seed, HEAVY);
            std::thread::spawn(move || upload(&addr, &format!("heavy{seed}"), &module))
        })
        .collect();
    // While they compile, the server still answers health checks and runs
    // compiled modules: both answer before the last upload has.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(http(&s.addr, "GET", "/healthz", "").0, 200);
    assert_eq!(
        http(&s.addr, "POST", "/burn", "[2000]"),
        (200, "2000".into())
    );
    assert!(
        uploads.iter().any(|u| !u.is_finished()),
        "every upload had finished before /healthz answered: the modules compile too fast \
         for this test to show anything"
    );
    let answers: Vec<(u16, String)> = uploads
        .into_iter()
        .map(|u| u.join().expect("upload thread"))
        .collect();
    // One compile at a time bounds the memory compiling takes: the burst
    // raises the peak by at most twice what one compile did (the rest of
    // the burst's memory: six request bodies of about 1 MB, and what the
    // allocator keeps of a compile's arenas), plus 16 MiB. Measured here:
    // one compile 30-44 MiB, the burst 43-62 MiB more; with six compiles
    // let run at once, 93-104 MiB more.
    let after_burst = peak_rss(pid);
    let burst = after_burst.saturating_sub(after_one);
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    eprintln!(
        "the burst ({created} compiled) raised the peak RSS by {} KiB more",
        burst / 1024
    );
    let refused: Vec<_> = answers.iter().filter(|(s, _)| *s == 503).collect();
    assert_eq!(created + refused.len(), 6, "{answers:?}");
    assert!(created >= 1, "{answers:?}");
    assert!(
        !refused.is_empty(),
        "six slow uploads, three places: {answers:?}"
    );
    for (_, body) in &refused {
        assert!(body.contains("\"overloaded\""), "{body}");
        assert!(body.contains("waiting"), "{body}");
    }
    assert!(
        burst <= 2 * one + (16 << 20),
        "peak RSS rose by {} KiB in the burst, against {} KiB for one compile",
        burst / 1024,
        one / 1024
    );
    assert_eq!(http(&s.addr, "GET", "/healthz", "").0, 200);
}

#[test]
fn a_compile_past_its_deadline_is_refused_every_time_and_frees_nothing_early() {
    let s = serve(&[
        "--max-compiles",
        "2",
        "--compile-timeout",
        "100ms",
        "--max-module-size",
        "4MiB",
    ]);
    let heavy = heavy_wat(100, HEAVY);
    let (status, body) = upload(&s.addr, "slow", &heavy);
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("\"timeout\""), "{body}");
    assert!(
        body.contains("compiling the module took longer than 100ms"),
        "{body}"
    );
    // A small module still compiles in the other slot.
    let (status, body) = upload(
        &s.addr,
        "small",
        &std::fs::read_to_string(wat("burn")).expect("burn.wat"),
    );
    assert_eq!(status, 201, "{body}");
    // The late result of the first compile was not kept: the same module
    // is refused again, not served from the cache.
    let (status, body) = upload(&s.addr, "slow", &heavy);
    assert_eq!(status, 504, "{body}");
    // Over the size limit: refused before it is parsed.
    let big = format!("(module)\n{}", ";; padding\n".repeat(400_000));
    let (status, body) = upload(&s.addr, "big", &big);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("over the limit of 4194304 bytes"), "{body}");
    assert!(body.contains("--max-module-size"), "{body}");
}
