//! `wasmhost run --mode sync|async`: messages are the lines of stdin, each
//! reply a line of stdout, driven the way a user drives them.

// Tests unwrap: a failure is the test failing, with the value in the message.
#![allow(clippy::unwrap_used)]

mod common;

use common::{built, ok, wasmhost, wat};

#[test]
fn async_mode_replies_to_each_line_with_the_count() {
    let poll = built("wasi-poll.wasm");
    let out = ok(&["run", "--mode", "async", &poll], b"one\ntwo\nthree\n");
    assert_eq!(out, "#1: one\n#2: two\n#3: three\n");
    // Another export; the last line needs no newline.
    let out = ok(
        &["run", "--mode", "async", "--export", "echo", &poll],
        b"a\r\nb",
    );
    assert_eq!(out, "a\nb\n");
}

#[test]
fn sync_mode_replies_to_each_line_with_no_state() {
    let both = wat("both_modes");
    let out = ok(&["run", "--mode", "sync", &both], b"one\ntwo\nthree\n");
    assert_eq!(out, "sync: one\nsync: two\nsync: three\n");
    // The same executable in async mode keeps its count.
    let out = ok(&["run", "--mode", "async", &both], b"one\ntwo\nthree\n");
    assert_eq!(out, "async #1: one\nasync #2: two\nasync #3: three\n");
}

#[test]
fn a_failed_message_is_reported_and_the_loop_goes_on() {
    let poll = built("wasi-poll.wasm");
    // Only `fail` traps; a line per message, so two failures, then the status.
    let out = wasmhost(
        &["run", "--mode", "async", "--export", "fail", &poll],
        b"x\ny\n",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("error[trap]").count(), 2, "{stderr}");
    assert_eq!(out.status.code(), Some(134));
    // Sync: the command's own exit status, per message.
    let echo = built("wasi-echo.wasm");
    let out = wasmhost(&["run", "--mode", "sync", &echo, "exit", "3"], b"a\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error[exit]"), "{stderr}");
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn without_mode_run_is_unchanged_and_export_needs_async() {
    let echo = built("wasi-echo.wasm");
    assert_eq!(ok(&["run", &echo], b"a\nb\n"), "a\nb\n");
    let out = wasmhost(&["run", "--mode", "sync", "--export", "x", &echo], b"");
    assert_eq!(out.status.code(), Some(64));
    let out = wasmhost(&["run", "--export", "x", &echo], b"");
    assert_eq!(
        out.status.code(),
        Some(2),
        "--export without --mode is a usage error"
    );
}
