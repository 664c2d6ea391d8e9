//! Scopes: what a minted token may do, and how the granted scope is computed.
//!
//! Parts: [`Scope`] (one RFC 6749 scope token), [`ScopeSet`] (space-separated, deduplicated,
//! first-occurrence order), [`ScopeError`], [`effective_scope`].
//!
//! Known scopes: [`WORKSPACE_DEVELOPER`] (the default grant), [`WORKSPACE_INFERENCE`], [`ORG_ADMIN`],
//! [`OAUTH_INTROSPECT`] (a resource server's least privilege: token introspection only). Any
//! other syntactically valid scope token (`%x21 / %x23-5B / %x5D-7E`, 1 to 128 bytes) is accepted too, so
//! operators can define their own later; [`Scope::is_known`] tells them apart.
//!
//! Role cap: every scope in the `org:` namespace (so `org:admin`) needs `organization_role = admin`;
//! the others are open to every role.
//!
//! Effective scope = requested ∩ rule ∩ role-allowed, in the request's order. Requested scopes outside
//! the rule are dropped rather than refused (RFC 6749 §3.3 narrowing; the response reports what was
//! granted). No request scope (absent or empty) means everything the rule grants. An empty result is the
//! rejection `invalid_scope`.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::rejection::{Rejection, RejectionCode};
use crate::service_account::OrganizationRole;

/// `workspace:developer`: everything an API key of the workspace can do (the default grant).
pub const WORKSPACE_DEVELOPER: &str = "workspace:developer";
/// `workspace:inference`: the inference endpoints only.
pub const WORKSPACE_INFERENCE: &str = "workspace:inference";
/// `org:admin`: the Admin API; needs an admin service account.
pub const ORG_ADMIN: &str = "org:admin";
/// `oauth:introspect`: `POST /v1/oauth/introspect` and nothing else, for resource servers that check the
/// tokens presented to them. Outside the `org:` namespace, so a service account of any role may hold it.
pub const OAUTH_INTROSPECT: &str = "oauth:introspect";

/// The namespace whose scopes need an admin.
const ORG_NAMESPACE: &str = "org:";

/// Why text is not a scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// A token has a character outside the RFC 6749 scope-token set, or is too long.
    #[error("`{0}` is not a scope token (1 to 128 printable ASCII characters, no space, `\"` or `\\`)")]
    InvalidToken(String),
    /// No scope token at all where one is required.
    #[error("must not be empty")]
    Empty,
}

/// One scope token.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(String);

impl Scope {
    /// Longest scope token accepted, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Parses one scope token.
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        let valid = (1..=Self::MAX_LEN).contains(&text.len())
            && text.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E));
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(ScopeError::InvalidToken(text.to_owned()))
        }
    }

    /// The scope as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it is one of the scopes keyless itself defines.
    pub fn is_known(&self) -> bool {
        [WORKSPACE_DEVELOPER, WORKSPACE_INFERENCE, ORG_ADMIN, OAUTH_INTROSPECT].contains(&self.as_str())
    }

    /// Whether a service account with `role` may hold it.
    pub fn allowed_for(&self, role: OrganizationRole) -> bool {
        !self.0.starts_with(ORG_NAMESPACE) || role == OrganizationRole::Admin
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A set of scopes: deduplicated, in first-occurrence order, written space-separated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    /// Parses space-separated scope tokens (runs of spaces and surrounding spaces are tolerated);
    /// duplicates are dropped, keeping the first. Empty text is the empty set.
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        let mut scopes: Vec<Scope> = Vec::new();
        for token in text.split(' ').filter(|token| !token.is_empty()) {
            let scope = Scope::parse(token)?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        Ok(Self(scopes))
    }

    /// The default grant of a rule: `workspace:developer`.
    pub fn default_grant() -> Self {
        Self(vec![Scope(WORKSPACE_DEVELOPER.to_owned())])
    }

    /// Whether it holds no scope.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many scopes it holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it holds `scope`.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|held| held.as_str() == scope)
    }

    /// Its scopes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// The scopes of `self` that `other` also holds, in `self`'s order.
    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.iter().filter(|scope| other.0.contains(scope)).cloned().collect())
    }

    /// The scopes of `self` that `role` may hold, in order.
    pub fn allowed_for(&self, role: OrganizationRole) -> ScopeSet {
        Self(self.0.iter().filter(|scope| scope.allowed_for(role)).cloned().collect())
    }
}

impl TryFrom<String> for ScopeSet {
    type Error = ScopeError;

    fn try_from(text: String) -> Result<Self, ScopeError> {
        Self::parse(&text)
    }
}

impl From<ScopeSet> for String {
    fn from(scopes: ScopeSet) -> String {
        scopes.to_string()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (idx, scope) in self.0.iter().enumerate() {
            if idx > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

/// The scope to grant: `requested` (absent or empty: everything) ∩ `granted_by_rule` ∩ what `role`
/// allows, in the request's order; an empty result is `invalid_scope`.
pub fn effective_scope(
    requested: Option<&ScopeSet>,
    granted_by_rule: &ScopeSet,
    role: OrganizationRole,
) -> Result<ScopeSet, Rejection> {
    let allowed = granted_by_rule.allowed_for(role);
    let effective = match requested.filter(|requested| !requested.is_empty()) {
        Some(requested) => requested.intersection(&allowed),
        None => allowed.clone(),
    };
    if effective.is_empty() {
        return Err(Rejection::new(
            RejectionCode::InvalidScope,
            "scope",
            Some(Value::from(allowed.to_string())),
            requested.map(|requested| Value::from(requested.to_string())),
        ));
    }
    Ok(effective)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    fn check_parse(text: &str, expect: Result<&str, &str>) {
        let res = ScopeSet::parse(text)
            .map(|scopes| scopes.to_string())
            .map_err(|e| e.to_string());
        assert_eq!(
            res.as_ref().map(String::as_str).map_err(String::as_str),
            expect,
            "{text:?}"
        );
    }

    #[test]
    fn parsing() {
        check_parse("workspace:developer", Ok("workspace:developer"));
        check_parse(
            "org:admin workspace:inference org:admin",
            Ok("org:admin workspace:inference"),
        );
        check_parse("  a   b ", Ok("a b"));
        check_parse("", Ok(""));
        check_parse("custom:billing.read", Ok("custom:billing.read"));
        check_parse(
            "a\"b",
            Err("`a\"b` is not a scope token (1 to 128 printable ASCII characters, no space, `\"` or `\\`)"),
        );
        check_parse(
            "a\\b",
            Err("`a\\b` is not a scope token (1 to 128 printable ASCII characters, no space, `\"` or `\\`)"),
        );
        check_parse(
            "a\tb",
            Err("`a\tb` is not a scope token (1 to 128 printable ASCII characters, no space, `\"` or `\\`)"),
        );
        assert!(ScopeSet::parse("é").is_err());
        assert!(ScopeSet::parse(&"a".repeat(129)).is_err());
    }

    #[test]
    fn known_scopes_and_role_caps() {
        let scope = |text: &str| Scope::parse(text).unwrap();
        assert!(scope(WORKSPACE_DEVELOPER).is_known());
        assert!(!scope("custom:x").is_known());
        assert!(!scope(ORG_ADMIN).allowed_for(OrganizationRole::Developer));
        assert!(scope(ORG_ADMIN).allowed_for(OrganizationRole::Admin));
        assert!(!scope("org:billing").allowed_for(OrganizationRole::Developer));
        assert!(scope(WORKSPACE_INFERENCE).allowed_for(OrganizationRole::Developer));
        assert!(scope(OAUTH_INTROSPECT).is_known());
        assert!(scope(OAUTH_INTROSPECT).allowed_for(OrganizationRole::Developer));
    }

    fn check_effective(requested: Option<&str>, rule: &str, role: OrganizationRole, expect: Result<&str, ()>) {
        let requested = requested.map(|text| ScopeSet::parse(text).unwrap());
        let rule = ScopeSet::parse(rule).unwrap();
        let res = effective_scope(requested.as_ref(), &rule, role);
        match expect {
            Ok(scopes) => assert_eq!(res.unwrap().to_string(), scopes),
            Err(()) => assert_eq!(res.unwrap_err().code(), RejectionCode::InvalidScope),
        }
    }

    #[test]
    fn effective() {
        use OrganizationRole::{Admin, Developer};
        let rule = "workspace:developer workspace:inference";
        check_effective(None, rule, Developer, Ok(rule));
        check_effective(Some(""), rule, Developer, Ok(rule));
        check_effective(Some("workspace:inference"), rule, Developer, Ok("workspace:inference"));
        check_effective(
            Some("workspace:inference org:admin"),
            rule,
            Developer,
            Ok("workspace:inference"),
        );
        check_effective(
            Some("workspace:inference workspace:developer"),
            rule,
            Developer,
            Ok("workspace:inference workspace:developer"),
        );
        check_effective(Some("org:admin"), rule, Admin, Err(()));
        check_effective(None, "org:admin", Developer, Err(()));
        check_effective(
            None,
            "org:admin workspace:developer",
            Developer,
            Ok("workspace:developer"),
        );
        check_effective(
            Some("org:admin"),
            "org:admin workspace:developer",
            Admin,
            Ok("org:admin"),
        );
    }
}
