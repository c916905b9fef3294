//! The `wasmhost` binary, driven the way a user drives it.

// Tests unwrap: a failure is the test failing, with the value in the message.
#![allow(clippy::unwrap_used)]

mod common;

use common::{built, walk, wat};

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `wasmhost ARGS` with `stdin`, a private state directory and no inherited env leaks.
fn wasmhost(args: &[&str], stdin: &[u8]) -> Output {
    let state = tempfile::tempdir().unwrap();
    wasmhost_in(state.path(), args, stdin)
}

fn wasmhost_in(state: &std::path::Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .args(args)
        .env("WASMHOST_STATE", state)
        .env("WASMHOST_TEST_VAR", "from the host")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wasmhost");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn version_and_help() {
    let out = wasmhost(&["--version"], b"");
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("wasmhost {}", env!("CARGO_PKG_VERSION"))
    );
    let help = text(&wasmhost(&["run", "--help"], b"").stdout);
    for needle in [
        "--invoke",
        "--dir",
        "--env",
        "--fuel",
        "--max-memory",
        "256MiB",
        "--timeout",
        "30s",
        "link_error",
    ] {
        assert!(help.contains(needle), "run --help lacks {needle}:\n{help}");
    }
    let help = text(&wasmhost(&["--help"], b"").stdout);
    assert!(
        help.contains("134") && help.contains("WASMHOST_STATE"),
        "{help}"
    );
}

#[test]
fn runs_wasi_commands_core_and_component() {
    for guest in ["wasi-echo.wasm", "wasi-echo.component.wasm"] {
        let m = built(guest);
        let out = wasmhost(&["run", &m, "echo"], b"hello through stdin");
        assert!(out.status.success(), "{guest}: {}", text(&out.stderr));
        assert_eq!(out.stdout, b"hello through stdin");
        let out = wasmhost(&["run", &m, "args", "--not-a-flag", "x"], b"");
        assert_eq!(text(&out.stdout), "args\n--not-a-flag\nx\n", "{guest}");
        let out = wasmhost(
            &[
                "run",
                "--env",
                "A=1",
                "--env",
                "WASMHOST_TEST_VAR",
                &m,
                "env",
            ],
            b"",
        );
        assert_eq!(
            text(&out.stdout),
            "A=1\nWASMHOST_TEST_VAR=from the host\n",
            "{guest}"
        );
    }
}

#[test]
fn preopened_directories() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("{}::/data", dir.path().display());
    let m = built("wasi-echo.wasm");
    let out = wasmhost(
        &["run", "--dir", &spec, &m, "write", "/data/f.txt", "hi"],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("f.txt")).unwrap(),
        "hi"
    );
    let out = wasmhost(
        &["run", "--dir-ro", &spec, &m, "write", "/data/g.txt", "hi"],
        b"",
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(!dir.path().join("g.txt").exists());
}

#[test]
fn exit_status_passes_through_silently() {
    let out = wasmhost(&["run", &built("wasi-echo.wasm"), "exit", "7"], b"");
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(text(&out.stderr), "exiting with 7\n");
}

#[test]
fn invoke_prints_results_one_per_line() {
    let out = wasmhost(
        &["run", "--invoke", "add_i32", &wat("numeric"), "2", "40"],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "42\n");
    let out = wasmhost(&["run", "--invoke", "pair", &wat("numeric"), "-5"], b"");
    assert_eq!(text(&out.stdout), "-5\n-4\n");
    let out = wasmhost(
        &[
            "run",
            "--invoke",
            "mul_f64",
            "--stats",
            &wat("numeric"),
            "1.5",
            "3",
        ],
        b"",
    );
    assert_eq!(text(&out.stdout), "4.5\n");
    assert!(
        text(&out.stderr).contains("peak memory: 65536 bytes"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn module_from_stdin() {
    let src = std::fs::read(wat("numeric")).unwrap();
    let out = wasmhost(&["run", "--invoke", "answer", "-"], &src);
    assert_eq!(text(&out.stdout), "42\n", "{}", text(&out.stderr));
}

/// (args, expected exit status, expected code in `error[code]`)
#[test]
fn errors_have_codes_and_exit_statuses() {
    let garbage = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(garbage.path(), [0x13u8, 0x37, 0xca, 0xfe, 0, 1, 2, 3]).unwrap();
    let garbage = garbage.path().display().to_string();
    let (numeric, lp, imp, burn, rec) = (
        wat("numeric"),
        wat("loop"),
        wat("import"),
        wat("burn"),
        wat("recurse"),
    );
    let echo = built("wasi-echo.wasm");
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["run", "--invoke", "add_i32", &numeric, "1", "x"],
            64,
            "bad_input",
        ),
        (vec!["run", &garbage], 65, "invalid_module"),
        (vec!["run", "/no/such/module.wasm"], 66, "not_found"),
        (vec!["run", "--invoke", "nope", &numeric], 66, "not_found"),
        (vec!["run", "--invoke", "run", &imp], 67, "link_error"),
        (
            vec!["run", "--deny", "clocks", &echo, "time"],
            68,
            "capability_denied",
        ),
        (
            vec!["run", "--max-memory", "16MiB", &echo, "alloc", "64"],
            71,
            "memory_limit",
        ),
        (
            vec!["run", "--fuel", "1000", "--invoke", "burn", &burn, "100000"],
            72,
            "out_of_fuel",
        ),
        (
            vec!["run", "--invoke", "run", &rec, "0"],
            73,
            "stack_overflow",
        ),
        (
            vec!["run", "--timeout", "100ms", "--invoke", "run", &lp],
            124,
            "timeout",
        ),
        (vec!["run", &echo, "panic"], 134, "trap"),
    ];
    for (args, status, code) in cases {
        let out = wasmhost(&args, b"");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(status), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("error[{code}]: ")),
            "{args:?}: {stderr}"
        );
    }
    // A usage error is clap's, with status 2.
    assert_eq!(
        wasmhost(&["run", "--max-memory", "lots", &numeric], b"")
            .status
            .code(),
        Some(2)
    );
}

/// WASI comes with clocks and random, as in wasmtime, Spin and Extism (a
/// TinyGo program reads both before main); `--deny` takes them away, and
/// `--grant clocks,random` is still accepted.
#[test]
fn wasi_comes_with_clocks_and_random() {
    let echo = built("wasi-echo.wasm");
    for guest in [echo.as_str(), &built("wasi-echo.component.wasm")] {
        let out = wasmhost(&["run", guest, "time"], b"");
        assert!(out.status.success(), "{guest}: {}", text(&out.stderr));
        let secs: u64 = text(&out.stdout).trim().parse().unwrap();
        assert!(secs > 1_600_000_000, "{secs}");
        let out = wasmhost(&["run", guest, "random"], b"");
        assert!(out.status.success(), "{guest}: {}", text(&out.stderr));
        assert!(!out.stdout.is_empty());
    }
    for (deny, cmd, cap) in [
        ("clocks", "time", "clocks"),
        ("random", "random", "random"),
        ("clocks,random", "random", "random"),
    ] {
        let out = wasmhost(&["run", "--deny", deny, &echo, cmd], b"");
        assert_eq!(out.status.code(), Some(68), "{deny}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(&format!("`{cap}` was not granted")),
            "{}",
            text(&out.stderr)
        );
    }
    // A program that reads both before doing anything (as TinyGo's runtime does).
    let both = wat("clocks_random");
    let out = wasmhost(&["run", &both], b"");
    assert_eq!(
        text(&out.stdout),
        "clocks and random\n",
        "{}",
        text(&out.stderr)
    );
    let out = wasmhost(&["run", "--deny", "random", &both], b"");
    assert_eq!(out.status.code(), Some(68), "{}", text(&out.stderr));
    // Denying one leaves the other.
    let out = wasmhost(&["run", "--deny", "random", &echo, "time"], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = wasmhost(&["run", "--grant", "clocks,random", &echo, "time"], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = wasmhost(&["run", "--deny", "time", &echo, "time"], b"");
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown capability is a usage error"
    );
}

/// `run` keeps wasmtime's rule: everything after MODULE is the guest's,
/// flags included.
#[test]
fn everything_after_the_module_is_the_guests() {
    let echo = built("wasi-echo.wasm");
    let out = wasmhost(
        &["run", &echo, "args", "--fuel", "5", "--timeout", "x", "-i"],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "args\n--fuel\n5\n--timeout\nx\n-i\n");
    let out = wasmhost(&["run", "--fuel", "5", &echo, "args"], b"");
    assert_eq!(out.status.code(), Some(72), "{}", text(&out.stderr));
    let out = wasmhost(
        &["run", "--invoke", "add_i32", &wat("numeric"), "-1", "-2"],
        b"",
    );
    assert_eq!(text(&out.stdout), "-3\n", "{}", text(&out.stderr));
}

#[test]
fn compiled_modules_are_cached_in_the_state_directory() {
    let state = tempfile::tempdir().unwrap();
    let m = built("wasi-echo.wasm");
    assert!(
        wasmhost_in(state.path(), &["run", &m, "echo"], b"x")
            .status
            .success()
    );
    let files = walk(&state.path().join("cache"));
    let artifacts: Vec<_> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(artifacts.len(), 1, "{files:?}");
    // Beside it, the per-module stats (and the lock that guards them).
    assert!(files.iter().any(|p| p.ends_with("stats.json")), "{files:?}");
    // --no-disk-cache leaves nothing behind.
    let empty = tempfile::tempdir().unwrap();
    assert!(
        wasmhost_in(empty.path(), &["run", "--no-disk-cache", &m, "echo"], b"x")
            .status
            .success()
    );
    assert!(walk(empty.path()).is_empty());
}

/// `wasmhost inspect … | head -0`: what reads the output is gone before the
/// first line. The command ends as `cat` would (by SIGPIPE, no message), not
/// with a panic; `run` keeps SIGPIPE ignored, as `wasmtime run` does: the
/// host is not killed by its guest's writes.
#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let state = tempfile::tempdir().unwrap();
    let spawn = |args: &[&str]| {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        Command::new(env!("CARGO_BIN_EXE_wasmhost"))
            .args(args)
            .env("WASMHOST_STATE", state.path())
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    };
    let module = wat("numeric");
    for args in [
        &["inspect", "--json", module.as_str()][..],
        &["inspect", module.as_str()][..],
        &["call", module.as_str(), "add_i32", "[40, 2]"][..],
    ] {
        let out = spawn(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.signal(), Some(SIGPIPE), "{args:?}: {out:?}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    // A guest printing to the closed pipe: the host is not killed.
    let out = spawn(&["run", &built("wasi-echo.wasm"), "args", "x"]);
    assert_eq!(out.status.signal(), None, "{out:?}");
    assert!(!text(&out.stderr).contains("panicked"), "{out:?}");
}

/// SIGPIPE's number on Linux.
#[cfg(unix)]
const SIGPIPE: i32 = 13;
