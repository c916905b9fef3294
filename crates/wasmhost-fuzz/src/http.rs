//! The HTTP API without a socket: `wasmhost serve`'s axum `Router` driven
//! with `tower::ServiceExt::oneshot`, with arbitrary methods, paths,
//! queries, headers and bodies. The server has a token, a stored module
//! `add` (numeric) and a static directory; a file beside that directory
//! holds a marker no answer may contain.
//!
//! Invariants: every request is answered (no panic, no hang past the
//! request deadline); no answer is a 500; every error under `/api/` is JSON
//! with an `error.code`; no answer carries the token or the marker file's
//! content.

use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use axum::Router;
use axum::body::Body;
use http::Request;
use tower::ServiceExt;
use wasmhost::{ActorConfig, ActorSystem, KvStore, Runtime, RuntimeConfig};
use wasmhost_server::{Server, ServerConfig};
use wasmhost_store::ModuleStore;

/// The server's bearer token.
pub const TOKEN: &str = "fuzz-token-7f3a9c";
/// The content of the file beside the static directory.
pub const OUTSIDE: &str = "MARKER-OUTSIDE-THE-STATIC-DIR";

const ADD: &str = r#"(module (func (export "add") (param i32 i32) (result i32)
    local.get 0 local.get 1 i32.add))"#;

/// Paths the fuzzer starts from (its own suffix is appended).
const PREFIXES: [&str; 14] = [
    "",
    "/",
    "/api/v1/modules",
    "/api/v1/modules/",
    "/api/v1/modules/add",
    "/api/v1/modules/add/call/",
    "/api/v1/modules/add/call/add",
    "/api/v1/modules/add/process",
    "/api/v1/modules/add/tags",
    "/api/v1/actors/",
    "/api/v1/cache",
    "/static/",
    "/metrics",
    "/healthz",
];

const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE",
];

/// One request, as the fuzzer spells it.
#[derive(Debug, Arbitrary)]
struct Req {
    method: u8,
    prefix: u8,
    path: String,
    query: Option<String>,
    authorized: bool,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

struct Fixture {
    tokio: tokio::runtime::Runtime,
    router: Router,
    _server: Server,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("tokio: {e}"));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let statics = dir.path().join("static");
        let setup = std::fs::create_dir(&statics)
            .and_then(|()| std::fs::write(statics.join("index.html"), "<p>static</p>"))
            .and_then(|()| std::fs::write(dir.path().join("outside.txt"), OUTSIDE));
        if let Err(e) = setup {
            panic!("static files: {e}");
        }
        let mut config = ServerConfig::default();
        config.addr = ([127, 0, 0, 1], 0).into();
        config.token = Some(TOKEN.to_string().into());
        config.max_concurrent = 2;
        config.max_queue = 4;
        config.max_body_bytes = 64 << 10;
        config.request_timeout = Duration::from_secs(5);
        config.limits = crate::module::small_limits().fuel(None);
        config.statics = vec![("/static".to_string(), statics)];
        let (server, router) = tokio.block_on(async {
            let rt = Runtime::new(wasmhost_server::runtime_config(
                &config,
                RuntimeConfig::default().pool(None),
            ))
            .unwrap_or_else(|e| panic!("runtime: {e}"));
            let store = ModuleStore::memory();
            store
                .push(ADD.as_bytes().to_vec(), "add", "latest")
                .await
                .unwrap_or_else(|e| panic!("push: {e}"));
            let actors = ActorSystem::new(ActorConfig::default().kv(KvStore::memory()));
            let server = Server::bind(config, rt, store, actors)
                .await
                .unwrap_or_else(|e| panic!("bind: {e}"));
            let router = server.router();
            (server, router)
        });
        Fixture {
            tokio,
            router,
            _server: server,
            _dir: dir,
        }
    })
}

/// One request through the router.
pub fn api(data: &[u8]) {
    let Ok(req) = Req::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let method = METHODS[usize::from(req.method) % METHODS.len()];
    let mut uri = format!(
        "{}{}",
        PREFIXES[usize::from(req.prefix) % PREFIXES.len()],
        req.path
    );
    if let Some(q) = &req.query {
        uri.push('?');
        uri.push_str(q);
    }
    let mut builder = Request::builder().method(method).uri(&uri);
    for (name, value) in &req.headers {
        builder = builder.header(name.as_str(), value.as_slice());
    }
    if req.authorized {
        builder = builder.header("authorization", format!("Bearer {TOKEN}"));
    }
    // What `http` refuses (a bad URI, header name or value) never reaches
    // a server: hyper refuses it first.
    let Ok(request) = builder.body(Body::from(req.body.clone())) else {
        return;
    };
    let path = request.uri().path().to_string();
    let (status, content_type, body) = send(request);
    let text = String::from_utf8_lossy(&body);
    assert_ne!(status, 500, "{method} {uri}: 500 {text}");
    assert!(
        !text.contains(TOKEN),
        "{method} {uri}: the answer carries the token: {text}"
    );
    assert!(
        !text.contains(OUTSIDE),
        "{method} {uri}: a file outside the static directory was served"
    );
    if path.starts_with("/api/") && status.as_u16() >= 400 && method != "HEAD" {
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!("{method} {uri}: {status} error is not JSON ({e}; {content_type}): {text}")
        });
        assert!(
            json["error"]["code"].is_string(),
            "{method} {uri}: {status} error without error.code: {text}"
        );
    }
}

/// Sends `request` through the fixture's router: status, content type, body.
pub fn send(request: Request<Body>) -> (http::StatusCode, String, axum::body::Bytes) {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let f = fixture();
    f.tokio.block_on(async {
        let res = tokio::time::timeout(Duration::from_secs(30), f.router.clone().oneshot(request))
            .await
            .unwrap_or_else(|_| panic!("{method} {uri}: no answer within 30 s"))
            .unwrap_or_else(|e| match e {});
        let status = res.status();
        let content_type = res
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = axum::body::to_bytes(res.into_body(), 64 << 20)
            .await
            .unwrap_or_else(|e| panic!("{method} {uri}: body: {e}"));
        (status, content_type, body)
    })
}
