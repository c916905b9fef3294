//! What goes into a call and what comes out of it.
//!
//! [`CallOptions`] carries per-call overrides (limits, capabilities) and the
//! call's standard I/O. [`Outcome`] is a successful result plus what it cost
//! ([`CallStats`]). [`Value`] is a numeric wasm value, parsed from text the
//! way `wasmtime run --invoke` takes arguments.
//!
//! ```
//! use wasmhost::{Value, ValueType};
//! assert_eq!(Value::parse(ValueType::I32, "-7").unwrap(), Value::I32(-7));
//! assert_eq!(Value::parse(ValueType::F64, "2.5").unwrap().to_string(), "2.5");
//! assert!(Value::parse(ValueType::I32, "seven").is_err());
//! ```

use std::fmt;
use std::time::Duration;

use crate::capabilities::wasi::{Output, Stdin};
use crate::capabilities::{Capabilities, LogRecord};
use crate::error::{Error, Result};
use crate::limits::Limits;

/// Per-call settings. The default uses the module's limits and capabilities,
/// empty stdin, and captures stdout and stderr.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// Replaces the module's limits for this call.
    pub limits: Option<Limits>,
    /// Replaces the module's capabilities for this call.
    pub capabilities: Option<Capabilities>,
    /// Standard input.
    pub stdin: Stdin,
    /// Standard output.
    pub stdout: Output,
    /// Standard error.
    pub stderr: Output,
    /// The calling convention of [`crate::Module::call`]; detected when `None`.
    pub convention: Option<Convention>,
    /// How a component's arguments are written (JSON by default).
    pub args: ArgsFormat,
}

/// A way of passing data into a guest function and getting data back. Its
/// names, parsing and the code of each live in [`crate::convention`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Convention {
    /// A component function with WIT-typed arguments and result.
    Component,
    /// The Extism plugin ABI: `() -> i32` exports reading their input and
    /// writing their output through `extism:host/env`.
    Extism,
    /// AssemblyScript string exports (`asc --exportRuntime`).
    AssemblyScript,
    /// Raw memory transfer: `f(ptr, len) -> (ptr << 32 | len)` through the
    /// guest's allocator.
    Raw,
    /// Numeric parameters and results.
    Numeric,
    /// WASI stdio: the input is stdin, the output is what the guest writes
    /// to stdout (see [`crate::process`]). Never detected.
    Process,
}

/// How the arguments of a component function are written in a call's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArgsFormat {
    /// JSON: an array of the arguments in order, an object by parameter
    /// name, or, for a one-parameter function, the argument itself.
    #[default]
    Json,
    /// WAVE text, as `wasmtime run --invoke` takes it: `f(1, "a", [x])` or
    /// just the comma-separated arguments.
    Wave,
}

impl CallOptions {
    /// Sets the limits of this call.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Sets the capabilities of this call.
    pub fn capabilities(mut self, caps: Capabilities) -> Self {
        self.capabilities = Some(caps);
        self
    }

    /// Sets stdin.
    pub fn stdin(mut self, stdin: Stdin) -> Self {
        self.stdin = stdin;
        self
    }

    /// Sets stdout.
    pub fn stdout(mut self, out: Output) -> Self {
        self.stdout = out;
        self
    }

    /// Sets stderr.
    pub fn stderr(mut self, out: Output) -> Self {
        self.stderr = out;
        self
    }

    /// Forces a calling convention instead of detecting it.
    pub fn convention(mut self, convention: Convention) -> Self {
        self.convention = Some(convention);
        self
    }

    /// Sets how a component's arguments are written.
    pub fn args(mut self, format: ArgsFormat) -> Self {
        self.args = format;
        self
    }

    /// Inherits all three standard streams from the host process.
    pub fn inherit_stdio(self) -> Self {
        self.stdin(Stdin::Inherit)
            .stdout(Output::Inherit)
            .stderr(Output::Inherit)
    }
}

/// What a call cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CallStats {
    /// Wall-clock time from instantiation to return.
    pub duration: Duration,
    /// Fuel consumed, when the runtime meters fuel.
    pub fuel_consumed: Option<u64>,
    /// Highest linear memory the instance held, in bytes.
    pub peak_memory_bytes: u64,
    /// Whether this is the recorded reply of a message sent before with
    /// the same id, replayed rather than computed (see
    /// [`crate::ActorSystem::send_once`]); the other stats are then zero.
    pub replayed: bool,
}

/// A successful call: its value, its captured output and its cost.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Outcome<T> {
    /// The result.
    pub value: T,
    /// Captured stdout (empty unless captured).
    pub stdout: Vec<u8>,
    /// Captured stderr (empty unless captured).
    pub stderr: Vec<u8>,
    /// Lines logged through the `log` capability.
    pub logs: Vec<LogRecord>,
    /// What it cost.
    pub stats: CallStats,
}

impl<T> Outcome<T> {
    /// The same outcome with its value transformed.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        Outcome {
            value: f(self.value),
            stdout: self.stdout,
            stderr: self.stderr,
            logs: self.logs,
            stats: self.stats,
        }
    }
}

/// A numeric WebAssembly type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueType::I32 => "i32",
            ValueType::I64 => "i64",
            ValueType::F32 => "f32",
            ValueType::F64 => "f64",
        })
    }
}

impl ValueType {
    pub(crate) fn to_wasm(self) -> wasmtime::ValType {
        match self {
            ValueType::I32 => wasmtime::ValType::I32,
            ValueType::I64 => wasmtime::ValType::I64,
            ValueType::F32 => wasmtime::ValType::F32,
            ValueType::F64 => wasmtime::ValType::F64,
        }
    }

    pub(crate) fn from_wasm(ty: &wasmtime::ValType) -> Option<Self> {
        match ty {
            wasmtime::ValType::I32 => Some(ValueType::I32),
            wasmtime::ValType::I64 => Some(ValueType::I64),
            wasmtime::ValType::F32 => Some(ValueType::F32),
            wasmtime::ValType::F64 => Some(ValueType::F64),
            _ => None,
        }
    }
}

/// A numeric WebAssembly value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// 32-bit integer.
    I32(i32),
    /// 64-bit integer.
    I64(i64),
    /// 32-bit float.
    F32(f32),
    /// 64-bit float.
    F64(f64),
}

impl Value {
    /// Parses `text` as a value of type `ty`. Integers accept decimal,
    /// `0x` hex, and unsigned values that fit the bit width (`4294967295` is
    /// `-1i32`); floats accept anything Rust's parser does, plus `nan`/`inf`.
    pub fn parse(ty: ValueType, text: &str) -> Result<Value> {
        let t = text.trim();
        let bad = || Error::bad_input(format!("`{text}` is not a valid {ty}"));
        fn int(t: &str) -> Option<i128> {
            let (neg, digits) = match t.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, t.strip_prefix('+').unwrap_or(t)),
            };
            let v = match digits
                .strip_prefix("0x")
                .or_else(|| digits.strip_prefix("0X"))
            {
                Some(hex) => i128::from_str_radix(&hex.replace('_', ""), 16).ok()?,
                None => digits.replace('_', "").parse::<i128>().ok()?,
            };
            Some(if neg { -v } else { v })
        }
        Ok(match ty {
            ValueType::I32 => {
                let v = int(t).ok_or_else(bad)?;
                if v >= i128::from(i32::MIN) && v <= i128::from(i32::MAX) {
                    Value::I32(v as i32)
                } else if v >= 0 && v <= i128::from(u32::MAX) {
                    Value::I32(v as u32 as i32)
                } else {
                    return Err(bad());
                }
            }
            ValueType::I64 => {
                let v = int(t).ok_or_else(bad)?;
                if v >= i128::from(i64::MIN) && v <= i128::from(i64::MAX) {
                    Value::I64(v as i64)
                } else if v >= 0 && v <= i128::from(u64::MAX) {
                    Value::I64(v as u64 as i64)
                } else {
                    return Err(bad());
                }
            }
            ValueType::F32 => Value::F32(t.parse().map_err(|_| bad())?),
            ValueType::F64 => Value::F64(t.parse().map_err(|_| bad())?),
        })
    }

    /// The value's type.
    pub fn ty(&self) -> ValueType {
        match self {
            Value::I32(_) => ValueType::I32,
            Value::I64(_) => ValueType::I64,
            Value::F32(_) => ValueType::F32,
            Value::F64(_) => ValueType::F64,
        }
    }

    pub(crate) fn to_wasm(self) -> wasmtime::Val {
        match self {
            Value::I32(v) => wasmtime::Val::I32(v),
            Value::I64(v) => wasmtime::Val::I64(v),
            Value::F32(v) => wasmtime::Val::F32(v.to_bits()),
            Value::F64(v) => wasmtime::Val::F64(v.to_bits()),
        }
    }

    pub(crate) fn from_wasm(v: &wasmtime::Val) -> Option<Value> {
        Some(match v {
            wasmtime::Val::I32(v) => Value::I32(*v),
            wasmtime::Val::I64(v) => Value::I64(*v),
            wasmtime::Val::F32(v) => Value::F32(f32::from_bits(*v)),
            wasmtime::Val::F64(v) => Value::F64(f64::from_bits(*v)),
            _ => return None,
        })
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::I32(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v}"),
            Value::F64(v) => write!(f, "{v}"),
        }
    }
}

/// The numeric signature of an exported function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Parameter types.
    pub params: Vec<ValueType>,
    /// Result types.
    pub results: Vec<ValueType>,
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[ValueType]| {
            v.iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(f, "({}) -> ({})", list(&self.params), list(&self.results))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_integers_like_wasmtime() {
        assert_eq!(
            Value::parse(ValueType::I32, "4294967295").unwrap(),
            Value::I32(-1)
        );
        assert_eq!(
            Value::parse(ValueType::I32, "0x10").unwrap(),
            Value::I32(16)
        );
        assert_eq!(
            Value::parse(ValueType::I64, "-9223372036854775808").unwrap(),
            Value::I64(i64::MIN)
        );
        assert!(Value::parse(ValueType::I32, "4294967296").is_err());
        assert!(Value::parse(ValueType::I32, "").is_err());
        assert_eq!(
            Value::parse(ValueType::F32, "inf").unwrap(),
            Value::F32(f32::INFINITY)
        );
    }

    #[test]
    fn signature_displays() {
        let s = Signature {
            params: vec![ValueType::I32, ValueType::F64],
            results: vec![ValueType::I64],
        };
        assert_eq!(s.to_string(), "(i32, f64) -> (i64)");
    }
}
