//! Actors: named, long-lived instances that process one message at a time.
//!
//! An actor is an id plus an [`ActorSpec`] (a loaded [`Module`], optionally
//! a forced [`Convention`] and its own [`Limits`]). It holds an
//! [`Instance`], so memory and globals persist from one message to the next.
//! An [`ActorSystem`] owns many actors:
//!
//! * **Order.** Messages to one actor run one at a time, in the order they
//!   arrived; different actors run concurrently. Each actor's mailbox is a
//!   [`tokio::sync::Mutex`], whose waiters are served first in, first out
//!   (a `std::sync::Mutex` makes no such promise).
//!   [`ActorSystem::send_async`] awaits its turn without blocking the
//!   executor and runs the guest on it, through wasmtime's async API (the
//!   guest yields to it once it has run for an epoch tick);
//!   [`ActorSystem::send`] is the same, waited for in place. Both queue on
//!   the same lock.
//! * **Creation.** Sending to an unknown id creates the actor from the spec
//!   given with the message; without one the send fails with `not_found`.
//!   The spec of a message to an existing actor is ignored, unless it names
//!   another module (then `bad_input`: remove the actor first).
//! * **Passivation.** An actor idle for longer than
//!   [`ActorConfig::passivate_after`] loses its instance (one background
//!   thread per system looks for them; [`ActorSystem::passivate_idle`] does
//!   it on demand). The next message instantiates the module again: **its
//!   in-memory state is lost, its durable key-value state is not.** An actor
//!   busy with (or waiting for) a message is never passivated.
//! * **Durable state.** With [`ActorConfig::kv`] set, every actor is granted
//!   the key-value capability in the namespace `actor:<id>` (see
//!   [`crate::capabilities::kv`]), so no actor reaches another's keys. Those
//!   keys outlive passivation, restarts and [`ActorSystem::remove`].
//! * **Failures.** A message whose call traps (or times out, or runs out of
//!   fuel or memory) gets that error back, and the actor starts over from a
//!   fresh instance before its next message ([`ActorInfo::restarts`]).
//! * **Limits.** [`ActorSpec::limits`], else [`ActorConfig::limits`], apply
//!   to every message of the actor.
//!
//! **Many actors.** Every live actor holds one instance. The default
//! runtime's pooling allocator has [`crate::DEFAULT_POOL_INSTANCES`] slots,
//! shared with every other call: for thousands of live actors build the
//! runtime with `RuntimeConfig::pool(None)` (on-demand allocation: each
//! instance maps only what it uses) or a pool with enough slots. A live
//! actor costs the memory its instance touched (an AssemblyScript counter:
//! a few tens of KiB).
//!
//! ```
//! use std::time::Duration;
//! use wasmhost::{ActorConfig, ActorSpec, ActorSystem, Runtime, RuntimeConfig, Source};
//! # fn main() -> wasmhost::Result<()> {
//! let rt = Runtime::new(RuntimeConfig::default().pool(None))?;
//! let module = rt.load(&Source::Bytes(br#"(module (global $n (mut i32) (i32.const 0))
//!     (func (export "add") (param i32) (result i32)
//!       global.get $n local.get 0 i32.add global.set $n global.get $n))"#.to_vec()))?;
//! let actors = ActorSystem::new(ActorConfig::default());
//! let spec = ActorSpec::new(module);
//! assert_eq!(actors.send("a", Some(&spec), "add", "5")?.value.integer()?, 5);
//! assert_eq!(actors.send("a", None, "add", "3")?.value.integer()?, 8);
//! assert_eq!(actors.send("b", Some(&spec), "add", "1")?.value.integer()?, 1);
//! assert!(actors.send("c", None, "add", "1").is_err()); // not_found
//! actors.passivate_idle_for(Duration::ZERO);
//! assert_eq!(actors.send("a", None, "add", "1")?.value.integer()?, 1); // in-memory state lost
//! # Ok(()) }
//! ```

mod store;
mod wire;

pub use store::{ActorCommit, ActorRecord, ActorStore, REPLY_WINDOW};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak, mpsc};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::call::{CallOptions, Outcome};
use crate::capabilities::kv::BatchSlot;
use crate::capabilities::{KeyValue, KvBatch, KvStore};
use crate::code::{Digest, ModuleKind};
use crate::convention::{Convention, Data};
use crate::error::{Error, ErrorCode, Result};
use crate::exec::block_on;
use crate::instance::Instance;
use crate::limits::Limits;
use crate::module::Module;
use crate::snapshot::Snapshot;

/// Longest actor id, in bytes.
pub const MAX_ACTOR_ID_BYTES: usize = 256;

/// Longest message id, in bytes.
pub const MAX_MESSAGE_ID_BYTES: usize = 256;

/// Default idle time before an actor is passivated: 5 minutes.
pub const DEFAULT_PASSIVATE_AFTER: Duration = Duration::from_secs(300);

/// When an actor's instance state (memory, globals, Extism vars) is saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum SnapshotPolicy {
    /// After every message, in the same transaction as its key-value writes
    /// and reply: nothing acknowledged is ever lost. The default.
    #[default]
    EveryMessage,
    /// When the actor passivates and at [`ActorSystem::checkpoint`]
    /// (what `wasmhost serve` does on SIGTERM): faster; a crash loses the
    /// in-memory state of the messages since the last snapshot (their
    /// key-value writes are kept).
    OnPassivation,
    /// Never: the in-memory state lasts as long as the instance (the
    /// behaviour of actors before snapshots). The only policy for
    /// components, which cannot be snapshotted.
    Never,
}

impl SnapshotPolicy {
    /// Every policy, by name.
    pub const ALL: [SnapshotPolicy; 3] = [
        SnapshotPolicy::EveryMessage,
        SnapshotPolicy::OnPassivation,
        SnapshotPolicy::Never,
    ];

    /// `every-message`, `on-passivation` or `never`.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotPolicy::EveryMessage => "every-message",
            SnapshotPolicy::OnPassivation => "on-passivation",
            SnapshotPolicy::Never => "never",
        }
    }
}

impl std::fmt::Display for SnapshotPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SnapshotPolicy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        SnapshotPolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                Error::bad_input(format!(
                    "snapshot policy `{s}`: expected every-message, on-passivation or never"
                ))
            })
    }
}

/// Settings of an [`ActorSystem`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ActorConfig {
    /// An actor idle for longer than this loses its instance (its state is
    /// kept as its policy says). [`Duration::MAX`] never passivates on its own.
    pub passivate_after: Duration,
    /// The store behind every actor's key-value grant (namespace
    /// `actor:<id>`); `None` grants no key-value state.
    pub kv: Option<KvStore>,
    /// Where actors' records, snapshots and replies live; `None` keeps
    /// nothing (then message ids cannot be used).
    pub records: Option<Arc<dyn ActorStore>>,
    /// When actors' state is saved, unless their spec says otherwise.
    pub snapshots: SnapshotPolicy,
    /// Limits of actors whose spec sets none.
    pub limits: Limits,
}

impl Default for ActorConfig {
    fn default() -> Self {
        ActorConfig {
            passivate_after: DEFAULT_PASSIVATE_AFTER,
            kv: None,
            records: None,
            snapshots: SnapshotPolicy::default(),
            limits: Limits::default(),
        }
    }
}

impl ActorConfig {
    /// Sets the idle time before passivation.
    pub fn passivate_after(mut self, after: Duration) -> Self {
        self.passivate_after = after;
        self
    }

    /// Grants every actor durable key-value state in `store`, and keeps
    /// actors' records, snapshots and replies there too.
    pub fn kv(mut self, store: KvStore) -> Self {
        self.records = Some(Arc::new(store.clone()));
        self.kv = Some(store);
        self
    }

    /// Keeps actors' records, snapshots and replies in `records` (for
    /// example the cluster's store) rather than in the key-value store.
    pub fn records(mut self, records: Arc<dyn ActorStore>) -> Self {
        self.records = Some(records);
        self
    }

    /// Sets the default snapshot policy.
    pub fn snapshots(mut self, policy: SnapshotPolicy) -> Self {
        self.snapshots = policy;
        self
    }

    /// Sets the default limits of actors.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// What an actor is made of: the module (with its capabilities), how its
/// functions are called, its limits and its snapshot policy.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ActorSpec {
    /// The module; its capabilities are the actor's (plus key-value state
    /// when the system has a store).
    pub module: Module,
    /// The calling convention of every message; detected per function when
    /// `None`.
    pub convention: Option<Convention>,
    /// The actor's limits; the system's [`ActorConfig::limits`] when `None`.
    pub limits: Option<Limits>,
    /// The actor's snapshot policy; the system's when `None` (for a
    /// component, [`SnapshotPolicy::Never`]).
    pub snapshots: Option<SnapshotPolicy>,
    /// Whether a stored actor of another module starts over with this one
    /// (its snapshot dropped, its key-value data kept) rather than being
    /// refused with `snapshot_mismatch`.
    pub fresh: bool,
}

impl ActorSpec {
    /// An actor of `module`, convention detected, the system's limits and
    /// policy.
    pub fn new(module: Module) -> Self {
        ActorSpec {
            module,
            convention: None,
            limits: None,
            snapshots: None,
            fresh: false,
        }
    }

    /// Forces a calling convention.
    pub fn convention(mut self, convention: Convention) -> Self {
        self.convention = Some(convention);
        self
    }

    /// Sets the actor's own limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Sets the actor's snapshot policy.
    pub fn snapshots(mut self, policy: SnapshotPolicy) -> Self {
        self.snapshots = Some(policy);
        self
    }

    /// Sets [`ActorSpec::fresh`].
    pub fn fresh(mut self, fresh: bool) -> Self {
        self.fresh = fresh;
        self
    }
}

/// What is known of one actor, from [`ActorSystem::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActorInfo {
    /// The actor's id.
    pub id: String,
    /// The module's name (its digest's short form for an actor known only
    /// from its stored record).
    pub module: String,
    /// The module's digest.
    pub digest: Digest,
    /// Messages processed (successfully or not; for a stored actor, as of
    /// its last commit).
    pub messages: u64,
    /// How often a failed message made it start over from its last
    /// snapshot (or a fresh instance).
    pub restarts: u64,
    /// Whether it holds an instance now (false once passivated, and for
    /// actors only stored).
    pub live: bool,
    /// Time since its last message finished (or since it was created).
    pub idle_for: Duration,
    /// Its snapshot policy (`None` for an actor only stored).
    pub snapshots: Option<SnapshotPolicy>,
    /// The size of its stored snapshot, in bytes (0: none).
    pub snapshot_bytes: u64,
    /// When its stored snapshot was taken.
    pub saved_at: Option<SystemTime>,
}

/// A set of actors, addressed by id. Cheap to clone (clones share the
/// actors); `Send + Sync`.
#[derive(Clone, Debug)]
pub struct ActorSystem {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ActorConfig,
    actors: RwLock<HashMap<String, Arc<Actor>>>,
    /// The time `last_active` stamps count from.
    epoch: Instant,
    /// Dropped with the system: the reaper thread sees the channel close and ends.
    _reaper: Option<mpsc::Sender<()>>,
}

#[derive(Debug)]
struct Actor {
    id: String,
    /// The module with the actor's capabilities and limits.
    module: Module,
    opts: CallOptions,
    policy: SnapshotPolicy,
    fresh: bool,
    /// The key-value batch of the running message, for a batched grant.
    batch: Option<BatchSlot>,
    /// The mailbox: a fair (FIFO) lock around the instance.
    state: Arc<tokio::sync::Mutex<State>>,
    messages: AtomicU64,
    restarts: AtomicU64,
    live: AtomicBool,
    removed: AtomicBool,
    /// Nanoseconds since `Inner::epoch` when the last message finished.
    last_active: AtomicU64,
    /// The stored snapshot's size and time (Unix ms, 0 for none), for `list`.
    snapshot_bytes: AtomicU64,
    saved_at_ms: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    instance: Option<Instance>,
    /// Restarts of instances dropped by passivation or rollback.
    restarts_before: u64,
    /// Whether the stored record was read (once, before the first message).
    loaded: bool,
    /// The record as last committed.
    record: Option<ActorRecord>,
    /// The snapshot as last committed: where a failed message rolls back to.
    last: Option<Snapshot>,
    /// Set while a message runs; still set at the next message when the
    /// last one's future was dropped mid-way.
    in_flight: bool,
}

impl ActorSystem {
    /// An empty system. Starts one background thread that passivates idle
    /// actors (unless `passivate_after` is [`Duration::MAX`]); it ends when
    /// the last clone of the system is dropped.
    pub fn new(config: ActorConfig) -> Self {
        let (tx, rx) = mpsc::channel::<()>();
        let reap = config.passivate_after != Duration::MAX;
        let after = config.passivate_after;
        let inner = Arc::new(Inner {
            config,
            actors: RwLock::new(HashMap::new()),
            epoch: Instant::now(),
            _reaper: reap.then_some(tx),
        });
        if reap {
            let weak = Arc::downgrade(&inner);
            let period = (after / 4).clamp(Duration::from_millis(1), Duration::from_secs(1));
            let spawned = std::thread::Builder::new()
                .name("wasmhost-actor-reaper".into())
                .spawn(move || reaper(weak, rx, period));
            if let Err(e) = spawned {
                tracing::warn!("cannot start the actor reaper thread: {e}; call passivate_idle");
            }
        }
        ActorSystem { inner }
    }

    /// The system's settings.
    pub fn config(&self) -> &ActorConfig {
        &self.inner.config
    }

    /// Creates actor `id` from `spec` and makes it live now (resumed from
    /// its stored snapshot, if any), so that a module that cannot be
    /// instantiated fails here. Returns `false`, doing nothing, when the
    /// actor is already in memory.
    pub fn spawn(&self, id: &str, spec: &ActorSpec) -> Result<bool> {
        block_on(self.spawn_async(id, spec))
    }

    /// [`ActorSystem::spawn`] for async code.
    pub async fn spawn_async(&self, id: &str, spec: &ActorSpec) -> Result<bool> {
        let (actor, created) = self.actor(id, Some(spec))?;
        if created {
            let mut state = actor.state.lock().await;
            if let Err(e) = self.ensure_live(&actor, &mut state).await {
                drop(state);
                self.forget(id);
                return Err(e);
            }
        }
        Ok(created)
    }

    /// Sends a message: calls `function` with `input` on actor `id`, after
    /// every message that arrived before it, and returns the reply. An
    /// unknown actor is created from `spec` (resumed from its stored
    /// record, if any; `not_found` without a spec).
    ///
    /// Blocks the calling thread while waiting for its turn and while the
    /// guest runs ([`ActorSystem::send_async`], waited for in place). In
    /// async code use [`ActorSystem::send_async`].
    pub fn send(
        &self,
        id: &str,
        spec: Option<&ActorSpec>,
        function: &str,
        input: impl Into<Bytes>,
    ) -> Result<Outcome<Data>> {
        block_on(self.send_async(id, spec, function, input.into()))
    }

    /// [`ActorSystem::send`] for async code: waits for the actor's turn
    /// without blocking the executor, and runs the guest on it. Dropping
    /// the future gives up the message: if the guest was running, it stops
    /// there and the actor rolls back to its state before the message.
    pub async fn send_async(
        &self,
        id: &str,
        spec: Option<&ActorSpec>,
        function: &str,
        input: impl Into<Bytes>,
    ) -> Result<Outcome<Data>> {
        self.deliver(id, spec, function, input.into(), None).await
    }

    /// Sends a message with an id: applied at most once. When a message
    /// with the same `message_id` was applied before (among the actor's
    /// last [`REPLY_WINDOW`]), its recorded reply is returned (with
    /// [`CallStats::replayed`](crate::CallStats::replayed) set) and nothing
    /// runs. The reply is recorded in the same transaction as the message's
    /// effects. Needs [`ActorConfig::records`].
    pub fn send_once(
        &self,
        id: &str,
        spec: Option<&ActorSpec>,
        message_id: &str,
        function: &str,
        input: impl Into<Bytes>,
    ) -> Result<Outcome<Data>> {
        block_on(self.send_once_async(id, spec, message_id, function, input.into()))
    }

    /// [`ActorSystem::send_once`] for async code.
    pub async fn send_once_async(
        &self,
        id: &str,
        spec: Option<&ActorSpec>,
        message_id: &str,
        function: &str,
        input: impl Into<Bytes>,
    ) -> Result<Outcome<Data>> {
        check_name("message id", message_id, MAX_MESSAGE_ID_BYTES)?;
        if self.inner.config.records.is_none() {
            return Err(Error::bad_input(
                "message ids need an actor store (ActorConfig::kv or ActorConfig::records)",
            ));
        }
        self.deliver(id, spec, function, input.into(), Some(message_id))
            .await
    }

    async fn deliver(
        &self,
        id: &str,
        spec: Option<&ActorSpec>,
        function: &str,
        input: Bytes,
        message_id: Option<&str>,
    ) -> Result<Outcome<Data>> {
        loop {
            let (actor, _) = self.actor(id, spec)?;
            let mut state = actor.state.lock().await;
            if actor.removed.load(Ordering::Acquire) {
                // Removed while this message waited: it goes to the new actor.
                continue;
            }
            return self
                .process(&actor, &mut state, function, &input, message_id)
                .await;
        }
    }

    /// Every actor, in memory or only stored, sorted by id.
    pub fn list(&self) -> Result<Vec<ActorInfo>> {
        let now = self.now();
        let mut out: Vec<ActorInfo> = self
            .read()
            .values()
            .map(|a| {
                let saved = a.saved_at_ms.load(Ordering::Relaxed);
                ActorInfo {
                    id: a.id.clone(),
                    module: a.module.name().to_string(),
                    digest: a.module.digest(),
                    messages: a.messages.load(Ordering::Relaxed),
                    restarts: a.restarts.load(Ordering::Relaxed),
                    live: a.live.load(Ordering::Relaxed),
                    idle_for: Duration::from_nanos(
                        now.saturating_sub(a.last_active.load(Ordering::Relaxed)),
                    ),
                    snapshots: Some(a.policy),
                    snapshot_bytes: a.snapshot_bytes.load(Ordering::Relaxed),
                    saved_at: (saved != 0)
                        .then(|| SystemTime::UNIX_EPOCH + Duration::from_millis(saved)),
                }
            })
            .collect();
        if let Some(records) = &self.inner.config.records {
            let known: std::collections::HashSet<String> =
                out.iter().map(|a| a.id.clone()).collect();
            for (id, r) in records.records()? {
                if known.contains(&id) {
                    continue;
                }
                out.push(ActorInfo {
                    id,
                    module: format!("sha256:{}", r.module.short()),
                    digest: r.module,
                    messages: r.messages,
                    restarts: 0,
                    live: false,
                    idle_for: r
                        .saved_at
                        .and_then(|t| t.elapsed().ok())
                        .unwrap_or_default(),
                    snapshots: None,
                    snapshot_bytes: r.snapshot_bytes,
                    saved_at: r.saved_at,
                });
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// How many actors are in memory (live or passivated).
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether no actor is in memory.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Removes actor `id`: from memory, and its stored record, snapshot
    /// and replies; whether it existed. Its key-value data is kept (see
    /// [`ActorSystem::purge`]). A message being processed finishes;
    /// messages still waiting go to a new actor (created from their spec).
    pub fn remove(&self, id: &str) -> Result<bool> {
        let in_memory = self.forget(id);
        let stored = match &self.inner.config.records {
            Some(records) => records.remove(id)?,
            None => false,
        };
        Ok(in_memory || stored)
    }

    /// Forgets actor `id` in memory only, keeping everything stored: its
    /// next message loads it again from the store. For an actor that moved
    /// to another node of a cluster. Whether it was in memory.
    pub fn release(&self, id: &str) -> bool {
        self.forget(id)
    }

    /// [`ActorSystem::remove`], and its key-value data too.
    pub fn purge(&self, id: &str) -> Result<bool> {
        let removed = self.remove(id)?;
        let keys = match &self.inner.config.kv {
            Some(kv) => kv.purge(&namespace(id))?,
            None => 0,
        };
        Ok(removed || keys > 0)
    }

    /// Forgets actor `id` in memory; whether it was there.
    fn forget(&self, id: &str) -> bool {
        let removed = match self.inner.actors.write() {
            Ok(mut map) => map.remove(id),
            Err(poisoned) => poisoned.into_inner().remove(id),
        };
        match removed {
            Some(actor) => {
                actor.removed.store(true, Ordering::Release);
                if let Ok(mut state) = actor.state.try_lock() {
                    state.instance = None;
                    actor.live.store(false, Ordering::Relaxed);
                }
                true
            }
            None => false,
        }
    }

    /// Passivates every actor idle for longer than
    /// [`ActorConfig::passivate_after`]; returns how many. The background
    /// thread calls this periodically.
    pub fn passivate_idle(&self) -> usize {
        self.passivate_idle_for(self.inner.config.passivate_after)
    }

    /// Passivates every actor idle for longer than `idle` (busy actors and
    /// actors with waiting messages are skipped); returns how many. Under
    /// [`SnapshotPolicy::OnPassivation`] the actor's state is saved first;
    /// an actor whose state cannot be saved stays live.
    pub fn passivate_idle_for(&self, idle: Duration) -> usize {
        let now = self.now();
        let idle = u64::try_from(idle.as_nanos()).unwrap_or(u64::MAX);
        let candidates: Vec<Arc<Actor>> = self
            .read()
            .values()
            .filter(|a| {
                a.live.load(Ordering::Relaxed)
                    && now.saturating_sub(a.last_active.load(Ordering::Relaxed)) >= idle
            })
            .cloned()
            .collect();
        let mut count = 0;
        for actor in candidates {
            // Never wait: a locked actor is busy, or has messages queued.
            let Ok(mut state) = actor.state.try_lock() else {
                continue;
            };
            let idle_now = now.saturating_sub(actor.last_active.load(Ordering::Relaxed)) >= idle;
            if !idle_now || state.instance.is_none() {
                continue;
            }
            if actor.policy == SnapshotPolicy::OnPassivation
                && let Err(e) = block_on(self.save(&actor, &mut state))
            {
                tracing::warn!(actor = %actor.id, "not passivated: cannot save its state: {e}");
                continue;
            }
            if let Some(instance) = state.instance.take() {
                state.restarts_before += instance.restarts();
                actor.live.store(false, Ordering::Relaxed);
                count += 1;
                tracing::debug!(actor = %actor.id, "passivated");
            }
        }
        count
    }

    /// Saves the state of every live actor whose policy is not
    /// [`SnapshotPolicy::Never`] (waiting for its turn), as before a
    /// shutdown; returns how many snapshots were written. Under
    /// [`SnapshotPolicy::EveryMessage`] the state is already saved and
    /// nothing is written.
    pub fn checkpoint(&self) -> Result<usize> {
        block_on(self.checkpoint_async())
    }

    /// [`ActorSystem::checkpoint`] for async code.
    pub async fn checkpoint_async(&self) -> Result<usize> {
        let actors: Vec<Arc<Actor>> = self.read().values().cloned().collect();
        let mut written = 0;
        for actor in actors {
            if actor.policy == SnapshotPolicy::Never {
                continue;
            }
            let mut state = actor.state.lock().await;
            if state.instance.is_some() && self.save(&actor, &mut state).await? {
                written += 1;
            }
        }
        Ok(written)
    }

    /// Writes actor `id` — record, snapshot, key-value data, and `meta`,
    /// bytes of the caller's own (the CLI keeps its record there) — as
    /// bytes that [`ActorSystem::import`] reads, to move it by hand. A live
    /// actor's state is saved first (unless its policy is never).
    /// `not_found` for an actor neither in memory nor stored.
    pub fn export(&self, id: &str, meta: &[u8]) -> Result<Vec<u8>> {
        let records = self.records()?;
        let in_memory = self.read().get(id).cloned();
        if let Some(actor) = &in_memory
            && actor.policy != SnapshotPolicy::Never
        {
            let mut state = block_on(actor.state.lock());
            if state.instance.is_some() {
                block_on(self.save(actor, &mut state))?;
            }
        }
        let (record, snapshot) = match records.load(id)? {
            Some(stored) => stored,
            None => match &in_memory {
                Some(actor) => {
                    let mut r = ActorRecord::new(actor.module.digest());
                    r.messages = actor.messages.load(Ordering::Relaxed);
                    (r, None)
                }
                None => return Err(Error::not_found(format!("actor `{id}`"))),
            },
        };
        let kv = match &self.inner.config.kv {
            Some(kv) => kv.entries(&namespace(id))?,
            None => Vec::new(),
        };
        Ok(wire::Exported {
            meta: meta.to_vec(),
            module: record.module,
            messages: record.messages,
            snapshot: snapshot.map(|s| s.as_bytes().to_vec()),
            kv,
        }
        .encode())
    }

    /// Creates actor `id` from bytes [`ActorSystem::export`] wrote (of any
    /// id): its record, snapshot and key-value data, in one transaction.
    /// `bad_input` when actor `id` exists (remove it first); `corrupt` when
    /// the bytes fail their checks. The actor resumes at its next message,
    /// which must bring a spec of the same module. Returns its record and
    /// the meta bytes given to `export`.
    pub fn import(&self, id: &str, bytes: &[u8]) -> Result<(ActorRecord, Vec<u8>)> {
        check_id(id)?;
        let records = self.records()?;
        let exported = wire::Exported::decode(bytes)?;
        if self.read().contains_key(id) || records.load(id)?.is_some() {
            return Err(Error::bad_input(format!(
                "actor `{id}` exists: remove it first to import over it"
            )));
        }
        let snapshot = match exported.snapshot {
            Some(b) => {
                let s = Snapshot::from_bytes(b)?;
                s.check_module(exported.module)?;
                Some(s)
            }
            None => None,
        };
        let mut batch = KvBatch::default();
        if !exported.kv.is_empty() {
            if self.inner.config.kv.is_none() {
                return Err(Error::bad_input(format!(
                    "actor `{id}` has key-value data, and this actor system has no key-value store"
                )));
            }
            for e in &exported.kv {
                batch.set(&namespace(id), &e.bucket, &e.key, &e.value);
            }
        }
        let record = ActorRecord {
            module: exported.module,
            messages: exported.messages,
            saved_at: snapshot.as_ref().map(|_| SystemTime::now()),
            snapshot_bytes: snapshot.as_ref().map_or(0, |s| s.len() as u64),
        };
        let mut commit = ActorCommit::new(&record, &batch);
        commit.snapshot = snapshot.as_ref();
        records.commit(id, commit)?;
        Ok((record, exported.meta))
    }

    /// The stored record of actor `id`, if any.
    pub fn stored(&self, id: &str) -> Result<Option<ActorRecord>> {
        Ok(self.records()?.load(id)?.map(|(r, _)| r))
    }

    fn records(&self) -> Result<&Arc<dyn ActorStore>> {
        self.inner.config.records.as_ref().ok_or_else(|| {
            Error::bad_input("this actor system keeps no records (ActorConfig::kv or ::records)")
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Actor>>> {
        self.inner
            .actors
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The actor `id`, created from `spec` if unknown; whether it was created.
    fn actor(&self, id: &str, spec: Option<&ActorSpec>) -> Result<(Arc<Actor>, bool)> {
        if let Some(actor) = self.read().get(id) {
            check_same_module(actor, spec)?;
            return Ok((actor.clone(), false));
        }
        let Some(spec) = spec else {
            return Err(Error::not_found(format!(
                "actor `{id}` (send a module with the message to create it)"
            )));
        };
        check_id(id)?;
        let mut map = self
            .inner
            .actors
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(actor) = map.get(id) {
            check_same_module(actor, Some(spec))?;
            return Ok((actor.clone(), false));
        }
        let actor = Arc::new(self.new_actor(id, spec)?);
        map.insert(id.to_string(), actor.clone());
        tracing::debug!(actor = id, module = spec.module.name(), "created");
        Ok((actor, true))
    }

    fn new_actor(&self, id: &str, spec: &ActorSpec) -> Result<Actor> {
        let config = &self.inner.config;
        let component = spec.module.kind() == ModuleKind::Component;
        let policy = match spec.snapshots {
            Some(p) if component && p != SnapshotPolicy::Never => {
                return Err(Error::bad_input(format!(
                    "actor `{id}`: components cannot be snapshotted (policy {p}): keep the actor's state in wasi:keyvalue and use the `never` policy"
                )));
            }
            Some(p) => p,
            None if component => SnapshotPolicy::Never,
            None => config.snapshots,
        };
        let mut caps = spec.module.capabilities().clone();
        let mut batch = None;
        if let Some(store) = &config.kv {
            let mut kv = KeyValue::new(store.clone(), namespace(id));
            if config.records.is_some() {
                let slot = BatchSlot::default();
                kv = kv.batched(slot.clone());
                batch = Some(slot);
            }
            caps = caps.with_key_value(kv);
        }
        let limits = spec.limits.clone().unwrap_or_else(|| config.limits.clone());
        let module = spec
            .module
            .clone()
            .with_capabilities(caps)
            .with_limits(limits);
        let mut opts = CallOptions::default();
        if let Some(c) = spec.convention {
            opts = opts.convention(c);
        }
        Ok(Actor {
            id: id.to_string(),
            module,
            opts,
            policy,
            fresh: spec.fresh,
            batch,
            state: Arc::new(tokio::sync::Mutex::new(State::default())),
            messages: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            live: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            last_active: AtomicU64::new(self.now()),
            snapshot_bytes: AtomicU64::new(0),
            saved_at_ms: AtomicU64::new(0),
        })
    }

    /// Reads the actor's stored record once, before its first message.
    fn load(&self, actor: &Actor, state: &mut State) -> Result<()> {
        if state.loaded {
            return Ok(());
        }
        if let Some(records) = &self.inner.config.records
            && let Some((record, snapshot)) = records.load(&actor.id)?
        {
            if record.module != actor.module.digest() {
                if !actor.fresh {
                    return Err(Error::SnapshotMismatch {
                        expected: actor.module.digest().to_string(),
                        found: record.module.to_string(),
                        hint: Some(format!(
                            "actor `{}` was stored by another module; start it over with this one (`--fresh`, ActorSpec::fresh; its key-value data is kept) or remove it",
                            actor.id
                        )),
                    });
                }
                records.remove(&actor.id)?;
            } else {
                actor.messages.store(record.messages, Ordering::Relaxed);
                note_saved(actor, &record);
                state.last = snapshot;
                state.record = Some(record);
            }
        }
        state.loaded = true;
        Ok(())
    }

    async fn ensure_live<'s>(
        &self,
        actor: &Actor,
        state: &'s mut State,
    ) -> Result<&'s mut Instance> {
        if state.instance.is_none() {
            self.load(actor, state)?;
            let instance = match &state.last {
                Some(snapshot) => {
                    actor
                        .module
                        .instantiate_from_async(&actor.opts, snapshot)
                        .await?
                }
                None => actor.module.instantiate_async(&actor.opts).await?,
            };
            actor.live.store(true, Ordering::Relaxed);
            state.instance = Some(instance);
        }
        state
            .instance
            .as_mut()
            .ok_or_else(|| Error::internal("actor instance vanished"))
    }

    /// Runs one message; the caller holds the actor's lock.
    async fn process(
        &self,
        actor: &Actor,
        state: &mut State,
        function: &str,
        input: &[u8],
        message_id: Option<&str>,
    ) -> Result<Outcome<Data>> {
        // The stored record first: it sets the message count.
        self.load(actor, state)?;
        if let (Some(mid), Some(records)) = (message_id, &self.inner.config.records)
            && let Some(reply) = records.reply(&actor.id, mid)?
        {
            tracing::debug!(actor = %actor.id, message = mid, "replayed");
            return wire::decode_reply(&reply);
        }
        if std::mem::replace(&mut state.in_flight, true) {
            // The last message was abandoned mid-way (its future dropped):
            // its effects were never committed, and the instance may hold
            // half of them. Resume from the last snapshot instead.
            let restarts = state.instance.as_ref().map_or(0, |i| i.restarts());
            self.roll_back(actor, state, restarts);
        }
        // Counted before the guest runs: a message whose future is dropped
        // mid-call still counts.
        actor.messages.fetch_add(1, Ordering::Relaxed);
        let guard = BatchGuard::begin(actor.batch.as_ref());
        let restarts_before = state.instance.as_ref().map_or(0, |i| i.restarts());
        let result = match self.ensure_live(actor, state).await {
            Ok(instance) => instance.call_async(function, input).await,
            Err(e) => Err(e),
        };
        let batch = guard.finish();
        let result = match result {
            Ok(out) => match self.commit(actor, state, batch, message_id, &out).await {
                Ok(()) => Ok(out),
                Err(e) => {
                    self.roll_back(actor, state, restarts_before);
                    Err(e)
                }
            },
            Err(e) => {
                tracing::debug!(actor = %actor.id, function, "message failed: {e}");
                let refused = matches!(e.code(), ErrorCode::BadInput | ErrorCode::NotFound);
                let broke = state
                    .instance
                    .as_ref()
                    .is_some_and(|i| i.restarts() > restarts_before);
                if !refused && (broke || actor.policy == SnapshotPolicy::EveryMessage) {
                    self.roll_back(actor, state, restarts_before);
                }
                Err(e)
            }
        };
        // Committed or rolled back: not abandoned (a future dropped during
        // the commit leaves it set, and the next message rolls back).
        state.in_flight = false;
        let restarts = state.restarts_before + state.instance.as_ref().map_or(0, |i| i.restarts());
        actor.restarts.store(restarts, Ordering::Relaxed);
        actor.last_active.store(self.now(), Ordering::Relaxed);
        result
    }

    /// After a failed message: the instance goes; the next message resumes
    /// from the last committed snapshot (or a fresh instance).
    fn roll_back(&self, actor: &Actor, state: &mut State, restarts_before: u64) {
        if actor.policy == SnapshotPolicy::Never {
            return;
        }
        if let Some(instance) = state.instance.take() {
            // Counted once, whether the instance had already started over.
            state.restarts_before += instance.restarts().max(restarts_before + 1);
            actor.live.store(false, Ordering::Relaxed);
        }
    }

    /// Commits a successful message: its key-value writes, its snapshot
    /// (under every-message, when the state changed) and its reply (when it
    /// has an id), in one transaction.
    async fn commit(
        &self,
        actor: &Actor,
        state: &mut State,
        batch: KvBatch,
        message_id: Option<&str>,
        out: &Outcome<Data>,
    ) -> Result<()> {
        let Some(records) = &self.inner.config.records else {
            return Ok(());
        };
        let snapshot = match (actor.policy, state.instance.as_mut()) {
            (SnapshotPolicy::EveryMessage, Some(instance)) => {
                let s = instance.snapshot_async().await?;
                (state.last.as_ref() != Some(&s)).then_some(s)
            }
            _ => None,
        };
        let reply = message_id.map(|mid| (mid, wire::encode_reply(out)));
        let first = state.record.is_none();
        if batch.is_empty() && snapshot.is_none() && reply.is_none() && !first {
            return Ok(());
        }
        let record = self.next_record(actor, state, snapshot.as_ref());
        let mut commit = ActorCommit::new(&record, &batch);
        commit.snapshot = snapshot.as_ref();
        commit.reply = reply.as_ref().map(|(m, r)| (*m, r.as_slice()));
        records.commit(&actor.id, commit)?;
        note_saved(actor, &record);
        state.record = Some(record);
        if snapshot.is_some() {
            state.last = snapshot;
        }
        Ok(())
    }

    /// Snapshots a live actor and commits it when its state changed;
    /// whether a snapshot was written.
    async fn save(&self, actor: &Actor, state: &mut State) -> Result<bool> {
        let Some(records) = &self.inner.config.records else {
            return Ok(false);
        };
        let Some(instance) = state.instance.as_mut() else {
            return Ok(false);
        };
        let snapshot = instance.snapshot_async().await?;
        if state.last.as_ref() == Some(&snapshot) {
            return Ok(false);
        }
        let record = self.next_record(actor, state, Some(&snapshot));
        let batch = KvBatch::default();
        let mut commit = ActorCommit::new(&record, &batch);
        commit.snapshot = Some(&snapshot);
        records.commit(&actor.id, commit)?;
        note_saved(actor, &record);
        state.record = Some(record);
        state.last = Some(snapshot);
        Ok(true)
    }

    /// The record after this commit.
    fn next_record(
        &self,
        actor: &Actor,
        state: &State,
        snapshot: Option<&Snapshot>,
    ) -> ActorRecord {
        let mut record = state
            .record
            .clone()
            .unwrap_or_else(|| ActorRecord::new(actor.module.digest()));
        record.messages = actor.messages.load(Ordering::Relaxed);
        if let Some(s) = snapshot {
            record.saved_at = Some(SystemTime::now());
            record.snapshot_bytes = s.len() as u64;
        }
        record
    }
}

/// Records a stored record's snapshot size and time on the actor, for `list`.
fn note_saved(actor: &Actor, record: &ActorRecord) {
    actor
        .snapshot_bytes
        .store(record.snapshot_bytes, Ordering::Relaxed);
    let ms = record.saved_at.map_or(0, |t| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    });
    actor.saved_at_ms.store(ms, Ordering::Relaxed);
}

/// The running message's key-value batch: opened before the guest runs,
/// taken when it returns, and discarded if the message's future is dropped.
struct BatchGuard<'a> {
    slot: Option<&'a BatchSlot>,
}

impl<'a> BatchGuard<'a> {
    fn begin(slot: Option<&'a BatchSlot>) -> Self {
        if let Some(slot) = slot {
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(KvBatch::default());
        }
        BatchGuard { slot }
    }

    fn finish(mut self) -> KvBatch {
        self.slot
            .take()
            .and_then(|slot| slot.lock().unwrap_or_else(|p| p.into_inner()).take())
            .unwrap_or_default()
    }
}

impl Drop for BatchGuard<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        }
    }
}

/// The key-value namespace of actor `id`.
fn namespace(id: &str) -> String {
    format!("actor:{id}")
}

/// The key-value namespace of actor `id`'s data (`actor:<id>`).
pub fn kv_namespace(id: &str) -> String {
    namespace(id)
}

/// A spec sent to an existing actor must be for the module it runs.
fn check_same_module(actor: &Actor, spec: Option<&ActorSpec>) -> Result<()> {
    match spec {
        Some(spec) if spec.module.digest() != actor.module.digest() => {
            Err(Error::bad_input(format!(
                "actor `{}` runs module {}, not {}: remove it first to change its module",
                actor.id,
                actor.module.digest().short(),
                spec.module.digest().short()
            )))
        }
        _ => Ok(()),
    }
}

fn check_id(id: &str) -> Result<()> {
    check_name("actor id", id, MAX_ACTOR_ID_BYTES)
}

/// An id (`what`) of 1 to `max` bytes without control characters.
fn check_name(what: &str, name: &str, max: usize) -> Result<()> {
    if name.is_empty() || name.len() > max || name.chars().any(char::is_control) {
        return Err(Error::bad_input(format!(
            "{what} {name:?}: expected 1 to {max} bytes without control characters"
        )));
    }
    Ok(())
}

/// The background passivation loop: wakes every `period` until the system
/// is dropped.
fn reaper(system: Weak<Inner>, stop: mpsc::Receiver<()>, period: Duration) {
    loop {
        match stop.recv_timeout(period) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let Some(inner) = system.upgrade() else {
            return;
        };
        ActorSystem { inner }.passivate_idle();
    }
}
