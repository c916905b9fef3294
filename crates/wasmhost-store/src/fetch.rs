//! Fetching modules by URL (an Extism manifest's `{"url": …}`), under an
//! allow-list of hosts.
//!
//! A [`UrlFetcher`] fetches only from hosts its allow-list matches
//! (`example.com`, `*.example.com`, `*`: the same patterns as a plugin's
//! allowed hosts), and follows redirects itself so that every hop is checked
//! against the list: a redirect to a host not on it is refused like the
//! first request would be. By default nothing is allowed: a manifest that
//! names a URL fails with `capability_denied` until the operator allows the
//! host (`--allow-url-host` on the command line and for `serve`). The body
//! is read up to [`UrlFetcher::max_bytes`]; the manifest's `hash`, when it
//! has one, is checked by the caller before the bytes are compiled.
//!
//! ```
//! use wasmhost_store::fetch::UrlFetcher;
//! let f = UrlFetcher::allow(["github.com", "*.githubusercontent.com"]);
//! assert!(f.allows("objects.githubusercontent.com"));
//! assert!(!f.allows("example.com"));
//! assert!(!UrlFetcher::none().allows("github.com"));
//! ```

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use wasmhost::capabilities::http::Checked;
use wasmhost::{Error, Http, Result};

/// Most bytes of a module fetched by URL, by default: 256 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;

/// Most redirects followed.
const MAX_REDIRECTS: usize = 10;

/// A module named by URL: an Extism manifest's `url`, `method` and
/// `headers`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UrlSource {
    /// An `http` or `https` URL.
    pub url: String,
    /// The request method (`GET` when not given).
    pub method: Option<String>,
    /// Request headers.
    pub headers: BTreeMap<String, String>,
}

impl UrlSource {
    /// A `GET` of `url`, checked to be an `http` or `https` URL with a host.
    pub fn new(url: &str) -> Result<UrlSource> {
        host_of(url).map_err(Error::bad_input)?;
        Ok(UrlSource {
            url: url.to_string(),
            method: None,
            headers: BTreeMap::new(),
        })
    }

    /// The same request with `method`.
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self
    }

    /// The same request with one more header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }
}

/// The host of an `http`/`https` URL, or what is wrong with it.
pub(crate) fn host_of(url: &str) -> std::result::Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a valid URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("`{url}`: only http and https URLs can be fetched"));
    }
    parsed
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
        .ok_or_else(|| format!("`{url}` has no host"))
}

/// Fetches modules by URL from allowed hosts only. Cheap to clone.
#[derive(Debug, Clone)]
pub struct UrlFetcher {
    hosts: Http,
    max_bytes: u64,
    timeout: Duration,
}

impl Default for UrlFetcher {
    fn default() -> Self {
        UrlFetcher::none()
    }
}

impl UrlFetcher {
    /// A fetcher that allows no host: every URL is `capability_denied`.
    pub fn none() -> Self {
        UrlFetcher::allow(Vec::<String>::new())
    }

    /// A fetcher for the hosts matching `patterns`.
    pub fn allow<I: IntoIterator<Item = S>, S: Into<String>>(patterns: I) -> Self {
        UrlFetcher {
            hosts: Http::allow(patterns),
            max_bytes: DEFAULT_MAX_BYTES,
            timeout: Duration::from_secs(60),
        }
    }

    /// The most bytes a module may have ([`DEFAULT_MAX_BYTES`] by default);
    /// a longer body is `memory_limit`.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The deadline of one fetch, redirects included (60 s by default).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same fetcher, allowing the host of `url` too (a URL the
    /// operator named); `what` names the module in errors.
    pub fn also_allowing_host_of(&self, url: &str, what: &str) -> Result<UrlFetcher> {
        let host = host_of(url).map_err(|e| Error::bad_input(format!("{what}: {e}")))?;
        let mut patterns = self.hosts.allowed_hosts.clone();
        patterns.push(host);
        Ok(UrlFetcher {
            hosts: Http::allow(patterns),
            max_bytes: self.max_bytes,
            timeout: self.timeout,
        })
    }

    /// The allowed host patterns.
    pub fn allowed_hosts(&self) -> &[String] {
        &self.hosts.allowed_hosts
    }

    /// Whether a module may be fetched from `host`.
    pub fn allows(&self, host: &str) -> bool {
        self.hosts.allows(host)
    }

    /// Refuses `url` unless its host is allowed; `what` names the module.
    fn check(&self, url: &str, what: &str) -> Result<()> {
        let host = host_of(url).map_err(|e| Error::bad_input(format!("{what}: {e}")))?;
        if self.allows(&host) {
            return Ok(());
        }
        Err(Error::CapabilityDenied {
            capability: "fetch".to_string(),
            detail: format!(
                "{what}: fetching from host `{host}` is not allowed (allowed URL hosts: [{}]); \
                 allow it with --allow-url-host {host}",
                self.hosts.allowed_hosts.join(", ")
            ),
        })
    }

    /// Fetches `src` (on the blocking pool of the current tokio runtime):
    /// the body of its final, successful (2xx) response. `what` names the
    /// module in errors. A host not allowed, at any hop, is
    /// `capability_denied`; 404 and 410 are `not_found`; a body over
    /// [`UrlFetcher::max_bytes`] is `memory_limit`; any other failure is
    /// `bad_input` with the reason.
    pub async fn fetch(&self, src: &UrlSource, what: &str) -> Result<Vec<u8>> {
        self.check(&src.url, what)?;
        let fetcher = self.clone();
        let src = src.clone();
        let what = what.to_string();
        tokio::task::spawn_blocking(move || fetcher.fetch_blocking(&src, &what))
            .await
            .map_err(|e| Error::internal(format!("fetching a module stopped: {e}")))?
    }

    fn fetch_blocking(&self, src: &UrlSource, what: &str) -> Result<Vec<u8>> {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(self.timeout))
            .build();
        let failed = |url: &str, e: &dyn std::fmt::Display| {
            Error::bad_input(format!("{what}: GET {url}: {e}"))
        };
        let mut url = src.url.clone();
        let mut method = src.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
        for _ in 0..=MAX_REDIRECTS {
            self.check(&url, what)?;
            let mut builder = ureq::http::Request::builder()
                .method(method.as_str())
                .uri(url.as_str());
            for (k, v) in &src.headers {
                builder = builder.header(k, v);
            }
            let request = builder.body(()).map_err(|e| failed(&url, &e))?;
            // Connections go only where the list lets this host reach: a
            // name allowed by a glob whose DNS answer is loopback is refused.
            let host = host_of(&url).map_err(|e| Error::bad_input(format!("{what}: {e}")))?;
            let canonical = wasmhost::capabilities::http::Host::parse(&host)?;
            let resolver = Checked::new(self.hosts.clone(), canonical);
            let refused = resolver.refused();
            let agent = resolver.agent(config.clone());
            let response = agent.run(request).map_err(|e| match e {
                _ if refused.load(std::sync::atomic::Ordering::Acquire) => {
                    Error::CapabilityDenied {
                        capability: "fetch".to_string(),
                        detail: format!(
                            "{what}: `{host}` resolves to a loopback address, which only an \
                             allowed URL host naming it exactly (not a glob) reaches"
                        ),
                    }
                }
                ureq::Error::Timeout(_) => Error::Timeout {
                    limit: self.timeout,
                },
                other => failed(&url, &other),
            })?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| failed(&url, &format!("{status} without a Location")))?;
                let next = url::Url::parse(&url)
                    .and_then(|base| base.join(location))
                    .map_err(|e| failed(&url, &format!("bad redirect `{location}`: {e}")))?;
                url = next.to_string();
                if status.as_u16() == 303 {
                    method = "GET".to_string();
                }
                continue;
            }
            if status.as_u16() == 404 || status.as_u16() == 410 {
                return Err(Error::not_found(format!("{what}: {url} ({status})")));
            }
            if !status.is_success() {
                return Err(failed(&url, &status));
            }
            let mut body = Vec::new();
            response
                .into_body()
                .into_reader()
                .take(self.max_bytes.saturating_add(1))
                .read_to_end(&mut body)
                .map_err(|e| failed(&url, &e))?;
            if body.len() as u64 > self.max_bytes {
                return Err(Error::MemoryLimit {
                    message: format!(
                        "{what}: {url} is longer than the {}-byte limit for fetched modules",
                        self.max_bytes
                    ),
                });
            }
            return Ok(body);
        }
        Err(failed(
            &src.url,
            &format!("more than {MAX_REDIRECTS} redirects"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(UrlSource::new("https://example.com/p.wasm").is_ok());
        for bad in ["file:///etc/passwd", "not a url", "ftp://example.com/x"] {
            let e = UrlSource::new(bad).expect_err(bad);
            assert_eq!(e.code(), wasmhost::ErrorCode::BadInput, "{bad}");
        }
        assert_eq!(host_of("http://[::1]:8080/x").as_deref(), Ok("::1"));
    }

    #[test]
    fn hosts_not_allowed_are_denied_before_any_request() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // Port 9 on loopback would refuse; the allow-list answers first.
        let src = UrlSource::new("http://127.0.0.1:9/p.wasm").expect("url");
        for f in [UrlFetcher::none(), UrlFetcher::allow(["example.com"])] {
            let e = rt.block_on(f.fetch(&src, "module")).expect_err("denied");
            assert_eq!(e.code(), wasmhost::ErrorCode::CapabilityDenied, "{e}");
            assert!(e.to_string().contains("--allow-url-host 127.0.0.1"), "{e}");
        }
    }

    /// Loopback is fetched from only when an allowed URL host names it
    /// exactly: not through `*`, in any spelling, nor through a name whose
    /// DNS answer is loopback (the machine's own host name, where
    /// /etc/hosts maps it there).
    #[test]
    fn globs_do_not_fetch_from_loopback() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let own = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let own = own.trim();
        let resolves_to_loopback = !own.is_empty()
            && std::net::ToSocketAddrs::to_socket_addrs(&(own, port))
                .is_ok_and(|mut a| a.all(|a| a.ip().is_loopback()));
        let mut hosts = vec![
            "127.0.0.1",
            "127.1",
            "[::ffff:127.0.0.1]",
            "localhost",
            "0.0.0.0",
        ];
        if resolves_to_loopback {
            hosts.push(own);
        }
        let f = UrlFetcher::allow(["*"]);
        for host in hosts {
            let src = UrlSource::new(&format!("http://{host}:{port}/p.wasm")).expect("url");
            let e = rt.block_on(f.fetch(&src, "module")).expect_err(host);
            assert_eq!(
                e.code(),
                wasmhost::ErrorCode::CapabilityDenied,
                "{host}: {e}"
            );
        }
        assert!(
            listener.accept().is_err(),
            "a refused fetch reached loopback"
        );
    }
}
