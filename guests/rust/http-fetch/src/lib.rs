//! A `wasi:http/proxy` component that makes outgoing HTTP requests
//! (`wasi:http/outgoing-handler`), for the tests of wasmhost's outbound
//! HTTP allow-list.
//!
//! `GET /?url=URL[&follow=N]` sends `GET URL` and answers with what came
//! back. With `follow=N` it follows up to N redirects (301, 302, 303, 307,
//! 308 with a `Location`), each one a new outgoing request that the host
//! checks again, as any client that follows redirects does.
//!
//! | outcome | response |
//! |---|---|
//! | a response (after redirects) | 200, its body; `x-fetch-status: STATUS`, `x-fetch-hops: N`, `x-fetch-url: URL` (the last one requested) |
//! | a request fails (refused host, connection, timeout, …) | 502, `x-fetch-error: CODE` and the same text as body: the wasi:http `error-code` (`HttpRequestDenied`, `HttpResponseBodySize(Some(1024))`, …), or the stream error's text when the host gave no code |
//! | no or bad `url` | 400 |
//!
//! `URL` may be percent-encoded; it is `http://` or `https://`, an
//! authority, and an optional path and query.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};
use wasip2::io::streams::StreamError;

wasip2::http::proxy::export!(Fetch);

struct Fetch;

/// Most redirects followed, whatever `follow=` says.
const MAX_FOLLOW: u32 = 10;

impl wasip2::exports::http::incoming_handler::Guest for Fetch {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let query = path.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let mut url = None;
        let mut follow = 0u32;
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "url" => url = Some(percent_decode(v)),
                "follow" => follow = v.parse().unwrap_or(0).min(MAX_FOLLOW),
                _ => {}
            }
        }
        let Some(mut url) = url else {
            return respond(out, 400, &[], b"missing ?url=\n");
        };
        let mut hops = 0u32;
        loop {
            let target = match Target::parse(&url) {
                Ok(t) => t,
                Err(e) => return respond(out, 400, &[], e.as_bytes()),
            };
            match fetch(&target) {
                Err(e) => {
                    return respond(out, 502, &[("x-fetch-error", e.as_bytes())], e.as_bytes());
                }
                Ok(got) => {
                    let redirect = matches!(got.status, 301 | 302 | 303 | 307 | 308);
                    match got.location {
                        Some(location) if redirect && hops < follow => {
                            hops += 1;
                            url = target.resolve(&location);
                        }
                        _ => {
                            let status = got.status.to_string();
                            let hops = hops.to_string();
                            return respond(
                                out,
                                200,
                                &[
                                    ("x-fetch-status", status.as_bytes()),
                                    ("x-fetch-hops", hops.as_bytes()),
                                    ("x-fetch-url", url.as_bytes()),
                                ],
                                &got.body,
                            );
                        }
                    }
                }
            }
        }
    }
}

/// A URL split the way wasi:http wants it.
struct Target {
    https: bool,
    authority: String,
    path_with_query: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let (https, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(format!("`{url}` is not an http:// or https:// URL\n"));
        };
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.is_empty() {
            return Err(format!("`{url}` has no host\n"));
        }
        let path_with_query = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        Ok(Target {
            https,
            authority: authority.to_string(),
            path_with_query,
        })
    }

    /// A `Location` against this URL: absolute, or a path on the same
    /// authority.
    fn resolve(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            return location.to_string();
        }
        let scheme = if self.https { "https" } else { "http" };
        if let Some(rest) = location.strip_prefix("//") {
            return format!("{scheme}://{rest}");
        }
        let sep = if location.starts_with('/') { "" } else { "/" };
        format!("{scheme}://{}{sep}{location}", self.authority)
    }
}

/// What one request brought back.
struct Got {
    status: u16,
    location: Option<String>,
    body: Vec<u8>,
}

/// One outgoing request; the error is the host's error code, spelled as
/// its Debug form.
fn fetch(target: &Target) -> Result<Got, String> {
    let request = OutgoingRequest::new(Fields::new());
    let scheme = if target.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| "the host refused the scheme".to_string())?;
    request
        .set_authority(Some(&target.authority))
        .map_err(|()| format!("the host refused the authority `{}`", target.authority))?;
    request
        .set_path_with_query(Some(&target.path_with_query))
        .map_err(|()| format!("the host refused the path `{}`", target.path_with_query))?;
    let future = outgoing_handler::handle(request, None).map_err(|e| code(&e))?;
    let response = loop {
        match future.get() {
            Some(result) => break result,
            None => future.subscribe().block(),
        }
    };
    let response = response
        .map_err(|()| "the response was taken twice".to_string())?
        .map_err(|e| code(&e))?;
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .first()
        .map(|v| String::from_utf8_lossy(v).into_owned());
    let body = response
        .consume()
        .map_err(|()| "the response body was taken twice".to_string())?;
    let data = read_all(&body);
    // The stream is dropped inside read_all; the body goes before the
    // response it belongs to.
    drop(IncomingBody::finish(body));
    drop(response);
    Ok(Got {
        status,
        location,
        body: data?,
    })
}

fn read_all(body: &IncomingBody) -> Result<Vec<u8>, String> {
    let stream = body
        .stream()
        .map_err(|()| "the body stream was taken twice".to_string())?;
    let mut data = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => data.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(data),
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(match wasip2::http::types::http_error_code(&e) {
                    Some(c) => code(&c),
                    None => format!("body stream failed: {}", e.to_debug_string()),
                });
            }
        }
    }
}

/// `ErrorCode::HttpRequestDenied` → `HttpRequestDenied`.
fn code(e: &wasip2::http::types::ErrorCode) -> String {
    let s = format!("{e:?}");
    s.strip_prefix("ErrorCode::").unwrap_or(&s).to_string()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(out: ResponseOutparam, status: u16, headers: &[(&str, &[u8])], body: &[u8]) {
    let list: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect();
    let fields = Fields::from_list(&list).unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = outgoing.write() {
        // blocking_write_and_flush takes at most 4096 bytes at a time.
        for chunk in body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                return;
            }
        }
    }
    let _ = OutgoingBody::finish(outgoing, None);
}
