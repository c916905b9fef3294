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
//! **Large snapshots.** A value must fit in one NATS message
//! (`max_payload`, 1 MiB by default). A snapshot larger than
//! [`INLINE_SNAPSHOT`], or one that would not fit, goes to the
//! `<cluster>-snapshots` object store (in 128 KiB chunks) and the value
//! names it. The object is written first, under a name of the writing node
//! (`<key>/<node>/<slot>`, two slots a node used in turn, so the object the
//! stored value names is never overwritten); the value's compare-and-set
//! then makes it the actor's. A commit that loses deletes the object it
//! wrote, and a zombie's names are never a new owner's. The object a value
//! no longer names is deleted by the commit that moved on from it (of
//! another node, after a takeover) or overwritten by the one after (its own
//! slot); a node that takes an actor over also deletes the previous owner's
//! slot the value does not name, which a crash between the two writes may
//! have left. Snapshots stay up to the stream's limits (no size limit of
//! their own).
//!
//! Limits: the rest of the state (record, replies, key-value data) must
//! fit in one value: a bigger one fails its message with `bad_input` and
//! leaves the stored one as it was. Replies are kept for the last
//! [`REPLY_WINDOW`] message ids, or fewer when they would not fit in
//! [`REPLY_BYTES`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

use async_nats::jetstream::{self, kv, object_store as nats_os};
use bytes::Bytes;
use futures::TryStreamExt;
use wasmhost::actor::kv_namespace;
use wasmhost::{ActorCommit, ActorRecord, ActorStore, Digest, Error, KvStore, Result, Snapshot};

use crate::leases::key;

/// Message ids whose replies are kept per actor.
pub const REPLY_WINDOW: usize = 256;
/// Most bytes of replies kept per actor.
pub const REPLY_BYTES: usize = 128 << 10;
/// Snapshots up to this size are kept in the actor's value; bigger ones in
/// the `<cluster>-snapshots` object store (see the module docs).
pub const INLINE_SNAPSHOT: usize = 256 << 10;

/// Where an actor's snapshot is.
#[derive(Debug, Clone, PartialEq)]
enum Saved {
    /// In the value.
    Inline(Vec<u8>),
    /// In the snapshots object store, under `name`, `size` bytes long.
    Object { name: String, size: u64 },
}

impl Saved {
    fn object(&self) -> Option<&str> {
        match self {
            Saved::Object { name, .. } => Some(name),
            Saved::Inline(_) => None,
        }
    }
}

/// The object names node `node` writes actor `id`'s snapshots under.
fn slots(id: &str, node: &str) -> [String; 2] {
    let k = key(id);
    [format!("{k}/{node}/0"), format!("{k}/{node}/1")]
}

/// An actor's stored value, decoded.
#[derive(Debug, Clone, Default)]
struct Stored {
    /// The node that wrote it.
    owner: String,
    record: Option<ActorRecord>,
    snapshot: Option<Saved>,
    replies: VecDeque<(String, Vec<u8>)>,
    kv: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// The cluster's [`ActorStore`]; see the module docs.
pub struct JsActorStore {
    kv: kv::Store,
    snapshots: nats_os::ObjectStore,
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
        let bucket = format!("{cluster}-snapshots");
        let snapshots = crate::objects::open_bucket(
            js,
            &bucket,
            "wasmhost actors: snapshots too large for the actors bucket",
        )
        .await
        .map_err(|e| Error::unavailable(format!("cluster: cannot open bucket `{bucket}`: {e}")))?;
        Ok(JsActorStore {
            kv,
            snapshots,
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

    /// Writes snapshot `bytes` as object `name` (replacing what was there).
    async fn put_object(&self, id: &str, name: &str, bytes: &[u8]) -> Result<()> {
        let mut reader = bytes;
        self.snapshots
            .put(name, &mut reader)
            .await
            .map(drop)
            .map_err(|e| unreachable_store("write the snapshot of", id, &e))
    }

    /// The snapshot saved as object `name`, `size` bytes long.
    async fn get_object(&self, id: &str, name: &str, size: u64) -> Result<Vec<u8>> {
        let corrupt = |why: String| Error::corrupt(format!("cluster actor `{id}`"), why);
        match crate::objects::read_whole(&self.snapshots, name).await {
            Ok(Some((_, bytes))) if bytes.len() as u64 == size => Ok(bytes),
            Ok(Some((_, bytes))) => Err(corrupt(format!(
                "its snapshot `{name}` is {} bytes, the stored value says {size}",
                bytes.len()
            ))),
            Ok(None) => Err(corrupt(format!(
                "its snapshot `{name}` is missing from the snapshots bucket"
            ))),
            Err(e) => Err(unreachable_store("read the snapshot of", id, &e)),
        }
    }

    /// Deletes snapshot objects `names`; a missing one is not an error, and
    /// a failure only leaves an object behind (logged), so it is not one
    /// either.
    async fn delete_objects(snapshots: &nats_os::ObjectStore, names: &[String]) {
        for name in names {
            match snapshots.delete(name).await {
                Ok(()) => {}
                Err(e) if e.kind() == nats_os::DeleteErrorKind::NotFound => {}
                Err(e) => tracing::warn!("cluster: cannot delete snapshot `{name}`: {e}"),
            }
        }
    }

    /// Moves the snapshot of `stored` to the object store when it is too
    /// large for the value (or makes the value too large), under the slot
    /// of this node that `before` does not name; the object's name.
    async fn move_out(
        &self,
        id: &str,
        stored: &mut Stored,
        before: Option<&str>,
        value_len: usize,
    ) -> Result<Option<String>> {
        let Some(Saved::Inline(bytes)) = &stored.snapshot else {
            return Ok(None);
        };
        if bytes.len() <= INLINE_SNAPSHOT && value_len <= self.max_value {
            return Ok(None);
        }
        let [first, second] = slots(id, &self.node);
        let name = if before == Some(first.as_str()) {
            second
        } else {
            first
        };
        self.put_object(id, &name, bytes).await?;
        let size = bytes.len() as u64;
        stored.snapshot = Some(Saved::Object {
            name: name.clone(),
            size,
        });
        Ok(Some(name))
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
            let previous = std::mem::replace(&mut stored.owner, self.node.clone());
            // Fence: move the revision on, so an earlier owner's view is stale.
            let revision = self.put(id, entry.revision, encode(&stored)).await?;
            if !previous.is_empty() && previous != self.node {
                // Taken over from another node (dead, paused, or moved on).
                metrics::counter!("wasmhost_cluster_failovers_total").increment(1);
                // Its slot the value does not name, if a crash left it.
                let named = stored.snapshot.as_ref().and_then(Saved::object);
                let stale: Vec<String> = slots(id, &previous)
                    .into_iter()
                    .filter(|s| Some(s.as_str()) != named)
                    .collect();
                Self::delete_objects(&self.snapshots, &stale).await;
            }
            // Read after the fence: from now on no other node replaces the
            // object the value names.
            let snapshot = match &stored.snapshot {
                Some(Saved::Inline(bytes)) => Some(bytes.clone()),
                Some(Saved::Object { name, size }) => Some(self.get_object(id, name, *size).await?),
                None => None,
            };
            let entries: Vec<(Vec<u8>, Vec<u8>)> = stored
                .kv
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            self.local.replace_raw(&kv_namespace(id), &entries)?;
            let loaded = match &stored.record {
                Some(record) => {
                    let snapshot = snapshot.map(Snapshot::from_bytes).transpose()?;
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
        let before = stored
            .snapshot
            .as_ref()
            .and_then(Saved::object)
            .map(String::from);
        stored.owner = self.node.clone();
        stored.record = Some(commit.record.clone());
        if let Some(s) = commit.snapshot {
            stored.snapshot = Some(Saved::Inline(s.as_bytes().to_vec()));
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
        let revision = block(async {
            let mut value = encode(&stored);
            let written = self
                .move_out(id, &mut stored, before.as_deref(), value.len())
                .await?;
            if written.is_some() {
                value = encode(&stored);
            }
            let outcome = if value.len() > self.max_value {
                Err(Error::bad_input(format!(
                    "actor `{id}`: its state without its snapshot (record, replies and \
                     key-value data) is {} bytes, more than the {} a cluster stores in one \
                     value (the NATS server's max_payload); the message was not applied",
                    value.len(),
                    self.max_value
                )))
            } else {
                self.put(id, revision, value).await
            };
            let now = stored.snapshot.as_ref().and_then(Saved::object);
            let unnamed: Vec<String> = match &outcome {
                // Lost or refused: the object it wrote is nobody's.
                Err(_) => written.into_iter().collect(),
                // The object named before when no longer named: another
                // node's goes; this node's other slot stays for the next
                // snapshot to overwrite, unless the snapshot moved back
                // into the value.
                Ok(_) => match before {
                    Some(b) if Some(b.as_str()) != now => {
                        let mine = slots(id, &self.node);
                        if !mine.contains(&b) {
                            vec![b]
                        } else if now.is_none() {
                            mine.to_vec()
                        } else {
                            Vec::new()
                        }
                    }
                    _ => Vec::new(),
                },
            };
            Self::delete_objects(&self.snapshots, &unnamed).await;
            outcome
        })??;
        self.local.apply_batch(commit.kv)?;
        self.known().insert(id.to_string(), (revision, stored));
        Ok(())
    }

    fn remove(&self, id: &str) -> Result<bool> {
        block(async {
            let entry = self
                .kv
                .entry(key(id))
                .await
                .map_err(|e| unreachable_store("read", id, &e))?
                .filter(|e| e.operation == kv::Operation::Put);
            let existed = entry.is_some();
            if let Some(entry) = entry {
                self.kv
                    .delete(key(id))
                    .await
                    .map_err(|e| unreachable_store("delete", id, &e))?;
                // Its snapshot objects: the one named and the owner's slots.
                if let Ok(stored) = decode(&entry.value) {
                    let mut names = slots(id, &stored.owner).to_vec();
                    if let Some(named) = stored.snapshot.as_ref().and_then(Saved::object)
                        && !names.iter().any(|n| n == named)
                    {
                        names.push(named.to_string());
                    }
                    Self::delete_objects(&self.snapshots, &names).await;
                }
            }
            self.forget(id);
            Ok(existed)
        })?
    }
}

// The value's encoding: version 2, then length-prefixed fields (u32 little
// endian lengths, u64 little endian numbers). Version 1 had no snapshot
// objects (tag 2); it is still read.

const VERSION: u8 = 2;

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
        Some(Saved::Inline(b)) => {
            w.push(1);
            put_bytes(&mut w, b);
        }
        Some(Saved::Object { name, size }) => {
            w.push(2);
            put_bytes(&mut w, name.as_bytes());
            w.extend_from_slice(&size.to_le_bytes());
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
    if !(1..=VERSION).contains(&version) {
        return Err(Error::corrupt(
            "cluster actor state",
            format!("version {version}, expected 1 to {VERSION}"),
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
        1 => Some(Saved::Inline(r.bytes()?.to_vec())),
        2 if version >= 2 => {
            let name = String::from_utf8_lossy(r.bytes()?).into_owned();
            Some(Saved::Object {
                name,
                size: r.u64()?,
            })
        }
        tag => {
            return Err(Error::corrupt(
                "cluster actor state",
                format!("snapshot tag {tag}"),
            ));
        }
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
            snapshot: Some(Saved::Inline(vec![1, 2, 3])),
            ..Stored::default()
        };
        stored.replies.push_back(("m1".into(), b"r1".to_vec()));
        stored.kv.insert(b"k".to_vec(), b"v".to_vec());
        let back = decode(&encode(&stored)).expect("decodes");
        assert_eq!(back.owner, "node");
        assert_eq!(back.record, Some(record));
        assert_eq!(back.snapshot, Some(Saved::Inline(vec![1, 2, 3])));
        assert_eq!(back.replies, stored.replies);
        assert_eq!(back.kv, stored.kv);
        let bytes = encode(&stored);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(&[9]).is_err());

        // A snapshot in the object store: its name and size.
        let object = Saved::Object {
            name: "a_eA/node/1".into(),
            size: 5 << 20,
        };
        stored.snapshot = Some(object.clone());
        assert_eq!(decode(&encode(&stored)).expect("v2").snapshot, Some(object));
        // Version 1 (before snapshot objects) is still read, without tag 2.
        let mut v1 = encode(&Stored {
            snapshot: Some(Saved::Inline(vec![4])),
            ..Stored::default()
        })
        .to_vec();
        v1[0] = 1;
        assert_eq!(
            decode(&v1).expect("v1").snapshot,
            Some(Saved::Inline(vec![4]))
        );
        let mut v1 = encode(&stored).to_vec();
        v1[0] = 1;
        assert!(decode(&v1).is_err());
    }
}
