//! `wasmhost serve` as a process: startup errors, a config file, requests
//! over real sockets, and a SIGTERM that drains the request in flight.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Serving, built, fails, http, serve, serve_in, wasmhost_in, wat};

#[test]
fn bad_setups_fail_before_listening_with_their_codes() {
    let (code, err) = fails(&["serve", "--addr", "0.0.0.0:0"], b"");
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("without a token"), "{err}");
    let (code, err) = fails(&["serve", "--addr", "127.0.0.1:0", "--route", "echo"], b"");
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("expected PATH=MODULE"), "{err}");
    let (code, err) = fails(
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--route",
            "/x=/no/such.wasm",
        ],
        b"",
    );
    // Resolved as every command resolves a MODULE: no such file, not a
    // store reference.
    assert_eq!(code, 66, "{err}");
    assert!(
        err.contains("no such file, and it is not a store reference"),
        "{err}"
    );
    let (code, err) = fails(
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--route",
            "/metrics=x.wasm",
        ],
        b"",
    );
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("belongs to the server"), "{err}");
}

#[test]
fn a_second_server_on_the_same_state_directory_is_told_why_it_cannot_start() {
    let first = serve(&[]);
    let out = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("WASMHOST_STATE", first.state())
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert!(
        err.contains("error[unavailable]") && err.contains("another process has it open"),
        "{err}"
    );
}

#[test]
fn a_config_file_describes_http_and_tcp_workers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("serve.toml");
    let tcp_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        l.local_addr().expect("addr").port()
    };
    std::fs::write(
        &config,
        format!(
            "max_concurrent = 4\n\
             [[route]]\npath = \"/echo\"\nmodule = \"{}\"\n\
             [[route]]\npath = \"/add\"\nmodule = \"{}\"\nmode = \"function\"\nfunction = \"add_i32\"\n\
             [[tcp]]\nport = {tcp_port}\nmodule = \"{}\"\nmode = \"async\"\n",
            built("wasi-echo.wasm"),
            wat("numeric"),
            wat("both_modes"),
        ),
    )
    .expect("write config");
    let s = serve(&["--config", &config.display().to_string()]);
    assert_eq!(
        http(&s.addr, "POST", "/echo", "from the file"),
        (200, "from the file".into())
    );
    assert_eq!(
        http(&s.addr, "POST", "/add", "[20, 22]"),
        (200, "42".into())
    );
    for n in 1..=2 {
        let mut conn = TcpStream::connect(("127.0.0.1", tcp_port)).expect("tcp");
        conn.write_all(b"hi").expect("write");
        conn.shutdown(Shutdown::Write).expect("half-close");
        let mut reply = String::new();
        conn.read_to_string(&mut reply).expect("read");
        assert_eq!(reply, format!("async #{n}: hi"));
    }
}

#[test]
fn a_config_files_relative_paths_are_relative_to_its_directory() {
    // The server runs in `cwd`, its config is `cwd/some/dir/serve.toml`,
    // and the config's relative paths name files of `some/dir`.
    let cwd = tempfile::tempdir().expect("tempdir");
    let dir = cwd.path().join("some/dir");
    std::fs::create_dir_all(dir.join("app")).expect("mkdir");
    std::fs::copy(built("wasi-echo.wasm"), dir.join("echo.wasm")).expect("copy");
    // A manifest's own paths stay relative to the manifest.
    std::fs::copy(wat("numeric"), dir.join("app/numeric.wat")).expect("copy");
    std::fs::write(
        dir.join("app/app.toml"),
        "[module]\npath = \"numeric.wat\"\n[call]\nfunction = \"add_i32\"\n",
    )
    .expect("write manifest");
    // The working directory's echo.wasm is not a WASI command: a server that
    // took it would not start.
    std::fs::copy(wat("numeric"), cwd.path().join("echo.wasm")).expect("copy");
    // A store reference is still a store reference.
    let state = tempfile::tempdir().expect("tempdir");
    let pushed = wasmhost_in(state.path(), &["push", &wat("numeric"), "math:v1"], b"");
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let tcp_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        l.local_addr().expect("addr").port()
    };
    std::fs::write(
        dir.join("serve.toml"),
        format!(
            "[[route]]\npath = \"/echo\"\nmodule = \"echo.wasm\"\n\
             [[route]]\npath = \"/app\"\nmodule = \"app/app.toml\"\n\
             [[route]]\npath = \"/stored\"\nmodule = \"math:v1\"\nfunction = \"add_i32\"\n\
             [[tcp]]\nport = {tcp_port}\nmodule = \"echo.wasm\"\n"
        ),
    )
    .expect("write config");
    let s = serve_in(
        state,
        Some(cwd.path()),
        &["--config", "some/dir/serve.toml"],
    );
    assert_eq!(
        http(&s.addr, "POST", "/echo", "from some/dir"),
        (200, "from some/dir".into())
    );
    assert_eq!(
        http(&s.addr, "POST", "/app", "[20, 22]"),
        (200, "42".into())
    );
    assert_eq!(
        http(&s.addr, "POST", "/stored", "[1, 2]"),
        (200, "3".into())
    );
    let mut conn = TcpStream::connect(("127.0.0.1", tcp_port)).expect("tcp");
    conn.write_all(b"over tcp").expect("write");
    conn.shutdown(Shutdown::Write).expect("half-close");
    let mut reply = String::new();
    conn.read_to_string(&mut reply).expect("read");
    assert_eq!(reply, "over tcp");
    drop(s);

    // A missing file is missing from the config's directory.
    std::fs::write(
        dir.join("gone.toml"),
        "[[route]]\npath = \"/gone\"\nmodule = \"./gone.wasm\"\n",
    )
    .expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .current_dir(cwd.path())
        .args(["serve", "--addr", "127.0.0.1:0", "--config"])
        .arg("some/dir/gone.toml")
        .env("WASMHOST_STATE", cwd.path().join("state"))
        .env_remove("WASMHOST_STORE")
        .env_remove("WASMHOST_TOKEN")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(66), "{err}");
    assert!(
        err.contains("module `some/dir/./gone.wasm`: no such file"),
        "{err}"
    );
}

/// `allow-host=` and `--outbound-max-response` as flags, and their config
/// file keys: the http-fetch guest fetches from the server itself.
#[test]
fn outgoing_http_is_allowed_per_route_and_limited() {
    let fetch = built("http-fetch.wasm");
    let check = |s: &Serving| {
        let port = s.addr.rsplit(':').next().expect("port");
        let get = |url: String| http(&s.addr, "GET", &format!("/f?url={url}"), "");
        // Allowed: the address, spelled another way.
        let (status, body) = get(format!("http://127.1:{port}/healthz"));
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("ok"), "{body}");
        // Over the response size limit.
        let (status, body) = get(format!("http://127.0.0.1:{port}/openapi.json"));
        assert_eq!(status, 502, "{body}");
        assert!(body.contains("HttpResponseBodySize(Some(100))"), "{body}");
        // Not on the list: a name, even of the same address.
        let (status, body) = get(format!("http://localhost:{port}/healthz"));
        assert_eq!(status, 502, "{body}");
        assert!(body.contains("HttpRequestDenied"), "{body}");
    };
    check(&serve(&[
        "--route",
        &format!("/f={fetch},allow-host=127.0.0.1"),
        "--outbound-max-response",
        "100",
        "--outbound-timeout",
        "10s",
    ]));

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "outbound_max_response = \"100\"\noutbound_timeout = \"10s\"\n\
             [[route]]\npath = \"/f\"\nmodule = '{fetch}'\n\
             allowed_outbound_hosts = [\"127.0.0.1\"]\n"
        ),
    )
    .expect("write config");
    check(&serve(&["--config", &config.display().to_string()]));

    // A pattern that could never match stops the server before it listens.
    let (code, err) = fails(
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--route",
            &format!("/f={fetch},allow-host=localhost:8080"),
        ],
        b"",
    );
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("ports are not matched"), "{err}");
}

#[test]
fn sigterm_finishes_the_request_in_flight_then_exits() {
    let mut s = serve(&[
        "--route",
        &format!("/burn={},mode=function,function=burn", wat("burn")),
    ]);
    let addr = s.addr.clone();
    let in_flight = std::thread::spawn(move || http(&addr, "POST", "/burn", "[400000000]"));
    let started = Instant::now();
    while !http(&s.addr, "GET", "/readyz", "").1.contains("1 running") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the request never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let term = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    assert_eq!(in_flight.join().expect("thread"), (200, "400000000".into()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = s.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 30 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    assert!(TcpStream::connect(&s.addr).is_err(), "still listening");
}

/// The bearer token never reaches the log, even at trace level with every
/// crate's tracing on: the server runs with `WASMHOST_LOG=trace`, gets
/// writes with a wrong, a malformed and the right token, and its whole
/// stderr is searched. (SECURITY.md; the API-side checks are in
/// crates/wasmhost-server/tests/it/security.rs.)
#[test]
fn the_token_is_never_logged() {
    use std::io::BufRead;
    const TOKEN: &str = "tok-5e0c93-never-logged";
    const WRONG: &str = "wrong-1a2b3c-never-logged";
    let state = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("WASMHOST_STATE", state.path())
        .env("WASMHOST_TOKEN", TOKEN)
        .env("WASMHOST_LOG", "trace")
        .env_remove("WASMHOST_STORE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut log = Vec::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(addr) = line.strip_prefix("wasmhost serve: listening on http://") {
                let _ = tx.send(addr.to_string());
            }
            log.push(line);
        }
        log
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server says where it listens");
    let wasm = std::fs::read_to_string(wat("numeric")).expect("numeric.wat");
    for (auth, want) in [
        (format!("Bearer {WRONG}"), 401),
        (format!("Bearer {TOKEN}{WRONG}"), 401),
        (format!("Basic {TOKEN}"), 401),
        (format!("Bearer {TOKEN}"), 201),
    ] {
        let (status, head, body) = common::request(
            &addr,
            "POST",
            "/api/v1/modules?name=num",
            &[("authorization", &auth)],
            &wasm,
        )
        .expect("request");
        assert_eq!(status, want, "{auth}: {body}");
        assert!(
            !head.contains(TOKEN) && !body.contains(TOKEN),
            "{auth}: {head}{body}"
        );
    }
    let (status, _, _) = common::request(
        &addr,
        "DELETE",
        "/api/v1/modules/num",
        &[("authorization", &format!("Bearer {TOKEN}"))],
        "",
    )
    .expect("delete");
    assert_eq!(status, 200);
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    assert!(child.wait().expect("wait").success());
    let log = reader.join().expect("reader");
    // Trace level was on: the HTTP stack's own lines are there.
    assert!(
        log.len() > 20 && log.iter().any(|l| l.contains("TRACE")),
        "expected a trace-level log, got {} lines",
        log.len()
    );
    for line in &log {
        assert!(
            !line.contains(TOKEN) && !line.contains(WRONG) && !line.contains("never-logged"),
            "a token reached the log: {line}"
        );
    }
}
