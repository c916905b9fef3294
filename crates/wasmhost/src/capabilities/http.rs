//! The `http` capability: outgoing HTTP requests to allowed hosts only.
//!
//! Guests reach it through the Extism `http_request` host function (and
//! `wasmhost serve`'s wasi:http workers through `wasi:http/outgoing-handler`,
//! with this same matcher). A request goes out only when its URL's host
//! matches one of the [`Http::allowed_hosts`] patterns (`example.com`,
//! `*.example.com`, `*`; shell-style globs as in Extism's manifest);
//! otherwise the call stops with `capability_denied` naming the host.
//! Responses are read up to [`Http::max_response_bytes`], and the request
//! may not outlive the call's timeout. Redirects are not followed: the
//! guest sees the 3xx response, and its request to the new location is
//! checked like any other.
//!
//! **Hosts are compared in canonical form** ([`Host::parse`]), never as
//! spelled: a name is lowercased, IDNA-mapped (`BÜCHER.example` is
//! `xn--bcher-kva.example`) and loses one trailing dot; an IP literal is the
//! address a resolver makes of it (`127.1`, `0x7f.0.0.1`, `017700000001`
//! and `2130706433` are all `127.0.0.1`, as for `inet_aton` and the WHATWG
//! URL parser), and an IPv4-mapped IPv6 address (`[::ffff:127.0.0.1]`) is
//! its IPv4 address. A pattern that is an IP literal matches that address
//! however the request spells it; a glob is matched against the canonical
//! spelling (dotted IPv4, compressed IPv6 without brackets). So no other
//! spelling of an address that is not allowed gets through. Ports and
//! schemes are not part of the match (as in Extism).
//!
//! **Loopback is reached only when the list names it.** A glob (`*`,
//! `*.example.com`) never matches a loopback destination: a loopback or
//! unspecified IP literal (`127.0.0.1` in any spelling, `[::1]`,
//! `0.0.0.0`), the names `localhost` and `*.localhost`, and — checked on
//! the addresses a name resolves to, when the connection is made — any
//! name whose DNS answer is a loopback address. Only a pattern naming that
//! host exactly (`127.0.0.1`, `localhost`, `dev.internal`) lets a request
//! reach the host's own services, such as the wasmhost API itself.
//!
//! ```
//! use wasmhost::capabilities::Http;
//! let http = Http::allow(["api.example.com", "*.internal", "10.0.0.1"]);
//! assert!(http.allows("api.example.com"));
//! assert!(http.allows("API.Example.COM."));
//! assert!(http.allows("db.internal"));
//! assert!(!http.allows("example.org"));
//! assert!(http.allows("10.1") && http.allows("[::ffff:10.0.0.1]"));
//! assert!(!http.allows("127.1") && !http.allows("0x7f.0.0.1"));
//! // A glob does not reach loopback; naming it does.
//! assert!(!Http::allow(["*"]).allows("localhost") && !Http::allow(["*"]).allows("127.0.0.1"));
//! assert!(Http::allow(["localhost"]).allows("localhost"));
//! ```

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{IpAddr, Ipv6Addr};
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

    /// Checks one allow-list pattern: a host name, an IP literal, or a glob
    /// of names (`*.example.com`, `*`). A URL, a `host:port` (ports are not
    /// matched) or a pattern with spaces would never match anything, so
    /// they are refused, with the reason.
    ///
    /// ```
    /// use wasmhost::Http;
    /// for ok in ["example.com", "*.example.com", "*", "127.0.0.1", "[::1]", "::1"] {
    ///     assert!(Http::check_pattern(ok).is_ok(), "{ok}");
    /// }
    /// for bad in ["", "https://x.com/", "x.com:8080", "a b", "a,b", "[a-"] {
    ///     assert!(Http::check_pattern(bad).is_err(), "{bad}");
    /// }
    /// ```
    pub fn check_pattern(pattern: &str) -> std::result::Result<(), String> {
        if ip_literal(pattern).is_some() {
            return Ok(());
        }
        if pattern.is_empty() {
            return Err("it is empty".to_string());
        }
        if let Some(c) = pattern
            .chars()
            .find(|c| c.is_whitespace() || matches!(c, '/' | ',' | '@' | ':' | '#' | '\\'))
        {
            return Err(format!(
                "`{c}` cannot be in a host name (a pattern is a host, not a URL, and ports are not matched)"
            ));
        }
        glob::Pattern::new(pattern)
            .map(|_| ())
            .map_err(|e| format!("it is not a valid pattern: {e}"))
    }

    /// Whether a request to `host` (a URL's host: a name, an IPv4 literal in
    /// any spelling, or an IPv6 literal with or without brackets) may go
    /// out. A host that is not a valid host never may.
    pub fn allows(&self, host: &str) -> bool {
        Host::parse(host).is_ok_and(|h| self.allows_host(&h))
    }

    /// Whether a request to the canonical `host` may go out. A loopback
    /// host is allowed only by a pattern naming it exactly, never by a
    /// glob.
    pub fn allows_host(&self, host: &Host) -> bool {
        if host.is_loopback() {
            return self.names_exactly(host);
        }
        let spelled = host.to_string();
        self.allowed_hosts.iter().any(|pattern| {
            // An IP literal pattern is an address: it matches every
            // spelling of it. (`[::1]` is tried here before it can be
            // read as a glob character class.)
            if let Some(ip) = ip_literal(pattern) {
                return matches!(host, Host::Ip(h) if *h == ip);
            }
            let pattern = pattern.strip_suffix('.').unwrap_or(pattern);
            match glob::Pattern::new(pattern) {
                Ok(p) => p.matches_with(
                    &spelled,
                    glob::MatchOptions {
                        case_sensitive: false,
                        ..Default::default()
                    },
                ),
                Err(_) => pattern.eq_ignore_ascii_case(&spelled),
            }
        })
    }
}

impl Http {
    /// Whether a connection to `addr`, one of the addresses `host` resolved
    /// to, may be made: an address that is not loopback (or unspecified,
    /// which reaches loopback) always, a loopback one only when a pattern
    /// names `host` exactly (not through a glob). So a name the list
    /// allows by a glob cannot be pointed at the host's own services by
    /// whoever controls its DNS.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use wasmhost::capabilities::http::{Host, Http};
    /// let lo: IpAddr = "127.0.0.1".parse().unwrap();
    /// let out: IpAddr = "93.184.216.34".parse().unwrap();
    /// let name = Host::parse("svc.example.com").unwrap();
    /// assert!(Http::allow(["*.example.com"]).allows_address(&name, out));
    /// assert!(!Http::allow(["*.example.com"]).allows_address(&name, lo));
    /// assert!(Http::allow(["svc.example.com"]).allows_address(&name, lo));
    /// ```
    pub fn allows_address(&self, host: &Host, addr: IpAddr) -> bool {
        !is_loopback_ip(canonical_ip(addr)) || self.names_exactly(host)
    }

    /// Whether a pattern that is not a glob names `host`: an IP literal of
    /// its address, or its name.
    fn names_exactly(&self, host: &Host) -> bool {
        self.allowed_hosts.iter().any(|pattern| {
            if let Some(ip) = ip_literal(pattern) {
                return matches!(host, Host::Ip(h) if *h == ip);
            }
            if pattern.contains(['*', '?', '[']) {
                return false;
            }
            matches!(Host::parse(pattern), Ok(Host::Name(p)) if matches!(host, Host::Name(h) if *h == p))
        })
    }
}

/// A loopback address, or the unspecified one (a connection to `0.0.0.0`
/// or `::` reaches the local host).
fn is_loopback_ip(ip: IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified()
}

/// A host in the canonical form the allow-list compares: an IP address or
/// a DNS name. Its `Display` is the spelling globs are matched against.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use wasmhost::capabilities::http::Host;
/// let lo = Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
/// for spelling in ["127.0.0.1", "127.1", "0x7f.0.0.1", "0177.0.0.1", "2130706433", "[::ffff:127.0.0.1]", "::ffff:7f00:1"] {
///     assert_eq!(Host::parse(spelling).unwrap(), lo, "{spelling}");
/// }
/// assert_eq!(Host::parse("Example.COM.").unwrap().to_string(), "example.com");
/// assert_eq!(Host::parse("[::1]").unwrap().to_string(), "::1");
/// assert!(Host::parse("a b").is_err() && Host::parse("").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IP address; an IPv4-mapped IPv6 address is its IPv4 address.
    Ip(IpAddr),
    /// A DNS name: lowercase ASCII (IDNA-mapped), without a trailing dot.
    Name(String),
}

impl Host {
    /// The canonical form of a URL's host (brackets around an IPv6 literal
    /// optional). IPv4 literals are read as a resolver reads them: one to
    /// four parts, each decimal, octal (`0` prefix) or hexadecimal (`0x`),
    /// the last filling the remaining bytes (the WHATWG URL host parser,
    /// which agrees with `inet_aton`). Errors: `bad_input` for a host that
    /// is empty, has forbidden characters or is an invalid IP literal.
    pub fn parse(host: &str) -> Result<Host> {
        let bad = |why: &dyn std::fmt::Display| {
            Error::bad_input(format!("`{host}` is not a valid host: {why}"))
        };
        if host.is_empty() {
            return Err(bad(&"it is empty"));
        }
        // A bare IPv6 literal (no brackets), as a pattern may be written.
        if let Ok(v6) = host.parse::<Ipv6Addr>() {
            return Ok(Host::Ip(canonical_ip(IpAddr::V6(v6))));
        }
        match url::Host::parse(host).map_err(|e| bad(&e))? {
            url::Host::Ipv4(v4) => Ok(Host::Ip(IpAddr::V4(v4))),
            url::Host::Ipv6(v6) => Ok(Host::Ip(canonical_ip(IpAddr::V6(v6)))),
            url::Host::Domain(name) => {
                let name = name.strip_suffix('.').unwrap_or(&name);
                if name.is_empty() {
                    return Err(bad(&"it has no name"));
                }
                Ok(Host::Name(name.to_ascii_lowercase()))
            }
        }
    }

    /// Whether this is the local host by its spelling: a loopback or
    /// unspecified address, `localhost` or a name under `.localhost`
    /// (RFC 6761 reserves them for loopback). A name that resolves to
    /// loopback is caught by [`Http::allows_address`] instead.
    pub fn is_loopback(&self) -> bool {
        match self {
            Host::Ip(ip) => is_loopback_ip(*ip),
            Host::Name(name) => name == "localhost" || name.ends_with(".localhost"),
        }
    }

    /// The IP address, for an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Ip(ip) => Some(*ip),
            Host::Name(_) => None,
        }
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as its IPv4 address,
/// which is where a connection to it goes; any other address as it is.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The address a pattern names, when it is an IP literal (in any spelling
/// [`Host::parse`] reads) rather than a name or a glob.
fn ip_literal(pattern: &str) -> Option<IpAddr> {
    Host::parse(pattern).ok().and_then(|h| h.ip())
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
    let canonical = Host::parse(host).ok().filter(|h| grant.allows_host(h));
    let Some(canonical) = canonical else {
        return Err(denied(format!(
            "host `{host}` is not in the allowed hosts [{}]",
            grant.allowed_hosts.join(", ")
        )));
    };
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
    // Redirects are never followed (ureq follows 10 by default): the
    // guest gets the 3xx, and a request it makes to the new location is
    // checked against the allow-list like any other.
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(timeout)
        .build();
    let resolver = Checked::new(grant.clone(), canonical.clone());
    let refused = resolver.refused();
    let agent = resolver.agent(config);
    let result = match body {
        Some(b) => agent.run(builder.body(b.to_vec()).map_err(|e| failed(&e))?),
        None => agent.run(builder.body(()).map_err(|e| failed(&e))?),
    };
    let response = result.map_err(|e| match e {
        _ if refused.load(std::sync::atomic::Ordering::Acquire) => denied(format!(
            "`{host}` resolves to a loopback address, which only a pattern naming \
             `{canonical}` exactly (not a glob) allows"
        )),
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

/// A ureq resolver that keeps only the addresses `grant` lets `host`
/// reach ([`Http::allows_address`]): a name allowed by a glob whose DNS
/// answer is loopback resolves to nothing, and [`Checked::refused`] then
/// says why. Used for Extism's `http_request` and for modules fetched by
/// URL (wasmhost-store), so every ureq connection of the host is checked.
#[derive(Debug)]
pub struct Checked {
    grant: Http,
    host: Host,
    refused: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Checked {
    /// A resolver for requests to `host` under `grant`.
    pub fn new(grant: Http, host: Host) -> Self {
        Checked {
            grant,
            host,
            refused: Default::default(),
        }
    }

    /// A flag that is set once a resolution was refused (share it before
    /// the resolver moves into an agent).
    pub fn refused(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.refused.clone()
    }

    /// A ureq agent with `config` whose connections go through this
    /// resolver.
    pub fn agent(self, config: ureq::config::Config) -> ureq::Agent {
        ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::new(),
            self,
        )
    }
}

impl ureq::unversioned::resolver::Resolver for Checked {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> std::result::Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        use ureq::unversioned::resolver::DefaultResolver;
        let all = DefaultResolver::default().resolve(uri, config, timeout)?;
        let mut kept = self.empty();
        for addr in all.iter() {
            if self.grant.allows_address(&self.host, addr.ip()) {
                kept.push(*addr);
            }
        }
        if kept.is_empty() {
            self.refused
                .store(true, std::sync::atomic::Ordering::Release);
            return Err(ureq::Error::HostNotFound);
        }
        Ok(kept)
    }
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
    fn ip_spellings_are_matched_as_their_address() {
        let loopback = [
            "127.0.0.1",
            "127.1",
            "127.0.1",
            "0x7f.0.0.1",
            "0x7F.1",
            "0177.0.0.1",
            "2130706433",
            "0x7f000001",
            "127.0.0.1.",
            "[::ffff:127.0.0.1]",
            "[::ffff:7f00:1]",
            "::ffff:127.0.0.1",
        ];
        // Not allowed, in any spelling.
        let h = Http::allow(["localhost", "*.example.com", "10.*"]);
        for s in loopback {
            assert!(!h.allows(s), "{s} got through");
        }
        // Allowed, in any spelling, whichever spelling the pattern uses.
        for pattern in ["127.0.0.1", "127.1", "[::ffff:127.0.0.1]", "::ffff:7f00:1"] {
            let h = Http::allow([pattern]);
            for s in loopback {
                assert!(h.allows(s), "{pattern} does not allow {s}");
            }
            assert!(!h.allows("127.0.0.2") && !h.allows("[::1]"), "{pattern}");
        }
        // IPv6 patterns, bracketed or not; the loopbacks are two addresses.
        let h = Http::allow(["[::1]"]);
        assert!(h.allows("[::1]") && h.allows("::1") && h.allows("[0:0::1]"));
        assert!(!h.allows("127.0.0.1"));
        // Globs see the canonical spelling.
        let h = Http::allow(["10.0.0.*"]);
        assert!(h.allows("10.1") && h.allows("[::ffff:10.0.0.9]"));
        assert!(!h.allows("10.1.0.1"));
    }

    #[test]
    fn globs_never_reach_loopback() {
        let loopback = [
            "127.0.0.1",
            "127.1",
            "0x7f.0.0.1",
            "2130706433",
            "[::ffff:127.0.0.1]",
            "127.0.0.2",
            "[::1]",
            "0.0.0.0",
            "0",
            "[::]",
            "localhost",
            "LOCALHOST.",
            "a.localhost",
        ];
        for pattern in [
            "*",
            "127.0.0.*",
            "*.localhost",
            "local*",
            "*.*.*.*",
            "[::1]*",
        ] {
            let h = Http::allow([pattern]);
            for s in loopback {
                assert!(!h.allows(s), "{pattern} let {s} through");
            }
        }
        // Named exactly, loopback is reached.
        assert!(Http::allow(["localhost"]).allows("localhost"));
        assert!(Http::allow(["a.localhost"]).allows("A.localhost."));
        assert!(!Http::allow(["localhost"]).allows("a.localhost"));
        assert!(Http::allow(["0.0.0.0"]).allows("0"));
        // Resolved addresses: loopback only for a name given exactly.
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let lo6: IpAddr = "::1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let out: IpAddr = "192.0.2.7".parse().unwrap();
        let name = Host::parse("svc.example.com").unwrap();
        let glob = Http::allow(["*.example.com", "*"]);
        assert!(glob.allows_address(&name, out));
        for a in [lo, lo6, mapped, "0.0.0.0".parse().unwrap()] {
            assert!(!glob.allows_address(&name, a), "{a}");
        }
        assert!(Http::allow(["svc.example.com"]).allows_address(&name, lo));
        assert!(Http::allow(["localhost"]).allows_address(&Host::parse("localhost").unwrap(), lo6));
    }

    #[test]
    fn names_are_compared_canonically() {
        let h = Http::allow(["api.example.com", "*.Example.ORG."]);
        assert!(h.allows("API.example.com") && h.allows("api.example.com."));
        assert!(h.allows("a.example.org") && h.allows("a.example.org."));
        assert!(!h.allows("api.example.com.evil.net"));
        // Percent-encoding and IDNA are undone before matching.
        assert!(h.allows("api%2Eexample.com"));
        assert!(!h.allows("%31%32%37.0.0.1"));
        assert!(Http::allow(["127.0.0.1"]).allows("%31%32%37.1"));
        // Not hosts at all.
        for s in ["", ".", "a b", "a/b", "[::1", "1.2.3.4.5", "256.0.0.1"] {
            assert!(!Http::allow(["*"]).allows(s), "{s:?}");
        }
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
