//! `POST /v1/organizations/federation_rules/replay`: an issuer's most recent refused exchanges, run
//! again through a draft rule (or a stored one), and which of them it would let through.
//!
//! Parts: [`ReplayRequest`] (the body), [`replay`], and `Attempt` (one refused exchange as the feed
//! kept it).
//!
//! What is replayed: `platform_federated_authentication` events with outcome `failure`, and every
//! `platform_federated_authentication_shadow` event (a rule in shadow mode refuses every caller),
//! newest first, whose resolved `issuer_id` is the rule's issuer — or, for a request refused before
//! its rule was found (`rule_not_found`, …), whose token's `iss` is the issuer's URL. At most
//! [`SCAN_LIMIT`] of the newest exchange events are looked at; the answer says whether the history
//! ran out first.
//!
//! How: each attempt's recorded claims and request fields (`requested_workspace_id`,
//! `requested_scope`, `requested_service_account_id`) go through `simulate::simulate_one`, the
//! simulation's evaluator, which is the exchange's decision. Time checks (`exp`, `nbf`, `iat`) are
//! judged at the moment the token was presented — it has expired since — and everything else
//! (service account, workspaces) as it is now. A token whose signature never verified (it failed, or
//! its keys could not be fetched) can at best `would_pass_if_verified`; a `jti_reused` attempt, an
//! undecodable token, a claim set the feed truncated and a malformed request are `not_replayable`.
//!
//! A draft goes through every check a create makes (`rules::dry_run`: refusals, lint warnings,
//! references) and is saved nowhere. No activity event: a replay only reads the feed.

use std::collections::BTreeMap;

use keyless_core::exchange::ExchangeRequest;
use keyless_core::id::{IssuerId, RuleId, ServiceAccountId, WorkspaceSelector};
use keyless_core::rejection::RejectionCode;
use keyless_core::rule::{Rule, RuleDraft};
use keyless_core::scope::ScopeSet;
use keyless_core::simulate::Verification;
use keyless_store::activity::ActivityRecord;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::service::admin::simulate::{parties, simulate_one};
use crate::service::admin::{AdminError, Ctx, activity_id, missing, new_id, rules, time};
use crate::service::exchange::{ACTIVITY_TYPE, Parties, SHADOW_ACTIVITY_TYPE};

/// The number of attempts replayed when the body names none.
pub const DEFAULT_LIMIT: u32 = 50;
/// The most attempts one replay runs.
pub const MAX_LIMIT: u32 = 500;
/// The most exchange events one replay looks through, newest first.
pub const SCAN_LIMIT: u32 = 20_000;
/// Events read per step back through the feed.
const SCAN_STEP: u32 = 1_000;
/// The fields of a replayed entry taken from the simulation's result (with `checks`).
const SIMULATED: [&str; 5] = [
    "code",
    "scope",
    "token_lifetime_seconds",
    "workspace_id",
    "service_account_id",
];

/// The body of a replay: the rule (a draft or a stored one) and how many attempts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// `rule`: a draft, the body a create would take; saved nowhere.
    #[serde(default)]
    pub rule: Option<RuleDraft>,
    /// `rule_id`: a stored rule (live, archived or in shadow mode), as it is now.
    #[serde(default)]
    pub rule_id: Option<String>,
    /// `limit`: how many of the newest refused exchanges to replay (1–500, default 50).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// One refused exchange, as the feed kept it.
struct Attempt<'a> {
    record: &'a ActivityRecord,
    data: &'a Map<String, Value>,
    /// What the caller was told.
    code: &'a str,
}

impl<'a> Attempt<'a> {
    /// The event as a refused exchange of `issuer_id` (whose URL is `issuer_url`), if it is one.
    fn of(record: &'a ActivityRecord, issuer_id: &IssuerId, issuer_url: &str) -> Option<Self> {
        let payload = &record.activity.payload;
        let data = payload.get("event_data")?.as_object()?;
        let status = payload.get("status");
        let code = if record.activity.activity_type == SHADOW_ACTIVITY_TYPE {
            RejectionCode::RuleInShadowMode.as_str()
        } else if status.and_then(|status| status.get("outcome")).and_then(Value::as_str) == Some("failure") {
            status.and_then(|status| status.get("reason")).and_then(Value::as_str)?
        } else {
            return None;
        };
        let ours = match data.get("issuer_id").and_then(Value::as_str) {
            Some(recorded) => recorded == issuer_id.as_str(),
            None => {
                payload
                    .pointer("/event_data/oidc_token/claims/iss")
                    .and_then(Value::as_str)
                    == Some(issuer_url)
            }
        };
        ours.then_some(Self { record, data, code })
    }

    fn field(&self, name: &str) -> Option<&'a str> {
        self.data.get(name).and_then(Value::as_str)
    }

    fn token(&self, name: &str) -> Option<&'a Value> {
        self.data.get("oidc_token").and_then(|token| token.get(name))
    }

    /// The request the attempt made, through `rule` instead of the one it named.
    fn request(&self, ctx: &Ctx<'_>, rule: &Rule) -> Result<ExchangeRequest, String> {
        let service_account_id = self
            .field("requested_service_account_id")
            .map(|text| ServiceAccountId::parse(text).map_err(|error| format!("service_account_id: {error}")))
            .transpose()?;
        let workspace_id = self
            .field("requested_workspace_id")
            .map(|text| WorkspaceSelector::parse(text).map_err(|error| format!("workspace_id: {error}")))
            .transpose()?;
        let scope = self
            .field("requested_scope")
            .map(|text| ScopeSet::parse(text).map_err(|error| format!("scope: {error}")))
            .transpose()?;
        Ok(ExchangeRequest {
            federation_rule_id: rule.id.clone(),
            organization_id: ctx.state.organization_id.clone(),
            service_account_id,
            workspace_id,
            scope,
        })
    }

    /// Why it cannot be replayed, if it cannot.
    fn not_replayable(&self) -> Option<String> {
        if self.code == RejectionCode::JtiReused.as_str() {
            return Some(
                "the token had already been used (jti_reused): a replay is refused whatever the rule".to_owned(),
            );
        }
        if !self.token("claims").is_some_and(Value::is_object) {
            return Some("the token could not be decoded: the feed holds no claims".to_owned());
        }
        if self.token("claims_truncated").and_then(Value::as_bool) == Some(true) {
            return Some("the feed kept only the registered claims of this oversized, unverified token".to_owned());
        }
        None
    }

    /// The attempt replayed through `parties`.
    async fn replay(&self, ctx: &Ctx<'_>, parties: &Parties) -> Result<Value, AdminError> {
        let activity = &self.record.activity;
        let verified = self.token("verified").and_then(Value::as_bool) == Some(true);
        let mut entry = Map::new();
        entry.insert("activity_id".to_owned(), Value::from(activity_id(self.record.id)));
        entry.insert("created_at".to_owned(), Value::from(time(activity.created_at)));
        entry.insert("request_id".to_owned(), json!(activity.request_id));
        entry.insert(
            "original".to_owned(),
            json!({ "code": self.code, "federation_rule_id": activity.resource_id }),
        );
        entry.insert(
            "subject".to_owned(),
            json!(self.token("claims").and_then(|claims| claims.get("sub"))),
        );
        entry.insert("verified".to_owned(), Value::from(verified));
        let request = match self.not_replayable() {
            Some(reason) => Err(reason),
            None => self
                .request(ctx, &parties.rule)
                .map_err(|error| format!("the request was malformed: {error}")),
        };
        let request = match request {
            Ok(request) => request,
            Err(reason) => {
                entry.insert("verdict".to_owned(), Value::from("not_replayable"));
                entry.insert("reason".to_owned(), Value::from(reason));
                for field in SIMULATED {
                    entry.insert(field.to_owned(), Value::Null);
                }
                entry.insert("checks".to_owned(), Value::Array(Vec::new()));
                return Ok(Value::Object(entry));
            }
        };
        let claims = self
            .token("claims")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let verification = if verified {
            Verification::Verified
        } else {
            Verification::NotChecked
        };
        let simulated = simulate_one(ctx, parties, &request, &claims, verification, activity.created_at).await?;
        let verdict = match simulated.get("verdict").and_then(Value::as_str) {
            Some("would_grant") if verified => "would_pass",
            Some("would_grant") => "would_pass_if_verified",
            _ => "would_reject",
        };
        entry.insert("verdict".to_owned(), Value::from(verdict));
        entry.insert("reason".to_owned(), Value::Null);
        for field in SIMULATED.into_iter().chain(["checks"]) {
            entry.insert(field.to_owned(), simulated.get(field).cloned().unwrap_or(Value::Null));
        }
        Ok(Value::Object(entry))
    }
}

/// Runs a replay for the caller in `ctx`.
pub async fn replay(ctx: &Ctx<'_>, body: ReplayRequest) -> Result<Value, AdminError> {
    let invalid = |message: &str| AdminError::Invalid(message.to_owned());
    let limit = match body.limit {
        None => DEFAULT_LIMIT,
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
        Some(_) => return Err(AdminError::Invalid(format!("limit: must be 1 to {MAX_LIMIT}"))),
    };
    let (parties, rule_view, warnings) = match (body.rule, body.rule_id) {
        (Some(_), Some(_)) => return Err(invalid("rule: give either rule or rule_id, not both")),
        (None, None) => return Err(invalid("rule: one of rule (a draft) or rule_id is required")),
        (Some(draft), None) => draft_parties(ctx, draft).await?,
        (None, Some(text)) => {
            let parties = parties(ctx, &rules::parse_id("rule_id", &text)?).await?;
            let view = json!({
                "id": parties.rule.id.as_str(),
                "name": parties.rule.spec.name.as_str(),
                "issuer_id": parties.rule.spec.issuer_id.as_str(),
            });
            (parties, view, Value::Array(Vec::new()))
        }
    };

    let issuer_id = &parties.rule.spec.issuer_id;
    let issuer_url = parties.issuer.issuer_url.as_str();
    let wanted = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut results = Vec::new();
    let mut verdicts: BTreeMap<&'static str, u64> =
        ["would_pass", "would_pass_if_verified", "would_reject", "not_replayable"]
            .into_iter()
            .map(|verdict| (verdict, 0))
            .collect();
    let mut scanned: u32 = 0;
    let mut before = None;
    let mut history_exhausted = false;
    while results.len() < wanted && scanned < SCAN_LIMIT {
        let step = SCAN_STEP.min(SCAN_LIMIT - scanned);
        let events = ctx
            .state
            .store
            .activity_scan(
                &ctx.state.organization_id,
                &[ACTIVITY_TYPE, SHADOW_ACTIVITY_TYPE],
                before,
                step,
            )
            .await?;
        history_exhausted = u32::try_from(events.len()).unwrap_or(u32::MAX) < step;
        for record in &events {
            scanned += 1;
            before = Some(record.id);
            if let Some(attempt) = Attempt::of(record, issuer_id, issuer_url) {
                let result = attempt.replay(ctx, &parties).await?;
                if let Some(count) = result
                    .get("verdict")
                    .and_then(Value::as_str)
                    .and_then(|verdict| verdicts.get_mut(verdict))
                {
                    *count += 1;
                }
                results.push(result);
                if results.len() == wanted {
                    history_exhausted = false;
                    break;
                }
            }
        }
        if history_exhausted {
            break;
        }
    }
    Ok(json!({
        "rule": rule_view,
        "warnings": warnings,
        "replayed": results.len(),
        "summary": verdicts,
        "scanned_events": scanned,
        "history_exhausted": history_exhausted,
        "data": results,
    }))
}

/// A draft checked as a create would check it, with its issuer and target as the exchange reads them.
async fn draft_parties(ctx: &Ctx<'_>, draft: RuleDraft) -> Result<(std::sync::Arc<Parties>, Value, Value), AdminError> {
    let checked = rules::dry_run(ctx, draft).await?;
    let store = &ctx.state.store;
    let organization_id = &ctx.state.organization_id;
    let spec = checked.spec;
    let issuer_record = store
        .issuer_get(organization_id, &spec.issuer_id)
        .await
        .map_err(missing(format!(
            "rule.issuer_id: no such federation issuer: {}",
            spec.issuer_id
        )))?;
    let service_account = store
        .service_account_get(organization_id, &spec.target)
        .await
        .map_err(missing(format!(
            "rule.target.service_account_id: no such service account: {}",
            spec.target
        )))?
        .to_service_account();
    let view = json!({ "id": Value::Null, "name": spec.name.as_str(), "issuer_id": spec.issuer_id.as_str() });
    // The draft has no ID; the requests replayed through it name this one.
    let id = RuleId::parse(&new_id(RuleId::PREFIX)?).map_err(|error| AdminError::Internal(error.to_string()))?;
    let parties = Parties {
        rule: Rule {
            id,
            organization_id: organization_id.clone(),
            archived: false,
            spec,
        },
        issuer_record,
        issuer: checked.issuer,
        service_account,
    };
    Ok((std::sync::Arc::new(parties), view, checked.warnings))
}
