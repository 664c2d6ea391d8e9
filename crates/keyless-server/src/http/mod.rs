//! The HTTP surface: thin handlers that read the state and answer. Modules mirror the URL tree.
//!
//! - `health`: `/healthz` (the process answers) and `/readyz` (the database answers).
//! - `well_known`: `/.well-known/jwks.json` (the public keys of keyless's own tokens) and
//!   `/.well-known/oauth-authorization-server` (RFC 8414 metadata).
//! - `oauth`: `/v1/oauth/token` (the exchange), `/v1/oauth/introspect`, `/v1/oauth/revoke`.
//! - `authorize`: `/v1/authorize[/{path}]`, the forward-auth check for nginx, Envoy and Traefik.
//! - `metrics`: `/metrics` (Prometheus) and the per-request measurements.
//! - `admin`: the Admin API under `/v1/organizations/` (service accounts, issuers, rules);
//!   `activities`: the activity feed.
//! - `openapi`: `/v1/openapi.json`, generated from its table of every operation.
//! - `auth`: bearer-token authentication (`AdminCaller`, `authenticate`); `error`: `ApiError`, the
//!   Admin API's error shape, and the middleware that puts the request ID into it.
//! - [`request_id`]: the `Request-Id` of every response.
//! - [`proxy`]: the built-in reverse proxy, the fallback when an upstream is configured.
//!
//! A request no route matches is the built-in proxy's when `upstream.url` is set (authorized as
//! `/v1/authorize` would, then forwarded), and otherwise answers 404 with the Admin API's error shape
//! (`{"type": "error", "error": {"type": "not_found_error", "message"}, "request_id"}`). keyless's own
//! routes are never forwarded.

mod activities;
mod admin;
pub(crate) mod auth;
pub(crate) mod authorize;
pub(crate) mod error;
mod health;
mod metrics;
pub(crate) mod oauth;
mod openapi;
pub mod proxy;
pub mod request_id;
mod well_known;

use axum::{Router, middleware};

use crate::state::AppState;

/// The whole router.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(health::routes())
        .merge(well_known::routes())
        .merge(oauth::routes())
        .merge(authorize::routes())
        .merge(metrics::routes())
        .merge(admin::routes())
        .merge(activities::routes())
        .merge(openapi::routes(&state));
    let routes = if state.upstream.is_some() {
        routes.fallback(proxy::forward)
    } else {
        routes.fallback(error::not_found)
    };
    routes
        .route_layer(middleware::from_fn(metrics::measure))
        .with_state(state)
        .layer(middleware::from_fn(request_id::assign))
}
