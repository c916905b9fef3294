//! Prometheus metrics: one process-wide recorder (the `metrics` facade has
//! one global recorder) rendering the library's `wasm_*` series, the
//! server's `wasmhost_*` admission gauges and the HTTP series recorded here.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `http_requests_total` | counter | `method`, `route`, `status` |
//! | `http_request_duration_seconds` | histogram | `method`, `route` |
//!
//! `route` is the matched route template (`/api/v1/modules/{reference}`),
//! or `unmatched`, so label values stay few whatever paths clients send.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Counter: HTTP requests answered.
pub const HTTP_REQUESTS: &str = "http_requests_total";
/// Histogram: HTTP request latency in seconds.
pub const HTTP_DURATION: &str = "http_request_duration_seconds";

/// Histogram buckets for every `*_seconds` series: 50 µs to 30 s.
const BUCKETS: [f64; 17] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0, 30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder on first use.
/// `None` when another recorder was installed first (an embedder's own):
/// `/metrics` then says so instead of serving an empty page.
pub fn handle() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            // Histograms are drained into their buckets by upkeep.
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("wasmhost-metrics".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .ok()?;
            Some(handle)
        })
        .clone()
}

/// The `route` label of a response the router's fallback produced (the
/// worker mounted at `/`), which has no matched path of its own.
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

/// Middleware counting and timing every request by its route template.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let res = next.run(req).await;
    let route = matched
        .or_else(|| res.extensions().get::<RouteLabel>().map(|l| l.0.to_owned()))
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    res
}
