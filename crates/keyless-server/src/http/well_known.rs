//! `GET /.well-known/jwks.json`: the public keys that verify keyless's own tokens (RFC 7517),
//! each `kid` the key's RFC 7638 thumbprint. Cacheable for five minutes.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/.well-known/jwks.json", get(jwks_get))
}

async fn jwks_get(State(state): State<AppState>) -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::CONTENT_TYPE, "application/jwk-set+json"),
        ],
        Json(state.public_jwks.as_ref().clone()),
    )
}
