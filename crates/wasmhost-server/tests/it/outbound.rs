//! Outgoing HTTP of wasi:http workers: guests/rust/http-fetch behind
//! `wasmhost serve`, fetching from a local upstream server on loopback
//! that counts the requests reaching it, so a refused request is shown
//! to have sent nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use wasmhost_server::WorkerSpec;

use crate::{TestServer, config, guest, route};

/// The upstream server: what it answers, and how many requests reached it.
struct Upstream {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(serde::Deserialize)]
struct Params {
    #[serde(default)]
    to: String,
    #[serde(default)]
    n: usize,
}

impl Upstream {
    /// `/hello` → `hello from upstream`; `/redirect?to=URL` → 302 to URL;
    /// `/big?n=N` → N bytes with a Content-Length; `/chunked?n=N` → N
    /// bytes in 100-byte chunks without one; `/slow` → headers after 20 s;
    /// `/stall` → headers and 10 bytes, then nothing for 20 s.
    async fn start() -> Upstream {
        let hits = Arc::new(AtomicUsize::new(0));
        let count = hits.clone();
        let app = Router::new()
            .route("/hello", get(|| async { "hello from upstream" }))
            .route(
                "/redirect",
                get(|Query(p): Query<Params>| async move {
                    Response::builder()
                        .status(302)
                        .header("location", p.to)
                        .body(Body::empty())
                        .expect("response")
                }),
            )
            .route(
                "/big",
                get(|Query(p): Query<Params>| async move { vec![b'x'; p.n] }),
            )
            .route(
                "/chunked",
                get(|Query(p): Query<Params>| async move {
                    let chunks = (0..p.n.div_ceil(100)).map(move |i| {
                        let len = 100.min(p.n - i * 100);
                        Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'y'; len]))
                    });
                    Body::from_stream(futures::stream::iter(chunks))
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(20)).await;
                    "too late"
                }),
            )
            .route(
                "/stall",
                get(|| async {
                    let first = futures::stream::once(async {
                        Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"0123456789"))
                    });
                    let never = futures::stream::once(async {
                        tokio::time::sleep(Duration::from_secs(20)).await;
                        Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"late"))
                    });
                    Body::from_stream(futures::StreamExt::chain(first, never)).into_response()
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                count,
                |State(count): State<Arc<AtomicUsize>>,
                 req: axum::extract::Request,
                 next: axum::middleware::Next| async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    next.run(req).await
                },
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstream { addr, hits, task }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// What the guest reported: status, headers, body.
struct Fetched {
    status: u16,
    upstream_status: Option<String>,
    hops: Option<String>,
    error: Option<String>,
    body: String,
}

async fn fetch(s: &TestServer, route: &str, url: &str) -> Fetched {
    let res = s
        .client
        .get(s.at(route))
        .query(&[("url", url)])
        .send()
        .await
        .expect("request to wasmhost");
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().expect("ASCII header").to_string())
    };
    Fetched {
        status: res.status().as_u16(),
        upstream_status: header("x-fetch-status"),
        hops: header("x-fetch-hops"),
        error: header("x-fetch-error"),
        body: res.text().await.expect("body"),
    }
}

/// The request was refused by the host with `HTTP-request-denied`: the
/// guest ran (and answered), and nothing reached the upstream.
async fn assert_denied(s: &TestServer, up: &Upstream, route: &str, url: &str) {
    let before = up.hits();
    let f = fetch(s, route, url).await;
    assert_eq!(f.status, 502, "{url}: {}", f.body);
    assert_eq!(
        f.error.as_deref(),
        Some("HttpRequestDenied"),
        "{url}: {}",
        f.body
    );
    assert_eq!(up.hits(), before, "{url} reached the upstream");
}

fn fetch_route(path: &str, options: &str) -> WorkerSpec {
    route(path, "http-fetch.wasm", options)
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_list_lets_allowed_hosts_through_and_refuses_the_rest() {
    let up = Upstream::start().await;
    let port = up.port();
    let mut c = config();
    c.routes = vec![
        // `localhost` only: 127.0.0.1 itself is refused, in any spelling.
        fetch_route("/named", ",allow-host=localhost"),
        // The address: reached in any spelling.
        fetch_route("/addr", ",allow-host=127.0.0.1"),
        // No grant at all.
        fetch_route("/none", ""),
    ];
    let s = TestServer::start(c).await;

    // An allowed host.
    let f = fetch(&s, "/named", &format!("http://localhost:{port}/hello")).await;
    assert_eq!(f.status, 200, "{}", f.body);
    assert_eq!(f.upstream_status.as_deref(), Some("200"));
    assert_eq!(f.body, "hello from upstream");
    assert_eq!(up.hits(), 1);

    // Refused hosts: nothing is sent, the guest gets the error code.
    assert_denied(&s, &up, "/named", &format!("http://127.0.0.1:{port}/hello")).await;
    assert_denied(&s, &up, "/named", "http://example.com/").await;
    assert_denied(&s, &up, "/none", &format!("http://localhost:{port}/hello")).await;
    // IP-literal spellings of the refused loopback address.
    for host in [
        "127.1",
        "0x7f.0.0.1",
        "[::ffff:127.0.0.1]",
        "0177.0.0.1",
        "2130706433",
        "127.0.0.1.",
    ] {
        assert_denied(&s, &up, "/named", &format!("http://{host}:{port}/hello")).await;
    }
    // A name that only looks like the allowed one.
    assert_denied(
        &s,
        &up,
        "/named",
        &format!("http://localhost.evil:{port}/hello"),
    )
    .await;

    // Allowed by address: every spelling reaches it, as that address.
    for host in ["127.0.0.1", "127.1", "0x7f.0.0.1", "[::ffff:127.0.0.1]"] {
        let before = up.hits();
        let f = fetch(&s, "/addr", &format!("http://{host}:{port}/hello")).await;
        assert_eq!(f.status, 200, "{host}: {}", f.body);
        assert_eq!(f.body, "hello from upstream", "{host}");
        assert_eq!(up.hits(), before + 1, "{host}");
    }
    // ... and not a name, even one that resolves to it.
    assert_denied(&s, &up, "/addr", &format!("http://localhost:{port}/hello")).await;
}

/// A name other than `localhost` that this machine resolves to a loopback
/// address: its own host name, as /etc/hosts maps it on Debian and in
/// containers.
async fn name_resolving_to_loopback() -> Option<String> {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    for line in hosts.lines() {
        let mut words = line.split('#').next().unwrap_or("").split_whitespace();
        let Some(Ok(ip)) = words.next().map(str::parse::<std::net::IpAddr>) else {
            continue;
        };
        if !ip.is_loopback() {
            continue;
        }
        for name in words {
            let canonical = wasmhost::capabilities::http::Host::parse(name);
            if canonical.is_ok_and(|h| !h.is_loopback() && h.ip().is_none()) {
                let resolved = tokio::net::lookup_host((name, 80)).await;
                if resolved.is_ok_and(|mut a| a.all(|a| a.ip().is_loopback())) {
                    return Some(name.to_string());
                }
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn globs_and_dns_names_do_not_reach_loopback() {
    let up = Upstream::start().await;
    let port = up.port();
    let mut c = config();
    c.routes = vec![
        fetch_route("/any", ",allow-host=*"),
        fetch_route(
            "/globs",
            ",allow-host=*.localhost,allow-host=127.0.0.*,allow-host=local*",
        ),
        fetch_route("/named", ",allow-host=localhost"),
    ];
    let s = TestServer::start(c).await;
    // Loopback in every spelling: a glob does not reach it.
    for route in ["/any", "/globs"] {
        for host in [
            "127.0.0.1",
            "127.1",
            "0x7f.0.0.1",
            "2130706433",
            "[::ffff:127.0.0.1]",
            "[::1]",
            "0.0.0.0",
            "localhost",
            "a.localhost",
        ] {
            assert_denied(&s, &up, route, &format!("http://{host}:{port}/hello")).await;
        }
    }
    // A name the glob allows whose DNS answer is loopback: refused when
    // the connection is made, nothing sent.
    let name = name_resolving_to_loopback()
        .await
        .expect("a name besides localhost that /etc/hosts maps to loopback (the host name)");
    assert_denied(&s, &up, "/any", &format!("http://{name}:{port}/hello")).await;
    // Named exactly, it is reached.
    let f = fetch(&s, "/named", &format!("http://localhost:{port}/hello")).await;
    assert_eq!(f.status, 200, "{}", f.body);
    assert_eq!(f.body, "hello from upstream");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_a_refused_host_is_refused() {
    let up = Upstream::start().await;
    let port = up.port();
    let mut c = config();
    c.routes = vec![fetch_route("/f", ",allow-host=localhost")];
    let s = TestServer::start(c).await;
    let hop = |to: &str| format!("http://localhost:{port}/redirect?to={to}");
    // A URL as a query value of the upstream's `/redirect?to=`.
    let q = |url: &str| {
        url.replace('&', "%26")
            .replace('?', "%3F")
            .replace('=', "%3D")
            .replace('[', "%5B")
            .replace(']', "%5D")
    };

    // The host does not follow redirects: the guest sees the 302.
    let before = up.hits();
    let f = fetch(
        &s,
        "/f",
        &hop(&q(&format!("http://127.0.0.1:{port}/hello"))),
    )
    .await;
    assert_eq!(f.status, 200, "{}", f.body);
    assert_eq!(f.upstream_status.as_deref(), Some("302"));
    assert_eq!(up.hits(), before + 1);

    // A guest that follows it makes a new request, which is checked: the
    // allowed hop goes out, the refused one does not.
    for target in [
        format!("http://127.0.0.1:{port}/hello"),
        format!("http://0x7f.1:{port}/hello"),
        format!("http://[::ffff:127.0.0.1]:{port}/hello"),
    ] {
        let before = up.hits();
        let res = s
            .client
            .get(s.at("/f"))
            .query(&[("url", hop(&q(&target)).as_str()), ("follow", "5")])
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 502, "{target}");
        assert_eq!(
            res.headers()["x-fetch-error"],
            "HttpRequestDenied",
            "{target}"
        );
        assert_eq!(
            up.hits(),
            before + 1,
            "{target}: only the allowed hop went out"
        );
    }

    // Followed within the list, the redirect works.
    let res = s
        .client
        .get(s.at("/f"))
        .query(&[
            (
                "url",
                hop(&q(&format!("http://localhost:{port}/hello"))).as_str(),
            ),
            ("follow", "5"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-fetch-hops"], "1");
    assert_eq!(res.text().await.expect("body"), "hello from upstream");
}

#[tokio::test(flavor = "multi_thread")]
async fn responses_are_limited_in_size_and_time() {
    let up = Upstream::start().await;
    let port = up.port();
    let mut c = config();
    c.outbound = c
        .outbound
        .max_response_bytes(1000)
        .timeout(Duration::from_secs(1));
    c.routes = vec![fetch_route("/f", ",allow-host=localhost")];
    let s = TestServer::start(c).await;
    let url = |path: &str| format!("http://localhost:{port}{path}");

    // At the limit: whole.
    let f = fetch(&s, "/f", &url("/big?n=1000")).await;
    assert_eq!((f.status, f.body.len()), (200, 1000), "{}", f.body);
    let f = fetch(&s, "/f", &url("/chunked?n=1000")).await;
    assert_eq!((f.status, f.body.len()), (200, 1000), "{}", f.body);
    // Over it: a declared length is refused before the body is read...
    let f = fetch(&s, "/f", &url("/big?n=1001")).await;
    assert_eq!(f.status, 502, "{}", f.body);
    assert_eq!(f.error.as_deref(), Some("HttpResponseBodySize(Some(1000))"));
    // ... and a streamed body ends in an error at the limit.
    let f = fetch(&s, "/f", &url("/chunked?n=5000")).await;
    assert_eq!(f.status, 502, "{}", f.body);
    assert!(
        (f.body.contains("body size") || f.body.contains("BodySize")) && f.body.contains("1000"),
        "{}",
        f.body
    );

    // A response that does not come within the timeout (1 s here).
    let started = Instant::now();
    let f = fetch(&s, "/f", &url("/slow")).await;
    assert_eq!(f.status, 502, "{}", f.body);
    assert_eq!(
        f.error.as_deref(),
        Some("HttpResponseTimeout"),
        "{}",
        f.body
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // A body that stalls after its first bytes.
    let started = Instant::now();
    let f = fetch(&s, "/f", &url("/stall")).await;
    assert_eq!(f.status, 502, "{}", f.body);
    assert!(f.body.to_lowercase().contains("timeout"), "{}", f.body);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(f.hops, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guest_deadline_ends_its_outgoing_requests() {
    let up = Upstream::start().await;
    let port = up.port();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(guest("http-fetch.wasm"), dir.path().join("fetch.wasm")).expect("copy");
    // The manifest's timeout (1.5 s) is shorter than the outbound one (30 s).
    let manifest = dir.path().join("fetch.toml");
    std::fs::write(
        &manifest,
        "[module]\npath = \"fetch.wasm\"\n[limits]\ntimeout = \"1500ms\"\n\
         [capabilities]\nallowed_hosts = [\"localhost\"]\n",
    )
    .expect("write manifest");
    let mut c = config();
    c.routes = vec![WorkerSpec::parse_route(&format!("/f={}", manifest.display())).expect("route")];
    let s = TestServer::start(c).await;
    let started = Instant::now();
    let res = s
        .client
        .get(s.at("/f"))
        .query(&[("url", format!("http://localhost:{port}/slow"))])
        .send()
        .await
        .expect("request");
    // The request ends with the guest, at the guest's deadline: not at the
    // outbound timeout, nor when the upstream answers (20 s).
    let elapsed = started.elapsed();
    assert_eq!(crate::error_of(res).await, (504, "timeout".to_string()));
    assert!(
        elapsed >= Duration::from_millis(1400) && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
    assert_eq!(up.hits(), 1);
}

/// A manifest's `allowed_hosts` is the worker's allow-list; a route's
/// `allow-host=` adds to it; the config file's `allowed_outbound_hosts`
/// is the same as the flag.
#[tokio::test(flavor = "multi_thread")]
async fn manifests_routes_and_config_files_give_the_allow_list() {
    let up = Upstream::start().await;
    let port = up.port();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::copy(guest("http-fetch.wasm"), d.join("fetch.wasm")).expect("copy");
    std::fs::write(
        d.join("fetch.toml"),
        "[module]\npath = \"fetch.wasm\"\n[capabilities]\nallowed_hosts = [\"localhost\"]\n",
    )
    .expect("write manifest");
    std::fs::write(
        d.join("serve.toml"),
        "[[route]]\npath = \"/file\"\nmodule = \"fetch.wasm\"\n\
         allowed_outbound_hosts = [\"127.0.0.1\"]\n\
         [[route]]\npath = \"/file-none\"\nmodule = \"fetch.wasm\"\n\
         allowed_outbound_hosts = []\n",
    )
    .expect("write config");
    let manifest = d.join("fetch.toml").display().to_string();
    let mut c = config();
    c.routes = wasmhost_server::ConfigFile::read(&d.join("serve.toml"))
        .expect("config file")
        .route;
    c.routes.extend([
        WorkerSpec::parse_route(&format!("/manifest={manifest}")).expect("route"),
        WorkerSpec::parse_route(&format!("/added={manifest},allow-host=127.0.0.1")).expect("route"),
    ]);
    let s = TestServer::start(c).await;
    let named = format!("http://localhost:{port}/hello");
    let addr = format!("http://127.1:{port}/hello");

    let f = fetch(&s, "/manifest", &named).await;
    assert_eq!((f.status, f.body.as_str()), (200, "hello from upstream"));
    assert_denied(&s, &up, "/manifest", &addr).await;

    for url in [&named, &addr] {
        let f = fetch(&s, "/added", url).await;
        assert_eq!(
            (f.status, f.body.as_str()),
            (200, "hello from upstream"),
            "{url}"
        );
    }
    assert_denied(&s, &up, "/added", &format!("http://example.com:{port}/")).await;

    let f = fetch(&s, "/file", &addr).await;
    assert_eq!((f.status, f.body.as_str()), (200, "hello from upstream"));
    assert_denied(&s, &up, "/file", &named).await;

    assert_denied(&s, &up, "/file-none", &named).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_allowed_host_stops_the_server() {
    let mut c = config();
    let mut spec = fetch_route("/f", "");
    spec.allowed_outbound_hosts = vec!["https://example.com/".to_string()];
    c.routes = vec![spec];
    let e = TestServer::try_start(c)
        .await
        .expect_err("a URL is not a host");
    assert_eq!(e.code(), wasmhost::ErrorCode::BadInput);
    assert!(e.to_string().contains("https://example.com/"), "{e}");
}

/// Failures of allowed requests are wasi:http error codes too, never traps.
#[tokio::test(flavor = "multi_thread")]
async fn failed_connections_are_error_codes() {
    let up = Upstream::start().await;
    let port = up.port();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut c = config();
    c.routes = vec![fetch_route("/f", ",allow-host=127.0.0.1")];
    let s = TestServer::start(c).await;

    let f = fetch(&s, "/f", &format!("http://127.0.0.1:{closed}/")).await;
    assert_eq!(f.status, 502, "{}", f.body);
    assert_eq!(f.error.as_deref(), Some("ConnectionRefused"), "{}", f.body);
    // TLS to a plain-HTTP server: the handshake fails.
    let f = fetch(&s, "/f", &format!("https://127.0.0.1:{port}/hello")).await;
    assert_eq!(f.status, 502, "{}", f.body);
    assert!(
        f.error.as_deref().is_some_and(|e| e.starts_with("Tls")),
        "{:?}: {}",
        f.error,
        f.body
    );
}
