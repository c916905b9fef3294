//! The `key-value` capability: durable state for guests, in a namespace of
//! their own.
//!
//! A [`KeyValue`] grant gives a guest one namespace (an actor's id, or a
//! module's name for stateless calls) in a [`KvStore`]. Every key the guest
//! names lives inside that namespace: no guest can read, write or list
//! another namespace's keys. The store is [redb](https://www.redb.org) on
//! disk ([`KvStore::open`]) or in memory ([`KvStore::memory`]).
//!
//! **Imports.** Each kind of guest reaches it its own way:
//!
//! * core modules import module `wasmhost:kv` and export their memory as
//!   `memory`:
//!   - `get(key_ptr: i32, key_len: i32, buf_ptr: i32, buf_cap: i32) -> i64`:
//!     the value's length, or -1 when the key is absent. The value is written
//!     at `buf_ptr` only when it fits in `buf_cap` bytes; otherwise nothing is
//!     written and the guest calls again with a buffer of the returned size.
//!   - `set(key_ptr: i32, key_len: i32, val_ptr: i32, val_len: i32) -> i32`:
//!     0.
//!   - `delete(key_ptr: i32, key_len: i32) -> i32`: 1 if the key existed,
//!     0 if not.
//! * Extism plugins get three functions in `extism:host/user`, so that a
//!   PDK's `#[host_fn] extern "ExtismHost" { fn kv_get(key: String) ->
//!   Vec<u8>; fn kv_set(key: String, value: Vec<u8>); fn kv_delete(key:
//!   String); }` works: `kv_get(key: i64) -> i64` (a new kernel block with
//!   the value; 0, which the PDKs read as empty, when absent),
//!   `kv_set(key: i64, value: i64)` and `kv_delete(key: i64)`. The key and
//!   value blocks stay the guest's, as for every user host function.
//! * components import `wasi:keyvalue/store@0.2.0-draft` (the WASI
//!   key-value proposal's `store` interface: `open`, and a `bucket` resource
//!   with `get`, `set`, `delete`, `exists` and `list-keys`). A bucket is a
//!   second level inside the namespace: `open("")` and `open("default")`
//!   give the default bucket, the one core modules, Extism plugins and the
//!   host methods of [`KvStore`] use; any other identifier is a bucket of its
//!   own. `list-keys` returns pages of up to [`LIST_PAGE_KEYS`] keys (keys
//!   that are not UTF-8, written by a core guest, are listed lossily); its
//!   cursor is the number of keys already returned.
//!
//! **Bounds.** Keys (and bucket identifiers) are at most
//! [`KeyValue::max_key_bytes`] (default [`DEFAULT_MAX_KEY_BYTES`]) and
//! values at most [`KeyValue::max_value_bytes`] (default
//! [`DEFAULT_MAX_VALUE_BYTES`]). Past a bound, a core module or plugin stops
//! with `memory_limit` ("key-value: the value is 2000000 bytes, more than the
//! 1048576-byte limit"), and a component gets that message back as the error
//! value `other(...)`. A pointer or block outside the guest's memory is a
//! `trap`; a failure of the store itself is `internal` (for a component, an
//! `other(...)` error value).
//!
//! **Durability.** Every write is its own redb transaction, committed with
//! redb's immediate durability (fsync) before the host function returns. So
//! a write the guest saw acknowledged survives a crash of the host process
//! (even `kill -9`) with a file-backed store. The cost is one fsync per
//! write; reads never touch the disk's write path.
//!
//! **Batches.** An actor's grant is batched (see [`crate::actor`]): during
//! a message the guest's writes go to a [`KvBatch`] it reads back from
//! first, and the batch commits together with the message's snapshot and
//! reply, in one transaction — or not at all when the message fails.
//!
//! **Layout.** One redb table, `kv`; each entry's key is the namespace and
//! the bucket, each prefixed with its length (8 bytes, big-endian), followed
//! by the guest's key. A namespace's keys are therefore contiguous, and no
//! choice of namespace, bucket or key can reach another namespace's entries.
//!
//! Without the grant nothing is linked: a guest that imports any of these
//! fails with `link_error` naming the import.
//!
//! ```
//! use wasmhost::{Capabilities, KeyValue, KvStore};
//! # fn main() -> wasmhost::Result<()> {
//! let store = KvStore::memory();
//! store.set("actor-1", b"count", b"3")?;
//! let caps = Capabilities::none().with_key_value(KeyValue::new(store.clone(), "actor-1"));
//! assert_eq!(caps.key_value.as_ref().map(|kv| kv.namespace.as_str()), Some("actor-1"));
//! assert_eq!(store.get("actor-1", b"count")?, Some(b"3".to_vec()));
//! assert_eq!(store.get("actor-2", b"count")?, None);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime::{Caller, Extern};

use crate::error::{Error, Result, abort};

/// Default bound on a key (and on a bucket identifier), in bytes.
pub const DEFAULT_MAX_KEY_BYTES: usize = 1024;
/// Default bound on a value, in bytes (1 MiB).
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1 << 20;
/// The import module of the core-module functions.
pub const CORE_MODULE: &str = "wasmhost:kv";
/// The component interface implemented.
pub const WASI_KEYVALUE_STORE: &str = "wasi:keyvalue/store@0.2.0-draft";
/// Most keys one `list-keys` page returns.
pub const LIST_PAGE_KEYS: usize = 1000;

/// The one table of a store.
const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
/// The bucket of core modules, Extism plugins and the host methods.
pub(crate) const DEFAULT_BUCKET: &str = "";

/// A key-value store: a redb database on disk or in memory. Cheap to
/// clone; clones share the database.
///
/// Host-side methods ([`KvStore::get`] and friends) work on a namespace's
/// default bucket, the one core and Extism guests see; the `*_in` variants
/// name a bucket (a component's `open(identifier)`).
#[derive(Clone)]
pub struct KvStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The open database; `None` after a failed write poisoned it (redb
    /// refuses every operation after an I/O error until the database is
    /// reopened), until the next operation reopens it.
    db: RwLock<Option<Arc<Database>>>,
    /// The file, or `None` in memory.
    path: Option<PathBuf>,
}

impl fmt::Debug for KvStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.path {
            Some(p) => write!(f, "KvStore({})", p.display()),
            None => f.write_str("KvStore(memory)"),
        }
    }
}

/// A failure of the key-value store itself: see [`storage_in`].
fn storage(what: &str, e: impl Into<redb::Error>) -> Error {
    storage_in("key-value store", what, e)
}

/// A failure of a redb database (`store` names it in the message). The
/// environment's failures are `unavailable`, and nothing of the operation
/// was applied: a full disk (and redb's refusal of every later operation
/// until the database is reopened, which [`KvStore::with_database`] does),
/// any other I/O error, and a database another process holds. Anything
/// else is `internal`.
pub(crate) fn storage_in(store: &str, what: &str, e: impl Into<redb::Error>) -> Error {
    let e: redb::Error = e.into();
    match &e {
        redb::Error::Io(io) if is_disk_full(io) => Error::unavailable(format!(
            "{store}: {what}: the disk is full ({io}); nothing of this write was applied"
        )),
        redb::Error::Io(io) => Error::unavailable(format!(
            "{store}: {what}: {io}; nothing of this write was applied"
        )),
        redb::Error::PreviousIo => Error::unavailable(format!(
            "{store}: {what}: an earlier write failed (is the disk full?); the database is \
             reopened on the next operation"
        )),
        redb::Error::DatabaseAlreadyOpen => Error::unavailable(format!(
            "{store}: {what}: another process has it open. One process at a time may use a \
             state directory: stop the other one (a running `wasmhost serve`?), or give this \
             one its own --state"
        )),
        _ => Error::internal(format!("{store}: {what}: {e}")),
    }
}

fn is_disk_full(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
}

/// The prefix of every entry of `(namespace, bucket)`.
fn prefix(namespace: &str, bucket: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(16 + namespace.len() + bucket.len());
    p.extend_from_slice(&(namespace.len() as u64).to_be_bytes());
    p.extend_from_slice(namespace.as_bytes());
    p.extend_from_slice(&(bucket.len() as u64).to_be_bytes());
    p.extend_from_slice(bucket.as_bytes());
    p
}

/// The prefix of every entry of `namespace`, whatever the bucket.
fn namespace_prefix(namespace: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + namespace.len());
    p.extend_from_slice(&(namespace.len() as u64).to_be_bytes());
    p.extend_from_slice(namespace.as_bytes());
    p
}

/// The bucket and key of an entry key with its namespace stripped.
fn split_bucket(rest: &[u8]) -> Result<(String, &[u8])> {
    let bad = || Error::corrupt("key-value entry", "a key without a valid bucket");
    let len = rest.get(..8).ok_or_else(bad)?;
    let len = u64::from_be_bytes(len.try_into().map_err(|_| bad())?) as usize;
    let bucket = rest.get(8..8 + len).ok_or_else(bad)?;
    let bucket = String::from_utf8(bucket.to_vec()).map_err(|_| bad())?;
    Ok((bucket, &rest[8 + len..]))
}

/// One entry of a namespace, from [`KvStore::entries`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KvEntry {
    /// The bucket (`""` is the default bucket).
    pub bucket: String,
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
}

impl KvEntry {
    /// An entry.
    pub fn new(
        bucket: impl Into<String>,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> Self {
        KvEntry {
            bucket: bucket.into(),
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Writes not yet committed: an actor message's key-value changes, which
/// the guest reads back first and which commit with the message (see
/// [`crate::actor`]). Keys are entry keys: namespace and bucket, each
/// prefixed with its length (8 bytes, big-endian), then the guest's key.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KvBatch {
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl KvBatch {
    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// How many keys were written or deleted.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// The writes, by entry key: `Some(value)` set, `None` deleted.
    pub fn writes(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.writes
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
    }

    /// Records a set of `key` in `namespace`'s `bucket`.
    pub fn set(&mut self, namespace: &str, bucket: &str, key: &[u8], value: &[u8]) {
        self.writes
            .insert(entry_key(namespace, bucket, key), Some(value.to_vec()));
    }
}

/// The batch slot of a batched grant: `Some` while a message runs.
pub(crate) type BatchSlot = Arc<Mutex<Option<KvBatch>>>;

fn entry_key(namespace: &str, bucket: &str, key: &[u8]) -> Vec<u8> {
    let mut k = prefix(namespace, bucket);
    k.extend_from_slice(key);
    k
}

impl KvStore {
    /// Opens (or creates) the redb database at `path`, creating its parent
    /// directory if needed. A database is open in one process at a time:
    /// a second process gets an `unavailable` error saying so.
    pub fn open(path: &Path) -> Result<KvStore> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| storage(&format!("cannot create {}", parent.display()), e))?;
        }
        let db = Database::create(path)
            .map_err(|e| storage(&format!("cannot open {}", path.display()), e))?;
        KvStore::with_db(db, Some(path.to_path_buf()))
    }

    /// A store in memory, for tests and state that may be lost.
    pub fn memory() -> KvStore {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .expect("invariant: an in-memory redb database can be created");
        KvStore::with_db(db, None)
            .expect("invariant: an in-memory redb database can create its table")
    }

    fn with_db(db: Database, path: Option<PathBuf>) -> Result<KvStore> {
        let store = KvStore {
            inner: Arc::new(Inner {
                db: RwLock::new(Some(Arc::new(db))),
                path,
            }),
        };
        // Create the table once, so that readers never find it missing.
        store.write(|_| Ok(((), true)))?;
        Ok(store)
    }

    /// The database file, or `None` for a store in memory.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// The value of `key` in `namespace`, if any.
    pub fn get(&self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_in(namespace, DEFAULT_BUCKET, key)
    }

    /// Sets `key` in `namespace` to `value`; durable when this returns.
    pub fn set(&self, namespace: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.set_in(namespace, DEFAULT_BUCKET, key, value)
    }

    /// Deletes `key` from `namespace`; whether it existed.
    pub fn delete(&self, namespace: &str, key: &[u8]) -> Result<bool> {
        self.delete_in(namespace, DEFAULT_BUCKET, key)
    }

    /// Every key of `namespace`, in byte order.
    pub fn keys(&self, namespace: &str) -> Result<Vec<Vec<u8>>> {
        self.keys_in(namespace, DEFAULT_BUCKET)
    }

    /// Every entry of `namespace`, in every bucket, in byte order.
    pub fn entries(&self, namespace: &str) -> Result<Vec<KvEntry>> {
        let skip = namespace_prefix(namespace).len();
        self.raw_entries(namespace)?
            .into_iter()
            .map(|(k, value)| {
                let (bucket, key) = split_bucket(&k[skip..])?;
                Ok(KvEntry {
                    bucket,
                    key: key.to_vec(),
                    value,
                })
            })
            .collect()
    }

    /// Every entry of `namespace` by its entry key (namespace and bucket
    /// prefixed, as [`KvBatch::writes`] names them): what
    /// [`KvStore::replace_raw`] takes back. The cluster moves an actor's
    /// data between nodes this way.
    pub fn raw_entries(&self, namespace: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let p = namespace_prefix(namespace);
        let table = self.read()?;
        let range = table
            .range(p.as_slice()..)
            .map_err(|e| storage("cannot list", e))?;
        let mut out = Vec::new();
        for entry in range {
            let (k, v) = entry.map_err(|e| storage("cannot list", e))?;
            if !k.value().starts_with(&p) {
                break;
            }
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Replaces every entry of `namespace` with `entries` (entry keys, as
    /// [`KvStore::raw_entries`] gives them; keys of other namespaces are
    /// refused), in one transaction.
    pub fn replace_raw(&self, namespace: &str, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        let p = namespace_prefix(namespace);
        if let Some((k, _)) = entries.iter().find(|(k, _)| !k.starts_with(&p)) {
            return Err(Error::bad_input(format!(
                "key-value store: an entry key of {} bytes is not in namespace `{namespace}`",
                k.len()
            )));
        }
        let old: Vec<Vec<u8>> = self
            .raw_entries(namespace)?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        self.write(|table| {
            for k in &old {
                table
                    .remove(k.as_slice())
                    .map_err(|e| storage("cannot delete", e))?;
            }
            for (k, v) in entries {
                table
                    .insert(k.as_slice(), v.as_slice())
                    .map_err(|e| storage("cannot write", e))?;
            }
            Ok(((), !old.is_empty() || !entries.is_empty()))
        })
    }

    /// Applies `batch` in one transaction of its own.
    pub fn apply_batch(&self, batch: &KvBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.with_database(|db| {
            let txn = db
                .begin_write()
                .map_err(|e| storage("cannot begin a write", e))?;
            KvStore::apply(&txn, batch)?;
            txn.commit().map_err(|e| storage("cannot commit", e))
        })
    }

    /// Deletes every entry of `namespace`, in every bucket; how many.
    pub fn purge(&self, namespace: &str) -> Result<usize> {
        let p = namespace_prefix(namespace);
        self.write(|table| {
            let keys: Vec<Vec<u8>> = {
                let range = table
                    .range(p.as_slice()..)
                    .map_err(|e| storage("cannot list", e))?;
                let mut keys = Vec::new();
                for entry in range {
                    let (k, _) = entry.map_err(|e| storage("cannot list", e))?;
                    if !k.value().starts_with(&p) {
                        break;
                    }
                    keys.push(k.value().to_vec());
                }
                keys
            };
            for k in &keys {
                table
                    .remove(k.as_slice())
                    .map_err(|e| storage("cannot delete", e))?;
            }
            Ok((keys.len(), !keys.is_empty()))
        })
    }

    /// Runs `f` on the database, for callers that write their own tables in
    /// the same transactions (the actors' records) and for this store's own
    /// reads and writes.
    ///
    /// After an I/O error (a full disk), redb refuses every operation until
    /// the database is reopened. So when `f` fails with `unavailable`, this
    /// store forgets that database, and the next operation reopens the file
    /// (which recovers its last committed state): once there is room again,
    /// the store works again, with no restart.
    pub(crate) fn with_database<T>(&self, f: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        let db = self.database()?;
        let result = f(&db);
        if result
            .as_ref()
            .is_err_and(|e| e.code() == crate::ErrorCode::Unavailable)
            && self.inner.path.is_some()
        {
            let mut current = self.inner.db.write().unwrap_or_else(|p| p.into_inner());
            if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &db)) {
                *current = None;
            }
        }
        result
    }

    /// The open database, reopened if a failure made [`KvStore::with_database`]
    /// forget it.
    fn database(&self) -> Result<Arc<Database>> {
        if let Some(db) = &*self.inner.db.read().unwrap_or_else(|p| p.into_inner()) {
            return Ok(db.clone());
        }
        let mut current = self.inner.db.write().unwrap_or_else(|p| p.into_inner());
        if let Some(db) = &*current {
            return Ok(db.clone());
        }
        let Some(path) = &self.inner.path else {
            return Err(Error::internal(
                "key-value store: the in-memory database is gone",
            ));
        };
        // An operation that still holds the old database keeps its file
        // lock until it ends: then this fails, and the next call retries.
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::unavailable(
                "key-value store: an operation that began before a failed write still holds \
                 the database; it is reopened on the next operation",
            ),
            e => storage("cannot reopen the database after a failed write", e),
        })?;
        let db = Arc::new(db);
        *current = Some(db.clone());
        Ok(db)
    }

    /// Applies `batch` to the key-value table inside `txn`.
    pub(crate) fn apply(txn: &redb::WriteTransaction, batch: &KvBatch) -> Result<()> {
        if batch.writes.is_empty() {
            return Ok(());
        }
        let mut table = txn
            .open_table(TABLE)
            .map_err(|e| storage("cannot open the table", e))?;
        for (k, v) in &batch.writes {
            match v {
                Some(v) => table.insert(k.as_slice(), v.as_slice()).map(drop),
                None => table.remove(k.as_slice()).map(drop),
            }
            .map_err(|e| storage("cannot write", e))?;
        }
        Ok(())
    }

    /// The table, for reading.
    fn read(&self) -> Result<redb::ReadOnlyTable<&'static [u8], &'static [u8]>> {
        self.with_database(|db| {
            db.begin_read()
                .map_err(|e| storage("cannot begin a read", e))?
                .open_table(TABLE)
                .map_err(|e| storage("cannot open the table", e))
        })
    }

    /// Runs `f` on the table in a write transaction, which is committed
    /// (durably: redb's default durability is immediate) when `f` reports a
    /// change, and aborted, with no sync, when it does not.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut redb::Table<'_, &'static [u8], &'static [u8]>) -> Result<(T, bool)>,
    ) -> Result<T> {
        self.with_database(|db| {
            let txn = db
                .begin_write()
                .map_err(|e| storage("cannot begin a write", e))?;
            let (value, changed) = {
                let mut table = txn
                    .open_table(TABLE)
                    .map_err(|e| storage("cannot open the table", e))?;
                f(&mut table)?
            };
            if changed {
                txn.commit().map_err(|e| storage("cannot commit", e))?;
            } else {
                txn.abort().map_err(|e| storage("cannot abort", e))?;
            }
            Ok(value)
        })
    }

    /// [`KvStore::get`] in a bucket (`""` is the default bucket).
    pub fn get_in(&self, namespace: &str, bucket: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let k = entry_key(namespace, bucket, key);
        let value = self
            .read()?
            .get(k.as_slice())
            .map_err(|e| storage("cannot read", e))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// [`KvStore::set`] in a bucket.
    pub fn set_in(&self, namespace: &str, bucket: &str, key: &[u8], value: &[u8]) -> Result<()> {
        let k = entry_key(namespace, bucket, key);
        self.write(|table| {
            table
                .insert(k.as_slice(), value)
                .map_err(|e| storage("cannot write", e))?;
            Ok(((), true))
        })
    }

    /// [`KvStore::delete`] in a bucket.
    pub fn delete_in(&self, namespace: &str, bucket: &str, key: &[u8]) -> Result<bool> {
        let k = entry_key(namespace, bucket, key);
        self.write(|table| {
            let existed = table
                .remove(k.as_slice())
                .map_err(|e| storage("cannot delete", e))?
                .is_some();
            Ok((existed, existed))
        })
    }

    /// [`KvStore::keys`] of a bucket.
    pub fn keys_in(&self, namespace: &str, bucket: &str) -> Result<Vec<Vec<u8>>> {
        Ok(self.page(namespace, bucket, 0, usize::MAX)?.0)
    }

    /// Up to `limit` keys of a bucket after the first `skip`, and whether
    /// more follow.
    fn page(
        &self,
        namespace: &str,
        bucket: &str,
        skip: usize,
        limit: usize,
    ) -> Result<(Vec<Vec<u8>>, bool)> {
        let p = prefix(namespace, bucket);
        let table = self.read()?;
        let range = table
            .range(p.as_slice()..)
            .map_err(|e| storage("cannot list", e))?;
        let mut keys = Vec::new();
        for (i, entry) in range.enumerate() {
            let (k, _) = entry.map_err(|e| storage("cannot list", e))?;
            let Some(key) = k.value().strip_prefix(p.as_slice()) else {
                return Ok((keys, false));
            };
            if i < skip {
                continue;
            }
            if keys.len() == limit {
                return Ok((keys, true));
            }
            keys.push(key.to_vec());
        }
        Ok((keys, false))
    }
}

/// The key-value grant: one namespace of a store, with size bounds.
#[derive(Clone)]
#[non_exhaustive]
pub struct KeyValue {
    /// Where the guest's keys live; no guest reaches another namespace.
    pub namespace: String,
    /// The store.
    pub store: KvStore,
    /// Longest key (and bucket identifier), in bytes.
    pub max_key_bytes: usize,
    /// Longest value, in bytes.
    pub max_value_bytes: usize,
    /// Where writes go while a message runs, for a batched grant.
    pub(crate) batch: Option<BatchSlot>,
}

impl fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyValue")
            .field("namespace", &self.namespace)
            .field("store", &self.store)
            .field("max_key_bytes", &self.max_key_bytes)
            .field("max_value_bytes", &self.max_value_bytes)
            .finish()
    }
}

/// Equal when the namespace and bounds are, and the store is the same one.
impl PartialEq for KeyValue {
    fn eq(&self, other: &Self) -> bool {
        self.namespace == other.namespace
            && self.max_key_bytes == other.max_key_bytes
            && self.max_value_bytes == other.max_value_bytes
            && Arc::ptr_eq(&self.store.inner, &other.store.inner)
            && match (&self.batch, &other.batch) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

impl Eq for KeyValue {}

impl KeyValue {
    /// Namespace `namespace` of `store`, with the default bounds.
    pub fn new(store: KvStore, namespace: impl Into<String>) -> Self {
        KeyValue {
            namespace: namespace.into(),
            store,
            max_key_bytes: DEFAULT_MAX_KEY_BYTES,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            batch: None,
        }
    }

    /// The namespace of a module's stateless calls: `module:sha256:<hex>`
    /// of its digest, so every call of the same module bytes sees the same
    /// keys and no other module does (actors use `actor:<id>`).
    pub fn for_module(store: KvStore, digest: crate::Digest) -> Self {
        KeyValue::new(store, format!("module:{digest}"))
    }

    /// Sets [`KeyValue::max_key_bytes`].
    pub fn max_key_bytes(mut self, bytes: usize) -> Self {
        self.max_key_bytes = bytes;
        self
    }

    /// Sets [`KeyValue::max_value_bytes`].
    pub fn max_value_bytes(mut self, bytes: usize) -> Self {
        self.max_value_bytes = bytes;
        self
    }

    /// The same grant, batched through `slot` (see [`KvBatch`]).
    pub(crate) fn batched(mut self, slot: BatchSlot) -> Self {
        self.batch = Some(slot);
        self
    }

    /// Runs `f` on the running message's batch, if there is one.
    fn in_batch<T>(&self, f: impl FnOnce(&mut KvBatch) -> T) -> Option<T> {
        let slot = self.batch.as_ref()?;
        let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_mut().map(f)
    }

    /// The guest's view of `key` in `bucket`: its batch first, then the store.
    pub(crate) fn get_in(&self, bucket: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let k = entry_key(&self.namespace, bucket, key);
        match self.in_batch(|b| b.writes.get(&k).cloned()).flatten() {
            Some(pending) => Ok(pending),
            None => self.store.get_in(&self.namespace, bucket, key),
        }
    }

    /// The guest sets `key` in `bucket`.
    pub(crate) fn set_in(&self, bucket: &str, key: &[u8], value: &[u8]) -> Result<()> {
        let k = entry_key(&self.namespace, bucket, key);
        let mut value = Some(value.to_vec());
        if self
            .in_batch(|b| b.writes.insert(k, value.take()))
            .is_none()
        {
            let value = value.unwrap_or_default();
            return self.store.set_in(&self.namespace, bucket, key, &value);
        }
        Ok(())
    }

    /// The guest deletes `key` from `bucket`; whether it existed.
    pub(crate) fn delete_in(&self, bucket: &str, key: &[u8]) -> Result<bool> {
        if self.batch.is_none() {
            return self.store.delete_in(&self.namespace, bucket, key);
        }
        let existed = self.get_in(bucket, key)?.is_some();
        let k = entry_key(&self.namespace, bucket, key);
        if self.in_batch(|b| b.writes.insert(k, None)).is_none() {
            return self.store.delete_in(&self.namespace, bucket, key);
        }
        Ok(existed)
    }

    /// Up to `limit` keys of `bucket` after the first `skip`, batch
    /// included, and whether more follow.
    pub(crate) fn page(
        &self,
        bucket: &str,
        skip: usize,
        limit: usize,
    ) -> Result<(Vec<Vec<u8>>, bool)> {
        let p = prefix(&self.namespace, bucket);
        let pending: Option<Vec<(Vec<u8>, bool)>> = self.in_batch(|b| {
            b.writes
                .range(p.clone()..)
                .take_while(|(k, _)| k.starts_with(&p))
                .map(|(k, v)| (k[p.len()..].to_vec(), v.is_some()))
                .collect()
        });
        let pending = match pending {
            Some(pending) if !pending.is_empty() => pending,
            _ => return self.store.page(&self.namespace, bucket, skip, limit),
        };
        let mut keys: std::collections::BTreeSet<Vec<u8>> = self
            .store
            .keys_in(&self.namespace, bucket)?
            .into_iter()
            .collect();
        for (k, present) in pending {
            if present {
                keys.insert(k);
            } else {
                keys.remove(&k);
            }
        }
        let more = keys.len() > skip.saturating_add(limit);
        Ok((keys.into_iter().skip(skip).take(limit).collect(), more))
    }

    pub(crate) fn check_key(&self, what: &str, len: usize) -> Result<()> {
        if len > self.max_key_bytes {
            return Err(Error::MemoryLimit {
                message: format!(
                    "key-value: the {what} is {len} bytes, more than the {}-byte limit",
                    self.max_key_bytes
                ),
            });
        }
        Ok(())
    }

    pub(crate) fn check_value(&self, len: usize) -> Result<()> {
        if len > self.max_value_bytes {
            return Err(Error::MemoryLimit {
                message: format!(
                    "key-value: the value is {len} bytes, more than the {}-byte limit",
                    self.max_value_bytes
                ),
            });
        }
        Ok(())
    }
}

/// What the key-value capability needs of a store's data: the grant, and
/// the resource table components keep their open buckets in.
pub(crate) trait KvHost: Send + 'static {
    /// The call's grant, if any.
    fn kv(&self) -> Option<&KeyValue>;
    /// The grant with the store's resource table.
    fn kv_ctx(&mut self) -> KvCtx<'_>;
}

/// The key-value capability's view of a store: what the component bindings
/// are implemented on (as wasmtime-wasi's `WasiCtxView`).
pub(crate) struct KvCtx<'a> {
    pub(crate) kv: Option<&'a KeyValue>,
    pub(crate) table: &'a mut ResourceTable,
}

/// The grant of a store whose host functions are linked. Linking follows
/// the grants, so this fails only if the two disagree.
pub(crate) fn grant<T: KvHost>(state: &T) -> wasmtime::Result<&KeyValue> {
    state.kv().ok_or_else(|| {
        abort(Error::CapabilityDenied {
            capability: "key-value".to_string(),
            detail: "the guest called a key-value function".to_string(),
        })
    })
}

// ----- core modules: wasmhost:kv ------------------------------------------

type C<'a, T> = Caller<'a, T>;

fn memory<T>(caller: &mut C<'_, T>, function: &str) -> wasmtime::Result<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(mem)) => Ok(mem),
        _ => Err(abort(Error::Trap {
            trap_code: None,
            message: format!(
                "{CORE_MODULE}::{function} needs the guest to export its memory as `memory`"
            ),
            backtrace: None,
        })),
    }
}

/// The guest's bytes `ptr..ptr + len`, or a trap naming them.
fn range(memory_len: usize, ptr: i32, len: usize, what: &str) -> wasmtime::Result<(usize, usize)> {
    let start = ptr as u32 as usize;
    start
        .checked_add(len)
        .filter(|end| *end <= memory_len)
        .map(|end| (start, end))
        .ok_or_else(|| {
            abort(Error::Trap {
                trap_code: None,
                message: format!(
                    "key-value: {what} at {start}..{} is outside the guest's {memory_len}-byte memory",
                    start as u64 + len as u64
                ),
                backtrace: None,
            })
        })
}

fn core_get<T: KvHost>(
    mut caller: C<'_, T>,
    key_ptr: i32,
    key_len: i32,
    buf_ptr: i32,
    buf_cap: i32,
) -> wasmtime::Result<i64> {
    let mem = memory(&mut caller, "get")?;
    let (data, state) = mem.data_and_store_mut(&mut caller);
    let kv = grant(state)?;
    let key_len = key_len as u32 as usize;
    kv.check_key("key", key_len).map_err(abort)?;
    let (s, e) = range(data.len(), key_ptr, key_len, "the key")?;
    let Some(value) = kv.get_in(DEFAULT_BUCKET, &data[s..e]).map_err(abort)? else {
        return Ok(-1);
    };
    if value.len() <= buf_cap as u32 as usize {
        let (s, e) = range(data.len(), buf_ptr, value.len(), "the value buffer")?;
        data[s..e].copy_from_slice(&value);
    }
    Ok(value.len() as i64)
}

fn core_set<T: KvHost>(
    mut caller: C<'_, T>,
    key_ptr: i32,
    key_len: i32,
    val_ptr: i32,
    val_len: i32,
) -> wasmtime::Result<i32> {
    let mem = memory(&mut caller, "set")?;
    let (data, state) = mem.data_and_store_mut(&mut caller);
    let kv = grant(state)?;
    let (key_len, val_len) = (key_len as u32 as usize, val_len as u32 as usize);
    kv.check_key("key", key_len).map_err(abort)?;
    kv.check_value(val_len).map_err(abort)?;
    let (ks, ke) = range(data.len(), key_ptr, key_len, "the key")?;
    let (vs, ve) = range(data.len(), val_ptr, val_len, "the value")?;
    kv.set_in(DEFAULT_BUCKET, &data[ks..ke], &data[vs..ve])
        .map_err(abort)?;
    Ok(0)
}

fn core_delete<T: KvHost>(
    mut caller: C<'_, T>,
    key_ptr: i32,
    key_len: i32,
) -> wasmtime::Result<i32> {
    let mem = memory(&mut caller, "delete")?;
    let (data, state) = mem.data_and_store_mut(&mut caller);
    let kv = grant(state)?;
    let key_len = key_len as u32 as usize;
    kv.check_key("key", key_len).map_err(abort)?;
    let (s, e) = range(data.len(), key_ptr, key_len, "the key")?;
    let existed = kv.delete_in(DEFAULT_BUCKET, &data[s..e]).map_err(abort)?;
    Ok(i32::from(existed))
}

// ----- components: wasi:keyvalue/store@0.2.0-draft -------------------------

mod bindings {
    wasmtime::component::bindgen!({
        inline: r#"
            package wasi:keyvalue@0.2.0-draft;

            interface store {
                variant error {
                    no-such-store,
                    access-denied,
                    other(string),
                }

                record key-response {
                    keys: list<string>,
                    cursor: option<u64>,
                }

                open: func(identifier: string) -> result<bucket, error>;

                resource bucket {
                    get: func(key: string) -> result<option<list<u8>>, error>;
                    set: func(key: string, value: list<u8>) -> result<_, error>;
                    delete: func(key: string) -> result<_, error>;
                    exists: func(key: string) -> result<bool, error>;
                    list-keys: func(cursor: option<u64>) -> result<key-response, error>;
                }
            }

            world host {
                import store;
            }
        "#,
        world: "host",
        imports: { default: trappable },
        with: { "wasi:keyvalue/store.bucket": super::component::Bucket },
    });
}

mod component {
    /// A component's open bucket: a name inside the grant's namespace.
    pub struct Bucket {
        pub(super) name: String,
    }
}

use self::bindings::wasi::keyvalue::store::{self as wit, KeyResponse};
use self::component::Bucket;

/// The component bindings' view of a store (see [`KvCtx`]).
struct KvData;

impl HasData for KvData {
    type Data<'a> = KvCtx<'a>;
}

type WitResult<T> = wasmtime::Result<std::result::Result<T, wit::Error>>;

/// A wasmhost error as the guest sees it: `other` with the message.
fn wit_error(e: Error) -> wit::Error {
    match e {
        Error::MemoryLimit { message } | Error::Internal { message } => wit::Error::Other(message),
        other => wit::Error::Other(other.to_string()),
    }
}

impl KvCtx<'_> {
    /// The grant and the bucket name of `bucket`, or the error the guest gets.
    fn bucket(
        &self,
        bucket: &Resource<Bucket>,
    ) -> wasmtime::Result<std::result::Result<(&KeyValue, &str), wit::Error>> {
        let name = self.table.get(bucket)?.name.as_str();
        Ok(match self.kv {
            Some(kv) => Ok((kv, name)),
            None => Err(wit::Error::AccessDenied),
        })
    }
}

/// Runs `f` on the bucket's grant and name; a wasmhost error becomes the
/// guest's `other(...)`.
fn with_bucket<T>(
    state: &KvCtx<'_>,
    bucket: &Resource<Bucket>,
    f: impl FnOnce(&KeyValue, &str) -> Result<T>,
) -> WitResult<T> {
    Ok(match state.bucket(bucket)? {
        Ok((kv, name)) => f(kv, name).map_err(wit_error),
        Err(e) => Err(e),
    })
}

impl wit::Host for KvCtx<'_> {
    fn open(&mut self, identifier: String) -> WitResult<Resource<Bucket>> {
        let Some(kv) = self.kv else {
            return Ok(Err(wit::Error::AccessDenied));
        };
        if let Err(e) = kv.check_key("bucket identifier", identifier.len()) {
            return Ok(Err(wit_error(e)));
        }
        let name = if identifier == "default" {
            DEFAULT_BUCKET.to_string()
        } else {
            identifier
        };
        Ok(Ok(self.table.push(Bucket { name })?))
    }
}

impl wit::HostBucket for KvCtx<'_> {
    fn get(&mut self, bucket: Resource<Bucket>, key: String) -> WitResult<Option<Vec<u8>>> {
        with_bucket(self, &bucket, |kv, name| {
            kv.check_key("key", key.len())?;
            kv.get_in(name, key.as_bytes())
        })
    }

    fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> WitResult<()> {
        with_bucket(self, &bucket, |kv, name| {
            kv.check_key("key", key.len())?;
            kv.check_value(value.len())?;
            kv.set_in(name, key.as_bytes(), &value)
        })
    }

    fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> WitResult<()> {
        with_bucket(self, &bucket, |kv, name| {
            kv.check_key("key", key.len())?;
            kv.delete_in(name, key.as_bytes()).map(drop)
        })
    }

    fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> WitResult<bool> {
        with_bucket(self, &bucket, |kv, name| {
            kv.check_key("key", key.len())?;
            Ok(kv.get_in(name, key.as_bytes())?.is_some())
        })
    }

    fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> WitResult<KeyResponse> {
        with_bucket(self, &bucket, |kv, name| {
            let skip = usize::try_from(cursor.unwrap_or(0)).unwrap_or(usize::MAX);
            let (keys, more) = kv.page(name, skip, LIST_PAGE_KEYS)?;
            let next = skip.saturating_add(keys.len()) as u64;
            Ok(KeyResponse {
                keys: keys
                    .iter()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .collect(),
                cursor: more.then_some(next),
            })
        })
    }

    fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

/// Adds `wasmhost:kv` to the core linker and `wasi:keyvalue/store` to the
/// component linker. (The Extism `kv_*` functions are the Extism kernel's,
/// in `crate::kernel::extism`.)
pub(crate) fn add_to_linkers<T: KvHost>(
    core: &mut wasmtime::Linker<T>,
    component: &mut wasmtime::component::Linker<T>,
) -> Result<()> {
    use super::link_setup;
    core.func_wrap(CORE_MODULE, "get", core_get::<T>)
        .map_err(link_setup)?;
    core.func_wrap(CORE_MODULE, "set", core_set::<T>)
        .map_err(link_setup)?;
    core.func_wrap(CORE_MODULE, "delete", core_delete::<T>)
        .map_err(link_setup)?;
    wit::add_to_linker::<T, KvData>(component, T::kv_ctx).map_err(link_setup)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environments_failures_are_unavailable_and_the_rest_internal() {
        use crate::ErrorCode;
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        let e = storage("cannot commit", redb::StorageError::Io(full));
        assert_eq!(e.code(), ErrorCode::Unavailable);
        assert!(e.to_string().contains("the disk is full"), "{e}");
        let e = storage("cannot begin a write", redb::StorageError::PreviousIo);
        assert_eq!(e.code(), ErrorCode::Unavailable);
        let e = storage_in(
            "actor store",
            "cannot open",
            redb::DatabaseError::DatabaseAlreadyOpen,
        );
        assert_eq!(e.code(), ErrorCode::Unavailable);
        assert!(e.to_string().contains("another process has it open"), "{e}");
        let e = storage(
            "cannot read",
            redb::StorageError::Corrupted("bad page".into()),
        );
        assert_eq!(e.code(), ErrorCode::Internal);
    }

    #[test]
    fn a_second_open_of_one_file_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.redb");
        let _first = KvStore::open(&path).unwrap();
        let e = KvStore::open(&path).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::Unavailable, "{e}");
    }

    #[test]
    fn namespaces_and_buckets_do_not_collide() {
        let s = KvStore::memory();
        s.set("a", b"b/c", b"1").unwrap();
        s.set("a/b", b"c", b"2").unwrap();
        s.set_in("a", "b", b"c", b"3").unwrap();
        assert_eq!(s.get("a", b"b/c").unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.get("a/b", b"c").unwrap(), Some(b"2".to_vec()));
        assert_eq!(s.get_in("a", "b", b"c").unwrap(), Some(b"3".to_vec()));
        assert_eq!(s.keys("a").unwrap(), vec![b"b/c".to_vec()]);
        assert_eq!(s.keys_in("a", "b").unwrap(), vec![b"c".to_vec()]);
        assert_eq!(s.keys("").unwrap(), Vec::<Vec<u8>>::new());
        assert!(s.delete("a", b"b/c").unwrap());
        assert!(!s.delete("a", b"b/c").unwrap());
        assert_eq!(s.get("a", b"b/c").unwrap(), None);
    }

    #[test]
    fn pages_follow_each_other() {
        let s = KvStore::memory();
        for i in 0..5u8 {
            s.set("n", &[i], b"").unwrap();
        }
        s.set("m", b"x", b"").unwrap();
        let (p1, more) = s.page("n", "", 0, 2).unwrap();
        assert_eq!((p1, more), (vec![vec![0], vec![1]], true));
        let (p3, more) = s.page("n", "", 4, 2).unwrap();
        assert_eq!((p3, more), (vec![vec![4]], false));
        let (p, more) = s.page("n", "", 3, 2).unwrap();
        assert_eq!((p, more), (vec![vec![3], vec![4]], false));
    }

    #[test]
    fn file_store_reopens_with_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/kv.redb");
        let s = KvStore::open(&path).unwrap();
        s.set("ns", b"k", b"v").unwrap();
        drop(s);
        let s = KvStore::open(&path).unwrap();
        assert_eq!(s.get("ns", b"k").unwrap(), Some(b"v".to_vec()));
        assert_eq!(s.path(), Some(path.as_path()));
    }

    #[test]
    fn grants_compare_by_store_identity() {
        let s = KvStore::memory();
        let a = KeyValue::new(s.clone(), "x");
        assert_eq!(a, KeyValue::new(s, "x"));
        assert_ne!(a, KeyValue::new(KvStore::memory(), "x"));
        assert_ne!(a, a.clone().max_value_bytes(1));
    }
}
