//! The async API: guests run on the caller's executor, yield to it while
//! they spin, await async host functions in place, and stop cleanly when
//! their future is dropped.
//!
//! Most tests run on a current-thread runtime on purpose: there, a guest
//! that held the thread, or a host function that blocked it, would stall
//! everything else, and `block_in_place` panics.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmhost::{
    ActorConfig, ActorSpec, ActorSystem, CallOptions, Capabilities, ErrorCode, HostFunctions,
    Limits, PoolConfig, Runtime, RuntimeConfig, Source, Value, ValueType, Wasi,
};

use crate::{built, runtime, wat};

const CALLER_THREAD_GUEST: &str = r#"(module
  (import "host" "wait" (func $wait (param i64) (result i64)))
  (import "host" "wake" (func $wake (param i64) (result i64)))
  (func (export "wait") (param i64) (result i64) local.get 0 call $wait)
  (func (export "wake") (param i64) (result i64) local.get 0 call $wake))"#;

/// A runtime whose pool has `slots` instances and `stacks` fiber stacks.
fn small_pool(slots: u32, stacks: u32) -> Runtime {
    let mut pool = PoolConfig::default();
    pool.max_instances = slots;
    pool.async_stacks = stacks;
    Runtime::new(RuntimeConfig::default().pool(Some(pool))).unwrap()
}

fn timeout(ms: u64) -> Limits {
    Limits::default().timeout(Some(Duration::from_millis(ms)))
}

#[tokio::test(flavor = "current_thread")]
async fn every_call_path_answers_through_the_async_api() {
    let rt = runtime();
    let opts = CallOptions::default();
    // Numeric.
    let numeric = rt.load(&wat("numeric")).unwrap();
    let fns: Vec<String> = numeric.functions().into_iter().map(|(n, _)| n).collect();
    assert!(fns.iter().any(|f| f == "add_i32"), "{fns:?}");
    let out = numeric
        .invoke_async("add_i32", &[Value::I32(40), Value::I32(2)], &opts)
        .await
        .unwrap();
    assert_eq!(out.value, vec![Value::I32(42)]);
    // Extism plugin, with config.
    let plugin = rt
        .load(&built("extism-plugin.wasm"))
        .unwrap()
        .with_capabilities(
            Capabilities::none()
                .with_config("vowels", "lo")
                .with_trap_unknown_imports(true),
        );
    let out = plugin
        .call_async("count_vowels", "Hello, World!", &opts)
        .await
        .unwrap();
    assert_eq!(out.value.json().unwrap()["count"], 5);
    // AssemblyScript string, and a kept instance.
    let counter = rt.load(&built("as-counter-stub.wasm")).unwrap();
    let mut instance = counter.instantiate_async(&opts).await.unwrap();
    let first = instance.call_async("increment", "5").await.unwrap();
    let second = instance.call_async("increment", "3").await.unwrap();
    assert_eq!(first.value.text().unwrap(), "5");
    assert_eq!(second.value.text().unwrap(), "8");
    // Component with JSON arguments, and an async component host function.
    rt.add_host_functions(HostFunctions::new("greeter").component_async(
        "wasmhost:example/host@0.1.0",
        "greet",
        |(name,): (String,)| async move {
            tokio::task::yield_now().await;
            Ok((format!("hello {name}"),))
        },
    ))
    .unwrap();
    let component = rt
        .load(&built("wit-component.wasm"))
        .unwrap()
        .with_capabilities(
            Capabilities::none()
                .with_wasi(Wasi::new())
                .with_host_functions("greeter"),
        );
    let out = component
        .call_async("sum", "[[1, 2, 39]]", &opts)
        .await
        .unwrap();
    assert_eq!(out.value.json().unwrap(), serde_json::json!(42));
    let out = component
        .call_async("call-host", r#"["you"]"#, &opts)
        .await
        .unwrap();
    assert_eq!(
        out.value.json().unwrap(),
        serde_json::json!("guest got: hello you")
    );
    // Raw transfer.
    let raw = rt.load(&wat("raw")).unwrap();
    let out = raw
        .call_raw_async("reverse", b"abc", &[], &opts)
        .await
        .unwrap();
    assert_eq!(out.value, b"cba");
    // WASI command (core and component), sync process mode, async process mode.
    let wasi = Capabilities::none().with_wasi(Wasi::new());
    for file in ["wasi-echo.wasm", "wasi-echo.component.wasm"] {
        let echo = rt
            .load(&built(file))
            .unwrap()
            .with_capabilities(wasi.clone());
        let out = echo.process_sync_async("ping", &opts).await.unwrap();
        assert_eq!(out.value, b"ping", "{file}");
        let run = echo
            .run_async(&opts.clone().stdin(wasmhost::Stdin::Bytes("x".into())))
            .await
            .unwrap();
        assert_eq!(run.stdout, b"x", "{file}");
    }
    let poll = rt
        .load(&built("wasi-poll.wasm"))
        .unwrap()
        .with_capabilities(wasi);
    let mut process = poll.instantiate_async(&opts).await.unwrap();
    assert_eq!(
        process.message_async("poll", "one").await.unwrap().value,
        b"#1: one"
    );
    assert_eq!(
        process.message_async("poll", "two").await.unwrap().value,
        b"#2: two"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_spinning_guest_does_not_stall_other_calls_on_the_same_executor() {
    let rt = runtime();
    let spinner = rt.load(&wat("loop")).unwrap().with_limits(timeout(1_000));
    let spinning = tokio::spawn({
        let spinner = spinner.clone();
        async move {
            spinner
                .invoke_async("run", &[], &CallOptions::default())
                .await
        }
    });
    // Let the spinner start (it is spawned, not yet polled).
    tokio::task::yield_now().await;
    let quick = rt.load(&wat("numeric")).unwrap();
    for i in 0..50 {
        let out = quick
            .invoke_async(
                "add_i32",
                &[Value::I32(i), Value::I32(1)],
                &CallOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(out.value, vec![Value::I32(i + 1)]);
    }
    // One thread drives both: the quick calls could only run because the
    // spinner yielded at its epoch ticks, and it is still spinning.
    assert!(
        !spinning.is_finished(),
        "the spinner ended before the quick calls did"
    );
    let err = spinning.await.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
}

/// A client that gives up drops the call's future mid-call; wasmtime once
/// panicked on exactly this (CVE-2026-27195).
#[tokio::test(flavor = "current_thread")]
async fn a_dropped_call_frees_its_slot_and_stack_and_the_next_call_succeeds() {
    // One instance slot and one fiber stack: a leak of either would make
    // the second round fail.
    let rt = small_pool(1, 1);
    let m = rt.load(&wat("loop")).unwrap();
    let opts = CallOptions::default();
    for _ in 0..20 {
        let call = m.invoke_async("run", &[], &opts);
        // The guest spins with no timeout of its own; the caller gives up.
        let gave_up = tokio::time::timeout(Duration::from_millis(30), call).await;
        assert!(gave_up.is_err(), "an endless loop returned: {gave_up:?}");
        let ok = m
            .invoke_async("ok", &[], &CallOptions::default())
            .await
            .unwrap();
        assert_eq!(ok.value, vec![Value::I32(1)]);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_instance_whose_call_was_dropped_starts_over() {
    let rt = runtime();
    let counter = rt
        .load(&Source::Bytes(
            br#"(module (global $n (mut i32) (i32.const 0))
              (func (export "next") (result i32)
                global.get $n i32.const 1 i32.add global.set $n global.get $n)
              (func (export "bump_then_spin")
                global.get $n i32.const 100 i32.add global.set $n
                (loop $l (br $l))))"#
                .to_vec(),
        ))
        .unwrap();
    let mut instance = counter
        .instantiate_async(&CallOptions::default())
        .await
        .unwrap();
    assert_eq!(
        instance
            .call_async("next", "")
            .await
            .unwrap()
            .value
            .integer()
            .unwrap(),
        1
    );
    let dropped = tokio::time::timeout(
        Duration::from_millis(30),
        instance.call_async("bump_then_spin", ""),
    )
    .await;
    assert!(dropped.is_err());
    // The abandoned call may have changed the state half-way (here it did):
    // the instance starts over rather than going on from it.
    assert_eq!(
        instance
            .call_async("next", "")
            .await
            .unwrap()
            .value
            .integer()
            .unwrap(),
        1
    );
    assert_eq!(instance.restarts(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn async_host_functions_are_awaited_on_the_callers_executor() {
    // `wait` parks on a channel that only `wake`, called by another guest
    // on the same (single) thread, fills. With the host function blocking
    // its thread this would deadlock; with `block_in_place` it would panic
    // (not allowed on a current-thread runtime).
    let rt = runtime();
    let caller = std::thread::current().id();
    let slot: Arc<Mutex<Option<tokio::sync::oneshot::Sender<i64>>>> = Arc::default();
    let (tx, rx) = tokio::sync::oneshot::channel::<i64>();
    *slot.lock().unwrap() = Some(tx);
    let rx = Arc::new(Mutex::new(Some(rx)));
    rt.add_host_functions(
        HostFunctions::new("chan")
            .core_async("host", "wait", &[ValueType::I64], &[ValueType::I64], {
                let rx = rx.clone();
                move |args| {
                    let rx = rx.lock().unwrap().take();
                    async move {
                        assert_eq!(std::thread::current().id(), caller);
                        // Needs this runtime's timer: proof it runs here.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        let got = rx.ok_or("waited twice")?.await.map_err(|e| e.to_string())?;
                        let Value::I64(x) = args[0] else {
                            return Err("expected an i64".into());
                        };
                        Ok(vec![Value::I64(x + got)])
                    }
                }
            })
            .core_async("host", "wake", &[ValueType::I64], &[ValueType::I64], {
                let slot = slot.clone();
                move |args| {
                    let tx = slot.lock().unwrap().take();
                    async move {
                        let Value::I64(x) = args[0] else {
                            return Err("expected an i64".into());
                        };
                        tx.ok_or("woke twice")?
                            .send(x)
                            .map_err(|_| "nobody waits")?;
                        Ok(vec![Value::I64(0)])
                    }
                }
            }),
    )
    .unwrap();
    let m = rt
        .load(&Source::Bytes(CALLER_THREAD_GUEST.into()))
        .unwrap()
        .with_capabilities(Capabilities::none().with_host_functions("chan"));
    let opts = CallOptions::default();
    let (waited, woke) = tokio::join!(m.invoke_async("wait", &[Value::I64(1)], &opts), async {
        tokio::task::yield_now().await;
        m.invoke_async("wake", &[Value::I64(41)], &opts).await
    });
    assert_eq!(woke.unwrap().value, vec![Value::I64(0)]);
    assert_eq!(waited.unwrap().value, vec![Value::I64(42)]);
}

#[tokio::test(flavor = "current_thread")]
async fn async_extism_host_functions() {
    let rt = runtime();
    rt.add_host_functions(HostFunctions::new("later").extism_async(
        "reverse",
        |input: Vec<u8>| async move {
            tokio::task::yield_now().await;
            Ok(input.into_iter().rev().collect())
        },
    ))
    .unwrap();
    let plugin = rt
        .load(&built("extism-plugin.wasm"))
        .unwrap()
        .with_capabilities(Capabilities::none().with_host_functions("later"));
    let out = plugin
        .call_async("reverse_via_host", "abc", &CallOptions::default())
        .await
        .unwrap();
    assert_eq!(out.value.text().unwrap(), "host said: cba");
}

#[tokio::test(flavor = "current_thread")]
async fn more_calls_than_fiber_stacks_are_refused_with_a_code() {
    let rt = small_pool(4, 1);
    let spinner = rt.load(&wat("loop")).unwrap().with_limits(timeout(300));
    let running = tokio::spawn({
        let spinner = spinner.clone();
        async move {
            spinner
                .invoke_async("run", &[], &CallOptions::default())
                .await
        }
    });
    tokio::task::yield_now().await;
    assert!(!running.is_finished(), "{:?}", running.await);
    let err = spinner
        .invoke_async("ok", &[], &CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Overloaded, "{err}");
    assert_eq!(
        running.await.unwrap().unwrap_err().code(),
        ErrorCode::Timeout
    );
    // The stack is free again.
    spinner
        .invoke_async("ok", &[], &CallOptions::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn actors_run_on_the_executor_and_keep_their_order() {
    let rt = Runtime::new(RuntimeConfig::default().pool(None)).unwrap();
    let counter = rt.load(&built("as-counter-stub.wasm")).unwrap();
    let actors = ActorSystem::new(ActorConfig::default());
    let spec = ActorSpec::new(counter);
    let mut replies = Vec::new();
    for n in [5, 3, -2] {
        let out = actors
            .send_async("c", Some(&spec), "increment", n.to_string())
            .await
            .unwrap();
        replies.push(out.value.text().unwrap().into_owned());
    }
    assert_eq!(replies, ["5", "8", "6"]);
}
