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
