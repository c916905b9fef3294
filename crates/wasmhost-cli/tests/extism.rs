//! Extism's command-line habits: the commands Extism's CLI documents
//! (`extism call plugin.wasm count_vowels --input "…"`) give Extism's
//! outputs, flags go after the positional arguments, `test` takes its input
//! as `call` does, and Extism manifests load as Extism loads them (paths
//! absolute or from the current directory, modules fetched by URL from
//! allowed hosts with their hash checked, several modules linked by name).
//! The guest is `guests/rust/extism-plugin` (extism-pdk), whose
//! `count_vowels` answers as Extism's own count_vowels plugin does.

// Tests unwrap: a failure is the test failing, with the value in the message.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{built, fails, http_server, ok, wasmhost, wasmhost_in, wat};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Standard base64 with padding (an Extism manifest's `data`).
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
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
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn extism_cli_commands_give_extism_outputs() {
    let p = built("extism-plugin.wasm");
    // `extism call plugin.wasm count_vowels --input "Hello, World!"`
    let out = ok(
        &["call", &p, "count_vowels", "--input", "Hello, World!"],
        b"",
    );
    assert_eq!(out, r#"{"count":3,"total":3,"vowels":"aeiouAEIOU"}"#);
    // -i, --config KEY=VALUE, --set-config JSON (merged under --config), --wasi.
    let out = ok(
        &[
            "call",
            &p,
            "count_vowels",
            "-i",
            "Hello, World!",
            "--config",
            "vowels=lo",
        ],
        b"",
    );
    assert_eq!(out, r#"{"count":5,"total":5,"vowels":"lo"}"#);
    let out = ok(
        &[
            "call",
            &p,
            "count_vowels",
            "--input",
            "Hello, World!",
            "--set-config",
            r#"{"vowels": "o"}"#,
            "--wasi",
        ],
        b"",
    );
    assert_eq!(out, r#"{"count":2,"total":2,"vowels":"o"}"#);
    let out = ok(
        &[
            "call",
            &p,
            "count_vowels",
            "--set-config",
            r#"{"vowels": "o"}"#,
            "--config",
            "vowels=W",
            "--stdin",
        ],
        b"Hello, World!",
    );
    assert_eq!(out, r#"{"count":1,"total":1,"vowels":"W"}"#);
    let (code, err) = fails(&["call", &p, "count_vowels", "--set-config", "[1]"], b"");
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("--set-config"), "{err}");

    // --loop N: N calls in one instance; the var `total` carries over.
    let out = ok(
        &[
            "call",
            &p,
            "count_vowels",
            "--input",
            "Hello, World!",
            "--loop",
            "3",
        ],
        b"",
    );
    assert_eq!(
        out,
        "{\"count\":3,\"total\":3,\"vowels\":\"aeiouAEIOU\"}\n\
         {\"count\":3,\"total\":6,\"vowels\":\"aeiouAEIOU\"}\n\
         {\"count\":3,\"total\":9,\"vowels\":\"aeiouAEIOU\"}\n"
    );
    let (code, err) = fails(&["call", &p, "count_vowels", "--loop", "0"], b"");
    assert_eq!(code, 64, "{err}");

    // --timeout: a bare number is milliseconds, as Extism takes it.
    let started = std::time::Instant::now();
    let (code, err) = fails(&["call", &p, "spin", "--timeout", "300"], b"");
    assert_eq!(code, 124, "{err}");
    assert!(err.contains("300ms"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));

    // --memory-max: pages of 64 KiB. The plugin needs more than 2 pages.
    let (code, err) = fails(
        &[
            "call",
            &p,
            "count_vowels",
            "--input",
            "a",
            "--memory-max",
            "2",
        ],
        b"",
    );
    assert_eq!(code, 71, "{err}");
    let out = ok(
        &[
            "call",
            &p,
            "count_vowels",
            "--input",
            "a",
            "--memory-max",
            "64",
        ],
        b"",
    );
    assert!(out.contains(r#""count":1"#), "{out}");

    // --log-level: the guest's lines at that level and above, on stderr.
    let out = wasmhost(
        &[
            "call",
            &p,
            "log_it",
            "--input",
            "note",
            "--log-level",
            "warn",
        ],
        b"",
    );
    assert_eq!(text(&out.stdout), "logged");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("[warn] note") && stderr.contains("[error] note"),
        "{stderr}"
    );
    assert!(!stderr.contains("[info] note"), "{stderr}");
    assert_eq!(
        stderr.matches("note").count(),
        2,
        "each line once: {stderr}"
    );
    let out = wasmhost(
        &["call", &p, "log_it", "-i", "x", "--log-level", "off"],
        b"",
    );
    assert!(!text(&out.stderr).contains("x"), "{}", text(&out.stderr));
    let out = wasmhost(&["call", &p, "log_it", "-i", "note"], b"");
    assert_eq!(text(&out.stderr).matches("note").count(), 3);

    // --allow-host: HTTP to that host only, over a real socket.
    let port = http_server(|_| ("200 OK", Vec::new(), b"hello from the test server".to_vec()));
    let url = format!("http://127.0.0.1:{port}/");
    let out = ok(
        &[
            "call",
            &p,
            "http_get",
            "--input",
            &url,
            "--allow-host",
            "127.0.0.1",
        ],
        b"",
    );
    assert_eq!(out, r#"{"status":200,"body":"hello from the test server"}"#);
    let (code, err) = fails(&["call", &p, "http_get", "--input", &url], b"");
    assert_eq!(code, 68, "{err}");
    let (code, err) = fails(
        &[
            "call",
            &p,
            "http_get",
            "--input",
            &url,
            "--allow-host",
            "example.com",
        ],
        b"",
    );
    assert_eq!(code, 68, "{err}");
    assert!(err.contains("`127.0.0.1`"), "{err}");
}

#[test]
fn the_plugin_can_be_a_url_as_extism_call_takes_it() {
    // Extism CLI's README: `extism call $PLUGIN_URL count_vowels --input
    // qwertyuiop`, the plugin served here over a real socket.
    let wasm = std::fs::read(built("extism-plugin.wasm")).unwrap();
    let port = http_server(move |path| match path {
        "/count_vowels.wasm" => ("200 OK", Vec::new(), wasm.clone()),
        "/elsewhere" => (
            "302 Found",
            vec!["Location: http://localhost:1/count_vowels.wasm".to_string()],
            Vec::new(),
        ),
        _ => ("404 Not Found", Vec::new(), Vec::new()),
    });
    let url = format!("http://127.0.0.1:{port}/count_vowels.wasm");
    let out = ok(
        &["call", &url, "count_vowels", "--input", "qwertyuiop"],
        b"",
    );
    assert_eq!(out, r#"{"count":4,"total":4,"vowels":"aeiouAEIOU"}"#);
    let out = ok(
        &[
            "call",
            &url,
            "count_vowels",
            "-i",
            "qwertyuiop",
            "--config",
            "vowels=qw",
        ],
        b"",
    );
    assert_eq!(out, r#"{"count":2,"total":2,"vowels":"qw"}"#);
    // Only the host named is allowed: a redirect elsewhere is refused.
    let (code, err) = fails(
        &[
            "call",
            &format!("http://127.0.0.1:{port}/elsewhere"),
            "count_vowels",
        ],
        b"",
    );
    assert_eq!(code, 68, "{err}");
    assert!(err.contains("localhost"), "{err}");
    let (code, err) = fails(
        &[
            "call",
            &format!("http://127.0.0.1:{port}/missing.wasm"),
            "count_vowels",
        ],
        b"",
    );
    assert_eq!(code, 66, "{err}");
}

#[test]
fn flags_go_anywhere_for_call_test_actor_send_and_inspect() {
    let numeric = wat("numeric");
    // call: --fuel and --timeout after FUNCTION and INPUT.
    let out = ok(
        &[
            "call",
            &numeric,
            "add_i32",
            "[40, 2]",
            "--fuel",
            "1000",
            "--timeout",
            "300ms",
        ],
        b"",
    );
    assert_eq!(out, "42\n");
    let (code, err) = fails(
        &["call", &numeric, "add_i32", "[40, 2]", "--fuel", "1"],
        b"",
    );
    assert_eq!(code, 72, "{err}");
    let (code, err) = fails(
        &[
            "call",
            &built("extism-plugin.wasm"),
            "spin",
            "--timeout",
            "300ms",
        ],
        b"",
    );
    assert_eq!(code, 124, "{err}");
    // A negative number is INPUT, not a flag.
    let out = ok(&["call", &numeric, "add_i32", "[-40, -2]"], b"");
    assert_eq!(out, "-42\n");
    // Input that looks like a flag goes after `--`, or in --input.
    let p = built("extism-plugin.wasm");
    assert_eq!(
        ok(&["call", &p, "echo", "--", "--not-a-flag"], b""),
        "--not-a-flag"
    );
    assert_eq!(ok(&["call", &p, "echo", "--input", "-x"], b""), "-x");
    let (code, err) = fails(&["call", &p, "echo", "a", "--input", "b"], b"");
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("one way"), "{err}");

    // test: flags after FUNCTION.
    let out = ok(
        &[
            "test",
            &numeric,
            "add_i32",
            "--input",
            "[40, 2]",
            "--json",
            "--max-memory",
            "1MiB",
        ],
        b"",
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["result"], "42");

    // actor send: flags before and after the id.
    let state = tempfile::tempdir().unwrap();
    let counter = built("as-counter-stub.wasm");
    let send = |args: &[&str]| {
        let out = wasmhost_in(state.path(), args, b"");
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let out = send(&[
        "actor",
        "send",
        "--input",
        "5",
        "c1",
        "--module",
        &counter,
        "--function",
        "increment",
        "--timeout",
        "2s",
    ]);
    assert_eq!(out, "5\n");
    assert_eq!(
        send(&["actor", "send", "c1", "-i", "3", "--fuel", "1000000"]),
        "8\n",
        "the actor resumes from its snapshot"
    );

    // inspect: --json after MODULE.
    let out = ok(&["inspect", &numeric, "--json"], b"");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "core");
}

#[test]
fn test_takes_the_input_as_call_does() {
    let p = built("extism-plugin.wasm");
    // An Extism plugin: bytes in, as `call` takes them (this used to
    // insist on JSON numbers).
    let expected = r#"result: {"count":3,"total":3,"vowels":"aeiouAEIOU"}"#;
    for args in [
        vec!["test", &p, "count_vowels", "--input", "aei"],
        vec!["test", &p, "count_vowels", "aei"],
        vec!["test", &p, "count_vowels", "-i", "aei"],
        vec!["test", &p, "count_vowels", "--stdin"],
        vec!["test", &p, "count_vowels", "-"],
    ] {
        let out = wasmhost(&args, b"aei");
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout).lines().next(), Some(expected), "{args:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("in.txt");
    std::fs::write(&f, "aei").unwrap();
    let out = ok(
        &[
            "test",
            &p,
            "count_vowels",
            "--input-file",
            f.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.lines().next(), Some(expected));
    // Numbers, AssemblyScript strings: the conventions `call` detects.
    let out = ok(&["test", &wat("numeric"), "add_i32", "[40, 2]"], b"");
    assert!(out.starts_with("result: 42\n"), "{out}");
    let out = ok(
        &["test", &built("as-counter-minimal.wasm"), "increment", "5"],
        b"",
    );
    assert!(out.starts_with("result: 5\n"), "{out}");
    // What is wrong with the input is still said.
    let (code, err) = fails(&["test", &wat("numeric"), "add_i32", "[\"x\"]"], b"");
    assert_eq!(code, 64, "{err}");
}

#[test]
fn manifest_paths_absolute_or_from_the_current_directory() {
    let wasm = std::fs::read(built("extism-plugin.wasm")).unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::create_dir(cwd.path().join("plugins")).unwrap();
    std::fs::write(cwd.path().join("plugins/code.wasm"), &wasm).unwrap();
    // From Extism's docs: a manifest whose path is relative to where the
    // command runs, kept in another directory.
    let manifest = elsewhere.path().join("manifest.json");
    std::fs::write(
        &manifest,
        r#"{"wasm": [{"path": "plugins/code.wasm"}], "config": {"vowels": "aeiouAEIOU"}}"#,
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wasmhost"))
            .args(args)
            .current_dir(cwd.path())
            .env("WASMHOST_STATE", state.path())
            .env_remove("WASMHOST_STORE")
            .output()
            .unwrap()
    };
    let m = manifest.to_str().unwrap();
    // `-m MANIFEST`, and `-m` as Extism's switch, anywhere.
    for args in [
        ["call", "-m", m, "count_vowels", "--input", "Hello, World!"],
        ["call", m, "count_vowels", "--input", "Hello, World!", "-m"],
    ] {
        let out = run(&args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            r#"{"count":3,"total":3,"vowels":"aeiouAEIOU"}"#
        );
    }
    let out = run(&["call", "-m", "plugins/code.wasm", "count_vowels"]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("not a manifest"),
        "{}",
        text(&out.stderr)
    );
    // The manifest's directory comes first when both have the file.
    std::fs::create_dir(elsewhere.path().join("plugins")).unwrap();
    std::fs::write(elsewhere.path().join("plugins/code.wasm"), b"not wasm").unwrap();
    let out = run(&["call", "-m", m, "count_vowels", "--input", "x"]);
    assert_eq!(out.status.code(), Some(65), "{}", text(&out.stderr));
    // An absolute path, from anywhere.
    let absolute = elsewhere.path().join("absolute.json");
    std::fs::write(
        &absolute,
        serde_json::json!({"wasm": [{"path": cwd.path().join("plugins/code.wasm")}]}).to_string(),
    )
    .unwrap();
    let out = ok(
        &[
            "call",
            absolute.to_str().unwrap(),
            "count_vowels",
            "--input",
            "aa",
        ],
        b"",
    );
    assert!(out.starts_with(r#"{"count":2"#), "{out}");
}

#[test]
fn url_modules_are_fetched_from_allowed_hosts_with_their_hash_checked() {
    let wasm = std::fs::read(built("extism-plugin.wasm")).unwrap();
    let hash = wasmhost::Digest::of(&wasm).hex();
    let served = wasm.clone();
    let port = http_server(move |path| match path {
        "/count_vowels.wasm" => ("200 OK", Vec::new(), served.clone()),
        "/latest" => (
            "302 Found",
            vec![format!("location: /count_vowels.wasm")],
            Vec::new(),
        ),
        "/elsewhere" => (
            "302 Found",
            vec!["location: http://localhost:9/count_vowels.wasm".to_string()],
            Vec::new(),
        ),
        _ => ("404 Not Found", Vec::new(), b"no".to_vec()),
    });
    let dir = tempfile::tempdir().unwrap();
    let manifest = |name: &str, path: &str, hash: &str| {
        let p = dir.path().join(name);
        std::fs::write(
            &p,
            serde_json::json!({"wasm": [{"url": format!("http://127.0.0.1:{port}{path}"), "hash": hash}]})
                .to_string(),
        )
        .unwrap();
        p.display().to_string()
    };
    let good = manifest("good.json", "/count_vowels.wasm", &hash);
    let call = |m: &str, extra: &[&str]| {
        let mut args = vec!["call", m, "count_vowels", "--input", "Hello, World!"];
        args.extend_from_slice(extra);
        wasmhost(&args, b"")
    };
    // Not allowed: nothing is fetched, and the message says how to allow it.
    let out = call(&good, &[]);
    assert_eq!(out.status.code(), Some(68), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--allow-url-host 127.0.0.1"),
        "{}",
        text(&out.stderr)
    );
    let out = call(&good, &["--allow-url-host", "example.com"]);
    assert_eq!(out.status.code(), Some(68), "{}", text(&out.stderr));
    // Allowed: fetched, checked, run.
    let out = call(&good, &["--allow-url-host", "127.0.0.1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        r#"{"count":3,"total":3,"vowels":"aeiouAEIOU"}"#
    );
    // A redirect on the same host is followed; one to a host not allowed is not.
    let latest = manifest("latest.json", "/latest", &hash);
    let out = call(&latest, &["--allow-url-host", "127.0.0.1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let away = manifest("away.json", "/elsewhere", &hash);
    let out = call(&away, &["--allow-url-host", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(68), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("`localhost`"),
        "{}",
        text(&out.stderr)
    );
    // The hash is checked before anything compiles the bytes.
    let wrong = manifest("wrong.json", "/count_vowels.wasm", &"0".repeat(64));
    let out = call(&wrong, &["--allow-url-host", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(74), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&hash), "{}", text(&out.stderr));
    // A missing module is not_found.
    let gone = manifest("gone.json", "/gone.wasm", &hash);
    let out = call(&gone, &["--allow-url-host", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(66), "{}", text(&out.stderr));
}

#[test]
fn several_modules_are_linked_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, json: serde_json::Value| {
        let p = dir.path().join(name);
        std::fs::write(&p, json.to_string()).unwrap();
        p.display().to_string()
    };
    // Extism's linking example: a second module, named
    // `extism:host/user`, gives the main one its host function.
    let linked = write(
        "linked.json",
        serde_json::json!({"wasm": [
            {"path": wat("extism-user-reverse"), "name": "extism:host/user"},
            {"path": built("extism-plugin.wasm"), "name": "main"},
        ]}),
    );
    let out = ok(
        &["call", &linked, "reverse_via_host", "--input", "stressed"],
        b"",
    );
    assert_eq!(out, "host said: desserts");
    let out = ok(&["test", &linked, "reverse_via_host", "-i", "ab"], b"");
    assert!(out.starts_with("result: host said: ba\n"), "{out}");
    // inspect names the linked module; push refuses to keep one of two.
    let out = ok(&["inspect", &linked, "--json"], b"");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["linked"][0]["name"], "extism:host/user");
    assert!(
        v["linked"][0]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let (code, err) = fails(&["push", &linked, "plugin:v1"], b"");
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("several modules"), "{err}");
    // Nor does a registry push publish one of two (refused before any
    // registry is reached: nothing listens on port 1).
    let (code, err) = fails(&["push", &linked, "oci://127.0.0.1:1/acme/plugin:v1"], b"");
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("several modules"), "{err}");
    // Extism's linking test: modules given as data, the command one linked
    // under the name the main one imports it by; each call of a command's
    // export is a fresh instance, so the count read back is 1.
    let data = |name: &str| base64(&std::fs::read(wat(name)).unwrap());
    let commander = write(
        "commander.json",
        serde_json::json!({"wasm": [
            {"data": data("linked-counter"), "name": "counter"},
            {"data": data("linked-main"), "name": "main"},
        ]}),
    );
    let out = wasmhost(&["call", &commander, "run"], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, 1u64.to_le_bytes());
    // Without a name the module is `main`; the last one is main when no
    // other is. Two modules called `main` are refused.
    let twice = write(
        "twice.json",
        serde_json::json!({"wasm": [{"path": wat("linked-counter")}, {"path": wat("linked-main")}]}),
    );
    let (code, err) = fails(&["call", &twice, "run"], b"");
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("named `main`"), "{err}");
    // A missing link is named.
    let unlinked = write(
        "unlinked.json",
        serde_json::json!({"wasm": [{"path": wat("linked-main")}]}),
    );
    let (code, err) = fails(&["call", &unlinked, "run"], b"");
    assert_eq!(code, 67, "{err}");
    assert!(err.contains("counter::read_counter"), "{err}");
}

#[test]
fn manifests_give_wasi_with_clocks_and_random() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(built("wasi-echo.wasm"), dir.path().join("echo.wasm")).unwrap();
    let write = |name: &str, wasi: &str| {
        let p = dir.path().join(name);
        std::fs::write(
            &p,
            format!("[module]\npath = \"echo.wasm\"\n[capabilities.wasi]\nargs = [\"echo\", \"time\"]\n{wasi}"),
        )
        .unwrap();
        p.display().to_string()
    };
    let plain = write("plain.toml", "");
    let out = ok(&["run", &plain], b"");
    assert!(
        out.trim().parse::<u64>().is_ok_and(|t| t > 1_600_000_000),
        "{out}"
    );
    let denied = write("denied.toml", "clocks = false\n");
    let (code, err) = fails(&["run", &denied], b"");
    assert_eq!(code, 68, "{err}");
    // The command line's --deny applies over a manifest's grant.
    let (code, err) = fails(&["run", "--deny", "clocks", &plain], b"");
    assert_eq!(code, 68, "{err}");
    // call --wasi grants the same; a function that reads the clock and
    // random numbers through WASI preview 1 (errno 0: success).
    let wasi = dir.path().join("wasi.wat");
    std::fs::write(
        &wasi,
        r#"(module
             (import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))
             (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
             (memory (export "memory") 1)
             (func (export "both") (result i32)
               (i32.or (call $now (i32.const 0) (i64.const 1) (i32.const 0))
                       (call $random (i32.const 8) (i32.const 8)))))"#,
    )
    .unwrap();
    let wasi = wasi.display().to_string();
    assert_eq!(ok(&["call", &wasi, "both", "--wasi"], b""), "0\n");
    for deny in ["clocks", "random"] {
        let (code, err) = fails(&["call", &wasi, "both", "--wasi", "--deny", deny], b"");
        assert_eq!(code, 68, "{deny}: {err}");
        assert!(err.contains(&format!("`{deny}`")), "{err}");
    }
}
