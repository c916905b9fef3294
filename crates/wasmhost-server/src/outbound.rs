//! Outgoing HTTP of wasi:http workers (`wasi:http/outgoing-handler`), to
//! the hosts of an allow-list only, as Spin's `allowed_outbound_hosts`.
//!
//! A worker's allow-list is its module's [`wasmhost::Http`] grant (a
//! manifest's `allowed_hosts` and the route's `allow-host=` options),
//! matched by the library's one matcher
//! ([`Http::allows_host`]): the request's host is taken in canonical form
//! ([`Host::parse`]), so `127.1`, `0x7f.0.0.1` or `[::ffff:127.0.0.1]` are
//! the address `127.0.0.1`, allowed exactly when that address is. The
//! connection then goes to that address (an IP literal) or to the
//! addresses the canonical name resolves to; the spelling the guest gave is
//! never handed to a resolver. A loopback destination is reached only
//! when a pattern names it exactly, never through a glob: that covers a
//! name (allowed by a glob) whose DNS answer is a loopback address, which
//! is refused when the connection is made. Nothing is sent for a request
//! the list does not allow: the guest gets the wasi:http error code
//! `HTTP-request-denied`
//! (`ErrorCode::HttpRequestDenied`), not a trap. Without a grant every
//! request is denied.
//!
//! **Redirects are not followed** (wasi:http leaves that to the guest): a
//! 3xx response is the guest's, and the request it then makes to the
//! `Location` is checked like any other.
//!
//! **Limits** ([`OutboundLimits`]). Each request has a deadline: the
//! outbound timeout (default 30 s) after it starts, and never later than
//! the guest's own deadline. The guest's `request-options` timeouts
//! (connect, first byte, between bytes) apply when it sets them, each
//! capped by that deadline; a timeout is `connection-timeout` (connect, TLS
//! handshake), `connection-read-timeout` (first byte, between bytes) or
//! `HTTP-response-timeout` (the deadline). A response whose
//! `Content-Length` is over the size limit (default 16 MiB, or the grant's
//! smaller `max_response_bytes`) fails with `HTTP-response-body-size(limit)`
//! before its body is read; a body that passes the limit while streaming
//! ends with that error. At most [`MAX_IN_FLIGHT`] outgoing connections of
//! one guest are open at once; beyond that, `connection-limit-reached`.
//!
//! `https` uses rustls with the webpki (Mozilla) roots, HTTP/1.1 only.
//!
//! Outcomes are counted in `wasmhost_outbound_requests_total{result}`
//! (`ok`, `denied`, `error`).
//!
//! ```
//! use std::time::Duration;
//! use wasmhost_server::outbound::OutboundLimits;
//! let limits = OutboundLimits::default();
//! assert_eq!(limits.max_response_bytes, 16 << 20);
//! assert_eq!(limits.timeout, Duration::from_secs(30));
//! ```

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use wasmhost::Http;
use wasmhost::capabilities::http::{Host, canonical_ip};
use wasmtime_wasi_http::{Error as WasiHttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// Default most bytes of one response body: 16 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 << 20;

/// Default time one outgoing request may take, connect to last byte: 30 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Most outgoing connections one guest run holds open at once.
pub const MAX_IN_FLIGHT: usize = 32;

/// Most addresses of a resolved name tried, in the resolver's order.
const MAX_ADDRESSES: usize = 8;

/// The server's limits on every outgoing request of a wasi:http guest
/// (`--outbound-max-response`, `--outbound-timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboundLimits {
    /// Most bytes of a response body; a grant's smaller
    /// `max_response_bytes` wins.
    pub max_response_bytes: u64,
    /// Longest one request may take, from its start to its body's end;
    /// never past the guest's own deadline.
    pub timeout: Duration,
}

impl Default for OutboundLimits {
    fn default() -> Self {
        OutboundLimits {
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl OutboundLimits {
    /// Sets [`OutboundLimits::max_response_bytes`].
    pub fn max_response_bytes(mut self, bytes: u64) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Sets [`OutboundLimits::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// What one worker's guests may send: built once per worker.
#[derive(Debug)]
pub(crate) struct Policy {
    /// The allow-list; `None` denies everything.
    hosts: Option<Arc<Http>>,
    max_response_bytes: u64,
    timeout: Duration,
}

impl Policy {
    /// The policy of a module granted `hosts`, under the server's `limits`.
    pub(crate) fn new(hosts: Option<Arc<Http>>, limits: OutboundLimits) -> Self {
        let max_response_bytes = hosts.as_ref().map_or(limits.max_response_bytes, |h| {
            h.max_response_bytes.min(limits.max_response_bytes)
        });
        Policy {
            hosts,
            max_response_bytes,
            timeout: limits.timeout,
        }
    }
}

/// The wasi:http hooks of one guest run: its worker's policy, its
/// deadline, and its count of open connections.
pub(crate) struct Hooks {
    policy: Arc<Policy>,
    deadline: Option<Instant>,
    in_flight: Arc<AtomicUsize>,
}

impl Hooks {
    /// Hooks for a run that must end by `deadline`.
    pub(crate) fn new(policy: Arc<Policy>, deadline: Option<std::time::Instant>) -> Self {
        Hooks {
            policy,
            deadline: deadline.map(Instant::from_std),
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// What [`WasiHttpHooks::send_request`] returns.
type SendRequestFuture = Box<dyn Future<Output = wasmtime_wasi_http::Result<Sent>> + Send>;

/// A response and the future driving its connection.
type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
);

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendRequestFuture {
        let policy = self.policy.clone();
        let deadline = self.deadline;
        let in_flight = self.in_flight.clone();
        Box::new(async move {
            let result = send(&policy, deadline, in_flight, request, options).await;
            let outcome = match &result {
                Ok(_) => "ok",
                Err(WasiHttpError::HttpRequestDenied) => "denied",
                Err(_) => "error",
            };
            metrics::counter!("wasmhost_outbound_requests_total", "result" => outcome).increment(1);
            result
        })
    }
}

/// A connection slot of one guest run, given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(count: Arc<AtomicUsize>) -> Option<Slot> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_IN_FLIGHT).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(count))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether `policy` lets a request to `uri` go out, and where to: the
/// canonical host and the port.
fn destination(policy: &Policy, uri: &http::Uri) -> wasmtime_wasi_http::Result<(Host, u16)> {
    let authority = uri
        .authority()
        .ok_or(WasiHttpError::HttpRequestUriInvalid)?;
    let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let host = Host::parse(authority.host()).map_err(|_| WasiHttpError::HttpRequestUriInvalid)?;
    let allowed = policy.hosts.as_ref().is_some_and(|h| h.allows_host(&host));
    if !allowed {
        tracing::debug!(host = %authority.host(), canonical = %host, "outgoing request denied");
        return Err(WasiHttpError::HttpRequestDenied);
    }
    Ok((host, port))
}

/// The earlier of `deadline` and `timeout` from now (`None`: no phase
/// timeout).
fn phase(deadline: Instant, timeout: Option<Duration>) -> Instant {
    match timeout.and_then(|t| Instant::now().checked_add(t)) {
        Some(t) => t.min(deadline),
        None => deadline,
    }
}

/// Sends one request the policy allows, under the limits.
async fn send(
    policy: &Policy,
    guest_deadline: Option<Instant>,
    in_flight: Arc<AtomicUsize>,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> wasmtime_wasi_http::Result<Sent> {
    let (host, port) = destination(policy, request.uri())?;
    let https = request.uri().scheme() == Some(&http::uri::Scheme::HTTPS);
    let slot = Slot::take(in_flight).ok_or(WasiHttpError::ConnectionLimitReached)?;
    let now = Instant::now();
    let own = now.checked_add(policy.timeout).unwrap_or(now);
    let deadline = guest_deadline.map_or(own, |g| g.min(own));
    let options = options.unwrap_or_default();
    let connect_by = phase(deadline, options.connect_timeout);

    let addrs: Vec<SocketAddr> = match &host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        Host::Name(name) => {
            let found =
                tokio::time::timeout_at(connect_by, tokio::net::lookup_host((name.as_str(), port)))
                    .await
                    .map_err(|_| WasiHttpError::DnsTimeout)?
                    .map_err(|e| WasiHttpError::DnsError {
                        rcode: Some(e.to_string()),
                        info_code: None,
                    })?;
            let found: Vec<SocketAddr> = found
                .map(|a| SocketAddr::new(canonical_ip(a.ip()), a.port()))
                .take(MAX_ADDRESSES)
                .collect();
            // A name allowed by a glob does not reach loopback, whatever
            // its DNS answer says.
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| {
                    policy
                        .hosts
                        .as_ref()
                        .is_some_and(|h| h.allows_address(&host, a.ip()))
                })
                .collect();
            if kept.is_empty() {
                tracing::debug!(host = %name, "outgoing request denied: the name resolves to loopback");
                return Err(WasiHttpError::HttpRequestDenied);
            }
            kept
        }
    };
    let tcp = connect(&addrs, connect_by).await?;
    let io: Box<dyn Io> = if https {
        let name = match &host {
            Host::Ip(ip) => rustls::pki_types::ServerName::IpAddress((*ip).into()),
            Host::Name(name) => rustls::pki_types::ServerName::try_from(name.clone())
                .map_err(|_| WasiHttpError::HttpRequestUriInvalid)?,
        };
        let tls = tokio::time::timeout_at(connect_by, tls()?.connect(name, tcp))
            .await
            .map_err(|_| WasiHttpError::ConnectionTimeout)?
            .map_err(WasiHttpError::Tls)?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = tokio::time::timeout_at(
        connect_by,
        hyper::client::conn::http1::handshake::<_, WasiBody>(TokioIo::new(io)),
    )
    .await
    .map_err(|_| WasiHttpError::ConnectionTimeout)??;

    // On the wire, the target is the path (origin form); the authority
    // travels in the `Host` header wasi:http set.
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse::<http::Uri>()
        .map_err(|_| WasiHttpError::HttpRequestUriInvalid)?;
    *request.uri_mut() = target;

    // Wait for the response head while driving the connection.
    let first_byte_by = phase(deadline, options.first_byte_timeout);
    let mut conn = Box::pin(conn);
    let mut conn_done = false;
    let response = {
        let send = sender.send_request(request);
        tokio::pin!(send);
        let timer = tokio::time::sleep_until(first_byte_by);
        tokio::pin!(timer);
        loop {
            tokio::select! {
                r = &mut send => break r?,
                c = &mut conn, if !conn_done => {
                    conn_done = true;
                    c?;
                }
                () = &mut timer => return Err(if first_byte_by >= deadline {
                    WasiHttpError::HttpResponseTimeout
                } else {
                    WasiHttpError::ConnectionReadTimeout
                }),
            }
        }
    };

    let max = policy.max_response_bytes;
    let declared = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(WasiHttpError::HttpResponseBodySize(Some(max)));
    }
    let between = options.between_bytes_timeout;
    let response = response.map(|incoming| {
        LimitedBody {
            timer: Box::pin(tokio::time::sleep_until(phase(deadline, between))),
            inner: incoming,
            max,
            seen: 0,
            between,
            deadline,
            done: false,
        }
        .boxed_unsync()
    });
    // The connection's driver: it lives as long as the body is read, and
    // never past the deadline; it holds the guest's connection slot.
    let io = async move {
        let _slot = slot;
        if conn_done {
            return Ok(());
        }
        match tokio::time::timeout_at(deadline, conn).await {
            Ok(result) => result.map_err(WasiHttpError::from),
            Err(_) => Err(WasiHttpError::HttpResponseTimeout),
        }
    };
    Ok((response, Box::new(io) as Box<dyn Future<Output = _> + Send>))
}

/// Connects to the first of `addrs` that answers, by `by`.
async fn connect(addrs: &[SocketAddr], by: Instant) -> wasmtime_wasi_http::Result<TcpStream> {
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout_at(by, TcpStream::connect(addr)).await {
            Err(_) => return Err(WasiHttpError::ConnectionTimeout),
            Ok(Ok(stream)) => {
                // Requests are written whole; no need to wait for acks.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => WasiHttpError::Connect(e),
        None => WasiHttpError::DnsError {
            rcode: Some("the name has no addresses".to_string()),
            info_code: None,
        },
    })
}

/// A byte stream a request travels over: plain TCP or TLS.
trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// The TLS client configuration, made once: webpki roots, HTTP/1.1.
fn tls() -> wasmtime_wasi_http::Result<tokio_rustls::TlsConnector> {
    static CONFIG: OnceLock<Option<Arc<rustls::ClientConfig>>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Some(Arc::new(config))
    });
    match config {
        Some(config) => Ok(tokio_rustls::TlsConnector::from(config.clone())),
        None => Err(WasiHttpError::InternalError(Some(
            "no TLS client configuration".to_string(),
        ))),
    }
}

/// A response body under the size limit and the timeouts: at most `max`
/// bytes, no longer than `between` (when set) without a frame, nothing
/// past `deadline`.
struct LimitedBody {
    inner: hyper::body::Incoming,
    timer: Pin<Box<Sleep>>,
    max: u64,
    seen: u64,
    between: Option<Duration>,
    deadline: Instant,
    done: bool,
}

impl hyper::body::Body for LimitedBody {
    type Data = Bytes;
    type Error = WasiHttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, WasiHttpError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen = this.seen.saturating_add(data.len() as u64);
                    if this.seen > this.max {
                        this.done = true;
                        return Poll::Ready(Some(Err(WasiHttpError::HttpResponseBodySize(Some(
                            this.max,
                        )))));
                    }
                }
                let next = phase(this.deadline, this.between);
                this.timer.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                Poll::Ready(Some(Err(if e.is_timeout() {
                    WasiHttpError::HttpResponseTimeout
                } else {
                    WasiHttpError::from(e)
                })))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.done = true;
                    Poll::Ready(Some(Err(if Instant::now() >= this.deadline {
                        WasiHttpError::HttpResponseTimeout
                    } else {
                        WasiHttpError::ConnectionReadTimeout
                    })))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str]) -> Policy {
        Policy::new(
            Some(Arc::new(Http::allow(hosts.iter().copied()))),
            OutboundLimits::default(),
        )
    }

    #[test]
    fn destinations_are_checked_in_canonical_form() {
        let p = policy(&["localhost", "*.example.com"]);
        for uri in [
            "http://127.1/",
            "http://0x7f.0.0.1:8080/x",
            "http://[::ffff:127.0.0.1]/",
            "http://2130706433/",
            "https://example.com/",
        ] {
            let uri: http::Uri = uri.parse().expect("uri");
            assert!(
                matches!(destination(&p, &uri), Err(WasiHttpError::HttpRequestDenied)),
                "{uri}"
            );
        }
        let uri: http::Uri = "http://LOCALHOST:9/".parse().expect("uri");
        let (host, port) = destination(&p, &uri).expect("allowed");
        assert_eq!((host.to_string().as_str(), port), ("localhost", 9));
        let uri: http::Uri = "https://api.example.com/".parse().expect("uri");
        assert_eq!(destination(&p, &uri).expect("allowed").1, 443);

        // An allowed address is reached by what it is, however spelled.
        let p = policy(&["127.0.0.1"]);
        let uri: http::Uri = "http://0x7f.1:81/".parse().expect("uri");
        let (host, port) = destination(&p, &uri).expect("allowed");
        assert_eq!((host.to_string().as_str(), port), ("127.0.0.1", 81));
        let uri: http::Uri = "http://[::ffff:7f00:1]/".parse().expect("uri");
        assert_eq!(
            destination(&p, &uri).expect("allowed").0.to_string(),
            "127.0.0.1"
        );
    }

    #[test]
    fn no_grant_denies_everything() {
        let p = Policy::new(None, OutboundLimits::default());
        let uri: http::Uri = "http://localhost/".parse().expect("uri");
        assert!(matches!(
            destination(&p, &uri),
            Err(WasiHttpError::HttpRequestDenied)
        ));
    }

    #[test]
    fn the_smaller_size_limit_wins() {
        let limits = OutboundLimits::default().max_response_bytes(1000);
        let http = |n| Some(Arc::new(Http::allow(["a"]).max_response_bytes(n)));
        assert_eq!(Policy::new(http(10), limits).max_response_bytes, 10);
        assert_eq!(Policy::new(http(1 << 30), limits).max_response_bytes, 1000);
        assert_eq!(Policy::new(None, limits).max_response_bytes, 1000);
    }

    #[test]
    fn connection_slots_are_bounded_and_given_back() {
        let count = Arc::new(AtomicUsize::new(0));
        let slots: Vec<Slot> = (0..MAX_IN_FLIGHT)
            .map(|_| Slot::take(count.clone()).expect("a slot"))
            .collect();
        assert!(Slot::take(count.clone()).is_none());
        drop(slots);
        assert_eq!(count.load(Ordering::Acquire), 0);
        assert!(Slot::take(count).is_some());
    }
}
