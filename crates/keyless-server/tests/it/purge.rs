//! Expired state is forgotten: one pass of the purger `keyless serve` runs every minute, on the
//! database of a running server, after real exchanges. Nothing unexpired goes; an access token goes an
//! hour after its expiry, a `jti` record once its keep-until has passed; a purged token is unknown to
//! `/v1/authorize`. Activity events and usage counts go only past their retention.

use std::time::{Duration, Instant};

use keyless_core::id::OrganizationId;
use keyless_server::service::purge::{self, Purged, Retention};

use crate::exchange::{Env, now};
use crate::harness::databases;

async fn exchanged_token(env: &Env) -> String {
    let reply = env.exchange(&env.body(&env.token())).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["access_token"].as_str().unwrap().to_owned()
}

async fn authorize_status(env: &Env, token: &str) -> (u16, Option<String>) {
    let response = env
        .app
        .http
        .get(env.app.url("/v1/authorize"))
        .header("x-original-method", "GET")
        .header("x-original-uri", "/v1/models")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let reason = response
        .headers()
        .get("keyless-reason")
        .map(|value| value.to_str().unwrap().to_owned());
    (response.status().as_u16(), reason)
}

#[tokio::test]
async fn purge_forgets_only_what_has_expired() {
    for db in databases() {
        let env = Env::start(db).await;
        let checked = exchanged_token(&env).await;
        let purged_later = exchanged_token(&env).await;
        assert_eq!(authorize_status(&env, &checked).await.0, 200, "{db:?}");
        let store = env.open_store().await;
        let now = now();

        // Now, and up to an hour after the tokens' expiry (the rule grants 600 s), tokens stay; the
        // subject tokens expire 300 s out, so their jti records stay until then.
        assert_eq!(
            purge::purge_once(&store, Retention::default(), now).await.unwrap(),
            Purged::default(),
            "{db:?}"
        );
        assert_eq!(
            purge::purge_once(&store, Retention::default(), now + 200)
                .await
                .unwrap(),
            Purged::default(),
            "{db:?}: jti records are kept past the token's exp"
        );
        let grace_ends = now + 600 + purge::TOKEN_GRACE_SECONDS;
        let purged = purge::purge_once(&store, Retention::default(), grace_ends - 10)
            .await
            .unwrap();
        assert_eq!(purged.access_tokens, 0, "{db:?}: within the grace period");
        assert_eq!(purged.jtis, 2, "{db:?}: both subject tokens' jti records");

        // Past it, both exchanged tokens go (the bootstrap admin token lives 24 hours and stays).
        let purged = purge::purge_once(&store, Retention::default(), grace_ends + 10)
            .await
            .unwrap();
        assert_eq!(
            purged,
            Purged {
                access_tokens: 2,
                ..Purged::default()
            },
            "{db:?}"
        );
        assert_eq!(
            authorize_status(&env, &purged_later).await,
            (401, Some("invalid_credential".to_owned())),
            "{db:?}: a purged token is unknown"
        );
        let (status, _) = env
            .app
            .get_authed(&env.admin, "/v1/organizations/activities?limit=1")
            .await;
        assert_eq!(status, 200, "{db:?}: the bootstrap admin token was kept");
        store.close().await;
        env.app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn retention_deletes_only_old_events_of_the_configured_types() {
    for db in databases() {
        let env = Env::start(db).await;
        let token = exchanged_token(&env).await;
        exchanged_token(&env).await;
        for _ in 0..3 {
            assert_eq!(authorize_status(&env, &token).await.0, 200, "{db:?}");
        }
        let store = env.open_store().await;
        let organization = OrganizationId::parse(&env.organization_id).unwrap();
        // Counted in the database: the bootstrap admin token is itself purged a day on.
        let count = async |activity_type: &str| {
            let events = store
                .activity_scan(&organization, &[activity_type], None, 100)
                .await
                .unwrap();
            events.len()
        };
        // The request log writes in batches, off the request path: wait for all three.
        let deadline = Instant::now() + Duration::from_secs(10);
        while count("api_request").await < 3 {
            assert!(
                Instant::now() < deadline,
                "{db:?}: the api_request events were not written"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let admin_changes = count("platform_federation_rule_created").await;
        assert_eq!(admin_changes, 1, "{db:?}");
        let usage_rows = async || {
            let rows = store
                .usage_summary(&organization, 0, i64::MAX, None, None)
                .await
                .unwrap();
            rows.len()
        };
        assert_eq!(usage_rows().await, 1, "{db:?}: one hour, one principal, one workspace");
        let retention = Retention {
            request_days: 1,
            exchange_days: 2,
            usage_days: 3,
        };
        let day = 86_400;
        let now = now();

        // Within a day nothing goes.
        let purged = purge::purge_once(&store, retention, now + day - 60).await.unwrap();
        assert_eq!((purged.requests, purged.exchanges), (0, 0), "{db:?}");
        assert_eq!(count("api_request").await, 3, "{db:?}");

        let purged = purge::purge_once(&store, retention, now + day + 60).await.unwrap();
        assert_eq!((purged.requests, purged.exchanges), (3, 0), "{db:?}");
        assert_eq!(count("api_request").await, 0, "{db:?}");
        assert_eq!(count("platform_federated_authentication").await, 2, "{db:?}");

        let purged = purge::purge_once(&store, retention, now + 2 * day + 60).await.unwrap();
        assert_eq!((purged.requests, purged.exchanges), (0, 2), "{db:?}");
        assert_eq!(count("platform_federated_authentication").await, 0, "{db:?}");
        assert_eq!(purged.usage, 0, "{db:?}");
        assert_eq!(usage_rows().await, 1, "{db:?}");

        // A usage row goes once its whole hour is past the cutoff.
        let purged = purge::purge_once(&store, retention, now + 3 * day + 3600 + 60)
            .await
            .unwrap();
        assert_eq!((purged.requests, purged.exchanges, purged.usage), (0, 0, 1), "{db:?}");
        assert_eq!(usage_rows().await, 0, "{db:?}");

        // `0` keeps forever; admin changes are always kept.
        let forever = Retention {
            request_days: 0,
            exchange_days: 0,
            usage_days: 0,
        };
        assert_eq!(
            purge::purge_once(&store, forever, now + 36_500 * day).await.unwrap(),
            Purged::default(),
            "{db:?}"
        );
        assert_eq!(count("platform_federation_rule_created").await, admin_changes, "{db:?}");
        store.close().await;
        env.app.stop().await.unwrap();
    }
}
