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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::call::{CallOptions, Outcome};
use crate::capabilities::{KeyValue, KvStore};
use crate::code::Digest;
use crate::convention::{Convention, Data};
use crate::error::{Error, Result};
use crate::exec::block_on;
use crate::instance::Instance;
use crate::limits::Limits;
use crate::module::Module;

/// Longest actor id, in bytes.
pub const MAX_ACTOR_ID_BYTES: usize = 256;

/// Default idle time before an actor is passivated: 5 minutes.
pub const DEFAULT_PASSIVATE_AFTER: Duration = Duration::from_secs(300);

/// Settings of an [`ActorSystem`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ActorConfig {
    /// An actor idle for longer than this loses its instance (and its
    /// in-memory state). [`Duration::MAX`] never passivates on its own.
    pub passivate_after: Duration,
    /// The store behind every actor's key-value grant (namespace
    /// `actor:<id>`); `None` grants no key-value state.
    pub kv: Option<KvStore>,
    /// Limits of actors whose spec sets none.
    pub limits: Limits,
}

impl Default for ActorConfig {
    fn default() -> Self {
        ActorConfig {
            passivate_after: DEFAULT_PASSIVATE_AFTER,
            kv: None,
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

    /// Grants every actor durable key-value state in `store`.
    pub fn kv(mut self, store: KvStore) -> Self {
        self.kv = Some(store);
        self
    }

    /// Sets the default limits of actors.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// What an actor is made of: the module (with its capabilities), how its
/// functions are called, and its limits.
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
}

impl ActorSpec {
    /// An actor of `module`, convention detected, the system's limits.
    pub fn new(module: Module) -> Self {
        ActorSpec {
            module,
            convention: None,
            limits: None,
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
}

/// A snapshot of one actor, from [`ActorSystem::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActorInfo {
    /// The actor's id.
    pub id: String,
    /// The module's name.
    pub module: String,
    /// The module's digest.
    pub digest: Digest,
    /// Messages processed (successfully or not).
    pub messages: u64,
    /// How often a failed message made it start over from a fresh instance.
    pub restarts: u64,
    /// Whether it holds an instance now (false once passivated).
    pub live: bool,
    /// Time since its last message finished (or since it was created).
    pub idle_for: Duration,
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
    /// The mailbox: a fair (FIFO) lock around the instance.
    state: Arc<tokio::sync::Mutex<State>>,
    messages: AtomicU64,
    restarts: AtomicU64,
    live: AtomicBool,
    removed: AtomicBool,
    /// Nanoseconds since `Inner::epoch` when the last message finished.
    last_active: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    instance: Option<Instance>,
    /// Restarts of instances dropped by passivation.
    restarts_before: u64,
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
            let period = (after / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
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

    /// Creates actor `id` from `spec` and instantiates it now (so a module
    /// that cannot be instantiated fails here). Returns `false`, doing
    /// nothing, when the actor already exists.
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
                self.remove(id);
                return Err(e);
            }
        }
        Ok(created)
    }

    /// Sends a message: calls `function` with `input` on actor `id`, after
    /// every message that arrived before it, and returns the reply. An
    /// unknown actor is created from `spec` (`not_found` without one).
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
    /// there and the actor starts over from a fresh instance.
    pub async fn send_async(
        &self,
        id: &str,
        spec: Option<&ActorSpec>,
        function: &str,
        input: impl Into<Bytes>,
    ) -> Result<Outcome<Data>> {
        let input = input.into();
        loop {
            let (actor, _) = self.actor(id, spec)?;
            let mut state = actor.state.lock().await;
            if actor.removed.load(Ordering::Acquire) {
                // Removed while this message waited: it goes to the new actor.
                continue;
            }
            return self.process(&actor, &mut state, function, &input).await;
        }
    }

    /// Every actor, sorted by id.
    pub fn list(&self) -> Vec<ActorInfo> {
        let now = self.now();
        let mut out: Vec<ActorInfo> = self
            .read()
            .values()
            .map(|a| ActorInfo {
                id: a.id.clone(),
                module: a.module.name().to_string(),
                digest: a.module.digest(),
                messages: a.messages.load(Ordering::Relaxed),
                restarts: a.restarts.load(Ordering::Relaxed),
                live: a.live.load(Ordering::Relaxed),
                idle_for: Duration::from_nanos(
                    now.saturating_sub(a.last_active.load(Ordering::Relaxed)),
                ),
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// How many actors exist (live or passivated).
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether there are no actors.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Forgets actor `id`; whether it existed. A message being processed
    /// finishes; messages still waiting go to a new actor (created from
    /// their spec). Its durable key-value state is kept.
    pub fn remove(&self, id: &str) -> bool {
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
    /// actors with waiting messages are skipped); returns how many.
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
            if idle_now && let Some(instance) = state.instance.take() {
                state.restarts_before += instance.restarts();
                actor.live.store(false, Ordering::Relaxed);
                count += 1;
                tracing::debug!(actor = %actor.id, "passivated");
            }
        }
        count
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
        let actor = Arc::new(self.new_actor(id, spec));
        map.insert(id.to_string(), actor.clone());
        tracing::debug!(actor = id, module = spec.module.name(), "created");
        Ok((actor, true))
    }

    fn new_actor(&self, id: &str, spec: &ActorSpec) -> Actor {
        let config = &self.inner.config;
        let mut caps = spec.module.capabilities().clone();
        if let Some(store) = &config.kv {
            caps = caps.with_key_value(KeyValue::new(store.clone(), format!("actor:{id}")));
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
        Actor {
            id: id.to_string(),
            module,
            opts,
            state: Arc::new(tokio::sync::Mutex::new(State::default())),
            messages: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            live: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            last_active: AtomicU64::new(self.now()),
        }
    }

    async fn ensure_live<'s>(
        &self,
        actor: &Actor,
        state: &'s mut State,
    ) -> Result<&'s mut Instance> {
        if state.instance.is_none() {
            let instance = actor.module.instantiate_async(&actor.opts).await?;
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
    ) -> Result<Outcome<Data>> {
        // Counted before the guest runs: a message whose future is dropped
        // mid-call still counts (the instance then starts over before the
        // next message, see `Instance`).
        actor.messages.fetch_add(1, Ordering::Relaxed);
        let result = match self.ensure_live(actor, state).await {
            Ok(instance) => instance.call_async(function, input).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            tracing::debug!(actor = %actor.id, function, "message failed: {e}");
        }
        let restarts = state.restarts_before + state.instance.as_ref().map_or(0, |i| i.restarts());
        actor.restarts.store(restarts, Ordering::Relaxed);
        actor.last_active.store(self.now(), Ordering::Relaxed);
        result
    }
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
    if id.is_empty() || id.len() > MAX_ACTOR_ID_BYTES || id.chars().any(char::is_control) {
        return Err(Error::bad_input(format!(
            "actor id {id:?}: expected 1 to {MAX_ACTOR_ID_BYTES} bytes without control characters"
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
