//! The well-known documents.
//!
//! - `GET /.well-known/jwks.json`: the public keys that verify keyless's own tokens (RFC 7517), each
//!   `kid` the key's RFC 7638 thumbprint. Cacheable for five minutes.
//! - `GET /.well-known/oauth-authorization-server`: RFC 8414 metadata. `issuer` is the configured
//!   `public_url`; it lists only endpoints that exist. `keyless_default_audience` (an extension member)
//!   is the audience a subject token must carry when its federation rule sets no `match.audience`;
//!   `keyless_organization_id` the organization every exchange names (not a secret: a workload sends it
//!   unauthenticated), so a client or an admin setting up a workload can read it from here.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use keyless_core::scope;
use serde_json::json;

use crate::http::oauth;
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks_get))
        .route("/.well-known/oauth-authorization-server", get(metadata_get))
}

async fn metadata_get(State(state): State<AppState>) -> impl IntoResponse {
    let base = state.public_url.trim_end_matches('/');
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(json!({
            "issuer": state.public_url.as_ref(),
            "token_endpoint": format!("{base}/v1/oauth/token"),
            "introspection_endpoint": format!("{base}/v1/oauth/introspect"),
            "revocation_endpoint": format!("{base}/v1/oauth/revoke"),
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "grant_types_supported": [oauth::JWT_BEARER, oauth::TOKEN_EXCHANGE],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": ["none"],
            "introspection_endpoint_auth_methods_supported": ["bearer"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": [
                scope::WORKSPACE_DEVELOPER,
                scope::WORKSPACE_INFERENCE,
                scope::ORG_ADMIN,
                scope::OAUTH_INTROSPECT,
            ],
            "keyless_default_audience": state.public_url.as_ref(),
            "keyless_organization_id": state.organization_id.as_str(),
        })),
    )
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
