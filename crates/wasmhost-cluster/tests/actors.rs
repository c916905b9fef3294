//! The cluster's actor store and leases against a real nats-server: two
//! `Cluster` connections stand for two nodes.

#[path = "common/nats.rs"]
mod nats;

use std::time::{Duration, Instant};

use nats::Nats;
use wasmhost::actor::kv_namespace;
use wasmhost::{
    ActorCommit, ActorRecord, ActorStore, CallOptions, Digest, ErrorCode, KvBatch, KvStore,
    Runtime, RuntimeConfig, Snapshot, Source,
};
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

/// A fresh instance of guests/wat/noise.wat.
fn noise_instance() -> wasmhost::Instance {
    let wat = concat!(env!("CARGO_MANIFEST_DIR"), "/../../guests/wat/noise.wat");
    let rt = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let module = rt
        .load(&Source::Bytes(std::fs::read(wat).expect("noise.wat")))
        .expect("noise.wat loads");
    module
        .instantiate(&CallOptions::default())
        .expect("instance")
}

/// A snapshot of noise.wat holding `kib` KiB of noise from `seed`, and
/// that noise's checksum.
fn noise(kib: u32, seed: u32) -> (Snapshot, i64) {
    let mut instance = noise_instance();
    let sum = instance
        .call("fill", format!("[{kib}, {seed}]"))
        .expect("fill")
        .value
        .integer()
        .expect("a number");
    (instance.snapshot().expect("snapshot"), sum)
}

/// The checksum of the noise in `snapshot`, restored into a fresh instance.
fn checksum(snapshot: &Snapshot) -> i64 {
    let mut instance = noise_instance();
    instance.restore(snapshot).expect("restores");
    instance
        .call("checksum", "")
        .expect("checksum")
        .value
        .integer()
        .expect("a number")
}

/// The snapshot objects in bucket `t-snapshots`.
async fn snapshot_objects(nats: &Nats) -> Vec<String> {
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let bucket = js.get_object_store("t-snapshots").await.expect("bucket");
    let mut names = Vec::new();
    let mut list = bucket.list().await.expect("list");
    while let Some(info) = futures::StreamExt::next(&mut list).await {
        let info = info.expect("info");
        if !info.deleted {
            names.push(info.name);
        }
    }
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_larger_than_a_nats_message_goes_to_the_object_store_and_back() {
    let nats = Nats::start();
    let a = Cluster::connect(config(&nats.url())).await.expect("a");
    let b = Cluster::connect(config(&nats.url())).await.expect("b");
    let store_a = a.actor_store(KvStore::memory()).await.expect("a's store");
    let store_b = b.actor_store(KvStore::memory()).await.expect("b's store");
    let commit = |store: &wasmhost_cluster::JsActorStore, n: u64, snapshot: &Snapshot| {
        let mut record = ActorRecord::new(snapshot.module());
        record.messages = n;
        record.snapshot_bytes = snapshot.len() as u64;
        let batch = KvBatch::default();
        let mut commit = ActorCommit::new(&record, &batch);
        commit.snapshot = Some(snapshot);
        store.commit("big", commit)
    };

    // 3 MiB of noise: three times what one NATS message holds.
    let (big, sum) = noise(3 << 10, 7);
    assert!(big.len() > 3 << 20, "{} bytes", big.len());
    assert!(store_a.load("big").expect("load").is_none());
    commit(&store_a, 1, &big).expect("a commits 3 MiB");
    let first = snapshot_objects(&nats).await;
    assert_eq!(first.len(), 1, "{first:?}");
    // The next snapshot goes to a's other slot; the first is kept until
    // the one after overwrites it.
    let (bigger, sum2) = noise(2 << 10, 8);
    commit(&store_a, 2, &bigger).expect("a commits 2 MiB");
    assert_eq!(snapshot_objects(&nats).await.len(), 2);

    // b takes over and finds a's last snapshot, whole.
    let (record, snapshot) = store_b.load("big").expect("load").expect("stored");
    assert_eq!(record.messages, 2);
    let snapshot = snapshot.expect("a snapshot");
    assert_eq!(snapshot.as_bytes(), bigger.as_bytes());
    assert_eq!(checksum(&snapshot), sum2);
    assert_ne!(sum, sum2);
    // Taking over deleted a's slot the value does not name.
    assert_eq!(snapshot_objects(&nats).await.len(), 1);

    // a, fenced out, writes its next snapshot and loses: its object goes.
    let e = commit(&store_a, 3, &big).expect_err("fenced");
    assert_eq!(e.code(), ErrorCode::Unavailable);
    assert_eq!(snapshot_objects(&nats).await.len(), 1);

    // b's first snapshot replaces a's object with its own; a small one
    // moves back into the value and leaves no object behind.
    commit(&store_b, 3, &big).expect("b commits");
    let objects = snapshot_objects(&nats).await;
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert!(objects[0].contains(b.node_id()), "{objects:?}");
    let (small, small_sum) = noise(4, 9);
    commit(&store_b, 4, &small).expect("b commits 4 KiB");
    assert!(snapshot_objects(&nats).await.is_empty());
    let c = Cluster::connect(config(&nats.url())).await.expect("c");
    let store_c = c.actor_store(KvStore::memory()).await.expect("c's store");
    let (_, snapshot) = store_c.load("big").expect("load").expect("stored");
    assert_eq!(checksum(&snapshot.expect("a snapshot")), small_sum);

    // Removing the actor removes its objects too.
    commit(&store_c, 5, &big).expect("c commits 3 MiB");
    assert_eq!(snapshot_objects(&nats).await.len(), 1);
    assert!(store_c.remove("big").expect("remove"));
    assert!(snapshot_objects(&nats).await.is_empty());
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
