//! Rules against the real claim shapes of each provider, end to end: the rule is validated on its issuer,
//! then `decide` runs on the token. The outcome is `granted`, a rejection code, or `refused: <message>`
//! when the rule itself is refused at write time.

use serde_json::{Value, json};

use crate::fixtures::*;

fn outcome(issuer_url: &str, fields: Value, claims: Value) -> String {
    outcome_with_max(issuer_url, 3600, fields, claims)
}

fn outcome_with_max(issuer_url: &str, max_jwt_lifetime_seconds: i64, fields: Value, claims: Value) -> String {
    let mut issuer = issuer(issuer_url);
    issuer.max_jwt_lifetime_seconds = max_jwt_lifetime_seconds;
    let rule = match rule(&issuer, fields) {
        Ok(rule) => rule,
        Err(error) => return format!("refused: {error}"),
    };
    match Scenario::new(issuer, rule, claims).decide() {
        Ok(_) => "granted".to_owned(),
        Err(rejection) => rejection.code().as_str().to_owned(),
    }
}

fn check(issuer_url: &str, fields: Value, claims: Value, expect: &str) {
    let res = outcome(issuer_url, fields.clone(), claims.clone());
    assert_eq!(res, expect, "rule {fields}\ntoken {claims}");
}

#[test]
fn github_actions_subject_forms() {
    let owner_prefix = json!({ "match": { "subject_prefix": "repo:octo-org/*" } });
    for sub in [
        "repo:octo-org/octo-repo:ref:refs/heads/main",
        "repo:octo-org/octo-repo:ref:refs/tags/v1.2.3",
        "repo:octo-org/octo-repo:environment:prod",
        "repo:octo-org/octo-repo:pull_request",
    ] {
        check(GITHUB, owner_prefix.clone(), github_actions(sub), "granted");
    }
    for sub in [
        "repo:octo-org-evil/octo-repo:ref:refs/heads/main",
        "repo:octo-or/octo-repo:pull_request",
        "repo:Octo-Org/octo-repo:pull_request",
        // The immutable form is a different subject: a rule written for one form does not match the other.
        "repo:octo-org@65/octo-repo@74:ref:refs/heads/main",
    ] {
        check(GITHUB, owner_prefix.clone(), github_actions(sub), "subject_mismatch");
    }
    let immutable = json!({ "match": { "subject_prefix": "repo:octo-org@65/*" } });
    check(
        GITHUB,
        immutable.clone(),
        github_actions("repo:octo-org@65/octo-repo@74:environment:prod"),
        "granted",
    );
    check(
        GITHUB,
        immutable,
        github_actions("repo:octo-org@66/octo-repo@74:environment:prod"),
        "subject_mismatch",
    );
    let exact = json!({ "match": { "subject_prefix": "repo:octo-org/octo-repo:environment:prod" } });
    check(
        GITHUB,
        exact.clone(),
        github_actions("repo:octo-org/octo-repo:environment:prod"),
        "granted",
    );
    check(
        GITHUB,
        exact,
        github_actions("repo:octo-org/octo-repo:environment:prod2"),
        "subject_mismatch",
    );
}

#[test]
fn github_actions_claims_are_strings() {
    let token = github_actions("repo:octo-org/octo-repo:environment:prod");
    let check =
        |claims: Value, expect: &str| check(GITHUB, json!({ "match": { "claims": claims } }), token.clone(), expect);
    check(json!({ "repository_owner_id": "65", "repository_id": "74" }), "granted");
    check(
        json!({ "repository_owner": "octo-org", "ref_protected": "true", "environment": "prod" }),
        "granted",
    );
    check(json!({ "repository_owner": "octo-org", "head_ref": "" }), "granted");
    check(
        json!({ "repository_owner": "octo-org", "environment": "staging" }),
        "claim_mismatch",
    );
    check(json!({ "repository": "octo-org/other" }), "claim_mismatch");
    // A branch token without an environment: the claim is absent.
    let branch = with(
        token.clone(),
        json!({ "environment": null, "sub": "repo:octo-org/octo-repo:ref:refs/heads/main" }),
    );
    let res = outcome(
        GITHUB,
        json!({ "match": { "claims": { "repository_owner": "octo-org", "environment": "prod" } } }),
        branch,
    );
    assert_eq!(res, "claim_mismatch");
}

#[test]
fn github_actions_dates() {
    let token = github_actions("repo:octo-org/octo-repo:pull_request");
    let fields = json!({ "match": { "subject_prefix": "repo:octo-org/*" } });
    // exp − iat = 300 and nbf = iat − 600 are fine by default, refused when the issuer allows less.
    assert_eq!(outcome_with_max(GITHUB, 300, fields.clone(), token.clone()), "granted");
    assert_eq!(
        outcome_with_max(GITHUB, 299, fields.clone(), token.clone()),
        "token_lifetime_exceeds_maximum"
    );
    let expired = with(token, json!({ "iat": NOW - 400, "nbf": NOW - 1000, "exp": NOW - 100 }));
    check(GITHUB, fields, expired, "token_expired");
}

#[test]
fn github_actions_seed_example_condition() {
    let condition =
        r#"claims.sub.startsWith("repo:acme-corp/") && claims.ref in ["refs/heads/main", "refs/heads/release"]"#;
    let token = |sub: &str, git_ref: &str| {
        with(
            github_actions(sub),
            json!({ "ref": git_ref, "repository_owner": "acme-corp", "repository": "acme-corp/api" }),
        )
    };
    // Alone, it does not pin the tenant of a shared issuer: a condition never counts as a pin.
    check(
        GITHUB,
        json!({ "match": { "condition": condition } }),
        token("repo:acme-corp/api:ref:refs/heads/main", "refs/heads/main"),
        "refused: match: GitHub Actions is a shared issuer: pin the tenant with subject_prefix \"repo:OWNER/…\" \
         or a claims entry on repository_owner, repository_owner_id, repository or repository_id",
    );
    let fields = json!({ "match": { "claims": { "repository_owner": "acme-corp" }, "condition": condition } });
    check(
        GITHUB,
        fields.clone(),
        token("repo:acme-corp/api:ref:refs/heads/main", "refs/heads/main"),
        "granted",
    );
    check(
        GITHUB,
        fields.clone(),
        token("repo:acme-corp/api:ref:refs/heads/release", "refs/heads/release"),
        "granted",
    );
    check(
        GITHUB,
        fields,
        token("repo:acme-corp/api:ref:refs/heads/feature", "refs/heads/feature"),
        "condition_false",
    );
    // On a private issuer the condition alone is an identity constraint.
    let private = "https://ci.acme-corp.example";
    let private_token = with(
        token("repo:acme-corp/api:ref:refs/heads/main", "refs/heads/main"),
        json!({ "iss": private }),
    );
    check(
        private,
        json!({ "match": { "condition": condition } }),
        private_token,
        "granted",
    );
}

#[test]
fn kubernetes_nested_claims_and_array_audience() {
    let namespace =
        r#"claims["kubernetes.io"].namespace == "ci" && claims["kubernetes.io"].serviceaccount.name == "deployer""#;
    let fields = json!({ "match": { "subject_prefix": "system:serviceaccount:ci:*", "condition": namespace } });
    check(KUBERNETES, fields.clone(), kubernetes(600), "granted");
    let other_namespace = with(
        kubernetes(600),
        json!({ "kubernetes.io": { "namespace": "prod", "serviceaccount": { "name": "deployer" } } }),
    );
    check(KUBERNETES, fields.clone(), other_namespace, "condition_false");
    let pod = json!({ "match": { "condition": r#"claims["kubernetes.io"].pod.name.startsWith("deployer-")"# } });
    check(KUBERNETES, pod, kubernetes(600), "granted");
    // `aud` is an array: the expected audience must be one element.
    check(
        KUBERNETES,
        with(
            fields.clone(),
            json!({ "match": { "subject_prefix": "system:serviceaccount:ci:deployer", "audience": "sts.amazonaws.com" } }),
        ),
        kubernetes(600),
        "audience_mismatch",
    );
    let two_audiences = with(
        kubernetes(600),
        json!({ "aud": ["https://kubernetes.default.svc", AUDIENCE] }),
    );
    check(KUBERNETES, fields.clone(), two_audiences, "granted");
    // A default-mounted token lives about a year: more than any issuer maximum (at most 176400 s).
    let year = kubernetes(365 * 24 * 3600);
    check(
        KUBERNETES,
        fields.clone(),
        year.clone(),
        "token_lifetime_exceeds_maximum",
    );
    assert_eq!(
        outcome_with_max(KUBERNETES, 176_400, fields.clone(), year),
        "token_lifetime_exceeds_maximum"
    );
    // kubelet's default projected lifetime is 3607 s, just over the default maximum of 3600.
    check(
        KUBERNETES,
        fields.clone(),
        kubernetes(3607),
        "token_lifetime_exceeds_maximum",
    );
    assert_eq!(outcome_with_max(KUBERNETES, 3607, fields, kubernetes(3607)), "granted");
}

#[test]
fn gitlab_numbers_are_not_strings() {
    let pinned = |claims: Value| json!({ "match": { "subject_prefix": "project_path:my-group/*", "claims": claims } });
    check(
        GITLAB,
        pinned(json!({ "ref_protected": "true", "ref_type": "branch" })),
        gitlab(),
        "granted",
    );
    check(GITLAB, pinned(json!({ "runner_id": "5" })), gitlab(), "claim_mismatch");
    check(
        GITLAB,
        pinned(json!({ "ref": "refs/heads/main" })),
        gitlab(),
        "claim_mismatch",
    );
    check(GITLAB, pinned(json!({ "ref": "main" })), gitlab(), "granted");
    let by_condition = json!({ "match": { "claims": { "namespace_id": "72" }, "condition": "claims.runner_id == 5" } });
    check(GITLAB, by_condition, gitlab(), "granted");
    check(
        GITLAB,
        json!({ "match": { "claims": { "project_path": "my-group/my-project" } } }),
        gitlab(),
        "granted",
    );
    check(
        GITLAB,
        json!({ "match": { "subject_prefix": "project_path:*" } }),
        gitlab(),
        "refused: match: GitLab.com is a shared issuer: pin the tenant with subject_prefix \"project_path:GROUP/…\" or a claims entry on namespace_id, namespace_path, project_id or project_path",
    );
    // Whether the issuer is GitLab.com or a self-managed instance decides whether pinning is needed.
    let self_managed = "https://gitlab.acme.example";
    let token = with(gitlab(), json!({ "iss": self_managed }));
    check(
        self_managed,
        json!({ "match": { "subject_prefix": "project_path:*" } }),
        token,
        "granted",
    );
}

#[test]
fn google_project_number_and_scheme_less_issuer() {
    let project = "claims.google.compute_engine.project_number == 123456789012 && claims.email_verified";
    let fields = json!({ "match": { "subject_prefix": "112233445566778899000", "condition": project } });
    check(GOOGLE, fields.clone(), google(GOOGLE), "granted");
    let other_project = with(
        fields.clone(),
        json!({ "match": { "subject_prefix": "112233445566778899000", "condition": "claims.google.compute_engine.project_number == 999" } }),
    );
    check(GOOGLE, other_project, google(GOOGLE), "condition_false");
    // `https://accounts.google.com` and `accounts.google.com` are two issuers: `iss` is byte-exact.
    check("accounts.google.com", fields.clone(), google(GOOGLE), "issuer_mismatch");
    check(GOOGLE, fields.clone(), google("accounts.google.com"), "issuer_mismatch");
    check("accounts.google.com", fields, google("accounts.google.com"), "granted");
    check(
        GOOGLE,
        json!({ "match": { "claims": { "email": "deployer@my-project.iam.gserviceaccount.com" } } }),
        google(GOOGLE),
        "granted",
    );
    check(
        GOOGLE,
        json!({ "match": { "subject_prefix": "1122*" } }),
        google(GOOGLE),
        "refused: match: Google is a shared issuer: pin the tenant with an exact subject_prefix (no trailing \"*\") or a claims entry on email, sub or azp",
    );
    check(
        "accounts.google.com",
        json!({ "match": { "condition": "claims.email.endsWith('.iam.gserviceaccount.com')" } }),
        google("accounts.google.com"),
        "refused: match: Google is a shared issuer: pin the tenant with an exact subject_prefix (no trailing \"*\") or a claims entry on email, sub or azp",
    );
}

#[test]
fn aws_namespaced_claim() {
    let account = |id: &str| format!(r#"claims["https://sts.amazonaws.com/"].aws_account == "{id}""#);
    check(
        AWS,
        json!({ "match": { "condition": account("123456789012") } }),
        aws(),
        "granted",
    );
    check(
        AWS,
        json!({ "match": { "condition": account("210987654321") } }),
        aws(),
        "condition_false",
    );
    let tags = r#"claims["https://sts.amazonaws.com/"].principal_tags.team == "platform""#;
    check(
        AWS,
        json!({ "match": { "subject_prefix": "arn:aws:iam::123456789012:role/*", "condition": tags } }),
        aws(),
        "granted",
    );
    check(
        AWS,
        json!({ "match": { "subject_prefix": "arn:aws:iam::123456789012:role/admin" } }),
        aws(),
        "subject_mismatch",
    );
}

#[test]
fn azure_v1_issuer_keeps_its_trailing_slash() {
    let v1 = format!("https://sts.windows.net/{AZURE_TENANT}/");
    let fields = json!({ "match": { "audience": "api://keyless", "claims": { "tid": AZURE_TENANT, "oid": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d", "idtyp": "app" } } });
    check(&v1, fields.clone(), azure(false), "granted");
    check(
        v1.trim_end_matches('/'),
        fields.clone(),
        azure(false),
        "issuer_mismatch",
    );
    let v2 = format!("https://login.microsoftonline.com/{AZURE_TENANT}/v2.0");
    check(&v2, fields.clone(), azure(true), "granted");
    check(&v2, fields.clone(), azure(false), "issuer_mismatch");
    // Without the rule's audience, the server's default audience is expected.
    let default_audience = json!({ "match": { "claims": { "tid": AZURE_TENANT } } });
    check(&v1, default_audience, azure(false), "audience_mismatch");
}

#[test]
fn okta_scp_array() {
    let fields = json!({ "match": { "audience": "api://default", "subject_prefix": "0oa1b2c3d4e5f6g7h8", "condition": r#""keyless.exchange" in claims.scp"# } });
    check(OKTA, fields.clone(), okta(), "granted");
    check(
        OKTA,
        fields,
        with(okta(), json!({ "scp": ["openid"] })),
        "condition_false",
    );
    check(
        OKTA,
        json!({ "match": { "audience": "api://default", "claims": { "scp": "keyless.exchange" } } }),
        okta(),
        "claim_mismatch",
    );
    check(
        OKTA,
        json!({ "match": { "claims": { "cid": "0oa1b2c3d4e5f6g7h8" } } }),
        okta(),
        "audience_mismatch",
    );
}

#[test]
fn spiffe_paths() {
    let fields = json!({ "match": { "subject_prefix": "spiffe://example.org/ns/prod/*" } });
    check(SPIRE, fields.clone(), spiffe("/ns/prod/sa/deployer"), "granted");
    check(SPIRE, fields.clone(), spiffe("/ns/dev/sa/deployer"), "subject_mismatch");
    check(
        SPIRE,
        fields,
        with(
            spiffe("/ns/prod/sa/deployer"),
            json!({ "sub": "spiffe://example.org.evil/ns/prod/sa/x" }),
        ),
        "subject_mismatch",
    );
}
