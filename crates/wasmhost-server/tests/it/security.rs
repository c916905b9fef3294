//! The security review's server checks (issue 15, item 5; SECURITY.md
//! lists them): path traversal through module names and references and
//! through `--static` directories, the bearer token never echoed, and CORS
//! closed unless configured. Each request is also sent raw, byte for byte,
//! where an HTTP client would normalise the path first.

use std::path::Path;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{TestServer, config, error_of, guest, route};

/// One raw HTTP/1.1 request, the path sent exactly as given: (status, whole
/// response as text).
async fn raw(s: &TestServer, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut conn = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: 0\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).await.expect("write");
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).await.expect("read");
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {reply:?}"));
    (status, reply)
}

/// A file outside everything the server was given, with a recognisable
/// secret in it.
const SECRET: &str = "TOP-SECRET-4f9c2d";

fn secret_beside(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("secret.txt");
    std::fs::write(&p, SECRET).expect("write secret");
    p
}

#[tokio::test(flavor = "multi_thread")]
async fn module_names_and_references_cannot_leave_the_store() {
    let outside = tempfile::tempdir().expect("tempdir");
    let secret = secret_beside(outside.path());
    let s = TestServer::start(config()).await;
    let wasm = std::fs::read(guest("numeric.wat")).expect("numeric.wat");
    s.upload("ok", wasm.clone()).await;

    // Names given to an upload (the query is percent-decoded first).
    let abs = secret.display().to_string();
    for name in [
        "../x",
        "../../../../tmp/x",
        "a/../../x",
        "%2e%2e%2fx",
        "..%2F..%2Fx",
        "%2Fetc%2Fpasswd",
        "/etc/passwd",
        abs.as_str(),
        "a%00b",
        "a\\..\\b",
        "sha256",
        "x.json",
    ] {
        let res = s
            .client
            .post(s.at(&format!("/api/v1/modules?name={name}")))
            .body(wasm.clone())
            .send()
            .await
            .expect("upload");
        assert_eq!(
            error_of(res).await,
            (400, "bad_input".into()),
            "name {name}"
        );
    }
    // Tags, in the query and in the body of a tag request.
    for tag in ["..%2F..%2Fx", "../x", "%2e%2e"] {
        let res = s
            .client
            .post(s.at(&format!("/api/v1/modules?name=t&tag={tag}")))
            .body(wasm.clone())
            .send()
            .await
            .expect("upload");
        assert_eq!(error_of(res).await, (400, "bad_input".into()), "tag {tag}");
    }
    for (name, tag) in [
        ("../evil", "v1"),
        ("/abs", "v1"),
        ("ok", "../x"),
        ("ok", "/x"),
    ] {
        let res = s
            .client
            .post(s.at("/api/v1/modules/ok/tags"))
            .json(&json!({ "name": name, "tag": tag }))
            .send()
            .await
            .expect("tag");
        assert_eq!(
            error_of(res).await,
            (400, "bad_input".into()),
            "tag body {name}:{tag}"
        );
    }

    // References in the path of every endpoint that takes one, encoded so
    // that they reach the handler whole.
    let enc_abs = abs.replace('/', "%2F");
    for reference in [
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2f%2e%2e%2fsecret",
        "%2Fetc%2Fpasswd",
        enc_abs.as_str(),
        "..",
        "%2e%2e",
        "ok%2F..%2F..%2Fx",
        "ok:..%2F..%2Fx",
    ] {
        for (method, suffix) in [
            ("GET", ""),
            ("GET", "/wasm"),
            ("DELETE", ""),
            ("POST", "/call/add_i32"),
            ("POST", "/process"),
        ] {
            let path = format!("/api/v1/modules/{reference}{suffix}");
            let (status, reply) = raw(&s, method, &path, &[]).await;
            assert!(
                status == 400 || status == 404,
                "{method} {path}: {status} {reply}"
            );
            assert!(!reply.contains(SECRET), "{method} {path} leaked the file");
            assert!(
                reply.contains("\"code\""),
                "{method} {path}: no code: {reply}"
            );
        }
    }
    // Unencoded `..` segments, as a raw client sends them: no route
    // matches, nothing is read.
    for path in [
        "/api/v1/modules/../../../../etc/passwd",
        "/api/v1/modules/ok/../../../etc/passwd/wasm",
        &format!("/api/v1/modules/{abs}/wasm"),
    ] {
        let (status, reply) = raw(&s, "GET", path, &[]).await;
        assert!(status == 400 || status == 404, "{path}: {status} {reply}");
        assert!(!reply.contains(SECRET), "{path} leaked the file");
    }
    // The one module uploaded is all the store holds, and it still works.
    let list = s.get_json("/api/v1/modules").await;
    assert_eq!(list["modules"].as_array().map(Vec::len), Some(1), "{list}");
    let res = s
        .client
        .post(s.at("/api/v1/modules/ok/call/add_i32"))
        .body("[1,2]")
        .send()
        .await
        .expect("call");
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn static_directories_serve_only_their_own_files() {
    let top = tempfile::tempdir().expect("tempdir");
    let public = top.path().join("public");
    std::fs::create_dir_all(public.join("sub")).expect("mkdir");
    std::fs::write(public.join("index.html"), "<p>public</p>").expect("write");
    std::fs::write(public.join("sub/index.html"), "<p>sub</p>").expect("write");
    secret_beside(top.path());
    let private = top.path().join("private");
    std::fs::create_dir(&private).expect("mkdir");
    std::fs::write(private.join("index.html"), SECRET).expect("write");
    std::fs::write(private.join("secret.txt"), SECRET).expect("write");
    use std::os::unix::fs::symlink;
    // Links that lead out of the directory: a file, a directory, a
    // directory's index.html, and a link to a link.
    symlink(top.path().join("secret.txt"), public.join("file-link")).expect("symlink");
    symlink(&private, public.join("dir-link")).expect("symlink");
    symlink("../secret.txt", public.join("relative-link")).expect("symlink");
    symlink(public.join("relative-link"), public.join("link-to-link")).expect("symlink");
    std::fs::create_dir(public.join("idx")).expect("mkdir");
    symlink(private.join("index.html"), public.join("idx/index.html")).expect("symlink");
    // A link that stays inside is served.
    symlink(public.join("sub/index.html"), public.join("inside-link")).expect("symlink");

    let mut c = config();
    c.statics = vec![("/static".into(), public.clone())];
    let s = TestServer::start(c).await;

    let (status, reply) = raw(&s, "GET", "/static/index.html", &[]).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply.ends_with("<p>public</p>"));
    let (status, reply) = raw(&s, "GET", "/static/inside-link", &[]).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply.ends_with("<p>sub</p>"));

    for path in [
        "/static/../secret.txt",
        "/static/../../../../etc/passwd",
        "/static/%2e%2e/secret.txt",
        "/static/%2e%2e%2fsecret.txt",
        "/static/..%2fsecret.txt",
        "/static/..%5csecret.txt",
        "/static/sub/%2e%2e/%2e%2e/secret.txt",
        "/static/%2fetc%2fpasswd",
        "/static//etc/passwd",
        "/static/file-link",
        "/static/relative-link",
        "/static/link-to-link",
        "/static/dir-link/secret.txt",
        "/static/dir-link/",
        "/static/dir-link",
        "/static/dir-link/%2e/secret.txt",
        "/static/idx/",
        "/static/idx/index.html",
    ] {
        let (status, reply) = raw(&s, "GET", path, &[]).await;
        assert!(
            !reply.contains(SECRET) && !reply.contains("root:"),
            "{path} leaked a file outside the directory: {reply}"
        );
        assert!(
            matches!(status, 400 | 403 | 404) || (300..400).contains(&status),
            "{path}: {status} {reply}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_is_never_echoed() {
    const TOKEN: &str = "tok-8d1e5a-secret";
    const WRONG: &str = "guess-77b0c4";
    let mut c = config();
    c.token = Some(TOKEN.into());
    let s = TestServer::start(c).await;
    let wasm = std::fs::read(guest("numeric.wat")).expect("numeric.wat");
    // Refused (wrong, malformed, missing), and failing with the right one.
    let auth_headers = [
        format!("Bearer {WRONG}"),
        format!("Bearer {TOKEN}x"),
        format!("bearer {TOKEN}"),
        format!("Basic {TOKEN}"),
        TOKEN.to_string(),
    ];
    for auth in &auth_headers {
        let res = s
            .client
            .post(s.at("/api/v1/modules?name=n"))
            .header("authorization", auth)
            .body(wasm.clone())
            .send()
            .await
            .expect("upload");
        assert_eq!(res.status(), 401, "{auth}");
        let head = format!("{:?}", res.headers());
        let body = res.text().await.expect("body");
        for needle in [TOKEN, WRONG] {
            assert!(
                !body.contains(needle) && !head.contains(needle),
                "{auth}: {head} {body}"
            );
        }
    }
    for (path, body) in [
        ("/api/v1/modules?name=..%2Fx", wasm.clone()),
        ("/api/v1/modules?name=n", b"not wasm".to_vec()),
        ("/api/v1/modules/missing/tags", b"{}".to_vec()),
    ] {
        let res = s
            .client
            .post(s.at(path))
            .bearer_auth(TOKEN)
            .body(body)
            .send()
            .await
            .expect("request");
        assert!(res.status().is_client_error(), "{path}: {}", res.status());
        let head = format!("{:?}", res.headers());
        let body = res.text().await.expect("body");
        assert!(
            !body.contains(TOKEN) && !head.contains(TOKEN),
            "{path}: {body}"
        );
    }
    // Nothing that prints the configuration shows it.
    let mut c = config();
    c.token = Some(TOKEN.into());
    assert!(!format!("{c:?}").contains(TOKEN));
}

/// The CORS headers of a preflight and of a simple request from `origin`.
async fn cors_of(s: &TestServer, path: &str, origin: &str) -> (Option<String>, Option<String>) {
    let pre = s
        .client
        .request(reqwest::Method::OPTIONS, s.at(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("preflight");
    let allow = |res: &reqwest::Response| {
        res.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().expect("ascii").to_string())
    };
    let preflight = allow(&pre);
    let simple = s
        .client
        .get(s.at(path))
        .header("origin", origin)
        .send()
        .await
        .expect("simple");
    (preflight, allow(&simple))
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_stays_closed_unless_configured() {
    let paths = ["/api/v1/modules", "/echo", "/healthz", "/", "/nowhere"];
    let mut c = config();
    c.routes = vec![route("/echo", "wasi-echo.wasm", "")];
    let s = TestServer::start(c).await;
    for path in paths {
        let (pre, simple) = cors_of(&s, path, "http://evil.test").await;
        assert_eq!((pre, simple), (None, None), "{path}: open without --cors");
    }
    drop(s);

    let mut c = config();
    c.routes = vec![route("/echo", "wasi-echo.wasm", "")];
    c.cors = vec!["http://good.test".into()];
    let s = TestServer::start(c).await;
    for path in paths {
        let good = Some("http://good.test".to_string());
        assert_eq!(
            cors_of(&s, path, "http://good.test").await,
            (good.clone(), good),
            "{path}"
        );
        for evil in ["http://evil.test", "http://good.test.evil.test", "null"] {
            assert_eq!(
                cors_of(&s, path, evil).await,
                (None, None),
                "{path}: {evil} allowed"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_with_a_flood_of_header_fields_is_refused() {
    let mut c = config();
    c.routes = vec![route("/hello", "http-hello.wasm", "")];
    let s = TestServer::start(c).await;
    for (fields, value_len) in [(100_000, 1), (50, 100_000)] {
        let mut conn = tokio::net::TcpStream::connect(s.addr)
            .await
            .expect("connect");
        let mut head = String::from("GET /hello HTTP/1.1\r\nhost: test\r\n");
        let value = "v".repeat(value_len);
        for i in 0..fields {
            head.push_str(&format!("x-f{i}: {value}\r\n"));
        }
        head.push_str("\r\n");
        // The server may answer and close before all of it is written.
        let _ = conn.write_all(head.as_bytes()).await;
        let mut reply = Vec::new();
        let _ = conn.read_to_end(&mut reply).await;
        let reply = String::from_utf8_lossy(&reply);
        assert!(
            reply.is_empty()
                || reply.starts_with("HTTP/1.1 431")
                || reply.starts_with("HTTP/1.1 400"),
            "{fields} fields of {value_len} bytes: {}",
            reply.lines().next().unwrap_or("")
        );
    }
    // The worker and the server are fine.
    let res = s.client.get(s.at("/hello")).send().await.expect("hello");
    assert_eq!(res.status(), 200);
}
