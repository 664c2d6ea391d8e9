//! Rule evaluation and the full exchange decision on a GitHub-Actions-shaped claim set.
//!
//! Run with `cargo bench -p keyless-core --bench decision` (or `cargo xtask bench core`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keyless_core::claims::{self, ClaimExpectations};
use keyless_core::condition::Condition;
use keyless_core::exchange::{self, ExchangeContext, ExchangeRequest};
use keyless_core::id::{IssuerId, OrganizationId, RuleId, ServiceAccountId, WorkspaceId};
use keyless_core::issuer::Issuer;
use keyless_core::rule::{Rule, RuleDraft};
use keyless_core::service_account::{OrganizationRole, ServiceAccount};
use serde_json::{Map, Value, json};

const NOW: i64 = 1_795_867_200;
const AUDIENCE: &str = "https://keyless.example";
const GITHUB: &str = "https://token.actions.githubusercontent.com";
const ORGANIZATION: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
const CONDITION: &str =
    r#"claims.sub.startsWith("repo:acme-corp/") && claims.ref in ["refs/heads/main", "refs/heads/release"]"#;

fn github_claims() -> Map<String, Value> {
    let iat = NOW - 20;
    json!({
        "jti": "8e1c7a32-5b0e-4f0a-9f43-0d1c5e0b6a11", "sub": "repo:acme-corp/api:ref:refs/heads/main",
        "aud": AUDIENCE, "ref": "refs/heads/main", "sha": "d6e5f1c2a0b9e8d7c6b5a4f3e2d1c0b9a8f7e6d5",
        "repository": "acme-corp/api", "repository_owner": "acme-corp", "repository_id": "74",
        "repository_owner_id": "65", "repository_visibility": "private", "actor": "octocat", "actor_id": "12",
        "run_id": "9876543210", "run_number": "10", "run_attempt": "1", "workflow": "deploy",
        "workflow_ref": "acme-corp/api/.github/workflows/deploy.yml@refs/heads/main",
        "job_workflow_ref": "acme-corp/api/.github/workflows/deploy.yml@refs/heads/main",
        "event_name": "push", "ref_type": "branch", "ref_protected": "true", "environment": "prod",
        "runner_environment": "github-hosted", "head_ref": "", "base_ref": "",
        "iss": GITHUB, "iat": iat, "nbf": iat - 600, "exp": iat + 300,
    })
    .as_object()
    .unwrap()
    .clone()
}

fn issuer() -> Issuer {
    Issuer {
        id: IssuerId::parse("fdis_bench").unwrap(),
        organization_id: OrganizationId::parse(ORGANIZATION).unwrap(),
        issuer_url: GITHUB.to_owned(),
        check_jti: true,
        max_jwt_lifetime_seconds: 3600,
        archived: false,
    }
}

fn rule(issuer: &Issuer, r#match: Value) -> Rule {
    let draft: RuleDraft = serde_json::from_value(json!({
        "name": "deploy",
        "issuer_id": issuer.id.as_str(),
        "match": r#match,
        "target": { "type": "service_account", "service_account_id": "svac_deployer" },
        "oauth_scope": "workspace:developer",
        "token_lifetime_seconds": 600,
    }))
    .unwrap();
    let spec = draft
        .validate(issuer, &WorkspaceId::parse("wrkspc_default1").unwrap())
        .unwrap();
    Rule {
        id: RuleId::parse("fdrl_bench").unwrap(),
        organization_id: OrganizationId::parse(ORGANIZATION).unwrap(),
        archived: false,
        spec,
    }
}

fn bench(c: &mut Criterion) {
    let issuer = issuer();
    let claims = github_claims();
    let plain = rule(
        &issuer,
        json!({ "subject_prefix": "repo:acme-corp/api:*", "claims": { "repository_owner_id": "65", "ref": "refs/heads/main" } }),
    );
    let with_condition = rule(
        &issuer,
        json!({ "claims": { "repository_owner_id": "65" }, "condition": CONDITION }),
    );
    let expectations = ClaimExpectations {
        issuer_url: GITHUB,
        audience: AUDIENCE,
        max_lifetime_seconds: 3600,
        leeway_seconds: 30,
    };
    let validated = claims::validate(&claims, &expectations, NOW).unwrap();
    let service_account = ServiceAccount {
        id: ServiceAccountId::parse("svac_deployer").unwrap(),
        organization_id: OrganizationId::parse(ORGANIZATION).unwrap(),
        organization_role: OrganizationRole::Developer,
        archived: false,
    };
    let default_workspace = WorkspaceId::parse("wrkspc_default1").unwrap();
    let ctx = ExchangeContext {
        default_audience: AUDIENCE,
        default_workspace_id: &default_workspace,
        leeway_seconds: 30,
    };
    let request = |rule: &Rule| ExchangeRequest {
        federation_rule_id: rule.id.clone(),
        organization_id: OrganizationId::parse(ORGANIZATION).unwrap(),
        service_account_id: Some(service_account.id.clone()),
        workspace_id: None,
        scope: None,
    };

    let mut group = c.benchmark_group("core");
    group.bench_function("claims_validate", |b| {
        b.iter(|| claims::validate(black_box(&claims), &expectations, NOW).unwrap());
    });
    group.bench_function("match_without_condition", |b| {
        b.iter(|| plain.spec.r#match.check(black_box(&validated)).unwrap());
    });
    group.bench_function("match_with_condition", |b| {
        b.iter(|| with_condition.spec.r#match.check(black_box(&validated)).unwrap());
    });
    for (name, rule) in [
        ("decide_without_condition", &plain),
        ("decide_with_condition", &with_condition),
    ] {
        let request = request(rule);
        group.bench_function(name, |b| {
            b.iter(|| {
                exchange::decide(&request, &issuer, rule, &service_account, black_box(&claims), &ctx, NOW).unwrap()
            });
        });
    }
    group.bench_function("condition_compile", |b| {
        b.iter(|| Condition::compile(black_box(CONDITION)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
