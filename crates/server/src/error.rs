//! Errors answered to clients: each carries its HTTP status and a one-line message, sent as
//! `{"error": "...", "code": 422}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answered to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not JSON (or not JSON Lines).
    #[error("{0}")]
    Malformed(String),
    /// 404: no such route.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, for another method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 413: the body is over `--max-payload-bytes`.
    #[error("{0}")]
    TooLarge(String),
    /// 422: the payload breaks a rule of the contract; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// 429: the queue is full.
    #[error("{0}")]
    QueueFull(String),
    /// 503: the model is still loading, or the server is shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// 500: the model failed; the server keeps running.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::QueueFull(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The same error about line `line` (1-based) of a JSON Lines body.
    pub fn on_line(self, line: usize) -> Self {
        let prefix = |m: String| format!("line {line}: {m}");
        match self {
            Self::Malformed(m) => Self::Malformed(prefix(m)),
            Self::Invalid(m) => Self::Invalid(prefix(m)),
            other => other,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({ "error": self.to_string(), "code": status.as_u16() });
        (status, axum::Json(body)).into_response()
    }
}
