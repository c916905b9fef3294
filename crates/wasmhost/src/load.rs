//! Loading: [`Runtime::load`] and friends, which turn a [`Source`] into a
//! [`Module`]. Loading looks the module up in memory, then on disk, and
//! only then compiles; concurrent loads of the same bytes compile once. A
//! module file loaded again unchanged is found by its path (the path
//! index, see [`crate::cache`]) without being read or hashed.
//!
//! These are [`Runtime`]'s methods, written here, above both `runtime.rs`
//! and `module.rs`, so that neither of those depends on the other's
//! callers.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::cache::{DiskRead, DiskStats, Stamp};
use crate::code::{self, Code, Digest, ModuleKind, Source};
use crate::compiled::Compiled;
use crate::error::{Error, Result};
use crate::metrics::{self, LoadSource};
use crate::module::Module;
use crate::runtime::Runtime;

impl Runtime {
    /// Loads a module from bytes, a file or stdin (wasm binary or WAT).
    ///
    /// A file loaded before, and unchanged since (same device, inode, size,
    /// mtime and ctime as recorded at least 2 s after its last change), is
    /// not read again when its compiled module is in memory or on disk: its
    /// digest comes from the path index (see [`crate::cache`]).
    pub fn load(&self, source: &Source) -> Result<Module> {
        match source {
            Source::File(path) => self.load_file(source, path),
            _ => self.load_bytes(source.read()?),
        }
    }

    /// Loads a module from bytes (wasm binary or WAT).
    ///
    /// Compiling is bounded by [`crate::CompileConfig`]: a module over the
    /// size limit is refused before it is parsed, and compiles (and WAT
    /// parses) wait for a slot among the concurrent ones.
    pub fn load_bytes(&self, raw: impl Into<Vec<u8>>) -> Result<Module> {
        let deadline = self.inner.config.compile.deadline();
        let binary = self.to_binary(raw.into(), deadline)?;
        let digest = Digest::of(&binary);
        let compiled = self.compiled(digest, &binary, deadline)?;
        self.module(compiled)
    }

    /// The module's bytes, from a binary or WAT text of at most the size
    /// limit. Parsing text takes a compile slot: a large WAT costs about as
    /// much memory and time as compiling it.
    fn to_binary(&self, raw: Vec<u8>, deadline: Option<Instant>) -> Result<Vec<u8>> {
        let limits = &self.inner.config.compile;
        limits.check_size(raw.len())?;
        if raw.starts_with(b"\0asm") {
            return code::to_binary(raw);
        }
        let _permit = self.inner.compiles.enter(deadline, || limits.timed_out())?;
        code::to_binary(raw)
    }

    /// The public handle of a compiled module, with the runtime's defaults.
    fn module(&self, compiled: Arc<Compiled>) -> Result<Module> {
        let digest = compiled.digest;
        Ok(Module {
            rt: self.inner.clone(),
            compiled,
            limits: self.inner.config.default_limits.clone(),
            caps: Default::default(),
            name: Arc::from(format!("sha256:{}", digest.short())),
            pre: Default::default(),
            metrics: Default::default(),
            linked: Arc::new([]),
            provided: Arc::new([]),
        })
    }

    /// [`Runtime::load`] of a file: through the path index when the file is
    /// unchanged, else read, hashed and recorded in the index.
    fn load_file(&self, source: &Source, path: &Path) -> Result<Module> {
        let inner = &self.inner;
        let deadline = inner.config.compile.deadline();
        // The clock is read before the file is stat-ed (see `Stamp::settled`).
        let now = crate::cache::now_ns();
        let key = std::fs::canonicalize(path).ok();
        let stamp_of = |key: &Path| std::fs::metadata(key).ok().and_then(|m| Stamp::of(&m));
        let before = key.as_deref().and_then(stamp_of);
        if let (Some(key), Some(stamp)) = (&key, &before)
            && let Some(digest) = inner.paths.lookup(key, stamp)
            && let Some(compiled) = self.cached(digest)?
        {
            inner.cache.note_path_index_hit();
            return self.module(compiled);
        }
        // A file over the size limit is refused before it is read.
        if let Some(meta) = key.as_deref().and_then(|k| std::fs::metadata(k).ok()) {
            inner
                .config
                .compile
                .check_size(usize::try_from(meta.len()).unwrap_or(usize::MAX))?;
        }
        // Read through the canonical path, so that the bytes are those of
        // the file that was stat-ed; errors name the path as given.
        let (raw, by_key) = match &key {
            Some(key) => match Source::File(key.clone()).read() {
                Ok(raw) => (raw, true),
                Err(_) => (source.read()?, false),
            },
            None => (source.read()?, false),
        };
        let binary = self.to_binary(raw, deadline)?;
        let digest = Digest::of(&binary);
        if by_key
            && let (Some(key), Some(stamp)) = (&key, before)
            && stamp_of(key) == Some(stamp)
        {
            // Unchanged while it was read: the digest is this version's.
            inner.paths.record(key, stamp, &digest, now);
        }
        let compiled = self.compiled(digest, &binary, deadline)?;
        self.module(compiled)
    }

    /// The compiled module of `digest` if it is in memory or on disk
    /// (nothing is compiled: the caller has no bytes yet). A miss in memory
    /// is counted only if the disk has it; otherwise the caller's
    /// [`Runtime::compiled`] counts it.
    fn cached(&self, digest: Digest) -> Result<Option<Arc<Compiled>>> {
        let inner = &self.inner;
        if let Some(c) = inner.cache.get(&digest, false) {
            metrics::module_loaded(&label(&digest), LoadSource::Memory, None);
            return Ok(Some(c));
        }
        inner.disk.as_ref().map_or(Ok(None), |_| {
            self.in_flight(&digest, || {
                let found = self.load_from_disk(digest);
                if found.is_some() {
                    inner.cache.note_miss();
                }
                Ok(found)
            })
        })
    }

    fn compiled(
        &self,
        digest: Digest,
        binary: &[u8],
        deadline: Option<Instant>,
    ) -> Result<Arc<Compiled>> {
        let inner = &self.inner;
        if let Some(c) = inner.cache.get(&digest, true) {
            metrics::module_loaded(&label(&digest), LoadSource::Memory, None);
            return Ok(c);
        }
        self.in_flight(&digest, || match self.load_from_disk(digest) {
            Some(c) => Ok(c),
            None => self.compile(digest, binary, deadline),
        })
    }

    /// Runs `load` for `digest` under its compile lock, unless the module
    /// reached memory while waiting for the lock, so that concurrent loads of
    /// one module compile (or deserialize) it once.
    fn in_flight<T: From<Arc<Compiled>>>(
        &self,
        digest: &Digest,
        load: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let inner = &self.inner;
        let flight = inner.cache.flight(digest);
        let result = {
            let _guard = flight.lock().unwrap_or_else(|p| p.into_inner());
            // Someone else may have finished compiling while we waited.
            match inner.cache.get(digest, false) {
                Some(c) => Ok(c.into()),
                None => load(),
            }
        };
        drop(flight);
        inner.cache.land(digest);
        result
    }

    /// The module from the disk cache, if there (see [`DiskCache::read`]
    /// for what is checked).
    fn load_from_disk(&self, digest: Digest) -> Option<Arc<Compiled>> {
        let inner = &self.inner;
        let disk = inner.disk.as_ref()?;
        let started = Instant::now();
        match disk.read(&digest, &inner.engine) {
            DiskRead::Hit {
                code,
                wasm_bytes,
                verified,
            } => {
                let took = started.elapsed();
                let c = Arc::new(Compiled::new(digest, code, wasm_bytes, took, false));
                if verified {
                    inner.cache.note_disk_verified();
                }
                inner.cache.note_disk_hit();
                inner.cache.insert(c.clone());
                metrics::module_loaded(&label(&digest), LoadSource::Disk, Some(took));
                Some(c)
            }
            DiskRead::Rejected(why) => {
                tracing::warn!(%digest, reason = %why, "cached artifact refused; recompiling");
                inner.cache.note_disk_rejected();
                None
            }
            DiskRead::Miss => None,
        }
    }

    /// Validates and compiles `binary` (within a compile slot and the
    /// deadline), then writes the artifact to disk.
    fn compile(
        &self,
        digest: Digest,
        binary: &[u8],
        deadline: Option<Instant>,
    ) -> Result<Arc<Compiled>> {
        let inner = &self.inner;
        let limits = &inner.config.compile;
        let permit = inner.compiles.enter(deadline, || limits.timed_out())?;
        let started = Instant::now();
        let engine = inner.engine.clone();
        // Without a deadline the compile runs here, on the borrowed bytes;
        // with one, on a thread of its own that needs its own copy.
        let code = match deadline {
            None => {
                let code = compile_code(&engine, binary);
                drop(permit);
                code
            }
            Some(_) => {
                let owned = binary.to_vec();
                crate::compile_gate::run_within(
                    permit,
                    deadline,
                    || limits.timed_out(),
                    move || compile_code(&engine, &owned),
                )
            }
        }?;
        let took = started.elapsed();
        inner.cache.note_compile();
        let c = Arc::new(Compiled::new(digest, code, binary.len() as u64, took, true));
        if let Some(disk) = &inner.disk {
            match c.serialize() {
                Ok(bytes) => match disk.write(&digest, c.kind(), binary.len() as u64, &bytes) {
                    Ok(()) => inner.cache.note_disk_write(),
                    Err(e) => {
                        tracing::warn!(%digest, error = %e, "could not write the compiled artifact to disk")
                    }
                },
                Err(e) => {
                    tracing::warn!(%digest, error = %e, "could not serialize the compiled module")
                }
            }
        }
        inner.cache.insert(c.clone());
        metrics::module_loaded(&label(&digest), LoadSource::Compile, Some(took));
        Ok(c)
    }

    /// Adds this process's per-module counters (loads, calls, errors, compile
    /// time) for `modules` to the stats file of the disk cache, so that
    /// `wasmhost cache ls` can show them across processes. Only counts not
    /// yet persisted are added; call it whenever convenient (the CLI does at
    /// the end of each command). Without a disk cache it does nothing.
    pub fn persist_stats(&self, modules: &[&Module]) -> Result<()> {
        let Some(disk) = &self.inner.disk else {
            return Ok(());
        };
        let deltas: Vec<_> = modules
            .iter()
            .filter_map(|m| DiskStats::take_delta(&m.compiled).map(|d| (m.digest(), d)))
            .collect();
        disk.add_stats(&deltas)
            .map_err(|e| Error::internal(format!("cannot write cache stats: {e}")))
    }
}

/// Validates and compiles a module or component (core modules
/// instrumented, so that their instances can be snapshotted).
fn compile_code(engine: &wasmtime::Engine, binary: &[u8]) -> Result<Code> {
    let kind = code::kind_of(binary)?;
    code::validate(binary)?;
    match kind {
        ModuleKind::Core => {
            let instrumented = code::instrument(binary)?;
            let wasm = instrumented.as_deref().unwrap_or(binary);
            wasmtime::Module::from_binary(engine, wasm).map(Code::Core)
        }
        ModuleKind::Component => {
            wasmtime::component::Component::from_binary(engine, binary).map(Code::Component)
        }
    }
    .map_err(|e| Error::invalid_module(format!("{e:#}"), None))
}

/// A module's label in metrics: `sha256:<12 hex>`.
fn label(digest: &Digest) -> String {
    format!("sha256:{}", digest.short())
}
