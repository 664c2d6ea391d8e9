//! Request authorization for the protected API: who is calling (an API key or an access token), may
//! they call this route (the operator's route table), and are they within their rate limits.
//!
//! Parts: [`Presented`] (the credential as sent), [`Principal`] (who it is), [`Refusal`] and its stable
//! codes, [`Authorizer`] (the route table, the credential cache and the rate limiter) with
//! [`Authorizer::check`], the one decision behind `/v1/authorize` and the built-in proxy.
//!
//! Order: path (canonical, [`keyless_core::route::canonical_path`]) → credential (present, well formed,
//! known, of this organization, active) → scope (the route's requirement) → rate limits. The first
//! failure decides; its code is stable and documented in `docs/authorize.md`.
//!
//! The credential cache holds what the store said about a credential (found records only, whatever
//! their state), keyed by its SHA-256 and stamped with [`keyless_store::Store::config_epoch`] read
//! before the store was. Every revocation, archive, disable or other configuration change moves the
//! epoch after it commits, so the next check after the change reads the store again: revocation takes
//! effect at once, on this node, and on other PostgreSQL nodes as soon as their `LISTEN` hears of it.
//! Expiry is compared with `now` on every check. When the epoch cannot be trusted (PostgreSQL without a
//! live listener), every check reads the store.
//!
//! Must not: log or keep the presented secret (only its hash is kept), or read the clock (`now` and
//! the monotonic instant are parameters).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::http::{HeaderName, HeaderValue};
use keyless_core::id::{ApiKeyId, OrganizationId, RuleId, ServiceAccountId, WorkspaceId};
use keyless_core::route::{RouteTable, canonical_path};
use keyless_core::scope::ScopeSet;
use keyless_store::StoreError;

use crate::service::token;
use crate::state::AppState;

/// A credential as the caller sent it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// None at all.
    Missing,
    /// `x-api-key`, or `Authorization: Bearer`: an API key or an access token (told apart by prefix).
    Secret(&'a str),
    /// Two different credentials, or an `Authorization` header that is not `Bearer`.
    Malformed,
}

impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Missing => "Missing",
            Self::Secret(_) => "Secret(…)",
            Self::Malformed => "Malformed",
        })
    }
}

/// What kind of principal a credential stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A workspace API key.
    ApiKey,
    /// A service account, through an access token minted by a federation rule.
    ServiceAccount,
    /// The bootstrap admin token (bound to no service account).
    Bootstrap,
}

impl PrincipalKind {
    /// The wire name: `api_key`, `service_account`, `bootstrap`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::ServiceAccount => "service_account",
            Self::Bootstrap => "bootstrap",
        }
    }
}

/// Who a credential is, as stored (state included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Its kind.
    pub kind: PrincipalKind,
    /// Its ID: `apikey_…`, `svac_…` or `bootstrap`.
    pub id: String,
    /// The organization.
    pub organization_id: OrganizationId,
    /// The workspace it is bound to (none for organization-level tokens).
    pub workspace_id: Option<WorkspaceId>,
    /// The service account (access tokens).
    pub service_account_id: Option<ServiceAccountId>,
    /// The API key (API keys).
    pub api_key_id: Option<ApiKeyId>,
    /// The rule that minted the access token.
    pub rule_id: Option<RuleId>,
    /// The scopes it holds.
    pub scope: ScopeSet,
    /// When it stops working, if ever.
    pub expires_at: Option<i64>,
    /// Whether it was revoked (a token) or archived (a key).
    pub revoked: bool,
    /// Whether it is disabled (an API key made inactive).
    pub disabled: bool,
    /// Its identity headers, made once per principal read from the store (the cache hands out the same
    /// principal to every check until the configuration changes) by `http::authorize::identity_headers`.
    pub headers: OnceLock<Box<[(HeaderName, HeaderValue)]>>,
}

/// Why a request is refused: the HTTP status, a stable code and a caller-safe message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 401, 403, 429 or 503.
    pub status: u16,
    /// The stable code (`missing_credential`, `insufficient_scope`, …).
    pub code: &'static str,
    /// What happened, for the caller; never a secret.
    pub message: String,
    /// The scopes that would admit the request (403 `insufficient_scope`).
    pub required_scopes: Option<String>,
    /// When to retry (429).
    pub retry_after: Option<Duration>,
}

impl Refusal {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            required_scopes: None,
            retry_after: None,
        }
    }
}

/// A decision: the principal when known, the matched route, and the refusal if any.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Who called, when the credential was recognised.
    pub principal: Option<Arc<Principal>>,
    /// The canonical path, when the target had one.
    pub path: Option<String>,
    /// The route pattern that matched (`None`: no route matched, or the path was refused).
    pub route: Option<String>,
    /// `None`: allowed.
    pub refusal: Option<Refusal>,
}

impl Decision {
    /// Whether the request may go on.
    pub fn allowed(&self) -> bool {
        self.refusal.is_none()
    }
}

/// A rate: sustained requests per second and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests allowed at once.
    pub burst: u32,
}

/// The configured rate limits: per workspace, service account and API key, with per-ID overrides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateLimits {
    /// Each workspace's limit.
    pub workspace: Option<Rate>,
    /// Each service account's limit.
    pub service_account: Option<Rate>,
    /// Each API key's limit.
    pub api_key: Option<Rate>,
    /// Limits for particular IDs (`wrkspc_…`, `svac_…`, `apikey_…`), replacing the kind's.
    pub overrides: HashMap<String, Rate>,
}

impl RateLimits {
    fn rate(&self, id: &str, default: Option<Rate>) -> Option<Rate> {
        self.overrides.get(id).copied().or(default)
    }
}

/// The settings of an [`Authorizer`].
#[derive(Debug, Clone)]
pub struct AuthorizeSettings {
    /// The route table.
    pub routes: RouteTable,
    /// The rate limits.
    pub rate_limits: RateLimits,
    /// The most credentials cached.
    pub cache_entries: usize,
}

impl Default for AuthorizeSettings {
    fn default() -> Self {
        Self {
            routes: RouteTable::builtin(),
            rate_limits: RateLimits::default(),
            cache_entries: 100_000,
        }
    }
}

struct Cached {
    epoch: u64,
    principal: Option<Arc<Principal>>,
}

/// The authorizer: route table, credential cache and rate limiter. One per server.
pub struct Authorizer {
    settings: AuthorizeSettings,
    /// Keyed by the credential's store key ([`token::key`]).
    cache: Mutex<HashMap<Box<[u8]>, Cached>>,
    limiter: Mutex<Limiter>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer").finish_non_exhaustive()
    }
}

impl Authorizer {
    /// An authorizer with `settings`.
    pub fn new(settings: AuthorizeSettings) -> Self {
        Self {
            settings,
            cache: Mutex::new(HashMap::new()),
            limiter: Mutex::new(Limiter::default()),
        }
    }

    /// The route table.
    pub fn routes(&self) -> &RouteTable {
        &self.settings.routes
    }

    /// Decides whether `credential` may make the request `method target` (the target as sent: path and
    /// query) at `now` (Unix seconds; `instant` for rate limits).
    pub async fn check(
        &self,
        state: &AppState,
        method: &str,
        target: &str,
        credential: Presented<'_>,
        now: i64,
        instant: Instant,
    ) -> Decision {
        let mut decision = Decision {
            principal: None,
            path: None,
            route: None,
            refusal: None,
        };
        let path = match canonical_path(target) {
            Ok(path) => path,
            Err(error) => {
                decision.refusal = Some(Refusal::new(
                    403,
                    "path_not_canonical",
                    format!("refused without a look at the credential: {error}"),
                ));
                return decision;
            }
        };
        let principal = match self.principal(state, credential, now).await {
            Ok(principal) => principal,
            Err((principal, refusal)) => {
                // A revoked, disabled or expired credential is still on the record as whose it was.
                decision.principal = principal;
                decision.path = Some(path);
                decision.refusal = Some(refusal);
                return decision;
            }
        };
        let requirement = self.settings.routes.requirement(method, &path);
        decision.route = requirement.route.map(str::to_owned);
        decision.path = Some(path);
        decision.principal = Some(Arc::clone(&principal));
        if !requirement.admits(&principal.scope) {
            let mut refusal = if requirement.scopes.is_empty() {
                Refusal::new(
                    403,
                    "route_not_allowed",
                    "no route of this server's table admits this request",
                )
            } else {
                Refusal::new(
                    403,
                    "insufficient_scope",
                    format!(
                        "this credential lacks a scope this route needs: one of `{}`",
                        requirement.scopes
                    ),
                )
            };
            refusal.required_scopes = Some(requirement.scopes.to_string());
            decision.refusal = Some(refusal);
            return decision;
        }
        decision.refusal = self.rate_limit(&principal, instant).err();
        decision
    }

    /// The principal behind `credential`, active at `now`; refused, with the principal when the
    /// credential was recognised.
    async fn principal(
        &self,
        state: &AppState,
        credential: Presented<'_>,
        now: i64,
    ) -> Result<Arc<Principal>, (Option<Arc<Principal>>, Refusal)> {
        let secret = match credential {
            Presented::Missing => {
                return Err((
                    None,
                    Refusal::new(
                        401,
                        "missing_credential",
                        "send an API key in `x-api-key` or an access token in `Authorization: Bearer`",
                    ),
                ));
            }
            Presented::Malformed => {
                return Err((
                    None,
                    Refusal::new(
                        401,
                        "malformed_credential",
                        "send one credential: an `x-api-key` header or an `Authorization: Bearer` header",
                    ),
                ));
            }
            Presented::Secret(secret) => secret,
        };
        let is_key = token::looks_like_api_key(secret);
        if !is_key && !token::looks_valid(secret) {
            return Err((
                None,
                Refusal::new(
                    401,
                    "malformed_credential",
                    "not a keyless API key or access token (prefix, length or checksum)",
                ),
            ));
        }
        let store_key = token::key(secret);
        let principal = self
            .lookup(state, &store_key, is_key)
            .await
            .map_err(|refusal| (None, refusal))?;
        let Some(principal) = principal.filter(|principal| principal.organization_id == state.organization_id) else {
            return Err((None, Refusal::new(401, "invalid_credential", "unknown credential")));
        };
        let noun = if is_key { "API key" } else { "access token" };
        let refusal = if principal.revoked {
            let verb = if is_key { "archived (revoked)" } else { "revoked" };
            Refusal::new(401, "credential_revoked", format!("this {noun} was {verb}"))
        } else if principal.disabled {
            Refusal::new(401, "credential_disabled", format!("this {noun} is inactive"))
        } else if principal.expires_at.is_some_and(|at| now >= at) {
            Refusal::new(401, "credential_expired", format!("this {noun} has expired"))
        } else {
            return Ok(principal);
        };
        Err((Some(principal), refusal))
    }

    /// What the store says about the credential with `store_key`, from the cache when current.
    async fn lookup(
        &self,
        state: &AppState,
        store_key: &[u8],
        is_key: bool,
    ) -> Result<Option<Arc<Principal>>, Refusal> {
        let epoch = state.store.config_epoch();
        if let (Some(epoch), Ok(cache)) = (epoch, self.cache.lock())
            && let Some(cached) = cache.get(store_key)
            && cached.epoch == epoch
        {
            return Ok(cached.principal.clone());
        }
        let found = if is_key {
            state.store.api_key_get_by_hash(store_key).await.map(|key| Principal {
                kind: PrincipalKind::ApiKey,
                id: key.id.as_str().to_owned(),
                organization_id: key.organization_id,
                workspace_id: Some(key.workspace_id),
                service_account_id: None,
                rule_id: None,
                scope: key.oauth_scope,
                expires_at: key.expires_at,
                revoked: key.audit.archived_at.is_some(),
                disabled: key.disabled,
                api_key_id: Some(key.id),
                headers: OnceLock::new(),
            })
        } else {
            state.store.access_token_get(store_key).await.map(|token| Principal {
                kind: if token.service_account_id.is_some() {
                    PrincipalKind::ServiceAccount
                } else {
                    PrincipalKind::Bootstrap
                },
                id: token
                    .service_account_id
                    .as_ref()
                    .map_or_else(|| "bootstrap".to_owned(), |id| id.as_str().to_owned()),
                organization_id: token.organization_id,
                workspace_id: token.workspace_id,
                service_account_id: token.service_account_id,
                api_key_id: None,
                rule_id: token.rule_id,
                scope: token.scope,
                expires_at: Some(token.expires_at),
                revoked: token.revoked_at.is_some(),
                disabled: false,
                headers: OnceLock::new(),
            })
        };
        let principal = match found {
            Ok(principal) => Some(Arc::new(principal)),
            // Not cached: a token minted a moment later changes no epoch.
            Err(StoreError::NotFound) => return Ok(None),
            Err(error) => {
                tracing::error!(%error, "reading a credential for authorization");
                return Err(Refusal::new(
                    503,
                    "store_unavailable",
                    "the credential could not be checked; retry",
                ));
            }
        };
        if let (Some(epoch), Ok(mut cache)) = (epoch, self.cache.lock()) {
            if cache.len() >= self.settings.cache_entries {
                cache.retain(|_, cached| cached.epoch == epoch);
                if cache.len() >= self.settings.cache_entries {
                    cache.clear();
                }
            }
            cache.insert(
                store_key.into(),
                Cached {
                    epoch,
                    principal: principal.clone(),
                },
            );
        }
        Ok(principal)
    }

    /// Takes one request from each bucket the principal is subject to, or none when any is empty.
    fn rate_limit(&self, principal: &Principal, instant: Instant) -> Result<(), Refusal> {
        let limits = &self.settings.rate_limits;
        let mut buckets: Vec<(&str, &'static str, Rate)> = Vec::new();
        if let Some(id) = &principal.api_key_id
            && let Some(rate) = limits.rate(id.as_str(), limits.api_key)
        {
            buckets.push((id.as_str(), "API key", rate));
        }
        if let Some(id) = &principal.service_account_id
            && let Some(rate) = limits.rate(id.as_str(), limits.service_account)
        {
            buckets.push((id.as_str(), "service account", rate));
        }
        if let Some(id) = &principal.workspace_id
            && let Some(rate) = limits.rate(id.as_str(), limits.workspace)
        {
            buckets.push((id.as_str(), "workspace", rate));
        }
        if buckets.is_empty() {
            return Ok(());
        }
        let Ok(mut limiter) = self.limiter.lock() else {
            return Ok(());
        };
        limiter.take(&buckets, instant).map_err(|(what, wait)| Refusal {
            retry_after: Some(wait),
            ..Refusal::new(
                429,
                "rate_limited",
                format!("the {what}'s rate limit is reached; retry later"),
            )
        })
    }
}

/// Generic cell rate algorithm buckets: for each ID, the theoretical arrival time of its next request.
#[derive(Default)]
struct Limiter {
    origin: Option<Instant>,
    next_arrival: HashMap<String, Duration>,
}

impl Limiter {
    /// The most IDs remembered before those with nothing pending are forgotten.
    const PRUNE_AT: usize = 100_000;

    fn take(
        &mut self,
        buckets: &[(&str, &'static str, Rate)],
        instant: Instant,
    ) -> Result<(), (&'static str, Duration)> {
        let origin = *self.origin.get_or_insert(instant);
        let now = instant.saturating_duration_since(origin);
        let mut updates = Vec::with_capacity(buckets.len());
        for &(id, what, rate) in buckets {
            let interval = Duration::from_secs_f64(1.0 / rate.per_second.max(f64::MIN_POSITIVE));
            let tolerance = interval.saturating_mul(rate.burst.saturating_sub(1));
            let arrival = self.next_arrival.get(id).copied().unwrap_or(now).max(now);
            let ahead = arrival - now;
            if ahead > tolerance {
                let wait = ahead - tolerance;
                return Err((what, wait));
            }
            updates.push((id, arrival + interval));
        }
        if self.next_arrival.len() >= Self::PRUNE_AT {
            self.next_arrival.retain(|_, arrival| *arrival > now);
        }
        for (id, arrival) in updates {
            self.next_arrival.insert(id.to_owned(), arrival);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn a_bucket_admits_its_burst_then_its_rate() {
        let mut limiter = Limiter::default();
        let start = crate::clock::monotonic();
        let rate = Rate {
            per_second: 10.0,
            burst: 3,
        };
        let at = |ms: u64| start + Duration::from_millis(ms);
        for _ in 0..3 {
            limiter.take(&[("apikey_a", "API key", rate)], at(0)).unwrap();
        }
        let (what, wait) = limiter.take(&[("apikey_a", "API key", rate)], at(0)).unwrap_err();
        assert_eq!(what, "API key");
        assert_eq!(wait, Duration::from_millis(100));
        // Another ID has its own bucket.
        limiter.take(&[("apikey_b", "API key", rate)], at(0)).unwrap();
        // One interval later, one more request.
        limiter.take(&[("apikey_a", "API key", rate)], at(100)).unwrap();
        assert!(limiter.take(&[("apikey_a", "API key", rate)], at(100)).is_err());
    }

    #[test]
    fn a_refusal_takes_from_no_bucket() {
        let mut limiter = Limiter::default();
        let start = crate::clock::monotonic();
        let roomy = Rate {
            per_second: 1000.0,
            burst: 1000,
        };
        let tight = Rate {
            per_second: 1.0,
            burst: 1,
        };
        limiter
            .take(
                &[("apikey_a", "API key", roomy), ("wrkspc_w", "workspace", tight)],
                start,
            )
            .unwrap();
        let (what, _) = limiter
            .take(
                &[("apikey_a", "API key", roomy), ("wrkspc_w", "workspace", tight)],
                start,
            )
            .unwrap_err();
        assert_eq!(what, "workspace");
        // The refused request took nothing from the key's bucket: 999 more fit in its burst.
        for _ in 0..999 {
            limiter.take(&[("apikey_a", "API key", roomy)], start).unwrap();
        }
        assert!(limiter.take(&[("apikey_a", "API key", roomy)], start).is_err());
    }
}
