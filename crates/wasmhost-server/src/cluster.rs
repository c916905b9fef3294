//! Calls across the cluster (`--cluster`; docs/cluster.md).
//!
//! **Stateless calls.** A function call
//! (`POST /api/v1/modules/{ref}/call/{function}`), a sync process message
//! (`POST /api/v1/modules/{ref}/process`) or a request to a worker route in
//! sync or function mode runs here or on another node. The request may say,
//! with `?placement=` or the `x-wasmhost-placement` header:
//! - `local`: here;
//! - `any`: through a queue group, to one of the nodes that can run it (this
//!   one included), chosen by NATS: `<cluster>.call.<digest hex>` for the
//!   API (the nodes holding the module compiled), `<cluster>.route.<hash>`
//!   for a worker route (the nodes serving the same module at the same path);
//! - nothing (`auto`): here while this node has a free slot; once every
//!   slot is busy, through the queue group, so a saturated node spills over
//!   instead of queueing.
//!
//! A node joins a module's queue group once it has compiled the module (an
//! upload, or a first call), and its routes' groups at start. When no node
//! can answer (NATS's no-responders, at once) the call runs here. A
//! forwarded call waits at most the request's own timeout (then 504, as a
//! local one). A body or reply larger than NATS carries (its `max_payload`,
//! 1 MiB by default, less room for headers) runs here. A call is never
//! forwarded twice: a forwarded request carries `x-wasmhost-forwarded` and
//! runs where it lands.
//!
//! **Actor messages** ([`place_actor`]) run on the actor's owner, the node
//! holding its lease, reached through its own subject `<cluster>.node.<id>`.
//!
//! On the wire a forwarded request is the HTTP request itself: NATS headers
//! `wasmhost-uri` (path and query) and the request's `content-type`,
//! `idempotency-key` and `x-wasmhost-*` headers, the body as payload; the
//! answering node runs it through its own router and replies with
//! `wasmhost-status`, its response headers and body. Every answer carries
//! `x-wasmhost-node`, the id of the node that ran the call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{self, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use wasmhost::{Digest, Error};
use wasmhost_cluster::Owner;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Header of a request a peer forwarded here: it runs here.
const FORWARDED: &str = "x-wasmhost-forwarded";
/// Header naming a request's placement.
const PLACEMENT: &str = "x-wasmhost-placement";
/// Response header: the node that ran the call.
pub(crate) const NODE: &str = "x-wasmhost-node";
/// NATS header of a forwarded request: its path and query.
const URI: &str = "wasmhost-uri";
/// NATS header of a reply: the HTTP status.
const STATUS: &str = "wasmhost-status";
/// NATS header of a reply too large for NATS: run it at the sender.
const TOO_LARGE: &str = "wasmhost-too-large";
/// Room left in a NATS message for its headers.
const HEADER_ROOM: usize = 16 << 10;

/// Where a request asks to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Here while a slot is free, else wherever the module's queue group
    /// sends it.
    Auto,
    /// Here.
    Local,
    /// Wherever the module's queue group sends it.
    Any,
}

impl std::str::FromStr for Placement {
    type Err = Error;
    fn from_str(s: &str) -> wasmhost::Result<Self> {
        match s {
            "local" => Ok(Placement::Local),
            "any" => Ok(Placement::Any),
            "auto" => Ok(Placement::Auto),
            other => Err(Error::bad_input(format!(
                "placement `{other}`: expected local, any or auto"
            ))),
        }
    }
}

/// The placement a request asks for: `?placement=` wins over the header.
fn placement(req: &Request) -> ApiResult<Placement> {
    let from_query = req.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "placement")
            .map(|(_, v)| v.to_string())
    });
    let from_header = || {
        req.headers()
            .get(PLACEMENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    match from_query.or_else(from_header) {
        Some(p) => Ok(p.trim().parse()?),
        None => Ok(Placement::Auto),
    }
}

/// The module reference of a call or sync process request, or `None` for
/// one that keeps state here (an async process) or is not a call.
fn stateless_call(req: &Request) -> Option<&str> {
    if req.method() != http::Method::POST {
        return None;
    }
    let rest = req.uri().path().strip_prefix("/api/v1/modules/")?;
    let (reference, tail) = rest.split_once('/')?;
    let sync_process = tail == "process"
        && !req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv == "mode=async"));
    (tail.starts_with("call/") || sync_process).then_some(reference)
}

/// Largest body a NATS message carries here.
fn payload_limit(cluster: &wasmhost_cluster::Cluster) -> usize {
    cluster
        .client()
        .server_info()
        .max_payload
        .saturating_sub(HEADER_ROOM)
}

/// Whether a request should go to the cluster: `None` runs it here (no
/// cluster, a request a peer forwarded, `local`, or `auto` with a slot
/// free); `Err` is a bad placement.
fn forwarding<'a>(
    state: &'a AppState,
    req: &Request,
) -> ApiResult<Option<&'a wasmhost_cluster::Cluster>> {
    let Some(cluster) = state.cluster.get() else {
        return Ok(None);
    };
    if req.headers().contains_key(FORWARDED) {
        return Ok(None);
    }
    let forward = match placement(req)? {
        Placement::Local => false,
        Placement::Any => true,
        Placement::Auto => state.admission.running() >= state.config.max_concurrent,
    };
    Ok(forward.then_some(cluster))
}

/// Middleware of the API's call and process routes: runs the request here,
/// or forwards it to its module's queue group (see the module's docs).
pub(crate) async fn place(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let here = state.cluster.get().map(|c| c.node_id());
    let cluster = match forwarding(&state, &req) {
        Ok(Some(c)) => c,
        Ok(None) => return with_node(next.run(req).await, here),
        Err(bad) => return bad.into_response(),
    };
    // A reference that does not resolve, or a stateful message, runs here
    // (where a bad reference gets its error).
    let digest = match stateless_call(&req).map(str::parse) {
        Some(Ok(r)) => state.store.resolve(&r).await.ok(),
        _ => None,
    };
    let Some(digest) = digest else {
        return with_node(next.run(req).await, here);
    };
    let subject = format!("{}.call.{}", cluster.config().name, digest.hex());
    relay(&state, cluster, subject, req, next).await
}

/// Middleware of a worker route in a stateless mode (sync, function):
/// runs the request here, or forwards it to the nodes that serve the same
/// route with the same module (`subject`, from [`route_subject`]).
pub(crate) async fn place_route(
    State((state, subject)): State<(Arc<AppState>, String)>,
    req: Request,
    next: Next,
) -> Response {
    let here = state.cluster.get().map(|c| c.node_id());
    match forwarding(&state, &req) {
        Ok(Some(cluster))
            if req.method() == http::Method::POST || req.method() == http::Method::PUT =>
        {
            relay(&state, cluster, subject, req, next).await
        }
        Ok(_) => with_node(next.run(req).await, here),
        Err(bad) => bad.into_response(),
    }
}

/// The queue-group subject of a worker route: the route's path and its
/// module, so only nodes serving the same module at the same path answer.
pub(crate) fn route_subject(
    cluster: &wasmhost_cluster::Cluster,
    path: &str,
    digest: &Digest,
) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(path.as_bytes());
    h.update([0]);
    h.update(digest.hex().as_bytes());
    let hash = h.finalize();
    let short: String = hash.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("{}.route.{short}", cluster.config().name)
}

/// Sends the request to `subject`'s queue group; runs it here when no one
/// answers or it does not fit.
async fn relay(
    state: &AppState,
    cluster: &wasmhost_cluster::Cluster,
    subject: String,
    req: Request,
    next: Next,
) -> Response {
    let here = Some(cluster.node_id());
    let (parts, body) = req.into_parts();
    let body = match crate::api::read_body(state, &parts.headers, body).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let run_here = |parts, body: Bytes| next.run(Request::from_parts(parts, Body::from(body)));
    if body.len() > payload_limit(cluster) {
        count("too_large");
        return with_node(run_here(parts, body).await, here);
    }
    let started = Instant::now();
    match forward_call(cluster, state, &Head::of(&parts), subject, body.clone()).await {
        Ok(res) => {
            answered(started);
            res
        }
        Err(Fallback::Timeout(limit)) => {
            count("timeout");
            timed_out("the node that took the call", limit)
        }
        Err(Fallback::Here(outcome)) => {
            count(outcome);
            with_node(run_here(parts, body).await, here)
        }
    }
}

/// Header of a peer's answer: this node does not own the actor (the value
/// names the owner); the sender asks again.
const NOT_OWNER: &str = "x-wasmhost-not-owner";
/// Pause between two attempts to reach an actor's owner (its node died and
/// its lease has not expired yet, or ownership is changing hands).
const OWNER_RETRY: Duration = Duration::from_millis(100);

/// Which actor a request names: the actors API (`/api/v1/actors/{id}`) or
/// an actor worker route.
#[derive(Debug, Clone)]
pub(crate) enum ActorTarget {
    Api,
    Route {
        prefix: String,
        worker: Arc<crate::workers::Worker>,
    },
}

impl ActorTarget {
    fn actor(&self, req: &Request) -> Option<String> {
        let path = req.uri().path();
        match self {
            ActorTarget::Api => {
                let raw = path.strip_prefix("/api/v1/actors/")?;
                let id = percent_encoding::percent_decode_str(raw)
                    .decode_utf8()
                    .ok()?;
                (!id.is_empty()).then(|| id.into_owned())
            }
            ActorTarget::Route { prefix, worker } => {
                let rest = path
                    .strip_prefix(prefix.as_str())
                    .map(|r| r.trim_start_matches('/'));
                worker.actor_id(rest)
            }
        }
    }
}

/// Middleware of actor routes and the actors API's messages: a message
/// runs on its actor's owner, the node holding the actor's lease. A node
/// takes the lease of an actor nobody owns (and loads its state from
/// JetStream); a message for an actor another node owns goes to that node's
/// own subject (`<cluster>.node.<id>`), and when that node is gone (no
/// responders) the sender waits for its lease to expire, then takes the
/// actor over. A message whose commit lost to a new owner (this node was
/// paused past its lease) was not applied: it goes to the new owner.
pub(crate) async fn place_actor(
    State((state, target)): State<(Arc<AppState>, ActorTarget)>,
    req: Request,
    next: Next,
) -> Response {
    let Some(cluster) = state.cluster.get() else {
        return next.run(req).await;
    };
    let here = Some(cluster.node_id());
    let leases = cluster.leases();
    let id = match target.actor(&req) {
        Some(id) if req.method() == http::Method::POST || req.method() == http::Method::PUT => id,
        // Not a message (or no actor named): its error, or answer, is local.
        _ => return with_node(next.run(req).await, here),
    };
    if req.headers().contains_key(FORWARDED) {
        // A peer sent it here as to the owner.
        return match leases.acquire(&id).await {
            Ok(Owner::Me) => {
                let res = next.run(req).await;
                if res.status() == StatusCode::SERVICE_UNAVAILABLE && !leases.holds(&id) {
                    return not_owner(&id, None);
                }
                with_node(res, here)
            }
            Ok(Owner::Node(owner)) => not_owner(&id, Some(&owner)),
            Err(e) => ApiError::from(e).into_response(),
        };
    }
    let limit = state.config.request_timeout;
    let deadline = Instant::now() + limit;
    let (parts, body) = req.into_parts();
    let body = match crate::api::read_body(&state, &parts.headers, body).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let head = Head::of(&parts);
    let keyed = parts.headers.contains_key("idempotency-key");
    let mut local = Some((next, parts));
    loop {
        let owner = match leases.acquire(&id).await {
            Ok(owner) => owner,
            Err(e) => return ApiError::from(e).into_response(),
        };
        let target_node = match (owner, local.take()) {
            (Owner::Me, Some((next, parts))) => {
                let res = next
                    .run(Request::from_parts(parts, Body::from(body.clone())))
                    .await;
                if res.status() == StatusCode::SERVICE_UNAVAILABLE && !leases.holds(&id) {
                    // Lost to a new owner mid-message: not applied; there.
                    count("moved");
                    continue;
                }
                return with_node(res, here);
            }
            // Ran here once already and lost it, then took it back: through
            // this node's own subject, as a peer would.
            (Owner::Me, None) => cluster.node_id().to_string(),
            (Owner::Node(owner), parts) => {
                local = parts;
                owner
            }
        };
        let subject = format!("{}.node.{target_node}", cluster.config().name);
        let started = Instant::now();
        match owner_answer(
            cluster,
            &state,
            &head,
            subject,
            body.clone(),
            &id,
            &target_node,
        )
        .await
        {
            Ok(res) if res.headers().contains_key(NOT_OWNER) => {
                count("not_owner");
            }
            Ok(res) => {
                answered(started);
                return res;
            }
            Err(Fallback::Timeout(limit)) => return owner_timeout(&id, limit),
            Err(Fallback::Here(outcome)) => {
                count(outcome);
                if outcome == "too_large" || outcome == "reply_too_large" {
                    return ApiError::from(Error::bad_input(format!(
                        "actor `{id}`: the message or its reply is larger than the {} bytes \
                         a cluster carries between nodes (the NATS server's max_payload)",
                        payload_limit(cluster)
                    )))
                    .into_response();
                }
                // The owner may have applied the message before it went
                // away: sent again, a message without an id could be applied
                // twice, so only a message with one is.
                if uncertain(outcome) && !keyed {
                    return ApiError::from(Error::unavailable(format!(
                        "actor `{id}`: its owner stopped answering while it had the message; \
                         it may or may not have been applied. Send it again with an \
                         Idempotency-Key header to make resending safe"
                    )))
                    .into_response();
                }
            }
        }
        if Instant::now() + OWNER_RETRY >= deadline {
            return owner_timeout(&id, limit);
        }
        tokio::time::sleep(OWNER_RETRY).await;
    }
}

/// Sends a message to the actor's owner and waits for its answer for as
/// long as that node keeps the lease: a node that stops renewing it
/// (paused, cut off) loses it after the TTL, and then the wait ends, so the
/// sender can take the actor over. A paused owner that wakes up later
/// cannot commit the message (it was fenced), so it is not applied twice.
async fn owner_answer(
    cluster: &wasmhost_cluster::Cluster,
    state: &AppState,
    head: &Head,
    subject: String,
    body: Bytes,
    id: &str,
    owner: &str,
) -> Result<Response, Fallback> {
    let leases = cluster.leases();
    let answer = forward_call(cluster, state, head, subject, body);
    tokio::pin!(answer);
    loop {
        tokio::select! {
            res = &mut answer => return res,
            () = tokio::time::sleep(leases.ttl() / 2) => {
                match leases.owner(id).await {
                    Ok(Some(now)) if now == owner => {}
                    _ => return Err(Fallback::Here("owner_gone")),
                }
            }
        }
    }
}

/// Whether a forward that ended so may have reached the owner's guest: the
/// owner stopped answering mid-wait, answered something unreadable, or the
/// connection broke while waiting. (No responders, or a refusal as not the
/// owner, never reached it.)
fn uncertain(outcome: &str) -> bool {
    matches!(outcome, "owner_gone" | "bad_reply" | "unsent")
}

fn owner_timeout(id: &str, limit: Duration) -> Response {
    timed_out(&format!("actor `{id}`: its owner"), limit)
}

/// 504: `who` did not answer within the request's time.
fn timed_out(who: &str, limit: Duration) -> Response {
    ApiError::server(
        crate::error::ServerCode::RequestTimeout,
        format!(
            "{who} did not answer within the server's {} ms limit",
            limit.as_millis()
        ),
    )
    .into_response()
}

/// Counts a forward (or an attempt) by how it ended.
fn count(outcome: &'static str) {
    metrics::counter!("wasmhost_cluster_forwards_total", "outcome" => outcome).increment(1);
}

/// Counts an answered forward and its round trip.
fn answered(started: Instant) {
    count("answered");
    metrics::histogram!("wasmhost_cluster_forward_duration_seconds")
        .record(started.elapsed().as_secs_f64());
}

/// A peer's answer for an actor this node does not own.
fn not_owner(id: &str, owner: Option<&str>) -> Response {
    let mut res = ApiError::from(Error::unavailable(format!(
        "actor `{id}` is not owned by this node"
    )))
    .into_response();
    let value = HeaderValue::from_str(owner.unwrap_or("")).unwrap_or(HeaderValue::from_static(""));
    res.headers_mut().insert(NOT_OWNER, value);
    res
}

/// What a forwarded request carries besides its body: its path and query,
/// and the headers that travel.
struct Head {
    uri: String,
    headers: http::HeaderMap,
}

impl Head {
    fn of(parts: &http::request::Parts) -> Head {
        let uri = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_string();
        let mut headers = http::HeaderMap::new();
        for (name, value) in &parts.headers {
            if carried(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        Head { uri, headers }
    }
}

/// Why a forward did not answer.
enum Fallback {
    /// Run it here, for this reason (a metric label).
    Here(&'static str),
    /// The request's time ran out waiting.
    Timeout(Duration),
}

/// Sends the request to the module's queue group and turns the reply into
/// a response.
async fn forward_call(
    cluster: &wasmhost_cluster::Cluster,
    state: &AppState,
    head: &Head,
    subject: String,
    body: Bytes,
) -> Result<Response, Fallback> {
    use async_nats::RequestErrorKind as K;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(URI, head.uri.as_str());
    headers.insert(FORWARDED, cluster.node_id());
    for (name, value) in &head.headers {
        if let Ok(v) = value.to_str() {
            headers.append(name.as_str(), v);
        }
    }
    let limit = state.config.request_timeout;
    let request = async_nats::Request::new()
        .headers(headers)
        .payload(body)
        .timeout(Some(limit));
    let reply = match cluster.client().send_request(subject, request).await {
        Ok(reply) => reply,
        Err(e) => {
            return Err(match e.kind() {
                K::NoResponders => Fallback::Here("no_responders"),
                K::TimedOut => Fallback::Timeout(limit),
                K::MaxPayloadExceeded => Fallback::Here("too_large"),
                K::InvalidSubject | K::Other => Fallback::Here("unsent"),
            });
        }
    };
    let Some(h) = reply.headers.as_ref() else {
        return Err(Fallback::Here("bad_reply"));
    };
    if h.get(TOO_LARGE).is_some() {
        return Err(Fallback::Here("reply_too_large"));
    }
    let status = h
        .get(STATUS)
        .and_then(|s| s.as_str().parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or(Fallback::Here("bad_reply"))?;
    let mut res = Response::new(Body::from(reply.payload.clone()));
    *res.status_mut() = status;
    for (name, values) in h.iter() {
        let name = name.to_string();
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        if !returned(&name) {
            continue;
        }
        for v in values {
            if let Ok(v) = HeaderValue::from_str(v.as_str()) {
                res.headers_mut().append(name.clone(), v);
            }
        }
    }
    Ok(res)
}

/// Request headers a forwarded call carries.
fn carried(name: &HeaderName) -> bool {
    name == http::header::CONTENT_TYPE
        || name.as_str() == "idempotency-key"
        || (name.as_str().starts_with("x-wasmhost-") && name.as_str() != FORWARDED)
}

/// Response headers a forwarded call's reply carries back.
fn returned(name: &HeaderName) -> bool {
    name == http::header::CONTENT_TYPE
        || name == http::header::RETRY_AFTER
        || name.as_str().starts_with("x-wasmhost-")
}

/// Marks a response with the node that ran it (nothing when serving alone).
fn with_node(mut res: Response, node: Option<&str>) -> Response {
    if let Some(node) = node.and_then(|n| HeaderValue::from_str(n).ok()) {
        res.headers_mut().insert(NODE, node);
    }
    res
}

/// What a subscription answers: the API's calls of one module, or one
/// worker route (its path).
#[derive(Debug, Clone)]
enum Scope {
    Api,
    Route(String),
    /// Messages to actors: the actors API and these actor routes.
    Actors(Vec<String>),
}

impl Scope {
    /// Whether a forwarded request may run under this subscription: a peer
    /// reaches only what the subject stands for.
    fn admits(&self, req: &Request) -> bool {
        match self {
            Scope::Api => stateless_call(req).is_some(),
            Scope::Route(prefix) => under(req.uri().path(), prefix),
            Scope::Actors(prefixes) => {
                let path = req.uri().path();
                path.starts_with("/api/v1/actors/") || prefixes.iter().any(|p| under(path, p))
            }
        }
    }
}

/// Whether `path` is `prefix` or below it.
fn under(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Answers peers' calls for as long as the server runs: joins the queue
/// group of every stateless worker route, and of each module offered (see
/// `Offers`), and runs what arrives through `router`.
pub(crate) fn start_responder(
    state: &Arc<AppState>,
    router: axum::Router,
) -> Option<tokio::task::JoinHandle<()>> {
    let cluster = state.cluster.get()?.clone();
    let (tx, mut rx) = mpsc::unbounded_channel::<Digest>();
    // Modules compiled before the responder started; later ones come
    // through the channel (under the same lock: none is missed or doubled).
    let before: Vec<Digest> = {
        let joined = state
            .offers
            .joined
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        state.offers.tx.set(tx).ok()?;
        joined.iter().cloned().collect()
    };
    let routes: Vec<(String, Scope)> = state
        .routes
        .iter()
        .filter_map(|(path, worker)| {
            let digest = worker.stateless_digest()?;
            Some((
                route_subject(&cluster, path, &digest),
                Scope::Route(path.clone()),
            ))
        })
        .collect();
    let actor_routes: Vec<String> = state
        .routes
        .iter()
        .filter(|(_, w)| w.mode() == crate::config::Mode::Actor)
        .map(|(path, _)| path.clone())
        .collect();
    let limit = payload_limit(&cluster);
    let timeout = state.config.request_timeout;
    Some(tokio::spawn(async move {
        let mut subscriptions = tokio::task::JoinSet::new();
        let mut join = |subject: String, scope: Scope| {
            let cluster = cluster.clone();
            let router = router.clone();
            subscriptions.spawn(async move {
                let queue = format!("{}.workers", cluster.config().name);
                let mut sub = match cluster
                    .client()
                    .queue_subscribe(subject.clone(), queue)
                    .await
                {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!("cluster: cannot answer the calls of {subject}: {e}");
                        return;
                    }
                };
                while let Some(msg) = sub.next().await {
                    let cluster = cluster.clone();
                    let router = router.clone();
                    let scope = scope.clone();
                    tokio::spawn(async move {
                        answer(&cluster, router, &scope, msg, limit, timeout).await;
                    });
                }
            });
        };
        let api = |digest: &Digest| format!("{}.call.{}", cluster.config().name, digest.hex());
        for (subject, scope) in routes {
            join(subject, scope);
        }
        // Messages for the actors this node owns.
        let own = format!("{}.node.{}", cluster.config().name, cluster.node_id());
        join(own, Scope::Actors(actor_routes));
        for digest in before {
            join(api(&digest), Scope::Api);
        }
        while let Some(digest) = rx.recv().await {
            join(api(&digest), Scope::Api);
        }
    }))
}

/// Runs one forwarded call here and replies.
async fn answer(
    cluster: &wasmhost_cluster::Cluster,
    router: axum::Router,
    scope: &Scope,
    msg: async_nats::Message,
    limit: usize,
    timeout: Duration,
) {
    use tower::ServiceExt as _;
    let Some(reply_to) = msg.reply.clone() else {
        return;
    };
    let mut out = async_nats::HeaderMap::new();
    out.insert(NODE, cluster.node_id());
    let response = match request_of(&msg, scope) {
        Ok(req) => match router.oneshot(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        },
        Err(e) => e.into_response(),
    };
    let (parts, body) = response.into_parts();
    // The request's own deadline bounds the body too (a streaming reply).
    let body = match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            out.insert(TOO_LARGE, "1");
            Bytes::new()
        }
        Err(_) => return,
    };
    out.insert(STATUS, parts.status.as_u16().to_string().as_str());
    for (name, value) in &parts.headers {
        // This node's id is set once, above.
        if returned(name)
            && name.as_str() != NODE
            && let Ok(v) = value.to_str()
        {
            out.append(name.as_str(), v);
        }
    }
    if let Err(e) = cluster
        .client()
        .publish_with_headers(reply_to, out, body)
        .await
    {
        tracing::warn!("cluster: cannot reply to a forwarded call: {e}");
    }
}

/// The HTTP request a forwarded call's message carries, if `scope` admits
/// it.
fn request_of(msg: &async_nats::Message, scope: &Scope) -> ApiResult<Request> {
    let bad = |what: &str| ApiError::from(Error::bad_input(format!("forwarded call: {what}")));
    let headers = msg.headers.as_ref().ok_or_else(|| bad("no headers"))?;
    let uri = headers
        .get(URI)
        .map(|v| v.as_str().to_string())
        .ok_or_else(|| bad("no wasmhost-uri"))?;
    let mut req = Request::builder()
        .method(http::Method::POST)
        .uri(&uri)
        .body(Body::from(msg.payload.clone()))
        .map_err(|e| bad(&e.to_string()))?;
    if !scope.admits(&req) {
        return Err(bad(&format!("{uri} is not what this subject serves")));
    }
    for (name, values) in headers.iter() {
        let Ok(name) = HeaderName::from_bytes(name.to_string().as_bytes()) else {
            continue;
        };
        if !carried(&name) && name.as_str() != FORWARDED {
            continue;
        }
        for v in values {
            if let Ok(v) = HeaderValue::from_str(v.as_str()) {
                req.headers_mut().append(name.clone(), v);
            }
        }
    }
    Ok(req)
}
