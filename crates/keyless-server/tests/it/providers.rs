//! One exchange per real provider's token shape (`/work/shared/reference/providers.md`): the claims,
//! header and JWKS each provider really sends, with only the issuer's host replaced by a loopback
//! issuer and the timestamps made current. Each provider gets an issuer, a service account and a
//! rule matching its recommended immutable identifiers, as an operator would set them up; its token
//! is exchanged and the activity event must hold the verified claims. Then the token a real
//! misconfiguration produces (another repository, namespace, tenant, …) must be refused with the
//! exact code, the event naming the failed check and what it saw.
//!
//! The provider's keys are generated here (not the `OidcIssuer`'s own) so that the header (`typ`
//! absent, `x5t`) and the JWKS (keys without `alg` or `use`, several keys) have the provider's shape;
//! the loopback `OidcIssuer` serves its discovery document and that JWKS.

use keyless_jose::{Algorithm, SigningKey};
use serde_json::{Map, Value, json};

use crate::exchange::{Env, now};
use crate::harness::databases;
use crate::oidc::OidcIssuer;

/// `token_lifetime_seconds` of every rule here.
const TOKEN_LIFETIME: i64 = 3600;

/// What a case is built from.
struct Ctx {
    /// The loopback issuer, `http://127.0.0.1:PORT`: it stands for the provider's `https://host`.
    root: String,
    /// keyless's public URL: the default audience.
    server: String,
    now: i64,
}

/// How keyless is told where the provider's keys are.
enum Keys {
    /// `{type: discovery}`: `<issuer_url>/.well-known/openid-configuration`.
    Discovery,
    /// `{type: discovery, discovery_base}`: the document lives at the loopback root and names
    /// `document_issuer` (not compared with `issuer_url` when a base is set).
    DiscoveryAt { document_issuer: String },
    /// `{type: explicit_url}`: the loopback `/jwks`.
    ExplicitUrl,
    /// `{type: inline}`: nothing is fetched.
    Inline,
}

/// How the provider publishes one key in its JWKS.
enum Shape {
    /// `kty`, key material, `kid`, `alg`, `use: sig`.
    Full,
    /// The same without `alg` (AWS's RSA key).
    NoAlg,
    /// `kty`, key material and `kid` only (SPIRE, through go-jose).
    Bare,
    /// With an `x5t`, which the token header repeats (GitHub).
    X5t(&'static str),
}

struct Published {
    alg: Algorithm,
    shape: Shape,
}

/// A refused token and what must be seen of it.
struct Refusal {
    /// What the misconfiguration's token differs in: a JSON merge patch (RFC 7396) of the claims.
    patch: Value,
    code: &'static str,
    /// `status.detail.check` of the event.
    check: &'static str,
    /// `status.detail.seen` of the event.
    seen: Value,
}

struct Provider {
    /// Also the name of its issuer, service account and rule.
    name: &'static str,
    /// The JWKS, in the provider's shape; the first key signs.
    keys: Vec<Published>,
    /// The header's `typ` (`None`: absent).
    typ: Option<&'static str>,
    issuer_url: String,
    jwks: Keys,
    /// The issuer's `max_jwt_lifetime_seconds` (`None`: the default, 3600).
    max_jwt_lifetime_seconds: Option<i64>,
    claims: Value,
    rule_match: Value,
    /// The provider-specific claim the event must carry.
    distinctive: &'static str,
    refusal: Refusal,
}

/// Runs `build`'s case on every database.
async fn exercise(build: impl Fn(&Ctx) -> Provider) {
    for db in databases() {
        let env = Env::start(db).await;
        let oidc = OidcIssuer::start().await;
        let ctx = Ctx {
            root: oidc.issuer_url(),
            server: env.app.base_url.clone(),
            now: now(),
        };
        let provider = build(&ctx);
        let name = format!("{} on {db:?}", provider.name);

        let keys: Vec<SigningKey> = provider
            .keys
            .iter()
            .map(|key| SigningKey::generate(key.alg).unwrap())
            .collect();
        let published: Vec<Value> = keys
            .iter()
            .zip(&provider.keys)
            .map(|(key, how)| publish(key, &how.shape))
            .collect();
        oidc.set_jwks_body(Some(serde_json::to_vec(&json!({ "keys": published })).unwrap()));
        let jwks = match &provider.jwks {
            Keys::Discovery => json!({ "type": "discovery" }),
            Keys::DiscoveryAt { document_issuer } => {
                oidc.set_discovery_issuer(Some(document_issuer));
                json!({ "type": "discovery", "discovery_base": ctx.root })
            }
            Keys::ExplicitUrl => json!({ "type": "explicit_url", "url": oidc.jwks_url() }),
            Keys::Inline => json!({ "type": "inline", "keys": published }),
        };
        let mut issuer = json!({ "name": provider.name, "issuer_url": provider.issuer_url, "jwks": jwks });
        if let Some(seconds) = provider.max_jwt_lifetime_seconds {
            issuer["max_jwt_lifetime_seconds"] = json!(seconds);
        }
        let issuer_id = create(&env, "federation_issuers", issuer).await;
        let service_account_id = create(&env, "service_accounts", json!({ "name": provider.name })).await;
        let rule_id = create(
            &env,
            "federation_rules",
            json!({
                "name": provider.name,
                "issuer_id": issuer_id,
                "match": provider.rule_match,
                "target": { "type": "service_account", "service_account_id": service_account_id },
                "token_lifetime_seconds": TOKEN_LIFETIME,
            }),
        )
        .await;
        let body = |claims: &Value| {
            let mut body = env.body(&sign(&keys[0], &provider, claims));
            body["federation_rule_id"] = json!(rule_id);
            body["service_account_id"] = json!(service_account_id);
            body
        };

        // The provider's token is exchanged, and recorded as verified with every claim.
        let claims = &provider.claims;
        let reply = env.exchange(&body(claims)).await;
        assert_eq!(reply.status, 200, "{name}: {}", reply.body);
        let access_token = reply.body["access_token"].as_str().unwrap();
        assert!(access_token.starts_with("keyless_at_"), "{name}: {access_token}");
        assert_eq!(reply.body["token_type"], "Bearer", "{name}");
        assert_eq!(reply.body["scope"], "workspace:developer", "{name}");
        let remaining = claims["exp"].as_i64().unwrap() - ctx.now;
        let lifetime = TOKEN_LIFETIME.min(2 * remaining).max(60);
        let expires_in = reply.body["expires_in"].as_i64().unwrap();
        assert!(
            (lifetime - 5..=lifetime).contains(&expires_in),
            "{name}: expires_in {expires_in}, want about {lifetime}"
        );

        let event = env.exchange_event(&reply.request_id).await;
        assert_eq!(event["status"]["outcome"], "success", "{name}: {event}");
        let data = &event["event_data"];
        assert_eq!(data["federation_rule_id"], rule_id.as_str(), "{name}");
        assert_eq!(data["issuer_id"], issuer_id.as_str(), "{name}");
        assert_eq!(data["service_account_id"], service_account_id.as_str(), "{name}");
        let recorded = &data["oidc_token"];
        assert_eq!(recorded["verified"], true, "{name}: {recorded}");
        assert_eq!(
            recorded["header"],
            json!({ "alg": keys[0].alg().name(), "kid": keys[0].kid(), "typ": provider.typ }),
            "{name}"
        );
        assert_eq!(recorded["claims"], *claims, "{name}");
        let distinctive = &claims[provider.distinctive];
        assert!(!distinctive.is_null(), "{name}: no {} claim", provider.distinctive);
        assert_eq!(recorded["claims"][provider.distinctive], *distinctive, "{name}");

        // The token of a misconfiguration is refused at the check that guards against it.
        let refusal = &provider.refusal;
        let mut refused = claims.clone();
        merge_patch(&mut refused, &refusal.patch);
        assert_ne!(refused, *claims, "{name}: the patch changes nothing");
        let reply = env.exchange(&body(&refused)).await;
        reply.assert_refused("invalid_grant", refusal.code);
        let event = env.exchange_event(&reply.request_id).await;
        let status = &event["status"];
        assert_eq!(status["outcome"], "failure", "{name}: {event}");
        assert_eq!(status["reason"], refusal.code, "{name}: {event}");
        assert_eq!(status["detail"]["check"], refusal.check, "{name}: {event}");
        assert_eq!(status["detail"]["seen"], refusal.seen, "{name}: {event}");
        assert_eq!(event["event_data"]["oidc_token"]["verified"], true, "{name}: {event}");
        assert_eq!(event["event_data"]["oidc_token"]["claims"], refused, "{name}");
        env.app.stop().await.unwrap();
    }
}

async fn create(env: &Env, collection: &str, body: Value) -> String {
    let path = format!("/v1/organizations/{collection}");
    let (status, object) = env.app.post_authed(&env.admin, &path, &body).await;
    assert_eq!(status, 200, "POST {path} {body}: {object}");
    object["id"].as_str().unwrap().to_owned()
}

fn publish(key: &SigningKey, shape: &Shape) -> Value {
    let mut jwk = key.public_jwk();
    let members = jwk.as_object_mut().unwrap();
    match shape {
        Shape::Full => {}
        Shape::NoAlg => {
            members.remove("alg");
        }
        Shape::Bare => {
            members.remove("alg");
            members.remove("use");
        }
        Shape::X5t(x5t) => {
            members.insert("x5t".to_owned(), json!(x5t));
        }
    }
    jwk
}

/// Signs `claims` with the provider's header: `alg`, `kid`, and its `typ` and `x5t` if it sends them.
fn sign(key: &SigningKey, provider: &Provider, claims: &Value) -> String {
    let mut header = Map::new();
    header.insert("alg".to_owned(), json!(key.alg().name()));
    header.insert("kid".to_owned(), json!(key.kid()));
    if let Some(typ) = provider.typ {
        header.insert("typ".to_owned(), json!(typ));
    }
    if let Shape::X5t(x5t) = provider.keys[0].shape {
        header.insert("x5t".to_owned(), json!(x5t));
    }
    key.sign_compact(&header, &serde_json::to_vec(claims).unwrap()).unwrap()
}

/// RFC 7396: `patch` applied to `target` (`null` removes a member).
fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (name, value) in patch {
                if value.is_null() {
                    target.remove(name);
                } else {
                    merge_patch(target.entry(name.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

fn rsa(shape: Shape) -> Published {
    Published {
        alg: Algorithm::Rs256,
        shape,
    }
}

// ---------------------------------------------------------------------------------------------
// GitHub Actions

/// A deployment job of `acme/app` in its `production` environment. Repositories created after
/// 2026-07-15 carry the immutable subject form `repo:acme@1001/app@2002:…`.
fn github_actions(ctx: &Ctx, immutable_subject: bool) -> Provider {
    let subject = |owner_id: &str, repository_id: &str| {
        if immutable_subject {
            format!("repo:acme@{owner_id}/app@{repository_id}:environment:production")
        } else {
            "repo:acme/app:environment:production".to_owned()
        }
    };
    let now = ctx.now;
    let claims = json!({
        "jti": "5a9b2c7e-3f1d-4e8a-9b0c-1d2e3f4a5b6c",
        "sub": subject("1001", "2002"),
        "aud": ctx.server,
        "ref": "refs/heads/main",
        "sha": "d6cd1e2bd19e03a81132a23b2025920577f84e37",
        "repository": "acme/app",
        "repository_owner": "acme",
        "repository_id": "2002",
        "repository_owner_id": "1001",
        "actor": "octocat",
        "actor_id": "583231",
        "run_id": "9876543210",
        "run_number": "42",
        "run_attempt": "1",
        "workflow": "Deploy",
        "workflow_ref": "acme/app/.github/workflows/deploy.yml@refs/heads/main",
        "job_workflow_ref": "acme/app/.github/workflows/deploy.yml@refs/heads/main",
        "event_name": "push",
        "ref_type": "branch",
        "ref_protected": "true",
        "environment": "production",
        "runner_environment": "github-hosted",
        "head_ref": "",
        "base_ref": "",
        "iss": ctx.root,
        "iat": now,
        "nbf": now - 600,
        "exp": now + 300,
    });
    // `acme/app` deleted and re-created (or a rename reused the name): same name, new ID.
    let recreated = subject("1001", "9999");
    let refusal = if immutable_subject {
        Refusal {
            patch: json!({ "jti": "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5", "sub": recreated, "repository_id": "9999" }),
            code: "subject_mismatch",
            check: "match.subject_prefix",
            seen: json!(recreated),
        }
    } else {
        Refusal {
            patch: json!({ "jti": "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5", "repository_id": "9999" }),
            code: "claim_mismatch",
            check: "match.claims.repository_id",
            seen: json!("9999"),
        }
    };
    Provider {
        name: if immutable_subject {
            "github-actions-immutable"
        } else {
            "github-actions"
        },
        keys: vec![
            rsa(Shape::X5t("ykNaY4qM_ta4k2TgZOCEYLkcYlA")),
            rsa(Shape::X5t("Hyp8NzsVzsZqJm3SJfyo1iiIKqQ")),
            rsa(Shape::Full),
        ],
        typ: Some("JWT"),
        issuer_url: ctx.root.clone(),
        jwks: Keys::Discovery,
        max_jwt_lifetime_seconds: None,
        rule_match: json!({
            "subject_prefix": subject("1001", "2002"),
            // The tenant pin GitHub's shared issuer needs, by immutable IDs.
            "claims": { "repository_owner_id": "1001", "repository_id": "2002" },
        }),
        claims,
        distinctive: "repository_id",
        refusal,
    }
}

#[tokio::test]
async fn github_actions_environment_job() {
    exercise(|ctx| github_actions(ctx, false)).await;
}

#[tokio::test]
async fn github_actions_immutable_subject() {
    exercise(|ctx| github_actions(ctx, true)).await;
}

// ---------------------------------------------------------------------------------------------
// GitLab CI

/// A `main` pipeline job of `acme/payments` with an `id_tokens` entry for keyless.
fn gitlab_ci(ctx: &Ctx) -> Provider {
    let now = ctx.now;
    Provider {
        name: "gitlab-ci",
        keys: vec![rsa(Shape::Full)],
        typ: Some("JWT"),
        issuer_url: ctx.root.clone(),
        jwks: Keys::Discovery,
        max_jwt_lifetime_seconds: None,
        claims: json!({
            "namespace_id": "72",
            "namespace_path": "acme",
            "project_id": "4242",
            "project_path": "acme/payments",
            "user_id": "31",
            "user_login": "alice",
            "pipeline_id": "1180423",
            "pipeline_source": "push",
            "job_id": "8912345",
            "ref": "main",
            "ref_type": "branch",
            "ref_protected": "true",
            "runner_id": 12_270_857,
            "runner_environment": "gitlab-hosted",
            "sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
            "jti": "e1f0c0a4-6b8d-4b7e-9a51-3c2d1b0a9f8e",
            "iss": ctx.root,
            "iat": now,
            "nbf": now - 5,
            "exp": now + 3600,
            "sub": "project_path:acme/payments:ref_type:branch:ref:main",
            "aud": ctx.server,
        }),
        rule_match: json!({
            "subject_prefix": "project_path:acme/payments:ref_type:branch:ref:main",
            "claims": { "namespace_id": "72", "project_id": "4242" },
            "condition": "claims.ref_protected == \"true\"",
        }),
        distinctive: "runner_id",
        // `acme/payments` renamed away and another project created under the old path.
        refusal: Refusal {
            patch: json!({ "jti": "77a1e0b2-3c4d-4e5f-8a6b-7c8d9e0f1a2b", "project_id": "5555" }),
            code: "claim_mismatch",
            check: "match.claims.project_id",
            seen: json!("5555"),
        },
    }
}

#[tokio::test]
async fn gitlab_ci_id_token() {
    exercise(gitlab_ci).await;
}

// ---------------------------------------------------------------------------------------------
// Kubernetes

/// A projected service-account token (`audience:` keyless, `expirationSeconds: 3600`) of a private
/// cluster, whose keys are given inline.
fn kubernetes(ctx: &Ctx) -> Provider {
    let now = ctx.now;
    Provider {
        name: "kubernetes",
        keys: vec![rsa(Shape::Full)],
        typ: None,
        issuer_url: ctx.root.clone(),
        jwks: Keys::Inline,
        max_jwt_lifetime_seconds: None,
        claims: json!({
            "aud": [ctx.server],
            "exp": now + 3600,
            "iat": now,
            "iss": ctx.root,
            "kubernetes.io": {
                "namespace": "payments",
                "node": { "name": "ip-10-0-12-34.ec2.internal", "uid": "0f6c9d4e-2b1a-4c3d-9e8f-7a6b5c4d3e2f" },
                "pod": { "name": "deployer-7d9f8c6b5-x2k4q", "uid": "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d" },
                "serviceaccount": { "name": "deployer", "uid": "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a" },
            },
            "nbf": now,
            "sub": "system:serviceaccount:payments:deployer",
        }),
        rule_match: json!({
            "condition": "claims[\"kubernetes.io\"].namespace == \"payments\" \
                          && claims[\"kubernetes.io\"].serviceaccount.name == \"deployer\"",
        }),
        distinctive: "kubernetes.io",
        // A `deployer` service account of another namespace.
        refusal: Refusal {
            patch: json!({
                "sub": "system:serviceaccount:growth:deployer",
                "kubernetes.io": { "namespace": "growth" },
            }),
            code: "condition_false",
            check: "match.condition",
            seen: json!(false),
        },
    }
}

#[tokio::test]
async fn kubernetes_projected_service_account_token() {
    exercise(kubernetes).await;
}

// ---------------------------------------------------------------------------------------------
// Google Cloud

const GCP_SERVICE_ACCOUNT_ID: &str = "102101010101010101010";

/// The metadata server's identity token (`format=full`) of a VM running as
/// `deployer@acme-prod.iam.gserviceaccount.com`, for the audience the rule names. `scheme_less`:
/// `iss` is `accounts.google.com`, as Google may also emit it; that URL is registered as is (it
/// cannot stand on loopback), the keys are fetched from the loopback issuer.
fn gcp(ctx: &Ctx, scheme_less: bool) -> Provider {
    let now = ctx.now;
    let (issuer_url, jwks) = if scheme_less {
        ("accounts.google.com".to_owned(), Keys::ExplicitUrl)
    } else {
        (ctx.root.clone(), Keys::Discovery)
    };
    Provider {
        name: if scheme_less { "gcp-scheme-less-iss" } else { "gcp" },
        keys: vec![rsa(Shape::Full), rsa(Shape::Full)],
        typ: Some("JWT"),
        jwks,
        max_jwt_lifetime_seconds: None,
        claims: json!({
            "aud": "https://keyless.acme.example/gcp",
            "azp": GCP_SERVICE_ACCOUNT_ID,
            "email": "deployer@acme-prod.iam.gserviceaccount.com",
            "email_verified": true,
            "exp": now + 3600,
            "google": {
                "compute_engine": {
                    "instance_id": "4626483939428374734",
                    "instance_name": "payments-1",
                    "project_id": "acme-prod",
                    "project_number": 123_456_789_012_i64,
                    "zone": "us-central1-a",
                },
            },
            "iat": now,
            "iss": issuer_url,
            "sub": GCP_SERVICE_ACCOUNT_ID,
        }),
        issuer_url,
        rule_match: json!({
            // An exact subject: the tenant pin Google's shared issuer needs.
            "subject_prefix": GCP_SERVICE_ACCOUNT_ID,
            "audience": "https://keyless.acme.example/gcp",
            "claims": { "email": "deployer@acme-prod.iam.gserviceaccount.com" },
            "condition": "claims.google.compute_engine.project_number == 123456789012",
        }),
        distinctive: "google",
        // The service account deleted and re-created under the same email: a new numeric ID.
        refusal: Refusal {
            patch: json!({ "sub": "109876543210987654321", "azp": "109876543210987654321" }),
            code: "subject_mismatch",
            check: "match.subject_prefix",
            seen: json!("109876543210987654321"),
        },
    }
}

#[tokio::test]
async fn gcp_metadata_identity_token() {
    exercise(|ctx| gcp(ctx, false)).await;
}

#[tokio::test]
async fn gcp_identity_token_with_scheme_less_iss() {
    exercise(|ctx| gcp(ctx, true)).await;
}

// ---------------------------------------------------------------------------------------------
// Azure (Microsoft Entra ID)

const AZURE_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const AZURE_OBJECT_ID: &str = "5b7a1c9e-2d4f-4e6a-8b3c-9d0e1f2a3b4c";

/// A managed identity's v1 token from IMDS (`resource=api://keyless`) of a VM: `iss` is
/// `https://sts.windows.net/<tid>/` with its trailing slash; the keys come from the tenant's
/// discovery document at another location. Entra backdates `iat`/`nbf` by five minutes, and managed
/// identity tokens live 24 hours: the issuer allows that lifetime.
fn azure_v1(ctx: &Ctx) -> Provider {
    let issuer_url = format!("{}/{AZURE_TENANT}/", ctx.root);
    let iat = ctx.now - 300;
    Provider {
        name: "azure-managed-identity-v1",
        keys: vec![rsa(Shape::X5t("JYhAcTPMZ_LX6DBlOWQ7Hn0NeXE")), rsa(Shape::Full)],
        typ: Some("JWT"),
        jwks: Keys::DiscoveryAt {
            document_issuer: issuer_url.clone(),
        },
        max_jwt_lifetime_seconds: Some(86_400),
        claims: json!({
            "aud": "api://keyless",
            "iss": issuer_url,
            "iat": iat,
            "nbf": iat,
            "exp": iat + 86_400,
            "appid": "0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9",
            "appidacr": "2",
            "idp": issuer_url,
            "idtyp": "app",
            "oid": AZURE_OBJECT_ID,
            "sub": AZURE_OBJECT_ID,
            "tid": AZURE_TENANT,
            "ver": "1.0",
            "xms_mirid": "/subscriptions/8c1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a/resourcegroups/payments/providers/Microsoft.ManagedIdentity/userAssignedIdentities/deployer",
        }),
        issuer_url,
        rule_match: json!({
            "audience": "api://keyless",
            "claims": { "tid": AZURE_TENANT, "oid": AZURE_OBJECT_ID },
        }),
        distinctive: "xms_mirid",
        // Another managed identity of the same tenant.
        refusal: Refusal {
            patch: json!({
                "oid": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
                "sub": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
                "xms_mirid": "/subscriptions/8c1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a/resourcegroups/growth/providers/Microsoft.ManagedIdentity/userAssignedIdentities/growth",
            }),
            code: "claim_mismatch",
            check: "match.claims.oid",
            seen: json!("9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"),
        },
    }
}

/// An AKS pod's v2 app token (azure-identity `WorkloadIdentityCredential`, `scope=<keyless app>/.default`):
/// `iss` is `https://login.microsoftonline.com/<tid>/v2.0`, `aud` the keyless app's client ID, `azp`
/// the workload's. The operator points discovery at the `common` document, whose `issuer` holds the
/// literal `{tenantid}` template.
fn azure_v2(ctx: &Ctx) -> Provider {
    let issuer_url = format!("{}/{AZURE_TENANT}/v2.0", ctx.root);
    let iat = ctx.now - 300;
    let other_tenant = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";
    let other_issuer = format!("{}/{other_tenant}/v2.0", ctx.root);
    Provider {
        name: "azure-workload-identity-v2",
        keys: vec![rsa(Shape::Full), rsa(Shape::Full)],
        typ: Some("JWT"),
        jwks: Keys::DiscoveryAt {
            document_issuer: format!("{}/{{tenantid}}/v2.0", ctx.root),
        },
        max_jwt_lifetime_seconds: Some(86_400),
        claims: json!({
            "aud": "3f2e1d0c-9b8a-4765-8432-10fedcba9876",
            "iss": issuer_url,
            "iat": iat,
            "nbf": iat,
            "exp": iat + 4_800,
            "azp": "0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9",
            "azpacr": "2",
            "idtyp": "app",
            "oid": AZURE_OBJECT_ID,
            "sub": AZURE_OBJECT_ID,
            "tid": AZURE_TENANT,
            "ver": "2.0",
        }),
        issuer_url,
        rule_match: json!({
            "audience": "3f2e1d0c-9b8a-4765-8432-10fedcba9876",
            "claims": { "tid": AZURE_TENANT, "oid": AZURE_OBJECT_ID },
        }),
        distinctive: "tid",
        // Another tenant's token: Entra signs every tenant's tokens with the same keys.
        refusal: Refusal {
            patch: json!({ "iss": other_issuer, "tid": other_tenant }),
            code: "issuer_mismatch",
            check: "iss",
            seen: json!(other_issuer),
        },
    }
}

#[tokio::test]
async fn azure_managed_identity_v1_token() {
    exercise(azure_v1).await;
}

#[tokio::test]
async fn azure_workload_identity_v2_token() {
    exercise(azure_v2).await;
}

// ---------------------------------------------------------------------------------------------
// AWS outbound identity federation

const AWS_CLAIM: &str = "https://sts.amazonaws.com/";

/// `sts:GetWebIdentityToken` for a role of account 111122223333 tagged `team=payments` (default
/// duration 300 s). The JWKS holds an RSA key without `alg` and a P-384 key; `alg` picks the signer.
fn aws(ctx: &Ctx, alg: Algorithm) -> Provider {
    let now = ctx.now;
    let p384 = Published {
        alg: Algorithm::Es384,
        shape: Shape::Full,
    };
    let keys = match alg {
        Algorithm::Es384 => vec![p384, rsa(Shape::NoAlg)],
        _ => vec![rsa(Shape::NoAlg), p384],
    };
    Provider {
        name: if alg == Algorithm::Es384 {
            "aws-es384"
        } else {
            "aws-rs256"
        },
        keys,
        typ: Some("JWT"),
        issuer_url: ctx.root.clone(),
        jwks: Keys::Discovery,
        max_jwt_lifetime_seconds: None,
        claims: json!({
            "iss": ctx.root,
            "sub": "arn:aws:iam::111122223333:role/payments-deployer",
            "aud": ctx.server,
            "jti": "b7c6d5e4-f3a2-4b1c-9d0e-8f7a6b5c4d3e",
            "iat": now,
            "exp": now + 300,
            AWS_CLAIM: {
                "aws_account": "111122223333",
                "source_region": "us-east-1",
                "org_id": "o-a1b2c3d4e5",
                "ou_path": ["o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/"],
                "principal_tags": { "team": "payments" },
                "request_tags": {},
            },
        }),
        rule_match: json!({
            "subject_prefix": "arn:aws:iam::111122223333:role/*",
            "condition": "claims[\"https://sts.amazonaws.com/\"].aws_account == \"111122223333\" \
                          && claims[\"https://sts.amazonaws.com/\"].principal_tags.team == \"payments\"",
        }),
        distinctive: AWS_CLAIM,
        // Another team's role in the same account.
        refusal: Refusal {
            patch: json!({
                "jti": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                "sub": "arn:aws:iam::111122223333:role/growth-deployer",
                AWS_CLAIM: { "principal_tags": { "team": "growth" } },
            }),
            code: "condition_false",
            check: "match.condition",
            seen: json!(false),
        },
    }
}

#[tokio::test]
async fn aws_web_identity_token_es384() {
    exercise(|ctx| aws(ctx, Algorithm::Es384)).await;
}

#[tokio::test]
async fn aws_web_identity_token_rs256_key_without_alg() {
    exercise(|ctx| aws(ctx, Algorithm::Rs256)).await;
}

// ---------------------------------------------------------------------------------------------
// Okta

const OKTA_CLIENT_ID: &str = "0oa8f5j3ecb5w3dF35d7";

/// A client-credentials access token of the `default` authorization server (`/oauth2/default`,
/// keys at its own `/v1/keys`): header `{kid, alg}`, `aud` `api://default`, `scp` an array.
fn okta(ctx: &Ctx) -> Provider {
    let now = ctx.now;
    let issuer_url = format!("{}/oauth2/default", ctx.root);
    Provider {
        name: "okta",
        keys: vec![rsa(Shape::Full), rsa(Shape::Full)],
        typ: None,
        jwks: Keys::ExplicitUrl,
        max_jwt_lifetime_seconds: None,
        claims: json!({
            "ver": 1,
            "jti": "AT.kq5yYkqmvP3Vq0iDmK1LrX2hF9nZQOk3eT6sR8uW4bA",
            "iss": issuer_url,
            "aud": "api://default",
            "iat": now,
            "exp": now + 3600,
            "cid": OKTA_CLIENT_ID,
            "scp": ["payments:write"],
            "sub": OKTA_CLIENT_ID,
        }),
        issuer_url,
        rule_match: json!({
            "subject_prefix": OKTA_CLIENT_ID,
            "audience": "api://default",
            "claims": { "cid": OKTA_CLIENT_ID },
            "condition": "\"payments:write\" in claims.scp",
        }),
        distinctive: "scp",
        // Another service app of the same Okta org.
        refusal: Refusal {
            patch: json!({
                "jti": "AT.Zx1cV2bN3mQ4wE5rT6yU7iO8pA9sD0fG1hJ2kL3zX4c",
                "cid": "0oa9g6k4fdc6x4eG46e8",
                "sub": "0oa9g6k4fdc6x4eG46e8",
            }),
            code: "subject_mismatch",
            check: "match.subject_prefix",
            seen: json!("0oa9g6k4fdc6x4eG46e8"),
        },
    }
}

#[tokio::test]
async fn okta_client_credentials_token() {
    exercise(okta).await;
}

// ---------------------------------------------------------------------------------------------
// SPIFFE

/// A SPIRE JWT-SVID (ES256, five minutes, `aud` an array) whose keys SPIRE's OIDC discovery
/// provider serves as `{kty, kid, crv, x, y}`.
fn spiffe(ctx: &Ctx) -> Provider {
    let now = ctx.now;
    Provider {
        name: "spiffe",
        keys: vec![
            Published {
                alg: Algorithm::Es256,
                shape: Shape::Bare,
            },
            Published {
                alg: Algorithm::Es256,
                shape: Shape::Bare,
            },
        ],
        typ: Some("JWT"),
        issuer_url: ctx.root.clone(),
        jwks: Keys::Discovery,
        max_jwt_lifetime_seconds: None,
        claims: json!({
            "aud": ["spiffe://acme.example/keyless"],
            "exp": now + 300,
            "iat": now,
            "iss": ctx.root,
            "sub": "spiffe://acme.example/ns/payments/sa/deployer",
        }),
        rule_match: json!({
            "subject_prefix": "spiffe://acme.example/ns/payments/sa/deployer",
            "audience": "spiffe://acme.example/keyless",
        }),
        distinctive: "sub",
        // Another workload of the same trust domain.
        refusal: Refusal {
            patch: json!({ "sub": "spiffe://acme.example/ns/growth/sa/deployer" }),
            code: "subject_mismatch",
            check: "match.subject_prefix",
            seen: json!("spiffe://acme.example/ns/growth/sa/deployer"),
        },
    }
}

#[tokio::test]
async fn spiffe_jwt_svid() {
    exercise(spiffe).await;
}
