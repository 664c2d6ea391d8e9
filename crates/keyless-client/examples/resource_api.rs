//! A resource API protected by keyless access tokens: `keyless_client::resource` in an axum app.
//!
//! Routes:
//! - `GET /healthz`: open.
//! - `GET /v1/whoami`: any valid token; answers the token's principal as JSON.
//! - `GET /v1/files`: needs the scope `files:read` (a [`RequireScope`] layer on the route).
//! - `POST /v1/files`: needs `files:write` (checked in the handler with `Principal::require_scope`).
//!
//! Configuration, from the environment:
//! - the API's own credential, through the credential chain (`docs/client.md`): typically the
//!   federation variables (`KEYLESS_BASE_URL`, `KEYLESS_FEDERATION_RULE_ID`, `KEYLESS_ORGANIZATION_ID`,
//!   `KEYLESS_IDENTITY_TOKEN_FILE`, …) of a rule granting `oauth:introspect` (an admin creates it with an
//!   interactive credential). Its token is refreshed before expiry and after a 401;
//! - `RESOURCE_API_LISTEN`: where to listen (default `127.0.0.1:8081`);
//! - `KEYLESS_REVOCATION_BOUND_SECONDS`: the verifier's `max_ttl` (default 10).
//!
//! Run it:
//! ```text
//! export $(keyless rules env fdrl_…) KEYLESS_IDENTITY_TOKEN_FILE=/path/to/the/api's/identity-token
//! cargo run -p keyless-client --features resource-server --example resource_api
//! curl -H "Authorization: Bearer $(keyless token)" http://127.0.0.1:8081/v1/whoami
//! ```

use std::process::ExitCode;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use keyless_client::Api;
use keyless_client::resource::{Denial, Principal, RequireScope, RequireToken, Verifier};
use serde_json::{Value, json};

/// The API's routes, all but `/healthz` behind the verifier.
pub(crate) fn router(verifier: Verifier) -> Router {
    let protected = Router::new()
        .route("/v1/whoami", get(whoami))
        .route(
            "/v1/files",
            get(files_list)
                .layer(RequireScope::new("files:read"))
                .post(files_create),
        )
        .layer(RequireToken::new(verifier));
    Router::new().route("/healthz", get(|| async { "ok" })).merge(protected)
}

async fn whoami(principal: Principal) -> Json<Principal> {
    Json(principal)
}

async fn files_list(principal: Principal) -> Json<Value> {
    Json(json!({ "files": ["a.txt", "b.txt"], "for": principal.service_account_id }))
}

async fn files_create(principal: Principal) -> Result<Json<Value>, Denial> {
    principal.require_scope("files:write")?;
    Ok(Json(json!({ "created": "c.txt", "by": principal.service_account_id })))
}

#[allow(dead_code, reason = "the tests include this file as a module for `router`")]
#[tokio::main]
async fn main() -> ExitCode {
    match serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            #[allow(clippy::print_stderr, reason = "the example's only output")]
            {
                eprintln!("resource_api: {error}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let resolution = keyless_client::resolve(
        &keyless_client::Explicit::default(),
        &keyless_client::Environment::from_process(),
        std::sync::Arc::new(keyless_client::clock::SystemClock),
    )?;
    let listen = std::env::var("RESOURCE_API_LISTEN").unwrap_or_else(|_| "127.0.0.1:8081".to_owned());
    let bound = match std::env::var("KEYLESS_REVOCATION_BOUND_SECONDS") {
        Ok(text) => Duration::from_secs(text.parse()?),
        Err(_) => keyless_client::resource::DEFAULT_MAX_TTL,
    };
    let api = Api::new(&resolution.base_url, resolution.credential)?;
    let verifier = Verifier::builder(api).max_ttl(bound).build();
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    axum::serve(listener, router(verifier)).await?;
    Ok(())
}
