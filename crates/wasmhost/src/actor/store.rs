//! Where actors' durable state lives: the [`ActorStore`] trait, and its
//! implementation on a [`KvStore`]'s redb database.
//!
//! An actor's record ([`ActorRecord`]), its last snapshot, and the replies
//! to its last [`REPLY_WINDOW`] message ids live in three tables of the
//! same database as its key-value data, so that one message commits all of
//! them — record, snapshot, key-value writes, reply — in **one** redb
//! transaction, durable (fsync) before the reply is returned:
//!
//! * `actors`: actor id → record (module digest, message count, snapshot
//!   time and size, the sequence number of its next reply);
//! * `actor_snapshots`: actor id → the [`Snapshot`]'s bytes;
//! * `actor_replies`: (actor id, message id) → reply; and
//!   `actor_reply_order`: (actor id, sequence number) → message id, which
//!   bounds the replies kept per actor to the last [`REPLY_WINDOW`].
//!
//! The cluster (actors across machines) supplies its own implementation of
//! the trait; nothing else in [`crate::actor`] knows where records live.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::capabilities::{KvBatch, KvStore};
use crate::code::Digest;
use crate::error::{Error, Result};
use crate::snapshot::Snapshot;

/// How many recent message ids per actor keep their reply: a message
/// resent with one of them is answered from the record, not applied again.
pub const REPLY_WINDOW: u64 = 1024;

const ACTORS: TableDefinition<&str, &[u8]> = TableDefinition::new("actors");
const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("actor_snapshots");
const REPLIES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("actor_replies");
const REPLY_ORDER: TableDefinition<(&str, u64), &str> = TableDefinition::new("actor_reply_order");

/// What is stored of an actor, besides its snapshot and key-value data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActorRecord {
    /// The digest of the module it runs.
    pub module: Digest,
    /// Messages it processed, as of its last commit.
    pub messages: u64,
    /// When its stored snapshot was taken (`None`: it has none).
    pub saved_at: Option<SystemTime>,
    /// The size of its stored snapshot, in bytes.
    pub snapshot_bytes: u64,
}

impl ActorRecord {
    /// A record of an actor of `module`, with no messages and no snapshot.
    pub fn new(module: Digest) -> Self {
        ActorRecord {
            module,
            messages: 0,
            saved_at: None,
            snapshot_bytes: 0,
        }
    }
}

/// One message's changes, committed together or not at all.
#[derive(Debug)]
#[non_exhaustive]
pub struct ActorCommit<'a> {
    /// The actor's record after the message.
    pub record: &'a ActorRecord,
    /// Its new snapshot; `None` keeps the stored one.
    pub snapshot: Option<&'a Snapshot>,
    /// The key-value writes the guest made.
    pub kv: &'a KvBatch,
    /// The message id and the reply to keep for it.
    pub reply: Option<(&'a str, &'a [u8])>,
}

impl<'a> ActorCommit<'a> {
    /// A commit of `record` alone.
    pub fn new(record: &'a ActorRecord, kv: &'a KvBatch) -> Self {
        ActorCommit {
            record,
            snapshot: None,
            kv,
            reply: None,
        }
    }
}

/// Where actors' records, snapshots and recent replies are kept; see the
/// [module docs](self). Implemented by [`KvStore`].
pub trait ActorStore: Send + Sync + fmt::Debug {
    /// The record and snapshot of actor `id`, if it has been stored.
    fn load(&self, id: &str) -> Result<Option<(ActorRecord, Option<Snapshot>)>>;
    /// Every stored actor's record, by id.
    fn records(&self) -> Result<Vec<(String, ActorRecord)>>;
    /// The reply kept for message `message_id` of actor `id`.
    fn reply(&self, id: &str, message_id: &str) -> Result<Option<Vec<u8>>>;
    /// Commits one message's changes atomically and durably.
    fn commit(&self, id: &str, commit: ActorCommit<'_>) -> Result<()>;
    /// Forgets actor `id`'s record, snapshot and replies (not its key-value
    /// data); whether it had a record.
    fn remove(&self, id: &str) -> Result<bool>;
}

fn storage(what: &str, e: impl Into<redb::Error>) -> Error {
    crate::capabilities::kv::storage_in("actor store", what, e)
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Record encoding: version 1, digest, messages, saved-at (Unix ms, 0 for
/// none), snapshot bytes, next reply sequence number.
fn encode_record(r: &ActorRecord, next_seq: u64) -> Vec<u8> {
    let mut w = Vec::with_capacity(1 + 32 + 8 * 4);
    w.push(1);
    w.extend_from_slice(r.module.as_bytes());
    w.extend_from_slice(&r.messages.to_le_bytes());
    w.extend_from_slice(&r.saved_at.map_or(0, unix_ms).to_le_bytes());
    w.extend_from_slice(&r.snapshot_bytes.to_le_bytes());
    w.extend_from_slice(&next_seq.to_le_bytes());
    w
}

fn decode_record(id: &str, b: &[u8]) -> Result<(ActorRecord, u64)> {
    if b.len() != 1 + 32 + 8 * 4 || b[0] != 1 {
        return Err(Error::corrupt(
            format!("record of actor `{id}`"),
            format!("{} bytes of an unknown format", b.len()),
        ));
    }
    let u = |at: usize| {
        let mut n = [0u8; 8];
        n.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(n)
    };
    let saved = u(41);
    Ok((
        ActorRecord {
            module: Digest::from_bytes(&b[1..33])?,
            messages: u(33),
            saved_at: (saved != 0).then(|| UNIX_EPOCH + Duration::from_millis(saved)),
            snapshot_bytes: u(49),
        },
        u(57),
    ))
}

impl ActorStore for KvStore {
    fn load(&self, id: &str) -> Result<Option<(ActorRecord, Option<Snapshot>)>> {
        self.with_database(|db| load_in(db, id))
    }

    fn records(&self) -> Result<Vec<(String, ActorRecord)>> {
        self.with_database(records_in)
    }

    fn reply(&self, id: &str, message_id: &str) -> Result<Option<Vec<u8>>> {
        self.with_database(|db| reply_in(db, id, message_id))
    }

    fn commit(&self, id: &str, commit: ActorCommit<'_>) -> Result<()> {
        self.with_database(|db| commit_in(db, id, commit))
    }

    fn remove(&self, id: &str) -> Result<bool> {
        self.with_database(|db| remove_in(db, id))
    }
}

// Each operation on one database; `with_database` reopens it after a failure.
fn load_in(db: &Database, id: &str) -> Result<Option<(ActorRecord, Option<Snapshot>)>> {
    let txn = db
        .begin_read()
        .map_err(|e| storage("cannot begin a read", e))?;
    let record = match txn.open_table(ACTORS) {
        Ok(t) => t.get(id).map_err(|e| storage("cannot read", e))?,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(storage("cannot open the table", e)),
    };
    let Some(record) = record else {
        return Ok(None);
    };
    let (record, _) = decode_record(id, record.value())?;
    let snapshot = match txn.open_table(SNAPSHOTS) {
        Ok(t) => t.get(id).map_err(|e| storage("cannot read", e))?,
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(storage("cannot open the table", e)),
    };
    let snapshot = match snapshot {
        Some(s) => Some(
            Snapshot::from_bytes(s.value().to_vec())
                .map_err(|e| Error::corrupt(format!("snapshot of actor `{id}`"), e.to_string()))?,
        ),
        None => None,
    };
    Ok(Some((record, snapshot)))
}

fn records_in(db: &Database) -> Result<Vec<(String, ActorRecord)>> {
    let txn = db
        .begin_read()
        .map_err(|e| storage("cannot begin a read", e))?;
    let table = match txn.open_table(ACTORS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(storage("cannot open the table", e)),
    };
    let mut out = Vec::new();
    for entry in table.iter().map_err(|e| storage("cannot list", e))? {
        let (k, v) = entry.map_err(|e| storage("cannot list", e))?;
        let id = k.value().to_string();
        let (record, _) = decode_record(&id, v.value())?;
        out.push((id, record));
    }
    Ok(out)
}

fn reply_in(db: &Database, id: &str, message_id: &str) -> Result<Option<Vec<u8>>> {
    let txn = db
        .begin_read()
        .map_err(|e| storage("cannot begin a read", e))?;
    match txn.open_table(REPLIES) {
        Ok(t) => Ok(t
            .get((id, message_id))
            .map_err(|e| storage("cannot read", e))?
            .map(|v| v.value().to_vec())),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(storage("cannot open the table", e)),
    }
}

fn commit_in(db: &Database, id: &str, commit: ActorCommit<'_>) -> Result<()> {
    let txn = db
        .begin_write()
        .map_err(|e| storage("cannot begin a write", e))?;
    KvStore::apply(&txn, commit.kv)?;
    {
        let mut actors = txn
            .open_table(ACTORS)
            .map_err(|e| storage("cannot open the table", e))?;
        let next_seq = match actors.get(id).map_err(|e| storage("cannot read", e))? {
            Some(old) => decode_record(id, old.value())?.1,
            None => 0,
        };
        let next = next_seq + u64::from(commit.reply.is_some());
        actors
            .insert(id, encode_record(commit.record, next).as_slice())
            .map_err(|e| storage("cannot write", e))?;
        if let Some(snapshot) = commit.snapshot {
            txn.open_table(SNAPSHOTS)
                .map_err(|e| storage("cannot open the table", e))?
                .insert(id, snapshot.as_bytes())
                .map_err(|e| storage("cannot write", e))?;
        }
        if let Some((message_id, reply)) = commit.reply {
            let mut replies = txn
                .open_table(REPLIES)
                .map_err(|e| storage("cannot open the table", e))?;
            let mut order = txn
                .open_table(REPLY_ORDER)
                .map_err(|e| storage("cannot open the table", e))?;
            replies
                .insert((id, message_id), reply)
                .map_err(|e| storage("cannot write", e))?;
            order
                .insert((id, next_seq), message_id)
                .map_err(|e| storage("cannot write", e))?;
            if let Some(old) = next_seq.checked_sub(REPLY_WINDOW) {
                let gone = order
                    .remove((id, old))
                    .map_err(|e| storage("cannot delete", e))?
                    .map(|m| m.value().to_string());
                if let Some(gone) = gone {
                    replies
                        .remove((id, gone.as_str()))
                        .map_err(|e| storage("cannot delete", e))?;
                }
            }
        }
    }
    txn.commit().map_err(|e| storage("cannot commit", e))
}

fn remove_in(db: &Database, id: &str) -> Result<bool> {
    let txn = db
        .begin_write()
        .map_err(|e| storage("cannot begin a write", e))?;
    let existed = {
        let existed = txn
            .open_table(ACTORS)
            .map_err(|e| storage("cannot open the table", e))?
            .remove(id)
            .map_err(|e| storage("cannot delete", e))?
            .is_some();
        txn.open_table(SNAPSHOTS)
            .map_err(|e| storage("cannot open the table", e))?
            .remove(id)
            .map_err(|e| storage("cannot delete", e))?;
        let mut order = txn
            .open_table(REPLY_ORDER)
            .map_err(|e| storage("cannot open the table", e))?;
        let mut replies = txn
            .open_table(REPLIES)
            .map_err(|e| storage("cannot open the table", e))?;
        let ids: Vec<(u64, String)> = order
            .range((id, 0)..=(id, u64::MAX))
            .map_err(|e| storage("cannot list", e))?
            .map(|e| e.map(|(k, v)| (k.value().1, v.value().to_string())))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| storage("cannot list", e))?;
        for (seq, message_id) in ids {
            order
                .remove((id, seq))
                .map_err(|e| storage("cannot delete", e))?;
            replies
                .remove((id, message_id.as_str()))
                .map_err(|e| storage("cannot delete", e))?;
        }
        existed
    };
    txn.commit().map_err(|e| storage("cannot commit", e))?;
    Ok(existed)
}
