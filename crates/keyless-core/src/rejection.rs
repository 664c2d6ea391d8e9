//! Rejections: why an exchange is refused, in two audiences.
//!
//! Parts: [`RejectionCode`] (every stable code, verification failures included, in one enum),
//! [`OAuthError`] (the RFC 6749 `error` a code maps to), [`RejectionDetail`] (`check`, `expected`, `seen`)
//! and [`Rejection`].
//!
//! The caller learns the code and a fixed message that never carries a rule's expected values; the
//! detail, with the expected and seen values, is for the activity feed only. This module does not decide
//! HTTP statuses: the server maps [`OAuthError`] in one place.

use serde::Serialize;
use serde_json::Value;

/// The RFC 6749 §5.2 `error` of a rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthError {
    /// `invalid_request`: the request itself is malformed or incomplete.
    InvalidRequest,
    /// `invalid_grant`: the assertion is not acceptable for this rule.
    InvalidGrant,
    /// `invalid_scope`: no acceptable scope remains.
    InvalidScope,
    /// `unsupported_grant_type`: the `grant_type` is not one the token endpoint serves.
    UnsupportedGrantType,
}

impl OAuthError {
    /// The RFC 6749 spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidGrant => "invalid_grant",
            Self::InvalidScope => "invalid_scope",
            Self::UnsupportedGrantType => "unsupported_grant_type",
        }
    }
}

macro_rules! rejection_codes {
    ($($(#[$doc:meta])* $variant:ident = $code:literal, $oauth:ident, $message:literal;)*) => {
        /// A stable rejection code: the `error_code` callers and the activity feed see.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum RejectionCode {
            $($(#[$doc])* $variant,)*
        }

        impl RejectionCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [RejectionCode] = &[$(Self::$variant,)*];

            /// The stable code, e.g. `subject_mismatch`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)*
                }
            }

            /// The OAuth error this code is reported under.
            pub fn oauth_error(self) -> OAuthError {
                match self {
                    $(Self::$variant => OAuthError::$oauth,)*
                }
            }

            /// A message safe to show the caller: it names the failed check, never an expected value.
            pub fn message(self) -> &'static str {
                match self {
                    $(Self::$variant => $message,)*
                }
            }
        }
    };
}

rejection_codes! {
    /// The request is malformed: a missing field or a malformed ID.
    MalformedRequest = "malformed_request", InvalidRequest, "the request is malformed";
    /// The `grant_type` is neither `jwt-bearer` (RFC 7523) nor `token-exchange` (RFC 8693).
    UnsupportedGrantType = "unsupported_grant_type", UnsupportedGrantType,
        "the grant_type is not supported: use urn:ietf:params:oauth:grant-type:jwt-bearer or urn:ietf:params:oauth:grant-type:token-exchange";
    /// No `workspace_id` while the rule is enabled in several workspaces.
    WorkspaceIdRequired = "workspace_id_required", InvalidRequest,
        "workspace_id is required: the federation rule is enabled in more than one workspace";
    /// The assertion is not a well-formed compact JWS with a JSON claim set.
    MalformedToken = "malformed_token", InvalidGrant, "the assertion is not a well-formed JWT";
    /// The assertion is larger than allowed.
    TokenTooLarge = "token_too_large", InvalidGrant, "the assertion is too large";
    /// The assertion's `alg` is not an allowed asymmetric algorithm.
    AlgorithmNotAllowed = "algorithm_not_allowed", InvalidGrant,
        "the assertion's signing algorithm is not allowed";
    /// No key of the issuer's JWKS matches the assertion's `kid` and algorithm.
    KeyNotFound = "key_not_found", InvalidGrant, "no key of the issuer matches the assertion";
    /// The issuer's keys could not be fetched and none are cached.
    JwksUnavailable = "jwks_unavailable", InvalidGrant, "the issuer's keys are unavailable";
    /// The signature does not verify.
    InvalidSignature = "invalid_signature", InvalidGrant, "the assertion's signature is invalid";
    /// `iss` is not the federation issuer's `issuer_url`.
    IssuerMismatch = "issuer_mismatch", InvalidGrant,
        "the token's issuer does not match the federation issuer";
    /// The expected audience is not in `aud`.
    AudienceMismatch = "audience_mismatch", InvalidGrant, "the token's audience does not match";
    /// `sub` does not match the rule's `subject_prefix`.
    SubjectMismatch = "subject_mismatch", InvalidGrant,
        "the token's subject does not match the federation rule";
    /// A claim does not equal the rule's `claims` entry.
    ClaimMismatch = "claim_mismatch", InvalidGrant, "a token claim does not match the federation rule";
    /// The rule's condition evaluated to false.
    ConditionFalse = "condition_false", InvalidGrant,
        "the token does not satisfy the federation rule's condition";
    /// The rule's condition failed to evaluate or did not yield a boolean.
    ConditionError = "condition_error", InvalidGrant,
        "the federation rule's condition could not be evaluated for this token";
    /// `exp` is in the past (beyond the leeway).
    TokenExpired = "token_expired", InvalidGrant, "the token has expired";
    /// `nbf` is in the future (beyond the leeway).
    TokenNotYetValid = "token_not_yet_valid", InvalidGrant, "the token is not yet valid";
    /// `iat` is in the future (beyond the leeway).
    TokenIssuedInFuture = "token_issued_in_future", InvalidGrant, "the token is issued in the future";
    /// `exp − iat` exceeds the issuer's `max_jwt_lifetime_seconds`.
    TokenLifetimeExceedsMaximum = "token_lifetime_exceeds_maximum", InvalidGrant,
        "the token's lifetime exceeds the issuer's maximum";
    /// A required claim (`iss`, `sub`, `aud`, `exp`, `iat`) is absent.
    MissingClaim = "missing_claim", InvalidGrant, "a required claim is missing from the token";
    /// A registered claim has the wrong type or an impossible value.
    InvalidClaim = "invalid_claim", InvalidGrant, "a token claim has an invalid type or value";
    /// The token's `jti` was already exchanged (reported by the server's store).
    JtiReused = "jti_reused", InvalidGrant, "the token has already been used";
    /// The rule does not exist, is archived, belongs to another organization, or uses another issuer:
    /// merged so callers cannot enumerate rules.
    RuleNotFound = "rule_not_found", InvalidGrant,
        "the federation rule does not exist or does not apply to this request";
    /// The requested service account is not the rule's target.
    ServiceAccountMismatch = "service_account_mismatch", InvalidGrant,
        "the service account is not the federation rule's target";
    /// The target service account is archived.
    ServiceAccountArchived = "service_account_archived", InvalidGrant, "the service account is archived";
    /// The requested workspace is not one the rule is enabled in.
    WorkspaceNotEnabled = "workspace_not_enabled", InvalidGrant,
        "the federation rule is not enabled in the requested workspace";
    /// The requested scope is malformed, or nothing remains of it.
    InvalidScope = "invalid_scope", InvalidScope, "the requested scope is invalid or not granted";
    /// The rule is in shadow mode: it records what it would decide and never mints.
    RuleInShadowMode = "rule_in_shadow_mode", InvalidGrant,
        "the federation rule is in shadow mode: it records what it would decide and never issues tokens";
}

/// What failed, for the activity feed: never shown to the caller.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectionDetail {
    /// The check that failed: a claim (`exp`), a rule field (`match.claims.repository_owner`), or an
    /// object field (`rule.archived`).
    pub check: String,
    /// What the check expected, when there is a value to show.
    pub expected: Option<Value>,
    /// What was seen instead; `None` when the value was absent.
    pub seen: Option<Value>,
}

/// A refused exchange: a stable code for the caller and a detail for the activity feed.
///
/// `Display` is the caller-safe message; `Debug` includes the detail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", .code.message())]
pub struct Rejection {
    code: RejectionCode,
    detail: RejectionDetail,
}

impl Rejection {
    /// A rejection with `code`, after `check` expected `expected` and saw `seen`.
    pub fn new(code: RejectionCode, check: impl Into<String>, expected: Option<Value>, seen: Option<Value>) -> Self {
        Self {
            code,
            detail: RejectionDetail {
                check: check.into(),
                expected,
                seen,
            },
        }
    }

    /// The rejection of a token that failed verification in `keyless-jose`. The detail names the
    /// precise JOSE check (`jws.kid_not_found`, …) and its explanation, for the activity feed.
    pub fn from_verification(error: &keyless_jose::JwsError) -> Self {
        use keyless_jose::JwsError as E;
        let code = match error {
            E::TooLarge { .. } => RejectionCode::TokenTooLarge,
            E::AlgNone(_) | E::AlgSymmetric(_) | E::AlgUnsupported(_) | E::KeyAlgorithmMismatch { .. } => {
                RejectionCode::AlgorithmNotAllowed
            }
            E::KidNotFound { .. } | E::KidAmbiguous { .. } => RejectionCode::KeyNotFound,
            E::BadSignatureLength { .. } | E::BadSignature { .. } => RejectionCode::InvalidSignature,
            E::JsonSerialization
            | E::Segments(_)
            | E::Base64(_)
            | E::InvalidJson { .. }
            | E::NotAnObject(_)
            | E::DuplicateMember { .. }
            | E::TooDeep { .. }
            | E::NulInString(_)
            | E::AlgMissing
            | E::CritUnsupported
            | E::B64Unsupported
            | E::InvalidKid => RejectionCode::MalformedToken,
        };
        Self::new(
            code,
            format!("jws.{}", error.code()),
            None,
            Some(Value::from(error.to_string())),
        )
    }

    /// The `jti_reused` rejection the server reports when recording the grant's `jti` conflicts.
    pub fn jti_reused(jti: &str) -> Self {
        Self::new(RejectionCode::JtiReused, "jti", None, Some(Value::from(jti)))
    }

    /// The stable code.
    pub fn code(&self) -> RejectionCode {
        self.code
    }

    /// The OAuth error to report.
    pub fn oauth_error(&self) -> OAuthError {
        self.code.oauth_error()
    }

    /// The caller-safe message.
    pub fn message(&self) -> &'static str {
        self.code.message()
    }

    /// The detail for the activity feed.
    pub fn detail(&self) -> &RejectionDetail {
        &self.detail
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_serialize_as_their_code() {
        let mut seen = HashSet::new();
        for code in RejectionCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{text}");
            assert_eq!(serde_json::to_value(code).ok(), Some(Value::from(text)));
            let message = code.message();
            assert!(
                !message.ends_with('.') && message.starts_with(|c: char| c.is_lowercase()),
                "{message}"
            );
        }
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn verification_failures_map_to_exchange_codes() {
        use keyless_jose::{Algorithm, Jwks, Limits, SigningKey};
        let signer = SigningKey::generate(Algorithm::Es256).unwrap();
        let stranger = SigningKey::generate(Algorithm::Es256).unwrap();
        let jwks = Jwks::from_keys(vec![signer.verifying_key().clone()]);
        let claims = serde_json::Map::new();
        let good = signer.sign_jwt(&claims).unwrap();
        let mut forged_header = serde_json::Map::new();
        forged_header.insert("alg".into(), "ES256".into());
        forged_header.insert("kid".into(), signer.kid().into());
        let forged = stranger.sign_compact(&forged_header, b"{}").unwrap();
        let check = |token: &str, code: RejectionCode, check: &str| {
            let err = keyless_jose::verify_jwt(token, &jwks, &Limits::default()).err();
            let rejection = err.as_ref().map(Rejection::from_verification);
            assert_eq!(rejection.as_ref().map(Rejection::code), Some(code), "{token}");
            assert_eq!(rejection.map(|r| r.detail().check.clone()).as_deref(), Some(check));
        };
        assert!(keyless_jose::verify_jwt(&good, &jwks, &Limits::default()).is_ok());
        check(&forged, RejectionCode::InvalidSignature, "jws.bad_signature");
        check(
            &stranger.sign_jwt(&claims).unwrap(),
            RejectionCode::KeyNotFound,
            "jws.kid_not_found",
        );
        check(
            "eyJhbGciOiJub25lIn0.e30.",
            RejectionCode::AlgorithmNotAllowed,
            "jws.alg_none",
        );
        check(
            "eyJhbGciOiJIUzI1NiJ9.e30.AA",
            RejectionCode::AlgorithmNotAllowed,
            "jws.alg_symmetric",
        );
        check("a.b", RejectionCode::MalformedToken, "jws.malformed_segments");
        check(
            &"a".repeat(17 * 1024),
            RejectionCode::TokenTooLarge,
            "jws.token_too_large",
        );
    }

    #[test]
    fn oauth_errors() {
        let check = |code: RejectionCode, expect: &str| assert_eq!(code.oauth_error().as_str(), expect);
        check(RejectionCode::WorkspaceIdRequired, "invalid_request");
        check(RejectionCode::MalformedRequest, "invalid_request");
        check(RejectionCode::InvalidScope, "invalid_scope");
        check(RejectionCode::RuleNotFound, "invalid_grant");
        check(RejectionCode::JtiReused, "invalid_grant");
    }

    #[test]
    fn display_is_the_caller_safe_message() {
        let rejection = Rejection::new(
            RejectionCode::SubjectMismatch,
            "match.subject_prefix",
            Some(Value::from("repo:acme/*")),
            Some(Value::from("repo:evil/x")),
        );
        assert_eq!(
            rejection.to_string(),
            "the token's subject does not match the federation rule"
        );
        assert!(!rejection.to_string().contains("acme"));
    }
}
