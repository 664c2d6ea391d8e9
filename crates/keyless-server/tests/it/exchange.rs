//! `POST /v1/oauth/token` end to end: a real server, a real OIDC issuer on loopback (discovery + JWKS
//! over HTTP), objects created through the Admin API, and the activity feed read back over HTTP.

use std::sync::atomic::{AtomicU64, Ordering};

use keyless_server::config::RawConfig;
use serde_json::{Value, json};

use crate::harness::{Db, Site, TestApp, databases, spawn_app_with};
use crate::oidc::OidcIssuer;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const SUBJECT: &str = "repo:acme/app:ref:refs/heads/main";

/// A server with one issuer (discovery), one service account and one rule, and the issuer itself.
pub(crate) struct Env {
    /// Keeps the data directory (and database) alive while the server runs.
    site: Site,
    pub(crate) app: TestApp,
    pub(crate) oidc: OidcIssuer,
    pub(crate) admin: String,
    pub(crate) organization_id: String,
    pub(crate) issuer_id: String,
    pub(crate) service_account_id: String,
    pub(crate) rule_id: String,
}

pub(crate) fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Env {
    pub(crate) async fn start(db: Db) -> Env {
        Self::start_with(db, |_| {}).await
    }

    /// [`Env::start`] with the server's configuration changed by `configure`.
    pub(crate) async fn start_with(db: Db, configure: impl FnOnce(&mut RawConfig)) -> Env {
        Self::start_against(db, OidcIssuer::start().await, configure).await
    }

    /// [`Env::start_with`] trusting `oidc`, started by the caller (who may have taken it down first).
    pub(crate) async fn start_against(db: Db, oidc: OidcIssuer, configure: impl FnOnce(&mut RawConfig)) -> Env {
        let site = Site::new(db);
        let app = spawn_app_with(&site, configure).await;
        let admin = TestApp::admin_token(&site);
        let bootstrap: Value =
            serde_json::from_str(&std::fs::read_to_string(crate::harness::bootstrap_file(&site)).unwrap()).unwrap();
        let organization_id = bootstrap["organization_id"].as_str().unwrap().to_owned();
        let issuer_id = created(
            &app,
            &admin,
            "/v1/organizations/federation_issuers",
            json!({ "name": "ci", "issuer_url": oidc.issuer_url(), "jwks": { "type": "discovery" } }),
        )
        .await;
        let service_account_id = created(
            &app,
            &admin,
            "/v1/organizations/service_accounts",
            json!({ "name": "deployer" }),
        )
        .await;
        let rule_id = created(
            &app,
            &admin,
            "/v1/organizations/federation_rules",
            json!({
                "name": "deploy-main",
                "issuer_id": issuer_id,
                "match": { "subject_prefix": SUBJECT, "claims": { "repository_owner": "acme" } },
                "target": { "type": "service_account", "service_account_id": service_account_id },
                "token_lifetime_seconds": 600,
            }),
        )
        .await;
        Env {
            site,
            app,
            oidc,
            admin,
            organization_id,
            issuer_id,
            service_account_id,
            rule_id,
        }
    }

    /// GitHub-Actions-shaped claims for this server.
    pub(crate) fn claims(&self) -> Value {
        let now = now();
        json!({
            "iss": self.oidc.issuer_url(),
            "sub": SUBJECT,
            "aud": self.app.base_url,
            "jti": format!("jti-{}-{}", now, unique()),
            "ref": "refs/heads/main",
            "repository": "acme/app",
            "repository_owner": "acme",
            "repository_owner_id": "1001",
            "repository_id": "2002",
            "run_id": "77",
            "environment": "",
            "ref_protected": "true",
            "iat": now,
            "nbf": now - 600,
            "exp": now + 300,
        })
    }

    /// A second server on the same database (a second node, on PostgreSQL).
    pub(crate) async fn second_node(&self) -> TestApp {
        crate::harness::spawn_app(&self.site).await
    }

    /// The server's database, opened beside it.
    pub(crate) async fn open_store(&self) -> keyless_store::Store {
        self.site.open_store().await
    }

    pub(crate) fn token(&self) -> String {
        self.oidc.mint(&self.claims())
    }

    /// The JSON exchange body for `assertion`.
    pub(crate) fn body(&self, assertion: &str) -> Value {
        json!({
            "grant_type": JWT_BEARER,
            "assertion": assertion,
            "federation_rule_id": self.rule_id,
            "organization_id": self.organization_id,
            "service_account_id": self.service_account_id,
        })
    }

    pub(crate) async fn exchange(&self, body: &Value) -> Reply {
        let response = self
            .app
            .http
            .post(self.app.url("/v1/oauth/token"))
            .header("anthropic-beta", "oauth-2025-04-20,oidc-federation-2026-04-01")
            .json(body)
            .send()
            .await
            .unwrap();
        Reply::read(response).await
    }

    pub(crate) async fn exchange_form(&self, content_type: &str, form: &[(&str, &str)]) -> Reply {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = self
            .app
            .http
            .post(self.app.url("/v1/oauth/token"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        Reply::read(response).await
    }

    /// The activity events of one request, through the feed API.
    pub(crate) async fn events_of(&self, request_id: &str) -> Vec<Value> {
        let (status, page) = self
            .app
            .get_authed(
                &self.admin,
                &format!("/v1/organizations/activities?request_id={request_id}"),
            )
            .await;
        assert_eq!(status, 200, "{page}");
        page["data"].as_array().unwrap().clone()
    }

    /// The one exchange event of a request.
    pub(crate) async fn exchange_event(&self, request_id: &str) -> Value {
        let events = self.events_of(request_id).await;
        assert_eq!(events.len(), 1, "{events:?}");
        let event = events.into_iter().next().unwrap();
        assert_eq!(event["type"], "platform_federated_authentication", "{event}");
        event
    }
}

async fn created(app: &TestApp, admin: &str, path: &str, body: Value) -> String {
    let (status, object) = app.post_authed(admin, path, &body).await;
    assert_eq!(status, 200, "POST {path}: {object}");
    object["id"].as_str().unwrap().to_owned()
}

/// An exchange response: status, `Request-Id` header, JSON body.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) request_id: String,
    pub(crate) cache_control: String,
    pub(crate) body: Value,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let request_id = header("request-id");
        let cache_control = header("cache-control");
        let body = response.json().await.unwrap();
        Reply {
            status,
            request_id,
            cache_control,
            body,
        }
    }

    /// Asserts a refusal with `code`, in the RFC 6749 shape, naming its request.
    #[track_caller]
    pub(crate) fn assert_refused(&self, error: &str, code: &str) {
        assert_eq!(self.status, 400, "{}", self.body);
        assert_eq!(self.body["error"], error, "{}", self.body);
        assert_eq!(self.body["error_code"], code, "{}", self.body);
        assert!(
            self.body["error_description"]
                .as_str()
                .is_some_and(|text| !text.is_empty())
        );
        assert!(self.request_id.starts_with("req_"), "{}", self.request_id);
        assert_eq!(self.body["request_id"], self.request_id.as_str());
        assert_eq!(self.cache_control, "no-store");
    }
}

#[tokio::test]
async fn json_jwt_bearer_exchange_issues_a_recorded_token() {
    for db in databases() {
        let env = Env::start(db).await;
        let reply = env.exchange(&env.body(&env.token())).await;
        assert_eq!(reply.status, 200, "{db:?}: {}", reply.body);
        assert_eq!(reply.cache_control, "no-store");
        let token = reply.body["access_token"].as_str().unwrap();
        assert!(
            token.starts_with("keyless_at_") && token.len() == "keyless_at_".len() + 8 + 43 + 6,
            "{token}"
        );
        assert_eq!(reply.body["token_type"], "Bearer");
        assert_eq!(reply.body["scope"], "workspace:developer");
        let expires_in = reply.body["expires_in"].as_i64().unwrap();
        // min(600, 2 × remaining JWT lifetime of about 300 s) = 600, minus a second of clock movement.
        assert!((595..=600).contains(&expires_in), "{expires_in}");
        assert!(reply.body.get("refresh_token").is_none());

        let event = env.exchange_event(&reply.request_id).await;
        assert_eq!(event["status"]["outcome"], "success", "{event}");
        let data = &event["event_data"];
        assert_eq!(data["federation_rule_id"], env.rule_id.as_str());
        assert_eq!(data["issuer_id"], env.issuer_id.as_str());
        assert_eq!(data["service_account_id"], env.service_account_id.as_str());
        assert_eq!(data["oidc_token"]["verified"], true);
        assert_eq!(data["oidc_token"]["claims"]["repository_owner"], "acme");
        // The access token appears only as its hash.
        assert!(!event.to_string().contains(token));
        assert_eq!(data["access_token"]["sha256"].as_str().unwrap().len(), 64);

        // What the group commit cost is on `/metrics` (the process's metrics are shared by the tests in
        // it, so only that there is a count).
        let metrics = env.app.http.get(env.app.url("/metrics")).send().await.unwrap();
        let metrics = metrics.text().await.unwrap();
        for series in [
            "keyless_group_commit_entries_count",
            "keyless_group_commit_wait_seconds_count",
            "keyless_group_commit_seconds_count",
        ] {
            let count = metrics
                .lines()
                .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok());
            assert!(count.is_some_and(|count| count >= 1.0), "{series}: {metrics}");
        }
        env.app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn rfc8693_form_exchange_as_google_auth_sends_it() {
    for db in databases() {
        let env = Env::start(db).await;
        // google-auth reads the token file unstripped: a trailing newline arrives with it.
        let subject_token = format!("{}\n", env.token());
        let reply = env
            .exchange_form(
                "application/x-www-form-urlencoded;charset=UTF-8",
                &[
                    ("grant_type", TOKEN_EXCHANGE),
                    ("audience", &env.rule_id),
                    ("requested_token_type", "urn:ietf:params:oauth:token-type:access_token"),
                    ("subject_token", &subject_token),
                    ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
                    ("scope", "workspace:developer"),
                ],
            )
            .await;
        assert_eq!(reply.status, 200, "{db:?}: {}", reply.body);
        assert_eq!(
            reply.body["issued_token_type"],
            "urn:ietf:params:oauth:token-type:access_token"
        );
        assert_eq!(reply.body["scope"], "workspace:developer");
        assert!(reply.body["expires_in"].is_i64());
        env.app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn rfc7523_form_exchange() {
    let env = Env::start(Db::Sqlite).await;
    let token = env.token();
    let reply = env
        .exchange_form(
            "application/x-www-form-urlencoded",
            &[
                ("grant_type", JWT_BEARER),
                ("assertion", &token),
                ("federation_rule_id", &env.rule_id),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body.get("issued_token_type").is_none());
    env.app.stop().await.unwrap();
}

#[tokio::test]
async fn malformed_requests_name_the_field_and_are_recorded() {
    let env = Env::start(Db::Sqlite).await;
    let token = env.token();
    let cases: Vec<(Value, &str, &str, &str)> = vec![
        (
            json!({ "grant_type": JWT_BEARER, "federation_rule_id": env.rule_id }),
            "invalid_request",
            "malformed_request",
            "request.assertion",
        ),
        (
            json!({ "grant_type": JWT_BEARER, "assertion": token }),
            "invalid_request",
            "malformed_request",
            "request.federation_rule_id",
        ),
        (
            json!({ "grant_type": JWT_BEARER, "assertion": token, "federation_rule_id": "fdrl_" }),
            "invalid_request",
            "malformed_request",
            "request.federation_rule_id",
        ),
        (
            json!({ "grant_type": JWT_BEARER, "assertion": token, "federation_rule_id": env.rule_id, "organization_id": "acme" }),
            "invalid_request",
            "malformed_request",
            "request.organization_id",
        ),
        (
            json!({ "grant_type": JWT_BEARER, "assertion": token, "federation_rule_id": env.rule_id, "workspace_id": "ws_1" }),
            "invalid_request",
            "malformed_request",
            "request.workspace_id",
        ),
        (
            json!({ "grant_type": JWT_BEARER, "assertion": 7, "federation_rule_id": env.rule_id }),
            "invalid_request",
            "malformed_request",
            "request.assertion",
        ),
        (
            json!({ "assertion": token, "federation_rule_id": env.rule_id }),
            "invalid_request",
            "malformed_request",
            "request.grant_type",
        ),
        (
            json!({ "grant_type": "client_credentials", "assertion": token }),
            "unsupported_grant_type",
            "unsupported_grant_type",
            "request.grant_type",
        ),
    ];
    for (body, error, code, check) in cases {
        let reply = env.exchange(&body).await;
        reply.assert_refused(error, code);
        let description = reply.body["error_description"].as_str().unwrap();
        assert!(description.contains(check), "{description}");
        let event = env.exchange_event(&reply.request_id).await;
        assert_eq!(event["status"]["reason"], code, "{event}");
        assert_eq!(event["status"]["detail"]["check"], check, "{event}");
    }

    // A repeated member is refused (RFC 6749 §3.2), as is a repeated form parameter.
    let text = format!(
        r#"{{"grant_type":"{JWT_BEARER}","assertion":"{token}","assertion":"{token}","federation_rule_id":"{}"}}"#,
        env.rule_id
    );
    let response = env
        .app
        .http
        .post(env.app.url("/v1/oauth/token"))
        .header("content-type", "application/json")
        .body(text)
        .send()
        .await
        .unwrap();
    Reply::read(response)
        .await
        .assert_refused("invalid_request", "malformed_request");
    let reply = env
        .exchange_form(
            "application/x-www-form-urlencoded",
            &[
                ("grant_type", JWT_BEARER),
                ("grant_type", JWT_BEARER),
                ("assertion", &token),
            ],
        )
        .await;
    reply.assert_refused("invalid_request", "malformed_request");
    let reply = env.exchange_form("text/plain", &[("grant_type", JWT_BEARER)]).await;
    reply.assert_refused("invalid_request", "malformed_request");

    // RFC 8693 specifics.
    let reply = env
        .exchange_form(
            "application/x-www-form-urlencoded",
            &[
                ("grant_type", TOKEN_EXCHANGE),
                ("audience", &env.rule_id),
                ("subject_token", &token),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:saml2"),
            ],
        )
        .await;
    reply.assert_refused("invalid_request", "malformed_request");
    let reply = env
        .exchange_form(
            "application/x-www-form-urlencoded",
            &[
                ("grant_type", TOKEN_EXCHANGE),
                ("audience", &env.rule_id),
                ("subject_token", &token),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
                ("actor_token", &token),
            ],
        )
        .await;
    reply.assert_refused("invalid_request", "malformed_request");
    // Unknown parameters are ignored (RFC 6749 §3.2): a newer client's extra field does not break it.
    let mut body = env.body(&env.token());
    body["client_hint"] = json!({ "sdk": "future" });
    assert_eq!(env.exchange(&body).await.status, 200);
    env.app.stop().await.unwrap();
}

#[tokio::test]
async fn a_rotated_key_costs_one_jwks_fetch_under_200_concurrent_exchanges() {
    for db in databases() {
        let env = Env::start(db).await;
        assert_eq!(env.exchange(&env.body(&env.token())).await.status, 200);
        let before = env.oidc.jwks_fetches();
        env.oidc.rotate();
        let bodies: Vec<Value> = (0..200).map(|_| env.body(&env.token())).collect();
        let replies = futures_util::future::join_all(bodies.iter().map(|body| env.exchange(body))).await;
        for reply in &replies {
            assert_eq!(reply.status, 200, "{db:?}: {}", reply.body);
        }
        assert_eq!(env.oidc.jwks_fetches(), before + 1, "{db:?}: one coalesced re-fetch");
        env.app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn cached_keys_carry_exchanges_through_an_issuer_outage() {
    let env = Env::start(Db::Sqlite).await;
    assert_eq!(env.exchange(&env.body(&env.token())).await.status, 200);
    env.oidc.set_outage(true);
    let reply = env.exchange(&env.body(&env.token())).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    env.app.stop().await.unwrap();
}

/// Exchanges are served from a cache of the rule, issuer and service account; every admin change must
/// still take effect on the very next exchange.
#[tokio::test]
async fn admin_changes_take_effect_on_the_next_exchange() {
    for db in databases() {
        let env = Env::start(db).await;
        let code = |reply: &Reply| reply.body["error_code"].as_str().unwrap_or("granted").to_owned();
        assert_eq!(code(&env.exchange(&env.body(&env.token())).await), "granted", "{db:?}");

        let rule = format!("/v1/organizations/federation_rules/{}", env.rule_id);
        let (status, _) = env
            .app
            .post_authed(
                &env.admin,
                &rule,
                &json!({ "match": { "subject_prefix": "repo:acme/other:*" } }),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            code(&env.exchange(&env.body(&env.token())).await),
            "subject_mismatch",
            "{db:?}"
        );

        let (status, _) = env
            .app
            .post_authed(
                &env.admin,
                &rule,
                &json!({ "match": { "subject_prefix": SUBJECT, "claims": { "repository_owner": "acme" } } }),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(code(&env.exchange(&env.body(&env.token())).await), "granted", "{db:?}");

        let (status, _) = env
            .app
            .post_authed(&env.admin, &rule, &json!({ "token_lifetime_seconds": 120 }))
            .await;
        assert_eq!(status, 200);
        let reply = env.exchange(&env.body(&env.token())).await;
        assert!(
            (115..=120).contains(&reply.body["expires_in"].as_i64().unwrap()),
            "{db:?}: {}",
            reply.body
        );

        let (status, _) = env
            .app
            .post_authed(&env.admin, &format!("{rule}/archive"), &json!({}))
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            code(&env.exchange(&env.body(&env.token())).await),
            "rule_not_found",
            "{db:?}"
        );
        env.app.stop().await.unwrap();
    }
}
