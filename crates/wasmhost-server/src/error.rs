//! The API's error type: every failure becomes JSON
//! `{"error": {"code": "...", "message": "..."}}` with a fitting HTTP
//! status. Codes are the library's stable [`ErrorCode`]s plus the server's
//! own ([`ServerCode`]); messages never carry host internals beyond what the
//! library already puts in its errors (paths of the server's own state stay
//! out of them).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use wasmhost::{Error, ErrorCode};

/// Failures only the server has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerCode {
    /// A write without the configured bearer token (401).
    Unauthorized,
    /// A request body over `--max-body` (413).
    PayloadTooLarge,
    /// Every worker slot busy and the queue full (503, `Retry-After`).
    Overloaded,
    /// No API endpoint or worker route at this path (404).
    RouteNotFound,
    /// The request did not finish within `--request-timeout` (504).
    RequestTimeout,
    /// The server is draining for shutdown (503).
    ShuttingDown,
    /// A method the endpoint does not have, or a message worker sent
    /// something other than POST or PUT (405).
    MethodNotAllowed,
}

impl ServerCode {
    /// Every server code.
    pub const ALL: [ServerCode; 7] = [
        ServerCode::Unauthorized,
        ServerCode::PayloadTooLarge,
        ServerCode::Overloaded,
        ServerCode::RouteNotFound,
        ServerCode::RequestTimeout,
        ServerCode::ShuttingDown,
        ServerCode::MethodNotAllowed,
    ];

    /// The stable snake_case name of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerCode::Unauthorized => "unauthorized",
            ServerCode::PayloadTooLarge => "payload_too_large",
            ServerCode::Overloaded => "overloaded",
            ServerCode::RouteNotFound => "route_not_found",
            ServerCode::RequestTimeout => "request_timeout",
            ServerCode::ShuttingDown => "shutting_down",
            ServerCode::MethodNotAllowed => "method_not_allowed",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            ServerCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ServerCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ServerCode::Overloaded | ServerCode::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ServerCode::RouteNotFound => StatusCode::NOT_FOUND,
            ServerCode::RequestTimeout => StatusCode::GATEWAY_TIMEOUT,
            ServerCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }
}

/// The `Retry-After` of an `unavailable` answer (503), in seconds.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u32 = 5;

/// An error as the API reports it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u32>,
}

impl ApiError {
    /// A server-side failure with its message.
    pub fn server(code: ServerCode, message: impl Into<String>) -> Self {
        ApiError {
            status: code.status(),
            code: code.as_str(),
            message: message.into(),
            retry_after: (code == ServerCode::Overloaded || code == ServerCode::ShuttingDown)
                .then_some(1),
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON body of this error.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "code": self.code, "message": self.message } })
    }
}

/// The HTTP status for a library error code: the caller's fault is 4xx,
/// the guest's or the host's is 5xx (a timeout is 504).
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadInput => StatusCode::BAD_REQUEST,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::InvalidModule | ErrorCode::LinkError => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::CapabilityDenied => StatusCode::FORBIDDEN,
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::OutOfFuel
        | ErrorCode::MemoryLimit
        | ErrorCode::StackOverflow
        | ErrorCode::Trap
        | ErrorCode::Exit
        | ErrorCode::GuestError => StatusCode::BAD_GATEWAY,
        // At capacity, or something the host needed could not be used (an
        // OCI registry or store that does not answer, a full disk): nothing
        // was applied, retry later.
        ErrorCode::Overloaded | ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::SnapshotMismatch => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let code = e.code();
        let message = match &e {
            // The library's internal errors may name host paths: log them, say less.
            Error::Internal { .. } => {
                tracing::error!(error = %e, "internal error");
                "the server failed to handle this request; see its log".to_string()
            }
            _ => e.to_string(),
        };
        ApiError {
            status: status_of(code),
            code: code.as_str(),
            message,
            retry_after: match code {
                ErrorCode::Overloaded => Some(1),
                // A registry or store coming back, a disk getting room:
                // not within a second.
                ErrorCode::Unavailable => Some(UNAVAILABLE_RETRY_AFTER_SECS),
                _ => None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"wasmhost\""),
            );
        }
        res
    }
}

/// Result of an API handler.
pub type ApiResult<T> = std::result::Result<T, ApiError>;

/// `e` with `context` in front of its message, same code.
pub fn with_context(e: Error, context: &str) -> Error {
    match e {
        Error::BadInput { message } => Error::bad_input(format!("{context}: {message}")),
        Error::NotFound { what } => Error::not_found(format!("{context}: {what}")),
        Error::InvalidModule { message, offset } => Error::InvalidModule {
            message: format!("{context}: {message}"),
            offset,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_lists_every_error_code() {
        let doc: serde_json::Value = serde_json::from_str(crate::OPENAPI).expect("valid JSON");
        let listed = &doc["components"]["responses"]["Error"]["content"]["application/json"]["schema"]
            ["properties"]["error"]["properties"]["code"]["enum"];
        let listed: Vec<&str> = listed
            .as_array()
            .expect("an enum of codes")
            .iter()
            .filter_map(|c| c.as_str())
            .collect();
        let ours = ErrorCode::ALL
            .iter()
            .map(|c| c.as_str())
            .chain(ServerCode::ALL.iter().map(|c| c.as_str()));
        let mut ours: Vec<&str> = ours.collect();
        let mut sorted = listed.clone();
        ours.sort_unstable();
        // The library's `overloaded` (a full pool) and the server's (full
        // admission queue) are one code.
        ours.dedup();
        sorted.sort_unstable();
        assert_eq!(sorted, ours);
    }
}
