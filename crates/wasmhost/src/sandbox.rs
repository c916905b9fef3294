//! One call, one sandbox: store creation, instantiation, the call itself,
//! and turning whatever went wrong into one of wasmhost's error codes.
//!
//! Every call builds a new wasmtime `Store` holding a [`HostState`] (limits,
//! the WASI context if granted, log lines), instantiates the module's cached
//! `InstancePre` in it (a pooled slot with a copy-on-write memory image),
//! calls, and drops the store. Nothing survives from one call to the next,
//! so a trap leaves the module as usable as before.

use std::sync::atomic::Ordering;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap, WasmBacktrace};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

use crate::call::{CallOptions, CallStats, Outcome, Value};
use crate::capabilities::log::LogBuffer;
use crate::capabilities::wasi::Captures;
use crate::capabilities::{Capabilities, Linkers};
use crate::engine::deadline_ticks;
use crate::error::{Error, HostAbort, MissingImport, Result};
use crate::limits::{Limiter, Limits};
use crate::metrics;
use crate::module::{Code, Module, Pre};

/// The data of one wasmtime `Store`: everything a call's host side owns.
pub(crate) struct HostState {
    pub(crate) limiter: Limiter,
    wasi_p1: Option<WasiP1Ctx>,
    wasi_p2: Option<WasiCtx>,
    table: ResourceTable,
    pub(crate) logs: LogBuffer,
}

impl HostState {
    /// A state with nothing granted, used to enumerate linker definitions.
    pub(crate) fn empty() -> Self {
        HostState {
            limiter: Limiter::new(&Limits::default()),
            wasi_p1: None,
            wasi_p2: None,
            table: ResourceTable::new(),
            logs: LogBuffer::default(),
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

/// Pre-links a core module, reporting every missing import at once.
pub(crate) fn link_core(
    linkers: &Linkers,
    module: &wasmtime::Module,
) -> Result<wasmtime::InstancePre<HostState>> {
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
    linkers
        .core
        .instantiate_pre(module)
        .map_err(|e| Error::Link {
            missing: Vec::new(),
            detail: Some(format!("{e:#}")),
        })
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

/// A store ready for one call, plus what is needed to report on it.
struct Sandbox<'m> {
    module: &'m Module,
    store: Store<HostState>,
    captures: Captures,
    limits: &'m Limits,
    fuel_start: Option<u64>,
    started: Instant,
}

impl<'m> Sandbox<'m> {
    fn new(module: &'m Module, opts: &'m CallOptions) -> Result<Self> {
        let rt = &module.rt;
        let limits = opts.limits.as_ref().unwrap_or(&module.limits);
        let caps: &Capabilities = opts.capabilities.as_ref().unwrap_or(&module.caps);
        if limits.fuel.is_some() && !rt.config.fuel_metering {
            return Err(Error::bad_input(
                "a fuel limit needs a runtime with fuel metering (RuntimeConfig::fuel_metering, or --fuel on the command line)",
            ));
        }
        let mut state = HostState::empty();
        state.limiter = Limiter::new(limits);
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
        let fuel_start = if rt.config.fuel_metering {
            let fuel = limits.fuel.unwrap_or(u64::MAX);
            store
                .set_fuel(fuel)
                .map_err(|e| Error::internal(format!("cannot set fuel: {e}")))?;
            Some(fuel)
        } else {
            None
        };
        store.set_epoch_deadline(deadline_ticks(limits.timeout, rt.config.epoch_tick));
        store.epoch_deadline_trap();
        Ok(Sandbox {
            module,
            store,
            captures,
            limits,
            fuel_start,
            started: Instant::now(),
        })
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
    fn classify(&self, err: wasmtime::Error) -> Error {
        let backtrace = err.downcast_ref::<WasmBacktrace>().map(|bt| bt.to_string());
        if let Some(overflow) = self.captures.overflow() {
            return overflow;
        }
        let err = match err.downcast::<HostAbort>() {
            Ok(HostAbort(e)) => return e,
            Err(err) => err,
        };
        if let Some(exit) = err.downcast_ref::<I32Exit>() {
            let (stdout, stderr) = self.captures.take();
            return Error::Exit {
                code: exit.0,
                stdout,
                stderr,
            };
        }
        let limiter = &self.store.data().limiter;
        if let Some(trap) = err.downcast_ref::<Trap>() {
            match trap {
                Trap::Interrupt => {
                    return Error::Timeout {
                        limit: self.limits.timeout.unwrap_or_default(),
                    };
                }
                Trap::OutOfFuel => {
                    return Error::OutOfFuel {
                        limit: self.fuel_start.unwrap_or_default(),
                    };
                }
                Trap::StackOverflow => {
                    return Error::StackOverflow {
                        max_stack: self.module.rt.config.max_wasm_stack,
                        backtrace,
                    };
                }
                _ => {}
            }
        }
        if let Some(denied) = limiter.denied() {
            return Error::MemoryLimit {
                message: format!("{denied} (the guest then stopped: {})", root_message(&err)),
            };
        }
        // Counts checked by wasmtime itself against `ResourceLimiter::instances`
        // (and tables/memories) at instantiation.
        let message = root_message(&err);
        if message.starts_with("resource limit exceeded") {
            return Error::MemoryLimit {
                message: format!("{message} (limit: {} instances)", self.limits.max_instances),
            };
        }
        let trap_code = err.downcast_ref::<Trap>().map(|t| format!("{t:?}"));
        Error::Trap {
            trap_code,
            message,
            backtrace,
        }
    }

    fn finish<T>(self, value: T) -> Result<Outcome<T>> {
        let stats = self.stats();
        let Sandbox {
            store, captures, ..
        } = self;
        // Everything but the log lines is dropped at the end of this statement,
        // which releases the store's handles to the output pipes, so the
        // captured bytes can then be taken without a copy.
        let HostState { logs: buffer, .. } = store.into_data();
        let mut logs = buffer.records;
        if buffer.dropped > 0 {
            logs.push(crate::capabilities::LogRecord {
                level: crate::capabilities::LogLevel::Warn,
                message: format!(
                    "{} more log lines were dropped (at most {} are kept per call)",
                    buffer.dropped,
                    crate::capabilities::log::MAX_RECORDS
                ),
            });
        }
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

fn root_message(err: &wasmtime::Error) -> String {
    // The first line of the chain without the backtrace context.
    match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => err.root_cause().to_string(),
    }
}

/// Records the metrics and per-module counters of a finished call.
fn record<T>(module: &Module, function: &str, started: Instant, result: &Result<Outcome<T>>) {
    let counters = &module.compiled.counters;
    counters.calls.fetch_add(1, Ordering::Relaxed);
    match result {
        Ok(out) => metrics::call_finished(&module.name, function, &out.stats, None),
        Err(e) => {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            let stats = CallStats {
                duration: started.elapsed(),
                ..CallStats::default()
            };
            metrics::call_finished(&module.name, function, &stats, Some(e.code()));
        }
    }
}

pub(crate) fn invoke(
    module: &Module,
    export: &str,
    args: &[Value],
    opts: &CallOptions,
) -> Result<Outcome<Vec<Value>>> {
    let started = Instant::now();
    let result = invoke_inner(module, export, args, opts);
    record(module, export, started, &result);
    result
}

fn invoke_inner(
    module: &Module,
    export: &str,
    args: &[Value],
    opts: &CallOptions,
) -> Result<Outcome<Vec<Value>>> {
    let Pre::Core(pre) = &*module.pre_for(opts)? else {
        return Err(Error::bad_input(format!(
            "`{}` is a component; numeric invocation needs a core module",
            module.name
        )));
    };
    let mut sb = Sandbox::new(module, opts)?;
    let instance = match pre.instantiate(&mut sb.store) {
        Ok(i) => i,
        Err(e) => return Err(sb.classify(e)),
    };
    if module.compiled.reactor && export != "_initialize" {
        let init = instance
            .get_typed_func::<(), ()>(&mut sb.store, "_initialize")
            .map_err(|e| Error::internal(format!("reactor `_initialize`: {e}")))?;
        if let Err(e) = init.call(&mut sb.store, ()) {
            return Err(sb.classify(e));
        }
    }
    let Some(func) = instance.get_func(&mut sb.store, export) else {
        return Err(module.missing_export(export));
    };
    let ty = func.ty(&sb.store);
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
    if let Err(e) = func.call(&mut sb.store, &wasm_args, &mut results) {
        return Err(sb.classify(e));
    }
    let values = results
        .iter()
        .map(|v| {
            Value::from_wasm(v).ok_or_else(|| {
                Error::bad_input(format!(
                    "function `{export}` returned a non-numeric value, which cannot be reported as a number"
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    sb.finish(values)
}

pub(crate) fn run_command(module: &Module, opts: &CallOptions) -> Result<Outcome<()>> {
    let started = Instant::now();
    let result = run_inner(module, opts);
    record(module, "_start", started, &result);
    result
}

fn run_inner(module: &Module, opts: &CallOptions) -> Result<Outcome<()>> {
    let pre = module.pre_for(opts)?;
    let mut sb = Sandbox::new(module, opts)?;
    let run = match &*pre {
        Pre::Core(pre) => {
            let instance = match pre.instantiate(&mut sb.store) {
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
            start.call(&mut sb.store, ())
        }
        Pre::Component(pre) => {
            let pre =
                wasmtime_wasi::p2::bindings::sync::CommandPre::new(pre.clone()).map_err(|e| {
                    Error::not_found(format!(
                        "export `wasi:cli/run` in component {}: it is not a WASI command ({e})",
                        module.name
                    ))
                })?;
            match pre.instantiate(&mut sb.store) {
                Ok(cmd) => match cmd.wasi_cli_run().call_run(&mut sb.store) {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(())) => Err(wasmtime::Error::new(I32Exit(1))),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            }
        }
    };
    match run {
        Ok(()) => sb.finish(()),
        Err(e) => match sb.classify(e) {
            Error::Exit { code: 0, .. } => sb.finish(()),
            other => Err(other),
        },
    }
}
