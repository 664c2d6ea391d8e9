//! `OidcIssuer`: a real OIDC issuer on `127.0.0.1:0` (axum) serving a discovery document and a JWKS,
//! signing tokens with `keyless_jose::SigningKey`s, for any test that needs an identity provider.
//!
//! ```ignore
//! let oidc = OidcIssuer::start().await;           // RS256 current key (+ an ES256 key published)
//! let token = oidc.mint(&json!({"iss": oidc.issuer_url(), "sub": "x", "iat": now, "exp": now + 300}));
//! let es = oidc.mint_with(Algorithm::Es256, &claims);
//! oidc.rotate();                                   // new current key, old ones stay published
//! oidc.set_outage(true);                           // both paths answer 503
//! assert_eq!(oidc.jwks_fetches(), 1);
//! ```
//!
//! Paths: `GET /.well-known/openid-configuration` (`issuer`, `jwks_uri`, …) and `GET /jwks`.
//! Knobs for failure tests: [`OidcIssuer::set_outage`], [`OidcIssuer::set_hang`] (accepts, never
//! answers), [`OidcIssuer::set_cache_control`], [`OidcIssuer::set_discovery_issuer`] (another `issuer`
//! in the discovery document), [`OidcIssuer::set_jwks_body`] (serve these bytes as the JWKS).
//! The server stops when the `OidcIssuer` is dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use keyless_jose::{Algorithm, SigningKey};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[derive(Default)]
struct Knobs {
    outage: bool,
    hang: bool,
    cache_control: Option<String>,
    discovery_issuer: Option<String>,
    jwks_body: Option<Vec<u8>>,
}

struct Shared {
    issuer_url: String,
    /// Published keys, oldest first.
    keys: Mutex<Vec<Arc<SigningKey>>>,
    /// The key `mint` signs with.
    current: Mutex<Arc<SigningKey>>,
    knobs: Mutex<Knobs>,
    jwks_fetches: AtomicU64,
    discovery_fetches: AtomicU64,
}

/// A running OIDC issuer on loopback.
pub(crate) struct OidcIssuer {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for OidcIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl OidcIssuer {
    /// Starts an issuer whose current key is RS256; an ES256 key is published too.
    pub(crate) async fn start() -> OidcIssuer {
        OidcIssuer::start_with(Algorithm::Rs256).await
    }

    /// Starts an issuer whose current key signs with `alg` (an ES256 key is published too).
    pub(crate) async fn start_with(alg: Algorithm) -> OidcIssuer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer_url = format!("http://{}", listener.local_addr().unwrap());
        let current = Arc::new(SigningKey::generate(alg).unwrap());
        let mut keys = vec![Arc::clone(&current)];
        if alg != Algorithm::Es256 {
            keys.push(Arc::new(SigningKey::generate(Algorithm::Es256).unwrap()));
        }
        let shared = Arc::new(Shared {
            issuer_url,
            keys: Mutex::new(keys),
            current: Mutex::new(current),
            knobs: Mutex::new(Knobs::default()),
            jwks_fetches: AtomicU64::new(0),
            discovery_fetches: AtomicU64::new(0),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        OidcIssuer { shared, task }
    }

    /// The issuer URL (`http://127.0.0.1:PORT`, no trailing slash): what `iss` carries.
    pub(crate) fn issuer_url(&self) -> String {
        self.shared.issuer_url.clone()
    }

    /// The JWKS URL (for `explicit_url` sources).
    pub(crate) fn jwks_url(&self) -> String {
        format!("{}/jwks", self.shared.issuer_url)
    }

    /// The `kid` of the current key.
    pub(crate) fn current_kid(&self) -> String {
        self.shared.current.lock().unwrap().kid().to_owned()
    }

    /// The published JWKS document (what `/jwks` serves when no body override is set).
    pub(crate) fn public_jwks(&self) -> Value {
        let keys = self.shared.keys.lock().unwrap();
        json!({ "keys": keys.iter().map(|key| key.public_jwk()).collect::<Vec<_>>() })
    }

    /// Signs `claims` (a JSON object) with the current key: header `{alg, kid, typ: JWT}`.
    pub(crate) fn mint(&self, claims: &Value) -> String {
        let key = Arc::clone(&self.shared.current.lock().unwrap());
        key.sign_jwt(claims.as_object().unwrap()).unwrap()
    }

    /// Signs `claims` with the newest published key of `alg`, generating and publishing one when
    /// there is none (which changes the published JWKS).
    pub(crate) fn mint_with(&self, alg: Algorithm, claims: &Value) -> String {
        let key = {
            let mut keys = self.shared.keys.lock().unwrap();
            match keys.iter().rev().find(|key| key.alg() == alg) {
                Some(key) => Arc::clone(key),
                None => {
                    let key = Arc::new(SigningKey::generate(alg).unwrap());
                    keys.push(Arc::clone(&key));
                    key
                }
            }
        };
        key.sign_jwt(claims.as_object().unwrap()).unwrap()
    }

    /// A new current key of the current key's algorithm, published; older keys stay published.
    /// Returns the new `kid`.
    pub(crate) fn rotate(&self) -> String {
        let alg = self.shared.current.lock().unwrap().alg();
        let key = Arc::new(SigningKey::generate(alg).unwrap());
        self.shared.keys.lock().unwrap().push(Arc::clone(&key));
        *self.shared.current.lock().unwrap() = Arc::clone(&key);
        key.kid().to_owned()
    }

    /// Like [`OidcIssuer::rotate`], but only the new key stays published.
    pub(crate) fn rotate_dropping_old(&self) -> String {
        let kid = self.rotate();
        let current = Arc::clone(&self.shared.current.lock().unwrap());
        *self.shared.keys.lock().unwrap() = vec![current];
        kid
    }

    /// While on, both paths answer `503 Service Unavailable`.
    pub(crate) fn set_outage(&self, on: bool) {
        self.shared.knobs.lock().unwrap().outage = on;
    }

    /// While on, both paths accept the request and never answer.
    pub(crate) fn set_hang(&self, on: bool) {
        self.shared.knobs.lock().unwrap().hang = on;
    }

    /// The `Cache-Control` header of the JWKS response (`None`: no header).
    pub(crate) fn set_cache_control(&self, value: Option<&str>) {
        self.shared.knobs.lock().unwrap().cache_control = value.map(str::to_owned);
    }

    /// The `issuer` the discovery document names (`None`: the issuer URL).
    pub(crate) fn set_discovery_issuer(&self, value: Option<&str>) {
        self.shared.knobs.lock().unwrap().discovery_issuer = value.map(str::to_owned);
    }

    /// Bytes served as the JWKS instead of the published keys (`None`: the published keys).
    pub(crate) fn set_jwks_body(&self, body: Option<Vec<u8>>) {
        self.shared.knobs.lock().unwrap().jwks_body = body;
    }

    /// How many times `/jwks` was requested.
    pub(crate) fn jwks_fetches(&self) -> u64 {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// How many times the discovery document was requested.
    pub(crate) fn discovery_fetches(&self) -> u64 {
        self.shared.discovery_fetches.load(Ordering::SeqCst)
    }
}

/// `Some(response)` when a knob overrides the normal answer (after waiting forever, for `hang`).
async fn failure(shared: &Shared) -> Option<Response> {
    let (outage, hang) = {
        let knobs = shared.knobs.lock().unwrap();
        (knobs.outage, knobs.hang)
    };
    if hang {
        std::future::pending::<()>().await;
    }
    outage.then(|| StatusCode::SERVICE_UNAVAILABLE.into_response())
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Response {
    shared.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    if let Some(response) = failure(&shared).await {
        return response;
    }
    let issuer = shared
        .knobs
        .lock()
        .unwrap()
        .discovery_issuer
        .clone()
        .unwrap_or_else(|| shared.issuer_url.clone());
    axum::Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{}/jwks", shared.issuer_url),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    }))
    .into_response()
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if let Some(response) = failure(&shared).await {
        return response;
    }
    let (cache_control, body) = {
        let knobs = shared.knobs.lock().unwrap();
        (knobs.cache_control.clone(), knobs.jwks_body.clone())
    };
    let body = body.unwrap_or_else(|| {
        let keys = shared.keys.lock().unwrap();
        serde_json::to_vec(&json!({ "keys": keys.iter().map(|key| key.public_jwk()).collect::<Vec<_>>() })).unwrap()
    });
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(value) = cache_control {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_str(&value).unwrap());
    }
    (headers, body).into_response()
}
