//! The `http` capability: outgoing HTTP requests to allowed hosts only.
//!
//! Guests reach it through the Extism `http_request` host function. A
//! request goes out only when its URL's host matches one of the
//! [`Http::allowed_hosts`] patterns (`example.com`, `*.example.com`, `*`;
//! shell-style globs as in Extism's manifest); otherwise the call stops with
//! `capability_denied` naming the host. Responses are read up to
//! [`Http::max_response_bytes`], and the request may not outlive the call's
//! timeout.
//!
//! ```
//! use wasmhost::capabilities::Http;
//! let http = Http::allow(["api.example.com", "*.internal"]);
//! assert!(http.allows("api.example.com"));
//! assert!(http.allows("db.internal"));
//! assert!(!http.allows("example.org"));
//! ```

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use crate::error::{Error, Result};

/// Default cap on one response body: 50 MiB (Extism's default).
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 50 << 20;

/// The HTTP grant: which hosts, and how much of a response is read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Http {
    /// Host patterns requests may go to.
    pub allowed_hosts: Vec<String>,
    /// Most bytes of a response body read; a longer body fails the call.
    pub max_response_bytes: u64,
}

impl Http {
    /// Requests to hosts matching any of `hosts`.
    pub fn allow<I: IntoIterator<Item = S>, S: Into<String>>(hosts: I) -> Self {
        Http {
            allowed_hosts: hosts.into_iter().map(Into::into).collect(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// Sets [`Http::max_response_bytes`].
    pub fn max_response_bytes(mut self, bytes: u64) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Whether a request to `host` may go out.
    pub fn allows(&self, host: &str) -> bool {
        self.allowed_hosts
            .iter()
            .any(|pattern| match glob::Pattern::new(pattern) {
                Ok(p) => p.matches_with(
                    host,
                    glob::MatchOptions {
                        case_sensitive: false,
                        ..Default::default()
                    },
                ),
                Err(_) => pattern.eq_ignore_ascii_case(host),
            })
    }
}

/// A request as Extism's PDKs describe it (`{"url", "method", "headers"}`).
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct Request {
    pub(crate) url: String,
    #[serde(default)]
    pub(crate) method: Option<String>,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
}

/// What came back.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: Vec<u8>,
}

/// Sends `req` if `grant` allows its host. A refused host is
/// `capability_denied`; a failed exchange is a `trap` with the reason.
pub(crate) fn send(
    grant: Option<&Http>,
    req: &Request,
    body: Option<&[u8]>,
    timeout: Option<Duration>,
) -> Result<Response> {
    let url = url::Url::parse(&req.url).map_err(|e| Error::Trap {
        trap_code: None,
        message: format!(
            "the guest's HTTP request URL `{}` is not valid: {e}",
            req.url
        ),
        backtrace: None,
    })?;
    let host = url.host_str().unwrap_or_default();
    let denied = |why: String| Error::CapabilityDenied {
        capability: "http".to_string(),
        detail: format!("request to {}: {why}", req.url),
    };
    let Some(grant) = grant else {
        return Err(denied(
            "no host is allowed (grant http with allowed hosts)".into(),
        ));
    };
    if !grant.allows(host) {
        return Err(denied(format!(
            "host `{host}` is not in the allowed hosts [{}]",
            grant.allowed_hosts.join(", ")
        )));
    }
    let method = req.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
    let mut builder = ureq::http::Request::builder()
        .method(method.as_str())
        .uri(req.url.as_str());
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    let failed = |e: &dyn std::fmt::Display| Error::Trap {
        trap_code: None,
        message: format!("HTTP request to {} failed: {e}", req.url),
        backtrace: None,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(timeout)
        .build()
        .into();
    let result = match body {
        Some(b) => agent.run(builder.body(b.to_vec()).map_err(|e| failed(&e))?),
        None => agent.run(builder.body(()).map_err(|e| failed(&e))?),
    };
    let response = result.map_err(|e| match e {
        ureq::Error::Timeout(_) => Error::Timeout {
            limit: timeout.unwrap_or_default(),
        },
        other => failed(&other),
    })?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let mut body = Vec::new();
    response
        .into_body()
        .into_reader()
        .take(grant.max_response_bytes.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| failed(&e))?;
    if body.len() as u64 > grant.max_response_bytes {
        return Err(Error::MemoryLimit {
            message: format!(
                "the HTTP response from {} is longer than the {}-byte limit",
                req.url, grant.max_response_bytes
            ),
        });
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_hosts() {
        let h = Http::allow(["example.com", "*.example.org", "127.0.0.1"]);
        assert!(h.allows("example.com"));
        assert!(h.allows("EXAMPLE.com"));
        assert!(h.allows("a.example.org"));
        assert!(!h.allows("example.org"));
        assert!(!h.allows("evil.com"));
        assert!(h.allows("127.0.0.1"));
        assert!(Http::allow(["*"]).allows("anything.at.all"));
        assert!(!Http::allow(Vec::<String>::new()).allows("example.com"));
    }

    #[test]
    fn refused_without_grant_or_host() {
        let req = Request {
            url: "http://example.com/x".into(),
            method: None,
            headers: BTreeMap::new(),
        };
        let e = send(None, &req, None, None).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::CapabilityDenied, "{e}");
        let e = send(Some(&Http::allow(["other.com"])), &req, None, None).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::CapabilityDenied);
        assert!(e.to_string().contains("`example.com`"), "{e}");
    }
}
