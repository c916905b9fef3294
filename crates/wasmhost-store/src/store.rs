//! The module store: wasm blobs kept by sha256 and `name:tag` references to
//! them, on any [`object_store`] backend chosen by URL. See [`ModuleStore`]
//! for the layout, the guarantees and the backends.

use std::fmt;
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::client::HttpErrorKind;
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use serde::{Deserialize, Serialize, Serializer};
use url::Url;
use wasmhost::{Digest, Error, ModuleKind, Result};

use crate::reference::Reference;

/// The URL forms [`ModuleStore::open`] understands, for error messages.
const SUPPORTED: &str = "file:///absolute/path (or a plain filesystem path), memory://, \
     s3://bucket/prefix, az://container/prefix (or azure://container/prefix), gs://bucket/prefix";

/// How many reference objects are read at once while listing.
const LIST_CONCURRENCY: usize = 16;

/// How many times a failed request to a cloud store (S3, Azure, GCS) is
/// retried unless the `max_retries` option says otherwise.
///
/// object_store's own default is 10 retries within 3 minutes, which makes
/// a command or a server request wait minutes on a store that is down. Three
/// retries (with object_store's jittered exponential backoff from 100 ms)
/// ride over a dropped connection or a brief 5xx/`SlowDown`, one more than
/// the AWS SDKs' standard mode (3 attempts in all); a store that is really
/// gone and refuses connections is reported (`unavailable`) within about a
/// second.
pub const DEFAULT_MAX_RETRIES: usize = 3;

/// How long after a request's first attempt a retry may still be started
/// (option `retry_timeout`), unless set.
///
/// Each attempt is bounded by the client's `timeout` (object_store's default
/// 30 s, which also bounds the upload of a large module). With 10 s, a store
/// that accepts connections but never answers (a stopped process, a dead
/// load balancer) costs one attempt, so a push fails after about `timeout`
/// rather than object_store's 3 minutes and more, while quick failures still
/// get their retries.
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(10);

/// A `name:tag` reference and what it points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefEntry {
    /// The module name, e.g. `tools/fmt`.
    pub name: String,
    /// The tag, e.g. `latest`.
    pub tag: String,
    /// The blob it points at.
    #[serde(serialize_with = "ser_display")]
    pub digest: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// Core module or component.
    #[serde(serialize_with = "ser_kind")]
    pub kind: ModuleKind,
    /// When the tag was last written (millisecond precision).
    pub updated: DateTime<Utc>,
}

impl RefEntry {
    /// The `name:tag` reference of this entry.
    pub fn reference(&self) -> Reference {
        Reference::Name {
            name: self.name.clone(),
            tag: self.tag.clone(),
        }
    }
}

/// A blob in the store and the tags that point at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredModule {
    /// The sha256 of the wasm binary.
    #[serde(serialize_with = "ser_display")]
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Core module or component.
    #[serde(serialize_with = "ser_kind")]
    pub kind: ModuleKind,
    /// Every `(name, tag)` pointing at this blob, sorted.
    pub tags: Vec<(String, String)>,
}

/// What [`ModuleStore::remove`] removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "removed", rename_all = "snake_case")]
pub enum Removed {
    /// A tag; the blob it pointed at is still stored.
    Tag {
        /// The module name.
        name: String,
        /// The removed tag.
        tag: String,
        /// What it pointed at.
        #[serde(serialize_with = "ser_display")]
        digest: Digest,
    },
    /// A tag whose reference file was unreadable.
    DamagedTag {
        /// The module name.
        name: String,
        /// The removed tag.
        tag: String,
    },
    /// A blob that no tag pointed at.
    Blob {
        /// Its digest.
        #[serde(serialize_with = "ser_display")]
        digest: Digest,
        /// Its size in bytes.
        size: u64,
    },
}

impl fmt::Display for Removed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Removed::Tag { name, tag, digest } => {
                write!(f, "tag {name}:{tag} (it pointed at {digest})")
            }
            Removed::DamagedTag { name, tag } => write!(f, "damaged tag {name}:{tag}"),
            Removed::Blob { digest, size } => write!(f, "module {digest} ({size} bytes)"),
        }
    }
}

fn ser_display<T: fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn ser_kind<S: Serializer>(k: &ModuleKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

/// What reading a ref file found.
enum RefRead {
    /// A well-formed ref.
    Entry(RefEntry),
    /// A ref file that exists but cannot be used (the error says why).
    Damaged(Error),
}

/// The JSON stored at `refs/<name>/<tag>.json`.
#[derive(Debug, Serialize, Deserialize)]
struct RefFile {
    digest: String,
    size: u64,
    kind: String,
    updated: DateTime<Utc>,
}

fn parse_kind(s: &str) -> Option<ModuleKind> {
    match s {
        "core" => Some(ModuleKind::Core),
        "component" => Some(ModuleKind::Component),
        _ => None,
    }
}

/// Modules by content digest plus `name:tag` references, over one
/// [`ObjectStore`]. Cheap to clone; all clones share the backend.
///
/// # Layout
///
/// Under the store's prefix (the URL's path; nothing for `file://` and
/// `memory://`):
///
/// ```text
/// blobs/sha256/<64 hex>        the normalized wasm binary; immutable
/// refs/<name>/<tag>.json       {"digest": "sha256:…", "size": N,
///                               "kind": "core"|"component", "updated": RFC 3339}
/// ```
///
/// # Guarantees
///
/// * The store accepts exactly what the runtime accepts: every push goes
///   through [`wasmhost::normalize`] (WAT becomes binary; invalid input is
///   `invalid_module`), and the digest is that of the binary.
/// * Every read of a blob is checked against its digest. Bytes that do not
///   match are reported as [`Error::Corrupt`] and never returned.
/// * Crash safety: a push writes the blob first and the reference last, and
///   each object write is atomic (the local filesystem writes a staging file,
///   fsyncs it and renames it into place; an S3, Azure or GCS single PUT is
///   atomic). A push interrupted at any point (even `kill -9`) leaves the old
///   state or the new one, never a reference to a missing or partial blob.
///   Staging leftovers (`…#N` files) are ignored. Concurrent pushes to the
///   same `name:tag` each write a whole reference; the last one wins.
/// * A pushed blob that is found corrupt in the store is rewritten by the
///   next push of the same module.
/// * Removing a digest races safely with a push or tag of the same module:
///   a push checks that the blob is still there after writing its reference
///   (and writes it again if not), and a removal checks for new tags after
///   deleting (and puts the blob back, refusing, if there are any).
///
/// # Backends
///
/// | URL | backend | configuration |
/// |---|---|---|
/// | `file:///abs/dir`, or a plain path | local filesystem (created if missing) | — |
/// | `memory://` | in-process memory (a fresh, empty store) | — |
/// | `s3://bucket/prefix` | Amazon S3 or any S3 API | `AWS_*` variables: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, … |
/// | `az://container/prefix`, `azure://container/prefix` | Azure Blob Storage | `AZURE_*` variables: `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_STORAGE_ENDPOINT`, `AZURE_STORAGE_USE_EMULATOR`, … |
/// | `gs://bucket/prefix` | Google Cloud Storage | `GOOGLE_*` variables: `GOOGLE_SERVICE_ACCOUNT`, `GOOGLE_APPLICATION_CREDENTIALS`, … |
///
/// The variables are read by object_store's builders (`from_env`);
/// [`ModuleStore::open_with_options`] takes the same settings explicitly
/// (lower-case keys such as `aws_endpoint` or `azure_storage_account_key`),
/// and they override the environment.
///
/// How long a cloud store is waited for (options of every cloud backend):
///
/// | option | meaning | default |
/// |---|---|---|
/// | `timeout` | one HTTP request, upload or download included (also `AWS_TIMEOUT`, `AZURE_TIMEOUT`, `GOOGLE_TIMEOUT`) | 30 s (object_store's) |
/// | `connect_timeout` | connecting (also `AWS_CONNECT_TIMEOUT`, …) | 5 s (object_store's) |
/// | `max_retries` | retries of a failed request (connection refused or reset, timeout, 5xx, 429) | [`DEFAULT_MAX_RETRIES`] (3) |
/// | `retry_timeout` | no retry is started this long after a request's first attempt | [`DEFAULT_RETRY_TIMEOUT`] (10 s) |
///
/// Durations are humantime strings (`1500ms`, `2s`, `1m`). A store that
/// cannot be reached, times out or answers with a server error is
/// `unavailable`, naming the store, the operation (`push of app:v1`) and
/// the object; nothing is then published that points at a missing blob.
///
/// ```
/// use wasmhost_store::{ModuleStore, Reference};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> wasmhost::Result<()> {
/// let store = ModuleStore::memory();
/// let wat = r#"(module (func (export "n") (result i32) i32.const 7))"#;
/// let pushed = store.push(wat.as_bytes().to_vec(), "demo/seven", "v1").await?;
/// let (digest, bytes) = store.fetch(&"demo/seven:v1".parse()?).await?;
/// assert_eq!(digest, pushed.digest);
/// assert!(bytes.starts_with(b"\0asm"));
/// assert_eq!(store.list().await?.len(), 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ModuleStore {
    inner: Arc<dyn ObjectStore>,
    prefix: Path,
    location: String,
}

impl fmt::Debug for ModuleStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl ModuleStore {
    /// Opens the store at `url` (see [Backends](ModuleStore#backends) for the forms),
    /// with backend settings from the environment. Nothing is contacted
    /// yet; a `file://` directory is created if missing.
    ///
    /// A malformed URL or an unknown scheme is `bad_input` naming the
    /// supported schemes.
    pub fn open(url: &str) -> Result<Self> {
        Self::open_with_options(url, std::iter::empty::<(&str, &str)>())
    }

    /// Like [`ModuleStore::open`], with backend settings that override the
    /// environment: object_store configuration keys, e.g. `aws_endpoint`,
    /// `aws_allow_http`, `azure_storage_account_name`,
    /// `azure_storage_use_emulator`, `google_service_account`, `timeout`;
    /// and this crate's own `max_retries` and `retry_timeout` (see
    /// [Backends](ModuleStore#backends)). An unknown key for the URL's
    /// backend, or a value that does not parse, is `bad_input`; `file://`
    /// and `memory://` take no options.
    pub fn open_with_options<I, K, V>(url: &str, options: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let url = url.trim();
        if url.is_empty() {
            return Err(Error::bad_input(format!(
                "the module store location is empty; use {SUPPORTED}"
            )));
        }
        let mut options: Vec<(String, String)> = options
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_ascii_lowercase(), v.into()))
            .collect();
        if !url.contains("://") {
            no_options(&options, "a filesystem store")?;
            let dir = std::path::absolute(url).map_err(|e| {
                Error::bad_input(format!("module store path `{url}` is not usable: {e}"))
            })?;
            return Self::filesystem(&dir);
        }
        let parsed = Url::parse(url).map_err(|e| {
            Error::bad_input(format!(
                "module store URL `{url}` is not a valid URL ({e}); use {SUPPORTED}"
            ))
        })?;
        match parsed.scheme() {
            "file" => {
                no_options(&options, "a file:// store")?;
                if !matches!(parsed.host_str(), None | Some("") | Some("localhost")) {
                    return Err(Error::bad_input(format!(
                        "module store URL `{url}` names a remote host; a file:// URL must be \
                         file:///absolute/path"
                    )));
                }
                let dir = parsed.to_file_path().map_err(|()| {
                    Error::bad_input(format!(
                        "module store URL `{url}` is not a local path; use file:///absolute/path"
                    ))
                })?;
                Self::filesystem(&dir)
            }
            "memory" => {
                no_options(&options, "a memory:// store")?;
                Ok(Self::memory())
            }
            "s3" | "s3a" => {
                let retry = take_retry_config(&mut options)?;
                let mut b = AmazonS3Builder::from_env().with_url(url).with_retry(retry);
                for (k, v) in options {
                    let key: AmazonS3ConfigKey = k.parse().map_err(|_| unknown_option(&k, "S3"))?;
                    b = b.with_config(key, v);
                }
                let s3 = b.build().map_err(|e| cloud_error(url, e))?;
                Self::cloud(Arc::new(s3), &parsed, url)
            }
            "az" | "azure" => {
                let retry = take_retry_config(&mut options)?;
                let mut b = MicrosoftAzureBuilder::from_env()
                    .with_url(url)
                    .with_retry(retry);
                for (k, v) in options {
                    let key: AzureConfigKey = k.parse().map_err(|_| unknown_option(&k, "Azure"))?;
                    b = b.with_config(key, v);
                }
                let az = b.build().map_err(|e| cloud_error(url, e))?;
                Self::cloud(Arc::new(az), &parsed, url)
            }
            "gs" => {
                let retry = take_retry_config(&mut options)?;
                let mut b = GoogleCloudStorageBuilder::from_env()
                    .with_url(url)
                    .with_retry(retry);
                for (k, v) in options {
                    let key: GoogleConfigKey = k.parse().map_err(|_| unknown_option(&k, "GCS"))?;
                    b = b.with_config(key, v);
                }
                let gcs = b.build().map_err(|e| cloud_error(url, e))?;
                Self::cloud(Arc::new(gcs), &parsed, url)
            }
            other => Err(Error::bad_input(format!(
                "unsupported module store URL scheme `{other}` in `{url}`; use {SUPPORTED}"
            ))),
        }
    }

    /// A fresh, empty store in memory (`memory://`).
    pub fn memory() -> Self {
        ModuleStore {
            inner: Arc::new(InMemory::new()),
            prefix: Path::default(),
            location: "memory://".to_string(),
        }
    }

    /// The default store of a state directory: `file://STATE/store`,
    /// creating the directory.
    pub fn default_for_state(state_dir: &FsPath) -> Result<Self> {
        let dir = std::path::absolute(state_dir.join("store")).map_err(|e| {
            Error::bad_input(format!(
                "state directory `{}` is not usable: {e}",
                state_dir.display()
            ))
        })?;
        Self::filesystem(&dir)
    }

    /// A store over an existing [`ObjectStore`], under `prefix` (`""` for
    /// the root), described as `location` in messages. For embedding: a
    /// wrapped, throttled or shared backend.
    pub fn with_object_store(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        location: impl Into<String>,
    ) -> Result<Self> {
        let prefix = Path::parse(prefix.trim_matches('/')).map_err(|e| {
            Error::bad_input(format!("module store prefix `{prefix}` is not valid: {e}"))
        })?;
        Ok(ModuleStore {
            inner: store,
            prefix,
            location: location.into(),
        })
    }

    fn filesystem(dir: &FsPath) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::internal(format!(
                "cannot create the module store directory `{}`: {e}",
                dir.display()
            ))
        })?;
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| {
                Error::internal(format!(
                    "cannot open the module store directory `{}`: {e}",
                    dir.display()
                ))
            })?
            .with_fsync(true)
            .with_automatic_cleanup(true);
        let location = Url::from_directory_path(dir)
            .map(|u| u.to_string().trim_end_matches('/').to_string())
            .unwrap_or_else(|()| format!("file://{}", dir.display()));
        Ok(ModuleStore {
            inner: Arc::new(fs),
            prefix: Path::default(),
            location,
        })
    }

    fn cloud(inner: Arc<dyn ObjectStore>, parsed: &Url, url: &str) -> Result<Self> {
        let prefix = Path::from_url_path(parsed.path()).map_err(|e| {
            Error::bad_input(format!(
                "module store URL `{url}` has an invalid path prefix: {e}"
            ))
        })?;
        Ok(ModuleStore {
            inner,
            prefix,
            location: url.trim_end_matches('/').to_string(),
        })
    }

    /// Where the store is, as a URL (`file:///…`, `memory://`, `s3://…`, …).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The backend, for tools that need raw access (e.g. tests and
    /// migrations). Writing to it directly bypasses every guarantee.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// The object path of a blob (under the store's prefix).
    pub fn blob_path(&self, digest: &Digest) -> Path {
        self.path(&format!("blobs/sha256/{}", digest.hex()))
    }

    /// The object path of a reference (under the store's prefix). Assumes
    /// `name` and `tag` passed [`Reference::check_name`] and
    /// [`Reference::check_tag`].
    fn ref_path(&self, name: &str, tag: &str) -> Path {
        self.path(&format!("refs/{name}/{tag}.json"))
    }

    fn refs_root(&self) -> Path {
        self.path("refs")
    }

    fn path(&self, rel: &str) -> Path {
        // Every segment we build comes from checked names/tags or hex
        // digits, so this never drops anything.
        let mut p = self.prefix.clone();
        for part in rel.split('/') {
            p = p.join(part);
        }
        p
    }

    // ----- public operations -------------------------------------------

    /// Stores a module under `name:tag`: normalizes `raw` (wasm binary or
    /// WAT) exactly as the runtime does, writes the blob if it is not
    /// already stored intact, then points the tag at it.
    ///
    /// A backend failure is `unavailable` (the store could not be reached)
    /// or `internal`, naming the store and `push of name:tag`; whatever the
    /// push had written by then is never referenced by a tag that points
    /// at a missing blob.
    pub async fn push(&self, raw: Vec<u8>, name: &str, tag: &str) -> Result<RefEntry> {
        Reference::check_name(name)?;
        Reference::check_tag(tag)?;
        async {
            let (bytes, digest, kind) = normalize(raw).await?;
            self.ensure_blob(&digest, bytes.clone()).await?;
            let entry = self
                .write_ref(name, tag, digest, bytes.len() as u64, kind)
                .await?;
            self.ensure_still_there(&digest, bytes.clone()).await?;
            tracing::debug!(store = %self.location, %digest, "pushed {name}:{tag}");
            Ok(entry)
        }
        .await
        .map_err(doing(format!("push of {name}:{tag}")))
    }

    /// Stores a module by content only (no tag) and describes it.
    pub async fn put_blob(&self, raw: Vec<u8>) -> Result<StoredModule> {
        async {
            let (bytes, digest, kind) = normalize(raw).await?;
            self.ensure_blob(&digest, bytes.clone()).await?;
            let tags = self.tags_of(&digest).await?;
            Ok(StoredModule {
                digest,
                size: bytes.len() as u64,
                kind,
                tags,
            })
        }
        .await
        .map_err(doing("storing a module"))
    }

    /// The digest a reference stands for. A digest must name a stored blob;
    /// a `name:tag` must exist. Otherwise `not_found`, naming it.
    pub async fn resolve(&self, r: &Reference) -> Result<Digest> {
        self.resolve_ref(r)
            .await
            .map_err(doing(format!("lookup of {r}")))
    }

    async fn resolve_ref(&self, r: &Reference) -> Result<Digest> {
        match r {
            Reference::Digest(d) => match self.inner.head(&self.blob_path(d)).await {
                Ok(_) => Ok(*d),
                Err(object_store::Error::NotFound { .. }) => Err(self.no_blob(d)),
                Err(e) => Err(self.backend_error("look up", &self.blob_path(d), e)),
            },
            Reference::Name { name, tag } => Ok(self.read_ref(name, tag).await?.digest),
        }
    }

    /// The module's wasm binary, verified against its digest: bytes that
    /// do not match are [`Error::Corrupt`] and are not returned.
    pub async fn fetch(&self, r: &Reference) -> Result<(Digest, Bytes)> {
        self.fetch_ref(r)
            .await
            .map_err(doing(format!("fetch of {r}")))
    }

    async fn fetch_ref(&self, r: &Reference) -> Result<(Digest, Bytes)> {
        match r {
            Reference::Digest(d) => Ok((*d, self.read_blob(d, None).await?)),
            Reference::Name { name, tag } => {
                let entry = self.read_ref(name, tag).await?;
                let bytes = self.read_blob(&entry.digest, Some(r)).await?;
                Ok((entry.digest, bytes))
            }
        }
    }

    /// Every `name:tag`, sorted by name, then tag.
    pub async fn list(&self) -> Result<Vec<RefEntry>> {
        self.list_refs().await.map_err(doing("listing"))
    }

    async fn list_refs(&self) -> Result<Vec<RefEntry>> {
        let root = self.refs_root();
        let metas: Vec<_> = self
            .inner
            .list(Some(&root))
            .try_collect()
            .await
            .map_err(|e| self.backend_error("list", &root, e))?;
        let mut wanted = Vec::new();
        for meta in metas {
            match parse_ref_location(&root, &meta.location) {
                Some(nt) => wanted.push(nt),
                None => tracing::debug!(
                    store = %self.location,
                    "ignoring `{}`: not a reference", meta.location
                ),
            }
        }
        let read: Vec<Option<RefEntry>> = futures::stream::iter(wanted)
            .map(|(name, tag)| async move {
                match self.try_read_ref(&name, &tag).await {
                    Ok(RefRead::Entry(e)) => Ok(Some(e)),
                    // One damaged ref must not hide all the others: say so
                    // and go on (`remove` can still delete it).
                    Ok(RefRead::Damaged(e)) => {
                        tracing::warn!(store = %self.location, "skipping: {e}");
                        Ok(None)
                    }
                    // Removed since it was listed.
                    Err(Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .buffer_unordered(LIST_CONCURRENCY)
            .try_collect()
            .await?;
        let mut entries: Vec<RefEntry> = read.into_iter().flatten().collect();
        entries.sort_by(|a, b| (&a.name, &a.tag).cmp(&(&b.name, &b.tag)));
        Ok(entries)
    }

    /// Points `name:tag` at the module `src` stands for (which must exist
    /// and verify).
    pub async fn tag(&self, src: &Reference, name: &str, tag: &str) -> Result<RefEntry> {
        Reference::check_name(name)?;
        Reference::check_tag(tag)?;
        async {
            let (digest, bytes) = self.fetch_ref(src).await?;
            let kind = kind_of(bytes.clone()).await?;
            let entry = self
                .write_ref(name, tag, digest, bytes.len() as u64, kind)
                .await?;
            self.ensure_still_there(&digest, bytes.clone()).await?;
            Ok(entry)
        }
        .await
        .map_err(doing(format!("tagging {src} as {name}:{tag}")))
    }

    /// Removes a tag (`name:tag`; the blob stays), or a blob (a digest),
    /// which is refused with `bad_input` while tags point at it.
    pub async fn remove(&self, r: &Reference) -> Result<Removed> {
        self.remove_ref(r)
            .await
            .map_err(doing(format!("removal of {r}")))
    }

    async fn remove_ref(&self, r: &Reference) -> Result<Removed> {
        match r {
            Reference::Name { name, tag } => {
                // A damaged ref is removed too: it points nowhere usable.
                let digest = match self.try_read_ref(name, tag).await? {
                    RefRead::Entry(entry) => Some(entry.digest),
                    RefRead::Damaged(_) => None,
                };
                let path = self.ref_path(name, tag);
                match self.inner.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.backend_error("delete", &path, e)),
                }
                Ok(match digest {
                    Some(digest) => Removed::Tag {
                        name: name.clone(),
                        tag: tag.clone(),
                        digest,
                    },
                    None => Removed::DamagedTag {
                        name: name.clone(),
                        tag: tag.clone(),
                    },
                })
            }
            Reference::Digest(d) => {
                let tags = self.tags_of(d).await?;
                if !tags.is_empty() {
                    return Err(still_tagged(d, &tags));
                }
                // Kept so that a push racing this removal can be undone.
                let bytes = self.read_blob(d, None).await?;
                let path = self.blob_path(d);
                match self.inner.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.backend_error("delete", &path, e)),
                }
                // A push or tag may have pointed at the blob meanwhile: put it
                // back and refuse rather than leave a dangling tag.
                let tags = self.tags_of(d).await?;
                if !tags.is_empty() {
                    self.put_blob_object(d, bytes).await?;
                    return Err(still_tagged(d, &tags));
                }
                Ok(Removed::Blob {
                    digest: *d,
                    size: bytes.len() as u64,
                })
            }
        }
    }

    /// The module's digest, size and kind, and every tag pointing at it.
    /// Reads (and verifies) the blob.
    pub async fn inspect(&self, r: &Reference) -> Result<StoredModule> {
        async {
            let (digest, bytes) = self.fetch_ref(r).await?;
            let kind = kind_of(bytes.clone()).await?;
            let tags = self.tags_of(&digest).await?;
            Ok(StoredModule {
                digest,
                size: bytes.len() as u64,
                kind,
                tags,
            })
        }
        .await
        .map_err(doing(format!("inspection of {r}")))
    }

    /// Stores a wasm binary whose sha256 the caller has already checked to
    /// be `digest` (a registry's layer), tagged `name:tag` when given: the
    /// bytes are validated once and hashed by no one again, the blob
    /// written unless an intact copy is stored, the tag pointed at it
    /// without reading the blob back. Anything but a wasm binary (WAT text
    /// included, whose digest would change) is `invalid_module`.
    pub async fn put_verified(
        &self,
        binary: Vec<u8>,
        digest: Digest,
        tag: Option<(&str, &str)>,
    ) -> Result<StoredModule> {
        if let Some((name, tag)) = tag {
            Reference::check_name(name)?;
            Reference::check_tag(tag)?;
        }
        if !binary.starts_with(b"\0asm") {
            return Err(Error::invalid_module(
                format!("blob {digest} is not a wasm binary"),
                Some(0),
            ));
        }
        let (bytes, kind) = blocking(move || {
            let (binary, kind) = wasmhost::normalize(binary)?;
            Ok((Bytes::from(binary), kind))
        })
        .await?;
        let size = bytes.len() as u64;
        let what = match tag {
            Some((name, tag)) => format!("push of {name}:{tag}"),
            None => format!("push of {digest}"),
        };
        async {
            self.ensure_blob(&digest, bytes.clone()).await?;
            if let Some((name, tag)) = tag {
                self.write_ref(name, tag, digest, size, kind).await?;
                self.ensure_still_there(&digest, bytes).await?;
            }
            let tags = self.tags_of(&digest).await?;
            Ok(StoredModule {
                digest,
                size,
                kind,
                tags,
            })
        }
        .await
        .map_err(doing(what))
    }

    // ----- internals ---------------------------------------------------

    /// Every `(name, tag)` pointing at `digest`, sorted.
    async fn tags_of(&self, digest: &Digest) -> Result<Vec<(String, String)>> {
        Ok(self
            .list_refs()
            .await?
            .into_iter()
            .filter(|e| e.digest == *digest)
            .map(|e| (e.name, e.tag))
            .collect())
    }

    /// Makes sure an intact copy of the blob is stored: writes it when it
    /// is missing, and rewrites it when what is stored does not verify.
    async fn ensure_blob(&self, digest: &Digest, bytes: Bytes) -> Result<()> {
        let path = self.blob_path(digest);
        if let Some(existing) = self.get(&path).await? {
            let actual = digest_of(existing).await?;
            if actual == *digest {
                return Ok(());
            }
            tracing::warn!(
                store = %self.location,
                "blob {digest} was corrupt (its bytes hash to {actual}); rewriting it"
            );
        }
        self.put_blob_object(digest, bytes).await
    }

    /// After a reference was written: if the blob vanished meanwhile (a
    /// concurrent `remove` of the digest), write it again.
    async fn ensure_still_there(&self, digest: &Digest, bytes: Bytes) -> Result<()> {
        let path = self.blob_path(digest);
        match self.inner.head(&path).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => self.put_blob_object(digest, bytes).await,
            Err(e) => Err(self.backend_error("look up", &path, e)),
        }
    }

    async fn put_blob_object(&self, digest: &Digest, bytes: Bytes) -> Result<()> {
        let path = self.blob_path(digest);
        self.inner
            .put(&path, PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| self.backend_error("write", &path, e))
    }

    async fn write_ref(
        &self,
        name: &str,
        tag: &str,
        digest: Digest,
        size: u64,
        kind: ModuleKind,
    ) -> Result<RefEntry> {
        let updated = Utc::now().trunc_subsecs(3);
        let file = RefFile {
            digest: digest.to_string(),
            size,
            kind: kind.as_str().to_string(),
            updated,
        };
        let json = serde_json::to_vec(&file)
            .map_err(|e| Error::internal(format!("cannot encode reference {name}:{tag}: {e}")))?;
        let path = self.ref_path(name, tag);
        self.inner
            .put(&path, PutPayload::from(json))
            .await
            .map_err(|e| self.backend_error("write", &path, e))?;
        Ok(RefEntry {
            name: name.to_string(),
            tag: tag.to_string(),
            digest,
            size,
            kind,
            updated,
        })
    }

    async fn read_ref(&self, name: &str, tag: &str) -> Result<RefEntry> {
        match self.try_read_ref(name, tag).await? {
            RefRead::Entry(e) => Ok(e),
            RefRead::Damaged(e) => Err(e),
        }
    }

    /// Reads a ref, telling a damaged ref file (an `internal` error inside
    /// [`RefRead::Damaged`]) from a missing one or a backend failure (`Err`).
    async fn try_read_ref(&self, name: &str, tag: &str) -> Result<RefRead> {
        let path = self.ref_path(name, tag);
        let Some(raw) = self.get(&path).await? else {
            return Err(self.no_ref(name, tag).await);
        };
        let damaged = |why: String| {
            RefRead::Damaged(Error::internal(format!(
                "reference {name}:{tag} in {} (`{path}`) is unreadable: {why}",
                self.location
            )))
        };
        let file: RefFile = match serde_json::from_slice(&raw) {
            Ok(f) => f,
            Err(e) => return Ok(damaged(e.to_string())),
        };
        if !file.digest.starts_with("sha256:") {
            return Ok(damaged(format!("`{}` is not a sha256 digest", file.digest)));
        }
        let digest: Digest = match file.digest.parse() {
            Ok(d) => d,
            Err(e) => return Ok(damaged(format!("{e}"))),
        };
        let Some(kind) = parse_kind(&file.kind) else {
            return Ok(damaged(format!("unknown kind `{}`", file.kind)));
        };
        Ok(RefRead::Entry(RefEntry {
            name: name.to_string(),
            tag: tag.to_string(),
            digest,
            size: file.size,
            kind,
            updated: file.updated,
        }))
    }

    /// Reads a blob and checks it against its digest.
    async fn read_blob(&self, digest: &Digest, via: Option<&Reference>) -> Result<Bytes> {
        let path = self.blob_path(digest);
        let Some(bytes) = self.get(&path).await? else {
            return Err(match via {
                Some(r) => Error::not_found(format!(
                    "blob {digest}, which {r} points at, in {} (the blob is missing)",
                    self.location
                )),
                None => self.no_blob(digest),
            });
        };
        let actual = digest_of(bytes.clone()).await?;
        if actual != *digest {
            tracing::warn!(store = %self.location, "blob {digest} is corrupt");
            return Err(Error::Corrupt {
                what: format!("blob `{path}` in {}", self.location),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// An object's bytes, or `None` when it does not exist.
    async fn get(&self, path: &Path) -> Result<Option<Bytes>> {
        let got = match self.inner.get(path).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.backend_error("read", path, e)),
        };
        match got.bytes().await {
            Ok(b) => Ok(Some(b)),
            // Deleted between the request and the read (local filesystem).
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.backend_error("read", path, e)),
        }
    }

    fn no_blob(&self, digest: &Digest) -> Error {
        Error::not_found(format!("module {digest} in {}", self.location))
    }

    /// `not_found` for a missing `name:tag`, listing the name's tags when
    /// it has some.
    async fn no_ref(&self, name: &str, tag: &str) -> Error {
        let dir = self.path(&format!("refs/{name}"));
        let mut tags: Vec<String> = match self.inner.list_with_delimiter(Some(&dir)).await {
            Ok(listing) => listing
                .objects
                .iter()
                .filter_map(|m| m.location.filename()?.strip_suffix(".json"))
                .filter(|t| Reference::check_tag(t).is_ok())
                .map(str::to_string)
                .collect(),
            Err(_) => Vec::new(),
        };
        tags.sort();
        if tags.is_empty() {
            Error::not_found(format!("module {name}:{tag} in {}", self.location))
        } else {
            Error::not_found(format!(
                "module {name}:{tag} in {} ({name} has tags: {})",
                self.location,
                tags.join(", ")
            ))
        }
    }

    /// A failed request to the backend: `unavailable` when the store could
    /// not be reached or failed on its side (see [`unreachable_because`]),
    /// else `internal`. Names the store, the operation and the object.
    fn backend_error(&self, op: &str, path: &Path, e: object_store::Error) -> Error {
        match unreachable_because(&e) {
            Some(why) => Error::unavailable(format!(
                "module store {} {why} (cannot {op} `{path}`; the store options `timeout`, \
                 `max_retries` and `retry_timeout` set how long it is waited for): {e}",
                self.location
            )),
            None => Error::internal(format!(
                "module store {}: cannot {op} `{path}`: {e}",
                self.location
            )),
        }
    }
}

/// `(name, tag)` of a reference object, or `None` for anything else (staging
/// leftovers, foreign objects).
fn parse_ref_location(root: &Path, location: &Path) -> Option<(String, String)> {
    let parts: Vec<String> = location
        .prefix_match(root)?
        .map(|p| p.as_ref().to_string())
        .collect();
    let (file, name_parts) = parts.split_last()?;
    let tag = file.strip_suffix(".json")?;
    let name = name_parts.join("/");
    if Reference::check_name(&name).is_err() || Reference::check_tag(tag).is_err() {
        return None;
    }
    Some((name, tag.to_string()))
}

fn still_tagged(digest: &Digest, tags: &[(String, String)]) -> Error {
    let list: Vec<String> = tags.iter().map(|(n, t)| format!("{n}:{t}")).collect();
    Error::bad_input(format!(
        "{digest} is still tagged as {}; remove those tags first",
        list.join(", ")
    ))
}

fn no_options(options: &[(String, String)], what: &str) -> Result<()> {
    match options.first() {
        None => Ok(()),
        Some((k, _)) => Err(Error::bad_input(format!(
            "option `{k}` does not apply to {what}, which takes no options"
        ))),
    }
}

fn unknown_option(key: &str, backend: &str) -> Error {
    Error::bad_input(format!(
        "`{key}` is not an object_store configuration key for {backend}"
    ))
}

/// Removes `max_retries` and `retry_timeout` from `options` and makes the
/// retry policy of a cloud backend from them (defaults otherwise).
fn take_retry_config(options: &mut Vec<(String, String)>) -> Result<RetryConfig> {
    let mut retry = RetryConfig {
        max_retries: DEFAULT_MAX_RETRIES,
        retry_timeout: DEFAULT_RETRY_TIMEOUT,
        ..RetryConfig::default()
    };
    let mut rest = Vec::with_capacity(options.len());
    for (k, v) in options.drain(..) {
        match k.as_str() {
            "max_retries" => {
                retry.max_retries = v.trim().parse().map_err(|_| {
                    Error::bad_input(format!(
                        "store option max_retries={v} is not a number of retries (e.g. 3)"
                    ))
                })?;
            }
            "retry_timeout" => {
                retry.retry_timeout = humantime::parse_duration(v.trim()).map_err(|e| {
                    Error::bad_input(format!(
                        "store option retry_timeout={v} is not a duration such as 10s ({e})"
                    ))
                })?;
            }
            _ => rest.push((k, v)),
        }
    }
    *options = rest;
    Ok(retry)
}

/// Why a backend failure means the store is unreachable (connection
/// refused or reset, no answer in time, a server error or throttling after
/// the retries), or `None` for any other failure.
fn unreachable_because(e: &object_store::Error) -> Option<&'static str> {
    if !matches!(e, object_store::Error::Generic { .. }) {
        return None;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(http) = c.downcast_ref::<object_store::client::HttpError>() {
            return match http.kind() {
                HttpErrorKind::Connect => Some("could not be connected to"),
                HttpErrorKind::Timeout => Some("did not answer in time"),
                HttpErrorKind::Request | HttpErrorKind::Interrupted => {
                    Some("dropped the connection")
                }
                HttpErrorKind::Decode => Some("sent a truncated or unreadable answer"),
                _ => None,
            };
        }
        // object_store keeps the status of a failed request in a private
        // type; its message is the one public trace of it.
        let text = c.to_string();
        if text.contains("non-2xx status code: 5") || text.contains("error response: ") {
            return Some("failed on its side");
        }
        if text.contains("non-2xx status code: 429") {
            return Some("is throttling requests");
        }
        cause = c.source();
    }
    None
}

/// Says what was being done (`push of app:v1`) in the message of a
/// backend failure (`unavailable` or `internal`); other errors are already
/// about the input and pass unchanged.
fn doing(what: impl fmt::Display) -> impl FnOnce(Error) -> Error {
    move |e| match e {
        Error::Unavailable { message } => Error::unavailable(format!("{what}: {message}")),
        Error::Internal { message } => Error::internal(format!("{what}: {message}")),
        e => e,
    }
}

fn cloud_error(url: &str, e: object_store::Error) -> Error {
    Error::bad_input(format!("cannot open module store `{url}`: {e}"))
}

/// Runs [`wasmhost::normalize`] off the async threads; returns the binary,
/// its digest and kind.
async fn normalize(raw: Vec<u8>) -> Result<(Bytes, Digest, ModuleKind)> {
    blocking(move || {
        let (binary, kind) = wasmhost::normalize(raw)?;
        let digest = Digest::of(&binary);
        Ok((Bytes::from(binary), digest, kind))
    })
    .await
}

/// The kind of verified blob bytes (which were normalized when stored).
async fn kind_of(bytes: Bytes) -> Result<ModuleKind> {
    blocking(move || wasmhost::normalize(bytes.to_vec()).map(|(_, kind)| kind)).await
}

async fn digest_of(bytes: Bytes) -> Result<Digest> {
    blocking(move || Ok(Digest::of(&bytes))).await
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("module store worker failed: {e}")))?
}
