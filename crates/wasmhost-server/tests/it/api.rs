//! The `/api/v1` contract: modules, calls, processes, actors, auth, errors.

use serde_json::{Value, json};

use crate::{TestServer, config, error_of, guest, route};

fn read(name: &str) -> Vec<u8> {
    std::fs::read(guest(name)).expect("guest bytes")
}

#[tokio::test(flavor = "multi_thread")]
async fn modules_upload_list_inspect_fetch_tag_and_delete() {
    let s = TestServer::start(config()).await;
    let res = s
        .client
        .post(s.at("/api/v1/modules?name=num&tag=v1"))
        .body(read("numeric.wat"))
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), 201);
    let up: Value = res.json().await.expect("json");
    assert_eq!(up["reference"], "num:v1");
    assert_eq!(up["kind"], "core");
    let digest = up["digest"].as_str().expect("digest").to_string();
    assert!(digest.starts_with("sha256:"), "{digest}");

    let list: Value = s.get_json("/api/v1/modules").await;
    let refs: Vec<&str> = list["modules"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|m| m["reference"].as_str())
        .collect();
    assert_eq!(refs, ["num:v1"]);

    let info: Value = s.get_json("/api/v1/modules/num:v1").await;
    assert_eq!(info["digest"], digest.as_str());
    let add = info["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .find(|f| f["name"] == "add_i32")
        .expect("add_i32 listed");
    assert_eq!(add["signature"], "func (i32, i32) -> (i32)");
    assert!(
        add["conventions"]
            .as_array()
            .expect("conventions")
            .contains(&json!("numeric"))
    );

    // The bytes come back as stored: the wasm binary of the WAT text.
    let wasm = s
        .client
        .get(s.at("/api/v1/modules/num:v1/wasm"))
        .send()
        .await
        .expect("wasm");
    assert_eq!(wasm.headers()["content-type"], "application/wasm");
    let bytes = wasm.bytes().await.expect("bytes");
    assert_eq!(&bytes[..4], b"\0asm");
    let by_digest = s
        .client
        .get(s.at(&format!("/api/v1/modules/{digest}/wasm")))
        .send()
        .await
        .expect("wasm");
    assert_eq!(by_digest.bytes().await.expect("bytes"), bytes);

    let res = s
        .client
        .post(s.at("/api/v1/modules/num:v1/tags"))
        .json(&json!({"name": "math", "tag": "stable"}))
        .send()
        .await
        .expect("tag");
    assert_eq!(res.status(), 201);
    let info: Value = s.get_json("/api/v1/modules/math:stable").await;
    assert_eq!(info["digest"], digest.as_str());
    assert_eq!(info["tags"], json!(["math:stable", "num:v1"]));

    let res = s
        .client
        .delete(s.at("/api/v1/modules/num:v1"))
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 200);
    let removed: Value = res.json().await.expect("json");
    assert_eq!(removed["removed"], "tag");
    let (status, code) = error_of(
        s.client
            .get(s.at("/api/v1/modules/num:v1"))
            .send()
            .await
            .expect("gone"),
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    // The other tag still works.
    let res = s
        .client
        .post(s.at("/api/v1/modules/math:stable/call/add_i32"))
        .body("[40, 2]")
        .send()
        .await
        .expect("call");
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_return_results_with_their_cost() {
    let mut c = config();
    // The component imports a host interface this server does not provide.
    c.trap_unknown_imports = true;
    let s = TestServer::start(c).await;
    s.upload("num", read("numeric.wat")).await;
    s.upload("plugin", read("as-extism-plugin.wasm")).await;
    s.upload("counter", read("as-counter-stub.wasm")).await;
    s.upload("shapes", read("wit-component.wasm")).await;

    let res = s
        .client
        .post(s.at("/api/v1/modules/num/call/add_i32"))
        .body("[2, 3]")
        .send()
        .await
        .expect("call");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let us: u64 = res.headers()["x-wasmhost-duration-us"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("number");
    assert!(us > 0);
    assert!(res.headers().contains_key("x-wasmhost-memory-bytes"));
    assert_eq!(res.json::<Value>().await.expect("json"), json!(5));

    // Extism plugin: bytes in, bytes out.
    let res = s
        .client
        .post(s.at("/api/v1/modules/plugin/call/count_vowels"))
        .body("Hello, World!")
        .send()
        .await
        .expect("call");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/octet-stream");
    assert!(res.text().await.expect("text").contains("3"));

    // AssemblyScript string export.
    let res = s
        .client
        .post(s.at("/api/v1/modules/counter/call/greet"))
        .body("web")
        .send()
        .await
        .expect("call");
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
    assert!(res.text().await.expect("text").contains("web"));

    // A component with JSON arguments, and the same with WAVE.
    let info: Value = s.get_json("/api/v1/modules/shapes").await;
    let names: Vec<&str> = info["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    let add = names
        .iter()
        .find(|n| n.ends_with("add-points"))
        .expect("add-points exported");
    let res = s
        .client
        .post(s.at(&format!("/api/v1/modules/shapes/call/{}", urlencode(add))))
        .body(r#"[{"x":1,"y":2},{"x":3,"y":4}]"#)
        .send()
        .await
        .expect("call");
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let res = s
        .client
        .post(s.at(&format!(
            "/api/v1/modules/shapes/call/{}?wave=true",
            urlencode(add)
        )))
        .body("{x: 1, y: 2}, {x: 3, y: 4}")
        .send()
        .await
        .expect("call");
    assert_eq!(
        res.json::<Value>().await.expect("json"),
        json!({"x": 4, "y": 6})
    );
}

/// A packet manifest (`docs/manifest.md`) carrying `modules`.
fn packet(world: &str, modules: &[&[u8]]) -> Value {
    use base64::Engine as _;
    let entries: Vec<Value> = modules
        .iter()
        .map(|m| {
            json!({
                "origin": "local", "format": "wasm", "lrl": "wit-component.wasm",
                "worldVersion": world,
                "contentB64": base64::engine::general_purpose::STANDARD.encode(m),
            })
        })
        .collect();
    json!({ "name": "shapes", "sourceContent": entries })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_packet_manifest_uploads_its_one_module() {
    let s = TestServer::start(config()).await;
    let wasm = read("wit-component.wasm");
    let res = s
        .client
        .post(s.at("/api/v1/modules?name=from-packet"))
        .json(&packet("v1", &[&wasm]))
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), 201);
    let up: Value = res.json().await.expect("json");
    assert_eq!(up["reference"], "from-packet:latest");
    assert_eq!(up["kind"], "component");
    assert_eq!(up["size"], wasm.len());
    assert_eq!(
        up["packet"],
        json!({"name": "shapes", "lrl": "wit-component.wasm", "origin": "local", "worldVersion": "v1"})
    );
    // Stored as the module itself: the same digest as its bytes uploaded as they are.
    s.upload("raw", wasm.clone()).await;
    let raw: Value = s.get_json("/api/v1/modules/raw").await;
    assert_eq!(up["digest"], raw["digest"]);
    let stored = s
        .client
        .get(s.at("/api/v1/modules/from-packet/wasm"))
        .send()
        .await
        .expect("wasm");
    assert_eq!(
        stored.bytes().await.expect("bytes").as_ref(),
        wasm.as_slice()
    );

    // What this host can't take is refused, naming why; nothing is stored.
    for (body, why) in [
        (packet("v2", &[&wasm]), "sourceContent[0].worldVersion"),
        (packet("v1", &[&wasm, &wasm]), "2 modules"),
        (packet("v1", &[b"not wasm"]), "sourceContent[0].contentB64"),
        (json!({"wasm": [{"path": "plugin.wasm"}]}), "sourceContent"),
    ] {
        let res = s
            .client
            .post(s.at("/api/v1/modules?name=refused"))
            .json(&body)
            .send()
            .await
            .expect("upload");
        let status = res.status().as_u16();
        let err: Value = res.json().await.expect("json error");
        let message = err["error"]["message"].as_str().unwrap_or_default();
        assert!(status == 400 || status == 422, "{body}: {status} {err}");
        assert!(message.contains(why), "{body}: {message}");
    }
    let list: Value = s.get_json("/api/v1/modules").await;
    let refs: Vec<&str> = list["modules"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|m| m["reference"].as_str())
        .collect();
    assert_eq!(refs, ["from-packet:latest", "raw:latest"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_components_functions_carry_their_wit_types_as_json() {
    let s = TestServer::start(config()).await;
    s.upload("shapes", read("wit-component.wasm")).await;
    s.upload("num", read("numeric.wat")).await;
    let info: Value = s.get_json("/api/v1/modules/shapes").await;
    let function = |name: &str| -> Value {
        info["functions"]
            .as_array()
            .expect("functions")
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed in {info}"))
            .clone()
    };
    let point = json!({"record": [{"name": "x", "type": "s32"}, {"name": "y", "type": "s32"}]});
    let add = function("add-points");
    assert_eq!(
        add["params"],
        json!([{"name": "a", "type": point}, {"name": "b", "type": point}])
    );
    assert_eq!(add["results"], json!([point]));
    assert_eq!(
        function("area")["params"][0]["type"],
        json!({"variant": [
            {"name": "circle", "type": "f64"},
            {"name": "rect", "type": point},
            {"name": "empty", "type": null},
        ]})
    );
    assert_eq!(
        function("divide")["results"],
        json!([{"result": {"ok": "s32", "err": "string"}}])
    );
    assert_eq!(function("find")["results"], json!([{"option": "u32"}]));
    assert_eq!(
        function("sum")["params"],
        json!([{"name": "xs", "type": {"list": "s64"}}])
    );
    let describe = function("describe");
    assert_eq!(
        describe["params"][0]["type"],
        json!({"enum": ["red", "green", "blue"]})
    );
    assert_eq!(
        describe["params"][1]["type"],
        json!({"flags": ["read", "write", "exec"]})
    );
    assert_eq!(
        function("greet-person")["params"][0]["type"]["record"][2],
        json!({"name": "email", "type": {"option": "string"}})
    );
    // A core module's functions have only their signature.
    let num: Value = s.get_json("/api/v1/modules/num").await;
    let add_i32 = num["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .find(|f| f["name"] == "add_i32")
        .expect("add_i32");
    assert!(add_i32.get("params").is_none(), "{add_i32}");
}

fn urlencode(s: &str) -> String {
    s.replace('%', "%25")
        .replace('/', "%2F")
        .replace('#', "%23")
        .replace(':', "%3A")
        .replace('@', "%40")
}

#[tokio::test(flavor = "multi_thread")]
async fn guest_failures_and_bad_requests_get_stable_codes() {
    let s = TestServer::start(config()).await;
    s.upload("num", read("numeric.wat")).await;
    s.upload("trap", read("unreachable.wat")).await;
    s.upload("counter", read("as-counter-stub.wasm")).await;

    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            s.client.post(s.at("/api/v1/modules/trap/call/run")),
            502,
            "trap",
        ),
        (
            s.client.post(s.at("/api/v1/modules/nothere/call/run")),
            404,
            "not_found",
        ),
        (
            s.client.post(s.at("/api/v1/modules/num/call/nope")),
            404,
            "not_found",
        ),
        (
            s.client
                .post(s.at("/api/v1/modules/num/call/add_i32"))
                .body("[1, \"x\""),
            400,
            "bad_input",
        ),
        (
            s.client.post(s.at("/api/v1/modules/counter/call/fail")),
            502,
            "guest_error",
        ),
        (
            s.client
                .post(s.at("/api/v1/modules/num/call/add_i32?abi=cobol")),
            400,
            "bad_input",
        ),
        (
            s.client.post(s.at("/api/v1/modules/Bad%20Name/call/x")),
            400,
            "bad_input",
        ),
        (
            s.client
                .post(s.at("/api/v1/modules/num/tags"))
                .body("{not json"),
            400,
            "bad_input",
        ),
        (
            s.client
                .post(s.at("/api/v1/modules?name=junk"))
                .body("not wasm at all"),
            422,
            "invalid_module",
        ),
        (
            s.client.post(s.at("/api/v1/modules?name=empty")),
            400,
            "bad_input",
        ),
        (
            s.client
                .post(s.at("/api/v1/modules"))
                .body(read("numeric.wat")),
            400,
            "bad_input",
        ),
        (
            s.client
                .post(s.at("/api/v1/modules/num/process?mode=later")),
            400,
            "bad_input",
        ),
        (
            s.client.get(s.at("/api/v1/nothing")),
            404,
            "route_not_found",
        ),
        (s.client.get(s.at("/nothing")), 404, "route_not_found"),
        (
            s.client.put(s.at("/api/v1/modules")),
            405,
            "method_not_allowed",
        ),
        (
            s.client.delete(s.at("/api/v1/actors/nobody")),
            404,
            "not_found",
        ),
        (
            s.client.post(s.at("/api/v1/actors/nobody?function=get")),
            404,
            "not_found",
        ),
    ];
    for (req, status, code) in cases {
        let req = req.build().expect("request");
        let what = format!("{} {}", req.method(), req.url());
        let res = s.client.execute(req).await.expect("response");
        let (got_status, got_code) = if res.status() == 400
            && res
                .headers()
                .get("content-type")
                .is_some_and(|c| c != "application/json")
        {
            // axum's own query rejections are plain text: they must not happen.
            panic!("{what}: non-JSON error: {:?}", res.text().await);
        } else {
            error_of(res).await
        };
        assert_eq!((got_status, got_code.as_str()), (status, code), "{what}");
    }
    // Nothing was stored by the failed uploads.
    let list: Value = s.get_json("/api/v1/modules").await;
    assert_eq!(list["modules"].as_array().expect("array").len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversize_bodies_get_413_and_lose_nothing() {
    let mut c = config();
    c.max_body_bytes = 1 << 20;
    let s = TestServer::start(c).await;
    s.upload("counter", read("as-counter-stub.wasm")).await;
    // The server answers 413 without reading the body and closes the
    // connection: no connection reuse, so no request races that close.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let big = vec![b'x'; 2 << 20];
    let (status, code) = error_of(
        client
            .post(s.at("/api/v1/modules/counter/call/echo"))
            .body(big.clone())
            .send()
            .await
            .expect("call"),
    )
    .await;
    assert_eq!((status, code.as_str()), (413, "payload_too_large"));
    // A chunked body without a length is cut off at the limit too.
    let stream = futures_body(big.clone());
    let (status, code) = error_of(
        client
            .post(s.at("/api/v1/modules/counter/call/echo"))
            .body(stream)
            .send()
            .await
            .expect("call"),
    )
    .await;
    assert_eq!((status, code.as_str()), (413, "payload_too_large"));
    let (status, code) = error_of(
        client
            .post(s.at("/api/v1/modules?name=big"))
            .body(big)
            .send()
            .await
            .expect("upload"),
    )
    .await;
    assert_eq!((status, code.as_str()), (413, "payload_too_large"));
    let res = client
        .post(s.at("/api/v1/modules/counter/call/echo"))
        .body(vec![b'y'; 1000 << 10])
        .send()
        .await
        .expect("call");
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    assert_eq!(res.bytes().await.expect("bytes").len(), 1000 << 10);
}

fn futures_body(bytes: Vec<u8>) -> reqwest::Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    reqwest::Body::wrap_stream(futures::stream::iter(chunks))
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_need_the_token_when_one_is_set() {
    let mut c = config();
    c.token = Some("s3cret".into());
    let s = TestServer::start(c).await;
    let wasm = read("numeric.wat");
    let (status, code) = error_of(
        s.client
            .post(s.at("/api/v1/modules?name=num"))
            .body(wasm.clone())
            .send()
            .await
            .expect("upload"),
    )
    .await;
    assert_eq!((status, code.as_str()), (401, "unauthorized"));
    let res = s
        .client
        .post(s.at("/api/v1/modules?name=num"))
        .bearer_auth("wrong")
        .body(wasm.clone())
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), 401);
    assert!(res.headers().contains_key("www-authenticate"));
    let res = s
        .client
        .post(s.at("/api/v1/modules?name=num"))
        .bearer_auth("s3cret")
        .body(wasm)
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), 201);
    // Reads and calls need no token; deletes and tags do.
    assert_eq!(
        s.client
            .get(s.at("/api/v1/modules"))
            .send()
            .await
            .expect("list")
            .status(),
        200
    );
    assert_eq!(
        s.client
            .post(s.at("/api/v1/modules/num/call/add_i32"))
            .body("[1,1]")
            .send()
            .await
            .expect("call")
            .status(),
        200
    );
    let (status, _) = error_of(
        s.client
            .delete(s.at("/api/v1/modules/num"))
            .send()
            .await
            .expect("delete"),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = error_of(
        s.client
            .post(s.at("/api/v1/modules/num/tags"))
            .json(&json!({"name": "x"}))
            .send()
            .await
            .expect("tag"),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        s.client
            .delete(s.at("/api/v1/modules/num"))
            .bearer_auth("s3cret")
            .send()
            .await
            .expect("delete")
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_means_loopback_only() {
    let mut c = config();
    c.addr = "0.0.0.0:0".parse().expect("addr");
    let e = TestServer::try_start(c).await.expect_err("refused");
    assert_eq!(e.code(), wasmhost::ErrorCode::BadInput);
    assert!(e.to_string().contains("without a token"), "{e}");
    let mut c = config();
    c.addr = "0.0.0.0:0".parse().expect("addr");
    c.token = Some("t".into());
    TestServer::start(c).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn processes_in_both_modes() {
    let s = TestServer::start(config()).await;
    s.upload("both", read("both_modes.wat")).await;
    let res = s
        .client
        .post(s.at("/api/v1/modules/both/process"))
        .body("hi")
        .send()
        .await
        .expect("sync");
    assert_eq!(res.text().await.expect("text"), "sync: hi");
    for n in 1..=3 {
        let res = s
            .client
            .post(s.at("/api/v1/modules/both/process?mode=async"))
            .body(format!("m{n}"))
            .send()
            .await
            .expect("async");
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.expect("text"), format!("async #{n}: m{n}"));
    }
    let (status, code) = error_of(
        s.client
            .post(s.at("/api/v1/modules/both/process?mode=async&export=nope"))
            .send()
            .await
            .expect("async"),
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
}

#[tokio::test(flavor = "multi_thread")]
async fn actors_keep_state_and_can_be_listed_and_removed() {
    let s = TestServer::start(config()).await;
    s.upload("counter", read("as-counter-stub.wasm")).await;
    for expected in ["1", "2", "3"] {
        let res = s
            .client
            .post(s.at("/api/v1/actors/alice?module=counter&function=increment"))
            .body("1")
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.text()
                .await
                .expect("text")
                .trim_matches(['[', ']', '\n']),
            expected
        );
    }
    // A live actor needs no module.
    let res = s
        .client
        .post(s.at("/api/v1/actors/alice?function=get"))
        .send()
        .await
        .expect("send");
    assert_eq!(
        res.text()
            .await
            .expect("text")
            .trim_matches(['[', ']', '\n']),
        "3"
    );
    let list: Value = s.get_json("/api/v1/actors").await;
    assert_eq!(list["actors"][0]["id"], "alice");
    assert_eq!(list["actors"][0]["messages"], 4);
    assert_eq!(list["actors"][0]["snapshots"], "every-message");
    assert!(list["actors"][0]["snapshot_bytes"].as_u64().expect("size") > 0);
    assert!(list["actors"][0]["saved_at"].is_string());
    // An Idempotency-Key is applied once; the resend is marked as replayed.
    for replayed in [false, true] {
        let res = s
            .client
            .post(s.at("/api/v1/actors/alice?function=increment"))
            .header("idempotency-key", "order-1")
            .body("10")
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers().get("x-wasmhost-replayed").is_some(), replayed);
        assert_eq!(
            res.text()
                .await
                .expect("text")
                .trim_matches(['[', ']', '\n']),
            "13"
        );
    }
    assert_eq!(
        s.client
            .delete(s.at("/api/v1/actors/alice?purge=true"))
            .send()
            .await
            .expect("rm")
            .status(),
        200
    );
    let list: Value = s.get_json("/api/v1/actors").await;
    assert_eq!(list["actors"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn api_actors_are_made_by_the_worker_a_route_actor_is() {
    // The server's limits (1 MiB of memory) are not the actor system's
    // (the library's default, 256 MiB): an actor made through the API
    // gets the server's, as an actor route's does, because both are made
    // by an actor worker.
    let mut c = config();
    c.limits = wasmhost::Limits::default().max_memory_bytes(1 << 20);
    c.routes = vec![route("/grow", "grow.wat", ",mode=actor,function=grow_once")];
    let s = TestServer::start(c).await;
    s.upload("grow", read("grow.wat")).await;
    let send = |path: &str| {
        let req = s.client.post(s.at(path)).body("[20]");
        async move {
            let res = req.send().await.expect("send");
            let status = res.status().as_u16();
            let text = res.text().await.expect("text");
            (status, text.trim_matches(['[', ']', '\n']).to_string())
        }
    };
    // 1 page + 20 is more than 1 MiB: memory.grow is refused (-1) on both.
    assert_eq!(send("/grow/a").await, (200, "-1".into()));
    assert_eq!(
        send("/api/v1/actors/b?module=grow&function=grow_once").await,
        (200, "-1".into())
    );
    // The API names actors by their whole id: it reaches the route's actor
    // (with or without naming its module), and its own actor is `b`.
    assert_eq!(
        send("/api/v1/actors/grow%2Fa?module=grow&function=grow_once").await,
        (200, "-1".into())
    );
    assert_eq!(
        send("/api/v1/actors/grow%2Fa?function=grow_once").await,
        (200, "-1".into())
    );
    let list: Value = s.get_json("/api/v1/actors").await;
    let ids: Vec<(&str, u64)> = list["actors"]
        .as_array()
        .expect("actors")
        .iter()
        .filter_map(|a| Some((a["id"].as_str()?, a["messages"].as_u64()?)))
        .collect();
    assert_eq!(ids, [("b", 1), ("grow/a", 3)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_describes_every_endpoint_the_server_answers() {
    let s = TestServer::start(config()).await;
    s.upload("num", read("numeric.wat")).await;
    let doc: Value = s.get_json("/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    assert_eq!(paths.len(), 14, "{paths:?}");
    for (path, ops) in paths {
        let concrete = path
            .replace("{reference}", "num")
            .replace("{function}", "add_i32")
            .replace("{id}", "nobody");
        for method in ops.as_object().expect("operations").keys() {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let res = s
                .client
                .request(m, s.at(&concrete))
                .send()
                .await
                .expect("request");
            assert_ne!(
                res.status(),
                405,
                "{method} {path}: the server does not answer it"
            );
            if res.status() == 404 {
                let (_, code) = error_of(res).await;
                assert_ne!(code, "route_not_found", "{method} {path}: no such route");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_and_health() {
    let s = TestServer::start(config()).await;
    s.upload("metricsnum", read("numeric.wat")).await;
    s.upload("metricstrap", read("unreachable.wat")).await;
    for _ in 0..3 {
        s.client
            .post(s.at("/api/v1/modules/metricsnum/call/add_i32"))
            .body("[1,2]")
            .send()
            .await
            .expect("call");
    }
    s.client
        .post(s.at("/api/v1/modules/metricstrap/call/run"))
        .send()
        .await
        .expect("call");
    // Names that are not exports share one label, whatever callers send.
    for name in ["nope1", "nope2"] {
        s.client
            .post(s.at(&format!("/api/v1/modules/metricsnum/call/{name}")))
            .send()
            .await
            .expect("call");
    }
    assert_eq!(
        s.client
            .get(s.at("/healthz"))
            .send()
            .await
            .expect("healthz")
            .status(),
        200
    );
    assert_eq!(
        s.client
            .get(s.at("/readyz"))
            .send()
            .await
            .expect("readyz")
            .status(),
        200
    );
    let res = s
        .client
        .get(s.at("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
    let text = res.text().await.expect("text");
    for needle in [
        "wasm_calls_total{module=\"metricsnum:latest\",function=\"add_i32\"} 3",
        "wasm_call_duration_seconds_bucket{module=\"metricsnum:latest\",function=\"add_i32\",le=\"",
        "wasm_errors_total{module=\"metricstrap:latest\",type=\"trap\"} 1",
        "wasm_module_loads_total{",
        "wasm_errors_total{module=\"metricsnum:latest\",type=\"not_found\"} 2",
        "wasm_memory_bytes{module=\"metricsnum:latest\"}",
        "http_requests_total{method=\"POST\",route=\"/api/v1/modules/{reference}/call/{function}\",status=\"200\"}",
        "http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/modules/{reference}/call/{function}\",le=\"",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
    assert!(
        !text.contains("nope1"),
        "a made-up function name became a label"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_router_answers_without_a_socket() {
    use tower::ServiceExt;
    let mut c = config();
    c.routes = vec![crate::route("/echo", "wasi-echo.wasm", "")];
    let (server, _state) = crate::bind(c).await.expect("bind");
    let router = server.router();
    let req = |method: &str, path: &str, body: &'static str| {
        axum::http::Request::builder()
            .method(method)
            .uri(path)
            .body(axum::body::Body::from(body))
            .expect("request")
    };
    let res = router
        .clone()
        .oneshot(req("POST", "/echo", "direct"))
        .await
        .expect("infallible");
    assert_eq!(res.status(), 200);
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body");
    assert_eq!(&body[..], b"direct");
    let res = router
        .oneshot(req("GET", "/api/v1/none", ""))
        .await
        .expect("infallible");
    assert_eq!(res.status(), 404);
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body");
    let json: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(json["error"]["code"], "route_not_found");
}
