//! One owner per actor: leases in the `<cluster>-leases` key-value bucket.
//!
//! A lease is the key of the actor (see [`key`]) holding the owner's node
//! id. It is taken with `create` (which fails if the key exists) and
//! renewed with `update` at the revision the owner last wrote, every third
//! of the lease's time to live; the bucket's `max_age` is that time to
//! live, so a lease its owner stopped renewing (killed, paused, cut off)
//! disappears, and `create` succeeds for another node. nats-server 2.9 has
//! no per-key TTL: the bucket's `max_age` is the one TTL of every lease.
//!
//! A renewal that fails against a newer revision means another node took
//! the lease: the actor is reported lost ([`Leases::lost`]) and must not
//! run here any more. The lease only routes messages; what keeps a paused
//! owner from committing is the compare-and-set on the actor's state (see
//! [`crate::actors`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use base64::Engine as _;
use bytes::Bytes;
use tokio::sync::mpsc;
use wasmhost::{Error, Result};

/// Who holds an actor's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// This node.
    Me,
    /// Another node, by id.
    Node(String),
}

/// This node's leases.
#[derive(Clone)]
pub struct Leases {
    inner: Arc<Inner>,
}

struct Inner {
    kv: kv::Store,
    node: String,
    ttl: Duration,
    /// Leases held: actor id → the revision this node last wrote.
    held: Mutex<HashMap<String, u64>>,
    lost_tx: mpsc::UnboundedSender<String>,
    lost_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("node", &self.inner.node)
            .field("ttl", &self.inner.ttl)
            .finish()
    }
}

/// The bucket key of actor `id`: actor ids may hold any character, keys
/// only `[-/_=.a-zA-Z0-9]`, so the id is base64url-encoded.
pub fn key(id: &str) -> String {
    format!(
        "a_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
    )
}

/// The actor id of a bucket key made by [`key`].
pub fn id_of(key: &str) -> Option<String> {
    let encoded = key.strip_prefix("a_")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok()
}

impl Leases {
    /// Opens the bucket and starts renewing (every `ttl / 3`).
    pub(crate) async fn open(
        js: &jetstream::Context,
        cluster: &str,
        node: &str,
        ttl: Duration,
    ) -> Result<Leases> {
        let kv = crate::buckets::open(
            js,
            crate::buckets::Bucket {
                name: &format!("{cluster}-leases"),
                description: "wasmhost actor leases: actor → owning node",
                max_age: ttl,
            },
        )
        .await?;
        let (lost_tx, lost_rx) = mpsc::unbounded_channel();
        let leases = Leases {
            inner: Arc::new(Inner {
                kv,
                node: node.to_string(),
                ttl,
                held: Mutex::new(HashMap::new()),
                lost_tx,
                lost_rx: tokio::sync::Mutex::new(lost_rx),
            }),
        };
        let weak = Arc::downgrade(&leases.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(ttl / 3);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                Leases { inner }.renew_all().await;
            }
        });
        Ok(leases)
    }

    /// The lease's time to live.
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// How many actor leases this node holds.
    pub fn count(&self) -> usize {
        self.held().len()
    }

    /// Whether this node holds actor `id`'s lease (as far as it knows).
    pub fn holds(&self, id: &str) -> bool {
        self.held().contains_key(id)
    }

    /// Takes actor `id`'s lease if no node holds it; who holds it now.
    pub async fn acquire(&self, id: &str) -> Result<Owner> {
        if self.holds(id) {
            return Ok(Owner::Me);
        }
        let key = key(id);
        let me = Bytes::from(self.inner.node.clone());
        match self.inner.kv.create(&key, me).await {
            Ok(revision) => {
                self.held().insert(id.to_string(), revision);
                metrics::counter!("wasmhost_cluster_lease_acquisitions_total").increment(1);
                Ok(Owner::Me)
            }
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                match self.inner.kv.entry(&key).await {
                    Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
                        let owner = String::from_utf8_lossy(&entry.value).into_owned();
                        if owner == self.inner.node {
                            // Ours from before (a renewal raced this call).
                            self.held().insert(id.to_string(), entry.revision);
                            Ok(Owner::Me)
                        } else {
                            Ok(Owner::Node(owner))
                        }
                    }
                    // Expired or released between the two calls: try again.
                    Ok(_) => Box::pin(self.acquire(id)).await,
                    Err(e) => Err(unavailable("read", id, &e)),
                }
            }
            Err(e) => Err(unavailable("take", id, &e)),
        }
    }

    /// The node holding actor `id`'s lease now, as the bucket says (`None`:
    /// nobody; an owner that stopped renewing loses it after the TTL).
    pub async fn owner(&self, id: &str) -> Result<Option<String>> {
        match self.inner.kv.entry(key(id)).await {
            Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
                Ok(Some(String::from_utf8_lossy(&entry.value).into_owned()))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(unavailable("read", id, &e)),
        }
    }

    /// Gives actor `id`'s lease up (passivated, shutting down), if held.
    pub async fn release(&self, id: &str) {
        let Some(revision) = self.held().remove(id) else {
            return;
        };
        let _ = self
            .inner
            .kv
            .delete_expect_revision(key(id), Some(revision))
            .await;
    }

    /// Gives every lease up.
    pub async fn release_all(&self) {
        let ids: Vec<String> = self.held().keys().cloned().collect();
        for id in ids {
            self.release(&id).await;
        }
    }

    /// Forgets actor `id`'s lease without touching the bucket (another node
    /// took it).
    pub fn forget(&self, id: &str) {
        if self.held().remove(id).is_some() {
            metrics::counter!("wasmhost_cluster_lease_losses_total").increment(1);
            let _ = self.inner.lost_tx.send(id.to_string());
        }
    }

    /// The next actor whose lease this node lost (another node took it);
    /// `None` once the leases are gone.
    pub async fn lost(&self) -> Option<String> {
        self.inner.lost_rx.lock().await.recv().await
    }

    async fn renew_all(&self) {
        let held: Vec<(String, u64)> = self.held().iter().map(|(k, v)| (k.clone(), *v)).collect();
        for (id, revision) in held {
            let me = Bytes::from(self.inner.node.clone());
            match self.inner.kv.update(key(&id), me, revision).await {
                Ok(next) => {
                    if let Some(r) = self.held().get_mut(&id) {
                        *r = next;
                    }
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    tracing::warn!(actor = id, "lease lost to another node");
                    self.forget(&id);
                }
                // NATS away: try again at the next tick; if it stays away
                // past the TTL, the next renewal finds the lease taken.
                Err(e) => tracing::warn!(actor = id, "lease not renewed: {e}"),
            }
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.inner.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn unavailable(what: &str, id: &str, e: &dyn std::fmt::Display) -> Error {
    Error::unavailable(format!(
        "cluster: cannot {what} the lease of actor `{id}`: {e}"
    ))
}
