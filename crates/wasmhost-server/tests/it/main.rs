//! Integration tests of `wasmhost serve` over real sockets: each test starts
//! a server on a free loopback port with its own state, talks to it with an
//! HTTP client (or raw TCP), and shuts it down.

mod api;
mod outbound;
mod pressure;
mod security;
mod wasi_http;
mod workers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use wasmhost::{ActorConfig, ActorSystem, KvStore, PoolConfig, Runtime, RuntimeConfig};
use wasmhost_server::{Server, ServerConfig, WorkerSpec};
use wasmhost_store::ModuleStore;

/// A guest built by scripts/build-guests.sh (or a WAT file copied there).
pub fn guest(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/guests/out")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/build-guests.sh",
        p.display()
    );
    p
}

/// `PATH=GUEST[,options]` for a route to a built guest.
pub fn route(path: &str, guest_name: &str, options: &str) -> WorkerSpec {
    let spec = format!("{path}={}{options}", guest(guest_name).display());
    WorkerSpec::parse_route(&spec).expect("route spec")
}

/// A running server and what is needed to stop it.
#[derive(Debug)]
pub struct TestServer {
    pub url: String,
    pub addr: SocketAddr,
    pub tcp: Vec<SocketAddr>,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<wasmhost::Result<()>>>,
    _state: tempfile::TempDir,
}

/// A server bound (not yet running) on a fresh state directory.
pub async fn bind(config: ServerConfig) -> wasmhost::Result<(Server, tempfile::TempDir)> {
    let state = tempfile::tempdir().expect("tempdir");
    let mut pool = PoolConfig::default();
    pool.max_instances = 64;
    let rt = Runtime::new(wasmhost_server::runtime_config(
        &config,
        RuntimeConfig::default().pool(Some(pool)),
    ))?;
    let store = ModuleStore::default_for_state(state.path())?;
    let kv = KvStore::open(&state.path().join("kv.redb"))?;
    let actors = ActorSystem::new(ActorConfig::default().kv(kv));
    Ok((Server::bind(config, rt, store, actors).await?, state))
}

/// A config listening on a free loopback port, small limits for tests.
pub fn config() -> ServerConfig {
    let mut c = ServerConfig::default();
    c.addr = SocketAddr::from(([127, 0, 0, 1], 0));
    c.max_concurrent = 8;
    c.shutdown_grace = Duration::from_secs(10);
    c
}

impl TestServer {
    /// Starts a server with `config` on a fresh state directory.
    pub async fn start(config: ServerConfig) -> TestServer {
        Self::try_start(config).await.expect("server starts")
    }

    /// Like [`TestServer::start`], returning the startup error.
    pub async fn try_start(config: ServerConfig) -> wasmhost::Result<TestServer> {
        let (server, state) = bind(config).await?;
        let addr = server.http_addr();
        let tcp = server.tcp_addrs();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Ok(TestServer {
            url: format!("http://{addr}"),
            addr,
            tcp,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            stop: Some(stop),
            task: Some(task),
            _state: state,
        })
    }

    /// `url` + `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Begins a graceful shutdown; [`TestServer::stopped`] waits for it.
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for the server to finish shutting down.
    pub async fn stopped(&mut self) {
        self.shutdown();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("shutdown within 30 s")
                .expect("server task")
                .expect("server ran cleanly");
        }
    }

    /// `GET path`: the body as text.
    pub async fn get_text(&self, path: &str) -> String {
        let res = self.client.get(self.at(path)).send().await.expect(path);
        res.text().await.expect("text body")
    }

    /// `GET path`: the body as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let res = self.client.get(self.at(path)).send().await.expect(path);
        res.json().await.expect("JSON body")
    }

    /// Uploads `bytes` as `name:latest`.
    pub async fn upload(&self, name: &str, bytes: Vec<u8>) {
        let res = self
            .client
            .post(self.at(&format!("/api/v1/modules?name={name}")))
            .body(bytes)
            .send()
            .await
            .expect("upload");
        assert_eq!(res.status(), 201, "{:?}", res.text().await);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The JSON error code of a response, with its status.
pub async fn error_of(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.expect("a JSON error body");
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.code in {body}"))
        .to_string();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no message in {body}"
    );
    (status, code)
}
