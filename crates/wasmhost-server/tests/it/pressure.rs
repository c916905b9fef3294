//! Staying up under pressure: overload gets 503 and the server recovers,
//! slow and idle connections are closed, request deadlines hold, and a
//! graceful shutdown finishes the request in flight.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{TestServer, config, error_of, route};

/// Iterations of `burn` that keep a slot busy for a noticeable while.
const SLOW: &str = "[400000000]";

#[tokio::test(flavor = "multi_thread")]
async fn overload_gets_503_with_retry_after_and_the_server_recovers() {
    let mut c = config();
    c.max_concurrent = 1;
    c.max_queue = 1;
    c.routes = vec![route("/burn", "burn.wat", ",mode=function,function=burn")];
    let s = TestServer::start(c).await;
    let requests = (0..8).map(|_| s.client.post(s.at("/burn")).body(SLOW).send());
    let responses = futures::future::join_all(requests).await;
    let mut ok = 0;
    let mut refused = 0;
    for res in responses {
        let res = res.expect("response");
        match res.status().as_u16() {
            200 => ok += 1,
            503 => {
                assert_eq!(res.headers()["retry-after"], "1");
                let (_, code) = error_of(res).await;
                assert_eq!(code, "overloaded");
                refused += 1;
            }
            other => panic!("unexpected status {other}: {:?}", res.text().await),
        }
    }
    // One running and one queued get through; the rest are turned away.
    assert!(ok >= 2, "{ok} succeeded");
    assert!(refused >= 1, "none refused");
    assert_eq!(ok + refused, 8);
    let text = s.get_text("/metrics").await;
    assert!(text.contains("wasmhost_requests_rejected_total"), "{text}");
    // Recovered: sequential requests all succeed.
    for _ in 0..3 {
        let res = s
            .client
            .post(s.at("/burn"))
            .body("[1000]")
            .send()
            .await
            .expect("after");
        assert_eq!(res.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_over_the_deadline_get_504() {
    let mut c = config();
    c.request_timeout = Duration::from_millis(300);
    c.max_concurrent = 1;
    c.routes = vec![
        route("/spin", "loop.wat", ",mode=function,function=run"),
        route("/echo", "wasi-echo.wasm", ""),
    ];
    let s = TestServer::start(c).await;
    // The guest has no timeout of its own here: the request deadline ends it.
    let (status, code) = error_of(s.client.post(s.at("/spin")).send().await.expect("spin")).await;
    assert_eq!(status, 504);
    assert!(code == "request_timeout" || code == "timeout", "{code}");
    // A body that trickles in slower than the deadline is cut off too.
    let mut conn = TcpStream::connect(s.addr).await.expect("connect");
    conn.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nabc")
        .await
        .expect("write");
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut reply))
        .await
        .expect("answered within 10 s")
        .expect("read");
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 504"), "{reply}");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_and_slow_connections_are_closed() {
    let mut c = config();
    c.header_timeout = Duration::from_millis(300);
    let s = TestServer::start(c).await;
    // Connected, says nothing.
    let mut idle = TcpStream::connect(s.addr).await.expect("connect");
    // Sends half a request line and stalls.
    let mut slow = TcpStream::connect(s.addr).await.expect("connect");
    slow.write_all(b"GET /healthz HT").await.expect("write");
    for conn in [&mut idle, &mut slow] {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "still open after 10 s");
    }
    // A keep-alive connection idle after a request is closed as well.
    let mut kept = TcpStream::connect(s.addr).await.expect("connect");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), kept.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "keep-alive connection still open after 10 s");
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_shutdown_finishes_the_request_in_flight() {
    let mut c = config();
    c.routes = vec![route("/burn", "burn.wat", ",mode=function,function=burn")];
    let mut s = TestServer::start(c).await;
    let in_flight = tokio::spawn(s.client.post(s.at("/burn")).body(SLOW).send());
    // Wait until it is running.
    loop {
        let ready = s.get_text("/readyz").await;
        if ready.contains("1 running") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    s.shutdown();
    let res = in_flight
        .await
        .expect("task")
        .expect("the in-flight request is answered");
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body, serde_json::json!(400000000));
    s.stopped().await;
    // Nothing listens any more.
    assert!(TcpStream::connect(s.addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_limit_wait_until_one_closes() {
    let mut c = config();
    c.max_connections = 2;
    let s = TestServer::start(c).await;
    let first = TcpStream::connect(s.addr).await.expect("connect");
    let _second = TcpStream::connect(s.addr).await.expect("connect");
    // The third is accepted by the kernel but not served yet.
    let mut third = TcpStream::connect(s.addr).await.expect("connect");
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let early = tokio::time::timeout(Duration::from_millis(500), third.read_to_end(&mut buf)).await;
    assert!(
        early.is_err(),
        "served past the connection limit: {:?}",
        String::from_utf8_lossy(&buf)
    );
    drop(first);
    tokio::time::timeout(Duration::from_secs(10), third.read_to_end(&mut buf))
        .await
        .expect("served once a connection closed")
        .expect("read");
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
}
