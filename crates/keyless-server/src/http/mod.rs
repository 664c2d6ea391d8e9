//! The HTTP surface: thin handlers that read the state and answer. Modules mirror the URL tree.
//!
//! - `health`: `/healthz` (the process answers) and `/readyz` (the database answers).
//! - `well_known`: `/.well-known/jwks.json`, the public keys of keyless's own tokens.

mod health;
mod well_known;

use axum::Router;

use crate::state::AppState;

/// The whole router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(well_known::routes())
        .with_state(state)
}
