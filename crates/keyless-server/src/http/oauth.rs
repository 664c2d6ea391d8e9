//! The OAuth endpoints: `POST /v1/oauth/token` (the exchange, in the three forms clients send),
//! `POST /v1/oauth/introspect` (RFC 7662) and `POST /v1/oauth/revoke` (RFC 7009).
//!
//! - JSON, `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` (the reference API and its SDKs):
//!   `assertion`, `federation_rule_id`, `organization_id`, `service_account_id?`, `workspace_id?`, `scope?`.
//! - Form, the same grant (RFC 7523 §2.1) with the same parameter names.
//! - Form, `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693, python `google-auth`'s
//!   `external_account`): `subject_token`, `subject_token_type` (`…:token-type:jwt` or `…:token-type:id_token`),
//!   `audience` = the federation rule ID, `requested_token_type?` (only `…:token-type:access_token`),
//!   `scope?`; `actor_token` (delegation) is refused. The response adds `issued_token_type`.
//!
//! RFC 6749 §3.2 applies to both encodings: a parameter sent twice is refused, an empty one counts as
//! absent, and unknown parameters are ignored (so a newer client's extra field does not break it).
//! Media-type parameters (`; charset=UTF-8`) are accepted; assertions are trimmed of surrounding
//! whitespace (a token file's trailing newline). No client authentication: the assertion is the
//! credential.
//!
//! Errors are RFC 6749 §5.2 JSON — `error`, `error_description` (the caller-safe message), plus
//! `error_code` (the stable [`RejectionCode`]) and `request_id` — with status 400, and 503
//! `temporarily_unavailable` when the database fails. Rule details never reach the caller; they are in
//! the activity event found by the request ID. Every response is `Cache-Control: no-store`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use keyless_core::rejection::{OAuthError, Rejection, RejectionCode};
use keyless_core::scope;
use secrecy::ExposeSecret;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::{Value, json};

use crate::clock;
use crate::http::auth;
use crate::http::request_id::RequestId;
use crate::service::access;
use crate::service::exchange::{self, ExchangeError, TokenRequest};
use crate::state::AppState;

/// RFC 7523 `grant_type`.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// RFC 8693 `grant_type`.
pub(crate) const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The scopes that may introspect, any one of them.
const INTROSPECTION_SCOPES: &[&str] = &[scope::ORG_ADMIN, scope::OAUTH_INTROSPECT];
/// The largest request body: a 16 KiB assertion and its parameters, with room to spare.
const MAX_BODY_BYTES: usize = 64 * 1024;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/oauth/token", post(token))
        .route("/v1/oauth/introspect", post(introspect))
        .route("/v1/oauth/revoke", post(revoke))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

async fn token(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = clock::now_unix();
    let (request, grant) = match parse(&headers, &body) {
        Ok(parsed) => parsed,
        // A request too malformed to name a rule is still an attempt: it is recorded.
        Err(rejection) => (TokenRequest::default(), Err(rejection)),
    };
    let outcome = match grant {
        Ok(grant) => exchange::exchange(&state, request, &request_id.0, now)
            .await
            .map(|issued| (grant, issued)),
        Err(rejection) => Err(exchange::refuse(&state, &request, rejection, &request_id.0, now).await),
    };
    match outcome {
        Ok((grant, issued)) => {
            let mut body = json!({
                "access_token": issued.access_token.expose_secret(),
                "token_type": "Bearer",
                "expires_in": issued.expires_in,
                "scope": issued.scope,
            });
            if let (Grant::TokenExchange, Some(fields)) = (grant, body.as_object_mut()) {
                fields.insert("issued_token_type".to_owned(), Value::from(TOKEN_TYPE_ACCESS_TOKEN));
            }
            no_store(StatusCode::OK, body)
        }
        Err(ExchangeError::Rejected(rejection)) => no_store(
            StatusCode::BAD_REQUEST,
            json!({
                "error": rejection.oauth_error().as_str(),
                "error_description": description(&rejection),
                "error_code": rejection.code().as_str(),
                "request_id": request_id.0,
            }),
        ),
        Err(ExchangeError::Unavailable(cause)) => unavailable(&request_id, &cause),
    }
}

/// The caller-safe message. A malformed request names its own field (`request.assertion`) and what was
/// expected — nothing the caller did not send; a refused grant gives only the code's message, since its
/// check and values belong to the rule.
fn description(rejection: &Rejection) -> String {
    match rejection.oauth_error() {
        OAuthError::InvalidRequest | OAuthError::UnsupportedGrantType => {
            let detail = rejection.detail();
            match &detail.expected {
                Some(Value::String(expected)) => {
                    format!("{}: {} (expected {expected})", rejection.message(), detail.check)
                }
                _ => format!("{}: {}", rejection.message(), detail.check),
            }
        }
        OAuthError::InvalidGrant | OAuthError::InvalidScope => rejection.message().to_owned(),
    }
}

/// `POST /v1/oauth/introspect` (RFC 7662): form `token`, caller authenticated with a bearer token
/// holding `org:admin` or the least-privilege `oauth:introspect` (a resource server's credential).
async fn introspect(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = clock::now_unix();
    if let Err(refusal) = auth::authenticate(&state, &headers, INTROSPECTION_SCOPES, now).await {
        let (status, error) = match refusal.status() {
            StatusCode::UNAUTHORIZED => (StatusCode::UNAUTHORIZED, "invalid_token"),
            StatusCode::FORBIDDEN => (StatusCode::FORBIDDEN, "insufficient_scope"),
            _ => return unavailable(&request_id, &refusal),
        };
        let mut response = oauth_error(status, error, refusal.message(), &request_id);
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        return response;
    }
    let token = match token_param(&headers, &body) {
        Ok(token) => token,
        Err(message) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &message, &request_id),
    };
    match access::introspect(&state, &token, now).await {
        Ok(answer) => no_store(StatusCode::OK, answer),
        Err(error) => unavailable(&request_id, &error),
    }
}

/// `POST /v1/oauth/revoke` (RFC 7009): form `token`; holding the token is the right to revoke it.
async fn revoke(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = match token_param(&headers, &body) {
        Ok(token) => token,
        Err(message) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &message, &request_id),
    };
    match access::revoke(&state, &token, &request_id.0, clock::now_unix()).await {
        Ok(()) => no_store(StatusCode::OK, json!({})),
        Err(error) => unavailable(&request_id, &error),
    }
}

/// The `token` parameter of a form body (`token_type_hint` and unknown parameters are ignored).
fn token_param(headers: &HeaderMap, body: &[u8]) -> Result<String, String> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase());
    if media_type.as_deref() != Some("application/x-www-form-urlencoded") {
        return Err("the body must be application/x-www-form-urlencoded".to_owned());
    }
    let params = form_params(body).map_err(|rejection| rejection.detail().check.to_string())?;
    params
        .get("token")
        .map(|token| token.trim().to_owned())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| "the token parameter is required".to_owned())
}

fn oauth_error(status: StatusCode, error: &str, description: &str, request_id: &RequestId) -> Response {
    no_store(
        status,
        json!({ "error": error, "error_description": description, "request_id": request_id.0 }),
    )
}

fn unavailable(request_id: &RequestId, cause: &dyn std::fmt::Display) -> Response {
    tracing::error!(request_id = request_id.0, %cause, "database failure");
    let mut response = oauth_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "the request could not be completed; retry shortly",
        request_id,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}

/// Which grant the caller used: decides the response's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    JwtBearer,
    TokenExchange,
}

type Parsed = (TokenRequest, Result<Grant, Rejection>);

/// Reads the body in either encoding into the request; a refusal keeps what could be read, so the
/// activity event shows it.
fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Parsed, Rejection> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase());
    let params = match media_type.as_deref() {
        Some("application/json") => json_params(body)?,
        Some("application/x-www-form-urlencoded") => form_params(body)?,
        other => {
            return Err(malformed(
                "content-type",
                "application/json or application/x-www-form-urlencoded",
                other.map(Value::from),
            ));
        }
    };
    Ok(read_grant(params))
}

fn read_grant(mut params: BTreeMap<String, String>) -> Parsed {
    let mut take = |name: &str| params.remove(name).filter(|value| !value.is_empty());
    let grant_type = take("grant_type");
    let mut request = TokenRequest {
        organization_id: take("organization_id"),
        service_account_id: take("service_account_id"),
        workspace_id: take("workspace_id"),
        scope: take("scope"),
        ..TokenRequest::default()
    };
    let grant = match grant_type.as_deref() {
        Some(JWT_BEARER) => {
            request.assertion = take("assertion").map(trimmed);
            request.federation_rule_id = take("federation_rule_id");
            Ok(Grant::JwtBearer)
        }
        Some(TOKEN_EXCHANGE) => {
            request.assertion = take("subject_token").map(trimmed);
            request.federation_rule_id = take("audience");
            let subject_token_type = take("subject_token_type");
            let requested_token_type = take("requested_token_type");
            if take("actor_token").is_some() {
                Err(malformed("actor_token", "absent: delegation is not supported", None))
            } else if !matches!(
                subject_token_type.as_deref(),
                Some(TOKEN_TYPE_JWT | TOKEN_TYPE_ID_TOKEN)
            ) {
                Err(malformed(
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:jwt or urn:ietf:params:oauth:token-type:id_token",
                    subject_token_type.map(Value::from),
                ))
            } else if requested_token_type
                .as_deref()
                .is_some_and(|kind| kind != TOKEN_TYPE_ACCESS_TOKEN)
            {
                Err(malformed(
                    "requested_token_type",
                    TOKEN_TYPE_ACCESS_TOKEN,
                    requested_token_type.map(Value::from),
                ))
            } else {
                Ok(Grant::TokenExchange)
            }
        }
        None => Err(malformed("grant_type", JWT_BEARER, None)),
        Some(other) => Err(Rejection::new(
            RejectionCode::UnsupportedGrantType,
            "request.grant_type",
            Some(json!([JWT_BEARER, TOKEN_EXCHANGE])),
            Some(Value::from(other)),
        )),
    };
    (request, grant)
}

fn trimmed(text: String) -> String {
    let trimmed = text.trim();
    if trimmed.len() == text.len() {
        text
    } else {
        trimmed.to_owned()
    }
}

/// Form parameters (RFC 6749 appendix B); a repeated name is refused.
fn form_params(body: &[u8]) -> Result<BTreeMap<String, String>, Rejection> {
    let mut params = BTreeMap::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        if params.insert(name.to_string(), value.into_owned()).is_some() {
            return Err(malformed(&name, "a parameter sent once", Some(Value::from("repeated"))));
        }
    }
    Ok(params)
}

/// A JSON object of string members; a repeated member is refused, other JSON types are refused by name.
fn json_params(body: &[u8]) -> Result<BTreeMap<String, String>, Rejection> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let members = deserializer
        .deserialize_map(StrictObject)
        .and_then(|members| deserializer.end().map(|()| members))
        .map_err(|error| malformed("body", "a JSON object", Some(Value::from(error.to_string()))))?;
    let mut params = BTreeMap::new();
    for (name, value) in members {
        match value {
            Value::String(text) => {
                params.insert(name, text);
            }
            // Unknown members are ignored whatever their type; known ones must be strings.
            Value::Null => {}
            other if is_known(&name) => {
                return Err(malformed(&name, "a string", Some(Value::from(json_type(&other)))));
            }
            _ => {}
        }
    }
    Ok(params)
}

fn is_known(name: &str) -> bool {
    matches!(
        name,
        "grant_type"
            | "assertion"
            | "federation_rule_id"
            | "organization_id"
            | "service_account_id"
            | "workspace_id"
            | "scope"
            | "subject_token"
            | "subject_token_type"
            | "audience"
            | "requested_token_type"
            | "actor_token"
    )
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A JSON object whose member names are unique.
struct StrictObject;

impl<'de> Visitor<'de> for StrictObject {
    type Value = Vec<(String, Value)>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members: Vec<(String, Value)> = Vec::new();
        while let Some((name, value)) = map.next_entry::<String, Value>()? {
            if members.iter().any(|(seen, _)| *seen == name) {
                return Err(serde::de::Error::custom(format!("member {name:?} is repeated")));
            }
            members.push((name, value));
        }
        Ok(members)
    }
}

fn malformed(field: &str, expected: &str, seen: Option<Value>) -> Rejection {
    Rejection::new(
        RejectionCode::MalformedRequest,
        format!("request.{field}"),
        Some(Value::from(expected)),
        seen,
    )
}

fn no_store(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")],
        Json(body),
    )
        .into_response()
}
