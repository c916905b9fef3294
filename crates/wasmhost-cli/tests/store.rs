//! The store commands, manifests and `test`/`inspect`/`cache`, driven
//! through the `wasmhost` binary against a filesystem store.

// Tests unwrap: a failure is the test failing, with the value in the message.
#![allow(clippy::unwrap_used)]

mod common;

use common::{built, walk, wat};

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `wasmhost ARGS` with its state (and so its default store) in `state`.
fn wh(state: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmhost"));
    cmd.args(args)
        .env("WASMHOST_STATE", state)
        .env_remove("WASMHOST_STORE")
        .stdin(Stdio::null());
    cmd.output().expect("spawn wasmhost")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(out: &Output, status: i32, code: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(status), "{stderr}");
    assert!(stderr.contains(&format!("error[{code}]")), "{stderr}");
}

#[test]
fn push_ls_run_pull_tag_rm() {
    let state = tempfile::tempdir().unwrap();
    let s = state.path();
    let pushed = ok(&wh(s, &["push", &wat("numeric"), "math:v1"]));
    assert!(pushed.starts_with("pushed math:v1 sha256:"), "{pushed}");
    ok(&wh(s, &["push", &built("wasi-echo.wasm"), "tools/echo"]));

    let ls = ok(&wh(s, &["ls"]));
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(lines.len(), 3, "{ls}");
    assert!(
        lines[1].starts_with("math:v1") && lines[2].starts_with("tools/echo:latest"),
        "{ls}"
    );

    // Run by reference, both conventions.
    assert_eq!(
        ok(&wh(s, &["run", "--invoke", "add_i32", "math:v1", "2", "3"])),
        "5\n"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .args(["run", "tools/echo", "args", "x"])
        .env("WASMHOST_STATE", s)
        .output()
        .unwrap();
    assert_eq!(ok(&out), "args\nx\n");

    // Pull writes the binary (WAT was stored compiled to wasm).
    let dest = s.join("math.wasm");
    ok(&wh(s, &["pull", "math:v1", "-o", dest.to_str().unwrap()]));
    assert!(std::fs::read(&dest).unwrap().starts_with(b"\0asm"));
    fails(
        &wh(s, &["pull", "math:v1", "-o", dest.to_str().unwrap()]),
        64,
        "bad_input",
    );

    // Tag, then remove the old tag: the module is still there under the new one.
    ok(&wh(s, &["tag", "math:v1", "math:stable"]));
    ok(&wh(s, &["rm", "math:v1"]));
    assert_eq!(
        ok(&wh(s, &["run", "--invoke", "answer", "math:stable"])),
        "42\n"
    );
    fails(
        &wh(s, &["run", "--invoke", "answer", "math:v1"]),
        66,
        "not_found",
    );

    // A digest cannot be removed while tagged.
    let digest = pushed.split_whitespace().nth(2).unwrap().to_string();
    fails(&wh(s, &["rm", &digest]), 64, "bad_input");
    ok(&wh(s, &["rm", "math:stable"]));
    ok(&wh(s, &["rm", &digest]));
}

#[test]
fn bad_references_and_modules() {
    let state = tempfile::tempdir().unwrap();
    let s = state.path();
    fails(
        &wh(s, &["push", &wat("numeric"), "Bad Name"]),
        64,
        "bad_input",
    );
    fails(&wh(s, &["run", "nothing:here"]), 66, "not_found");
    let junk = s.join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all").unwrap();
    fails(
        &wh(s, &["push", junk.to_str().unwrap(), "junk"]),
        65,
        "invalid_module",
    );
    assert!(ok(&wh(s, &["ls"])).is_empty(), "nothing was stored");
}

/// A cloud store that accepts connections and never answers: a push fails
/// with error[unavailable] (77) after the `timeout` given with
/// --store-option (or $WASMHOST_STORE_OPTIONS), naming the store and the
/// push, not after object_store's minutes. Options are refused for the
/// default (directory) store, and malformed ones are bad_input.
#[test]
fn store_options_bound_the_wait_for_an_unreachable_cloud_store() {
    let state = tempfile::tempdir().unwrap();
    let s = state.path();
    // Never answers, never closes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().collect();
        drop(held);
    });
    let settings = [
        format!("aws_endpoint=http://127.0.0.1:{port}"),
        "aws_allow_http=true".to_string(),
        "aws_access_key_id=testing".to_string(),
        "aws_secret_access_key=testing".to_string(),
        "aws_region=us-east-1".to_string(),
        "timeout=1s".to_string(),
        "max_retries=1".to_string(),
    ];
    let module = wat("numeric");
    let push = |flags: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmhost"));
        cmd.args(["push", &module, "app:v1", "--store", "s3://bucket/p"])
            .env("WASMHOST_STATE", s)
            .env_remove("WASMHOST_STORE")
            .env_remove("WASMHOST_STORE_OPTIONS")
            .stdin(Stdio::null());
        if flags {
            for setting in &settings {
                cmd.args(["--store-option", setting]);
            }
        } else {
            cmd.env("WASMHOST_STORE_OPTIONS", settings.join(","));
        }
        let started = std::time::Instant::now();
        let out = cmd.output().unwrap();
        (out, started.elapsed())
    };
    for flags in [true, false] {
        let (out, took) = push(flags);
        fails(&out, 77, "unavailable");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for part in ["push of app:v1", "s3://bucket/p", "did not answer in time"] {
            assert!(stderr.contains(part), "{part:?} missing: {stderr}");
        }
        // A liveness bound: with object_store's defaults this takes minutes.
        assert!(
            took < std::time::Duration::from_secs(25),
            "took {took:?}: {stderr}"
        );
    }
    fails(
        &wh(s, &["ls", "--store-option", "timeout=1s"]),
        64,
        "bad_input",
    );
    fails(
        &wh(
            s,
            &[
                "ls",
                "--store",
                "s3://bucket/p",
                "--store-option",
                "timeout",
            ],
        ),
        64,
        "bad_input",
    );
}

#[test]
fn manifests_are_accepted_where_modules_are() {
    let state = tempfile::tempdir().unwrap();
    let s = state.path();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(built("wasi-echo.wasm"), dir.path().join("echo.wasm")).unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("data/hello.txt"),
        "hello from a preopened dir",
    )
    .unwrap();
    let manifest = dir.path().join("wasmhost.toml");
    std::fs::write(
        &manifest,
        r#"
[module]
path = "echo.wasm"

[limits]
max_memory = "32MiB"

[capabilities.wasi]
args = ["echo", "read", "/data/hello.txt"]
dirs = [{ host = "data", guest = "/data" }]
"#,
    )
    .unwrap();
    let m = manifest.to_str().unwrap();
    assert_eq!(ok(&wh(s, &["run", m])), "hello from a preopened dir");
    // The manifest's memory limit holds unless a flag overrides it.
    let out = wh(s, &["run", m, "alloc", "64"]);
    fails(&out, 71, "memory_limit");
    assert_eq!(
        ok(&wh(s, &["run", "--max-memory", "128MiB", m, "alloc", "64"])),
        "allocated 64 MiB\n"
    );
    // Push by manifest stores the module it names.
    ok(&wh(s, &["push", m, "echo:from-manifest"]));
    assert!(ok(&wh(s, &["ls"])).contains("echo:from-manifest"));

    // A packet manifest.
    let wasm = std::fs::read(built("wasi-echo.wasm")).unwrap();
    let packet = dir.path().join("packet.json");
    let b64 = base64_encode(&wasm);
    std::fs::write(
        &packet,
        format!(r#"{{"sourceContent": [{{"format": "wasm", "worldVersion": "v1", "contentB64": "{b64}"}}]}}"#),
    )
    .unwrap();
    assert_eq!(
        ok(&wh(s, &["run", packet.to_str().unwrap(), "args", "p"])),
        "args\np\n"
    );
    std::fs::write(
        &packet,
        format!(r#"{{"sourceContent": [{{"format": "wasm", "worldVersion": "v9", "contentB64": "{b64}"}}]}}"#),
    )
    .unwrap();
    let out = wh(s, &["run", packet.to_str().unwrap()]);
    fails(&out, 64, "bad_input");
    assert!(String::from_utf8_lossy(&out.stderr).contains("worldVersion"));
}

/// One manifest, every command: `run`, `call`, `test` and `actor send`
/// honour its limits, grants (config, key-value state) and convention the
/// same way.
#[test]
fn every_command_honours_a_manifest_the_same_way() {
    let state = tempfile::tempdir().unwrap();
    let s = state.path();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(built("as-extism-plugin.wasm"), d.join("plugin.wasm")).unwrap();
    std::fs::copy(wat("grow"), d.join("grow.wat")).unwrap();
    std::fs::copy(wat("kv"), d.join("kv.wat")).unwrap();
    let write = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let plugin = write(
        "plugin.toml",
        "[module]\npath = \"plugin.wasm\"\n[call]\nconvention = \"extism\"\n\
         function = \"count_vowels\"\n[capabilities]\nconfig = { vowels = \"o\" }\n",
    );
    let grow = write(
        "grow.toml",
        "[module]\npath = \"grow.wat\"\n[call]\nconvention = \"numeric\"\n\
         function = \"grow_once\"\n[limits]\nmax_memory = \"1MiB\"\n",
    );
    let kv = write(
        "kv.toml",
        "[module]\npath = \"kv.wat\"\n[call]\nconvention = \"numeric\"\nfunction = \"counter\"\n\
         [capabilities]\nkey_value = true\n",
    );

    // Config: `call` and `test` (which used to drop it) see the same.
    assert_eq!(
        ok(&wh(s, &["call", &plugin, "count_vowels", "Hello, World!"])),
        "{\"count\":2}"
    );
    let out = ok(&wh(
        s,
        &["test", &plugin, "count_vowels", "--input", "Hello, World!"],
    ));
    assert!(out.starts_with("result: {\"count\":2}\n"), "{out}");

    // Limits: the manifest's memory limit, for `run`, `call`, `test`.
    assert_eq!(ok(&wh(s, &["run", &grow, "20"])), "-1\n");
    assert_eq!(ok(&wh(s, &["call", &grow, "grow_once", "20"])), "-1\n");
    let out = ok(&wh(s, &["test", &grow, "grow_once", "--input", "[20]"]));
    assert!(out.starts_with("result: -1\n"), "{out}");
    assert_eq!(
        ok(&wh(s, &["run", "--max-memory", "4MiB", &grow, "20"])),
        "1\n",
        "a flag overrides the manifest"
    );

    // key_value = true grants the module its namespace of STATE/kv.redb.
    assert_eq!(ok(&wh(s, &["call", &kv, "counter"])), "1\n");
    assert_eq!(ok(&wh(s, &["run", &kv])), "2\n");

    // Actors made from a manifest get its limits, grants, convention and
    // function, on the first send and on later ones.
    let send = |id: &str, module: Option<&str>, input: &str| {
        let mut args = vec!["actor", "send", id, "--input", input];
        if let Some(m) = module {
            args.extend(["--module", m]);
        }
        wh(s, &args)
    };
    assert_eq!(
        ok(&send("v", Some(&plugin), "Hello, World!")),
        "{\"count\":2}"
    );
    assert_eq!(ok(&send("v", None, "Hello, World!")), "{\"count\":2}");
    assert_eq!(ok(&send("g", Some(&grow), "[20]")).trim(), "-1");
    assert_eq!(ok(&send("g", None, "[20]")).trim(), "-1");
    // The manifest is read again: a manifest that now fails says so.
    std::fs::write(&grow, "[module]\npath = \"gone.wat\"\n").unwrap();
    let out = send("g", None, "[20]");
    fails(&out, 66, "not_found");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("created from the manifest"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn test_inspect_and_cache() {
    let state = tempfile::tempdir().unwrap();
    let s = state.path();
    let out = ok(&wh(
        s,
        &["test", &wat("numeric"), "add_i32", "--input", "[40, 2]"],
    ));
    assert!(out.starts_with("result: 42\n"), "{out}");
    assert!(
        out.contains("fuel: ") && !out.contains("unmetered"),
        "fuel is reported: {out}"
    );
    let out = ok(&wh(
        s,
        &["test", &built("wasi-echo.wasm"), "_start", "--input", "hi"],
    ));
    assert!(out.starts_with("hi"), "{out}");
    fails(
        &wh(
            s,
            &["test", &wat("numeric"), "add_i32", "--input", "[\"x\"]"],
        ),
        64,
        "bad_input",
    );

    ok(&wh(s, &["push", &wat("numeric"), "math"]));
    let out = ok(&wh(s, &["inspect", "math"]));
    assert!(
        out.contains("kind:    core") && out.contains("tags:    math:latest"),
        "{out}"
    );
    assert!(out.contains("add_i32  func (i32, i32) -> (i32)"), "{out}");
    let out = ok(&wh(s, &["inspect", &built("wasi-echo.component.wasm")]));
    assert!(
        out.contains("kind:    component") && out.contains("wasi:cli/run"),
        "{out}"
    );

    let stats = ok(&wh(s, &["cache", "stats"]));
    assert!(!stats.contains("modules: 0"), "{stats}");
    let ls = ok(&wh(s, &["cache", "ls"]));
    assert!(ls.lines().count() >= 3, "{ls}");
    let cleared = ok(&wh(s, &["cache", "clear"]));
    assert!(cleared.starts_with("removed "), "{cleared}");
    assert!(ok(&wh(s, &["cache", "stats"])).contains("modules: 0"));
    // Nothing of the cleared artifacts is left: no integrity record, no
    // path index naming them.
    let leftovers: Vec<_> = walk(&s.join("cache"))
        .into_iter()
        .filter(|p| {
            p.extension().is_some_and(|e| e == "meta" || e == "cwasm")
                || p.file_name().is_some_and(|n| n == "paths.json")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn cache_ls_counts_loads_calls_and_errors_across_commands() {
    let state = tempfile::tempdir().unwrap();
    let s = state.path();
    let div = wat("divzero");
    assert_eq!(
        ok(&wh(s, &["run", "--invoke", "div", &div, "6", "3"])),
        "2\n"
    );
    assert_eq!(
        ok(&wh(s, &["run", "--invoke", "div", &div, "9", "3"])),
        "3\n"
    );
    fails(
        &wh(s, &["run", "--invoke", "div", &div, "1", "0"]),
        134,
        "trap",
    );
    // A missing export fails before any call is made: not counted as a call.
    fails(&wh(s, &["run", "--invoke", "nope", &div]), 66, "not_found");
    let ls: serde_json::Value =
        serde_json::from_str(&ok(&wh(s, &["cache", "ls", "--json"]))).unwrap();
    let rows = ls.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{ls}");
    let row = &rows[0];
    assert_eq!(row["loads"], 4, "one load per command: {row}");
    assert_eq!(row["calls"], 3, "{row}");
    assert_eq!(row["errors"], 1, "{row}");
    assert!(row["compile_time_us"].as_u64().unwrap() > 0, "{row}");
    assert!(row["wasm_bytes"].as_u64().unwrap() > 0, "{row}");
    let table = ok(&wh(s, &["cache", "ls"]));
    assert!(table.lines().next().unwrap().contains("CALLS"), "{table}");
}
