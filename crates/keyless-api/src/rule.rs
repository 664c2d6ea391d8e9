//! Federation rules (`fdrl_…`): `/v1/organizations/federation_rules`, and the workspaces they are
//! enabled in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Audit;

/// A federation rule (`type: federation_rule`): which tokens of an issuer become which service account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FederationRule {
    /// `fdrl_…`.
    pub id: String,
    /// Always `federation_rule`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Unique per organization.
    pub name: String,
    /// At most 1024 characters.
    pub description: Option<String>,
    /// The issuer whose tokens it matches (immutable).
    pub issuer_id: String,
    /// What a token must carry.
    #[serde(rename = "match")]
    pub r#match: Match,
    /// Who a matching token becomes.
    pub target: Target,
    /// The scopes it grants at most, space-separated.
    pub oauth_scope: String,
    /// 60–86400: the longest lifetime of a token minted through it.
    pub token_lifetime_seconds: i64,
    /// The workspaces it is enabled in, sorted; empty when `applies_to_all_workspaces`.
    pub workspace_ids: Vec<String>,
    /// Whether it is enabled in every workspace.
    pub applies_to_all_workspaces: bool,
    /// `enforce` (mints tokens) or `shadow` (records what it would decide, mints nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The audit fields.
    #[serde(flatten)]
    pub audit: Audit,
    /// The lint warnings of a create or update (absent from reads): known mistakes the rule was saved
    /// with, each with a stable code (see `docs/rules.md`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<RuleWarning>,
}

/// One lint warning about a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleWarning {
    /// The stable code, e.g. `mutable_claim`.
    pub code: String,
    /// The field it is about, e.g. `match.claims.repository`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// A rule's `match` block, as written. Every populated matcher must pass.
///
/// Unset members serialize as `null`, as the server answers them (and accepts them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    /// `sub` equals it, or starts with it when it ends in `*`.
    #[serde(default)]
    pub subject_prefix: Option<String>,
    /// `aud` is it, or contains it.
    #[serde(default)]
    pub audience: Option<String>,
    /// Top-level claims that must equal these strings.
    #[serde(default)]
    pub claims: Option<BTreeMap<String, String>>,
    /// A CEL expression over `claims` that must be true.
    #[serde(default)]
    pub condition: Option<String>,
}

/// A rule's `target`: `{type: service_account, service_account_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Always `service_account`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The service account a matching token becomes.
    pub service_account_id: String,
}

impl Target {
    /// The target `{type: service_account, service_account_id}`.
    pub fn service_account(service_account_id: impl Into<String>) -> Self {
        Target {
            kind: "service_account".to_owned(),
            service_account_id: service_account_id.into(),
        }
    }
}

/// `POST /v1/organizations/federation_rules`. At most one of `workspace_id`, `workspace_ids` and
/// `applies_to_all_workspaces`; none means the default workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateFederationRule {
    /// `^[a-z0-9-]+$`, 1–255 characters.
    pub name: String,
    /// An optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The issuer (`fdis_…`).
    pub issuer_id: String,
    /// What a token must carry.
    #[serde(rename = "match")]
    pub r#match: Match,
    /// Who a matching token becomes.
    pub target: Target,
    /// Space-separated scopes; the server's default is `workspace:developer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_scope: Option<String>,
    /// 60–86400; the server's default is 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_lifetime_seconds: Option<i64>,
    /// One workspace (`wrkspc_…` or `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// Several workspaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_ids: Option<Vec<String>>,
    /// `true`: every workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies_to_all_workspaces: Option<bool>,
    /// `enforce` (the server's default) or `shadow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// `POST /v1/organizations/federation_rules/{id}`: a partial update; `match` and `target` are
/// replaced whole, and any of the workspace fields replaces the workspaces. The merged rule is
/// validated as a whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateFederationRule {
    /// The new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `Some(None)` clears the description (`null`), `Some(Some(_))` sets it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::nullable")]
    pub description: Option<Option<String>>,
    /// Immutable: accepted only unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_id: Option<String>,
    /// The new `match` block.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub r#match: Option<Match>,
    /// The new target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// The new scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_scope: Option<String>,
    /// The new lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_lifetime_seconds: Option<i64>,
    /// One workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// Several workspaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_ids: Option<Vec<String>>,
    /// Every workspace (`true`), or back to a list (`false`, with one of the other two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies_to_all_workspaces: Option<bool>,
    /// `enforce` or `shadow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// One workspace a rule is enabled in (`type: federation_rule_workspace`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleWorkspace {
    /// Always `federation_rule_workspace`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The rule.
    pub federation_rule_id: String,
    /// The workspace.
    pub workspace_id: String,
}

/// `GET …/federation_rules/{id}/workspaces`: never paged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleWorkspaces {
    /// The workspaces; empty when `applies_to_all_workspaces`.
    pub data: Vec<RuleWorkspace>,
    /// Whether the rule is enabled in every workspace.
    pub applies_to_all_workspaces: bool,
    /// Always `None`.
    pub next_page: Option<String>,
}

/// `POST …/federation_rules/{id}/workspaces`: enable the rule in one more workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddRuleWorkspace {
    /// `wrkspc_…` or `default`.
    pub workspace_id: String,
}

/// `POST /v1/organizations/federation_rules/simulate`: what the exchange would do with a token (or a
/// claim set) through one rule or through every live rule of an issuer. Exactly one of `token` and
/// `claims`, and exactly one of `rule_id` and `issuer_id`.
///
/// `Debug` never shows the token: it may still be valid.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulateRules {
    /// A compact JWT, as a workload would present it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A claim set, evaluated as if a token carrying it had verified (never `verified`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
    /// Whether the token's signature is checked against the issuer's keys; the server's default is
    /// `true` with a token. `false` decodes it without verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<bool>,
    /// One rule (`fdrl_…`), archived or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// Every live rule of this issuer (`fdis_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_id: Option<String>,
    /// The `workspace_id` the exchange request would carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// The `scope` the exchange request would carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The `service_account_id` the exchange request would carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_id: Option<String>,
}

impl std::fmt::Debug for SimulateRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulateRules")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("claims", &self.claims.as_ref().map(serde_json::Map::len))
            .field("verify", &self.verify)
            .field("rule_id", &self.rule_id)
            .field("issuer_id", &self.issuer_id)
            .field("workspace_id", &self.workspace_id)
            .field("scope", &self.scope)
            .field("service_account_id", &self.service_account_id)
            .finish()
    }
}

/// The answer of a simulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Simulation {
    /// Whether the token's signature verified against the issuer's keys (`false` for a claim set, for
    /// `verify: false`, and when verification failed).
    pub verified: bool,
    /// One result per rule.
    pub results: Vec<RuleSimulation>,
}

/// What the exchange would do through one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSimulation {
    /// The rule (`fdrl_…`).
    pub rule_id: String,
    /// Its name.
    pub rule_name: String,
    /// `would_grant` or `would_reject`.
    pub verdict: String,
    /// The rejection code the exchange would answer with (`error_code`); `None` for a grant.
    pub code: Option<String>,
    /// The scope that would be granted.
    pub scope: Option<String>,
    /// The lifetime of the token that would be minted.
    pub token_lifetime_seconds: Option<i64>,
    /// The workspace the token would be bound to.
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// The service account it would act as.
    #[serde(default)]
    pub service_account_id: Option<String>,
    /// Every check, in the order the exchange makes them.
    pub checks: Vec<SimulationCheck>,
}

impl RuleSimulation {
    /// Whether the exchange would grant a token.
    pub fn would_grant(&self) -> bool {
        self.verdict == "would_grant"
    }
}

/// One check of a simulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulationCheck {
    /// What was checked: `iss`, `aud`, `exp`, `match.subject_prefix`, `match.claims.<name>`, `scope`, …
    pub check: String,
    /// Whether it passed.
    pub passed: bool,
    /// The rejection code of a failure.
    #[serde(default)]
    pub code: Option<String>,
    /// What it expected.
    #[serde(default)]
    pub expected: Option<serde_json::Value>,
    /// What it saw (`None`: absent).
    #[serde(default)]
    pub seen: Option<serde_json::Value>,
}

/// `POST /v1/organizations/federation_rules/validate`'s answer: the create body is valid (a refusal is
/// the create's own 400, 404 or 409), with the lint warnings a create would return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleValidation {
    /// Always `true`: an invalid body is refused instead.
    pub valid: bool,
    /// The lint warnings.
    pub warnings: Vec<RuleWarning>,
}

/// `POST /v1/organizations/federation_rules/replay`: an issuer's most recent refused exchanges run
/// again through a draft rule (`rule`, a create body, saved nowhere) or a stored one (`rule_id`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRules {
    /// The draft.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<CreateFederationRule>,
    /// A stored rule (`fdrl_…`), as it is now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// How many of the newest refused exchanges (1–500; the server's default: 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// The answer of a replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replay {
    /// The rule replayed: `id` is `None` for a draft.
    pub rule: ReplayedRule,
    /// The draft's lint warnings (none for a stored rule).
    pub warnings: Vec<RuleWarning>,
    /// How many refused exchanges were replayed.
    pub replayed: u64,
    /// How many got each verdict.
    pub summary: ReplaySummary,
    /// How many exchange events were looked through.
    pub scanned_events: u64,
    /// Whether the feed held no older exchange event (else older refusals may exist).
    pub history_exhausted: bool,
    /// The replayed exchanges, newest first.
    pub data: Vec<ReplayedExchange>,
}

/// The rule a replay ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayedRule {
    /// `fdrl_…`; `None` for a draft.
    pub id: Option<String>,
    /// Its name.
    pub name: String,
    /// Its issuer, whose refused exchanges were replayed.
    pub issuer_id: String,
}

/// The number of replayed exchanges per verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplaySummary {
    /// Verified tokens the rule would now let through.
    pub would_pass: u64,
    /// Tokens whose signature never verified, whose claims the rule would admit.
    pub would_pass_if_verified: u64,
    /// Refused again.
    pub would_reject: u64,
    /// Not judged: a used `jti`, an undecodable token, truncated claims, a malformed request.
    pub not_replayable: u64,
}

/// What the exchange was told then, and what the rule says now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayedOriginal {
    /// The code it was refused with.
    pub code: String,
    /// The rule it named, when it named one that exists.
    pub federation_rule_id: Option<String>,
}

/// One refused exchange, replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayedExchange {
    /// Its activity event (`actv_…`).
    pub activity_id: String,
    /// When it was refused.
    pub created_at: String,
    /// Its request.
    pub request_id: Option<String>,
    /// How it was refused.
    pub original: ReplayedOriginal,
    /// The token's `sub`.
    pub subject: Option<serde_json::Value>,
    /// Whether its signature had verified.
    pub verified: bool,
    /// `would_pass`, `would_pass_if_verified`, `would_reject` or `not_replayable`.
    pub verdict: String,
    /// Why it is `not_replayable`.
    #[serde(default)]
    pub reason: Option<String>,
    /// The code it would be refused with now.
    #[serde(default)]
    pub code: Option<String>,
    /// The scope it would be granted.
    #[serde(default)]
    pub scope: Option<String>,
    /// The lifetime of the token it would get.
    #[serde(default)]
    pub token_lifetime_seconds: Option<i64>,
    /// The workspace it would be bound to.
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// The service account it would act as.
    #[serde(default)]
    pub service_account_id: Option<String>,
    /// Every check, as a simulation lists them.
    #[serde(default)]
    pub checks: Vec<SimulationCheck>,
}
