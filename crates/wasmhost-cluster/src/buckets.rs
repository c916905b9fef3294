//! Key-value buckets on nats-server 2.9. async-nats's `create_key_value`
//! first reads the account's JetStream information into a type with fields
//! 2.9 does not send (`reserved_memory`, …), so it fails there; a bucket is
//! a stream of a known shape, so [`open`] creates that stream itself
//! (exactly the configuration `create_key_value` would make, without the
//! 2.10+ settings) and opens it with `get_key_value`, which works on 2.9.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use wasmhost::{Error, Result};

/// What a bucket keeps: the latest value of each key, on disk (so it
/// outlives a restart of the NATS server), for `max_age` (`ZERO`: for ever).
pub(crate) struct Bucket<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub max_age: Duration,
}

/// Opens the bucket, creating it if it does not exist. Several nodes may
/// race to create it: creating a stream that exists with the same
/// configuration succeeds, and a loser opens the winner's.
pub(crate) async fn open(js: &jetstream::Context, b: Bucket<'_>) -> Result<kv::Store> {
    if let Ok(store) = js.get_key_value(b.name).await {
        return Ok(store);
    }
    let config = stream::Config {
        name: format!("KV_{}", b.name),
        description: Some(b.description.to_string()),
        subjects: vec![format!("$KV.{}.>", b.name)],
        max_messages_per_subject: 1,
        max_age: b.max_age,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: true,
        num_replicas: 1,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    };
    let created = js.get_or_create_stream(config).await;
    match js.get_key_value(b.name).await {
        Ok(store) => Ok(store),
        Err(e) => Err(Error::unavailable(format!(
            "cluster: cannot open the bucket {}: {}",
            b.name,
            match created {
                Err(c) => c.to_string(),
                Ok(_) => e.to_string(),
            }
        ))),
    }
}
