//! Calling conventions: how bytes, strings and JSON get into a guest and
//! back out, so that existing guests run unmodified.
//!
//! | convention | recognised by | input | result |
//! |---|---|---|---|
//! | [`Convention::Component`] | a component | JSON (or WAVE) arguments, converted through the WIT types | JSON |
//! | [`Convention::Extism`] | imports from `extism:host/env` | bytes | bytes |
//! | [`Convention::AssemblyScript`] | exports `__new` (`asc --exportRuntime`) | a string | a string |
//! | [`Convention::Raw`] | exports an allocator and `f(ptr, len) -> i64` | bytes | bytes |
//! | [`Convention::Numeric`] | numeric parameters and results | a JSON number or array | numbers |
//! | [`Convention::Process`] | never detected: forced | stdin | stdout |
//!
//! [`crate::Module::call`] tries them in that order and takes the first
//! that fits the function; when none does, the error says, for each one,
//! why not. [`crate::CallOptions::convention`] forces one. `Process` is the
//! process modes of [`crate::process`] as a convention: the function `_start`
//! is the sync mode (a WASI command, fresh instance), any other export the
//! async mode (`() -> ()`, stdin bound to the input); an actor or a kept
//! [`crate::Instance`] uses it to serve messages.
//!
//! ```
//! use wasmhost::{Runtime, RuntimeConfig, Source};
//! # fn main() -> wasmhost::Result<()> {
//! let rt = Runtime::new(RuntimeConfig::default())?;
//! let m = rt.load(&Source::Bytes(br#"(module (func (export "add") (param i32 i32) (result i32)
//!     local.get 0 local.get 1 i32.add))"#.to_vec()))?;
//! let out = m.call("add", "[40, 2]")?;
//! assert_eq!(out.value.integer()?, 42);
//! # Ok(()) }
//! ```

pub mod assemblyscript;
pub mod component;
pub mod extism;
pub mod raw;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use bytes::Bytes;

use crate::call::{ArgsFormat, Value, ValueType};
use crate::error::{Error, Result};
use crate::module::{Code, Module};
use crate::sandbox::{Handle, Sandbox};

/// A way of passing data into a guest function and getting data back.
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

impl Convention {
    /// Every convention, in detection order.
    pub const ALL: [Convention; 5] = [
        Convention::Component,
        Convention::Extism,
        Convention::AssemblyScript,
        Convention::Raw,
        Convention::Numeric,
    ];

    /// The name used on the command line (`--abi`) and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Convention::Component => "component",
            Convention::Extism => "extism",
            Convention::AssemblyScript => "assemblyscript",
            Convention::Raw => "raw",
            Convention::Numeric => "numeric",
            Convention::Process => "process",
        }
    }
}

impl fmt::Display for Convention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Convention {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "component" | "wit" => Convention::Component,
            "extism" | "plugin" => Convention::Extism,
            "assemblyscript" | "as" => Convention::AssemblyScript,
            "raw" => Convention::Raw,
            "numeric" | "core" => Convention::Numeric,
            "process" | "stdio" => Convention::Process,
            _ => {
                return Err(Error::bad_input(format!(
                    "`{s}` is not a calling convention (component, extism, assemblyscript, raw, numeric, process)"
                )));
            }
        })
    }
}

/// What a module's imports and exports say about the conventions it
/// speaks; computed once when it is compiled.
#[derive(Debug, Default)]
pub(crate) struct Traits {
    /// Imports something from `extism:host/env`.
    pub(crate) extism: bool,
    /// Exports `__new` (AssemblyScript with `--exportRuntime`).
    pub(crate) assemblyscript: bool,
    /// The allocator export raw transfers use, if any.
    pub(crate) allocator: Option<raw::Allocator>,
    /// The detected convention of every exported function of a core module
    /// (so a call looks it up instead of re-checking the module).
    detected: HashMap<String, Convention>,
    /// Where a component's functions are, by the names calls used.
    component_exports: Mutex<HashMap<String, wasmtime::component::ComponentExportIndex>>,
}

impl Traits {
    pub(crate) fn of(code: &Code) -> Self {
        let Code::Core(m) = code else {
            return Traits::default();
        };
        let mut traits = Traits {
            extism: m.imports().any(|i| i.module() == extism::ENV_MODULE),
            assemblyscript: matches!(m.get_export("__new"), Some(wasmtime::ExternType::Func(_))),
            allocator: raw::Allocator::find(m),
            ..Traits::default()
        };
        let funcs: Vec<String> = m
            .exports()
            .filter(|e| matches!(e.ty(), wasmtime::ExternType::Func(_)))
            .map(|e| e.name().to_string())
            .collect();
        for f in funcs {
            if let Some(c) = Convention::ALL
                .into_iter()
                .find(|c| verdict(code, &traits, &f, *c).is_ok())
            {
                traits.detected.insert(f, c);
            }
        }
        traits
    }

    /// The export index of a component function, found once per name.
    pub(crate) fn component_export(
        &self,
        component: &wasmtime::component::Component,
        function: &str,
    ) -> std::result::Result<wasmtime::component::ComponentExportIndex, String> {
        let mut cache = self
            .component_exports
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(index) = cache.get(function) {
            return Ok(*index);
        }
        let index = component::export_index(component, function)?;
        cache.insert(function.to_string(), index);
        Ok(index)
    }
}

/// Whether `function` of `code` can be called through `convention`, and if
/// not, why.
fn verdict(
    code: &Code,
    traits: &Traits,
    function: &str,
    convention: Convention,
) -> std::result::Result<(), String> {
    let core = match code {
        Code::Core(m) => m,
        Code::Component(comp) => {
            return match convention {
                Convention::Component => component::find_func_type(comp, function).map(|_| ()),
                _ => Err("it is a component, not a core module".to_string()),
            };
        }
    };
    let func = match core.get_export(function) {
        Some(wasmtime::ExternType::Func(f)) => Some(f),
        _ => None,
    };
    let no_func = || Err(format!("it exports no function `{function}`"));
    match convention {
        Convention::Component => Err("it is a core module, not a component".to_string()),
        Convention::Process => match func {
            _ if function == "_start"
                || func
                    .as_ref()
                    .is_some_and(|f| f.params().len() == 0 && f.results().len() == 0) =>
            {
                Ok(())
            }
            None => no_func(),
            Some(f) => Err(format!(
                "a process export takes and returns nothing; `{function}` is {}",
                crate::module::func_type_string(&f)
            )),
        },
        Convention::Extism if !traits.extism => {
            Err("it imports nothing from `extism:host/env`".to_string())
        }
        Convention::AssemblyScript if !traits.assemblyscript => {
            Err("it does not export `__new` (build with `asc --exportRuntime`)".to_string())
        }
        Convention::Raw if traits.allocator.is_none() => {
            Err("it exports no allocator (`alloc`, `malloc` or `cabi_realloc`)".to_string())
        }
        _ => {
            let Some(f) = func else {
                return no_func();
            };
            match convention {
                Convention::Extism => extism::check_signature(&f),
                Convention::AssemblyScript => assemblyscript::check_signature(&f),
                Convention::Raw => raw::check_signature(&f, 0),
                _ => {
                    if f.params()
                        .chain(f.results())
                        .all(|t| ValueType::from_wasm(&t).is_some())
                    {
                        Ok(())
                    } else {
                        Err(format!(
                            "`{function}` has parameters or results that are not numbers"
                        ))
                    }
                }
            }
        }
    }
}

/// For each convention, whether `function` of `module` can be called
/// through it, and if not, why.
pub(crate) fn fits(
    module: &Module,
    function: &str,
) -> Vec<(Convention, std::result::Result<(), String>)> {
    let compiled = &module.compiled;
    Convention::ALL
        .iter()
        .map(|&c| (c, verdict(&compiled.code, &compiled.traits, function, c)))
        .collect()
}

/// The first convention that fits, or an error listing why each did not.
pub(crate) fn detect(module: &Module, function: &str) -> Result<Convention> {
    let compiled = &module.compiled;
    if let Some(c) = compiled.traits.detected.get(function) {
        return Ok(*c);
    }
    if let Code::Component(c) = &compiled.code
        && compiled.traits.component_export(c, function).is_ok()
    {
        return Ok(Convention::Component);
    }
    let verdicts = fits(module, function);
    if let Some((c, _)) = verdicts.iter().find(|(_, v)| v.is_ok()) {
        return Ok(*c);
    }
    // A function that does not exist at all is `not_found`, whatever the convention.
    match &compiled.code {
        Code::Core(m) => {
            if !matches!(m.get_export(function), Some(wasmtime::ExternType::Func(_))) {
                return Err(module.missing_export(function));
            }
        }
        Code::Component(c) => {
            if let Err(why) = component::find_func_type(c, function) {
                return Err(Error::not_found(format!(
                    "function `{function}` in component {} ({why})",
                    module.name
                )));
            }
        }
    }
    let reasons: Vec<String> = verdicts
        .into_iter()
        .filter_map(|(c, v)| v.err().map(|why| format!("{c}: {why}")))
        .collect();
    Err(Error::bad_input(format!(
        "no calling convention fits `{function}` in {}; tried {}",
        module.name,
        reasons.join("; ")
    )))
}

/// Calls `function` of an instantiated module through `convention`.
pub(crate) async fn call_in(
    sb: &mut Sandbox,
    handle: Handle,
    convention: Convention,
    function: &str,
    input: &[u8],
    args: ArgsFormat,
) -> Result<Data> {
    match convention {
        Convention::Component => component::call(sb, handle, function, input, args).await,
        Convention::Extism => extism::call(sb, handle, function, input)
            .await
            .map(Data::Bytes),
        Convention::AssemblyScript => {
            let text = std::str::from_utf8(input).map_err(|e| {
                Error::bad_input(format!(
                    "an AssemblyScript string argument must be UTF-8 text: {e}"
                ))
            })?;
            assemblyscript::call(sb, handle, function, text)
                .await
                .map(|s| match s {
                    Some(s) => Data::Text(s),
                    None => Data::None,
                })
        }
        Convention::Raw => raw::call(sb, handle, function, input, &[])
            .await
            .map(|b| Data::Bytes(b.into())),
        Convention::Process => Err(Error::internal(
            "process calls are routed through Instance::message and Module::process_sync",
        )),
        Convention::Numeric => {
            let sig = numeric_signature(sb, handle, function)?;
            let args = numeric_args(&sig, input)?;
            crate::sandbox::invoke_in(sb, handle, function, &args)
                .await
                .map(Data::Numbers)
        }
    }
}

fn numeric_signature(sb: &mut Sandbox, handle: Handle, function: &str) -> Result<Vec<ValueType>> {
    let Handle::Core(instance) = handle else {
        return Err(Error::bad_input("numeric calls need a core module"));
    };
    let (_, ty) = sb.export(instance, function)?;
    ty.params()
        .map(|t| {
            ValueType::from_wasm(&t).ok_or_else(|| {
                Error::bad_input(format!("`{function}` takes a `{t}`, which is not a number"))
            })
        })
        .collect()
}

/// Numeric arguments from a call's input: a JSON array (or, for one
/// parameter, a bare JSON number); numbers may also be strings in the
/// notation `wasmtime run --invoke` accepts (`"0x10"`, `"-1"`).
pub(crate) fn numeric_args(params: &[ValueType], input: &[u8]) -> Result<Vec<Value>> {
    let text = std::str::from_utf8(input)
        .map_err(|_| Error::bad_input("numeric arguments must be JSON text"))?
        .trim();
    let json: serde_json::Value = if text.is_empty() {
        serde_json::Value::Array(Vec::new())
    } else {
        serde_json::from_str(text).map_err(|e| {
            Error::bad_input(format!(
                "numeric arguments must be a JSON array of numbers, like [1, 2.5]: {e}"
            ))
        })?
    };
    let items = match json {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    };
    if items.len() != params.len() {
        return Err(Error::bad_input(format!(
            "the function takes {} argument(s), {} given",
            params.len(),
            items.len()
        )));
    }
    params
        .iter()
        .zip(items)
        .enumerate()
        .map(|(i, (ty, item))| {
            let text = match &item {
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::String(s) => s.clone(),
                other => {
                    return Err(Error::bad_input(format!(
                        "argument {i}: expected a number ({ty}), got {other}"
                    )));
                }
            };
            Value::parse(*ty, &text).map_err(|e| Error::bad_input(format!("argument {i}: {e}")))
        })
        .collect()
}

/// What a call returned, with typed accessors.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Data {
    /// Bytes (Extism plugins, raw transfers).
    Bytes(Bytes),
    /// A string (AssemblyScript).
    Text(String),
    /// A JSON value (component results).
    Json(serde_json::Value),
    /// Numbers (numeric exports).
    Numbers(Vec<Value>),
    /// Nothing (a function without a result, an AssemblyScript `null`).
    None,
}

impl Data {
    /// The bytes: text as UTF-8, JSON and numbers as JSON text.
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match self {
            Data::Bytes(b) => Cow::Borrowed(b),
            Data::Text(s) => Cow::Borrowed(s.as_bytes()),
            Data::Json(_) | Data::Numbers(_) => Cow::Owned(self.to_json_text().into_bytes()),
            Data::None => Cow::Borrowed(&[]),
        }
    }

    /// The text; bytes must be UTF-8.
    pub fn text(&self) -> Result<Cow<'_, str>> {
        match self {
            Data::Bytes(b) => std::str::from_utf8(b)
                .map(Cow::Borrowed)
                .map_err(|e| Error::bad_input(format!("the result is not UTF-8 text: {e}"))),
            Data::Text(s) => Ok(Cow::Borrowed(s)),
            Data::Json(_) | Data::Numbers(_) => Ok(Cow::Owned(self.to_json_text())),
            Data::None => Ok(Cow::Borrowed("")),
        }
    }

    /// The result as JSON: bytes and text are parsed, numbers become a
    /// number (one) or an array, nothing is `null`.
    pub fn json(&self) -> Result<serde_json::Value> {
        match self {
            Data::Json(v) => Ok(v.clone()),
            Data::Numbers(_) => Ok(numbers_json(self)),
            Data::None => Ok(serde_json::Value::Null),
            Data::Bytes(_) | Data::Text(_) => serde_json::from_str(&self.text()?)
                .map_err(|e| Error::bad_input(format!("the result is not JSON: {e}"))),
        }
    }

    /// The result deserialized from JSON into `T`.
    pub fn json_as<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.json()?).map_err(|e| {
            Error::bad_input(format!("the result does not have the expected shape: {e}"))
        })
    }

    /// The result as an integer: a single integer number, a JSON integer,
    /// or text holding one.
    pub fn integer(&self) -> Result<i64> {
        let bad = || {
            Error::bad_input(format!(
                "the result is not an integer: {}",
                self.to_json_text()
            ))
        };
        match self {
            Data::Numbers(v) => match v.as_slice() {
                [Value::I32(x)] => Ok(i64::from(*x)),
                [Value::I64(x)] => Ok(*x),
                _ => Err(bad()),
            },
            Data::Json(v) => v.as_i64().ok_or_else(bad),
            Data::Bytes(_) | Data::Text(_) => self.text()?.trim().parse().map_err(|_| bad()),
            Data::None => Err(bad()),
        }
    }

    fn to_json_text(&self) -> String {
        match self {
            Data::Json(v) => v.to_string(),
            Data::Numbers(_) => numbers_json(self).to_string(),
            other => String::from_utf8_lossy(&other.bytes()).into_owned(),
        }
    }
}

fn numbers_json(data: &Data) -> serde_json::Value {
    let Data::Numbers(values) = data else {
        return serde_json::Value::Null;
    };
    let one = |v: &Value| match v {
        Value::I32(x) => serde_json::json!(x),
        Value::I64(x) => serde_json::json!(x),
        Value::F32(x) => serde_json::json!(x),
        Value::F64(x) => serde_json::json!(x),
    };
    match values.as_slice() {
        [] => serde_json::Value::Null,
        [v] => one(v),
        many => serde_json::Value::Array(many.iter().map(one).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_accessors() {
        assert_eq!(Data::Numbers(vec![Value::I32(7)]).integer().unwrap(), 7);
        assert_eq!(Data::Text(" 12 ".into()).integer().unwrap(), 12);
        assert!(Data::Text("x".into()).integer().is_err());
        assert_eq!(
            Data::Bytes(Bytes::from_static(br#"{"a":1}"#))
                .json()
                .unwrap(),
            serde_json::json!({"a": 1})
        );
        assert!(Data::Bytes(Bytes::from_static(&[0xff])).text().is_err());
        assert_eq!(
            &*Data::Json(serde_json::json!([1, "a"])).bytes(),
            br#"[1,"a"]"#
        );
        assert_eq!(Data::None.json().unwrap(), serde_json::Value::Null);
        #[derive(serde::Deserialize)]
        struct P {
            x: i32,
        }
        let p: P = Data::Text(r#"{"x": 3}"#.into()).json_as().unwrap();
        assert_eq!(p.x, 3);
    }

    #[test]
    fn numeric_args_from_json() {
        let p = [ValueType::I32, ValueType::F64];
        assert_eq!(
            numeric_args(&p, b"[1, 2.5]").unwrap(),
            vec![Value::I32(1), Value::F64(2.5)]
        );
        assert_eq!(
            numeric_args(&[ValueType::I64], b"5").unwrap(),
            vec![Value::I64(5)]
        );
        assert_eq!(
            numeric_args(&[ValueType::I32], br#"["0x10"]"#).unwrap(),
            vec![Value::I32(16)]
        );
        assert!(
            numeric_args(&p, b"[1]")
                .unwrap_err()
                .to_string()
                .contains("2 argument")
        );
        assert!(
            numeric_args(&p, b"[1, true]")
                .unwrap_err()
                .to_string()
                .contains("argument 1")
        );
        assert!(numeric_args(&[], b"").unwrap().is_empty());
    }
}
