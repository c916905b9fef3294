//! Compiled-module caches: one in memory, one on disk.
//!
//! Both are keyed by the sha256 [`Digest`] of the module's wasm bytes.
//!
//! * The **memory cache** holds compiled modules, bounded by entry count,
//!   compiled bytes and an idle TTL, evicting the least recently used first.
//! * The **disk cache** holds serialized compiled artifacts under
//!   `STATE/cache/<engine fingerprint>/<digest>.cwasm`. The fingerprint covers
//!   the wasmtime version and every engine setting that affects compiled
//!   code, so artifacts from another engine are never even looked at. Each
//!   file starts with a header carrying the sha256 of its payload; a file
//!   whose checksum does not match (truncated, corrupted, foreign) is deleted
//!   and the module recompiled. Files are written to a temporary file and
//!   renamed into place, so readers never see a partial artifact.

use std::collections::HashMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::module::{Compiled, Digest};

/// Bounds of the in-memory compiled-module cache.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Most modules kept compiled in memory.
    pub max_modules: usize,
    /// Most compiled-code bytes kept in memory.
    pub max_bytes: u64,
    /// A module unused for this long is dropped; `None` keeps it until evicted.
    pub ttl: Option<Duration>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_modules: 256,
            max_bytes: 1 << 30,
            ttl: Some(Duration::from_secs(3600)),
        }
    }
}

impl CacheConfig {
    /// Sets [`CacheConfig::max_modules`].
    pub fn max_modules(mut self, n: usize) -> Self {
        self.max_modules = n;
        self
    }

    /// Sets [`CacheConfig::max_bytes`].
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Sets [`CacheConfig::ttl`].
    pub fn ttl(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = ttl;
        self
    }
}

/// Counters of a runtime's compiled-module caches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Loads answered from memory.
    pub hits: u64,
    /// Loads not in memory.
    pub misses: u64,
    /// Of the misses, those answered from the disk cache.
    pub disk_hits: u64,
    /// Artifacts written to disk.
    pub disk_writes: u64,
    /// Disk artifacts rejected (bad checksum, truncated, foreign) and removed.
    pub disk_rejected: u64,
    /// Modules compiled from wasm.
    pub compiles: u64,
    /// Entries evicted for size, count or TTL.
    pub evictions: u64,
    /// Modules in memory now.
    pub entries: u64,
    /// Compiled bytes in memory now.
    pub bytes: u64,
}

/// Per-module counters, kept as long as the module is cached.
#[derive(Debug, Default)]
pub(crate) struct ModuleCounters {
    pub(crate) loads: AtomicU64,
    pub(crate) calls: AtomicU64,
    pub(crate) errors: AtomicU64,
    /// (loads, calls, errors) already added to the disk stats file.
    pub(crate) persisted: Mutex<(u64, u64, u64)>,
}

/// A snapshot of one cached module.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CachedModule {
    /// The module's digest.
    pub digest: Digest,
    /// `core` or `component`.
    pub kind: &'static str,
    /// Size of the compiled code in memory.
    pub compiled_bytes: u64,
    /// Size of the wasm bytes.
    pub wasm_bytes: u64,
    /// Times it was loaded (from any cache level or compiled).
    pub loads: u64,
    /// Calls made on it.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// How long compiling (or deserializing) it took.
    pub compile_time: Duration,
}

struct Entry {
    compiled: Arc<Compiled>,
    last_used: Instant,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    disk_hits: AtomicU64,
    disk_writes: AtomicU64,
    disk_rejected: AtomicU64,
    compiles: AtomicU64,
    evictions: AtomicU64,
}

/// The in-memory LRU of compiled modules plus the cache counters.
pub(crate) struct MemoryCache {
    config: CacheConfig,
    inner: Mutex<Lru>,
    counters: Counters,
    /// One lock per digest being compiled, so concurrent loads of the same
    /// module compile it once.
    in_flight: Mutex<HashMap<Digest, Arc<Mutex<()>>>>,
}

struct Lru {
    map: lru::LruCache<Digest, Entry>,
    bytes: u64,
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave them inconsistent in a
    // way that matters more than losing the cache, so poison is ignored.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MemoryCache {
    pub(crate) fn new(config: CacheConfig) -> Self {
        MemoryCache {
            config,
            inner: Mutex::new(Lru {
                map: lru::LruCache::unbounded(),
                bytes: 0,
            }),
            counters: Counters::default(),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// Looks `digest` up, counting a hit, or a miss when `count_miss` (a
    /// re-check after waiting for another loader is not a second miss).
    pub(crate) fn get(&self, digest: &Digest, count_miss: bool) -> Option<Arc<Compiled>> {
        let now = Instant::now();
        let mut lru = lock(&self.inner);
        let expired = match lru.map.get_mut(digest) {
            Some(entry) if self.fresh(entry, now) => {
                entry.last_used = now;
                let compiled = entry.compiled.clone();
                drop(lru);
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                compiled.counters.loads.fetch_add(1, Ordering::Relaxed);
                return Some(compiled);
            }
            Some(_) => true,
            None => false,
        };
        if expired && let Some(entry) = lru.map.pop(digest) {
            lru.bytes -= entry.compiled.compiled_bytes;
            self.counters.evictions.fetch_add(1, Ordering::Relaxed);
        }
        drop(lru);
        if count_miss {
            self.counters.misses.fetch_add(1, Ordering::Relaxed);
        }
        None
    }

    fn fresh(&self, entry: &Entry, now: Instant) -> bool {
        self.config
            .ttl
            .is_none_or(|ttl| now.duration_since(entry.last_used) <= ttl)
    }

    /// Inserts a freshly compiled or deserialized module, evicting as needed.
    pub(crate) fn insert(&self, compiled: Arc<Compiled>) {
        compiled.counters.loads.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut lru = lock(&self.inner);
        if let Some(old) = lru.map.put(
            compiled.digest,
            Entry {
                compiled: compiled.clone(),
                last_used: now,
            },
        ) {
            lru.bytes -= old.compiled.compiled_bytes;
        }
        lru.bytes += compiled.compiled_bytes;
        let mut evicted = 0;
        // Expired entries first, then least recently used until within bounds.
        if let Some(ttl) = self.config.ttl {
            let stale: Vec<Digest> = lru
                .map
                .iter()
                .filter(|(_, e)| now.duration_since(e.last_used) > ttl)
                .map(|(d, _)| *d)
                .collect();
            for d in stale {
                if let Some(e) = lru.map.pop(&d) {
                    lru.bytes -= e.compiled.compiled_bytes;
                    evicted += 1;
                }
            }
        }
        while lru.map.len() > 1
            && (lru.map.len() > self.config.max_modules || lru.bytes > self.config.max_bytes)
        {
            match lru.map.pop_lru() {
                Some((_, e)) => {
                    lru.bytes -= e.compiled.compiled_bytes;
                    evicted += 1;
                }
                None => break,
            }
        }
        drop(lru);
        self.counters
            .evictions
            .fetch_add(evicted, Ordering::Relaxed);
    }

    /// The lock that serializes compiling `digest`.
    pub(crate) fn flight(&self, digest: &Digest) -> Arc<Mutex<()>> {
        lock(&self.in_flight).entry(*digest).or_default().clone()
    }

    /// Forgets the compile lock of `digest` once nobody else holds it.
    pub(crate) fn land(&self, digest: &Digest) {
        let mut map = lock(&self.in_flight);
        if map.get(digest).is_some_and(|l| Arc::strong_count(l) == 1) {
            map.remove(digest);
        }
    }

    pub(crate) fn note_disk_hit(&self) {
        self.counters.disk_hits.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn note_disk_write(&self) {
        self.counters.disk_writes.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn note_disk_rejected(&self) {
        self.counters.disk_rejected.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn note_compile(&self) {
        self.counters.compiles.fetch_add(1, Ordering::Relaxed);
    }

    /// Removes every entry; returns how many there were.
    pub(crate) fn clear(&self) -> usize {
        let mut lru = lock(&self.inner);
        let n = lru.map.len();
        lru.map.clear();
        lru.bytes = 0;
        n
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let lru = lock(&self.inner);
        let c = &self.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            disk_hits: c.disk_hits.load(Ordering::Relaxed),
            disk_writes: c.disk_writes.load(Ordering::Relaxed),
            disk_rejected: c.disk_rejected.load(Ordering::Relaxed),
            compiles: c.compiles.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            entries: lru.map.len() as u64,
            bytes: lru.bytes,
        }
    }

    /// Snapshots of the cached modules, most recently used first.
    pub(crate) fn modules(&self) -> Vec<CachedModule> {
        let lru = lock(&self.inner);
        lru.map.iter().map(|(_, e)| e.compiled.snapshot()).collect()
    }
}

/// Magic at the start of every disk artifact, versioned with our file format.
const MAGIC: &[u8; 8] = b"WHCWASM1";
const HEADER_LEN: usize = MAGIC.len() + 32;

/// The on-disk artifact cache of one engine.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
}

/// What reading an artifact found.
pub(crate) enum DiskRead {
    /// A verified payload (the serialized module, without our header).
    Hit(Vec<u8>),
    /// No artifact.
    Miss,
    /// There was an artifact but it failed verification; it has been removed.
    Rejected(String),
}

impl DiskCache {
    /// A cache under `state/cache/<fingerprint>`; creates the directory.
    pub(crate) fn open(state: &Path, engine: &wasmtime::Engine) -> std::io::Result<Self> {
        let dir = state.join("cache").join(engine_fingerprint(engine));
        fs::create_dir_all(&dir)?;
        Ok(DiskCache { dir })
    }

    /// The directory holding this engine's artifacts.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(format!("{}.cwasm", digest.hex()))
    }

    pub(crate) fn read(&self, digest: &Digest) -> DiskRead {
        let path = self.path(digest);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return DiskRead::Miss,
            Err(e) => return DiskRead::Rejected(format!("cannot read {}: {e}", path.display())),
        };
        match verify(&bytes) {
            Ok(()) => {
                let mut bytes = bytes;
                bytes.drain(..HEADER_LEN);
                DiskRead::Hit(bytes)
            }
            Err(why) => {
                self.remove(digest);
                DiskRead::Rejected(format!("{}: {why}", path.display()))
            }
        }
    }

    /// Removes the artifact of `digest`, if any.
    pub(crate) fn remove(&self, digest: &Digest) {
        let _ = fs::remove_file(self.path(digest));
    }

    /// Writes `payload` atomically (temporary file, fsync, rename).
    pub(crate) fn write(&self, digest: &Digest, payload: &[u8]) -> std::io::Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(MAGIC)?;
        tmp.write_all(&Sha256::digest(payload))?;
        tmp.write_all(payload)?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.path(digest)).map_err(|e| e.error)?;
        Ok(())
    }

    /// Removes every artifact of this engine (and its stats); returns how many.
    pub(crate) fn clear(&self) -> std::io::Result<usize> {
        let _ = fs::remove_file(self.dir.join(STATS_FILE));
        let mut n = 0;
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.path().extension().is_some_and(|e| e == "cwasm") {
                fs::remove_file(entry.path())?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Per-module counters kept on disk beside the artifacts, summed over every
/// process that used this cache (see [`crate::Runtime::persist_stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct DiskStats {
    /// Times the module was loaded.
    pub loads: u64,
    /// Calls made on it.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// How long compiling it took, in microseconds (0 if this cache never compiled it).
    pub compile_time_us: u64,
    /// Size of its wasm bytes.
    pub wasm_bytes: u64,
}

/// Name of the stats file in each engine's cache directory.
pub const STATS_FILE: &str = "stats.json";

/// Reads the stats file of one engine's cache directory (digest hex → stats).
/// A missing or unreadable file reads as empty: the stats are advisory.
pub fn read_disk_stats(dir: &Path) -> HashMap<String, DiskStats> {
    fs::read(dir.join(STATS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

impl DiskCache {
    /// Adds `deltas` to the stats file, under an exclusive lock so that
    /// concurrent processes do not lose each other's counts.
    pub(crate) fn add_stats(&self, deltas: &[(Digest, DiskStats)]) -> std::io::Result<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("stats.lock"))?;
        lock.lock()?;
        let mut all = read_disk_stats(&self.dir);
        for (digest, d) in deltas {
            let e = all.entry(digest.hex()).or_default();
            e.loads += d.loads;
            e.calls += d.calls;
            e.errors += d.errors;
            if d.compile_time_us > 0 {
                e.compile_time_us = d.compile_time_us;
            }
            e.wasm_bytes = d.wasm_bytes;
        }
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(&serde_json::to_vec_pretty(&all).map_err(std::io::Error::other)?)?;
        tmp.persist(self.dir.join(STATS_FILE))
            .map_err(|e| e.error)?;
        lock.unlock()
    }
}

fn verify(bytes: &[u8]) -> Result<(), &'static str> {
    if bytes.len() < HEADER_LEN {
        return Err("truncated header");
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a wasmhost artifact");
    }
    let (sum, payload) = bytes[MAGIC.len()..].split_at(32);
    if Sha256::digest(payload).as_slice() != sum {
        return Err("checksum mismatch (truncated or corrupted)");
    }
    Ok(())
}

/// A stable name for the engine's compiled-code compatibility: wasmtime's
/// version plus its own compatibility hash of the engine configuration.
pub(crate) fn engine_fingerprint(engine: &wasmtime::Engine) -> String {
    // SipHash with fixed keys: stable for a given build, which is all the
    // cache needs (a different wasmhost build may simply recompile).
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("wasmtime-{}-{:016x}", wasmtime_version(), h.finish())
}

/// The wasmtime version this crate was built against (a test checks it
/// against `Cargo.lock`).
pub fn wasmtime_version() -> &'static str {
    "48.0.8"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasmtime_version_matches_the_lock_file() {
        let lock = include_str!("../../../Cargo.lock");
        let locked = lock
            .split("[[package]]")
            .find(|p| p.contains("\nname = \"wasmtime\"\n"))
            .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
            .map(|v| v.trim_end_matches('"'));
        assert_eq!(locked, Some(wasmtime_version()));
    }

    #[test]
    fn verify_rejects_truncation_and_corruption() {
        let payload = b"compiled code".to_vec();
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&Sha256::digest(&payload));
        file.extend_from_slice(&payload);
        assert!(verify(&file).is_ok());
        assert_eq!(
            verify(&file[..file.len() - 1]),
            Err("checksum mismatch (truncated or corrupted)")
        );
        assert_eq!(verify(&file[..10]), Err("truncated header"));
        let mut flipped = file.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(verify(&flipped).is_err());
        let mut foreign = file;
        foreign[0] = b'X';
        assert_eq!(verify(&foreign), Err("not a wasmhost artifact"));
    }
}
