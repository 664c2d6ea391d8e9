//! The token exchange (`POST /v1/oauth/token`): read the objects the request names, fetch the issuer's
//! keys, verify the assertion, let [`keyless_core::exchange::decide`] judge, mint, and record — the
//! outcome, success or failure, is committed before the caller hears of it.
//!
//! Parts: [`TokenRequest`] (the raw fields, whatever the wire form), [`IssuedToken`], [`ExchangeError`],
//! [`exchange()`], and [`PartiesCache`] (the rule compiled, its issuer and service account, kept while
//! the organization's configuration generation is unchanged: an exchange reads one counter, not four
//! rows, CEL compiles once per change, and an archive still takes effect at once).
//!
//! Order: parse the IDs (`malformed_request`) → read the rule (`rule_not_found` when absent) → read its
//! issuer and target service account → the consistency checks (archived or foreign objects are refused
//! before any network fetch) → the issuer's keys (`jwks_unavailable`) → the signature
//! ([`keyless_core::rejection::Rejection::from_verification`]) → the decision → mint → record (a used
//! `jti` turns into `jti_reused` here, atomically with the token's storage).
//!
//! The activity event `platform_federated_authentication` carries the request's IDs, the token's header
//! (`alg`, `kid`, `typ`) and claims — verified, or for a token that failed verification marked
//! `verified: false` and capped at [`MAX_UNVERIFIED_CLAIMS_BYTES`] — the outcome, the stable code and the
//! failed check with its expected and seen values. The assertion itself is never stored: it may still
//! be valid.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keyless_core::claims::DEFAULT_LEEWAY_SECONDS;
use keyless_core::exchange::{self, ExchangeContext, ExchangeRequest, Grant};
use keyless_core::id::{IssuerId, OrganizationId, RuleId, ServiceAccountId, WorkspaceSelector};
use keyless_core::issuer::Issuer;
use keyless_core::rejection::{Rejection, RejectionCode};
use keyless_core::rule::{Rule, RuleMode, RuleSpec, RuleWorkspaces};
use keyless_core::scope::ScopeSet;
use keyless_core::service_account::ServiceAccount;
use keyless_jose::Limits;
use keyless_store::StoreError;
use keyless_store::access_token::AccessTokenRecord;
use keyless_store::activity::Activity;
use keyless_store::issuer::IssuerRecord;
use keyless_store::rule::RuleRecord;
use secrecy::SecretString;
use serde_json::{Map, Value, json};

use crate::clock;
use crate::service::recorder::{Entry, Event, JtiUse, RecordError, Recorded};
use crate::service::token;
use crate::state::AppState;

/// The activity type of every exchange attempt.
pub const ACTIVITY_TYPE: &str = "platform_federated_authentication";
/// The activity type of an exchange through a rule in shadow mode: what it would have decided.
pub const SHADOW_ACTIVITY_TYPE: &str = "platform_federated_authentication_shadow";
/// The largest claim set of an unverified token kept in the activity feed (serialized bytes); a larger
/// one keeps only its registered claims.
pub const MAX_UNVERIFIED_CLAIMS_BYTES: usize = 4096;
const REGISTERED_CLAIMS: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// An exchange request as received, before any ID is parsed: what the JSON body, the RFC 7523 form and
/// the RFC 8693 form have in common.
#[derive(Debug, Default)]
pub struct TokenRequest {
    /// The subject token (`assertion` or `subject_token`), trimmed.
    pub assertion: Option<String>,
    /// `federation_rule_id` (RFC 8693: `audience`).
    pub federation_rule_id: Option<String>,
    /// `organization_id`; absent means this server's organization.
    pub organization_id: Option<String>,
    /// `service_account_id`; absent means the rule's target.
    pub service_account_id: Option<String>,
    /// `workspace_id` (`wrkspc_…` or `default`).
    pub workspace_id: Option<String>,
    /// `scope`, space-separated.
    pub scope: Option<String>,
}

/// A granted exchange, for the response.
#[derive(Debug)]
pub struct IssuedToken {
    /// The access token: shown once.
    pub access_token: SecretString,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// Its scope, space-separated.
    pub scope: String,
}

/// Why an exchange produced no token.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// Refused: the caller gets the code and message, the feed the detail.
    #[error(transparent)]
    Rejected(Rejection),
    /// The database or the random generator failed: nothing was granted.
    #[error("the exchange could not be completed: {0}")]
    Unavailable(String),
}

/// What an exchange reads before it verifies: the rule (compiled), its issuer and its service account.
#[derive(Debug)]
pub(crate) struct Parties {
    pub(crate) rule: Rule,
    pub(crate) issuer_record: IssuerRecord,
    pub(crate) issuer: Issuer,
    pub(crate) service_account: ServiceAccount,
}

/// The objects exchanges read, by rule ID, each stamped with what the configuration was when they were
/// read. A cached entry is used only while the stamp is current, and every admin change moves it, so an
/// archive or an update takes effect at once, on every node; CEL compiles once per change, not once
/// per exchange.
///
/// The stamp is the store's configuration epoch ([`keyless_store::Store::config_epoch`]: in memory,
/// moved after every committed change here and, on PostgreSQL, on every other node's `NOTIFY`), so an
/// exchange reads nothing when its rule is cached. When the epoch cannot be trusted (PostgreSQL with its
/// listener down), the stamp is the organization's configuration generation read from the database,
/// through `GenerationReads`: concurrent exchanges share a read that started after they arrived.
#[derive(Default)]
pub struct PartiesCache {
    entries: Mutex<HashMap<RuleId, (Stamp, Arc<Parties>)>>,
    generations: GenerationReads,
}

/// What a cached entry was read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stamp {
    /// The store's in-memory configuration epoch.
    Epoch(u64),
    /// The organization's configuration generation, read from the database.
    Generation(i64),
}

/// Coalesced reads of an organization's configuration generation.
///
/// Readers take turns (a FIFO lock); each read is tagged with the number of callers that had arrived
/// when it started. A caller that arrived before the last read started takes its result instead of
/// reading again — that read began after the caller's request did, so it is as fresh as one the caller
/// would have made. Everyone else reads. A failed read is not shared: each caller then reads for itself.
#[derive(Default)]
struct GenerationReads {
    arrivals: std::sync::atomic::AtomicU64,
    turn: tokio::sync::Mutex<Option<(OrganizationId, u64, i64)>>,
}

impl GenerationReads {
    async fn read(&self, state: &AppState, organization_id: &OrganizationId) -> Result<i64, StoreError> {
        use std::sync::atomic::Ordering;
        let arrived = self.arrivals.fetch_add(1, Ordering::SeqCst);
        let mut last = self.turn.lock().await;
        if let Some((organization, started, generation)) = &*last
            && organization == organization_id
            && arrived < *started
        {
            return Ok(*generation);
        }
        let started = self.arrivals.load(Ordering::SeqCst);
        let generation = state.store.config_generation(organization_id).await?;
        *last = Some((organization_id.clone(), started, generation));
        Ok(generation)
    }
}

impl PartiesCache {
    /// The parties of `rule_id` in `organization_id`, from the cache when current.
    pub(crate) async fn get(
        &self,
        state: &AppState,
        organization_id: &OrganizationId,
        rule_id: &RuleId,
    ) -> Result<Arc<Parties>, ExchangeError> {
        let stamp = match state.store.config_epoch() {
            Some(epoch) => Some(Stamp::Epoch(epoch)),
            None => match self.generations.read(state, organization_id).await {
                Ok(generation) => Some(Stamp::Generation(generation)),
                Err(StoreError::NotFound) => None,
                Err(error) => return Err(unavailable(error)),
            },
        };
        if let (Some(stamp), Ok(entries)) = (stamp, self.entries.lock())
            && let Some((cached_at, parties)) = entries.get(rule_id)
            && *cached_at == stamp
            && parties.rule.organization_id == *organization_id
        {
            return Ok(Arc::clone(parties));
        }
        let (rule_record, issuer_record, service_account) =
            match state.store.rule_get_with_parties(organization_id, rule_id).await {
                Ok(found) => found,
                Err(StoreError::NotFound) => {
                    return Err(rejected(Rejection::new(
                        RejectionCode::RuleNotFound,
                        "rule.exists",
                        None,
                        Some(Value::from(rule_id.as_str())),
                    )));
                }
                Err(error) => return Err(unavailable(error)),
            };
        let parties = Arc::new(Parties {
            rule: compile(rule_record).map_err(rejected)?,
            issuer: issuer_record.to_issuer(),
            issuer_record,
            service_account: service_account.to_service_account(),
        });
        // Read after the stamp: at worst newer than it, and then the next lookup misses.
        if let (Some(stamp), Ok(mut entries)) = (stamp, self.entries.lock()) {
            entries.insert(rule_id.clone(), (stamp, Arc::clone(&parties)));
        }
        Ok(parties)
    }
}

/// The rule a stored record describes, its `match` block compiled.
fn compile(record: RuleRecord) -> Result<Rule, Rejection> {
    let r#match = record.r#match.compile().map_err(|error| {
        Rejection::new(
            RejectionCode::RuleNotFound,
            "rule.match",
            None,
            Some(Value::from(format!("the stored rule no longer compiles: {error}"))),
        )
    })?;
    Ok(Rule {
        archived: record.audit.is_archived(),
        id: record.id,
        organization_id: record.organization_id,
        spec: RuleSpec {
            name: record.name,
            description: record.description,
            issuer_id: record.issuer_id,
            r#match,
            target: record.service_account_id,
            oauth_scope: record.oauth_scope,
            token_lifetime: record.token_lifetime,
            workspaces: record.workspaces,
            mode: record.mode,
        },
    })
}

/// What the activity event records, filled in as the exchange proceeds.
struct Trace {
    event_data: Map<String, Value>,
    /// Whether the rule is in shadow mode (known once the rule is read).
    shadow: bool,
    /// The presented token until it verifies: an event made before then records what it claims,
    /// marked unverified (decoded only then, so a token that verifies is parsed once).
    unverified: Option<String>,
}

impl Trace {
    fn new(request: &TokenRequest) -> Self {
        let mut event_data = Map::new();
        event_data.insert("federation_rule_id".to_owned(), json!(request.federation_rule_id));
        event_data.insert(
            "requested_service_account_id".to_owned(),
            json!(request.service_account_id),
        );
        event_data.insert("requested_workspace_id".to_owned(), json!(request.workspace_id));
        event_data.insert("requested_scope".to_owned(), json!(request.scope));
        event_data.insert("issuer_id".to_owned(), Value::Null);
        event_data.insert("oidc_token".to_owned(), Value::Null);
        Trace {
            event_data,
            shadow: false,
            unverified: request.assertion.clone(),
        }
    }

    /// Records the verified token; what it claims is no longer recorded as unverified.
    fn record_verified(&mut self, verified: keyless_jose::VerifiedJwt) {
        self.unverified = None;
        let header = &verified.header;
        self.set(
            "oidc_token",
            json!({
                "verified": true,
                "header": { "alg": header.alg.name(), "kid": header.kid, "typ": header.typ },
                "key_thumbprint": verified.key_thumbprint,
                "jti": verified.claims.get("jti"),
                "claims": Value::Object(verified.claims),
            }),
        );
    }

    /// Records what a token claims before anything is verified: marked unverified, size-capped.
    fn record_unverified(&mut self, assertion: &str, limits: &Limits) {
        let Ok(token) = keyless_jose::decode_unverified(assertion, limits) else {
            self.set("oidc_token", json!({ "verified": false, "decodable": false }));
            return;
        };
        let claims = token.claims(limits).ok().map(|claims| {
            let size = serde_json::to_vec(&claims).map_or(usize::MAX, |bytes| bytes.len());
            if size <= MAX_UNVERIFIED_CLAIMS_BYTES {
                (Value::Object(claims), false)
            } else {
                let registered: Map<String, Value> = claims
                    .into_iter()
                    .filter(|(name, _)| REGISTERED_CLAIMS.contains(&name.as_str()))
                    .collect();
                (Value::Object(registered), true)
            }
        });
        let header: Map<String, Value> = token
            .header
            .into_iter()
            .filter(|(name, _)| matches!(name.as_str(), "alg" | "kid" | "typ"))
            .collect();
        let (claims, truncated) = claims.unwrap_or((Value::Null, false));
        self.set(
            "oidc_token",
            json!({
                "verified": false,
                "header": header,
                "jti": claims.get("jti"),
                "claims": claims,
                "claims_truncated": truncated,
            }),
        );
    }

    fn set(&mut self, key: &str, value: Value) {
        self.event_data.insert(key.to_owned(), value);
    }

    fn event(mut self, state: &AppState, request_id: &str, now: i64, status: Value) -> Activity {
        if let Some(assertion) = self.unverified.take() {
            self.record_unverified(&assertion, &Limits::default());
        }
        let activity_type = if self.shadow {
            SHADOW_ACTIVITY_TYPE
        } else {
            ACTIVITY_TYPE
        };
        let rule_id = self
            .event_data
            .get("federation_rule_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let actor = self
            .event_data
            .get("service_account_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Activity {
            organization_id: state.organization_id.clone(),
            activity_type: activity_type.to_owned(),
            actor_id: actor,
            resource_id: rule_id,
            request_id: Some(request_id.to_owned()),
            created_at: now,
            payload: json!({ "event_data": Value::Object(self.event_data), "status": status }),
        }
    }
}

fn failure_status(rejection: &Rejection) -> Value {
    json!({
        "outcome": "failure",
        "reason": rejection.code().as_str(),
        "message": rejection.message(),
        "detail": rejection.detail(),
    })
}

/// Runs one exchange at `now` for the request `request_id`; the outcome is recorded before this returns.
pub async fn exchange(
    state: &AppState,
    request: TokenRequest,
    request_id: &str,
    now: i64,
) -> Result<IssuedToken, ExchangeError> {
    let mut trace = Trace::new(&request);
    let outcome = attempt(state, &request, &mut trace, now).await;
    if trace.shadow {
        return Err(record_shadow(state, trace, outcome, request_id, now).await);
    }
    match outcome {
        Ok((grant, issuer_id)) => grant_and_record(state, grant, issuer_id, trace, request_id, now).await,
        Err(ExchangeError::Rejected(rejection)) => Err(record_refusal(state, trace, rejection, request_id, now).await),
        Err(error) => Err(error),
    }
}

/// Records a request refused before it could be attempted (no grant type, a repeated parameter, …).
pub async fn refuse(
    state: &AppState,
    request: &TokenRequest,
    rejection: Rejection,
    request_id: &str,
    now: i64,
) -> ExchangeError {
    record_refusal(state, Trace::new(request), rejection, request_id, now).await
}

async fn record_refusal(
    state: &AppState,
    trace: Trace,
    rejection: Rejection,
    request_id: &str,
    now: i64,
) -> ExchangeError {
    let event = trace.event(state, request_id, now, failure_status(&rejection));
    match record_event(state, event).await {
        Ok(_) => ExchangeError::Rejected(rejection),
        Err(error) => unavailable(error),
    }
}

/// Records `event` alone, serialized here on the request's worker (see `recorder`).
async fn record_event(state: &AppState, event: Activity) -> Result<Recorded, RecordError> {
    state.recorder.record(Entry::Event(Event::new(event)?)).await
}

/// Records what a rule in shadow mode would have decided (`would_allow` with the grant, or
/// `would_deny` with the rejection and its detail) and refuses with `rule_in_shadow_mode`: nothing is
/// minted and no `jti` is burned, so the same token still works through an enforcing rule.
async fn record_shadow(
    state: &AppState,
    trace: Trace,
    outcome: Result<(Grant, IssuerId), ExchangeError>,
    request_id: &str,
    now: i64,
) -> ExchangeError {
    let status = match &outcome {
        Ok((grant, _)) => json!({
            "outcome": "would_allow",
            "reason": Value::Null,
            "scope": grant.scope.to_string(),
            "service_account_id": grant.service_account_id.as_str(),
            "workspace_id": grant.workspace_id.as_str(),
            "expires_in": grant.expires_at - now,
        }),
        Err(ExchangeError::Rejected(rejection)) => json!({
            "outcome": "would_deny",
            "reason": rejection.code().as_str(),
            "message": rejection.message(),
            "detail": rejection.detail(),
        }),
        // The server failed: nothing was decided, so nothing is recorded as a verdict.
        Err(_) => return outcome.err().unwrap_or_else(|| unavailable("shadow evaluation")),
    };
    match record_event(state, trace.event(state, request_id, now, status)).await {
        Ok(_) => rejected(Rejection::new(
            RejectionCode::RuleInShadowMode,
            "rule.mode",
            Some(Value::from("enforce")),
            Some(Value::from("shadow")),
        )),
        Err(error) => unavailable(error),
    }
}

/// Everything up to the decision.
async fn attempt(
    state: &AppState,
    raw: &TokenRequest,
    trace: &mut Trace,
    now: i64,
) -> Result<(Grant, IssuerId), ExchangeError> {
    let assertion = raw
        .assertion
        .as_deref()
        .filter(|text| !text.is_empty())
        .ok_or_else(|| malformed("assertion", None, "required"))?;
    let limits = Limits::default();
    let request = parse_request(state, raw)?;

    let parties = state
        .parties
        .get(state, &request.organization_id, &request.federation_rule_id)
        .await?;
    trace.set("issuer_id", Value::from(parties.rule.spec.issuer_id.as_str()));
    trace.shadow = parties.rule.spec.mode == RuleMode::Shadow;
    let Parties {
        rule,
        issuer_record,
        issuer,
        service_account,
    } = parties.as_ref();
    exchange::check_consistency(&request, issuer, rule, service_account).map_err(rejected)?;

    let verified = verify(state, issuer_record, assertion, &limits, now)
        .await
        .map_err(rejected)?;
    let ctx = ExchangeContext {
        default_audience: &state.public_url,
        default_workspace_id: &state.default_workspace_id,
        leeway_seconds: DEFAULT_LEEWAY_SECONDS,
    };
    let decision = exchange::decide(&request, issuer, rule, service_account, &verified.claims, &ctx, now);
    trace.record_verified(verified);
    let grant = decision.map_err(rejected)?;
    if matches!(rule.spec.workspaces, RuleWorkspaces::All) && grant.workspace_id != state.default_workspace_id {
        check_workspace_live(state, &grant).await?;
    }
    Ok((grant, issuer.id.clone()))
}

/// Fetches `issuer_record`'s keys (`jwks_unavailable` when there are none) and verifies `assertion`
/// against them: the exchange's verification, shared with the simulation.
pub(crate) async fn verify(
    state: &AppState,
    issuer_record: &IssuerRecord,
    assertion: &str,
    limits: &Limits,
    now: i64,
) -> Result<keyless_jose::VerifiedJwt, Rejection> {
    let kid = keyless_jose::decode_unverified(assertion, limits)
        .ok()
        .and_then(|token| token.header.get("kid").and_then(Value::as_str).map(str::to_owned));
    let keys = state
        .issuer_keys
        .keys_for(issuer_record, kid.as_deref(), now)
        .await
        .map_err(|error| {
            Rejection::new(
                RejectionCode::JwksUnavailable,
                format!("jwks.{}", error.cause_code()),
                None,
                Some(Value::from(error.to_string())),
            )
        })?;
    keyless_jose::verify_jwt(assertion, &keys, limits).map_err(|error| Rejection::from_verification(&error))
}

/// A rule for all workspaces names none, so the workspace a request picks is checked here: it must
/// exist and be live (a listed one was checked when it was added). Only this path pays the read.
pub(crate) async fn check_workspace_live(state: &AppState, grant: &Grant) -> Result<(), ExchangeError> {
    let live = match state
        .store
        .workspace_get(&grant.organization_id, &grant.workspace_id)
        .await
    {
        Ok(workspace) => !workspace.audit.is_archived(),
        Err(StoreError::NotFound) => false,
        Err(error) => return Err(unavailable(error)),
    };
    if live {
        return Ok(());
    }
    Err(rejected(Rejection::new(
        RejectionCode::WorkspaceNotEnabled,
        "workspace_id",
        Some(Value::from("a live workspace of the organization")),
        Some(Value::from(grant.workspace_id.as_str())),
    )))
}

/// Mints the token and records it with its success event (or, for a used `jti`, the replay's).
async fn grant_and_record(
    state: &AppState,
    grant: Grant,
    issuer_id: IssuerId,
    mut trace: Trace,
    request_id: &str,
    now: i64,
) -> Result<IssuedToken, ExchangeError> {
    let minted = token::mint(clock::now_unix_millis())
        .map_err(|_| ExchangeError::Unavailable("the random generator failed".to_owned()))?;
    let scope = String::from(grant.scope.clone());
    trace.set("service_account_id", Value::from(grant.service_account_id.as_str()));
    trace.set("workspace_id", Value::from(grant.workspace_id.as_str()));
    let jti = grant.jti_to_record.clone().map(|(jti, keep_until)| JtiUse {
        issuer_id,
        jti,
        keep_until,
        replay_payload,
    });
    trace.set(
        "access_token",
        json!({ "sha256": token::hex(&minted.sha256), "scope": scope, "expires_at": grant.expires_at }),
    );
    let success = json!({ "outcome": "success", "reason": Value::Null, "detail": Value::Null });
    let entry = Entry::Grant {
        jti,
        token: AccessTokenRecord {
            hash: minted.key,
            organization_id: grant.organization_id,
            workspace_id: Some(grant.workspace_id),
            service_account_id: Some(grant.service_account_id),
            rule_id: Some(grant.rule_id),
            scope: grant.scope,
            created_at: now,
            expires_at: grant.expires_at,
            revoked_at: None,
        },
        event: Event::new(trace.event(state, request_id, now, success)).map_err(unavailable)?,
    };
    match state.recorder.record(entry).await.map_err(unavailable)? {
        Recorded::Committed => {
            count(Ok(()));
            Ok(IssuedToken {
                access_token: minted.secret,
                expires_in: grant.lifetime_seconds,
                scope,
            })
        }
        Recorded::Replayed => {
            let rejection =
                Rejection::jti_reused(grant.jti_to_record.map(|(jti, _)| jti).as_deref().unwrap_or_default());
            count(Err(&rejection));
            Err(ExchangeError::Rejected(rejection))
        }
    }
}

/// The event of a grant whose `jti` turned out used: the grant's, without the token it did not get,
/// refused with `jti_reused`. Made by the writer from the grant's payload, and only then.
fn replay_payload(payload: &mut Value, jti: &str) {
    if let Some(payload) = payload.as_object_mut() {
        if let Some(Value::Object(event_data)) = payload.get_mut("event_data") {
            event_data.remove("access_token");
        }
        payload.insert("status".to_owned(), failure_status(&Rejection::jti_reused(jti)));
    }
}

/// Parses the request's IDs; a malformed one is `malformed_request` naming the field.
fn parse_request(state: &AppState, raw: &TokenRequest) -> Result<ExchangeRequest, ExchangeError> {
    let rule_text = raw
        .federation_rule_id
        .as_deref()
        .ok_or_else(|| malformed("federation_rule_id", None, "required"))?;
    let federation_rule_id =
        RuleId::parse(rule_text).map_err(|_| malformed("federation_rule_id", Some(rule_text), "a fdrl_… ID"))?;
    let organization_id = match raw.organization_id.as_deref() {
        None => state.organization_id.clone(),
        Some(text) => OrganizationId::parse(text).map_err(|_| malformed("organization_id", Some(text), "a UUID"))?,
    };
    let service_account_id = raw
        .service_account_id
        .as_deref()
        .map(|text| {
            ServiceAccountId::parse(text).map_err(|_| malformed("service_account_id", Some(text), "a svac_… ID"))
        })
        .transpose()?;
    let workspace_id = raw
        .workspace_id
        .as_deref()
        .map(|text| {
            WorkspaceSelector::parse(text)
                .map_err(|_| malformed("workspace_id", Some(text), "a wrkspc_… ID or `default`"))
        })
        .transpose()?;
    let scope = raw
        .scope
        .as_deref()
        .map(|text| {
            ScopeSet::parse(text).map_err(|error| {
                rejected(Rejection::new(
                    RejectionCode::InvalidScope,
                    "request.scope",
                    None,
                    Some(Value::from(format!("{text:?}: {error}"))),
                ))
            })
        })
        .transpose()?;
    Ok(ExchangeRequest {
        federation_rule_id,
        organization_id,
        service_account_id,
        workspace_id,
        scope,
    })
}

/// Counts an outcome in `keyless_exchanges_total`.
fn count(outcome: Result<(), &Rejection>) {
    let (outcome, code) = match outcome {
        Ok(()) => ("success", ""),
        Err(rejection) => ("failure", rejection.code().as_str()),
    };
    metrics::counter!("keyless_exchanges_total", "outcome" => outcome, "code" => code).increment(1);
}

fn malformed(field: &str, seen: Option<&str>, expected: &str) -> ExchangeError {
    rejected(Rejection::new(
        RejectionCode::MalformedRequest,
        format!("request.{field}"),
        Some(Value::from(expected)),
        seen.map(Value::from),
    ))
}

fn rejected(rejection: Rejection) -> ExchangeError {
    ExchangeError::Rejected(rejection)
}

fn unavailable(error: impl std::fmt::Display) -> ExchangeError {
    ExchangeError::Unavailable(error.to_string())
}
