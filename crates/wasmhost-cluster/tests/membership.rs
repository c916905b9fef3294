//! Joining and membership against a real nats-server (see common/nats.rs).

#[path = "common/nats.rs"]
mod nats;

use std::time::{Duration, Instant};

use nats::Nats;
use wasmhost::ErrorCode;
use wasmhost_cluster::{Cluster, ClusterConfig, NodeLoad, NodeRecord};

fn record(name: &str) -> NodeRecord {
    NodeRecord {
        id: format!("{name}-{}", wasmhost_cluster::new_node_id()),
        addr: format!("http://{name}.invalid"),
        version: "test".to_string(),
        started_at: String::new(),
        heartbeat_at: String::new(),
        load: NodeLoad::default(),
    }
}

fn config(url: &str) -> ClusterConfig {
    let mut c = ClusterConfig::new(url);
    c.name = "t".to_string();
    c.heartbeat = Duration::from_millis(200);
    c.connect_timeout = Duration::from_secs(2);
    c
}

async fn join(url: &str, name: &str, actors: usize) -> Cluster {
    Cluster::join(config(url), record(name), move || NodeLoad {
        actors,
        slots: 8,
        ..NodeLoad::default()
    })
    .await
    .expect("joins")
}

/// Polls `cond` on the member list until it holds or 10 s pass.
async fn until(
    node: &Cluster,
    what: &str,
    cond: impl Fn(&[NodeRecord]) -> bool,
) -> Vec<NodeRecord> {
    let start = Instant::now();
    loop {
        let nodes = node.nodes().await.expect("lists members");
        if cond(&nodes) {
            return nodes;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what}: {nodes:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_see_each_other_and_a_leaving_node_is_gone_at_once() {
    let nats = Nats::start();
    let a = join(&nats.url(), "a", 1).await;
    let b = join(&nats.url(), "b", 2).await;
    let c = join(&nats.url(), "c", 3).await;
    let nodes = until(&a, "three members", |n| n.len() == 3).await;
    let mut names: Vec<&str> = nodes.iter().map(|n| &n.addr[7..8]).collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
    // Each record carries its node's load, as its heartbeat read it.
    let of_b = nodes
        .iter()
        .find(|n| n.id == b.node_id())
        .expect("b listed");
    assert_eq!(of_b.load.actors, 2);
    assert_eq!(of_b.load.slots, 8);
    assert!(!of_b.heartbeat_at.is_empty());

    // A clean leave deletes the record: gone well before it would expire.
    let left = Instant::now();
    b.leave().await;
    let nodes = c.nodes().await.expect("lists");
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert!(nodes.iter().all(|n| n.id != b.node_id()));
    assert!(left.elapsed() < Duration::from_millis(600));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_stops_heartbeating_drops_out_after_three_heartbeats() {
    let nats = Nats::start();
    let a = join(&nats.url(), "a", 0).await;
    let b = join(&nats.url(), "b", 0).await;
    until(&a, "two members", |n| n.len() == 2).await;
    // Heartbeats keep a live node listed well past its record's max_age
    // (3 × 200 ms).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(a.nodes().await.expect("lists").len(), 2);

    // b's process dies without leaving: its connection closes, nothing
    // deletes its record; the server expires it.
    let b_id = b.node_id().to_string();
    let died = Instant::now();
    drop(b);
    let nodes = until(&a, "b expired", |n| n.iter().all(|r| r.id != b_id)).await;
    assert_eq!(nodes.len(), 1);
    let took = died.elapsed();
    // Expiry is the server's, at max_age (600 ms) past b's last heartbeat
    // (at most one heartbeat before it died), plus the server's expiry
    // sweep: within a second and a half.
    assert!(took < Duration::from_millis(1500), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_jetstream_is_refused_with_a_clear_error() {
    let nats = Nats::without_jetstream();
    let start = Instant::now();
    let e = Cluster::join(config(&nats.url()), record("a"), NodeLoad::default)
        .await
        .expect_err("refused");
    assert_eq!(e.code(), ErrorCode::Unavailable);
    assert!(e.to_string().contains("has no JetStream"), "{e}");
    assert!(e.to_string().contains("nats-server -js"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_refused_within_the_connect_timeout() {
    // Nothing listens on a port just released.
    let url = format!("nats://127.0.0.1:{}", nats::free_port());
    let start = Instant::now();
    let e = Cluster::join(config(&url), record("a"), NodeLoad::default)
        .await
        .expect_err("refused");
    assert_eq!(e.code(), ErrorCode::Unavailable);
    assert!(
        e.to_string()
            .contains(&format!("cannot reach the NATS server at {url}")),
        "{e}"
    );
    assert!(start.elapsed() < Duration::from_secs(4));

    // A black hole (a non-routable address) answers nothing: the connect
    // timeout bounds the wait.
    let mut c = config("nats://10.255.255.1:4222");
    c.connect_timeout = Duration::from_millis(500);
    let start = Instant::now();
    let e = Cluster::join(c, record("a"), NodeLoad::default)
        .await
        .expect_err("refused");
    assert_eq!(e.code(), ErrorCode::Unavailable, "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn bad_settings_are_bad_input() {
    let mut c = config("nats://127.0.0.1:1");
    c.name = "has space".to_string();
    let e = Cluster::join(c, record("a"), NodeLoad::default)
        .await
        .expect_err("refused");
    assert_eq!(e.code(), ErrorCode::BadInput);
    assert!(e.to_string().contains("cluster name"), "{e}");

    let e = Cluster::join(config("not a url at all"), record("a"), NodeLoad::default)
        .await
        .expect_err("refused");
    assert_eq!(e.code(), ErrorCode::BadInput, "{e}");
}
