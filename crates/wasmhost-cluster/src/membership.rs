//! Membership: each node's [`NodeRecord`] in the `<cluster>-nodes`
//! key-value bucket, refreshed every heartbeat. The bucket's `max_age` is
//! [`MISSED_HEARTBEATS`](crate::MISSED_HEARTBEATS) heartbeats, so the record
//! of a node that stopped (killed, paused, cut off) expires on the server
//! by itself; nats-server 2.9 has no per-key TTL, and none is needed.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use wasmhost::{Error, Result};

use crate::{ClusterConfig, MISSED_HEARTBEATS};

/// What a node says of itself, as `GET /api/v1/cluster` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeRecord {
    /// The node's id (fresh at every start).
    pub id: String,
    /// Where its HTTP API and workers listen (`http://HOST:PORT`).
    pub addr: String,
    /// The wasmhost version it runs.
    pub version: String,
    /// When it joined (RFC 3339, UTC).
    pub started_at: String,
    /// When it last heartbeated (RFC 3339, UTC, its own clock).
    #[serde(default)]
    pub heartbeat_at: String,
    /// Its load at that heartbeat.
    #[serde(default)]
    pub load: NodeLoad,
}

/// A node's load, read at every heartbeat.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeLoad {
    /// Requests running wasm now.
    pub running: usize,
    /// Requests waiting for a slot.
    pub waiting: usize,
    /// Slots (requests that may run at once).
    pub slots: usize,
    /// Actors this node owns (holds the lease of).
    pub actors: usize,
}

type LoadFn = Arc<dyn Fn() -> NodeLoad + Send + Sync>;

/// The members bucket and this node's heartbeat.
pub(crate) struct Members {
    kv: kv::Store,
    id: String,
    heartbeat: Mutex<Option<JoinHandle<()>>>,
}

impl Members {
    /// Opens (or creates) the bucket, writes this node's first record, and
    /// starts the heartbeat task.
    pub(crate) async fn open(
        js: &jetstream::Context,
        config: &ClusterConfig,
        me: NodeRecord,
        load: LoadFn,
    ) -> Result<Members> {
        let bucket = format!("{}-nodes", config.name);
        let max_age = config.heartbeat * MISSED_HEARTBEATS;
        let kv = crate::buckets::open(
            js,
            crate::buckets::Bucket {
                name: &bucket,
                description: "wasmhost cluster members, one record per node",
                max_age,
            },
        )
        .await?;
        let id = me.id.clone();
        publish(&kv, &me, &load).await.map_err(|e| {
            Error::unavailable(format!("cluster: cannot write this node's record: {e}"))
        })?;
        let task = tokio::spawn(beat(kv.clone(), me, load, config.heartbeat));
        Ok(Members {
            kv,
            id,
            heartbeat: Mutex::new(Some(task)),
        })
    }

    /// Every record that has not expired, ordered by id.
    pub(crate) async fn list(&self) -> Result<Vec<NodeRecord>> {
        let unavailable = |e: &dyn std::fmt::Display| {
            Error::unavailable(format!("cluster: cannot list the members: {e}"))
        };
        let keys: Vec<String> = self
            .kv
            .keys()
            .await
            .map_err(|e| unavailable(&e))?
            .try_collect()
            .await
            .map_err(|e| unavailable(&e))?;
        let mut nodes = Vec::with_capacity(keys.len());
        for key in keys {
            // Expired or deleted between the listing and now: gone.
            let Some(value) = self.kv.get(&key).await.map_err(|e| unavailable(&e))? else {
                continue;
            };
            match serde_json::from_slice::<NodeRecord>(&value) {
                Ok(record) => nodes.push(record),
                Err(e) => tracing::warn!(key, "cluster: unreadable member record: {e}"),
            }
        }
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(nodes)
    }

    /// Stops heartbeating and deletes this node's record.
    pub(crate) async fn leave(&self) {
        if let Some(task) = self.heartbeat.lock().await.take() {
            task.abort();
        }
        if let Err(e) = self.kv.delete(&self.id).await {
            tracing::warn!("cluster: could not delete this node's record: {e}");
        }
    }
}

impl Drop for Members {
    fn drop(&mut self) {
        if let Ok(mut task) = self.heartbeat.try_lock()
            && let Some(task) = task.take()
        {
            task.abort();
        }
    }
}

/// Writes `me` with the load and time of now.
async fn publish(
    kv: &kv::Store,
    me: &NodeRecord,
    load: &LoadFn,
) -> std::result::Result<u64, kv::PutError> {
    let mut record = me.clone();
    record.heartbeat_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    record.load = load();
    let json = serde_json::to_vec(&record).unwrap_or_default();
    kv.put(&record.id, Bytes::from(json)).await
}

/// The heartbeat: a record every `every`, for as long as the node runs. A
/// failed write (NATS restarting) is retried at the next beat; the client
/// reconnects by itself.
async fn beat(kv: kv::Store, me: NodeRecord, load: LoadFn, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = publish(&kv, &me, &load).await {
            tracing::warn!("cluster: heartbeat not written: {e}");
        }
    }
}
