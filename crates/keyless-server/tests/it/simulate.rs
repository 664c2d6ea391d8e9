//! `POST /v1/organizations/federation_rules/simulate`: the verdict agrees with what the exchange then
//! does with the same token, every failing matcher is listed, a token can be simulated unverified, an
//! issuer's rules are simulated together, and a simulation leaves no trace (no event, no used `jti`).

use serde_json::{Value, json};

use crate::exchange::Env;
use crate::harness::{Db, databases};
use crate::oidc::OidcIssuer;

const PATH: &str = "/v1/organizations/federation_rules/simulate";

impl Env {
    async fn simulate(&self, body: &Value) -> (u16, Value) {
        self.app.post_authed(&self.admin, PATH, body).await
    }

    /// The failed checks of a result, as `(check, code)`.
    fn failed(result: &Value) -> Vec<(String, String)> {
        result["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|check| check["passed"] == false)
            .map(|check| {
                (
                    check["check"].as_str().unwrap().to_owned(),
                    check["code"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    async fn exchange_events(&self) -> usize {
        let (status, page) = self
            .app
            .get_authed(
                &self.admin,
                "/v1/organizations/activities?type=platform_federated_authentication&limit=100",
            )
            .await;
        assert_eq!(status, 200, "{page}");
        page["data"].as_array().unwrap().len()
    }
}

#[tokio::test]
async fn a_token_the_exchange_accepts_would_be_granted_the_same_scope_and_lifetime() {
    for db in databases() {
        let env = Env::start(db).await;
        // The issuer checks `jti` and the token carries one: the simulation must not use it up.
        let token = env.token();
        let (status, answer) = env
            .simulate(&json!({ "token": token, "rule_id": env.rule_id, "scope": "workspace:developer" }))
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["verified"], true, "{answer}");
        let result = &answer["results"][0];
        assert_eq!(result["rule_id"], env.rule_id.as_str());
        assert_eq!(result["rule_name"], "deploy-main");
        assert_eq!(result["verdict"], "would_grant", "{result}");
        assert_eq!(result["code"], Value::Null);
        assert!(Env::failed(result).is_empty(), "{result}");
        let checks: Vec<&str> = result["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|check| check["check"].as_str().unwrap())
            .collect();
        for check in [
            "rule",
            "signature",
            "iss",
            "aud",
            "exp",
            "match.subject_prefix",
            "match.claims.repository_owner",
        ] {
            assert!(checks.contains(&check), "{check} in {checks:?}");
        }
        assert!(!answer.to_string().contains(&token), "the token is never echoed");
        assert_eq!(env.exchange_events().await, 0, "a simulation is not an exchange");

        let mut body = env.body(&token);
        body["scope"] = json!("workspace:developer");
        let reply = env.exchange(&body).await;
        assert_eq!(reply.status, 200, "{db:?}: the jti is still unused: {}", reply.body);
        assert_eq!(reply.body["scope"], result["scope"]);
        let simulated = result["token_lifetime_seconds"].as_i64().unwrap();
        let granted = reply.body["expires_in"].as_i64().unwrap();
        // Both are min(600, 2 × remaining); a second may pass between them.
        assert!((0..=2).contains(&(simulated - granted)), "{simulated} vs {granted}");
        assert_eq!(env.exchange_events().await, 1);

        // Only the exchange wrote an event: nothing of type simulate exists.
        let (_, page) = env
            .app
            .get_authed(&env.admin, "/v1/organizations/activities?limit=100")
            .await;
        assert!(!page.to_string().contains("simulat"), "{page}");

        // The same token again: now the jti is used, which a simulation cannot know (documented).
        let (_, again) = env.simulate(&json!({ "token": token, "rule_id": env.rule_id })).await;
        assert_eq!(again["results"][0]["verdict"], "would_grant");
        env.exchange(&env.body(&token))
            .await
            .assert_refused("invalid_grant", "jti_reused");
        env.app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_rejected_token_is_rejected_with_the_exchanges_code_and_every_failing_matcher() {
    for db in databases() {
        let env = Env::start(db).await;
        let mut claims = env.claims();
        claims["sub"] = json!("repo:evil/app:ref:refs/heads/main");
        claims["repository_owner"] = json!("evil");
        let token = env.oidc.mint(&claims);
        let (status, answer) = env.simulate(&json!({ "token": token, "rule_id": env.rule_id })).await;
        assert_eq!(status, 200, "{answer}");
        let result = &answer["results"][0];
        assert_eq!(result["verdict"], "would_reject", "{result}");
        assert_eq!(result["scope"], Value::Null);
        assert_eq!(result["token_lifetime_seconds"], Value::Null);
        assert_eq!(
            Env::failed(result),
            vec![
                ("match.subject_prefix".to_owned(), "subject_mismatch".to_owned()),
                ("match.claims.repository_owner".to_owned(), "claim_mismatch".to_owned()),
            ]
        );
        let subject = result["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|check| check["check"] == "match.subject_prefix")
            .unwrap();
        assert_eq!(subject["expected"], "repo:acme/app:ref:refs/heads/main");
        assert_eq!(subject["seen"], "repo:evil/app:ref:refs/heads/main");

        let reply = env.exchange(&env.body(&token)).await;
        reply.assert_refused("invalid_grant", result["code"].as_str().unwrap());
        assert_eq!(result["code"], "subject_mismatch");

        // Claims alone: never verified, the same checks.
        let (status, answer) = env.simulate(&json!({ "claims": claims, "rule_id": env.rule_id })).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["verified"], false);
        assert_eq!(answer["results"][0]["code"], "subject_mismatch");
        assert_eq!(Env::failed(&answer["results"][0]).len(), 2);
        env.app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn an_unverifiable_token_is_rejected_or_evaluated_unverified() {
    for db in databases() {
        let env = Env::start(db).await;
        let stranger = OidcIssuer::start().await;
        let token = stranger.mint(&env.claims());

        let (status, answer) = env.simulate(&json!({ "token": token, "rule_id": env.rule_id })).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["verified"], false);
        let result = &answer["results"][0];
        assert_eq!(result["verdict"], "would_reject");
        assert_eq!(result["code"], "key_not_found", "{result}");
        assert_eq!(
            Env::failed(result),
            vec![("jws.kid_not_found".to_owned(), "key_not_found".to_owned())]
        );
        env.exchange(&env.body(&token))
            .await
            .assert_refused("invalid_grant", "key_not_found");

        let (status, answer) = env
            .simulate(&json!({ "token": token, "verify": false, "rule_id": env.rule_id }))
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["verified"], false);
        let result = &answer["results"][0];
        assert_eq!(result["verdict"], "would_grant", "{result}");
        assert!(!result["checks"].to_string().contains("signature"), "{result}");
        env.app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn every_live_rule_of_an_issuer_is_simulated() {
    for db in databases() {
        let env = Env::start(db).await;
        let (status, other) = env
            .app
            .post_authed(
                &env.admin,
                "/v1/organizations/federation_rules",
                &json!({
                    "name": "deploy-tags",
                    "issuer_id": env.issuer_id,
                    "match": { "subject_prefix": "repo:acme/app:ref:refs/tags/*" },
                    "target": { "type": "service_account", "service_account_id": env.service_account_id },
                }),
            )
            .await;
        assert_eq!(status, 200, "{other}");
        let (status, answer) = env
            .simulate(&json!({ "token": env.token(), "issuer_id": env.issuer_id }))
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["verified"], true);
        let mut verdicts: Vec<(String, String)> = answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|result| {
                (
                    result["rule_name"].as_str().unwrap().to_owned(),
                    result["verdict"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        verdicts.sort();
        assert_eq!(
            verdicts,
            vec![
                ("deploy-main".to_owned(), "would_grant".to_owned()),
                ("deploy-tags".to_owned(), "would_reject".to_owned()),
            ]
        );
        env.app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn malformed_simulations_name_the_field() {
    let env = Env::start(Db::Sqlite).await;
    let token = env.token();
    let claims = env.claims();
    let cases = [
        (
            json!({ "rule_id": env.rule_id }),
            400,
            "token: one of token or claims is required",
        ),
        (
            json!({ "token": token, "claims": claims, "rule_id": env.rule_id }),
            400,
            "token: give either",
        ),
        (
            json!({ "token": token }),
            400,
            "rule_id: one of rule_id or issuer_id is required",
        ),
        (
            json!({ "token": token, "rule_id": env.rule_id, "issuer_id": env.issuer_id }),
            400,
            "rule_id: give either",
        ),
        (
            json!({ "claims": claims, "verify": true, "rule_id": env.rule_id }),
            400,
            "verify:",
        ),
        (
            json!({ "token": "not-a-jwt", "verify": false, "rule_id": env.rule_id }),
            400,
            "token:",
        ),
        (json!({ "token": token, "rule_id": "fdis_1" }), 400, "rule_id:"),
        (
            json!({ "token": token, "rule_id": env.rule_id, "workspace_id": "ws" }),
            400,
            "workspace_id:",
        ),
        (
            json!({ "token": token, "rule_id": env.rule_id, "surprise": 1 }),
            400,
            "surprise",
        ),
        (
            json!({ "token": token, "rule_id": "fdrl_nosuchrule" }),
            404,
            "rule_id: no such federation rule",
        ),
        (
            json!({ "token": token, "issuer_id": "fdis_nosuchissuer" }),
            404,
            "issuer_id: no such federation issuer",
        ),
    ];
    for (body, expected_status, message) in cases {
        let (status, answer) = env.simulate(&body).await;
        assert_eq!(status, expected_status, "{body}: {answer}");
        let text = answer["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{text} should contain {message}");
        assert!(
            !answer.to_string().contains(&token),
            "the token is never echoed: {answer}"
        );
    }
    // A literal segment, routed before `{id}`: a GET is not a rule read.
    let (status, _) = env.app.get_authed(&env.admin, PATH).await;
    assert_eq!(status, 405);
    // Admin only.
    let (status, _) = env
        .app
        .post_authed(
            "keyless_at_nope",
            PATH,
            &json!({ "token": token, "rule_id": env.rule_id }),
        )
        .await;
    assert_eq!(status, 401);
    env.app.stop().await.unwrap();
}
