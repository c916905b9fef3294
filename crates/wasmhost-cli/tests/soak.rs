//! Chaos soak of `wasmhost serve` (issue 15, item 3): a bounded mixed load
//! on loopback — good calls; traps, timeouts, memory bombs and stdout
//! floods; oversize bodies; slow clients; clients that disconnect
//! mid-request; uploads of junk; an actor under concurrent senders — then
//! checks that:
//!
//! - the server neither crashed nor logged a panic;
//! - every answer that is not a success carries an error code;
//! - resident memory after warm-up stays within [`RSS_DRIFT`];
//! - no file descriptor leaks, and no request slot stays taken;
//! - good calls keep a p99 within [`P99_FACTOR`] of their quiet p99;
//! - the actor counted exactly the increments it acknowledged;
//! - the server drains and exits 0 on SIGTERM.
//!
//! `SOAK_SECONDS` sets the length of the mixed load (default 20 s, what CI
//! runs); `scripts/soak.sh [SECONDS]` runs it longer, in a release build,
//! and prints the figures (requests, error mix, RSS drift, fds).

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{built, request, serve, wat};

/// Most the resident set may grow from the end of warm-up to the end of the
/// load. Everything the server keeps is bounded by count (compiled modules
/// by the LRU, instances by the pool, actors by one), so what remains is
/// the allocator's: per-thread arenas holding freed request and guest
/// buffers (the stdout flood's 1 MiB captures, 2 MiB oversize bodies
/// refused by length). 64 MiB is several times what a 20 s run shows.
const RSS_DRIFT: u64 = 64 << 20;

/// Good calls' p99 under the mixed load, against the same calls alone
/// (never taken as less than [`QUIET_FLOOR`]). The load keeps guests
/// burning a core until their 200 ms timeout, yielding to the executor at
/// every 10 ms epoch tick, on a 2-core machine that also runs the load
/// generator's 15 threads: a good call waits for a core behind them, a few
/// ticks at a time, but never for one of them to finish. Measured on a
/// machine also running four compilers: 157-264 ms against 0.8-5 ms
/// quiet (at most 88x the floor).
const P99_FACTOR: f64 = 100.0;

/// Below this, a quiet p99 is the scheduler's noise, not the server's.
const QUIET_FLOOR: Duration = Duration::from_millis(3);

fn seconds() -> u64 {
    std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

/// Resident memory of `pid` in bytes (VmRSS).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// Open file descriptors of `pid`.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("proc fd")
        .count()
}

fn p99(mut samples: Vec<Duration>) -> Duration {
    assert!(!samples.is_empty(), "no samples");
    samples.sort();
    samples[(samples.len() * 99 / 100).min(samples.len() - 1)]
}

/// What the load saw: answers by kind and status/code, and anything wrong.
#[derive(Default)]
struct Tally {
    answers: Mutex<BTreeMap<String, u64>>,
    problems: Mutex<Vec<String>>,
    good: Mutex<Vec<Duration>>,
    acked_increments: AtomicU64,
}

impl Tally {
    fn count(&self, kind: &str, what: &str) {
        *self
            .answers
            .lock()
            .expect("tally")
            .entry(format!("{kind}: {what}"))
            .or_default() += 1;
    }

    fn problem(&self, p: String) {
        let mut problems = self.problems.lock().expect("tally");
        if problems.len() < 50 {
            problems.push(p);
        }
    }

    /// Counts an answer: a success, or an error whose body names its code
    /// (one of `expected`, else a problem).
    fn answer(&self, kind: &str, status: u16, body: &str, expected: &[&str]) {
        if (200..300).contains(&status) {
            self.count(kind, &status.to_string());
            return;
        }
        let code = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_string));
        match code {
            Some(code) => {
                self.count(kind, &format!("{status} {code}"));
                // Under load any request may be told to come back later.
                if !expected.contains(&code.as_str()) && code != "overloaded" {
                    self.problem(format!("{kind}: unexpected {status} {code}: {body}"));
                }
            }
            None => self.problem(format!("{kind}: {status} without an error code: {body:?}")),
        }
    }
}

fn post(addr: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    request(addr, "POST", path, &[], body).map(|(s, _, b)| (s, b))
}

/// Runs `step` in a loop on its own thread until `stop`.
fn client(
    stop: &Arc<AtomicBool>,
    tally: &Arc<Tally>,
    step: impl Fn(&Tally) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    let stop = stop.clone();
    let tally = tally.clone();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            step(&tally);
        }
    })
}

#[test]
fn mixed_hostile_load_leaves_the_server_healthy() {
    let counter = built("as-counter-actor.wasm");
    let mut s = serve(&[
        "--timeout",
        "200ms",
        "--max-memory",
        "16MiB",
        "--max-body",
        "1MiB",
        "--header-timeout",
        "1s",
        "--route",
        &format!("/burn={},mode=function,function=burn", wat("burn")),
        "--route",
        &format!("/trap={},mode=function,function=run", wat("unreachable")),
        "--route",
        &format!("/spin={},mode=function,function=run", wat("loop")),
        "--route",
        &format!("/bomb={},mode=function,function=run", wat("grow")),
        "--route",
        &format!("/flood={},mode=sync", wat("flood")),
        "--route",
        &format!("/counter={counter},mode=actor,function=execute"),
    ]);
    let addr = s.addr.clone();
    let pid = s.child.id();

    // Quiet: good calls alone, and every route once so that all of it is
    // compiled and warm.
    let mut quiet = Vec::new();
    for _ in 0..300 {
        let started = Instant::now();
        let (status, body) = post(&addr, "/burn", "[1000]").expect("burn");
        quiet.push(started.elapsed());
        assert_eq!((status, body.as_str()), (200, "1000"));
    }
    let quiet_p99 = p99(quiet);
    for (path, body) in [("/trap", ""), ("/bomb", ""), ("/counter/soak", "get")] {
        post(&addr, path, body).expect(path);
    }
    let fds_before = fds(pid);
    let fd_names = |pid: u32| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| std::fs::read_link(e.path()).ok())
                    .map(|p| p.display().to_string())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let names_before = fd_names(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut clients = Vec::new();
    // Good calls, timed.
    for _ in 0..2 {
        let addr = addr.clone();
        clients.push(client(&stop, &tally, move |t| {
            let started = Instant::now();
            match post(&addr, "/burn", "[1000]") {
                Ok((200, body)) if body == "1000" => {
                    t.good.lock().expect("good").push(started.elapsed());
                    t.count("good", "200");
                }
                Ok((status, body)) => t.answer("good", status, &body, &[]),
                Err(e) => t.problem(format!("good: {e}")),
            }
        }));
    }
    // Hostile guests: each answer must be its own code.
    for (path, codes) in [
        ("/trap", &["trap"][..]),
        ("/spin", &["timeout"]),
        ("/bomb", &["memory_limit"]),
        // Stopped at its capture limit, or by its deadline first when the
        // machine is busy.
        ("/flood", &["memory_limit", "timeout"]),
    ] {
        let addr = addr.clone();
        clients.push(client(&stop, &tally, move |t| {
            match post(&addr, path, "") {
                Ok((status, body)) => t.answer(path, status, &body, codes),
                Err(e) => t.problem(format!("{path}: {e}")),
            }
        }));
    }
    // Oversize bodies: announced (refused by length) and sent.
    {
        let addr = addr.clone();
        let big = "x".repeat(2 << 20);
        clients.push(client(&stop, &tally, move |t| {
            match post(&addr, "/burn", &big) {
                Ok((status, body)) => t.answer("oversize", status, &body, &["payload_too_large"]),
                // The server may close before reading all of it.
                Err(_) => t.count("oversize", "closed"),
            }
        }));
    }
    // Slow clients: half a request, then silence until the header timeout.
    {
        let addr = addr.clone();
        clients.push(client(&stop, &tally, move |t| {
            let Ok(mut conn) = TcpStream::connect(&addr) else {
                t.problem("slow: cannot connect".into());
                return;
            };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = conn.write_all(b"POST /burn HTTP/1.1\r\nhost: x\r\n");
            let mut rest = Vec::new();
            // The server hangs up (after --header-timeout) with or without
            // a 408; it must not keep the connection.
            match conn.read_to_end(&mut rest) {
                Ok(_) => t.count("slow", "closed by the server"),
                Err(e) => t.problem(format!("slow: still open after 10 s: {e}")),
            }
        }));
    }
    // Clients that disconnect mid-request: the guest is dropped mid-call.
    {
        let addr = addr.clone();
        clients.push(client(&stop, &tally, move |t| {
            if let Ok(mut conn) = TcpStream::connect(&addr) {
                let _ =
                    conn.write_all(b"POST /spin HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n");
                std::thread::sleep(Duration::from_millis(50));
                drop(conn);
                t.count("disconnect", "dropped");
            }
        }));
    }
    // Uploads of junk.
    {
        let addr = addr.clone();
        clients.push(client(&stop, &tally, move |t| {
            let junk: String = (0..4096)
                .map(|i| char::from(b'!' + (i % 90) as u8))
                .collect();
            match post(&addr, "/api/v1/modules?name=junk", &junk) {
                Ok((status, body)) => t.answer("junk upload", status, &body, &["invalid_module"]),
                Err(e) => t.problem(format!("junk upload: {e}")),
            }
        }));
    }
    // One actor, four concurrent senders.
    for _ in 0..4 {
        let addr = addr.clone();
        clients.push(client(&stop, &tally, move |t| {
            match post(&addr, "/counter/soak", "increment 1") {
                Ok((200, _)) => {
                    t.acked_increments.fetch_add(1, Ordering::Relaxed);
                    t.count("actor", "200");
                }
                Ok((status, body)) => t.answer("actor", status, &body, &[]),
                Err(e) => t.problem(format!("actor: {e}")),
            }
        }));
    }

    let total = Duration::from_secs(seconds());
    let warm_up = total / 5;
    std::thread::sleep(warm_up);
    let rss_warm = rss(pid);
    std::thread::sleep(total - warm_up);
    let rss_end = rss(pid);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread");
    }

    // Every connection closed, every slot free.
    let settle = Instant::now();
    let fds_after = loop {
        let n = fds(pid);
        let (_, _, ready) = request(&addr, "GET", "/readyz", &[], "").expect("readyz");
        if (n <= fds_before && ready.contains("0 running, 0 waiting"))
            || settle.elapsed() > Duration::from_secs(15)
        {
            break n;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (_, _, ready) = request(&addr, "GET", "/readyz", &[], "").expect("readyz");
    let good = std::mem::take(&mut *tally.good.lock().expect("good"));
    let good_n = good.len();
    let loaded_p99 = p99(good);
    let acked = tally.acked_increments.load(Ordering::Relaxed);
    let (status, _, count) =
        request(&addr, "POST", "/counter/soak", &[], "get").expect("counter get");

    let answers = tally.answers.lock().expect("tally").clone();
    let requests: u64 = answers.values().sum();
    eprintln!("soak: {} s, {requests} requests", total.as_secs());
    for (what, n) in &answers {
        eprintln!("  {what}: {n}");
    }
    eprintln!(
        "  rss: {} MiB after warm-up, {} MiB at the end ({:+} KiB)",
        rss_warm >> 20,
        rss_end >> 20,
        (rss_end as i64 - rss_warm as i64) / 1024
    );
    eprintln!(
        "  fds: {fds_before} before, {fds_after} after; {}",
        ready.trim()
    );
    eprintln!(
        "  good calls: {good_n}, p99 {loaded_p99:?} under load, {quiet_p99:?} quiet ({:.1}x)",
        loaded_p99.as_secs_f64() / quiet_p99.as_secs_f64()
    );

    let problems = tally.problems.lock().expect("tally").clone();
    assert!(problems.is_empty(), "{problems:#?}");
    for kind in [
        "good",
        "/trap",
        "/spin",
        "/bomb",
        "/flood",
        "junk upload",
        "actor",
    ] {
        assert!(
            answers.keys().any(|k| k.starts_with(&format!("{kind}: "))),
            "no answer at all for {kind}: {answers:?}"
        );
    }
    assert!(
        rss_end <= rss_warm + RSS_DRIFT,
        "RSS grew {} KiB after warm-up",
        (rss_end - rss_warm) / 1024
    );
    assert!(
        fds_after <= fds_before,
        "file descriptors: {fds_before} before the load, {fds_after} after: {names_before:?} then {:?}",
        fd_names(pid)
    );
    assert!(ready.contains("0 running, 0 waiting"), "{ready}");
    assert!(
        loaded_p99.as_secs_f64() <= quiet_p99.max(QUIET_FLOOR).as_secs_f64() * P99_FACTOR,
        "good calls' p99 {loaded_p99:?} under load, {quiet_p99:?} quiet"
    );
    assert_eq!(status, 200, "{count}");
    assert_eq!(
        count.trim(),
        acked.to_string(),
        "the actor's count against the increments it acknowledged"
    );

    // Drains and exits cleanly.
    s.signal("TERM");
    let exit = s.wait();
    assert!(exit.success(), "{exit}");
    let log = s.log.lock().expect("log").join("\n");
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains("RUST_BACKTRACE"), "{log}");
}
