//! Crash safety: a child process pushes to a filesystem store in a loop and
//! is killed with SIGKILL at a random moment, several times over. After
//! every kill, every reference must point at a blob that verifies, and no
//! published blob may be partial (staging leftovers, `<hex>#N`, may be).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use wasmhost::Digest;
use wasmhost_store::ModuleStore;

use crate::{Rng, check_refs, child, runtime};

const ROUNDS: u32 = 12;

/// A module with a data segment of `pad` bytes, so that writes take long
/// enough to be killed in the middle.
fn padded_wat(n: i64, pad: usize) -> String {
    format!(
        r#"(module (memory 5) (data (i32.const 0) "{}") (func (export "n") (result i64) i64.const {n}))"#,
        "x".repeat(pad)
    )
}

/// The child: push forever (bounded to a minute), saying `ready` after the
/// first push completes.
pub fn pusher() {
    let url = std::env::var("WASMHOST_STORE_TEST_URL").unwrap();
    let round: i64 = std::env::var("WASMHOST_STORE_TEST_ROUND")
        .unwrap()
        .parse()
        .unwrap();
    let store = ModuleStore::open(&url).unwrap();
    let started = Instant::now();
    runtime().block_on(async {
        for i in 0i64.. {
            let pad = 1 + (i as usize % 5) * 60_000;
            let module = padded_wat(round * 1_000_000 + i, pad).into_bytes();
            store.push(module.clone(), "app", "latest").await.unwrap();
            store
                .push(module, &format!("app/round{round}"), &format!("v{}", i % 3))
                .await
                .unwrap();
            if i == 0 {
                let mut out = std::io::stdout().lock();
                writeln!(out, "ready").unwrap();
                out.flush().unwrap();
            }
            if started.elapsed() > Duration::from_secs(60) {
                break;
            }
        }
    });
}

#[test]
fn interrupted_pushes_leave_old_or_new_state() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let url = format!("file://{}", root.display());
    let mut rng = Rng::from_clock();
    let mut leftovers = 0;
    for round in 0..ROUNDS {
        let mut proc = child("pusher")
            .env("WASMHOST_STORE_TEST_URL", &url)
            .env("WASMHOST_STORE_TEST_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait (bounded) for the first completed push.
        let stdout = proc.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.trim() == "ready" {
                    let _ = tx.send(());
                    break;
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = proc.kill();
            let out = proc.wait_with_output().unwrap();
            panic!(
                "round {round}: the pusher never became ready:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Kill it somewhere in the middle of later pushes.
        std::thread::sleep(Duration::from_millis(rng.below(60)));
        proc.kill().unwrap(); // SIGKILL
        let status = proc.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the pusher was not killed"
        );

        let refs = check_invariant(&url, &root, round);
        assert!(refs >= 2, "round {round}: only {refs} references");
        leftovers = count_staging(&root);
    }
    eprintln!("{ROUNDS} rounds killed mid-push; {leftovers} staging leftovers ignored");
    // The store still takes pushes afterwards.
    let store = ModuleStore::open(&url).unwrap();
    runtime().block_on(async {
        store.push(crate::wasm(1), "app", "latest").await.unwrap();
        store.fetch(&"app".parse().unwrap()).await.unwrap();
    });
}

/// Every reference resolves to a blob that verifies, and every published
/// blob file hashes to its name. Returns the number of references.
fn check_invariant(url: &str, root: &Path, round: u32) -> usize {
    let store = ModuleStore::open(url).unwrap();
    let entries = runtime().block_on(check_refs(&store, &format!("round {round}")));
    let blobs = root.join("blobs/sha256");
    for file in std::fs::read_dir(&blobs).unwrap() {
        let file = file.unwrap();
        let name = file.file_name().into_string().unwrap();
        if name.contains('#') {
            continue; // a staging file: never read by the store
        }
        let bytes = std::fs::read(file.path()).unwrap();
        assert_eq!(
            Digest::of(&bytes).hex(),
            name,
            "round {round}: published blob {name} is partial or wrong"
        );
    }
    entries.len()
}

fn count_staging(root: &Path) -> usize {
    fn walk(dir: &Path, n: &mut usize) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, n);
            } else if e.file_name().to_string_lossy().contains('#') {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    walk(root, &mut n);
    n
}
