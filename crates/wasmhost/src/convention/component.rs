//! Components: any exported function, with arguments converted through its
//! WIT types from JSON (or WAVE text), and its result converted to JSON.
//!
//! Functions are named as exported: `add-points` at the root,
//! `wasmhost:example/shapes#area` (or `shapes#area`) inside an exported
//! interface, or just `area` when exactly one interface exports it.
//!
//! JSON mapping, both ways:
//!
//! | WIT | JSON |
//! |---|---|
//! | `bool`, integers, floats | booleans, numbers (range-checked) |
//! | `char`, `string` | strings (a `char` is one character) |
//! | `list<T>`, `tuple<..>` | arrays |
//! | `record` | an object with the field names |
//! | `variant` | `{"case": payload}`, or `"case"` for a case without payload |
//! | `enum` | the case name as a string |
//! | `flags` | an array of the set flag names |
//! | `option<T>` | `null` or the value |
//! | `result<T, E>` | `{"ok": value}` or `{"err": value}` |
//!
//! The arguments are a JSON array in parameter order, an object keyed by
//! parameter name, or — for a function with one parameter — that argument
//! itself. A mismatch names the place: `argument p: field age: expected
//! u8 (0..=255), got 300`.

use serde_json::{Map, Value as Json, json};
use wasmtime::component::types::{ComponentFunc, ComponentItem, Type};
use wasmtime::component::{Component, Val};

use crate::call::ArgsFormat;
use crate::convention::Data;
use crate::error::{Error, Result};
use crate::sandbox::{Handle, Sandbox};

/// Where an exported function lives: `(interface, function)`.
type Path = (Option<String>, String);

/// Finds `function` among the component's exports.
fn resolve(
    component: &Component,
    function: &str,
) -> std::result::Result<(Path, ComponentFunc), String> {
    let engine = component.engine();
    let ty = component.component_type();
    let (iface, name) = match function.rsplit_once('#') {
        Some((i, n)) => (Some(i), n),
        None => (None, function),
    };
    let mut found = Vec::new();
    let mut available = Vec::new();
    for (export, item) in ty.exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(f) => {
                available.push(export.to_string());
                if iface.is_none() && export == name {
                    found.push(((None, export.to_string()), f));
                }
            }
            ComponentItem::ComponentInstance(inst) => {
                let matches_iface = match iface {
                    Some(i) => {
                        export == i
                            || export.split('@').next().is_some_and(|e| {
                                e == i || e.rsplit_once('/').is_some_and(|(_, short)| short == i)
                            })
                    }
                    None => true,
                };
                for (fname, fitem) in inst.exports(engine) {
                    if let ComponentItem::ComponentFunc(f) = fitem.ty {
                        available.push(format!("{export}#{fname}"));
                        if matches_iface && fname == name {
                            found.push(((Some(export.to_string()), fname.to_string()), f));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(format!(
            "it exports no function `{function}` (exported functions: {})",
            if available.is_empty() {
                "none".to_string()
            } else {
                available.join(", ")
            }
        )),
        _ => Err(format!(
            "`{function}` is exported by several interfaces ({}); name one as interface#function",
            found
                .iter()
                .filter_map(|((i, _), _)| i.clone())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The component-level export index of `function` (valid for every
/// instance of the component).
pub(crate) fn export_index(
    component: &Component,
    function: &str,
) -> std::result::Result<wasmtime::component::ComponentExportIndex, String> {
    let ((iface, name), _) = resolve(component, function)?;
    let parent = match &iface {
        Some(i) => Some(
            component
                .get_export_index(None, i)
                .ok_or_else(|| format!("interface `{i}` is not exported"))?,
        ),
        None => None,
    };
    component
        .get_export_index(parent.as_ref(), &name)
        .ok_or_else(|| format!("function `{function}` is not exported"))
}

/// The type of exported function `function`, or why there is none.
pub(crate) fn find_func_type(
    component: &Component,
    function: &str,
) -> std::result::Result<ComponentFunc, String> {
    resolve(component, function).map(|(_, f)| f)
}

/// The WIT text of a component's world (what `wasm-tools component wit`
/// prints), from its binary.
pub fn wit(component: &[u8]) -> Result<String> {
    let decoded = wit_component::decode(component).map_err(|e| {
        Error::invalid_module(format!("cannot decode the component's WIT: {e:#}"), None)
    })?;
    let mut printer = wit_component::WitPrinter::default();
    printer
        .print(decoded.resolve(), decoded.package(), &[])
        .map_err(|e| Error::internal(format!("cannot print WIT: {e:#}")))?;
    Ok(printer.output.to_string())
}

/// A function's WIT signature, for listings: `(a: point, b: point) -> point`.
pub(crate) fn signature(f: &ComponentFunc) -> String {
    let params: Vec<String> = f
        .params()
        .map(|(n, t)| format!("{n}: {}", type_name(&t)))
        .collect();
    let results: Vec<String> = f.results().map(|t| type_name(&t)).collect();
    match results.as_slice() {
        [] => format!("func({})", params.join(", ")),
        [r] => format!("func({}) -> {r}", params.join(", ")),
        many => format!("func({}) -> ({})", params.join(", "), many.join(", ")),
    }
}

/// Every exported function with its signature, for `inspect`.
pub(crate) fn functions(component: &Component) -> Vec<(String, String)> {
    let engine = component.engine();
    let mut out = Vec::new();
    for (export, item) in component.component_type().exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(f) => out.push((export.to_string(), signature(&f))),
            ComponentItem::ComponentInstance(inst) => {
                for (fname, fitem) in inst.exports(engine) {
                    if let ComponentItem::ComponentFunc(f) = fitem.ty {
                        out.push((format!("{export}#{fname}"), signature(&f)));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Every exported function's parameter and result types as JSON (see
/// [`type_json`]): `{"params": [{"name", "type"}], "results": [type]}`.
pub(crate) fn function_types(component: &Component) -> Vec<(String, Json)> {
    let engine = component.engine();
    let describe = |f: &ComponentFunc| {
        let params: Vec<Json> = f
            .params()
            .map(|(n, t)| json!({ "name": n, "type": type_json(&t) }))
            .collect();
        let results: Vec<Json> = f.results().map(|t| type_json(&t)).collect();
        json!({ "params": params, "results": results })
    };
    let mut out = Vec::new();
    for (export, item) in component.component_type().exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(f) => out.push((export.to_string(), describe(&f))),
            ComponentItem::ComponentInstance(inst) => {
                for (fname, fitem) in inst.exports(engine) {
                    if let ComponentItem::ComponentFunc(f) = fitem.ty {
                        out.push((format!("{export}#{fname}"), describe(&f)));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// A WIT type as JSON, for clients that convert values themselves (the
/// dashboard's browser run maps the JSON values of this module's table to
/// and from jco's JavaScript values with it). A primitive is its name
/// (`"u8"`, `"f64"`, `"string"`…); the others are one-key objects:
/// `{"list": T}`, `{"option": T}`, `{"tuple": [T…]}`,
/// `{"result": {"ok": T | null, "err": T | null}}`,
/// `{"record": [{"name", "type"}…]}`, `{"variant": [{"name", "type": T | null}…]}`,
/// `{"enum": [name…]}`, `{"flags": [name…]}`, and
/// `{"unsupported": "own<resource>"}` for what has no JSON form.
pub(crate) fn type_json(t: &Type) -> Json {
    match t {
        Type::Bool
        | Type::S8
        | Type::U8
        | Type::S16
        | Type::U16
        | Type::S32
        | Type::U32
        | Type::S64
        | Type::U64
        | Type::Float32
        | Type::Float64
        | Type::Char
        | Type::String => json!(type_name(t)),
        Type::List(l) => json!({ "list": type_json(&l.ty()) }),
        Type::Option(o) => json!({ "option": type_json(&o.ty()) }),
        Type::Tuple(tt) => {
            json!({ "tuple": tt.types().map(|t| type_json(&t)).collect::<Vec<_>>() })
        }
        Type::Result(r) => json!({ "result": {
            "ok": r.ok().map(|t| type_json(&t)),
            "err": r.err().map(|t| type_json(&t)),
        } }),
        Type::Record(r) => json!({ "record": r
            .fields()
            .map(|f| json!({ "name": f.name, "type": type_json(&f.ty) }))
            .collect::<Vec<_>>() }),
        Type::Variant(v) => json!({ "variant": v
            .cases()
            .map(|c| json!({ "name": c.name, "type": c.ty.as_ref().map(type_json) }))
            .collect::<Vec<_>>() }),
        Type::Enum(e) => json!({ "enum": e.names().collect::<Vec<_>>() }),
        Type::Flags(f) => json!({ "flags": f.names().collect::<Vec<_>>() }),
        other => json!({ "unsupported": type_name(other) }),
    }
}

fn type_name(t: &Type) -> String {
    match t {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", type_name(&l.ty())),
        Type::Option(o) => format!("option<{}>", type_name(&o.ty())),
        Type::Result(r) => format!(
            "result<{}, {}>",
            r.ok().map(|t| type_name(&t)).unwrap_or_else(|| "_".into()),
            r.err().map(|t| type_name(&t)).unwrap_or_else(|| "_".into())
        ),
        Type::Tuple(t) => format!(
            "tuple<{}>",
            t.types()
                .map(|t| type_name(&t))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Type::Record(r) => format!(
            "record {{ {} }}",
            r.fields()
                .map(|f| format!("{}: {}", f.name, type_name(&f.ty)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Type::Variant(v) => format!(
            "variant {{ {} }}",
            v.cases()
                .map(|c| match c.ty {
                    Some(t) => format!("{}({})", c.name, type_name(&t)),
                    None => c.name.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Type::Enum(e) => format!("enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Flags(f) => format!("flags {{ {} }}", f.names().collect::<Vec<_>>().join(", ")),
        Type::Own(_) => "own<resource>".into(),
        Type::Borrow(_) => "borrow<resource>".into(),
        other => format!("{other:?}"),
    }
}

/// [`Convention::Component`](super::Convention::Component).
pub(crate) struct Wit;

impl super::Calling for Wit {
    fn id(&self) -> super::Convention {
        super::Convention::Component
    }

    fn names(&self) -> &'static [&'static str] {
        &["component", "wit"]
    }

    fn fits(
        &self,
        code: &crate::code::Code,
        _: &super::Traits,
        function: &str,
    ) -> std::result::Result<(), String> {
        match code {
            crate::code::Code::Component(c) => find_func_type(c, function).map(|_| ()),
            crate::code::Code::Core(_) => Err("it is a core module, not a component".to_string()),
        }
    }

    fn call<'a>(
        &'a self,
        sb: &'a mut Sandbox,
        handle: Handle,
        traits: &'a super::Traits,
        function: &'a str,
        input: &'a [u8],
        args: ArgsFormat,
    ) -> super::CallFuture<'a> {
        Box::pin(call(sb, handle, traits, function, input, args))
    }
}

/// Calls `function` with arguments from `input`.
pub(crate) async fn call(
    sb: &mut Sandbox,
    handle: Handle,
    traits: &super::Traits,
    function: &str,
    input: &[u8],
    format: ArgsFormat,
) -> Result<Data> {
    let Handle::Component(instance) = handle else {
        return Err(Error::bad_input(format!(
            "`{}` is a core module; component calls need a component",
            sb.name
        )));
    };
    let crate::code::Code::Component(component) = &sb.code else {
        return Err(Error::internal("a component handle without a component"));
    };
    let index = traits
        .component_export(component, function)
        .map_err(|why| Error::not_found(format!("function `{function}` in {}: {why}", sb.name)))?;
    let func = instance
        .get_func(&mut sb.store, index)
        .ok_or_else(|| Error::not_found(format!("function `{function}` in {}", sb.name)))?;
    let ty = func.ty(&sb.store);
    let name = function.rsplit('#').next().unwrap_or(function);
    let text = std::str::from_utf8(input)
        .map_err(|_| Error::bad_input("component arguments must be UTF-8 text (JSON or WAVE)"))?;
    let params = match format {
        ArgsFormat::Json => json_args(&ty, text)?,
        ArgsFormat::Wave => wave_args(&ty, name, text)?,
    };
    let mut results = vec![Val::Bool(false); ty.results().len()];
    sb.call_component(func, &params, &mut results).await?;
    Ok(match results.as_slice() {
        [] => Data::None,
        [one] => Data::Json(to_json(one)?),
        many => Data::Json(Json::Array(
            many.iter().map(to_json).collect::<Result<_>>()?,
        )),
    })
}

/// Arguments from WAVE text: `f(1, "a")` or just `1, "a"`.
fn wave_args(ty: &ComponentFunc, name: &str, text: &str) -> Result<Vec<Val>> {
    use wasmtime::component::wasm_wave::untyped::UntypedFuncCall;
    let text = text.trim();
    let call =
        if text.ends_with(')') && text.contains('(') && !text.starts_with(['(', '[', '{', '"']) {
            text.to_string()
        } else {
            format!("{name}({text})")
        };
    let types: Vec<Type> = ty.params().map(|(_, t)| t).collect();
    let parsed = UntypedFuncCall::parse(&call)
        .map_err(|e| Error::bad_input(format!("WAVE arguments `{text}`: {e}")))?;
    parsed
        .to_wasm_params::<Val>(types.iter())
        .map_err(|e| Error::bad_input(format!("WAVE arguments `{text}`: {e}")))
}

/// Arguments from JSON (see the module documentation for the forms).
fn json_args(ty: &ComponentFunc, text: &str) -> Result<Vec<Val>> {
    let params: Vec<(String, Type)> = ty.params().map(|(n, t)| (n.to_string(), t)).collect();
    let text = text.trim();
    let input: Json = if text.is_empty() {
        Json::Array(Vec::new())
    } else {
        serde_json::from_str(text)
            .map_err(|e| Error::bad_input(format!("the arguments are not valid JSON: {e}")))?
    };
    let names = || {
        params
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let positional = |items: &[Json]| -> Result<Vec<Val>> {
        params
            .iter()
            .zip(items)
            .map(|((n, t), v)| from_json(t, v, &format!("argument {n}")))
            .collect()
    };
    match &input {
        Json::Array(items) if items.len() == params.len() && params.len() != 1 => positional(items),
        Json::Object(map)
            if params.len() != 1
                && map.len() == params.len()
                && params.iter().all(|(n, _)| map.contains_key(n)) =>
        {
            params
                .iter()
                .map(|(n, t)| from_json(t, &map[n], &format!("argument {n}")))
                .collect()
        }
        _ if params.len() == 1 => {
            let (n, t) = &params[0];
            // A one-element array or a one-key object naming the parameter
            // may wrap the argument; try the bare value first.
            match from_json(t, &input, &format!("argument {n}")) {
                Ok(v) => Ok(vec![v]),
                Err(first) => match &input {
                    Json::Array(items) if items.len() == 1 => positional(items).map_err(|_| first),
                    Json::Object(map) if map.len() == 1 && map.contains_key(n) => {
                        from_json(t, &map[n], &format!("argument {n}"))
                            .map(|v| vec![v])
                            .map_err(|_| first)
                    }
                    _ => Err(first),
                },
            }
        }
        Json::Array(items) => Err(Error::bad_input(format!(
            "the function takes {} argument(s) ({}), {} given",
            params.len(),
            names(),
            items.len()
        ))),
        Json::Object(map) => {
            let missing: Vec<&str> = params
                .iter()
                .map(|(n, _)| n.as_str())
                .filter(|n| !map.contains_key(*n))
                .collect();
            let unknown: Vec<&str> = map
                .keys()
                .map(String::as_str)
                .filter(|k| !params.iter().any(|(n, _)| n == k))
                .collect();
            Err(Error::bad_input(format!(
                "the arguments by name must be exactly ({}); missing: [{}], unknown: [{}]",
                names(),
                missing.join(", "),
                unknown.join(", ")
            )))
        }
        other => Err(Error::bad_input(format!(
            "the function takes {} arguments ({}): give a JSON array or object, not {other}",
            params.len(),
            names()
        ))),
    }
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Converts `v` to a value of type `t`; errors name `at`.
pub(crate) fn from_json(t: &Type, v: &Json, at: &str) -> Result<Val> {
    let mismatch = |want: &str| {
        Error::bad_input(format!(
            "{at}: expected {want}, got {}",
            match v {
                Json::String(s) if s.len() < 40 => format!("\"{s}\""),
                Json::Number(n) => n.to_string(),
                Json::Bool(b) => b.to_string(),
                other => kind(other).to_string(),
            }
        ))
    };
    macro_rules! int {
        ($variant:ident, $ty:ty, $name:literal) => {{
            let want = concat!($name, " (", stringify!($ty), " range)");
            let n = match v {
                Json::Number(n) => n
                    .as_i64()
                    .map(i128::from)
                    .or_else(|| n.as_u64().map(i128::from)),
                _ => None,
            }
            .ok_or_else(|| mismatch($name))?;
            Val::$variant(<$ty>::try_from(n).map_err(|_| {
                Error::bad_input(format!(
                    "{at}: expected {want}: {n} is out of range {}..={}",
                    <$ty>::MIN,
                    <$ty>::MAX
                ))
            })?)
        }};
    }
    Ok(match t {
        Type::Bool => Val::Bool(v.as_bool().ok_or_else(|| mismatch("a boolean"))?),
        Type::S8 => int!(S8, i8, "s8"),
        Type::U8 => int!(U8, u8, "u8"),
        Type::S16 => int!(S16, i16, "s16"),
        Type::U16 => int!(U16, u16, "u16"),
        Type::S32 => int!(S32, i32, "s32"),
        Type::U32 => int!(U32, u32, "u32"),
        Type::S64 => int!(S64, i64, "s64"),
        Type::U64 => int!(U64, u64, "u64"),
        Type::Float32 => Val::Float32(v.as_f64().ok_or_else(|| mismatch("a number (f32)"))? as f32),
        Type::Float64 => Val::Float64(v.as_f64().ok_or_else(|| mismatch("a number (f64)"))?),
        Type::Char => {
            let s = v
                .as_str()
                .ok_or_else(|| mismatch("a one-character string"))?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(mismatch("a one-character string")),
            }
        }
        Type::String => Val::String(v.as_str().ok_or_else(|| mismatch("a string"))?.to_string()),
        Type::List(l) => {
            let items = v.as_array().ok_or_else(|| mismatch("an array"))?;
            let et = l.ty();
            Val::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| from_json(&et, x, &format!("{at}[{i}]")))
                    .collect::<Result<_>>()?,
            )
        }
        Type::Tuple(tt) => {
            let items = v.as_array().ok_or_else(|| mismatch("an array (a tuple)"))?;
            let types: Vec<Type> = tt.types().collect();
            if items.len() != types.len() {
                return Err(Error::bad_input(format!(
                    "{at}: expected a tuple of {} values, got {}",
                    types.len(),
                    items.len()
                )));
            }
            Val::Tuple(
                types
                    .iter()
                    .zip(items)
                    .enumerate()
                    .map(|(i, (t, x))| from_json(t, x, &format!("{at}.{i}")))
                    .collect::<Result<_>>()?,
            )
        }
        Type::Record(r) => {
            let obj = v
                .as_object()
                .ok_or_else(|| mismatch("an object (a record)"))?;
            let mut fields = Vec::new();
            for f in r.fields() {
                let fv = match obj.get(f.name) {
                    Some(x) => x,
                    // An absent optional field is `none`.
                    None if matches!(f.ty, Type::Option(_)) => &Json::Null,
                    None => {
                        return Err(Error::bad_input(format!(
                            "{at}: missing field `{}` ({})",
                            f.name,
                            type_name(&f.ty)
                        )));
                    }
                };
                fields.push((
                    f.name.to_string(),
                    from_json(&f.ty, fv, &format!("{at}.{}", f.name))?,
                ));
            }
            if let Some(extra) = obj
                .keys()
                .find(|k| !r.fields().any(|f| f.name == k.as_str()))
            {
                return Err(Error::bad_input(format!(
                    "{at}: unknown field `{extra}` (the record has {})",
                    r.fields().map(|f| f.name).collect::<Vec<_>>().join(", ")
                )));
            }
            Val::Record(fields)
        }
        Type::Variant(var) => {
            let cases = || var.cases().map(|c| c.name).collect::<Vec<_>>().join(", ");
            let single = v
                .as_object()
                .filter(|o| o.len() == 1)
                .and_then(|o| o.iter().next());
            let (name, payload) = match (v, single) {
                (Json::String(s), _) => (s.as_str(), None),
                (_, Some((k, p))) => (k.as_str(), Some(p)),
                _ => {
                    return Err(mismatch(&format!(
                        "a variant: \"case\" or {{\"case\": payload}} with case one of {}",
                        cases()
                    )));
                }
            };
            let case = var.cases().find(|c| c.name == name).ok_or_else(|| {
                Error::bad_input(format!("{at}: unknown case `{name}` (cases: {})", cases()))
            })?;
            let value = match (&case.ty, payload) {
                (Some(t), Some(p)) => Some(Box::new(from_json(t, p, &format!("{at}.{name}"))?)),
                (None, None) | (None, Some(Json::Null)) => None,
                (Some(t), None) => {
                    return Err(Error::bad_input(format!(
                        "{at}: case `{name}` carries a {}: write {{\"{name}\": value}}",
                        type_name(t)
                    )));
                }
                (None, Some(_)) => {
                    return Err(Error::bad_input(format!(
                        "{at}: case `{name}` carries no payload: write \"{name}\""
                    )));
                }
            };
            Val::Variant(name.to_string(), value)
        }
        Type::Enum(e) => {
            let s = v
                .as_str()
                .ok_or_else(|| mismatch("a string (an enum case)"))?;
            if !e.names().any(|n| n == s) {
                return Err(Error::bad_input(format!(
                    "{at}: unknown enum case `{s}` (cases: {})",
                    e.names().collect::<Vec<_>>().join(", ")
                )));
            }
            Val::Enum(s.to_string())
        }
        Type::Flags(f) => {
            let items = v
                .as_array()
                .ok_or_else(|| mismatch("an array of flag names"))?;
            let mut set = Vec::new();
            for item in items {
                let s = item
                    .as_str()
                    .ok_or_else(|| mismatch("an array of flag names"))?;
                if !f.names().any(|n| n == s) {
                    return Err(Error::bad_input(format!(
                        "{at}: unknown flag `{s}` (flags: {})",
                        f.names().collect::<Vec<_>>().join(", ")
                    )));
                }
                set.push(s.to_string());
            }
            Val::Flags(set)
        }
        Type::Option(o) => match v {
            Json::Null => Val::Option(None),
            x => Val::Option(Some(Box::new(from_json(&o.ty(), x, at)?))),
        },
        Type::Result(r) => {
            let (k, p) = v
                .as_object()
                .filter(|o| o.len() == 1)
                .and_then(|o| o.iter().next())
                .ok_or_else(|| mismatch("{\"ok\": value} or {\"err\": value}"))?;
            let side = |t: Option<Type>, tag: &str| -> Result<Option<Box<Val>>> {
                match t {
                    Some(t) => Ok(Some(Box::new(from_json(&t, p, &format!("{at}.{tag}"))?))),
                    None => Ok(None),
                }
            };
            match k.as_str() {
                "ok" => Val::Result(Ok(side(r.ok(), "ok")?)),
                "err" => Val::Result(Err(side(r.err(), "err")?)),
                _ => return Err(mismatch("{\"ok\": value} or {\"err\": value}")),
            }
        }
        other => {
            return Err(Error::bad_input(format!(
                "{at}: values of type {} cannot be given as JSON",
                type_name(other)
            )));
        }
    })
}

/// Converts a component value to JSON (see the module documentation).
pub(crate) fn to_json(v: &Val) -> Result<Json> {
    Ok(match v {
        Val::Bool(b) => json!(b),
        Val::S8(x) => json!(x),
        Val::U8(x) => json!(x),
        Val::S16(x) => json!(x),
        Val::U16(x) => json!(x),
        Val::S32(x) => json!(x),
        Val::U32(x) => json!(x),
        Val::S64(x) => json!(x),
        Val::U64(x) => json!(x),
        Val::Float32(x) => json!(x),
        Val::Float64(x) => json!(x),
        Val::Char(c) => json!(c.to_string()),
        Val::String(s) => json!(s),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            Json::Array(items.iter().map(to_json).collect::<Result<_>>()?)
        }
        Val::Record(fields) => {
            let mut m = Map::new();
            for (k, x) in fields {
                m.insert(k.clone(), to_json(x)?);
            }
            Json::Object(m)
        }
        Val::Variant(name, None) => json!(name),
        Val::Variant(name, Some(p)) => json!({ name.clone(): to_json(p)? }),
        Val::Enum(name) => json!(name),
        Val::Flags(set) => json!(set),
        Val::Option(None) => Json::Null,
        Val::Option(Some(x)) => to_json(x)?,
        Val::Result(Ok(x)) => json!({ "ok": x.as_deref().map(to_json).transpose()? }),
        Val::Result(Err(x)) => json!({ "err": x.as_deref().map(to_json).transpose()? }),
        Val::Map(pairs) => Json::Array(
            pairs
                .iter()
                .map(|(k, x)| Ok(json!([to_json(k)?, to_json(x)?])))
                .collect::<Result<_>>()?,
        ),
        Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => {
            return Err(Error::bad_input(
                "the function returned a resource, future or stream handle, which has no JSON form",
            ));
        }
    })
}
