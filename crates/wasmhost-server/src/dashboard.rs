//! The dashboard: a single-page app over the HTTP API, embedded in the binary.
//!
//! `GET /dashboard` (and `GET /`, unless a worker is served at `/`) is
//! `assets/index.html`; `GET /assets/{file}` serves `dashboard.js` and
//! `dashboard.css`, and the jco bundle when the binary has it. The page uses
//! absolute paths only (`/assets/…`, `/api/v1/…`, `/metrics`), so it works
//! at either place. The page's own files are plain HTML, CSS and JavaScript
//! (no framework, no build step, nothing loaded from outside), compiled in
//! with `include_str!`, so the binary alone serves the page.
//! Every response says `Cache-Control: no-cache` (the browser revalidates, so
//! a new binary's page is never mixed with an old script); an unknown asset
//! is a 404 with the API's JSON error body.
//!
//! The page lists and uploads modules (and packet manifests), inspects and
//! calls them, runs them in the browser beside the same call on the server
//! (core modules in the browser's own WebAssembly engine; components
//! transpiled to JavaScript by jco), draws calls/s, p50/p99 latency and
//! errors/s from `/metrics`, and lists actors.
//! `tests/browser/dashboard.test.mjs` and `tests/browser/components.test.mjs`
//! drive it in headless Chromium.
//!
//! **The jco bundle** (`jco-bundle.js`, jco's transpiler and the WASI
//! browser shims, with the transpiler's two core wasm files) is built by
//! `scripts/build-jco.sh` into `assets/jco/`, not committed; `build.rs` sets
//! `cfg(jco_bundle)` when it is there and these files are then embedded with
//! `include_bytes!`. A binary built without it serves everything else, and
//! its page has `<body data-jco="missing">` (the page then says, for a
//! component, how to get the bundle) and its `GET /assets/jco-bundle.js` is
//! a 404 whose message says to run the script.
//! The page loads the bundle only then, in its worker.
//!
//! ```ignore
//! let app = axum::Router::new().merge(dashboard::routes(true)).with_state(state);
//! ```

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("../assets/index.html");

const JS: &str = "text/javascript; charset=utf-8";
const WASM: &str = "application/wasm";

/// The page's assets under `/assets/`: file name, content type, contents.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "dashboard.js",
        JS,
        include_str!("../assets/dashboard.js").as_bytes(),
    ),
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("../assets/dashboard.css").as_bytes(),
    ),
];

/// The jco bundle's files, also under `/assets/` (the bundle fetches the
/// wasm files beside itself).
const JCO_FILES: &[(&str, &str)] = &[
    ("jco-bundle.js", JS),
    ("js-component-bindgen-component.core.wasm", WASM),
    ("js-component-bindgen-component.core2.wasm", WASM),
];

/// Their contents, in `JCO_FILES` order, when the binary was built with them.
#[cfg(jco_bundle)]
const JCO_BUNDLE: Option<[&[u8]; 3]> = Some([
    include_bytes!("../assets/jco/jco-bundle.js"),
    include_bytes!("../assets/jco/js-component-bindgen-component.core.wasm"),
    include_bytes!("../assets/jco/js-component-bindgen-component.core2.wasm"),
]);
#[cfg(not(jco_bundle))]
const JCO_BUNDLE: Option<[&[u8]; 3]> = None;

/// What the page may load and run: only this origin, and WebAssembly
/// compilation for "run in this browser" (`'wasm-unsafe-eval'`).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The policy of the page's worker ("Run in this browser"), sent with every
/// script (a dedicated worker is governed by the policy that comes with its
/// script, not the page's): the page's, plus `blob:` scripts, because a
/// component runs as the JavaScript jco generates for it, which the worker
/// imports from a `Blob` it made. It has no DOM; no other script source and
/// no `'unsafe-eval'`.
const WORKER_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
     script-src 'self' 'wasm-unsafe-eval' blob:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'";

/// The dashboard's routes: the page at `GET /dashboard` (and at `GET /`
/// when `at_root`; a worker may own `/` instead) and `GET /assets/{file}`.
/// Generic over the router's state, which they do not use.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(at_root: bool) -> Router<S> {
    let r = Router::new()
        .route("/dashboard", get(index))
        .route("/assets/{file}", get(asset));
    if at_root { r.route("/", get(index)) } else { r }
}

/// The page of a binary built without the jco bundle: `<body data-jco="missing">`,
/// so that the page says so before anyone runs a component.
static INDEX_WITHOUT_JCO: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| INDEX_HTML.replacen("<body>", r#"<body data-jco="missing">"#, 1));

async fn index() -> Response {
    let html: &'static str = if JCO_BUNDLE.is_some() {
        INDEX_HTML
    } else {
        INDEX_WITHOUT_JCO.as_str()
    };
    let mut res = page("text/html; charset=utf-8", html.as_bytes());
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    res
}

async fn asset(Path(file): Path<String>) -> Response {
    if let Some((_, content_type, body)) = ASSETS.iter().find(|(name, _, _)| *name == file) {
        return page(content_type, body);
    }
    match JCO_FILES.iter().position(|(name, _)| *name == file) {
        Some(i) => match JCO_BUNDLE {
            Some(bundle) => page(JCO_FILES[i].1, bundle[i]),
            None => jco_missing(&file),
        },
        None => not_found(&file),
    }
}

fn page(content_type: &'static str, body: &'static [u8]) -> Response {
    let mut res = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response();
    if content_type == JS {
        res.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(WORKER_CONTENT_SECURITY_POLICY),
        );
    }
    res
}

/// A jco file of a binary built without the bundle: a 404 that says how to
/// get one.
fn jco_missing(file: &str) -> Response {
    let body = serde_json::json!({
        "error": {
            "code": "not_found",
            "message": format!(
                "this wasmhost was built without the jco bundle (`{file}`), so components \
                 can't run in the browser: run scripts/build-jco.sh, then rebuild wasmhost"
            ),
        }
    });
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-cache")],
        axum::Json(body),
    )
        .into_response()
}

fn not_found(file: &str) -> Response {
    let body = serde_json::json!({
        "error": { "code": "not_found", "message": format!("no dashboard asset `{file}`") }
    });
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-cache")],
        axum::Json(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(path: &str) -> Response {
        get_from(routes(true), path).await
    }

    async fn get_from(app: Router, path: &str) -> Response {
        let req = Request::get(path).body(Body::empty());
        app.oneshot(req.expect("request"))
            .await
            .expect("infallible")
    }

    fn header_of(res: &Response, name: header::HeaderName) -> &str {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    async fn body(res: Response) -> String {
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn index_is_html_and_names_its_assets() {
        let res = get("/").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            header_of(&res, header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        assert_eq!(header_of(&res, header::CACHE_CONTROL), "no-cache");
        let csp = header_of(&res, header::CONTENT_SECURITY_POLICY);
        assert!(csp.contains("'wasm-unsafe-eval'"), "{csp}");
        let html = body(res).await;
        for (name, _, _) in ASSETS {
            assert!(
                html.contains(&format!("/assets/{name}")),
                "index.html loads {name}"
            );
        }
    }

    #[tokio::test]
    async fn the_page_is_also_at_dashboard_and_leaves_root_to_a_worker() {
        let res = get("/dashboard").await;
        assert_eq!(res.status(), StatusCode::OK);
        let page = body(res).await;
        assert_eq!(page, body(get("/").await).await);
        assert!(page.contains("/assets/dashboard.js"), "{page}");
        let res = get_from(routes(false), "/").await;
        assert_eq!(
            res.status(),
            StatusCode::NOT_FOUND,
            "`/` is left to the worker"
        );
        let res = get_from(routes(false), "/dashboard").await;
        assert_eq!(res.status(), StatusCode::OK);
        let res = get_from(routes(false), "/assets/dashboard.js").await;
        assert_eq!(res.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn assets_have_their_content_types() {
        for (path, want) in [
            ("/assets/dashboard.js", "text/javascript; charset=utf-8"),
            ("/assets/dashboard.css", "text/css; charset=utf-8"),
        ] {
            let res = get(path).await;
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            assert_eq!(header_of(&res, header::CONTENT_TYPE), want, "{path}");
            assert_eq!(header_of(&res, header::CACHE_CONTROL), "no-cache", "{path}");
            assert!(!body(res).await.is_empty(), "{path}");
        }
    }

    #[tokio::test]
    async fn only_the_worker_may_import_blob_scripts_and_nobody_may_eval() {
        let page_csp = header_of(&get("/").await, header::CONTENT_SECURITY_POLICY).to_string();
        assert!(!page_csp.contains("blob:"), "{page_csp}");
        let res = get("/assets/dashboard.js").await;
        let worker_csp = header_of(&res, header::CONTENT_SECURITY_POLICY);
        assert!(
            worker_csp.contains("script-src 'self' 'wasm-unsafe-eval' blob:;"),
            "{worker_csp}"
        );
        for csp in [page_csp.as_str(), worker_csp] {
            assert!(!csp.contains("'unsafe-eval'"), "{csp}");
            assert!(!csp.contains("'unsafe-inline'"), "{csp}");
        }
        let css = get("/assets/dashboard.css").await;
        assert_eq!(header_of(&css, header::CONTENT_SECURITY_POLICY), "");
    }

    #[cfg(jco_bundle)]
    #[tokio::test]
    async fn the_jco_bundle_is_served_beside_the_page() {
        let res = get("/assets/jco-bundle.js").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(header_of(&res, header::CONTENT_TYPE), JS);
        assert!(header_of(&res, header::CONTENT_SECURITY_POLICY).contains("blob:"));
        let js = body(res).await;
        assert!(
            js.contains("transpile"),
            "the bundle exports jco's transpile"
        );
        assert!(!body(get("/").await).await.contains("data-jco"));
        // The transpiler fetches its core modules beside the bundle: each
        // one it names is served, as wasm (compileStreaming insists).
        for (name, _) in JCO_FILES.iter().filter(|(_, t)| *t == WASM) {
            assert!(js.contains(&format!("\"./{name}\"")), "{name}");
            let res = get(&format!("/assets/{name}")).await;
            assert_eq!(res.status(), StatusCode::OK, "{name}");
            assert_eq!(header_of(&res, header::CONTENT_TYPE), WASM, "{name}");
            let bytes = res.into_body().collect().await.expect("body").to_bytes();
            assert_eq!(&bytes[..4], b"\0asm", "{name}");
        }
    }

    #[cfg(not(jco_bundle))]
    #[tokio::test]
    async fn without_the_jco_bundle_its_files_say_how_to_get_it() {
        assert!(
            body(get("/").await)
                .await
                .contains(r#"<body data-jco="missing">"#)
        );
        for (name, _) in JCO_FILES {
            let res = get(&format!("/assets/{name}")).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{name}");
            let json: serde_json::Value = serde_json::from_str(&body(res).await).expect("json");
            assert_eq!(json["error"]["code"], "not_found", "{name}");
            let message = json["error"]["message"].as_str().unwrap_or("");
            assert!(message.contains("scripts/build-jco.sh"), "{message}");
        }
    }

    #[tokio::test]
    async fn unknown_asset_is_a_json_404() {
        for path in [
            "/assets/nope.js",
            "/assets/..%2Fsrc%2Flib.rs",
            "/assets/index.html",
        ] {
            let res = get(path).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
            let json: serde_json::Value = serde_json::from_str(&body(res).await).expect("json");
            assert_eq!(json["error"]["code"], "not_found", "{path}");
        }
    }
}
