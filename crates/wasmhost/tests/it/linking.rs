//! Core modules linked by name (`Module::link`), as an Extism manifest's
//! several modules are: imports between them, host functions written in
//! wasm under `extism:host/user`, commands instantiated afresh per call,
//! missing imports and cycles reported, the async API alike.

use wasmhost::{
    CallOptions, Capabilities, Convention, ErrorCode, Module, Runtime, RuntimeConfig, Source, Value,
};

use crate::{built, runtime, wat};

fn wat_text(rt: &Runtime, text: &str) -> Module {
    rt.load(&Source::Bytes(text.as_bytes().to_vec())).unwrap()
}

#[test]
fn a_plugin_gets_its_host_function_from_a_linked_module() {
    // Without the module, `reverse` is missing; linked as
    // `extism:host/user`, it is the plugin's host function.
    let rt = runtime();
    let plugin = rt.load(&built("extism-plugin.wasm")).unwrap();
    let err = plugin.call("reverse_via_host", "abc").unwrap_err();
    assert_eq!(err.code(), ErrorCode::LinkError, "{err}");
    let user = rt.load(&wat("extism-user-reverse")).unwrap();
    let linked = plugin.link("extism:host/user", &user).unwrap();
    assert_eq!(
        linked.linked(),
        [("extism:host/user".to_string(), user.digest())]
    );
    let out = linked.call("reverse_via_host", "stressed").unwrap();
    assert_eq!(out.value.text().unwrap(), "host said: desserts");
    // The plugin's other functions, and a kept instance, see the same.
    let out = linked.call("count_vowels", "Hello, World!").unwrap();
    assert_eq!(out.value.json().unwrap()["count"], 3);
    let mut instance = linked.instantiate(&CallOptions::default()).unwrap();
    for word in ["ab", "xyz"] {
        let out = instance.call("reverse_via_host", word).unwrap();
        let expected = format!("host said: {}", word.chars().rev().collect::<String>());
        assert_eq!(out.value.text().unwrap(), expected);
    }
}

#[test]
fn a_linked_command_runs_in_a_fresh_instance_per_call() {
    // linked-main calls counter's `_start` three times, then its
    // `read_counter`: each call is a fresh instance of the command, so the
    // count is the start function's 1, every time.
    let rt = Runtime::new(RuntimeConfig::default().pool(None)).unwrap();
    let main = rt.load(&wat("linked-main")).unwrap();
    let counter = rt.load(&wat("linked-counter")).unwrap();
    let main = main.link("counter", &counter).unwrap();
    let numeric = CallOptions::default().convention(Convention::Numeric);
    for _ in 0..3 {
        let out = main.call_with("count", "", &numeric).unwrap();
        assert_eq!(out.value.integer().unwrap(), 1);
    }
    // Through the Extism convention: 8 bytes, little-endian.
    let out = main.call("run", "").unwrap();
    assert_eq!(&*out.value.bytes(), &1u64.to_le_bytes());
}

#[test]
fn order_of_linking_does_not_matter_and_linked_modules_share_the_grants() {
    let rt = runtime();
    // c imports from b, b from a; linked in the wrong order on purpose.
    let a = wat_text(
        &rt,
        r#"(module (func (export "one") (result i32) i32.const 1))"#,
    );
    let b = wat_text(
        &rt,
        r#"(module (import "a" "one" (func $one (result i32)))
             (func (export "two") (result i32) call $one call $one i32.add))"#,
    );
    let main = wat_text(
        &rt,
        r#"(module (import "b" "two" (func $two (result i32)))
             (import "wasmhost" "log" (func $log (param i32 i32 i32)))
             (memory (export "memory") 1) (data (i32.const 0) "linked")
             (func (export "four") (result i32)
               i32.const 2 i32.const 0 i32.const 6 call $log
               call $two call $two i32.add))"#,
    );
    let main = main
        .link("b", &b)
        .unwrap()
        .link("a", &a)
        .unwrap()
        .with_capabilities(Capabilities::none().with_log(true));
    let out = main.invoke("four", &[]).unwrap();
    assert_eq!(out.value, [Value::I32(4)]);
    assert_eq!(out.logs.len(), 1);
    assert_eq!(out.logs[0].message, "linked");
}

#[test]
fn missing_imports_cycles_and_bad_links_are_errors() {
    let rt = runtime();
    let main = wat_text(
        &rt,
        r#"(module (import "lib" "f" (func)) (import "lib" "g" (func)) (import "env" "h" (func))
             (func (export "run")))"#,
    );
    let lib = wat_text(&rt, r#"(module (func (export "f")))"#);
    let err = main
        .clone()
        .link("lib", &lib)
        .unwrap()
        .invoke("run", &[])
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::LinkError);
    let msg = err.to_string();
    assert!(msg.contains("lib::g") && msg.contains("env::h"), "{msg}");
    assert!(!msg.contains("lib::f"), "{msg}");

    let x = wat_text(
        &rt,
        r#"(module (import "y" "f" (func)) (func (export "f")))"#,
    );
    let y = wat_text(
        &rt,
        r#"(module (import "x" "f" (func)) (func (export "f")))"#,
    );
    let top = wat_text(
        &rt,
        r#"(module (import "x" "f" (func)) (func (export "run")))"#,
    );
    let err = top
        .link("x", &x)
        .unwrap()
        .link("y", &y)
        .unwrap()
        .invoke("run", &[])
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput);
    assert!(err.to_string().contains("cycle"), "{err}");

    // The same name twice, a component, another runtime: refused at once.
    let err = main
        .clone()
        .link("lib", &lib)
        .unwrap()
        .link("lib", &lib)
        .unwrap_err();
    assert!(err.to_string().contains("`lib`"), "{err}");
    let component = rt.load(&built("wit-component.wasm")).unwrap();
    let err = main.clone().link("c", &component).unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput);
    assert!(err.to_string().contains("component"), "{err}");
    let other = runtime()
        .load(&Source::Bytes(br#"(module)"#.to_vec()))
        .unwrap();
    let err = main.link("o", &other).unwrap_err();
    assert!(err.to_string().contains("another runtime"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linked_modules_through_the_async_api() {
    let rt = runtime();
    let plugin = rt.load(&built("extism-plugin.wasm")).unwrap();
    let user = rt.load(&wat("extism-user-reverse")).unwrap();
    let linked = plugin.link("extism:host/user", &user).unwrap();
    let out = linked
        .call_async("reverse_via_host", "async", &CallOptions::default())
        .await
        .unwrap();
    assert_eq!(out.value.text().unwrap(), "host said: cnysa");
    let main = rt
        .load(&wat("linked-main"))
        .unwrap()
        .link("counter", &rt.load(&wat("linked-counter")).unwrap())
        .unwrap();
    let out = main
        .call_async("run", "", &CallOptions::default())
        .await
        .unwrap();
    assert_eq!(&*out.value.bytes(), &1u64.to_le_bytes());
}
