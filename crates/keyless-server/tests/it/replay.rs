//! `POST /v1/organizations/federation_rules/replay` and `…/validate`: an issuer's refused exchanges,
//! as the feed kept them, run again through a draft rule; which would now pass, which would still be
//! refused (and why), which cannot be judged; and a draft checked as a create checks it. Neither
//! writes anything.

use serde_json::{Value, json};

use crate::exchange::Env;
use crate::harness::databases;
use crate::oidc::OidcIssuer;

const REPLAY: &str = "/v1/organizations/federation_rules/replay";
const VALIDATE: &str = "/v1/organizations/federation_rules/validate";

impl Env {
    async fn replay(&self, body: &Value) -> (u16, Value) {
        self.app.post_authed(&self.admin, REPLAY, body).await
    }

    /// A draft admitting every branch of `acme/app`, its tokens living a day (a lint warning: the
    /// issuer's own tokens live an hour at most).
    fn branches_draft(&self) -> Value {
        json!({
            "name": "deploy-any-branch",
            "issuer_id": self.issuer_id,
            "match": { "subject_prefix": "repo:acme/app:ref:refs/heads/*", "claims": { "repository_owner": "acme" } },
            "target": { "type": "service_account", "service_account_id": self.service_account_id },
            "token_lifetime_seconds": 86_400,
        })
    }

    /// A refused exchange of `claims` (signed by the issuer); returns its request ID.
    async fn refused(&self, body: &Value, code: &str) -> String {
        let reply = self.exchange(body).await;
        reply.assert_refused("invalid_grant", code);
        reply.request_id
    }

    fn with_sub(&self, sub: &str) -> Value {
        let mut claims = self.claims();
        claims["sub"] = json!(sub);
        claims
    }

    async fn feed_len(&self) -> usize {
        let (status, page) = self
            .app
            .get_authed(&self.admin, "/v1/organizations/activities?limit=100")
            .await;
        assert_eq!(status, 200, "{page}");
        page["data"].as_array().unwrap().len()
    }

    async fn rule_count(&self) -> usize {
        let (status, page) = self
            .app
            .get_authed(&self.admin, "/v1/organizations/federation_rules?include_archived=true")
            .await;
        assert_eq!(status, 200, "{page}");
        page["data"].as_array().unwrap().len()
    }
}

/// The replayed entries by request ID: `(verdict, code, original code)`.
fn by_request(answer: &Value) -> Vec<(String, String, String, String)> {
    answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let text = |value: &Value| value.as_str().unwrap_or("-").to_owned();
            (
                text(&entry["request_id"]),
                text(&entry["verdict"]),
                text(&entry["code"]),
                text(&entry["original"]["code"]),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_draft_rule_replays_the_issuers_refused_exchanges_and_says_which_would_now_pass() {
    for db in databases() {
        let env = Env::start(db).await;
        let release = "repo:acme/app:ref:refs/heads/release";

        // Refused, verified, and a wider rule would admit it.
        let branch = env
            .refused(&env.body(&env.oidc.mint(&env.with_sub(release))), "subject_mismatch")
            .await;
        // Refused, verified, and still outside the draft: a deployment environment, another owner.
        let environment = env
            .refused(
                &env.body(&env.oidc.mint(&env.with_sub("repo:acme/app:environment:prod"))),
                "subject_mismatch",
            )
            .await;
        let mut evil = env.with_sub("repo:evil/app:ref:refs/heads/main");
        evil["repository_owner"] = json!("evil");
        let foreign_owner = env.refused(&env.body(&env.oidc.mint(&evil)), "subject_mismatch").await;
        // A bad signature: its claims were never verified.
        let good = env.oidc.mint(&env.with_sub(release));
        let (rest, signature) = good.rsplit_once('.').unwrap();
        let mut flipped = signature.chars().collect::<Vec<_>>();
        flipped[0] = if flipped[0] == 'A' { 'B' } else { 'A' };
        let tampered = format!("{rest}.{}", flipped.into_iter().collect::<String>());
        let bad_signature = env.refused(&env.body(&tampered), "invalid_signature").await;
        // A rule that does not exist: attributed to the issuer by the token's `iss`.
        let mut body = env.body(&env.oidc.mint(&env.with_sub(release)));
        body["federation_rule_id"] = json!("fdrl_0123456789abcdefghjkmnpq");
        let no_rule = env.refused(&body, "rule_not_found").await;
        // The same, from another issuer: not this issuer's, never replayed.
        let stranger = OidcIssuer::start().await;
        let mut claims = env.with_sub(release);
        claims["iss"] = json!(stranger.issuer_url());
        let mut body = env.body(&stranger.mint(&claims));
        body["federation_rule_id"] = json!("fdrl_0123456789abcdefghjkmnpq");
        let other_issuer = env.refused(&body, "rule_not_found").await;
        // A success and its replay: the success is not replayed, the replay cannot be.
        let token = env.token();
        assert_eq!(env.exchange(&env.body(&token)).await.status, 200);
        let reused = env.refused(&env.body(&token), "jti_reused").await;

        let feed_before = env.feed_len().await;
        let rules_before = env.rule_count().await;
        let (status, answer) = env.replay(&json!({ "rule": env.branches_draft() })).await;
        assert_eq!(status, 200, "{db:?}: {answer}");
        assert_eq!(answer["rule"]["id"], Value::Null, "{answer}");
        assert_eq!(answer["rule"]["name"], "deploy-any-branch");
        let warnings: Vec<&str> = answer["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|warning| warning["code"].as_str().unwrap())
            .collect();
        assert_eq!(warnings, vec!["lifetime_exceeds_issuer"]);
        assert_eq!(
            by_request(&answer),
            vec![
                (reused.clone(), "not_replayable".into(), "-".into(), "jti_reused".into()),
                (
                    no_rule.clone(),
                    "would_pass_if_verified".into(),
                    "-".into(),
                    "rule_not_found".into()
                ),
                (
                    bad_signature.clone(),
                    "would_pass_if_verified".into(),
                    "-".into(),
                    "invalid_signature".into()
                ),
                (
                    foreign_owner.clone(),
                    "would_reject".into(),
                    "subject_mismatch".into(),
                    "subject_mismatch".into()
                ),
                (
                    environment.clone(),
                    "would_reject".into(),
                    "subject_mismatch".into(),
                    "subject_mismatch".into()
                ),
                (
                    branch.clone(),
                    "would_pass".into(),
                    "-".into(),
                    "subject_mismatch".into()
                ),
            ],
            "{db:?}: newest first, the success and the other issuer's attempt left out"
        );
        assert!(!answer.to_string().contains(&other_issuer));
        assert_eq!(
            answer["summary"],
            json!({ "would_pass": 1, "would_pass_if_verified": 2, "would_reject": 2, "not_replayable": 1 })
        );
        assert_eq!(answer["replayed"], 6);
        assert_eq!(answer["history_exhausted"], true);
        assert_eq!(answer["scanned_events"], 8, "every exchange event was looked at");

        let entries = answer["data"].as_array().unwrap();
        let passing = entries
            .iter()
            .find(|entry| entry["request_id"] == branch.as_str())
            .unwrap();
        assert_eq!(passing["verified"], true);
        assert_eq!(passing["subject"], release);
        assert_eq!(passing["original"]["federation_rule_id"], env.rule_id.as_str());
        assert_eq!(passing["scope"], "workspace:developer");
        assert_eq!(passing["service_account_id"], env.service_account_id.as_str());
        assert!(passing["activity_id"].as_str().unwrap().starts_with("actv_"));
        let refused = entries
            .iter()
            .find(|entry| entry["request_id"] == foreign_owner.as_str())
            .unwrap();
        let failed: Vec<(&str, &str)> = refused["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|check| check["passed"] == false)
            .map(|check| (check["check"].as_str().unwrap(), check["code"].as_str().unwrap()))
            .collect();
        assert_eq!(
            failed,
            vec![
                ("match.subject_prefix", "subject_mismatch"),
                ("match.claims.repository_owner", "claim_mismatch")
            ]
        );
        let unverified = entries
            .iter()
            .find(|entry| entry["request_id"] == no_rule.as_str())
            .unwrap();
        assert_eq!(unverified["verified"], false);
        let reused_entry = entries
            .iter()
            .find(|entry| entry["request_id"] == reused.as_str())
            .unwrap();
        assert!(
            reused_entry["reason"].as_str().unwrap().contains("jti_reused"),
            "{reused_entry}"
        );
        assert!(!answer.to_string().contains(&token), "no token is ever echoed");

        // A replay reads: no event, no rule.
        assert_eq!(env.feed_len().await, feed_before);
        assert_eq!(env.rule_count().await, rules_before);

        // `limit` takes the newest; the history did not run out.
        let (status, answer) = env.replay(&json!({ "rule": env.branches_draft(), "limit": 2 })).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["replayed"], 2);
        assert_eq!(answer["history_exhausted"], false);
        assert_eq!(by_request(&answer)[1].0, no_rule);

        // The stored rule, as it is: what it refused, it refuses again.
        let (status, answer) = env.replay(&json!({ "rule_id": env.rule_id })).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["rule"]["id"], env.rule_id.as_str());
        assert_eq!(answer["summary"]["would_pass"], 0, "{answer}");
        let branch_again = by_request(&answer).into_iter().find(|entry| entry.0 == branch).unwrap();
        assert_eq!(branch_again.1, "would_reject");

        // A rule in shadow mode refuses every caller: its attempts are replayed too.
        let (status, updated) = env
            .app
            .post_authed(
                &env.admin,
                &format!("/v1/organizations/federation_rules/{}", env.rule_id),
                &json!({ "mode": "shadow" }),
            )
            .await;
        assert_eq!(status, 200, "{updated}");
        let shadowed = env.refused(&env.body(&env.token()), "rule_in_shadow_mode").await;
        let (_, answer) = env.replay(&json!({ "rule": env.branches_draft(), "limit": 1 })).await;
        assert_eq!(
            by_request(&answer),
            vec![(shadowed, "would_pass".into(), "-".into(), "rule_in_shadow_mode".into())]
        );
        env.app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_replay_refuses_bad_drafts_and_bad_bodies_with_the_creates_codes() {
    for db in databases() {
        let env = Env::start(db).await;
        let mut loose = env.branches_draft();
        loose["match"] = json!({ "subject_prefix": "*" });
        let (status, answer) = env.replay(&json!({ "rule": loose })).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], "no_identity_constraint", "{answer}");

        for (body, message) in [
            (json!({}), "rule: one of"),
            (
                json!({ "rule": env.branches_draft(), "rule_id": env.rule_id }),
                "rule: give either",
            ),
            (json!({ "rule_id": env.rule_id, "limit": 0 }), "limit: must be 1 to 500"),
            (
                json!({ "rule_id": env.rule_id, "limit": 501 }),
                "limit: must be 1 to 500",
            ),
            (json!({ "rule_id": "nope" }), "rule_id:"),
            (json!({ "rule_id": env.rule_id, "since": 1 }), "since"),
        ] {
            let (status, answer) = env.replay(&body).await;
            assert_eq!(status, 400, "{body}: {answer}");
            let text = answer["error"]["message"].as_str().unwrap();
            assert!(text.contains(message), "{body}: {text}");
        }
        let (status, answer) = env.replay(&json!({ "rule_id": "fdrl_0123456789abcdefghjkmnpq" })).await;
        assert_eq!(status, 404, "{answer}");

        // Admins only.
        let response = env
            .app
            .http
            .post(env.app.url(REPLAY))
            .json(&json!({ "rule_id": env.rule_id }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
        env.app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn validate_answers_what_a_create_would_and_creates_nothing() {
    for db in databases() {
        let env = Env::start(db).await;
        let rules_before = env.rule_count().await;
        let feed_before = env.feed_len().await;

        let (status, answer) = env.app.post_authed(&env.admin, VALIDATE, &env.branches_draft()).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["valid"], true);
        let warning = &answer["warnings"][0];
        assert_eq!(warning["code"], "lifetime_exceeds_issuer", "{answer}");
        assert_eq!(warning["field"], "token_lifetime_seconds");

        // Refusals carry the create's code.
        let mut shared_pattern = env.branches_draft();
        shared_pattern["match"] = json!({ "condition": "true" });
        let (status, answer) = env.app.post_authed(&env.admin, VALIDATE, &shared_pattern).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], "constant_condition", "{answer}");
        // References are checked as a create checks them.
        let mut archived_target = env.branches_draft();
        archived_target["target"]["service_account_id"] = json!("svac_0123456789abcdefghjkmnpq");
        let (status, answer) = env.app.post_authed(&env.admin, VALIDATE, &archived_target).await;
        assert_eq!(status, 404, "{answer}");

        assert_eq!(env.rule_count().await, rules_before);
        assert_eq!(env.feed_len().await, feed_before);
        env.app.stop().await.unwrap();
    }
}
