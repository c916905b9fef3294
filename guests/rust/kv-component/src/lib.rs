//! Component-model guest (`wasm32-wasip2`) for the wasmhost tests: counters
//! kept in `wasi:keyvalue/store@0.2.0-draft` (world `wasmhost:kv-test/counter`
//! in `wit/world.wit`).
//!
//! Built by `scripts/build-guests.sh` into `target/guests/out/kv-component.wasm`.
//! A counter is a `u64`, stored as 8 bytes little-endian. Every error of the
//! store comes back to the caller as the `err` string: `no-such-store`,
//! `access-denied`, or the message of `other`.

wit_bindgen::generate!({
    world: "counter",
    path: "wit",
    // wit-bindgen asks for `wasi:` interfaces to be generated explicitly.
    with: { "wasi:keyvalue/store@0.2.0-draft": generate },
});

use wasi::keyvalue::store::{self, Bucket};

struct Counter;

fn message(e: store::Error) -> String {
    match e {
        store::Error::NoSuchStore => "no-such-store".to_string(),
        store::Error::AccessDenied => "access-denied".to_string(),
        store::Error::Other(m) => m,
    }
}

fn open(bucket: &str) -> Result<Bucket, String> {
    store::open(bucket).map_err(message)
}

fn read(bucket: &Bucket, key: &str) -> Result<Option<u64>, String> {
    match bucket.get(key).map_err(message)? {
        None => Ok(None),
        Some(bytes) => {
            let b: [u8; 8] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| format!("`{key}` holds {} bytes, not a u64", bytes.len()))?;
            Ok(Some(u64::from_le_bytes(b)))
        }
    }
}

impl Guest for Counter {
    fn increment(key: String) -> Result<u64, String> {
        Self::increment_in("default".to_string(), key)
    }

    fn get(key: String) -> Result<Option<u64>, String> {
        read(&open("default")?, &key)
    }

    fn increment_in(bucket: String, key: String) -> Result<u64, String> {
        let b = open(&bucket)?;
        let n = read(&b, &key)?.unwrap_or(0).wrapping_add(1);
        b.set(&key, &n.to_le_bytes()).map_err(message)?;
        Ok(n)
    }

    fn fill(key: String, len: u32) -> Result<(), String> {
        let b = open("default")?;
        b.set(&key, &vec![b'x'; len as usize]).map_err(message)
    }

    fn keys(bucket: String) -> Result<Vec<String>, String> {
        let b = open(&bucket)?;
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = b.list_keys(cursor).map_err(message)?;
            all.extend(page.keys);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(all),
            }
        }
    }

    fn remove(key: String) -> Result<bool, String> {
        let b = open("default")?;
        let existed = b.exists(&key).map_err(message)?;
        b.delete(&key).map_err(message)?;
        Ok(existed)
    }
}

export!(Counter);
