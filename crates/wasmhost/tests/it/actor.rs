//! Actors: the AssemblyScript counter (`as-counter-minimal.wasm`) as a
//! stateful actor, one message at a time in arrival order, thousands alive
//! at once, passivation, restarts after a trap, and a key-value-backed core
//! counter (`guests/wat/kv.wat`) whose state survives passivation. (What
//! survives crashes and restarts: `durable_actors.rs`.)

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use wasmhost::{
    ActorConfig, ActorSpec, ActorSystem, Convention, ErrorCode, KvStore, Module, Runtime,
    RuntimeConfig, SnapshotPolicy,
};

use crate::{built, wat};

/// A runtime for many live instances: on-demand allocation, no pool cap.
fn many_runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default().pool(None)).unwrap()
}

fn counter(rt: &Runtime) -> Module {
    rt.load(&built("as-counter-minimal.wasm")).unwrap()
}

fn text(system: &ActorSystem, id: &str, spec: Option<&ActorSpec>, f: &str, input: &str) -> String {
    system
        .send(id, spec, f, input.to_string())
        .unwrap_or_else(|e| panic!("{id}: {f}({input}): {e}"))
        .value
        .text()
        .unwrap()
        .into_owned()
}

#[test]
fn actor_counter_keeps_state_across_messages() {
    let rt = many_runtime();
    let system = ActorSystem::new(ActorConfig::default());
    let spec = ActorSpec::new(counter(&rt));
    assert_eq!(text(&system, "c", Some(&spec), "increment", "5"), "5");
    assert_eq!(text(&system, "c", None, "increment", "3"), "8");
    assert_eq!(text(&system, "c", None, "decrement", "2"), "6");
    assert_eq!(text(&system, "c", None, "get", ""), "6");
    // Another actor of the same module has its own state.
    assert_eq!(text(&system, "d", Some(&spec), "get", ""), "0");

    let list = system.list().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, "c");
    assert_eq!(
        (list[0].messages, list[0].restarts, list[0].live),
        (4, 0, true)
    );
    assert_eq!(list[0].digest, spec.module.digest());
    assert!(system.remove("c").unwrap());
    assert!(!system.remove("c").unwrap());
    assert_eq!(system.len(), 1);
    // Removed: a new actor starts from zero.
    assert_eq!(text(&system, "c", Some(&spec), "get", ""), "0");
}

#[test]
fn actor_unknown_without_spec_is_not_found() {
    let system = ActorSystem::new(ActorConfig::default());
    let e = system.send("nobody", None, "get", "").unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound, "{e}");
    assert!(e.to_string().contains("nobody"), "{e}");
    assert!(system.is_empty());
    // A bad id is refused before anything is created.
    let rt = many_runtime();
    let spec = ActorSpec::new(counter(&rt));
    let e = system.send("", Some(&spec), "get", "").unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadInput, "{e}");
    // An existing actor refuses a spec for another module.
    assert_eq!(text(&system, "a", Some(&spec), "get", ""), "0");
    let other = ActorSpec::new(rt.load(&wat("kv")).unwrap());
    let e = system.send("a", Some(&other), "get", "").unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadInput, "{e}");
}

#[test]
fn actor_concurrent_senders_are_serialized_without_loss() {
    const THREADS: usize = 8;
    const EACH: usize = 200;
    let rt = many_runtime();
    let system = ActorSystem::new(ActorConfig::default());
    let spec = Arc::new(ActorSpec::new(counter(&rt)));
    let replies: Vec<Vec<i64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (system, spec) = (system.clone(), spec.clone());
                s.spawn(move || {
                    (0..EACH)
                        .map(|_| {
                            text(&system, "one", Some(&spec), "increment", "1")
                                .parse::<i64>()
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total = (THREADS * EACH) as i64;
    assert_eq!(text(&system, "one", None, "get", ""), total.to_string());
    // Every reply distinct and together exactly 1..=total: no message lost
    // or applied twice; each sender saw its own replies in increasing order.
    let mut all = HashSet::new();
    for r in &replies {
        assert!(r.windows(2).all(|w| w[0] < w[1]), "{r:?}");
        all.extend(r.iter().copied());
    }
    assert_eq!(all.len(), THREADS * EACH);
    assert_eq!(all, (1..=total).collect::<HashSet<_>>());
    assert_eq!(system.list().unwrap()[0].messages, total as u64 + 1);
}

#[test]
fn actor_async_senders_keep_arrival_order() {
    let rt = many_runtime();
    let system = ActorSystem::new(ActorConfig::default());
    let spec = Arc::new(ActorSpec::new(counter(&rt)));
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    tokio.block_on(async {
        // Sequential sends from one task are answered in order.
        for i in 1..=5 {
            let out = system
                .send_async("a", Some(&spec), "increment", "1")
                .await
                .unwrap();
            assert_eq!(out.value.text().unwrap(), i.to_string());
        }
        // Many concurrent tasks, two actors: no loss, distinct replies.
        let mut tasks = Vec::new();
        for i in 0..200 {
            let (system, spec) = (system.clone(), spec.clone());
            let id = if i % 2 == 0 { "a" } else { "b" };
            tasks.push(tokio::spawn(async move {
                let out = system
                    .send_async(id, Some(&spec), "increment", "1")
                    .await
                    .unwrap();
                (id, out.value.text().unwrap().parse::<i64>().unwrap())
            }));
        }
        let mut a = HashSet::new();
        let mut b = HashSet::new();
        for t in tasks {
            let (id, n) = t.await.unwrap();
            assert!(if id == "a" { a.insert(n) } else { b.insert(n) });
        }
        assert_eq!(a, (6..=105).collect::<HashSet<_>>());
        assert_eq!(b, (1..=100).collect::<HashSet<_>>());
    });
}

#[test]
fn actor_ten_thousand_alive_at_once() {
    const N: usize = 10_000;
    let rt = many_runtime();
    let system = ActorSystem::new(ActorConfig::default().passivate_after(Duration::MAX));
    let spec = ActorSpec::new(counter(&rt));
    for i in 0..N {
        assert_eq!(
            text(
                &system,
                &format!("actor-{i}"),
                Some(&spec),
                "increment",
                "1"
            ),
            "1"
        );
    }
    let list = system.list().unwrap();
    assert_eq!(list.len(), N);
    assert!(list.iter().all(|a| a.live && a.messages == 1));
    for i in 0..N {
        assert_eq!(
            text(&system, &format!("actor-{i}"), None, "increment", "1"),
            "2",
            "actor-{i}"
        );
    }
    assert_eq!(system.passivate_idle_for(Duration::ZERO), N);
    assert!(system.list().unwrap().iter().all(|a| !a.live));
}

#[test]
fn actor_passivation_keeps_memory_and_kv_state_unless_the_policy_is_never() {
    let rt = many_runtime();
    let store = KvStore::memory();
    let system = ActorSystem::new(
        ActorConfig::default()
            .passivate_after(Duration::from_millis(1))
            .kv(store.clone()),
    );
    let as_spec = ActorSpec::new(counter(&rt));
    let forgetful = ActorSpec::new(counter(&rt)).snapshots(SnapshotPolicy::Never);
    let kv_spec = ActorSpec::new(rt.load(&wat("kv")).unwrap()).convention(Convention::Numeric);
    let kv_count = |id: &str| {
        system
            .send(id, Some(&kv_spec), "counter", "")
            .unwrap()
            .value
            .integer()
            .unwrap()
    };

    assert_eq!(text(&system, "mem", Some(&as_spec), "increment", "5"), "5");
    assert_eq!(
        text(&system, "nomem", Some(&forgetful), "increment", "5"),
        "5"
    );
    assert_eq!([kv_count("kv"), kv_count("kv")], [1, 2]);
    assert_eq!(kv_count("kv2"), 1, "another actor, another namespace");

    std::thread::sleep(Duration::from_millis(5));
    system.passivate_idle(); // (the background thread may have done it already)
    let list = system.list().unwrap();
    assert!(list.iter().all(|a| !a.live), "{list:?}");

    // Resumed on the next message: from its snapshot under the default
    // policy, from scratch under `never`; the store keeps counting.
    assert_eq!(text(&system, "mem", None, "get", ""), "5");
    assert_eq!(text(&system, "nomem", None, "get", ""), "0");
    assert_eq!(kv_count("kv"), 3);
    assert_eq!(
        store.get("actor:kv", b"count").unwrap(),
        Some(3i64.to_le_bytes().to_vec())
    );
    assert_eq!(
        store.get("actor:kv2", b"count").unwrap(),
        Some(1i64.to_le_bytes().to_vec())
    );
    // Removing an actor keeps its key-value state for the next one; purging
    // does not.
    assert!(system.remove("kv").unwrap());
    assert_eq!(kv_count("kv"), 4);
    assert!(system.purge("kv").unwrap());
    assert_eq!(kv_count("kv"), 1);
}

#[test]
fn actor_passivation_skips_busy_and_recent_actors() {
    let rt = many_runtime();
    let system = ActorSystem::new(ActorConfig::default().passivate_after(Duration::from_secs(60)));
    let spec = ActorSpec::new(counter(&rt));
    assert_eq!(text(&system, "a", Some(&spec), "increment", "2"), "2");
    assert_eq!(system.passivate_idle(), 0, "not idle for a minute yet");
    assert_eq!(text(&system, "a", None, "get", ""), "2");
    assert!(system.list().unwrap()[0].idle_for < Duration::from_secs(60));
}

#[test]
fn actor_trap_is_reported_and_restarts_the_actor() {
    let rt = many_runtime();
    let system = ActorSystem::new(ActorConfig::default());
    let spec = ActorSpec::new(counter(&rt));
    assert_eq!(text(&system, "t", Some(&spec), "increment", "7"), "7");
    let e = system.send("t", None, "fail", "boom").unwrap_err();
    assert_eq!(e.code(), ErrorCode::GuestError, "{e}");
    assert!(e.to_string().contains("boom"), "{e}");
    // The next message works, on a fresh instance.
    assert_eq!(text(&system, "t", None, "increment", "1"), "1");
    let info = &system.list().unwrap()[0];
    assert_eq!((info.restarts, info.messages, info.live), (1, 3, true));
}

#[test]
fn actor_limits_apply_per_actor() {
    let rt = many_runtime();
    let system = ActorSystem::new(ActorConfig::default());
    let spin = rt.load(&wat("loop")).unwrap();
    let spec = ActorSpec::new(spin)
        .convention(Convention::Numeric)
        .limits(wasmhost::Limits::default().timeout(Some(Duration::from_millis(50))));
    let e = system.send("spin", Some(&spec), "run", "").unwrap_err();
    assert_eq!(e.code(), ErrorCode::Timeout, "{e}");
    assert_eq!(
        system
            .send("spin", None, "ok", "")
            .unwrap()
            .value
            .integer()
            .unwrap(),
        1
    );
    assert_eq!(system.list().unwrap()[0].restarts, 1);
}
