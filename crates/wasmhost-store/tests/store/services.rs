//! The storage emulators the contract suite runs against: moto's S3 server
//! and Azurite's blob service, started by the test binary itself on free
//! loopback ports, and stopped when dropped.
//!
//! The binaries are installed by `scripts/test-services.sh` into
//! `target/test-tools/` (overridable with `WASMHOST_TEST_MOTO_SERVER` and
//! `WASMHOST_TEST_AZURITE_BLOB`). A missing binary fails the test with a
//! message saying how to install it; nothing is skipped.
//!
//! Each emulator runs under a small `sh` wrapper that kills it when our end
//! of its stdin pipe closes: on drop, and also when this test process dies
//! without running destructors (a SIGKILL), so no emulator outlives its test
//! (the wrapper also sends SIGCONT, in case a test had stopped it).

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

/// How long an emulator may take to answer its first request.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Azurite's well-known development account.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development account key (public, documented).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The bucket / container the suites use.
pub const BUCKET: &str = "wasmhost-test";

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Finds an emulator binary: `$env_var`, else `target/test-tools/<rel>`.
fn tool(env_var: &str, rel: &str) -> PathBuf {
    let path = match std::env::var_os(env_var) {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join("target/test-tools").join(rel),
    };
    assert!(
        path.is_file(),
        "the storage emulator `{}` is missing; run `scripts/test-services.sh` from the \
         repository root to install it (or set {env_var} to its path)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("local addr").port()
}

/// A running emulator process.
#[derive(Debug)]
pub struct Service {
    name: &'static str,
    child: Child,
    /// Closing it makes the wrapper kill the emulator.
    stdin: Option<ChildStdin>,
    pub port: u16,
    log: PathBuf,
    /// Logs and data.
    _dir: TempDir,
}

impl Service {
    /// Starts `exe args…` (with `{port}` and `{dir}` substituted) and waits
    /// until it answers HTTP. Retries on another port if it dies early
    /// (e.g. the port was taken meanwhile).
    fn start(name: &'static str, exe: PathBuf, args: &[&str]) -> Service {
        let mut last_failure = String::new();
        for _attempt in 0..3 {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = free_port();
            let data = dir.path().join("data");
            std::fs::create_dir_all(&data).expect("data dir");
            let log = dir.path().join("log.txt");
            let log_file = File::create(&log).expect("log file");
            let args: Vec<String> = args
                .iter()
                .map(|a| {
                    a.replace("{port}", &port.to_string())
                        .replace("{dir}", &data.display().to_string())
                })
                .collect();
            // Runs the emulator in the background with stdin from /dev/null;
            // a second background job waits for EOF on our pipe (fd 3) and
            // kills it. The wrapper itself exits when the emulator does.
            let script = r#"exec 3<&0
"$@" </dev/null &
pid=$!
{ read -r _ <&3; kill "$pid" 2>/dev/null; kill -CONT "$pid" 2>/dev/null; } &
wait "$pid""#;
            let child = Command::new("sh")
                .arg("-c")
                .arg(script)
                .arg("sh")
                .arg(&exe)
                .args(&args)
                .stdin(Stdio::piped())
                .stdout(Stdio::from(log_file.try_clone().expect("log fd")))
                .stderr(Stdio::from(log_file))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", exe.display()));
            let mut svc = Service {
                name,
                stdin: None,
                child,
                port,
                log,
                _dir: dir,
            };
            svc.stdin = svc.child.stdin.take();
            match svc.wait_ready() {
                Ok(()) => return svc,
                Err(why) => last_failure = why,
            }
        }
        panic!("{name} did not start: {last_failure}");
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "it exited with {status} on port {}; its output:\n{}",
                    self.port,
                    self.log_text()
                ));
            }
            if http(self.port, "GET", "/", &[]).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no HTTP answer on 127.0.0.1:{} within {READY_TIMEOUT:?}; its output:\n{}",
                    self.port,
                    self.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The emulator process itself (the wrapper's child that is not a
    /// shell), for tests that stop or kill it.
    pub fn emulator_pid(&self) -> u32 {
        let wrapper = self.child.id();
        let shell = std::fs::read_link(format!("/proc/{wrapper}/exe")).ok();
        let children: Vec<u32> = std::fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| parent_of(*pid) == Some(wrapper))
            .collect();
        children
            .iter()
            .copied()
            .find(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok() != shell)
            .unwrap_or_else(|| {
                panic!(
                    "{}: no emulator process under its wrapper {wrapper} (children: {children:?})",
                    self.name
                )
            })
    }
}

/// The parent of a process, from `/proc/PID/stat` (`None` if it is gone).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

impl Drop for Service {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{} did not stop in time; killing its wrapper", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto's standalone S3 server, with the bucket [`BUCKET`] created.
#[derive(Debug)]
pub struct Moto(pub Service);

impl Moto {
    pub fn start() -> Moto {
        let exe = tool("WASMHOST_TEST_MOTO_SERVER", "venv/bin/moto_server");
        let svc = Service::start("moto_server", exe, &["-H", "127.0.0.1", "-p", "{port}"]);
        // moto needs no signature for CreateBucket.
        let (status, body) =
            http(svc.port, "PUT", &format!("/{BUCKET}"), &[]).expect("CreateBucket request");
        assert_eq!(status, 200, "CreateBucket failed: {body}");
        Moto(svc)
    }

    /// object_store settings that reach this server.
    pub fn options(&self) -> Vec<(String, String)> {
        s3_options(&self.0.endpoint())
    }

    /// The same settings as environment variables (what `from_env` reads).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.0.endpoint()),
            ("AWS_ALLOW_HTTP".into(), "true".into()),
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
        ]
    }
}

/// object_store settings for an S3 API at `endpoint` (plain HTTP,
/// path-style, moto's test credentials).
pub fn s3_options(endpoint: &str) -> Vec<(String, String)> {
    [
        ("aws_endpoint", endpoint),
        ("aws_allow_http", "true"),
        ("aws_access_key_id", "testing"),
        ("aws_secret_access_key", "testing"),
        ("aws_region", "us-east-1"),
        ("aws_virtual_hosted_style_request", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Azurite's blob service, with the container [`BUCKET`] created.
#[derive(Debug)]
pub struct Azurite(pub Service);

impl Azurite {
    pub fn start() -> Azurite {
        let exe = tool(
            "WASMHOST_TEST_AZURITE_BLOB",
            "node_modules/.bin/azurite-blob",
        );
        let svc = Service::start(
            "azurite-blob",
            exe,
            &[
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                "{port}",
                "--location",
                "{dir}",
                "--silent",
                "--skipApiVersionCheck",
                "--loose",
            ],
        );
        create_container(svc.port, BUCKET);
        Azurite(svc)
    }

    /// object_store settings that reach this server as a regular account
    /// endpoint (path-style, like the emulator mode).
    pub fn options(&self) -> Vec<(String, String)> {
        [
            ("azure_storage_account_name", AZURITE_ACCOUNT.to_string()),
            ("azure_storage_account_key", AZURITE_KEY.to_string()),
            (
                "azure_storage_endpoint",
                format!("{}/{AZURITE_ACCOUNT}", self.0.endpoint()),
            ),
            ("azure_allow_http", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Environment variables for object_store's emulator mode.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AZURE_STORAGE_USE_EMULATOR".into(), "true".into()),
            ("AZURITE_BLOB_STORAGE_URL".into(), self.0.endpoint()),
        ]
    }
}

/// Creates a container with a SharedKey-signed `Create Container` request.
fn create_container(port: u16, container: &str) {
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let version = "2021-08-06";
    // Verb, eleven standard headers (all empty), canonical headers, resource.
    let string_to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n\
         /{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{container}\nrestype:container"
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(AZURITE_KEY)
        .expect("well-known key is base64");
    let signature = base64::engine::general_purpose::STANDARD
        .encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    let (status, body) = http(
        port,
        "PUT",
        &format!("/{AZURITE_ACCOUNT}/{container}?restype=container"),
        &[
            ("x-ms-date", date),
            ("x-ms-version", version.to_string()),
            (
                "Authorization",
                format!("SharedKey {AZURITE_ACCOUNT}:{signature}"),
            ),
        ],
    )
    .expect("Create Container request");
    assert_eq!(status, 201, "Create Container failed: {body}");
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// One HTTP/1.1 request with an empty body to 127.0.0.1:`port`; returns the
/// status code and the whole response text.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| text.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not an HTTP response: {text:?}"),
            )
        })?;
    Ok((status, text))
}

#[test]
fn hmac_matches_rfc_4231_case_2() {
    let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
    assert_eq!(
        hex::encode(mac),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}
