//! The module store on NATS JetStream (`--store nats://HOST:PORT/BUCKET`):
//! an [`object_store::ObjectStore`] over a JetStream object store bucket,
//! so that a cluster's modules need nothing but its NATS server.
//!
//! # Mapping
//!
//! | object_store | JetStream object store |
//! |---|---|
//! | an object at `Path` `a/b/c` | the object named `a/b/c` (the path's string) in the bucket |
//! | `put` | `put`: the bytes in chunks of 128 KiB (async-nats's default, well below the server's 1 MiB `max_payload`), then the object's info; the previous version's chunks are purged |
//! | `get`, `head` | `get` / `info`; a deleted or missing object is [`object_store::Error::NotFound`] |
//! | `delete` | `delete` (a deletion marker; the chunks are purged); deleting a missing object succeeds, as on S3 |
//! | `list`, `list_with_delimiter` | the bucket's object list (deleted objects left out), filtered by prefix |
//! | `ObjectMeta` | `size`, `last_modified` from the info's modification time, `e_tag` the object's digest (`SHA-256=…`) |
//! | `copy` | a read and a write |
//!
//! What the [`ModuleStore`] uses (`put` with [`PutMode::Overwrite`], whole
//! `get`s, `head`, `delete`, the two listings) maps one to one. Beyond it:
//! a ranged `get` reads the whole object and returns the range;
//! [`PutMode::Create`] and [`CopyMode::Create`] look the target up first
//! (so they are not atomic against a concurrent writer of the same name);
//! [`PutMode::Update`], object versions, attributes and multipart uploads
//! are [`object_store::Error::NotImplemented`] / `NotSupported`. Tags are
//! ignored, as object_store allows.
//!
//! Every operation runs on the tokio runtime the store was made on (where
//! the NATS connection lives), so the store may be used from any other
//! runtime, and is bounded by a timeout ([`DEFAULT_TIMEOUT`]; each request
//! to the server by [`REQUEST_TIMEOUT`] when [`open_module_store`] made
//! the connection). NATS delivers at most once: a request written while
//! the client reconnects to a restarted server is lost and times out, so
//! a failed operation is retried once (all but the `Create` modes, which
//! must not run twice). A failure other than a definite answer (missing,
//! already there, a precondition) is `object_store::Error::Generic` with
//! store `NATS`.
//!
//! [`open_module_store`] opens a [`ModuleStore`] on a URL: it connects,
//! checks that the server has JetStream, and opens the bucket (creating
//! it, on file storage, if needed).

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::jetstream::{self, object_store as nats_os, stream::StorageType};
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use object_store::path::Path;
use object_store::{
    CopyMode, CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use tokio::io::AsyncReadExt;
use url::Url;
use wasmhost::Error;
use wasmhost_store::ModuleStore;

/// How long a failed operation waits before its one retry.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// How long one request to the NATS server (a JetStream API call, the
/// acknowledgement of a published chunk) may take before it counts as
/// lost, as the `nats` CLI's default; async-nats's own is 10 s.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The bucket of a `nats://` store URL without a path.
pub const DEFAULT_BUCKET: &str = "wasmhost-modules";

/// How long one operation of a [`NatsObjectStore`] may take unless set
/// (option `timeout`): the upload or download of a large module included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting and the JetStream check may take unless set
/// (option `connect_timeout`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

type OsResult<T> = object_store::Result<T>;

/// An [`object_store::ObjectStore`] over a JetStream object store bucket
/// (see the [module documentation](self) for the mapping). Cheap to clone.
#[derive(Clone)]
pub struct NatsObjectStore {
    bucket: nats_os::ObjectStore,
    name: Arc<str>,
    timeout: Duration,
    runtime: Option<tokio::runtime::Handle>,
}

impl NatsObjectStore {
    /// The store over `bucket`, whose name is `name`. Its operations run on
    /// the current tokio runtime, if any (that of the NATS connection), and
    /// are bounded by [`DEFAULT_TIMEOUT`].
    pub fn new(name: impl Into<String>, bucket: nats_os::ObjectStore) -> Self {
        NatsObjectStore {
            bucket,
            name: Arc::from(name.into()),
            timeout: DEFAULT_TIMEOUT,
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// Bounds each operation by `timeout` instead.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.name
    }

    /// Runs `op` on the store's runtime, bounded by the store's timeout.
    /// When `retry`, a failure other than a definite answer (a missing or
    /// existing object, a failed precondition) is retried once: NATS
    /// delivers at most once, and a request sent while the client
    /// reconnects (a restarted server) is lost, its reply never comes.
    /// Only operations that may run twice are retried (every one but those
    /// with a `Create` mode).
    async fn run<T, F, Fut>(&self, retry: bool, op: F) -> OsResult<T>
    where
        T: Send + 'static,
        F: Fn(nats_os::ObjectStore) -> Fut + Send + 'static,
        Fut: Future<Output = OsResult<T>> + Send + 'static,
    {
        let timeout = self.timeout;
        let name = self.name.clone();
        let bucket = self.bucket.clone();
        let bounded = async move {
            let shown = name.clone();
            let attempts = async move {
                match op(bucket.clone()).await {
                    Err(e @ object_store::Error::Generic { .. }) if retry => {
                        tracing::debug!(bucket = %shown, "retrying a NATS store operation: {e}");
                        tokio::time::sleep(RETRY_PAUSE).await;
                        op(bucket).await
                    }
                    result => result,
                }
            };
            match tokio::time::timeout(timeout, attempts).await {
                Ok(result) => result,
                Err(_) => Err(generic(format!(
                    "bucket {name}: no answer from the NATS server within {}",
                    humantime::format_duration(timeout)
                ))),
            }
        };
        match &self.runtime {
            Some(runtime) => runtime
                .spawn(bounded)
                .await
                .map_err(|e| generic(format!("the NATS store's task failed: {e}")))?,
            None => bounded.await,
        }
    }
}

impl fmt::Display for NatsObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NATS JetStream object store {}", self.name)
    }
}

impl fmt::Debug for NatsObjectStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsObjectStore")
            .field("bucket", &self.name)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl object_store::ObjectStore for NatsObjectStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> OsResult<PutResult> {
        if !opts.attributes.is_empty() {
            return Err(not_implemented("put with attributes"));
        }
        let create = match opts.mode {
            PutMode::Overwrite => false,
            PutMode::Create => true,
            PutMode::Update(_) => return Err(not_implemented("put with PutMode::Update")),
        };
        let location = location.clone();
        let bytes = Bytes::from(payload);
        self.run(!create, move |bucket| {
            let location = location.clone();
            let bytes = bytes.clone();
            async move {
                if create && info(&bucket, &location).await?.is_some() {
                    return Err(already_exists(&location));
                }
                let info = put(&bucket, &location, &bytes).await?;
                Ok(PutResult {
                    e_tag: info.digest,
                    version: None,
                    extensions: Default::default(),
                })
            }
        })
        .await
    }

    async fn put_multipart_opts(
        &self,
        _location: &Path,
        _opts: PutMultipartOptions,
    ) -> OsResult<Box<dyn MultipartUpload>> {
        Err(not_implemented("put_multipart"))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> OsResult<GetResult> {
        if options.version.is_some() {
            return Err(object_store::Error::NotSupported {
                source: "a NATS object store keeps no object versions".into(),
            });
        }
        let location = location.clone();
        self.run(true, move |bucket| {
            get(bucket, location.clone(), options.clone())
        })
        .await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, OsResult<Path>>,
    ) -> BoxStream<'static, OsResult<Path>> {
        let this = self.clone();
        locations
            .then(move |location| {
                let this = this.clone();
                async move {
                    let location = location?;
                    let name = location.to_string();
                    this.run(true, move |bucket| {
                        let name = name.clone();
                        async move {
                            match bucket.delete(&name).await {
                                Ok(()) => Ok(()),
                                Err(e) if e.kind() == nats_os::DeleteErrorKind::NotFound => Ok(()),
                                Err(e) => Err(generic(e)),
                            }
                        }
                    })
                    .await?;
                    Ok(location)
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, OsResult<ObjectMeta>> {
        let this = self.clone();
        let prefix = prefix.cloned();
        stream::once(async move {
            this.run(true, move |bucket| {
                let prefix = prefix.clone();
                async move { list_all(&bucket, prefix.as_ref()).await }
            })
            .await
        })
        .flat_map(|listed| match listed {
            Ok(metas) => stream::iter(metas.into_iter().map(Ok)).boxed(),
            Err(e) => stream::once(async move { Err(e) }).boxed(),
        })
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> OsResult<ListResult> {
        let base = prefix.cloned().unwrap_or_default();
        self.run(true, move |bucket| list_level(bucket, base.clone()))
            .await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> OsResult<()> {
        let create = options.mode == CopyMode::Create;
        let from = from.clone();
        let to = to.clone();
        self.run(!create, move |bucket| {
            let from = from.clone();
            let to = to.clone();
            async move {
                let (_, bytes) = read(&bucket, &from, &GetOptions::default()).await?;
                if create && info(&bucket, &to).await?.is_some() {
                    return Err(already_exists(&to));
                }
                put(&bucket, &to, &bytes).await.map(|_| ())
            }
        })
        .await
    }
}

/// One level of the listing under `base`: its objects and the prefixes
/// of those further down.
async fn list_level(bucket: nats_os::ObjectStore, base: Path) -> OsResult<ListResult> {
    let mut common = BTreeSet::new();
    let mut objects = Vec::new();
    for meta in list_all(&bucket, Some(&base)).await? {
        // `Some(prefix)` for an object further down, `None` for a child.
        let deeper = {
            let Some(mut parts) = meta.location.prefix_match(&base) else {
                continue;
            };
            let Some(first) = parts.next() else {
                continue;
            };
            parts.next().is_some().then(|| base.clone().join(first))
        };
        match deeper {
            Some(dir) => {
                common.insert(dir);
            }
            None => objects.push(meta),
        }
    }
    Ok(ListResult {
        common_prefixes: common.into_iter().collect(),
        objects,
        extensions: Default::default(),
    })
}

/// A `get` or, with `options.head`, a `head`.
async fn get(
    bucket: nats_os::ObjectStore,
    location: Path,
    options: GetOptions,
) -> OsResult<GetResult> {
    if options.head {
        let info = info(&bucket, &location)
            .await?
            .ok_or_else(|| not_found(&location))?;
        let meta = meta_of(&location, &info);
        options.check_preconditions(&meta)?;
        let range = 0..meta.size;
        return Ok(GetResult {
            payload: GetResultPayload::Stream(stream::empty().boxed()),
            meta,
            range,
            attributes: Default::default(),
            extensions: Default::default(),
        });
    }
    let (meta, bytes) = read(&bucket, &location, &options).await?;
    let range = match &options.range {
        Some(r) => r.as_range(meta.size).map_err(generic)?,
        None => 0..meta.size,
    };
    // The range lies within the bytes read, which are `meta.size` long.
    let bytes = bytes.slice(range.start as usize..range.end as usize);
    Ok(GetResult {
        payload: GetResultPayload::Stream(stream::once(async move { Ok(bytes) }).boxed()),
        meta,
        range,
        attributes: Default::default(),
        extensions: Default::default(),
    })
}

/// The object's info, or `None` when it is missing or deleted.
async fn info(
    bucket: &nats_os::ObjectStore,
    location: &Path,
) -> OsResult<Option<nats_os::ObjectInfo>> {
    match bucket.info(location.as_ref()).await {
        Ok(info) if info.deleted => Ok(None),
        Ok(info) => Ok(Some(info)),
        Err(e) if e.kind() == nats_os::InfoErrorKind::NotFound => Ok(None),
        Err(e) => Err(generic(e)),
    }
}

/// The whole object (checked against its digest by async-nats) and its
/// metadata, after `options`' preconditions.
async fn read(
    bucket: &nats_os::ObjectStore,
    location: &Path,
    options: &GetOptions,
) -> OsResult<(ObjectMeta, Bytes)> {
    let (info, data) = read_whole(bucket, location.as_ref())
        .await
        .map_err(generic)?
        .ok_or_else(|| not_found(location))?;
    let meta = meta_of(location, &info);
    options.check_preconditions(&meta)?;
    Ok((meta, Bytes::from(data)))
}

/// Object `name` whole (checked against its digest by async-nats, and its
/// length against the size its info gives) with its info; `None` when it
/// is missing.
pub(crate) async fn read_whole(
    bucket: &nats_os::ObjectStore,
    name: &str,
) -> Result<Option<(nats_os::ObjectInfo, Vec<u8>)>, String> {
    let mut object = match bucket.get(name).await {
        Ok(object) => object,
        Err(e) if e.kind() == nats_os::GetErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let info = object.info().clone();
    // The size comes from the server: reserve at most 64 MiB up front.
    let mut data = Vec::with_capacity(info.size.min(64 << 20));
    object
        .read_to_end(&mut data)
        .await
        .map_err(|e| format!("cannot read `{name}`: {e}"))?;
    if data.len() != info.size {
        return Err(format!(
            "`{name}` is {} bytes according to its info, but {} were read",
            info.size,
            data.len()
        ));
    }
    Ok(Some((info, data)))
}

async fn put(
    bucket: &nats_os::ObjectStore,
    location: &Path,
    bytes: &Bytes,
) -> OsResult<nats_os::ObjectInfo> {
    let mut reader: &[u8] = bytes;
    bucket
        .put(location.as_ref(), &mut reader)
        .await
        .map_err(|e| generic(format!("cannot write `{location}`: {e}")))
}

/// Every object under `prefix` (all of them for `None`), sorted.
async fn list_all(
    bucket: &nats_os::ObjectStore,
    prefix: Option<&Path>,
) -> OsResult<Vec<ObjectMeta>> {
    let mut list = bucket.list().await.map_err(generic)?;
    let mut metas = Vec::new();
    while let Some(info) = list.next().await {
        let info = info.map_err(generic)?;
        let is_link = info.options.as_ref().is_some_and(|o| o.link.is_some());
        if info.deleted || is_link {
            continue;
        }
        let Ok(location) = Path::parse(&info.name) else {
            tracing::debug!("ignoring object `{}`: not an object_store path", info.name);
            continue;
        };
        if let Some(prefix) = prefix {
            // Strictly below the prefix, as object_store lists.
            let below = location
                .prefix_match(prefix)
                .is_some_and(|mut rest| rest.next().is_some());
            if !below {
                continue;
            }
        }
        metas.push(meta_of(&location, &info));
    }
    metas.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(metas)
}

fn meta_of(location: &Path, info: &nats_os::ObjectInfo) -> ObjectMeta {
    let last_modified = info
        .modified
        .map(SystemTime::from)
        .map(DateTime::<Utc>::from)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    ObjectMeta {
        location: location.clone(),
        last_modified,
        size: info.size as u64,
        e_tag: info.digest.clone(),
        version: None,
    }
}

fn generic(
    e: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
) -> object_store::Error {
    object_store::Error::Generic {
        store: "NATS",
        source: e.into(),
    }
}

fn not_found(location: &Path) -> object_store::Error {
    object_store::Error::NotFound {
        path: location.to_string(),
        source: "no such object in the NATS bucket".into(),
    }
}

fn already_exists(location: &Path) -> object_store::Error {
    object_store::Error::AlreadyExists {
        path: location.to_string(),
        source: "the NATS bucket already holds an object of that name".into(),
    }
}

fn not_implemented(operation: &str) -> object_store::Error {
    object_store::Error::NotImplemented {
        operation: operation.to_string(),
        implementer: "NatsObjectStore".to_string(),
    }
}

/// A parsed `nats://[user:pass@]HOST[:PORT][/BUCKET]`.
struct StoreUrl {
    /// What the client connects to (credentials included, no path).
    server: String,
    /// `nats://HOST:PORT`, for messages.
    shown: String,
    bucket: String,
}

impl StoreUrl {
    fn parse(url: &str) -> wasmhost::Result<StoreUrl> {
        let url = url.trim();
        let form = "nats://[USER:PASSWORD@]HOST:PORT[/BUCKET]";
        let bad = |why: String| Error::bad_input(format!("module store URL: {why}; use {form}"));
        let parsed = Url::parse(url).map_err(|e| bad(format!("not a valid URL ({e})")))?;
        if parsed.scheme() != "nats" {
            return Err(bad(format!("`{}` is not a nats:// URL", redacted(&parsed))));
        }
        let host = match parsed.host_str() {
            Some(h) if !h.is_empty() => h.to_string(),
            _ => return Err(bad(format!("`{}` names no host", redacted(&parsed)))),
        };
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(bad(format!(
                "`{}` has a query or fragment",
                redacted(&parsed)
            )));
        }
        let port = parsed.port().unwrap_or(4222);
        let bucket = match parsed.path().trim_matches('/') {
            "" => DEFAULT_BUCKET.to_string(),
            b => b.to_string(),
        };
        let valid = bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(bad(format!(
                "bucket `{bucket}` in `{}`: a bucket name is letters, digits, `-` and `_`",
                redacted(&parsed)
            )));
        }
        let mut server = parsed.clone();
        server.set_path("");
        Ok(StoreUrl {
            server: server.to_string(),
            shown: format!("nats://{host}:{port}"),
            bucket,
        })
    }

    /// Where the store is, for messages: `nats://HOST:PORT/BUCKET`.
    fn location(&self) -> String {
        format!("{}/{}", self.shown, self.bucket)
    }
}

/// The URL without its password, for messages.
fn redacted(url: &Url) -> String {
    crate::redact_url(url.as_str())
}

/// The options of a `nats://` store.
struct Settings {
    connect_timeout: Duration,
    timeout: Duration,
    creds: Option<std::path::PathBuf>,
    token: Option<String>,
}

impl Settings {
    fn parse(options: Vec<(String, String)>) -> wasmhost::Result<Settings> {
        let mut s = Settings {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            creds: None,
            token: None,
        };
        let duration = |k: &str, v: &str| {
            match humantime::parse_duration(v.trim()) {
                Ok(d) if !d.is_zero() => Ok(d),
                Ok(_) => Err("it must be more than zero".to_string()),
                Err(e) => Err(e.to_string()),
            }
            .map_err(|why| {
                Error::bad_input(format!(
                    "store option {k}={v} is not a duration such as 10s ({why})"
                ))
            })
        };
        for (k, v) in options {
            match k.as_str() {
                "connect_timeout" => s.connect_timeout = duration(&k, &v)?,
                "timeout" => s.timeout = duration(&k, &v)?,
                "creds" => s.creds = Some(v.trim().into()),
                "token" => s.token = Some(v),
                _ => {
                    return Err(Error::bad_input(format!(
                        "`{k}` is not an option of a nats:// module store (connect_timeout, \
                         timeout, creds, token)"
                    )));
                }
            }
        }
        Ok(s)
    }

    async fn connect_options(&self) -> wasmhost::Result<async_nats::ConnectOptions> {
        let base = match (&self.creds, &self.token) {
            (Some(_), Some(_)) => {
                return Err(Error::bad_input(
                    "store options creds and token: give one way to authenticate",
                ));
            }
            (Some(path), None) => async_nats::ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|e| {
                    Error::bad_input(format!("store option creds={}: {e}", path.display()))
                })?,
            (None, Some(token)) => async_nats::ConnectOptions::with_token(token.clone()),
            (None, None) => async_nats::ConnectOptions::new(),
        };
        Ok(base
            .name("wasmhost module store")
            .connection_timeout(self.connect_timeout)
            .request_timeout(Some(REQUEST_TIMEOUT))
            // Once connected, reconnect for as long as it takes: a restarted
            // NATS server must not need a restart of whoever uses the store.
            .max_reconnects(None))
    }
}

/// Opens the module store at `url`, `nats://[USER:PASSWORD@]HOST:PORT[/BUCKET]`
/// (bucket [`DEFAULT_BUCKET`] when there is no path), on a JetStream
/// object store bucket, created (on file storage) if missing.
///
/// Options (`--store-option KEY=VALUE`): `connect_timeout` (connecting and
/// the JetStream check, default 5 s), `timeout` (one operation, default
/// 30 s), `creds` (a `.creds` file) or `token`. An unknown option or a
/// malformed URL is `bad_input`; a server that cannot be reached in time,
/// refuses the credentials or has no JetStream is `unavailable`.
///
/// The connection lives on the current tokio runtime, which must outlive
/// the store. The store's location is `nats://HOST:PORT/BUCKET` (never a
/// password).
pub async fn open_module_store<I, K, V>(url: &str, options: I) -> wasmhost::Result<ModuleStore>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: Into<String>,
{
    let target = StoreUrl::parse(url)?;
    let options = options
        .into_iter()
        .map(|(k, v)| (k.as_ref().trim().to_ascii_lowercase(), v.into()))
        .collect();
    let settings = Settings::parse(options)?;
    let connect = settings.connect_options().await?;
    let shown = target.shown.as_str();
    let client =
        crate::connect_checked(connect, &target.server, shown, settings.connect_timeout).await?;
    let deadline = settings.connect_timeout + Duration::from_secs(1);
    let js = jetstream::new(client);
    let location = target.location();
    let bucket = match tokio::time::timeout(
        deadline,
        open_bucket(
            &js,
            &target.bucket,
            "wasmhost modules: blobs/sha256/<hex> and refs/<name>/<tag>.json",
        ),
    )
    .await
    {
        Ok(Ok(bucket)) => bucket,
        Ok(Err(why)) => {
            return Err(Error::unavailable(format!(
                "module store {location}: cannot open the bucket: {why}"
            )));
        }
        Err(_) => {
            return Err(Error::unavailable(format!(
                "module store {location}: the bucket was not opened within {}",
                crate::humanize(deadline)
            )));
        }
    };
    let store = NatsObjectStore::new(target.bucket.clone(), bucket).with_timeout(settings.timeout);
    ModuleStore::with_object_store(Arc::new(store), "", location)
}

/// Opens object store `bucket`, creating it (file storage, one replica,
/// `description`) if missing. Several nodes may race to create it: creating
/// a stream that exists with the same configuration succeeds, and a loser
/// opens the winner's.
pub(crate) async fn open_bucket(
    js: &jetstream::Context,
    bucket: &str,
    description: &str,
) -> Result<nats_os::ObjectStore, String> {
    if let Ok(store) = js.get_object_store(bucket).await {
        return Ok(store);
    }
    let config = nats_os::Config {
        bucket: bucket.to_string(),
        description: Some(description.to_string()),
        storage: StorageType::File,
        num_replicas: 1,
        ..Default::default()
    };
    match js.create_object_store(config).await {
        Ok(store) => Ok(store),
        Err(created) => js
            .get_object_store(bucket)
            .await
            .map_err(|_| created.to_string()),
    }
}
