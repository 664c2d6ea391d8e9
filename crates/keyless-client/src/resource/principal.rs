//! [`Principal`]: who presented a token and what it may do, read from keyless's introspection answer.

use serde::{Deserialize, Serialize};

use super::Denial;

/// The caller behind a verified keyless access token.
///
/// Built from keyless's RFC 7662 introspection answer (`POST /v1/oauth/introspect`) for an active token.
/// In a handler behind [`RequireToken`](super::RequireToken), take it as an extractor; check scopes
/// with [`Principal::require_scope`] or with a [`RequireScope`](super::RequireScope) layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The keyless organization that issued the token (`organization_id`).
    pub organization_id: String,
    /// The workspace the token is bound to (`workspace_id`), when it is bound to one.
    pub workspace_id: Option<String>,
    /// The service account the token was issued for (`sub`, `svac_…`); `None` only for a token bound
    /// to no service account (the bootstrap admin token).
    pub service_account_id: Option<String>,
    /// The federation rule whose exchange issued the token (`federation_rule_id`), when there was one.
    pub federation_rule_id: Option<String>,
    /// The granted scopes, in the order keyless reports them.
    pub scopes: Vec<String>,
    /// When the token was issued (`iat`, Unix seconds), when given.
    pub issued_at: Option<i64>,
    /// When the token expires (`exp`, Unix seconds); the verifier refuses it from this second on.
    pub expires_at: i64,
}

impl Principal {
    /// Whether the token holds `scope` (exact match; scopes are case-sensitive).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|held| held == scope)
    }

    /// `Ok` when the token holds every scope in `scopes`; otherwise [`Denial::InsufficientScope`]
    /// naming all of them (a 403 with `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"`
    /// when returned from an axum handler).
    pub fn require_scopes<S: AsRef<str>>(&self, scopes: &[S]) -> Result<(), Denial> {
        if scopes.iter().all(|scope| self.has_scope(scope.as_ref())) {
            Ok(())
        } else {
            Err(Denial::InsufficientScope {
                required: scopes.iter().map(|scope| scope.as_ref().to_owned()).collect(),
            })
        }
    }

    /// `Ok` when the token holds `scope`; otherwise [`Denial::InsufficientScope`].
    pub fn require_scope(&self, scope: &str) -> Result<(), Denial> {
        self.require_scopes(&[scope])
    }
}
