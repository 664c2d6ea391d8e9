//! `/v1/authorize`: the forward-auth check that nginx `auth_request`, Envoy `ext_authz` (HTTP) and
//! Traefik `ForwardAuth` call before they pass a request on.
//!
//! The original request is read from the conventional headers: `X-Original-Method` and
//! `X-Original-URI` (nginx, set in its configuration) or `X-Forwarded-Method` and `X-Forwarded-Uri`
//! (Traefik) — both present and disagreeing is a 400, since one of them came from the client — else
//! the check request itself — Envoy sends the original method, and the original path
//! after its `path_prefix` (`/v1/authorize/v1/messages?x` checks `/v1/messages?x`). The credential is
//! `x-api-key` or `Authorization: Bearer` (see [`presented`]).
//!
//! Answers: 200 with the identity headers ([`identity_headers`]) and an empty body; 401 (no usable
//! credential) or 403 (path or scope) with `WWW-Authenticate` and `Keyless-Reason: <code>`; 429 with
//! `Retry-After`; 400 when the original request cannot be told. Refusals carry the Admin API's error
//! body with `error.code`. Every check becomes an `api_request` event (`source: authorize`).
//!
//! Parts shared with the built-in proxy: [`presented`], [`identity_headers`], [`IDENTITY_HEADERS`],
//! [`refusal_response`].

use std::borrow::Cow;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::json;

use crate::clock;
use crate::http::request_id::RequestId;
use crate::service::authorize::{Decision, Presented, Principal, Refusal};
use crate::service::request_log::{ApiRequest, Source};
use crate::state::AppState;

/// The identity headers of an allowed request, in the order they are set. A proxy must drop any of
/// them a client sent before adding keyless's.
pub(crate) const IDENTITY_HEADERS: [&str; 8] = [
    "keyless-organization-id",
    "keyless-workspace-id",
    "keyless-principal-type",
    "keyless-principal-id",
    "keyless-service-account-id",
    "keyless-api-key-id",
    "keyless-federation-rule-id",
    "keyless-scopes",
];

/// The header naming a refusal's code.
pub(crate) const REASON_HEADER: &str = "keyless-reason";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/authorize", any(authorize))
        .route("/v1/authorize/{*path}", any(authorize))
}

async fn authorize(State(state): State<AppState>, mut request: Request) -> Response {
    let started = clock::monotonic();
    let now = clock::now_unix();
    let request_id = request
        .extensions_mut()
        .remove::<RequestId>()
        .unwrap_or_else(|| RequestId(String::new()));
    let headers = request.headers();
    let Some((method, target)) =
        original_request(request.method(), request.uri().path(), request.uri().query(), headers)
    else {
        return crate::http::error::error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "the original request is unknown or ambiguous: send X-Original-Method and X-Original-URI \
             (nginx), or X-Forwarded-Method and X-Forwarded-Uri (Traefik), not two that disagree; or call \
             /v1/authorize/<path> (Envoy)",
            &request_id,
        );
    };
    let decision = state
        .authorizer
        .check(&state, &method, &target, presented(headers), now, started)
        .await;
    let response = match &decision.refusal {
        None => allowed(&decision),
        Some(refusal) => refusal_response(refusal, &request_id),
    };
    state.request_log.record(ApiRequest {
        organization_id: state.organization_id.clone(),
        at: now,
        request_id: request_id.0,
        source: Source::Authorize,
        principal: decision.principal,
        method,
        path: decision.path,
        route: decision.route,
        status: response.status().as_u16(),
        reason: decision.refusal.as_ref().map(|refusal| refusal.code),
        latency: started.elapsed(),
    });
    response
}

/// The original method and target (path and query), from the conventional headers or the Envoy form.
fn original_request<'a>(
    method: &Method,
    path: &'a str,
    query: Option<&str>,
    headers: &'a HeaderMap,
) -> Option<(String, Cow<'a, str>)> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    // A proxy sets one pair; a client may have sent the other (Traefik forwards client headers to the
    // check unless told otherwise). Two that disagree are refused, so a client's header never decides.
    let agreed = |first: Option<&'a str>, second: Option<&'a str>| match (first, second) {
        (Some(first), Some(second)) if !first.eq_ignore_ascii_case(second) => Err(()),
        (first, second) => Ok(first.or(second)),
    };
    let target = agreed(header("x-original-uri"), header("x-forwarded-uri")).ok()?;
    let original_method = agreed(header("x-original-method"), header("x-forwarded-method")).ok()?;
    if let Some(target) = target {
        let method = original_method.unwrap_or_else(|| method.as_str());
        return Some((method.to_ascii_uppercase(), Cow::Borrowed(target)));
    }
    let rest = path
        .strip_prefix("/v1/authorize")
        .filter(|rest| rest.starts_with('/'))?;
    let target = match query {
        Some(query) => Cow::Owned(format!("{rest}?{query}")),
        None => Cow::Borrowed(rest),
    };
    Some((method.as_str().to_owned(), target))
}

/// The credential of a request: `x-api-key`, or `Authorization: Bearer`; both at once must agree, and
/// an `Authorization` header of another scheme is malformed.
pub(crate) fn presented(headers: &HeaderMap) -> Presented<'_> {
    let api_key = headers.get("x-api-key").map(|value| value.to_str().map(str::trim));
    let bearer = headers.get(header::AUTHORIZATION).map(|value| {
        value.to_str().ok().and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
    });
    match (api_key, bearer) {
        (None, None) => Presented::Missing,
        (Some(Ok(key)), None) if !key.is_empty() => Presented::Secret(key),
        (None, Some(Some(token))) if !token.is_empty() => Presented::Secret(token),
        (Some(Ok(key)), Some(Some(token))) if key == token && !key.is_empty() => Presented::Secret(key),
        _ => Presented::Malformed,
    }
}

/// The identity headers of `principal` (see [`IDENTITY_HEADERS`]); absent IDs are left out. Made on
/// the principal's first check and kept with it.
pub(crate) fn identity_headers(principal: &Principal) -> &[(HeaderName, HeaderValue)] {
    principal.headers.get_or_init(|| {
        let scopes = principal.scope.to_string();
        let values: [Option<&str>; 8] = [
            Some(principal.organization_id.as_str()),
            principal.workspace_id.as_ref().map(|id| id.as_str()),
            Some(principal.kind.as_str()),
            Some(principal.id.as_str()),
            principal.service_account_id.as_ref().map(|id| id.as_str()),
            principal.api_key_id.as_ref().map(|id| id.as_str()),
            principal.rule_id.as_ref().map(|id| id.as_str()),
            Some(scopes.as_str()),
        ];
        IDENTITY_HEADERS
            .iter()
            .zip(values)
            .filter_map(|(name, value)| Some((HeaderName::from_static(name), HeaderValue::from_str(value?).ok()?)))
            .collect()
    })
}

fn allowed(decision: &Decision) -> Response {
    let mut response = StatusCode::OK.into_response();
    if let Some(principal) = &decision.principal {
        response
            .headers_mut()
            .extend(identity_headers(principal).iter().cloned());
    }
    response
}

/// An error in the Admin API's shape with a stable code, `{"type": "error", "error": {"type", "code",
/// "message"}, "request_id"}`; `error.type` follows the status.
pub(crate) fn coded_error(status: StatusCode, code: &str, message: &str, request_id: &RequestId) -> Response {
    let kind = match status.as_u16() {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        _ => "api_error",
    };
    let body = json!({
        "type": "error",
        "error": { "type": kind, "code": code, "message": message },
        "request_id": request_id.0,
    });
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// The response to a refused request: its status, `WWW-Authenticate` (401, 403), `Retry-After` (429),
/// `Keyless-Reason`, and the Admin API's error body with the code.
pub(crate) fn refusal_response(refusal: &Refusal, request_id: &RequestId) -> Response {
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::FORBIDDEN);
    let mut response = coded_error(status, refusal.code, &refusal.message, request_id);
    if let Ok(reason) = HeaderValue::from_str(refusal.code) {
        response.headers_mut().insert(REASON_HEADER, reason);
    }
    let challenge = match refusal.status {
        401 => Some(format!(
            "Bearer realm=\"keyless\", error=\"invalid_token\", error_description=\"{}\"",
            refusal.code
        )),
        403 => Some(match &refusal.required_scopes {
            Some(scopes) => format!(
                "Bearer realm=\"keyless\", error=\"insufficient_scope\", error_description=\"{}\", scope=\"{scopes}\"",
                refusal.code
            ),
            None => format!(
                "Bearer realm=\"keyless\", error=\"insufficient_scope\", error_description=\"{}\"",
                refusal.code
            ),
        }),
        _ => None,
    };
    if let Some(value) = challenge.and_then(|text| HeaderValue::from_str(&text).ok()) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    if let Some(wait) = refusal.retry_after {
        // Whole seconds, rounded up (RFC 9110 §10.2.3).
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_original_request_comes_from_the_conventional_headers() {
        let nginx = headers(&[("x-original-method", "post"), ("x-original-uri", "/v1/messages?beta=1")]);
        assert_eq!(
            original_request(&Method::GET, "/v1/authorize", None, &nginx),
            Some(("POST".to_owned(), "/v1/messages?beta=1".into()))
        );
        let traefik = headers(&[("x-forwarded-method", "DELETE"), ("x-forwarded-uri", "/v1/files/f1")]);
        assert_eq!(
            original_request(&Method::GET, "/v1/authorize", None, &traefik),
            Some(("DELETE".to_owned(), "/v1/files/f1".into()))
        );
        let envoy = HeaderMap::new();
        assert_eq!(
            original_request(&Method::PUT, "/v1/authorize/v1/files/f1", Some("a=b"), &envoy),
            Some(("PUT".to_owned(), "/v1/files/f1?a=b".into()))
        );
        assert_eq!(original_request(&Method::GET, "/v1/authorize", None, &envoy), None);
        // A client's X-Original-URI beside Traefik's X-Forwarded-Uri: refused, not believed.
        let spoofed = headers(&[("x-original-uri", "/v1/models"), ("x-forwarded-uri", "/v1/admin")]);
        assert_eq!(original_request(&Method::GET, "/v1/authorize", None, &spoofed), None);
        let agreeing = headers(&[("x-original-uri", "/v1/models"), ("x-forwarded-uri", "/v1/models")]);
        assert_eq!(
            original_request(&Method::GET, "/v1/authorize", None, &agreeing),
            Some(("GET".to_owned(), "/v1/models".into()))
        );
        assert_eq!(original_request(&Method::GET, "/v1/authorizex/y", None, &envoy), None);
    }

    #[test]
    fn one_credential_per_request() {
        assert_eq!(presented(&HeaderMap::new()), Presented::Missing);
        assert_eq!(presented(&headers(&[("x-api-key", "k1")])), Presented::Secret("k1"));
        assert_eq!(
            presented(&headers(&[("authorization", "bearer t1")])),
            Presented::Secret("t1")
        );
        assert_eq!(
            presented(&headers(&[("authorization", "Bearer k1"), ("x-api-key", "k1")])),
            Presented::Secret("k1")
        );
        assert_eq!(
            presented(&headers(&[("authorization", "Bearer t1"), ("x-api-key", "k1")])),
            Presented::Malformed
        );
        assert_eq!(
            presented(&headers(&[("authorization", "Basic dTpw")])),
            Presented::Malformed
        );
        assert_eq!(presented(&headers(&[("x-api-key", "")])), Presented::Malformed);
    }
}
