//! The exchange decision: given a request, the stored objects it names and the verified claims of its
//! assertion, grant a token or reject — pure, with `now` as a parameter.
//!
//! Parts: [`ExchangeRequest`], [`ExchangeContext`], [`Grant`], [`decide`].
//!
//! Order of checks (the first failure is the rejection):
//! 1. consistency: the rule is the one requested, in the request's organization, not archived, on this
//!    issuer; the issuer and the service account are in the same organization and the issuer is not
//!    archived — all reported as one code, `rule_not_found`, so callers cannot enumerate rules (the detail
//!    says which check failed);
//! 2. the claims ([`crate::claims::validate`]) with the rule's audience or the server's default;
//! 3. the rule's `match` ([`crate::rule::Match::check`]);
//! 4. the service account: the requested one (if any) and the one given must be the rule's target
//!    (`service_account_mismatch`), not archived (`service_account_archived`);
//! 5. the workspace: a requested `workspace_id` (`default` resolved) must be enabled on the rule
//!    (`workspace_not_enabled`); without one, a rule enabled in exactly one workspace uses it, and a rule
//!    enabled in several — or in all — needs one (`workspace_id_required`);
//! 6. the scope ([`crate::scope::effective_scope`]) and the lifetime ([`crate::lifetime`]).
//!
//! Replay: when the issuer's `check_jti` is on and the token has a `jti`, the grant carries it with the
//! time until which it must be remembered (`exp` + leeway, after which the token is expired anyway). The
//! server records it with a unique insert before returning the token, and reports a conflict as
//! [`crate::rejection::Rejection::jti_reused`]. The store is not this module's business.

use serde_json::{Map, Value};

use crate::claims::{self, ClaimExpectations};
use crate::id::{OrganizationId, RuleId, ServiceAccountId, WorkspaceId, WorkspaceSelector};
use crate::issuer::Issuer;
use crate::rejection::{Rejection, RejectionCode};
use crate::rule::{Rule, RuleWorkspaces};
use crate::scope::{self, ScopeSet};
use crate::service_account::ServiceAccount;

/// What the workload asked for (`POST /v1/oauth/token`), the assertion aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeRequest {
    /// `federation_rule_id`: the rule the client names (the server never searches).
    pub federation_rule_id: RuleId,
    /// `organization_id`.
    pub organization_id: OrganizationId,
    /// `service_account_id`: absent means the rule's target.
    pub service_account_id: Option<ServiceAccountId>,
    /// `workspace_id`.
    pub workspace_id: Option<WorkspaceSelector>,
    /// `scope`: absent or empty means everything the rule grants.
    pub scope: Option<ScopeSet>,
}

/// What the server knows that the request does not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeContext<'a> {
    /// The audience expected when the rule sets none: the server's public URL.
    pub default_audience: &'a str,
    /// The organization's default workspace (what `default` means).
    pub default_workspace_id: &'a WorkspaceId,
    /// Clock-skew allowance for `exp`, `nbf` and `iat` ([`crate::claims::DEFAULT_LEEWAY_SECONDS`]).
    pub leeway_seconds: i64,
}

/// An accepted exchange: what to mint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The organization.
    pub organization_id: OrganizationId,
    /// The one workspace the token is bound to.
    pub workspace_id: WorkspaceId,
    /// The service account the token acts as.
    pub service_account_id: ServiceAccountId,
    /// The rule that matched.
    pub rule_id: RuleId,
    /// The granted scope (never empty).
    pub scope: ScopeSet,
    /// The token's lifetime in seconds.
    pub lifetime_seconds: i64,
    /// `now + lifetime_seconds`, in Unix seconds.
    pub expires_at: i64,
    /// `(jti, keep_until)` to record as used before returning the token, when replay checks apply.
    pub jti_to_record: Option<(String, i64)>,
}

/// Decides an exchange at `now` (Unix seconds); `claims` are the claims of an assertion whose signature
/// verified against `issuer`'s keys. See the module documentation for the order of checks.
pub fn decide(
    request: &ExchangeRequest,
    issuer: &Issuer,
    rule: &Rule,
    service_account: &ServiceAccount,
    claims: &Map<String, Value>,
    ctx: &ExchangeContext<'_>,
    now: i64,
) -> Result<Grant, Rejection> {
    check_consistency(request, issuer, rule, service_account)?;

    let expectations = ClaimExpectations {
        issuer_url: &issuer.issuer_url,
        audience: rule.spec.r#match.expected_audience(ctx.default_audience),
        max_lifetime_seconds: issuer.max_jwt_lifetime_seconds,
        leeway_seconds: ctx.leeway_seconds,
    };
    let validated = claims::validate(claims, &expectations, now)?;
    rule.spec.r#match.check(&validated)?;

    check_service_account(request, rule, service_account)?;

    let workspace_id = choose_workspace(request.workspace_id.as_ref(), &rule.spec.workspaces, ctx)?;
    let scope = scope::effective_scope(
        request.scope.as_ref(),
        &rule.spec.oauth_scope,
        service_account.organization_role,
    )?;
    let lifetime_seconds = rule.spec.token_lifetime.granted(validated.expires_at, now);
    let jti_to_record = validated
        .jti
        .filter(|_| issuer.check_jti)
        .map(|jti| (jti.to_owned(), validated.expires_at.saturating_add(ctx.leeway_seconds)));

    Ok(Grant {
        organization_id: request.organization_id.clone(),
        workspace_id,
        service_account_id: rule.spec.target.clone(),
        rule_id: rule.id.clone(),
        scope,
        lifetime_seconds,
        expires_at: now.saturating_add(lifetime_seconds),
        jti_to_record,
    })
}

/// Step 1: everything named belongs together; any failure is `rule_not_found`.
/// Step 1 alone: the rule, issuer and service account are the ones requested, in the request's
/// organization, and neither rule nor issuer is archived. [`decide`] runs it first; a server runs it
/// before fetching any key, so an archived or foreign rule never causes a network fetch.
pub fn check_consistency(
    request: &ExchangeRequest,
    issuer: &Issuer,
    rule: &Rule,
    service_account: &ServiceAccount,
) -> Result<(), Rejection> {
    let organization = request.organization_id.as_str();
    let checks: [(&str, &str, &str); 5] = [
        ("rule.id", request.federation_rule_id.as_str(), rule.id.as_str()),
        ("rule.organization_id", organization, rule.organization_id.as_str()),
        ("rule.issuer_id", rule.spec.issuer_id.as_str(), issuer.id.as_str()),
        ("issuer.organization_id", organization, issuer.organization_id.as_str()),
        (
            "service_account.organization_id",
            organization,
            service_account.organization_id.as_str(),
        ),
    ];
    if let Some((check, expected, seen)) = checks.into_iter().find(|(_, expected, seen)| expected != seen) {
        return Err(Rejection::new(
            RejectionCode::RuleNotFound,
            check,
            Some(Value::from(expected)),
            Some(Value::from(seen)),
        ));
    }
    for (check, archived) in [("rule.archived", rule.archived), ("issuer.archived", issuer.archived)] {
        if archived {
            return Err(Rejection::new(
                RejectionCode::RuleNotFound,
                check,
                Some(Value::from(false)),
                Some(Value::from(true)),
            ));
        }
    }
    Ok(())
}

/// Step 4: the requested service account (if any) and the one given are the rule's target, which is
/// not archived.
pub(crate) fn check_service_account(
    request: &ExchangeRequest,
    rule: &Rule,
    service_account: &ServiceAccount,
) -> Result<(), Rejection> {
    let target = &rule.spec.target;
    for (check, seen) in [
        ("request.service_account_id", request.service_account_id.as_ref()),
        ("service_account.id", Some(&service_account.id)),
    ] {
        if let Some(seen) = seen.filter(|seen| *seen != target) {
            return Err(Rejection::new(
                RejectionCode::ServiceAccountMismatch,
                check,
                Some(Value::from(target.as_str())),
                Some(Value::from(seen.as_str())),
            ));
        }
    }
    if service_account.archived {
        return Err(Rejection::new(
            RejectionCode::ServiceAccountArchived,
            "service_account.archived",
            Some(Value::from(false)),
            Some(Value::from(true)),
        ));
    }
    Ok(())
}

/// Step 5: the workspace the token is bound to.
pub(crate) fn choose_workspace(
    requested: Option<&WorkspaceSelector>,
    enabled: &RuleWorkspaces,
    ctx: &ExchangeContext<'_>,
) -> Result<WorkspaceId, Rejection> {
    let enabled_json = || workspaces_json(enabled);
    match (requested, enabled) {
        (Some(selector), _) => {
            let workspace_id = selector.resolve(ctx.default_workspace_id);
            if enabled.enables(workspace_id) {
                Ok(workspace_id.clone())
            } else {
                Err(Rejection::new(
                    RejectionCode::WorkspaceNotEnabled,
                    "workspace_id",
                    Some(enabled_json()),
                    Some(Value::from(workspace_id.as_str())),
                ))
            }
        }
        (None, RuleWorkspaces::Listed(listed)) if listed.len() == 1 => listed
            .first()
            .cloned()
            .ok_or_else(|| workspace_not_enabled(enabled_json())),
        (None, RuleWorkspaces::Listed(listed)) if listed.is_empty() => Err(workspace_not_enabled(enabled_json())),
        (None, _) => Err(Rejection::new(
            RejectionCode::WorkspaceIdRequired,
            "workspace_id",
            Some(enabled_json()),
            None,
        )),
    }
}

/// The workspaces a rule is enabled in, as a check's `expected`: `"all"` or the list.
pub(crate) fn workspaces_json(enabled: &RuleWorkspaces) -> Value {
    match enabled {
        RuleWorkspaces::All => Value::from("all"),
        RuleWorkspaces::Listed(listed) => listed.iter().map(|id| Value::from(id.as_str())).collect(),
    }
}

fn workspace_not_enabled(enabled: Value) -> Rejection {
    Rejection::new(RejectionCode::WorkspaceNotEnabled, "workspace_id", Some(enabled), None)
}
