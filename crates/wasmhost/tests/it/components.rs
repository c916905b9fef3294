//! Components called with JSON and WAVE arguments converted through their
//! WIT types: `guests/rust/wit-component` (wasm32-wasip2).

use serde_json::json;

use wasmhost::{
    ArgsFormat, CallOptions, Capabilities, ErrorCode, HostFunctions, Module, ModuleKind, Wasi,
};

use crate::{built, runtime};

/// The test component imports `wasmhost:example/host` (a host function)
/// and, through Rust's std, some of WASI; both are granted here.
pub(crate) fn component() -> Module {
    let rt = runtime();
    rt.add_host_functions(greeter()).unwrap();
    let m = rt.load(&built("wit-component.wasm")).unwrap();
    assert_eq!(m.kind(), ModuleKind::Component);
    m.with_capabilities(
        Capabilities::none()
            .with_wasi(Wasi::new())
            .with_host_functions("greeter"),
    )
}

fn greeter() -> HostFunctions {
    HostFunctions::new("greeter").component(
        "wasmhost:example/host@0.1.0",
        "greet",
        |(name,): (String,)| Ok((format!("hello, {name}"),)),
    )
}

fn call(m: &Module, f: &str, args: serde_json::Value) -> serde_json::Value {
    m.call(f, args.to_string())
        .unwrap_or_else(|e| panic!("{f}({args}): {e}"))
        .value
        .json()
        .unwrap()
}

#[test]
fn records_variants_lists_options_results_enums_flags() {
    let m = component();
    let a = json!({"x": 1, "y": 2});
    let b = json!({"x": 30, "y": -40});
    assert_eq!(
        call(&m, "add-points", json!([a, b])),
        json!({"x": 31, "y": -38})
    );
    assert_eq!(
        call(&m, "add-points", json!({"a": a, "b": b})),
        json!({"x": 31, "y": -38}),
        "arguments by name"
    );
    let pi = call(&m, "area", json!({"circle": 1.0})).as_f64().unwrap();
    assert!((pi - std::f64::consts::PI).abs() < 1e-12);
    assert_eq!(
        call(&m, "area", json!({"rect": {"x": -3, "y": 4}})),
        json!(12.0)
    );
    assert_eq!(call(&m, "area", json!("empty")), json!(0.0));
    assert_eq!(call(&m, "sum", json!([1, 2, 3, -10])), json!(-4));
    assert_eq!(
        call(&m, "sum", json!([[5]])),
        json!(5),
        "wrapped single argument"
    );
    assert_eq!(call(&m, "sum", json!([])), json!(0));
    assert_eq!(call(&m, "find", json!([["a", "b", "c"], "c"])), json!(2));
    assert_eq!(call(&m, "find", json!([["a"], "z"])), json!(null));
    assert_eq!(call(&m, "divide", json!([7, 2])), json!({"ok": 3}));
    assert_eq!(
        call(&m, "divide", json!([1, 0])),
        json!({"err": "division by zero"})
    );
    assert_eq!(
        call(&m, "describe", json!(["green", ["read", "write"]])),
        json!("green rw-")
    );
    assert_eq!(call(&m, "describe", json!(["blue", []])), json!("blue ---"));
    let person =
        json!({"name": "Ada", "age": 36, "email": "ada@example.com", "tags": ["math", "engines"]});
    assert_eq!(
        call(&m, "greet-person", person.clone()),
        json!("Hi Ada (36) ada@example.com [math,engines]")
    );
    assert_eq!(call(&m, "echo-person", person.clone()), person);
    // An absent option field is `none`.
    assert_eq!(
        call(
            &m,
            "greet-person",
            json!({"name": "Bo", "age": 7, "tags": []})
        ),
        json!("Hi Bo (7) []")
    );
}

#[test]
fn wave_arguments() {
    let m = component();
    let opts = CallOptions::default().args(ArgsFormat::Wave);
    let run = |args: &str| {
        m.call_with("add-points", args, &opts)
            .unwrap_or_else(|e| panic!("{args}: {e}"))
            .value
            .json()
            .unwrap()
    };
    assert_eq!(run("{x: 1, y: 2}, {x: 3, y: 4}"), json!({"x": 4, "y": 6}));
    assert_eq!(
        run("add-points({x: 1, y: 2}, {x: 3, y: 4})"),
        json!({"x": 4, "y": 6})
    );
    let out = m
        .call_with(
            "greet-person",
            r#"{name: "Cy", age: 3, email: some("c@d"), tags: ["t"]}"#,
            &opts,
        )
        .unwrap();
    assert_eq!(out.value.json().unwrap(), json!("Hi Cy (3) c@d [t]"));
    let e = m.call_with("add-points", "{x: 1}", &opts).unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadInput, "{e}");
}

#[test]
fn json_that_does_not_match_names_the_field() {
    let m = component();
    let bad = |f: &str, args: serde_json::Value, needle: &str| {
        let e = m.call(f, args.to_string()).unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadInput, "{e}");
        assert!(e.to_string().contains(needle), "`{needle}` not in: {e}");
    };
    bad(
        "greet-person",
        json!({"name": "A", "age": 300, "tags": []}),
        "argument p.age: expected u8 (u8 range): 300 is out of range 0..=255",
    );
    bad(
        "greet-person",
        json!({"name": "A", "tags": []}),
        "missing field `age`",
    );
    bad(
        "greet-person",
        json!({"name": "A", "age": 1, "tags": [1]}),
        "argument p.tags[0]: expected a string",
    );
    bad(
        "greet-person",
        json!({"name": "A", "age": 1, "tags": [], "x": 1}),
        "unknown field `x`",
    );
    bad("area", json!({"triangle": 1}), "unknown case `triangle`");
    bad("area", json!("circle"), "case `circle` carries a f64");
    bad(
        "describe",
        json!(["purple", []]),
        "unknown enum case `purple`",
    );
    bad("describe", json!(["red", ["fly"]]), "unknown flag `fly`");
    bad(
        "add-points",
        json!([{"x": 1, "y": 2}]),
        "takes 2 argument(s) (a, b), 1 given",
    );
    bad("divide", json!("x"), "give a JSON array or object");
    let e = m.call("add-points", "{not json").unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadInput, "{e}");
    let e = m.call("no-such-function", "[]").unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound, "{e}");
    assert!(
        e.to_string().contains("add-points"),
        "lists what exists: {e}"
    );
}

#[test]
fn component_host_function() {
    let rt = runtime();
    rt.add_host_functions(greeter()).unwrap();
    let m = rt.load(&built("wit-component.wasm")).unwrap();
    // Without the grant the import is missing.
    let e = m
        .clone()
        .with_capabilities(Capabilities::none().with_wasi(Wasi::new()))
        .call("call-host", r#""x""#)
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::LinkError, "{e}");
    assert!(e.to_string().contains("wasmhost:example/host"), "{e}");
    let m = m.with_capabilities(
        Capabilities::none()
            .with_wasi(Wasi::new())
            .with_host_functions("greeter"),
    );
    let out = m.call("call-host", r#""Ada""#).unwrap();
    assert_eq!(out.value.json().unwrap(), json!("guest got: hello, Ada"));
}

#[test]
fn async_component_host_function() {
    let rt = runtime();
    rt.add_host_functions(HostFunctions::new("slow-greeter").component_async(
        "wasmhost:example/host@0.1.0",
        "greet",
        |(name,): (String,)| async move {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            Ok((format!("later, {name}"),))
        },
    ))
    .unwrap();
    let m = rt
        .load(&built("wit-component.wasm"))
        .unwrap()
        .with_capabilities(
            Capabilities::none()
                .with_wasi(Wasi::new())
                .with_host_functions("slow-greeter"),
        );
    let out = m.call("call-host", r#""Bo""#).unwrap();
    assert_eq!(out.value.json().unwrap(), json!("guest got: later, Bo"));
}
