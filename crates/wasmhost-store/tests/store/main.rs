//! Integration tests of the module store.
//!
//! * `contract_*`: one contract suite ([`contract`]) run unchanged against
//!   every backend: memory, the local filesystem, an S3 API server (moto)
//!   and Azure Blob (Azurite). The emulators are started here, on free
//!   loopback ports ([`services`]); install them with
//!   `scripts/test-services.sh`.
//! * [`interrupted`]: pushes killed with SIGKILL at random moments never
//!   leave a reference to a missing or partial blob.
//! * [`faults`]: the S3 server stopped (SIGSTOP) or killed in the middle of
//!   concurrent pushes: every push returns soon with a clear `unavailable`
//!   error, and no reference points at a missing blob; retry and timeout
//!   options against fake servers that never answer or answer 503.
//! * URL parsing and backend selection.
//! * [`manifest`]: Extism manifests (and packets beside them) loaded from
//!   files, resolved, and their modules fetched and digest-checked.
//!
//! Child processes (the killed pusher, the environment-configured client)
//! are this binary again, running [`child_process_entry`] with
//! `WASMHOST_STORE_TEST_CHILD` set.
#![allow(clippy::unwrap_used)]

mod contract;
mod faults;
mod interrupted;
mod manifest;
mod services;

use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use contract::Ctx;
use services::{Azurite, BUCKET, Moto};
use wasmhost::{Digest, ErrorCode};
use wasmhost_store::{ModuleStore, RefEntry, Reference};

/// A small core module returning `n`, as WAT.
pub fn wat(n: i32) -> String {
    format!(r#"(module (func (export "n") (result i32) i32.const {n}))"#)
}

/// The same module as a wasm binary.
pub fn wasm(n: i32) -> Vec<u8> {
    wasmhost::normalize(wat(n).into_bytes()).unwrap().0
}

/// A core module whose memory is initialised with `label` padded to `pad`
/// bytes: distinct per label, and big enough that writing it takes a while.
/// Encoded directly (parsing megabytes of WAT is slow).
pub fn padded_wasm(label: &str, pad: usize) -> Vec<u8> {
    fn leb(mut v: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    fn section(id: u8, payload: &[u8], out: &mut Vec<u8>) {
        out.push(id);
        leb(payload.len(), out);
        out.extend_from_slice(payload);
    }
    let pad = pad.max(label.len());
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    // One memory of enough 64 KiB pages, no maximum.
    let mut memory = vec![1, 0];
    leb(pad / 65536 + 1, &mut memory);
    section(5, &memory, &mut module);
    // One active segment at offset 0 (`i32.const 0; end`).
    let mut data = vec![1, 0, 0x41, 0, 0x0b];
    leb(pad, &mut data);
    data.extend_from_slice(label.as_bytes());
    data.resize(data.len() + pad - label.len(), b'x');
    section(11, &data, &mut module);
    module
}

/// xorshift64*, seeded from the clock: different fault moments every run.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn from_clock() -> Rng {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Rng(seed | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// The crash-safety invariant at the store's level: every reference listed
/// fetches, its blob is present and verifies against the digest (`fetch`
/// checks it), and has the recorded size. Returns the references; `when`
/// says which round failed.
pub async fn check_refs(store: &ModuleStore, when: &str) -> Vec<RefEntry> {
    let entries = store
        .list()
        .await
        .unwrap_or_else(|e| panic!("{when}: list failed: {e}"));
    for e in &entries {
        let (d, bytes) = store
            .fetch(&e.reference())
            .await
            .unwrap_or_else(|err| panic!("{when}: {}:{}: {err}", e.name, e.tag));
        assert_eq!(d, e.digest, "{when}: {}:{}", e.name, e.tag);
        assert_eq!(bytes.len() as u64, e.size, "{when}: {}:{}", e.name, e.tag);
    }
    entries
}

/// The error code of a result that must be an error.
pub fn code_of<T: std::fmt::Debug>(r: wasmhost::Result<T>) -> ErrorCode {
    r.unwrap_err().code()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs this test binary as a child process doing `role`.
pub fn child(role: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "child_process_entry",
        "--exact",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env("WASMHOST_STORE_TEST_CHILD", role)
    .stdin(Stdio::null());
    cmd
}

/// The entry point of child processes; does nothing in a normal test run.
#[test]
fn child_process_entry() {
    match std::env::var("WASMHOST_STORE_TEST_CHILD").as_deref() {
        Ok("pusher") => interrupted::pusher(),
        Ok("env-client") => env_client(),
        Ok("env-timeout") => faults::env_timeout_client(),
        Ok(other) => panic!("unknown child role {other}"),
        Err(_) => {}
    }
}

// ----- the contract, per backend ----------------------------------------

#[test]
fn contract_memory() {
    runtime().block_on(contract::run("memory", |_| Ctx {
        store: ModuleStore::open("memory://").unwrap(),
        prefix: String::new(),
    }));
}

#[test]
fn contract_filesystem() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(contract::run("filesystem", |case| {
        let url = format!("file://{}/{case}", dir.path().display());
        let store = ModuleStore::open(&url).unwrap();
        assert_eq!(store.location(), url);
        Ctx {
            store,
            prefix: String::new(),
        }
    }));
}

#[test]
fn contract_s3() {
    let moto = Moto::start();
    runtime().block_on(contract::run("s3", |case| {
        let url = format!("s3://{BUCKET}/{case}");
        let store = ModuleStore::open_with_options(&url, moto.options()).unwrap();
        assert_eq!(store.location(), url);
        Ctx {
            store,
            prefix: case.to_string(),
        }
    }));
    configured_from_environment(
        &format!("s3://{BUCKET}/from-env"),
        &moto.env(),
        &moto.options(),
    );
}

#[test]
fn contract_azure() {
    let azurite = Azurite::start();
    runtime().block_on(contract::run("azure", |case| {
        // Both spellings of the scheme.
        let scheme = if case.len() % 2 == 0 { "az" } else { "azure" };
        let url = format!("{scheme}://{BUCKET}/{case}");
        let store = ModuleStore::open_with_options(&url, azurite.options()).unwrap();
        assert_eq!(store.location(), url);
        Ctx {
            store,
            prefix: case.to_string(),
        }
    }));
    configured_from_environment(
        &format!("az://{BUCKET}/from-env"),
        &azurite.env(),
        &azurite.options(),
    );
}

/// `ModuleStore::open(url)` with settings from the environment only (in a
/// child process, since tests cannot safely change their own environment):
/// it pushes a module there, and this process reads it back with explicit
/// options.
fn configured_from_environment(url: &str, env: &[(String, String)], options: &[(String, String)]) {
    let out = child("env-client")
        .env("WASMHOST_STORE_TEST_URL", url)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the environment-configured client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let store = ModuleStore::open_with_options(url, options.iter().cloned()).unwrap();
    let (digest, bytes) = runtime()
        .block_on(store.fetch(&"env/client:latest".parse().unwrap()))
        .unwrap();
    assert_eq!(digest, Digest::of(&wasm(4242)));
    assert_eq!(&bytes[..], &wasm(4242)[..]);
}

fn env_client() {
    let url = std::env::var("WASMHOST_STORE_TEST_URL").unwrap();
    let store = ModuleStore::open(&url).unwrap();
    runtime().block_on(async {
        let e = store
            .push(wat(4242).into_bytes(), "env/client", "latest")
            .await
            .unwrap();
        let (d, _) = store.fetch(&"env/client".parse().unwrap()).await.unwrap();
        assert_eq!(d, e.digest);
    });
}

// ----- opening stores -----------------------------------------------------

#[test]
fn bad_locations_are_bad_input_naming_the_schemes() {
    for url in [
        "",
        "   ",
        "ftp://host/x",
        "http://example.invalid/x",
        "s4://bucket",
        "://nothing",
    ] {
        let err = ModuleStore::open(url).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadInput, "{url:?}: {err}");
        let msg = err.to_string();
        for scheme in ["file://", "memory://", "s3://", "az://", "gs://"] {
            assert!(msg.contains(scheme), "{url:?}: {msg}");
        }
    }
    let err = ModuleStore::open("file://otherhost/x").unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
    let err = ModuleStore::open_with_options("memory://", [("aws_region", "x")]).unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
    let err = ModuleStore::open_with_options("s3://bucket/p", [("no_such_key", "x")]).unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
    assert!(err.to_string().contains("no_such_key"), "{err}");
}

#[test]
fn cloud_urls_select_their_backend_without_contacting_it() {
    let s3 = ModuleStore::open_with_options(
        "s3://bucket/some/prefix/",
        [
            ("aws_region", "eu-west-1"),
            ("aws_access_key_id", "a"),
            ("aws_secret_access_key", "b"),
        ],
    )
    .unwrap();
    assert_eq!(s3.location(), "s3://bucket/some/prefix");
    assert_eq!(
        s3.blob_path(&Digest::of(b"x")).as_ref(),
        format!("some/prefix/blobs/sha256/{}", Digest::of(b"x").hex())
    );
    for url in ["az://container/p", "azure://container/p"] {
        let az = ModuleStore::open_with_options(
            url,
            [
                ("azure_storage_account_name", "acct"),
                ("azure_storage_account_key", services::AZURITE_KEY),
            ],
        )
        .unwrap();
        assert_eq!(az.location(), url);
    }
    let gs = ModuleStore::open_with_options(
        "gs://bucket/p",
        [("google_bearer_token", "not-a-real-token")],
    )
    .unwrap();
    assert_eq!(gs.location(), "gs://bucket/p");
    assert!(format!("{gs:?}").contains("gs://bucket/p"));
}

#[test]
fn filesystem_locations() {
    let dir = tempfile::tempdir().unwrap();
    // A plain path, relative or absolute, is a filesystem store; the
    // directory is created.
    let plain = dir.path().join("plain/store");
    let s = ModuleStore::open(plain.to_str().unwrap()).unwrap();
    assert!(plain.is_dir());
    assert_eq!(s.location(), format!("file://{}", plain.display()));

    let state = dir.path().join("state");
    let s = ModuleStore::default_for_state(&state).unwrap();
    assert!(state.join("store").is_dir());
    assert_eq!(s.location(), format!("file://{}/store", state.display()));

    assert_eq!(ModuleStore::memory().location(), "memory://");
    assert_eq!(
        ModuleStore::open("memory://").unwrap().location(),
        "memory://"
    );
}

#[test]
fn filesystem_store_persists_and_ignores_staging_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let rt = runtime();
    let e = rt
        .block_on(ModuleStore::open(&url).unwrap().push(wasm(5), "app", "v1"))
        .unwrap();
    // What an interrupted write of the local backend leaves behind.
    let blob = dir.path().join(format!("blobs/sha256/{}", e.digest.hex()));
    std::fs::write(
        blob.with_file_name(format!("{}#1", e.digest.hex())),
        b"partial",
    )
    .unwrap();
    std::fs::write(dir.path().join("refs/app/v2.json#1"), b"{\"dig").unwrap();
    std::fs::write(dir.path().join("refs/app/v1.json#2"), b"").unwrap();

    let reopened = ModuleStore::open(&url).unwrap();
    rt.block_on(async {
        let list = reopened.list().await.unwrap();
        assert_eq!(list, vec![e.clone()]);
        let (d, bytes) = reopened.fetch(&"app:v1".parse().unwrap()).await.unwrap();
        assert_eq!((d, &bytes[..]), (e.digest, &wasm(5)[..]));
        // Removing the last tag leaves no empty directories behind.
        reopened
            .remove(&"app:v1".parse::<Reference>().unwrap())
            .await
            .unwrap();
        std::fs::remove_file(dir.path().join("refs/app/v2.json#1")).unwrap();
        std::fs::remove_file(dir.path().join("refs/app/v1.json#2")).unwrap();
        reopened.push(wasm(6), "app", "v1").await.unwrap();
        reopened
            .remove(&"app:v1".parse::<Reference>().unwrap())
            .await
            .unwrap();
        assert!(!dir.path().join("refs/app").exists());
    });
}
