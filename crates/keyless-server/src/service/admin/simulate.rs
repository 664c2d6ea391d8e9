//! `POST /v1/organizations/federation_rules/simulate`: what the exchange would do with a token (or a
//! claim set) through one rule, or through every live rule of an issuer — every check with its expected
//! and seen values, and the verdict.
//!
//! Parts: [`SimulateRequest`] (the body), [`simulate`].
//!
//! The exchange's own path, minus its effects: the rule, its issuer and its service account come from
//! the exchange's [`crate::service::exchange::PartiesCache`]; the token is verified by
//! `service::exchange::verify` (the issuer's keys through `service::jwks`, then
//! `keyless_jose::verify_jwt`); the verdict is [`keyless_core::exchange::decide`]'s, reached through
//! [`keyless_core::simulate::simulate`], and a rule for all workspaces has its chosen workspace checked
//! live as the exchange does. Nothing is minted, no `jti` is recorded, no exchange event is written and
//! the exchange counters do not move.
//!
//! No activity event either: a simulation is a read (like `GET`), and the token it carries may still be
//! valid, so keeping its claims would widen what the activity feed exposes for no gain.
//!
//! Must not: log or echo the token (its `Debug` is redacted), or answer with it.

use std::fmt;

use keyless_core::claims::DEFAULT_LEEWAY_SECONDS;
use keyless_core::exchange::{ExchangeContext, ExchangeRequest};
use keyless_core::id::{IssuerId, RuleId, ServiceAccountId, WorkspaceSelector};
use keyless_core::rejection::{Rejection, RejectionCode};
use keyless_core::rule::RuleWorkspaces;
use keyless_core::scope::ScopeSet;
use keyless_core::simulate::{self as core_simulate, Check, Verification};
use keyless_jose::Limits;
use keyless_store::rule::RuleFilter;
use keyless_store::{Limit, ListQuery, StoreError};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::service::admin::{AdminError, Ctx, issuers, missing, rules};
use crate::service::exchange::{self, ExchangeError, Parties};

/// The body of a simulation: a token or a claim set, one rule or one issuer's rules, and what the
/// exchange request would ask for.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulateRequest {
    /// `token`: a compact JWT, as a workload would present it.
    #[serde(default)]
    pub token: Option<String>,
    /// `claims`: a claim set, evaluated as if a token carrying it had verified.
    #[serde(default)]
    pub claims: Option<Map<String, Value>>,
    /// `verify`: whether the token's signature is checked (default `true`; only with `token`).
    #[serde(default)]
    pub verify: Option<bool>,
    /// `rule_id`: simulate this rule (archived or not).
    #[serde(default)]
    pub rule_id: Option<String>,
    /// `issuer_id`: simulate every live rule of this issuer.
    #[serde(default)]
    pub issuer_id: Option<String>,
    /// `workspace_id`, as the exchange request would carry it.
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// `scope`, as the exchange request would carry it.
    #[serde(default)]
    pub scope: Option<String>,
    /// `service_account_id`, as the exchange request would carry it.
    #[serde(default)]
    pub service_account_id: Option<String>,
}

/// Redacted: the token may still be valid.
impl fmt::Debug for SimulateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulateRequest")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("claims", &self.claims.as_ref().map(|claims| claims.len()))
            .field("verify", &self.verify)
            .field("rule_id", &self.rule_id)
            .field("issuer_id", &self.issuer_id)
            .field("workspace_id", &self.workspace_id)
            .field("scope", &self.scope)
            .field("service_account_id", &self.service_account_id)
            .finish()
    }
}

/// What the claims come from.
enum Input {
    Token { token: String, verify: bool },
    Claims(Map<String, Value>),
}

/// Which rules.
enum Rules {
    One(RuleId),
    OfIssuer(IssuerId),
}

/// Runs a simulation for the caller in `ctx`.
pub async fn simulate(ctx: &Ctx<'_>, body: SimulateRequest) -> Result<Value, AdminError> {
    let invalid = |message: &str| AdminError::Invalid(message.to_owned());
    let input = match (body.token, body.claims) {
        (Some(_), Some(_)) => return Err(invalid("token: give either token or claims, not both")),
        (None, None) => return Err(invalid("token: one of token or claims is required")),
        (Some(token), None) => {
            let token = token.trim().to_owned();
            if token.is_empty() {
                return Err(invalid("token: must not be empty"));
            }
            Input::Token {
                token,
                verify: body.verify.unwrap_or(true),
            }
        }
        (None, Some(claims)) => {
            if body.verify == Some(true) {
                return Err(invalid("verify: a claim set cannot be verified; give a token instead"));
            }
            Input::Claims(claims)
        }
    };
    let which = match (body.rule_id, body.issuer_id) {
        (Some(_), Some(_)) => return Err(invalid("rule_id: give either rule_id or issuer_id, not both")),
        (None, None) => return Err(invalid("rule_id: one of rule_id or issuer_id is required")),
        (Some(text), None) => Rules::One(rules::parse_id("rule_id", &text)?),
        (None, Some(text)) => Rules::OfIssuer(issuers::parse_id("issuer_id", &text)?),
    };
    let service_account_id = body
        .service_account_id
        .as_deref()
        .map(|text| {
            ServiceAccountId::parse(text).map_err(|error| AdminError::Invalid(format!("service_account_id: {error}")))
        })
        .transpose()?;
    let workspace_id = body
        .workspace_id
        .as_deref()
        .map(|text| {
            WorkspaceSelector::parse(text).map_err(|error| AdminError::Invalid(format!("workspace_id: {error}")))
        })
        .transpose()?;
    let scope = body
        .scope
        .as_deref()
        .map(|text| ScopeSet::parse(text).map_err(|error| AdminError::Invalid(format!("scope: {error}"))))
        .transpose()?;

    let rule_ids = match which {
        Rules::One(rule_id) => vec![rule_id],
        Rules::OfIssuer(issuer_id) => live_rules_of(ctx, &issuer_id).await?,
    };
    let limits = Limits::default();
    let unverified_claims = match &input {
        Input::Claims(claims) => Some(claims.clone()),
        Input::Token { token, .. } => keyless_jose::decode_unverified(token, &limits)
            .ok()
            .and_then(|decoded| decoded.claims(&limits).ok()),
    };
    if let (Input::Token { verify: false, .. }, None) = (&input, &unverified_claims) {
        return Err(invalid("token: not a well-formed JWT with a JSON claim set"));
    }

    let mut verified_all = matches!(input, Input::Token { verify: true, .. });
    let mut results = Vec::with_capacity(rule_ids.len());
    for rule_id in rule_ids {
        let parties = parties(ctx, &rule_id).await?;
        let request = ExchangeRequest {
            federation_rule_id: rule_id,
            organization_id: ctx.state.organization_id.clone(),
            service_account_id: service_account_id.clone(),
            workspace_id: workspace_id.clone(),
            scope: scope.clone(),
        };
        let verification = match &input {
            Input::Token { token, verify: true } => {
                Some(exchange::verify(ctx.state, &parties.issuer_record, token, &limits, ctx.now).await)
            }
            _ => None,
        };
        let (claims, outcome) = match &verification {
            Some(Ok(verified)) => (verified.claims.clone(), Verification::Verified),
            Some(Err(rejection)) => (
                unverified_claims.clone().unwrap_or_default(),
                Verification::Failed(rejection),
            ),
            None => (unverified_claims.clone().unwrap_or_default(), Verification::NotChecked),
        };
        verified_all &= matches!(outcome, Verification::Verified);
        results.push(simulate_one(ctx, &parties, &request, &claims, outcome, ctx.now).await?);
    }
    // Nothing verified when the issuer has no live rule.
    let verified = verified_all && !results.is_empty();
    Ok(json!({ "verified": verified, "results": results }))
}

/// One rule's result for `claims` presented at `now`.
pub(crate) async fn simulate_one(
    ctx: &Ctx<'_>,
    parties: &Parties,
    request: &ExchangeRequest,
    claims: &Map<String, Value>,
    verification: Verification<'_>,
    now: i64,
) -> Result<Value, AdminError> {
    let exchange_ctx = ExchangeContext {
        default_audience: &ctx.state.public_url,
        default_workspace_id: &ctx.state.default_workspace_id,
        leeway_seconds: DEFAULT_LEEWAY_SECONDS,
    };
    let mut simulation = core_simulate::simulate(
        request,
        &parties.issuer,
        &parties.rule,
        &parties.service_account,
        claims,
        verification,
        &exchange_ctx,
        now,
    );
    // The exchange checks a workspace picked for an all-workspaces rule is live; so does this.
    if let Ok(grant) = &simulation.verdict
        && matches!(parties.rule.spec.workspaces, RuleWorkspaces::All)
        && grant.workspace_id != ctx.state.default_workspace_id
    {
        match exchange::check_workspace_live(ctx.state, grant).await {
            Ok(()) => {}
            Err(ExchangeError::Rejected(rejection)) => {
                let detail = rejection.detail();
                simulation.checks.push(Check {
                    check: detail.check.clone(),
                    passed: false,
                    code: Some(rejection.code()),
                    expected: detail.expected.clone(),
                    seen: detail.seen.clone(),
                });
                simulation.verdict = Err(rejection);
            }
            Err(ExchangeError::Unavailable(error)) => return Err(AdminError::Internal(error)),
        }
    }
    let rule = &parties.rule;
    let (verdict, code, scope, lifetime) = match &simulation.verdict {
        Ok(grant) => (
            "would_grant",
            Value::Null,
            Value::from(grant.scope.to_string()),
            Value::from(grant.lifetime_seconds),
        ),
        Err(rejection) => (
            "would_reject",
            Value::from(rejection.code().as_str()),
            Value::Null,
            Value::Null,
        ),
    };
    let grant = simulation.verdict.as_ref().ok();
    Ok(json!({
        "rule_id": rule.id.as_str(),
        "rule_name": rule.spec.name.as_str(),
        "verdict": verdict,
        "code": code,
        "scope": scope,
        "token_lifetime_seconds": lifetime,
        "workspace_id": grant.map(|grant| grant.workspace_id.as_str()),
        "service_account_id": grant.map(|grant| grant.service_account_id.as_str()),
        "checks": simulation.checks,
    }))
}

/// The rule, its issuer and its service account, as the exchange reads them.
pub(crate) async fn parties(ctx: &Ctx<'_>, rule_id: &RuleId) -> Result<std::sync::Arc<Parties>, AdminError> {
    match ctx
        .state
        .parties
        .get(ctx.state, &ctx.state.organization_id, rule_id)
        .await
    {
        Ok(parties) => Ok(parties),
        Err(ExchangeError::Rejected(rejection)) => Err(not_simulable(rule_id, &rejection)),
        Err(ExchangeError::Unavailable(error)) => Err(AdminError::Internal(error)),
    }
}

fn not_simulable(rule_id: &RuleId, rejection: &Rejection) -> AdminError {
    if rejection.code() == RejectionCode::RuleNotFound && rejection.detail().check == "rule.exists" {
        AdminError::NotFound(format!("rule_id: no such federation rule: {rule_id}"))
    } else {
        AdminError::Internal(format!("rule {rule_id} cannot be simulated: {rejection:?}"))
    }
}

/// Every live rule of the issuer, which must exist.
async fn live_rules_of(ctx: &Ctx<'_>, issuer_id: &IssuerId) -> Result<Vec<RuleId>, AdminError> {
    let store = &ctx.state.store;
    let organization_id = &ctx.state.organization_id;
    store
        .issuer_get(organization_id, issuer_id)
        .await
        .map_err(missing(format!("issuer_id: no such federation issuer: {issuer_id}")))?;
    let filter = RuleFilter {
        issuer_id: Some(issuer_id.clone()),
        service_account_id: None,
    };
    let mut list = ListQuery {
        limit: Limit::new(Limit::MAX).map_err(|_| AdminError::Internal("page limit".to_owned()))?,
        cursor: None,
        include_archived: false,
    };
    let mut rule_ids = Vec::new();
    loop {
        let page = store
            .rule_list(organization_id, &filter, &list)
            .await
            .map_err(|error: StoreError| AdminError::from(error))?;
        rule_ids.extend(page.items.into_iter().map(|rule| rule.id));
        match page.next_cursor {
            Some(cursor) => list.cursor = Some(cursor),
            None => break,
        }
    }
    Ok(rule_ids)
}
