//! What a module is before it runs: its identity ([`Digest`]), its kind,
//! where its bytes come from ([`Source`]), turning input into validated
//! wasm ([`normalize`]), its compiled [`Code`] and what it imports and
//! exports ([`ItemInfo`]). Nothing here knows about sandboxes or calls.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// The sha256 of a module's wasm bytes, written `sha256:<64 hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(Sha256::digest(bytes).into())
    }

    /// The 64 lowercase hex digits.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 12 hex digits, for labels and listings.
    pub fn short(&self) -> String {
        self.hex()[..12].to_string()
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A digest from its raw 32 bytes (`corrupt` when there are not 32).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        <[u8; 32]>::try_from(bytes)
            .map(Digest)
            .map_err(|_| Error::corrupt("digest", format!("{} bytes, not 32", bytes.len())))
    }
}

impl std::str::FromStr for Digest {
    type Err = Error;

    /// Parses `sha256:<hex>` or bare hex.
    fn from_str(s: &str) -> Result<Self> {
        let hex_part = s.strip_prefix("sha256:").unwrap_or(s);
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut out).map_err(|_| {
            Error::bad_input(format!(
                "`{s}` is not a sha256 digest (sha256:<64 hex digits>)"
            ))
        })?;
        Ok(Digest(out))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.short())
    }
}

/// Core module or component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModuleKind {
    /// A core WebAssembly module.
    Core,
    /// A component-model component.
    Component,
}

impl ModuleKind {
    /// `core` or `component`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModuleKind::Core => "core",
            ModuleKind::Component => "component",
        }
    }
}

/// Where module bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Bytes in memory (wasm binary or WAT text).
    Bytes(Vec<u8>),
    /// A file (wasm binary or WAT text).
    File(PathBuf),
    /// The host process's standard input, read to EOF.
    Stdin,
}

impl Source {
    /// A file source.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Source::File(path.into())
    }

    /// `-` means stdin, anything else a file path: the CLI's convention.
    pub fn from_arg(arg: &str) -> Self {
        if arg == "-" {
            Source::Stdin
        } else {
            Source::File(PathBuf::from(arg))
        }
    }

    /// Reads the raw bytes.
    pub fn read(&self) -> Result<Vec<u8>> {
        match self {
            Source::Bytes(b) => Ok(b.clone()),
            Source::File(p) => read_file(p),
            Source::Stdin => {
                let mut buf = Vec::new();
                std::io::stdin().read_to_end(&mut buf).map_err(|e| {
                    Error::bad_input(format!("cannot read the module from stdin: {e}"))
                })?;
                Ok(buf)
            }
        }
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::not_found(format!(
            "module file `{}`",
            path.display()
        ))),
        Err(e) if path.is_dir() => Err(Error::bad_input(format!(
            "`{}` is a directory, not a module file ({e})",
            path.display()
        ))),
        Err(e) => Err(Error::bad_input(format!(
            "cannot read `{}`: {e}",
            path.display()
        ))),
    }
}

/// Turns raw input (wasm binary or WAT text) into validated wasm binary
/// bytes and tells their kind. This is what [`crate::Runtime::load_bytes`]
/// does before compiling, for tools (like a module store) that must accept
/// exactly what the runtime accepts.
pub fn normalize(raw: Vec<u8>) -> Result<(Vec<u8>, ModuleKind)> {
    let binary = to_binary(raw)?;
    let kind = kind_of(&binary)?;
    validate(&binary)?;
    Ok((binary, kind))
}

/// Turns raw input into wasm binary bytes: binaries pass through, WAT text is
/// parsed, anything else is `invalid_module` with the reason.
pub(crate) fn to_binary(raw: Vec<u8>) -> Result<Vec<u8>> {
    if raw.is_empty() {
        return Err(Error::invalid_module(
            "the input is empty (0 bytes)",
            Some(0),
        ));
    }
    if raw.starts_with(b"\0asm") {
        if raw.len() < 8 {
            return Err(Error::invalid_module(
                format!(
                    "truncated header: {} bytes, a module needs at least 8",
                    raw.len()
                ),
                Some(raw.len()),
            ));
        }
        return Ok(raw);
    }
    let text = match std::str::from_utf8(&raw) {
        Ok(t) if looks_like_wat(t) => t,
        _ => {
            return Err(Error::invalid_module(
                "not a WebAssembly binary (no `\\0asm` magic) and not WAT text",
                Some(0),
            ));
        }
    };
    wat::parse_str(text).map_err(|e| Error::invalid_module(format!("WAT: {e}"), None))
}

fn looks_like_wat(text: &str) -> bool {
    let mut rest = text.trim_start();
    // Skip leading line comments.
    while let Some(after) = rest.strip_prefix(";;") {
        rest = after
            .split_once('\n')
            .map(|(_, r)| r)
            .unwrap_or("")
            .trim_start();
    }
    rest.starts_with('(')
}

/// Tells a core module from a component by the header's version/layer field.
pub(crate) fn kind_of(binary: &[u8]) -> Result<ModuleKind> {
    if wasmparser::Parser::is_component(binary) {
        Ok(ModuleKind::Component)
    } else if wasmparser::Parser::is_core_wasm(binary) {
        Ok(ModuleKind::Core)
    } else {
        let version = binary.get(4..8).unwrap_or_default();
        Err(Error::invalid_module(
            format!("unsupported WebAssembly version/layer bytes {version:02x?}"),
            Some(4),
        ))
    }
}

/// Validates with wasmparser so that errors carry the validator's message
/// and byte offset.
pub(crate) fn validate(binary: &[u8]) -> Result<()> {
    let mut v = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    v.validate_all(binary)
        .map(|_| ())
        .map_err(|e| Error::invalid_module(e.message().to_string(), Some(e.offset())))
}

/// Compiled code of either kind.
#[derive(Clone)]
pub(crate) enum Code {
    Core(wasmtime::Module),
    Component(wasmtime::component::Component),
}

impl Code {
    pub(crate) fn is_component(&self) -> bool {
        matches!(self, Code::Component(_))
    }
}

/// An import or export of a module, for `inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ItemInfo {
    /// Import module / instance name (empty for exports).
    pub module: String,
    /// Item name.
    pub name: String,
    /// `func (i32, i32) -> (i32)`, `memory`, `instance`, …
    pub ty: String,
}

/// The `not_found` error of a call to an export `name` does not have,
/// listing the functions it does export.
pub(crate) fn missing_export(code: &Code, name: &str, export: &str) -> Error {
    let funcs: Vec<String> = exports(code)
        .into_iter()
        .filter(|e| e.ty.starts_with("func"))
        .map(|e| e.name)
        .collect();
    Error::not_found(format!(
        "export `{export}` in module {name} (exported functions: {})",
        if funcs.is_empty() {
            "none".to_string()
        } else {
            funcs.join(", ")
        }
    ))
}

/// Imports of compiled code.
pub(crate) fn imports(code: &Code) -> Vec<ItemInfo> {
    match code {
        Code::Core(m) => m
            .imports()
            .map(|i| ItemInfo {
                module: i.module().to_string(),
                name: i.name().to_string(),
                ty: extern_type(&i.ty()),
            })
            .collect(),
        Code::Component(c) => {
            let engine = c.engine();
            c.component_type()
                .imports(engine)
                .map(|(name, item)| ItemInfo {
                    module: String::new(),
                    name: name.to_string(),
                    ty: component_item(&item.ty),
                })
                .collect()
        }
    }
}

/// Exports of compiled code.
pub(crate) fn exports(code: &Code) -> Vec<ItemInfo> {
    match code {
        Code::Core(m) => m
            .exports()
            .filter(|e| !is_state_export(e.name()))
            .map(|e| ItemInfo {
                module: String::new(),
                name: e.name().to_string(),
                ty: extern_type(&e.ty()),
            })
            .collect(),
        Code::Component(c) => {
            let engine = c.engine();
            c.component_type()
                .exports(engine)
                .map(|(name, item)| ItemInfo {
                    module: String::new(),
                    name: name.to_string(),
                    ty: component_item(&item.ty),
                })
                .collect()
        }
    }
}

/// `func (i32, i32) -> (i64)`.
pub(crate) fn func_type_string(f: &wasmtime::FuncType) -> String {
    let list = |it: &mut dyn Iterator<Item = wasmtime::ValType>| {
        it.map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
    };
    format!(
        "func ({}) -> ({})",
        list(&mut f.params()),
        list(&mut f.results())
    )
}

fn extern_type(ty: &wasmtime::ExternType) -> String {
    match ty {
        wasmtime::ExternType::Func(f) => func_type_string(f),
        wasmtime::ExternType::Memory(m) => format!(
            "memory {} pages{}",
            m.minimum(),
            m.maximum()
                .map(|x| format!(" (max {x})"))
                .unwrap_or_default()
        ),
        wasmtime::ExternType::Table(t) => format!("table {} elements", t.minimum()),
        wasmtime::ExternType::Global(g) => format!("global {}", g.content()),
        wasmtime::ExternType::Tag(_) => "tag".to_string(),
    }
}

fn component_item(item: &wasmtime::component::types::ComponentItem) -> String {
    use wasmtime::component::types::ComponentItem as I;
    match item {
        I::ComponentFunc(_) => "func",
        I::CoreFunc(_) => "core func",
        I::Module(_) => "module",
        I::Component(_) => "component",
        I::ComponentInstance(_) => "instance",
        I::Type(_) => "type",
        I::Resource(_) => "resource",
    }
    .to_string()
}

/// Prefix of the exports [`instrument`] adds: `…m<index>` for a memory,
/// `…g<index>` for a mutable global (indices in the module's own index
/// spaces). Listings of exports leave them out ([`is_state_export`]).
pub(crate) const STATE_EXPORT_PREFIX: &str = "__wasmhost_state_";

/// Whether `name` is an export [`instrument`] added.
pub(crate) fn is_state_export(name: &str) -> bool {
    name.starts_with(STATE_EXPORT_PREFIX)
}

/// A core module with every memory and mutable global it defines exported
/// (see [`STATE_EXPORT_PREFIX`]), so that a snapshot can read and write
/// them — the approach of wasmtime-wizer's instrumentation. Every other
/// section is copied byte for byte; the module behaves exactly as before.
/// `None` when the module already uses the prefix, or is a WASI command
/// (exporting `_start`: wasmtime's linker accepts only functions and a few
/// well-known items among a command's exports, and a command's instance
/// runs once anyway); it then loads as it is, and cannot be snapshotted.
pub(crate) fn instrument(binary: &[u8]) -> Result<Option<Vec<u8>>> {
    use wasm_encoder::{ExportKind, ExportSection, RawSection};
    use wasmparser::{ExternalKind, Payload, TypeRef};

    let invalid = |e: wasmparser::BinaryReaderError| {
        Error::invalid_module(e.message().to_string(), Some(e.offset()))
    };
    let (mut imported_memories, mut imported_globals) = (0u32, 0u32);
    let mut added: Vec<(String, ExportKind, u32)> = Vec::new();
    let mut existing: Vec<(String, ExportKind, u32)> = Vec::new();
    // Sections in order; `None` marks where the export section goes.
    let mut sections: Vec<Option<(u8, std::ops::Range<usize>)>> = Vec::new();
    let mut export_at: Option<usize> = None;
    for payload in wasmparser::Parser::new(0).parse_all(binary) {
        let payload = payload.map_err(invalid)?;
        match &payload {
            Payload::ImportSection(reader) => {
                for import in reader.clone().into_imports() {
                    match import.map_err(invalid)?.ty {
                        TypeRef::Memory(_) => imported_memories += 1,
                        TypeRef::Global(_) => imported_globals += 1,
                        _ => {}
                    }
                }
            }
            Payload::MemorySection(reader) => {
                for (i, memory) in reader.clone().into_iter().enumerate() {
                    memory.map_err(invalid)?;
                    let index = imported_memories + i as u32;
                    added.push((
                        format!("{STATE_EXPORT_PREFIX}m{index}"),
                        ExportKind::Memory,
                        index,
                    ));
                }
            }
            Payload::GlobalSection(reader) => {
                for (i, global) in reader.clone().into_iter().enumerate() {
                    let global = global.map_err(invalid)?;
                    if global.ty.mutable {
                        let index = imported_globals + i as u32;
                        added.push((
                            format!("{STATE_EXPORT_PREFIX}g{index}"),
                            ExportKind::Global,
                            index,
                        ));
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader.clone() {
                    let e = export.map_err(invalid)?;
                    if is_state_export(e.name) || e.name == "_start" {
                        return Ok(None);
                    }
                    let kind = match e.kind {
                        ExternalKind::Func | ExternalKind::FuncExact => ExportKind::Func,
                        ExternalKind::Table => ExportKind::Table,
                        ExternalKind::Memory => ExportKind::Memory,
                        ExternalKind::Global => ExportKind::Global,
                        ExternalKind::Tag => ExportKind::Tag,
                    };
                    existing.push((e.name.to_string(), kind, e.index));
                }
                export_at = Some(sections.len());
                sections.push(None);
                continue;
            }
            _ => {}
        }
        if let Some((id, range)) = payload.as_section() {
            // Start, element, data count, code, data: the sections after exports.
            if export_at.is_none() && matches!(id, 8..=12) {
                export_at = Some(sections.len());
                sections.push(None);
            }
            sections.push(Some((id, range)));
        }
    }
    if added.is_empty() {
        return Ok(Some(binary.to_vec()));
    }
    if export_at.is_none() {
        sections.push(None);
    }
    let mut exports = ExportSection::new();
    for (name, kind, index) in existing.iter().chain(&added) {
        exports.export(name, *kind, *index);
    }
    let mut module = wasm_encoder::Module::new();
    for section in &sections {
        match section {
            Some((id, range)) => {
                module.section(&RawSection {
                    id: *id,
                    data: &binary[range.clone()],
                });
            }
            None => {
                module.section(&exports);
            }
        }
    }
    Ok(Some(module.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_round_trips() {
        let d = Digest::of(b"abc");
        assert_eq!(
            d.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert!("sha256:zz".parse::<Digest>().is_err());
    }

    #[test]
    fn input_is_classified() {
        assert_eq!(
            to_binary(vec![]).unwrap_err().code(),
            crate::ErrorCode::InvalidModule
        );
        assert_eq!(
            to_binary(vec![0xde, 0xad, 0xbe, 0xef]).unwrap_err().code(),
            crate::ErrorCode::InvalidModule
        );
        assert_eq!(
            to_binary(b"\0asm\x01".to_vec()).unwrap_err().code(),
            crate::ErrorCode::InvalidModule
        );
        let bin = to_binary(b";; hi\n(module)".to_vec()).unwrap();
        assert_eq!(kind_of(&bin).unwrap(), ModuleKind::Core);
        let err = to_binary(b"(module (func (result i32)))".to_vec()).unwrap();
        let e = validate(&err).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidModule {
                    offset: Some(_),
                    ..
                }
            ),
            "{e}"
        );
    }
}
