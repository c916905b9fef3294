//! The store contract: one suite of cases, run unchanged against every
//! backend. Each case gets a fresh, empty store (its own prefix) and the
//! raw [`ObjectStore`] behind it, to check the layout and to corrupt blobs
//! behind the store's back.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use wasmhost::{Digest, ErrorCode, ModuleKind};
use wasmhost_store::{ModuleStore, Reference, Removed};

use crate::{code_of, wasm, wat};

/// What a case gets: a fresh store and where its objects live.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub store: ModuleStore,
    /// The object path prefix of the store inside its backend (`""` when
    /// the store is the backend's root).
    pub prefix: String,
}

impl Ctx {
    fn object(&self, rel: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(rel)
        } else {
            Path::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn r(&self, s: &str) -> Reference {
        s.parse().unwrap()
    }
}

type Case = fn(Ctx) -> Pin<Box<dyn Future<Output = ()> + Send>>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        pub const CASES: &[(&str, Case)] = &[$((stringify!($name), |c| Box::pin($name(c)))),*];
    };
}

cases!(
    round_trip,
    wat_is_stored_as_binary,
    invalid_input_is_rejected,
    tag_moves_to_the_newest_push,
    tag_copies_a_reference,
    list_is_sorted,
    remove_tag_keeps_the_blob,
    remove_digest_only_when_untagged,
    unknown_references_are_not_found,
    corrupt_blob_is_never_returned,
    concurrent_pushes_of_one_name,
    inspect_and_put_blob,
    layout_on_the_backend,
    a_damaged_ref_hides_nothing_else,
);

/// Runs every case against stores made by `make(case_name)`, each in its own
/// task, and fails with the list of failed cases.
pub async fn run(backend: &str, make: impl Fn(&str) -> Ctx) {
    let mut failed = Vec::new();
    for (name, case) in CASES {
        let ctx = make(name);
        let result = tokio::spawn(case(ctx)).await;
        match result {
            Ok(()) => eprintln!("{backend}: {name} ok"),
            Err(e) => {
                let msg = match e.try_into_panic() {
                    Ok(p) => p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panic".into()),
                    Err(e) => e.to_string(),
                };
                eprintln!("{backend}: {name} FAILED: {msg}");
                failed.push(format!("{name}: {msg}"));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{backend}: {} of {} contract cases failed:\n{}",
        failed.len(),
        CASES.len(),
        failed.join("\n")
    );
}

async fn round_trip(c: Ctx) {
    let bin = wasm(1);
    let entry = c.store.push(bin.clone(), "app", "v1").await.unwrap();
    assert_eq!(entry.digest, Digest::of(&bin));
    assert_eq!(entry.size, bin.len() as u64);
    assert_eq!(entry.kind, ModuleKind::Core);
    assert_eq!((entry.name.as_str(), entry.tag.as_str()), ("app", "v1"));

    let (d, bytes) = c.store.fetch(&c.r("app:v1")).await.unwrap();
    assert_eq!(d, entry.digest);
    assert_eq!(&bytes[..], &bin[..]);
    assert_eq!(Digest::of(&bytes), d);

    let (d2, bytes2) = c.store.fetch(&Reference::Digest(d)).await.unwrap();
    assert_eq!((d2, &bytes2[..]), (d, &bin[..]));
    assert_eq!(c.store.resolve(&c.r("app:v1")).await.unwrap(), d);
    assert_eq!(c.store.resolve(&Reference::Digest(d)).await.unwrap(), d);

    // Default tag, and names with slashes.
    let e = c
        .store
        .push(wasm(2), "org/tools/fmt", "latest")
        .await
        .unwrap();
    assert_eq!(
        c.store.resolve(&c.r("org/tools/fmt")).await.unwrap(),
        e.digest
    );

    // Pushing the same module again is fine and changes nothing but the time.
    let again = c.store.push(bin.clone(), "app", "v1").await.unwrap();
    assert_eq!(again.digest, entry.digest);
    assert!(again.updated >= entry.updated);
}

async fn wat_is_stored_as_binary(c: Ctx) {
    let text = wat(7);
    let entry = c
        .store
        .push(text.clone().into_bytes(), "w", "t")
        .await
        .unwrap();
    let (binary, kind) = wasmhost::normalize(text.into_bytes()).unwrap();
    assert_eq!(kind, ModuleKind::Core);
    assert_eq!(entry.digest, Digest::of(&binary));
    let (_, bytes) = c.store.fetch(&c.r("w:t")).await.unwrap();
    assert!(bytes.starts_with(b"\0asm"));
    assert_eq!(&bytes[..], &binary[..]);
    // The binary and its WAT are the same module.
    let same = c.store.push(binary, "w", "bin").await.unwrap();
    assert_eq!(same.digest, entry.digest);
}

async fn invalid_input_is_rejected(c: Ctx) {
    for bad in [
        b"not wasm at all".to_vec(),
        Vec::new(),
        b"\0asm\x01\0\0\0\x7f".to_vec(),
        b"(module (func (result i32)))".to_vec(),
    ] {
        let err = c
            .store
            .push(bad.clone(), "bad", "latest")
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidModule, "{bad:?}: {err}");
        let err = c.store.put_blob(bad).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidModule, "{err}");
    }
    for (name, tag) in [("Bad", "latest"), ("a//b", "x"), ("ok", "-x"), ("", "x")] {
        let err = c.store.push(wasm(1), name, tag).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadInput, "{name}:{tag}: {err}");
    }
    assert!(c.store.list().await.unwrap().is_empty());
}

async fn tag_moves_to_the_newest_push(c: Ctx) {
    let v1 = c.store.push(wasm(1), "app", "latest").await.unwrap();
    let v2 = c.store.push(wasm(2), "app", "latest").await.unwrap();
    assert_ne!(v1.digest, v2.digest);
    assert_eq!(c.store.resolve(&c.r("app")).await.unwrap(), v2.digest);
    let (_, bytes) = c.store.fetch(&c.r("app:latest")).await.unwrap();
    assert_eq!(&bytes[..], &wasm(2)[..]);
    // v1 is untagged but still there, by digest.
    let (_, old) = c.store.fetch(&Reference::Digest(v1.digest)).await.unwrap();
    assert_eq!(&old[..], &wasm(1)[..]);
    let list = c.store.list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].digest, v2.digest);
}

async fn tag_copies_a_reference(c: Ctx) {
    let v1 = c.store.push(wasm(1), "app", "v1").await.unwrap();
    let copy = c.store.tag(&c.r("app:v1"), "app", "stable").await.unwrap();
    assert_eq!(
        (copy.digest, copy.size, copy.kind),
        (v1.digest, v1.size, v1.kind)
    );
    let by_digest = c
        .store
        .tag(&Reference::Digest(v1.digest), "other/name", "x1")
        .await
        .unwrap();
    assert_eq!(by_digest.digest, v1.digest);
    assert_eq!(by_digest.kind, ModuleKind::Core);
    // Moving the source does not move the copy.
    c.store.push(wasm(2), "app", "v1").await.unwrap();
    assert_eq!(
        c.store.resolve(&c.r("app:stable")).await.unwrap(),
        v1.digest
    );

    let err = c.store.tag(&c.r("nope:v1"), "app", "x").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    let err = c.store.tag(&c.r("app:v1"), "App", "x").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
    let names: Vec<String> = c
        .store
        .list()
        .await
        .unwrap()
        .iter()
        .map(|e| format!("{}:{}", e.name, e.tag))
        .collect();
    assert_eq!(names, ["app:stable", "app:v1", "other/name:x1"]);
}

async fn list_is_sorted(c: Ctx) {
    let pushes = [
        ("zeta", "1"),
        ("alpha", "b"),
        ("alpha/sub", "a"),
        ("alpha", "a"),
        ("alpha", "B"),
        ("m.n_o-p", "latest"),
        ("alpha-x", "a"),
    ];
    for (i, (name, tag)) in pushes.iter().enumerate() {
        c.store.push(wasm(i as i32), name, tag).await.unwrap();
    }
    let got: Vec<(String, String)> = c
        .store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.tag))
        .collect();
    let mut want: Vec<(String, String)> = pushes
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    want.sort();
    assert_eq!(got, want);
}

async fn remove_tag_keeps_the_blob(c: Ctx) {
    let e = c.store.push(wasm(1), "app", "v1").await.unwrap();
    c.store.push(wasm(1), "app", "v2").await.unwrap();
    let removed = c.store.remove(&c.r("app:v1")).await.unwrap();
    assert_eq!(
        removed,
        Removed::Tag {
            name: "app".into(),
            tag: "v1".into(),
            digest: e.digest
        }
    );
    let err = c.store.resolve(&c.r("app:v1")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert!(err.to_string().contains("app:v1"), "{err}");
    c.store.fetch(&Reference::Digest(e.digest)).await.unwrap();
    c.store.fetch(&c.r("app:v2")).await.unwrap();
    let err = c.store.remove(&c.r("app:v1")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    // Removing the last tag of a name.
    c.store.remove(&c.r("app:v2")).await.unwrap();
    assert!(c.store.list().await.unwrap().is_empty());
    c.store.fetch(&Reference::Digest(e.digest)).await.unwrap();
}

async fn remove_digest_only_when_untagged(c: Ctx) {
    let e = c.store.push(wasm(1), "a", "one").await.unwrap();
    c.store.tag(&c.r("a:one"), "b/c", "two").await.unwrap();
    let d = Reference::Digest(e.digest);
    let err = c.store.remove(&d).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("a:one") && msg.contains("b/c:two"), "{msg}");
    c.store.fetch(&d).await.unwrap();

    c.store.remove(&c.r("a:one")).await.unwrap();
    let err = c.store.remove(&d).await.unwrap_err();
    assert!(err.to_string().contains("b/c:two") && !err.to_string().contains("a:one"));
    c.store.remove(&c.r("b/c:two")).await.unwrap();

    let removed = c.store.remove(&d).await.unwrap();
    assert_eq!(
        removed,
        Removed::Blob {
            digest: e.digest,
            size: e.size
        }
    );
    assert_eq!(code_of(c.store.fetch(&d).await), ErrorCode::NotFound);
    assert_eq!(code_of(c.store.remove(&d).await), ErrorCode::NotFound);
    // And it can come back.
    c.store.push(wasm(1), "a", "one").await.unwrap();
    c.store.fetch(&d).await.unwrap();
}

async fn unknown_references_are_not_found(c: Ctx) {
    let missing = Reference::Digest(Digest::of(b"nothing"));
    for r in [
        c.r("nope"),
        c.r("nope:v9"),
        c.r("deep/er/name:t"),
        missing.clone(),
    ] {
        let what = r.to_string();
        for err in [
            c.store.resolve(&r).await.unwrap_err(),
            c.store.fetch(&r).await.unwrap_err(),
            c.store.inspect(&r).await.unwrap_err(),
            c.store.remove(&r).await.unwrap_err(),
            c.store.tag(&r, "x", "y").await.unwrap_err(),
        ] {
            assert_eq!(err.code(), ErrorCode::NotFound, "{what}: {err}");
            assert!(err.to_string().contains(&what), "{what}: {err}");
        }
    }
    // A missing tag of an existing name says which tags exist.
    c.store.push(wasm(1), "app", "v1").await.unwrap();
    c.store.push(wasm(2), "app", "v2").await.unwrap();
    let err = c.store.fetch(&c.r("app:v3")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert!(err.to_string().contains("v1, v2"), "{err}");
    // A prefix of a name is not a name.
    assert_eq!(
        code_of(c.store.resolve(&c.r("ap")).await),
        ErrorCode::NotFound
    );
}

async fn corrupt_blob_is_never_returned(c: Ctx) {
    let e = c.store.push(wasm(1), "app", "latest").await.unwrap();
    let raw = c.store.object_store().clone();
    let blob = c.object(&format!("blobs/sha256/{}", e.digest.hex()));
    // Same length, different bytes; then a truncation.
    let mut other = wasm(1);
    let last = other.len() - 1;
    other[last] ^= 0xff;
    for evil in [other, wasm(1)[..4].to_vec(), wasm(2)] {
        raw.put(&blob, PutPayload::from(evil.clone()))
            .await
            .unwrap();
        for r in [c.r("app"), Reference::Digest(e.digest)] {
            match c.store.fetch(&r).await {
                Ok((_, bytes)) => panic!("{r}: corrupt bytes returned: {bytes:?}"),
                Err(err) => {
                    assert_eq!(err.code(), ErrorCode::Corrupt, "{r}: {err}");
                    let msg = err.to_string();
                    assert!(msg.contains(&e.digest.to_string()), "{msg}");
                    assert!(msg.contains(&Digest::of(&evil).to_string()), "{msg}");
                }
            }
        }
        assert_eq!(
            code_of(c.store.inspect(&c.r("app")).await),
            ErrorCode::Corrupt
        );
        assert_eq!(
            code_of(c.store.tag(&c.r("app"), "copy", "x").await),
            ErrorCode::Corrupt
        );
    }
    // Pushing the module again repairs the blob.
    c.store.push(wasm(1), "app", "latest").await.unwrap();
    let (_, bytes) = c.store.fetch(&c.r("app")).await.unwrap();
    assert_eq!(&bytes[..], &wasm(1)[..]);
}

async fn concurrent_pushes_of_one_name(c: Ctx) {
    const N: i32 = 8;
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let store = c.store.clone();
            tokio::spawn(async move { store.push(wasm(100 + i), "race", "latest").await })
        })
        .collect();
    let mut digests = BTreeSet::new();
    for t in tasks {
        digests.insert(t.await.unwrap().unwrap().digest);
    }
    assert_eq!(digests.len(), N as usize);
    let winner = c.store.resolve(&c.r("race")).await.unwrap();
    assert!(digests.contains(&winner));
    for d in &digests {
        let (got, bytes) = c.store.fetch(&Reference::Digest(*d)).await.unwrap();
        assert_eq!(Digest::of(&bytes), got);
    }
    let list = c.store.list().await.unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].digest, winner);

    // Same module from many tasks at once: one intact blob.
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let store = c.store.clone();
            tokio::spawn(async move { store.push(wasm(500), "same", &format!("t{i}")).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let (_, bytes) = c.store.fetch(&c.r("same:t0")).await.unwrap();
    assert_eq!(&bytes[..], &wasm(500)[..]);
}

async fn inspect_and_put_blob(c: Ctx) {
    let blob = c.store.put_blob(wat(3).into_bytes()).await.unwrap();
    assert_eq!(blob.digest, Digest::of(&wasm(3)));
    assert_eq!(blob.kind, ModuleKind::Core);
    assert!(blob.tags.is_empty());
    let seen = c
        .store
        .inspect(&Reference::Digest(blob.digest))
        .await
        .unwrap();
    assert_eq!(seen, blob);

    c.store
        .tag(&Reference::Digest(blob.digest), "z", "1")
        .await
        .unwrap();
    c.store
        .tag(&Reference::Digest(blob.digest), "a", "2")
        .await
        .unwrap();
    let seen = c.store.inspect(&c.r("z:1")).await.unwrap();
    assert_eq!(
        seen.tags,
        [("a".to_string(), "2".to_string()), ("z".into(), "1".into())]
    );
    assert_eq!(seen.size, wasm(3).len() as u64);
    // put_blob of a tagged module reports its tags.
    assert_eq!(c.store.put_blob(wasm(3)).await.unwrap().tags.len(), 2);

    // Components are told apart from core modules.
    let comp = c
        .store
        .push(b"(component)".to_vec(), "comp", "latest")
        .await
        .unwrap();
    assert_eq!(comp.kind, ModuleKind::Component);
    let seen = c.store.inspect(&c.r("comp")).await.unwrap();
    assert_eq!(seen.kind, ModuleKind::Component);
    let list = c.store.list().await.unwrap();
    assert_eq!(list[0].kind, ModuleKind::Core);
    assert_eq!(list[1].name, "comp");
    assert_eq!(list[1].kind, ModuleKind::Component);
}

async fn layout_on_the_backend(c: Ctx) {
    let e = c.store.push(wasm(9), "org/app", "v1.0").await.unwrap();
    let raw = c.store.object_store().clone();

    let blob = c.object(&format!("blobs/sha256/{}", e.digest.hex()));
    assert_eq!(c.store.blob_path(&e.digest), blob);
    let bytes = raw.get(&blob).await.unwrap().bytes().await.unwrap();
    assert_eq!(&bytes[..], &wasm(9)[..]);

    let reference = c.object("refs/org/app/v1.0.json");
    let json = raw.get(&reference).await.unwrap().bytes().await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["digest"], e.digest.to_string());
    assert_eq!(v["size"], e.size);
    assert_eq!(v["kind"], "core");
    let updated = v["updated"].as_str().unwrap();
    let parsed = chrono::DateTime::parse_from_rfc3339(updated).unwrap();
    assert_eq!(parsed, e.updated);

    // Foreign objects under refs/ are ignored, not fatal. (The local
    // filesystem backend refuses to write a staging-like `#N` name itself.)
    let _ = raw
        .put(
            &c.object("refs/org/app/v2.json#3"),
            PutPayload::from_static(b"{"),
        )
        .await;
    for junk in [
        "refs/org/app/notes.txt",
        "refs/UPPER/x.json",
        "refs/x/.json",
    ] {
        raw.put(&c.object(junk), PutPayload::from_static(b"junk"))
            .await
            .unwrap();
    }
    let list = c.store.list().await.unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0], e);

    // A reference whose JSON is damaged is reported, never guessed at.
    raw.put(
        &c.object("refs/org/app/v2.json"),
        PutPayload::from_static(b"{"),
    )
    .await
    .unwrap();
    let err = c.store.fetch(&c.r("org/app:v2")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal, "{err}");
    assert!(err.to_string().contains("org/app:v2"), "{err}");
    // Serialized forms, for tools that print JSON.
    let j = serde_json::to_value(&e).unwrap();
    assert_eq!(j["digest"], e.digest.to_string());
    assert_eq!(j["kind"], "core");
}

async fn a_damaged_ref_hides_nothing_else(c: Ctx) {
    c.store.push(wasm(1), "good", "latest").await.unwrap();
    c.store.push(wasm(2), "bad", "v1").await.unwrap();
    let raw = c.store.object_store().clone();
    raw.put(
        &c.object("refs/bad/v1.json"),
        PutPayload::from(b"{not json".to_vec()),
    )
    .await
    .unwrap();
    let names: Vec<String> = c
        .store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        names,
        ["good"],
        "the damaged ref is skipped, the rest listed"
    );
    assert_eq!(
        code_of(c.store.fetch(&c.r("bad:v1")).await),
        ErrorCode::Internal
    );
    let removed = c.store.remove(&c.r("bad:v1")).await.unwrap();
    assert!(matches!(removed, Removed::DamagedTag { .. }), "{removed:?}");
    assert_eq!(
        code_of(c.store.fetch(&c.r("bad:v1")).await),
        ErrorCode::NotFound
    );
    assert!(c.store.fetch(&c.r("good")).await.is_ok());
}
