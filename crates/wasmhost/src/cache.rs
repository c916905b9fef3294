//! Compiled-module caches: one in memory, one on disk, and the path index.
//!
//! Both caches are keyed by the sha256 [`Digest`] of the module's wasm bytes.
//!
//! * The **memory cache** holds compiled modules, bounded by entry count,
//!   compiled bytes and an idle TTL, evicting the least recently used first.
//! * The **disk cache** holds compiled artifacts under
//!   `STATE/cache/<engine fingerprint>/<digest>.cwasm`, each exactly
//!   wasmtime's serialized module, so that loading maps the file
//!   (`deserialize_open_file`) instead of reading and copying it. The
//!   fingerprint covers the wasmtime version and every engine setting that
//!   affects compiled code, so artifacts from another engine are never even
//!   looked at. Beside each artifact, `<digest>.meta` records its format,
//!   kind, length and CRC-32, and the artifact's stamp (device, inode,
//!   size, mtime, ctime) as of the last load that checked the CRC in full. A
//!   load trusts an artifact whose stamp is still the recorded one and
//!   checks the CRC in full otherwise; an artifact without a valid record,
//!   of the wrong length, with a bad CRC or refused by wasmtime's own header
//!   check (another version or engine configuration) is deleted and the
//!   module recompiled. Both files are written to a temporary file, fsynced
//!   and renamed into place, so readers never see a partial one, and an
//!   artifact is never written in place, so a mapped one stays intact.
//! * The **path index** (in memory, and in `STATE/cache/paths.json` with a
//!   state directory) remembers which digest a module file had at a given
//!   stamp, so loading the same unchanged file again reads and hashes
//!   nothing when its compiled module is in memory or on disk.
//!
//! Stamps are trusted only when taken at least 2 s after the file's last
//! change: file times have a granularity, and a file changed twice within it
//! could otherwise keep a stamp it no longer earns (the racy-git problem).
//! Until then the file is read and checked (or hashed) on every load.

use std::collections::HashMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::code::{Code, Digest, ModuleKind};
use crate::compiled::Compiled;

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
    /// Of the disk hits, those whose checksum was computed in full because
    /// the artifact's stamp did not vouch for it (first load after it was
    /// written, or the file changed).
    pub disk_verified: u64,
    /// Loads of a [`crate::Source::File`] whose digest came from the path
    /// index and whose compiled module was found in memory or on disk: the
    /// file was neither read nor hashed.
    pub path_index_hits: u64,
    /// Modules compiled from wasm.
    pub compiles: u64,
    /// Entries evicted for size, count or TTL.
    pub evictions: u64,
    /// Modules in memory now.
    pub entries: u64,
    /// Compiled bytes in memory now.
    pub bytes: u64,
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

impl CachedModule {
    /// The counters and sizes of `compiled` now.
    pub(crate) fn of(compiled: &Compiled) -> Self {
        let c = &compiled.counters;
        CachedModule {
            digest: compiled.digest,
            kind: compiled.kind().as_str(),
            compiled_bytes: compiled.compiled_bytes,
            wasm_bytes: compiled.wasm_bytes,
            loads: c.loads.load(Ordering::Relaxed),
            calls: c.calls.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            compile_time: compiled.compile_time,
        }
    }
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
    disk_verified: AtomicU64,
    path_index_hits: AtomicU64,
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
    pub(crate) fn note_disk_verified(&self) {
        self.counters.disk_verified.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn note_path_index_hit(&self) {
        self.counters
            .path_index_hits
            .fetch_add(1, Ordering::Relaxed);
    }
    /// Counts a miss found out after a lookup that did not count it.
    pub(crate) fn note_miss(&self) {
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
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
            disk_verified: c.disk_verified.load(Ordering::Relaxed),
            path_index_hits: c.path_index_hits.load(Ordering::Relaxed),
            compiles: c.compiles.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            entries: lru.map.len() as u64,
            bytes: lru.bytes,
        }
    }

    /// Snapshots of the cached modules, most recently used first.
    pub(crate) fn modules(&self) -> Vec<CachedModule> {
        let lru = lock(&self.inner);
        lru.map
            .iter()
            .map(|(_, e)| CachedModule::of(&e.compiled))
            .collect()
    }
}

/// The `format` of every artifact record; a record of another format is
/// refused (and its artifact recompiled).
const ARTIFACT_FORMAT: &str = "wasmhost-artifact/2";
/// The `format` of the path index file.
const PATH_INDEX_FORMAT: &str = "wasmhost-paths/1";
/// Name of the path index in `STATE/cache/`.
pub(crate) const PATH_INDEX_FILE: &str = "paths.json";
/// At most this many paths are remembered (the oldest records go first).
const MAX_PATHS: usize = 4096;

/// How long after a file's last change (mtime or ctime) a [`Stamp`] of it
/// must have been taken to be trusted later. File times have a granularity
/// (a kernel tick on Linux, 1 or 2 s on some file systems), so a file written
/// again within the same tick as the version that was stamped can keep the
/// very same stamp: the "racy git" problem. A stamp taken this long after the
/// last change cannot be confused with a later change, whose ctime is then
/// necessarily newer. Files younger than this are simply read (and hashed)
/// again until they are old enough.
const RACY_NS: i64 = 2_000_000_000;

/// What identifies one version of a file without reading it: device, inode,
/// size, mtime and ctime. Every write, truncation, rename over it or
/// `set_modified` through the file system changes the ctime (which no
/// user can set), and replacing the file changes the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
}

impl Stamp {
    /// The stamp of a regular file (`None` for anything else, and on
    /// platforms without inode numbers and ctimes, where nothing is trusted
    /// by stamp and every load reads and checks the file).
    #[cfg(unix)]
    pub(crate) fn of(meta: &fs::Metadata) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        meta.is_file().then(|| Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        })
    }

    #[cfg(not(unix))]
    pub(crate) fn of(_meta: &fs::Metadata) -> Option<Stamp> {
        None
    }

    /// Whether a stamp taken at `taken_ns` (wall clock, taken *before* the
    /// file was stat-ed) may vouch for this version of the file: only if the
    /// file had not changed for [`RACY_NS`] by then.
    pub(crate) fn settled(&self, taken_ns: i64) -> bool {
        taken_ns.saturating_sub(self.mtime_ns.max(self.ctime_ns)) >= RACY_NS
    }
}

/// A stamp and when it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Recorded {
    #[serde(flatten)]
    stamp: Stamp,
    taken_ns: i64,
}

impl Recorded {
    /// Whether this record vouches for a file whose stamp is now `now`.
    fn vouches_for(&self, now: &Stamp) -> bool {
        self.stamp == *now && self.stamp.settled(self.taken_ns)
    }
}

/// The wall clock in nanoseconds since the Unix epoch (0 if the clock is set
/// before it, which makes every stamp unsettled).
pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Writes `bytes` to `path` atomically: a temporary file in `dir`, fsynced
/// when `durable`, renamed into place. Readers see the old file or the new
/// one, never a part.
fn write_atomic(dir: &Path, path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    if durable {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The record beside each artifact (`<digest>.meta`, JSON): what the
/// artifact is, its length and checksum, and the stamp of the artifact file
/// as it was when a load last checked that checksum in full.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct ArtifactMeta {
    format: String,
    digest: String,
    kind: String,
    /// Size of the module's wasm binary.
    wasm_bytes: u64,
    /// Length of the artifact file (wasmtime's serialized module).
    payload_len: u64,
    /// CRC-32 (IEEE) of the whole artifact file.
    crc32: u32,
    /// The artifact's stamp when its checksum last matched, if that was
    /// long enough after it was written (see [`Stamp::settled`]).
    #[serde(default)]
    verified: Option<Recorded>,
}

/// The on-disk artifact cache of one engine.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
}

/// What reading an artifact found.
pub(crate) enum DiskRead {
    /// An artifact that passed the checks, deserialized (mapped) by wasmtime.
    Hit {
        code: Code,
        /// Size of the module's wasm binary, from the record.
        wasm_bytes: u64,
        /// Whether its checksum was computed in full (its stamp did not vouch for it).
        verified: bool,
    },
    /// No artifact.
    Miss,
    /// There was an artifact but it was refused; unless the refusal may have
    /// been a concurrent writer's doing, it has been removed.
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

    fn meta_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(format!("{}.meta", digest.hex()))
    }

    fn read_meta(&self, digest: &Digest) -> Result<ArtifactMeta, String> {
        let bytes = match fs::read(self.meta_path(digest)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err("no record beside it (not written by wasmhost)".into());
            }
            Err(e) => return Err(format!("cannot read its record: {e}")),
        };
        let meta: ArtifactMeta =
            serde_json::from_slice(&bytes).map_err(|e| format!("unreadable record: {e}"))?;
        if meta.format != ARTIFACT_FORMAT {
            return Err(format!("record of another format (`{}`)", meta.format));
        }
        if meta.digest != digest.hex() {
            return Err("the record belongs to another module".into());
        }
        Ok(meta)
    }

    fn write_meta(&self, digest: &Digest, meta: &ArtifactMeta) -> std::io::Result<()> {
        let json = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
        write_atomic(&self.dir, &self.meta_path(digest), &json, true)
    }

    /// Loads the artifact of `digest`, checking it first:
    ///
    /// 1. its record (`<digest>.meta`) must exist, be of this format and name
    ///    this digest, and the file's length must be the recorded length;
    /// 2. if the file's [`Stamp`] is the one recorded after a full check (and
    ///    that record was settled), the checksum is not computed again;
    ///    otherwise the whole file is read through the same descriptor and
    ///    its CRC-32 compared with the record, and on success (once the file
    ///    is old enough) its stamp is recorded;
    /// 3. wasmtime checks its own header (version, engine settings, core
    ///    module or component) and maps the file.
    ///
    /// Anything refused is removed, so the caller recompiles and rewrites it.
    pub(crate) fn read(&self, digest: &Digest, engine: &wasmtime::Engine) -> DiskRead {
        let path = self.path(digest);
        // Taken before the first stat: see `Stamp::settled`.
        let now = now_ns();
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return DiskRead::Miss,
            Err(e) => return DiskRead::Rejected(format!("cannot open {}: {e}", path.display())),
        };
        let refuse = |why: String| {
            self.remove(digest);
            DiskRead::Rejected(format!("{}: {why}", path.display()))
        };
        let meta = match self.read_meta(digest) {
            Ok(m) => m,
            Err(why) => return refuse(why),
        };
        let kind = match meta.kind.as_str() {
            "core" => ModuleKind::Core,
            "component" => ModuleKind::Component,
            other => return refuse(format!("unknown kind `{other}` in its record")),
        };
        let (len, stamp) = match file.metadata() {
            Ok(m) => (m.len(), Stamp::of(&m)),
            Err(e) => return DiskRead::Rejected(format!("cannot stat {}: {e}", path.display())),
        };
        if len != meta.payload_len {
            return refuse(format!(
                "{len} bytes, its record says {} (truncated or replaced)",
                meta.payload_len
            ));
        }
        let wasm_bytes = meta.wasm_bytes;
        let trusted = matches!((&meta.verified, &stamp), (Some(r), Some(s)) if r.vouches_for(s));
        if !trusted {
            match crc32_of(&file) {
                Ok(sum) if sum == meta.crc32 => {}
                Ok(_) => return refuse("checksum mismatch (corrupted or replaced)".into()),
                Err(e) => {
                    return DiskRead::Rejected(format!("cannot read {}: {e}", path.display()));
                }
            }
            // The file must not have changed while it was read.
            if file.metadata().ok().and_then(|m| Stamp::of(&m)) != stamp {
                return DiskRead::Rejected(format!(
                    "{}: changed while it was checked",
                    path.display()
                ));
            }
        }
        // SAFETY: wasmtime requires the exact output of `serialize` of a
        // compatible engine, unchanged for as long as the module lives
        // (the file is mapped, not copied). The file is the one just checked:
        // either its CRC-32 matched the record written with it when this
        // process or an earlier one serialized the module (read through this
        // very descriptor), or its stamp is the one recorded after such a
        // check, which no write to it since can have kept (see
        // `Stamp::settled`). wasmtime checks its own header besides: version,
        // engine settings, core module or component. wasmhost never writes
        // into an existing artifact: a new one is renamed over it, and
        // removing one only unlinks it, so a mapped file stays intact. (Editing
        // a cached artifact in place while a process uses it breaks this, as
        // it would for `wasmtime::Module::deserialize_file`.)
        let mapped = unsafe {
            match kind {
                ModuleKind::Core => file
                    .try_clone()
                    .map_err(wasmtime::Error::from)
                    .and_then(|dup| wasmtime::Module::deserialize_open_file(engine, dup))
                    .map(Code::Core),
                ModuleKind::Component => {
                    wasmtime::component::Component::deserialize_file(engine, &path)
                        .map(Code::Component)
                }
            }
        };
        let code = match mapped {
            Ok(code) => {
                // wasmtime 48 maps a component by path, not by descriptor:
                // make sure the path still names the file that was checked.
                if kind == ModuleKind::Component
                    && fs::metadata(&path).ok().and_then(|m| Stamp::of(&m)) != stamp
                {
                    return DiskRead::Rejected(format!(
                        "{}: replaced while it was loaded",
                        path.display()
                    ));
                }
                code
            }
            // Mapping can fail where the artifact is fine (a file system
            // mounted `noexec` refuses executable mappings of its files):
            // then wasmtime gets a copy of the same, checked, bytes.
            Err(mapped) => match read_from_start(&file, meta.payload_len) {
                // SAFETY: as above; these are the bytes of the same file,
                // read through the same descriptor.
                Ok(bytes) => match unsafe { deserialize_copy(engine, kind, &bytes) } {
                    Ok(code) => code,
                    Err(e) => {
                        return refuse(format!("refused by wasmtime: {e:#} (mapped: {mapped:#})"));
                    }
                },
                Err(e) => {
                    return DiskRead::Rejected(format!("cannot read {}: {e}", path.display()));
                }
            },
        };
        if !trusted
            && let Some(s) = stamp
            && s.settled(now)
        {
            let meta = ArtifactMeta {
                verified: Some(Recorded {
                    stamp: s,
                    taken_ns: now,
                }),
                ..meta
            };
            if let Err(e) = self.write_meta(digest, &meta) {
                tracing::debug!(%digest, error = %e, "could not record the artifact's stamp");
            }
        }
        DiskRead::Hit {
            code,
            wasm_bytes,
            verified: !trusted,
        }
    }

    /// Removes the artifact of `digest` and its record, if any.
    pub(crate) fn remove(&self, digest: &Digest) {
        let _ = fs::remove_file(self.path(digest));
        let _ = fs::remove_file(self.meta_path(digest));
    }

    /// Writes the artifact (`payload`, wasmtime's serialized module) and its
    /// record, each atomically (temporary file, fsync, rename). The record
    /// carries no stamp yet: the first load at least [`RACY_NS`] later
    /// checks the checksum in full and records it. The record goes first: a
    /// reader that finds it without the artifact sees a miss (and compiles),
    /// where an artifact without its record would be refused.
    pub(crate) fn write(
        &self,
        digest: &Digest,
        kind: ModuleKind,
        wasm_bytes: u64,
        payload: &[u8],
    ) -> std::io::Result<()> {
        let meta = ArtifactMeta {
            format: ARTIFACT_FORMAT.to_string(),
            digest: digest.hex(),
            kind: kind.as_str().to_string(),
            wasm_bytes,
            payload_len: payload.len() as u64,
            crc32: crc32fast::hash(payload),
            verified: None,
        };
        self.write_meta(digest, &meta)?;
        write_atomic(&self.dir, &self.path(digest), payload, true).inspect_err(|_| {
            // A record without its artifact is a miss anyway; removing it
            // keeps a full disk from collecting them.
            let _ = fs::remove_file(self.meta_path(digest));
        })
    }

    /// Removes every artifact of this engine (with their records and its
    /// stats); returns how many artifacts there were.
    pub(crate) fn clear(&self) -> std::io::Result<usize> {
        let _ = fs::remove_file(self.dir.join(STATS_FILE));
        let mut n = 0;
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            match path.extension().and_then(|e| e.to_str()) {
                Some("cwasm") => {
                    fs::remove_file(&path)?;
                    n += 1;
                }
                Some("meta") => fs::remove_file(&path)?,
                _ => {}
            }
        }
        Ok(n)
    }
}

/// The whole of `file` (which must be `len` bytes long), whatever its
/// current position.
fn read_from_start(mut file: &fs::File, len: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    if bytes.len() as u64 != len {
        return Err(std::io::Error::other("changed length while it was read"));
    }
    Ok(bytes)
}

/// wasmtime's copying deserialization, for when the artifact cannot be mapped.
///
/// # Safety
///
/// The contract of `wasmtime::Module::deserialize`: `bytes` are exactly what
/// `serialize` of a compatible engine wrote.
unsafe fn deserialize_copy(
    engine: &wasmtime::Engine,
    kind: ModuleKind,
    bytes: &[u8],
) -> wasmtime::Result<Code> {
    // SAFETY: the caller's contract.
    unsafe {
        match kind {
            ModuleKind::Core => wasmtime::Module::deserialize(engine, bytes).map(Code::Core),
            ModuleKind::Component => {
                wasmtime::component::Component::deserialize(engine, bytes).map(Code::Component)
            }
        }
    }
}

/// CRC-32 of everything `file` holds from its current position on.
fn crc32_of(mut file: &fs::File) -> std::io::Result<u32> {
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(hasher.finalize()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// One path of the [`PathIndex`]: the digest of the file's contents when it
/// had the recorded stamp.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct PathEntry {
    digest: String,
    #[serde(flatten)]
    recorded: Recorded,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct PathIndexFile {
    format: String,
    entries: HashMap<String, PathEntry>,
}

/// Which digest a module file had: canonical path → (stamp, digest), so that
/// loading the same unchanged file again needs neither reading nor hashing
/// it. Held in memory by each runtime and, with a state directory, kept in
/// `STATE/cache/paths.json` (written atomically under a lock; an unreadable
/// file is ignored, as if empty). It is only a hint: an entry is used only
/// when the file's stamp is the recorded one and the record was settled
/// ([`Stamp::settled`]); otherwise the file is read and hashed as usual.
#[derive(Debug)]
pub(crate) struct PathIndex {
    file: Option<PathBuf>,
    /// Loaded from `file` on first use.
    entries: Mutex<Option<HashMap<PathBuf, PathEntry>>>,
}

impl PathIndex {
    /// An index kept in memory, and in `state/cache/paths.json` if given.
    pub(crate) fn new(state: Option<&Path>) -> Self {
        PathIndex {
            file: state.map(|s| s.join("cache").join(PATH_INDEX_FILE)),
            entries: Mutex::new(None),
        }
    }

    fn read_file(&self) -> HashMap<String, PathEntry> {
        self.file
            .as_ref()
            .and_then(|f| fs::read(f).ok())
            .and_then(|b| serde_json::from_slice::<PathIndexFile>(&b).ok())
            .filter(|f| f.format == PATH_INDEX_FORMAT)
            .map(|f| f.entries)
            .unwrap_or_default()
    }

    fn loaded<'a>(
        &self,
        guard: &'a mut Option<HashMap<PathBuf, PathEntry>>,
    ) -> &'a mut HashMap<PathBuf, PathEntry> {
        guard.get_or_insert_with(|| {
            self.read_file()
                .into_iter()
                .map(|(p, e)| (PathBuf::from(p), e))
                .collect()
        })
    }

    /// The digest recorded for `path` if the file's stamp is now `stamp`.
    pub(crate) fn lookup(&self, path: &Path, stamp: &Stamp) -> Option<Digest> {
        let mut guard = lock(&self.entries);
        let entry = self.loaded(&mut guard).get(path)?;
        if !entry.recorded.vouches_for(stamp) {
            return None;
        }
        entry.digest.parse().ok()
    }

    /// Records that `path`, with `stamp` (taken at `taken_ns`, before the
    /// file was stat-ed and read), holds the module `digest`. Unsettled
    /// stamps are not recorded: they could not vouch for the file later.
    pub(crate) fn record(&self, path: &Path, stamp: Stamp, digest: &Digest, taken_ns: i64) {
        if !stamp.settled(taken_ns) {
            return;
        }
        let entry = PathEntry {
            digest: digest.hex(),
            recorded: Recorded { stamp, taken_ns },
        };
        {
            let mut guard = lock(&self.entries);
            let map = self.loaded(&mut guard);
            if map
                .get(path)
                .is_some_and(|e| e.digest == entry.digest && e.recorded.stamp == stamp)
            {
                return;
            }
            map.insert(path.to_path_buf(), entry.clone());
            cap(map);
        }
        if let (Some(file), Some(key)) = (&self.file, path.to_str())
            && let Err(e) = self.persist(file, key, entry)
        {
            tracing::debug!(error = %e, "could not update the path index");
        }
    }

    /// Merges one entry into the index file, under a lock so that
    /// concurrent processes do not lose each other's entries.
    fn persist(&self, file: &Path, key: &str, entry: PathEntry) -> std::io::Result<()> {
        let dir = file.parent().unwrap_or(Path::new("."));
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("paths.lock"))?;
        lock.lock()?;
        let mut entries = self.read_file();
        entries.insert(key.to_string(), entry);
        cap(&mut entries);
        let json = serde_json::to_vec(&PathIndexFile {
            format: PATH_INDEX_FORMAT.to_string(),
            entries,
        })
        .map_err(std::io::Error::other)?;
        // Not fsynced: a torn or lost index only costs hashing files again.
        write_atomic(dir, file, &json, false)?;
        lock.unlock()
    }

    /// Forgets every path (in memory and on disk).
    pub(crate) fn clear(&self) {
        *lock(&self.entries) = Some(HashMap::new());
        if let Some(f) = &self.file {
            let _ = fs::remove_file(f);
        }
    }
}

/// Drops the oldest records beyond [`MAX_PATHS`].
fn cap<K: Clone + Eq + Hash>(map: &mut HashMap<K, PathEntry>) {
    if map.len() <= MAX_PATHS {
        return;
    }
    let mut by_age: Vec<(i64, K)> = map
        .iter()
        .map(|(k, e)| (e.recorded.taken_ns, k.clone()))
        .collect();
    by_age.sort_by_key(|(t, _)| *t);
    let excess = map.len() - MAX_PATHS;
    for (_, k) in by_age.into_iter().take(excess) {
        map.remove(&k);
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

impl DiskStats {
    /// Counts not yet written to the disk stats, marking them written.
    pub(crate) fn take_delta(compiled: &Compiled) -> Option<DiskStats> {
        let c = &compiled.counters;
        let now = (
            c.loads.load(Ordering::Relaxed),
            c.calls.load(Ordering::Relaxed),
            c.errors.load(Ordering::Relaxed),
        );
        let mut done = c.persisted.lock().unwrap_or_else(|p| p.into_inner());
        if now == *done {
            return None;
        }
        let first = *done == (0, 0, 0);
        let delta = DiskStats {
            loads: now.0 - done.0,
            calls: now.1 - done.1,
            errors: now.2 - done.2,
            compile_time_us: if first && compiled.compiled_here {
                compiled.compile_time.as_micros() as u64
            } else {
                0
            },
            wasm_bytes: compiled.wasm_bytes,
        };
        *done = now;
        Some(delta)
    }
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

/// A stable name for the engine's compiled-code compatibility: wasmtime's
/// version plus its own compatibility hash of the engine configuration.
pub(crate) fn engine_fingerprint(engine: &wasmtime::Engine) -> String {
    // SipHash with fixed keys: stable for a given build, which is all the
    // cache needs (a different wasmhost build may simply recompile).
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    // Artifacts are of instrumented core modules (`code::instrument`): a
    // change of the instrumentation is a change of the artifacts.
    crate::code::STATE_EXPORT_PREFIX.hash(&mut h);
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

    fn stamp(mtime_ns: i64, ctime_ns: i64) -> Stamp {
        Stamp {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns,
            ctime_ns,
        }
    }

    #[test]
    fn a_stamp_vouches_only_when_taken_well_after_the_last_change() {
        let s = stamp(10_000_000_000, 11_000_000_000);
        // The newer of mtime and ctime counts.
        assert!(!s.settled(12_999_999_999));
        assert!(s.settled(13_000_000_000));
        let r = Recorded {
            stamp: s,
            taken_ns: 13_000_000_000,
        };
        assert!(r.vouches_for(&s));
        assert!(!r.vouches_for(&stamp(10_000_000_000, 11_000_000_001)));
        let early = Recorded {
            stamp: s,
            taken_ns: 12_000_000_000,
        };
        assert!(!early.vouches_for(&s));
    }

    #[test]
    fn the_path_index_keeps_the_newest_records() {
        let mut map: HashMap<usize, PathEntry> = (0..MAX_PATHS + 3)
            .map(|i| {
                let entry = PathEntry {
                    digest: String::new(),
                    recorded: Recorded {
                        stamp: stamp(0, 0),
                        taken_ns: i as i64,
                    },
                };
                (i, entry)
            })
            .collect();
        cap(&mut map);
        assert_eq!(map.len(), MAX_PATHS);
        assert!((0..3).all(|i| !map.contains_key(&i)));
        assert!(map.contains_key(&3) && map.contains_key(&(MAX_PATHS + 2)));
    }
}
