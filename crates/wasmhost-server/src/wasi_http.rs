//! wasi:http components served one fresh instance per request, like
//! `wasmtime serve`.
//!
//! An [`HttpWorker`] is built once per module: it checks that the module is
//! a component exporting `wasi:http/incoming-handler@0.2.x`
//! ([`is_http_component`]) and pre-links it (a `ProxyPre`). Each
//! [`HttpWorker::handle`] then creates a new wasmtime `Store` with the
//! module's [`Limits`], instantiates the component in it, and calls
//! `incoming-handler.handle` on a spawned tokio task. The response is
//! returned as soon as the guest sets its `response-outparam`; the body
//! streams from the guest after that (the guest may keep writing it after
//! `handle` returned its headers). The store, and with it the instance, is
//! dropped when the guest's call ends.
//!
//! ```no_run
//! # async fn demo(rt: wasmhost::Runtime, module: wasmhost::Module) -> wasmhost::Result<()> {
//! use wasmhost_server::wasi_http::{HttpWorker, is_http_component};
//! assert!(is_http_component(&module));
//! let worker = HttpWorker::new(&rt, &module)?;
//! let req = http::Request::get("/").body(axum::body::Body::empty()).expect("request");
//! let resp = worker.handle(req).await?;
//! println!("{}", resp.status());
//! # Ok(()) }
//! ```
//!
//! **What the guest gets.** The interfaces of the `wasi:http/proxy` world
//! (`wasi:http/types`, `wasi:io`, `wasi:clocks` wall and monotonic,
//! `wasi:random`, `wasi:cli` stdin/stdout/stderr) with real clocks and
//! random numbers, because that world requires them. The rest of WASI
//! preview 2 is linked too, as `wasmtime serve` does, because toolchains
//! import it even for proxies (Rust's std imports `wasi:cli/environment` and
//! `wasi:cli/exit`), but it reaches nothing: no arguments, no environment,
//! no preopened directories, no sockets (every address is refused), stdin
//! empty, stdout and stderr discarded. Of the module's own
//! [`wasmhost::Capabilities`], only its HTTP grant is consulted.
//!
//! **Outgoing HTTP** (`wasi:http/outgoing-handler`) reaches the hosts of
//! the module's [`wasmhost::Http`] grant only (a manifest's
//! `allowed_hosts`, or a route's `allow-host=`), under the server's
//! [`OutboundLimits`] (response size, time); see [`crate::outbound`]. A
//! request to any other host, or any request without a grant, fails with
//! the `HTTP-request-denied` error code.
//!
//! **Limits** come from [`wasmhost::Module::limits`], applied by the
//! library's own store setup ([`Runtime::prepare_async_store`]): memory,
//! tables and instances through its [`Limiter`]; fuel when the runtime
//! meters it; an epoch deadline at which a spinning guest yields to the
//! executor every tick and traps past its timeout. The timeout is also a
//! deadline on the whole guest task (a guest blocked in a host call, or
//! still streaming its body, is dropped), so it covers the guest's entire
//! run, body included. Failures are classified by [`Error::from_wasmtime`]
//! and calls recorded by [`Module::record_call`], as the library's own.
//!
//! **Errors.** A failure before the guest sets a response is
//! [`HttpWorker::handle`]'s error, with the usual codes (`timeout`,
//! `memory_limit`, `out_of_fuel`, `stack_overflow`, `trap`, `exit`); a guest
//! that returns without setting a response, or sets an error code, is a
//! `guest_error`. A failure after the response started ends its body with
//! that error instead of a clean end of stream, so clients see a truncated
//! response rather than a complete one. When the runtime's instance pool
//! has no fiber stack (`PoolConfig::async_stacks`) or instance slot left,
//! the request fails with `overloaded` (503); admission control belongs in
//! front of the worker.
//!
//! **Metrics**: every request is one call of function
//! `wasi:http/incoming-handler` in [`wasmhost::metrics`], recorded when the
//! guest's run ends (after the body, for a streamed one).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use tokio::sync::oneshot;
use wasmhost::limits::Limiter;
use wasmhost::{CallStats, Error, Limits, Module, Result, Runtime};
use wasmtime::Store;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{Error as WasiHttpError, WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::outbound::{Hooks, OutboundLimits, Policy};

/// The `function` label of this worker's metrics.
const FUNCTION: &str = "wasi:http/incoming-handler";

/// Export names of the handler, any 0.2.x version.
const HANDLER_PREFIX: &str = "wasi:http/incoming-handler@0.2.";

/// Packages the worker's linker provides; anything else a component imports
/// is reported as missing.
const PROVIDED: [&str; 7] = [
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:http/",
    "wasi:io/",
    "wasi:random/",
    "wasi:sockets/",
];

/// True when `module` is a component exporting wasi:http/incoming-handler
/// (any 0.2.x).
pub fn is_http_component(module: &Module) -> bool {
    module.wasmtime_component().is_some_and(|component| {
        component
            .component_type()
            .exports(component.engine())
            .any(|(name, _)| name.starts_with(HANDLER_PREFIX))
    })
}

/// Serves one wasi:http proxy component, a fresh instance per request.
/// Cheap to clone; see the [module documentation](self).
#[derive(Clone)]
pub struct HttpWorker {
    inner: Arc<Inner>,
}

struct Inner {
    pre: ProxyPre<GuestState>,
    /// Kept so that the engine's epoch keeps ticking while the worker lives.
    rt: Runtime,
    /// The module: its name, limits, counters and metric handles.
    module: Module,
    limits: Limits,
    /// What the guest's outgoing requests may reach, and their limits.
    outbound: Arc<Policy>,
}

impl std::fmt::Debug for HttpWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpWorker")
            .field("module", &self.inner.module.name())
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl HttpWorker {
    /// Links `module` (a wasi:http proxy component) once. Its outgoing
    /// requests reach the hosts of its HTTP grant under the default
    /// [`OutboundLimits`] (see [`HttpWorker::with_outbound`]).
    ///
    /// Errors: `invalid_module` when it is a core module or a component
    /// without a `wasi:http/incoming-handler@0.2.x` export; `link_error`
    /// listing every import the worker does not provide (anything outside
    /// WASI preview 2 and wasi:http); `bad_input` when the module's limits
    /// ask for fuel on a runtime without fuel metering, or the module was
    /// loaded by another runtime.
    pub fn new(rt: &Runtime, module: &Module) -> Result<Self> {
        Self::with_outbound(rt, module, OutboundLimits::default())
    }

    /// [`HttpWorker::new`] with the server's limits on outgoing requests:
    /// the response size (the smaller of `outbound.max_response_bytes` and
    /// the grant's) and the time each request may take. Errors as
    /// [`HttpWorker::new`].
    pub fn with_outbound(rt: &Runtime, module: &Module, outbound: OutboundLimits) -> Result<Self> {
        let name = module.name();
        let Some(component) = module.wasmtime_component() else {
            return Err(Error::invalid_module(
                format!(
                    "`{name}` is a core module; a wasi:http worker needs a component exporting wasi:http/incoming-handler"
                ),
                None,
            ));
        };
        if !is_http_component(module) {
            return Err(Error::invalid_module(
                format!(
                    "component `{name}` does not export wasi:http/incoming-handler@0.2.x (it is not a wasi:http/proxy component)"
                ),
                None,
            ));
        }
        if !wasmtime::Engine::same(rt.engine(), component.engine()) {
            return Err(Error::bad_input(format!(
                "`{name}` was loaded by another runtime than the one serving it"
            )));
        }
        let limits = module.limits().clone();
        if limits.fuel.is_some() && !rt.config().fuel_metering {
            return Err(Error::bad_input(
                "a fuel limit needs a runtime with fuel metering (RuntimeConfig::fuel_metering, or --fuel on the command line)",
            ));
        }

        let mut linker = Linker::<GuestState>::new(rt.engine());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .map_err(|e| Error::internal(format!("cannot build the wasi:http linker: {e:#}")))?;
        let pre = linker
            .instantiate_pre(component)
            .map_err(|e| Error::unlinked_component(component, &PROVIDED, e))?;
        let pre = ProxyPre::new(pre).map_err(|e| {
            Error::invalid_module(
                format!("component `{name}` is not a usable wasi:http proxy: {e:#}"),
                None,
            )
        })?;
        Ok(HttpWorker {
            inner: Arc::new(Inner {
                pre,
                rt: rt.clone(),
                module: module.clone(),
                limits,
                outbound: Arc::new(Policy::new(module.capabilities().http.clone(), outbound)),
            }),
        })
    }

    /// One request, one fresh instance.
    ///
    /// Returns when the guest sets its response (or fails before that); the
    /// body streams from the guest afterwards. A request without an
    /// authority in its URI or a `Host` header is given `Host: localhost`
    /// (wasi:http requires one).
    pub async fn handle(&self, req: http::Request<Body>) -> Result<http::Response<Body>> {
        let started = Instant::now();
        let inner = &self.inner;
        let deadline = inner
            .limits
            .timeout
            .and_then(|limit| started.checked_add(limit));
        let (store, incoming, outparam, responded, response) = match inner.prepare(req, deadline) {
            Ok(prepared) => prepared,
            Err(e) => {
                let mut stats = CallStats::default();
                stats.duration = started.elapsed();
                inner.module.record_call(FUNCTION, &stats, Some(e.code()));
                return Err(e);
            }
        };
        let (done_tx, done_rx) = oneshot::channel();
        tokio::spawn(run(
            inner.clone(),
            store,
            incoming,
            outparam,
            responded,
            done_tx,
            started,
        ));
        match response.await {
            Ok(Ok(resp)) => Ok(resp.map(|body| {
                Body::new(GuestBody {
                    inner: body,
                    done: Some(done_rx),
                })
            })),
            Ok(Err(code)) => Err(Error::guest(format!(
                "the guest answered with wasi:http error code {code:?}"
            ))),
            // The guest dropped its response-outparam, or the store went
            // away: the task's result says why.
            Err(_) => match done_rx.await {
                Ok(Err(e)) => Err(e),
                Ok(Ok(())) => Err(Error::guest(
                    "the guest returned without setting a response",
                )),
                Err(_) => Err(Error::internal("the wasi:http guest task ended early")),
            },
        }
    }
}

type ResponseResult = std::result::Result<
    hyper::Response<HyperOutgoingBody>,
    wasmtime_wasi_http::p2::bindings::http::types::ErrorCode,
>;

type Prepared = (
    Store<GuestState>,
    wasmtime::component::Resource<wasmtime_wasi_http::p2::types::HostIncomingRequest>,
    wasmtime::component::Resource<wasmtime_wasi_http::p2::types::HostResponseOutparam>,
    Arc<AtomicU8>,
    oneshot::Receiver<ResponseResult>,
);

/// What the guest did with its `response-outparam`.
const NOT_SET: u8 = 0;
const SET_OK: u8 = 1;
const SET_ERR: u8 = 2;

impl Inner {
    /// A fresh store under the module's limits, holding the request and the
    /// response-outparam; its outgoing requests end by `deadline`.
    fn prepare(&self, req: http::Request<Body>, deadline: Option<Instant>) -> Result<Prepared> {
        let mut store = Store::new(
            self.rt.engine(),
            GuestState {
                wasi: WasiCtx::builder()
                    .max_random_size(self.limits.max_random_bytes)
                    .build(),
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
                limiter: Limiter::new(&self.limits),
                hooks: Hooks::new(self.outbound.clone(), deadline),
            },
        );
        // The library's setup: limiter, fuel, and an epoch deadline that
        // yields at every tick and stops the guest past its timeout.
        self.rt
            .prepare_async_store(&mut store, &self.limits, |s| &mut s.limiter)?;
        self.limits.apply_to_host(&mut store, |s| &mut s.table);

        let scheme = if req.uri().scheme() == Some(&http::uri::Scheme::HTTPS) {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let mut req = req.map(|body| body.map_err(incoming_body_error));
        if req.uri().authority().is_none() && !req.headers().contains_key(http::header::HOST) {
            req.headers_mut().insert(
                http::header::HOST,
                http::HeaderValue::from_static("localhost"),
            );
        }
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(scheme, req)
            .map_err(|e| {
                Error::bad_input(format!("cannot pass the request to the guest: {e:#}"))
            })?;
        let (tx, rx) = oneshot::channel();
        let responded = Arc::new(AtomicU8::new(NOT_SET));
        let flag = responded.clone();
        let outparam = store
            .data_mut()
            .http()
            .new_response_outparam_from_callback(move |r: ResponseResult| {
                flag.store(if r.is_ok() { SET_OK } else { SET_ERR }, Ordering::SeqCst);
                let _ = tx.send(r);
            })
            .map_err(|e| Error::internal(format!("cannot create the response-outparam: {e:#}")))?;
        Ok((store, incoming, outparam, responded, rx))
    }
}

/// The guest's run: instantiate, call `handle`, classify, record, report.
/// Bounded by the timeout even when the guest is blocked in a host call.
async fn run(
    inner: Arc<Inner>,
    mut store: Store<GuestState>,
    incoming: wasmtime::component::Resource<wasmtime_wasi_http::p2::types::HostIncomingRequest>,
    outparam: wasmtime::component::Resource<wasmtime_wasi_http::p2::types::HostResponseOutparam>,
    responded: Arc<AtomicU8>,
    done: oneshot::Sender<Result<()>>,
    started: Instant,
) {
    let call = async {
        let proxy = inner.pre.instantiate_async(&mut store).await?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, incoming, outparam)
            .await
    };
    let outcome = match inner.limits.timeout {
        Some(limit) => tokio::time::timeout(limit.saturating_sub(started.elapsed()), call)
            .await
            .map_err(|_elapsed| Error::Timeout { limit }),
        None => Ok(call.await),
    };
    let result = match outcome {
        Err(timeout) => Err(timeout),
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => match Error::from_wasmtime(
            e,
            &store.data().limiter,
            &inner.limits,
            inner.rt.config().max_wasm_stack,
        ) {
            // `exit(0)` ends the guest's run like a return.
            Error::Exit { code: 0, .. } => Ok(()),
            other => Err(other),
        },
    };
    let result = result.and_then(|()| match responded.load(Ordering::SeqCst) {
        SET_OK => Ok(()),
        SET_ERR => Err(Error::guest(
            "the guest answered with a wasi:http error code",
        )),
        _ => Err(Error::guest(
            "the guest returned without setting a response",
        )),
    });
    if let Err(e) = &result {
        tracing::debug!(module = %inner.module.name(), error = %e, "wasi:http guest failed");
    }
    let mut stats = CallStats::default();
    stats.duration = started.elapsed();
    stats.fuel_consumed = inner.rt.config().fuel_metering.then(|| {
        let start = inner.limits.fuel.unwrap_or(u64::MAX);
        start.saturating_sub(store.get_fuel().unwrap_or(0))
    });
    stats.peak_memory_bytes = store.data().limiter.peak_memory();
    inner
        .module
        .record_call(FUNCTION, &stats, result.as_ref().err().map(Error::code));
    // The result goes out before the store is dropped: a body that ends
    // because the store went away then finds the error waiting.
    let _ = done.send(result);
    drop(store);
}

/// A request body error, as wasi:http reports it to the guest.
fn incoming_body_error(e: axum::Error) -> WasiHttpError {
    match e.into_inner().downcast::<hyper::Error>() {
        Ok(e) => WasiHttpError::Hyper(*e),
        Err(e) => WasiHttpError::InternalError(Some(e.to_string())),
    }
}

/// The response body the guest streams, ending with the guest's error if
/// its run failed before the body was finished.
struct GuestBody {
    inner: HyperOutgoingBody,
    done: Option<oneshot::Receiver<Result<()>>>,
}

impl hyper::body::Body for GuestBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                // A finished body ends here while the guest may still be
                // returning; a body cut short by a failed run (the store
                // dropped) finds the run's error already sent.
                match this.done.take().map(|mut done| done.try_recv()) {
                    Some(Ok(Err(e))) => Poll::Ready(Some(Err(e.into()))),
                    _ => Poll::Ready(None),
                }
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            other => other.map(|frame| frame.map(|f| f.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The data of one request's `Store`.
struct GuestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limiter: Limiter,
    hooks: Hooks,
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}
