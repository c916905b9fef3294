//! Durable actors (`wasmhost::actor` with a store): a Loom-style counter
//! whose state is in its memory (`as-counter-actor.wasm`) and a ledger
//! whose message writes memory, a global and a key (`guests/wat/ledger.wat`)
//! — snapshots after every message, atomic messages that roll back on
//! failure, message ids applied once, policies, export and import.

use std::sync::Arc;
use std::time::Duration;

use wasmhost::{
    ActorConfig, ActorSpec, ActorStore, ActorSystem, Capabilities, Convention, ErrorCode, KvStore,
    Limits, Module, Runtime, RuntimeConfig, SnapshotPolicy, Wasi,
};

use crate::{built, wat};

fn rt() -> Runtime {
    Runtime::new(RuntimeConfig::default().pool(None)).unwrap()
}

fn counter(rt: &Runtime) -> Module {
    rt.load(&built("as-counter-actor.wasm")).unwrap()
}

fn ledger(rt: &Runtime) -> ActorSpec {
    ActorSpec::new(rt.load(&wat("ledger")).unwrap()).convention(Convention::Numeric)
}

/// A system on `store` that never passivates on its own.
fn system(store: &KvStore) -> ActorSystem {
    ActorSystem::new(
        ActorConfig::default()
            .passivate_after(Duration::MAX)
            .kv(store.clone()),
    )
}

fn exec(system: &ActorSystem, id: &str, spec: Option<&ActorSpec>, command: &str) -> String {
    system
        .send(id, spec, "execute", command.to_string())
        .unwrap_or_else(|e| panic!("{id}: {command}: {e}"))
        .value
        .text()
        .unwrap()
        .into_owned()
}

fn num(system: &ActorSystem, id: &str, spec: &ActorSpec, f: &str, arg: &str) -> i64 {
    system
        .send(id, Some(spec), f, arg.to_string())
        .unwrap_or_else(|e| panic!("{id}: {f}({arg}): {e}"))
        .value
        .integer()
        .unwrap()
}

#[test]
fn the_loom_sequence_survives_new_systems_on_the_same_store() {
    // Each message through a new system (as each CLI send is a new process).
    let rt = rt();
    let store = KvStore::memory();
    let spec = ActorSpec::new(counter(&rt));
    let mut replies = Vec::new();
    for command in ["increment 5", "increment 3", "decrement 2", "get"] {
        replies.push(exec(&system(&store), "counter-1", Some(&spec), command));
    }
    assert_eq!(replies, ["5", "8", "6", "6"]);
    let record = system(&store).stored("counter-1").unwrap().unwrap();
    assert_eq!(record.messages, 4);
    assert!(record.saved_at.is_some() && record.snapshot_bytes > 0);
    // A counter with 64 KiB of memory costs a few KiB at rest (the goal:
    // at most 8 KiB per passivated counter).
    assert!(record.snapshot_bytes <= 8192, "{record:?}");
}

#[test]
fn a_failed_message_leaves_no_trace_in_memory_globals_or_keys() {
    let rt = rt();
    let store = KvStore::memory();
    let sys = system(&store);
    let spec = ledger(&rt);
    assert_eq!(num(&sys, "l", &spec, "deposit", "[5]"), 5);
    // Deposit 13 changes the balance, the deposit count and "last", then traps.
    let err = sys.send("l", Some(&spec), "deposit", "[13]").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Trap, "{err}");
    assert_eq!(num(&sys, "l", &spec, "balance", ""), 5);
    assert_eq!(num(&sys, "l", &spec, "deposits", ""), 1);
    assert_eq!(num(&sys, "l", &spec, "last", ""), 5);
    assert_eq!(
        store.get("actor:l", b"last").unwrap(),
        Some(5i32.to_le_bytes().to_vec())
    );
    // And in a new system (from the store).
    assert_eq!(num(&system(&store), "l", &spec, "balance", ""), 5);
    let info = &sys.list().unwrap()[0];
    assert_eq!(info.restarts, 1);
}

#[test]
fn a_message_whose_sender_gives_up_mid_way_is_rolled_back() {
    let rt = rt();
    let store = KvStore::memory();
    let sys = system(&store);
    let spec = ledger(&rt);
    assert_eq!(num(&sys, "s", &spec, "deposit", "[5]"), 5);
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    // `spin` adds 7 to the balance, then never returns: the sender stops
    // waiting, which drops the message's future with the guest mid-way.
    let gave_up = tokio.block_on(async {
        tokio::time::timeout(
            Duration::from_millis(200),
            sys.send_async("s", Some(&spec), "spin", "[7]"),
        )
        .await
    });
    assert!(gave_up.is_err(), "the spinning message timed out");
    assert_eq!(num(&sys, "s", &spec, "balance", ""), 5, "not 12, and not 0");
    assert_eq!(num(&system(&store), "s", &spec, "balance", ""), 5);
}

#[test]
fn growing_to_the_memory_limit_then_failing_restores_the_pre_message_state() {
    let rt = rt();
    let store = KvStore::memory();
    let sys = system(&store);
    let spec = ledger(&rt).limits(Limits::default().max_memory_bytes(8 * 65536));
    assert_eq!(num(&sys, "g", &spec, "deposit", "[7]"), 7);
    let err = sys
        .send("g", Some(&spec), "grow_then_fail", "")
        .unwrap_err();
    assert!(
        matches!(err.code(), ErrorCode::Trap | ErrorCode::MemoryLimit),
        "{err}"
    );
    assert_eq!(num(&sys, "g", &spec, "pages", ""), 1);
    assert_eq!(num(&sys, "g", &spec, "balance", ""), 7);
    assert_eq!(num(&sys, "g", &spec, "last", ""), 7);
}

#[test]
fn a_message_resent_with_the_same_id_is_applied_once() {
    let rt = rt();
    let store = KvStore::memory();
    let spec = ActorSpec::new(counter(&rt));
    let first = system(&store)
        .send_once("c", Some(&spec), "m-1", "execute", "increment 5")
        .unwrap();
    assert!(!first.stats.replayed);
    // Resent, from another system: answered from the record.
    let again = system(&store)
        .send_once("c", Some(&spec), "m-1", "execute", "increment 5")
        .unwrap();
    assert!(again.stats.replayed);
    assert_eq!(again.value.text().unwrap(), "5");
    assert_eq!(exec(&system(&store), "c", Some(&spec), "get"), "5");
    // A failed message records nothing: resending it runs it again.
    let sys = system(&store);
    assert!(
        sys.send_once("c", Some(&spec), "m-2", "execute", "bogus")
            .is_err()
    );
    let out = sys
        .send_once("c", Some(&spec), "m-2", "execute", "increment 1")
        .unwrap();
    assert_eq!(
        (out.value.text().unwrap().as_ref(), out.stats.replayed),
        ("6", false)
    );
    // Bad ids are refused.
    let err = sys.send_once("c", None, "", "execute", "get").unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
}

#[test]
fn replies_are_kept_for_the_last_reply_window_ids() {
    let rt = rt();
    let store = KvStore::memory();
    let sys = system(&store);
    let spec = ActorSpec::new(counter(&rt));
    let window = wasmhost::actor::REPLY_WINDOW;
    for i in 0..window + 2 {
        sys.send_once(
            "w",
            Some(&spec),
            &format!("id-{i}"),
            "execute",
            "increment 1",
        )
        .unwrap();
    }
    // The oldest two fell out of the window; the rest are replayed.
    let newest = sys
        .send_once(
            "w",
            None,
            &format!("id-{}", window + 1),
            "execute",
            "increment 1",
        )
        .unwrap();
    assert!(newest.stats.replayed);
    let oldest_kept = sys
        .send_once("w", None, "id-2", "execute", "increment 1")
        .unwrap();
    assert!(oldest_kept.stats.replayed);
    let forgotten = sys
        .send_once("w", None, "id-0", "execute", "increment 1")
        .unwrap();
    assert!(!forgotten.stats.replayed);
    assert_eq!(forgotten.value.text().unwrap(), (window + 3).to_string());
}

#[test]
fn a_stored_actor_of_another_module_is_refused_unless_fresh() {
    let rt = rt();
    let store = KvStore::memory();
    let spec = ActorSpec::new(counter(&rt));
    assert_eq!(exec(&system(&store), "a", Some(&spec), "increment 4"), "4");
    let other = ledger(&rt);
    let err = system(&store)
        .send("a", Some(&other), "balance", "")
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::SnapshotMismatch, "{err}");
    assert!(err.to_string().contains("fresh"), "{err}");
    // Nothing was changed by the refusal.
    assert_eq!(exec(&system(&store), "a", Some(&spec), "get"), "4");
    // A fresh start with the other module.
    let fresh = other.clone().fresh(true);
    assert_eq!(num(&system(&store), "a", &fresh, "balance", ""), 0);
    assert_eq!(
        system(&store).stored("a").unwrap().unwrap().module,
        fresh.module.digest()
    );
}

#[test]
fn on_passivation_saves_when_passivated_or_checkpointed_and_never_saves_nothing() {
    let rt = rt();
    let store = KvStore::memory();
    let lazy = ActorSpec::new(counter(&rt)).snapshots(SnapshotPolicy::OnPassivation);
    let never = ActorSpec::new(counter(&rt)).snapshots(SnapshotPolicy::Never);
    let sys = system(&store);
    assert_eq!(exec(&sys, "lazy", Some(&lazy), "increment 2"), "2");
    assert_eq!(exec(&sys, "never", Some(&never), "increment 2"), "2");
    // Not saved yet: another system sees the state before.
    assert_eq!(exec(&system(&store), "lazy", Some(&lazy), "get"), "0");
    assert_eq!(sys.passivate_idle_for(Duration::ZERO), 2);
    assert_eq!(exec(&system(&store), "lazy", Some(&lazy), "get"), "2");
    assert_eq!(exec(&system(&store), "never", Some(&never), "get"), "0");
    // Checkpoint saves the live ones.
    assert_eq!(exec(&sys, "lazy", None, "increment 3"), "5");
    assert_eq!(sys.checkpoint().unwrap(), 1);
    assert_eq!(sys.checkpoint().unwrap(), 0, "nothing changed since");
    assert_eq!(exec(&system(&store), "lazy", Some(&lazy), "get"), "5");
    let info: Vec<_> = sys.list().unwrap();
    assert_eq!(info[0].snapshots, Some(SnapshotPolicy::OnPassivation));
    assert_eq!(info[1].snapshot_bytes, 0);
}

#[test]
fn export_then_import_moves_an_actor_with_its_snapshot_and_keys() {
    let rt = rt();
    let here = KvStore::memory();
    let there = KvStore::memory();
    let spec = ledger(&rt);
    let sys = system(&here);
    assert_eq!(num(&sys, "l", &spec, "deposit", "[40]"), 40);
    assert_eq!(num(&sys, "l", &spec, "deposit", "[2]"), 42);
    let bytes = sys.export("l", b"meta").unwrap();
    let (record, meta) = system(&there).import("l2", &bytes).unwrap();
    assert_eq!((record.messages, meta.as_slice()), (2, &b"meta"[..]));
    let moved = system(&there);
    assert_eq!(num(&moved, "l2", &spec, "balance", ""), 42);
    assert_eq!(num(&moved, "l2", &spec, "deposits", ""), 2);
    assert_eq!(num(&moved, "l2", &spec, "last", ""), 2);
    // Importing over an existing actor, or damaged bytes, is refused.
    let err = moved.import("l2", &bytes).unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    let err = moved.import("l3", &bad).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt, "{err}");
    assert_eq!(
        sys.export("nobody", b"").unwrap_err().code(),
        ErrorCode::NotFound
    );
}

#[test]
fn remove_forgets_the_snapshot_and_purge_the_keys() {
    let rt = rt();
    let store = KvStore::memory();
    let spec = ledger(&rt);
    let sys = system(&store);
    assert_eq!(num(&sys, "r", &spec, "deposit", "[3]"), 3);
    assert!(sys.remove("r").unwrap());
    assert!(store.records().unwrap().is_empty());
    assert_eq!(
        num(&sys, "r", &spec, "balance", ""),
        0,
        "memory starts over"
    );
    assert_eq!(num(&sys, "r", &spec, "last", ""), 3, "keys are kept");
    assert!(sys.purge("r").unwrap());
    assert_eq!(num(&sys, "r", &spec, "last", ""), -1);
    assert!(!sys.remove("nobody").unwrap());
}

#[test]
fn component_actors_keep_state_in_keyvalue_and_refuse_snapshot_policies() {
    let rt = rt();
    let store = KvStore::memory();
    let sys = system(&store);
    let kv = rt
        .load(&built("kv-component.wasm"))
        .unwrap()
        .with_capabilities(Capabilities::none().with_wasi(Wasi::new()));
    let spec = ActorSpec::new(kv.clone());
    sys.spawn("comp", &spec).unwrap();
    assert_eq!(
        sys.list().unwrap()[0].snapshots,
        Some(SnapshotPolicy::Never)
    );
    let err = sys
        .spawn(
            "comp2",
            &ActorSpec::new(kv).snapshots(SnapshotPolicy::EveryMessage),
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
    assert!(err.to_string().contains("wasi:keyvalue"), "{err}");
}

#[test]
fn concurrent_keyed_senders_are_applied_exactly_once() {
    let rt = rt();
    let store = KvStore::memory();
    let sys = system(&store);
    let spec = Arc::new(ActorSpec::new(counter(&rt)));
    std::thread::scope(|s| {
        for t in 0..8 {
            let (sys, spec) = (sys.clone(), spec.clone());
            s.spawn(move || {
                for i in 0..50 {
                    // Every message sent twice: the second is a replay.
                    for _ in 0..2 {
                        sys.send_once(
                            "n",
                            Some(&spec),
                            &format!("{t}-{i}"),
                            "execute",
                            "increment 1",
                        )
                        .unwrap();
                    }
                }
            });
        }
    });
    assert_eq!(exec(&system(&store), "n", Some(&spec), "get"), "400");
}
