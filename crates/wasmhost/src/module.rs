//! Modules: loading, identity, introspection, and the public [`Module`] handle.
//!
//! A module is identified by the sha256 [`Digest`] of its wasm bytes (WAT
//! text is converted first, so the digest is the binary's). Loading tells
//! core modules and components apart by their header, validates, and
//! compiles once per runtime (see [`crate::cache`]). A [`Module`] is cheap to
//! clone and can be called from many threads at once; each call gets a fresh
//! sandbox.
//!
//! ```no_run
//! use wasmhost::{Runtime, RuntimeConfig, Source, Value};
//! # fn main() -> wasmhost::Result<()> {
//! let rt = Runtime::new(RuntimeConfig::default())?;
//! let m = rt.load(&Source::file("add.wasm"))?;
//! let out = m.invoke("add", &[Value::I32(1), Value::I32(2)])?;
//! assert_eq!(out.value, vec![Value::I32(3)]);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::cache::{CachedModule, ModuleCounters};
use crate::call::{CallOptions, Outcome, Signature, Value, ValueType};
use crate::capabilities::{Capabilities, GrantKey};
use crate::convention::{Convention, Data};
use crate::error::{Error, Result};
use crate::exec::{Exec, run_sync};
use crate::limits::Limits;
use crate::runtime::RuntimeInner;
use std::pin::pin;

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

/// A pre-linked module for one grant shape.
#[derive(Clone)]
pub(crate) enum Pre {
    Core(wasmtime::InstancePre<crate::sandbox::HostState>),
    Component(wasmtime::component::InstancePre<crate::sandbox::HostState>),
}

/// A compiled module as the caches hold it.
pub(crate) struct Compiled {
    pub(crate) digest: Digest,
    pub(crate) code: Code,
    pub(crate) wasm_bytes: u64,
    pub(crate) compiled_bytes: u64,
    pub(crate) compile_time: Duration,
    /// Whether this process compiled it (rather than loading it from disk).
    pub(crate) compiled_here: bool,
    pub(crate) counters: ModuleCounters,
    /// A WASI reactor: a core module exporting `_initialize`, which must run
    /// once after instantiation before any other export is called.
    pub(crate) reactor: bool,
    /// The calling conventions the module's imports and exports announce.
    pub(crate) traits: crate::convention::Traits,
    pres: Mutex<HashMap<(GrantKey, Exec), Pre>>,
}

impl Compiled {
    pub(crate) fn new(
        digest: Digest,
        code: Code,
        wasm_bytes: u64,
        compile_time: Duration,
        compiled_here: bool,
    ) -> Self {
        let range = match &code {
            Code::Core(m) => m.image_range(),
            Code::Component(c) => c.image_range(),
        };
        let compiled_bytes = (range.end as usize).saturating_sub(range.start as usize) as u64;
        let reactor = matches!(&code, Code::Core(m)
            if matches!(m.get_export("_initialize"), Some(wasmtime::ExternType::Func(f))
                if f.params().len() == 0 && f.results().len() == 0));
        let traits = crate::convention::Traits::of(&code);
        Compiled {
            reactor,
            traits,
            digest,
            code,
            wasm_bytes,
            compiled_bytes,
            compile_time,
            compiled_here,
            counters: ModuleCounters::default(),
            pres: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn kind(&self) -> ModuleKind {
        match self.code {
            Code::Core(_) => ModuleKind::Core,
            Code::Component(_) => ModuleKind::Component,
        }
    }

    pub(crate) fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        match &self.code {
            Code::Core(m) => m.serialize(),
            Code::Component(c) => c.serialize(),
        }
    }

    /// Counts not yet written to the disk stats, marking them written.
    pub(crate) fn take_stats_delta(&self) -> Option<crate::cache::DiskStats> {
        let c = &self.counters;
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
        let delta = crate::cache::DiskStats {
            loads: now.0 - done.0,
            calls: now.1 - done.1,
            errors: now.2 - done.2,
            compile_time_us: if first && self.compiled_here {
                self.compile_time.as_micros() as u64
            } else {
                0
            },
            wasm_bytes: self.wasm_bytes,
        };
        *done = now;
        Some(delta)
    }

    pub(crate) fn snapshot(&self) -> CachedModule {
        let c = &self.counters;
        CachedModule {
            digest: self.digest,
            kind: self.kind().as_str(),
            compiled_bytes: self.compiled_bytes,
            wasm_bytes: self.wasm_bytes,
            loads: c.loads.load(Ordering::Relaxed),
            calls: c.calls.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            compile_time: self.compile_time,
        }
    }

    /// The `InstancePre` for `key` and `exec`, linking on first use.
    pub(crate) fn pre(&self, rt: &RuntimeInner, key: GrantKey, exec: Exec) -> Result<Pre> {
        let key = (key, exec);
        if let Some(pre) = self
            .pres
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(pre.clone());
        }
        let linkers = rt.linkers(key.0.clone(), exec)?;
        let pre = match &self.code {
            Code::Core(m) => Pre::Core(crate::sandbox::link_core(&linkers, m)?),
            Code::Component(c) => Pre::Component(crate::sandbox::link_component(&linkers, c)?),
        };
        self.pres
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, pre.clone());
        Ok(pre)
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

/// A loaded module: compiled code plus the limits and capabilities its calls
/// get by default. Cheap to clone; safe to call from many threads.
#[derive(Clone)]
pub struct Module {
    pub(crate) rt: Arc<RuntimeInner>,
    pub(crate) compiled: Arc<Compiled>,
    pub(crate) limits: Limits,
    pub(crate) caps: Capabilities,
    pub(crate) name: Arc<str>,
    /// The pre-linked module for `caps`, once linked, for each [`Exec`]
    /// (`[sync, async]`): calls with the module's own grants read it
    /// without taking any lock.
    pub(crate) pre: Arc<[std::sync::OnceLock<Pre>; 2]>,
    /// Metric handles of this module's calls, made once per function.
    pub(crate) metrics: Arc<crate::metrics::CallMetrics>,
}

impl fmt::Debug for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.name)
            .field("digest", &self.compiled.digest)
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

impl Module {
    /// The compiled wasmtime component, when this is a component, for
    /// embedders driving wasmtime directly (see [`crate::Runtime::engine`]).
    pub fn wasmtime_component(&self) -> Option<&wasmtime::component::Component> {
        match &self.compiled.code {
            Code::Component(c) => Some(c),
            Code::Core(_) => None,
        }
    }

    /// The digest of the module's wasm bytes.
    pub fn digest(&self) -> Digest {
        self.compiled.digest
    }

    /// Core module or component.
    pub fn kind(&self) -> ModuleKind {
        self.compiled.kind()
    }

    /// The name used in metrics and messages (by default `sha256:<12 hex>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The limits its calls get.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The capabilities its calls get.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// The same module with other default limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The same module with other default capabilities.
    pub fn with_capabilities(mut self, caps: Capabilities) -> Self {
        if !caps.same_shape(&self.caps) {
            self.pre = Default::default();
        }
        self.caps = caps;
        self
    }

    /// The pre-linked module for the grants of a call run by `exec`.
    pub(crate) fn pre_for(
        &self,
        opts: &CallOptions,
        exec: Exec,
    ) -> Result<std::borrow::Cow<'_, Pre>> {
        use std::borrow::Cow;
        match &opts.capabilities {
            Some(caps) if !caps.same_shape(&self.caps) => {
                Ok(Cow::Owned(self.compiled.pre(&self.rt, caps.key(), exec)?))
            }
            _ => {
                let slot = &self.pre[exec as usize];
                if let Some(pre) = slot.get() {
                    return Ok(Cow::Borrowed(pre));
                }
                let pre = self.compiled.pre(&self.rt, self.caps.key(), exec)?;
                Ok(Cow::Borrowed(slot.get_or_init(|| pre)))
            }
        }
    }

    /// The same module under another name (for metrics and messages).
    pub fn with_name(mut self, name: impl AsRef<str>) -> Self {
        self.name = Arc::from(name.as_ref());
        self.metrics = Default::default();
        self
    }

    /// Records one finished call of `function` in this module's counters
    /// and metrics ([`crate::metrics`]), as the library does for its own
    /// calls; for embedders that run the module's code themselves (the
    /// server's wasi:http worker). `error` is the failed call's code.
    pub fn record_call(
        &self,
        function: &str,
        stats: &crate::CallStats,
        error: Option<crate::ErrorCode>,
    ) {
        let counters = &self.compiled.counters;
        counters.calls.fetch_add(1, Ordering::Relaxed);
        if error.is_some() {
            counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.metrics
            .call_finished(&self.name, function, stats, error);
    }

    /// Counters and sizes of this module.
    pub fn stats(&self) -> CachedModule {
        self.compiled.snapshot()
    }

    /// The numeric signature of an exported function of a core module.
    pub fn signature(&self, export: &str) -> Result<Signature> {
        let Code::Core(m) = &self.compiled.code else {
            return Err(Error::bad_input(format!(
                "`{}` is a component; numeric invocation needs a core module",
                self.name
            )));
        };
        let Some(wasmtime::ExternType::Func(f)) = m.get_export(export) else {
            return Err(self.missing_export(export));
        };
        let conv = |tys: &mut dyn Iterator<Item = wasmtime::ValType>, what: &str| {
            tys.map(|t| {
                ValueType::from_wasm(&t).ok_or_else(|| {
                    Error::bad_input(format!(
                        "function `{export}` has a {what} of type `{t}`, which cannot be passed as a number"
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()
        };
        Ok(Signature {
            params: conv(&mut f.params(), "parameter")?,
            results: conv(&mut f.results(), "result")?,
        })
    }

    pub(crate) fn missing_export(&self, export: &str) -> Error {
        missing_export(&self.compiled, &self.name, export)
    }

    /// Imports of the module.
    pub fn imports(&self) -> Vec<ItemInfo> {
        imports(&self.compiled.code)
    }

    /// Exports of the module.
    pub fn exports(&self) -> Vec<ItemInfo> {
        exports(&self.compiled.code)
    }

    /// Exported functions with their signatures: `func (i32) -> (i32)` for
    /// a core module, WIT-style `func(a: point) -> string` for a component
    /// (functions inside exported interfaces are named `interface#function`).
    pub fn functions(&self) -> Vec<(String, String)> {
        match &self.compiled.code {
            Code::Core(m) => m
                .exports()
                .filter_map(|e| match e.ty() {
                    wasmtime::ExternType::Func(f) => {
                        Some((e.name().to_string(), func_type_string(&f)))
                    }
                    _ => None,
                })
                .collect(),
            Code::Component(c) => crate::convention::component::functions(c),
        }
    }

    /// Calls `function` with `input` in a fresh sandbox, through the calling
    /// convention the module supports (see [`crate::convention`]), with the
    /// module's defaults.
    pub fn call(&self, function: &str, input: impl AsRef<[u8]>) -> Result<Outcome<Data>> {
        self.call_with(function, input, &CallOptions::default())
    }

    /// Like [`Module::call`], with per-call options (limits, capabilities,
    /// a forced convention, WAVE arguments).
    pub fn call_with(
        &self,
        function: &str,
        input: impl AsRef<[u8]>,
        opts: &CallOptions,
    ) -> Result<Outcome<Data>> {
        run_sync(pin!(crate::sandbox::call(
            self,
            function,
            input.as_ref(),
            opts,
            Exec::Sync,
        )))
    }

    /// [`Module::call_with`] through the async API: the guest runs on the
    /// caller's executor (see [`Module::invoke_async`]).
    pub async fn call_async(
        &self,
        function: &str,
        input: impl AsRef<[u8]>,
        opts: &CallOptions,
    ) -> Result<Outcome<Data>> {
        crate::sandbox::call(self, function, input.as_ref(), opts, Exec::Async).await
    }

    /// Raw memory transfer (see [`crate::convention::raw`]): writes `input`
    /// into the guest's memory through its allocator, calls
    /// `function(ptr, len, extra...)`, reads the bytes its packed
    /// `(ptr << 32) | len` result points to, and frees both buffers.
    pub fn call_raw(
        &self,
        function: &str,
        input: &[u8],
        extra: &[Value],
        opts: &CallOptions,
    ) -> Result<Outcome<Vec<u8>>> {
        run_sync(pin!(crate::convention::raw::call_fresh(
            self,
            function,
            input,
            extra,
            opts,
            Exec::Sync,
        )))
    }

    /// [`Module::call_raw`] through the async API.
    pub async fn call_raw_async(
        &self,
        function: &str,
        input: &[u8],
        extra: &[Value],
        opts: &CallOptions,
    ) -> Result<Outcome<Vec<u8>>> {
        crate::convention::raw::call_fresh(self, function, input, extra, opts, Exec::Async).await
    }

    /// Which calling conventions `function` can be called through, or why
    /// none fits.
    pub fn conventions(
        &self,
        function: &str,
    ) -> Vec<(Convention, std::result::Result<(), String>)> {
        crate::convention::fits(self, function)
    }

    /// An instance that stays alive between calls: memory, globals and
    /// plugin variables persist (see [`crate::Instance`]).
    pub fn instantiate(&self, opts: &CallOptions) -> Result<crate::Instance> {
        run_sync(pin!(crate::instance::Instance::new(self, opts, Exec::Sync)))
    }

    /// An [`Instance`](crate::Instance) whose calls run through the async
    /// API: its `*_async` methods run the guest on the caller's executor.
    /// (Its blocking methods still work, waiting in place.)
    pub async fn instantiate_async(&self, opts: &CallOptions) -> Result<crate::Instance> {
        crate::instance::Instance::new(self, opts, Exec::Async).await
    }
}

pub(crate) fn missing_export(compiled: &Compiled, name: &str, export: &str) -> Error {
    let funcs: Vec<String> = exports(&compiled.code)
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
fn imports(code: &Code) -> Vec<ItemInfo> {
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
fn exports(code: &Code) -> Vec<ItemInfo> {
    match code {
        Code::Core(m) => m
            .exports()
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

impl Module {
    /// Calls a numeric export in a fresh sandbox with the module's defaults.
    pub fn invoke(&self, export: &str, args: &[Value]) -> Result<Outcome<Vec<Value>>> {
        self.invoke_with(export, args, &CallOptions::default())
    }

    /// Calls a numeric export in a fresh sandbox.
    pub fn invoke_with(
        &self,
        export: &str,
        args: &[Value],
        opts: &CallOptions,
    ) -> Result<Outcome<Vec<Value>>> {
        run_sync(pin!(crate::sandbox::invoke(
            self,
            export,
            args,
            opts,
            Exec::Sync
        )))
    }

    /// Calls a numeric export in a fresh sandbox, through the async API:
    /// the guest runs on a fiber on the caller's executor, yields to it at
    /// every epoch tick, and host functions that wait are awaited there.
    /// Dropping the future stops the guest and frees everything it held.
    ///
    /// ```
    /// use wasmhost::{CallOptions, Runtime, RuntimeConfig, Source, Value};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> wasmhost::Result<()> {
    /// let rt = Runtime::new(RuntimeConfig::default())?;
    /// let m = rt.load(&Source::Bytes(br#"(module (func (export "add") (param i32 i32) (result i32)
    ///     local.get 0 local.get 1 i32.add))"#.to_vec()))?;
    /// let out = m.invoke_async("add", &[Value::I32(2), Value::I32(3)], &CallOptions::default()).await?;
    /// assert_eq!(out.value, vec![Value::I32(5)]);
    /// # Ok(()) }
    /// ```
    pub async fn invoke_async(
        &self,
        export: &str,
        args: &[Value],
        opts: &CallOptions,
    ) -> Result<Outcome<Vec<Value>>> {
        crate::sandbox::invoke(self, export, args, opts, Exec::Async).await
    }

    /// Parses `args` against the export's signature, then calls it.
    pub fn invoke_text<S: AsRef<str>>(
        &self,
        export: &str,
        args: &[S],
        opts: &CallOptions,
    ) -> Result<Outcome<Vec<Value>>> {
        let sig = self.signature(export)?;
        if sig.params.len() != args.len() {
            return Err(Error::bad_input(format!(
                "function `{export}` takes {} argument(s) {sig}, {} given",
                sig.params.len(),
                args.len()
            )));
        }
        let values = sig
            .params
            .iter()
            .zip(args)
            .map(|(ty, a)| Value::parse(*ty, a.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        self.invoke_with(export, &values, opts)
    }

    /// Runs a WASI command: `_start` of a core module or `wasi:cli/run` of a
    /// component. A non-zero exit status is an [`Error::Exit`].
    pub fn run(&self, opts: &CallOptions) -> Result<Outcome<()>> {
        run_sync(pin!(crate::sandbox::run_command(self, opts, Exec::Sync)))
    }

    /// [`Module::run`] through the async API.
    pub async fn run_async(&self, opts: &CallOptions) -> Result<Outcome<()>> {
        crate::sandbox::run_command(self, opts, Exec::Async).await
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
