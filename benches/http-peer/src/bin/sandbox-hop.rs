//! An experiment, not a benchmark target: how much of a `wasmhost serve`
//! core-module request is the hop to tokio's blocking pool. An axum server
//! (the same stack as `native-http`) whose `POST /` runs a WASI command in
//! a fresh wasmhost sandbox (`Module::process_sync`, as a `--route` worker
//! in mode sync does), on the same pooled runtime `wasmhost serve` builds,
//! either on the blocking pool (what the server does) or inline on the
//! async worker thread.
//!
//!     cargo build --release --manifest-path benches/http-peer/Cargo.toml \
//!         --target-dir target --features wasmhost --bin sandbox-hop
//!     target/release/sandbox-hop 127.0.0.1:8091 benches/serve/hello.wat blocking|inline|in-place
//!     target/release/sandbox-hop 127.0.0.1:8091 guests/wat/numeric.wat blocking|inline|in-place add_i32
//!
//! With a FUNCTION (the last form) each request is `Module::call(FUNCTION,
//! body)` on a module without WASI, as a `mode=function` route does; without
//! one, the module is a WASI command run by `process_sync`. A WASI command
//! cannot run `inline`: wasmtime-wasi's synchronous WASI preview 1 blocks on
//! its own futures (`Handle::block_on`) inside every WASI call, which panics
//! on an executor thread.
//!
//! `inline` blocks an executor thread for the whole guest call: fine for a
//! guest that runs microseconds, not for one that may run until its timeout;
//! `in-place` is `tokio::task::block_in_place` (the worker hands its other
//! tasks to another thread first).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use wasmhost::{
    CallOptions, Capabilities, Module, PoolConfig, Runtime, RuntimeConfig, Source, Wasi,
};
use wasmhost_server::ServerConfig;

#[derive(Clone, Copy, PartialEq)]
enum How {
    Blocking,
    Inline,
    InPlace,
}

struct App {
    module: Module,
    how: How,
    function: Option<String>,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: sandbox-hop ADDR MODULE blocking|inline|in-place [FUNCTION]";
    let addr: SocketAddr = args.get(1).expect(usage).parse().expect(usage);
    let path = args.get(2).expect(usage).clone();
    let how = match args.get(3).map(String::as_str) {
        Some("blocking") => How::Blocking,
        Some("inline") => How::Inline,
        Some("in-place") => How::InPlace,
        _ => panic!("{usage}"),
    };
    // As `wasmhost serve --max-concurrent 256` builds its runtime.
    let mut config = ServerConfig::default();
    config.max_concurrent = 256;
    let rt = Runtime::new(wasmhost_server::runtime_config(
        &config,
        RuntimeConfig::default().pool(Some(PoolConfig::default())),
    ))
    .expect("runtime");
    let function = args.get(4).cloned();
    let caps = match function {
        Some(_) => Capabilities::none(),
        None => Capabilities::none().with_wasi(Wasi::new()),
    };
    let module = rt
        .load(&Source::file(&path))
        .expect("module")
        .with_limits(config.limits.clone())
        .with_capabilities(caps);
    let app = Arc::new(App {
        module,
        how,
        function,
    });
    let router = Router::new().route("/", post(handle)).with_state(app);
    let listener = tokio::net::TcpListener::bind(addr).await.expect("listen");
    eprintln!("sandbox-hop: http://{addr}/ runs {path} ({})", args[3]);
    axum::serve(listener, router).await.expect("serve");
}

async fn handle(State(app): State<Arc<App>>, body: Bytes) -> (StatusCode, Vec<u8>) {
    let module = app.module.clone();
    let function = app.function.clone();
    let call = move || match function {
        Some(f) => module
            .call(&f, &body)
            .map(|out| out.value.bytes().into_owned()),
        None => module
            .process_sync(body, &CallOptions::default())
            .map(|out| out.value),
    };
    let result = match app.how {
        How::Inline => call(),
        How::InPlace => tokio::task::block_in_place(call),
        How::Blocking => match tokio::task::spawn_blocking(call).await {
            Ok(r) => r,
            Err(e) => {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    e.to_string().into_bytes(),
                );
            }
        },
    };
    match result {
        Ok(out) => (StatusCode::OK, out),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string().into_bytes(),
        ),
    }
}
