//! One call, one sandbox: store creation, instantiation, the call itself,
//! and turning whatever went wrong into one of wasmhost's error codes.
//!
//! A call builds a new wasmtime `Store` holding a [`HostState`] (limits,
//! the WASI context if granted, log lines, the plugin state of the calling
//! conventions), instantiates the module's cached `InstancePre` in it (a
//! pooled slot with a copy-on-write memory image), calls, and drops the
//! store. Nothing survives from one call to the next, so a trap leaves the
//! module as usable as before. A [`crate::Instance`] keeps the sandbox
//! instead and calls it again ([`Sandbox::begin`] resets the per-call
//! budget).
//!
//! Every call path here is an `async fn`; the sandbox's [`Exec`] picks
//! wasmtime's synchronous or async entry points (see `exec.rs`), so the
//! blocking and the async API share this code.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

use crate::call::{CallOptions, CallStats, Outcome, Value};
use crate::capabilities::kv::KeyValue;
use crate::capabilities::log::LogBuffer;
use crate::capabilities::wasi::Captures;
use crate::capabilities::{Capabilities, Linkers};
use crate::convention::extism::PluginState;
use crate::engine::deadline_ticks;
use crate::error::{Error, MissingImport, Result};
use crate::exec::Exec;
use crate::limits::{Limiter, Limits};
use crate::module::{Code, Compiled, Module, Pre};
use crate::runtime::RuntimeInner;

/// The host side of one sandbox (one wasmtime `Store`): limits, the WASI
/// context if granted, the guest's log lines and the state of the calling
/// conventions. Host functions registered with
/// [`crate::HostFunctions::core`] may take a `wasmtime::Caller<'_, HostState>`
/// to reach the guest's exports; its contents are private.
pub struct HostState {
    pub(crate) limiter: Limiter,
    wasi_p1: Option<WasiP1Ctx>,
    wasi_p2: Option<WasiCtx>,
    pub(crate) table: ResourceTable,
    pub(crate) logs: LogBuffer,
    pub(crate) plugin: PluginState,
    /// The call's key-value grant, if any.
    pub(crate) kv: Option<KeyValue>,
    /// When the current call must stop: checked at every epoch tick by
    /// stores driven asynchronously (synchronous ones count ticks instead),
    /// and what bounds an Extism plugin's HTTP request.
    pub(crate) deadline: Option<Instant>,
    /// When the current call started (async stores yield once it has run
    /// for a tick).
    pub(crate) started: Instant,
}

impl std::fmt::Debug for HostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostState").finish_non_exhaustive()
    }
}

impl HostState {
    /// A state with nothing granted, used to enumerate linker definitions.
    pub(crate) fn empty() -> Self {
        Self::empty_at(Instant::now())
    }

    /// A state with nothing granted, its call started at `now`.
    fn empty_at(now: Instant) -> Self {
        HostState {
            limiter: Limiter::new(&Limits::default()),
            wasi_p1: None,
            wasi_p2: None,
            table: ResourceTable::new(),
            logs: LogBuffer::default(),
            plugin: PluginState::default(),
            kv: None,
            deadline: None,
            started: now,
        }
    }

    /// Accessor handed to wasmtime-wasi's preview-1 linker. The preview-1
    /// functions are only linked when WASI is granted, and every store of a
    /// core module with WASI granted gets a context, so this cannot fail.
    pub(crate) fn wasi_p1(&mut self) -> &mut WasiP1Ctx {
        self.wasi_p1
            .as_mut()
            .expect("invariant: WASI p1 is linked only for stores that carry a p1 context")
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: self
                .wasi_p2
                .as_mut()
                .expect("invariant: WASI p2 is linked only for stores that carry a p2 context"),
            table: &mut self.table,
        }
    }
}

/// Makes an async store stop with a `timeout` trap once past
/// `deadline(data)`, and yield to the executor at every epoch tick once the
/// call has run for `after` (the runtime's epoch tick): a short call that a
/// tick happens to catch goes on, a long one gives the executor back at
/// least every other tick. tokio's `yield_now` (rather than a plain
/// self-wake) puts the task behind the I/O the runtime has waiting, so a
/// spinning guest cannot starve tasks woken by sockets and timers; outside
/// tokio it is a plain yield. The store's epoch deadline must be set to 1
/// tick before each call.
pub(crate) fn yield_at_ticks<T: 'static>(
    store: &mut Store<T>,
    after: std::time::Duration,
    times: impl Fn(&T) -> (Instant, Option<Instant>) + Send + Sync + 'static,
) {
    store.epoch_deadline_callback(move |ctx| {
        let (started, deadline) = times(ctx.data());
        let now = Instant::now();
        Ok(match deadline {
            Some(deadline) if now >= deadline => UpdateDeadline::Interrupt,
            _ if now.duration_since(started) < after => UpdateDeadline::Continue(1),
            _ => UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())),
        })
    });
}

/// Pre-links a core module, reporting every missing import at once.
pub(crate) fn link_core(
    linkers: &Linkers,
    module: &wasmtime::Module,
) -> Result<wasmtime::InstancePre<HostState>> {
    if linkers.key.trap_unknown() {
        let mut linker = linkers.core.clone();
        return linker
            .define_unknown_imports_as_traps(module)
            .and_then(|()| linker.instantiate_pre(module))
            .map_err(link_failed);
    }
    let missing: Vec<MissingImport> = module
        .imports()
        .filter(|i| {
            !linkers
                .core_names
                .contains(&(i.module().to_string(), i.name().to_string()))
        })
        .map(|i| MissingImport {
            module: i.module().to_string(),
            name: i.name().to_string(),
            kind: kind_name(&i.ty()).to_string(),
        })
        .collect();
    if !missing.is_empty() {
        return Err(Error::Link {
            missing,
            detail: None,
        });
    }
    linkers.core.instantiate_pre(module).map_err(link_failed)
}

/// A linking failure wasmtime explains itself (a type mismatch, say).
fn link_failed(e: wasmtime::Error) -> Error {
    Error::Link {
        missing: Vec::new(),
        detail: Some(format!("{e:#}")),
    }
}

fn kind_name(ty: &wasmtime::ExternType) -> &'static str {
    match ty {
        wasmtime::ExternType::Func(_) => "func",
        wasmtime::ExternType::Memory(_) => "memory",
        wasmtime::ExternType::Table(_) => "table",
        wasmtime::ExternType::Global(_) => "global",
        wasmtime::ExternType::Tag(_) => "tag",
    }
}

/// WASI preview-2 packages the component linker provides when WASI is granted.
const WASI_P2_PACKAGES: [&str; 6] = [
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:io/",
    "wasi:random/",
    "wasi:sockets/",
];

/// Pre-links a component; on failure lists every import nothing granted provides.
pub(crate) fn link_component(
    linkers: &Linkers,
    component: &wasmtime::component::Component,
) -> Result<wasmtime::component::InstancePre<HostState>> {
    if linkers.key.trap_unknown() {
        let mut linker = linkers.component.clone();
        return linker
            .define_unknown_imports_as_traps(component)
            .and_then(|()| linker.instantiate_pre(component))
            .map_err(link_failed);
    }
    linkers.component.instantiate_pre(component).map_err(|e| {
        let engine = component.engine();
        let wasi = linkers.key.wasi();
        let missing = component
            .component_type()
            .imports(engine)
            .filter(|(name, _)| !(wasi && WASI_P2_PACKAGES.iter().any(|p| name.starts_with(p))))
            .map(|(name, _)| MissingImport {
                module: name.to_string(),
                name: String::new(),
                kind: "instance".to_string(),
            })
            .collect();
        Error::Link {
            missing,
            detail: Some(format!("{e:#}")),
        }
    })
}

/// An instantiated module of either kind.
#[derive(Clone, Copy)]
pub(crate) enum Handle {
    Core(wasmtime::Instance),
    Component(wasmtime::component::Instance),
}

/// A store ready for calls, plus what is needed to report on them.
pub(crate) struct Sandbox {
    pub(crate) rt: Arc<RuntimeInner>,
    pub(crate) compiled: Arc<Compiled>,
    pub(crate) name: Arc<str>,
    pub(crate) store: Store<HostState>,
    /// The stdio pipes the host refills and drains between calls.
    pub(crate) captures: Captures,
    pub(crate) limits: Limits,
    /// How wasm runs in this sandbox (see [`crate::exec`]).
    pub(crate) exec: Exec,
    fuel_start: Option<u64>,
    started: Instant,
    /// Exported functions looked up so far, with their types, when the
    /// sandbox is kept (an `Instance` calls the same few exports again and
    /// again; a fresh sandbox makes one call and skips the bookkeeping).
    exports: Option<std::collections::HashMap<Box<str>, (wasmtime::Func, wasmtime::FuncType)>>,
}

impl Sandbox {
    pub(crate) fn new(module: &Module, opts: &CallOptions, exec: Exec) -> Result<Self> {
        let rt = &module.rt;
        let limits = opts.limits.as_ref().unwrap_or(&module.limits);
        let caps: &Capabilities = opts.capabilities.as_ref().unwrap_or(&module.caps);
        if limits.fuel.is_some() && !rt.config.fuel_metering {
            return Err(Error::bad_input(
                "a fuel limit needs a runtime with fuel metering (RuntimeConfig::fuel_metering, or --fuel on the command line)",
            ));
        }
        let now = Instant::now();
        let mut state = HostState::empty_at(now);
        state.limiter = Limiter::new(limits);
        state.plugin = PluginState::new(caps, limits);
        state.kv = caps.key_value.clone();
        let mut captures = Captures::default();
        if let Some(wasi) = &caps.wasi {
            let (mut builder, c) = wasi.builder(opts)?;
            captures = c;
            match module.compiled.code {
                Code::Core(_) => state.wasi_p1 = Some(builder.build_p1()),
                Code::Component(_) => state.wasi_p2 = Some(builder.build()),
            }
        }
        let mut store = Store::new(&rt.engine, state);
        store.limiter(|s| &mut s.limiter);
        match exec {
            Exec::Sync => store.epoch_deadline_trap(),
            Exec::Async => yield_at_ticks(&mut store, rt.config.epoch_tick, |state: &HostState| {
                (state.started, state.deadline)
            }),
        }
        let mut sb = Sandbox {
            rt: rt.clone(),
            compiled: module.compiled.clone(),
            name: module.name.clone(),
            store,
            captures,
            limits: limits.clone(),
            exec,
            fuel_start: None,
            started: now,
            exports: None,
        };
        sb.begin_at(now)?;
        Ok(sb)
    }

    /// Starts a call's budget: fuel, deadline, clock.
    pub(crate) fn begin(&mut self) -> Result<()> {
        self.begin_at(Instant::now())
    }

    /// [`Sandbox::begin`] with the clock read by the caller.
    fn begin_at(&mut self, now: Instant) -> Result<()> {
        if self.rt.config.fuel_metering {
            let fuel = self.limits.fuel.unwrap_or(u64::MAX);
            self.store
                .set_fuel(fuel)
                .map_err(|e| Error::internal(format!("cannot set fuel: {e}")))?;
            self.fuel_start = Some(fuel);
        }
        self.started = now;
        let deadline = self.limits.timeout.map(|t| self.started + t);
        self.store.set_epoch_deadline(match self.exec {
            Exec::Sync => deadline_ticks(self.limits.timeout, self.rt.config.epoch_tick),
            Exec::Async => 1,
        });
        let state = self.store.data_mut();
        state.limiter.clear_denied();
        state.started = self.started;
        state.deadline = deadline;
        Ok(())
    }

    /// Instantiates `pre` in this sandbox; a reactor's `_initialize` runs
    /// first, unless that is the export about to be called.
    pub(crate) async fn instantiate(&mut self, pre: &Pre, export: Option<&str>) -> Result<Handle> {
        match pre {
            Pre::Core(pre) => {
                let instance = match self.exec {
                    Exec::Sync => pre.instantiate(&mut self.store),
                    Exec::Async => pre.instantiate_async(&mut self.store).await,
                }
                .map_err(|e| self.classify(e))?;
                if self.compiled.reactor && export != Some("_initialize") {
                    let init = instance
                        .get_typed_func::<(), ()>(&mut self.store, "_initialize")
                        .map_err(|e| Error::internal(format!("reactor `_initialize`: {e}")))?;
                    self.call_typed(&init, ()).await?;
                }
                Ok(Handle::Core(instance))
            }
            Pre::Component(pre) => match self.exec {
                Exec::Sync => pre.instantiate(&mut self.store),
                Exec::Async => pre.instantiate_async(&mut self.store).await,
            }
            .map(Handle::Component)
            .map_err(|e| self.classify(e)),
        }
    }

    /// Calls `func`, the way this sandbox runs wasm; failures unclassified.
    pub(crate) async fn call_func_raw(
        &mut self,
        func: wasmtime::Func,
        params: &[wasmtime::Val],
        results: &mut [wasmtime::Val],
    ) -> wasmtime::Result<()> {
        match self.exec {
            Exec::Sync => func.call(&mut self.store, params, results),
            Exec::Async => func.call_async(&mut self.store, params, results).await,
        }
    }

    /// Calls `func`; a failure becomes a wasmhost error.
    pub(crate) async fn call_func(
        &mut self,
        func: wasmtime::Func,
        params: &[wasmtime::Val],
        results: &mut [wasmtime::Val],
    ) -> Result<()> {
        let r = self.call_func_raw(func, params, results).await;
        r.map_err(|e| self.classify(e))
    }

    /// Calls a typed function, unclassified.
    pub(crate) async fn call_typed_raw<P, R>(
        &mut self,
        func: &wasmtime::TypedFunc<P, R>,
        params: P,
    ) -> wasmtime::Result<R>
    where
        P: wasmtime::WasmParams + Sync,
        R: wasmtime::WasmResults + Sync,
    {
        match self.exec {
            Exec::Sync => func.call(&mut self.store, params),
            Exec::Async => func.call_async(&mut self.store, params).await,
        }
    }

    /// Calls a typed function; a failure becomes a wasmhost error.
    pub(crate) async fn call_typed<P, R>(
        &mut self,
        func: &wasmtime::TypedFunc<P, R>,
        params: P,
    ) -> Result<R>
    where
        P: wasmtime::WasmParams + Sync,
        R: wasmtime::WasmResults + Sync,
    {
        let r = self.call_typed_raw(func, params).await;
        r.map_err(|e| self.classify(e))
    }

    /// Calls a component function; a failure becomes a wasmhost error.
    pub(crate) async fn call_component(
        &mut self,
        func: wasmtime::component::Func,
        params: &[wasmtime::component::Val],
        results: &mut [wasmtime::component::Val],
    ) -> Result<()> {
        let r = match self.exec {
            Exec::Sync => func.call(&mut self.store, params, results),
            Exec::Async => func.call_async(&mut self.store, params, results).await,
        };
        r.map_err(|e| self.classify(e))
    }

    /// Exported function `name` of `instance` (this sandbox's instance)
    /// and its type, looked up once.
    pub(crate) fn export(
        &mut self,
        instance: wasmtime::Instance,
        name: &str,
    ) -> Result<(wasmtime::Func, wasmtime::FuncType)> {
        if let Some(found) = self.exports.as_ref().and_then(|e| e.get(name)) {
            return Ok(found.clone());
        }
        let Some(func) = instance.get_func(&mut self.store, name) else {
            return Err(crate::module::missing_export(
                &self.compiled,
                &self.name,
                name,
            ));
        };
        let ty = func.ty(&self.store);
        if let Some(exports) = &mut self.exports {
            exports.insert(name.into(), (func, ty.clone()));
        }
        Ok((func, ty))
    }

    /// Marks the sandbox as kept between calls (see [`Sandbox::export`]).
    pub(crate) fn keep(&mut self) {
        self.exports.get_or_insert_with(Default::default);
    }

    fn stats(&self) -> CallStats {
        CallStats {
            duration: self.started.elapsed(),
            fuel_consumed: self
                .fuel_start
                .map(|start| start.saturating_sub(self.store.get_fuel().unwrap_or(0))),
            peak_memory_bytes: self.store.data().limiter.peak_memory(),
        }
    }

    /// Turns a wasmtime failure into a wasmhost error.
    pub(crate) fn classify(&self, err: wasmtime::Error) -> Error {
        if let Some(overflow) = self.captures.overflow() {
            return overflow;
        }
        let limits = Limits {
            fuel: self.fuel_start,
            ..self.limits.clone()
        };
        match Error::from_wasmtime(
            err,
            &self.store.data().limiter,
            &limits,
            self.rt.config.max_wasm_stack,
        ) {
            Error::Exit { code, .. } => {
                let (stdout, stderr) = self.captures.take();
                Error::Exit {
                    code,
                    stdout,
                    stderr,
                }
            }
            other => other,
        }
    }

    fn take_logs(buffer: &mut LogBuffer) -> Vec<crate::capabilities::LogRecord> {
        let mut logs = std::mem::take(&mut buffer.records);
        let dropped = std::mem::take(&mut buffer.dropped);
        if dropped > 0 {
            logs.push(crate::capabilities::LogRecord {
                level: crate::capabilities::LogLevel::Warn,
                message: format!(
                    "{dropped} more log lines were dropped (at most {} are kept per call)",
                    crate::capabilities::log::MAX_RECORDS
                ),
            });
        }
        logs
    }

    /// The outcome of the last call on a sandbox that stays alive: its
    /// output (taken from the pipes, which start the next call empty), its
    /// logs and its cost.
    pub(crate) fn outcome<T>(&mut self, value: T) -> Result<Outcome<T>> {
        if let Some(overflow) = self.captures.overflow() {
            self.captures.discard_output();
            return Err(overflow);
        }
        let stats = self.stats();
        let logs = Self::take_logs(&mut self.store.data_mut().logs);
        let (stdout, stderr) = self.captures.take();
        Ok(Outcome {
            value,
            stdout,
            stderr,
            logs,
            stats,
        })
    }

    /// The outcome of the one call of a sandbox, which ends here.
    pub(crate) fn finish<T>(self, value: T) -> Result<Outcome<T>> {
        let stats = self.stats();
        let Sandbox {
            store, captures, ..
        } = self;
        // Everything but the log lines is dropped here; the captured bytes
        // are then handed over from the pipes without a copy.
        let HostState { mut logs, .. } = store.into_data();
        let logs = Self::take_logs(&mut logs);
        let (stdout, stderr) = captures.into_outputs()?;
        Ok(Outcome {
            value,
            stdout,
            stderr,
            logs,
            stats,
        })
    }
}

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
    let mut sb = Sandbox::new(module, opts, exec)?;
    let handle = sb.instantiate(&pre, Some(export)).await?;
    Ok((sb, handle))
}

/// Calls a numeric export in a fresh sandbox.
pub(crate) async fn invoke(
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

/// Calls a numeric export of an instantiated core module.
pub(crate) async fn invoke_in(
    sb: &mut Sandbox,
    handle: Handle,
    export: &str,
    args: &[Value],
) -> Result<Vec<Value>> {
    let Handle::Core(instance) = handle else {
        return Err(Error::bad_input(format!(
            "`{}` is a component; numeric invocation needs a core module",
            sb.name
        )));
    };
    let (func, ty) = sb.export(instance, export)?;
    if ty.params().len() != args.len()
        || ty
            .params()
            .zip(args)
            .any(|(p, a)| crate::call::ValueType::from_wasm(&p) != Some(a.ty()))
    {
        let want: Vec<String> = ty.params().map(|p| p.to_string()).collect();
        let got: Vec<String> = args.iter().map(|a| a.ty().to_string()).collect();
        return Err(Error::bad_input(format!(
            "function `{export}` takes ({}), given ({})",
            want.join(", "),
            got.join(", ")
        )));
    }
    let wasm_args: Vec<wasmtime::Val> = args.iter().map(|a| a.to_wasm()).collect();
    let mut results = vec![wasmtime::Val::I32(0); ty.results().len()];
    sb.call_func(func, &wasm_args, &mut results).await?;
    results
        .iter()
        .map(|v| {
            Value::from_wasm(v).ok_or_else(|| {
                Error::bad_input(format!(
                    "function `{export}` returned a non-numeric value, which cannot be reported as a number"
                ))
            })
        })
        .collect()
}

/// Calls `function` in a fresh sandbox through a calling convention.
pub(crate) async fn call(
    module: &Module,
    function: &str,
    input: &[u8],
    opts: &CallOptions,
    exec: Exec,
) -> Result<Outcome<crate::convention::Data>> {
    let started = Instant::now();
    let result = async {
        let convention = match opts.convention {
            Some(c) => c,
            None => crate::convention::detect(module, function)?,
        };
        let (mut sb, handle) = fresh(module, function, opts, exec).await?;
        let data =
            crate::convention::call_in(&mut sb, handle, convention, function, input, opts.args)
                .await?;
        sb.finish(data)
    }
    .await;
    record(module, function, started, &result);
    result
}

/// Runs a WASI command (`_start`, `wasi:cli/run`) in a fresh sandbox.
pub(crate) async fn run_command(
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
    let mut sb = Sandbox::new(module, opts, exec)?;
    let run = match &*pre {
        Pre::Core(pre) => {
            let instance = match exec {
                Exec::Sync => pre.instantiate(&mut sb.store),
                Exec::Async => pre.instantiate_async(&mut sb.store).await,
            };
            let instance = match instance {
                Ok(i) => i,
                Err(e) => return Err(sb.classify(e)),
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
