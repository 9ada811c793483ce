//! Every refusal the server gives: an HTTP status and a JSON body that says what was wrong
//! and where in the request, e.g.
//! `{"error": {"status": 422, "message": "...", "where": {"field": "n"}}}`.

use crate::engine::EngineError;
use crate::model::diagnostic::Diagnostics;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub at: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            at: None,
        }
    }

    /// 422: the request is well-formed JSON but asks for something wrong.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn field(mut self, name: &str) -> ApiError {
        self.at = Some(json!({ "field": name }));
        self
    }

    /// Points into text the request carried (a system definition): field, 1-based line
    /// and column, the line itself and a caret under the column.
    pub fn from_diagnostics(field: &str, d: &Diagnostics) -> ApiError {
        let first = d.first();
        let mut e = ApiError::invalid(first.message.clone()).field(field);
        if let Some(source) = &first.source {
            let (line, column) = source.line_col(first.span.start);
            let text = source.text.lines().nth(line - 1).unwrap_or("");
            e.at = Some(json!({
                "field": field,
                "line": line,
                "column": column,
                "text": text,
                "caret": format!("{}^", " ".repeat(column - 1)),
            }));
        }
        if let Some(hint) = &first.hint {
            e.message = format!("{} ({hint})", e.message);
        }
        e
    }

    /// The documented body for a status the framework (or a layer) chose on its own: its
    /// own words where it gave some, else the status's reason.
    pub fn framework(status: StatusCode, text: &str) -> ApiError {
        let text = text.trim();
        let message = match status {
            StatusCode::METHOD_NOT_ALLOWED => {
                "this endpoint does not take that method; see the README's `phaseflow serve` section"
                    .to_string()
            }
            _ if !text.is_empty() => text.to_string(),
            StatusCode::NOT_FOUND => "no such endpoint; see the README's `phaseflow serve` section".into(),
            _ => status
                .canonical_reason()
                .unwrap_or("the request was refused")
                .to_string(),
        };
        let mut e = ApiError::new(status, message);
        // serde names an unknown or bad query key in backticks.
        if let Some(key) = text
            .split_once("field `")
            .and_then(|(_, rest)| rest.split('`').next())
        {
            e = e.field(key);
        }
        e
    }

    /// JSON that does not parse: 400 with the line and column serde_json found.
    pub fn malformed(e: &serde_json::Error) -> ApiError {
        let mut err = ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid JSON: {e}"),
        );
        err.at = Some(json!({ "line": e.line(), "column": e.column() }));
        err
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let status = match &e {
            EngineError::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
            EngineError::ShutDown => StatusCode::SERVICE_UNAVAILABLE,
            // A request larger than the device takes: the client's to split.
            EngineError::Gpu(crate::gpu::GpuError::Unsupported(_)) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            EngineError::Gpu(_) | EngineError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, e.to_string())
    }
}

impl ApiError {
    /// The documented body: `{"error": {"status", "message", "where"?}}`.
    pub fn body(&self) -> Value {
        let mut body = json!({ "status": self.status.as_u16(), "message": self.message });
        if let Some(at) = &self.at {
            body["where"] = at.clone();
        }
        json!({ "error": body })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
