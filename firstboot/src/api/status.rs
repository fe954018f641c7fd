//! `GET /airlift/v1/status`: host0's (or a replica's) state as JSON, a
//! [`Snapshot`](crate::services::status::Snapshot) of the shared
//! [`Status`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::api::json::json_response;
use crate::services::status::Status;

/// The path this endpoint answers on.
pub const PATH: &str = "/airlift/v1/status";

/// `GET /airlift/v1/status`.
pub async fn handler(State(status): State<Status>) -> Response {
    json_response(StatusCode::OK, &status.snapshot())
}
