//! Shadow mode: a rule with `mode: shadow` is evaluated in full on every exchange through it, records a
//! `platform_federated_authentication_shadow` event saying what it would have decided (`would_allow`
//! with the grant, `would_deny` with the failing check), and never mints — nor burns the token's `jti`.

use serde_json::{Value, json};

use crate::exchange::Env;
use crate::harness::databases;

const RULES: &str = "/v1/organizations/federation_rules";

#[tokio::test]
async fn a_shadow_rule_records_its_verdict_and_mints_nothing() {
    for db in databases() {
        let env = Env::start(db).await;
        let (status, shadow) = env
            .app
            .post_authed(
                &env.admin,
                RULES,
                &json!({
                    "name": "deploy-shadow",
                    "issuer_id": env.issuer_id,
                    "match": { "subject_prefix": "repo:acme/app:ref:refs/heads/main", "claims": { "repository_owner_id": "1001" } },
                    "target": { "type": "service_account", "service_account_id": env.service_account_id },
                    "oauth_scope": "workspace:inference",
                    "token_lifetime_seconds": 900,
                    "mode": "shadow",
                }),
            )
            .await;
        assert_eq!(status, 200, "{shadow}");
        assert_eq!(shadow["mode"], "shadow");
        let shadow_id = shadow["id"].as_str().unwrap().to_owned();

        // A token the rule would admit: refused with rule_in_shadow_mode, recorded as would_allow.
        let token = env.token();
        let mut body = env.body(&token);
        body["federation_rule_id"] = json!(shadow_id);
        let reply = env.exchange(&body).await;
        assert_eq!(reply.status, 400, "{db:?}: {}", reply.body);
        assert_eq!(reply.body["error"], "invalid_grant");
        assert_eq!(reply.body["error_code"], "rule_in_shadow_mode");
        let events = env.events_of(&reply.request_id).await;
        assert_eq!(events.len(), 1, "{events:?}");
        let event = &events[0];
        assert_eq!(event["type"], "platform_federated_authentication_shadow", "{event}");
        assert_eq!(event["resource_id"], shadow_id.as_str());
        assert_eq!(event["status"]["outcome"], "would_allow", "{event}");
        assert_eq!(event["status"]["scope"], "workspace:inference");
        let expires_in = event["status"]["expires_in"].as_i64().unwrap();
        assert!((1..=900).contains(&expires_in), "{event}");
        assert_eq!(event["event_data"]["oidc_token"]["verified"], true);

        // The jti was not burned: the same token works through the enforcing rule.
        let granted = env.exchange(&env.body(&token)).await;
        assert_eq!(granted.status, 200, "{db:?}: {}", granted.body);

        // A token it would refuse: would_deny, with the failing check and what was seen.
        let mut claims = env.claims();
        claims["sub"] = json!("repo:acme/app:pull_request");
        let mut body = env.body(&env.oidc.mint(&claims));
        body["federation_rule_id"] = json!(shadow_id);
        let reply = env.exchange(&body).await;
        assert_eq!(reply.body["error_code"], "rule_in_shadow_mode", "{}", reply.body);
        let event = env.events_of(&reply.request_id).await.remove(0);
        assert_eq!(event["status"]["outcome"], "would_deny", "{event}");
        assert_eq!(event["status"]["reason"], "subject_mismatch", "{event}");
        assert_eq!(
            event["status"]["detail"]["seen"], "repo:acme/app:pull_request",
            "{event}"
        );

        // Shadow events are their own type in the feed; no token was minted through the rule.
        let (_, feed) = env
            .app
            .get_authed(
                &env.admin,
                "/v1/organizations/activities?type=platform_federated_authentication_shadow",
            )
            .await;
        assert_eq!(feed["data"].as_array().unwrap().len(), 2, "{feed}");

        // Switching the rule to enforce makes it mint.
        let (status, enforced) = env
            .app
            .post_authed(
                &env.admin,
                &format!("{RULES}/{shadow_id}"),
                &json!({ "mode": "enforce" }),
            )
            .await;
        assert_eq!(
            (status, &enforced["mode"]),
            (200, &Value::from("enforce")),
            "{enforced}"
        );
        let mut body = env.body(&env.token());
        body["federation_rule_id"] = json!(shadow_id);
        let reply = env.exchange(&body).await;
        assert_eq!(reply.status, 200, "{db:?}: {}", reply.body);
        assert_eq!(reply.body["scope"], "workspace:inference");

        // A mode that is neither is refused at write time.
        let (status, refused) = env
            .app
            .post_authed(&env.admin, &format!("{RULES}/{shadow_id}"), &json!({ "mode": "audit" }))
            .await;
        assert_eq!(status, 400, "{refused}");
        assert!(
            refused["error"]["message"].as_str().unwrap().starts_with("mode: "),
            "{refused}"
        );
        env.app.stop().await.unwrap();
    }
}
