//! The cluster's actor store and leases against a real nats-server: two
//! `Cluster` connections stand for two nodes.

#[path = "common/nats.rs"]
mod nats;

use std::time::{Duration, Instant};

use nats::Nats;
use wasmhost::actor::kv_namespace;
use wasmhost::{ActorCommit, ActorRecord, ActorStore, Digest, ErrorCode, KvBatch, KvStore};
use wasmhost_cluster::{Cluster, ClusterConfig, Owner};

fn config(url: &str) -> ClusterConfig {
    let mut c = ClusterConfig::new(url);
    c.name = "t".to_string();
    c.lease_ttl = Duration::from_millis(600);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_loaded_an_actor_fences_out_the_previous_owner() {
    let nats = Nats::start();
    let a = Cluster::connect(config(&nats.url())).await.expect("a");
    let b = Cluster::connect(config(&nats.url())).await.expect("b");
    let (local_a, local_b) = (KvStore::memory(), KvStore::memory());
    let store_a = a.actor_store(local_a.clone()).await.expect("a's store");
    let store_b = b.actor_store(local_b.clone()).await.expect("b's store");
    let ns = kv_namespace("x");

    // a owns x: its first message commits a record, a key and a reply.
    assert!(store_a.load("x").expect("load").is_none());
    let mut record = ActorRecord::new(Digest::of(b"module"));
    record.messages = 1;
    let mut batch = KvBatch::default();
    batch.set(&ns, "", b"k", b"v1");
    let mut commit = ActorCommit::new(&record, &batch);
    commit.reply = Some(("m1", b"reply-1"));
    store_a.commit("x", commit).expect("a commits");
    assert_eq!(local_a.get(&ns, b"k").expect("get"), Some(b"v1".to_vec()));

    // b takes x over: it finds the record, the key (now in its own local
    // store) and the reply to m1.
    let (loaded, snapshot) = store_b.load("x").expect("load").expect("stored");
    assert_eq!(loaded.messages, 1);
    assert!(snapshot.is_none());
    assert_eq!(local_b.get(&ns, b"k").expect("get"), Some(b"v1".to_vec()));
    assert_eq!(
        store_b.reply("x", "m1").expect("reply"),
        Some(b"reply-1".to_vec())
    );

    // a, paused through all this, wakes up and commits its next message:
    // refused, and nothing of it is stored.
    record.messages = 2;
    let mut late = KvBatch::default();
    late.set(&ns, "", b"k", b"from-a-late");
    let e = store_a
        .commit("x", ActorCommit::new(&record, &late))
        .expect_err("fenced");
    assert_eq!(e.code(), ErrorCode::Unavailable);
    assert!(e.to_string().contains("owned by another node"), "{e}");
    assert_eq!(local_a.get(&ns, b"k").expect("get"), Some(b"v1".to_vec()));

    // b's commits go on; what is stored is b's.
    let mut batch = KvBatch::default();
    batch.set(&ns, "", b"k", b"v2");
    store_b
        .commit("x", ActorCommit::new(&record, &batch))
        .expect("b commits");
    let c = Cluster::connect(config(&nats.url())).await.expect("c");
    let local_c = KvStore::memory();
    let store_c = c.actor_store(local_c.clone()).await.expect("c's store");
    assert_eq!(
        store_c.load("x").expect("load").expect("stored").0.messages,
        2
    );
    assert_eq!(local_c.get(&ns, b"k").expect("get"), Some(b"v2".to_vec()));
    let listed = store_c.records().expect("records");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, "x");

    // Removing forgets it everywhere.
    assert!(store_c.remove("x").expect("remove"));
    assert!(store_b.load("x").expect("load").is_none());
    assert_eq!(local_b.get(&ns, b"k").expect("get"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_has_one_holder_and_expires_when_no_longer_renewed() {
    let nats = Nats::start();
    let a = Cluster::connect(config(&nats.url())).await.expect("a");
    let b = Cluster::connect(config(&nats.url())).await.expect("b");
    assert_eq!(a.leases().acquire("x").await.expect("a"), Owner::Me);
    assert_eq!(
        b.leases().acquire("x").await.expect("b"),
        Owner::Node(a.node_id().to_string())
    );
    // a renews it: still a's well past the TTL.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        b.leases().acquire("x").await.expect("b"),
        Owner::Node(a.node_id().to_string())
    );
    // A clean release frees it at once.
    a.leases().release("x").await;
    assert_eq!(b.leases().acquire("x").await.expect("b"), Owner::Me);

    // b dies (its renewals stop): a gets it once the TTL has passed.
    let b_id = b.node_id().to_string();
    drop(b);
    let died = Instant::now();
    loop {
        match a.leases().acquire("x").await.expect("a") {
            Owner::Me => break,
            Owner::Node(n) => assert_eq!(n, b_id),
        }
        assert!(died.elapsed() < Duration::from_secs(5), "never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        died.elapsed() >= Duration::from_millis(200),
        "{:?}",
        died.elapsed()
    );
}
