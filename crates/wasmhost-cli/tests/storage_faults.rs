//! Faults in storage (issue 15, item 4), injected for real: a disk that
//! fills up — a size-limited tmpfs in a mount namespace of the test's own
//! ([`common::PrivateTmpfs`]) — under the compiled-module cache and under
//! the key-value store, and a state directory another process holds. (The
//! S3 emulator stopped in the middle of pushes: wasmhost-store's
//! `tests/store/faults.rs`.)
//!
//! What each test proves is in its name; docs/reliability.md ("Storage
//! faults") lists them with the figures.

// Tests unwrap: a failure is the test failing, with the value in the message.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{PrivateTmpfs, fails_in, request, serve_with, wat};

const BIN: &str = env!("CARGO_BIN_EXE_wasmhost");

/// A module of 400 small functions: its compiled artifact is about 230 KB,
/// more than a 64 KiB disk holds.
fn big_module(dir: &Path) -> PathBuf {
    let funcs: String = (0..400)
        .map(|i| {
            format!(
                "(func (export \"f{i}\") (param i32) (result i32) local.get 0 i32.const {i} \
                 i32.add i32.const 3 i32.mul local.get 0 i32.xor)\n"
            )
        })
        .collect();
    let path = dir.join("big.wat");
    std::fs::write(&path, format!("(module\n{funcs})")).unwrap();
    path
}

/// Every file under `dir`, as (name, length).
fn files(dir: &Path) -> Vec<(String, u64)> {
    common::walk(dir)
        .into_iter()
        .map(|p| {
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            (p.file_name().unwrap().to_string_lossy().into_owned(), len)
        })
        .collect()
}

fn no_panic(out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_full_disk_under_the_compiled_cache_fails_no_call_and_publishes_no_partial_artifact() {
    let state = tempfile::tempdir().unwrap();
    let module = big_module(state.path());
    let cache = state.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let disk = PrivateTmpfs::mount(&cache, "64k");
    let call = || {
        let out = disk
            .command(BIN)
            .args(["call"])
            .arg(&module)
            .args(["f7", "5"])
            .env("WASMHOST_STATE", state.path())
            .env_remove("WASMHOST_STORE")
            .output()
            .unwrap();
        no_panic(&out);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "33");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    // The artifact does not fit: the call succeeds, says why nothing was
    // cached, and leaves no artifact, no temporary file and no record of
    // an artifact that is not there.
    for _ in 0..2 {
        let err = call();
        assert!(
            err.contains("could not write the compiled artifact")
                && err.contains("No space left on device"),
            "{err}"
        );
        let left = files(&disk.outside(&cache));
        assert!(
            left.iter().all(|(name, _)| !name.ends_with(".cwasm")
                && !name.ends_with(".meta")
                && !name.starts_with(".tmp")),
            "{left:?}"
        );
    }

    // With room, the artifact is written whole (its record's length and
    // CRC-32 are the file's), and a later call loads it from disk: a load
    // that checks it in full records the file's stamp in the record (once
    // the file is 2 s old; see the cache's docs).
    disk.resize("16m");
    let err = call();
    assert!(!err.contains("could not write"), "{err}");
    let dir = disk.outside(&cache);
    let artifact = common::walk(&dir)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .unwrap_or_else(|| panic!("no artifact in {:?}", files(&dir)));
    let bytes = std::fs::read(&artifact).unwrap();
    let record_path = artifact.with_extension("meta");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    assert_eq!(record["payload_len"], bytes.len() as u64, "{record}");
    assert_eq!(record["crc32"], crc32fast::hash(&bytes), "{record}");
    assert!(record["verified"].is_null(), "{record}");
    std::thread::sleep(std::time::Duration::from_millis(2200));
    call();
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    assert_eq!(record["verified"]["size"], bytes.len() as u64, "{record}");
}

/// A server over `state` (on `disk`) with two routes to one actor, `a`,
/// of `kv.wat`: `/set` (`set_blob [k, len]`) and `/len` (`len_of k`).
fn kv_server(disk: &PrivateTmpfs, state: &Path) -> common::Serving {
    let kv = wat("kv");
    serve_with(
        disk.command(BIN),
        state,
        &[
            "--route",
            &format!("/set={kv},mode=actor,function=set_blob,actor=a"),
            "--route",
            &format!("/len={kv},mode=actor,function=len_of,actor=a"),
        ],
    )
}

fn post(addr: &str, path: &str, body: &str) -> (u16, String) {
    let (status, _, body) = request(addr, "POST", path, &[], body).unwrap();
    (status, body)
}

/// The length of key `k`'s value, as the actor reads it (-1: absent).
fn len_of(addr: &str, k: u64) -> i64 {
    let (status, body) = post(addr, "/len", &k.to_string());
    assert_eq!(status, 200, "{body}");
    body.trim().parse().unwrap()
}

const VALUE: u64 = 60_000;

#[test]
fn a_full_disk_under_the_key_value_store_refuses_the_write_loses_nothing_and_recovers() {
    let state = tempfile::tempdir().unwrap();
    let disk = PrivateTmpfs::mount(state.path(), "3m");
    let server = kv_server(&disk, state.path());

    // Writes of 60 KB until the disk is full: each acknowledged one is
    // durable; the first refused one is `unavailable` (503), saying why.
    let mut acked = Vec::new();
    let mut refused = None;
    for k in 0..200u64 {
        let (status, body) = post(&server.addr, "/set", &format!("[{k}, {VALUE}]"));
        match status {
            200 => acked.push(k),
            _ => {
                assert_eq!(status, 503, "{body}");
                assert!(
                    body.contains("\"unavailable\"") && body.contains("the disk is full"),
                    "{body}"
                );
                refused = Some(k);
                break;
            }
        }
    }
    let refused = refused.expect("3 MB of tmpfs filled up within 200 writes of 60 KB");
    assert!(acked.len() >= 3, "only {} writes fitted", acked.len());

    // Still full: writes keep being refused the same way; the server
    // answers, and every acknowledged write reads back whole. A 503 says
    // when to come back (`Retry-After`), as an overloaded server does.
    for _ in 0..3 {
        let set = format!("[{refused}, {VALUE}]");
        let (status, head, body) = request(&server.addr, "POST", "/set", &[], &set).unwrap();
        assert_eq!(status, 503, "{body}");
        assert!(
            head.lines()
                .any(|l| l.eq_ignore_ascii_case("retry-after: 5")),
            "{head}"
        );
    }
    let (status, _, body) = request(&server.addr, "GET", "/healthz", &[], "").unwrap();
    assert_eq!(status, 200, "{body}");
    for &k in &acked {
        assert_eq!(len_of(&server.addr, k), VALUE as i64, "key {k}");
    }
    assert_eq!(
        len_of(&server.addr, refused),
        -1,
        "a refused write was applied"
    );

    // Room again: the same server takes writes again, with no restart.
    disk.resize("64m");
    let (status, body) = post(&server.addr, "/set", &format!("[{refused}, {VALUE}]"));
    assert_eq!(status, 200, "{body}");
    acked.push(refused);

    // And after a SIGKILL, a new server finds every acknowledged write.
    server.signal("KILL");
    drop(server);
    let server = kv_server(&disk, state.path());
    for &k in &acked {
        assert_eq!(
            len_of(&server.addr, k),
            VALUE as i64,
            "key {k} after SIGKILL"
        );
    }
    eprintln!(
        "{} writes of {VALUE} bytes acknowledged before the disk was full; none lost",
        acked.len() - 1
    );
}

#[test]
fn a_state_directory_another_process_holds_is_a_clear_error() {
    let state = tempfile::tempdir().unwrap();
    let server = common::serve_at(state.path(), None, &[]);
    let kv = wat("kv");
    // A command that needs the key-value store of a state directory a
    // server holds: refused at once, saying why and what to do.
    let (code, err) = fails_in(
        state.path(),
        &[
            "actor",
            "send",
            "x",
            "--module",
            &kv,
            "--function",
            "counter",
        ],
    );
    assert_eq!(code, 77, "{err}");
    assert!(
        err.contains("error[unavailable]")
            && err.contains("another process has it open")
            && err.contains("--state"),
        "{err}"
    );
    // The server is untouched by it.
    let (status, _, body) = request(&server.addr, "GET", "/healthz", &[], "").unwrap();
    assert_eq!(status, 200, "{body}");
    // Commands that need no key-value store still work beside it (the
    // store and the compiled cache are safe to share between processes).
    common::ok_in(state.path(), &["push", &kv, "kv:1"]);
    let listed = common::ok_in(state.path(), &["ls"]);
    assert!(listed.contains("kv"), "{listed}");
}
