//! Write-time validation of federation rules: each refusal with its field-prefixed message, and what the
//! validated rule holds.

use std::collections::BTreeSet;

use keyless_core::id::WorkspaceId;
use keyless_core::rule::{RuleDraft, RuleWorkspaces, SubjectPattern};
use serde_json::{Value, json};

use crate::fixtures::*;

const PRIVATE: &str = "https://ci.acme.example";

/// Validates `fields` (merged into a minimal draft) on an issuer at `issuer_url`.
fn check(issuer_url: &str, fields: Value, expect: Result<(), &str>) {
    let res = rule(&issuer(issuer_url), fields.clone())
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert_eq!(
        res.as_ref().map_err(String::as_str),
        expect.as_ref().map_err(|e| *e),
        "{fields}"
    );
}

fn refused(fields: Value, message: &str) {
    check(PRIVATE, fields, Err(message));
}

fn identity() -> Value {
    json!({ "subject_prefix": "build:*" })
}

#[test]
fn field_refusals() {
    refused(
        json!({ "match": identity(), "name": "Deploy" }),
        "name: must be 1 to 255 characters of a-z, 0-9 and -",
    );
    refused(
        json!({ "match": identity(), "name": "" }),
        "name: must be 1 to 255 characters of a-z, 0-9 and -",
    );
    refused(
        json!({ "match": identity(), "issuer_id": "fdis_" }),
        "issuer_id: must be `fdis_` followed by 1 to 64 ASCII letters or digits",
    );
    refused(
        json!({ "match": identity(), "issuer_id": "fdis_someoneelse" }),
        "issuer_id: is not the issuer the rule is validated against",
    );
    refused(
        json!({ "match": { "subject_prefix": "" } }),
        "match.subject_prefix: must not be empty",
    );
    refused(
        json!({ "match": { "subject_prefix": "build:*", "audience": "" } }),
        "match.audience: must not be empty",
    );
    refused(
        json!({ "match": { "claims": { "": "x" } } }),
        "match.claims: claim names must not be empty",
    );
    refused(
        json!({ "match": { "condition": "" } }),
        "match.condition: must not be empty",
    );
    refused(
        json!({ "match": { "condition": "true" } }),
        "match.condition: is constant: it must reference `claims`",
    );
    refused(
        json!({ "match": { "condition": "claims.sub == 'a' || 1 == 1" } }),
        "match: an identity constraint is required: a subject_prefix other than \"*\", a claims entry, or a condition that is not true for an empty claim set",
    );
    refused(
        json!({ "match": { "condition": "claim.sub == 'a'" } }),
        "match.condition: references `claim`: the only variable is `claims`",
    );
    refused(
        json!({ "match": { "condition": format!("claims.sub == '{}'", "a".repeat(4096)) } }),
        "match.condition: must be at most 4096 bytes",
    );
    refused(
        json!({ "match": { "condition": format!("claims.n{} > 0", " + 1".repeat(40)) } }),
        "match.condition: nests deeper than 32 levels",
    );
    refused(
        json!({ "match": identity(), "target": { "type": "user", "service_account_id": "svac_x" } }),
        "target.type: must be `service_account`",
    );
    refused(
        json!({ "match": identity(), "target": { "type": "service_account", "service_account_id": "user_x" } }),
        "target.service_account_id: must be `svac_` followed by 1 to 64 ASCII letters or digits",
    );
    refused(
        json!({ "match": identity(), "oauth_scope": "" }),
        "oauth_scope: must not be empty",
    );
    refused(
        json!({ "match": identity(), "oauth_scope": "workspace:developer \"x\"" }),
        "oauth_scope: `\"x\"` is not a scope token (1 to 128 printable ASCII characters, no space, `\"` or `\\`)",
    );
    refused(
        json!({ "match": identity(), "token_lifetime_seconds": 59 }),
        "token_lifetime_seconds: must be between 60 and 86400",
    );
    refused(
        json!({ "match": identity(), "token_lifetime_seconds": 86_401 }),
        "token_lifetime_seconds: must be between 60 and 86400",
    );
    refused(
        json!({ "match": identity(), "workspace_id": "wrkspc_a", "applies_to_all_workspaces": true }),
        "workspace_id: set only one of workspace_id, workspace_ids and applies_to_all_workspaces",
    );
    refused(
        json!({ "match": identity(), "workspace_id": "wrkspc_a", "workspace_ids": ["wrkspc_b"] }),
        "workspace_id: set only one of workspace_id, workspace_ids and applies_to_all_workspaces",
    );
    refused(
        json!({ "match": identity(), "workspace_ids": [] }),
        "workspace_ids: must not be empty",
    );
    refused(
        json!({ "match": identity(), "workspace_ids": ["wrkspc_a", "ws_b"] }),
        "workspace_ids: must be `default` or `wrkspc_` followed by 1 to 64 ASCII letters or digits",
    );
    refused(
        json!({ "match": identity(), "workspace_id": "" }),
        "workspace_id: must be `default` or `wrkspc_` followed by 1 to 64 ASCII letters or digits",
    );
    let syntax = rule(&issuer(PRIVATE), json!({ "match": { "condition": "claims.sub ==" } }))
        .unwrap_err()
        .to_string();
    assert!(syntax.starts_with("match.condition: does not parse: "), "{syntax}");
}

#[test]
fn identity_is_required() {
    let none = "match: an identity constraint is required: a subject_prefix other than \"*\", a claims entry, or a condition that is not true for an empty claim set";
    refused(json!({ "match": {} }), none);
    refused(json!({ "match": { "subject_prefix": "*" } }), none);
    refused(json!({ "match": { "audience": "https://keyless.example" } }), none);
    refused(
        json!({ "match": { "subject_prefix": "*", "audience": "https://keyless.example" } }),
        none,
    );
    refused(json!({ "match": { "condition": "!has(claims.environment)" } }), none);
    refused(json!({ "match": { "condition": "size(claims) >= 0" } }), none);
    // A condition true on empty claims is accepted beside a real constraint.
    check(
        PRIVATE,
        json!({ "match": { "subject_prefix": "build:*", "condition": "!has(claims.environment)" } }),
        Ok(()),
    );
    check(PRIVATE, json!({ "match": { "subject_prefix": "b*" } }), Ok(()));
    check(PRIVATE, json!({ "match": { "claims": { "team": "" } } }), Ok(()));
    check(
        PRIVATE,
        json!({ "match": { "condition": "claims.team == 'platform'" } }),
        Ok(()),
    );
}

#[test]
fn shared_issuers_must_pin_the_tenant() {
    let github = "match: GitHub Actions is a shared issuer: pin the tenant with subject_prefix \"repo:OWNER/…\" or a claims entry on repository_owner, repository_owner_id, repository or repository_id";
    let buildkite = "match: Buildkite is a shared issuer: pin the tenant with subject_prefix \"organization:ORG:…\" or a claims entry on organization_slug";
    let terraform = "match: Terraform Cloud is a shared issuer: pin the tenant with subject_prefix \"organization:ORG:…\" or a claims entry on terraform_organization_id or terraform_organization_name";
    let cases: &[(&str, Value, Result<(), &str>)] = &[
        (GITHUB, json!({ "subject_prefix": "repo:acme/*" }), Ok(())),
        (GITHUB, json!({ "subject_prefix": "repo:acme@123/*" }), Ok(())),
        (
            GITHUB,
            json!({ "subject_prefix": "repo:acme/api:environment:prod" }),
            Ok(()),
        ),
        (GITHUB, json!({ "claims": { "repository_owner": "acme" } }), Ok(())),
        (GITHUB, json!({ "claims": { "repository_owner_id": "123" } }), Ok(())),
        (GITHUB, json!({ "claims": { "repository": "acme/api" } }), Ok(())),
        (GITHUB, json!({ "claims": { "repository_id": "456" } }), Ok(())),
        (GITHUB, json!({ "subject_prefix": "repo:acme*" }), Err(github)),
        (GITHUB, json!({ "subject_prefix": "repo:*" }), Err(github)),
        (GITHUB, json!({ "subject_prefix": "repo:a*b/*" }), Err(github)),
        (GITHUB, json!({ "claims": { "ref": "refs/heads/main" } }), Err(github)),
        (
            GITHUB,
            json!({ "claims": { "repository_owner": "" }, "subject_prefix": "repo:*" }),
            Err(github),
        ),
        (
            GITHUB,
            json!({ "condition": "claims.repository_owner == 'acme'" }),
            Err(github),
        ),
        (
            "https://token.actions.githubusercontent.com/",
            json!({ "subject_prefix": "repo:*" }),
            Err(github),
        ),
        (
            "https://agent.buildkite.com",
            json!({ "subject_prefix": "organization:acme:*" }),
            Ok(()),
        ),
        (
            "https://agent.buildkite.com",
            json!({ "claims": { "organization_slug": "acme" } }),
            Ok(()),
        ),
        (
            "https://agent.buildkite.com",
            json!({ "subject_prefix": "organization:*" }),
            Err(buildkite),
        ),
        (
            "https://app.terraform.io",
            json!({ "subject_prefix": "organization:acme:project:*" }),
            Ok(()),
        ),
        (
            "https://app.terraform.io",
            json!({ "claims": { "terraform_organization_id": "org-1" } }),
            Ok(()),
        ),
        (
            "https://app.terraform.io",
            json!({ "subject_prefix": "organization:acme*" }),
            Err(terraform),
        ),
        (GITLAB, json!({ "claims": { "namespace_path": "my-group" } }), Ok(())),
        (GOOGLE, json!({ "subject_prefix": "112233445566778899000" }), Ok(())),
        (GOOGLE, json!({ "claims": { "azp": "112233445566778899000" } }), Ok(())),
    ];
    for (issuer_url, r#match, expect) in cases {
        check(issuer_url, json!({ "match": r#match }), *expect);
    }
}

#[test]
fn defaults_and_workspaces() {
    let issuer = issuer(PRIVATE);
    let spec = rule(&issuer, json!({ "match": identity() })).unwrap().spec;
    assert_eq!(spec.oauth_scope.to_string(), "workspace:developer");
    assert_eq!(spec.token_lifetime.seconds(), 3600);
    assert_eq!(
        spec.workspaces,
        RuleWorkspaces::Listed(BTreeSet::from([default_workspace_id()]))
    );
    assert_eq!(
        spec.r#match.subject_prefix,
        Some(SubjectPattern::Prefix("build:".to_owned()))
    );

    let workspaces = |fields: Value| {
        rule(&issuer, with(json!({ "match": identity() }), fields))
            .unwrap()
            .spec
            .workspaces
    };
    let id = |text: &str| WorkspaceId::parse(text).unwrap();
    assert_eq!(
        workspaces(json!({ "workspace_id": "default" })),
        RuleWorkspaces::Listed(BTreeSet::from([default_workspace_id()]))
    );
    assert_eq!(
        workspaces(json!({ "applies_to_all_workspaces": true })),
        RuleWorkspaces::All
    );
    assert_eq!(
        workspaces(json!({ "applies_to_all_workspaces": false, "workspace_id": "wrkspc_a" })),
        RuleWorkspaces::Listed(BTreeSet::from([id("wrkspc_a")]))
    );
    assert_eq!(
        workspaces(json!({ "workspace_ids": ["wrkspc_a", "default", "wrkspc_a"] })),
        RuleWorkspaces::Listed(BTreeSet::from([id("wrkspc_a"), default_workspace_id()]))
    );
}

#[test]
fn drafts_parse_the_wire_shape() {
    let body = json!({
        "name": "deploy-prod",
        "description": "deploys from main",
        "issuer_id": ISSUER_ID,
        "match": {
            "subject_prefix": "repo:acme/*",
            "audience": "https://keyless.example",
            "claims": { "ref": "refs/heads/main" },
            "condition": "claims.ref_protected == 'true'",
        },
        "target": { "type": "service_account", "service_account_id": SERVICE_ACCOUNT_ID },
        "oauth_scope": "workspace:developer",
        "token_lifetime_seconds": 600,
        "workspace_id": "default",
    });
    let draft: RuleDraft = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(serde_json::to_value(&draft).unwrap(), body);
    assert_eq!(draft.issuer_id().unwrap().as_str(), ISSUER_ID);
    let spec = draft.validate(&issuer(GITHUB), &default_workspace_id()).unwrap();
    assert_eq!(spec.token_lifetime.seconds(), 600);
    assert_eq!(
        spec.r#match.condition.unwrap().source(),
        "claims.ref_protected == 'true'"
    );

    let unknown = with(body, json!({ "subjet_prefix": "typo" }));
    assert!(serde_json::from_value::<RuleDraft>(unknown).is_err());
}

/// The CEL examples of docs/rules.md compile and accept the provider token they describe.
#[test]
fn documented_condition_examples_hold() {
    use keyless_core::condition::Condition;
    let doc = include_str!("../../../../docs/rules.md");
    let examples: Vec<&str> = doc
        .split("```cel")
        .skip(1)
        .flat_map(|block| block.split("```").next().unwrap_or_default().lines())
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .collect();
    assert_eq!(examples.len(), 5, "{examples:#?}");
    let tokens = [
        json!({"sub": "repo:acme-corp/api:ref:refs/heads/main", "ref": "refs/heads/main"}),
        json!({"kubernetes.io": {"namespace": "payments", "pod": {"name": "p"}}}),
        json!({"google": {"compute_engine": {"project_number": 123456789012_i64, "project_id": "acme"}}}),
        json!({"https://sts.amazonaws.com/": {"aws_account": "111122223333"}}),
        json!({"scp": ["payments:read", "payments:write"]}),
    ];
    for (source, token) in examples.iter().zip(tokens) {
        let condition = Condition::compile(source).unwrap_or_else(|e| panic!("{source}: {e}"));
        assert_eq!(condition.evaluate(token.as_object().unwrap()), Ok(true), "{source}");
    }
}
