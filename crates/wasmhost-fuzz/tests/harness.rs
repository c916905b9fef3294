//! The harnesses are not vacuous: what they feed reaches the code under
//! test, and what they check can fail.

use wasmhost::{ArgsFormat, ErrorCode};
use wasmhost_fuzz::{args, http};

#[test]
fn component_arguments_that_fit_reach_the_guest_and_others_are_bad_input() {
    let trap = args::call(
        "people",
        ArgsFormat::Json,
        br#"[{"name":"a","age":3,"email":null,"tags":[]},null]"#,
    )
    .expect_err("the dummy body traps");
    assert_eq!(trap.code(), ErrorCode::Trap, "{trap}");
    let trap = args::call(
        "shapes",
        ArgsFormat::Wave,
        b"rect({x: 1, y: 2}), green, {read}",
    )
    .expect_err("the dummy body traps");
    assert_eq!(trap.code(), ErrorCode::Trap, "{trap}");
    let bad = args::call(
        "people",
        ArgsFormat::Json,
        br#"[{"name":"a","age":300,"email":null,"tags":[]},null]"#,
    )
    .expect_err("age is a u8");
    assert_eq!(bad.code(), ErrorCode::BadInput, "{bad}");
    assert!(bad.to_string().contains("age"), "{bad}");
    let bad = args::call("scalars", ArgsFormat::Wave, b"true, 1").expect_err("too few");
    assert_eq!(bad.code(), ErrorCode::BadInput, "{bad}");
}

#[test]
fn the_router_fixture_answers_api_errors_as_json_and_serves_statics() {
    let req = |method: &str, uri: &str| {
        ::http::Request::builder()
            .method(method)
            .uri(uri)
            .body(axum::body::Body::empty())
            .expect("request")
    };
    let (status, _, body) = http::send(req("GET", "/api/v1/modules/nope"));
    assert_eq!(status, 404);
    let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert!(json["error"]["code"].is_string(), "{json}");
    let (status, _, _) = http::send(req("GET", "/api/v1/modules/add"));
    assert_eq!(status, 200);
    let (status, _, body) = http::send(req("GET", "/static/index.html"));
    assert_eq!(status, 200);
    assert_eq!(&body[..], b"<p>static</p>");
    // A write without the token is refused with a code.
    let (status, _, _) = http::send(req("DELETE", "/api/v1/modules/add"));
    assert_eq!(status, 401);
}
