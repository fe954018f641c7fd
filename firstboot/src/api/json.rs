//! The JSON responses host0's endpoints answer with.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// `value` as pretty JSON with a trailing newline; a value that cannot be
/// encoded is a 500 that says so.
pub fn json_response<T: Serialize>(code: StatusCode, value: &T) -> Response {
    match serde_json::to_vec_pretty(value) {
        Ok(mut body) => {
            body.push(b'\n');
            (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding JSON: {e}"),
        )
            .into_response(),
    }
}
