//! Simulation parity: for random claim sets shaped like real providers' tokens and random rules, the
//! simulation's verdict is `decide`'s, every check passes exactly when the verdict is a grant, and the
//! first failed check is the verdict's rejection, detail and all.
//!
//! The rules are mostly built from the token itself (its own subject, some of its own claims, its own
//! issuer) so that grants are common: over 2000 cases about 6% are grants and every rejection code
//! `decide` can give occurs (measured when the generator was written).

use std::collections::{BTreeMap, BTreeSet};

use keyless_core::condition::Condition;
use keyless_core::exchange::{self, ExchangeContext};
use keyless_core::id::{RuleId, ServiceAccountId, WorkspaceId, WorkspaceSelector};
use keyless_core::lifetime::TokenLifetime;
use keyless_core::name::Name;
use keyless_core::rejection::{Rejection, RejectionCode};
use keyless_core::rule::{Match, Rule, RuleMode, RuleSpec, RuleWorkspaces, SubjectPattern};
use keyless_core::scope::ScopeSet;
use keyless_core::service_account::OrganizationRole;
use keyless_core::simulate::{Check, Verification, simulate};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::fixtures::*;

const SUBJECTS: &[&str] = &[
    "repo:octo-org/octo-repo:ref:refs/heads/main",
    "repo:octo-org/octo-repo:pull_request",
    "repo:octo-org@65/octo-repo@74:environment:prod",
    "repo:evil-org/octo-repo:ref:refs/heads/main",
];
const PATTERNS: &[&str] = &[
    "repo:octo-org/*",
    "repo:octo-org/octo-repo:ref:refs/heads/main",
    "system:serviceaccount:ci:*",
    "project_path:my-group/my-project:*",
    "112233445566778899000",
    "*",
];
const CLAIMS: &[(&str, &str)] = &[
    ("repository_owner", "octo-org"),
    ("repository_id", "74"),
    ("ref", "refs/heads/main"),
    ("namespace_path", "my-group"),
    ("runner_id", "5"),
    ("email", "deployer@my-project.iam.gserviceaccount.com"),
    ("event_name", "push"),
];
const CONDITIONS: &[&str] = &[
    r#"claims.ref == "refs/heads/main""#,
    r#"claims["kubernetes.io"].namespace == "ci""#,
    "claims.google.compute_engine.project_number == 123456789012",
    "claims.runner_id > 1",
    r#"claims.event_name != "pull_request""#,
];
/// Claims a mutation may touch, and what it may put there (`null` removes the claim).
const MUTABLE: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "ref",
    "repository_owner",
    "runner_id",
];

fn replacement() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!("")),
        Just(json!("refs/heads/main")),
        Just(json!(AUDIENCE)),
        Just(json!([AUDIENCE, "other"])),
        Just(json!(["other"])),
        Just(json!(GITHUB)),
        Just(json!(5)),
        Just(json!(-1)),
        Just(json!(1.5e300)),
        (NOW - 7200..NOW + 7200).prop_map(Value::from),
        Just(json!({ "nested": true })),
    ]
}

fn token() -> impl Strategy<Value = Value> {
    let shape = prop_oneof![
        prop::sample::select(SUBJECTS).prop_map(github_actions),
        (60..40_000_i64).prop_map(kubernetes),
        Just(gitlab()),
        prop::sample::select(&[GOOGLE, "accounts.google.com"][..]).prop_map(google),
    ];
    let mutations = prop_oneof![
        Just(Vec::new()),
        prop::collection::vec((prop::sample::select(MUTABLE), replacement()), 1..3),
    ];
    (shape, mutations).prop_map(|(token, mutations)| {
        let changes: serde_json::Map<String, Value> = mutations
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        with(token, Value::Object(changes))
    })
}

fn workspace(n: u8) -> WorkspaceId {
    WorkspaceId::parse(&format!("wrkspc_ws{n}")).unwrap()
}

#[derive(Debug, Clone)]
struct RuleShape {
    /// Pin the token's own subject: exactly (`true`) or its first half as a prefix (`false`).
    own_subject: Option<bool>,
    /// Pin some of the token's own string claims to their values.
    own_claims: Vec<prop::sample::Index>,
    pattern: Option<&'static str>,
    claims: Vec<(&'static str, &'static str)>,
    condition: Option<&'static str>,
    audience: Option<&'static str>,
    scope: &'static str,
    lifetime: i64,
    workspaces: Option<Vec<u8>>,
    archived: bool,
}

fn rule_shape() -> impl Strategy<Value = RuleShape> {
    (
        (
            proptest::option::weighted(0.8, any::<bool>()),
            prop::collection::vec(any::<prop::sample::Index>(), 0..3),
        ),
        proptest::option::of(prop::sample::select(PATTERNS)),
        prop_oneof![
            3 => Just(Vec::new()),
            1 => prop::collection::vec(prop::sample::select(CLAIMS), 1..3),
        ],
        proptest::option::weighted(0.3, prop::sample::select(CONDITIONS)),
        proptest::option::weighted(0.2, prop::sample::select(&[AUDIENCE, "api://keyless", "other"][..])),
        prop::sample::select(&["workspace:developer", "workspace:developer org:admin", "org:billing"][..]),
        60..7200_i64,
        prop_oneof![
            3 => Just(Some(vec![0])),
            1 => proptest::option::of(prop::collection::vec(0..3_u8, 0..3)),
        ],
        prop::bool::weighted(0.05),
    )
        .prop_map(
            |(
                (own_subject, own_claims),
                pattern,
                claims,
                condition,
                audience,
                scope,
                lifetime,
                workspaces,
                archived,
            )| RuleShape {
                own_subject,
                own_claims,
                pattern,
                claims,
                condition,
                audience,
                scope,
                lifetime,
                workspaces,
                archived,
            },
        )
}

fn build_rule(shape: &RuleShape, issuer_url: &str, token: &Value) -> (keyless_core::issuer::Issuer, Rule) {
    let issuer = issuer(issuer_url);
    let own_pattern = match (shape.own_subject, token["sub"].as_str()) {
        (Some(true), Some(sub)) if !sub.is_empty() => Some(SubjectPattern::parse(sub).unwrap()),
        (Some(false), Some(sub)) if !sub.is_empty() => {
            let half: String = sub.chars().take(sub.chars().count() / 2).collect();
            Some(SubjectPattern::parse(&format!("{half}*")).unwrap())
        }
        _ => None,
    };
    let strings: Vec<(&String, &str)> = token
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(name, value)| value.as_str().map(|text| (name, text)))
        .collect();
    let mut claims: BTreeMap<String, String> = shape
        .claims
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    if !strings.is_empty() {
        for index in &shape.own_claims {
            let (name, value) = strings[index.index(strings.len())];
            claims.insert(name.clone(), value.to_owned());
        }
    }
    let spec = RuleSpec {
        name: Name::parse("simulated").unwrap(),
        description: None,
        issuer_id: issuer.id.clone(),
        r#match: Match {
            subject_prefix: own_pattern.or_else(|| shape.pattern.map(|text| SubjectPattern::parse(text).unwrap())),
            audience: shape.audience.map(str::to_owned),
            claims,
            condition: shape.condition.map(|source| Condition::compile(source).unwrap()),
        },
        target: ServiceAccountId::parse(SERVICE_ACCOUNT_ID).unwrap(),
        oauth_scope: ScopeSet::parse(shape.scope).unwrap(),
        token_lifetime: TokenLifetime::new(shape.lifetime).unwrap(),
        mode: RuleMode::Enforce,
        workspaces: match &shape.workspaces {
            None => RuleWorkspaces::All,
            Some(listed) => RuleWorkspaces::Listed(listed.iter().map(|n| workspace(*n)).collect::<BTreeSet<_>>()),
        },
    };
    let rule = Rule {
        id: RuleId::parse(RULE_ID).unwrap(),
        organization_id: organization_id(),
        archived: shape.archived,
        spec,
    };
    (issuer, rule)
}

#[derive(Debug, Clone)]
struct RequestShape {
    workspace: Option<Option<u8>>,
    scope: Option<&'static str>,
    other_service_account: bool,
    admin: bool,
    service_account_archived: bool,
    /// `None`: the token's own `iss` (when a string).
    issuer_url: Option<&'static str>,
    now_offset: i64,
}

fn request_shape() -> impl Strategy<Value = RequestShape> {
    (
        proptest::option::weighted(0.3, proptest::option::of(0..3_u8)),
        proptest::option::weighted(
            0.3,
            prop::sample::select(&["workspace:developer", "org:admin", "org:billing"][..]),
        ),
        prop::bool::weighted(0.05),
        any::<bool>(),
        prop::bool::weighted(0.05),
        proptest::option::weighted(0.1, prop::sample::select(&[GITHUB, KUBERNETES, GITLAB, GOOGLE][..])),
        prop_oneof![3 => -60..60_i64, 1 => -4000..4000_i64],
    )
        .prop_map(
            |(workspace, scope, other_service_account, admin, service_account_archived, issuer_url, now_offset)| {
                RequestShape {
                    workspace,
                    scope,
                    other_service_account,
                    admin,
                    service_account_archived,
                    issuer_url,
                    now_offset,
                }
            },
        )
}

/// Simulates and checks the properties.
fn check_parity(token: &Value, rule_shape: &RuleShape, request_shape: &RequestShape, verification: Option<&Rejection>) {
    let issuer_url = request_shape.issuer_url.or(token["iss"].as_str()).unwrap_or(GITHUB);
    let (issuer, rule) = build_rule(rule_shape, issuer_url, token);
    let mut request = request();
    request.workspace_id = request_shape.workspace.map(|selector| match selector {
        None => WorkspaceSelector::parse("default").unwrap(),
        Some(n) => WorkspaceSelector::parse(workspace(n).as_str()).unwrap(),
    });
    request.scope = request_shape.scope.map(|text| ScopeSet::parse(text).unwrap());
    if request_shape.other_service_account {
        request.service_account_id = Some(ServiceAccountId::parse("svac_other").unwrap());
    }
    let mut service_account = service_account();
    service_account.archived = request_shape.service_account_archived;
    if request_shape.admin {
        service_account.organization_role = OrganizationRole::Admin;
    }
    let default_workspace_id = workspace(0);
    let ctx = ExchangeContext {
        default_audience: AUDIENCE,
        default_workspace_id: &default_workspace_id,
        leeway_seconds: 30,
    };
    let now = NOW + request_shape.now_offset;
    let claims = object(token);
    let verification = verification.map_or(Verification::NotChecked, Verification::Failed);
    let simulation = simulate(
        &request,
        &issuer,
        &rule,
        &service_account,
        &claims,
        verification,
        &ctx,
        now,
    );

    let decided = exchange::decide(&request, &issuer, &rule, &service_account, &claims, &ctx, now);
    match verification {
        Verification::Failed(rejection) => {
            let expected = exchange::check_consistency(&request, &issuer, &rule, &service_account)
                .and(Err::<(), _>(rejection.clone()));
            assert_eq!(simulation.verdict.clone().map(|_| ()), expected);
        }
        _ => assert_eq!(simulation.verdict, decided, "{token}"),
    }

    let first_failed = simulation.checks.iter().find(|check| !check.passed);
    match &simulation.verdict {
        Ok(grant) => {
            assert_eq!(first_failed, None, "{token}");
            let seen = |name: &str| {
                simulation
                    .checks
                    .iter()
                    .find(|check| check.check == name)
                    .and_then(|check| check.seen.clone())
            };
            assert_eq!(seen("scope"), Some(Value::from(grant.scope.to_string())));
            assert_eq!(
                seen("token_lifetime_seconds"),
                Some(Value::from(grant.lifetime_seconds))
            );
            assert_eq!(seen("workspace_id"), Some(Value::from(grant.workspace_id.as_str())));
        }
        Err(rejection) => {
            let detail = rejection.detail();
            let expected = Check {
                check: detail.check.clone(),
                passed: false,
                code: Some(rejection.code()),
                expected: detail.expected.clone(),
                seen: detail.seen.clone(),
            };
            assert_eq!(first_failed, Some(&expected), "{token}");
        }
    }
    for check in &simulation.checks {
        assert_eq!(check.passed, check.code.is_none(), "{check:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn simulation_verdict_is_the_decision(token in token(), rule in rule_shape(), request in request_shape()) {
        check_parity(&token, &rule, &request, None);
    }

    #[test]
    fn a_failed_signature_is_the_verdict_after_consistency(token in token(), rule in rule_shape(), request in request_shape()) {
        let rejection = Rejection::new(RejectionCode::InvalidSignature, "jws.bad_signature", None, None);
        check_parity(&token, &rule, &request, Some(&rejection));
    }
}

/// Every matcher is reported, not only the first that fails.
#[test]
fn every_failing_matcher_is_listed() {
    let (issuer, rule) = build_rule(
        &RuleShape {
            own_subject: None,
            own_claims: Vec::new(),
            pattern: Some("repo:acme/*"),
            claims: vec![("repository_owner", "acme"), ("ref", "refs/heads/main")],
            condition: Some(r#"claims.event_name != "push""#),
            audience: None,
            scope: "workspace:developer",
            lifetime: 900,
            workspaces: Some(vec![0]),
            archived: false,
        },
        GITHUB,
        &json!({}),
    );
    let claims = object(&github_actions("repo:octo-org/octo-repo:ref:refs/heads/main"));
    let default_workspace_id = workspace(0);
    let ctx = ExchangeContext {
        default_audience: AUDIENCE,
        default_workspace_id: &default_workspace_id,
        leeway_seconds: 30,
    };
    let simulation = simulate(
        &request(),
        &issuer,
        &rule,
        &service_account(),
        &claims,
        Verification::Verified,
        &ctx,
        NOW,
    );
    let summary: Vec<(String, bool, Option<&str>)> = simulation
        .checks
        .iter()
        .map(|check| (check.check.clone(), check.passed, check.code.map(RejectionCode::as_str)))
        .collect();
    let expect = [
        ("rule", true, None),
        ("signature", true, None),
        ("iss", true, None),
        ("sub", true, None),
        ("aud", true, None),
        ("exp", true, None),
        ("nbf", true, None),
        ("iat", true, None),
        ("exp - iat", true, None),
        ("jti", true, None),
        ("match.subject_prefix", false, Some("subject_mismatch")),
        ("match.claims.ref", true, None),
        ("match.claims.repository_owner", false, Some("claim_mismatch")),
        ("match.condition", false, Some("condition_false")),
        ("service_account", true, None),
        ("workspace_id", true, None),
        ("scope", true, None),
        ("token_lifetime_seconds", true, None),
    ];
    let expect: Vec<(String, bool, Option<&str>)> = expect
        .iter()
        .map(|(check, passed, code)| ((*check).to_owned(), *passed, *code))
        .collect();
    assert_eq!(summary, expect);
    let failed = &simulation.checks[10];
    assert_eq!(failed.expected, Some(json!("repo:acme/*")));
    assert_eq!(failed.seen, Some(json!("repo:octo-org/octo-repo:ref:refs/heads/main")));
    assert_eq!(simulation.verdict.unwrap_err().code(), RejectionCode::SubjectMismatch);
}
