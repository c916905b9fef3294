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

use std::sync::Arc;
use std::time::Duration;

use metrics::SharedString;

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

pub(crate) fn call_finished(
    module: &Arc<str>,
    function: &str,
    stats: &CallStats,
    error: Option<ErrorCode>,
) {
    // Shared labels: clones below are reference-count bumps, not copies.
    let m = SharedString::from(module.clone());
    // A name that was not found is the caller's spelling, not an export:
    // one label for all of them keeps the series few whatever callers send.
    let f = if error == Some(ErrorCode::NotFound) {
        SharedString::const_str(NOT_FOUND_FUNCTION)
    } else {
        SharedString::from(Arc::<str>::from(function))
    };
    metrics::counter!(CALLS, "module" => m.clone(), "function" => f.clone()).increment(1);
    metrics::histogram!(CALL_DURATION, "module" => m.clone(), "function" => f)
        .record(stats.duration.as_secs_f64());
    if let Some(code) = error {
        metrics::counter!(ERRORS, "module" => m.clone(), "type" => code.as_str()).increment(1);
    }
    if let Some(fuel) = stats.fuel_consumed {
        metrics::counter!(FUEL_CONSUMED, "module" => m.clone()).increment(fuel);
    }
    if error.is_none() {
        metrics::gauge!(MEMORY_BYTES, "module" => m).set(stats.peak_memory_bytes as f64);
    }
}
