//! The wasi:http worker driven directly: guests/rust/http-hello, one fresh
//! instance per request.

use std::time::Duration;

use axum::body::Body;
use http_body_util::BodyExt;
use wasmhost::{ErrorCode, Limits, Module, PoolConfig, Runtime, RuntimeConfig, Source};
use wasmhost_server::wasi_http::{HttpWorker, is_http_component};

use crate::guest;

/// One runtime for the whole binary: the guest is compiled once.
fn runtime() -> Runtime {
    static RT: std::sync::OnceLock<Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        let mut pool = PoolConfig::default();
        pool.async_stacks = 16;
        Runtime::new(RuntimeConfig::default().pool(Some(pool))).expect("runtime")
    })
    .clone()
}

fn load(rt: &Runtime, name: &str) -> Module {
    rt.load(&Source::file(guest(name))).expect("load guest")
}

fn hello(rt: &Runtime, limits: Limits) -> HttpWorker {
    let module = load(rt, "http-hello.wasm").with_limits(limits);
    assert!(is_http_component(&module));
    HttpWorker::new(rt, &module).expect("worker")
}

fn get(path: &str) -> http::Request<Body> {
    http::Request::get(path)
        .body(Body::empty())
        .expect("request")
}

async fn body(resp: http::Response<Body>) -> Vec<u8> {
    resp.into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn hello_world() {
    let rt = runtime();
    let worker = hello(&rt, Limits::default());
    let resp = worker.handle(get("/")).await.expect("handle");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/plain");
    assert_eq!(body(resp).await, b"hello, world\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn echo_streams_a_large_body_both_ways() {
    let rt = runtime();
    let worker = hello(&rt, Limits::default());
    let data: Vec<u8> = (0..1usize << 20).map(|i| (i % 251) as u8).collect();
    let req = http::Request::post("/echo")
        .header("host", "example.test")
        .body(Body::from(data.clone()))
        .expect("request");
    let resp = worker.handle(req).await.expect("handle");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-echo-len"], (1usize << 20).to_string());
    let echoed = body(resp).await;
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "echoed body differs");
}

#[tokio::test(flavor = "multi_thread")]
async fn request_headers_reach_the_guest() {
    let rt = runtime();
    let worker = hello(&rt, Limits::default());
    let req = http::Request::get("/headers")
        .header("x-test", "sesame")
        .body(Body::empty())
        .expect("request");
    let resp = worker.handle(req).await.expect("handle");
    assert_eq!(body(resp).await, b"sesame");
}

#[tokio::test(flavor = "multi_thread")]
async fn guest_sets_the_status() {
    let rt = runtime();
    let worker = hello(&rt, Limits::default());
    let resp = worker.handle(get("/status/418")).await.expect("handle");
    assert_eq!(resp.status(), 418);
    let resp = worker.handle(get("/nope")).await.expect("handle");
    assert_eq!(resp.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn spinning_guest_times_out_and_the_next_request_works() {
    let rt = runtime();
    let worker = hello(
        &rt,
        Limits::default().timeout(Some(Duration::from_millis(200))),
    );
    let started = std::time::Instant::now();
    let err = worker.handle(get("/spin")).await.expect_err("spins");
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let resp = worker.handle(get("/")).await.expect("next request");
    assert_eq!(body(resp).await, b"hello, world\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn guest_spinning_after_its_headers_is_killed_and_the_body_fails() {
    let rt = runtime();
    let worker = hello(
        &rt,
        Limits::default().timeout(Some(Duration::from_millis(200))),
    );
    let started = std::time::Instant::now();
    let resp = worker.handle(get("/spin-body")).await.expect("headers");
    assert_eq!(resp.status(), 200);
    let err = resp
        .into_body()
        .collect()
        .await
        .expect_err("the body must not end cleanly");
    assert!(err.to_string().contains("timeout"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn guest_blocked_on_a_request_body_that_never_ends_times_out() {
    let rt = runtime();
    let worker = hello(
        &rt,
        Limits::default().timeout(Some(Duration::from_millis(200))),
    );
    let never = futures::stream::pending::<Result<bytes::Bytes, std::io::Error>>();
    let req = http::Request::post("/echo")
        .body(Body::from_stream(never))
        .expect("request");
    let started = std::time::Instant::now();
    let err = worker.handle(req).await.expect_err("blocked");
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_fiber_pool_is_reported_not_a_trap() {
    let mut pool = PoolConfig::default();
    pool.async_stacks = 1;
    let rt = Runtime::new(RuntimeConfig::default().pool(Some(pool))).expect("runtime");
    let worker = hello(&rt, Limits::default().timeout(Some(Duration::from_secs(2))));
    // The first guest holds the only fiber stack, blocked on its body.
    let never = futures::stream::pending::<Result<bytes::Bytes, std::io::Error>>();
    let blocked = http::Request::post("/echo")
        .body(Body::from_stream(never))
        .expect("request");
    let first = tokio::spawn({
        let worker = worker.clone();
        async move { worker.handle(blocked).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let err = worker.handle(get("/")).await.expect_err("no stack left");
    assert_eq!(err.code(), ErrorCode::Overloaded, "{err}");
    assert!(err.to_string().contains("fibers"), "{err}");
    let first = first.await.expect("task").expect_err("blocked");
    assert_eq!(first.code(), ErrorCode::Timeout, "{first}");
    let resp = worker.handle(get("/")).await.expect("stack free again");
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn growing_guest_hits_the_memory_limit() {
    let rt = runtime();
    let worker = hello(&rt, Limits::default().max_memory_bytes(16 << 20));
    let err = worker.handle(get("/grow")).await.expect_err("grows");
    assert_eq!(err.code(), ErrorCode::MemoryLimit, "{err}");
    let resp = worker.handle(get("/")).await.expect("next request");
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_http_components_are_served() {
    let rt = runtime();
    for name in ["wasi-echo.wasm", "wit-component.wasm"] {
        let module = load(&rt, name);
        assert!(!is_http_component(&module), "{name}");
        let err = HttpWorker::new(&rt, &module).expect_err(name);
        assert_eq!(err.code(), ErrorCode::InvalidModule, "{name}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_requests() {
    let rt = runtime();
    let worker = hello(&rt, Limits::default());
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let worker = worker.clone();
            tokio::spawn(async move {
                let req = http::Request::get("/headers")
                    .header("x-test", format!("request {i}"))
                    .body(Body::empty())
                    .expect("request");
                let resp = worker.handle(req).await.expect("handle");
                assert_eq!(resp.status(), 200);
                assert_eq!(body(resp).await, format!("request {i}").into_bytes());
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
}
