//! `GET /v1/organizations/activities`: filters, cursors, refusals and who may read it.

use serde_json::Value;

use crate::exchange::{Env, now};
use crate::harness::databases;

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_feed_filters_and_pages_newest_first() {
    for db in databases() {
        let env = Env::start(db).await;
        let good = env.exchange(&env.body(&env.token())).await;
        assert_eq!(good.status, 200, "{}", good.body);
        let bad = env.exchange(&env.body("not-a-jwt")).await;
        assert_eq!(bad.status, 400, "{}", bad.body);

        // By type: the two exchanges, newest first.
        let (status, page) = env
            .app
            .get_authed(
                &env.admin,
                "/v1/organizations/activities?type=platform_federated_authentication",
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let events = page["data"].as_array().unwrap();
        assert_eq!(events.len(), 2, "{db:?}: {page}");
        assert_eq!(events[0]["request_id"], bad.request_id.as_str());
        assert_eq!(events[1]["request_id"], good.request_id.as_str());
        assert_eq!(events[0]["status"]["outcome"], "failure");
        assert_eq!(events[1]["status"]["outcome"], "success");
        assert!(events[0]["id"].as_str().unwrap().starts_with("actv_"));

        // By resource: the admin changes that touched the rule (its creation).
        let (_, page) = env
            .app
            .get_authed(
                &env.admin,
                &format!("/v1/organizations/activities?resource_id={}", env.rule_id),
            )
            .await;
        assert!(!page["data"].as_array().unwrap().is_empty(), "{page}");
        assert!(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|event| event["resource_id"] == env.rule_id.as_str())
        );

        // Cursors: pages of one walk the whole feed once, in order, with has_more until the end.
        let (_, all) = env
            .app
            .get_authed(&env.admin, "/v1/organizations/activities?limit=100")
            .await;
        let everything = ids(&all);
        assert!(everything.len() >= 5, "{db:?}: {all}");
        let mut walked = Vec::new();
        let mut path = "/v1/organizations/activities?limit=1".to_owned();
        loop {
            let (status, page) = env.app.get_authed(&env.admin, &path).await;
            assert_eq!(status, 200, "{page}");
            walked.extend(ids(&page));
            if page["has_more"] != true {
                break;
            }
            path = format!(
                "/v1/organizations/activities?limit=1&after_id={}",
                page["last_id"].as_str().unwrap()
            );
        }
        assert_eq!(walked, everything, "{db:?}");
        let newest = &everything[0];
        let (_, newer) = env
            .app
            .get_authed(
                &env.admin,
                &format!("/v1/organizations/activities?before_id={}", everything[1]),
            )
            .await;
        assert_eq!(ids(&newer), vec![newest.clone()], "{db:?}");

        // Time window: nothing is created in the future; everything since an hour ago.
        let later = now() + 3600;
        let (_, future) = env
            .app
            .get_authed(
                &env.admin,
                &format!("/v1/organizations/activities?created_after={later}"),
            )
            .await;
        assert_eq!(ids(&future), Vec::<String>::new());
        let (_, recent) = env
            .app
            .get_authed(
                &env.admin,
                "/v1/organizations/activities?limit=100&created_after=2020-01-01T00:00:00Z",
            )
            .await;
        assert_eq!(ids(&recent), everything);
        env.app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn bad_queries_and_callers_are_refused() {
    for db in databases() {
        let env = Env::start(db).await;
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("after_id=7", "after_id"),
            ("created_after=yesterday", "created_after"),
            ("actor=x", "actor"),
            ("request_id=a&request_id=b", "request_id"),
            ("after_id=actv_2&before_id=actv_1", "after_id, before_id"),
        ] {
            let (status, body) = env
                .app
                .get_authed(&env.admin, &format!("/v1/organizations/activities?{query}"))
                .await;
            assert_eq!(status, 400, "{query}: {body}");
            assert_eq!(body["error"]["type"], "invalid_request_error", "{query}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.starts_with(&format!("{field}:")), "{query}: {message}");
        }
        let anonymous = env
            .app
            .http
            .get(env.app.url("/v1/organizations/activities"))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401);
        let (status, _) = env
            .app
            .get_authed("kl_at_not_a_token", "/v1/organizations/activities")
            .await;
        assert_eq!(status, 401);
        env.app.stop().await.unwrap();
    }
}
