//! Paths to the guests and ways to run the binary, shared by the CLI's
//! test binaries (each uses a part of it).
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A WAT guest's source path.
pub fn wat(name: &str) -> String {
    root()
        .join("guests/wat")
        .join(format!("{name}.wat"))
        .display()
        .to_string()
}

/// A built Rust guest's path; panics with instructions when it is missing.
pub fn built(file: &str) -> String {
    let p = root().join("target/guests/out").join(file);
    assert!(
        p.exists(),
        "{} missing: run scripts/build-guests.sh",
        p.display()
    );
    p.display().to_string()
}

/// Runs `wasmhost ARGS` with `stdin` against the state directory `state`
/// (and no store URL inherited from the environment).
pub fn wasmhost_in(state: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .args(args)
        .env("WASMHOST_STATE", state)
        .env_remove("WASMHOST_STORE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wasmhost");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait for wasmhost")
}

/// Runs `wasmhost ARGS` against the state directory `state`, asserting
/// success; its stdout, trailing newlines trimmed.
pub fn ok_in(state: &Path, args: &[&str]) -> String {
    let out = wasmhost_in(state, args, b"");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// Runs `wasmhost ARGS` against the state directory `state`, asserting
/// failure: (exit status, stderr).
pub fn fails_in(state: &Path, args: &[&str]) -> (i32, String) {
    let out = wasmhost_in(state, args, b"");
    assert!(!out.status.success(), "{args:?} should fail");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `wasmhost ARGS` with `stdin` and a fresh private state directory.
pub fn wasmhost(args: &[&str], stdin: &[u8]) -> Output {
    let state = tempfile::tempdir().expect("tempdir");
    wasmhost_in(state.path(), args, stdin)
}

/// Runs `wasmhost ARGS`, which must succeed; its stdout.
pub fn ok(args: &[&str], stdin: &[u8]) -> String {
    let out = wasmhost(args, stdin);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 stdout")
}

/// Runs `wasmhost ARGS`, which must fail; (exit status, stderr).
pub fn fails(args: &[&str], stdin: &[u8]) -> (i32, String) {
    let out = wasmhost(args, stdin);
    assert!(!out.status.success(), "{args:?} should fail");
    (
        out.status.code().expect("exit status"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every file below `dir` (none when it does not exist).
pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// A `wasmhost serve` child and the address it printed; killed (SIGKILL)
/// when dropped.
pub struct Serving {
    pub child: std::process::Child,
    pub addr: String,
    /// Every line the server has written to stderr so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _state: Option<tempfile::TempDir>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serving {
    /// The state directory the server was started with by [`serve_in`].
    pub fn state(&self) -> &Path {
        self._state.as_ref().expect("a server of serve_in").path()
    }

    /// Sends `signal` (`TERM`, `KILL`, …) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal}");
    }

    /// Waits (60 s at most) for the server to exit; its status.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "still running 60 s after the signal"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Starts `wasmhost serve --addr 127.0.0.1:0 ARGS` with a private state
/// directory and waits (30 s at most) for the line saying where it listens.
pub fn serve(args: &[&str]) -> Serving {
    serve_in(tempfile::tempdir().expect("tempdir"), None, args)
}

/// [`serve`] over the state directory `state` (kept as long as the
/// server), in the working directory `cwd` (the test's own when `None`).
pub fn serve_in(state: tempfile::TempDir, cwd: Option<&Path>, args: &[&str]) -> Serving {
    let mut s = serve_at(state.path(), cwd, args);
    s._state = Some(state);
    s
}

/// [`serve`] over the state directory `state`, which outlives the server
/// (for restarts).
pub fn serve_at(state: &Path, cwd: Option<&Path>, args: &[&str]) -> Serving {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmhost"));
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    serve_with(cmd, state, args)
}

/// [`serve_at`] with `cmd` as the program: the wasmhost binary, or a
/// wrapper that ends by executing it with the arguments appended (such as
/// [`PrivateTmpfs::command`]).
pub fn serve_with(mut cmd: Command, state: &Path, args: &[&str]) -> Serving {
    use std::io::BufRead;
    let mut child = cmd
        .arg("serve")
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .env("WASMHOST_STATE", state)
        .env_remove("WASMHOST_STORE")
        .env_remove("WASMHOST_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let lines = log.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(addr) = line.strip_prefix("wasmhost serve: listening on http://") {
                let _ = tx.send(addr.to_string());
            }
            lines.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        }
    });
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the server says where it listens within 30 s");
    Serving {
        child,
        addr,
        log,
        _state: None,
    }
}

/// One HTTP/1.1 request on its own connection, with extra `headers`:
/// (status, response head, body), or the I/O error (a server that went
/// away).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String, String)> {
    use std::io::Read;
    let mut conn = std::net::TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    write!(conn, "{head}\r\n{body}")?;
    let mut reply = String::new();
    conn.read_to_string(&mut reply)?;
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not HTTP: {reply:?}")))?;
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    Ok((status, head.to_string(), body.to_string()))
}

/// One HTTP/1.1 request on its own connection; (status, body).
pub fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let (status, _, body) = request(addr, method, path, &[], body).expect("request");
    (status, body)
}

/// A one-thread HTTP/1.1 server on a loopback port (real sockets), for as
/// long as the test process runs. `respond` gets each request's path and
/// returns (status line, extra header lines, body); every connection gets
/// one answer and is closed. Returns the port.
pub fn http_server(
    respond: impl Fn(&str) -> (&'static str, Vec<String>, Vec<u8>) + Send + 'static,
) -> u16 {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // Skip the headers.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or("/");
            let (status, headers, body) = respond(path);
            let mut head = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for h in headers {
                head.push_str(&h);
                head.push_str("\r\n");
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    port
}

/// A tmpfs of a fixed size, mounted in a mount namespace of its own, so
/// that a test can fill a disk without touching the machine's. A small
/// `unshare` process holds the namespace (and exits when this is dropped, or
/// when the test process dies and its stdin pipe closes); commands run in
/// it through [`PrivateTmpfs::command`] (`nsenter`), and the test reads its
/// files through `/proc/PID/root` ([`PrivateTmpfs::outside`]). Mounting
/// needs root (CAP_SYS_ADMIN), as the test machines have: without it the
/// test fails saying so.
pub struct PrivateTmpfs {
    holder: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    /// The mount point (inside the namespace).
    pub dir: PathBuf,
}

impl PrivateTmpfs {
    /// Mounts a tmpfs of `size` (`mount`'s spelling: `64k`, `4m`) on the
    /// existing directory `dir`, in a new mount namespace.
    pub fn mount(dir: &Path, size: &str) -> PrivateTmpfs {
        use std::io::BufRead;
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(
                "mount -t tmpfs -o size=\"$1\" wasmhost-test \"$2\" || exit 1; \
                 echo mounted; read -r _",
            )
            .args(["sh", size])
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run unshare (util-linux)");
        let stdin = holder.stdin.take();
        let mut line = String::new();
        let stdout = holder.stdout.take().expect("stdout");
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        if line.trim() != "mounted" {
            let out = holder.wait_with_output().expect("wait for unshare");
            panic!(
                "cannot mount a tmpfs in a private mount namespace ({}): this test injects a \
                 full disk and needs root (CAP_SYS_ADMIN) and util-linux's unshare/nsenter",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        PrivateTmpfs {
            holder,
            stdin,
            dir: dir.to_path_buf(),
        }
    }

    /// `program` to be run inside the namespace (its arguments appended by
    /// the caller): `nsenter -t PID -m -- program`, which executes it in
    /// place, so its pid is the child's.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.holder.id().to_string(), "-m", "--"])
            .arg(program);
        cmd
    }

    /// The path, seen from outside the namespace, of `path` inside it.
    pub fn outside(&self, path: &Path) -> PathBuf {
        let rel = path.strip_prefix("/").unwrap_or(path);
        PathBuf::from(format!("/proc/{}/root", self.holder.id())).join(rel)
    }

    /// Changes the tmpfs's size (more room, or less).
    pub fn resize(&self, size: &str) {
        let status = self
            .command("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "remount {} to {size}", self.dir.display());
    }
}

impl Drop for PrivateTmpfs {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.holder.wait();
    }
}
