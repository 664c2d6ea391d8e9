//! `POST /v1/oauth/introspect` and its least-privilege scope: a token holding `oauth:introspect` (a
//! resource server's credential) introspects; a `workspace:developer` token is refused with 403.

use serde_json::{Value, json};

use crate::exchange::Env;
use crate::harness::databases;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Creates `path` with the bootstrap (interactive) token and returns the new object's ID.
async fn created(env: &Env, path: &str, body: Value) -> String {
    let (status, object) = env.app.post_authed(&env.admin, path, &body).await;
    assert_eq!(status, 200, "POST {path}: {object}");
    object["id"].as_str().unwrap().to_owned()
}

/// Exchanges a fresh workload token through `rule_id` for `service_account_id`'s access token.
async fn access_token(env: &Env, rule_id: &str, service_account_id: &str) -> String {
    let reply = env
        .exchange(&json!({
            "grant_type": JWT_BEARER,
            "assertion": env.token(),
            "federation_rule_id": rule_id,
            "organization_id": env.organization_id,
            "service_account_id": service_account_id,
        }))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["access_token"].as_str().unwrap().to_owned()
}

async fn introspect(env: &Env, bearer: &str, token: &str) -> (u16, Value) {
    let response = env
        .app
        .http
        .post(env.app.url("/v1/oauth/introspect"))
        .bearer_auth(bearer)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn an_oauth_introspect_token_introspects_and_a_developer_token_is_refused() {
    for db in databases() {
        let env = Env::start(db).await;
        let resource_server = created(
            &env,
            "/v1/organizations/service_accounts",
            json!({ "name": "resource-server" }),
        )
        .await;
        // A scope outside `workspace:`: granted by a rule written with the interactive bootstrap token.
        let introspect_rule = created(
            &env,
            "/v1/organizations/federation_rules",
            json!({
                "name": "resource-server",
                "issuer_id": env.issuer_id,
                "match": { "subject_prefix": "repo:acme/app:*", "claims": { "repository_owner": "acme" } },
                "target": { "type": "service_account", "service_account_id": resource_server },
                "oauth_scope": "oauth:introspect",
            }),
        )
        .await;
        let introspector = access_token(&env, &introspect_rule, &resource_server).await;
        let developer = access_token(&env, &env.rule_id, &env.service_account_id).await;

        let (status, body) = introspect(&env, &introspector, &developer).await;
        assert_eq!(status, 200, "{db:?}: {body}");
        assert_eq!(body["active"], true, "{db:?}: {body}");
        assert_eq!(body["scope"], "workspace:developer", "{db:?}: {body}");
        assert_eq!(body["sub"], env.service_account_id.as_str(), "{db:?}: {body}");
        assert_eq!(body["federation_rule_id"], env.rule_id.as_str(), "{db:?}: {body}");

        let (status, body) = introspect(&env, &introspector, "keyless_at_not-a-token").await;
        assert_eq!((status, body), (200, json!({ "active": false })), "{db:?}");

        let (status, body) = introspect(&env, &developer, &introspector).await;
        assert_eq!(status, 403, "{db:?}: {body}");
        assert_eq!(body["error"], "insufficient_scope", "{db:?}: {body}");
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.contains("`org:admin`") && description.contains("`oauth:introspect`"),
            "{db:?}: {description}"
        );

        // The scope opens introspection only, not the Admin API.
        let (status, body) = env
            .app
            .get_authed(&introspector, "/v1/organizations/service_accounts")
            .await;
        assert_eq!(status, 403, "{db:?}: {body}");
    }
}
