//! OCI registries: modules published as OCI artifacts, in the wasm layout
//! of the [`oci_wasm`] crate (the one wkg / wasm-pkg-tools, wasmCloud and
//! `wash` use): an image manifest with one `application/wasm` layer (the
//! module's bytes) and an `application/vnd.wasm.config.v0+json` config.
//!
//! * [`OciReference`] — `[oci://]REGISTRY/REPOSITORY[:TAG|@sha256:…]`. The
//!   registry is never implied: a reference without one is a local store
//!   name.
//! * [`Registry`] — how registries are reached: which hosts speak plain
//!   HTTP (loopback always may), credentials (given, from
//!   `WASMHOST_REGISTRY_USER`/`WASMHOST_REGISTRY_PASSWORD`, or from the
//!   docker config file), and an optional [`Progress`] for transfers.
//!   [`Registry::pull_into`] fetches a module into a [`ModuleStore`] by
//!   digest (skipping the download when the store has it) and tags it
//!   `REGISTRY/REPOSITORY:TAG` there; [`Registry::push`] publishes one.
//!
//! Every failure is a [`wasmhost::Error`] with a stable code: an unknown
//! tag or repository is `not_found`, a registry that cannot be reached is
//! `unavailable`, a manifest that is not a wasm artifact is
//! `invalid_module` naming the media types it has, refused credentials are
//! `capability_denied`, bytes that do not match their digest are
//! `corrupt`.
//!
//! ```no_run
//! # async fn demo() -> wasmhost::Result<()> {
//! use wasmhost_store::{ModuleStore, oci::{OciReference, Registry}};
//! let store = ModuleStore::memory();
//! let r: OciReference = "oci://ghcr.io/acme/hello:v1".parse()?;
//! let pulled = Registry::from_env().pull_into(&r, &store).await?;
//! println!("{} as {}", pulled.digest, pulled.local.as_deref().unwrap_or("-"));
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use futures::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference as OciRef};
use oci_wasm::{ToConfig, WASM_LAYER_MEDIA_TYPE, WASM_MANIFEST_MEDIA_TYPE, WasmConfig};
use sha2::Digest as _;
use wasmhost::{Digest, Error, ModuleKind, Result};

use crate::{ModuleStore, Reference};

/// The prefix that marks an OCI reference wherever a MODULE is accepted.
pub const SCHEME: &str = "oci://";

/// Largest module accepted from a registry (1 GiB).
const MAX_MODULE_BYTES: u64 = 1 << 30;

/// Chunk size of uploads (progress is reported per chunk).
const PUSH_CHUNK: usize = 1 << 20;

/// A module in an OCI registry: `[oci://]REGISTRY/REPOSITORY[:TAG|@sha256:…]`.
///
/// The registry is the part before the first `/` and must look like a
/// host: it contains a `.` or a `:` (a port), or is `localhost`. A
/// reference without tag or digest means the tag `latest`.
///
/// ```
/// use wasmhost_store::oci::OciReference;
/// let r: OciReference = "oci://127.0.0.1:5000/tools/fmt:v1".parse()?;
/// assert_eq!(r.registry(), "127.0.0.1:5000");
/// assert_eq!(r.repository(), "tools/fmt");
/// assert_eq!(r.local_name()?.to_string(), "127.0.0.1_5000/tools/fmt:v1");
/// assert!("tools/fmt:v1".parse::<OciReference>().is_err());
/// # Ok::<(), wasmhost::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct OciReference {
    inner: OciRef,
}

impl fmt::Debug for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OciReference({self})")
    }
}

impl OciReference {
    /// Whether `s` is written as an OCI reference: it starts with
    /// `oci://`, or its first `/`-separated part looks like a registry
    /// host (a `.` or `:` in it, or `localhost`), as docker decides.
    pub fn looks_like(s: &str) -> bool {
        if s.starts_with(SCHEME) {
            return true;
        }
        match s.split_once('/') {
            Some((first, rest)) if !rest.is_empty() => looks_like_host(first),
            _ => false,
        }
    }

    /// The registry host (and port), e.g. `ghcr.io` or `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    /// The repository, e.g. `acme/hello`.
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The tag (`latest` when neither a tag nor a digest was given).
    pub fn tag(&self) -> Option<&str> {
        match (self.inner.tag(), self.inner.digest()) {
            (Some(t), _) => Some(t),
            (None, Some(_)) => None,
            (None, None) => Some("latest"),
        }
    }

    /// The manifest digest the reference pins, if any.
    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    /// The `name:tag` a pulled module is kept under in the local store:
    /// `REGISTRY/REPOSITORY:TAG`, the registry lowercased and a port's `:`
    /// written `_` (names have no `:`). `None`-tagged (digest-only)
    /// references are kept by digest only, so this is an error for them.
    pub fn local_name(&self) -> Result<Reference> {
        let tag = self
            .tag()
            .ok_or_else(|| Error::bad_input(format!("`{self}` has no tag to keep it under")))?;
        let name = format!(
            "{}/{}",
            self.registry().to_ascii_lowercase().replace(':', "_"),
            self.repository()
        );
        Reference::named(&name, tag)
    }

    /// [`local_name`](Self::local_name) as (name, tag), or `None` for a
    /// reference by digest alone (kept by its digest, untagged).
    fn local_name_and_tag(&self) -> Result<Option<(String, String)>> {
        if self.tag().is_none() {
            return Ok(None);
        }
        match self.local_name()? {
            Reference::Name { name, tag } => Ok(Some((name, tag))),
            Reference::Digest(_) => Err(Error::internal("a local name is a name")),
        }
    }

    fn for_manifest(&self, digest: &str) -> OciRef {
        OciRef::with_digest(
            self.registry().to_string(),
            self.repository().to_string(),
            digest.to_string(),
        )
    }
}

impl FromStr for OciReference {
    type Err = Error;

    /// Parses `[oci://]REGISTRY/REPOSITORY[:TAG][@sha256:…]`.
    fn from_str(s: &str) -> Result<Self> {
        let text = s.strip_prefix(SCHEME).unwrap_or(s);
        let usage = "an OCI reference is [oci://]REGISTRY/REPOSITORY[:TAG|@sha256:…], \
                     the registry a host such as ghcr.io or 127.0.0.1:5000";
        match text.split_once('/') {
            Some((host, rest)) if looks_like_host(host) && !rest.is_empty() => {}
            _ => {
                return Err(Error::bad_input(format!(
                    "`{}` names no registry: {usage}",
                    s.escape_debug()
                )));
            }
        }
        let inner = parse_reference(text).map_err(|e| {
            Error::bad_input(format!(
                "invalid OCI reference `{}`: {e} ({usage})",
                s.escape_debug()
            ))
        })?;
        Ok(OciReference { inner })
    }
}

impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry(), self.repository())?;
        if let Some(t) = self.inner.tag() {
            write!(f, ":{t}")?;
        }
        if let Some(d) = self.inner.digest() {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `REGISTRY/REPOSITORY[:TAG][@ALGORITHM:HEX]` by distribution's grammar,
/// without `Reference`'s `FromStr`: that compiles a large regex on first use
/// (some 30 ms, a third of a 10 MB pull from a local registry).
fn parse_reference(text: &str) -> std::result::Result<OciRef, String> {
    let (name, digest) = match text.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (text, None),
    };
    let (registry, path) = name
        .split_once('/')
        .ok_or_else(|| "no repository".to_string())?;
    let host_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    if registry.is_empty() || !registry.chars().all(host_ok) {
        return Err(format!("`{registry}` is not a registry host"));
    }
    let (repository, tag) = match path.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
        _ => (path, None),
    };
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
        !b.is_empty()
            && alnum(b[0])
            && alnum(b[b.len() - 1])
            && b.iter()
                .all(|&x| alnum(x) || matches!(x, b'.' | b'_' | b'-'))
            && !c.contains("..")
            && !c.contains("___")
            && !c.contains("._")
            && !c.contains("_.")
            && !c.contains(".-")
            && !c.contains("-.")
            && !c.contains("_-")
            && !c.contains("-_")
    };
    if repository.is_empty() || repository.len() > 255 || !repository.split('/').all(component_ok) {
        return Err(format!(
            "repository `{repository}`: path components of lowercase letters and digits, \
             joined by `.`, `_`, `__` or dashes"
        ));
    }
    if let Some(t) = tag {
        let b = t.as_bytes();
        if b.is_empty()
            || b.len() > 128
            || !(b[0].is_ascii_alphanumeric() || b[0] == b'_')
            || !b
                .iter()
                .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
        {
            return Err(format!(
                "tag `{t}`: 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`"
            ));
        }
    }
    if let Some(d) = digest {
        let ok = d.split_once(':').is_some_and(|(alg, hex)| {
            !alg.is_empty()
                && alg
                    .bytes()
                    .all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || b"+._-".contains(&x))
                && hex.len() >= 32
                && hex.bytes().all(|x| x.is_ascii_hexdigit())
        });
        if !ok {
            return Err(format!(
                "digest `{d}`: ALGORITHM:HEX, as sha256:<64 hex digits>"
            ));
        }
    }
    // Docker Hub's official images live under `library/`: `docker.io/alpine`
    // is `docker.io/library/alpine`, as docker, oras and oci-spec read it.
    let repository =
        if matches!(registry, "docker.io" | "index.docker.io") && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
    let registry = registry.to_string();
    Ok(match (tag, digest) {
        (Some(t), Some(d)) => {
            OciRef::with_tag_and_digest(registry, repository, t.to_string(), d.to_string())
        }
        (None, Some(d)) => OciRef::with_digest(registry, repository, d.to_string()),
        (Some(t), None) => OciRef::with_tag(registry, repository, t.to_string()),
        (None, None) => OciRef::with_tag(registry, repository, "latest".to_string()),
    })
}

fn looks_like_host(s: &str) -> bool {
    !s.is_empty() && (s == "localhost" || s.contains('.') || s.contains(':'))
}

/// Whether a registry host is on loopback (reached over plain HTTP without
/// asking, as docker does).
fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        registry.split(':').next().unwrap_or(registry)
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Reports the bytes of a transfer (the CLI draws a progress bar with it).
pub trait Progress: Send + Sync {
    /// A transfer of `total` bytes (if known) starts; `what` says of what.
    fn start(&self, what: &str, total: Option<u64>);
    /// `bytes` more were transferred.
    fn advance(&self, bytes: u64);
    /// The transfer ended (successfully or not).
    fn finish(&self);
}

/// Credentials for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password or token.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// How registries are reached: plain-HTTP hosts, credentials, progress.
#[derive(Clone, Default)]
pub struct Registry {
    insecure: Vec<String>,
    insecure_all: bool,
    credentials: Option<Credentials>,
    docker_config: Option<PathBuf>,
    progress: Option<Arc<dyn Progress>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("insecure", &self.insecure)
            .field("insecure_all", &self.insecure_all)
            .field("credentials", &self.credentials)
            .field("docker_config", &self.docker_config)
            .finish_non_exhaustive()
    }
}

/// A module pulled into a store.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Pulled {
    /// The module's digest (its layer's, and its store digest).
    pub digest: Digest,
    /// The manifest's digest in the registry.
    pub manifest_digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// Core module or component.
    pub kind: ModuleKind,
    /// The local `name:tag` it was tagged as (none for a digest reference).
    pub local: Option<String>,
    /// Whether the bytes were downloaded (false: the store had them).
    pub downloaded: bool,
}

/// A module pushed to a registry.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Pushed {
    /// The module's digest (its layer's).
    pub digest: Digest,
    /// The manifest's digest in the registry.
    pub manifest_digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// Core module or component.
    pub kind: ModuleKind,
    /// Where the manifest can be pulled from.
    pub url: String,
}

impl Registry {
    /// Settings from the environment: `WASMHOST_REGISTRY_USER` and
    /// `WASMHOST_REGISTRY_PASSWORD` (both, or neither), the hosts in
    /// `WASMHOST_REGISTRY_INSECURE` (comma-separated) reached over plain
    /// HTTP, and the docker config file (`$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`) for any registry without credentials.
    pub fn from_env() -> Self {
        let mut r = Registry::default();
        if let (Ok(user), Ok(password)) = (
            std::env::var("WASMHOST_REGISTRY_USER"),
            std::env::var("WASMHOST_REGISTRY_PASSWORD"),
        ) {
            r.credentials = Some(Credentials { user, password });
        }
        if let Ok(hosts) = std::env::var("WASMHOST_REGISTRY_INSECURE") {
            r.insecure = hosts
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_string)
                .collect();
        }
        r
    }

    /// Reaches `host` (`name[:port]`) over plain HTTP.
    pub fn insecure(mut self, host: impl Into<String>) -> Self {
        self.insecure.push(host.into());
        self
    }

    /// Reaches every registry over plain HTTP (`--insecure`).
    pub fn insecure_all(mut self, yes: bool) -> Self {
        self.insecure_all = yes;
        self
    }

    /// Uses these credentials (over the environment's and docker's).
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials {
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// Reads docker's `config.json` from this directory instead of
    /// `$DOCKER_CONFIG` or `~/.docker`.
    pub fn docker_config(mut self, dir: impl Into<PathBuf>) -> Self {
        self.docker_config = Some(dir.into());
        self
    }

    /// Reports transfers to `progress`.
    pub fn progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    fn client(&self, r: &OciReference) -> Client {
        let protocol = if self.insecure_all {
            ClientProtocol::Http
        } else {
            let mut hosts = self.insecure.clone();
            if is_loopback(r.registry()) {
                hosts.push(r.registry().to_string());
            }
            ClientProtocol::HttpsExcept(hosts)
        };
        Client::new(ClientConfig {
            protocol,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            ..ClientConfig::default()
        })
    }

    fn plain_http(&self, r: &OciReference) -> bool {
        self.insecure_all
            || is_loopback(r.registry())
            || self.insecure.iter().any(|h| h == r.registry())
    }

    /// The credentials for `registry`: given, else from the environment,
    /// else from docker's config file, else anonymous.
    fn auth(&self, registry: &str) -> Result<RegistryAuth> {
        if let Some(c) = &self.credentials {
            return Ok(RegistryAuth::Basic(c.user.clone(), c.password.clone()));
        }
        let dir = match &self.docker_config {
            Some(d) => Some(d.clone()),
            None => std::env::var_os("DOCKER_CONFIG")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker"))),
        };
        let Some(dir) = dir else {
            return Ok(RegistryAuth::Anonymous);
        };
        match docker::credentials(&dir.join("config.json"), registry)? {
            Some(c) => Ok(RegistryAuth::Basic(c.user, c.password)),
            None => Ok(RegistryAuth::Anonymous),
        }
    }

    /// Pulls the module `r` names into `store`: reads its manifest, checks
    /// that it is a wasm artifact, downloads the layer unless the store
    /// already has that digest, checks the bytes against the digest, stores
    /// them, and tags them `REGISTRY/REPOSITORY:TAG` (see
    /// [`OciReference::local_name`]) when `r` has a tag.
    pub async fn pull_into(&self, r: &OciReference, store: &ModuleStore) -> Result<Pulled> {
        let client = self.client(r);
        let auth = self.auth(r.registry())?;
        let (manifest, manifest_digest, _config) = client
            .pull_manifest_and_config(&r.inner, &auth)
            .await
            .map_err(|e| self.oci_error(r, "read the manifest of", e))?;
        let layer = wasm_layer(r, &manifest)?;
        let digest = layer_digest(r, &layer.digest)?;
        let size = u64::try_from(layer.size).unwrap_or(0);
        if size > MAX_MODULE_BYTES {
            return Err(Error::bad_input(format!(
                "`{r}`: its layer is {size} bytes, more than the {MAX_MODULE_BYTES} accepted"
            )));
        }
        let have = store.resolve(&Reference::Digest(digest)).await.is_ok();
        let downloaded = !have;
        let (stored, local) = if have {
            let local = r.local_name_and_tag()?;
            if let Some((name, tag)) = &local {
                store.tag(&Reference::Digest(digest), name, tag).await?;
            }
            (store.inspect(&Reference::Digest(digest)).await?, local)
        } else {
            let source = r.for_manifest(&manifest_digest);
            let mut stream = client
                .pull_blob_stream(&source, &layer)
                .await
                .map_err(|e| self.oci_error(r, "download the layer of", e))?;
            if let Some(p) = &self.progress {
                p.start(&format!("pulling {r}"), Some(size));
            }
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            // Hashed as it arrives, so the digest is ready when the last
            // chunk is.
            let mut hasher = sha2::Sha256::new();
            let mut failed = None;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(c) => {
                        if bytes.len() as u64 + c.len() as u64
                            > if size > 0 { size } else { MAX_MODULE_BYTES }
                        {
                            failed = Some(Error::bad_input(format!(
                                "`{r}`: the registry sent more bytes than its layer's size ({size})"
                            )));
                            break;
                        }
                        hasher.update(&c);
                        bytes.extend_from_slice(&c);
                        if let Some(p) = &self.progress {
                            p.advance(c.len() as u64);
                        }
                    }
                    Err(e) => {
                        failed = Some(download_error(r, &digest, e));
                        break;
                    }
                }
            }
            if let Some(p) = &self.progress {
                p.finish();
            }
            if let Some(e) = failed {
                return Err(e);
            }
            let actual = Digest::from_bytes(&hasher.finalize())?;
            if actual != digest {
                return Err(Error::Corrupt {
                    what: format!("the layer of `{r}`"),
                    expected: digest.to_string(),
                    actual: actual.to_string(),
                });
            }
            let local = r.local_name_and_tag()?;
            let stored = store
                .put_verified(
                    bytes,
                    digest,
                    local.as_ref().map(|(n, t)| (n.as_str(), t.as_str())),
                )
                .await?;
            (stored, local)
        };
        let local = local.map(|(name, tag)| format!("{name}:{tag}"));
        Ok(Pulled {
            digest,
            manifest_digest,
            size: stored.size,
            kind: stored.kind,
            local,
            downloaded,
        })
    }

    /// Publishes a module (wasm binary or WAT, validated first) as `r` in
    /// oci-wasm's layout: an `application/wasm` layer and a wasm config
    /// (`os` `wasip2` and the component's world for a component, `wasip1`
    /// for a core module).
    pub async fn push(&self, raw: Vec<u8>, r: &OciReference) -> Result<Pushed> {
        if r.inner.tag().is_none() {
            return Err(Error::bad_input(format!(
                "push needs a tag to publish `{r}` under (REGISTRY/REPOSITORY:TAG)"
            )));
        }
        let (binary, kind) = tokio::task::spawn_blocking(move || wasmhost::normalize(raw))
            .await
            .map_err(|e| Error::internal(format!("validation task failed: {e}")))??;
        let digest = Digest::of(&binary);
        let size = binary.len() as u64;
        let made = match kind {
            ModuleKind::Component => WasmConfig::from_raw_component(binary, None),
            ModuleKind::Core => WasmConfig::from_raw_module(binary, None),
        };
        let (config, layer) = made.map_err(|e| {
            Error::invalid_module(format!("cannot describe the module for OCI: {e:#}"), None)
        })?;
        let config = config
            .to_config()
            .map_err(|e| Error::internal(format!("cannot write the wasm config: {e:#}")))?;
        let mut manifest = OciImageManifest::build(std::slice::from_ref(&layer), &config, None);
        manifest.media_type = Some(WASM_MANIFEST_MEDIA_TYPE.to_string());
        let layer_digest = format!("sha256:{}", digest.hex());

        let client = self.client(r);
        let auth = self.auth(r.registry())?;
        client.store_auth_if_needed(r.registry(), &auth).await;
        let exists = client
            .blob_exists(&r.inner, &layer_digest)
            .await
            .map_err(|e| self.oci_error(r, "look for the module's layer in", e))?;
        if !exists {
            if let Some(p) = &self.progress {
                p.start(&format!("pushing {r}"), Some(size));
            }
            let progress = self.progress.clone();
            let data = layer.data.clone();
            let chunks = (0..data.len().div_ceil(PUSH_CHUNK)).map(move |i| {
                let chunk = data.slice(i * PUSH_CHUNK..((i + 1) * PUSH_CHUNK).min(data.len()));
                if let Some(p) = &progress {
                    p.advance(chunk.len() as u64);
                }
                Ok(chunk)
            });
            let pushed = client
                .push_blob_stream(&r.inner, futures::stream::iter(chunks), &layer_digest)
                .await;
            if let Some(p) = &self.progress {
                p.finish();
            }
            pushed.map_err(|e| self.oci_error(r, "upload the module to", e))?;
        }
        client
            .push_blob(&r.inner, config.data.clone(), &manifest.config.digest)
            .await
            .map_err(|e| self.oci_error(r, "upload the config to", e))?;
        let url = client
            .push_manifest(&r.inner, &manifest.into())
            .await
            .map_err(|e| self.oci_error(r, "write the manifest of", e))?;
        let manifest_digest = client
            .fetch_manifest_digest(&r.inner, &auth)
            .await
            .map_err(|e| self.oci_error(r, "read back the manifest of", e))?;
        Ok(Pushed {
            digest,
            manifest_digest,
            size,
            kind,
            url,
        })
    }

    /// The error an oci-client failure stands for, with a stable code.
    fn oci_error(&self, r: &OciReference, doing: &str, e: OciDistributionError) -> Error {
        let host = r.registry();
        let denied = || Error::CapabilityDenied {
            capability: format!("registry {host}"),
            detail: format!(
                "it refused to let us {doing} `{r}`: give credentials with \
                     --user/--password-stdin, WASMHOST_REGISTRY_USER/WASMHOST_REGISTRY_PASSWORD \
                     or `docker login {host}`"
            ),
        };
        let missing = || {
            Error::not_found(format!(
                "`{r}` in registry {host} (no such tag, digest or repository)"
            ))
        };
        match e {
            OciDistributionError::ImageManifestNotFoundError(_) => missing(),
            OciDistributionError::AuthenticationFailure(_)
            | OciDistributionError::UnauthorizedError { .. } => denied(),
            OciDistributionError::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::BlobUnknown
                            | OciErrorCode::NotFound
                    )
                }) {
                    missing()
                } else if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    denied()
                } else {
                    let msgs: Vec<String> = envelope
                        .errors
                        .iter()
                        .map(|e| format!("{:?}: {}", e.code, e.message))
                        .collect();
                    Error::bad_input(format!(
                        "registry {host} refused to {doing} `{r}`: {}",
                        msgs.join("; ")
                    ))
                }
            }
            OciDistributionError::ServerError { code, message, .. } => match code {
                404 => missing(),
                401 | 403 => denied(),
                500.. => Error::unavailable(format!(
                    "registry {host} failed to {doing} `{r}`: HTTP {code} {message}"
                )),
                _ => Error::bad_input(format!(
                    "registry {host} refused to {doing} `{r}`: HTTP {code} {message}"
                )),
            },
            OciDistributionError::RequestError(e) if e.status().is_some() => {
                match e.status().map(|s| s.as_u16()).unwrap_or(0) {
                    401 | 403 => denied(),
                    404 => missing(),
                    code @ 500.. => Error::unavailable(format!(
                        "registry {host} failed to {doing} `{r}`: HTTP {code}"
                    )),
                    code => Error::bad_input(format!(
                        "registry {host} refused to {doing} `{r}`: HTTP {code}"
                    )),
                }
            }
            OciDistributionError::RequestError(e) => {
                let mut msg = format!("cannot reach registry {host} to {doing} `{r}`: {e}");
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    msg.push_str(&format!(": {s}"));
                    source = s.source();
                }
                let lower = msg.to_ascii_lowercase();
                let tls = ["tls", "ssl", "certificate", "handshake"]
                    .iter()
                    .any(|w| lower.contains(w));
                if tls && !self.plain_http(r) {
                    msg.push_str(" (a registry that speaks plain HTTP needs --insecure)");
                }
                Error::unavailable(msg)
            }
            OciDistributionError::IncompatibleLayerMediaTypeError(t)
            | OciDistributionError::UnsupportedMediaTypeError(t) => Error::invalid_module(
                format!("`{r}` is not a wasm artifact: media type `{t}`"),
                None,
            ),
            OciDistributionError::ManifestParsingError(m)
            | OciDistributionError::VersionedParsingError(m) => Error::invalid_module(
                format!("`{r}` does not have an OCI image manifest: {m}"),
                None,
            ),
            OciDistributionError::ImageIndexParsingNoPlatformResolverError => {
                Error::invalid_module(
                    format!(
                        "`{r}` is an image index (a multi-platform image), not a wasm artifact"
                    ),
                    None,
                )
            }
            other => {
                Error::unavailable(format!("registry {host} failed to {doing} `{r}`: {other}"))
            }
        }
    }
}

/// The one `application/wasm` layer of a wasm artifact's manifest.
fn wasm_layer(
    r: &OciReference,
    manifest: &OciImageManifest,
) -> Result<oci_client::manifest::OciDescriptor> {
    let types: Vec<&str> = manifest
        .layers
        .iter()
        .map(|l| l.media_type.as_str())
        .collect();
    match manifest.layers.as_slice() {
        [one] if one.media_type == WASM_LAYER_MEDIA_TYPE => Ok(one.clone()),
        [] => Err(Error::invalid_module(
            format!("`{r}` is not a wasm artifact: its manifest has no layers"),
            None,
        )),
        _ => Err(Error::invalid_module(
            format!(
                "`{r}` is not a wasm artifact: its manifest's layer media type(s) `{}` \
                 (a wasm artifact has exactly one layer of `{WASM_LAYER_MEDIA_TYPE}`; \
                 config media type `{}`)",
                types.join("`, `"),
                manifest.config.media_type
            ),
            None,
        )),
    }
}

fn layer_digest(r: &OciReference, d: &str) -> Result<Digest> {
    let ok = d
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        return Err(Error::invalid_module(
            format!("the layer of `{r}` has digest `{d}`; only sha256 digests are supported"),
            None,
        ));
    }
    d.to_ascii_lowercase().parse()
}

fn download_error(r: &OciReference, digest: &Digest, e: std::io::Error) -> Error {
    let text = e.to_string();
    if text.to_ascii_lowercase().contains("digest") {
        Error::Corrupt {
            what: format!("the layer of `{r}`"),
            expected: digest.to_string(),
            actual: text,
        }
    } else {
        Error::unavailable(format!("downloading `{r}` failed: {text}"))
    }
}

/// Docker's `config.json`: `auths` (base64 `user:password`, or
/// `username`/`password`), `credHelpers` and `credsStore` (a
/// `docker-credential-<helper>` program, asked with `get`).
mod docker {
    use std::collections::BTreeMap;
    use std::io::Write;
    use std::path::Path;
    use std::process::{Command, Stdio};

    use base64::Engine;
    use serde::Deserialize;
    use wasmhost::{Error, Result};

    use super::Credentials;

    #[derive(Deserialize, Default)]
    struct Config {
        #[serde(default)]
        auths: BTreeMap<String, Auth>,
        #[serde(default, rename = "credHelpers")]
        cred_helpers: BTreeMap<String, String>,
        #[serde(default, rename = "credsStore")]
        creds_store: Option<String>,
    }

    #[derive(Deserialize, Default)]
    struct Auth {
        auth: Option<String>,
        username: Option<String>,
        password: Option<String>,
    }

    #[derive(Deserialize)]
    struct Helper {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }

    /// The keys docker may have stored `registry` under.
    fn keys(registry: &str) -> Vec<String> {
        let mut k = vec![
            registry.to_string(),
            format!("https://{registry}"),
            format!("http://{registry}"),
            format!("https://{registry}/v1/"),
            format!("https://{registry}/v2/"),
        ];
        if registry == "docker.io" || registry == "index.docker.io" {
            k.push("https://index.docker.io/v1/".to_string());
        }
        k
    }

    /// The credentials `path` holds for `registry`; `None` without a file
    /// or an entry.
    pub(super) fn credentials(path: &Path, registry: &str) -> Result<Option<Credentials>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::bad_input(format!(
                    "cannot read docker config `{}`: {e}",
                    path.display()
                )));
            }
        };
        let config: Config = serde_json::from_str(&text)
            .map_err(|e| Error::bad_input(format!("docker config `{}`: {e}", path.display())))?;
        let keys = keys(registry);
        if let Some(helper) = keys.iter().find_map(|k| config.cred_helpers.get(k)) {
            return helper_get(helper, registry);
        }
        if let Some(auth) = keys.iter().find_map(|k| config.auths.get(k)) {
            if let (Some(user), Some(password)) = (&auth.username, &auth.password) {
                return Ok(Some(Credentials {
                    user: user.clone(),
                    password: password.clone(),
                }));
            }
            if let Some(b64) = &auth.auth {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|e| {
                        Error::bad_input(format!(
                            "docker config `{}`: the auth of {registry} is not base64: {e}",
                            path.display()
                        ))
                    })?;
                let text = String::from_utf8_lossy(&raw);
                let Some((user, password)) = text.split_once(':') else {
                    return Err(Error::bad_input(format!(
                        "docker config `{}`: the auth of {registry} is not user:password",
                        path.display()
                    )));
                };
                return Ok(Some(Credentials {
                    user: user.to_string(),
                    password: password.to_string(),
                }));
            }
        }
        match &config.creds_store {
            Some(store) => helper_get(store, registry),
            None => Ok(None),
        }
    }

    /// Asks `docker-credential-<helper> get` for `registry`'s credentials.
    fn helper_get(helper: &str, registry: &str) -> Result<Option<Credentials>> {
        let program = format!("docker-credential-{helper}");
        let child = Command::new(&program)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("docker credential helper {program}: {e}; going on without");
                return Ok(None);
            }
        };
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(registry.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| Error::bad_input(format!("docker credential helper {program}: {e}")))?;
        if !out.status.success() {
            // "credentials not found in native keychain": anonymous.
            return Ok(None);
        }
        let h: Helper = serde_json::from_slice(&out.stdout).map_err(|e| {
            Error::bad_input(format!("docker credential helper {program} answered: {e}"))
        })?;
        Ok(Some(Credentials {
            user: h.username,
            password: h.secret,
        }))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn auths_in_both_spellings() {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("config.json");
            let b64 = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
            std::fs::write(
                &path,
                format!(
                    r#"{{"auths": {{"127.0.0.1:5000": {{"auth": "{b64}"}},
                       "https://ghcr.io": {{"username": "bob", "password": "pw"}}}}}}"#
                ),
            )
            .expect("write");
            let c = credentials(&path, "127.0.0.1:5000")
                .expect("read")
                .expect("found");
            assert_eq!((c.user.as_str(), c.password.as_str()), ("alice", "s3cret"));
            let c = credentials(&path, "ghcr.io").expect("read").expect("found");
            assert_eq!(c.user, "bob");
            assert!(credentials(&path, "quay.io").expect("read").is_none());
            assert!(
                credentials(&dir.path().join("none.json"), "x.io")
                    .expect("no file")
                    .is_none()
            );
            std::fs::write(&path, "{not json").expect("write");
            assert_eq!(
                credentials(&path, "x.io").expect_err("bad").code(),
                wasmhost::ErrorCode::BadInput
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_a_registry() {
        assert!(OciReference::looks_like("oci://x/y"));
        assert!(OciReference::looks_like("ghcr.io/a/b:v1"));
        assert!(OciReference::looks_like("localhost/a"));
        assert!(OciReference::looks_like("127.0.0.1:5000/a"));
        assert!(!OciReference::looks_like("tools/fmt:v1"));
        assert!(!OciReference::looks_like("app:v1"));
        assert!(!OciReference::looks_like("app.wasm"));
        let r: OciReference = "ghcr.io/acme/hello".parse().expect("parses");
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(r.to_string(), "ghcr.io/acme/hello:latest");
        let d = format!("sha256:{}", "ab".repeat(32));
        let r: OciReference = format!("oci://localhost:5000/a@{d}")
            .parse()
            .expect("digest");
        assert_eq!(r.digest(), Some(d.as_str()));
        assert_eq!(r.tag(), None);
        assert!(r.local_name().is_err());
        for bad in [
            "oci://app:v1",
            "oci://",
            "tools/fmt",
            "oci://ghcr.io/",
            "ghcr.io/A B",
        ] {
            let e = bad.parse::<OciReference>().expect_err(bad);
            assert_eq!(e.code(), wasmhost::ErrorCode::BadInput, "{bad}");
        }
        // Docker Hub's official images.
        for (given, read) in [
            ("docker.io/alpine", "docker.io/library/alpine:latest"),
            (
                "index.docker.io/alpine:3",
                "index.docker.io/library/alpine:3",
            ),
            ("docker.io/acme/app:v1", "docker.io/acme/app:v1"),
            ("ghcr.io/alpine:v1", "ghcr.io/alpine:v1"),
        ] {
            let r: OciReference = given.parse().expect(given);
            assert_eq!(r.to_string(), read, "{given}");
        }
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("ghcr.io"));
    }
}
