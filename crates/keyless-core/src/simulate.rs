//! Simulation: the exchange decision explained. For one rule and one claim set, every check the
//! decision makes is run — not only up to the first failure — and reported with what it expected and
//! what it saw, next to the verdict the decision itself gives.
//!
//! Parts: [`Verification`] (what became of the signature), [`Check`], [`Simulation`], [`simulate`].
//!
//! No drift by construction: the verdict is [`crate::exchange::decide`]'s result (after the consistency
//! check and the signature, in the exchange's order), and the checks call the very functions `decide`
//! is made of ([`crate::claims`], [`crate::rule`], [`crate::scope::effective_scope`],
//! [`crate::lifetime`]), in `decide`'s order — so the first failed check is the verdict's rejection,
//! detail and all (a property test holds this). Check names are the rejection vocabulary's `check`
//! (`iss`, `aud`, `exp`, `match.subject_prefix`, `match.claims.<name>`, `scope`, …); a check that
//! cannot run because what it needs is absent or malformed (the lifetime of a token without `exp`) is
//! left out: the check that failed instead is listed.
//!
//! What a simulation cannot see: whether the token's `jti` was already used (the store's business).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::claims::{self, ClaimExpectations};
use crate::exchange::{self, ExchangeContext, ExchangeRequest, Grant};
use crate::issuer::Issuer;
use crate::rejection::{Rejection, RejectionCode};
use crate::rule::{self, Rule};
use crate::scope;
use crate::service_account::ServiceAccount;

/// What became of the token's signature before the claims were looked at.
#[derive(Debug, Clone, Copy)]
pub enum Verification<'a> {
    /// It verified against the issuer's keys.
    Verified,
    /// It did not (or the keys could not be had): the exchange would stop with this rejection.
    Failed(&'a Rejection),
    /// Nobody looked: a claim set given as such, or a token decoded without verification. The verdict
    /// is what the exchange would decide if the signature verified.
    NotChecked,
}

/// One check: passed, or failed with its stable code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// What was checked, in the rejection detail's vocabulary (`match.claims.repository`).
    pub check: String,
    /// Whether it passed.
    pub passed: bool,
    /// The code a failure is reported under; `None` when it passed.
    pub code: Option<RejectionCode>,
    /// What the check expected, when there is a value to show.
    pub expected: Option<Value>,
    /// What it saw; `None` when absent.
    pub seen: Option<Value>,
}

impl Check {
    fn passed(check: &str, expected: Option<Value>, seen: Option<Value>) -> Self {
        Self {
            check: check.to_owned(),
            passed: true,
            code: None,
            expected,
            seen,
        }
    }

    fn failed(rejection: &Rejection) -> Self {
        let detail = rejection.detail();
        Self {
            check: detail.check.clone(),
            passed: false,
            code: Some(rejection.code()),
            expected: detail.expected.clone(),
            seen: detail.seen.clone(),
        }
    }
}

/// A rule simulated against a claim set.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulation {
    /// Every check, in the order the decision makes them.
    pub checks: Vec<Check>,
    /// What the exchange would do: the grant, or the rejection (the first failed check).
    pub verdict: Result<Grant, Rejection>,
}

/// Simulates the exchange of `claims` through `rule` at `now`; the arguments are [`exchange::decide`]'s,
/// plus what became of the signature.
#[allow(clippy::too_many_arguments)]
pub fn simulate(
    request: &ExchangeRequest,
    issuer: &Issuer,
    rule: &Rule,
    service_account: &ServiceAccount,
    claims: &Map<String, Value>,
    verification: Verification<'_>,
    ctx: &ExchangeContext<'_>,
    now: i64,
) -> Simulation {
    // The exchange's order: consistency (before any key is fetched), the signature, the decision.
    let verdict = exchange::check_consistency(request, issuer, rule, service_account)
        .and_then(|()| match verification {
            Verification::Failed(rejection) => Err(rejection.clone()),
            Verification::Verified | Verification::NotChecked => Ok(()),
        })
        .and_then(|()| exchange::decide(request, issuer, rule, service_account, claims, ctx, now));
    Simulation {
        checks: explain(request, issuer, rule, service_account, claims, verification, ctx, now),
        verdict,
    }
}

/// Every check, in the decision's order.
#[allow(clippy::too_many_arguments)]
fn explain(
    request: &ExchangeRequest,
    issuer: &Issuer,
    rule: &Rule,
    service_account: &ServiceAccount,
    claims: &Map<String, Value>,
    verification: Verification<'_>,
    ctx: &ExchangeContext<'_>,
    now: i64,
) -> Vec<Check> {
    let mut checks = Checks(Vec::new());
    checks.push(
        exchange::check_consistency(request, issuer, rule, service_account),
        "rule",
        || {
            (
                Some(Value::from(request.federation_rule_id.as_str())),
                Some(Value::from(rule.id.as_str())),
            )
        },
    );
    match verification {
        Verification::Verified => checks.0.push(Check::passed("signature", None, None)),
        Verification::Failed(rejection) => checks.0.push(Check::failed(rejection)),
        Verification::NotChecked => {}
    }

    // Claim validation, in `claims::validate`'s order.
    let expectations = ClaimExpectations {
        issuer_url: &issuer.issuer_url,
        audience: rule.spec.r#match.expected_audience(ctx.default_audience),
        max_lifetime_seconds: issuer.max_jwt_lifetime_seconds,
        leeway_seconds: ctx.leeway_seconds,
    };
    let leeway = ctx.leeway_seconds;
    let seen = |name: &str| claims.get(name).cloned();
    checks.push(claims::check_issuer(claims, expectations.issuer_url), "iss", || {
        (Some(Value::from(expectations.issuer_url)), seen("iss"))
    });
    checks.push(claims::check_subject(claims), "sub", || {
        (Some(Value::from("a non-empty string")), seen("sub"))
    });
    checks.push(claims::check_audience(claims, expectations.audience), "aud", || {
        (Some(Value::from(expectations.audience)), seen("aud"))
    });
    let expires_at = checks.keep(claims::required_date(claims, "exp"));
    let issued_at = checks.keep(claims::required_date(claims, "iat"));
    let not_before = checks.keep(claims::optional_date(claims, "nbf")).flatten();
    let window = || Some(claims::window(now, leeway));
    if let Some(exp) = expires_at {
        checks.push(claims::check_not_expired(exp, now, leeway), "exp", || {
            (window(), seen("exp"))
        });
    }
    if let Some(nbf) = not_before {
        checks.push(claims::check_not_before(nbf, now, leeway), "nbf", || {
            (window(), seen("nbf"))
        });
    }
    if let Some(iat) = issued_at {
        checks.push(claims::check_issued_at(iat, now, leeway), "iat", || {
            (window(), seen("iat"))
        });
    }
    if let (Some(exp), Some(iat)) = (expires_at, issued_at) {
        let lifetime = claims::check_lifetime(exp, iat, expectations.max_lifetime_seconds);
        let lifetime_seen = lifetime.as_ref().ok().map(|seconds| Value::from(*seconds));
        checks.push(lifetime, "exp - iat", || {
            (Some(Value::from(expectations.max_lifetime_seconds)), lifetime_seen)
        });
    }
    if claims.contains_key("jti") {
        checks.push(claims::check_jti(claims), "jti", || {
            (Some(Value::from("a non-empty string")), seen("jti"))
        });
    }

    // The rule's `match`, in `Match::check`'s order.
    let r#match = &rule.spec.r#match;
    if let Some(pattern) = &r#match.subject_prefix {
        let subject = match claims.get("sub") {
            Some(Value::String(subject)) => rule::check_subject(pattern, subject),
            other => Err(Rejection::new(
                RejectionCode::SubjectMismatch,
                "match.subject_prefix",
                Some(Value::from(pattern.to_string())),
                other.cloned(),
            )),
        };
        checks.push(subject, "match.subject_prefix", || {
            (Some(Value::from(pattern.to_string())), seen("sub"))
        });
    }
    for (name, expected) in &r#match.claims {
        checks.push(
            rule::check_claim(name, expected, claims),
            &format!("match.claims.{name}"),
            || (Some(Value::from(expected.as_str())), seen(name)),
        );
    }
    if let Some(condition) = &r#match.condition {
        checks.push(rule::check_condition(condition, claims), "match.condition", || {
            (Some(Value::from(condition.source())), Some(Value::from(true)))
        });
    }

    // The target, the workspace, the scope and the lifetime.
    checks.push(
        exchange::check_service_account(request, rule, service_account),
        "service_account",
        || {
            (
                Some(Value::from(rule.spec.target.as_str())),
                Some(Value::from(service_account.id.as_str())),
            )
        },
    );
    let workspace = exchange::choose_workspace(request.workspace_id.as_ref(), &rule.spec.workspaces, ctx);
    let workspace_seen = workspace.as_ref().ok().map(|id| Value::from(id.as_str()));
    checks.push(workspace, "workspace_id", || {
        (Some(exchange::workspaces_json(&rule.spec.workspaces)), workspace_seen)
    });
    let granted = scope::effective_scope(
        request.scope.as_ref(),
        &rule.spec.oauth_scope,
        service_account.organization_role,
    );
    let granted_seen = granted.as_ref().ok().map(|scope| Value::from(scope.to_string()));
    checks.push(granted, "scope", || {
        let allowed = rule.spec.oauth_scope.allowed_for(service_account.organization_role);
        (Some(Value::from(allowed.to_string())), granted_seen)
    });
    if let Some(exp) = expires_at {
        let lifetime = rule.spec.token_lifetime;
        checks.0.push(Check::passed(
            "token_lifetime_seconds",
            Some(Value::from(lifetime.seconds())),
            Some(Value::from(lifetime.granted(exp, now))),
        ));
    }
    checks.0
}

/// The checks so far.
struct Checks(Vec<Check>);

impl Checks {
    /// Records `result` under `check` (its `expected` and `seen` from `values` when it passed, from the
    /// rejection's detail when it failed).
    fn push<T>(
        &mut self,
        result: Result<T, Rejection>,
        check: &str,
        values: impl FnOnce() -> (Option<Value>, Option<Value>),
    ) {
        self.0.push(match result {
            Ok(_) => {
                let (expected, seen) = values();
                Check::passed(check, expected, seen)
            }
            Err(rejection) => Check::failed(&rejection),
        });
    }

    /// The value of a parsing step; a failure is recorded as a failed check.
    fn keep<T>(&mut self, result: Result<T, Rejection>) -> Option<T> {
        result.map_err(|rejection| self.0.push(Check::failed(&rejection))).ok()
    }
}
