//! OCI registries: `wasmhost push`/`pull` and `oci://` MODULEs against a
//! real registry — Debian's `docker-registry` (distribution 2.8), started
//! by this test binary on a free loopback port with its own storage, and
//! stopped when dropped. `scripts/test-services.sh` installs it (apt-get);
//! `WASMHOST_TEST_REGISTRY` overrides its path. A missing binary fails the
//! test with a message saying how to install it; nothing is skipped.
//!
//! Manifests other tools write (wkg's wasm layout, a container image's
//! tar+gzip layer) are pushed with raw HTTP, as those tools would.

// Tests unwrap: a failure is the test failing, with the value in the message.
#![allow(clippy::unwrap_used)]

mod common;

use common::{built, wat};

use std::fs::File;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

use wasmhost::Digest;

/// A `docker-registry` process on a loopback port.
struct Registry {
    child: Child,
    /// Closing it makes the wrapper kill the registry.
    stdin: Option<ChildStdin>,
    port: u16,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn registry_exe() -> PathBuf {
    let p = std::env::var_os("WASMHOST_TEST_REGISTRY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/docker-registry"));
    assert!(
        p.is_file(),
        "`{}` is missing: run `scripts/test-services.sh` (it runs `apt-get install \
         docker-registry`) or set WASMHOST_TEST_REGISTRY to the registry binary",
        p.display()
    );
    p
}

/// `me`:`secret` in htpasswd's bcrypt form (a test credential).
const HTPASSWD: &str = "me:$2a$12$4SLwNd4nqkTFOHCGS0.1zO9FEZ43FCF3F9TOo2YirEhS6l5ot3XUi\n";

impl Registry {
    /// A registry open to anyone.
    fn start() -> Registry {
        Registry::start_with(false)
    }

    /// A registry that lets only `me`:`secret` in (basic auth, htpasswd).
    fn start_with_auth() -> Registry {
        Registry::start_with(true)
    }

    fn start_with(auth: bool) -> Registry {
        let exe = registry_exe();
        let mut last = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let config = dir.path().join("config.yml");
            let mut text = format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            );
            if auth {
                let htpasswd = dir.path().join("htpasswd");
                std::fs::write(&htpasswd, HTPASSWD).unwrap();
                text.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: wasmhost-test\n    path: {}\n",
                    htpasswd.display()
                ));
            }
            std::fs::write(&config, text).unwrap();
            let log = File::create(dir.path().join("log.txt")).unwrap();
            // The wrapper kills the registry when our end of its stdin
            // closes (on drop, or when this process dies).
            let script = "exec 3<&0\n\"$@\" </dev/null &\npid=$!\n\
                          { read -r _ <&3; kill \"$pid\" 2>/dev/null; } &\nwait \"$pid\"";
            let mut child = Command::new("sh")
                .args(["-c", script, "sh"])
                .arg(&exe)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::piped())
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap();
            let stdin = child.stdin.take();
            let mut reg = Registry {
                child,
                stdin,
                port,
                dir,
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(status)) = reg.child.try_wait() {
                    last = format!("exited with {status}: {}", reg.log());
                    break;
                }
                match ureq::get(format!("http://127.0.0.1:{port}/v2/")).call() {
                    Ok(_) | Err(ureq::Error::StatusCode(401)) => return reg,
                    Err(_) => {}
                }
                if Instant::now() > deadline {
                    last = format!("no answer on port {port}: {}", reg.log());
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("docker-registry did not start: {last}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log.txt")).unwrap_or_default()
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Uploads a blob monolithically (POST, then PUT with the digest).
    fn put_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = format!("sha256:{}", Digest::of(bytes).hex());
        let resp = ureq::post(self.url(&format!("/v2/{repo}/blobs/uploads/")))
            .send_empty()
            .unwrap();
        let location = resp
            .headers()
            .get("location")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let location = if location.starts_with("http") {
            location
        } else {
            self.url(&location)
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        ureq::put(format!("{location}{sep}digest={digest}"))
            .header("Content-Type", "application/octet-stream")
            .send(bytes)
            .unwrap();
        digest
    }

    /// Pushes a one-layer manifest as another tool would.
    fn put_artifact(
        &self,
        repo: &str,
        tag: &str,
        layer: &[u8],
        layer_type: &str,
        config: &[u8],
        config_type: &str,
    ) {
        let layer_digest = self.put_blob(repo, layer);
        let config_digest = self.put_blob(repo, config);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": config_type, "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": layer.len()}],
        });
        ureq::put(self.url(&format!("/v2/{repo}/manifests/{tag}")))
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .send(manifest.to_string().as_bytes())
            .unwrap();
    }

    fn manifest(&self, repo: &str, tag: &str) -> serde_json::Value {
        let mut resp = ureq::get(self.url(&format!("/v2/{repo}/manifests/{tag}")))
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .call()
            .unwrap();
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
    }

    fn blob(&self, repo: &str, digest: &str) -> Vec<u8> {
        let mut resp = ureq::get(self.url(&format!("/v2/{repo}/blobs/{digest}")))
            .call()
            .unwrap();
        let mut out = Vec::new();
        resp.body_mut().as_reader().read_to_end(&mut out).unwrap();
        out
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `wasmhost ARGS` with its state in `state`, no registry settings or
/// docker config from the environment.
fn wh(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .args(args)
        .env("WASMHOST_STATE", state)
        .env("DOCKER_CONFIG", state.join("docker"))
        .env_remove("WASMHOST_STORE")
        .env_remove("WASMHOST_REGISTRY_USER")
        .env_remove("WASMHOST_REGISTRY_PASSWORD")
        .env_remove("WASMHOST_REGISTRY_INSECURE")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(out: &Output, status: i32, code: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(status), "{stderr}");
    assert!(stderr.contains(&format!("error[{code}]")), "{stderr}");
    stderr
}

#[test]
fn push_then_pull_by_digest_in_the_oci_wasm_layout() {
    let reg = Registry::start();
    let host = reg.host();
    let pusher = tempfile::tempdir().unwrap();
    let echo = built("wasi-echo.wasm");
    let echo_bytes = std::fs::read(&echo).unwrap();
    let digest = format!("sha256:{}", Digest::of(&echo_bytes).hex());

    let target = format!("{host}/tests/echo:v1");
    let out = ok(&wh(pusher.path(), &["push", &echo, &target]));
    assert!(
        out.starts_with(&format!("pushed {target} {digest}")),
        "{out}"
    );

    // What the registry holds is oci-wasm's layout, as wkg writes it.
    let m = reg.manifest("tests/echo", "v1");
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{m}");
    assert_eq!(layers[0]["mediaType"], "application/wasm");
    assert_eq!(layers[0]["digest"], digest.as_str());
    let config: serde_json::Value =
        serde_json::from_slice(&reg.blob("tests/echo", m["config"]["digest"].as_str().unwrap()))
            .unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip1");
    assert_eq!(config["layerDigests"][0], digest.as_str());

    // A component gets `wasip2` and its world.
    let comp = built("wasi-echo.component.wasm");
    ok(&wh(
        pusher.path(),
        &[
            "push",
            &comp,
            &format!("oci://{host}/tests/echo-component:v1"),
        ],
    ));
    let m = reg.manifest("tests/echo-component", "v1");
    let config: serde_json::Value = serde_json::from_slice(&reg.blob(
        "tests/echo-component",
        m["config"]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    assert_eq!(config["os"], "wasip2", "{config}");
    assert!(config["component"].is_object(), "{config}");

    // Pull into a fresh store: same bytes, same digest, tagged locally.
    let puller = tempfile::tempdir().unwrap();
    let file = puller.path().join("echo.wasm");
    let out = ok(&wh(
        puller.path(),
        &["pull", &target, "-o", file.to_str().unwrap()],
    ));
    assert!(out.contains(&digest), "{out}");
    let local = format!("127.0.0.1_{}/tests/echo:v1", reg.port);
    assert!(out.contains(&local), "{out}");
    assert_eq!(std::fs::read(&file).unwrap(), echo_bytes);
    let ls = ok(&wh(puller.path(), &["ls"]));
    assert!(ls.contains(&local), "{ls}");
    let inspect = ok(&wh(puller.path(), &["inspect", &digest]));
    assert!(inspect.contains(&digest), "{inspect}");

    // A second pull finds the digest stored and downloads nothing.
    let out = ok(&wh(puller.path(), &["pull", &target]));
    assert!(out.contains("already stored"), "{out}");

    // `oci://` is accepted where a module is: pulled into the store, run.
    let numeric = format!("oci://{host}/tests/math:v1");
    ok(&wh(pusher.path(), &["push", &wat("numeric"), &numeric]));
    let runner = tempfile::tempdir().unwrap();
    assert_eq!(
        ok(&wh(
            runner.path(),
            &["run", "--invoke", "add_i32", &numeric, "2", "3"]
        )),
        "5\n"
    );
    let ls = ok(&wh(runner.path(), &["ls"]));
    assert!(ls.contains("tests/math:v1"), "{ls}");
    // Then by its local name, without the registry.
    let local_math = format!("127.0.0.1_{}/tests/math:v1", reg.port);
    assert_eq!(
        ok(&wh(
            runner.path(),
            &["run", "--invoke", "add_i32", &local_math, "2", "3"]
        )),
        "5\n"
    );
    // In a manifest, with its limits.
    let manifest = runner.path().join("math.toml");
    std::fs::write(
        &manifest,
        format!("[module]\nstore = \"{numeric}\"\n\n[limits]\nfuel = 1000000\n"),
    )
    .unwrap();
    let fresh = tempfile::tempdir().unwrap();
    assert_eq!(
        ok(&wh(
            fresh.path(),
            &[
                "run",
                "--invoke",
                "add_i32",
                manifest.to_str().unwrap(),
                "6",
                "7"
            ]
        )),
        "13\n"
    );
    // By manifest digest too.
    let math = reg.manifest("tests/math", "v1");
    assert_eq!(math["layers"][0]["mediaType"], "application/wasm");
    let mdigest = {
        let mut resp = ureq::head(reg.url("/v2/tests/math/manifests/v1"))
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .call()
            .unwrap();
        let _ = resp.body_mut();
        resp.headers()
            .get("docker-content-digest")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    let by_digest = format!("oci://{host}/tests/math@{mdigest}");
    assert_eq!(
        ok(&wh(
            tempfile::tempdir().unwrap().path(),
            &["run", "--invoke", "add_i32", &by_digest, "4", "5"]
        )),
        "9\n"
    );

    // A module another tool pushed in the same layout pulls unmodified.
    let wkg_config = serde_json::json!({
        "created": "2024-01-01T00:00:00Z", "architecture": "wasm", "os": "wasip1",
        "layerDigests": [digest],
    });
    reg.put_artifact(
        "other/echo",
        "1.0.0",
        &echo_bytes,
        "application/wasm",
        wkg_config.to_string().as_bytes(),
        "application/vnd.wasm.config.v0+json",
    );
    let other = tempfile::tempdir().unwrap();
    let out = wh(
        other.path(),
        &["pull", &format!("{host}/other/echo:1.0.0"), "-o", "-"],
    );
    ok(&out);
    assert!(out.stdout == echo_bytes, "stdout is not the module's bytes");
}

#[test]
fn unknown_tags_down_registries_and_foreign_layers_are_clear_errors() {
    let reg = Registry::start();
    let host = reg.host();
    let state = tempfile::tempdir().unwrap();
    let s = state.path();

    // An unknown tag, and an unknown repository: not_found (66).
    ok(&wh(
        s,
        &["push", &wat("numeric"), &format!("{host}/tests/math:v1")],
    ));
    let err = fails(
        &wh(s, &["pull", &format!("{host}/tests/math:nope")]),
        66,
        "not_found",
    );
    assert!(err.contains("tests/math:nope"), "{err}");
    fails(
        &wh(s, &["pull", &format!("{host}/no/such:v1")]),
        66,
        "not_found",
    );
    fails(
        &wh(s, &["run", &format!("oci://{host}/tests/math:nope")]),
        66,
        "not_found",
    );

    // A manifest whose layer is not wasm: invalid_module (65), naming its type.
    reg.put_artifact(
        "tests/image",
        "v1",
        b"\x1f\x8bnot really a tarball",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        b"{}",
        "application/vnd.oci.image.config.v1+json",
    );
    let err = fails(
        &wh(s, &["pull", &format!("{host}/tests/image:v1")]),
        65,
        "invalid_module",
    );
    assert!(
        err.contains("application/vnd.oci.image.layer.v1.tar+gzip"),
        "{err}"
    );

    // A wasm layer that is not wasm: invalid_module too, nothing stored.
    reg.put_artifact(
        "tests/junk",
        "v1",
        b"not wasm at all",
        "application/wasm",
        b"{}",
        "application/vnd.wasm.config.v0+json",
    );
    fails(
        &wh(s, &["pull", &format!("{host}/tests/junk:v1")]),
        65,
        "invalid_module",
    );

    // A registry that is down: unavailable (77), naming it.
    let down = format!("127.0.0.1:{}", free_port());
    let err = fails(
        &wh(s, &["pull", &format!("{down}/tests/math:v1")]),
        77,
        "unavailable",
    );
    assert!(err.contains(&down), "{err}");
    fails(
        &wh(
            s,
            &["push", &wat("numeric"), &format!("{down}/tests/math:v1")],
        ),
        77,
        "unavailable",
    );
    fails(
        &wh(s, &["run", &format!("oci://{down}/tests/math:v1")]),
        77,
        "unavailable",
    );

    // References that name no registry, or no tag to push under.
    fails(&wh(s, &["run", "oci://tests/math:v1"]), 64, "bad_input");
    let d = format!("sha256:{}", "ab".repeat(32));
    fails(
        &wh(
            s,
            &["push", &wat("numeric"), &format!("{host}/tests/math@{d}")],
        ),
        64,
        "bad_input",
    );
    // An invalid module is refused before anything is sent.
    let junk = s.join("junk.wasm");
    std::fs::write(&junk, b"\0asm\x01\0\0\0\x99").unwrap();
    fails(
        &wh(
            s,
            &[
                "push",
                junk.to_str().unwrap(),
                &format!("{host}/tests/junk:v2"),
            ],
        ),
        65,
        "invalid_module",
    );
}

#[test]
fn a_tampered_blob_fails_its_digest_check() {
    let reg = Registry::start();
    let host = reg.host();
    let state = tempfile::tempdir().unwrap();
    let numeric_bytes = wat::parse_file(wat("numeric")).unwrap();
    let digest = Digest::of(&numeric_bytes).hex();
    ok(&wh(
        state.path(),
        &["push", &wat("numeric"), &format!("{host}/tests/math:v1")],
    ));
    // Flip a byte of the layer in the registry's storage (same length).
    let data = reg
        .dir
        .path()
        .join("data/docker/registry/v2/blobs/sha256")
        .join(&digest[..2])
        .join(&digest)
        .join("data");
    let mut bytes = std::fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let err = fails(
        &wh(fresh.path(), &["pull", &format!("{host}/tests/math:v1")]),
        74,
        "corrupt",
    );
    assert!(err.contains(&digest), "{err}");
    let ls = ok(&wh(fresh.path(), &["ls"]));
    assert!(!ls.contains("tests/math"), "{ls}");
}

#[test]
fn credentials_come_from_flags_env_or_docker_config() {
    let reg = Registry::start_with_auth();
    let host = reg.host();
    let state = tempfile::tempdir().unwrap();
    let s = state.path();
    let target = format!("{host}/tests/math:v1");

    // Without credentials the registry refuses: capability_denied, saying how to log in.
    let err = fails(
        &wh(s, &["push", &wat("numeric"), &target]),
        68,
        "capability_denied",
    );
    assert!(err.contains("--password-stdin"), "{err}");

    let with_password = |args: &[&str], password: &[u8]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
            .args(args)
            .env("WASMHOST_STATE", s)
            .env("DOCKER_CONFIG", s.join("docker"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), password).unwrap();
        child.wait_with_output().unwrap()
    };
    let push = [
        "push",
        "--user",
        "me",
        "--password-stdin",
        &wat("numeric"),
        &target,
    ];
    ok(&with_password(&push, b"secret\n"));
    fails(&with_password(&push, b"wrong\n"), 68, "capability_denied");

    // From the environment.
    let out = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .args(["pull", &target])
        .env("WASMHOST_STATE", s)
        .env("DOCKER_CONFIG", s.join("docker"))
        .env("WASMHOST_REGISTRY_USER", "me")
        .env("WASMHOST_REGISTRY_PASSWORD", "secret")
        .output()
        .unwrap();
    ok(&out);
    fails(&wh(s, &["pull", &target]), 68, "capability_denied");

    // From docker's config file (as `docker login` writes it), for `oci://` MODULEs too.
    std::fs::create_dir_all(s.join("docker")).unwrap();
    std::fs::write(
        s.join("docker/config.json"),
        format!(r#"{{"auths": {{"{host}": {{"auth": "bWU6c2VjcmV0"}}}}}}"#),
    )
    .unwrap();
    ok(&wh(s, &["pull", &target]));
    assert_eq!(
        ok(&wh(
            s,
            &[
                "run",
                "--invoke",
                "add_i32",
                &format!("oci://{target}"),
                "1",
                "2"
            ]
        )),
        "3\n"
    );
    std::fs::write(s.join("docker/config.json"), "{broken").unwrap();
    let err = fails(&wh(s, &["pull", &target]), 64, "bad_input");
    assert!(err.contains("docker config"), "{err}");

    // --user needs --password-stdin: a usage error.
    let out = wh(s, &["pull", "--user", "me", &target]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn serve_routes_take_oci_references() {
    let reg = Registry::start();
    let host = reg.host();
    let state = tempfile::tempdir().unwrap();
    let target = format!("oci://{host}/tests/math:v1");
    ok(&wh(state.path(), &["push", &wat("numeric"), &target]));
    let route = format!("/add={target},mode=function,function=add_i32");
    let s = common::serve(&["--route", &route]);
    assert_eq!(
        common::http(&s.addr, "POST", "/add", "[20, 22]"),
        (200, "42".into())
    );
}

/// oras-py's interpreter (installed by `scripts/test-services.sh`);
/// missing, the test fails saying how to install it.
fn oras_python() -> PathBuf {
    let p = std::env::var_os("WASMHOST_TEST_ORAS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::root().join("target/test-tools/oras-venv/bin/python"));
    assert!(
        p.is_file(),
        "`{}` is missing: run `scripts/test-services.sh` (it installs PyPI `oras` into \
         target/test-tools/oras-venv) or set WASMHOST_TEST_ORAS_PYTHON",
        p.display()
    );
    p
}

/// `tests/oci/oras_client.py VERB REF PATH`: its JSON report.
fn oras(verb: &str, reference: &str, path: &Path) -> serde_json::Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oci/oras_client.py");
    let out = Command::new(oras_python())
        .arg(script)
        .args([verb, reference])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "oras {verb} {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Debian's `skopeo` (installed by `scripts/test-services.sh`) with ARGS.
fn skopeo(args: &[&str]) -> Vec<u8> {
    let exe = std::env::var_os("WASMHOST_TEST_SKOPEO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/skopeo"));
    assert!(
        exe.is_file(),
        "`{}` is missing: run `scripts/test-services.sh` (it runs `apt-get install skopeo`) \
         or set WASMHOST_TEST_SKOPEO",
        exe.display()
    );
    let out = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The word after `manifest ` in a push/pull report line.
fn manifest_digest_of(report: &str) -> String {
    report
        .split("manifest ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no manifest digest in {report:?}"))
        .to_string()
}

#[test]
fn other_clients_pull_what_wasmhost_pushes_and_the_other_way_round() {
    let reg = Registry::start();
    let host = reg.host();
    let comp = built("wasi-echo.component.wasm");
    let comp_bytes = std::fs::read(&comp).unwrap();
    let layer = format!("sha256:{}", Digest::of(&comp_bytes).hex());
    let state = tempfile::tempdir().unwrap();

    // wasmhost pushes a component; oras and skopeo pull it.
    let target = format!("{host}/interop/echo:v1");
    let pushed = ok(&wh(state.path(), &["push", &comp, &target]));
    assert!(pushed.contains(&layer), "{pushed}");
    let manifest = manifest_digest_of(&pushed);

    let oras_out = tempfile::tempdir().unwrap();
    let report = oras("pull", &target, oras_out.path());
    assert_eq!(report["manifest_digest"], manifest.as_str(), "{report}");
    assert_eq!(report["manifest_sha256"], manifest.as_str(), "{report}");
    assert_eq!(
        report["config_media_type"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(report["layers"][0]["media_type"], "application/wasm");
    assert_eq!(report["layers"][0]["digest"], layer.as_str());
    let file = report["files"][0].as_str().unwrap();
    assert!(
        std::fs::read(file).unwrap() == comp_bytes,
        "oras pulled other bytes"
    );

    let docker = format!("docker://{target}");
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &docker]);
    assert_eq!(format!("sha256:{}", Digest::of(&raw).hex()), manifest);
    let copy = tempfile::tempdir().unwrap();
    let dir = copy.path().join("echo");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &docker,
        &format!("dir:{}", dir.display()),
    ]);
    assert!(
        std::fs::read(dir.join(layer.trim_start_matches("sha256:"))).unwrap() == comp_bytes,
        "skopeo copied other bytes"
    );
    assert_eq!(std::fs::read(dir.join("manifest.json")).unwrap(), raw);

    // oras pushes a core module as a wasm artifact; wasmhost pulls and runs it.
    let core = built("wasi-echo.wasm");
    let core_bytes = std::fs::read(&core).unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("echo.wasm");
    std::fs::write(&file, &core_bytes).unwrap();
    let other = format!("{host}/interop/from-oras:v2");
    let report = oras("push", &other, &file);
    let core_layer = format!("sha256:{}", Digest::of(&core_bytes).hex());
    assert_eq!(report["layers"][0]["digest"], core_layer.as_str());
    let puller = tempfile::tempdir().unwrap();
    let pulled_file = puller.path().join("pulled.wasm");
    let pulled = ok(&wh(
        puller.path(),
        &["pull", &other, "-o", pulled_file.to_str().unwrap()],
    ));
    assert!(pulled.contains(&core_layer), "{pulled}");
    assert_eq!(
        manifest_digest_of(&pulled),
        report["manifest_digest"].as_str().unwrap()
    );
    assert!(std::fs::read(&pulled_file).unwrap() == core_bytes);
    let runner = tempfile::tempdir().unwrap();
    let out = ok(&wh(
        runner.path(),
        &[
            "run",
            &format!("oci://{other}"),
            "args",
            "pushed",
            "by",
            "oras",
        ],
    ));
    assert_eq!(out, "args\npushed\nby\noras\n");
}
