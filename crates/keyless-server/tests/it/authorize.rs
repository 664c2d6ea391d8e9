//! `/v1/authorize` with API keys and WIF access tokens side by side: an operator's route table with
//! fine-grained scopes, every refusal code a caller can cause, revocation and disabling taking effect
//! on the next request (also under concurrent load), rate limits, and every check in the activity feed
//! and the usage summary.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use keyless_server::config::{RawRate, RawRoute};
use serde_json::{Value, json};

use crate::exchange::Env;
use crate::harness::databases;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const API_KEYS: &str = "/v1/organizations/api_keys";

/// The operator's table: reading files needs `files:read` (or `files:write`), writing them
/// `files:write`; every other route `workspace:developer`.
fn files_table(raw: &mut keyless_server::config::RawConfig) {
    raw.authorize.routes = Some(vec![
        RawRoute {
            methods: vec!["GET".to_owned()],
            path: "/v1/files/**".to_owned(),
            scopes: "files:read files:write".to_owned(),
        },
        RawRoute {
            methods: vec!["POST".to_owned(), "DELETE".to_owned()],
            path: "/v1/files/*".to_owned(),
            scopes: "files:write".to_owned(),
        },
    ]);
}

struct Check {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Check {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }

    fn reason(&self) -> Option<&str> {
        self.header("keyless-reason")
    }
}

/// `/v1/authorize` as nginx calls it: the original request in `X-Original-*`.
async fn check(env: &Env, method: &str, uri: &str, credential: Option<(&str, &str)>) -> Check {
    let mut request = env
        .app
        .http
        .get(env.app.url("/v1/authorize"))
        .header("x-original-method", method)
        .header("x-original-uri", uri);
    if let Some((name, value)) = credential {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    Check { status, headers, body }
}

fn key(secret: &str) -> Option<(&'static str, String)> {
    Some(("x-api-key", secret.to_owned()))
}

fn bearer(token: &str) -> Option<(&'static str, String)> {
    Some(("authorization", format!("Bearer {token}")))
}

async fn check_with(env: &Env, method: &str, uri: &str, credential: Option<(&'static str, String)>) -> Check {
    check(
        env,
        method,
        uri,
        credential.as_ref().map(|(name, value)| (*name, value.as_str())),
    )
    .await
}

async fn create_key(env: &Env, body: Value) -> (String, String) {
    let (status, created) = env.app.post_authed(&env.admin, API_KEYS, &body).await;
    assert_eq!(status, 200, "{created}");
    (
        created["id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    )
}

async fn access_token(env: &Env) -> String {
    let reply = env
        .exchange(&json!({
            "grant_type": JWT_BEARER,
            "assertion": env.token(),
            "federation_rule_id": env.rule_id,
            "organization_id": env.organization_id,
            "service_account_id": env.service_account_id,
        }))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["access_token"].as_str().unwrap().to_owned()
}

/// The `api_request` events, newest first, once at least `count` are written (they are batched).
async fn api_requests(env: &Env, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, page) = env
            .app
            .get_authed(&env.admin, "/v1/organizations/activities?type=api_request&limit=100")
            .await;
        assert_eq!(status, 200, "{page}");
        let events = page["data"].as_array().unwrap().clone();
        if events.len() >= count || tokio::time::Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn api_keys_and_wif_tokens_side_by_side_with_fine_grained_scopes() {
    for db in databases() {
        let env = Env::start_with(db, files_table).await;
        let (reader_id, reader) = create_key(&env, json!({"name": "reader", "oauth_scope": "files:read"})).await;
        let (legacy_id, legacy) = create_key(&env, json!({"name": "legacy"})).await;
        let wif = access_token(&env).await;

        // The reader key may read files, not write them.
        let allowed = check_with(&env, "GET", "/v1/files/f1/content?x=1", key(&reader)).await;
        assert_eq!(allowed.status, 200, "{db:?}: {:?}", allowed.body);
        assert_eq!(allowed.header("keyless-principal-type"), Some("api_key"));
        assert_eq!(allowed.header("keyless-principal-id"), Some(reader_id.as_str()));
        assert_eq!(allowed.header("keyless-api-key-id"), Some(reader_id.as_str()));
        assert_eq!(allowed.header("keyless-scopes"), Some("files:read"));
        assert_eq!(
            allowed.header("keyless-organization-id"),
            Some(env.organization_id.as_str())
        );
        let workspace = allowed.header("keyless-workspace-id").unwrap().to_owned();
        assert!(workspace.starts_with("wrkspc_"), "{workspace}");
        assert_eq!(allowed.header("keyless-service-account-id"), None);

        let denied = check_with(&env, "POST", "/v1/files/f1", key(&reader)).await;
        assert_eq!(
            (denied.status, denied.reason()),
            (403, Some("insufficient_scope")),
            "{db:?}"
        );
        assert_eq!(
            denied.header("www-authenticate"),
            Some(
                "Bearer realm=\"keyless\", error=\"insufficient_scope\", error_description=\"insufficient_scope\", \
                 scope=\"files:write\""
            )
        );
        assert_eq!(denied.body["error"]["code"], "insufficient_scope");
        assert!(denied.body["request_id"].as_str().unwrap().starts_with("req_"));

        // A key with the default scope is refused the files routes (they do not list
        // workspace:developer) and admitted elsewhere.
        let legacy_files = check_with(&env, "GET", "/v1/files", key(&legacy)).await;
        assert_eq!(legacy_files.status, 403, "{db:?}");
        assert_eq!(check_with(&env, "GET", "/v1/models", key(&legacy)).await.status, 200);

        // The WIF token of the same workspace, side by side.
        let token = check_with(&env, "POST", "/v1/messages", bearer(&wif)).await;
        assert_eq!(token.status, 200, "{db:?}: {:?}", token.body);
        assert_eq!(token.header("keyless-principal-type"), Some("service_account"));
        assert_eq!(
            token.header("keyless-principal-id"),
            Some(env.service_account_id.as_str())
        );
        assert_eq!(token.header("keyless-federation-rule-id"), Some(env.rule_id.as_str()));
        assert_eq!(token.header("keyless-workspace-id"), Some(workspace.as_str()));
        assert_eq!(token.header("keyless-scopes"), Some("workspace:developer"));
        // An API key sent as a bearer token works too.
        assert_eq!(check_with(&env, "GET", "/v1/models", bearer(&legacy)).await.status, 200);

        // The Envoy form: the original path after /v1/authorize, the original method as is.
        let envoy = env
            .app
            .http
            .delete(env.app.url("/v1/authorize/v1/files/f1"))
            .header("x-api-key", &reader)
            .send()
            .await
            .unwrap();
        assert_eq!(envoy.status().as_u16(), 403, "{db:?}");

        // Refusals a caller can cause, each with its code.
        let missing = check_with(&env, "GET", "/v1/models", None).await;
        assert_eq!((missing.status, missing.reason()), (401, Some("missing_credential")));
        assert!(
            missing
                .header("www-authenticate")
                .unwrap()
                .contains("error=\"invalid_token\"")
        );
        let garbage = check_with(&env, "GET", "/v1/models", key("sk-ant-api03-not-ours")).await;
        assert_eq!((garbage.status, garbage.reason()), (401, Some("malformed_credential")));
        let two = env
            .app
            .http
            .get(env.app.url("/v1/authorize"))
            .header("x-original-uri", "/v1/models")
            .header("x-api-key", &legacy)
            .bearer_auth(&wif)
            .send()
            .await
            .unwrap();
        assert_eq!(two.status().as_u16(), 401, "two different credentials");
        let sneaky = check_with(&env, "GET", "/v1/files/../admin", key(&reader)).await;
        assert_eq!((sneaky.status, sneaky.reason()), (403, Some("path_not_canonical")));
        let encoded = check_with(&env, "GET", "/v1/%66iles/f1", key(&reader)).await;
        assert_eq!(
            encoded.status, 200,
            "an encoded unreserved character is matched decoded"
        );

        // Keys hold known workspace scopes only.
        for (scope, message) in [
            ("files:raed", "oauth_scope: `files:raed` is not a scope of this server"),
            ("org:admin", "oauth_scope: `org:admin` is an organization scope"),
        ] {
            let (status, body) = env
                .app
                .post_authed(&env.admin, API_KEYS, &json!({"name": "bad", "oauth_scope": scope}))
                .await;
            assert_eq!(status, 400, "{body}");
            assert!(
                body["error"]["message"].as_str().unwrap().starts_with(message),
                "{body}"
            );
        }

        // Disable, re-enable, archive: each takes effect on the next check.
        let path = format!("{API_KEYS}/{reader_id}");
        let (status, body) = env
            .app
            .post_authed(&env.admin, &path, &json!({"status": "inactive"}))
            .await;
        assert_eq!((status, body["status"].as_str()), (200, Some("inactive")), "{body}");
        let disabled = check_with(&env, "GET", "/v1/files/f1", key(&reader)).await;
        assert_eq!((disabled.status, disabled.reason()), (401, Some("credential_disabled")));
        env.app
            .post_authed(&env.admin, &path, &json!({"status": "active"}))
            .await;
        assert_eq!(check_with(&env, "GET", "/v1/files/f1", key(&reader)).await.status, 200);
        let (status, body) = env
            .app
            .post_authed(&env.admin, &format!("{path}/archive"), &json!({}))
            .await;
        assert_eq!((status, body["status"].as_str()), (200, Some("archived")), "{body}");
        let revoked = check_with(&env, "GET", "/v1/files/f1", key(&reader)).await;
        assert_eq!((revoked.status, revoked.reason()), (401, Some("credential_revoked")));

        // Revoking the WIF token takes effect on the next check too.
        let response = env
            .app
            .http
            .post(env.app.url("/v1/oauth/revoke"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={wif}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let gone = check_with(&env, "GET", "/v1/models", bearer(&wif)).await;
        assert_eq!(
            (gone.status, gone.reason()),
            (401, Some("credential_revoked")),
            "{db:?}"
        );

        // Every check is on the record, with the identity that made it.
        let events = api_requests(&env, 16).await;
        assert_eq!(events.len(), 16, "{db:?}: one event per check");
        let first_read = events
            .iter()
            .rev()
            .find(|event| event["actor_id"] == reader_id.as_str())
            .unwrap();
        assert_eq!(first_read["source"], "authorize");
        assert_eq!(first_read["method"], "GET");
        assert_eq!(first_read["path"], "/v1/files/f1/content", "the query is not recorded");
        assert_eq!(first_read["route"], "/v1/files/**");
        assert_eq!(first_read["status"], 200);
        assert_eq!(first_read["outcome"], "allowed");
        assert_eq!(first_read["principal"]["type"], "api_key");
        assert_eq!(first_read["resource_id"], workspace.as_str());
        assert!(first_read["latency_ms"].as_f64().unwrap() >= 0.0);
        let refusal = events
            .iter()
            .find(|event| event["reason"] == "path_not_canonical")
            .unwrap();
        assert_eq!(refusal["status"], 403);
        assert_eq!(refusal["outcome"], "refused");
        let anonymous = events
            .iter()
            .find(|event| event["reason"] == "missing_credential")
            .unwrap();
        assert_eq!(anonymous["actor_id"], Value::Null);
        assert_eq!(anonymous["principal"], Value::Null);

        // The usage summary per API key and service account.
        let (status, usage) = env.app.get_authed(&env.admin, "/v1/organizations/usage").await;
        assert_eq!(status, 200, "{usage}");
        let row = |id: &str| {
            usage["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|row| row["principal_id"] == id)
                .cloned()
                .unwrap_or(Value::Null)
        };
        let reader_row = row(&reader_id);
        assert_eq!(reader_row["principal_type"], "api_key", "{usage}");
        assert_eq!(reader_row["workspace_id"], workspace.as_str());
        // Read, write (refused), Envoy delete (refused), encoded read, disabled (refused), read, revoked
        // (refused); the path trick was refused before the key was looked at.
        assert_eq!(reader_row["requests"], 7, "{reader_row}");
        assert_eq!(reader_row["refused"], 4, "{reader_row}");
        assert_eq!(reader_row["allowed"], 3, "{reader_row}");
        let account_row = row(&env.service_account_id);
        assert_eq!(account_row["principal_type"], "service_account", "{usage}");
        assert_eq!(account_row["requests"], 2, "{account_row}");
        assert_eq!(row(&legacy_id)["requests"], 3, "{usage}");

        // The keys' last use is recorded, a little behind.
        let (_, listed) = env.app.get_authed(&env.admin, &format!("{API_KEYS}/{legacy_id}")).await;
        assert!(listed["last_used_at"].is_string(), "{listed}");
        assert!(listed.get("key").is_none(), "the key is shown only once: {listed}");
        env.app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_revocation_under_load_refuses_every_request_that_starts_after_it() {
    for db in databases() {
        let env = Arc::new(Env::start(db).await);
        let (id, secret) = create_key(&env, json!({"name": "busy"})).await;
        let revoked = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for _ in 0..16 {
            let env = Arc::clone(&env);
            let secret = secret.clone();
            let revoked = Arc::clone(&revoked);
            workers.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..400 {
                    let after = revoked.load(Ordering::SeqCst);
                    let status = check_with(&env, "POST", "/v1/messages", key(&secret)).await.status;
                    seen.push((after, status));
                    if after && seen.iter().filter(|(after, _)| *after).count() >= 20 {
                        break;
                    }
                }
                seen
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, body) = env
            .app
            .post_authed(&env.admin, &format!("{API_KEYS}/{id}/archive"), &json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
        revoked.store(true, Ordering::SeqCst);
        let mut before_ok = 0;
        let mut after = 0;
        for worker in workers {
            for (started_after, status) in worker.await.unwrap() {
                if started_after {
                    after += 1;
                    assert_eq!(
                        status, 401,
                        "{db:?}: a request started after the revocation was admitted"
                    );
                } else if status == 200 {
                    before_ok += 1;
                }
            }
        }
        assert!(
            before_ok > 16,
            "{db:?}: the load ran before the revocation ({before_ok})"
        );
        assert!(after >= 16, "{db:?}: requests ran after the revocation ({after})");
        Arc::into_inner(env).unwrap().app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_per_key() {
    for db in databases() {
        let tweak = |raw: &mut keyless_server::config::RawConfig| {
            raw.rate_limits.api_key = Some(RawRate {
                requests_per_second: 0.5,
                burst: Some(2),
            });
        };
        let env = Env::start_with(db, tweak).await;
        let (_, first) = create_key(&env, json!({"name": "first"})).await;
        let (_, second) = create_key(&env, json!({"name": "second"})).await;
        for _ in 0..2 {
            assert_eq!(check_with(&env, "GET", "/v1/models", key(&first)).await.status, 200);
        }
        let limited = check_with(&env, "GET", "/v1/models", key(&first)).await;
        assert_eq!(
            (limited.status, limited.reason()),
            (429, Some("rate_limited")),
            "{db:?}"
        );
        let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=2).contains(&retry), "{retry}");
        assert_eq!(limited.body["error"]["type"], "rate_limit_error");
        // Another key has its own bucket; the service account's token has no limit configured.
        assert_eq!(check_with(&env, "GET", "/v1/models", key(&second)).await.status, 200);
        let token = access_token(&env).await;
        for _ in 0..5 {
            assert_eq!(check_with(&env, "GET", "/v1/models", bearer(&token)).await.status, 200);
        }
        let events = api_requests(&env, 9).await;
        assert!(
            events
                .iter()
                .any(|event| event["reason"] == "rate_limited" && event["status"] == 429),
            "{db:?}"
        );
        env.app.stop().await.unwrap();
    }
}

/// Two nodes on one PostgreSQL database: a revocation made through one is refused by the other as soon
/// as its `LISTEN` hears the commit's `NOTIFY` (the other node had the key cached), and an archived rule
/// stops the other node's exchanges the same way.
#[tokio::test]
async fn a_change_on_one_node_reaches_the_other_through_notify() {
    let Some(db) = databases().into_iter().find(|db| *db == crate::harness::Db::Postgres) else {
        eprintln!("KEYLESS_TEST_POSTGRES_URL is not set: the two-node test needs PostgreSQL");
        return;
    };
    let env = Env::start(db).await;
    let other = env.second_node().await;
    let (id, secret) = create_key(&env, json!({"name": "shared"})).await;
    let on_other = || async {
        other
            .http
            .get(other.url("/v1/authorize"))
            .header("x-original-uri", "/v1/models")
            .header("x-api-key", &secret)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    // The other node caches the key (and its rule parties on the exchange side).
    assert_eq!(on_other().await, 200);
    assert_eq!(on_other().await, 200);
    let exchange_on_other = || async {
        // The other node's own URL is the audience it requires.
        let mut claims = env.claims();
        claims["aud"] = json!(other.base_url);
        let response = other
            .http
            .post(other.url("/v1/oauth/token"))
            .json(&json!({
                "grant_type": JWT_BEARER,
                "assertion": env.oidc.mint(&claims),
                "federation_rule_id": env.rule_id,
                "organization_id": env.organization_id,
                "service_account_id": env.service_account_id,
            }))
            .send()
            .await
            .unwrap();
        response.status().as_u16()
    };
    assert_eq!(exchange_on_other().await, 200);

    let (status, body) = env
        .app
        .post_authed(&env.admin, &format!("{API_KEYS}/{id}/archive"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = env
        .app
        .post_authed(
            &env.admin,
            &format!("/v1/organizations/federation_rules/{}/archive", env.rule_id),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut waited = Duration::ZERO;
    while on_other().await != 401 || exchange_on_other().await != 400 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the other node still admits the revoked key or the archived rule after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += Duration::from_millis(10);
    }
    eprintln!(
        "the other node saw both changes after about {} ms of polling",
        waited.as_millis()
    );
    other.stop().await.unwrap();
    env.app.stop().await.unwrap();
}
