//! One call, one sandbox: store creation, instantiation, the call itself,
//! and turning whatever went wrong into one of wasmhost's error codes.
//!
//! A call builds a new wasmtime `Store` holding a [`HostState`] (see
//! `state.rs`) from a [`Spec`] (the engine, the module's code, its limits
//! and grants), instantiates the module's cached `InstancePre` in it (a
//! pooled slot with a copy-on-write memory image), calls, and drops the
//! store. Nothing survives from one call to the next, so a trap leaves the
//! module as usable as before. A [`crate::Instance`] keeps the sandbox
//! instead and calls it again ([`Sandbox::begin`] resets the per-call
//! budget).
//!
//! Every call here is an `async fn`; the sandbox's [`Exec`] picks
//! wasmtime's synchronous or async entry points (see `exec.rs`), so the
//! blocking and the async API share this code. The sandbox knows nothing of
//! modules, conventions or linkers: those layers call into it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, UpdateDeadline};

use crate::call::{CallOptions, CallStats, Outcome, Value};
use crate::capabilities::Capabilities;
use crate::capabilities::wasi::{Captures, Output};
use crate::code::Code;
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::kernel::extism::PluginState;
use crate::limits::{Limiter, Limits, deadline_ticks};
use crate::state::HostState;

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

/// A pre-linked module for one grant shape.
#[derive(Clone)]
pub(crate) enum Pre {
    Core(wasmtime::InstancePre<HostState>),
    Component(wasmtime::component::InstancePre<HostState>),
    /// A core module linked with others by name, linked again in each
    /// sandbox (see `LinkedPre`).
    Linked(Arc<LinkedPre>),
}

/// A core module linked with other core modules by name (see
/// `Module::link`): what a sandbox instantiates, in order, with a
/// copy of the grant shape's linker. The linked modules are defined in the
/// call's store before the main module is instantiated, as wasmtime's
/// `Linker::module` defines them (a reactor or plain module instantiated
/// once and initialized, a command's exports each run in a fresh instance),
/// under their names, so an import `(import "NAME" "f" …)` of a later
/// module reaches export `f` of the module linked as NAME. Nothing here is
/// store-owned: an `InstancePre` cannot hold instances, so each sandbox
/// links again (cloning the linker), which only multi-module plugins pay
/// for.
pub(crate) struct LinkedPre {
    /// The grant shape's core linker.
    pub(crate) linker: wasmtime::Linker<HostState>,
    /// The linked modules, each after every module it imports from: (name,
    /// code).
    pub(crate) deps: Vec<(String, wasmtime::Module)>,
    /// The main module.
    pub(crate) main: wasmtime::Module,
    /// Link imports nothing provides as traps (see `GrantKey`).
    pub(crate) trap_unknown: bool,
}

/// Links `module`'s imports that nothing provides to traps.
fn trap_unknown(linker: &mut wasmtime::Linker<HostState>, module: &wasmtime::Module) -> Result<()> {
    linker
        .define_unknown_imports_as_traps(module)
        .map(|_| ())
        .map_err(|e| Error::internal(format!("cannot link unknown imports: {e:#}")))
}

/// An instantiated module of either kind.
#[derive(Clone, Copy)]
pub(crate) enum Handle {
    Core(wasmtime::Instance),
    Component(wasmtime::component::Instance),
}

/// The runtime's settings a sandbox follows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SandboxConfig {
    /// Whether the engine meters fuel (each call then gets its fuel limit,
    /// or all the fuel there is).
    pub(crate) fuel_metering: bool,
    /// The epoch ticker's period.
    pub(crate) epoch_tick: Duration,
    /// The engine's wasm stack limit (to tell a stack overflow).
    pub(crate) max_wasm_stack: usize,
}

/// What a sandbox is made of: the runtime's engine and settings, the
/// module's code and name, and the limits and grants of the call.
pub(crate) struct Spec<'a> {
    pub(crate) engine: &'a wasmtime::Engine,
    pub(crate) config: SandboxConfig,
    pub(crate) code: &'a Code,
    /// A WASI reactor: `_initialize` runs once after instantiation.
    pub(crate) reactor: bool,
    pub(crate) name: &'a Arc<str>,
    /// The module's default limits and grants (a call's options may
    /// replace them).
    pub(crate) limits: &'a Limits,
    pub(crate) caps: &'a Capabilities,
}

/// A store ready for calls, plus what is needed to report on them.
pub(crate) struct Sandbox {
    config: SandboxConfig,
    /// The module's code.
    pub(crate) code: Code,
    reactor: bool,
    pub(crate) name: Arc<str>,
    pub(crate) store: Store<HostState>,
    /// The stdio pipes the host refills and drains between calls.
    pub(crate) captures: Captures,
    pub(crate) limits: Limits,
    /// How wasm runs in this sandbox (see [`crate::exec`]).
    pub(crate) exec: Exec,
    fuel_start: Option<u64>,
    /// The current call's timeout: the limit's, or less when capped (see
    /// [`Sandbox::begin_within`]).
    timeout: Option<Duration>,
    started: Instant,
    /// Exported functions looked up so far, with their types, when the
    /// sandbox is kept (an `Instance` calls the same few exports again and
    /// again; a fresh sandbox makes one call and skips the bookkeeping).
    exports: Option<std::collections::HashMap<Box<str>, (wasmtime::Func, wasmtime::FuncType)>>,
}

impl Sandbox {
    pub(crate) fn new(spec: Spec<'_>, opts: &CallOptions, exec: Exec) -> Result<Self> {
        let config = spec.config;
        let limits = opts.limits.as_ref().unwrap_or(spec.limits);
        let caps: &Capabilities = opts.capabilities.as_ref().unwrap_or(spec.caps);
        if limits.fuel.is_some() && !config.fuel_metering {
            return Err(Error::bad_input(
                "a fuel limit needs a runtime with fuel metering (RuntimeConfig::fuel_metering, or --fuel on the command line)",
            ));
        }
        let now = Instant::now();
        let mut state = HostState::empty_at(now);
        state.limiter = Limiter::new(limits);
        state.plugin = PluginState::new(caps, limits);
        state.kv = caps.key_value.clone();
        // Linked components (`compose.rs`) write where this store's
        // streams go only when those are the host's own.
        let inherit = |o: &Output| match o {
            Output::Inherit => Output::Inherit,
            _ => Output::Discard,
        };
        state.link_stdio = (inherit(&opts.stdout), inherit(&opts.stderr));
        let mut captures = Captures::default();
        if let Some(wasi) = &caps.wasi {
            let component = spec.code.is_component();
            (state.wasi, captures) =
                wasi.build(&opts.stdin, opts.stdout, opts.stderr, component, limits)?;
        }
        let mut store = Store::new(spec.engine, state);
        store.limiter(|s| &mut s.limiter);
        limits.apply_to_host(&mut store, |s| &mut s.table);
        match exec {
            Exec::Sync => store.epoch_deadline_trap(),
            Exec::Async => yield_at_ticks(&mut store, config.epoch_tick, |state: &HostState| {
                (state.started, state.deadline)
            }),
        }
        let mut sb = Sandbox {
            config,
            code: spec.code.clone(),
            reactor: spec.reactor,
            name: spec.name.clone(),
            store,
            captures,
            limits: limits.clone(),
            exec,
            fuel_start: None,
            timeout: None,
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

    /// [`Sandbox::begin`], the call also ending by `cap` if that comes
    /// before its own timeout (a linked component's call never outlives
    /// the call that made it).
    pub(crate) fn begin_within(&mut self, cap: Option<Instant>) -> Result<()> {
        self.begin_capped(Instant::now(), cap)
    }

    /// [`Sandbox::begin`] with the clock read by the caller.
    fn begin_at(&mut self, now: Instant) -> Result<()> {
        self.begin_capped(now, None)
    }

    fn begin_capped(&mut self, now: Instant, cap: Option<Instant>) -> Result<()> {
        if self.config.fuel_metering {
            let fuel = self.limits.fuel.unwrap_or(u64::MAX);
            self.store
                .set_fuel(fuel)
                .map_err(|e| Error::internal(format!("cannot set fuel: {e}")))?;
            self.fuel_start = Some(fuel);
        }
        self.started = now;
        let deadline = match (self.limits.timeout.map(|t| now + t), cap) {
            (Some(own), Some(cap)) => Some(own.min(cap)),
            (own, cap) => own.or(cap),
        };
        let timeout = match cap {
            None => self.limits.timeout,
            Some(_) => deadline.map(|d| d.saturating_duration_since(now)),
        };
        self.timeout = timeout;
        self.store.set_epoch_deadline(match self.exec {
            Exec::Sync => deadline_ticks(timeout, self.config.epoch_tick),
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
                if self.reactor && export != Some("_initialize") {
                    self.initialize(instance).await?;
                }
                Ok(Handle::Core(instance))
            }
            Pre::Component(pre) => match self.exec {
                Exec::Sync => pre.instantiate(&mut self.store),
                Exec::Async => pre.instantiate_async(&mut self.store).await,
            }
            .map(Handle::Component)
            .map_err(|e| self.classify(e)),
            Pre::Linked(pre) => {
                let mut linker = pre.linker.clone();
                for (name, module) in &pre.deps {
                    if pre.trap_unknown {
                        trap_unknown(&mut linker, module)?;
                    }
                    // wasmtime's automatic instantiation, as Extism links
                    // its modules: a reactor (or plain module) is
                    // instantiated once and initialized; a command's
                    // exports each get a fresh instance per call.
                    let linked = match self.exec {
                        Exec::Sync => linker.module(&mut self.store, name, module).map(|_| ()),
                        Exec::Async => linker
                            .module_async(&mut self.store, name, module)
                            .await
                            .map(|_| ()),
                    };
                    linked.map_err(|e| self.classify(e))?;
                }
                if pre.trap_unknown {
                    trap_unknown(&mut linker, &pre.main)?;
                }
                let instance = match self.exec {
                    Exec::Sync => linker.instantiate(&mut self.store, &pre.main),
                    Exec::Async => linker.instantiate_async(&mut self.store, &pre.main).await,
                }
                .map_err(|e| self.classify(e))?;
                if self.reactor && export != Some("_initialize") {
                    self.initialize(instance).await?;
                }
                Ok(Handle::Core(instance))
            }
        }
    }

    /// Runs a reactor's `_initialize`.
    async fn initialize(&mut self, instance: wasmtime::Instance) -> Result<()> {
        let init = instance
            .get_typed_func::<(), ()>(&mut self.store, "_initialize")
            .map_err(|e| Error::internal(format!("reactor `_initialize`: {e}")))?;
        self.call_typed(&init, ()).await
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
            return Err(self.missing_export(name));
        };
        let ty = func.ty(&self.store);
        if let Some(exports) = &mut self.exports {
            exports.insert(name.into(), (func, ty.clone()));
        }
        Ok((func, ty))
    }

    /// The `not_found` error of a call to an export the module lacks.
    pub(crate) fn missing_export(&self, export: &str) -> Error {
        crate::code::missing_export(&self.code, &self.name, export)
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
            replayed: false,
        }
    }

    /// Turns a wasmtime failure into a wasmhost error.
    pub(crate) fn classify(&self, err: wasmtime::Error) -> Error {
        if let Some(overflow) = self.captures.overflow() {
            return overflow;
        }
        let limits = Limits {
            fuel: self.fuel_start,
            timeout: self.timeout,
            ..self.limits.clone()
        };
        match Error::from_wasmtime(
            err,
            &self.store.data().limiter,
            &limits,
            self.config.max_wasm_stack,
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

    /// The outcome of the last call on a sandbox that stays alive: its
    /// output (taken from the pipes, which start the next call empty), its
    /// logs and its cost.
    pub(crate) fn outcome<T>(&mut self, value: T) -> Result<Outcome<T>> {
        if let Some(overflow) = self.captures.overflow() {
            self.captures.discard_output();
            return Err(overflow);
        }
        let stats = self.stats();
        let logs = self.store.data_mut().logs.take();
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
        let logs = logs.take();
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
