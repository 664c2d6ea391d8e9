//! Federation rules: the model, its write-time validation, and matching a token against it.
//!
//! Parts, in reading order: [`SubjectPattern`], [`Match`] (the `match` block and its evaluation),
//! [`RuleWorkspaces`], [`RuleSpec`] and [`Rule`] (validated), [`RuleDraft`] (the raw serde shape, first
//! parsing stage) and [`RuleDraft::validate`] (second stage), [`RuleError`].
//!
//! Matching (every populated matcher must pass, in this order; the first failure is the rejection):
//! - `subject_prefix`: exact equality with `sub`, or a prefix when it ends in `*`. Only a trailing `*` is
//!   special (`a*b` is literal), matching is case-sensitive, and a lone `*` matches any subject.
//! - `claims`: each entry equals a **top-level string** claim exactly. A claim of another type never
//!   matches, so `"runner_id": "5"` does not match the number `5`; nested claims are reached with a
//!   condition instead.
//! - `condition`: see [`crate::condition`].
//! - `audience` is enforced by claim validation ([`crate::claims`]) as the expected audience
//!   ([`Match::expected_audience`]), falling back to the server's default audience.
//!
//! Write-time validation refuses, with field-prefixed messages (`match.subject_prefix: must not be empty`):
//! malformed fields; a `match` with no identity constraint (a subject pattern other than `*`, a `claims`
//! entry, or a condition that is not true for an empty claim set — `audience` alone is not identity); and,
//! on a shared issuer ([`SharedIssuer`]), a `match` that does not pin the tenant.
//! Workspaces: at most one of `workspace_id`, `workspace_ids` and `applies_to_all_workspaces: true`; none
//! means the organization's default workspace.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::claims::ValidatedClaims;
use crate::condition::{Condition, ConditionError};
use crate::id::{IssuerId, OrganizationId, RuleId, ServiceAccountId, WorkspaceId, WorkspaceSelector};
use crate::issuer::{Issuer, SharedIssuer};
use crate::lifetime::TokenLifetime;
use crate::name::Name;
use crate::rejection::{Rejection, RejectionCode};
use crate::scope::ScopeSet;

/// A `subject_prefix`: any subject, one exact subject, or a prefix (written with a trailing `*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubjectPattern {
    /// `*`: no constraint.
    Any,
    /// No trailing `*`: the subject must equal it.
    Exact(String),
    /// A trailing `*`: the subject must start with the text before it.
    Prefix(String),
}

impl SubjectPattern {
    /// Parses a `subject_prefix`; empty text is refused.
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        match text {
            "" => Err(RuleError::invalid("match.subject_prefix", "must not be empty")),
            "*" => Ok(Self::Any),
            _ => Ok(text.strip_suffix('*').map_or_else(
                || Self::Exact(text.to_owned()),
                |prefix| Self::Prefix(prefix.to_owned()),
            )),
        }
    }

    /// Whether `subject` matches.
    pub fn matches(&self, subject: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(exact) => subject == exact,
            Self::Prefix(prefix) => subject.starts_with(prefix.as_str()),
        }
    }

    /// Whether it is the lone `*`.
    pub fn is_wildcard(&self) -> bool {
        matches!(self, Self::Any)
    }

    /// The text every matching subject starts with (the whole subject when exact; empty for `*`).
    pub fn fixed_part(&self) -> &str {
        match self {
            Self::Any => "",
            Self::Exact(text) | Self::Prefix(text) => text,
        }
    }
}

/// Written as configured: `*`, the exact subject, or the prefix followed by `*`.
impl fmt::Display for SubjectPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Exact(exact) => f.write_str(exact),
            Self::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

/// A rule's validated `match` block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Match {
    /// `subject_prefix`.
    pub subject_prefix: Option<SubjectPattern>,
    /// `audience`: the expected audience instead of the server's default.
    pub audience: Option<String>,
    /// `claims`: top-level string claims that must be equal.
    pub claims: BTreeMap<String, String>,
    /// `condition`, compiled.
    pub condition: Option<Condition>,
}

impl Match {
    /// The audience a token must carry: this rule's, else `default_audience`.
    pub fn expected_audience<'a>(&'a self, default_audience: &'a str) -> &'a str {
        self.audience.as_deref().unwrap_or(default_audience)
    }

    /// Whether it constrains the workload's identity (`audience` does not).
    pub fn constrains_identity(&self) -> bool {
        self.subject_prefix
            .as_ref()
            .is_some_and(|pattern| !pattern.is_wildcard())
            || !self.claims.is_empty()
            || self.condition.as_ref().is_some_and(Condition::counts_as_identity)
    }

    /// Whether it pins one tenant of `shared` (by subject pattern or tenant claim; never by condition).
    pub fn pins_tenant(&self, shared: SharedIssuer) -> bool {
        self.subject_prefix
            .as_ref()
            .is_some_and(|pattern| shared.subject_pins_tenant(pattern))
            || shared.claims_pin_tenant(&self.claims)
    }

    /// Checks the subject, the claims and the condition, in that order.
    pub fn check(&self, claims: &ValidatedClaims<'_>) -> Result<(), Rejection> {
        if let Some(pattern) = &self.subject_prefix {
            check_subject(pattern, claims.subject)?;
        }
        for (name, expected) in &self.claims {
            check_claim(name, expected, claims.all)?;
        }
        if let Some(condition) = &self.condition {
            check_condition(condition, claims.all)?;
        }
        Ok(())
    }
}

// One definition of each matcher, shared with `crate::simulate` (which runs them all).

/// `subject_prefix` against `sub`.
pub(crate) fn check_subject(pattern: &SubjectPattern, subject: &str) -> Result<(), Rejection> {
    if pattern.matches(subject) {
        return Ok(());
    }
    Err(Rejection::new(
        RejectionCode::SubjectMismatch,
        "match.subject_prefix",
        Some(Value::from(pattern.to_string())),
        Some(Value::from(subject)),
    ))
}

/// One `claims` entry: a top-level string claim equal to `expected`.
pub(crate) fn check_claim(name: &str, expected: &str, claims: &Map<String, Value>) -> Result<(), Rejection> {
    let seen = claims.get(name);
    if seen.and_then(Value::as_str) == Some(expected) {
        return Ok(());
    }
    Err(Rejection::new(
        RejectionCode::ClaimMismatch,
        format!("match.claims.{name}"),
        Some(Value::from(expected)),
        seen.cloned(),
    ))
}

/// The `condition`: true, else `condition_false` or `condition_error`.
pub(crate) fn check_condition(condition: &Condition, claims: &Map<String, Value>) -> Result<(), Rejection> {
    let failure = match condition.evaluate(claims) {
        Ok(true) => return Ok(()),
        Ok(false) => (RejectionCode::ConditionFalse, Value::from(false)),
        Err(error) => (error.code(), Value::from(error.to_string())),
    };
    let (code, seen) = failure;
    Err(Rejection::new(
        code,
        "match.condition",
        Some(Value::from(condition.source())),
        Some(seen),
    ))
}

/// The workspaces a rule is enabled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleWorkspaces {
    /// `applies_to_all_workspaces`.
    All,
    /// These workspaces.
    Listed(BTreeSet<WorkspaceId>),
}

impl RuleWorkspaces {
    /// Whether the rule is enabled in `workspace_id`.
    pub fn enables(&self, workspace_id: &WorkspaceId) -> bool {
        match self {
            Self::All => true,
            Self::Listed(workspace_ids) => workspace_ids.contains(workspace_id),
        }
    }
}

/// The validated content of a federation rule (what an admin writes).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// `name`.
    pub name: Name,
    /// `description`.
    pub description: Option<String>,
    /// `issuer_id`: the issuer whose tokens it accepts.
    pub issuer_id: IssuerId,
    /// `match`.
    pub r#match: Match,
    /// `target.service_account_id`.
    pub target: ServiceAccountId,
    /// `oauth_scope`: the most a token minted through it may hold.
    pub oauth_scope: ScopeSet,
    /// `token_lifetime_seconds`.
    pub token_lifetime: TokenLifetime,
    /// The workspaces it is enabled in.
    pub workspaces: RuleWorkspaces,
    /// `mode`: enforce (the default) or shadow.
    pub mode: RuleMode,
}

/// Whether a rule mints tokens (`enforce`) or only records what it would decide (`shadow`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum RuleMode {
    /// Matching exchanges get tokens.
    #[default]
    Enforce,
    /// Exchanges through it are evaluated in full and recorded as would-allow or would-deny, and
    /// refused with `rule_in_shadow_mode`: nothing is minted and no `jti` is burned.
    Shadow,
}

impl RuleMode {
    /// The wire name: `enforce` or `shadow`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Shadow => "shadow",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        match text {
            "enforce" => Ok(Self::Enforce),
            "shadow" => Ok(Self::Shadow),
            _ => Err(RuleError::invalid("mode", "must be `enforce` or `shadow`")),
        }
    }
}

/// A stored federation rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Its ID.
    pub id: RuleId,
    /// The organization it belongs to.
    pub organization_id: OrganizationId,
    /// Whether it is archived (archived rules stop exchanges at once).
    pub archived: bool,
    /// What it says.
    pub spec: RuleSpec,
}

/// The raw `match` block, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchDraft {
    /// `subject_prefix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_prefix: Option<String>,
    /// `audience`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// `claims`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<BTreeMap<String, String>>,
    /// `condition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// The raw `target` block, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetDraft {
    /// `type`: must be `service_account`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `service_account_id`.
    pub service_account_id: String,
}

/// A federation rule as written (the create body): the first, unvalidated parsing stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDraft {
    /// `name`.
    pub name: String,
    /// `description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `issuer_id`.
    pub issuer_id: String,
    /// `match`.
    pub r#match: MatchDraft,
    /// `target`.
    pub target: TargetDraft,
    /// `oauth_scope`, space-separated; absent means `workspace:developer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_scope: Option<String>,
    /// `token_lifetime_seconds`; absent means 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_lifetime_seconds: Option<i64>,
    /// `workspace_id` (`wrkspc_…` or `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// `workspace_ids`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_ids: Option<Vec<String>>,
    /// `applies_to_all_workspaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies_to_all_workspaces: Option<bool>,
    /// `mode`: `enforce` (absent) or `shadow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// Why a rule is refused at write time. Every message starts with the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// A field is malformed.
    #[error("{field}: {reason}")]
    InvalidField {
        /// The field, e.g. `match.subject_prefix`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The condition is refused.
    #[error("match.condition: {0}")]
    ConditionRefused(ConditionError),
    /// Nothing in `match` constrains the workload's identity.
    #[error(
        "match: an identity constraint is required: a subject_prefix other than \"*\", a claims entry, \
         or a condition that is not true for an empty claim set"
    )]
    NoIdentityConstraint,
    /// The issuer is shared and `match` does not pin one tenant.
    #[error("match: {issuer} is a shared issuer: pin the tenant with {}", .issuer.pin_hint())]
    TenantNotPinned {
        /// The shared issuer.
        issuer: SharedIssuer,
    },
}

impl RuleError {
    fn invalid(field: &'static str, reason: impl fmt::Display) -> Self {
        Self::InvalidField {
            field,
            reason: reason.to_string(),
        }
    }
}

impl RuleDraft {
    /// The parsed `issuer_id`, to look the issuer up before [`RuleDraft::validate`].
    pub fn issuer_id(&self) -> Result<IssuerId, RuleError> {
        IssuerId::parse(&self.issuer_id).map_err(|e| RuleError::invalid("issuer_id", e))
    }

    /// Validates the draft against its `issuer`; `default_workspace_id` is what `default` (or no
    /// workspace at all) means.
    pub fn validate(self, issuer: &Issuer, default_workspace_id: &WorkspaceId) -> Result<RuleSpec, RuleError> {
        let name = Name::parse(&self.name).map_err(|e| RuleError::invalid("name", e))?;
        let issuer_id = self.issuer_id()?;
        if issuer_id != issuer.id {
            return Err(RuleError::invalid(
                "issuer_id",
                "is not the issuer the rule is validated against",
            ));
        }
        let r#match = validate_match(self.r#match)?;
        if !r#match.constrains_identity() {
            return Err(RuleError::NoIdentityConstraint);
        }
        if let Some(shared) = issuer.shared().filter(|shared| !r#match.pins_tenant(*shared)) {
            return Err(RuleError::TenantNotPinned { issuer: shared });
        }
        if self.target.kind != "service_account" {
            return Err(RuleError::invalid("target.type", "must be `service_account`"));
        }
        let target = ServiceAccountId::parse(&self.target.service_account_id)
            .map_err(|e| RuleError::invalid("target.service_account_id", e))?;
        let oauth_scope = match self.oauth_scope {
            None => ScopeSet::default_grant(),
            Some(text) => {
                let scopes = ScopeSet::parse(&text).map_err(|e| RuleError::invalid("oauth_scope", e))?;
                if scopes.is_empty() {
                    return Err(RuleError::invalid("oauth_scope", "must not be empty"));
                }
                scopes
            }
        };
        let token_lifetime = self
            .token_lifetime_seconds
            .map_or(Ok(TokenLifetime::default()), |seconds| {
                TokenLifetime::new(seconds).map_err(|e| RuleError::invalid("token_lifetime_seconds", e))
            })?;
        let workspaces = validate_workspaces(
            self.workspace_id,
            self.workspace_ids,
            self.applies_to_all_workspaces.unwrap_or(false),
            default_workspace_id,
        )?;
        let mode = self.mode.as_deref().map_or(Ok(RuleMode::Enforce), RuleMode::parse)?;
        Ok(RuleSpec {
            name,
            description: self.description,
            issuer_id,
            r#match,
            target,
            oauth_scope,
            token_lifetime,
            workspaces,
            mode,
        })
    }
}

impl MatchDraft {
    /// Validates and compiles a `match` block alone: how a stored rule's block becomes a [`Match`]
    /// again (the identity and tenant-pin checks of [`RuleDraft::validate`] ran when it was written).
    pub fn compile(self) -> Result<Match, RuleError> {
        validate_match(self)
    }
}

fn validate_match(draft: MatchDraft) -> Result<Match, RuleError> {
    let subject_prefix = draft.subject_prefix.as_deref().map(SubjectPattern::parse).transpose()?;
    if draft.audience.as_deref() == Some("") {
        return Err(RuleError::invalid("match.audience", "must not be empty"));
    }
    let claims = draft.claims.unwrap_or_default();
    if claims.keys().any(String::is_empty) {
        return Err(RuleError::invalid("match.claims", "claim names must not be empty"));
    }
    let condition = draft
        .condition
        .as_deref()
        .map(Condition::compile)
        .transpose()
        .map_err(RuleError::ConditionRefused)?;
    Ok(Match {
        subject_prefix,
        audience: draft.audience,
        claims,
        condition,
    })
}

fn validate_workspaces(
    workspace_id: Option<String>,
    workspace_ids: Option<Vec<String>>,
    all: bool,
    default_workspace_id: &WorkspaceId,
) -> Result<RuleWorkspaces, RuleError> {
    let parse = |field: &'static str, text: &str| {
        WorkspaceSelector::parse(text)
            .map(|selector| selector.resolve(default_workspace_id).clone())
            .map_err(|_| {
                RuleError::invalid(
                    field,
                    "must be `default` or `wrkspc_` followed by 1 to 64 ASCII letters or digits",
                )
            })
    };
    match (workspace_id, workspace_ids, all) {
        (None, None, true) => Ok(RuleWorkspaces::All),
        (Some(workspace_id), None, false) => Ok(RuleWorkspaces::Listed(BTreeSet::from([parse(
            "workspace_id",
            &workspace_id,
        )?]))),
        (None, Some(workspace_ids), false) => {
            if workspace_ids.is_empty() {
                return Err(RuleError::invalid("workspace_ids", "must not be empty"));
            }
            let listed = workspace_ids
                .iter()
                .map(|text| parse("workspace_ids", text))
                .collect::<Result<_, _>>()?;
            Ok(RuleWorkspaces::Listed(listed))
        }
        (None, None, false) => Ok(RuleWorkspaces::Listed(BTreeSet::from([default_workspace_id.clone()]))),
        _ => Err(RuleError::invalid(
            "workspace_id",
            "set only one of workspace_id, workspace_ids and applies_to_all_workspaces",
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    fn check_subject(pattern: &str, subject: &str, matches: bool) {
        let parsed = SubjectPattern::parse(pattern).unwrap();
        assert_eq!(parsed.matches(subject), matches, "{pattern} vs {subject}");
        assert_eq!(parsed.to_string(), pattern);
    }

    #[test]
    fn subject_patterns() {
        check_subject(
            "repo:acme/api:ref:refs/heads/main",
            "repo:acme/api:ref:refs/heads/main",
            true,
        );
        check_subject(
            "repo:acme/api:ref:refs/heads/main",
            "repo:acme/api:ref:refs/heads/main2",
            false,
        );
        check_subject("repo:acme/*", "repo:acme/api:pull_request", true);
        check_subject("repo:acme/*", "repo:acme/", true);
        check_subject("repo:acme/*", "repo:acme-evil/api:pull_request", false);
        check_subject("repo:acme/*", "repo:ACME/api:pull_request", false);
        check_subject("repo:*/api", "repo:acme/api", false);
        check_subject("repo:*/api", "repo:*/api", true);
        check_subject("a**", "a*b", true);
        check_subject("a**", "ab", false);
        check_subject("*", "anything", true);
        check_subject("*", "", true);
        assert_eq!(
            SubjectPattern::parse("").unwrap_err().to_string(),
            "match.subject_prefix: must not be empty"
        );
    }
}
