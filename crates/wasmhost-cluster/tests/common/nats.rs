//! A real nats-server for tests: Debian's `nats-server` (installed by
//! scripts/test-services.sh; `WASMHOST_TEST_NATS_SERVER` overrides the
//! path), on a free loopback port, with JetStream in a temporary store
//! directory. Killed when dropped. Shared by the cluster crate's tests and
//! the CLI's (`#[path]`).
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nats-server.
pub struct Nats {
    child: Option<Child>,
    port: u16,
    jetstream: bool,
    dir: tempfile::TempDir,
}

/// The nats-server binary, or a panic that says how to install it.
pub fn binary() -> PathBuf {
    let path = std::env::var_os("WASMHOST_TEST_NATS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/nats-server"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/test-services.sh (apt-get install nats-server)",
        path.display()
    );
    path
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Nats {
    /// nats-server with JetStream.
    pub fn start() -> Nats {
        Nats::launch(
            free_port(),
            true,
            tempfile::tempdir().expect("tempdir"),
            &[],
        )
    }

    /// nats-server with JetStream and these extra arguments (say, `--user U
    /// --pass P` or `--auth TOKEN`).
    pub fn start_with(args: &[&str]) -> Nats {
        Nats::launch(
            free_port(),
            true,
            tempfile::tempdir().expect("tempdir"),
            args,
        )
    }

    /// nats-server without JetStream.
    pub fn without_jetstream() -> Nats {
        Nats::launch(
            free_port(),
            false,
            tempfile::tempdir().expect("tempdir"),
            &[],
        )
    }

    fn launch(port: u16, jetstream: bool, dir: tempfile::TempDir, args: &[&str]) -> Nats {
        let mut cmd = Command::new(binary());
        cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(args);
        if jetstream {
            cmd.arg("-js").arg("-sd").arg(dir.path());
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        let nats = Nats {
            child: Some(child),
            port,
            jetstream,
            dir,
        };
        nats.wait_ready();
        nats
    }

    fn wait_ready(&self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let start = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nats-server did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGKILL) and starts it again on the same port with
    /// the same store directory.
    pub fn restart(&mut self) {
        self.kill();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        let fresh = Nats::launch(self.port, self.jetstream, dir, &[]);
        *self = fresh;
    }

    /// SIGKILLs the server.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}
