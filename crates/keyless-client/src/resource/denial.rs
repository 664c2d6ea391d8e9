//! [`Denial`]: why a request was not let through, and its HTTP answer (RFC 6750 §3).
//!
//! | denial | status | `WWW-Authenticate` | body `error` |
//! |---|---|---|---|
//! | [`Denial::MissingToken`] | 401 | `Bearer realm="keyless"` (no error code: RFC 6750 §3.1) | `invalid_token` |
//! | [`Denial::InvalidToken`] | 401 | `Bearer realm="keyless", error="invalid_token", error_description="…"` | `invalid_token` |
//! | [`Denial::InsufficientScope`] | 403 | `Bearer realm="keyless", error="insufficient_scope", error_description="…", scope="…"` | `insufficient_scope` |
//! | [`Denial::Unavailable`] | 503, `Retry-After: 1` | — | `temporarily_unavailable` |
//! | [`Denial::Misconfigured`] | 500 | — | `server_error` |
//!
//! The body is JSON: `{"error", "error_description"}` (plus `scope` for 403). The cause of a 503 or 500
//! is never sent to the caller: it is in the `Denial` (for the application's logs) and the layer logs it
//! once with `tracing`. Every answer is `Cache-Control: no-store`.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use serde_json::json;

/// The `realm` of every `WWW-Authenticate` challenge.
pub const REALM: &str = "keyless";

/// Why a request was refused. Every failure to decide is a refusal: the verifier fails closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// No bearer token: no `Authorization` header, or one with another scheme (`Basic …`).
    #[error("missing bearer token: send `Authorization: Bearer <keyless access token>`")]
    MissingToken,
    /// The token is malformed, unknown, expired or revoked; the text says which, as far as the
    /// caller may know.
    #[error("invalid bearer token: {0}")]
    InvalidToken(&'static str),
    /// The token is valid but lacks a scope the route needs (all of `required` are needed).
    #[error("the token lacks a required scope (needs {})", required.join(" "))]
    InsufficientScope {
        /// The scopes the route needs.
        required: Vec<String>,
    },
    /// The token could not be checked: keyless is unreachable or refused the resource server's own
    /// credential, or answered something unexpected. The text is the cause, for logs only.
    #[error("the token could not be checked: {0}")]
    Unavailable(String),
    /// The application is wired wrongly (e.g. a [`Principal`](super::Principal) extractor or a
    /// [`RequireScope`](super::RequireScope) layer without [`RequireToken`](super::RequireToken) in
    /// front of it). The text is the cause, for logs only.
    #[error("misconfigured resource server: {0}")]
    Misconfigured(&'static str),
}

impl Denial {
    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Misconfigured(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The RFC 6750 / RFC 6749 error code of the answer's body.
    pub fn error_code(&self) -> &'static str {
        match self {
            Self::MissingToken | Self::InvalidToken(_) => "invalid_token",
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::Unavailable(_) => "temporarily_unavailable",
            Self::Misconfigured(_) => "server_error",
        }
    }

    /// What the caller is told: the whole story for 401 and 403, a generic line for 503 and 500.
    pub fn description(&self) -> String {
        match self {
            Self::MissingToken | Self::InvalidToken(_) | Self::InsufficientScope { .. } => self.to_string(),
            Self::Unavailable(_) => "the token could not be checked; retry shortly".to_owned(),
            Self::Misconfigured(_) => "the request could not be completed".to_owned(),
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3), for 401 and 403.
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            Self::MissingToken => Some(format!("Bearer realm=\"{REALM}\"")),
            Self::InvalidToken(_) => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{}\"",
                quotable(&self.description())
            )),
            Self::InsufficientScope { required } => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", error_description=\"{}\", scope=\"{}\"",
                quotable(&self.description()),
                quotable(&required.join(" "))
            )),
            Self::Unavailable(_) | Self::Misconfigured(_) => None,
        }
    }

    /// The whole HTTP answer, with any body type that can be made from a `String` (axum's `Body`,
    /// `http_body_util::Full<Bytes>`, `String`, …).
    pub fn to_response<B: From<String>>(&self) -> Response<B> {
        let mut body = json!({ "error": self.error_code(), "error_description": self.description() });
        if let (Self::InsufficientScope { required }, Some(fields)) = (self, body.as_object_mut()) {
            fields.insert("scope".to_owned(), required.join(" ").into());
        }
        let mut response = Response::new(B::from(body.to_string()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = self
            .www_authenticate()
            .and_then(|text| HeaderValue::from_str(&text).ok())
        {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        if matches!(self, Self::Unavailable(_)) {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// `text` made safe inside an RFC 6750 quoted string: the characters it allows (`%x20-21 / %x23-5B /
/// %x5D-7E`), anything else replaced by `?`.
fn quotable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if matches!(c, ' ' | '!' | '#'..='[' | ']'..='~') {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn check(denial: Denial, status: u16, challenge: Option<&str>, body: serde_json::Value) {
        let response: Response<String> = denial.to_response();
        assert_eq!(response.status().as_u16(), status);
        let header = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .map(|value| value.to_str().unwrap().to_owned());
        assert_eq!(header.as_deref(), challenge);
        let got: serde_json::Value = serde_json::from_str(response.body()).unwrap();
        assert_eq!(got, body);
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    }

    #[test]
    fn denials_answer_per_rfc_6750() {
        check(
            Denial::MissingToken,
            401,
            Some("Bearer realm=\"keyless\""),
            json!({"error": "invalid_token", "error_description": "missing bearer token: send `Authorization: Bearer <keyless access token>`"}),
        );
        check(
            Denial::InvalidToken("unknown, expired or revoked"),
            401,
            Some(
                "Bearer realm=\"keyless\", error=\"invalid_token\", error_description=\"invalid bearer token: unknown, expired or revoked\"",
            ),
            json!({"error": "invalid_token", "error_description": "invalid bearer token: unknown, expired or revoked"}),
        );
        check(
            Denial::InsufficientScope {
                required: vec!["files:write".to_owned(), "x\"y".to_owned()],
            },
            403,
            Some(
                "Bearer realm=\"keyless\", error=\"insufficient_scope\", error_description=\"the token lacks a required scope (needs files:write x?y)\", scope=\"files:write x?y\"",
            ),
            json!({"error": "insufficient_scope", "error_description": "the token lacks a required scope (needs files:write x\"y)", "scope": "files:write x\"y"}),
        );
        check(
            Denial::Unavailable("connection refused to 10.0.0.1".to_owned()),
            503,
            None,
            json!({"error": "temporarily_unavailable", "error_description": "the token could not be checked; retry shortly"}),
        );
        check(
            Denial::Misconfigured("no layer"),
            500,
            None,
            json!({"error": "server_error", "error_description": "the request could not be completed"}),
        );
    }
}
