//! The module store on a JetStream object store bucket, against a real
//! nats-server (see common/nats.rs).

#[path = "common/nats.rs"]
mod nats;

use std::time::{Duration, Instant};

use nats::Nats;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use wasmhost::ErrorCode;
use wasmhost_cluster::open_module_store;
use wasmhost_store::{ModuleStore, Reference, Removed};

const SEVEN: &str = r#"(module (func (export "n") (result i32) i32.const 7))"#;
const EIGHT: &str = r#"(module (func (export "n") (result i32) i32.const 8))"#;

async fn open(url: &str) -> ModuleStore {
    open_module_store(url, [("connect_timeout", "2s")])
        .await
        .expect("opens the store")
}

fn r(s: &str) -> Reference {
    s.parse().expect("a reference")
}

/// A valid module of about `size` bytes: one data segment.
fn big_module(size: usize) -> Vec<u8> {
    let data: String = (0..size)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let pages = size / 65536 + 1;
    wat::parse_str(format!(
        r#"(module (memory {pages}) (data (i32.const 0) "{data}")
             (func (export "n") (result i32) i32.const 9))"#
    ))
    .expect("valid WAT")
}

#[tokio::test]
async fn push_list_fetch_tag_inspect_remove() {
    let nats = Nats::start();
    let store = open(&nats.url()).await;
    assert_eq!(store.location(), format!("{}/wasmhost-modules", nats.url()));

    let pushed = store
        .push(SEVEN.as_bytes().to_vec(), "demo/seven", "v1")
        .await
        .expect("push");
    let listed = store.list().await.expect("list");
    assert_eq!(listed, vec![pushed.clone()]);

    let (digest, bytes) = store.fetch(&r("demo/seven:v1")).await.expect("fetch");
    assert_eq!(digest, pushed.digest);
    assert!(bytes.starts_with(b"\0asm"));
    assert_eq!(bytes.len() as u64, pushed.size);
    let (by_digest, same) = store
        .fetch(&Reference::Digest(digest))
        .await
        .expect("fetch by digest");
    assert_eq!((by_digest, &same), (digest, &bytes));

    store
        .tag(&r("demo/seven:v1"), "demo/seven", "stable")
        .await
        .expect("tag");
    let tags: Vec<String> = store
        .list()
        .await
        .expect("list")
        .iter()
        .map(|e| format!("{}:{}", e.name, e.tag))
        .collect();
    assert_eq!(tags, ["demo/seven:stable", "demo/seven:v1"]);
    let inspected = store
        .inspect(&r("demo/seven:stable"))
        .await
        .expect("inspect");
    assert_eq!(inspected.digest, digest);
    assert_eq!(inspected.size, pushed.size);
    assert_eq!(
        inspected.tags,
        [
            ("demo/seven".to_string(), "stable".to_string()),
            ("demo/seven".to_string(), "v1".to_string())
        ]
    );

    // A tag goes, the blob stays; a missing tag names the others.
    let removed = store.remove(&r("demo/seven:v1")).await.expect("remove");
    assert!(matches!(removed, Removed::Tag { .. }), "{removed:?}");
    let gone = store.fetch(&r("demo/seven:v1")).await.expect_err("gone");
    assert_eq!(gone.code(), ErrorCode::NotFound, "{gone}");
    assert!(gone.to_string().contains("has tags: stable"), "{gone}");
    // A tagged blob is not removed; once untagged it is.
    let refused = store
        .remove(&Reference::Digest(digest))
        .await
        .expect_err("still tagged");
    assert_eq!(refused.code(), ErrorCode::BadInput, "{refused}");
    store.remove(&r("demo/seven:stable")).await.expect("untag");
    let removed = store
        .remove(&Reference::Digest(digest))
        .await
        .expect("remove blob");
    assert!(matches!(removed, Removed::Blob { .. }), "{removed:?}");
    assert!(store.list().await.expect("list").is_empty());
    let gone = store
        .fetch(&Reference::Digest(digest))
        .await
        .expect_err("blob gone");
    assert_eq!(gone.code(), ErrorCode::NotFound, "{gone}");
}

#[tokio::test]
async fn not_found_keeps_its_code() {
    let nats = Nats::start();
    let store = open(&nats.url()).await;
    for missing in ["nope:v1", &format!("sha256:{}", "ab".repeat(32))] {
        for e in [
            store.fetch(&r(missing)).await.expect_err("fetch"),
            store.inspect(&r(missing)).await.expect_err("inspect"),
            store.resolve(&r(missing)).await.expect_err("resolve"),
            store.remove(&r(missing)).await.expect_err("remove"),
        ] {
            assert_eq!(e.code(), ErrorCode::NotFound, "{missing}: {e}");
        }
    }
    let e = store
        .tag(&r("nope:v1"), "other", "v1")
        .await
        .expect_err("tag");
    assert_eq!(e.code(), ErrorCode::NotFound, "{e}");
}

#[tokio::test]
async fn the_backend_behaves_as_object_store_says() {
    let nats = Nats::start();
    let store = open(&format!("{}/raw_bucket", nats.url())).await;
    assert!(store.location().ends_with("/raw_bucket"));
    let raw = store.object_store().clone();
    let a = Path::from("dir/a.json");
    let missing = Path::from("dir/missing");
    match raw.head(&missing).await {
        Err(object_store::Error::NotFound { .. }) => {}
        other => panic!("head of a missing object: {other:?}"),
    }
    match raw.get(&missing).await {
        Err(object_store::Error::NotFound { .. }) => {}
        other => panic!("get of a missing object: {other:?}"),
    }
    let put = raw.put(&a, PutPayload::from("hello")).await.expect("put");
    assert!(
        put.e_tag
            .as_deref()
            .is_some_and(|t| t.starts_with("SHA-256=")),
        "{put:?}"
    );
    let head = raw.head(&a).await.expect("head");
    assert_eq!(head.size, 5);
    assert_eq!(head.e_tag, put.e_tag);
    assert!(
        (chrono::Utc::now() - head.last_modified)
            .num_seconds()
            .abs()
            < 60
    );
    let got = raw
        .get(&a)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(&got[..], b"hello");
    assert_eq!(&raw.get_range(&a, 1..3).await.expect("range")[..], b"el");

    // Create refuses an existing object; overwriting replaces it.
    let create = PutOptions::from(PutMode::Create);
    match raw
        .put_opts(&a, PutPayload::from("x"), create.clone())
        .await
    {
        Err(object_store::Error::AlreadyExists { .. }) => {}
        other => panic!("create over an existing object: {other:?}"),
    }
    raw.put(&a, PutPayload::from("bye"))
        .await
        .expect("overwrite");
    let got = raw
        .get(&a)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(&got[..], b"bye");
    let b = Path::from("dir/sub/b");
    raw.put_opts(&b, PutPayload::from(""), create)
        .await
        .expect("create");
    assert_eq!(raw.head(&b).await.expect("empty object").size, 0);

    // Copies.
    let c = Path::from("other/c");
    raw.copy_if_not_exists(&a, &c).await.expect("copy");
    match raw.copy_if_not_exists(&b, &c).await {
        Err(object_store::Error::AlreadyExists { .. }) => {}
        other => panic!("copy over an existing object: {other:?}"),
    }
    raw.copy(&b, &c).await.expect("copy over");
    assert_eq!(raw.head(&c).await.expect("copied").size, 0);

    // Listings: recursive, and one level with common prefixes.
    let mut all: Vec<String> = futures::TryStreamExt::try_collect::<Vec<_>>(raw.list(None))
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.location.to_string())
        .collect();
    all.sort();
    assert_eq!(all, ["dir/a.json", "dir/sub/b", "other/c"]);
    let under: Vec<_> =
        futures::TryStreamExt::try_collect::<Vec<_>>(raw.list(Some(&Path::from("dir"))))
            .await
            .expect("list dir");
    assert_eq!(under.len(), 2);
    let level = raw
        .list_with_delimiter(Some(&Path::from("dir")))
        .await
        .expect("list_with_delimiter");
    let objects: Vec<String> = level
        .objects
        .iter()
        .map(|m| m.location.to_string())
        .collect();
    assert_eq!(objects, ["dir/a.json"]);
    assert_eq!(level.common_prefixes, [Path::from("dir/sub")]);
    let top = raw.list_with_delimiter(None).await.expect("top level");
    assert!(top.objects.is_empty());
    assert_eq!(
        top.common_prefixes,
        [Path::from("dir"), Path::from("other")]
    );

    // Deleted objects are gone from gets and listings; deleting twice is fine.
    raw.delete(&a).await.expect("delete");
    raw.delete(&a).await.expect("delete again");
    raw.delete(&missing).await.expect("delete a missing object");
    match raw.get(&a).await {
        Err(object_store::Error::NotFound { .. }) => {}
        other => panic!("get of a deleted object: {other:?}"),
    }
    let level = raw
        .list_with_delimiter(Some(&Path::from("dir")))
        .await
        .expect("list_with_delimiter");
    assert!(level.objects.is_empty());
    match raw.put_multipart(&a).await {
        Err(object_store::Error::NotImplemented { .. }) => {}
        other => panic!("multipart: {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn a_module_over_one_mib_goes_in_chunks() {
    let nats = Nats::start();
    let store = open(&nats.url()).await;
    let module = big_module(2 << 20);
    assert!(module.len() > 2 << 20);
    let pushed = store
        .push(module.clone(), "big", "v1")
        .await
        .expect("push a 2 MiB module");
    assert_eq!(pushed.size, module.len() as u64);
    let (_, bytes) = store.fetch(&r("big:v1")).await.expect("fetch");
    assert_eq!(&bytes[..], &module[..]);

    // Stored in chunks each well below the server's 1 MiB max_payload.
    let client = async_nats::connect(nats.url()).await.expect("connects");
    let bucket = async_nats::jetstream::new(client)
        .get_object_store("wasmhost-modules")
        .await
        .expect("the bucket");
    let info = bucket
        .info(format!("blobs/sha256/{}", pushed.digest.hex()))
        .await
        .expect("the blob's info");
    assert_eq!(info.size, module.len());
    assert!(info.chunks >= 16, "{} chunks", info.chunks);
    let chunk = info
        .options
        .and_then(|o| o.max_chunk_size)
        .expect("chunk size");
    assert!(chunk <= 128 * 1024, "{chunk}");
}

#[tokio::test]
async fn two_nodes_see_each_others_modules() {
    let nats = Nats::start();
    let url = format!("{}/shared", nats.url());
    let a = open(&url).await;
    let b = open(&url).await;
    let pushed = a
        .push(SEVEN.as_bytes().to_vec(), "app", "v1")
        .await
        .expect("a pushes");
    assert_eq!(b.list().await.expect("b lists"), vec![pushed.clone()]);
    let (_, from_a) = a.fetch(&r("app:v1")).await.expect("a fetches");
    let (_, from_b) = b.fetch(&r("app:v1")).await.expect("b fetches");
    assert_eq!(from_a, from_b);

    // b moves the tag; a sees the new module.
    let moved = b
        .push(EIGHT.as_bytes().to_vec(), "app", "v1")
        .await
        .expect("b pushes");
    assert_ne!(moved.digest, pushed.digest);
    assert_eq!(
        a.resolve(&r("app:v1")).await.expect("resolves"),
        moved.digest
    );
    let (digest, _) = a.fetch(&r("app:v1")).await.expect("a fetches");
    assert_eq!(digest, moved.digest);
    // Both blobs are there, by digest.
    a.fetch(&Reference::Digest(pushed.digest))
        .await
        .expect("the first blob");
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_at_once() {
    let url = format!("nats://127.0.0.1:{}", nats::free_port());
    let start = Instant::now();
    let e = open_module_store(&url, std::iter::empty::<(&str, &str)>())
        .await
        .expect_err("nothing listens");
    assert_eq!(e.code(), ErrorCode::Unavailable, "{e}");
    assert!(
        e.to_string().contains("cannot reach the NATS server at"),
        "{e}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );

    let plain = Nats::without_jetstream();
    let e = open_module_store(&plain.url(), [("connect_timeout", "2s")])
        .await
        .expect_err("no JetStream");
    assert_eq!(e.code(), ErrorCode::Unavailable, "{e}");
    assert!(e.to_string().contains("has no JetStream"), "{e}");
}

#[tokio::test]
async fn bad_urls_and_options_are_bad_input() {
    let with_password = "nats://me:s3cret@127.0.0.1:1/a/b";
    for (url, options) in [
        (with_password, vec![]),
        ("nats://127.0.0.1:1/bad.bucket", vec![]),
        ("http://127.0.0.1:1", vec![]),
        ("nats://", vec![]),
        ("nats://127.0.0.1:1", vec![("colour", "blue")]),
        ("nats://127.0.0.1:1", vec![("timeout", "soon")]),
        ("nats://127.0.0.1:1", vec![("connect_timeout", "0s")]),
    ] {
        let e = open_module_store(url, options).await.expect_err("refused");
        assert_eq!(e.code(), ErrorCode::BadInput, "{url}: {e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}

// Several threads: the client notices the server going away while the
// test thread restarts it, as it would in a real process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_survive_a_server_restart() {
    let mut nats = Nats::start();
    let store = open(&nats.url()).await;
    let pushed = store
        .push(SEVEN.as_bytes().to_vec(), "durable", "v1")
        .await
        .expect("push");
    nats.restart();
    // The client reconnects on its own; give it a moment.
    let start = Instant::now();
    let bytes = loop {
        match store.fetch(&r("durable:v1")).await {
            Ok((digest, bytes)) => {
                assert_eq!(digest, pushed.digest);
                break bytes;
            }
            Err(e) => {
                assert!(start.elapsed() < Duration::from_secs(10), "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(bytes.starts_with(b"\0asm"));
    store
        .push(EIGHT.as_bytes().to_vec(), "durable", "v2")
        .await
        .expect("push after the restart");
    assert_eq!(store.list().await.expect("list").len(), 2);
    // A fresh connection sees both too.
    let fresh = open(&nats.url()).await;
    assert_eq!(fresh.list().await.expect("list").len(), 2);
}

// One thread, blocked while the server restarts: the client learns of the
// restart only when the next request is already written to the dead
// connection, and that request is lost. The store retries it once.
#[tokio::test]
async fn a_request_lost_to_a_restart_is_retried() {
    let mut nats = Nats::start();
    let store = open(&nats.url()).await;
    let pushed = store
        .push(SEVEN.as_bytes().to_vec(), "durable", "v1")
        .await
        .expect("push");
    nats.restart();
    let start = Instant::now();
    let (digest, _) = store
        .fetch(&r("durable:v1"))
        .await
        .expect("fetched on the retry");
    assert_eq!(digest, pushed.digest);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}
