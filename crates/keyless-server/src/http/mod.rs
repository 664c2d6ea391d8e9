//! The HTTP surface: thin handlers that read the state and answer. Modules mirror the URL tree.
//!
//! - `health`: `/healthz` (the process answers) and `/readyz` (the database answers).
//! - `well_known`: `/.well-known/jwks.json`, the public keys of keyless's own tokens.
//! - [`request_id`]: the `Request-Id` of every response.
//!
//! An unknown route answers 404 with the Admin API's error shape
//! (`{"type": "error", "error": {"type": "not_found_error", "message"}, "request_id"}`).

mod health;
pub mod request_id;
mod well_known;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json, Router, middleware};
use serde_json::json;

use crate::state::AppState;

/// The whole router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(well_known::routes())
        .fallback(not_found)
        .with_state(state)
        .layer(middleware::from_fn(request_id::assign))
}

async fn not_found(Extension(id): Extension<request_id::RequestId>) -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Json(json!({
            "type": "error",
            "error": { "type": "not_found_error", "message": "no such route" },
            "request_id": id.0,
        })),
    )
}
