//! wasmtime's habits: Go's echo (`guests/go/echo`, Go's wasip1 port,
//! which needs clocks and random before `main`) runs as `wasmtime run
//! echo.wasm` runs it, and wasi-testsuite's preview 1 programs (vendored in `tests/wasi-testsuite`,
//! built by `scripts/build-guests.sh`) run through `wasmhost run` as
//! upstream's wasmtime adapter (`adapters/wasmtime.py`) runs `wasmtime`:
//! `--env KEY=VALUE` per entry of the spec's `env`, `--dir ROOT::/` for its
//! `root`, the module, then its `args`; the exit code, and stdout and stderr
//! when the spec gives them, must match. No `--grant`: a wasmtime user's
//! flags only.
//!
//! Every program of the vendored sources (46 Rust, 14 C) runs (a program whose `.wasm` is
//! missing fails the test); a specification this runner does not understand
//! (upstream's operation-based form) fails it too, so nothing is skipped
//! silently. Deliberate differences from wasmtime would be listed in
//! [`DIFFERENCES`] with their reason, and checked to still differ.

// Tests unwrap: a failure is the test failing, with the value in the message.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use common::{built, root, wasmhost_in};

/// Programs whose result differs from wasmtime's on purpose: (name, reason).
/// Each must still fail here; one that passes is reported, so the list
/// stays true. Kept in step with the README's "wasmtime habits" section.
const DIFFERENCES: &[(&str, &str)] = &[];

/// A legacy wasi-testsuite specification (`doc/specification.md`): the
/// only form the preview 1 programs use.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    root: Option<String>,
    #[serde(default)]
    exit_code: i32,
    stdout: Option<String>,
    stderr: Option<String>,
}

/// The vendored suites: (directory of the sources and their specs, the
/// sources' extension). Each `NAME.EXT` there is built into
/// `target/guests/out/wasi-testsuite/NAME.wasm`.
const SUITES: &[(&str, &str)] = &[("rust/src/bin", "rs"), ("c/src", "c")];

/// Every program: (name, directory of its source and spec).
fn programs() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for (dir, ext) in SUITES {
        let dir = root().join("tests/wasi-testsuite").join(dir);
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|e| e == *ext) {
                let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                out.push((name, dir.clone()));
            }
        }
    }
    out.sort();
    out
}

/// Copies the directory `from` into `to` (created), files and directories.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// Runs one program as its spec says; `Err(why)` when it does not pass.
fn run_one(name: &str, sources: &Path) -> Result<(), String> {
    let wasm = root()
        .join("target/guests/out/wasi-testsuite")
        .join(format!("{name}.wasm"));
    if !wasm.exists() {
        return Err(format!(
            "{} missing: run scripts/build-guests.sh",
            wasm.display()
        ));
    }
    let spec_path = sources.join(format!("{name}.json"));
    let spec: Spec = if spec_path.exists() {
        serde_json::from_str(&std::fs::read_to_string(&spec_path).unwrap())
            .map_err(|e| format!("{}: not a legacy spec: {e}", spec_path.display()))?
    } else {
        Spec::default()
    };
    let scratch = tempfile::tempdir().unwrap();
    let state = scratch.path().join("state");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmhost"));
    cmd.arg("run");
    for (k, v) in &spec.env {
        cmd.args(["--env", &format!("{k}={v}")]);
    }
    if let Some(dir) = &spec.root {
        // A fresh copy per program: the programs create and delete files.
        let copy = scratch.path().join("root");
        copy_dir(&sources.join(dir), &copy);
        cmd.args(["--dir", &format!("{}::/", copy.display())]);
    }
    cmd.arg(&wasm).args(&spec.args);
    let out = cmd
        .env("WASMHOST_STATE", &state)
        .env_remove("WASMHOST_STORE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut why = Vec::new();
    if out.status.code() != Some(spec.exit_code) {
        why.push(format!(
            "exit status {:?}, expected {}",
            out.status.code(),
            spec.exit_code
        ));
    }
    if let Some(want) = &spec.stdout
        && *want != stdout
    {
        why.push(format!("stdout {stdout:?}, expected {want:?}"));
    }
    if let Some(want) = &spec.stderr
        && *want != stderr
    {
        why.push(format!("stderr {stderr:?}, expected {want:?}"));
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n    stderr: {}",
            why.join("; "),
            stderr.trim_end().replace('\n', "\n            ")
        ))
    }
}

#[test]
fn wasi_testsuite_preview1_programs_pass_with_wasmtime_flags() {
    let programs = programs();
    let names: Vec<String> = programs.iter().map(|(n, _)| n.clone()).collect();
    assert!(
        names.len() >= 60,
        "the vendored suites have 46 Rust and 14 C programs: {names:?}"
    );
    for (name, _) in DIFFERENCES {
        assert!(
            names.iter().any(|n| n == name),
            "{name} is not in the suite"
        );
    }

    // Each program is a separate `wasmhost run`; a few at a time.
    let queue = Mutex::new(programs);
    let results = Mutex::new(BTreeMap::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let Some((name, sources)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let result = run_one(&name, &sources);
                    results.lock().unwrap().insert(name, result);
                }
            });
        }
    });
    let results = results.into_inner().unwrap();
    assert_eq!(results.len(), names.len());

    let mut problems = Vec::new();
    for (name, result) in &results {
        let deliberate = DIFFERENCES.iter().find(|(n, _)| n == name);
        match (result, deliberate) {
            (Ok(()), None) | (Err(_), Some(_)) => {}
            (Err(why), None) => problems.push(format!("{name}: {why}")),
            (Ok(()), Some((_, reason))) => problems.push(format!(
                "{name} passes now: take it out of DIFFERENCES (and the README): {reason}"
            )),
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} wasi-testsuite programs:\n{}",
        problems.len(),
        results.len(),
        problems.join("\n")
    );
}

#[test]
fn go_echo_runs_as_wasmtime_runs_it_with_no_grant() {
    let echo = built("go-echo.wasm");
    // One state directory: the module (2.5 MB) is compiled once, then
    // loaded from the disk cache.
    let state = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: &[u8]| {
        let out = wasmhost_in(state.path(), args, stdin);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // `wasmtime run echo.wasm < in`, `wasmtime run echo.wasm a b`.
    let (code, out, err) = run(&["run", &echo], b"hello from stdin\n");
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "hello from stdin\n"),
        "{err}"
    );
    let (code, out, err) = run(&["run", &echo, "hello,", "wasm"], b"");
    assert_eq!((code, out.as_str()), (Some(0), "hello, wasm\n"), "{err}");
    // Flags after MODULE are the guest's, as with wasmtime.
    let (code, out, err) = run(&["run", &echo, "--fuel", "5"], b"");
    assert_eq!((code, out.as_str()), (Some(0), "--fuel 5\n"), "{err}");
    // Go's runtime reads the clock and random numbers before main: taking
    // either away stops it with capability_denied.
    for denied in ["clocks", "random"] {
        let (code, _, err) = run(&["run", "--deny", denied, &echo, "x"], b"");
        assert_eq!(code, Some(68), "{err}");
        assert!(err.contains("capability_denied"), "{err}");
    }
}
