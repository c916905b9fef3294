//! Process modes: sync (a fresh instance per message, `_start` reads the
//! message on stdin) and async (one kept instance, an export per message
//! with its own stdin and stdout), with `guests/rust/wasi-poll` (a reactor),
//! `guests/wat/both_modes.wat` (both `_start` and `poll`) and
//! `guests/rust/wasi-echo` (a command).

use wasmhost::{CallOptions, Capabilities, Error, ErrorCode, Module, Output, POLL, Wasi};

use crate::{built, runtime, wat};

fn with_wasi(m: Module) -> Module {
    m.with_capabilities(Capabilities::none().with_wasi(Wasi::new()))
}

fn poll_guest() -> Module {
    with_wasi(runtime().load(&built("wasi-poll.wasm")).unwrap())
}

fn both_modes() -> Module {
    with_wasi(runtime().load(&wat("both_modes")).unwrap())
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

#[test]
fn async_mode_keeps_a_message_count_across_messages() {
    let m = poll_guest();
    let mut p = m.instantiate(&CallOptions::default()).unwrap();
    for (n, msg) in ["first", "second", "third"].iter().enumerate() {
        let out = p.message(POLL, *msg).unwrap();
        assert_eq!(text(&out.value), format!("#{}: {msg}", n + 1));
        assert!(out.stdout.is_empty(), "the reply is moved into the value");
    }
    assert_eq!(p.restarts(), 0);
}

#[test]
fn async_mode_stdout_of_one_message_does_not_leak_into_the_next() {
    let mut p = poll_guest().instantiate(&CallOptions::default()).unwrap();
    let big = "x".repeat(10_000);
    assert_eq!(
        p.message("echo", big.clone()).unwrap().value,
        big.as_bytes()
    );
    assert_eq!(p.message("echo", "small").unwrap().value, b"small");
    // An empty message gives an empty reply, not what came before.
    assert_eq!(p.message("echo", "").unwrap().value, b"");
}

#[test]
fn async_mode_stdin_is_exactly_the_message() {
    let mut p = poll_guest().instantiate(&CallOptions::default()).unwrap();
    let binary: Vec<u8> = (0..70_000u32).map(|i| (i % 256) as u8).collect();
    assert_eq!(p.message("echo", binary.clone()).unwrap().value, binary);
    // Nothing of the previous message is left to read.
    assert_eq!(p.message("echo", "tail").unwrap().value, b"tail");
}

#[test]
fn async_mode_with_the_export_configured() {
    let mut p = both_modes().instantiate(&CallOptions::default()).unwrap();
    let err = p.message("no_such_export", "x").unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    assert!(err.to_string().contains("poll"), "lists the exports: {err}");
    let err = p.message("memory", "x").unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    // Neither failure touched the instance.
    assert_eq!(text(&p.message(POLL, "a").unwrap().value), "async #1: a");
    assert_eq!(p.restarts(), 0);
}

#[test]
fn sync_mode_leaves_no_state_behind() {
    let m = both_modes();
    let opts = CallOptions::default();
    let first = m.process_sync("hello", &opts).unwrap();
    let second = m.process_sync("hello", &opts).unwrap();
    assert_eq!(text(&first.value), "sync: hello");
    assert_eq!(first.value, second.value);
}

#[test]
fn one_executable_serves_in_both_modes() {
    let m = both_modes();
    let opts = CallOptions::default();
    let mut p = m.instantiate(&opts).unwrap();
    for n in 1..=3 {
        let sync = m.process_sync(format!("m{n}"), &opts).unwrap();
        assert_eq!(text(&sync.value), format!("sync: m{n}"));
        let out = p.message(POLL, format!("m{n}")).unwrap();
        assert_eq!(text(&out.value), format!("async #{n}: m{n}"));
    }
}

#[test]
fn sync_mode_non_zero_exit_is_an_exit_error_with_code_and_stderr() {
    let m = runtime()
        .load(&built("wasi-echo.wasm"))
        .unwrap()
        .with_capabilities(Capabilities::none().with_wasi(Wasi::new().args([
            "wasi-echo",
            "exit",
            "3",
        ])));
    match m.process_sync("ignored", &CallOptions::default()) {
        Err(Error::Exit { code, stderr, .. }) => {
            assert_eq!(code, 3);
            assert_eq!(text(&stderr).trim(), "exiting with 3");
        }
        other => panic!("expected an exit error, got {other:?}"),
    }
}

#[test]
fn process_modes_need_wasi() {
    let m = runtime().load(&wat("both_modes")).unwrap();
    let err = m.process_sync("x", &CallOptions::default()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
}

#[test]
fn capture_limit_applies_per_message() {
    let opts = CallOptions::default().stdout(Output::Capture { limit: 100 });
    let mut p = poll_guest().instantiate(&opts).unwrap();
    // 90 bytes, four times: 360 in all, but each message is under the limit.
    for _ in 0..4 {
        let msg = "y".repeat(90);
        assert_eq!(
            p.message("echo", msg.clone()).unwrap().value,
            msg.as_bytes()
        );
    }
    // Exactly at the limit is fine; one byte past it is not.
    assert_eq!(p.message("echo", "z".repeat(100)).unwrap().value.len(), 100);
    let err = p.message("echo", "z".repeat(101)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::MemoryLimit, "{err}");
    // The next message starts over, on a fresh instance.
    assert_eq!(p.message("echo", "ok").unwrap().value, b"ok");
    // The same per-message limit in sync mode.
    let m = both_modes();
    let err = m.process_sync("w".repeat(200), &opts).unwrap_err();
    assert_eq!(err.code(), ErrorCode::MemoryLimit, "{err}");
    assert_eq!(m.process_sync("w", &opts).unwrap().value, b"sync: w");
}

#[test]
fn a_trap_in_async_mode_is_reported_and_the_next_message_runs_on_a_fresh_instance() {
    let mut p = poll_guest().instantiate(&CallOptions::default()).unwrap();
    assert_eq!(text(&p.message(POLL, "a").unwrap().value), "#1: a");
    assert_eq!(text(&p.message(POLL, "b").unwrap().value), "#2: b");
    let err = p.message("fail", "").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Trap, "{err}");
    assert_eq!(p.restarts(), 1);
    // Memory was lost with the old instance: the count starts over.
    assert_eq!(text(&p.message(POLL, "c").unwrap().value), "#1: c");
}

#[test]
fn instance_calls_report_only_their_own_output() {
    // Regression: a kept instance reported everything since it was created
    // (and its capture limit filled up across calls).
    let opts = CallOptions::default().stdout(Output::Capture { limit: 64 });
    let mut p = both_modes().instantiate(&opts).unwrap();
    for n in 1..=20 {
        let out = p.invoke(POLL, &[]).unwrap();
        assert_eq!(text(&out.stdout), format!("async #{n}: "));
    }
}

#[test]
fn process_is_a_convention_for_calls_instances_and_actors() {
    use wasmhost::Convention;
    use wasmhost::actor::{ActorConfig, ActorSpec, ActorSystem};
    let m = both_modes();
    let process = CallOptions::default().convention(Convention::Process);
    // Fresh calls: `_start` is the sync mode, another export the async one.
    let sync = m.call_with("_start", "hi", &process).unwrap();
    let again = m.call_with("_start", "hi", &process).unwrap();
    assert_eq!(sync.value, again.value, "sync mode keeps no state");
    let mut i = m.instantiate(&process).unwrap();
    let a = i
        .call(POLL, "one")
        .unwrap()
        .value
        .text()
        .unwrap()
        .into_owned();
    let b = i
        .call(POLL, "two")
        .unwrap()
        .value
        .text()
        .unwrap()
        .into_owned();
    assert_ne!(a, b, "async mode keeps its counter: {a} / {b}");
    assert!(a.contains("one") && b.contains("two"), "{a} / {b}");
    // Never detected: a `() -> ()` export is numeric unless Process is forced.
    assert!(
        m.conventions(POLL)
            .iter()
            .all(|(c, _)| *c != Convention::Process)
    );
    // An actor serving messages through `poll`.
    let system = ActorSystem::new(ActorConfig::default());
    let spec = ActorSpec::new(poll_guest()).convention(Convention::Process);
    let reply = |msg: &str| {
        system
            .send("p", Some(&spec), POLL, msg.as_bytes().to_vec())
            .unwrap()
            .value
            .text()
            .unwrap()
            .into_owned()
    };
    assert_eq!(reply("a"), "#1: a");
    assert_eq!(reply("b"), "#2: b");
    // Forcing Process on an export that takes arguments says so.
    let e = runtime()
        .load(&wat("numeric"))
        .unwrap()
        .call_with("add_i32", "", &process)
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadInput, "{e}");
}
