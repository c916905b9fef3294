//! Actors' durable state in JetStream: [`JsActorStore`], the cluster's
//! [`ActorStore`].
//!
//! An actor's whole state is **one value** in the `<cluster>-actors`
//! key-value bucket (file storage), under its lease key
//! ([`crate::leases::key`]): its record, its last snapshot, the replies to
//! its recent message ids and its key-value data. A message commits by
//! writing the new value with `update` at the revision this node last read
//! or wrote: a compare-and-set, so a message's changes are all there or
//! none is, and a node whose view is stale cannot commit.
//!
//! **Fencing.** A node that loads an actor (it just took its lease) writes
//! the value straight back, moving its revision on. An earlier owner that
//! was paused past its lease (SIGSTOP) and wakes up still holds the old
//! revision: its next commit fails, it drops the actor, and the message it
//! was running is not acknowledged (the sender retries it on the new
//! owner). Nothing it did after losing the lease is ever stored.
//!
//! The guest reads its key-value data from the node's local store (in
//! memory in cluster mode): loading an actor replaces its namespace there
//! with the stored data, and a commit applies its writes there after the
//! compare-and-set succeeded.
//!
//! Limits: a value must fit in one NATS message (`max_payload`, 1 MiB by
//! default): a bigger state fails its message with `bad_input` and leaves
//! the stored one as it was. Replies are kept for the last
//! [`REPLY_WINDOW`] message ids, or fewer when they would not fit in
//! [`REPLY_BYTES`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::TryStreamExt;
use wasmhost::actor::kv_namespace;
use wasmhost::{ActorCommit, ActorRecord, ActorStore, Digest, Error, KvStore, Result, Snapshot};

use crate::leases::key;

/// Message ids whose replies are kept per actor.
pub const REPLY_WINDOW: usize = 256;
/// Most bytes of replies kept per actor.
pub const REPLY_BYTES: usize = 128 << 10;

/// An actor's stored value, decoded.
#[derive(Debug, Clone, Default)]
struct Stored {
    /// The node that wrote it.
    owner: String,
    record: Option<ActorRecord>,
    snapshot: Option<Vec<u8>>,
    replies: VecDeque<(String, Vec<u8>)>,
    kv: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// The cluster's [`ActorStore`]; see the module docs.
pub struct JsActorStore {
    kv: kv::Store,
    node: String,
    local: KvStore,
    max_value: usize,
    leases: crate::Leases,
    /// What this node last read or wrote of each actor, and its revision.
    known: Mutex<HashMap<String, (u64, Stored)>>,
}

impl std::fmt::Debug for JsActorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsActorStore")
            .field("node", &self.node)
            .finish()
    }
}

impl JsActorStore {
    /// Opens (or creates) the actors bucket. `local` is the node's own
    /// key-value store, where the guests of the actors it owns read.
    pub(crate) async fn open(
        js: &jetstream::Context,
        cluster: &str,
        node: &str,
        local: KvStore,
        max_value: usize,
        leases: crate::Leases,
    ) -> Result<JsActorStore> {
        let kv = crate::buckets::open(
            js,
            crate::buckets::Bucket {
                name: &format!("{cluster}-actors"),
                description: "wasmhost actors: record, snapshot, replies and key-value data",
                max_age: Duration::ZERO,
            },
        )
        .await?;
        Ok(JsActorStore {
            kv,
            node: node.to_string(),
            local,
            max_value,
            leases,
            known: Mutex::new(HashMap::new()),
        })
    }

    /// Forgets what this node knew of actor `id` (it moved away): its next
    /// load reads it again.
    pub fn forget(&self, id: &str) {
        self.known().remove(id);
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Stored)>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `value` at `revision` (0: the key must not exist); its new
    /// revision. Losing the compare-and-set means another node owns the
    /// actor now: this node forgets it and its lease (the server then drops
    /// it), and the error says it moved.
    async fn put(&self, id: &str, revision: u64, value: Bytes) -> Result<u64> {
        let k = key(id);
        if revision == 0 {
            match self.kv.create(&k, value).await {
                Ok(r) => return Ok(r),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
                Err(e) => return Err(unreachable_store("write", id, &e)),
            }
        } else {
            match self.kv.update(&k, value, revision).await {
                Ok(r) => return Ok(r),
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
                Err(e) => return Err(unreachable_store("write", id, &e)),
            }
        }
        self.forget(id);
        self.leases.forget(id);
        Err(moved(id))
    }
}

/// The error of a commit that lost to another node's.
fn moved(id: &str) -> Error {
    Error::unavailable(format!(
        "actor `{id}` is owned by another node of the cluster now; this node dropped it \
         (the message was not applied)"
    ))
}

fn unreachable_store(what: &str, id: &str, e: &dyn std::fmt::Display) -> Error {
    Error::unavailable(format!(
        "cluster: cannot {what} the state of actor `{id}`: {e}"
    ))
}

/// Runs `f` to completion from synchronous code on a multi-threaded tokio
/// runtime ([`ActorStore`] is synchronous; the server's executor is
/// multi-threaded).
fn block<F: Future>(f: F) -> Result<F::Output> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| Error::internal("the cluster's actor store runs inside a tokio runtime"))?;
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return Err(Error::internal(
            "the cluster's actor store needs a multi-threaded tokio runtime",
        ));
    }
    Ok(tokio::task::block_in_place(|| handle.block_on(f)))
}

impl ActorStore for JsActorStore {
    fn load(&self, id: &str) -> Result<Option<(ActorRecord, Option<Snapshot>)>> {
        block(async {
            let entry = self
                .kv
                .entry(key(id))
                .await
                .map_err(|e| unreachable_store("read", id, &e))?;
            let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
                // Nothing stored: the first commit creates it (and fails
                // if another node's got there first).
                self.known().remove(id);
                self.local.replace_raw(&kv_namespace(id), &[])?;
                return Ok(None);
            };
            let mut stored = decode(&entry.value)?;
            if !stored.owner.is_empty() && stored.owner != self.node {
                // Taken over from another node (dead, paused, or moved on).
                metrics::counter!("wasmhost_cluster_failovers_total").increment(1);
            }
            // Fence: move the revision on, so an earlier owner's view is stale.
            stored.owner = self.node.clone();
            let revision = self.put(id, entry.revision, encode(&stored)).await?;
            let entries: Vec<(Vec<u8>, Vec<u8>)> = stored
                .kv
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            self.local.replace_raw(&kv_namespace(id), &entries)?;
            let loaded = match &stored.record {
                Some(record) => {
                    let snapshot = stored
                        .snapshot
                        .as_ref()
                        .map(|s| Snapshot::from_bytes(s.clone()))
                        .transpose()?;
                    Some((record.clone(), snapshot))
                }
                None => None,
            };
            self.known().insert(id.to_string(), (revision, stored));
            Ok(loaded)
        })?
    }

    fn records(&self) -> Result<Vec<(String, ActorRecord)>> {
        block(async {
            let keys: Vec<String> = match self.kv.keys().await {
                Ok(keys) => keys
                    .try_collect()
                    .await
                    .map_err(|e| unreachable_store("list", "*", &e))?,
                Err(e) => return Err(unreachable_store("list", "*", &e)),
            };
            let mut out = Vec::new();
            for k in keys {
                let Some(id) = crate::leases::id_of(&k) else {
                    continue;
                };
                if let Some(value) = self
                    .kv
                    .get(&k)
                    .await
                    .map_err(|e| unreachable_store("read", &id, &e))?
                    && let Some(record) = decode(&value)?.record
                {
                    out.push((id, record));
                }
            }
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(out)
        })?
    }

    fn reply(&self, id: &str, message_id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.known().get(id).and_then(|(_, stored)| {
            stored
                .replies
                .iter()
                .find(|(m, _)| m == message_id)
                .map(|(_, r)| r.clone())
        }))
    }

    fn commit(&self, id: &str, commit: ActorCommit<'_>) -> Result<()> {
        let (revision, mut stored) = self.known().get(id).cloned().unwrap_or_default();
        stored.owner = self.node.clone();
        stored.record = Some(commit.record.clone());
        if let Some(s) = commit.snapshot {
            stored.snapshot = Some(s.as_bytes().to_vec());
        }
        if let Some((mid, reply)) = commit.reply {
            stored.replies.push_back((mid.to_string(), reply.to_vec()));
            let mut bytes: usize = stored.replies.iter().map(|(m, r)| m.len() + r.len()).sum();
            while stored.replies.len() > REPLY_WINDOW
                || (bytes > REPLY_BYTES && stored.replies.len() > 1)
            {
                if let Some((m, r)) = stored.replies.pop_front() {
                    bytes -= m.len() + r.len();
                }
            }
        }
        for (k, v) in commit.kv.writes() {
            match v {
                Some(v) => stored.kv.insert(k.to_vec(), v.to_vec()),
                None => stored.kv.remove(k),
            };
        }
        let value = encode(&stored);
        if value.len() > self.max_value {
            return Err(Error::bad_input(format!(
                "actor `{id}`: its state is {} bytes, more than the {} a cluster stores in one \
                 value (the NATS server's max_payload); the message was not applied",
                value.len(),
                self.max_value
            )));
        }
        let revision = block(self.put(id, revision, value))??;
        self.local.apply_batch(commit.kv)?;
        self.known().insert(id.to_string(), (revision, stored));
        Ok(())
    }

    fn remove(&self, id: &str) -> Result<bool> {
        block(async {
            let existed = self
                .kv
                .entry(key(id))
                .await
                .map_err(|e| unreachable_store("read", id, &e))?
                .is_some_and(|e| e.operation == kv::Operation::Put);
            if existed {
                self.kv
                    .delete(key(id))
                    .await
                    .map_err(|e| unreachable_store("delete", id, &e))?;
            }
            self.forget(id);
            Ok(existed)
        })?
    }
}

// The value's encoding: version 1, then length-prefixed fields (u32 little
// endian lengths, u64 little endian numbers).

const VERSION: u8 = 1;

fn encode(s: &Stored) -> Bytes {
    let mut w = vec![VERSION];
    put_bytes(&mut w, s.owner.as_bytes());
    match &s.record {
        Some(r) => {
            w.push(1);
            w.extend_from_slice(r.module.as_bytes());
            w.extend_from_slice(&r.messages.to_le_bytes());
            let saved = r.saved_at.map_or(0, |t| {
                t.duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0)
            });
            w.extend_from_slice(&saved.to_le_bytes());
            w.extend_from_slice(&r.snapshot_bytes.to_le_bytes());
        }
        None => w.push(0),
    }
    match &s.snapshot {
        Some(b) => {
            w.push(1);
            put_bytes(&mut w, b);
        }
        None => w.push(0),
    }
    w.extend_from_slice(&(s.replies.len() as u32).to_le_bytes());
    for (m, r) in &s.replies {
        put_bytes(&mut w, m.as_bytes());
        put_bytes(&mut w, r);
    }
    w.extend_from_slice(&(s.kv.len() as u32).to_le_bytes());
    for (k, v) in &s.kv {
        put_bytes(&mut w, k);
        put_bytes(&mut w, v);
    }
    Bytes::from(w)
}

fn put_bytes(w: &mut Vec<u8>, b: &[u8]) {
    w.extend_from_slice(&(b.len() as u32).to_le_bytes());
    w.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(Error::corrupt("cluster actor state", "truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<usize> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()?;
        self.take(n)
    }
}

fn decode(b: &[u8]) -> Result<Stored> {
    let mut r = Reader(b);
    let version = r.u8()?;
    if version != VERSION {
        return Err(Error::corrupt(
            "cluster actor state",
            format!("version {version}, expected {VERSION}"),
        ));
    }
    let owner = String::from_utf8_lossy(r.bytes()?).into_owned();
    let record = match r.u8()? {
        0 => None,
        _ => {
            let module = Digest::from_bytes(r.take(32)?)?;
            let mut record = ActorRecord::new(module);
            record.messages = r.u64()?;
            let saved = r.u64()?;
            record.saved_at = (saved > 0).then(|| UNIX_EPOCH + Duration::from_millis(saved));
            record.snapshot_bytes = r.u64()?;
            Some(record)
        }
    };
    let snapshot = match r.u8()? {
        0 => None,
        _ => Some(r.bytes()?.to_vec()),
    };
    let mut replies = VecDeque::new();
    for _ in 0..r.u32()? {
        let m = String::from_utf8_lossy(r.bytes()?).into_owned();
        replies.push_back((m, r.bytes()?.to_vec()));
    }
    let mut kv = BTreeMap::new();
    for _ in 0..r.u32()? {
        let k = r.bytes()?.to_vec();
        kv.insert(k, r.bytes()?.to_vec());
    }
    Ok(Stored {
        owner,
        record,
        snapshot,
        replies,
        kv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_encoding_round_trips_and_refuses_garbage() {
        let mut record = ActorRecord::new(Digest::of(b"m"));
        record.messages = 7;
        record.saved_at = Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123));
        record.snapshot_bytes = 3;
        let mut stored = Stored {
            owner: "node".into(),
            record: Some(record.clone()),
            snapshot: Some(vec![1, 2, 3]),
            ..Stored::default()
        };
        stored.replies.push_back(("m1".into(), b"r1".to_vec()));
        stored.kv.insert(b"k".to_vec(), b"v".to_vec());
        let back = decode(&encode(&stored)).expect("decodes");
        assert_eq!(back.owner, "node");
        assert_eq!(back.record, Some(record));
        assert_eq!(back.snapshot, Some(vec![1, 2, 3]));
        assert_eq!(back.replies, stored.replies);
        assert_eq!(back.kv, stored.kv);
        let bytes = encode(&stored);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(&[9]).is_err());
    }
}
