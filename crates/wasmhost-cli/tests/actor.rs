//! `wasmhost actor send|ls|rm` against one state directory, as a user runs
//! them: each command is its own process, and both the actor's in-memory
//! state (its snapshot) and its key-value state (STATE/kv.redb) carry over.
//! (Crashes, message ids, policies, export/import: `durable_actors.rs`.)

// Tests unwrap: a failure is the test failing, with the value in the message.
#![allow(clippy::unwrap_used)]

mod common;

use common::{built, fails_in as fails, ok_in as ok, wasmhost_in, wat};

#[test]
fn actor_send_ls_rm_round_trip() {
    let state = tempfile::tempdir().unwrap();
    let s = state.path();
    let counter = built("as-counter-minimal.wasm");
    let kv = wat("kv");

    // Unknown and no module: not_found, exit 66, nothing recorded.
    let (code, err) = fails(s, &["actor", "send", "c1", "--function", "get"]);
    assert_eq!(code, 66, "{err}");
    assert!(
        err.contains("error[not_found]") && err.contains("c1"),
        "{err}"
    );

    // The AssemblyScript counter: state lives in the instance, which each
    // process resumes from its snapshot.
    let send = [
        "actor",
        "send",
        "c1",
        "--module",
        &counter,
        "--function",
        "increment",
        "--input",
        "5",
    ];
    assert_eq!(ok(s, &send), "5");
    assert_eq!(ok(s, &["actor", "send", "c1", "--input", "3"]), "8");
    assert_eq!(ok(s, &["actor", "send", "c1", "--function", "get"]), "8");
    // Input from stdin.
    let out = wasmhost_in(s, &["actor", "send", "c1", "--input", "-"], b"7");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "15");

    // A core counter in the key-value store keeps counting across processes.
    let kv_send = [
        "actor",
        "send",
        "visits",
        "--module",
        &kv,
        "--function",
        "counter",
        "--abi",
        "numeric",
    ];
    assert_eq!(ok(s, &kv_send), "1");
    assert_eq!(ok(s, &["actor", "send", "visits"]), "2");
    assert_eq!(ok(s, &["actor", "send", "visits"]), "3");
    // Another actor of the same module has its own keys.
    assert_eq!(
        ok(
            s,
            &[
                "actor",
                "send",
                "other",
                "--module",
                &kv,
                "--function",
                "counter",
                "--abi",
                "numeric"
            ]
        ),
        "1"
    );

    // A failure is reported with its code; the actor still works afterwards,
    // from its state before the failed message.
    let (code, err) = fails(
        s,
        &[
            "actor",
            "send",
            "c1",
            "--function",
            "fail",
            "--input",
            "boom",
        ],
    );
    assert_eq!(code, 75, "{err}");
    assert!(err.contains("boom"), "{err}");
    assert_eq!(ok(s, &["actor", "send", "c1", "--input", "1"]), "16");

    // Another module for an existing actor is refused.
    let (code, err) = fails(s, &["actor", "send", "c1", "--module", &kv]);
    assert_eq!(code, 76, "{err}");
    assert!(
        err.contains("error[snapshot_mismatch]") && err.contains("--fresh"),
        "{err}"
    );

    let ls: serde_json::Value = serde_json::from_str(&ok(s, &["actor", "ls", "--json"])).unwrap();
    let ls = ls.as_array().unwrap();
    let ids: Vec<&str> = ls.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["c1", "other", "visits"]);
    assert_eq!(ls[0]["messages"], 6);
    assert_eq!(ls[0]["function"], "increment");
    assert_eq!(ls[0]["restarts"], 1);
    assert_eq!(ls[2]["messages"], 3);
    assert_eq!(ls[2]["convention"], "numeric");
    assert!(ls[2]["digest"].as_str().unwrap().starts_with("sha256:"));
    let table = ok(s, &["actor", "ls"]);
    assert!(
        table.starts_with("ID") && table.contains("visits"),
        "{table}"
    );

    // The module was pushed into the store: a later send finds it by digest
    // even when the file is gone.
    let copy = s.join("copy.wasm");
    std::fs::copy(&counter, &copy).unwrap();
    let copy = copy.display().to_string();
    assert_eq!(
        ok(
            s,
            &[
                "actor",
                "send",
                "c2",
                "--module",
                &copy,
                "--function",
                "increment",
                "--input",
                "2"
            ]
        ),
        "2"
    );
    std::fs::remove_file(&copy).unwrap();
    assert_eq!(ok(s, &["actor", "send", "c2", "--input", "4"]), "6");

    // rm forgets the actor; its key-value state stays unless --purge.
    ok(s, &["actor", "rm", "visits"]);
    let (code, _) = fails(s, &["actor", "rm", "visits"]);
    assert_eq!(code, 66);
    let (code, _) = fails(s, &["actor", "send", "visits"]);
    assert_eq!(code, 66);
    assert_eq!(ok(s, &kv_send), "4");
    ok(s, &["actor", "rm", "--purge", "visits"]);
    assert_eq!(ok(s, &kv_send), "1");
    let ls: serde_json::Value = serde_json::from_str(&ok(s, &["actor", "ls", "--json"])).unwrap();
    assert_eq!(ls.as_array().unwrap().len(), 4);
}
