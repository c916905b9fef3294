//! `wasmhost serve --cluster`: nodes over a real nats-server (Debian's, as
//! scripts/test-services.sh installs it), each node its own process.

mod common;
#[path = "../../wasmhost-cluster/tests/common/nats.rs"]
mod nats;

use std::time::{Duration, Instant};

use common::{Serving, fails_in, http, serve};
use nats::Nats;

/// A node of cluster `name` over `nats`, heartbeating every `heartbeat`.
fn node(nats: &Nats, name: &str, heartbeat: &str, extra: &[&str]) -> Serving {
    let url = nats.url();
    let mut args = vec![
        "--cluster",
        url.as_str(),
        "--cluster-name",
        name,
        "--cluster-heartbeat",
        heartbeat,
    ];
    args.extend_from_slice(extra);
    serve(&args)
}

/// The member list as `at` serves it: (this node's id, the members' addrs).
fn members(at: &Serving) -> (String, Vec<String>) {
    let (status, body) = http(&at.addr, "GET", "/api/v1/cluster", "");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["enabled"], true, "{v}");
    let mut addrs: Vec<String> = v["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["addr"].as_str().unwrap_or_default().to_string())
        .collect();
    addrs.sort();
    (v["node"].as_str().unwrap_or_default().to_string(), addrs)
}

/// Polls the member list of `at` until it is exactly `want` (10 s at most).
fn until_members(at: &Serving, want: &[&String]) -> Duration {
    let start = Instant::now();
    let mut want: Vec<String> = want.iter().map(|a| format!("http://{a}")).collect();
    want.sort();
    loop {
        let (_, got) = members(at);
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "members {got:?}, expected {want:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn three_nodes_list_each_other_and_one_that_dies_drops_out() {
    let nats = Nats::start();
    let a = node(&nats, "three", "1s", &[]);
    let mut b = node(&nats, "three", "1s", &[]);
    let mut c = node(&nats, "three", "1s", &[]);
    for n in [&a, &b, &c] {
        until_members(n, &[&a.addr, &b.addr, &c.addr]);
    }
    // Every node lists the same members with their load, and knows itself.
    let (status, body) = http(&c.addr, "GET", "/api/v1/cluster", "");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["name"], "three");
    assert_eq!(v["heartbeat_ms"], 1000);
    let me = v["nodes"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["id"] == v["node"]))
        .expect("c lists itself");
    assert_eq!(me["addr"], format!("http://{}", c.addr));
    assert_eq!(me["version"], env!("CARGO_PKG_VERSION"));
    assert!(me["load"]["slots"].as_u64().unwrap_or(0) >= 1, "{me}");
    // serve says where it joined.
    let log = c.log.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
    assert!(log.contains("cluster    three over nats://"), "{log}");

    // SIGTERM: c leaves the list as it stops, before its record could expire.
    c.signal("TERM");
    assert!(c.wait().success());
    let took = until_members(&a, &[&a.addr, &b.addr]);
    assert!(took < Duration::from_millis(1000), "took {took:?}");

    // SIGKILL: b cannot say goodbye; its record expires three heartbeats
    // after its last one.
    b.signal("KILL");
    b.wait();
    let took = until_members(&a, &[&a.addr]);
    assert!(took <= Duration::from_millis(4500), "took {took:?}");
}

#[test]
fn a_node_alone_says_so() {
    let alone = serve(&[]);
    let (status, body) = http(&alone.addr, "GET", "/api/v1/cluster", "");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["enabled"], false);
    assert_eq!(v["nodes"], serde_json::json!([]));
}

#[test]
fn serve_refuses_a_nats_server_it_cannot_use_with_a_clear_error() {
    let state = tempfile::tempdir().expect("tempdir");
    // Nothing listening.
    let url = format!("nats://127.0.0.1:{}", nats::free_port());
    let start = Instant::now();
    let (code, err) = fails_in(
        state.path(),
        &["serve", "--addr", "127.0.0.1:0", "--cluster", &url],
    );
    assert_eq!(code, 77, "{err}");
    assert!(err.contains("error[unavailable]"), "{err}");
    assert!(
        err.contains(&format!("cannot reach the NATS server at {url}")),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(10));

    // A NATS server without JetStream.
    let plain = Nats::without_jetstream();
    let (code, err) = fails_in(
        state.path(),
        &["serve", "--addr", "127.0.0.1:0", "--cluster", &plain.url()],
    );
    assert_eq!(code, 77, "{err}");
    assert!(err.contains("has no JetStream"), "{err}");
    assert!(err.contains("nats-server -js"), "{err}");

    // Settings that cannot be right: bad_input (64), before connecting.
    let (code, err) = fails_in(
        state.path(),
        &["serve", "--cluster", &plain.url(), "--cluster-name", "a.b"],
    );
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("cluster name `a.b`"), "{err}");
    let (code, err) = fails_in(state.path(), &["serve", "--cluster-name", "x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--cluster"), "{err}");
}

/// (status, the node that ran it, body) of a call of `add_i32` through `at`.
fn add(at: &Serving, module: &str, placement: &str) -> (u16, String, String) {
    let path = format!("/api/v1/modules/{module}/call/add_i32?placement={placement}");
    let (status, head, body) =
        common::request(&at.addr, "POST", &path, &[], "[40, 2]").expect("call");
    // One node ran it, and the answer says which, once (a request refused
    // before running anywhere names none).
    let named = head
        .lines()
        .filter(|l| l.starts_with("x-wasmhost-node: "))
        .count();
    assert_eq!(named, usize::from(status == 200), "{head}");
    let node = head
        .lines()
        .find_map(|l| l.strip_prefix("x-wasmhost-node: "))
        .unwrap_or_default()
        .to_string();
    (status, node, body)
}

fn node_id(at: &Serving) -> String {
    members(at).0
}

/// The value of a Prometheus counter line that starts with `prefix`.
fn counter(at: &Serving, prefix: &str) -> u64 {
    let (_, text) = http(&at.addr, "GET", "/metrics", "");
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[test]
fn calls_go_to_the_nodes_that_hold_the_module_and_fall_back_to_a_local_run() {
    let nats = Nats::start();
    // One module store for the three: JetStream's object store, so the
    // cluster needs nothing but NATS.
    let store = format!("{}/modules", nats.url());
    let extra = ["--store", store.as_str()];
    let a = node(&nats, "calls", "1s", &extra);
    let b = node(&nats, "calls", "1s", &extra);
    let c = node(&nats, "calls", "1s", &extra);
    until_members(&c, &[&a.addr, &b.addr, &c.addr]);
    let (ida, idc) = (node_id(&a), node_id(&c));

    // Uploaded to a: a compiled it and answers its calls for the cluster.
    let wasm = std::fs::read_to_string(common::wat("numeric")).expect("numeric.wat");
    let (status, body) = http(&a.addr, "POST", "/api/v1/modules?name=num", &wasm);
    assert_eq!(status, 201, "{body}");
    // Through c, forced onto the queue group: a runs it.
    for _ in 0..5 {
        let (status, node, body) = add(&c, "num", "any");
        assert_eq!((status, body.trim()), (200, "42"));
        assert_eq!(node, ida, "forwarded to a");
    }
    // The header says the same as the query.
    let (status, head, body) = common::request(
        &c.addr,
        "POST",
        "/api/v1/modules/num/call/add_i32",
        &[("x-wasmhost-placement", "any")],
        "[40, 2]",
    )
    .expect("call");
    assert_eq!((status, body.trim()), (200, "42"));
    assert!(head.contains(&format!("x-wasmhost-node: {ida}")), "{head}");
    // Local: c runs it itself (and now holds it compiled too).
    let (status, node, body) = add(&c, "num", "local");
    assert_eq!(
        (status, node.as_str(), body.trim()),
        (200, idc.as_str(), "42")
    );
    assert!(counter(&c, "wasmhost_cluster_forwards_total{outcome=\"answered\"}") >= 5);

    // Pushed to the store behind every node's back: no node holds it
    // compiled, so no one answers its queue group, and NATS says so at once:
    // b runs it itself.
    let state = tempfile::tempdir().expect("tempdir");
    let fresh = state.path().join("fresh.wat");
    // Another module: one more export.
    let other = wasm.replace(
        r#"(func (export "noop"))"#,
        r#"(func (export "noop")) (func (export "fresh"))"#,
    );
    assert_ne!(other, wasm);
    std::fs::write(&fresh, other).expect("write");
    let out = common::wasmhost_in(
        state.path(),
        &[
            "push",
            "--store",
            &store,
            &fresh.display().to_string(),
            "fresh:v1",
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let idb = node_id(&b);
    let (status, node, body) = add(&b, "fresh:v1", "any");
    assert_eq!(
        (status, node.as_str(), body.trim()),
        (200, idb.as_str(), "42")
    );
    assert_eq!(
        counter(
            &b,
            "wasmhost_cluster_forwards_total{outcome=\"no_responders\"}"
        ),
        1
    );

    // A bad placement is bad input.
    let (status, _, body) = add(&b, "num", "everywhere");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("placement `everywhere`"), "{body}");
}

#[test]
fn worker_routes_go_to_nodes_serving_the_same_module_at_the_same_path() {
    let nats = Nats::start();
    let numeric = common::wat("numeric");
    let route = format!("/add={numeric},mode=function,function=add_i32");
    let a = node(&nats, "routes", "1s", &["--route", &route]);
    let b = node(&nats, "routes", "1s", &["--route", &route]);
    // c serves another module at the same path: never a's or b's peer.
    let dir = tempfile::tempdir().expect("tempdir");
    let other = dir.path().join("other.wat");
    let text = std::fs::read_to_string(&numeric).expect("numeric.wat");
    std::fs::write(
        &other,
        text.replace(
            r#"(func (export "noop"))"#,
            r#"(func (export "noop")) (func (export "x"))"#,
        ),
    )
    .expect("write");
    let other_route = format!("/add={},mode=function,function=add_i32", other.display());
    let c = node(&nats, "routes", "1s", &["--route", &other_route]);
    until_members(&a, &[&a.addr, &b.addr, &c.addr]);
    let (ida, idb, idc) = (node_id(&a), node_id(&b), node_id(&c));

    let mut ran_on = std::collections::BTreeMap::new();
    for _ in 0..40 {
        let (status, head, body) =
            common::request(&b.addr, "POST", "/add?placement=any", &[], "[40, 2]").expect("call");
        assert_eq!((status, body.trim()), (200, "42"), "{head}");
        let node = head
            .lines()
            .find_map(|l| l.strip_prefix("x-wasmhost-node: "))
            .unwrap_or_default()
            .to_string();
        *ran_on.entry(node).or_insert(0) += 1;
    }
    // NATS spreads the queue group's requests over a and b (the chance
    // that 40 in a row went to one of them is 2^-39); never to c.
    assert!(
        ran_on.contains_key(&ida) && ran_on.contains_key(&idb),
        "{ran_on:?}"
    );
    assert!(!ran_on.contains_key(&idc), "{ran_on:?}");
    assert_eq!(ran_on.values().sum::<i32>(), 40);
    // Without a placement, an idle node runs its route itself.
    let (status, head, _) = common::request(&c.addr, "POST", "/add", &[], "[1, 2]").expect("call");
    assert_eq!(status, 200);
    assert!(head.contains(&format!("x-wasmhost-node: {idc}")), "{head}");
}

// ----- actors: one owner, failover --------------------------------------------

/// A node serving Loom's AssemblyScript counter as an actor route.
fn counter_node(nats: &Nats, name: &str, ttl: &str) -> Serving {
    let counter = common::built("as-counter-actor.wasm");
    let route = format!("/counter={counter},mode=actor,function=execute");
    node(
        nats,
        name,
        "1s",
        &["--route", &route, "--cluster-lease-ttl", ttl],
    )
}

/// POST `command` to actor `name` through `addr`: (reply, node that ran
/// it), or None when it was not answered 200 (or the node is gone).
fn send(addr: &str, name: &str, command: &str, key: Option<&str>) -> Option<(String, String)> {
    let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    match common::request(addr, "POST", &format!("/counter/{name}"), &headers, command) {
        Ok((200, head, body)) => {
            let node = head
                .lines()
                .find_map(|l| l.strip_prefix("x-wasmhost-node: "))
                .unwrap_or_default()
                .to_string();
            Some((body, node))
        }
        _ => None,
    }
}

#[test]
fn an_actor_has_one_owner_and_messages_through_every_node_make_one_sequence() {
    let nats = Nats::start();
    let nodes = [
        counter_node(&nats, "own", "3s"),
        counter_node(&nats, "own", "3s"),
        counter_node(&nats, "own", "3s"),
    ];
    let mut owners = std::collections::BTreeSet::new();
    for i in 1..=30 {
        let via = &nodes[i % 3];
        let (reply, node) = send(&via.addr, "alice", "increment 1", None).expect("answered");
        assert_eq!(reply, i.to_string(), "message {i} through node {}", i % 3);
        owners.insert(node);
    }
    assert_eq!(owners.len(), 1, "one owner: {owners:?}");
    // Another actor may live elsewhere, with its own count.
    assert_eq!(
        send(&nodes[1].addr, "bob", "increment 5", None)
            .expect("bob")
            .0,
        "5"
    );
    assert_eq!(
        send(&nodes[2].addr, "alice", "get", None).expect("alice").0,
        "30"
    );
    // Key-value data and message ids travel with the actor: a resend of a
    // keyed message through another node is answered from the record.
    let first = send(&nodes[0].addr, "alice", "increment 1", Some("k-31")).expect("k-31");
    let again = send(&nodes[2].addr, "alice", "increment 1", Some("k-31")).expect("k-31 again");
    assert_eq!((first.0.as_str(), again.0.as_str()), ("31", "31"));
    assert_eq!(
        send(&nodes[1].addr, "alice", "get", None).expect("get").0,
        "31"
    );

    // The owner stops cleanly (SIGTERM): it releases its leases once its
    // last messages are saved, so the next message, through another node,
    // takes alice over at once, well before her lease (3 s) would expire.
    let mut nodes = nodes.map(Some);
    let ids: Vec<String> = nodes.iter().flatten().map(node_id).collect();
    let owner = ids
        .iter()
        .position(|id| owners.contains(id))
        .expect("the owner is a node");
    let mut stopping = nodes[owner].take().expect("running");
    stopping.signal("TERM");
    assert!(stopping.wait().success());
    let via = nodes.iter().flatten().next().expect("a node");
    let started = Instant::now();
    let (reply, node) = send(&via.addr, "alice", "increment 1", None).expect("answered");
    assert_eq!(reply, "32");
    assert_ne!(node, ids[owner]);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_node_stops_promptly_when_the_nats_server_is_gone() {
    let mut nats = Nats::start();
    let mut a = counter_node(&nats, "gone", "3s");
    assert_eq!(
        send(&a.addr, "dora", "increment 1", None).expect("dora").0,
        "1"
    );
    nats.kill();
    let started = Instant::now();
    a.signal("TERM");
    assert!(a.wait().success());
    // It cannot say goodbye (2 s for the member record, 2 s for the
    // leases, each bounded), and does not hang.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

/// The index of the live node that owns actor `counter/counter` now: asks
/// through a live node, and reads which node answered.
fn owner_of(nodes: &[Option<Serving>], ids: &[String]) -> usize {
    for n in nodes.iter().flatten() {
        if let Some((_, node)) = send(&n.addr, "counter", "get", None) {
            return ids
                .iter()
                .position(|id| *id == node)
                .expect("the owner is one of the nodes");
        }
    }
    panic!("no node answers");
}

/// Sends message `i` (key `m{i}`) round-robin over the live nodes, again
/// and again with the same key until a node acknowledges it (30 s at
/// most); the count it answered.
fn increment(nodes: &[Option<Serving>], i: usize) -> i64 {
    let key = format!("m{i}");
    let started = Instant::now();
    let live: Vec<&Serving> = nodes.iter().flatten().collect();
    let mut n = i;
    loop {
        let via = live[n % live.len()];
        n += 1;
        if let Some((reply, _)) = send(&via.addr, "counter", "increment 1", Some(&key)) {
            return reply.parse().expect("a count");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{key} never acknowledged"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_owner_is_replaced_and_no_acknowledged_message_is_lost_or_applied_twice() {
    const MESSAGES: usize = 1000;
    let nats = Nats::start();
    let mut nodes: Vec<Option<Serving>> = (0..3)
        .map(|_| Some(counter_node(&nats, "failover", "1s")))
        .collect();
    let mut ids: Vec<String> = nodes.iter().flatten().map(node_id).collect();
    let mut failovers = Vec::new();
    let mut first_killed = None;
    for i in 0..MESSAGES {
        let mut killed_at = None;
        if i == 300 || i == 650 {
            // SIGKILL the actor's owner.
            let owner = owner_of(&nodes, &ids);
            if let Some(mut n) = nodes[owner].take() {
                n.signal("KILL");
                n.wait();
            }
            killed_at = Some(Instant::now());
            match first_killed {
                None => first_killed = Some(owner),
                // After the second kill, the first node killed comes back
                // (as a new node: a fresh id).
                Some(k) => {
                    let back = counter_node(&nats, "failover", "1s");
                    ids[k] = node_id(&back);
                    nodes[k] = Some(back);
                }
            }
        }
        let count = increment(&nodes, i);
        // Applied once, in order: message i saw the count i + 1.
        assert_eq!(count, i as i64 + 1, "message m{i}");
        if let Some(t) = killed_at {
            failovers.push(t.elapsed());
        }
    }
    let total = nodes
        .iter()
        .flatten()
        .find_map(|n| send(&n.addr, "counter", "get", None))
        .expect("a live node answers");
    assert_eq!(total.0, MESSAGES.to_string());
    // The first acknowledged message after the owner's SIGKILL came within
    // the lease TTL (1 s) and a second (the goal), with room for a busy
    // machine.
    eprintln!("failovers (SIGKILL -> first acknowledged reply): {failovers:?}");
    assert_eq!(failovers.len(), 2);
    for took in &failovers {
        assert!(
            *took <= Duration::from_millis(2500),
            "failover took {took:?}"
        );
    }
}

#[test]
fn a_paused_owner_commits_nothing_after_its_lease_and_the_count_stays_exact() {
    let nats = Nats::start();
    let nodes: Vec<Serving> = (0..3)
        .map(|_| counter_node(&nats, "zombie", "1s"))
        .collect();
    let ids: Vec<String> = nodes.iter().map(node_id).collect();
    let mut expected = 0;
    let mut step = |via: &Serving, key: String| {
        expected += 1;
        let started = Instant::now();
        loop {
            if let Some((reply, _)) = send(&via.addr, "counter", "increment 1", Some(&key)) {
                assert_eq!(reply, expected.to_string(), "{key}");
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{key} never acknowledged"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    for i in 0..10 {
        step(&nodes[i % 3], format!("before-{i}"));
    }
    let owner = {
        let (_, node) = send(&nodes[0].addr, "counter", "get", None).expect("get");
        ids.iter().position(|id| *id == node).expect("an owner")
    };
    let others: Vec<&Serving> = (0..3).filter(|&k| k != owner).map(|k| &nodes[k]).collect();
    // The owner stops (SIGSTOP) for three lease TTLs: its connection stays
    // open, it answers nothing, and it renews nothing.
    nodes[owner].signal("STOP");
    let stopped = Instant::now();
    for i in 0..10 {
        step(others[i % 2], format!("during-{i}"));
    }
    let took_over = stopped.elapsed();
    std::thread::sleep(Duration::from_secs(3).saturating_sub(stopped.elapsed()));
    nodes[owner].signal("CONT");
    // The old owner still holds the actor's old state in memory. Messages
    // sent to it now must reach the new owner: its first try commits
    // nothing (fenced), and it drops the actor.
    for i in 0..10 {
        step(&nodes[owner], format!("after-{i}"));
    }
    for i in 0..10 {
        step(&nodes[i % 3], format!("last-{i}"));
    }
    let (total, new_owner) = send(&nodes[owner].addr, "counter", "get", None).expect("get");
    assert_eq!(total, "40");
    assert_ne!(
        new_owner, ids[owner],
        "the paused node did not get the actor back"
    );
    eprintln!("takeover after SIGSTOP: {took_over:?}");
}

#[test]
fn nodes_reconnect_after_the_nats_server_restarts_and_calls_resume() {
    let mut nats = Nats::start();
    let a = counter_node(&nats, "restart", "1s");
    let b = counter_node(&nats, "restart", "1s");
    assert_eq!(
        send(&a.addr, "carol", "increment 2", Some("k1"))
            .expect("k1")
            .0,
        "2"
    );
    // Load: two clients send keyed messages to another actor through both
    // nodes, each retried until acknowledged, all through the restart.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let acked = std::sync::Mutex::new(Vec::<(Instant, i64)>::new());
    std::thread::scope(|scope| {
        for (t, node) in [&a, &b].into_iter().enumerate() {
            let (stop, acked) = (&stop, &acked);
            scope.spawn(move || {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let key = format!("load-{t}-{i}");
                    if let Some((reply, _)) = send(&node.addr, "load", "increment 1", Some(&key)) {
                        let n = reply.parse().expect("a count");
                        acked
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((Instant::now(), n));
                        i += 1;
                    } else {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(500));
        // SIGKILL the NATS server and start it again on the same port and
        // store directory, under that load.
        nats.restart();
        let restarted_at = Instant::now();
        // The load goes on after the restart, without restarting the nodes.
        let deadline = restarted_at + Duration::from_secs(20);
        while acked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(t, _)| *t > restarted_at)
            .count()
            < 20
        {
            assert!(
                Instant::now() < deadline,
                "the load did not resume after the restart"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    // Every acknowledged message was applied once: the counts are 1..=n.
    let mut counts: Vec<i64> = acked
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(_, n)| *n)
        .collect();
    counts.sort_unstable();
    let expected: Vec<i64> = (1..=counts.len() as i64).collect();
    assert_eq!(counts, expected);
    // Calls resume without restarting the nodes: state, leases and message
    // ids were kept by JetStream (file storage).
    let started = Instant::now();
    let reply = loop {
        if let Some(r) = send(&b.addr, "carol", "increment 3", Some("k2")) {
            break r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no call after the restart"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(reply.0, "5");
    // A resend of the first message is still answered from the record.
    assert_eq!(
        send(&b.addr, "carol", "increment 2", Some("k1"))
            .expect("k1")
            .0,
        "2"
    );
    // Both nodes are members again.
    until_members(&a, &[&a.addr, &b.addr]);
    eprintln!("first call after the NATS restart: {:?}", started.elapsed());
}

#[test]
fn a_message_without_an_id_is_not_sent_twice_when_its_owner_may_have_run_it() {
    let nats = Nats::start();
    let a = counter_node(&nats, "uncertain", "1s");
    let b = counter_node(&nats, "uncertain", "1s");
    // a owns eve.
    let (one, owner) = send(&a.addr, "eve", "increment 1", Some("k1")).expect("k1");
    assert_eq!((one.as_str(), owner.as_str()), ("1", node_id(&a).as_str()));
    // a stops answering: a message without an id reaches it and waits; when
    // a's lease expires, b cannot tell whether a ran it, and says so rather
    // than running it a second time.
    a.signal("STOP");
    let (status, _, body) =
        common::request(&b.addr, "POST", "/counter/eve", &[], "increment 1").expect("answered");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("may or may not have been applied"), "{body}");
    assert!(body.contains("Idempotency-Key"), "{body}");
    // With an id, b takes eve over and applies it once.
    let (two, owner) = send(&b.addr, "eve", "increment 1", Some("k2")).expect("k2");
    assert_eq!((two.as_str(), owner.as_str()), ("2", node_id(&b).as_str()));
    // a wakes up and finds the message it was sent: fenced, not applied.
    a.signal("CONT");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(send(&a.addr, "eve", "get", None).expect("get").0, "2");
    assert_eq!(send(&b.addr, "eve", "get", None).expect("get").0, "2");
}

#[test]
fn an_actor_saved_on_passivation_is_saved_to_jetstream_and_resumes_on_another_node() {
    let nats = Nats::start();
    let counter = common::built("as-counter-actor.wasm");
    let route = format!("/counter={counter},mode=actor,function=execute,snapshots=on-passivation");
    let args = ["--route", route.as_str(), "--passivate-after", "50ms"];
    let mut a = node(&nats, "passivate", "1s", &args);
    let b = node(&nats, "passivate", "1s", &args);
    for i in 1..=3 {
        let (reply, _) = send(&a.addr, "pat", "increment 1", None).expect("answered");
        assert_eq!(reply, i.to_string());
    }
    // a passivates pat (its reaper thread saves the snapshot to JetStream).
    let started = Instant::now();
    loop {
        let (_, _, body) =
            common::request(&a.addr, "GET", "/api/v1/actors", &[], "").expect("list");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let saved = v["actors"]
            .as_array()
            .and_then(|all| all.iter().find(|x| x["id"] == "counter/pat"))
            .is_some_and(|x| x["snapshot_bytes"].as_u64().unwrap_or(0) > 0);
        if saved {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never saved: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // a dies; b resumes pat from the saved snapshot.
    a.signal("KILL");
    a.wait();
    let started = Instant::now();
    let reply = loop {
        if let Some((reply, _)) = send(&b.addr, "pat", "increment 1", Some("after")) {
            break reply;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no takeover");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(reply, "4");
    let log = a.log.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn nodes_authenticate_as_nats_clients_do_and_bad_credentials_are_refused() {
    // User and password, as flags; the member list shows --advertise.
    let nats = Nats::start_with(&["--user", "node", "--pass", "s3cret-pw"]);
    let url = nats.url();
    let a = serve(&[
        "--cluster",
        &url,
        "--cluster-user",
        "node",
        "--cluster-password",
        "s3cret-pw",
        "--advertise",
        "http://a.example:8080",
    ]);
    let (status, body) = http(&a.addr, "GET", "/api/v1/cluster", "");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"addr\":\"http://a.example:8080\""),
        "{body}"
    );
    // In the URL: the password is never shown.
    let in_url = url.replace("nats://", "nats://node:s3cret-pw@");
    let b = serve(&["--cluster", &in_url]);
    let log = b.log.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
    assert!(log.contains("over nats://node:***@"), "{log}");
    assert!(!log.contains("s3cret-pw"), "{log}");
    // A wrong password: exit 77, saying the server refused the credentials,
    // without the password.
    let state = tempfile::tempdir().expect("tempdir");
    let wrong = url.replace("nats://", "nats://node:wrong-pw@");
    let (code, err) = fails_in(
        state.path(),
        &["serve", "--addr", "127.0.0.1:0", "--cluster", &wrong],
    );
    assert_eq!(code, 77, "{err}");
    assert!(
        err.contains("refused this node's credentials") || err.contains("authorization"),
        "{err}"
    );
    assert!(!err.contains("wrong-pw"), "{err}");

    // A token.
    let nats = Nats::start_with(&["--auth", "t0ken"]);
    let c = serve(&["--cluster", &nats.url(), "--cluster-token", "t0ken"]);
    assert_eq!(http(&c.addr, "GET", "/api/v1/cluster", "").0, 200);
    let (code, err) = fails_in(
        state.path(),
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--cluster",
            &nats.url(),
            "--cluster-token",
            "nope",
        ],
    );
    assert_eq!(code, 77, "{err}");
}

#[test]
fn an_actor_whose_snapshot_outgrows_a_nats_message_moves_to_another_node_whole() {
    let nats = Nats::start();
    let noise = common::wat("noise");
    let fill = format!("/fill={noise},mode=actor,function=fill,actor=big");
    let sum = format!("/sum={noise},mode=actor,function=checksum,actor=big");
    let args = [
        "--route",
        fill.as_str(),
        "--route",
        sum.as_str(),
        "--cluster-lease-ttl",
        "1s",
    ];
    let mut a = node(&nats, "big", "1s", &args);
    let b = node(&nats, "big", "1s", &args);
    // 3 MiB of noise in the actor's memory, through a (which takes it): its
    // snapshot is three NATS messages' worth.
    let (status, head, filled) =
        common::request(&a.addr, "POST", "/fill", &[], "[3072, 11]").expect("fill");
    assert_eq!(status, 200, "{filled}");
    assert!(
        head.contains(&format!("x-wasmhost-node: {}", node_id(&a))),
        "{head}"
    );
    let (_, _, listed) = common::request(&a.addr, "GET", "/api/v1/actors", &[], "").expect("list");
    let v: serde_json::Value = serde_json::from_str(&listed).expect("json");
    let bytes = v["actors"]
        .as_array()
        .and_then(|all| all.iter().find(|x| x["id"] == "big"))
        .and_then(|x| x["snapshot_bytes"].as_u64())
        .unwrap_or(0);
    assert!(bytes > 3 << 20, "snapshot of {bytes} bytes: {v}");

    // a dies; b takes the actor over with its whole memory.
    a.signal("KILL");
    a.wait();
    let started = Instant::now();
    let sum = loop {
        match common::request(&b.addr, "POST", "/sum", &[], "[]") {
            Ok((200, _, body)) => break body,
            _ => assert!(started.elapsed() < Duration::from_secs(10), "no takeover"),
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(sum, filled);
    assert_ne!(filled.trim(), "0");
}
