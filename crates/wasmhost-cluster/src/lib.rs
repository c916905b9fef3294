//! wasmhost-cluster: several `wasmhost serve` nodes acting as one host,
//! over NATS with JetStream (`wasmhost serve --cluster nats://HOST:PORT`).
//!
//! NATS is the only moving part a cluster needs: a node joins by connecting
//! to it ([`Cluster::join`]), checks that the server has JetStream (refusing
//! with a clear error if not), and heartbeats its [`NodeRecord`] into a
//! key-value bucket whose `max_age` is a few heartbeats, so a node that
//! stops heartbeating drops out of [`Cluster::nodes`] on its own; a node
//! that leaves cleanly deletes its record at once.
//!
//! Every name the cluster uses on the server is derived from the cluster's
//! name (`--cluster-name`, `wasmhost` by default), so several clusters can
//! share one NATS server: the members bucket is `<name>-nodes`.
//!
//! Only what nats-server 2.9 serves is used: no per-key TTL (2.11), no
//! stream compression or metadata (2.10); async-nats is built without its
//! `server_2_10`+ features, so it sends no setting 2.9 would ignore.
//!
//! Layout: `lib.rs` ([`ClusterConfig`], [`Credentials`], [`Cluster`]:
//! connecting, the JetStream check, leaving), `buckets` (key-value buckets
//! made so nats-server 2.9 takes them), `membership` (the members bucket,
//! [`NodeRecord`], the heartbeat task), `leases` (one owner per actor:
//! [`Leases`]), `actors` (actors' whole state in JetStream, committed by
//! compare-and-set: [`JsActorStore`]), `objects` (the module store on a
//! JetStream object store bucket: [`NatsObjectStore`], [`open_module_store`]).
#![deny(missing_docs)]

pub mod actors;
mod buckets;
pub mod leases;
mod membership;
mod objects;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use wasmhost::{Error, Result};

pub use actors::JsActorStore;
pub use leases::{Leases, Owner};
pub use membership::{NodeLoad, NodeRecord};
pub use objects::{NatsObjectStore, open_module_store};

/// How a node authenticates to the NATS server, as NATS clients take it.
#[derive(Clone, Default)]
pub enum Credentials {
    /// None beyond what the URL carries (`nats://user:pass@host:4222`).
    #[default]
    None,
    /// A `.creds` file (a user JWT and its NKey seed), as `nats --creds`.
    File(PathBuf),
    /// A user name and password.
    UserPassword(String, String),
    /// A token.
    Token(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret.
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::File(p) => f.debug_tuple("File").field(p).finish(),
            Credentials::UserPassword(u, _) => f.debug_tuple("UserPassword").field(u).finish(),
            Credentials::Token(_) => f.write_str("Token(..)"),
        }
    }
}

/// Where the cluster is and how this node takes part in it.
#[derive(Clone)]
pub struct ClusterConfig {
    /// The NATS server(s): `nats://HOST:PORT`, several separated by commas.
    pub url: String,
    /// The cluster's name: the prefix of every bucket and subject it uses
    /// (letters, digits, `-` and `_`).
    pub name: String,
    /// How to authenticate.
    pub credentials: Credentials,
    /// How often a node refreshes its record. A node that missed
    /// [`MISSED_HEARTBEATS`] of them drops out of the member list.
    pub heartbeat: Duration,
    /// Longest the first connection and the JetStream check may take
    /// before start-up fails.
    pub connect_timeout: Duration,
    /// How long an actor's lease lives unless its owner renews it (every
    /// third of it): how long an actor waits for a new owner after its
    /// owner died.
    pub lease_ttl: Duration,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret: the URL may carry a password.
        f.debug_struct("ClusterConfig")
            .field("url", &self.shown_url())
            .field("name", &self.name)
            .field("credentials", &self.credentials)
            .field("heartbeat", &self.heartbeat)
            .field("connect_timeout", &self.connect_timeout)
            .field("lease_ttl", &self.lease_ttl)
            .finish()
    }
}

/// Heartbeats a node may miss before its record expires.
pub const MISSED_HEARTBEATS: u32 = 3;

impl ClusterConfig {
    /// A cluster at `url` with the default name (`wasmhost`), a heartbeat
    /// every second, and 5 s to connect.
    pub fn new(url: impl Into<String>) -> Self {
        ClusterConfig {
            url: url.into(),
            name: "wasmhost".to_string(),
            credentials: Credentials::None,
            heartbeat: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(3),
        }
    }

    /// Refuses a name NATS could not carry in a bucket or subject name.
    pub fn check(&self) -> Result<()> {
        let ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(Error::bad_input(format!(
                "cluster name `{}`: use 1 to 64 letters, digits, `-` or `_`",
                self.name
            )));
        }
        if self.url.trim().is_empty() {
            return Err(Error::bad_input("--cluster: no NATS URL given"));
        }
        if self.lease_ttl < Duration::from_millis(300) {
            return Err(Error::bad_input(
                "cluster lease TTL: at least 300ms (it is renewed every third of it)",
            ));
        }
        if self.heartbeat < Duration::from_millis(100) {
            return Err(Error::bad_input(
                "cluster heartbeat: at least 100ms (a record expires after three missed ones)",
            ));
        }
        Ok(())
    }

    /// The URL for messages and listings: any password replaced by `***`.
    pub fn shown_url(&self) -> String {
        redact_url(&self.url)
    }

    /// The NATS client options these settings give.
    async fn connect_options(&self, node: &str) -> Result<async_nats::ConnectOptions> {
        let base = match &self.credentials {
            Credentials::None => async_nats::ConnectOptions::new(),
            Credentials::File(path) => async_nats::ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|e| {
                    Error::bad_input(format!("cluster credentials file {}: {e}", path.display()))
                })?,
            Credentials::UserPassword(u, p) => {
                async_nats::ConnectOptions::with_user_and_password(u.clone(), p.clone())
            }
            Credentials::Token(t) => async_nats::ConnectOptions::with_token(t.clone()),
        };
        Ok(base
            .name(format!("wasmhost {node}"))
            .connection_timeout(self.connect_timeout)
            // After the first connection, reconnect for as long as it
            // takes: a restarted NATS server must not need node restarts.
            .max_reconnects(None))
    }
}

/// This node's membership of a cluster. Cloning shares it.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClusterConfig,
    id: String,
    client: async_nats::Client,
    js: jetstream::Context,
    leases: Leases,
    members: std::sync::OnceLock<membership::Members>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.inner.config.name)
            .field("url", &self.inner.config.shown_url())
            .field("node", &self.inner.id)
            .finish()
    }
}

impl Cluster {
    /// Connects to the NATS server, checks it has JetStream, and opens the
    /// leases bucket, as a node with a fresh id; [`Cluster::join_as`] then
    /// makes it a member.
    ///
    /// Fails within `connect_timeout` (plus a second) with `unavailable`
    /// when the server cannot be reached or has no JetStream, and with
    /// `bad_input` for a malformed URL, name or credentials file.
    pub async fn connect(config: ClusterConfig) -> Result<Cluster> {
        config.check()?;
        let id = new_node_id();
        let options = config.connect_options(&id).await?;
        let client = connect_checked(
            options,
            &config.url,
            &config.shown_url(),
            config.connect_timeout,
        )
        .await?;
        let js = jetstream::new(client.clone());
        let leases = Leases::open(&js, &config.name, &id, config.lease_ttl).await?;
        Ok(Cluster {
            inner: Arc::new(Inner {
                config,
                id,
                client,
                js,
                leases,
                members: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Makes this node a member: writes `me` (its id replaced by this
    /// node's) into the members bucket and heartbeats it, its load read
    /// from `load` at every heartbeat.
    pub async fn join_as(
        &self,
        mut me: NodeRecord,
        load: impl Fn() -> NodeLoad + Send + Sync + 'static,
    ) -> Result<()> {
        me.id = self.inner.id.clone();
        let members =
            membership::Members::open(&self.inner.js, &self.inner.config, me, Arc::new(load))
                .await?;
        if self.inner.members.set(members).is_err() {
            return Err(Error::internal("this node already joined its cluster"));
        }
        Ok(())
    }

    /// [`Cluster::connect`], then [`Cluster::join_as`].
    pub async fn join(
        config: ClusterConfig,
        me: NodeRecord,
        load: impl Fn() -> NodeLoad + Send + Sync + 'static,
    ) -> Result<Cluster> {
        let cluster = Cluster::connect(config).await?;
        cluster.join_as(me, load).await?;
        Ok(cluster)
    }

    /// The actors' leases.
    pub fn leases(&self) -> &Leases {
        &self.inner.leases
    }

    /// The cluster's actor store, over the actors bucket; `local` is where
    /// the guests of the actors this node owns read their key-value data.
    pub async fn actor_store(&self, local: wasmhost::KvStore) -> Result<JsActorStore> {
        let max = self
            .inner
            .client
            .server_info()
            .max_payload
            .saturating_sub(16 << 10);
        JsActorStore::open(
            &self.inner.js,
            &self.inner.config.name,
            &self.inner.id,
            local,
            max,
            self.inner.leases.clone(),
        )
        .await
    }

    /// This node's id in the cluster.
    pub fn node_id(&self) -> &str {
        &self.inner.id
    }

    /// The cluster's settings.
    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    /// The NATS connection.
    pub fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    /// The JetStream context.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.inner.js
    }

    /// The nodes whose records have not expired, this one included,
    /// ordered by id.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        match self.inner.members.get() {
            Some(m) => m.list().await,
            None => Ok(Vec::new()),
        }
    }

    /// Stops heartbeating and deletes this node's record, so the others
    /// see it gone at once rather than after it expires. Bounded by
    /// [`LEAVE_TIMEOUT`]: with the NATS server away, the record expires.
    pub async fn leave(&self) {
        let goodbye = async {
            if let Some(m) = self.inner.members.get() {
                m.leave().await;
            }
            let _ = self.inner.client.flush().await;
        };
        if tokio::time::timeout(LEAVE_TIMEOUT, goodbye).await.is_err() {
            tracing::warn!(
                "cluster: could not delete this node's record within {}; it will expire",
                humanize(LEAVE_TIMEOUT)
            );
        }
    }

    /// Gives every actor lease of this node up (after its last message), so
    /// the next message to those actors takes them over at once rather than
    /// after their leases expire. Bounded by [`LEAVE_TIMEOUT`] too.
    pub async fn release_leases(&self) {
        let release = async {
            self.inner.leases.release_all().await;
            let _ = self.inner.client.flush().await;
        };
        if tokio::time::timeout(LEAVE_TIMEOUT, release).await.is_err() {
            tracing::warn!(
                "cluster: could not release this node's leases within {}; they will expire",
                humanize(LEAVE_TIMEOUT)
            );
        }
    }
}

/// The longest [`Cluster::leave`] and [`Cluster::release_leases`] wait for
/// the NATS server.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);

/// A fresh node id: unique across restarts (NUID, 22 characters).
pub fn new_node_id() -> String {
    nuid::next().to_string()
}

/// `url` (one NATS URL, or several separated by commas) with any password
/// replaced by `***`, for messages.
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|one| match url::Url::parse(one.trim()) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("***"));
                u.to_string()
            }
            _ => one.trim().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Connects to `server` and checks that it has JetStream, within
/// `connect_timeout` (plus a second) for each; errors name the server as
/// `shown` (no password): `unavailable` when it cannot be reached, refuses
/// the credentials or has no JetStream, `bad_input` for a malformed URL.
pub(crate) async fn connect_checked(
    options: async_nats::ConnectOptions,
    server: &str,
    shown: &str,
    connect_timeout: Duration,
) -> Result<async_nats::Client> {
    // async-nats ignores a URL's user and password: take them from the
    // URL here (percent-decoded), and connect to the URLs without them.
    let (options, server) = match userinfo(server) {
        Some((user, password)) => (
            options.user_and_password(user, password),
            strip_userinfo(server),
        ),
        None => (options, server.to_string()),
    };
    let deadline = connect_timeout + Duration::from_secs(1);
    let client = match tokio::time::timeout(deadline, options.connect(server.as_str())).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => return Err(connect_error(shown, &e)),
        Err(_) => {
            return Err(Error::unavailable(format!(
                "cannot reach the NATS server at {shown}: no answer within {}",
                humanize(deadline)
            )));
        }
    };
    check_jetstream(&client, shown, deadline).await?;
    Ok(client)
}

/// The user and password of the first of `urls` that carries a user.
fn userinfo(urls: &str) -> Option<(String, String)> {
    urls.split(',').find_map(|one| {
        let u = url::Url::parse(one.trim()).ok()?;
        if u.username().is_empty() {
            return None;
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        Some((decode(u.username()), decode(u.password().unwrap_or(""))))
    })
}

/// `urls` without their user and password.
fn strip_userinfo(urls: &str) -> String {
    urls.split(',')
        .map(|one| match url::Url::parse(one.trim()) {
            Ok(mut u) if !u.username().is_empty() => {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.to_string()
            }
            _ => one.trim().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Asks the server for this account's JetStream information. The reply is
/// read as plain JSON rather than async-nats's `Account`, whose newer fields
/// nats-server 2.9 does not send.
async fn check_jetstream(client: &async_nats::Client, url: &str, deadline: Duration) -> Result<()> {
    use async_nats::RequestErrorKind as K;
    let asked = client.request("$JS.API.INFO", bytes::Bytes::new());
    let reply = match tokio::time::timeout(deadline, asked).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) if e.kind() == K::NoResponders => {
            return Err(Error::unavailable(format!(
                "the NATS server at {url} has no JetStream: a cluster keeps its members, \
                 leases, snapshots and modules there; start the server with JetStream \
                 enabled (`nats-server -js`)"
            )));
        }
        Ok(Err(e)) => {
            return Err(Error::unavailable(format!(
                "the NATS server at {url} did not answer the JetStream check: {e}"
            )));
        }
        Err(_) => {
            return Err(Error::unavailable(format!(
                "the NATS server at {url} did not answer the JetStream check within {}",
                humanize(deadline)
            )));
        }
    };
    let info: serde_json::Value = serde_json::from_slice(&reply.payload).map_err(|e| {
        Error::unavailable(format!(
            "the NATS server at {url} answered the JetStream check with something else: {e}"
        ))
    })?;
    if let Some(error) = info.get("error") {
        let what = error
            .get("description")
            .and_then(|d| d.as_str())
            .unwrap_or("an error");
        return Err(Error::unavailable(format!(
            "the NATS server at {url} refused JetStream to this account: {what}"
        )));
    }
    Ok(())
}

fn connect_error(url: &str, e: &async_nats::ConnectError) -> Error {
    use async_nats::ConnectErrorKind as K;
    match e.kind() {
        K::ServerParse => Error::bad_input(format!(
            "--cluster `{url}`: not a NATS server URL (expected nats://HOST:PORT): {e}"
        )),
        K::Authentication | K::AuthorizationViolation => Error::unavailable(format!(
            "the NATS server at {url} refused this node's credentials: {e}"
        )),
        _ => Error::unavailable(format!("cannot reach the NATS server at {url}: {e}")),
    }
}

pub(crate) fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
