//! [`Snapshot`]: the whole state of a live core-module instance — every
//! linear memory and every mutable global it defines (exported or not), and
//! an Extism plugin's vars — as bytes that can be stored and given back to
//! a fresh instance of the same module.
//!
//! **How.** Core modules are compiled instrumented (`code::instrument`, the
//! approach of wasmtime-wizer): every memory and mutable global the module
//! defines gets an extra export, hidden from every listing, through which
//! the host reads and writes it. Restoring instantiates the module once
//! from its cached code — nothing is recompiled per snapshot — then grows
//! each memory to its saved size and writes the saved bytes and globals
//! back ([`crate::Instance::restore`], [`crate::Module::instantiate_from`]).
//!
//! **Format.** `WHSNAP\x01\0`, the module's digest (32 bytes), the vars,
//! the globals, then per memory its size and the indices of its non-zero
//! 4 KiB chunks followed by those chunks, LZ4-compressed; a CRC-32 of all
//! of it closes the snapshot. Untouched (zero) memory costs nothing but
//! its size, a counter with 64 KiB of memory takes a few hundred bytes.
//! Bytes that fail the checks are [`ErrorCode::Corrupt`](crate::ErrorCode::Corrupt),
//! a snapshot given to another module is
//! [`ErrorCode::SnapshotMismatch`](crate::ErrorCode::SnapshotMismatch).
//!
//! **Limits.** WASI commands (modules exporting `_start`) cannot be
//! snapshotted: their instances run once. Components cannot be snapshotted (wasmtime has no way to
//! reach a component's inner core instances from the host): keep their
//! state in `wasi:keyvalue`, and run their actors with the `never`
//! snapshot policy. Tables are not saved (a guest that changes its
//! function tables at run time resumes with its tables as instantiated),
//! nor are imported memories and globals (they belong to the host).
//!
//! ```
//! use wasmhost::{CallOptions, Runtime, RuntimeConfig, Source};
//! # fn main() -> wasmhost::Result<()> {
//! let rt = Runtime::new(RuntimeConfig::default())?;
//! let m = rt.load(&Source::Bytes(br#"(module (global $n (mut i32) (i32.const 0))
//!     (func (export "next") (result i32)
//!       global.get $n i32.const 1 i32.add global.set $n global.get $n))"#.to_vec()))?;
//! let mut counter = m.instantiate(&CallOptions::default())?;
//! counter.call("next", "")?;
//! counter.call("next", "")?;
//! let saved = counter.snapshot()?;
//! let bytes = saved.as_bytes().to_vec(); // store it anywhere
//! let mut resumed = m.instantiate_from(&CallOptions::default(), &wasmhost::Snapshot::from_bytes(bytes)?)?;
//! assert_eq!(resumed.call("next", "")?.value.integer()?, 3);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::code::{Code, Digest, STATE_EXPORT_PREFIX};
use crate::error::{Error, Result};
use crate::sandbox::{Handle, Sandbox};

const MAGIC: &[u8; 8] = b"WHSNAP\x01\0";
/// The granularity of "untouched memory": chunks of this many zero bytes
/// are not stored.
const CHUNK: usize = 4096;
const WASM_PAGE: u64 = 65536;

/// The saved state of an instance; see the [module docs](self).
#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot {
    bytes: Bytes,
    module: Digest,
    memory_bytes: u64,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("module", &self.module)
            .field("len", &self.bytes.len())
            .field("memory_bytes", &self.memory_bytes)
            .finish()
    }
}

impl Snapshot {
    /// Reads a snapshot from its bytes ([`Snapshot::as_bytes`]), checking
    /// its format and checksum (`corrupt` when they fail).
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Result<Snapshot> {
        let bytes = bytes.into();
        let parsed = Parsed::read(&bytes)?;
        let memory_bytes = parsed
            .memories
            .iter()
            .fold(0u64, |sum, m| sum.saturating_add(m.size));
        Ok(Snapshot {
            module: parsed.module,
            memory_bytes,
            bytes,
        })
    }

    /// The snapshot as bytes, to store or move.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The snapshot as bytes, without a copy.
    pub fn to_bytes(&self) -> Bytes {
        self.bytes.clone()
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether it is empty (never: a snapshot has at least its header).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The digest of the module it was taken of.
    pub fn module(&self) -> Digest {
        self.module
    }

    /// The size of the linear memories it holds (zero pages included).
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes
    }

    /// Fails with `snapshot_mismatch` unless this is a snapshot of `module`.
    pub fn check_module(&self, module: Digest) -> Result<()> {
        if self.module == module {
            return Ok(());
        }
        Err(Error::SnapshotMismatch {
            expected: module.to_string(),
            found: self.module.to_string(),
            hint: None,
        })
    }
}

/// Takes a snapshot of the live core instance `handle` in `sb`.
pub(crate) fn capture(sb: &mut Sandbox, handle: &Handle, module: Digest) -> Result<Snapshot> {
    let Handle::Core(instance) = handle else {
        return Err(components_unsupported());
    };
    let Code::Core(code) = &sb.code else {
        return Err(components_unsupported());
    };
    if code.get_export("_start").is_some() {
        return Err(Error::bad_input(format!(
            "module {} is a WASI command (it exports `_start`): its instances run once and cannot be snapshotted",
            sb.name
        )));
    }
    let mut w = Vec::with_capacity(256);
    w.extend_from_slice(MAGIC);
    w.extend_from_slice(module.as_bytes());
    let vars = sb.store.data().plugin.vars();
    put_u32(&mut w, vars.len())?;
    for (k, v) in vars {
        put_bytes(&mut w, k.as_bytes())?;
        put_bytes(&mut w, v)?;
    }
    let (memories, globals) = state_exports(code);
    put_u32(&mut w, globals.len())?;
    for (index, name) in &globals {
        let global = instance
            .get_global(&mut sb.store, name)
            .ok_or_else(|| Error::internal(format!("instrumented global `{name}` is missing")))?;
        put_u32(&mut w, *index as usize)?;
        match global.get(&mut sb.store) {
            wasmtime::Val::I32(v) => put_value(&mut w, 0, &v.to_le_bytes()),
            wasmtime::Val::I64(v) => put_value(&mut w, 1, &v.to_le_bytes()),
            wasmtime::Val::F32(v) => put_value(&mut w, 2, &v.to_le_bytes()),
            wasmtime::Val::F64(v) => put_value(&mut w, 3, &v.to_le_bytes()),
            wasmtime::Val::V128(v) => put_value(&mut w, 4, &v.as_u128().to_le_bytes()),
            wasmtime::Val::FuncRef(None)
            | wasmtime::Val::ExternRef(None)
            | wasmtime::Val::AnyRef(None)
            | wasmtime::Val::ExnRef(None)
            | wasmtime::Val::ContRef(None) => put_value(&mut w, 5, &[]),
            _ => {
                return Err(Error::bad_input(format!(
                    "cannot snapshot module {}: global {index} holds a reference, which has no portable value",
                    sb.name
                )));
            }
        }
    }
    put_u32(&mut w, memories.len())?;
    let mut chunks: Vec<u32> = Vec::new();
    let mut touched: Vec<u8> = Vec::new();
    for (index, name) in &memories {
        let memory = instance
            .get_memory(&mut sb.store, name)
            .ok_or_else(|| Error::internal(format!("instrumented memory `{name}` is missing")))?;
        let data = memory.data(&sb.store);
        chunks.clear();
        touched.clear();
        for (i, chunk) in data.chunks(CHUNK).enumerate() {
            if chunk.iter().fold(0u8, |acc, b| acc | b) != 0 {
                chunks.push(i as u32);
                touched.extend_from_slice(chunk);
            }
        }
        put_u32(&mut w, *index as usize)?;
        w.extend_from_slice(&(data.len() as u64).to_le_bytes());
        put_u32(&mut w, chunks.len())?;
        for c in &chunks {
            w.extend_from_slice(&c.to_le_bytes());
        }
        let packed = lz4_flex::block::compress(&touched);
        put_bytes(&mut w, &packed)?;
    }
    let crc = crc32fast::hash(&w);
    w.extend_from_slice(&crc.to_le_bytes());
    let mut memory_bytes = 0;
    for (_, name) in &memories {
        if let Some(m) = instance.get_memory(&mut sb.store, name) {
            memory_bytes += m.data_size(&sb.store) as u64;
        }
    }
    Ok(Snapshot {
        bytes: Bytes::from(w),
        module,
        memory_bytes,
    })
}

/// Writes `snapshot` into the live core instance `handle` in `sb` (fresh
/// from instantiation): memories grown to their saved size (through the
/// instance's limits) and overwritten, globals set, vars replaced.
pub(crate) fn restore(
    sb: &mut Sandbox,
    handle: &Handle,
    module: Digest,
    snapshot: &Snapshot,
) -> Result<()> {
    snapshot.check_module(module)?;
    let Handle::Core(instance) = handle else {
        return Err(components_unsupported());
    };
    let parsed = Parsed::read(&snapshot.bytes)?;
    for (index, value) in &parsed.globals {
        let name = format!("{STATE_EXPORT_PREFIX}g{index}");
        let global = instance
            .get_global(&mut sb.store, &name)
            .ok_or_else(|| corrupt(format!("it has global {index}, the module has none")))?;
        let v = |n: usize| -> Result<[u8; 16]> {
            let mut b = [0u8; 16];
            if value.1.len() != n {
                return Err(corrupt(format!(
                    "global {index} has {} bytes",
                    value.1.len()
                )));
            }
            b[..n].copy_from_slice(value.1);
            Ok(b)
        };
        let val = match value.0 {
            0 => wasmtime::Val::I32(i32::from_le_bytes(head(v(4)?))),
            1 => wasmtime::Val::I64(i64::from_le_bytes(head(v(8)?))),
            2 => wasmtime::Val::F32(u32::from_le_bytes(head(v(4)?))),
            3 => wasmtime::Val::F64(u64::from_le_bytes(head(v(8)?))),
            4 => wasmtime::Val::V128(u128::from_le_bytes(v(16)?).into()),
            5 => {
                v(0)?;
                match global.ty(&sb.store).content().default_value() {
                    Some(null) => null,
                    None => return Err(corrupt(format!("global {index} cannot be null"))),
                }
            }
            t => return Err(corrupt(format!("global {index} has type tag {t}"))),
        };
        global
            .set(&mut sb.store, val)
            .map_err(|e| corrupt(format!("global {index}: {e}")))?;
    }
    for saved in &parsed.memories {
        let name = format!("{STATE_EXPORT_PREFIX}m{}", saved.index);
        let memory = instance.get_memory(&mut sb.store, &name).ok_or_else(|| {
            corrupt(format!(
                "it has memory {}, the module has none",
                saved.index
            ))
        })?;
        let current = memory.data_size(&sb.store) as u64;
        if saved.size % WASM_PAGE != 0 || saved.size < current {
            return Err(corrupt(format!(
                "memory {} is {} bytes, the module starts with {current}",
                saved.index, saved.size
            )));
        }
        // Past the memory's own maximum (declared, or 4 GiB for a 32-bit
        // memory) no module could hold it: the snapshot is not this one's.
        let ty = memory.ty(&sb.store);
        let max_pages = ty
            .maximum()
            .unwrap_or(if ty.is_64() { u64::MAX } else { 1 << 16 });
        if saved.size / WASM_PAGE > max_pages {
            return Err(corrupt(format!(
                "memory {} is {} bytes, more than the memory's maximum of {max_pages} pages",
                saved.index, saved.size
            )));
        }
        if saved.size > current {
            memory
                .grow(&mut sb.store, (saved.size - current) / WASM_PAGE)
                .map_err(|e| sb.classify(e))?;
        }
        let touched = lz4_flex::block::decompress(saved.packed, saved.chunks.len() * CHUNK)
            .map_err(|e| corrupt(format!("memory {}: {e}", saved.index)))?;
        let data = memory.data_mut(&mut sb.store);
        data.fill(0);
        for (i, chunk) in saved.chunks.iter().enumerate() {
            let at = *chunk as usize * CHUNK;
            let from = &touched[i * CHUNK..(i + 1) * CHUNK];
            let end = (at + CHUNK).min(data.len());
            if at >= end {
                return Err(corrupt(format!(
                    "memory {} chunk {chunk} is out of bounds",
                    saved.index
                )));
            }
            data[at..end].copy_from_slice(&from[..end - at]);
        }
    }
    sb.store.data_mut().plugin.set_vars(parsed.vars);
    Ok(())
}

fn head<const N: usize>(b: [u8; 16]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[..N]);
    out
}

fn components_unsupported() -> Error {
    Error::bad_input(
        "components cannot be snapshotted: keep a component actor's state in wasi:keyvalue and use the `never` snapshot policy",
    )
}

fn corrupt(message: String) -> Error {
    Error::corrupt("snapshot", message)
}

/// An item's index in its index space, and its export name.
type Named = (u32, String);

/// The state exports of an instrumented module: memories and globals, each
/// as (index, export name).
fn state_exports(code: &wasmtime::Module) -> (Vec<Named>, Vec<Named>) {
    let (mut memories, mut globals) = (Vec::new(), Vec::new());
    for e in code.exports() {
        let Some(rest) = e.name().strip_prefix(STATE_EXPORT_PREFIX) else {
            continue;
        };
        let index = rest.get(1..).and_then(|i| i.parse::<u32>().ok());
        match (rest.as_bytes().first(), index, e.ty()) {
            (Some(b'm'), Some(i), wasmtime::ExternType::Memory(_)) => {
                memories.push((i, e.name().to_string()))
            }
            (Some(b'g'), Some(i), wasmtime::ExternType::Global(_)) => {
                globals.push((i, e.name().to_string()))
            }
            _ => {}
        }
    }
    (memories, globals)
}

fn put_u32(w: &mut Vec<u8>, n: usize) -> Result<()> {
    let n = u32::try_from(n).map_err(|_| Error::bad_input("snapshot: a part exceeds 4 GiB"))?;
    w.extend_from_slice(&n.to_le_bytes());
    Ok(())
}

fn put_bytes(w: &mut Vec<u8>, b: &[u8]) -> Result<()> {
    put_u32(w, b.len())?;
    w.extend_from_slice(b);
    Ok(())
}

fn put_value(w: &mut Vec<u8>, tag: u8, b: &[u8]) {
    w.push(tag);
    w.push(b.len() as u8);
    w.extend_from_slice(b);
}

/// A snapshot's contents, borrowed from its bytes.
struct Parsed<'a> {
    module: Digest,
    vars: BTreeMap<String, Vec<u8>>,
    globals: Vec<(u32, (u8, &'a [u8]))>,
    memories: Vec<SavedMemory<'a>>,
}

struct SavedMemory<'a> {
    index: u32,
    size: u64,
    chunks: Vec<u32>,
    packed: &'a [u8],
}

impl<'a> Parsed<'a> {
    fn read(bytes: &'a [u8]) -> Result<Parsed<'a>> {
        if bytes.len() < MAGIC.len() + 32 + 4 || !bytes.starts_with(MAGIC) {
            return Err(corrupt("not a wasmhost snapshot".into()));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32fast::hash(body) != crc {
            return Err(corrupt("checksum mismatch".into()));
        }
        let mut r = Reader {
            rest: &body[MAGIC.len()..],
        };
        let module = Digest::from_bytes(r.take(32)?)?;
        let mut vars = BTreeMap::new();
        for _ in 0..r.u32()? {
            let k = String::from_utf8(r.bytes()?.to_vec())
                .map_err(|_| corrupt("a var name is not UTF-8".into()))?;
            vars.insert(k, r.bytes()?.to_vec());
        }
        let mut globals = Vec::new();
        for _ in 0..r.u32()? {
            let index = r.u32()?;
            let tag = r.take(1)?[0];
            let len = r.take(1)?[0] as usize;
            globals.push((index, (tag, r.take(len)?)));
        }
        let mut memories = Vec::new();
        for _ in 0..r.u32()? {
            let index = r.u32()?;
            let size = u64::from_le_bytes(head(pad(r.take(8)?)));
            let n = r.u32()? as usize;
            let raw = r.take(
                n.checked_mul(4)
                    .ok_or_else(|| corrupt("chunk count".into()))?,
            )?;
            let chunks: Vec<u32> = raw
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            // Every chunk lies inside the memory's size, so what they
            // decompress to is never more than the memory the restore
            // grows (under the limits) before it decompresses anything.
            let in_size = size / CHUNK as u64;
            if let Some(chunk) = chunks.iter().find(|c| u64::from(**c) >= in_size) {
                return Err(corrupt(format!(
                    "memory {index} chunk {chunk} is out of bounds of its {size} bytes"
                )));
            }
            if chunks.len() as u64 > in_size {
                return Err(corrupt(format!(
                    "memory {index} has {} chunks, more than its {size} bytes hold",
                    chunks.len()
                )));
            }
            memories.push(SavedMemory {
                index,
                size,
                chunks,
                packed: r.bytes()?,
            });
        }
        if !r.rest.is_empty() {
            return Err(corrupt("trailing bytes".into()));
        }
        Ok(Parsed {
            module,
            vars,
            globals,
            memories,
        })
    }
}

fn pad(b: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..b.len().min(16)].copy_from_slice(&b[..b.len().min(16)]);
    out
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(corrupt("truncated".into()));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}
