//! Worker routes in every mode, raw-TCP workers, wasi:http at a route and
//! at `/`, static files and CORS.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wasmhost_server::WorkerSpec;

use crate::{TestServer, config, error_of, guest, route};

#[tokio::test(flavor = "multi_thread")]
async fn http_routes_in_every_mode() {
    let mut c = config();
    c.routes = vec![
        route("/echo", "wasi-echo.wasm", ""),
        route("/both", "both_modes.wat", ",mode=async"),
        route(
            "/vowels",
            "as-extism-plugin.wasm",
            ",mode=function,function=count_vowels",
        ),
        route(
            "/counter",
            "as-counter-stub.wasm",
            ",mode=actor,function=increment",
        ),
        route("/hello", "http-hello.wasm", ""),
    ];
    let s = TestServer::start(c).await;
    let post = |path: &str, body: &'static str| s.client.post(s.at(path)).body(body).send();

    // sync (detected: a WASI command): stdin in, stdout out; sub-paths too.
    let res = post("/echo", "ping").await.expect("echo");
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.expect("text"), "ping");
    assert_eq!(
        post("/echo/any/thing", "x")
            .await
            .expect("echo")
            .text()
            .await
            .expect("text"),
        "x"
    );

    // async: one kept instance counts messages.
    for n in 1..=3 {
        let text = post("/both", "m")
            .await
            .expect("both")
            .text()
            .await
            .expect("text");
        assert_eq!(text, format!("async #{n}: m"));
    }

    // function: an Extism plugin's result.
    let text = post("/vowels", "Hello, World!")
        .await
        .expect("vowels")
        .text()
        .await
        .expect("text");
    assert!(text.contains('3'), "{text}");
    // A message worker runs only for a POST (or PUT).
    let (status, code) = error_of(s.client.get(s.at("/vowels")).send().await.expect("get")).await;
    assert_eq!((status, code.as_str()), (405, "method_not_allowed"));

    // actor: the rest of the path names the actor; each keeps its own count.
    for _ in 0..2 {
        post("/counter/alice", "1").await.expect("alice");
    }
    let bob = post("/counter/bob", "1")
        .await
        .expect("bob")
        .text()
        .await
        .expect("text");
    let alice = post("/counter/alice", "1")
        .await
        .expect("alice")
        .text()
        .await
        .expect("text");
    assert_eq!(
        (bob.trim_matches(['[', ']']), alice.trim_matches(['[', ']'])),
        ("1", "3")
    );
    let (status, code) = error_of(post("/counter", "1").await.expect("no id")).await;
    assert_eq!((status, code.as_str()), (400, "bad_input"));
    // Path-named actors are scoped by their route, and visible to the API.
    let list: serde_json::Value = s.get_json("/api/v1/actors").await;
    let ids: Vec<&str> = list["actors"]
        .as_array()
        .expect("actors")
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(ids, ["counter/alice", "counter/bob"]);

    // http (detected: a wasi:http component), mounted at its prefix: it
    // sees the path below it.
    let res = s.client.get(s.at("/hello")).send().await.expect("hello");
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.expect("text"), "hello, world\n");
    let res = s
        .client
        .get(s.at("/hello/headers"))
        .header("x-test", "through")
        .send()
        .await
        .expect("headers");
    assert_eq!(res.text().await.expect("text"), "through");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wasi_http_component_at_the_root_serves_every_free_path() {
    let mut c = config();
    c.routes = vec![route("/", "http-hello.wasm", "")];
    let s = TestServer::start(c).await;
    let res = s.client.get(s.at("/")).send().await.expect("root");
    assert_eq!(res.text().await.expect("text"), "hello, world\n");
    let res = s
        .client
        .post(s.at("/echo"))
        .body("round trip")
        .send()
        .await
        .expect("echo");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-echo-len"], "10");
    assert_eq!(res.text().await.expect("text"), "round trip");
    assert_eq!(
        s.client
            .get(s.at("/status/418"))
            .send()
            .await
            .expect("418")
            .status(),
        418
    );
    // The server's own paths stay the server's; the dashboard moves.
    assert_eq!(s.get_text("/healthz").await, "ok\n");
    let (status, code) = error_of(
        s.client
            .get(s.at("/api/v1/unknown"))
            .send()
            .await
            .expect("api"),
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "route_not_found"));
    // Metrics name the root worker's requests by its route, not "unmatched".
    let text = s.get_text("/metrics").await;
    let needle = "http_requests_total{method=\"GET\",route=\"/\",status=\"418\"}";
    assert!(text.contains(needle), "{text}");
    let page = s
        .client
        .get(s.at("/dashboard"))
        .send()
        .await
        .expect("dashboard");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("text").contains("<html"));
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_workers_are_reported_and_the_route_keeps_working() {
    let mut c = config();
    c.limits = c.limits.clone().timeout(Some(Duration::from_millis(300)));
    c.routes = vec![
        route("/trap", "unreachable.wat", ",mode=function,function=run"),
        route("/spin", "loop.wat", ",mode=function,function=run"),
        route("/flood", "flood.wat", ",mode=sync"),
        route("/hello", "http-hello.wasm", ""),
        route("/echo", "wasi-echo.wasm", ""),
    ];
    let s = TestServer::start(c).await;
    let cases = [
        ("/trap", 502, "trap"),
        ("/spin", 504, "timeout"),
        ("/flood", 502, "memory_limit"),
        ("/hello/spin", 504, "timeout"),
    ];
    for (path, status, code) in cases {
        let res = s.client.post(s.at(path)).send().await.expect(path);
        assert_eq!(error_of(res).await, (status, code.to_string()), "{path}");
    }
    assert_eq!(
        s.client
            .get(s.at("/hello"))
            .send()
            .await
            .expect("hello")
            .status(),
        200
    );
    assert_eq!(
        s.client
            .post(s.at("/echo"))
            .body("still")
            .send()
            .await
            .expect("echo")
            .text()
            .await
            .expect("text"),
        "still"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_routes_stop_the_server_before_it_listens() {
    for (spec, says) in [
        (
            format!("/x={}", guest("numeric.wat").display()),
            "cannot tell how to drive it",
        ),
        (
            format!("/x={},mode=function", guest("numeric.wat").display()),
            "needs function=NAME",
        ),
        (
            format!("/x={},mode=http", guest("wasi-echo.wasm").display()),
            "wasi:http",
        ),
        ("/x=missing:tag".to_string(), "not found"),
    ] {
        let mut c = config();
        c.routes = vec![WorkerSpec::parse_route(&spec).expect("spec")];
        let e = TestServer::try_start(c).await.expect_err(&spec);
        assert!(e.to_string().contains(says), "{spec}: {e}");
    }
}

/// Sends `message` on a new connection, half-closes, reads the reply to EOF.
async fn tcp_message(addr: std::net::SocketAddr, message: &[u8]) -> Vec<u8> {
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    conn.write_all(message).await.expect("write");
    conn.shutdown().await.expect("half-close");
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), conn.read_to_end(&mut reply))
        .await
        .expect("reply within 30 s")
        .expect("read");
    reply
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_workers_answer_one_message_per_connection() {
    let mut c = config();
    c.max_body_bytes = 1 << 20;
    let port = |spec: &str| WorkerSpec::parse_tcp(spec).expect("tcp spec");
    c.tcp = vec![
        port(&format!("0={}", guest("wasi-echo.wasm").display())),
        port(&format!(
            "0={},mode=async",
            guest("both_modes.wat").display()
        )),
    ];
    // Port 0 twice: each worker gets its own free port.
    let s = TestServer::start(c).await;
    let (echo, counter) = (s.tcp[0], s.tcp[1]);
    assert_ne!(echo, counter);

    // A message streamed in pieces is one message.
    let mut conn = TcpStream::connect(echo).await.expect("connect");
    for piece in [&b"one "[..], b"message ", b"in pieces"] {
        conn.write_all(piece).await.expect("write");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    conn.shutdown().await.expect("half-close");
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).await.expect("read");
    assert_eq!(reply, b"one message in pieces");

    // Async mode keeps its instance across connections.
    for n in 1..=3 {
        assert_eq!(
            tcp_message(counter, b"hi").await,
            format!("async #{n}: hi").into_bytes()
        );
    }

    // 512 KiB round trip; 16 connections at once.
    let big: Vec<u8> = (0..512 << 10).map(|i| (i % 251) as u8).collect();
    assert_eq!(tcp_message(echo, &big).await, big);
    let replies = futures::future::join_all(
        (0..16).map(|i| async move { tcp_message(echo, format!("conn {i}").as_bytes()).await }),
    )
    .await;
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(r, format!("conn {i}").as_bytes());
    }

    // Over the size limit: closed without a reply (a reset, as the server
    // stops reading); the next message is fine.
    let mut conn = TcpStream::connect(echo).await.expect("connect");
    let _ = conn.write_all(&vec![0u8; 2 << 20]).await;
    let _ = conn.shutdown().await;
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), conn.read_to_end(&mut reply))
        .await
        .expect("closed within 30 s");
    assert_eq!(reply, b"");
    assert_eq!(tcp_message(echo, b"after").await, b"after");
}

#[tokio::test(flavor = "multi_thread")]
async fn static_files_and_cors() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("index.html"), "<p>static</p>").expect("write");
    let mut c = config();
    c.statics = vec![("/app".into(), dir.path().to_path_buf())];
    c.cors = vec!["*".into()];
    c.routes = vec![route("/echo", "wasi-echo.wasm", "")];
    let s = TestServer::start(c).await;
    let res = s
        .client
        .get(s.at("/app/index.html"))
        .send()
        .await
        .expect("static");
    assert_eq!(res.text().await.expect("text"), "<p>static</p>");
    let res = s
        .client
        .request(reqwest::Method::OPTIONS, s.at("/echo"))
        .header("origin", "http://example.test")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("preflight");
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let res = s
        .client
        .post(s.at("/echo"))
        .header("origin", "http://example.test")
        .body("x")
        .send()
        .await
        .expect("echo");
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
}

/// One thread drives the server, its guests and the client: the quick
/// requests are answered while a guest spins only because that guest
/// yields to the executor at every epoch tick.
#[tokio::test(flavor = "current_thread")]
async fn a_spinning_guest_does_not_stall_other_requests_on_the_same_thread() {
    let mut c = config();
    c.request_timeout = Duration::from_secs(3);
    c.routes = vec![
        route("/spin", "loop.wat", ",mode=function,function=run"),
        route("/add", "numeric.wat", ",mode=function,function=add_i32"),
    ];
    let s = TestServer::start(c).await;
    let spin = tokio::spawn(s.client.post(s.at("/spin")).body("").send());
    // Let the spinning request reach its guest (this thread runs it while
    // the test sleeps; nothing else is waiting).
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..20 {
        let res = s
            .client
            .post(s.at("/add"))
            .body("[1, 2]")
            .send()
            .await
            .expect("add");
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.expect("text"), "3");
    }
    assert!(!spin.is_finished(), "the spinning request ended first");
    let res = spin.await.expect("task").expect("spin");
    assert_eq!(error_of(res).await, (504, "request_timeout".to_string()));
}

/// A route whose module is a manifest (wasmhost TOML, Extism JSON, packet)
/// runs under that manifest's limits and with exactly its grants; the
/// route's own options still win. Manifests in the config file's `[route]`
/// table too.
#[tokio::test(flavor = "multi_thread")]
async fn manifest_routes_enforce_their_limits_and_grants() {
    use base64::Engine as _;

    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for (from, to) in [
        ("grow.wat", "grow.wat"),
        ("kv.wat", "kv.wat"),
        ("wasi-echo.wasm", "echo.wasm"),
        ("as-extism-plugin.wasm", "plugin.wasm"),
        ("extism-plugin.wasm", "rust-plugin.wasm"),
    ] {
        std::fs::copy(guest(from), d.join(to)).expect("copy guest");
    }
    let write = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).expect("write manifest");
        p.display().to_string()
    };
    let grow = |max: &str| {
        format!(
            "[module]\npath = \"grow.wat\"\n[call]\nconvention = \"numeric\"\n\
             function = \"grow_once\"\n[limits]\nmax_memory = \"{max}\"\n"
        )
    };
    let small = write("small.toml", &grow("1MiB"));
    let large = write("large.toml", &grow("4MiB"));
    let env = write(
        "env.toml",
        "[module]\npath = \"echo.wasm\"\n[capabilities.wasi]\nargs = [\"echo\", \"env\"]\n\
         env = { GREETING = \"hi\" }\n",
    );
    let time = |clocks: bool| {
        format!(
            "[module]\npath = \"echo.wasm\"\n[capabilities.wasi]\nargs = [\"echo\", \"time\"]\n\
             clocks = {clocks}\n"
        )
    };
    let no_clocks = write("no-clocks.toml", &time(false));
    let clocks = write("clocks.toml", &time(true));
    // Clocks and random come with WASI when the manifest says nothing.
    let default_clocks = write(
        "default-clocks.toml",
        "[module]\npath = \"echo.wasm\"\n[capabilities.wasi]\nargs = [\"echo\", \"time\"]\n",
    );
    let vowels = write(
        "vowels.json",
        r#"{"wasm": [{"path": "plugin.wasm"}], "config": {"vowels": "o"}, "memory": {"max_pages": 64}}"#,
    );
    let plugin = write(
        "plugin.toml",
        "[module]\npath = \"plugin.wasm\"\n[call]\nconvention = \"extism\"\n\
         function = \"count_vowels\"\n[capabilities]\nconfig = { vowels = \"lo\" }\n",
    );
    let kv = write(
        "kv.toml",
        "[module]\npath = \"kv.wat\"\n[call]\nconvention = \"numeric\"\nfunction = \"counter\"\n\
         [capabilities]\nkey_value = true\n",
    );
    let http = write(
        "http.json",
        r#"{"wasm": [{"path": "rust-plugin.wasm"}], "allowed_hosts": ["127.0.0.1"]}"#,
    );
    let no_http = write(
        "no-http.json",
        r#"{"wasm": [{"path": "rust-plugin.wasm"}]}"#,
    );
    let wasm = std::fs::read(guest("wasi-echo.wasm")).expect("read");
    let packet = write(
        "packet.json",
        &format!(
            r#"{{"sourceContent": [{{"format": "wasm", "worldVersion": "v1", "contentB64": "{}"}}]}}"#,
            base64::engine::general_purpose::STANDARD.encode(&wasm)
        ),
    );
    // The config file's [route] table takes manifests like --route does.
    let file = write(
        "serve.toml",
        &format!("[[route]]\npath = \"/file-env\"\nmodule = \"{env}\"\n"),
    );
    let mut c = config();
    // The Rust plugin imports a host function nobody provides here.
    c.trap_unknown_imports = true;
    c.routes = wasmhost_server::ConfigFile::read(std::path::Path::new(&file))
        .expect("config file")
        .route;
    let r = |spec: String| WorkerSpec::parse_route(&spec).expect("route spec");
    c.routes.extend([
        r(format!("/small={small}")),
        r(format!("/small-run={small},function=run")),
        r(format!("/large={large}")),
        route(
            "/plain-grow",
            "grow.wat",
            ",mode=function,function=grow_once",
        ),
        r(format!("/env={env}")),
        route("/plain-echo", "wasi-echo.wasm", ""),
        r(format!("/no-clocks={no_clocks}")),
        r(format!("/clocks={clocks}")),
        r(format!("/default-clocks={default_clocks}")),
        r(format!(
            "/plain-clocks={}/../../guests/wat/clocks_random.wat,mode=sync",
            env!("CARGO_MANIFEST_DIR")
        )),
        r(format!("/vowels={vowels},function=count_vowels")),
        r(format!("/plugin={plugin}")),
        r(format!("/greet={plugin},mode=function,function=greet")),
        r(format!("/kv={kv}")),
        r(format!("/packet={packet}")),
        r(format!("/http={http},function=http_get")),
        r(format!("/no-http={no_http},function=http_get")),
    ]);
    let s = TestServer::start(c).await;
    let post = |path: &str, body: &'static str| {
        let req = s.client.post(s.at(path)).body(body);
        async move {
            let res = req.send().await.expect("request");
            (res.status().as_u16(), res.text().await.expect("text"))
        }
    };

    // Memory: the manifest's limit, not the server's (256 MiB).
    assert_eq!(post("/small", "[20]").await, (200, "-1".into()));
    assert_eq!(post("/large", "[20]").await, (200, "1".into()));
    assert_eq!(post("/plain-grow", "[20]").await, (200, "1".into()));
    // The route's function= wins over the manifest's: `run` grows until a
    // grow is refused, a memory_limit failure (502).
    let res = s.client.post(s.at("/small-run")).send().await.expect("run");
    assert_eq!(error_of(res).await, (502, "memory_limit".to_string()));

    // WASI: the manifest's arguments and environment, and nothing more.
    assert_eq!(post("/env", "").await, (200, "GREETING=hi\n".into()));
    assert_eq!(post("/file-env", "").await, (200, "GREETING=hi\n".into()));
    assert_eq!(post("/plain-echo", "ping").await, (200, "ping".into()));
    let res = s
        .client
        .post(s.at("/no-clocks"))
        .send()
        .await
        .expect("time");
    assert_eq!(error_of(res).await, (403, "capability_denied".to_string()));
    for path in ["/clocks", "/default-clocks"] {
        let (status, text) = post(path, "").await;
        assert_eq!(status, 200, "{path}: {text}");
        assert!(
            text.trim().parse::<u64>().is_ok_and(|t| t > 1_600_000_000),
            "{path}: {text}"
        );
    }
    // A plain module's route: WASI with clocks and random, as everywhere.
    assert_eq!(
        post("/plain-clocks", "").await,
        (200, "clocks and random\n".into())
    );

    // Config: an Extism manifest's, and a wasmhost manifest's with its
    // convention and function; the route's mode and function win.
    assert_eq!(
        post("/vowels", "Hello, World!").await,
        (200, r#"{"count":2}"#.into())
    );
    assert_eq!(
        post("/plugin", "Hello, World!").await,
        (200, r#"{"count":5}"#.into())
    );
    assert_eq!(post("/greet", "Zoë").await, (200, "Hello, Zoë!".into()));

    // key_value = true: the module's own namespace, kept between messages.
    assert_eq!(post("/kv", "").await, (200, "1".into()));
    assert_eq!(post("/kv", "").await, (200, "2".into()));

    // Allowed hosts: outgoing HTTP to them only.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/x", listener.local_addr().expect("addr"));
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = listener.accept().expect("accept");
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            req.extend_from_slice(&buf[..n]);
        }
        conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
            .expect("write");
    });
    let res = s
        .client
        .post(s.at("/no-http"))
        .body(url.clone())
        .send()
        .await;
    assert_eq!(
        error_of(res.expect("no-http")).await,
        (403, "capability_denied".to_string())
    );
    let res = s
        .client
        .post(s.at("/http"))
        .body(url)
        .send()
        .await
        .expect("http");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.text().await.expect("text"),
        r#"{"status":200,"body":"hi"}"#
    );
    server.join().expect("one-shot server");

    // A packet's module (no grants but the process mode's stdio).
    assert_eq!(
        post("/packet", "from a packet").await,
        (200, "from a packet".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_manifest_routes_stop_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::copy(guest("grow.wat"), d.join("grow.wat")).expect("copy");
    for (name, text, says) in [
        (
            "escape.toml",
            "[module]\npath = \"../grow.wat\"\n",
            "leaves the manifest's directory",
        ),
        (
            "fuel.toml",
            "[module]\npath = \"grow.wat\"\n[call]\nfunction = \"run\"\n[limits]\nfuel = 1000\n",
            "does not meter fuel",
        ),
        (
            "typo.toml",
            "[module]\npath = \"grow.wat\"\n[limits]\nmax_memroy = \"1MiB\"\n",
            "unknown field",
        ),
        (
            "other.json",
            r#"{"name": "x"}"#,
            "neither an Extism manifest",
        ),
    ] {
        let path = d.join(name);
        std::fs::write(&path, text).expect("write");
        let mut c = config();
        c.routes = vec![WorkerSpec::parse_route(&format!("/x={}", path.display())).expect("spec")];
        let e = TestServer::try_start(c).await.expect_err(name);
        assert_eq!(e.code(), wasmhost::ErrorCode::BadInput, "{name}: {e}");
        assert!(e.to_string().contains(says), "{name}: {e}");
    }
}
