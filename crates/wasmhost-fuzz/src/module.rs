//! Module loading and calling: bytes (binary or WAT) and `wasm-smith`
//! modules through load → validate → compile → call every numeric export,
//! under small limits (16 MiB of memory, 100,000 units of fuel, 1 s).
//!
//! Invariants: loading fails only with `invalid_module` (or `bad_input`);
//! a call ends in values or in one of the guest-failure codes (trap,
//! limits, missing import, …), never `internal` and never a panic.

use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Unstructured;
use wasmhost::{CallOptions, ErrorCode, Limits, Runtime, RuntimeConfig, Value, ValueType};

use crate::expect_code;

/// The codes a call of an arbitrary module may end with.
pub const CALL_CODES: [ErrorCode; 9] = [
    ErrorCode::Trap,
    ErrorCode::StackOverflow,
    ErrorCode::OutOfFuel,
    ErrorCode::Timeout,
    ErrorCode::MemoryLimit,
    ErrorCode::LinkError,
    ErrorCode::NotFound,
    ErrorCode::BadInput,
    ErrorCode::CapabilityDenied,
];

/// The limits every fuzzed call runs under.
pub fn small_limits() -> Limits {
    Limits::default()
        .max_memory_bytes(16 << 20)
        .max_table_elements(10_000)
        .fuel(Some(100_000))
        .timeout(Some(Duration::from_secs(1)))
}

/// One runtime per process: fuel metering on, on-demand allocation (no
/// pool reservation), small default limits, no disk cache.
pub fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let config = RuntimeConfig::default()
            .pool(None)
            .fuel_metering(true)
            .max_wasm_stack(256 << 10)
            .default_limits(small_limits());
        match Runtime::new(config) {
            Ok(rt) => rt,
            Err(e) => panic!("the fuzzing runtime cannot start: {e}"),
        }
    })
}

/// Arbitrary bytes (a binary module, a component, WAT text or junk).
pub fn bytes(data: &[u8]) {
    load_and_call(data);
}

/// A `wasm-smith` module built from `data`, with small sizes and the
/// proposals wasmtime enables by default.
pub fn smith(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(module) = wasm_smith::Module::new(smith_config(3), &mut u) else {
        return;
    };
    load_and_call(&module.to_bytes());
}

/// The `wasm-smith` configuration of the fuzz targets and differential runs:
/// small modules, up to `imports` imports (they are never satisfied, so
/// they exercise link errors).
pub fn smith_config(imports: usize) -> wasm_smith::Config {
    wasm_smith::Config {
        max_imports: imports,
        min_funcs: 1,
        max_funcs: 12,
        min_exports: 1,
        max_exports: 12,
        max_instructions: 200,
        max_memories: 2,
        max_tables: 2,
        max_memory32_bytes: 4 << 20,
        memory_max_size_required: true,
        max_table_elements: 1_000,
        table_max_size_required: true,
        max_data_segments: 8,
        max_element_segments: 8,
        max_globals: 16,
        max_types: 24,
        memory64_enabled: false,
        threads_enabled: false,
        gc_enabled: false,
        exceptions_enabled: false,
        custom_page_sizes_enabled: false,
        wide_arithmetic_enabled: false,
        shared_everything_threads_enabled: false,
        ..wasm_smith::Config::default()
    }
}

/// A plain argument of type `ty` (zero), for calls whose values do not matter.
pub fn zero(ty: ValueType) -> Value {
    match ty {
        ValueType::I32 => Value::I32(0),
        ValueType::I64 => Value::I64(0),
        ValueType::F32 => Value::F32(0.0),
        ValueType::F64 => Value::F64(0.0),
    }
}

fn load_and_call(bytes: &[u8]) {
    let rt = runtime();
    let module = match rt.load_bytes(bytes.to_vec()) {
        Ok(m) => m,
        Err(e) => {
            expect_code("load", &e, &[ErrorCode::InvalidModule, ErrorCode::BadInput]);
            return;
        }
    };
    let _ = (module.imports(), module.exports(), module.kind());
    let opts = CallOptions::default();
    for (name, _) in module.functions().into_iter().take(6) {
        let Ok(sig) = module.signature(&name) else {
            // Not a numeric function (a component's, or one with v128 or
            // reference types): the conventions must still say why.
            let _ = module.conventions(&name);
            continue;
        };
        let args: Vec<Value> = sig.params.iter().map(|t| zero(*t)).collect();
        match module.invoke_with(&name, &args, &opts) {
            Ok(out) => assert_eq!(
                out.value.len(),
                sig.results.len(),
                "`{name}` returned {} values for {sig}",
                out.value.len()
            ),
            Err(e) => expect_code(&format!("invoke `{name}`"), &e, &CALL_CODES),
        }
    }
}
