//! Metrics hooks, recorded through the [`metrics`](https://docs.rs/metrics) facade.
//!
//! The library only records; whoever embeds it installs a recorder (the
//! server installs a Prometheus exporter). With no recorder installed every
//! hook is a no-op. Names and labels are stable:
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `wasm_module_loads_total` | counter | `module`, `source` (`memory`, `disk`, `compile`) |
//! | `wasm_compile_seconds` | histogram | — |
//! | `wasm_calls_total` | counter | `module`, `function` |
//! | `wasm_call_duration_seconds` | histogram | `module`, `function` |
//! | `wasm_errors_total` | counter | `module`, `type` (an [`crate::ErrorCode`]) |
//! | `wasm_fuel_consumed_total` | counter | `module` |
//! | `wasm_memory_bytes` | gauge | `module` (peak linear memory of the last call) |
//!
//! A call whose function was not found is labelled `function="(not found)"`
//! ([`NOT_FOUND_FUNCTION`]): the name is the caller's, and one label for all
//! of them keeps the number of series bounded whatever callers send.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, SharedString};

use crate::call::CallStats;
use crate::error::ErrorCode;

/// Counter: modules loaded, by cache level.
pub const MODULE_LOADS: &str = "wasm_module_loads_total";
/// Histogram: compile (or deserialize) time in seconds.
pub const COMPILE_SECONDS: &str = "wasm_compile_seconds";
/// Counter: calls made.
pub const CALLS: &str = "wasm_calls_total";
/// Histogram: call duration in seconds.
pub const CALL_DURATION: &str = "wasm_call_duration_seconds";
/// Counter: failed calls by error code.
pub const ERRORS: &str = "wasm_errors_total";
/// Counter: fuel consumed.
pub const FUEL_CONSUMED: &str = "wasm_fuel_consumed_total";
/// Gauge: peak linear memory of the module's last call, in bytes.
pub const MEMORY_BYTES: &str = "wasm_memory_bytes";

/// The `function` label of calls whose function was not found.
pub const NOT_FOUND_FUNCTION: &str = "(not found)";

/// Where a load was answered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoadSource {
    Memory,
    Disk,
    Compile,
}

pub(crate) fn module_loaded(module: &str, source: LoadSource, took: Option<Duration>) {
    let source = match source {
        LoadSource::Memory => "memory",
        LoadSource::Disk => "disk",
        LoadSource::Compile => "compile",
    };
    metrics::counter!(MODULE_LOADS, "module" => module.to_string(), "source" => source)
        .increment(1);
    if let Some(took) = took {
        metrics::histogram!(COMPILE_SECONDS).record(took.as_secs_f64());
    }
}

/// The metric handles of one module's calls, made on a call's first use
/// and kept: the labels (`module`, `function`, `type`) are built once per
/// function, not once per call. Handles belong to the recorder that made
/// them; when another recorder is in force (a local recorder in a test or
/// a benchmark, say) they are made again for it.
#[derive(Default)]
pub(crate) struct CallMetrics {
    handles: RwLock<Option<Handles>>,
}

impl std::fmt::Debug for CallMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallMetrics").finish_non_exhaustive()
    }
}

/// Handles made under one recorder.
struct Handles {
    /// Identity of the recorder in force when they were made.
    recorder: usize,
    functions: HashMap<Box<str>, FunctionHandles>,
    /// Made on the first call of a function that was not found.
    not_found: Option<FunctionHandles>,
    errors: HashMap<ErrorCode, Counter>,
    fuel: Counter,
    memory: Gauge,
}

#[derive(Clone)]
struct FunctionHandles {
    calls: Counter,
    duration: Histogram,
}

/// Most functions of one module with handles of their own; calls of
/// others share the `(not found)` ones' way of being made each time.
const MAX_FUNCTIONS: usize = 1024;

/// The address of the recorder in force (0 with none).
fn recorder_id() -> usize {
    metrics::with_recorder(|r| r as *const dyn metrics::Recorder as *const () as usize)
}

fn function_handles(module: &SharedString, function: SharedString) -> FunctionHandles {
    FunctionHandles {
        calls: metrics::counter!(CALLS, "module" => module.clone(), "function" => function.clone()),
        duration: metrics::histogram!(CALL_DURATION, "module" => module.clone(), "function" => function),
    }
}

impl Handles {
    fn new(recorder: usize, module: &Arc<str>) -> Self {
        let m = SharedString::from(module.clone());
        Handles {
            recorder,
            functions: HashMap::new(),
            not_found: None,
            errors: HashMap::new(),
            fuel: metrics::counter!(FUEL_CONSUMED, "module" => m.clone()),
            memory: metrics::gauge!(MEMORY_BYTES, "module" => m),
        }
    }

    /// Records with the handles at hand; `false` when some are missing.
    fn record(&self, function: &str, stats: &CallStats, error: Option<ErrorCode>) -> bool {
        // A name that was not found is the caller's spelling, not an export:
        // one label for all of them keeps the series few whatever callers send.
        let f = if error == Some(ErrorCode::NotFound) {
            match &self.not_found {
                Some(f) => f,
                None => return false,
            }
        } else {
            match self.functions.get(function) {
                Some(f) => f,
                None => return false,
            }
        };
        let error_counter = match error {
            Some(code) => match self.errors.get(&code) {
                Some(c) => Some(c),
                None => return false,
            },
            None => None,
        };
        f.calls.increment(1);
        f.duration.record(stats.duration.as_secs_f64());
        if let Some(c) = error_counter {
            c.increment(1);
        }
        if let Some(fuel) = stats.fuel_consumed {
            self.fuel.increment(fuel);
        }
        if error.is_none() {
            self.memory.set(stats.peak_memory_bytes as f64);
        }
        true
    }

    /// Makes the handles `record` lacked.
    fn add(&mut self, module: &Arc<str>, function: &str, error: Option<ErrorCode>) {
        let m = SharedString::from(module.clone());
        if error == Some(ErrorCode::NotFound) && self.not_found.is_none() {
            self.not_found = Some(function_handles(
                &m,
                SharedString::const_str(NOT_FOUND_FUNCTION),
            ));
        }
        if error != Some(ErrorCode::NotFound)
            && !self.functions.contains_key(function)
            && self.functions.len() < MAX_FUNCTIONS
        {
            let handles = function_handles(&m, SharedString::from(Arc::<str>::from(function)));
            self.functions.insert(function.into(), handles);
        }
        if let Some(code) = error {
            self.errors.entry(code).or_insert_with(
                || metrics::counter!(ERRORS, "module" => m, "type" => code.as_str()),
            );
        }
    }
}

impl CallMetrics {
    /// Records a finished call of `function` of the module called `module`.
    pub(crate) fn call_finished(
        &self,
        module: &Arc<str>,
        function: &str,
        stats: &CallStats,
        error: Option<ErrorCode>,
    ) {
        let recorder = recorder_id();
        {
            let handles = self.handles.read().unwrap_or_else(|p| p.into_inner());
            if let Some(h) = handles.as_ref()
                && h.recorder == recorder
                && h.record(function, stats, error)
            {
                return;
            }
        }
        let mut handles = self.handles.write().unwrap_or_else(|p| p.into_inner());
        let h = match handles.as_mut() {
            Some(h) if h.recorder == recorder => h,
            _ => handles.insert(Handles::new(recorder, module)),
        };
        h.add(module, function, error);
        if !h.record(function, stats, error) {
            // Past MAX_FUNCTIONS: handles made for this call alone.
            let m = SharedString::from(module.clone());
            let f = function_handles(&m, SharedString::from(Arc::<str>::from(function)));
            f.calls.increment(1);
            f.duration.record(stats.duration.as_secs_f64());
            if let Some(c) = error.and_then(|code| h.errors.get(&code)) {
                c.increment(1);
            }
            if let Some(fuel) = stats.fuel_consumed {
                h.fuel.increment(fuel);
            }
            if error.is_none() {
                h.memory.set(stats.peak_memory_bytes as f64);
            }
        }
    }
}
