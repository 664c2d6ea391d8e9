//! Every rejection code of the exchange, reached over HTTP: the caller gets the RFC 6749 error, the
//! stable `error_code` and a request ID, never the rule's values; the activity feed holds the failed
//! check with what was expected and what was seen.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyless_jose::{Algorithm, SigningKey};
use serde_json::{Value, json};

use crate::exchange::{Env, now};
use crate::harness::{Db, databases};
use crate::oidc::OidcIssuer;

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// One refused exchange and what must be seen of it.
struct Case {
    name: &'static str,
    body: Value,
    error: &'static str,
    code: &'static str,
    /// The check the activity event must name.
    check: &'static str,
}

async fn assert_case(env: &Env, case: Case) {
    let reply = env.exchange(&case.body).await;
    assert_eq!(reply.status, 400, "{}: {}", case.name, reply.body);
    assert_eq!(reply.body["error"], case.error, "{}: {}", case.name, reply.body);
    assert_eq!(reply.body["error_code"], case.code, "{}: {}", case.name, reply.body);
    assert_eq!(reply.body["request_id"], reply.request_id.as_str(), "{}", case.name);
    let event = env.exchange_event(&reply.request_id).await;
    assert_eq!(event["status"]["outcome"], "failure", "{}: {event}", case.name);
    assert_eq!(event["status"]["reason"], case.code, "{}: {event}", case.name);
    assert!(
        event["event_data"].get("access_token").is_none(),
        "{}: a refusal names no token: {event}",
        case.name
    );
    let check = event["status"]["detail"]["check"].as_str().unwrap_or_default();
    assert!(
        check.starts_with(case.check),
        "{}: check {check:?}, want {:?}",
        case.name,
        case.check
    );
    // The caller never sees the rule's expected values.
    if case.error == "invalid_grant" {
        let text = reply.body.to_string();
        for secret in ["acme", "refs/heads/release", SUBJECT_PREFIX_TAIL] {
            assert!(!text.contains(secret), "{}: {text}", case.name);
        }
    }
}

const SUBJECT_PREFIX_TAIL: &str = "ref:refs/heads/main";

#[tokio::test]
async fn every_rejection_code_is_reached_over_http() {
    for db in databases() {
        every_rejection_code(db).await;
    }
}

async fn every_rejection_code(db: Db) {
    let env = Env::start(db).await;
    let now = now();
    let with = |changes: Value| {
        let mut claims = env.claims();
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        env.body(&env.oidc.mint(&claims))
    };
    let good = env.token();
    let (head, rest) = good.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap();

    // A signature that is well-formed base64url but wrong: flip bits in its first byte.
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[0] ^= 0x55;
    let tampered = format!("{head}.{payload}.{}", URL_SAFE_NO_PAD.encode(&bytes));
    // HS256 with the issuer's kid: never accepted, whatever the key.
    let hs_header = json!({ "alg": "HS256", "typ": "JWT", "kid": header["kid"] });
    let hs256 = format!("{}.{payload}.{}", b64(&hs_header), URL_SAFE_NO_PAD.encode([7u8; 32]));
    // A key the issuer never published.
    let stranger = SigningKey::generate(Algorithm::Rs256).unwrap();
    let foreign = stranger.sign_jwt(env.claims().as_object().unwrap()).unwrap();

    let body_with = |field: &str, value: Value| {
        let mut body = env.body(&env.token());
        body[field] = value;
        body
    };
    let other_account = {
        let (status, account) = env
            .app
            .post_authed(
                &env.admin,
                "/v1/organizations/service_accounts",
                &json!({ "name": "other" }),
            )
            .await;
        assert_eq!(status, 200, "{account}");
        account["id"].as_str().unwrap().to_owned()
    };

    let cases = vec![
        Case {
            name: "not a JWT",
            body: env.body("not-a-jwt"),
            error: "invalid_grant",
            code: "malformed_token",
            check: "jws.",
        },
        Case {
            name: "too large",
            body: env.body(&format!("{head}.{}.{signature}", "A".repeat(17 * 1024))),
            error: "invalid_grant",
            code: "token_too_large",
            check: "jws.",
        },
        Case {
            name: "HS256",
            body: env.body(&hs256),
            error: "invalid_grant",
            code: "algorithm_not_allowed",
            check: "jws.",
        },
        Case {
            name: "unknown key",
            body: env.body(&foreign),
            error: "invalid_grant",
            code: "key_not_found",
            check: "jws.",
        },
        Case {
            name: "tampered",
            body: env.body(&tampered),
            error: "invalid_grant",
            code: "invalid_signature",
            check: "jws.",
        },
        Case {
            name: "iss",
            body: with(json!({ "iss": "https://evil.example" })),
            error: "invalid_grant",
            code: "issuer_mismatch",
            check: "iss",
        },
        Case {
            name: "aud",
            body: with(json!({ "aud": "https://elsewhere.example" })),
            error: "invalid_grant",
            code: "audience_mismatch",
            check: "aud",
        },
        Case {
            name: "sub",
            body: with(json!({ "sub": "repo:acme/other:ref:refs/heads/main" })),
            error: "invalid_grant",
            code: "subject_mismatch",
            check: "match.subject_prefix",
        },
        Case {
            name: "claims",
            body: with(json!({ "repository_owner": "evil" })),
            error: "invalid_grant",
            code: "claim_mismatch",
            check: "match.claims",
        },
        Case {
            name: "expired",
            body: with(json!({ "iat": now - 400, "nbf": now - 400, "exp": now - 100 })),
            error: "invalid_grant",
            code: "token_expired",
            check: "exp",
        },
        Case {
            name: "nbf",
            body: with(json!({ "nbf": now + 120 })),
            error: "invalid_grant",
            code: "token_not_yet_valid",
            check: "nbf",
        },
        Case {
            name: "iat",
            body: with(json!({ "iat": now + 120, "nbf": null, "exp": now + 400 })),
            error: "invalid_grant",
            code: "token_issued_in_future",
            check: "iat",
        },
        Case {
            name: "lifetime",
            body: with(json!({ "exp": now + 7200 })),
            error: "invalid_grant",
            code: "token_lifetime_exceeds_maximum",
            check: "exp",
        },
        Case {
            name: "no sub",
            body: with(json!({ "sub": null })),
            error: "invalid_grant",
            code: "missing_claim",
            check: "sub",
        },
        Case {
            name: "exp string",
            body: with(json!({ "exp": "soon" })),
            error: "invalid_grant",
            code: "invalid_claim",
            check: "exp",
        },
        Case {
            name: "unknown rule",
            body: body_with("federation_rule_id", json!("fdrl_0123456789abcdefghjkmnpq")),
            error: "invalid_grant",
            code: "rule_not_found",
            check: "rule.",
        },
        Case {
            name: "other organization",
            body: body_with("organization_id", json!("00000000-0000-4000-8000-000000000000")),
            error: "invalid_grant",
            code: "rule_not_found",
            check: "rule.",
        },
        Case {
            name: "other account",
            body: body_with("service_account_id", json!(other_account)),
            error: "invalid_grant",
            code: "service_account_mismatch",
            check: "request.service_account_id",
        },
        Case {
            name: "workspace",
            body: body_with("workspace_id", json!("wrkspc_0123456789abcdefghjkmnpq")),
            error: "invalid_grant",
            code: "workspace_not_enabled",
            check: "",
        },
        Case {
            name: "scope",
            body: body_with("scope", json!("org:admin")),
            error: "invalid_scope",
            code: "invalid_scope",
            check: "",
        },
    ];
    for case in cases {
        assert_case(&env, case).await;
    }

    // A second rule with a condition, and one enabled in every workspace.
    let rule = |name: &str, extra: Value| {
        let mut body = json!({
            "name": name,
            "issuer_id": env.issuer_id,
            "match": { "subject_prefix": "repo:acme/app:*", "condition": "claims.ref == \"refs/heads/release\"" },
            "target": { "type": "service_account", "service_account_id": env.service_account_id },
        });
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    let condition_rule = create(&env, rule("release-only", json!({}))).await;
    let mut body = env.body(&env.token());
    body["federation_rule_id"] = json!(condition_rule);
    assert_case(
        &env,
        Case {
            name: "condition",
            body,
            error: "invalid_grant",
            code: "condition_false",
            check: "match.condition",
        },
    )
    .await;

    let erroring = create(
        &env,
        // `run_id` is a string in GitHub's tokens: adding an int to it is an evaluation error.
        rule(
            "run-id-arithmetic",
            json!({ "match": { "subject_prefix": "repo:acme/app:*", "condition": "claims.run_id + 1 == 78" } }),
        ),
    )
    .await;
    let mut body = env.body(&env.token());
    body["federation_rule_id"] = json!(erroring);
    assert_case(
        &env,
        Case {
            name: "condition error",
            body,
            error: "invalid_grant",
            code: "condition_error",
            check: "match.condition",
        },
    )
    .await;

    let everywhere = create(
        &env,
        rule(
            "everywhere",
            json!({ "match": { "subject_prefix": "repo:acme/app:*" }, "applies_to_all_workspaces": true }),
        ),
    )
    .await;
    let mut body = env.body(&env.token());
    body["federation_rule_id"] = json!(everywhere);
    assert_case(
        &env,
        Case {
            name: "workspace required",
            body,
            error: "invalid_request",
            code: "workspace_id_required",
            check: "",
        },
    )
    .await;

    // Replay: the same token twice.
    let once = env.token();
    assert_eq!(env.exchange(&env.body(&once)).await.status, 200);
    assert_case(
        &env,
        Case {
            name: "replay",
            body: env.body(&once),
            error: "invalid_grant",
            code: "jti_reused",
            check: "jti",
        },
    )
    .await;

    // An archived rule stops exchanges at once.
    let (status, archived) = env
        .app
        .post_authed(
            &env.admin,
            &format!("/v1/organizations/federation_rules/{}/archive", env.rule_id),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{archived}");
    assert_case(
        &env,
        Case {
            name: "archived rule",
            body: env.body(&env.token()),
            error: "invalid_grant",
            code: "rule_not_found",
            check: "rule.archived",
        },
    )
    .await;
    env.app.stop().await.unwrap();
}

async fn create(env: &Env, body: Value) -> String {
    let (status, rule) = env
        .app
        .post_authed(&env.admin, "/v1/organizations/federation_rules", &body)
        .await;
    assert_eq!(status, 200, "{rule}");
    rule["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn jwks_unavailable_when_the_issuer_is_down_and_nothing_is_cached() {
    // The issuer is down before keyless ever hears of it: taken down after the setup, the background
    // poller (its first tick can run late on a loaded CI machine) could fetch and cache the keys first,
    // and the exchange then succeeded.
    let oidc = OidcIssuer::start().await;
    oidc.set_outage(true);
    let env = Env::start_against(Db::Sqlite, oidc, |_| {}).await;
    let reply = env.exchange(&env.body(&env.token())).await;
    reply.assert_refused("invalid_grant", "jwks_unavailable");
    env.app.stop().await.unwrap();
}
