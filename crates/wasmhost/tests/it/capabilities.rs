//! Nothing by default; each capability granted on its own.

use wasmhost::{Capabilities, Error, ErrorCode, LogLevel, Wasi};

use crate::load_wat;

#[test]
fn log_is_denied_unless_granted() {
    let m = load_wat("log");
    let err = m.invoke("run", &[]).unwrap_err();
    assert_eq!(err.code(), ErrorCode::LinkError, "{err}");
    assert!(err.to_string().contains("wasmhost::log"), "{err}");
}

#[test]
fn granted_log_records_lines() {
    let m = load_wat("log").with_capabilities(Capabilities::none().with_log(true));
    let out = m.invoke("run", &[]).unwrap();
    assert_eq!(out.logs.len(), 1);
    assert_eq!(out.logs[0].level, LogLevel::Info);
    assert_eq!(out.logs[0].message, "hello from the guest");
}

#[test]
fn log_with_a_pointer_outside_memory_traps() {
    let m = load_wat("log").with_capabilities(Capabilities::none().with_log(true));
    let err = m.invoke("bad", &[]).unwrap_err();
    match &err {
        Error::Trap { message, .. } => assert!(message.contains("outside"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    // And the module still works.
    assert_eq!(m.invoke("run", &[]).unwrap().logs.len(), 1);
}

#[test]
fn capabilities_can_be_replaced_per_call() {
    let m = load_wat("log");
    let opts = wasmhost::CallOptions::default().capabilities(Capabilities::none().with_log(true));
    assert!(m.invoke_with("run", &[], &opts).is_ok());
    assert_eq!(
        m.invoke("run", &[]).unwrap_err().code(),
        ErrorCode::LinkError
    );
}

#[test]
fn wasi_grant_alone_links_a_preview1_import() {
    let m = load_wat("import").with_capabilities(Capabilities::none().with_wasi(Wasi::new()));
    let err = m.invoke("run", &[]).unwrap_err();
    // fd_write is now provided; env::* are still missing.
    assert!(!err.to_string().contains("fd_write"), "{err}");
}

#[test]
fn a_chatty_guest_keeps_at_most_the_cap_and_is_told_so() {
    let m = load_wat("log").with_capabilities(Capabilities::none().with_log(true));
    let out = m.invoke("many", &[wasmhost::Value::I32(1005)]).unwrap();
    let cap = wasmhost::capabilities::log::MAX_RECORDS;
    assert_eq!(out.logs.len(), cap + 1);
    let last = out.logs.last().unwrap();
    assert_eq!(last.level, LogLevel::Warn);
    assert!(
        last.message.starts_with("5 more log lines were dropped"),
        "{}",
        last.message
    );
    assert_eq!(
        m.invoke("many", &[wasmhost::Value::I32(3)])
            .unwrap()
            .logs
            .len(),
        3
    );
}
