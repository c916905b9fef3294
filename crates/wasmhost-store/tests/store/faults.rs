//! Storage faults on the S3 backend (issue 15, item 4): the S3 server
//! stopped or killed in the middle of pushes.
//!
//! * [`s3_stopped_mid_push_fails_clearly_and_loses_nothing`] — several
//!   concurrent pushes to moto, which is stopped (SIGSTOP) after a random
//!   delay, round after round. Every push still running returns within
//!   [`BOUND`] with `unavailable` naming the store and the `name:tag` it was
//!   pushing. Once moto is resumed, every reference fetches and verifies
//!   (no name points at a missing blob), the baseline module is intact,
//!   every push that returned `Ok` is listed and fetches (nothing
//!   acknowledged is lost), and new pushes succeed.
//! * [`s3_killed_mid_push_fails_clearly`] — the same with SIGKILL (moto
//!   keeps nothing, so only the errors are checked).
//! * Against fake servers: a store that accepts connections and never
//!   answers fails after the configured `timeout` (an option, or
//!   `AWS_TIMEOUT` from the environment with the default retries); a store
//!   answering 503 is asked exactly `max_retries + 1` times, then reported
//!   `unavailable`; bad values of the options are `bad_input`.
//!
//! The stopped emulator is always resumed by a guard ([`Stopped`]), also
//! when an assertion fails; its wrapper resumes it too if this process dies.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use wasmhost::{Digest, Error, ErrorCode};
use wasmhost_store::{DEFAULT_MAX_RETRIES, ModuleStore, RefEntry};

use crate::services::{BUCKET, Moto, s3_options};
use crate::{Rng, check_refs, child, padded_wasm, runtime, wasm};

/// Rounds of SIGSTOP (one moto for all of them).
const STOP_ROUNDS: u32 = 6;
/// Rounds of SIGKILL (a fresh moto each).
const KILL_ROUNDS: u32 = 2;
/// Concurrent pushers per round.
const WORKERS: u64 = 4;
/// How long after the fault a push may take to return: a liveness bound
/// (with the options below a push gives up after about 6 s; object_store's
/// defaults would take minutes), not a performance figure.
const BOUND: Duration = Duration::from_secs(30);
/// The liveness bound for a store that never answers, configured with a
/// 1 s `timeout`: far below object_store's default 30 s request timeout, so
/// that returning within it proves the setting was applied.
const TIMEOUT_BOUND: Duration = Duration::from_secs(20);

/// Short timeouts and one retry, as a user would set them.
fn fault_options(moto: &Moto) -> Vec<(String, String)> {
    let mut options = moto.options();
    for (k, v) in [
        ("timeout", "3s"),
        ("connect_timeout", "1s"),
        ("max_retries", "1"),
        ("retry_timeout", "5s"),
    ] {
        options.push((k.to_string(), v.to_string()));
    }
    options
}

/// Sends a signal (`STOP`, `CONT`, `KILL`) with kill(1).
fn signal(pid: u32, sig: &str) -> std::io::Result<std::process::ExitStatus> {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
}

/// A stopped process, resumed (SIGCONT) when dropped: also when the test
/// fails, so that no stopped emulator outlives it.
struct Stopped(u32);

impl Stopped {
    fn stop(pid: u32) -> Stopped {
        let guard = Stopped(pid);
        let status = signal(pid, "STOP").unwrap();
        assert!(status.success(), "kill -STOP {pid}: {status}");
        guard
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Err(e) = signal(self.0, "CONT") {
            eprintln!("cannot resume process {}: {e}", self.0);
        }
    }
}

/// A push that returned an error.
struct Failed {
    name: String,
    tag: String,
    digest: Digest,
    started: Instant,
    returned: Instant,
    error: Error,
}

/// What one pusher did.
struct Outcome {
    /// Pushes that returned `Ok`, and the digest each pushed.
    acked: Vec<RefEntry>,
    /// The push that failed (the pusher stops at its first error).
    failed: Option<Failed>,
}

/// Pushes fresh modules (`{prefix}/w{worker}:v{i}`, 0.5–0.9 MB each) one
/// after the other until one fails.
async fn pusher(store: ModuleStore, prefix: String, worker: u64) -> Outcome {
    let mut acked = Vec::new();
    for i in 0..10_000u64 {
        let (name, tag) = (format!("{prefix}/w{worker}"), format!("v{i}"));
        let module = padded_wasm(
            &format!("{name}:{tag}"),
            512 * 1024 + (i as usize % 4) * 128 * 1024,
        );
        let digest = Digest::of(&module);
        let started = Instant::now();
        match store.push(module, &name, &tag).await {
            Ok(entry) => {
                assert_eq!(entry.digest, digest);
                acked.push(entry);
            }
            Err(error) => {
                return Outcome {
                    acked,
                    failed: Some(Failed {
                        name,
                        tag,
                        digest,
                        started,
                        returned: Instant::now(),
                        error,
                    }),
                };
            }
        }
    }
    Outcome {
        acked,
        failed: None,
    }
}

/// Figures of a series of rounds.
#[derive(Default)]
struct Figures {
    acked: usize,
    /// Pushes that had started before the fault and failed.
    interrupted: usize,
    /// Pushes that failed, in total.
    failed: usize,
    /// References a failed push published anyway (its request reached
    /// the server before the client gave up: legitimate, and checked).
    published_by_failed: usize,
    /// The longest time from the fault to a push returning.
    slowest: Duration,
    /// One of the errors, as a user sees it.
    example: String,
}

/// Starts [`WORKERS`] pushers, applies `fault` after `delay`, and checks
/// that each returns within [`BOUND`] with a clear `unavailable` error.
/// Returns every pusher's outcome (the fault's result is kept alive until
/// then and returned, e.g. a [`Stopped`] guard).
fn run_round<G>(
    store: &ModuleStore,
    prefix: &str,
    delay: Duration,
    fault: impl FnOnce() -> G,
    figures: &mut Figures,
) -> (Vec<Outcome>, G) {
    let rt = runtime();
    rt.block_on(async {
        let tasks: Vec<_> = (0..WORKERS)
            .map(|w| tokio::spawn(pusher(store.clone(), prefix.to_string(), w)))
            .collect();
        tokio::time::sleep(delay).await;
        let fault_at = Instant::now();
        let guard = fault();
        let outcomes = tokio::time::timeout(BOUND * 2, futures::future::join_all(tasks))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{prefix}: pushes still running {:?} after the fault",
                    BOUND * 2
                )
            });
        let outcomes: Vec<Outcome> = outcomes.into_iter().map(|o| o.unwrap()).collect();
        let mut interrupted = 0;
        for o in &outcomes {
            let Some(f) = &o.failed else {
                panic!("{prefix}: a pusher never failed although the store was gone");
            };
            let reference = format!("{}:{}", f.name, f.tag);
            assert!(
                f.returned >= fault_at,
                "{prefix}: push of {reference} failed before the fault: {}",
                f.error
            );
            let after = f.returned - fault_at;
            assert!(
                after <= BOUND,
                "{prefix}: push of {reference} returned {after:?} after the fault (bound {BOUND:?})"
            );
            figures.slowest = figures.slowest.max(after);
            assert_eq!(
                f.error.code(),
                ErrorCode::Unavailable,
                "{prefix}: push of {reference}: {}",
                f.error
            );
            let msg = f.error.to_string();
            assert!(
                msg.contains(store.location()),
                "the error names the store: {msg}"
            );
            assert!(
                msg.contains(&format!("push of {reference}")),
                "the error names the push: {msg}"
            );
            if f.started < fault_at {
                interrupted += 1;
                figures.example = msg;
            }
        }
        assert!(
            interrupted >= 1,
            "{prefix}: no push was in flight at the fault; the round proves nothing"
        );
        figures.interrupted += interrupted;
        figures.failed += outcomes.len();
        figures.acked += outcomes.iter().map(|o| o.acked.len()).sum::<usize>();
        (outcomes, guard)
    })
}

/// The S3 server stopped mid-push: clear errors within the bound, and no
/// reference to a missing blob; nothing acknowledged is lost.
#[test]
fn s3_stopped_mid_push_fails_clearly_and_loses_nothing() {
    let moto = Moto::start();
    let pid = moto.0.emulator_pid();
    let url = format!("s3://{BUCKET}/faults-stop");
    let store = ModuleStore::open_with_options(&url, fault_options(&moto)).unwrap();
    // Checks use object_store's patient defaults: moto may still be
    // working through the requests it received while stopped.
    let checker = ModuleStore::open_with_options(&url, moto.options()).unwrap();
    let rt = runtime();
    let baseline = rt
        .block_on(store.push(padded_wasm("baseline", 700_000), "baseline", "v1"))
        .unwrap();
    let mut rng = Rng::from_clock();
    let mut figures = Figures::default();
    let mut all_acked: Vec<RefEntry> = Vec::new();
    for round in 0..STOP_ROUNDS {
        // From "as the pushes start" to a few pushes in.
        let delay = Duration::from_millis(match round {
            0 => 0,
            _ => rng.below(600),
        });
        let prefix = format!("stop{round}");
        let (outcomes, stopped) =
            run_round(&store, &prefix, delay, || Stopped::stop(pid), &mut figures);
        drop(stopped); // SIGCONT

        rt.block_on(async {
            let when = format!("after stop round {round}");
            let refs = check_refs(&checker, &when).await;
            let (d, _) = checker
                .fetch(&"baseline:v1".parse().unwrap())
                .await
                .unwrap();
            assert_eq!(d, baseline.digest, "{when}: the baseline changed");
            all_acked.extend(outcomes.iter().flat_map(|o| o.acked.iter().cloned()));
            for acked in &all_acked {
                let listed = refs
                    .iter()
                    .find(|e| e.name == acked.name && e.tag == acked.tag)
                    .unwrap_or_else(|| {
                        panic!(
                            "{when}: {}:{} was acknowledged but is not listed (lost)",
                            acked.name, acked.tag
                        )
                    });
                assert_eq!(listed.digest, acked.digest, "{when}: {}", acked.name);
            }
            for f in outcomes.iter().filter_map(|o| o.failed.as_ref()) {
                if let Some(e) = refs.iter().find(|e| e.name == f.name && e.tag == f.tag) {
                    // Published after all: then it is the module that was
                    // pushed (check_refs verified its blob).
                    assert_eq!(e.digest, f.digest, "{when}: {}:{}", f.name, f.tag);
                    figures.published_by_failed += 1;
                }
            }
            // The store (with the same short settings) works again.
            let again = store
                .push(wasm(round as i32), &format!("{prefix}/after"), "v1")
                .await
                .unwrap_or_else(|e| panic!("{when}: a new push failed: {e}"));
            let (d, _) = store.fetch(&again.reference()).await.unwrap();
            assert_eq!(d, again.digest);
        });
    }
    eprintln!(
        "s3 stopped: {STOP_ROUNDS} rounds × {WORKERS} pushers; {} pushes acknowledged, {} failed \
         ({} of them in flight at SIGSTOP), {} published anyway by a failed push; acknowledged \
         writes lost: 0; slowest return after the stop {:?}",
        figures.acked,
        figures.failed,
        figures.interrupted,
        figures.published_by_failed,
        figures.slowest
    );
    eprintln!("for example: {}", figures.example);
}

/// The S3 server killed mid-push: every push returns soon, with a clear
/// `unavailable` error naming the store and the reference.
#[test]
fn s3_killed_mid_push_fails_clearly() {
    let mut rng = Rng::from_clock();
    let mut figures = Figures::default();
    for round in 0..KILL_ROUNDS {
        let moto = Moto::start();
        let pid = moto.0.emulator_pid();
        let url = format!("s3://{BUCKET}/faults-kill");
        let store = ModuleStore::open_with_options(&url, fault_options(&moto)).unwrap();
        runtime()
            .block_on(store.push(wasm(1), "baseline", "v1"))
            .unwrap();
        let delay = Duration::from_millis(rng.below(400));
        let kill = || {
            let status = signal(pid, "KILL").unwrap();
            assert!(status.success(), "kill -KILL {pid}: {status}");
        };
        run_round(&store, &format!("kill{round}"), delay, kill, &mut figures);
        // Refused connections now: quick and just as clear.
        let err = runtime()
            .block_on(store.push(wasm(2), "late", "v1"))
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unavailable, "{err}");
        assert!(err.to_string().contains("push of late:v1"), "{err}");
        assert!(err.to_string().contains(&url), "{err}");
    }
    eprintln!(
        "s3 killed: {KILL_ROUNDS} rounds × {WORKERS} pushers; {} pushes acknowledged, {} failed \
         ({} of them in flight at SIGKILL); slowest return after the kill {:?}",
        figures.acked, figures.failed, figures.interrupted, figures.slowest
    );
    eprintln!("for example: {}", figures.example);
}

// ----- fake servers -------------------------------------------------------

/// A server that accepts connections and never answers (a hung store). It
/// lives as long as this process.
fn black_hole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            match conn {
                Ok(c) => held.push(c),
                Err(_) => break,
            }
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// A server that answers every request 503; counts the requests.
fn failing_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            // Read the head (the store's first request, a GET, has no body).
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = conn.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (format!("http://127.0.0.1:{port}"), count)
}

fn with(mut options: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    options.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    options
}

/// `timeout` reaches object_store's client: a store that never answers
/// fails after it, as an option and as `AWS_TIMEOUT` in the environment
/// (with the default retries, which must be bounded too).
#[test]
fn an_unanswering_store_fails_after_the_configured_timeout() {
    let endpoint = black_hole();
    let url = format!("s3://{BUCKET}/hung");
    let options = with(
        s3_options(&endpoint),
        &[("timeout", "1s"), ("max_retries", "1")],
    );
    let store = ModuleStore::open_with_options(&url, options).unwrap();
    let started = Instant::now();
    let err = runtime()
        .block_on(store.push(wasm(1), "app", "v1"))
        .unwrap_err();
    assert!(started.elapsed() < TIMEOUT_BOUND, "{:?}", started.elapsed());
    eprintln!("a hung store: {err}");
    assert_eq!(err.code(), ErrorCode::Unavailable, "{err}");
    let msg = err.to_string();
    for part in ["push of app:v1", url.as_str(), "did not answer in time"] {
        assert!(msg.contains(part), "{part:?} missing in: {msg}");
    }

    // The same through the environment only (in a child process).
    let out = child("env-timeout")
        .env("WASMHOST_STORE_TEST_URL", &url)
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_TIMEOUT", "1s")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the environment-configured client failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no result from the child: {stdout}"));
    let (code, rest) = line.split_once(' ').unwrap();
    let (millis, msg) = rest.split_once(' ').unwrap();
    assert_eq!(code, "unavailable", "{line}");
    assert!(msg.contains("did not answer in time"), "{line}");
    let took = Duration::from_millis(millis.parse().unwrap());
    assert!(
        took < TIMEOUT_BOUND,
        "AWS_TIMEOUT=1s was not applied: {line}"
    );
}

/// The child of [`an_unanswering_store_fails_after_the_configured_timeout`]:
/// a store configured by the environment alone; prints
/// `RESULT <code> <millis> <message>`.
pub fn env_timeout_client() {
    let url = std::env::var("WASMHOST_STORE_TEST_URL").unwrap();
    let store = ModuleStore::open(&url).unwrap();
    let started = Instant::now();
    let err = runtime()
        .block_on(store.push(wasm(1), "env/timeout", "v1"))
        .unwrap_err();
    println!(
        "RESULT {} {} {}",
        err.code(),
        started.elapsed().as_millis(),
        err.to_string().replace('\n', " ")
    );
}

/// `max_retries` and `retry_timeout` reach object_store's retry policy: a
/// store answering 503 is asked exactly `max_retries + 1` times (the
/// default when unset), then reported `unavailable`.
#[test]
fn server_errors_are_retried_as_configured() {
    for (extra, expected) in [
        (vec![("max_retries", "2")], 3),
        (vec![("max_retries", "0")], 1),
        (vec![], DEFAULT_MAX_RETRIES + 1),
        (vec![("max_retries", "5"), ("retry_timeout", "0s")], 1),
    ] {
        let (endpoint, requests) = failing_server();
        let store = ModuleStore::open_with_options(
            &format!("s3://{BUCKET}/flaky"),
            with(s3_options(&endpoint), &extra),
        )
        .unwrap();
        let err = runtime()
            .block_on(store.push(wasm(1), "app", "v1"))
            .unwrap_err();
        eprintln!("a store answering 503 ({extra:?}): {err}");
        assert_eq!(err.code(), ErrorCode::Unavailable, "{extra:?}: {err}");
        assert!(err.to_string().contains("failed on its side"), "{err}");
        assert!(err.to_string().contains("push of app:v1"), "{err}");
        assert_eq!(requests.load(Ordering::SeqCst), expected, "{extra:?}");
    }
}

/// Retry and client timing options that do not parse are `bad_input` when
/// the store is opened (so `timeout` and `connect_timeout` are read as the
/// client's durations, not ignored); the retry options are not taken by the
/// filesystem.
#[test]
fn bad_timing_options_are_bad_input() {
    for (key, value) in [
        ("max_retries", "lots"),
        ("max_retries", "-1"),
        ("retry_timeout", "soon"),
        ("timeout", "soon"),
        ("connect_timeout", "soon"),
    ] {
        let options = with(s3_options("http://127.0.0.1:9"), &[(key, value)]);
        let err = ModuleStore::open_with_options("s3://b/p", options).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadInput, "{key}={value}: {err}");
        assert!(err.to_string().contains(value), "{key}={value}: {err}");
    }
    for url in ["az://c/p", "gs://b/p"] {
        let err = ModuleStore::open_with_options(url, [("max_retries", "x")]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadInput, "{url}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let err = ModuleStore::open_with_options(dir.path().to_str().unwrap(), [("max_retries", "1")])
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
}
