//! `wasmhost call` and the convention part of `wasmhost inspect`, driven
//! the way a user drives them, with guests built from `guests/`.

// Tests unwrap: a failure is the test failing, with the value in the message.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{built, fails, ok, wasmhost, wat};

#[test]
fn extism_plugins_with_config_vars_and_stdin_input() {
    // The Rust test plugin imports a host function the CLI cannot provide:
    // link it as a trap, which only the function that calls it reaches.
    let p = built("extism-plugin.wasm");
    let out = ok(
        &[
            "call",
            "--trap-unknown-imports",
            &p,
            "count_vowels",
            "Hello, World!",
        ],
        b"",
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["count"], 3);
    let out = ok(
        &[
            "call",
            "--trap-unknown-imports",
            "--config",
            "vowels=lo",
            &p,
            "count_vowels",
            "-",
        ],
        b"Hello, World!",
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["count"].clone(), v["vowels"].clone()),
        (5.into(), "lo".into())
    );
    let out = ok(
        &[
            "call",
            "--trap-unknown-imports",
            "--var",
            "count=41",
            &p,
            "counter",
        ],
        b"",
    );
    assert_eq!(out, "42");
    let out = ok(
        &[
            "call",
            "--trap-unknown-imports",
            "--input",
            "é and ü",
            &p,
            "echo",
        ],
        b"",
    );
    assert_eq!(out, "é and ü");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("in.bin");
    std::fs::write(&f, [0u8, 1, 2, 255]).unwrap();
    let out = wasmhost(
        &[
            "call",
            "--trap-unknown-imports",
            "--input-file",
            f.to_str().unwrap(),
            &p,
            "echo",
        ],
        b"",
    );
    assert_eq!(out.stdout, [0u8, 1, 2, 255]);

    // Errors: the guest's own (75), an HTTP host not allowed (68), a missing import (67).
    let (code, err) = fails(&["call", "--trap-unknown-imports", &p, "fail", "nope"], b"");
    assert_eq!(code, 75, "{err}");
    assert!(
        err.contains("error[guest_error]") && err.contains("guest refused: nope"),
        "{err}"
    );
    let (code, err) = fails(
        &[
            "call",
            "--trap-unknown-imports",
            "--allow-host",
            "example.com",
            &p,
            "http_get",
            "http://127.0.0.1:9/",
        ],
        b"",
    );
    assert_eq!(code, 68, "{err}");
    // Host functions of its own (extism:host/user) the command line cannot
    // provide: linked to traps, so the functions that do not call them
    // work, and the one that does stops with a trap naming it.
    assert_eq!(ok(&["call", &p, "echo", "x"], b""), "x");
    let (code, err) = fails(&["call", &p, "reverse_via_host", "x"], b"");
    assert_eq!(code, 134, "{err}");
    assert!(err.contains("extism:host/user::reverse"), "{err}");
    let out = ok(
        &["call", &built("as-extism-plugin.wasm"), "greet", "Zoë"],
        b"",
    );
    assert_eq!(out, "Hello, Zoë!");
}

#[test]
fn assemblyscript_components_and_numbers() {
    let out = ok(
        &["call", &built("as-counter-minimal.wasm"), "increment", "5"],
        b"",
    );
    assert_eq!(out, "5\n");
    let c = built("wit-component.wasm");
    let out = ok(
        &[
            "call",
            "--wasi",
            "--trap-unknown-imports",
            &c,
            "add-points",
            r#"[{"x":1,"y":2},{"x":3,"y":4}]"#,
        ],
        b"",
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v, serde_json::json!({"x": 4, "y": 6}));
    let out = ok(
        &[
            "call",
            "--wasi",
            "--trap-unknown-imports",
            "--wave",
            &c,
            "divide",
            "7, 0",
        ],
        b"",
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v, serde_json::json!({"err": "division by zero"}));
    let (code, err) = fails(
        &[
            "call",
            "--wasi",
            "--trap-unknown-imports",
            &c,
            "greet-person",
            r#"{"name":"a","age":999,"tags":[]}"#,
        ],
        b"",
    );
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("argument p.age"), "{err}");
    let out = ok(&["call", &wat("numeric"), "add_i32", "[40, 2]"], b"");
    assert_eq!(out, "42\n");
    // Forcing a convention that does not fit says so.
    let (code, err) = fails(
        &[
            "call",
            "--abi",
            "extism",
            &wat("numeric"),
            "add_i32",
            "[1, 2]",
        ],
        b"",
    );
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("Extism plugin function takes nothing"),
        "{err}"
    );
}

#[test]
fn a_module_fitting_no_convention_explains_each() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("odd.wat");
    std::fs::write(&m, r#"(module (func (export "f") (param externref)))"#).unwrap();
    let (code, err) = fails(&["call", m.to_str().unwrap(), "f"], b"");
    assert_eq!(code, 64, "{err}");
    for c in [
        "component:",
        "extism:",
        "assemblyscript:",
        "raw:",
        "numeric:",
    ] {
        assert!(err.contains(c), "{c} missing from: {err}");
    }
    let (code, _) = fails(&["call", "--abi", "cobol", m.to_str().unwrap(), "f"], b"");
    assert_eq!(code, 2, "an unknown --abi is a usage error");
}

#[test]
fn inspect_shows_conventions_and_the_wit_world() {
    let out = ok(&["inspect", &built("wit-component.wasm")], b"");
    assert!(out.contains("conventions: component"), "{out}");
    assert!(
        out.contains("export add-points: func(a: point, b: point) -> point;"),
        "{out}"
    );
    assert!(out.contains("variant shape {"), "{out}");
    let out = ok(&["inspect", &built("as-counter-stub.wasm")], b"");
    assert!(
        out.contains("greet  func (i32) -> (i32)  [assemblyscript"),
        "{out}"
    );
    let out = ok(&["inspect", "--json", &built("extism-plugin.wasm")], b"");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let conv = v["conventions"].as_array().unwrap();
    assert!(conv.iter().any(|c| c == "extism"), "{v}");
    let echo = v["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "echo")
        .unwrap();
    assert!(
        echo["conventions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "extism")
    );
}

#[test]
fn extism_manifests_with_m() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = std::fs::read(built("as-extism-plugin.wasm")).unwrap();
    std::fs::write(dir.path().join("p.wasm"), &wasm).unwrap();
    let hash = wasmhost::Digest::of(&wasm).hex();
    let write = |name: &str, json: serde_json::Value| {
        let p = dir.path().join(name);
        std::fs::write(&p, json.to_string()).unwrap();
        p.display().to_string()
    };
    let good = write(
        "good.json",
        serde_json::json!({"wasm": [{"path": "p.wasm", "hash": hash}], "config": {"vowels": "o"}, "timeout_ms": 2000}),
    );
    let out = ok(&["call", "-m", &good, "count_vowels", "Hello, World"], b"");
    assert_eq!(out, r#"{"count":2}"#);
    // The command line adds to the manifest's config and may override it.
    let out = ok(
        &[
            "call",
            "-m",
            &good,
            "--config",
            "vowels=el",
            "count_vowels",
            "Hello, World",
        ],
        b"",
    );
    assert_eq!(out, r#"{"count":4}"#);
    let wrong = write(
        "wrong.json",
        serde_json::json!({"wasm": [{"path": "p.wasm", "hash": "00".repeat(32)}]}),
    );
    let (code, err) = fails(&["call", "-m", &wrong, "greet", "x"], b"");
    assert_eq!(code, 74, "{err}");
    assert!(err.contains("error[corrupt]"), "{err}");
    // Paths as Extism reads them: absolute, or `..` out of the manifest's
    // directory (the command line's manifests are the operator's).
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let up = dir.path().join("sub/up.json");
    std::fs::write(
        &up,
        serde_json::json!({"wasm": [{"path": "../p.wasm"}]}).to_string(),
    )
    .unwrap();
    let absolute = write(
        "absolute.json",
        serde_json::json!({"wasm": [{"path": dir.path().join("p.wasm")}]}),
    );
    for m in [up.to_str().unwrap(), &absolute] {
        assert_eq!(
            ok(&["call", "-m", m, "greet", "x"], b""),
            "Hello, x!",
            "{m}"
        );
    }
    let missing = write(
        "missing.json",
        serde_json::json!({"wasm": [{"path": "nowhere.wasm"}]}),
    );
    let (code, err) = fails(&["call", "-m", &missing, "greet", "x"], b"");
    assert_eq!(code, 66, "{err}");
    assert!(
        err.contains("nowhere.wasm") && err.contains("wasm[0]"),
        "{err}"
    );
}

#[test]
fn kv_state_persists_across_calls_of_one_module() {
    let state = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
            .args(args)
            .env("WASMHOST_STATE", state.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let m = wat("kv");
    assert_eq!(run(&["call", "--kv", &m, "counter"]), "1\n");
    assert_eq!(run(&["call", "--kv", &m, "counter"]), "2\n");
    // Without the grant the import is missing.
    let out = wasmhost(&["call", &m, "counter"], b"");
    assert_eq!(out.status.code(), Some(67));
}
