//! The decision: the grant of a good exchange, and every rejection code `decide` can produce, each with
//! its detail (`check`, `expected`, `seen`).

use std::collections::BTreeSet;

use keyless_core::exchange::Grant;
use keyless_core::id::{IssuerId, OrganizationId, RuleId, ServiceAccountId, WorkspaceId, WorkspaceSelector};
use keyless_core::rejection::{OAuthError, Rejection, RejectionCode};
use keyless_core::rule::RuleWorkspaces;
use keyless_core::scope::ScopeSet;
use keyless_core::service_account::OrganizationRole;
use serde_json::{Value, json};

use crate::fixtures::*;

const SUB: &str = "repo:octo-org/octo-repo:ref:refs/heads/main";
const CONDITION: &str = r#"claims.ref.startsWith("refs/heads/")"#;
const OTHER_ORGANIZATION: &str = "0190a1b2-c3d4-7e5f-8a9b-ffffffffffff";

fn scenario() -> Scenario {
    let issuer = issuer(GITHUB);
    let rule = rule(
        &issuer,
        json!({
            "match": {
                "subject_prefix": "repo:octo-org/*",
                "claims": { "ref_protected": "true" },
                "condition": CONDITION,
            },
            "oauth_scope": "workspace:developer workspace:inference",
            "token_lifetime_seconds": 3600,
        }),
    )
    .unwrap();
    Scenario::new(issuer, rule, github_actions(SUB))
}

fn token(changes: Value) -> Value {
    with(github_actions(SUB), changes)
}

/// Applies `change` to the good scenario and checks the rejection: code, check, expected, seen.
fn check(
    change: impl FnOnce(&mut Scenario),
    code: &str,
    check: &str,
    expected: Option<Value>,
    seen: Option<Value>,
) -> RejectionCode {
    let mut scenario = scenario();
    change(&mut scenario);
    let rejection = scenario.decide().expect_err("the exchange must be rejected");
    let detail = rejection.detail();
    assert_eq!(
        (
            rejection.code().as_str(),
            detail.check.as_str(),
            &detail.expected,
            &detail.seen
        ),
        (code, check, &expected, &seen),
    );
    rejection.code()
}

fn window() -> Option<Value> {
    Some(json!({ "now": NOW, "leeway_seconds": 30 }))
}

#[test]
fn a_good_exchange_is_granted() {
    let grant = scenario().decide().unwrap();
    let exp = NOW - 20 + 300;
    assert_eq!(
        grant,
        Grant {
            organization_id: organization_id(),
            workspace_id: default_workspace_id(),
            service_account_id: ServiceAccountId::parse(SERVICE_ACCOUNT_ID).unwrap(),
            rule_id: RuleId::parse(RULE_ID).unwrap(),
            scope: ScopeSet::parse("workspace:developer workspace:inference").unwrap(),
            // min(3600, 2 × (exp − now))
            lifetime_seconds: 2 * (exp - NOW),
            expires_at: NOW + 2 * (exp - NOW),
            jti_to_record: Some(("8e1c7a32-5b0e-4f0a-9f43-0d1c5e0b6a11".to_owned(), exp + 30)),
        }
    );
}

#[test]
fn request_options_shape_the_grant() {
    let mut scenario = scenario();
    scenario.request.service_account_id = Some(ServiceAccountId::parse(SERVICE_ACCOUNT_ID).unwrap());
    scenario.request.workspace_id = Some(WorkspaceSelector::Default);
    scenario.request.scope = Some(ScopeSet::parse("workspace:inference org:admin").unwrap());
    scenario.issuer.check_jti = false;
    let grant = scenario.decide().unwrap();
    assert_eq!(grant.scope.to_string(), "workspace:inference");
    assert_eq!(grant.workspace_id, default_workspace_id());
    assert_eq!(grant.jti_to_record, None);

    let other = WorkspaceId::parse("wrkspc_other").unwrap();
    scenario.rule.spec.workspaces = RuleWorkspaces::All;
    scenario.request.workspace_id = Some(WorkspaceSelector::Id(other.clone()));
    assert_eq!(scenario.decide().unwrap().workspace_id, other);

    // Without a jti there is nothing to record, even with check_jti on.
    scenario.issuer.check_jti = true;
    scenario.claims = token(json!({ "jti": null }));
    assert_eq!(scenario.decide().unwrap().jti_to_record, None);

    // An admin service account gets org:admin when the rule grants it.
    scenario.rule.spec.oauth_scope = ScopeSet::parse("org:admin workspace:developer").unwrap();
    scenario.service_account.organization_role = OrganizationRole::Admin;
    scenario.request.scope = Some(ScopeSet::parse("org:admin").unwrap());
    assert_eq!(scenario.decide().unwrap().scope.to_string(), "org:admin");
}

#[test]
fn every_rejection_code_of_the_decision() {
    let other_org = || OrganizationId::parse(OTHER_ORGANIZATION).unwrap();
    let mut reached = BTreeSet::new();
    let mut reach = |code: RejectionCode| reached.insert(code.as_str());

    // 1. consistency, merged into rule_not_found
    reach(check(
        |s| s.request.federation_rule_id = RuleId::parse("fdrl_other").unwrap(),
        "rule_not_found",
        "rule.id",
        Some(json!("fdrl_other")),
        Some(json!(RULE_ID)),
    ));
    reach(check(
        |s| s.rule.organization_id = other_org(),
        "rule_not_found",
        "rule.organization_id",
        Some(json!(ORGANIZATION)),
        Some(json!(OTHER_ORGANIZATION)),
    ));
    reach(check(
        |s| s.rule.spec.issuer_id = IssuerId::parse("fdis_other").unwrap(),
        "rule_not_found",
        "rule.issuer_id",
        Some(json!("fdis_other")),
        Some(json!(ISSUER_ID)),
    ));
    reach(check(
        |s| s.issuer.organization_id = other_org(),
        "rule_not_found",
        "issuer.organization_id",
        Some(json!(ORGANIZATION)),
        Some(json!(OTHER_ORGANIZATION)),
    ));
    reach(check(
        |s| s.service_account.organization_id = other_org(),
        "rule_not_found",
        "service_account.organization_id",
        Some(json!(ORGANIZATION)),
        Some(json!(OTHER_ORGANIZATION)),
    ));
    reach(check(
        |s| s.rule.archived = true,
        "rule_not_found",
        "rule.archived",
        Some(json!(false)),
        Some(json!(true)),
    ));
    reach(check(
        |s| s.issuer.archived = true,
        "rule_not_found",
        "issuer.archived",
        Some(json!(false)),
        Some(json!(true)),
    ));

    // 2. claims
    let slash = format!("{GITHUB}/");
    reach(check(
        |s| s.claims = token(json!({ "iss": slash })),
        "issuer_mismatch",
        "iss",
        Some(json!(GITHUB)),
        Some(json!(format!("{GITHUB}/"))),
    ));
    reach(check(
        |s| s.claims = token(json!({ "aud": "sts.amazonaws.com" })),
        "audience_mismatch",
        "aud",
        Some(json!(AUDIENCE)),
        Some(json!("sts.amazonaws.com")),
    ));
    reach(check(
        |s| s.claims = token(json!({ "sub": null })),
        "missing_claim",
        "sub",
        None,
        None,
    ));
    reach(check(
        |s| s.claims = token(json!({ "exp": "1760000280" })),
        "invalid_claim",
        "exp",
        Some(json!("a non-negative JSON number of seconds")),
        Some(json!("1760000280")),
    ));
    reach(check(
        |s| s.claims = token(json!({ "iat": NOW - 331, "nbf": null, "exp": NOW - 31 })),
        "token_expired",
        "exp",
        window(),
        Some(json!(NOW - 31)),
    ));
    reach(check(
        |s| s.claims = token(json!({ "nbf": NOW + 31 })),
        "token_not_yet_valid",
        "nbf",
        window(),
        Some(json!(NOW + 31)),
    ));
    reach(check(
        |s| s.claims = token(json!({ "iat": NOW + 31, "nbf": null, "exp": NOW + 331 })),
        "token_issued_in_future",
        "iat",
        window(),
        Some(json!(NOW + 31)),
    ));
    reach(check(
        |s| s.issuer.max_jwt_lifetime_seconds = 299,
        "token_lifetime_exceeds_maximum",
        "exp - iat",
        Some(json!(299)),
        Some(json!(300)),
    ));

    // 3. match
    reach(check(
        |s| s.claims = token(json!({ "sub": "repo:octo-org-evil/octo-repo:pull_request" })),
        "subject_mismatch",
        "match.subject_prefix",
        Some(json!("repo:octo-org/*")),
        Some(json!("repo:octo-org-evil/octo-repo:pull_request")),
    ));
    reach(check(
        |s| s.claims = token(json!({ "ref_protected": "false" })),
        "claim_mismatch",
        "match.claims.ref_protected",
        Some(json!("true")),
        Some(json!("false")),
    ));
    reach(check(
        |s| s.claims = token(json!({ "ref_protected": true })),
        "claim_mismatch",
        "match.claims.ref_protected",
        Some(json!("true")),
        Some(json!(true)),
    ));
    reach(check(
        |s| s.claims = token(json!({ "ref_protected": null })),
        "claim_mismatch",
        "match.claims.ref_protected",
        Some(json!("true")),
        None,
    ));
    reach(check(
        |s| s.claims = token(json!({ "ref": "refs/tags/v1" })),
        "condition_false",
        "match.condition",
        Some(json!(CONDITION)),
        Some(json!(false)),
    ));
    reach(check(
        |s| s.claims = token(json!({ "ref": null })),
        "condition_false",
        "match.condition",
        Some(json!(CONDITION)),
        Some(json!("no such key: ref")),
    ));
    let overload = "found no matching overload for 'startsWith' applied to 'int.(string)'";
    reach(check(
        |s| s.claims = token(json!({ "ref": 7 })),
        "condition_error",
        "match.condition",
        Some(json!(CONDITION)),
        Some(json!(overload)),
    ));

    // 4. service account
    reach(check(
        |s| s.request.service_account_id = Some(ServiceAccountId::parse("svac_other").unwrap()),
        "service_account_mismatch",
        "request.service_account_id",
        Some(json!(SERVICE_ACCOUNT_ID)),
        Some(json!("svac_other")),
    ));
    reach(check(
        |s| s.service_account.id = ServiceAccountId::parse("svac_other").unwrap(),
        "service_account_mismatch",
        "service_account.id",
        Some(json!(SERVICE_ACCOUNT_ID)),
        Some(json!("svac_other")),
    ));
    reach(check(
        |s| s.service_account.archived = true,
        "service_account_archived",
        "service_account.archived",
        Some(json!(false)),
        Some(json!(true)),
    ));

    // 5. workspace
    reach(check(
        |s| s.request.workspace_id = Some(WorkspaceSelector::parse("wrkspc_other").unwrap()),
        "workspace_not_enabled",
        "workspace_id",
        Some(json!([DEFAULT_WORKSPACE])),
        Some(json!("wrkspc_other")),
    ));
    reach(check(
        |s| s.rule.spec.workspaces = RuleWorkspaces::Listed(BTreeSet::new()),
        "workspace_not_enabled",
        "workspace_id",
        Some(json!([])),
        None,
    ));
    let two = || {
        RuleWorkspaces::Listed(BTreeSet::from([
            default_workspace_id(),
            WorkspaceId::parse("wrkspc_other").unwrap(),
        ]))
    };
    reach(check(
        |s| s.rule.spec.workspaces = two(),
        "workspace_id_required",
        "workspace_id",
        Some(json!([DEFAULT_WORKSPACE, "wrkspc_other"])),
        None,
    ));
    reach(check(
        |s| s.rule.spec.workspaces = RuleWorkspaces::All,
        "workspace_id_required",
        "workspace_id",
        Some(json!("all")),
        None,
    ));

    // 6. scope
    reach(check(
        |s| s.request.scope = Some(ScopeSet::parse("org:admin").unwrap()),
        "invalid_scope",
        "scope",
        Some(json!("workspace:developer workspace:inference")),
        Some(json!("org:admin")),
    ));
    reach(check(
        |s| s.rule.spec.oauth_scope = ScopeSet::parse("org:admin").unwrap(),
        "invalid_scope",
        "scope",
        Some(json!("")),
        None,
    ));

    // Replay: the server reports a conflicting jti record with this rejection.
    let reused = Rejection::jti_reused("8e1c7a32");
    assert_eq!(
        (
            reused.code().as_str(),
            reused.detail().check.as_str(),
            &reused.detail().seen
        ),
        ("jti_reused", "jti", &Some(json!("8e1c7a32")))
    );
    reach(reused.code());

    // Reached by the server before or around the decision (its HTTP tests cover them).
    let verification = [
        "malformed_request",
        "unsupported_grant_type",
        "malformed_token",
        "token_too_large",
        "algorithm_not_allowed",
        "key_not_found",
        "jwks_unavailable",
        "invalid_signature",
        // A rule in shadow mode is decided here in full; the server then refuses (tests/it/shadow.rs).
        "rule_in_shadow_mode",
    ];
    let unreached: Vec<&str> = RejectionCode::ALL
        .iter()
        .map(|code| code.as_str())
        .filter(|code| !reached.contains(code) && !verification.contains(code))
        .collect();
    assert!(unreached.is_empty(), "not reached: {unreached:?}");
}

#[test]
fn callers_get_codes_and_messages_never_expected_values() {
    let mut scenario = scenario();
    scenario.claims = token(json!({ "sub": "repo:octo-org-evil/octo-repo:pull_request" }));
    let rejection = scenario.decide().unwrap_err();
    assert_eq!(rejection.oauth_error(), OAuthError::InvalidGrant);
    assert!(!rejection.to_string().contains("octo-org"), "{rejection}");

    scenario.claims = github_actions(SUB);
    scenario.rule.spec.workspaces = RuleWorkspaces::All;
    assert_eq!(scenario.decide().unwrap_err().oauth_error(), OAuthError::InvalidRequest);
    scenario.request.workspace_id = Some(WorkspaceSelector::Default);
    scenario.request.scope = Some(ScopeSet::parse("custom:thing").unwrap());
    assert_eq!(scenario.decide().unwrap_err().oauth_error(), OAuthError::InvalidScope);
}
