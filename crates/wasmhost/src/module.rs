//! The public [`Module`] handle: introspection, and calls in a fresh
//! sandbox.
//!
//! A module is identified by the sha256 [`Digest`] of its wasm bytes (WAT
//! text is converted first, so the digest is the binary's); loading it is
//! [`crate::Runtime::load`]. A [`Module`] is cheap to clone and can be
//! called from many threads at once; each call gets a fresh sandbox, made
//! from the module's [`Spec`], and is recorded in its counters and metrics
//! ([`record`]). The fresh-sandbox calls (numeric, through a convention,
//! raw transfer, a WASI command) are the `async fn`s at the end of this
//! file; the blocking methods poll them in place.
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

use std::fmt;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use wasmtime_wasi::I32Exit;

use crate::cache::CachedModule;
use crate::call::{CallOptions, CallStats, Outcome, Signature, Value, ValueType};
use crate::capabilities::Capabilities;
use crate::code::{Code, Digest, ItemInfo, ModuleKind, func_type_string};
use crate::compiled::Compiled;
use crate::compose;
use crate::convention::{self, Convention, Data};
use crate::error::{Error, Result};
use crate::exec::{Exec, run_sync};
use crate::limits::Limits;
use crate::runtime::RuntimeInner;
use crate::sandbox::{Handle, Pre, Sandbox, SandboxConfig, Spec, invoke_in};
use crate::state::HostState;

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
    /// Core modules linked to this one by name ([`Module::link`]), in the
    /// order they were linked.
    pub(crate) linked: Arc<[(Arc<str>, Arc<Compiled>)]>,
    /// Interfaces of this component provided by other components
    /// ([`Module::link`] with components), checked, in the order linked;
    /// with the provider modules themselves.
    pub(crate) provided: Arc<[(compose::Provided, Module)]>,
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

    /// Links `dep` to this module under `name`.
    ///
    /// **Core modules** link by name, as an Extism manifest's named modules
    /// are linked: every call defines the linked
    /// modules first, as wasmtime's `Linker::module` does (in an order where
    /// each comes after those it imports from; a reactor or plain module is
    /// instantiated once per sandbox and its `_initialize` run, a command's
    /// exports each get a fresh instance per call), and an import `(import "NAME" "f" …)` of this module, or of a module
    /// linked after `dep`, reaches `dep`'s export `f`. Linked modules share
    /// this module's grants, limits and store (one memory limit, one fuel
    /// budget, one Extism kernel). Linking is checked at the first call: an
    /// import nothing provides is `link_error`.
    ///
    /// **Components** link by interface, as `wac plug` composes them: `name`
    /// is an interface this component imports (`wasmhost:example/console`,
    /// with or without its `@version`), and the component `dep` provides it
    /// with the interface of that name it exports. Unlike core modules, the
    /// two are kept apart: the provider runs in its own store, with *its*
    /// limits and grants (those of `dep` as given, see
    /// [`Module::with_limits`] and [`Module::with_capabilities`]), made
    /// when the consumer first calls into it and kept as long as the
    /// consumer's instance; arguments and results are copied across. Each
    /// call into the provider gets its fuel and timeout afresh; its memory
    /// limit holds for its instance; a failure in it fails the consumer's
    /// call with the provider's error code. Interfaces linked to the same
    /// provider (same digest and name) share one instance of it. Checked
    /// here: an interface the consumer does not import is `bad_input`; a
    /// provider that does not export it, lacks one of its functions or
    /// exports one with another type is `link_error`, and so is an
    /// interface passing resources, which cannot cross stores. An import
    /// that nothing provides is `link_error` at the first call, naming it.
    /// The provider's standard output and error are the host's when the
    /// consumer's call inherits them (`wasmhost run`), else discarded.
    ///
    /// `dep` must be loaded by the same runtime, of the same kind as this
    /// module; a name linked twice is `bad_input`.
    ///
    /// ```
    /// use wasmhost::{Runtime, RuntimeConfig, Source, Value};
    /// # fn main() -> wasmhost::Result<()> {
    /// let rt = Runtime::new(RuntimeConfig::default().pool(None))?;
    /// let lib = rt.load(&Source::Bytes(br#"(module (func (export "twice") (param i32) (result i32)
    ///     local.get 0 i32.const 2 i32.mul))"#.to_vec()))?;
    /// let main = rt.load(&Source::Bytes(br#"(module (import "lib" "twice" (func $t (param i32) (result i32)))
    ///     (func (export "run") (result i32) i32.const 21 call $t))"#.to_vec()))?;
    /// let main = main.link("lib", &lib)?;
    /// assert_eq!(main.invoke("run", &[])?.value, vec![Value::I32(42)]);
    /// # Ok(()) }
    /// ```
    ///
    /// Two components (see `guests/rust/link-consumer` and `link-provider`):
    ///
    /// ```no_run
    /// use wasmhost::{Capabilities, Limits, Runtime, RuntimeConfig, Source, Wasi};
    /// # fn main() -> wasmhost::Result<()> {
    /// let rt = Runtime::new(RuntimeConfig::default())?;
    /// let wasi = Capabilities::none().with_wasi(Wasi::standard());
    /// let provider = rt.load(&Source::file("link-provider.wasm"))?
    ///     .with_capabilities(wasi.clone())
    ///     .with_limits(Limits::default().max_memory_bytes(4 << 20));
    /// let consumer = rt.load(&Source::file("link-consumer.wasm"))?
    ///     .with_capabilities(wasi)
    ///     .link("wasmhost:example/console", &provider)?
    ///     .link("wasmhost:example/events", &provider)?;
    /// let out = consumer.call("greet", r#""ada""#)?;
    /// # Ok(()) }
    /// ```
    pub fn link(mut self, name: impl AsRef<str>, dep: &Module) -> Result<Module> {
        let name = name.as_ref();
        if !Arc::ptr_eq(&self.rt, &dep.rt) {
            return Err(Error::bad_input(format!(
                "module `{name}` was loaded by another runtime; load both with the same one"
            )));
        }
        if let (Code::Component(consumer), Code::Component(provider)) =
            (&self.compiled.code, &dep.compiled.code)
        {
            let consumer = consumer.clone();
            return self.link_component(name, consumer, provider, dep);
        }
        for (what, m) in [("the main module", &self), (name, dep)] {
            if m.kind() != ModuleKind::Core {
                return Err(Error::bad_input(format!(
                    "cannot link {what}: it is a component and the other a core module; \
                     core modules link to core modules by name, components to components \
                     by interface"
                )));
            }
        }
        if self.linked.iter().any(|(n, _)| &**n == name) {
            return Err(Error::bad_input(format!(
                "two modules are linked under the name `{name}`"
            )));
        }
        let mut linked = self.linked.to_vec();
        linked.push((Arc::from(name), dep.compiled.clone()));
        self.linked = linked.into();
        self.pre = Default::default();
        Ok(self)
    }

    /// [`Module::link`] for two components.
    fn link_component(
        mut self,
        interface: &str,
        consumer: wasmtime::component::Component,
        provider: &wasmtime::component::Component,
        dep: &Module,
    ) -> Result<Module> {
        // One provider instance per provider (digest and name).
        let slot = self
            .provided
            .iter()
            .find(|(_, m)| m.digest() == dep.digest() && m.name == dep.name)
            .map(|(p, _)| p.slot)
            .unwrap_or_else(|| {
                self.provided
                    .iter()
                    .map(|(p, _)| p.slot + 1)
                    .max()
                    .unwrap_or(0)
            });
        let owned = dep.clone();
        let start: compose::Start = Arc::new(move |exec, stdout, stderr| {
            let opts = CallOptions::default().stdout(stdout).stderr(stderr);
            let pre = owned.pre_for(&opts, exec)?.into_owned();
            let sb = Sandbox::new(owned.spec(), &opts, exec)?;
            Ok((sb, pre))
        });
        let provided = compose::check(
            &consumer, &self.name, interface, provider, &dep.name, slot, start,
        )?;
        if self
            .provided
            .iter()
            .any(|(p, _)| p.import == provided.import)
        {
            return Err(Error::bad_input(format!(
                "interface `{}` is linked twice",
                provided.import
            )));
        }
        let mut all = self.provided.to_vec();
        all.push((provided, dep.clone()));
        self.provided = all.into();
        self.pre = Default::default();
        Ok(self)
    }

    /// The names and digests of the modules linked to this one
    /// ([`Module::link`]): core modules by name, then the providers of a
    /// component's interfaces by interface (as the component imports it).
    pub fn linked(&self) -> Vec<(String, Digest)> {
        self.linked
            .iter()
            .map(|(n, c)| (n.to_string(), c.digest))
            .chain(
                self.provided
                    .iter()
                    .map(|(p, m)| (p.import.clone(), m.digest())),
            )
            .collect()
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
                Ok(Cow::Owned(self.link_pre(caps.key(), exec)?))
            }
            _ => {
                let slot = &self.pre[exec as usize];
                if let Some(pre) = slot.get() {
                    return Ok(Cow::Borrowed(pre));
                }
                let pre = self.link_pre(self.caps.key(), exec)?;
                Ok(Cow::Borrowed(slot.get_or_init(|| pre)))
            }
        }
    }

    /// Pre-links the module (with its linked modules, if any) for a grant
    /// shape and `exec`.
    fn link_pre(&self, key: crate::capabilities::GrantKey, exec: Exec) -> Result<Pre> {
        if !self.provided.is_empty() {
            let Code::Component(c) = &self.compiled.code else {
                return Err(Error::internal("a core module with provided interfaces"));
            };
            let linkers = self.rt.linkers(key, exec)?;
            let provided: Vec<compose::Provided> =
                self.provided.iter().map(|(p, _)| p.clone()).collect();
            let pre = linkers.link_component_with(c, &provided, exec)?;
            return Ok(Pre::Component(pre));
        }
        if self.linked.is_empty() {
            return self.compiled.pre(key, exec, |k, e| self.rt.linkers(k, e));
        }
        let core = |c: &Compiled| match &c.code {
            Code::Core(m) => Ok(m.clone()),
            Code::Component(_) => Err(Error::bad_input("only core modules link by name")),
        };
        let deps = self
            .linked
            .iter()
            .map(|(n, c)| Ok((n.to_string(), core(c)?)))
            .collect::<Result<Vec<_>>>()?;
        let linkers = self.rt.linkers(key, exec)?;
        let pre = linkers.link_linked(&core(&self.compiled)?, &deps)?;
        Ok(Pre::Linked(Arc::new(pre)))
    }

    /// What a sandbox of this module is made of.
    pub(crate) fn spec(&self) -> Spec<'_> {
        let config = &self.rt.config;
        Spec {
            engine: &self.rt.engine,
            config: SandboxConfig {
                fuel_metering: config.fuel_metering,
                epoch_tick: config.epoch_tick,
                max_wasm_stack: config.max_wasm_stack,
            },
            code: &self.compiled.code,
            reactor: self.compiled.reactor,
            name: &self.name,
            limits: &self.limits,
            caps: &self.caps,
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
        CachedModule::of(&self.compiled)
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
        crate::code::missing_export(&self.compiled.code, &self.name, export)
    }

    /// Imports of the module.
    pub fn imports(&self) -> Vec<ItemInfo> {
        crate::code::imports(&self.compiled.code)
    }

    /// Exports of the module.
    pub fn exports(&self) -> Vec<ItemInfo> {
        crate::code::exports(&self.compiled.code)
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

    /// A component's exported functions with their parameter and result
    /// types as JSON — `{"params": [{"name", "type"}], "results": [type]}`,
    /// each type as [`crate::convention::component`] describes
    /// (`"s32"`, `{"record": [{"name": "x", "type": "s32"}]}`, …) — for
    /// clients that convert the convention's JSON values themselves. Empty
    /// for a core module.
    pub fn function_types(&self) -> Vec<(String, serde_json::Value)> {
        match &self.compiled.code {
            Code::Core(_) => Vec::new(),
            Code::Component(c) => crate::convention::component::function_types(c),
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
        run_sync(pin!(fresh_call(
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
        fresh_call(self, function, input.as_ref(), opts, Exec::Async).await
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
        run_sync(pin!(fresh_call_raw(
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
        fresh_call_raw(self, function, input, extra, opts, Exec::Async).await
    }

    /// Which calling conventions `function` can be called through, or why
    /// none fits.
    pub fn conventions(
        &self,
        function: &str,
    ) -> Vec<(Convention, std::result::Result<(), String>)> {
        convention::fits(&self.compiled.code, &self.compiled.traits, function)
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
        run_sync(pin!(fresh_invoke(self, export, args, opts, Exec::Sync)))
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
        fresh_invoke(self, export, args, opts, Exec::Async).await
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
        run_sync(pin!(fresh_run(self, opts, Exec::Sync)))
    }

    /// [`Module::run`] through the async API.
    pub async fn run_async(&self, opts: &CallOptions) -> Result<Outcome<()>> {
        fresh_run(self, opts, Exec::Async).await
    }
}

// ----- calls in a fresh sandbox ------------------------------------------

/// Records the metrics and per-module counters of a finished call.
pub(crate) fn record<T>(
    module: &Module,
    function: &str,
    started: Instant,
    result: &Result<Outcome<T>>,
) {
    let counters = &module.compiled.counters;
    counters.calls.fetch_add(1, Ordering::Relaxed);
    match result {
        Ok(out) => module
            .metrics
            .call_finished(&module.name, function, &out.stats, None),
        Err(e) => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            let stats = CallStats {
                duration: started.elapsed(),
                ..CallStats::default()
            };
            module
                .metrics
                .call_finished(&module.name, function, &stats, Some(e.code()));
        }
    }
}

/// A fresh sandbox for one call of `export`, instantiated.
async fn fresh(
    module: &Module,
    export: &str,
    opts: &CallOptions,
    exec: Exec,
) -> Result<(Sandbox, Handle)> {
    let pre = module.pre_for(opts, exec)?;
    let mut sb = Sandbox::new(module.spec(), opts, exec)?;
    let handle = sb.instantiate(&pre, Some(export)).await?;
    Ok((sb, handle))
}

/// Calls a numeric export in a fresh sandbox.
async fn fresh_invoke(
    module: &Module,
    export: &str,
    args: &[Value],
    opts: &CallOptions,
    exec: Exec,
) -> Result<Outcome<Vec<Value>>> {
    let started = Instant::now();
    let result = async {
        if module.compiled.code.is_component() {
            return Err(Error::bad_input(format!(
                "`{}` is a component; numeric invocation needs a core module",
                module.name
            )));
        }
        let (mut sb, handle) = fresh(module, export, opts, exec).await?;
        let values = invoke_in(&mut sb, handle, export, args).await?;
        sb.finish(values)
    }
    .await;
    record(module, export, started, &result);
    result
}

/// Calls `function` in a fresh sandbox with raw transfer.
async fn fresh_call_raw(
    module: &Module,
    function: &str,
    input: &[u8],
    extra: &[Value],
    opts: &CallOptions,
    exec: Exec,
) -> Result<Outcome<Vec<u8>>> {
    let started = Instant::now();
    let result = async {
        let pre = module.pre_for(opts, exec)?;
        let mut sb = Sandbox::new(module.spec(), opts, exec)?;
        let handle = sb.instantiate(&pre, Some(function)).await?;
        let out = convention::raw::call(
            &mut sb,
            handle,
            &module.compiled.traits,
            function,
            input,
            extra,
        )
        .await?;
        sb.finish(out)
    }
    .await;
    record(module, function, started, &result);
    result
}

/// Calls `function` in a fresh sandbox through a calling convention.
async fn fresh_call(
    module: &Module,
    function: &str,
    input: &[u8],
    opts: &CallOptions,
    exec: Exec,
) -> Result<Outcome<Data>> {
    let started = Instant::now();
    let result = async {
        let convention = match opts.convention {
            Some(c) => c,
            None => convention::detect(
                &module.compiled.code,
                &module.compiled.traits,
                &module.name,
                function,
            )?,
        };
        let (mut sb, handle) = fresh(module, function, opts, exec).await?;
        let data = convention::call_in(
            &mut sb,
            handle,
            &module.compiled.traits,
            convention,
            function,
            input,
            opts.args,
        )
        .await?;
        sb.finish(data)
    }
    .await;
    record(module, function, started, &result);
    result
}

/// Runs a WASI command (`_start`, `wasi:cli/run`) in a fresh sandbox.
pub(crate) async fn fresh_run(
    module: &Module,
    opts: &CallOptions,
    exec: Exec,
) -> Result<Outcome<()>> {
    let started = Instant::now();
    let result = run_inner(module, opts, exec).await;
    record(module, "_start", started, &result);
    result
}

async fn run_inner(module: &Module, opts: &CallOptions, exec: Exec) -> Result<Outcome<()>> {
    let pre = module.pre_for(opts, exec)?;
    let mut sb = Sandbox::new(module.spec(), opts, exec)?;
    let run = match &*pre {
        Pre::Core(_) | Pre::Linked(_) => {
            let Handle::Core(instance) = sb.instantiate(&pre, Some("_start")).await? else {
                return Err(Error::internal("a core module instantiated as a component"));
            };
            let start = match instance.get_typed_func::<(), ()>(&mut sb.store, "_start") {
                Ok(f) => f,
                Err(_) => {
                    return Err(Error::not_found(format!(
                        "export `_start` in module {}: it is not a WASI command (use --invoke to call one of its functions)",
                        module.name
                    )));
                }
            };
            sb.call_typed_raw(&start, ()).await
        }
        Pre::Component(pre) => run_component(&mut sb, pre, exec, &module.name).await?,
    };
    match run {
        Ok(()) => sb.finish(()),
        Err(e) => match sb.classify(e) {
            Error::Exit { code: 0, .. } => sb.finish(()),
            other => Err(other),
        },
    }
}

/// Instantiates a component as a `wasi:cli` command and runs it; the outer
/// error is a component that is not a command, the inner one the run's.
async fn run_component(
    sb: &mut Sandbox,
    pre: &wasmtime::component::InstancePre<HostState>,
    exec: Exec,
    name: &str,
) -> Result<wasmtime::Result<()>> {
    let not_command = |e: wasmtime::Error| {
        Error::not_found(format!(
            "export `wasi:cli/run` in component {name}: it is not a WASI command ({e})"
        ))
    };
    let exited = |r: wasmtime::Result<std::result::Result<(), ()>>| match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(())) => Err(wasmtime::Error::new(I32Exit(1))),
        Err(e) => Err(e),
    };
    Ok(match exec {
        Exec::Sync => {
            let pre = wasmtime_wasi::p2::bindings::sync::CommandPre::new(pre.clone())
                .map_err(not_command)?;
            match pre.instantiate(&mut sb.store) {
                Ok(cmd) => exited(cmd.wasi_cli_run().call_run(&mut sb.store)),
                Err(e) => Err(e),
            }
        }
        Exec::Async => {
            let pre =
                wasmtime_wasi::p2::bindings::CommandPre::new(pre.clone()).map_err(not_command)?;
            match pre.instantiate_async(&mut sb.store).await {
                Ok(cmd) => exited(cmd.wasi_cli_run().call_run(&mut sb.store).await),
                Err(e) => Err(e),
            }
        }
    })
}
