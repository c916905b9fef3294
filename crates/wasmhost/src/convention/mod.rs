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
mod numeric;
pub(crate) mod process;
pub mod raw;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use bytes::Bytes;

pub use crate::call::Convention;
use crate::call::{ArgsFormat, Value};
use crate::capabilities::GrantKey;
use crate::code::Code;
use crate::error::{Error, Result};
use crate::sandbox::{Handle, Sandbox};
use crate::state::HostState;

/// What a convention's call returns: a boxed future, so that the table of
/// conventions can hold them all (one allocation per call).
pub(crate) type CallFuture<'a> = Pin<Box<dyn Future<Output = Result<Data>> + Send + 'a>>;

/// One calling convention: how to tell whether a function speaks it, the
/// host code it needs linked, and how to call through it. Each lives in its
/// own file; [`TABLE`] lists them all. Adding a convention is one file,
/// one line in [`TABLE`] and its variant in [`Convention`].
pub(crate) trait Calling: Sync {
    /// Which convention this is.
    fn id(&self) -> Convention;
    /// Its names: the first is canonical (`--abi`, messages), the rest are
    /// accepted aliases.
    fn names(&self) -> &'static [&'static str];
    /// Whether detection may pick it (the process convention must be asked for).
    fn detected(&self) -> bool {
        true
    }
    /// Whether `function` of `code` can be called through it, and if not, why.
    fn fits(&self, code: &Code, traits: &Traits, function: &str)
    -> std::result::Result<(), String>;
    /// Host code the convention needs in every core linker (harmless for
    /// guests that do not use it).
    fn link(&self, _core: &mut wasmtime::Linker<HostState>, _key: &GrantKey) -> Result<()> {
        Ok(())
    }
    /// Calls `function` of an instantiated module with `input`; `traits`
    /// are the module's.
    fn call<'a>(
        &'a self,
        sb: &'a mut Sandbox,
        handle: Handle,
        traits: &'a Traits,
        function: &'a str,
        input: &'a [u8],
        args: ArgsFormat,
    ) -> CallFuture<'a>;
}

/// Every convention, in detection order, which is also the order of
/// [`Convention`]'s variants (so a convention's entry is `TABLE[c as usize]`).
pub(crate) static TABLE: [&dyn Calling; 6] = [
    &component::Wit,
    &extism::Extism,
    &assemblyscript::AssemblyScript,
    &raw::Raw,
    &numeric::Numeric,
    &process::Process,
];

/// The table entry of `convention`.
pub(crate) fn calling(convention: Convention) -> &'static dyn Calling {
    TABLE[convention as usize]
}

/// The core module behind `code`, or why a core-module convention cannot
/// call into a component.
pub(crate) fn core_of(code: &Code) -> std::result::Result<&wasmtime::Module, String> {
    match code {
        Code::Core(m) => Ok(m),
        Code::Component(_) => Err("it is a component, not a core module".to_string()),
    }
}

/// The type of exported function `function` of a core module.
pub(crate) fn core_func(
    code: &Code,
    function: &str,
) -> std::result::Result<wasmtime::FuncType, String> {
    match core_of(code)?.get_export(function) {
        Some(wasmtime::ExternType::Func(f)) => Ok(f),
        _ => Err(format!("it exports no function `{function}`")),
    }
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
        calling(self).names().first().copied().unwrap_or("?")
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
        let wanted = s.to_ascii_lowercase();
        if let Some(c) = TABLE.iter().find(|c| c.names().contains(&wanted.as_str())) {
            return Ok(c.id());
        }
        let known: Vec<&str> = TABLE.iter().map(|c| c.names()[0]).collect();
        Err(Error::bad_input(format!(
            "`{s}` is not a calling convention ({})",
            known.join(", ")
        )))
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
            if let Some(c) = TABLE
                .iter()
                .find(|c| c.detected() && c.fits(code, &traits, &f).is_ok())
            {
                traits.detected.insert(f, c.id());
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

/// For each convention, whether `function` of `code` (with `traits`) can
/// be called through it, and if not, why.
pub(crate) fn fits(
    code: &Code,
    traits: &Traits,
    function: &str,
) -> Vec<(Convention, std::result::Result<(), String>)> {
    TABLE
        .iter()
        .filter(|c| c.detected())
        .map(|c| (c.id(), c.fits(code, traits, function)))
        .collect()
}

/// The first convention that fits `function` of `code` (with `traits`,
/// named `name` in messages), or an error listing why each did not.
pub(crate) fn detect(
    code: &Code,
    traits: &Traits,
    name: &str,
    function: &str,
) -> Result<Convention> {
    if let Some(c) = traits.detected.get(function) {
        return Ok(*c);
    }
    if let Code::Component(c) = code
        && traits.component_export(c, function).is_ok()
    {
        return Ok(Convention::Component);
    }
    let verdicts = fits(code, traits, function);
    if let Some((c, _)) = verdicts.iter().find(|(_, v)| v.is_ok()) {
        return Ok(*c);
    }
    // A function that does not exist at all is `not_found`, whatever the convention.
    match code {
        Code::Core(m) => {
            if !matches!(m.get_export(function), Some(wasmtime::ExternType::Func(_))) {
                return Err(crate::code::missing_export(code, name, function));
            }
        }
        Code::Component(c) => {
            if let Err(why) = component::find_func_type(c, function) {
                return Err(Error::not_found(format!(
                    "function `{function}` in component {name} ({why})"
                )));
            }
        }
    }
    let reasons: Vec<String> = verdicts
        .into_iter()
        .filter_map(|(c, v)| v.err().map(|why| format!("{c}: {why}")))
        .collect();
    Err(Error::bad_input(format!(
        "no calling convention fits `{function}` in {name}; tried {}",
        reasons.join("; ")
    )))
}

/// Calls `function` of an instantiated module through `convention`.
pub(crate) async fn call_in(
    sb: &mut Sandbox,
    handle: Handle,
    traits: &Traits,
    convention: Convention,
    function: &str,
    input: &[u8],
    args: ArgsFormat,
) -> Result<Data> {
    calling(convention)
        .call(sb, handle, traits, function, input, args)
        .await
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
    fn the_table_names_every_convention_once() {
        let detected: Vec<Convention> = TABLE
            .iter()
            .filter(|c| c.detected())
            .map(|c| c.id())
            .collect();
        assert_eq!(detected, Convention::ALL);
        for (i, c) in TABLE.iter().enumerate() {
            assert_eq!(c.id() as usize, i, "TABLE follows Convention's order");
            assert_eq!(calling(c.id()).id(), c.id());
            for name in c.names() {
                assert_eq!(name.parse::<Convention>().unwrap(), c.id());
            }
            assert_eq!(c.id().to_string(), c.names()[0]);
        }
        assert!("nope".parse::<Convention>().is_err());
    }

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
}
