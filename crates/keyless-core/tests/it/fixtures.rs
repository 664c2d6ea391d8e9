//! Fixtures: tokens shaped like each provider's (`reference/providers.md`, quirks included) and the
//! stored objects of an exchange scenario. Times are relative to the fixed `NOW`.

use keyless_core::exchange::{self, ExchangeContext, ExchangeRequest, Grant};
use keyless_core::id::{IssuerId, OrganizationId, RuleId, ServiceAccountId, WorkspaceId};
use keyless_core::issuer::Issuer;
use keyless_core::rejection::Rejection;
use keyless_core::rule::{Rule, RuleDraft, RuleError};
use keyless_core::service_account::{OrganizationRole, ServiceAccount};
use serde_json::{Map, Value, json};

pub(crate) const NOW: i64 = 1_760_000_000;
/// The server's public URL: the default expected audience.
pub(crate) const AUDIENCE: &str = "https://keyless.example";
pub(crate) const ORGANIZATION: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
pub(crate) const ISSUER_ID: &str = "fdis_test1";
pub(crate) const RULE_ID: &str = "fdrl_test1";
pub(crate) const SERVICE_ACCOUNT_ID: &str = "svac_deployer";
pub(crate) const DEFAULT_WORKSPACE: &str = "wrkspc_default1";

pub(crate) const GITHUB: &str = "https://token.actions.githubusercontent.com";
pub(crate) const KUBERNETES: &str = "https://kubernetes.default.svc.cluster.local";
pub(crate) const GITLAB: &str = "https://gitlab.com";
pub(crate) const GOOGLE: &str = "https://accounts.google.com";
pub(crate) const AWS: &str = "https://a1b2c3d4.tokens.sts.global.api.aws";
pub(crate) const AZURE_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub(crate) const OKTA: &str = "https://acme.okta.com/oauth2/default";
pub(crate) const SPIRE: &str = "https://oidc-discovery.example.org";

/// `value` with `changes` applied at the top level; a `null` change removes the claim.
pub(crate) fn with(value: Value, changes: Value) -> Value {
    let mut object = value.as_object().unwrap().clone();
    for (name, change) in changes.as_object().unwrap() {
        if change.is_null() {
            object.remove(name);
        } else {
            object.insert(name.clone(), change.clone());
        }
    }
    Value::Object(object)
}

pub(crate) fn object(value: &Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

// ---- tokens -------------------------------------------------------------------------------------

/// GitHub Actions: numeric IDs as strings, empty strings, `exp − iat = 300`, `nbf = iat − 600`.
pub(crate) fn github_actions(sub: &str) -> Value {
    let iat = NOW - 20;
    json!({
        "jti": "8e1c7a32-5b0e-4f0a-9f43-0d1c5e0b6a11",
        "sub": sub,
        "aud": AUDIENCE,
        "ref": "refs/heads/main",
        "sha": "d6e5f1c2a0b9e8d7c6b5a4f3e2d1c0b9a8f7e6d5",
        "repository": "octo-org/octo-repo",
        "repository_owner": "octo-org",
        "repository_id": "74",
        "repository_owner_id": "65",
        "repository_visibility": "private",
        "actor": "octocat",
        "actor_id": "12",
        "run_id": "9876543210",
        "run_number": "10",
        "run_attempt": "1",
        "workflow": "deploy",
        "workflow_ref": "octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main",
        "job_workflow_ref": "octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main",
        "event_name": "push",
        "ref_type": "branch",
        "ref_protected": "true",
        "environment": "prod",
        "runner_environment": "github-hosted",
        "head_ref": "",
        "base_ref": "",
        "iss": GITHUB,
        "iat": iat,
        "nbf": iat - 600,
        "exp": iat + 300,
    })
}

/// A projected Kubernetes service-account token: array `aud`, nested `kubernetes.io`.
pub(crate) fn kubernetes(lifetime_seconds: i64) -> Value {
    let iat = NOW - 60;
    json!({
        "aud": [AUDIENCE],
        "exp": iat + lifetime_seconds,
        "iat": iat,
        "nbf": iat,
        "iss": KUBERNETES,
        "jti": "3f0c1a7e-2b1d-4e9f-8c6a-5d4e3f2a1b0c",
        "kubernetes.io": {
            "namespace": "ci",
            "node": { "name": "node-a", "uid": "1b2c3d4e-0000-4000-8000-000000000001" },
            "pod": { "name": "deployer-7d9f8-abcde", "uid": "1b2c3d4e-0000-4000-8000-000000000002" },
            "serviceaccount": { "name": "deployer", "uid": "1b2c3d4e-0000-4000-8000-000000000003" },
            "warnafter": iat + 3607,
        },
        "sub": "system:serviceaccount:ci:deployer",
    })
}

/// GitLab.com CI `id_tokens`: `runner_id` is a number, `ref_protected` the string "true", `ref` without
/// `refs/heads/`, `nbf = iat − 5`.
pub(crate) fn gitlab() -> Value {
    let iat = NOW - 10;
    json!({
        "namespace_id": "72",
        "namespace_path": "my-group",
        "project_id": "20",
        "project_path": "my-group/my-project",
        "user_id": "1",
        "user_login": "sample-user",
        "pipeline_id": "574",
        "pipeline_source": "push",
        "job_id": "302",
        "ref": "main",
        "ref_type": "branch",
        "ref_path": "refs/heads/main",
        "ref_protected": "true",
        "runner_id": 5,
        "runner_environment": "gitlab-hosted",
        "sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
        "jti": "235b3a54-b797-45c7-ae9a-f72d7bc6ef5b",
        "iss": GITLAB,
        "iat": iat,
        "nbf": iat - 5,
        "exp": iat + 300,
        "sub": "project_path:my-group/my-project:ref_type:branch:ref:main",
        "aud": AUDIENCE,
    })
}

/// A Google Cloud metadata identity token (`format=full`): numeric-string `sub`/`azp`, `project_number`
/// a number inside `google.compute_engine`.
pub(crate) fn google(iss: &str) -> Value {
    let iat = NOW - 30;
    json!({
        "aud": AUDIENCE,
        "azp": "112233445566778899000",
        "email": "deployer@my-project.iam.gserviceaccount.com",
        "email_verified": true,
        "exp": iat + 3600,
        "google": {
            "compute_engine": {
                "instance_creation_timestamp": 1_700_000_000,
                "instance_id": "4567890123456789012",
                "instance_name": "runner-1",
                "project_id": "my-project",
                "project_number": 123_456_789_012_i64,
                "zone": "us-central1-a",
            }
        },
        "iat": iat,
        "iss": iss,
        "sub": "112233445566778899000",
    })
}

/// AWS outbound identity federation (`sts:GetWebIdentityToken`): the role ARN as `sub`, the namespaced
/// claim `https://sts.amazonaws.com/`.
pub(crate) fn aws() -> Value {
    let iat = NOW - 5;
    json!({
        "iss": AWS,
        "sub": "arn:aws:iam::123456789012:role/deployer",
        "aud": AUDIENCE,
        "jti": "5a0d5e3c-8c1b-4b8e-9a61-2f0f7e0c9d11",
        "iat": iat,
        "nbf": iat,
        "exp": iat + 300,
        "https://sts.amazonaws.com/": {
            "aws_account": "123456789012",
            "source_region": "us-east-1",
            "org_id": "o-a1b2c3d4e5",
            "ou_path": ["o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/"],
            "principal_tags": { "team": "platform" },
            "request_tags": {},
        },
    })
}

/// Azure managed identity, v1 (`iss` with a trailing slash) or v2.
pub(crate) fn azure(v2: bool) -> Value {
    let iat = NOW - 100;
    let (iss, ver) = if v2 {
        (format!("https://login.microsoftonline.com/{AZURE_TENANT}/v2.0"), "2.0")
    } else {
        (format!("https://sts.windows.net/{AZURE_TENANT}/"), "1.0")
    };
    json!({
        "aud": "api://keyless",
        "iss": iss,
        "iat": iat,
        "nbf": iat,
        "exp": iat + 3599,
        "aio": "E2ZgYJg...",
        "appid": "5c1d9f6e-3b2a-4c8d-9e0f-1a2b3c4d5e6f",
        "appidacr": "2",
        "idp": format!("https://sts.windows.net/{AZURE_TENANT}/"),
        "idtyp": "app",
        "oid": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
        "sub": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
        "tid": AZURE_TENANT,
        "uti": "AbCdEfGh",
        "ver": ver,
        "xms_mirid": "/subscriptions/0000/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/deployer",
    })
}

/// Okta client credentials: `scp` is an array, `jti` starts with `AT.`.
pub(crate) fn okta() -> Value {
    let iat = NOW - 10;
    json!({
        "ver": 1,
        "jti": "AT.x1y2z3",
        "iss": OKTA,
        "aud": "api://default",
        "iat": iat,
        "exp": iat + 3600,
        "cid": "0oa1b2c3d4e5f6g7h8",
        "scp": ["keyless.exchange", "openid"],
        "sub": "0oa1b2c3d4e5f6g7h8",
    })
}

/// A SPIFFE JWT-SVID from SPIRE: `aud` an array.
pub(crate) fn spiffe(path: &str) -> Value {
    let iat = NOW - 10;
    json!({
        "sub": format!("spiffe://example.org{path}"),
        "aud": [AUDIENCE],
        "iat": iat,
        "exp": iat + 300,
        "iss": SPIRE,
    })
}

// ---- stored objects -----------------------------------------------------------------------------

pub(crate) fn organization_id() -> OrganizationId {
    OrganizationId::parse(ORGANIZATION).unwrap()
}

pub(crate) fn default_workspace_id() -> WorkspaceId {
    WorkspaceId::parse(DEFAULT_WORKSPACE).unwrap()
}

pub(crate) fn issuer(issuer_url: &str) -> Issuer {
    Issuer {
        id: IssuerId::parse(ISSUER_ID).unwrap(),
        organization_id: organization_id(),
        issuer_url: issuer_url.to_owned(),
        check_jti: true,
        max_jwt_lifetime_seconds: 3600,
        archived: false,
    }
}

pub(crate) fn service_account() -> ServiceAccount {
    ServiceAccount {
        id: ServiceAccountId::parse(SERVICE_ACCOUNT_ID).unwrap(),
        organization_id: organization_id(),
        organization_role: OrganizationRole::Developer,
        archived: false,
    }
}

/// A rule draft on `issuer`: a name, the issuer, the target, and `fields` (`match` included).
pub(crate) fn draft(issuer: &Issuer, fields: Value) -> RuleDraft {
    let base = json!({
        "name": "test-rule",
        "issuer_id": issuer.id.as_str(),
        "match": {},
        "target": { "type": "service_account", "service_account_id": SERVICE_ACCOUNT_ID },
    });
    serde_json::from_value(with(base, fields)).unwrap()
}

/// A stored rule built from `draft(issuer, fields)`.
pub(crate) fn rule(issuer: &Issuer, fields: Value) -> Result<Rule, RuleError> {
    let spec = draft(issuer, fields).validate(issuer, &default_workspace_id())?;
    Ok(Rule {
        id: RuleId::parse(RULE_ID).unwrap(),
        organization_id: organization_id(),
        archived: false,
        spec,
    })
}

pub(crate) fn request() -> ExchangeRequest {
    ExchangeRequest {
        federation_rule_id: RuleId::parse(RULE_ID).unwrap(),
        organization_id: organization_id(),
        service_account_id: None,
        workspace_id: None,
        scope: None,
    }
}

/// Everything one exchange needs; tests change a field and call [`Scenario::decide`].
pub(crate) struct Scenario {
    pub(crate) request: ExchangeRequest,
    pub(crate) issuer: Issuer,
    pub(crate) rule: Rule,
    pub(crate) service_account: ServiceAccount,
    pub(crate) claims: Value,
    pub(crate) default_workspace_id: WorkspaceId,
    pub(crate) leeway_seconds: i64,
    pub(crate) now: i64,
}

impl Scenario {
    pub(crate) fn new(issuer: Issuer, rule: Rule, claims: Value) -> Self {
        Self {
            request: request(),
            issuer,
            rule,
            service_account: service_account(),
            claims,
            default_workspace_id: default_workspace_id(),
            leeway_seconds: 30,
            now: NOW,
        }
    }

    pub(crate) fn decide(&self) -> Result<Grant, Rejection> {
        let ctx = ExchangeContext {
            default_audience: AUDIENCE,
            default_workspace_id: &self.default_workspace_id,
            leeway_seconds: self.leeway_seconds,
        };
        let claims = object(&self.claims);
        exchange::decide(
            &self.request,
            &self.issuer,
            &self.rule,
            &self.service_account,
            &claims,
            &ctx,
            self.now,
        )
    }
}
