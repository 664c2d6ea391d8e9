//! Bearer-token authentication of API callers.
//!
//! Parts: [`Caller`] (who is calling, with the token's record), [`authenticate`] (the one check),
//! [`AdminCaller`] (an extractor: an `org:admin` caller of this organization), [`require_admin`] and
//! [`error`] (the same for handlers that build their own responses).
//!
//! The check: `Authorization: Bearer <token>` must be present and shaped like a keyless access token
//! (prefix, length, checksum; anything else is never looked up) → else 401 `authentication_error`.
//! The token is looked up by its SHA-256 and must be active (not expired, not revoked) and of this
//! server's organization → else 401. Then it must hold one of the accepted scopes (when any are named) → else 403
//! `permission_error`. The actor recorded for the caller's changes is the token's service account, or
//! `bootstrap` for the bootstrap admin token (the only token bound to no service account today); that
//! token is also the only credential that counts as interactive (a human's) — see
//! `service::admin`'s documentation for what needs one.
//!
//! The clock is read once per request, here, through `crate::clock`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use keyless_core::scope::ORG_ADMIN;
use keyless_store::access_token::AccessTokenRecord;

use crate::clock;
use crate::http::error::ApiError;
use crate::http::request_id::RequestId;
use crate::service::admin::{Actor, Ctx};
use crate::service::{access, token};
use crate::state::AppState;

/// The actor ID of the bootstrap admin token (as `service::bootstrap` records it).
pub(crate) const BOOTSTRAP_ACTOR: &str = "bootstrap";

/// An authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// Who acts, for audit columns and activity events.
    pub(crate) actor: Actor,
    /// The token's stored record.
    #[allow(dead_code, reason = "for introspection: what the caller's token is")]
    pub(crate) token: AccessTokenRecord,
}

/// Authenticates the bearer token in `headers` at `now`. The token must hold at least one of
/// `accepted_scopes` (alternatives, e.g. `org:admin` or `oauth:introspect`); an empty list accepts any
/// active token.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    accepted_scopes: &[&str],
    now: i64,
) -> Result<Caller, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::authentication(
            "missing bearer token: send `Authorization: Bearer <access token>`",
        ));
    };
    let text = value
        .to_str()
        .ok()
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|token| token::looks_valid(token))
        .ok_or_else(|| ApiError::authentication("malformed bearer token"))?;
    let record = match access::active_token(state, text, now).await {
        Ok(Some(record)) => record,
        Ok(None) => return Err(invalid_token()),
        Err(error) => return Err(ApiError::internal(format!("reading an access token: {error}"))),
    };
    if !accepted_scopes.is_empty() && !accepted_scopes.iter().any(|scope| record.scope.contains(scope)) {
        return Err(ApiError::permission(lacks(accepted_scopes)));
    }
    let actor = match &record.service_account_id {
        Some(service_account_id) => Actor {
            id: service_account_id.as_str().to_owned(),
            interactive: false,
        },
        None => Actor {
            id: BOOTSTRAP_ACTOR.to_owned(),
            interactive: true,
        },
    };
    Ok(Caller { actor, token: record })
}

/// The refusal's message: the one scope, or the alternatives, the token would need.
fn lacks(accepted_scopes: &[&str]) -> String {
    match accepted_scopes {
        [scope] => format!("this token lacks the `{scope}` scope"),
        scopes => {
            let names: Vec<String> = scopes.iter().map(|scope| format!("`{scope}`")).collect();
            format!("this token lacks a scope allowed here: one of {}", names.join(", "))
        }
    }
}

fn invalid_token() -> ApiError {
    ApiError::authentication("invalid bearer token: unknown, expired or revoked")
}

/// An extractor: an `org:admin` caller of this organization, the request's ID and time.
#[derive(Debug, Clone)]
pub(crate) struct AdminCaller {
    /// The caller.
    pub(crate) caller: Caller,
    /// The request's ID.
    pub(crate) request_id: String,
    /// The request's time (Unix seconds), read once.
    pub(crate) now: i64,
}

impl AdminCaller {
    /// The service layer's context for this call.
    pub(crate) fn ctx<'a>(&'a self, state: &'a AppState) -> Ctx<'a> {
        Ctx {
            state,
            actor: &self.caller.actor,
            request_id: &self.request_id,
            now: self.now,
        }
    }
}

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let now = clock::now_unix();
        let caller = authenticate(state, &parts.headers, &[ORG_ADMIN], now).await?;
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default();
        Ok(Self {
            caller,
            request_id,
            now,
        })
    }
}

/// [`authenticate`] with `org:admin`, for handlers that build their own responses: the refusal is a
/// rendered response.
#[allow(dead_code, reason = "the lead's activity feed and introspection handlers use it")]
pub(crate) async fn require_admin(
    state: &AppState,
    headers: &HeaderMap,
    request_id: &RequestId,
    now: i64,
) -> Result<Caller, Response> {
    authenticate(state, headers, &[ORG_ADMIN], now)
        .await
        .map_err(|error| error.into_response_with(request_id))
}

/// A rendered error response in the Admin API's shape (see `http::error`).
#[allow(dead_code, reason = "the lead's activity feed and introspection handlers use it")]
pub(crate) fn error(status: StatusCode, kind: &str, message: &str, request_id: &RequestId) -> Response {
    crate::http::error::error(status, kind, message, request_id)
}
