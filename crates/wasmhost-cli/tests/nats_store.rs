//! `--store nats://HOST:PORT/BUCKET`: the module store on a NATS JetStream
//! object store bucket, over a real nats-server (Debian's, as
//! scripts/test-services.sh installs it).

mod common;
#[path = "../../wasmhost-cluster/tests/common/nats.rs"]
mod nats;

use std::time::{Duration, Instant};

use common::{fails_in, ok_in, wat};
use nats::Nats;

/// `SUBCOMMAND --store STORE REST…`.
fn with<'a>(store: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![args[0], "--store", store];
    all.extend_from_slice(&args[1..]);
    all
}

#[test]
fn push_ls_run_tag_rm_through_a_nats_store() {
    let nats = Nats::start();
    let store = format!("{}/cli-modules", nats.url());
    // Two state directories, as two nodes would have: the modules are in NATS.
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let on = |state: &tempfile::TempDir, args: &[&str]| ok_in(state.path(), &with(&store, args));

    let pushed = on(&a, &["push", &wat("numeric"), "math:v1"]);
    assert!(pushed.starts_with("pushed math:v1 sha256:"), "{pushed}");
    let ls = on(&b, &["ls"]);
    assert!(ls.lines().any(|l| l.starts_with("math:v1")), "{ls}");
    assert_eq!(
        on(&b, &["run", "--invoke", "add_i32", "math:v1", "2", "3"]),
        "5"
    );

    on(&b, &["tag", "math:v1", "math:stable"]);
    on(&a, &["rm", "math:v1"]);
    let ls = on(&a, &["ls"]);
    assert!(ls.lines().any(|l| l.starts_with("math:stable")), "{ls}");
    assert!(!ls.lines().any(|l| l.starts_with("math:v1")), "{ls}");
    assert_eq!(
        on(&a, &["run", "--invoke", "add_i32", "math:stable", "4", "5"]),
        "9"
    );
    let (code, err) = fails_in(
        a.path(),
        &with(&store, &["run", "--invoke", "add_i32", "math:v1", "1", "1"]),
    );
    assert!(err.contains("error[not_found]"), "{code}: {err}");
    // Nothing went to the state directories' own stores.
    assert!(common::walk(&a.path().join("store")).is_empty());
    assert!(common::walk(&b.path().join("store")).is_empty());
}

#[test]
fn an_unreachable_nats_store_is_unavailable() {
    let state = tempfile::tempdir().expect("tempdir");
    // Nothing listens there; the password must not be echoed.
    let url = format!("nats://me:s3cret@127.0.0.1:{}/modules", nats::free_port());
    for args in [
        vec!["ls"],
        vec!["push", &wat("numeric"), "math:v1"],
        vec!["run", "--invoke", "add_i32", "math:v1", "2", "3"],
    ] {
        let start = Instant::now();
        let (code, err) = fails_in(state.path(), &with(&url, &args));
        assert_eq!(code, 77, "{args:?}: {err}");
        assert!(err.contains("error[unavailable]"), "{err}");
        assert!(err.contains("cannot reach the NATS server"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    }
}
