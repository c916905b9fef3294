//! wasmhost-server: `wasmhost serve`. Modules become network workers
//! reachable over HTTP and raw TCP, beside an HTTP API to manage and call
//! them, Prometheus metrics, health checks and a dashboard.
//!
//! ```no_run
//! # async fn run() -> wasmhost::Result<()> {
//! use wasmhost::{ActorConfig, ActorSystem, Runtime, RuntimeConfig};
//! use wasmhost_server::{Server, ServerConfig, WorkerSpec};
//! let mut config = ServerConfig::default();
//! config.routes.push(WorkerSpec::parse_route("/echo=echo.wasm,mode=sync")?);
//! let rt = Runtime::new(wasmhost_server::runtime_config(&config, RuntimeConfig::default()))?;
//! let store = wasmhost_store::ModuleStore::memory();
//! let actors = ActorSystem::new(ActorConfig::default());
//! let server = Server::bind(config, rt, store, actors).await?;
//! println!("listening on http://{}", server.http_addr());
//! server.run(async { tokio::signal::ctrl_c().await.ok(); }).await
//! # }
//! ```
//!
//! Layout: [`config`] (what to serve), `state` (what handlers share),
//! `api` (the `/api/v1` handlers), `workers` (modes, and what building
//! them needs; modules resolved by `wasmhost_store::Resolver`), `tcp` (raw
//! TCP workers), [`wasi_http`] (wasi:http components), `admission` (slots
//! and queue), `metrics` (Prometheus), `dashboard` (the page at `/`),
//! `cluster` (calls across a cluster's nodes, `--cluster`).
//! `state` uses `workers`, never the other way round.
#![deny(missing_docs)]

mod admission;
mod api;
mod cluster;
pub mod config;
mod dashboard;
mod error;
mod metrics;
pub mod outbound;
mod state;
mod tcp;
pub mod wasi_http;
mod workers;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use wasmhost::{ActorSystem, Error, Result, Runtime, RuntimeConfig};
use wasmhost_store::ModuleStore;

pub use config::{ConfigFile, Mode, ServerConfig, Token, WorkerSpec};
pub use error::{ApiError, ServerCode};
pub use outbound::OutboundLimits;

use crate::error::ApiResult;
use crate::state::AppState;
use crate::workers::Worker;

/// The OpenAPI description served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// `base` adjusted for serving: a pool big enough for every slot, async
/// fiber stacks for wasi:http, the server's limits as defaults, and its
/// compile bounds.
pub fn runtime_config(config: &ServerConfig, base: RuntimeConfig) -> RuntimeConfig {
    let slots = u32::try_from(config.max_concurrent.max(1)).unwrap_or(u32::MAX);
    let pool = base.pool.clone().map(|mut p| {
        p.async_stacks = p.async_stacks.max(slots.saturating_mul(2));
        p.max_instances = p.max_instances.max(slots.saturating_mul(4));
        p
    });
    base.pool(pool)
        .default_limits(config.limits.clone())
        .compile(config.compile.clone())
}

/// A server with its listeners bound, ready to [`Server::run`].
#[derive(Debug)]
pub struct Server {
    state: Arc<AppState>,
    http: TcpListener,
    tcp: Vec<(TcpListener, Arc<Worker>)>,
}

impl Server {
    /// Builds every worker (a bad route fails here, before anything
    /// listens) and binds the HTTP address and the TCP workers' ports.
    /// Refuses a non-loopback address without a token.
    pub async fn bind(
        config: ServerConfig,
        rt: Runtime,
        store: ModuleStore,
        actors: ActorSystem,
    ) -> Result<Server> {
        if !config.addr.ip().is_loopback() && config.token.is_none() {
            return Err(Error::bad_input(format!(
                "refusing to listen on {} without a token: anyone who can reach it could \
                 upload and delete modules. Set one with --token or WASMHOST_TOKEN, or \
                 listen on 127.0.0.1",
                config.addr
            )));
        }
        crate::metrics::handle();
        let mut state = AppState::new(config, rt, store, actors);
        state.build_routes().await?;
        let mut tcp = Vec::new();
        for spec in &state.config.tcp {
            let worker = Worker::build(&state.env, spec).await.map_err(|e| {
                error::with_context(e, &format!("tcp {} ({})", spec.port, spec.module))
            })?;
            if worker.mode() == Mode::Http {
                return Err(Error::bad_input(format!(
                    "tcp {} ({}): a wasi:http component serves HTTP; give it a --route",
                    spec.port, spec.module
                )));
            }
            let addr = SocketAddr::new(state.config.addr.ip(), spec.port);
            tcp.push((listen(addr).await?, Arc::new(worker)));
        }
        let http = listen(state.config.addr).await?;
        let state = Arc::new(state);
        if let Some(cluster) = state.config.cluster.clone() {
            let bound = http.local_addr().unwrap_or(state.config.addr);
            join_cluster(&state, cluster, bound).await?;
        }
        Ok(Server { state, http, tcp })
    }

    /// Where the HTTP listener is bound.
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().unwrap_or(self.state.config.addr)
    }

    /// This node's membership of a cluster, when it joined one.
    pub fn cluster(&self) -> Option<&wasmhost_cluster::Cluster> {
        self.state.cluster.get()
    }

    /// Where each TCP worker is bound, in configuration order.
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.tcp
            .iter()
            .filter_map(|(l, _)| l.local_addr().ok())
            .collect()
    }

    /// The HTTP service, for driving without a socket.
    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    /// Serves until `shutdown` completes, then stops accepting, lets
    /// in-flight requests and TCP messages finish (up to the shutdown grace
    /// period) and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let state = self.state.clone();
        let mut tcp_tasks = tokio::task::JoinSet::new();
        for (listener, worker) in self.tcp {
            tcp_tasks.spawn(tcp::serve(state.clone(), listener, worker, stop_rx.clone()));
        }
        let router = router(state.clone());
        let responder = cluster::start_responder(&state, router.clone());
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(state.config.header_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(state.config.header_timeout));
        let builder = Arc::new(builder);
        let mut conns = tokio::task::JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        // At most max_connections open: past it the listener's backlog waits.
        let open = Arc::new(tokio::sync::Semaphore::new(
            state.config.max_connections.max(1),
        ));
        loop {
            let permit = tokio::select! {
                permit = open.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            tokio::select! {
                accepted = self.http.accept() => {
                    let (stream, _) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors and the like: wait, go on.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let conn = connection(
                        builder.clone(),
                        router.clone(),
                        stream,
                        state.config.header_timeout,
                        stop_rx.clone(),
                    );
                    conns.spawn(async move {
                        conn.await;
                        drop(permit);
                    });
                }
                // Reap finished connections so the set stays small.
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                () = &mut shutdown => break,
            }
        }
        state.draining.store(true, Ordering::Release);
        // Out of the member list and the queue groups at once: the others
        // stop sending here (actors' leases go once their last messages
        // are done, below).
        if let Some(responder) = responder {
            responder.abort();
        }
        if let Some(cluster) = state.cluster.get() {
            cluster.leave().await;
        }
        drop(self.http);
        let _ = stop_tx.send(true);
        let grace = state.config.shutdown_grace;
        let drained = async {
            while conns.join_next().await.is_some() {}
            while tcp_tasks.join_next().await.is_some() {}
        };
        if tokio::time::timeout(grace, drained).await.is_err() {
            tracing::warn!(
                "shutdown: requests still running after {}s were dropped",
                grace.as_secs()
            );
        }
        // Actors whose policy saves at shutdown (on-passivation) are saved
        // now; under every-message their state is already committed.
        match state.actors.checkpoint_async().await {
            Ok(0) => {}
            Ok(n) => tracing::info!("shutdown: saved the state of {n} actor(s)"),
            Err(e) => tracing::error!("shutdown: cannot save the actors' state: {e}"),
        }
        // Saved: the actors are free for the other nodes to take at once.
        if let Some(cluster) = state.cluster.get() {
            cluster.release_leases().await;
        }
        Ok(())
    }
}

/// Makes this node a member of its cluster, listening at `bound`: its
/// record carries the advertised address and, at every heartbeat, the
/// server's load. Actors whose lease another node took are dropped here.
async fn join_cluster(
    state: &Arc<AppState>,
    cluster: wasmhost_cluster::Cluster,
    bound: SocketAddr,
) -> Result<()> {
    let me = wasmhost_cluster::NodeRecord {
        id: cluster.node_id().to_string(),
        addr: state
            .config
            .advertise
            .clone()
            .unwrap_or_else(|| format!("http://{bound}")),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        heartbeat_at: String::new(),
        load: wasmhost_cluster::NodeLoad::default(),
    };
    let weak = Arc::downgrade(state);
    let load = move || weak.upgrade().map(|s| s.load()).unwrap_or_default();
    cluster.join_as(me, load).await?;
    let leases = cluster.leases().clone();
    let actors = state.actors.clone();
    tokio::spawn(async move {
        while let Some(id) = leases.lost().await {
            actors.release(&id);
        }
    });
    let _ = state.cluster.set(cluster);
    Ok(())
}

/// Requests of one connection in flight, and when it was last busy.
#[derive(Debug)]
struct Activity {
    in_flight: std::sync::atomic::AtomicUsize,
    last: std::sync::Mutex<tokio::time::Instant>,
}

struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.last.lock().unwrap_or_else(|p| p.into_inner()) = tokio::time::Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves one HTTP connection until the client closes it, it stays idle
/// (no request in flight) for `idle`, or the server shuts down; the last
/// two close it gracefully, after the requests in flight are answered.
async fn connection(
    builder: Arc<hyper_util::server::conn::auto::Builder<TokioExecutor>>,
    router: Router,
    stream: tokio::net::TcpStream,
    idle: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use tower::Service as _;
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity {
        in_flight: std::sync::atomic::AtomicUsize::new(0),
        last: std::sync::Mutex::new(tokio::time::Instant::now()),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
            activity.in_flight.fetch_add(1, Ordering::AcqRel);
            let busy = Busy(activity.clone());
            let mut router = router.clone();
            async move {
                let res = router.call(req.map(Body::new)).await;
                drop(busy);
                res
            }
        })
    };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    loop {
        // While a request runs the connection is not idle: look again later.
        let deadline = if activity.in_flight.load(Ordering::Acquire) > 0 {
            tokio::time::Instant::now() + idle
        } else {
            *activity.last.lock().unwrap_or_else(|p| p.into_inner()) + idle
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(deadline), if !closing => {
                let quiet = activity.in_flight.load(Ordering::Acquire) == 0;
                let last = *activity.last.lock().unwrap_or_else(|p| p.into_inner());
                if quiet && last.elapsed() >= idle {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            () = tcp::stopped(&mut stop), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

async fn listen(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::bad_input(format!("cannot listen on {addr}: {e}")))
}

/// The whole HTTP service over `state`.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let mut r = Router::new()
        .route("/api/v1/modules", get(api::list_modules).post(api::upload))
        .route(
            "/api/v1/modules/{reference}",
            get(api::inspect).delete(api::delete),
        )
        .route("/api/v1/modules/{reference}/wasm", get(api::wasm))
        .route("/api/v1/modules/{reference}/tags", post(api::tag))
        .route(
            "/api/v1/modules/{reference}/call/{function}",
            post(api::call).layer(middleware::from_fn_with_state(
                state.clone(),
                cluster::place,
            )),
        )
        .route(
            "/api/v1/modules/{reference}/process",
            post(api::process).layer(middleware::from_fn_with_state(
                state.clone(),
                cluster::place,
            )),
        )
        .route("/api/v1/actors", get(api::actors))
        .route(
            "/api/v1/actors/{id}",
            post(api::send)
                .layer(middleware::from_fn_with_state(
                    (state.clone(), cluster::ActorTarget::Api),
                    cluster::place_actor,
                ))
                .delete(api::remove_actor),
        )
        .route("/api/v1/cache", get(api::cache))
        .route("/api/v1/cluster", get(api::cluster))
        .route("/api", any(no_route))
        .route("/api/{*rest}", any(no_route))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    let mut root_worker = None;
    for (path, worker) in &state.routes {
        if path == "/" {
            root_worker = Some(worker.clone());
            continue;
        }
        let handler = {
            let worker = worker.clone();
            let prefix = path.clone();
            move |State(state): State<Arc<AppState>>, req: Request| {
                let worker = worker.clone();
                let prefix = prefix.clone();
                async move { serve_worker(state, worker, &prefix, req).await }
            }
        };
        let placed = |method_router: axum::routing::MethodRouter<Arc<AppState>>| {
            // In a cluster, a stateless worker's requests may run on the
            // nodes serving the same module at the same path; an actor
            // worker's messages run on their actor's owner.
            match (state.cluster.get(), worker.stateless_digest()) {
                (Some(c), Some(digest)) => method_router.layer(middleware::from_fn_with_state(
                    (state.clone(), cluster::route_subject(c, path, &digest)),
                    cluster::place_route,
                )),
                (Some(_), None) if worker.mode() == Mode::Actor => {
                    let target = cluster::ActorTarget::Route {
                        prefix: path.clone(),
                        worker: worker.clone(),
                    };
                    method_router.layer(middleware::from_fn_with_state(
                        (state.clone(), target),
                        cluster::place_actor,
                    ))
                }
                _ => method_router,
            }
        };
        r = r
            .route(path, placed(any(handler.clone())))
            .route(&format!("{path}/{{*rest}}"), placed(any(handler)));
    }
    r = r.merge(dashboard::routes(root_worker.is_none()));
    for (path, dir) in &state.config.statics {
        r = r.nest(path, static_dir(dir));
    }
    r = match root_worker {
        Some(worker) => r.fallback(move |State(state): State<Arc<AppState>>, req: Request| {
            let worker = worker.clone();
            async move {
                let mut res = serve_worker(state, worker, "", req).await;
                res.extensions_mut().insert(crate::metrics::RouteLabel("/"));
                res
            }
        }),
        None => r.fallback(no_route),
    };
    let r = r.method_not_allowed_fallback(wrong_method);
    let r = r
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(middleware::from_fn(crate::metrics::track));
    let r = match cors(&state.config.cors) {
        Some(layer) => r.layer(layer),
        None => r,
    };
    r.with_state(state)
}

/// A `--static` directory: tower-http's `ServeDir`, which decodes the path
/// and refuses `..`, behind a check that the file it would serve, symlinks
/// followed, is inside the directory. A symlink that leads out of it (to
/// `/etc`, say) is answered 404, as a missing file is; so is a path whose
/// decoding holds a NUL byte, which no file name can (`ServeDir` would
/// answer 500 for the failed open).
fn static_dir(dir: &std::path::Path) -> Router<Arc<AppState>> {
    let root = Arc::new(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()));
    Router::new()
        .fallback_service(tower_http::services::ServeDir::new(dir))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            let root = root.clone();
            async move {
                if escapes(&root, req.uri().path()).await {
                    return StatusCode::NOT_FOUND.into_response();
                }
                next.run(req).await
            }
        }))
}

/// Whether the request path below a static directory `root` (canonical)
/// names, once percent-decoded and its symlinks followed, something outside
/// it, or cannot name a file at all (a NUL byte, a name too long). Paths
/// `ServeDir` refuses anyway (`..`, undecodable) and missing files are
/// left to it.
async fn escapes(root: &std::path::Path, path: &str) -> bool {
    let Ok(decoded) = percent_encoding::percent_decode_str(path).decode_utf8() else {
        return false;
    };
    if decoded.contains('\0') {
        return true;
    }
    let mut candidate = root.to_path_buf();
    for part in decoded.split('/') {
        match part {
            "" | "." => {}
            ".." => return false,
            part => candidate.push(part),
        }
    }
    let real = match tokio::fs::canonicalize(&candidate).await {
        Ok(real) => real,
        // Missing: left to ServeDir (404). Any other failure (a name longer
        // than the file system allows, a loop of links) names no file to
        // serve, and ServeDir would answer it 500.
        Err(e) => return e.kind() != std::io::ErrorKind::NotFound,
    };
    if !real.starts_with(root) {
        return true;
    }
    // A directory is served as its index.html, which may itself be a link.
    if !tokio::fs::metadata(&real).await.is_ok_and(|m| m.is_dir()) {
        return false;
    }
    tokio::fs::canonicalize(real.join("index.html"))
        .await
        .is_ok_and(|index| !index.starts_with(root))
}

fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, Any, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods(Any)
            .allow_headers(Any)
            .expose_headers(Any),
    )
}

/// Every request gets `--request-timeout`, queueing included.
async fn deadline(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let limit = state.config.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::server(
            ServerCode::RequestTimeout,
            format!(
                "the request did not finish within the server's {} ms limit",
                limit.as_millis()
            ),
        )
        .into_response(),
    }
}

/// A request to a worker route: a slot, then the worker.
async fn serve_worker(
    state: Arc<AppState>,
    worker: Arc<Worker>,
    prefix: &str,
    req: Request,
) -> Response {
    let result: ApiResult<Response> = async {
        if let Worker::Http(http) = &*worker {
            return serve_http_component(&state, http, prefix, req).await;
        }
        // A message worker runs the guest: a GET (a crawler, a prefetch)
        // must not.
        if req.method() != http::Method::POST && req.method() != http::Method::PUT {
            return Err(ApiError::server(
                ServerCode::MethodNotAllowed,
                format!(
                    "{} {}: a {} worker takes its message as the body of a POST (or PUT)",
                    req.method(),
                    req.uri().path(),
                    worker.mode().as_str()
                ),
            ));
        }
        let actor = req
            .uri()
            .path()
            .strip_prefix(prefix)
            .map(|rest| rest.trim_start_matches('/').to_string());
        let (parts, body) = req.into_parts();
        // The slot first: only running requests hold a body in memory.
        let _slot = state.admission.enter().await?;
        let body = api::read_body(&state, &parts.headers, body).await?;
        let key = api::idempotency_key(&parts.headers)?;
        let reply = worker.message(actor.as_deref(), key, body).await?;
        Ok(api::reply_response(reply))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// A request to a wasi:http worker. Mounted at a prefix, the component
/// sees the path below it (`/hello/x` → `/x` for a route at `/hello`), with
/// the prefix in `x-forwarded-prefix`.
async fn serve_http_component(
    state: &AppState,
    http: &wasi_http::HttpWorker,
    prefix: &str,
    mut req: Request,
) -> ApiResult<Response> {
    if !prefix.is_empty() {
        let path = req.uri().path();
        let rest = match path.strip_prefix(prefix) {
            Some("") | None => "/",
            Some(rest) => rest,
        };
        let target = match req.uri().query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest.to_string(),
        };
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = Some(
            target
                .parse()
                .map_err(|e| ApiError::from(Error::bad_input(format!("bad request path: {e}"))))?,
        );
        *req.uri_mut() = http::Uri::from_parts(parts)
            .map_err(|e| ApiError::from(Error::bad_input(format!("bad request path: {e}"))))?;
        if let Ok(v) = HeaderValue::from_str(prefix) {
            req.headers_mut().insert("x-forwarded-prefix", v);
        }
    }
    let _slot = state.admission.enter().await?;
    let limit = state.config.max_body_bytes;
    api::check_declared_length(req.headers(), limit)?;
    // A body without a length is cut off at the limit (the guest sees a
    // stream error).
    let req = req.map(|b| Body::new(http_body_util::Limited::new(b, limit)));
    Ok(http.handle(req).await?)
}

async fn no_route(req: Request) -> ApiError {
    ApiError::server(
        ServerCode::RouteNotFound,
        format!(
            "no endpoint or worker at {} {}",
            req.method(),
            req.uri().path()
        ),
    )
}

async fn wrong_method(req: Request) -> ApiError {
    ApiError::server(
        ServerCode::MethodNotAllowed,
        format!(
            "{} is not an operation of {} (see /openapi.json)",
            req.method(),
            req.uri().path()
        ),
    )
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn metrics_page() -> Response {
    match crate::metrics::handle() {
        Some(h) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            h.render(),
        )
            .into_response(),
        None => ApiError::from(Error::internal(
            "another metrics recorder was installed in this process before the server's",
        ))
        .into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        format!(
            "ready: {} running, {} waiting\n",
            state.admission.running(),
            state.admission.waiting()
        )
        .into_response()
    }
}
