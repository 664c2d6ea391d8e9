//! `keyless_client::resource` end to end: a real keyless server on `127.0.0.1:0` (SQLite, fresh data
//! directory), an issuer with inline JWKS, service accounts and rules made through the Admin API, workload
//! JWTs signed with `keyless_jose`, tokens exchanged at `/v1/oauth/token`; then the example API
//! (`examples/resource_api.rs`, its very router) on loopback, called with reqwest. Introspection goes
//! through a counting proxy that can also fail or hold requests on demand. Time moves by a
//! `ManualClock`, never by sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use keyless_client::resource::{Clock, Denial, ManualClock, Principal, SystemClock, Verifier};
use keyless_client::{Api, Credential};
use keyless_jose::{Algorithm, SigningKey};
use keyless_server::config::{Config, RawConfig};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

#[allow(dead_code, reason = "only the router is used; main and serve are the example's")]
#[path = "../../examples/resource_api.rs"]
mod resource_api;

const ISSUER: &str = "https://ci.example";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The client rule's token lifetime.
const LIFETIME: u64 = 300;

fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Serves `router` on a fresh loopback port; returns its base URL.
async fn serve(router: Router) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (url, task)
}

/// A running keyless server.
struct Keyless {
    _dir: tempfile::TempDir,
    base_url: String,
    admin: String,
    organization_id: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), keyless_server::ServeError>>>,
}

impl Keyless {
    async fn start(http: &reqwest::Client) -> Keyless {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let raw = RawConfig {
            listen: Some(address.to_string()),
            data_dir: Some(dir.path().join("data")),
            ..RawConfig::default()
        };
        let config = Config::from_raw(raw).unwrap();
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(keyless_server::run(config, listener, async {
            let _ = signal.await;
        }));
        let base_url = format!("http://{address}");
        let mut up = false;
        for _ in 0..250 {
            if http.get(format!("{base_url}/healthz")).send().await.is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(up, "keyless did not start");
        let bootstrap: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("data/bootstrap.json")).unwrap()).unwrap();
        Keyless {
            _dir: dir,
            base_url,
            admin: bootstrap["admin_token"].as_str().unwrap().to_owned(),
            organization_id: bootstrap["organization_id"].as_str().unwrap().to_owned(),
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Creates an Admin API object with the bootstrap (interactive) token; returns its ID.
    async fn create(&self, http: &reqwest::Client, collection: &str, body: Value) -> String {
        let response = http
            .post(format!("{}/v1/organizations/{collection}", self.base_url))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let object: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "POST {collection}: {object}");
        object["id"].as_str().unwrap().to_owned()
    }

    async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// A proxy in front of keyless's introspection endpoint: counts calls, and on demand answers 503
/// (`outage`) or holds calls until the gate opens.
#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    calls: Arc<AtomicUsize>,
    outage: Arc<AtomicBool>,
    gate: watch::Sender<bool>,
}

impl Proxy {
    async fn start(upstream: &str) -> (Proxy, String) {
        let proxy = Proxy {
            upstream: upstream.to_owned(),
            http: reqwest::Client::new(),
            calls: Arc::new(AtomicUsize::new(0)),
            outage: Arc::new(AtomicBool::new(false)),
            gate: watch::channel(true).0,
        };
        let router = Router::new()
            .route("/v1/oauth/introspect", post(forward))
            .with_state(proxy.clone());
        let (url, _task) = serve(router).await;
        (proxy, url)
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

async fn forward(State(proxy): State<Proxy>, headers: HeaderMap, body: Bytes) -> Response {
    proxy.calls.fetch_add(1, Ordering::SeqCst);
    let _ = proxy.gate.subscribe().wait_for(|open| *open).await;
    if proxy.outage.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let mut request = proxy
        .http
        .post(format!("{}/v1/oauth/introspect", proxy.upstream))
        .body(body);
    for name in ["authorization", "content-type"] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value.as_bytes());
        }
    }
    match request.send().await {
        Ok(response) => {
            let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
            let body = response.bytes().await.unwrap();
            (status, [("content-type", "application/json")], body).into_response()
        }
        Err(_) => (StatusCode::BAD_GATEWAY, "upstream unreachable").into_response(),
    }
}

/// keyless with a resource server and a client set up, the proxy, and the example API running behind a
/// verifier on a manual clock.
struct Fixture {
    http: reqwest::Client,
    keyless: Keyless,
    proxy: Proxy,
    proxy_url: String,
    signer: SigningKey,
    audience: String,
    clock: Arc<ManualClock>,
    verifier: Verifier,
    api_url: String,
    introspection_token: String,
    worker_id: String,
    worker_rule_id: String,
    orders_api_id: String,
    orders_api_rule_id: String,
}

impl Fixture {
    async fn start() -> Fixture {
        let http = reqwest::Client::new();
        let keyless = Keyless::start(&http).await;
        let signer = SigningKey::generate(Algorithm::Es256).unwrap();
        let metadata: Value = http
            .get(format!("{}/.well-known/oauth-authorization-server", keyless.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let audience = metadata["keyless_default_audience"].as_str().unwrap().to_owned();
        let issuer_id = keyless
            .create(
                &http,
                "federation_issuers",
                json!({ "name": "ci", "issuer_url": ISSUER, "jwks": { "type": "inline", "keys": [signer.public_jwk()] } }),
            )
            .await;
        let orders_api_id = keyless
            .create(&http, "service_accounts", json!({ "name": "orders-api" }))
            .await;
        let worker_id = keyless
            .create(&http, "service_accounts", json!({ "name": "worker" }))
            .await;
        // `oauth:introspect` is outside `workspace:`: only an interactive credential (the bootstrap
        // token) may write a rule granting it.
        let orders_api_rule_id = keyless
            .create(
                &http,
                "federation_rules",
                json!({
                    "name": "orders-api-introspects",
                    "issuer_id": issuer_id,
                    "match": { "subject_prefix": "orders-api" },
                    "target": { "type": "service_account", "service_account_id": orders_api_id },
                    "oauth_scope": "oauth:introspect",
                }),
            )
            .await;
        let worker_rule_id = keyless
            .create(
                &http,
                "federation_rules",
                json!({
                    "name": "worker",
                    "issuer_id": issuer_id,
                    "match": { "subject_prefix": "worker" },
                    "target": { "type": "service_account", "service_account_id": worker_id },
                    "oauth_scope": "workspace:developer files:read files:write",
                    "token_lifetime_seconds": LIFETIME,
                }),
            )
            .await;
        let mut fixture = Fixture {
            http,
            keyless,
            proxy: Proxy {
                upstream: String::new(),
                http: reqwest::Client::new(),
                calls: Arc::default(),
                outage: Arc::default(),
                gate: watch::channel(true).0,
            },
            proxy_url: String::new(),
            signer,
            audience,
            clock: Arc::new(ManualClock::starting_now()),
            verifier: Verifier::new(Api::new("http://127.0.0.1:9", Credential::Bearer("x".into())).unwrap()),
            api_url: String::new(),
            introspection_token: String::new(),
            worker_id,
            worker_rule_id,
            orders_api_id,
            orders_api_rule_id,
        };
        fixture.introspection_token = fixture
            .exchange("orders-api", &fixture.orders_api_rule_id, &fixture.orders_api_id, None)
            .await;
        let (proxy, proxy_url) = Proxy::start(&fixture.keyless.base_url).await;
        fixture.proxy = proxy;
        fixture.proxy_url = proxy_url;
        fixture.verifier = fixture.verifier_with(|builder| builder);
        let (api_url, _task) = serve(resource_api::router(fixture.verifier.clone())).await;
        fixture.api_url = api_url;
        fixture
    }

    /// A verifier introspecting through the proxy with the resource server's token, on the manual clock.
    fn verifier_with(
        &self,
        configure: impl FnOnce(keyless_client::resource::VerifierBuilder) -> keyless_client::resource::VerifierBuilder,
    ) -> Verifier {
        let api = Api::new(
            &self.proxy_url,
            Credential::Bearer(self.introspection_token.clone().into()),
        )
        .unwrap();
        let clock: Arc<dyn Clock> = self.clock.clone();
        configure(Verifier::builder(api).clock(clock)).build()
    }

    /// Signs a workload JWT for `subject` and exchanges it through `rule_id`.
    /// A workload JWT for `subject`, with a fresh `jti`.
    fn assertion(&self, subject: &str) -> String {
        let now = i64::try_from(SystemClock.now().as_secs()).unwrap();
        let claims = json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": self.audience,
            "jti": format!("jti-{}", unique()),
            "iat": now,
            "nbf": now - 5,
            "exp": now + 300,
        });
        self.signer.sign_jwt(claims.as_object().unwrap()).unwrap()
    }

    async fn exchange(&self, subject: &str, rule_id: &str, service_account_id: &str, scope: Option<&str>) -> String {
        let assertion = self.assertion(subject);
        let mut body = json!({
            "grant_type": JWT_BEARER,
            "assertion": assertion,
            "federation_rule_id": rule_id,
            "organization_id": self.keyless.organization_id,
            "service_account_id": service_account_id,
        });
        if let Some(scope) = scope {
            body["scope"] = json!(scope);
        }
        let response = self
            .http
            .post(format!("{}/v1/oauth/token", self.keyless.base_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "exchange for {subject}: {answer}");
        answer["access_token"].as_str().unwrap().to_owned()
    }

    /// A worker token holding `scope`.
    async fn worker_token(&self, scope: &str) -> String {
        self.exchange("worker", &self.worker_rule_id, &self.worker_id, Some(scope))
            .await
    }

    /// Calls the example API: status, `WWW-Authenticate`, JSON body.
    async fn call(&self, method: &str, path: &str, authorization: Option<&str>) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.api_url));
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.send().await.unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|value| value.to_str().unwrap().to_owned())
        };
        let challenge = header("www-authenticate");
        let retry_after = header("retry-after");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Reply {
            status,
            challenge,
            retry_after,
            body,
        }
    }

    async fn bearer(&self, method: &str, path: &str, token: &str) -> Reply {
        self.call(method, path, Some(&format!("Bearer {token}"))).await
    }

    async fn revoke(&self, token: &str) {
        let response = self
            .http
            .post(format!("{}/v1/oauth/revoke", self.keyless.base_url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    challenge: Option<String>,
    retry_after: Option<String>,
    body: Value,
}

impl Reply {
    #[track_caller]
    fn assert_invalid_token(&self) {
        assert_eq!(self.status, 401, "{self:?}");
        let challenge = self.challenge.as_deref().unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer realm=\"keyless\", error=\"invalid_token\", error_description=\""),
            "{self:?}"
        );
        assert_eq!(self.body["error"], "invalid_token", "{self:?}");
    }

    #[track_caller]
    fn assert_missing_token(&self) {
        assert_eq!(self.status, 401, "{self:?}");
        assert_eq!(self.challenge.as_deref(), Some("Bearer realm=\"keyless\""), "{self:?}");
        assert_eq!(self.body["error"], "invalid_token", "{self:?}");
    }

    #[track_caller]
    fn assert_insufficient_scope(&self, scope: &str) {
        assert_eq!(self.status, 403, "{self:?}");
        let challenge = self.challenge.as_deref().unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer realm=\"keyless\", error=\"insufficient_scope\", ")
                && challenge.ends_with(&format!(", scope=\"{scope}\"")),
            "{self:?}"
        );
        assert_eq!(self.body["error"], "insufficient_scope", "{self:?}");
        assert_eq!(self.body["scope"], scope, "{self:?}");
    }

    #[track_caller]
    fn assert_unavailable(&self) {
        assert_eq!(self.status, 503, "{self:?}");
        assert_eq!(self.challenge, None, "{self:?}");
        assert_eq!(self.retry_after.as_deref(), Some("1"), "{self:?}");
        assert_eq!(
            self.body,
            json!({"error": "temporarily_unavailable", "error_description": "the token could not be checked; retry shortly"}),
        );
    }
}

#[tokio::test]
async fn a_valid_token_gets_its_principal_from_one_introspection() {
    let fixture = Fixture::start().await;
    let token = fixture.worker_token("files:read workspace:developer").await;
    let reply = fixture.bearer("GET", "/v1/whoami", &token).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let principal: Principal = serde_json::from_value(reply.body.clone()).unwrap();
    assert_eq!(principal.organization_id, fixture.keyless.organization_id);
    assert_eq!(
        principal.service_account_id.as_deref(),
        Some(fixture.worker_id.as_str())
    );
    assert_eq!(
        principal.federation_rule_id.as_deref(),
        Some(fixture.worker_rule_id.as_str())
    );
    assert!(principal.workspace_id.is_some(), "{principal:?}");
    assert_eq!(principal.scopes, ["files:read", "workspace:developer"]);
    let now = i64::try_from(SystemClock.now().as_secs()).unwrap();
    let lifetime = i64::try_from(LIFETIME).unwrap();
    assert!(
        (now + lifetime - 5..=now + lifetime).contains(&principal.expires_at),
        "{principal:?}"
    );
    let reply = fixture.bearer("GET", "/v1/files", &token).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["for"], fixture.worker_id.as_str());
    // The scheme is case-insensitive.
    let reply = fixture
        .call("GET", "/v1/whoami", Some(&format!("bEaReR {token}")))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(fixture.proxy.calls(), 1, "one introspection served all three requests");
}

#[tokio::test]
async fn missing_malformed_unknown_and_expired_tokens_get_401_with_a_challenge() {
    let fixture = Fixture::start().await;
    fixture.call("GET", "/v1/whoami", None).await.assert_missing_token();
    fixture
        .call("GET", "/v1/whoami", Some("Basic dXNlcjpwYXNz"))
        .await
        .assert_missing_token();
    fixture
        .bearer("GET", "/v1/whoami", "garbage")
        .await
        .assert_invalid_token();
    assert_eq!(
        fixture.proxy.calls(),
        0,
        "a string not shaped like a token is never introspected"
    );

    let token = fixture.worker_token("files:read").await;
    // A token in the query string is not read.
    fixture
        .call("GET", &format!("/v1/whoami?access_token={token}"), None)
        .await
        .assert_missing_token();

    // Well-formed but unknown: one introspection, then remembered (the negative cache).
    let unknown = format!("keyless_at_{}", "A".repeat(49));
    for _ in 0..5 {
        fixture
            .bearer("GET", "/v1/whoami", &unknown)
            .await
            .assert_invalid_token();
    }
    assert_eq!(fixture.proxy.calls(), 1);
    fixture.clock.advance(Duration::from_secs(2));
    fixture
        .bearer("GET", "/v1/whoami", &unknown)
        .await
        .assert_invalid_token();
    assert_eq!(fixture.proxy.calls(), 2, "the negative answer is kept for 2 s");

    // Expiry is exact, by the verifier's clock: accepted one second before `exp`, refused at it.
    let reply = fixture.bearer("GET", "/v1/whoami", &token).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let expires_at = reply.body["expires_at"].as_u64().unwrap();
    fixture.clock.set(Duration::from_secs(expires_at - 1));
    assert_eq!(fixture.bearer("GET", "/v1/whoami", &token).await.status, 200);
    fixture.clock.set(Duration::from_secs(expires_at));
    let reply = fixture.bearer("GET", "/v1/whoami", &token).await;
    reply.assert_invalid_token();
    assert!(
        reply
            .challenge
            .unwrap()
            .contains("error_description=\"invalid bearer token: the token has expired\""),
    );
}

#[tokio::test]
async fn a_missing_scope_is_403_naming_the_scope() {
    let fixture = Fixture::start().await;
    let developer = fixture.worker_token("workspace:developer").await;
    let reader = fixture.worker_token("files:read").await;
    let writer = fixture.worker_token("files:read files:write").await;
    // A RequireScope layer on the route.
    fixture
        .bearer("GET", "/v1/files", &developer)
        .await
        .assert_insufficient_scope("files:read");
    // Principal::require_scope in the handler.
    fixture
        .bearer("POST", "/v1/files", &reader)
        .await
        .assert_insufficient_scope("files:write");
    let reply = fixture.bearer("POST", "/v1/files", &writer).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["by"], fixture.worker_id.as_str());
    // Any valid token may ask who it is.
    assert_eq!(fixture.bearer("GET", "/v1/whoami", &developer).await.status, 200);
}

#[tokio::test]
async fn revocation_takes_effect_within_the_bound() {
    let fixture = Fixture::start().await;
    assert_eq!(fixture.verifier.max_ttl(), Duration::from_secs(10));
    let token = fixture.worker_token("files:read").await;
    assert_eq!(fixture.bearer("GET", "/v1/files", &token).await.status, 200);
    fixture.revoke(&token).await;
    // Within the bound the cached answer still stands...
    assert_eq!(fixture.bearer("GET", "/v1/files", &token).await.status, 200);
    fixture.clock.advance(Duration::from_millis(9_999));
    assert_eq!(fixture.bearer("GET", "/v1/files", &token).await.status, 200);
    assert_eq!(fixture.proxy.calls(), 1);
    // ...and at the bound keyless is asked again, and the revocation holds.
    fixture.clock.advance(Duration::from_millis(1));
    fixture.bearer("GET", "/v1/files", &token).await.assert_invalid_token();
    assert_eq!(fixture.proxy.calls(), 2);

    // A verifier that had not seen the token refuses it at once.
    let fresh = fixture.verifier_with(|builder| builder);
    assert_eq!(
        fresh.verify(&token).await,
        Err(Denial::InvalidToken("unknown, expired or revoked"))
    );

    // A tighter bound is a configuration away.
    let tight = fixture.verifier_with(|builder| builder.max_ttl(Duration::from_secs(1)));
    let other = fixture.worker_token("files:read").await;
    tight.verify(&other).await.unwrap();
    fixture.revoke(&other).await;
    tight.verify(&other).await.unwrap();
    fixture.clock.advance(Duration::from_secs(1));
    assert!(matches!(tight.verify(&other).await, Err(Denial::InvalidToken(_))));
}

#[tokio::test]
async fn repeated_calls_cost_one_introspection_and_concurrent_ones_are_coalesced() {
    let fixture = Fixture::start().await;
    let token = fixture.worker_token("files:read").await;
    for _ in 0..20 {
        assert_eq!(fixture.bearer("GET", "/v1/files", &token).await.status, 200);
    }
    assert_eq!(fixture.proxy.calls(), 1);
    assert_eq!(fixture.verifier.cached_answers(), 1);

    // No positive caching at all, so only single flight can keep the count at one: 100 callers of one
    // token while its introspection is held at the proxy.
    let uncached = fixture.verifier_with(|builder| builder.max_ttl(Duration::ZERO));
    let other = fixture.worker_token("files:read").await;
    let before = fixture.proxy.calls();
    fixture.proxy.gate.send_replace(false);
    let started = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (uncached, other, started) = (uncached.clone(), other.clone(), Arc::clone(&started));
            tokio::spawn(async move {
                // This task's first poll registers it with the flight (this test's runtime has one thread).
                started.fetch_add(1, Ordering::SeqCst);
                uncached.verify(&other).await
            })
        })
        .collect();
    while started.load(Ordering::SeqCst) < 100 || fixture.proxy.calls() < before + 1 {
        tokio::task::yield_now().await;
    }
    fixture.proxy.gate.send_replace(true);
    for task in tasks {
        let principal = task.await.unwrap().unwrap();
        assert_eq!(principal.scopes, ["files:read"]);
    }
    assert_eq!(
        fixture.proxy.calls(),
        before + 1,
        "one introspection for 100 concurrent callers"
    );
    uncached.verify(&other).await.unwrap();
    assert_eq!(
        fixture.proxy.calls(),
        before + 2,
        "nothing cached: the next call asks again"
    );
}

#[tokio::test]
async fn introspection_failures_fail_closed_with_503() {
    let mut fixture = Fixture::start().await;
    let token = fixture.worker_token("files:read").await;
    let cached = fixture.worker_token("files:read").await;
    assert_eq!(fixture.bearer("GET", "/v1/files", &cached).await.status, 200);

    // keyless answers an error.
    fixture.proxy.outage.store(true, Ordering::SeqCst);
    fixture.bearer("GET", "/v1/files", &token).await.assert_unavailable();
    // Failures are not cached: each request asks again.
    fixture.bearer("GET", "/v1/files", &token).await.assert_unavailable();
    assert_eq!(fixture.proxy.calls(), 3);
    // A token checked before the outage is served until its bound, then refused too.
    assert_eq!(fixture.bearer("GET", "/v1/files", &cached).await.status, 200);
    fixture.clock.advance(Duration::from_secs(10));
    fixture.bearer("GET", "/v1/files", &cached).await.assert_unavailable();
    fixture.proxy.outage.store(false, Ordering::SeqCst);
    assert_eq!(fixture.bearer("GET", "/v1/files", &token).await.status, 200);

    // The resource server's own credential lacks `oauth:introspect`: keyless says 403, we say 503.
    let unprivileged = Api::new(
        &fixture.keyless.base_url,
        Credential::Bearer(fixture.worker_token("workspace:developer").await.into()),
    )
    .unwrap();
    let denial = Verifier::new(unprivileged).verify(&token).await.unwrap_err();
    assert!(
        matches!(&denial, Denial::Unavailable(cause) if cause.contains("403") && cause.contains("insufficient_scope")),
        "{denial:?}"
    );

    // keyless is gone: connection refused.
    let direct = Api::new(
        &fixture.keyless.base_url,
        Credential::Bearer(fixture.introspection_token.clone().into()),
    )
    .unwrap();
    let direct = Verifier::new(direct);
    fixture.keyless.stop().await;
    let denial = direct.verify(&token).await.unwrap_err();
    assert!(matches!(denial, Denial::Unavailable(_)), "{denial:?}");
    assert_eq!(denial.status(), 503);
}

#[tokio::test]
async fn a_principal_extractor_without_the_layer_fails_closed() {
    let router = Router::new().route(
        "/",
        get(|principal: Principal| async move { principal.organization_id }),
    );
    let (url, _task) = serve(router).await;
    let response = reqwest::Client::new()
        .get(&url)
        .header("authorization", format!("Bearer keyless_at_{}", "A".repeat(49)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "server_error");
}

/// The resource server's own credential from the credential chain (federation from the environment,
/// an identity-token file): after its token is revoked, the next introspection answers 401, the cache
/// drops the token, exchanges the (rewritten) identity token again, and the call succeeds on the retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refreshing_credential_recovers_from_a_revoked_token_with_one_retry() {
    let mut fixture = Fixture::start().await;
    let dir = tempfile::tempdir().unwrap();
    let identity_file = dir.path().join("identity-token");
    std::fs::write(&identity_file, format!("{}\n", fixture.assertion("orders-api"))).unwrap();
    let env = keyless_client::Environment::from_vars([
        ("KEYLESS_BASE_URL", fixture.keyless.base_url.as_str()),
        ("KEYLESS_FEDERATION_RULE_ID", fixture.orders_api_rule_id.as_str()),
        ("KEYLESS_ORGANIZATION_ID", fixture.keyless.organization_id.as_str()),
        ("KEYLESS_SERVICE_ACCOUNT_ID", fixture.orders_api_id.as_str()),
        ("KEYLESS_IDENTITY_TOKEN_FILE", identity_file.to_str().unwrap()),
        ("KEYLESS_CONFIG_DIR", dir.path().join("config").to_str().unwrap()),
    ]);
    let resolution =
        keyless_client::resolve(&keyless_client::Explicit::default(), &env, Arc::new(SystemClock)).unwrap();
    assert_eq!(resolution.winner().unwrap().name, "federation environment");
    let Credential::Refreshing(cache) = resolution.credential.clone() else {
        panic!("federation gives a refreshing credential");
    };
    let api = Api::new(&resolution.base_url, resolution.credential).unwrap();
    let worker_token = fixture.worker_token("files:read").await;
    let form = [("token", worker_token.as_str())];
    let introspect = || api.post_form::<Value>(&["v1", "oauth", "introspect"], &form);

    assert_eq!(introspect().await.unwrap()["active"], true);
    let first = cache.token().await.unwrap();
    fixture.revoke(secrecy::ExposeSecret::expose_secret(&first.token)).await;
    // The identity token's jti was used by the first exchange; the platform rewrites the file.
    std::fs::write(&identity_file, fixture.assertion("orders-api")).unwrap();

    assert_eq!(
        introspect().await.unwrap()["active"],
        true,
        "the retry after the 401 succeeds"
    );
    let second = cache.token().await.unwrap();
    assert_ne!(
        secrecy::ExposeSecret::expose_secret(&first.token),
        secrecy::ExposeSecret::expose_secret(&second.token),
        "a new token was exchanged"
    );
    // Without the rewrite, the replayed identity token is refused and the error says why.
    fixture
        .revoke(secrecy::ExposeSecret::expose_secret(&second.token))
        .await;
    let error = introspect().await.unwrap_err();
    assert_eq!(error.api().unwrap().code.as_deref(), Some("jti_reused"), "{error}");
    fixture.keyless.stop().await;
}
