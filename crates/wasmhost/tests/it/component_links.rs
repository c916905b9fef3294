//! Components linked to components (`Module::link` with two components):
//! `guests/rust/link-consumer` imports `wasmhost:example/console` and
//! `wasmhost:example/events`, `guests/rust/link-provider` exports them.
//! Each runs in its own store, under its own limits and grants.

use wasmhost::{
    CallOptions, Capabilities, ErrorCode, Limits, Module, Runtime, RuntimeConfig, Wasi,
};

use std::sync::OnceLock;
use std::time::Duration;

use crate::{built, wat};

const CONSOLE: &str = "wasmhost:example/console";
const EVENTS: &str = "wasmhost:example/events";

/// Rust's std on wasm32-wasip2 imports some of WASI; both get it.
fn wasi() -> Capabilities {
    Capabilities::none().with_wasi(Wasi::new())
}

/// One runtime for these tests (and one with fuel metering), so each
/// guest compiles once per runtime (the load is cached by digest).
fn shared(fuel: bool) -> Runtime {
    static PLAIN: OnceLock<Runtime> = OnceLock::new();
    static FUEL: OnceLock<Runtime> = OnceLock::new();
    let (cell, config) = match fuel {
        false => (&PLAIN, RuntimeConfig::default()),
        true => (&FUEL, RuntimeConfig::default().fuel_metering(true)),
    };
    cell.get_or_init(|| Runtime::new(config).unwrap()).clone()
}

fn runtime() -> Runtime {
    shared(false)
}

fn consumer(rt: &Runtime) -> Module {
    rt.load(&built("link-consumer.wasm"))
        .unwrap()
        .with_capabilities(wasi())
}

fn provider(rt: &Runtime) -> Module {
    rt.load(&built("link-provider.wasm"))
        .unwrap()
        .with_capabilities(wasi())
}

/// The consumer with both interfaces provided by `provider`.
fn linked(rt: &Runtime, provider: &Module) -> Module {
    consumer(rt)
        .link(CONSOLE, provider)
        .unwrap()
        .link(EVENTS, provider)
        .unwrap()
}

fn greet(m: &Module, name: &str) -> String {
    let out = m.call("greet", format!("{name:?}")).unwrap();
    out.value.json().unwrap().as_str().unwrap().to_string()
}

#[test]
fn a_components_imports_are_provided_by_another_component() {
    let rt = runtime();
    let p = provider(&rt);
    let m = linked(&rt, &p);
    // Both interfaces reach the same provider instance: the line logged
    // through `console` and the event emitted through `events` are both
    // read back.
    assert_eq!(greet(&m, "ada"), "hello ada | greeted: 1");
    // A fresh call, a fresh consumer and a fresh provider.
    assert_eq!(greet(&m, "bob"), "hello bob | greeted: 1");
    assert_eq!(
        m.linked(),
        vec![
            (format!("{CONSOLE}@0.1.0"), p.digest()),
            (format!("{EVENTS}@0.1.0"), p.digest())
        ]
    );
    // A kept instance keeps its provider's instance too.
    let mut inst = m.instantiate(&CallOptions::default()).unwrap();
    inst.call("greet", r#""ada""#).unwrap();
    let out = inst.call("greet", r#""bob""#).unwrap();
    assert_eq!(
        out.value.json().unwrap(),
        serde_json::json!("hello ada;hello bob | greeted: 2")
    );
    // A provider's error result comes back as a value.
    let out = m.call("emit-many", "[3, 10]").unwrap();
    assert_eq!(out.value.json().unwrap(), serde_json::json!(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linked_components_run_through_the_async_api() {
    let rt = runtime();
    let p = provider(&rt);
    let m = linked(&rt, &p);
    let opts = CallOptions::default();
    for name in ["ada", "bob"] {
        let out = m
            .call_async("greet", format!("{name:?}"), &opts)
            .await
            .unwrap();
        assert_eq!(
            out.value.json().unwrap(),
            serde_json::json!(format!("hello {name} | greeted: 1"))
        );
    }
    let out = m.call_async("emit-many", "[5, 1000]", &opts).await.unwrap();
    assert_eq!(out.value.json().unwrap(), serde_json::json!(5));
}

#[test]
fn an_import_nothing_provides_is_a_link_error_naming_it() {
    let rt = runtime();
    let m = consumer(&rt).link(CONSOLE, &provider(&rt)).unwrap();
    let err = m.call("greet", r#""ada""#).unwrap_err();
    assert_eq!(err.code(), ErrorCode::LinkError, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("wasmhost:example/events@0.1.0"), "{msg}");
    // The provided one is not reported missing.
    assert!(!msg.contains("wasmhost:example/console"), "{msg}");
}

#[test]
fn a_provider_that_does_not_export_the_interface_is_a_link_error() {
    let rt = runtime();
    // wit-component exports functions at its root, no interface.
    let other = rt.load(&built("wit-component.wasm")).unwrap();
    let err = consumer(&rt).link(CONSOLE, &other).unwrap_err();
    assert_eq!(err.code(), ErrorCode::LinkError, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("does not export") && msg.contains(CONSOLE),
        "{msg}"
    );
    // The consumer itself provides nothing.
    let err = consumer(&rt).link(EVENTS, &consumer(&rt)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::LinkError, "{err}");
}

#[test]
fn a_provider_of_another_type_is_a_link_error() {
    let rt = runtime();
    // Exports console with `log: func(line: u32)` and no `lines`.
    let wrong = rt.load(&wat("link-mismatch")).unwrap();
    let err = consumer(&rt).link(CONSOLE, &wrong).unwrap_err();
    assert_eq!(err.code(), ErrorCode::LinkError, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("function `log`: type mismatch")
            && msg.contains("func(line: string)")
            && msg.contains("func(line: u32)"),
        "{msg}"
    );
    assert!(msg.contains("function `lines` is not exported"), "{msg}");
}

#[test]
fn linking_what_the_consumer_does_not_import_is_bad_input() {
    let rt = runtime();
    let p = provider(&rt);
    let err = consumer(&rt)
        .link("wasmhost:example/nothing", &p)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
    assert!(err.to_string().contains("imports no interface"), "{err}");
    let err = consumer(&rt)
        .link(CONSOLE, &p)
        .unwrap()
        .link(format!("{CONSOLE}@0.1.0"), &p)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
    // A component and a core module do not link.
    let core = rt.load(&wat("numeric")).unwrap();
    let err = consumer(&rt).link(CONSOLE, &core).unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
}

#[test]
fn the_providers_memory_limit_holds_apart_from_the_consumers() {
    let rt = runtime();
    // 12 events of 256 KiB: 3 MiB kept by the provider, while the consumer
    // holds one payload at a time. (Kept small: each byte crosses as a
    // component value.)
    let flood = "[12, 262144]";
    let small = provider(&rt).with_limits(Limits::default().max_memory_bytes(2 << 20));
    let m = linked(&rt, &small).with_limits(Limits::default().max_memory_bytes(64 << 20));
    let err = m.call("emit-many", flood).unwrap_err();
    assert_eq!(err.code(), ErrorCode::MemoryLimit, "{err}");
    // The same with a roomy provider and a consumer limited as the small
    // provider was: the consumer is not charged for the provider's memory.
    let roomy = provider(&rt).with_limits(Limits::default().max_memory_bytes(64 << 20));
    let m = linked(&rt, &roomy).with_limits(Limits::default().max_memory_bytes(2 << 20));
    let out = m.call("emit-many", flood).unwrap();
    assert_eq!(out.value.json().unwrap(), serde_json::json!(12));
    assert!(
        out.stats.peak_memory_bytes < 2 << 20,
        "{}",
        out.stats.peak_memory_bytes
    );
}

#[test]
fn the_providers_fuel_and_grants_are_its_own() {
    let rt = shared(true);
    // The consumer has all the fuel there is; each call into the provider
    // gets the provider's little.
    let starved = provider(&rt).with_limits(Limits::default().fuel(Some(2_000)));
    let m = linked(&rt, &starved);
    let err = m.call("greet", r#""ada""#).unwrap_err();
    assert_eq!(err.code(), ErrorCode::OutOfFuel, "{err}");
    let fed = provider(&rt).with_limits(Limits::default().fuel(Some(50_000_000)));
    assert_eq!(greet(&linked(&rt, &fed), "ada"), "hello ada | greeted: 1");
    // A provider granted nothing does not get the consumer's WASI.
    let bare = provider(&rt).with_capabilities(Capabilities::none());
    let err = linked(&rt, &bare).call("greet", r#""ada""#).unwrap_err();
    assert_eq!(err.code(), ErrorCode::LinkError, "{err}");
    assert!(err.to_string().contains("wasi:"), "{err}");
}

#[test]
fn the_consumers_deadline_bounds_its_providers() {
    let rt = runtime();
    // `log` of this console never returns; the provider's own timeout is
    // an hour, the consumer's 200 ms.
    let spin = rt
        .load(&wat("link-spin"))
        .unwrap()
        .with_limits(Limits::default().timeout(Some(Duration::from_secs(3600))));
    let m = consumer(&rt)
        .link(CONSOLE, &spin)
        .unwrap()
        .link(EVENTS, &provider(&rt))
        .unwrap()
        .with_limits(Limits::default().timeout(Some(Duration::from_millis(200))));
    let check = |err: wasmhost::Error| match err {
        wasmhost::Error::Timeout { limit } => {
            assert!(limit <= Duration::from_millis(200), "{limit:?}")
        }
        other => panic!("expected a timeout, got {other}"),
    };
    check(m.call("greet", r#""ada""#).unwrap_err());
    let rt_async = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    check(
        rt_async
            .block_on(m.call_async("greet", r#""ada""#, &CallOptions::default()))
            .unwrap_err(),
    );
}
