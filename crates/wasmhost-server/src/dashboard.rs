//! The dashboard: a single-page app over the HTTP API, embedded in the binary.
//!
//! `GET /dashboard` (and `GET /`, unless a worker is served at `/`) is
//! `assets/index.html`; `GET /assets/{file}` serves `dashboard.js` and
//! `dashboard.css`. The page uses absolute paths only (`/assets/…`,
//! `/api/v1/…`, `/metrics`), so it works at either place. The files are
//! plain HTML, CSS and JavaScript (no framework, no build step, nothing
//! loaded from outside), compiled in with `include_str!`, so the binary
//! alone serves the page.
//! Every response says `Cache-Control: no-cache` (the browser revalidates, so
//! a new binary's page is never mixed with an old script); an unknown asset
//! is a 404 with the API's JSON error body.
//!
//! The page lists and uploads modules, inspects and calls them, runs core
//! modules in the browser's own WebAssembly engine beside the same call on
//! the server, draws calls/s, p50/p99 latency and errors/s from `/metrics`,
//! and lists actors. `tests/browser/dashboard.test.mjs` drives it in headless
//! Chromium.
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

/// The assets under `/assets/`: file name, content type, contents.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/dashboard.js"),
    ),
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("../assets/dashboard.css"),
    ),
];

/// What the page may load and run: only this origin, and WebAssembly
/// compilation for "run in this browser" (`'wasm-unsafe-eval'`).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The dashboard's routes: the page at `GET /dashboard` (and at `GET /`
/// when `at_root`; a worker may own `/` instead) and `GET /assets/{file}`.
/// Generic over the router's state, which they do not use.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(at_root: bool) -> Router<S> {
    let r = Router::new()
        .route("/dashboard", get(index))
        .route("/assets/{file}", get(asset));
    if at_root { r.route("/", get(index)) } else { r }
}

async fn index() -> Response {
    let mut res = page("text/html; charset=utf-8", INDEX_HTML);
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    res
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => page(content_type, body),
        None => not_found(&file),
    }
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
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
        assert_eq!(body(res).await, INDEX_HTML);
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
