//! The HTTP floor: an axum 0.8 hello world, no WebAssembly.
//!
//!     native-http 127.0.0.1:8090 [--blocking]
//!
//! `GET /` answers `hello, world\n` (text/plain), on a multi-thread tokio
//! runtime with one worker per core, like `wasmhost serve`. With
//! `--blocking`, `GET /` and `POST /` produce the answer on tokio's blocking
//! pool (`spawn_blocking`), the hop `wasmhost serve` makes for every
//! message of a core-module worker: the cost of that hop with no
//! WebAssembly.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_string())
        .parse()
        .expect("usage: native-http 127.0.0.1:PORT");
    let blocking = std::env::args().any(|a| a == "--blocking");
    let app = if blocking {
        Router::new().route("/", get(hop).post(hop))
    } else {
        Router::new().route("/", get(|| async { "hello, world\n" }))
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("cannot listen");
    eprintln!(
        "native-http: listening on http://{addr}{}",
        if blocking {
            " (answers from the blocking pool)"
        } else {
            ""
        }
    );
    axum::serve(listener, app).await.expect("serve");
}

/// The answer, made on tokio's blocking pool.
async fn hop() -> &'static str {
    tokio::task::spawn_blocking(|| "hello, world\n")
        .await
        .unwrap_or("error\n")
}
