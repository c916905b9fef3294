//! Numeric exports: parameters and results that are all numbers, with the
//! input a JSON number or array of them.

use crate::call::{ArgsFormat, Value, ValueType};
use crate::code::Code;
use crate::error::{Error, Result};
use crate::sandbox::{Handle, Sandbox};

use super::{CallFuture, Calling, Convention, Data, Traits, core_func};

/// [`Convention::Numeric`].
pub(crate) struct Numeric;

impl Calling for Numeric {
    fn id(&self) -> Convention {
        Convention::Numeric
    }

    fn names(&self) -> &'static [&'static str] {
        &["numeric", "core"]
    }

    fn fits(&self, code: &Code, _: &Traits, function: &str) -> std::result::Result<(), String> {
        let f = core_func(code, function)?;
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

    fn call<'a>(
        &'a self,
        sb: &'a mut Sandbox,
        handle: Handle,
        _: &'a super::Traits,
        function: &'a str,
        input: &'a [u8],
        _: ArgsFormat,
    ) -> CallFuture<'a> {
        Box::pin(async move {
            let sig = numeric_signature(sb, handle, function)?;
            let args = numeric_args(&sig, input)?;
            crate::sandbox::invoke_in(sb, handle, function, &args)
                .await
                .map(Data::Numbers)
        })
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

#[cfg(test)]
mod tests {
    use super::*;

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
