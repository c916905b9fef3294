//! Durable actors as users drive them: `wasmhost actor send` processes one
//! after another, and `wasmhost serve` restarted after SIGTERM and SIGKILL.
//! The guests: `as-counter-actor.wasm`, a Loom-style AssemblyScript counter
//! whose state is in its memory, and `guests/wat/ledger.wat`, whose message
//! writes memory, a global and a key before it may trap.

// Tests unwrap: a failure is the test failing, with the value in the message.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Serving, built, fails_in as fails, ok_in as ok, request, serve_at, wasmhost_in, wat};

fn counter_send<'a>(module: &'a str, command: &'a str) -> Vec<&'a str> {
    vec![
        "actor",
        "send",
        "counter-1",
        "--module",
        module,
        "--function",
        "execute",
        "--input",
        command,
    ]
}

#[test]
fn the_loom_counter_answers_5_8_6_6_as_separate_processes() {
    let state = tempfile::tempdir().unwrap();
    let s = state.path();
    let counter = built("as-counter-actor.wasm");
    let replies: Vec<String> = ["increment 5", "increment 3", "decrement 2", "get"]
        .iter()
        .map(|c| ok(s, &counter_send(&counter, c)))
        .collect();
    assert_eq!(replies, ["5", "8", "6", "6"]);
    let ls: serde_json::Value = serde_json::from_str(&ok(s, &["actor", "ls", "--json"])).unwrap();
    let a = &ls[0];
    assert_eq!(
        (a["id"].as_str(), a["messages"].as_u64()),
        (Some("counter-1"), Some(4))
    );
    let bytes = a["snapshot_bytes"].as_u64().unwrap();
    assert!(bytes > 0 && bytes <= 8192, "{a}");
    assert!(a["saved_at"].is_string(), "{a}");
    let table = ok(s, &["actor", "ls"]);
    assert!(
        table.contains("SNAPSHOT") && table.contains("KiB"),
        "{table}"
    );
}

#[test]
fn a_resent_message_id_is_applied_once() {
    let state = tempfile::tempdir().unwrap();
    let s = state.path();
    let counter = built("as-counter-actor.wasm");
    assert_eq!(ok(s, &counter_send(&counter, "increment 5")), "5");
    let keyed = [
        "actor",
        "send",
        "counter-1",
        "--input",
        "increment 2",
        "--id",
        "order-7",
    ];
    assert_eq!(ok(s, &keyed), "7");
    let again = wasmhost_in(s, &keyed, b"");
    assert!(again.status.success());
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), "7");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("applied before"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        ok(s, &["actor", "send", "counter-1", "--input", "get"]),
        "7"
    );
}

#[test]
fn a_message_that_traps_after_writing_memory_and_a_key_leaves_neither() {
    let state = tempfile::tempdir().unwrap();
    let s = state.path();
    let ledger = wat("ledger");
    let send = |f: &'static str, input: &'static str| -> Vec<String> {
        [
            "actor",
            "send",
            "l",
            "--module",
            &ledger,
            "--abi",
            "numeric",
            "--function",
            f,
            "--input",
            input,
        ]
        .map(str::to_string)
        .to_vec()
    };
    let run = |v: Vec<String>| ok(s, &v.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run(send("deposit", "[20]")), "20");
    let v = send("deposit", "[13]");
    let (code, err) = fails(s, &v.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 134, "{err}");
    assert_eq!(run(send("balance", "[]")), "20");
    assert_eq!(run(send("deposits", "[]")), "1");
    assert_eq!(run(send("last", "[]")), "20");
}

#[test]
fn export_and_import_move_an_actor_between_state_directories() {
    let here = tempfile::tempdir().unwrap();
    let there = tempfile::tempdir().unwrap();
    let counter = built("as-counter-actor.wasm");
    assert_eq!(
        ok(here.path(), &counter_send(&counter, "increment 40")),
        "40"
    );
    let file = here.path().join("c.actor");
    let file = file.to_str().unwrap();
    ok(here.path(), &["actor", "export", "counter-1", file]);
    ok(there.path(), &["actor", "import", "moved", file]);
    // The module is not in that store: the first send names it again.
    assert_eq!(
        ok(
            there.path(),
            &[
                "actor",
                "send",
                "moved",
                "--module",
                &counter,
                "--input",
                "increment 2"
            ]
        ),
        "42"
    );
    assert_eq!(
        ok(there.path(), &["actor", "send", "moved", "--input", "get"]),
        "42"
    );
    let (code, err) = fails(there.path(), &["actor", "import", "moved", file]);
    assert_eq!(code, 64, "{err}");
    std::fs::write(file, b"not an actor").unwrap();
    let (code, err) = fails(there.path(), &["actor", "import", "other", file]);
    assert_eq!(code, 74, "{err}");
    // Another module for the actor: refused with its code, unless --fresh.
    let (code, err) = fails(
        there.path(),
        &[
            "actor",
            "send",
            "moved",
            "--module",
            &wat("ledger"),
            "--abi",
            "numeric",
            "--function",
            "balance",
        ],
    );
    assert_eq!(code, 76, "{err}");
    assert_eq!(
        ok(
            there.path(),
            &[
                "actor",
                "send",
                "moved",
                "--module",
                &wat("ledger"),
                "--abi",
                "numeric",
                "--function",
                "balance",
                "--fresh"
            ]
        ),
        "0"
    );
}

#[test]
fn rm_purge_forgets_the_snapshot_and_the_keys() {
    let state = tempfile::tempdir().unwrap();
    let s = state.path();
    let ledger = wat("ledger");
    let deposit = [
        "actor",
        "send",
        "l",
        "--module",
        &ledger,
        "--abi",
        "numeric",
        "--function",
        "deposit",
        "--input",
        "[3]",
    ];
    assert_eq!(ok(s, &deposit), "3");
    ok(s, &["actor", "rm", "l"]);
    let last = [
        "actor",
        "send",
        "l",
        "--module",
        &ledger,
        "--abi",
        "numeric",
        "--function",
        "last",
    ];
    assert_eq!(ok(s, &last), "3", "the keys are kept by rm");
    let balance = ["actor", "send", "l", "--function", "balance"];
    assert_eq!(ok(s, &balance), "0", "the snapshot is not");
    ok(s, &["actor", "rm", "--purge", "l"]);
    assert_eq!(ok(s, &last), "-1");
}

// ----- through `wasmhost serve` -----------------------------------------------

fn actor_route(counter: &str) -> String {
    format!("/counter={counter},mode=actor,function=execute")
}

/// POST `command` to actor `name`; the reply body, or None when the server
/// did not answer 200 (or went away).
fn post(addr: &str, name: &str, command: &str, key: Option<&str>) -> Option<(String, bool)> {
    let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    match request(addr, "POST", &format!("/counter/{name}"), &headers, command) {
        Ok((200, head, body)) => Some((body, head.contains("x-wasmhost-replayed: true"))),
        _ => None,
    }
}

fn serve_counter(state: &Path, extra: &[&str]) -> Serving {
    let counter = built("as-counter-actor.wasm");
    let route = actor_route(&counter);
    let mut args = vec!["--route", route.as_str()];
    args.extend_from_slice(extra);
    serve_at(state, None, &args)
}

#[test]
fn through_serve_every_message_restores_when_passivated_within_milliseconds() {
    let state = tempfile::tempdir().unwrap();
    let server = serve_counter(state.path(), &["--passivate-after", "2ms"]);
    // The actor as the API lists it, once it is passivated (5 s at most).
    let passivated = || {
        let started = Instant::now();
        loop {
            let (status, _, body) =
                request(&server.addr, "GET", "/api/v1/actors", &[], "").unwrap();
            assert_eq!(status, 200);
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let a = v["actors"][0].clone();
            if a["live"] == false {
                return a;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "never passivated: {a}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let mut replies = Vec::new();
    for (i, c) in ["increment 5", "increment 3", "decrement 2", "get"]
        .iter()
        .enumerate()
    {
        if i > 0 {
            // Every message after the first resumes a passivated actor.
            passivated();
        }
        replies.push(post(&server.addr, "alice", c, None).unwrap().0);
    }
    assert_eq!(replies, ["5", "8", "6", "6"]);
    let a = passivated();
    assert_eq!(a["id"], "counter/alice");
    assert_eq!(a["messages"], 4);
    assert!(a["snapshot_bytes"].as_u64().unwrap() > 0, "{a}");
}

#[test]
fn through_serve_state_survives_a_sigterm_restart_under_each_saving_policy() {
    for policy in ["every-message", "on-passivation"] {
        let state = tempfile::tempdir().unwrap();
        let mut server = serve_counter(state.path(), &["--actor-snapshots", policy]);
        for c in ["increment 5", "increment 3"] {
            post(&server.addr, "bob", c, None).unwrap();
        }
        server.signal("TERM");
        assert!(server.wait().success(), "{policy}");
        let server = serve_counter(state.path(), &["--actor-snapshots", policy]);
        assert_eq!(
            post(&server.addr, "bob", "decrement 2", None).unwrap().0,
            "6",
            "{policy}"
        );
        assert_eq!(post(&server.addr, "bob", "get", None).unwrap().0, "6");
    }
}

#[test]
fn through_serve_state_survives_sigkill_under_every_message() {
    let state = tempfile::tempdir().unwrap();
    let server = serve_counter(state.path(), &[]);
    for c in ["increment 5", "increment 3"] {
        post(&server.addr, "carol", c, None).unwrap();
    }
    server.signal("KILL");
    drop(server);
    let server = serve_counter(state.path(), &[]);
    assert_eq!(
        post(&server.addr, "carol", "decrement 2", None).unwrap().0,
        "6"
    );
    assert_eq!(post(&server.addr, "carol", "get", None).unwrap().0, "6");
    // A resent key is answered from the record, marked as replayed.
    assert_eq!(
        post(&server.addr, "carol", "increment 1", Some("k1")).unwrap(),
        ("7".into(), false)
    );
    assert_eq!(
        post(&server.addr, "carol", "increment 1", Some("k1")).unwrap(),
        ("7".into(), true)
    );
}

/// 8 senders × 200 keyed messages to one actor; the server is killed with
/// SIGKILL at a random moment and restarted, and every sender resends what
/// was not acknowledged, with the same key. Each message must be applied
/// exactly once: the final count is 1600, and every acknowledged reply is
/// a distinct count (no two messages saw the same state).
#[test]
fn eight_senders_keyed_messages_are_applied_exactly_once_across_sigkill() {
    const SENDERS: usize = 8;
    const MESSAGES: usize = 200;
    let state = tempfile::tempdir().unwrap();
    let server = Arc::new(Mutex::new(serve_counter(state.path(), &[])));
    let addr = Arc::new(Mutex::new(server.lock().unwrap().addr.clone()));
    let acked = Arc::new(Mutex::new(Vec::<(String, i64)>::new()));
    // The kill: after a pseudo-random number of acknowledged messages.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as usize;
    let kill_after = 100 + seed % 1200;
    let killed = Arc::new(Mutex::new(false));
    std::thread::scope(|s| {
        for t in 0..SENDERS {
            let (addr, acked) = (addr.clone(), acked.clone());
            s.spawn(move || {
                for i in 0..MESSAGES {
                    let key = format!("{t}-{i}");
                    let started = Instant::now();
                    loop {
                        let a = addr.lock().unwrap().clone();
                        if let Some((body, _)) = post(&a, "shared", "increment 1", Some(&key)) {
                            acked
                                .lock()
                                .unwrap()
                                .push((key.clone(), body.parse().unwrap()));
                            break;
                        }
                        assert!(
                            started.elapsed() < Duration::from_secs(120),
                            "{key} never acknowledged"
                        );
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            });
        }
        // The killer.
        let (server, addr, acked, killed) =
            (server.clone(), addr.clone(), acked.clone(), killed.clone());
        s.spawn(move || {
            let started = Instant::now();
            while acked.lock().unwrap().len() < kill_after {
                assert!(started.elapsed() < Duration::from_secs(120));
                std::thread::sleep(Duration::from_millis(1));
            }
            let mut guard = server.lock().unwrap();
            guard.signal("KILL");
            let _ = guard.child.wait();
            *killed.lock().unwrap() = true;
            let restarted = serve_counter(state.path(), &[]);
            *addr.lock().unwrap() = restarted.addr.clone();
            *guard = restarted;
        });
    });
    assert!(*killed.lock().unwrap());
    let acked = acked.lock().unwrap();
    assert_eq!(acked.len(), SENDERS * MESSAGES);
    // A key acknowledged twice (a resend of a message whose first reply was
    // lost) must carry the same reply; distinct keys, distinct replies.
    let mut by_key = std::collections::HashMap::new();
    for (k, v) in acked.iter() {
        assert_eq!(
            *by_key.entry(k.clone()).or_insert(*v),
            *v,
            "{k} answered twice differently"
        );
    }
    let values: HashSet<i64> = by_key.values().copied().collect();
    assert_eq!(
        values.len(),
        SENDERS * MESSAGES,
        "every message saw its own count"
    );
    let addr = addr.lock().unwrap().clone();
    assert_eq!(
        post(&addr, "shared", "get", None).unwrap().0,
        (SENDERS * MESSAGES).to_string()
    );
}
