//! The Admin API over real HTTP with the bootstrap admin token, on every database: authentication,
//! CRUD of service accounts, issuers and rules, memberships, rule workspaces, pagination, the error
//! shape, and the activity events each change writes (read back through the store).

use std::time::{SystemTime, UNIX_EPOCH};

use keyless_core::id::OrganizationId;
use keyless_core::scope::ScopeSet;
use keyless_server::service::token;
use keyless_store::Store;
use keyless_store::access_token::AccessTokenRecord;
use keyless_store::activity::{ActivityQuery, ActivityRecord};
use keyless_store::issuer::IssuerPollStatus;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::harness::{Db, Site, TestApp, databases, spawn_app};

const WORKSPACES: &str = "/v1/organizations/workspaces";
const SA: &str = "/v1/organizations/service_accounts";
const ISSUERS: &str = "/v1/organizations/federation_issuers";
const RULES: &str = "/v1/organizations/federation_rules";

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A running app, its bootstrap token and a store handle on the same database.
pub(crate) struct Admin {
    pub(crate) app: TestApp,
    pub(crate) token: String,
    pub(crate) store: Store,
    pub(crate) organization_id: OrganizationId,
    pub(crate) db: Db,
}

impl Admin {
    pub(crate) async fn start(site: &Site, db: Db) -> Admin {
        let app = spawn_app(site).await;
        let token = TestApp::admin_token(site);
        let store = match &site.pg {
            Some(pg) => Store::connect(&pg.url).await.unwrap(),
            None => Store::open_sqlite(site.data_dir().join("keyless.db")).await.unwrap(),
        };
        let organization_id = store.organization_list().await.unwrap()[0].id.clone();
        Admin {
            app,
            token,
            store,
            organization_id,
            db,
        }
    }

    /// `method path` with `token` and an optional JSON body: status, `Request-Id` and JSON body.
    pub(crate) async fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, String, Value) {
        let url = self.app.url(path);
        let builder = match method {
            "GET" => self.app.http.get(url),
            "POST" => self.app.http.post(url),
            "DELETE" => self.app.http.delete(url),
            other => panic!("{other}"),
        };
        let builder = builder.bearer_auth(token);
        let builder = match body {
            Some(body) => builder.json(body),
            None => builder,
        };
        let res = builder.send().await.unwrap();
        let status = res.status().as_u16();
        let request_id = res.headers()["request-id"].to_str().unwrap().to_owned();
        let text = res.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
        (status, request_id, value)
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        let (status, _, body) = self.call_as(&self.token, "GET", path, None).await;
        (status, body)
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (status, _, body) = self.call_as(&self.token, "POST", path, Some(&body)).await;
        (status, body)
    }

    pub(crate) async fn delete(&self, path: &str) -> (u16, Value) {
        let (status, _, body) = self.call_as(&self.token, "DELETE", path, None).await;
        (status, body)
    }

    /// `POST path` that must succeed; its body.
    pub(crate) async fn ok(&self, path: &str, body: Value) -> Value {
        let (status, body) = self.post(path, body).await;
        assert_eq!(status, 200, "{:?} POST {path}: {body}", self.db);
        body
    }

    /// Asserts an error answer: status, `error.type`, and the start of the message.
    pub(crate) fn check_error(
        &self,
        (status, body): (u16, Value),
        expect_status: u16,
        kind: &str,
        message_start: &str,
    ) {
        assert_eq!(status, expect_status, "{:?}: {body}", self.db);
        assert_eq!(body["type"], "error", "{body}");
        assert_eq!(body["error"]["type"], kind, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(message_start),
            "{message:?} should start with {message_start:?}"
        );
        assert!(body["request_id"].as_str().unwrap().starts_with("req_"), "{body}");
    }

    /// Stores an access token with `scope` (for the service account `service_account_id`, if any).
    pub(crate) async fn token_with(&self, scope: &str, service_account_id: Option<&str>, expires_at: i64) -> String {
        let minted = token::mint(now().unsigned_abs() * 1000).unwrap();
        let mut tx = self.store.begin().await.unwrap();
        tx.access_token_create(&AccessTokenRecord {
            hash: minted.key.clone(),
            organization_id: self.organization_id.clone(),
            workspace_id: None,
            service_account_id: service_account_id.map(|id| id.parse().unwrap()),
            rule_id: None,
            scope: ScopeSet::parse(scope).unwrap(),
            created_at: now() - 10,
            expires_at,
            revoked_at: None,
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
        minted.secret.expose_secret().to_owned()
    }

    /// Creates a workspace through the Admin API; its ID.
    pub(crate) async fn workspace(&self, name: &str) -> String {
        let workspace = self.ok(WORKSPACES, json!({ "name": name })).await;
        workspace["id"].as_str().unwrap().to_owned()
    }

    /// The events of `activity_type`, newest first.
    pub(crate) async fn events(&self, activity_type: &str) -> Vec<ActivityRecord> {
        let query = ActivityQuery {
            activity_types: vec![activity_type.to_owned()],
            ..ActivityQuery::default()
        };
        self.store
            .activity_list(&self.organization_id, &query)
            .await
            .unwrap()
            .items
    }

    pub(crate) async fn issuer(&self, name: &str) -> String {
        let body = json!({
            "name": name,
            "issuer_url": format!("https://{name}.example.com"),
            "jwks": {"type": "explicit_url", "url": format!("https://{name}.example.com/jwks")},
        });
        self.ok(ISSUERS, body).await["id"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn service_account(&self, name: &str, role: &str) -> String {
        let body = json!({"name": name, "organization_role": role});
        self.ok(SA, body).await["id"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn stop(self) {
        self.store.close().await;
        self.app.stop().await.unwrap();
    }
}

pub(crate) fn rule_body(name: &str, issuer_id: &str, service_account_id: &str) -> Value {
    json!({
        "name": name,
        "issuer_id": issuer_id,
        "match": {"subject_prefix": "system:serviceaccount:prod:*", "audience": "keyless"},
        "target": {"type": "service_account", "service_account_id": service_account_id},
        "oauth_scope": "workspace:developer",
        "token_lifetime_seconds": 600,
    })
}

async fn authentication(db: Db) {
    let site = Site::new(db);
    let admin = Admin::start(&site, db).await;

    // No token, a malformed one, an unknown one.
    let res = admin.app.http.get(admin.app.url(SA)).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let request_id = res.headers()["request-id"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["request_id"],
        request_id.as_str(),
        "the body carries the header's request ID"
    );
    admin.check_error((401, body), 401, "authentication_error", "missing bearer token");
    let (status, _, body) = admin.call_as("keyless_at_nope", "GET", SA, None).await;
    admin.check_error((status, body), 401, "authentication_error", "malformed bearer token");
    let unknown = token::mint(now().unsigned_abs() * 1000).unwrap();
    let (status, _, body) = admin.call_as(unknown.secret.expose_secret(), "GET", SA, None).await;
    admin.check_error((status, body), 401, "authentication_error", "invalid bearer token");

    // An expired org:admin token, and a valid token without org:admin.
    let expired = admin.token_with("org:admin", None, now() - 1).await;
    let (status, _, body) = admin.call_as(&expired, "GET", SA, None).await;
    admin.check_error((status, body), 401, "authentication_error", "invalid bearer token");
    let developer = admin.token_with("workspace:developer", None, now() + 600).await;
    let (status, _, body) = admin.call_as(&developer, "GET", ISSUERS, None).await;
    admin.check_error(
        (status, body),
        403,
        "permission_error",
        "this token lacks the `org:admin` scope",
    );

    // The bootstrap token works until revoked.
    assert_eq!(admin.get(RULES).await, (200, json!({"data": [], "next_page": null})));
    let mut tx = admin.store.begin().await.unwrap();
    assert!(tx.access_token_revoke(&token::key(&admin.token), now()).await.unwrap());
    tx.commit().await.unwrap();
    let (status, body) = admin.get(RULES).await;
    admin.check_error((status, body), 401, "authentication_error", "invalid bearer token");

    // Unknown routes answer in the same shape.
    let (status, body) = admin.app.get_json("/v1/organizations/nothing").await;
    admin.check_error((status, body), 404, "not_found_error", "no such route");
    let (status, body) = admin.delete(SA).await;
    admin.check_error((status, body), 405, "invalid_request_error", "method: not allowed");
    admin.stop().await;
}

async fn service_accounts(db: Db) {
    let site = Site::new(db);
    let admin = Admin::start(&site, db).await;

    let created = admin
        .ok(SA, json!({"name": "deployer", "description": "CI deploys"}))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("svac_"), "{created}");
    assert_eq!(created["type"], "service_account");
    assert_eq!(created["organization_role"], "developer");
    assert_eq!(created["description"], "CI deploys");
    assert_eq!(created["created_by_actor_id"], "bootstrap");
    assert_eq!(created["archived_at"], Value::Null);
    let created_at = created["created_at"].as_str().unwrap();
    assert!(
        created_at.len() == 20 && created_at.ends_with('Z'),
        "RFC 3339: {created_at}"
    );
    assert_eq!(admin.get(&format!("{SA}/{id}")).await, (200, created.clone()));

    // Refusals, each naming its field.
    admin.check_error(
        admin.post(SA, json!({"name": "deployer"})).await,
        409,
        "conflict_error",
        "name: already in use",
    );
    admin.check_error(
        admin.post(SA, json!({"name": "Bad_Name"})).await,
        400,
        "invalid_request_error",
        "name: ",
    );
    admin.check_error(
        admin.post(SA, json!({"name": "x", "bogus": 1})).await,
        400,
        "invalid_request_error",
        "bogus: unknown field `bogus`, expected one of `name`, `description`, `organization_role`",
    );
    admin.check_error(
        admin.post(SA, json!({})).await,
        400,
        "invalid_request_error",
        "missing field `name`",
    );
    admin.check_error(
        admin.post(SA, json!({"name": 5})).await,
        400,
        "invalid_request_error",
        "name: invalid type",
    );
    admin.check_error(
        admin.post(SA, json!({"name": "x", "organization_role": "owner"})).await,
        400,
        "invalid_request_error",
        "organization_role: must be `developer` or `admin`",
    );
    let res = admin
        .app
        .http
        .post(admin.app.url(SA))
        .bearer_auth(&admin.token)
        .body("{\"name\":")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "application/json");
    admin.check_error(
        (res.status().as_u16(), res.json().await.unwrap()),
        400,
        "invalid_request_error",
        "content-type:",
    );
    let res = admin
        .app
        .http
        .post(admin.app.url(SA))
        .bearer_auth(&admin.token)
        .header("content-type", "application/json")
        .body("{\"name\":")
        .send()
        .await
        .unwrap();
    admin.check_error(
        (res.status().as_u16(), res.json().await.unwrap()),
        400,
        "invalid_request_error",
        "body: not valid JSON",
    );
    admin.check_error(
        admin.get(&format!("{SA}/svac_missing")).await,
        404,
        "not_found_error",
        "no such service account",
    );
    admin.check_error(
        admin.get(&format!("{SA}/fdrl_1")).await,
        400,
        "invalid_request_error",
        "id: must be `svac_`",
    );

    // Partial update: the description changes, the role stays; the name is immutable.
    let updated = admin
        .ok(&format!("{SA}/{id}"), json!({"description": "deploys prod"}))
        .await;
    assert_eq!(updated["description"], "deploys prod");
    assert_eq!(updated["organization_role"], "developer");
    assert_eq!(updated["name"], "deployer");
    admin.check_error(
        admin.post(&format!("{SA}/{id}"), json!({"name": "other"})).await,
        400,
        "invalid_request_error",
        "name: is immutable",
    );
    let cleared = admin
        .ok(&format!("{SA}/{id}"), json!({"description": null, "name": "deployer"}))
        .await;
    assert_eq!(cleared["description"], Value::Null);
    let events = admin.events("platform_service_account_updated").await;
    assert_eq!(events.len(), 2, "{events:?}");
    let payload = &events[1].activity.payload;
    assert_eq!(
        payload["changes"],
        json!([{"type": "description", "previous_value": "CI deploys", "current_value": "deploys prod"}])
    );
    assert_eq!(events[1].activity.actor_id.as_deref(), Some("bootstrap"));
    assert_eq!(events[1].activity.resource_id.as_deref(), Some(id.as_str()));
    assert!(events[1].activity.request_id.as_deref().unwrap().starts_with("req_"));
    assert_eq!(admin.events("platform_service_account_created").await.len(), 1);

    // Admin accounts: the bootstrap token may create one; a service account's org:admin token may not,
    // nor promote one.
    let boss = admin.service_account("boss", "admin").await;
    let sa_token = admin.token_with("org:admin", Some(&boss), now() + 600).await;
    let (status, _, body) = admin
        .call_as(
            &sa_token,
            "POST",
            SA,
            Some(&json!({"name": "b2", "organization_role": "admin"})),
        )
        .await;
    admin.check_error((status, body), 403, "permission_error", "organization_role: ");
    let (status, _, body) = admin
        .call_as(
            &sa_token,
            "POST",
            &format!("{SA}/{id}"),
            Some(&json!({"organization_role": "admin"})),
        )
        .await;
    admin.check_error((status, body), 403, "permission_error", "organization_role: ");
    let (status, _, body) = admin
        .call_as(&sa_token, "POST", SA, Some(&json!({"name": "dev2"})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["created_by_actor_id"],
        boss.as_str(),
        "the actor is the token's service account"
    );

    // Archive: idempotent, keeps the first archived_at; an archived account cannot change.
    let archived = admin.ok(&format!("{SA}/{id}/archive"), json!({})).await;
    assert_eq!(archived["archived_by_actor_id"], "bootstrap");
    let archived_at = archived["archived_at"].clone();
    assert!(archived_at.is_string());
    let again = admin.ok(&format!("{SA}/{id}/archive"), json!({})).await;
    assert_eq!(again["archived_at"], archived_at);
    assert_eq!(admin.events("platform_service_account_archived").await.len(), 1);
    admin.check_error(
        admin.post(&format!("{SA}/{id}"), json!({"description": "x"})).await,
        400,
        "invalid_request_error",
        "id: service account",
    );
    let (_, live) = admin.get(SA).await;
    assert_eq!(live["data"].as_array().unwrap().len(), 2, "{live}");
    let (_, all) = admin.get(&format!("{SA}?include_archived=true")).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 3, "{all}");
    admin.stop().await;
}

async fn memberships(db: Db) {
    let site = Site::new(db);
    let admin = Admin::start(&site, db).await;
    let id = admin.service_account("worker", "developer").await;
    let staging = admin.workspace("staging").await;
    let path = format!("{SA}/{id}/workspaces");

    let (status, list) = admin.get(&path).await;
    assert_eq!(status, 200);
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{list}");
    assert_eq!(data[0]["implicit"], true);
    assert_eq!(data[0]["workspace_role"], "workspace_user");
    let default_id = data[0]["workspace_id"].as_str().unwrap().to_owned();

    let added = admin
        .ok(
            &path,
            json!({"workspace_id": staging, "workspace_role": "workspace_developer"}),
        )
        .await;
    assert_eq!(added["workspace_role"], "workspace_developer");
    assert_eq!(added["implicit"], false);
    admin
        .ok(
            &path,
            json!({"workspace_id": staging, "workspace_role": "workspace_developer"}),
        )
        .await;
    let changed = admin
        .ok(
            &format!("{path}/{staging}"),
            json!({"workspace_role": "workspace_admin"}),
        )
        .await;
    assert_eq!(changed["workspace_role"], "workspace_admin");
    assert_eq!(
        admin.get(&format!("{path}/{staging}")).await.1["workspace_role"],
        "workspace_admin"
    );
    admin.check_error(
        admin
            .post(&path, json!({"workspace_id": staging, "workspace_role": "owner"}))
            .await,
        400,
        "invalid_request_error",
        "workspace_role: must be one of",
    );
    admin.check_error(
        admin
            .post(
                &path,
                json!({"workspace_id": "wrkspc_missing", "workspace_role": "workspace_user"}),
            )
            .await,
        404,
        "not_found_error",
        "workspace_id: no such workspace",
    );
    admin.check_error(
        admin.delete(&format!("{path}/default")).await,
        400,
        "invalid_request_error",
        "workspace_id: the implicit membership",
    );
    let (status, removed) = admin.delete(&format!("{path}/{staging}")).await;
    assert_eq!(status, 200, "{removed}");
    admin.check_error(
        admin.delete(&format!("{path}/{staging}")).await,
        404,
        "not_found_error",
        "service account",
    );

    // An explicit membership of the default workspace overrides the implicit one, and goes back to it.
    admin
        .ok(
            &path,
            json!({"workspace_id": "default", "workspace_role": "workspace_developer"}),
        )
        .await;
    let (_, list) = admin.get(&path).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["data"][0]["workspace_id"], default_id.as_str());
    assert_eq!(list["data"][0]["implicit"], false);
    admin.delete(&format!("{path}/default")).await;
    assert_eq!(admin.get(&path).await.1["data"][0]["implicit"], true);

    assert_eq!(
        admin
            .events("platform_service_account_workspace_member_added")
            .await
            .len(),
        2
    );
    assert_eq!(
        admin
            .events("platform_service_account_workspace_member_removed")
            .await
            .len(),
        2
    );
    let updated = admin.events("platform_service_account_workspace_member_updated").await;
    assert_eq!(updated.len(), 1);
    assert_eq!(
        updated[0].activity.payload["changes"],
        json!([{"type": "workspace_role", "previous_value": "workspace_developer", "current_value": "workspace_admin"}])
    );
    admin.stop().await;
}

async fn issuers(db: Db) {
    let site = Site::new(db);
    let admin = Admin::start(&site, db).await;

    let created = admin
        .ok(
            ISSUERS,
            json!({"name": "k8s", "issuer_url": "https://k8s.example.com", "jwks": {"type": "discovery"}}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("fdis_"));
    assert_eq!(created["type"], "federation_issuer");
    assert_eq!(
        created["issuer_url"], "https://k8s.example.com",
        "kept exactly as given"
    );
    assert_eq!(created["check_jti"], true);
    assert_eq!(created["max_jwt_lifetime_seconds"], 3600);
    assert_eq!(created["jwks"]["type"], "discovery");
    assert_eq!(
        created["poll_status"],
        json!({"consecutive_failures": 0, "last_fetched_at": null, "next_poll_at": null, "last_error": null})
    );
    assert_eq!(created["jwks_polling_disabled_at"], Value::Null);

    admin.check_error(
        admin
            .post(
                ISSUERS,
                json!({"name": "k8s", "issuer_url": "https://other.example.com"}),
            )
            .await,
        409,
        "conflict_error",
        "name: already in use",
    );
    admin.check_error(
        admin
            .post(ISSUERS, json!({"name": "x", "issuer_url": "ftp://x.example.com"}))
            .await,
        400,
        "invalid_request_error",
        "issuer_url: url must use https",
    );
    admin.check_error(
        admin
            .post(
                ISSUERS,
                json!({"name": "x", "issuer_url": "https://x.example.com", "jwks": {"type": "magic"}}),
            )
            .await,
        400,
        "invalid_request_error",
        "jwks.type: ",
    );
    admin.check_error(
        admin
            .post(
                ISSUERS,
                json!({"name": "x", "issuer_url": "https://x.example.com", "jwks": {"type": "explicit_url"}}),
            )
            .await,
        400,
        "invalid_request_error",
        "jwks.url: required",
    );
    admin.check_error(
        admin
            .post(
                ISSUERS,
                json!({"name": "x", "issuer_url": "https://x.example.com", "max_jwt_lifetime_seconds": 176_401}),
            )
            .await,
        400,
        "invalid_request_error",
        "max_jwt_lifetime_seconds: must be between 1 and 176400",
    );

    // Polling paused after failures: an update resumes it and starts the status over.
    let failing = IssuerPollStatus {
        consecutive_failures: 9,
        last_fetched_at: Some(now() - 3600),
        next_poll_at: Some(now() + 3600),
        last_error: Some("connection refused".to_owned()),
    };
    admin
        .store
        .issuer_poll_status_set(&admin.organization_id, &id.parse().unwrap(), &failing, Some(now()))
        .await
        .unwrap();
    let (_, paused) = admin.get(&format!("{ISSUERS}/{id}")).await;
    assert!(paused["jwks_polling_disabled_at"].is_string(), "{paused}");
    let updated = admin
        .ok(
            &format!("{ISSUERS}/{id}"),
            json!({"check_jti": false, "max_jwt_lifetime_seconds": 600}),
        )
        .await;
    assert_eq!(updated["check_jti"], false);
    assert_eq!(updated["max_jwt_lifetime_seconds"], 600);
    assert_eq!(updated["name"], "k8s", "partial");
    assert_eq!(updated["jwks_polling_disabled_at"], Value::Null);
    assert_eq!(updated["poll_status"]["consecutive_failures"], 0);
    assert_eq!(updated["poll_status"]["last_error"], Value::Null);
    assert_eq!(updated["poll_status"]["next_poll_at"], Value::Null);
    assert!(
        updated["poll_status"]["last_fetched_at"].is_string(),
        "the last success is kept"
    );
    assert_eq!(admin.get(&format!("{ISSUERS}/{id}")).await.1, updated);
    let events = admin.events("platform_federation_issuer_updated").await;
    assert_eq!(events.len(), 1);
    let changes = events[0].activity.payload["changes"].as_array().unwrap().clone();
    let fields: Vec<&str> = changes.iter().map(|change| change["type"].as_str().unwrap()).collect();
    assert_eq!(
        fields,
        ["check_jti", "jwks_polling_disabled_at", "max_jwt_lifetime_seconds"]
    );
    assert_eq!(changes[0]["previous_value"], true);
    assert_eq!(changes[0]["current_value"], false);
    // Nothing changed: nothing written.
    admin.ok(&format!("{ISSUERS}/{id}"), json!({"check_jti": false})).await;
    assert_eq!(admin.events("platform_federation_issuer_updated").await.len(), 1);
    admin.check_error(
        admin
            .post(
                &format!("{ISSUERS}/{id}"),
                json!({"jwks": {"type": "inline", "keys": []}}),
            )
            .await,
        400,
        "invalid_request_error",
        "jwks.keys: ",
    );
    admin.check_error(
        admin.post(&format!("{ISSUERS}/{id}"), json!({"issuer": "typo"})).await,
        400,
        "invalid_request_error",
        "issuer: unknown field `issuer`",
    );

    // Archive is refused while a live rule uses the issuer.
    let target = admin.service_account("runner", "developer").await;
    let rule = admin.ok(RULES, rule_body("ci", &id, &target)).await;
    admin.check_error(
        admin.post(&format!("{ISSUERS}/{id}/archive"), json!({})).await,
        409,
        "conflict_error",
        "federation issuer",
    );
    admin.check_error(
        admin.post(&format!("{SA}/{target}/archive"), json!({})).await,
        409,
        "conflict_error",
        "service account",
    );
    admin
        .ok(&format!("{RULES}/{}/archive", rule["id"].as_str().unwrap()), json!({}))
        .await;
    let archived = admin.ok(&format!("{ISSUERS}/{id}/archive"), json!({})).await;
    assert!(archived["archived_at"].is_string());
    admin.check_error(
        admin.post(&format!("{ISSUERS}/{id}"), json!({"check_jti": true})).await,
        400,
        "invalid_request_error",
        "id: federation issuer",
    );
    admin.check_error(
        admin.post(RULES, rule_body("ci2", &id, &target)).await,
        400,
        "invalid_request_error",
        "issuer_id: federation issuer",
    );
    assert_eq!(admin.events("platform_federation_issuer_archived").await.len(), 1);
    admin.stop().await;
}

async fn rules(db: Db) {
    let site = Site::new(db);
    let admin = Admin::start(&site, db).await;
    let issuer = admin.issuer("k8s").await;
    let target = admin.service_account("runner", "developer").await;
    let boss = admin.service_account("boss", "admin").await;

    let created = admin.ok(RULES, rule_body("ci", &issuer, &target)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("fdrl_"));
    assert_eq!(created["type"], "federation_rule");
    assert_eq!(
        created["match"],
        json!({"subject_prefix": "system:serviceaccount:prod:*", "audience": "keyless", "claims": null, "condition": null})
    );
    assert_eq!(
        created["target"],
        json!({"type": "service_account", "service_account_id": target})
    );
    assert_eq!(created["oauth_scope"], "workspace:developer");
    assert_eq!(created["token_lifetime_seconds"], 600);
    assert_eq!(created["applies_to_all_workspaces"], false);
    let default_id = created["workspace_ids"][0].as_str().unwrap().to_owned();
    assert!(default_id.starts_with("wrkspc_"), "{created}");

    // Refusals.
    admin.check_error(
        admin.post(RULES, rule_body("ci", &issuer, &target)).await,
        409,
        "conflict_error",
        "name: already in use",
    );
    let mut body = rule_body("wide", &issuer, &target);
    body["match"] = json!({"audience": "keyless"});
    admin.check_error(
        admin.post(RULES, body).await,
        400,
        "invalid_request_error",
        "match: an identity constraint is required",
    );
    let mut body = rule_body("cel", &issuer, &target);
    body["match"] = json!({"condition": "claims.sub.startsWith("});
    admin.check_error(
        admin.post(RULES, body).await,
        400,
        "invalid_request_error",
        "match.condition: ",
    );
    let mut body = rule_body("bad-lifetime", &issuer, &target);
    body["token_lifetime_seconds"] = json!(10);
    admin.check_error(
        admin.post(RULES, body).await,
        400,
        "invalid_request_error",
        "token_lifetime_seconds: ",
    );
    admin.check_error(
        admin.post(RULES, rule_body("orphan", &issuer, "svac_missing")).await,
        404,
        "not_found_error",
        "target.service_account_id: no such service account",
    );
    admin.check_error(
        admin.post(RULES, rule_body("x", "fdis_missing", &target)).await,
        404,
        "not_found_error",
        "issuer_id: no such federation issuer",
    );
    admin.check_error(
        admin.post(RULES, rule_body("x", "nope", &target)).await,
        400,
        "invalid_request_error",
        "issuer_id: ",
    );
    let mut body = rule_body("admin-for-dev", &issuer, &target);
    body["oauth_scope"] = json!("org:admin");
    admin.check_error(
        admin.post(RULES, body).await,
        400,
        "invalid_request_error",
        "oauth_scope: `org:admin` needs a target service account with organization_role admin",
    );
    let github = json!({"name": "github", "issuer_url": "https://token.actions.githubusercontent.com"});
    let github = admin.ok(ISSUERS, github).await;
    let mut shared = rule_body("gh", github["id"].as_str().unwrap(), &target);
    shared["match"] = json!({"subject_prefix": "repo:*"});
    let refused = admin.post(RULES, shared).await;
    assert_eq!(refused.1["error"]["code"], "tenant_not_pinned", "{}", refused.1);
    admin.check_error(
        refused,
        400,
        "invalid_request_error",
        "match: GitHub Actions is a shared issuer: pin the tenant",
    );

    // Lints: a valid but loose GitHub rule is saved, with its warnings in the answer and the event.
    let mut loose = rule_body("gh-loose", github["id"].as_str().unwrap(), &target);
    loose["match"] = json!({"subject_prefix": "repo:acme/*", "claims": {"repository_owner": "acme"}});
    loose["token_lifetime_seconds"] = json!(86400);
    let saved = admin.ok(RULES, loose).await;
    let codes: Vec<(&str, &str)> = saved["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|warning| (warning["code"].as_str().unwrap(), warning["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        [
            ("mutable_claim", "match.claims.repository_owner"),
            ("admits_pull_requests", "match.subject_prefix"),
            ("lifetime_exceeds_issuer", "token_lifetime_seconds"),
        ],
        "{saved}"
    );
    let loose_id = saved["id"].as_str().unwrap();
    let (_, read) = admin.get(&format!("{RULES}/{loose_id}")).await;
    assert!(read.get("warnings").is_none(), "reads carry no warnings: {read}");
    let created = admin.events("platform_federation_rule_created").await;
    let event = created
        .iter()
        .find(|event| event.activity.resource_id.as_deref() == Some(loose_id))
        .unwrap();
    assert_eq!(event.activity.payload["warnings"].as_array().unwrap().len(), 3);
    // Fixing them: pin the ID and a branch, shorten the lifetime; the update answers no warnings.
    let fixed = admin
        .ok(
            &format!("{RULES}/{loose_id}"),
            json!({
                "match": {"subject_prefix": "repo:acme/app:ref:refs/heads/main", "claims": {"repository_owner_id": "1234"}},
                "token_lifetime_seconds": 900,
            }),
        )
        .await;
    assert_eq!(fixed["warnings"], json!([]), "{fixed}");

    // org:admin rules: only with the bootstrap (interactive) credential.
    let mut admin_rule = rule_body("admin-rule", &issuer, &boss);
    admin_rule["oauth_scope"] = json!("org:admin");
    let sa_token = admin.token_with("org:admin", Some(&boss), now() + 600).await;
    let (status, _, body) = admin.call_as(&sa_token, "POST", RULES, Some(&admin_rule)).await;
    admin.check_error((status, body), 403, "permission_error", "oauth_scope: ");
    let admin_rule = admin.ok(RULES, admin_rule).await;
    let (status, _, body) = admin
        .call_as(
            &sa_token,
            "POST",
            &format!("{RULES}/{}", admin_rule["id"].as_str().unwrap()),
            Some(&json!({"token_lifetime_seconds": 300})),
        )
        .await;
    admin.check_error((status, body), 403, "permission_error", "oauth_scope: ");
    let (status, _, body) = admin
        .call_as(
            &sa_token,
            "POST",
            &format!("{RULES}/{id}"),
            Some(&json!({"description": "by a robot"})),
        )
        .await;
    assert_eq!(
        status, 200,
        "workspace rules may be changed by service accounts: {body}"
    );

    // Partial update; match replaced whole; issuer_id immutable.
    let updated = admin
        .ok(
            &format!("{RULES}/{id}"),
            json!({"match": {"claims": {"namespace": "prod"}}, "oauth_scope": "workspace:inference"}),
        )
        .await;
    assert_eq!(
        updated["match"],
        json!({"subject_prefix": null, "audience": null, "claims": {"namespace": "prod"}, "condition": null})
    );
    assert_eq!(updated["oauth_scope"], "workspace:inference");
    assert_eq!(updated["token_lifetime_seconds"], 600);
    assert_eq!(updated["description"], "by a robot");
    let other_issuer = admin.issuer("other").await;
    admin.check_error(
        admin
            .post(&format!("{RULES}/{id}"), json!({"issuer_id": other_issuer}))
            .await,
        400,
        "invalid_request_error",
        "issuer_id: is immutable",
    );
    let events = admin.events("platform_federation_rule_updated").await;
    let fields: Vec<&str> = events[0].activity.payload["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["type"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["match", "oauth_scope"]);

    // Workspaces: add, list, remove; the last one stays.
    let staging = admin.workspace("staging").await;
    let workspaces = format!("{RULES}/{id}/workspaces");
    let rule = admin.ok(&workspaces, json!({"workspace_id": staging})).await;
    let mut expect = vec![default_id.clone(), staging.clone()];
    expect.sort();
    assert_eq!(rule["workspace_ids"], json!(expect));
    admin.ok(&workspaces, json!({"workspace_id": staging})).await;
    assert_eq!(
        admin.events("platform_federation_rule_workspace_added").await.len(),
        1,
        "adding again changes nothing"
    );
    let (_, list) = admin.get(&workspaces).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2, "{list}");
    assert_eq!(admin.get(&format!("{workspaces}/{staging}")).await.0, 200);
    admin.check_error(
        admin.post(&workspaces, json!({"workspace_id": "wrkspc_missing"})).await,
        404,
        "not_found_error",
        "workspace_id: no such workspace",
    );
    let (status, rule) = admin.delete(&format!("{workspaces}/default")).await;
    assert_eq!(status, 200, "{rule}");
    assert_eq!(rule["workspace_ids"], json!([staging]));
    admin.check_error(
        admin.delete(&format!("{workspaces}/default")).await,
        404,
        "not_found_error",
        "federation rule",
    );
    admin.check_error(
        admin.delete(&format!("{workspaces}/{staging}")).await,
        400,
        "invalid_request_error",
        "workspace_id: ",
    );
    let removed = admin.events("platform_federation_rule_workspace_removed").await;
    assert_eq!(removed.len(), 1);
    assert_eq!(
        removed[0].activity.payload["event_data"]["workspace_id"],
        default_id.as_str()
    );
    let all = admin
        .ok(&format!("{RULES}/{id}"), json!({"applies_to_all_workspaces": true}))
        .await;
    assert_eq!(all["applies_to_all_workspaces"], true);
    assert_eq!(all["workspace_ids"], json!([]));

    // Lists filter by issuer; archive is idempotent; archived rules cannot change.
    let (_, by_issuer) = admin.get(&format!("{RULES}?issuer_id={issuer}")).await;
    assert_eq!(by_issuer["data"].as_array().unwrap().len(), 2, "{by_issuer}");
    let (_, none) = admin.get(&format!("{RULES}?issuer_id={other_issuer}")).await;
    assert_eq!(none["data"], json!([]));
    let archived = admin.ok(&format!("{RULES}/{id}/archive"), json!({})).await;
    let again = admin.ok(&format!("{RULES}/{id}/archive"), json!({})).await;
    assert_eq!(archived["archived_at"], again["archived_at"]);
    admin.check_error(
        admin.post(&format!("{RULES}/{id}"), json!({"description": "x"})).await,
        400,
        "invalid_request_error",
        "id: federation rule",
    );
    admin.check_error(
        admin.get(&format!("{RULES}/fdrl_missing")).await,
        404,
        "not_found_error",
        "no such federation rule",
    );
    assert_eq!(
        admin.events("platform_federation_rule_created").await.len(),
        3,
        "two rules, and the linted one"
    );
    assert_eq!(admin.events("platform_federation_rule_archived").await.len(), 1);
    admin.stop().await;
}

async fn pagination(db: Db) {
    let site = Site::new(db);
    let admin = Admin::start(&site, db).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(admin.service_account(&format!("sa-{n}"), "developer").await);
    }
    admin.ok(&format!("{SA}/{}/archive", ids[0]), json!({})).await;

    let mut seen = Vec::new();
    let mut path = format!("{SA}?limit=2&include_archived=true");
    let mut pages = 0;
    loop {
        let (status, page) = admin.get(&path).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|item| item["id"].as_str().unwrap().to_owned()));
        match page["next_page"].as_str() {
            Some(cursor) => path = format!("{SA}?limit=2&include_archived=true&page={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 5, "every account once: {seen:?}");
    let (_, live) = admin.get(&format!("{SA}?limit=100")).await;
    assert_eq!(live["data"].as_array().unwrap().len(), 4);
    assert_eq!(live["next_page"], Value::Null);
    admin.check_error(
        admin.get(&format!("{SA}?limit=0")).await,
        400,
        "invalid_request_error",
        "limit: ",
    );
    admin.check_error(
        admin.get(&format!("{SA}?page=garbage")).await,
        400,
        "invalid_request_error",
        "page: ",
    );
    admin.check_error(
        admin.get(&format!("{SA}?color=red")).await,
        400,
        "invalid_request_error",
        "color: unknown",
    );
    admin.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_authentication_and_error_shape() {
    for db in databases() {
        authentication(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_service_accounts() {
    for db in databases() {
        service_accounts(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_memberships() {
    for db in databases() {
        memberships(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_issuers() {
    for db in databases() {
        issuers(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_rules() {
    for db in databases() {
        rules(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_pagination() {
    for db in databases() {
        pagination(db).await;
    }
}

/// `POST /federation_issuers/verify` dry-runs discovery and the JWKS against a real loopback issuer,
/// reports keys and problems, and creates nothing.
async fn issuer_verify(db: Db) {
    let site = Site::new(db);
    let admin = Admin::start(&site, db).await;
    let oidc = crate::oidc::OidcIssuer::start().await;
    let verify = format!("{ISSUERS}/verify");

    let (status, report) = admin
        .app
        .post_authed(&admin.token, &verify, &json!({ "issuer_url": oidc.issuer_url() }))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["jwks_uri"], oidc.jwks_url().as_str(), "{report}");
    assert_eq!(report["keys"][0]["kid"], oidc.current_kid().as_str(), "{report}");
    assert_eq!(report["problems"], json!([]));

    oidc.set_outage(true);
    let (status, report) = admin
        .app
        .post_authed(&admin.token, &verify, &json!({ "issuer_url": oidc.issuer_url() }))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["keys"], json!([]));
    assert!(!report["problems"].as_array().unwrap().is_empty(), "{report}");
    oidc.set_outage(false);

    let (status, body) = admin
        .app
        .post_authed(&admin.token, &verify, &json!({ "issuer_url": "ftp://example.com" }))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().starts_with("issuer_url:"),
        "{body}"
    );

    let (status, page) = admin.app.get_authed(&admin.token, ISSUERS).await;
    assert_eq!(status, 200);
    assert_eq!(page["data"], json!([]), "verify creates nothing");
    let unauthenticated = admin
        .app
        .http
        .post(admin.app.url(&verify))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    admin.app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_issuer_verify() {
    for db in databases() {
        issuer_verify(db).await;
    }
}
