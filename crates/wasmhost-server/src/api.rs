//! The HTTP API under `/api/v1`: modules (upload, list, inspect, delete,
//! tag, bytes), calls, process messages, actors and cache statistics.
//! docs/serve.md and `/openapi.json` describe it; every handler answers
//! errors as [`ApiError`] JSON.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use wasmhost::{ArgsFormat, CallOptions, Convention, Error};
use wasmhost_store::Reference;

use crate::config::Mode;
use crate::error::{ApiError, ApiResult, ServerCode};
use crate::state::AppState;
use crate::workers::{Drive, Reply, Worker, blocking};

type AppStateRef = State<Arc<AppState>>;

/// `Query` whose rejection is the API's JSON `bad_input`.
#[derive(Debug)]
pub struct Q<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> ApiResult<Self> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(t)| Q(t))
            .map_err(|e| Error::bad_input(e.body_text()).into())
    }
}

/// `Path` whose rejection is the API's JSON `bad_input`.
#[derive(Debug)]
pub struct P<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> ApiResult<Self> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| P(t))
            .map_err(|e| Error::bad_input(e.body_text()).into())
    }
}

/// Writes need `Authorization: Bearer TOKEN` when the server has a token.
pub fn authorize(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let Some(token) = &state.config.token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if token_matches(g.as_bytes(), token.expose().as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::server(
            ServerCode::Unauthorized,
            "wrong bearer token",
        )),
        None => Err(ApiError::server(
            ServerCode::Unauthorized,
            "this server needs a bearer token for writes: send Authorization: Bearer TOKEN",
        )),
    }
}

/// Whether the token given matches the server's, in time that depends on
/// neither: both are hashed (SHA-256, so their lengths do not show) and the
/// digests compared with `subtle`'s constant-time equality.
fn token_matches(given: &[u8], token: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    Sha256::digest(given).ct_eq(&Sha256::digest(token)).into()
}

/// 413 for a body over `limit` bytes.
fn too_large(limit: usize) -> ApiError {
    ApiError::server(
        ServerCode::PayloadTooLarge,
        format!("the request body is larger than the server's limit of {limit} bytes"),
    )
}

/// Refuses, before any of it is read, a body whose `Content-Length` is over
/// `limit` (a body without one is cut off by whoever reads it).
pub fn check_declared_length(headers: &HeaderMap, limit: usize) -> ApiResult<()> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => Err(too_large(limit)),
        _ => Ok(()),
    }
}

/// Reads a whole request body, refusing one over the server's limit with 413.
pub async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> ApiResult<Bytes> {
    let limit = state.config.max_body_bytes;
    check_declared_length(headers, limit)?;
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let limited = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if limited {
            too_large(limit)
        } else {
            ApiError::from(Error::bad_input(format!(
                "cannot read the request body: {e}"
            )))
        }
    })
}

/// A reply with what it cost in headers.
pub fn reply_response(reply: Reply) -> Response {
    let mut res = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(reply.content_type),
        )],
        reply.body,
    )
        .into_response();
    let h = res.headers_mut();
    h.insert(
        "x-wasmhost-duration-us",
        HeaderValue::from(reply.stats.duration.as_micros() as u64),
    );
    h.insert(
        "x-wasmhost-memory-bytes",
        HeaderValue::from(reply.stats.peak_memory_bytes),
    );
    if let Some(fuel) = reply.stats.fuel_consumed {
        h.insert("x-wasmhost-fuel", HeaderValue::from(fuel));
    }
    if reply.stats.replayed {
        h.insert("x-wasmhost-replayed", HeaderValue::from_static("true"));
    }
    res
}

/// The request's `Idempotency-Key`: an actor applies the message at most
/// once per key (see `ActorSystem::send_once`).
pub fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<&str>> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| {
            Error::bad_input("the Idempotency-Key header must be visible ASCII").into()
        }),
    }
}

fn parse_ref(text: &str) -> ApiResult<Reference> {
    text.parse::<Reference>().map_err(ApiError::from)
}

/// `GET /api/v1/modules`
pub async fn list_modules(State(state): AppStateRef) -> ApiResult<Json<JsonValue>> {
    let entries = state.store.list().await?;
    let modules: Vec<JsonValue> = entries
        .iter()
        .map(|e| {
            json!({
                "reference": format!("{}:{}", e.name, e.tag),
                "name": e.name,
                "tag": e.tag,
                "digest": e.digest.to_string(),
                "size": e.size,
                "kind": e.kind.as_str(),
                "created": e.updated.to_rfc3339(),
            })
        })
        .collect();
    Ok(Json(json!({ "modules": modules })))
}

/// Query of an upload.
#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    name: String,
    #[serde(default = "latest")]
    tag: String,
}

fn latest() -> String {
    "latest".to_string()
}

/// `POST /api/v1/modules?name=N&tag=T`: stores the body (wasm or WAT) after
/// checking that it compiles. A body sent as `application/json` is a packet
/// manifest (`sourceContent` with base64 modules, see
/// `wasmhost_store::manifest::Packet`): its one module is stored.
pub async fn upload(
    State(state): AppStateRef,
    Q(q): Q<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    authorize(&state, &headers)?;
    Reference::check_name(&q.name)?;
    Reference::check_tag(&q.tag)?;
    let mut bytes = read_body(&state, &headers, body).await?;
    if bytes.is_empty() {
        return Err(Error::bad_input("the request body is empty: send the module's bytes").into());
    }
    let mut packet = None;
    if is_json(&headers) {
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Error::bad_input("a JSON upload is a packet manifest, and this one is not UTF-8")
        })?;
        let parsed = wasmhost_store::manifest::Packet::from_json(text)?;
        let module = parsed.single()?;
        packet = Some(json!({
            "name": parsed.name,
            "lrl": module.lrl,
            "origin": module.origin,
            "worldVersion": module.world_version,
        }));
        bytes = Bytes::from(module.wasm.clone());
    }
    let rt = state.rt.clone();
    let raw = bytes.to_vec();
    // Compiling first refuses what could never run, and warms the cache.
    blocking(move || rt.load_bytes(raw)).await?;
    let entry = state.store.push(bytes.to_vec(), &q.name, &q.tag).await?;
    // Compiled here: this node answers its calls for the cluster.
    state.offer(&entry.digest);
    let mut made = json!({
        "reference": format!("{}:{}", entry.name, entry.tag),
        "digest": entry.digest.to_string(),
        "size": entry.size,
        "kind": entry.kind.as_str(),
    });
    if let (Some(p), Some(obj)) = (packet, made.as_object_mut()) {
        obj.insert("packet".into(), p);
    }
    Ok((StatusCode::CREATED, Json(made)).into_response())
}

/// Whether the request says its body is JSON (`application/json`, with
/// parameters or not).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// `GET /api/v1/modules/{reference}`
pub async fn inspect(
    State(state): AppStateRef,
    P(reference): P<String>,
) -> ApiResult<Json<JsonValue>> {
    let r = parse_ref(&reference)?;
    let stored = state.store.inspect(&r).await?;
    let module = state.module(&r).await?;
    let items = |items: Vec<wasmhost::ItemInfo>| -> Vec<JsonValue> {
        items
            .into_iter()
            .map(|i| json!({ "module": i.module, "name": i.name, "type": i.ty }))
            .collect()
    };
    // A component's functions also carry their WIT types, so that a client
    // (the dashboard's browser run) can convert the JSON values itself.
    let mut types: HashMap<String, JsonValue> = module.function_types().into_iter().collect();
    let functions: Vec<JsonValue> = module
        .functions()
        .into_iter()
        .map(|(name, signature)| {
            let conventions: Vec<&str> = module
                .conventions(&name)
                .into_iter()
                .filter(|(_, fits)| fits.is_ok())
                .map(|(c, _)| c.as_str())
                .collect();
            let mut f = json!({ "name": name, "signature": signature, "conventions": conventions });
            if let (Some(t), Some(obj)) = (types.remove(&name), f.as_object_mut()) {
                obj.insert("params".into(), t["params"].clone());
                obj.insert("results".into(), t["results"].clone());
            }
            f
        })
        .collect();
    let tags: Vec<String> = stored
        .tags
        .iter()
        .map(|(n, t)| format!("{n}:{t}"))
        .collect();
    Ok(Json(json!({
        "reference": reference,
        "digest": stored.digest.to_string(),
        "size": stored.size,
        "kind": stored.kind.as_str(),
        "tags": tags,
        "imports": items(module.imports()),
        "exports": items(module.exports()),
        "functions": functions,
    })))
}

/// `GET /api/v1/modules/{reference}/wasm`: the module's bytes, for running
/// it in a browser.
pub async fn wasm(State(state): AppStateRef, P(reference): P<String>) -> ApiResult<Response> {
    let (digest, bytes) = state.store.fetch(&parse_ref(&reference)?).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/wasm".to_string()),
            (header::ETAG, format!("\"{digest}\"")),
        ],
        bytes,
    )
        .into_response())
}

/// `DELETE /api/v1/modules/{reference}`
pub async fn delete(
    State(state): AppStateRef,
    P(reference): P<String>,
    headers: HeaderMap,
) -> ApiResult<Json<JsonValue>> {
    authorize(&state, &headers)?;
    let removed = state.store.remove(&parse_ref(&reference)?).await?;
    if let wasmhost_store::Removed::Blob { digest, .. } = &removed {
        state.forget(digest);
    }
    Ok(Json(serde_json::to_value(&removed).map_err(|e| {
        ApiError::from(Error::internal(format!("cannot encode the result: {e}")))
    })?))
}

/// Body of a tag request.
#[derive(Debug, Deserialize)]
pub struct TagBody {
    name: String,
    #[serde(default = "latest")]
    tag: String,
}

/// `POST /api/v1/modules/{reference}/tags` with `{"name", "tag"}`.
pub async fn tag(
    State(state): AppStateRef,
    P(reference): P<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    authorize(&state, &headers)?;
    let bytes = read_body(&state, &headers, body).await?;
    let t: TagBody = serde_json::from_slice(&bytes).map_err(|e| {
        Error::bad_input(format!(
            "the body must be JSON {{\"name\": \"…\", \"tag\": \"…\"}}: {e}"
        ))
    })?;
    let entry = state
        .store
        .tag(&parse_ref(&reference)?, &t.name, &t.tag)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "reference": format!("{}:{}", entry.name, entry.tag),
            "digest": entry.digest.to_string(),
        })),
    )
        .into_response())
}

/// Query of a call.
#[derive(Debug, Default, Deserialize)]
pub struct CallQuery {
    /// Force a calling convention.
    abi: Option<String>,
    /// Component arguments as WAVE text instead of JSON.
    #[serde(default)]
    wave: bool,
}

/// `POST /api/v1/modules/{reference}/call/{function}`: body in, result out.
pub async fn call(
    State(state): AppStateRef,
    P((reference, function)): P<(String, String)>,
    Q(q): Q<CallQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let convention = q.abi.as_deref().map(str::parse::<Convention>).transpose()?;
    let mut call = CallOptions::default();
    if q.wave {
        call = call.args(ArgsFormat::Wave);
    }
    // The slot first: only running requests hold a body in memory.
    let _slot = state.admission.enter().await?;
    let input = read_body(&state, &headers, body).await?;
    let module = state.module(&parse_ref(&reference)?).await?;
    // A function worker for this one call: a fresh sandbox, as a route's.
    let drive = Drive {
        mode: Some(Mode::Function),
        function: Some(function),
        convention,
        call,
        label: module.name().to_string(),
        ..Drive::default()
    };
    let worker = Worker::new(&state.env, module, drive).await?;
    Ok(reply_response(worker.message(None, None, input).await?))
}

/// Query of a process message.
#[derive(Debug, Deserialize)]
pub struct ProcessQuery {
    #[serde(default = "sync")]
    mode: String,
    export: Option<String>,
}

fn sync() -> String {
    "sync".to_string()
}

/// `POST /api/v1/modules/{reference}/process?mode=sync|async&export=poll`:
/// body on stdin, stdout back.
pub async fn process(
    State(state): AppStateRef,
    P(reference): P<String>,
    Q(q): Q<ProcessQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    // The slot first: only running requests hold a body in memory.
    let _slot = state.admission.enter().await?;
    let input = read_body(&state, &headers, body).await?;
    let module = state.module(&parse_ref(&reference)?).await?;
    let (mode, export) = match q.mode.as_str() {
        "sync" if q.export.is_some() => {
            return Err(Error::bad_input("export= is for mode=async").into());
        }
        "sync" => (Mode::Sync, None),
        "async" => (Mode::Async, q.export),
        other => {
            return Err(Error::bad_input(format!("mode `{other}`: expected sync or async")).into());
        }
    };
    let worker = state.process_worker(module, mode, export).await?;
    Ok(reply_response(worker.message(None, None, input).await?))
}

/// `GET /api/v1/actors`: actors in memory and actors only stored.
pub async fn actors(State(state): AppStateRef) -> ApiResult<Json<JsonValue>> {
    let actors: Vec<JsonValue> = state
        .actors
        .list()?
        .into_iter()
        .map(|a| {
            json!({
                "id": a.id,
                "module": a.module,
                "digest": a.digest.to_string(),
                "messages": a.messages,
                "restarts": a.restarts,
                "live": a.live,
                "idle_ms": a.idle_for.as_millis() as u64,
                "snapshots": a.snapshots.map(|p| p.as_str()),
                "snapshot_bytes": a.snapshot_bytes,
                "saved_at": a.saved_at.map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339()),
            })
        })
        .collect();
    Ok(Json(json!({ "actors": actors })))
}

/// `GET /api/v1/cluster`: the nodes of this node's cluster (their
/// address, version, load and live actors), or `enabled: false` for a node
/// serving alone.
pub async fn cluster(State(state): AppStateRef) -> ApiResult<Json<JsonValue>> {
    let Some(cluster) = state.cluster.get() else {
        return Ok(Json(json!({ "enabled": false, "nodes": [] })));
    };
    let nodes = cluster.nodes().await?;
    Ok(Json(json!({
        "enabled": true,
        "name": cluster.config().name,
        "node": cluster.node_id(),
        "heartbeat_ms": cluster.config().heartbeat.as_millis() as u64,
        "nodes": nodes,
    })))
}

/// Query of an actor message.
#[derive(Debug, Deserialize)]
pub struct SendQuery {
    /// The module a new actor is made of (not needed for a live one).
    module: Option<String>,
    /// The function the message calls.
    function: String,
}

/// `POST /api/v1/actors/{id}?function=F&module=REF`: a message to actor
/// `id` (the whole id: the API reaches route actors too, as
/// `ROUTE/NAME`), through an actor worker like a route's with `actor=ID`.
/// With `module=`, the worker of that module decides a new actor's grants,
/// limits and convention as a route's does; without, the message reaches
/// only an actor that exists.
pub async fn send(
    State(state): AppStateRef,
    P(id): P<String>,
    Q(q): Q<SendQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    // The slot first: only running requests hold a body in memory.
    let _slot = state.admission.enter().await?;
    let input = read_body(&state, &headers, body).await?;
    let drive = Drive {
        mode: Some(Mode::Actor),
        function: Some(q.function),
        actor: Some(id),
        ..Drive::default()
    };
    let worker = match &q.module {
        Some(m) => {
            let module = state.module(&parse_ref(m)?).await?;
            let label = module.name().to_string();
            Worker::new(&state.env, module, Drive { label, ..drive }).await?
        }
        None => Worker::existing_actors(&state.env, drive)?,
    };
    let key = idempotency_key(&headers)?;
    Ok(reply_response(worker.message(None, key, input).await?))
}

/// Query of an actor removal.
#[derive(Debug, Deserialize)]
pub struct RemoveQuery {
    /// Also delete the actor's key-value data.
    #[serde(default)]
    purge: bool,
}

/// `DELETE /api/v1/actors/{id}[?purge=true]`: the actor, its snapshot and
/// replies (and with `purge`, its key-value data).
pub async fn remove_actor(
    State(state): AppStateRef,
    P(id): P<String>,
    Q(q): Q<RemoveQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<JsonValue>> {
    authorize(&state, &headers)?;
    let removed = if q.purge {
        state.actors.purge(&id)?
    } else {
        state.actors.remove(&id)?
    };
    if !removed {
        return Err(Error::not_found(format!("actor `{id}`")).into());
    }
    Ok(Json(json!({ "removed": id, "purged": q.purge })))
}

/// `GET /api/v1/cache`
pub async fn cache(State(state): AppStateRef) -> Json<JsonValue> {
    let s = state.rt.cache_stats();
    let modules: Vec<JsonValue> = state
        .rt
        .cached_modules()
        .into_iter()
        .map(|m| {
            json!({
                "digest": m.digest.to_string(),
                "kind": m.kind,
                "wasm_bytes": m.wasm_bytes,
                "compiled_bytes": m.compiled_bytes,
                "loads": m.loads,
                "calls": m.calls,
            })
        })
        .collect();
    Json(json!({
        "hits": s.hits,
        "misses": s.misses,
        "disk_hits": s.disk_hits,
        "disk_writes": s.disk_writes,
        "compiles": s.compiles,
        "evictions": s.evictions,
        "entries": s.entries,
        "bytes": s.bytes,
        "modules": modules,
    }))
}

#[cfg(test)]
mod tests {
    use super::token_matches;

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(token_matches(b"s3cret", b"s3cret"));
        for wrong in [
            &b""[..],
            b"s",
            b"s3cre",
            b"s3cret ",
            b"S3cret",
            b"s3cres",
            b"x3cret",
        ] {
            assert!(!token_matches(wrong, b"s3cret"), "{wrong:?}");
        }
    }
}
