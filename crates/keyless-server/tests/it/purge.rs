//! Expired state is forgotten: one pass of the purger `keyless serve` runs every minute, on the
//! database of a running server, after real exchanges. Nothing unexpired goes; an access token goes an
//! hour after its expiry, a `jti` record once its keep-until has passed; a purged token is unknown to
//! `/v1/authorize`.

use keyless_server::service::purge::{self, Purged};

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
            purge::purge_once(&store, now).await.unwrap(),
            Purged::default(),
            "{db:?}"
        );
        assert_eq!(
            purge::purge_once(&store, now + 200).await.unwrap(),
            Purged::default(),
            "{db:?}: jti records are kept past the token's exp"
        );
        let grace_ends = now + 600 + purge::TOKEN_GRACE_SECONDS;
        let purged = purge::purge_once(&store, grace_ends - 10).await.unwrap();
        assert_eq!(purged.access_tokens, 0, "{db:?}: within the grace period");
        assert_eq!(purged.jtis, 2, "{db:?}: both subject tokens' jti records");

        // Past it, both exchanged tokens go (the bootstrap admin token lives 24 hours and stays).
        let purged = purge::purge_once(&store, grace_ends + 10).await.unwrap();
        assert_eq!(
            purged,
            Purged {
                access_tokens: 2,
                jtis: 0
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
