//! Identity-token sources against fakes shaped like the real providers: a loopback HTTP server that
//! checks requests the way GitHub's token service, the GCE metadata server and Azure IMDS do and
//! answers what they answer; token files rotated in place; commands that print, fail and hang.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyless_client::source::{IdentitySource, IdentityToken, SourceContext, detect};
use keyless_client::{ClientError, Environment};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

// ---------------------------------------------------------------------------------------------------
// Realistic tokens

fn b64(json: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).unwrap())
}

/// A JWT shaped like GitHub Actions' (header with `x5t` and `kid`, the full claim set; not signed
/// for real: the sources never verify).
fn github_jwt(aud: &str) -> String {
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5t": "ykNaY4qM_ta4k2TgZOCEYLkcYlA", "kid": "38826b17-6a30-5f9b-b169-8beb8202f723"});
    let claims = serde_json::json!({
        "jti": "f1a3b6e0-5d2c-4c1e-9c7e-2b8f0d6a4e31", "sub": "repo:acme/deploy:ref:refs/heads/main", "aud": aud,
        "ref": "refs/heads/main", "sha": "3f786850e387550fdab836ed7e6dc881de23001b", "repository": "acme/deploy",
        "repository_owner": "acme", "repository_id": "712345678", "repository_owner_id": "98765432",
        "actor": "octocat", "actor_id": "583231", "run_id": "9876543210", "run_number": "42", "run_attempt": "1",
        "workflow": "deploy", "workflow_ref": "acme/deploy/.github/workflows/deploy.yml@refs/heads/main",
        "job_workflow_ref": "acme/deploy/.github/workflows/deploy.yml@refs/heads/main", "event_name": "push",
        "ref_type": "branch", "ref_protected": "true", "environment": "", "runner_environment": "github-hosted",
        "head_ref": "", "base_ref": "", "iss": "https://token.actions.githubusercontent.com",
        "iat": 1_767_225_600, "nbf": 1_767_225_000, "exp": 1_767_225_900
    });
    format!(
        "{}.{}.{}",
        b64(&header),
        b64(&claims),
        URL_SAFE_NO_PAD.encode([0x5a_u8; 256])
    )
}

/// A JWT shaped like the GCE metadata server's `format=full` identity token.
fn gcp_jwt(aud: &str) -> String {
    let header = serde_json::json!({"alg": "RS256", "kid": "a5b2c7d9e1f3", "typ": "JWT"});
    let claims = serde_json::json!({
        "aud": aud, "azp": "117349038492844109235", "email": "runner@acme-prod.iam.gserviceaccount.com",
        "email_verified": true, "exp": 1_767_229_200, "iat": 1_767_225_600, "iss": "https://accounts.google.com",
        "sub": "117349038492844109235",
        "google": {"compute_engine": {"instance_id": "4963205463381283042", "instance_name": "builder-1",
            "project_id": "acme-prod", "project_number": 123_456_789_012_u64, "zone": "europe-west1-b"}}
    });
    format!(
        "{}.{}.{}",
        b64(&header),
        b64(&claims),
        URL_SAFE_NO_PAD.encode([0x47_u8; 256])
    )
}

/// A JWT shaped like an Entra (v1) managed-identity access token.
fn azure_jwt(aud: &str) -> String {
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5t": "L1KfKFI_jnXbwWc22xZxw1sUHH0", "kid": "L1KfKFI_jnXbwWc22xZxw1sUHH0"});
    let claims = serde_json::json!({
        "aud": aud, "iss": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
        "iat": 1_767_225_600, "nbf": 1_767_225_600, "exp": 1_767_312_300,
        "appid": "8c3a1b52-2f4e-4d7a-9b61-0e5f3c2d1a90", "idtyp": "app", "oid": "5e3f8a1c-7b2d-4e6f-9a0b-1c2d3e4f5a6b",
        "sub": "5e3f8a1c-7b2d-4e6f-9a0b-1c2d3e4f5a6b", "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "ver": "1.0",
        "xms_mirid": "/subscriptions/0000/resourcegroups/acme/providers/Microsoft.Compute/virtualMachines/builder-1"
    });
    format!(
        "{}.{}.{}",
        b64(&header),
        b64(&claims),
        URL_SAFE_NO_PAD.encode([0x41_u8; 256])
    )
}

/// A JWT shaped like a projected Kubernetes service-account token (no `typ`, array `aud`).
fn kubernetes_jwt() -> String {
    let header = serde_json::json!({"alg": "RS256", "kid": "3xtJk0q2sR9uVwYz"});
    let claims = serde_json::json!({
        "aud": ["https://keyless.example.com"], "exp": 1_767_229_200, "iat": 1_767_225_600, "nbf": 1_767_225_600,
        "iss": "https://kubernetes.default.svc.cluster.local", "sub": "system:serviceaccount:ci:builder",
        "kubernetes.io": {"namespace": "ci", "pod": {"name": "builder-7d9f", "uid": "0c5e"},
            "serviceaccount": {"name": "builder", "uid": "9a1b"}, "warnafter": 1_767_228_000}
    });
    format!(
        "{}.{}.{}",
        b64(&header),
        b64(&claims),
        URL_SAFE_NO_PAD.encode([0x4b_u8; 256])
    )
}

/// Asserts that nothing of `token` (nor its last part alone) shows in `text`; an empty `token` checks nothing.
fn assert_no_token(text: &str, token: &str) {
    if token.is_empty() {
        return;
    }
    let signature = token.rsplit('.').next().unwrap();
    assert!(
        !text.contains(token) && !text.contains(signature),
        "leaks the token: {text}"
    );
}

/// The error of a fetch that must fail, checked to quote no token and to contain `expect`.
async fn fetch_err(source: &IdentitySource, ctx: &SourceContext, expect: &str, token: &str) -> ClientError {
    let err = source.fetch(ctx).await.expect_err("the fetch should fail");
    let message = format!("{err:#} / {err:?}");
    assert!(message.contains(expect), "{message:?} lacks {expect:?}");
    assert_no_token(&message, token);
    err
}

fn ctx(env: Environment, default_audience: Option<&str>) -> SourceContext {
    SourceContext::new(env, default_audience.map(str::to_owned)).unwrap()
}

const KEYLESS: &str = "https://keyless.example.com";

// ---------------------------------------------------------------------------------------------------
// A loopback HTTP/1.1 server answering from a closure

#[derive(Clone, Debug)]
struct Request {
    method: String,
    path: String,
    /// The raw query string, to check encoding and order exactly.
    raw_query: Option<String>,
    query: BTreeMap<String, String>,
    /// Header names lowercased.
    headers: BTreeMap<String, String>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
    fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
}

fn reply(status: u16, content_type: &'static str, body: impl Into<String>) -> Reply {
    Reply {
        status,
        headers: vec![("Content-Type", content_type)],
        body: body.into(),
    }
}

struct FakeServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl FakeServer {
    async fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let handler = Arc::new(handler);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (seen, handler) = (Arc::clone(&seen), Arc::clone(&handler));
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let request_line = lines.next_line().await.unwrap().unwrap();
                    let mut parts = request_line.split(' ');
                    let method = parts.next().unwrap().to_owned();
                    let target = parts.next().unwrap().to_owned();
                    let mut headers = BTreeMap::new();
                    while let Some(line) = lines.next_line().await.unwrap() {
                        if line.is_empty() {
                            break;
                        }
                        let (name, value) = line.split_once(':').unwrap();
                        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
                    }
                    let url = url::Url::parse(&format!("http://fake{target}")).unwrap();
                    let request = Request {
                        method,
                        path: url.path().to_owned(),
                        raw_query: url.query().map(str::to_owned),
                        query: url.query_pairs().into_owned().collect(),
                        headers,
                    };
                    seen.lock().unwrap().push(request.clone());
                    let reply = handler(&request);
                    let mut head = format!(
                        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                        reply.status,
                        reply.body.len()
                    );
                    for (name, value) in reply.headers {
                        head.push_str(&format!("{name}: {value}\r\n"));
                    }
                    head.push_str("\r\n");
                    write.write_all(head.as_bytes()).await.unwrap();
                    write.write_all(reply.body.as_bytes()).await.unwrap();
                    write.shutdown().await.unwrap();
                });
            }
        });
        Self { addr, requests }
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------------------------------
// GitHub Actions

const GITHUB_PATH: &str = "/_apis/distributedtask/hubs/build/plans/5c6d/jobs/7e8f/idtoken";
const GITHUB_REQUEST_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.runner-request-token";

/// GitHub's token service: the request token as bearer, the audience as a query parameter, `{"value": jwt}`.
async fn github_service() -> FakeServer {
    FakeServer::start(|request| {
        if request.header("authorization") != Some(&format!("Bearer {GITHUB_REQUEST_TOKEN}")) {
            return reply(401, "application/json", r#"{"message":"Unauthorized"}"#);
        }
        if request.method != "GET" || request.path != GITHUB_PATH || request.query("api-version") != Some("2.0") {
            return reply(404, "application/json", r#"{"message":"Not Found"}"#);
        }
        let aud = request.query("audience").unwrap_or("https://github.com/acme");
        reply(
            200,
            "application/json; charset=utf-8",
            serde_json::json!({"value": github_jwt(aud)}).to_string(),
        )
    })
    .await
}

fn github_env(server: &FakeServer, request_token: &str) -> Environment {
    Environment::from_vars([
        ("GITHUB_ACTIONS", "true"),
        (
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            server.url(&format!("{GITHUB_PATH}?api-version=2.0")).as_str(),
        ),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", request_token),
    ])
}

fn claims(token: &IdentityToken) -> serde_json::Value {
    let payload = token.expose_secret().split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn github_actions_asks_for_the_audience_with_the_request_bearer() {
    let server = github_service().await;
    let ctx = ctx(github_env(&server, GITHUB_REQUEST_TOKEN), Some(KEYLESS));

    let source = IdentitySource::GithubActions {
        audience: Some("api://keyless prod".to_owned()),
    };
    let token = source.fetch(&ctx).await.unwrap();
    assert_eq!(claims(&token)["aud"], "api://keyless prod");
    assert_eq!(claims(&token)["sub"], "repo:acme/deploy:ref:refs/heads/main");
    let request = &server.requests()[0];
    // Appended to the existing query with `&`, encoded.
    assert_eq!(
        request.raw_query.as_deref(),
        Some("api-version=2.0&audience=api%3A%2F%2Fkeyless+prod")
    );

    // Without its own audience the caller's default applies.
    let token = IdentitySource::GithubActions { audience: None }
        .fetch(&ctx)
        .await
        .unwrap();
    assert_eq!(claims(&token)["aud"], KEYLESS);
    assert_no_token(&format!("{token:?}"), token.expose_secret());
}

#[tokio::test]
async fn github_actions_url_without_a_query_gets_a_question_mark() {
    let server = FakeServer::start(|request| {
        reply(
            200,
            "application/json",
            serde_json::json!({"value": github_jwt(request.query("audience").unwrap())}).to_string(),
        )
    })
    .await;
    let env = Environment::from_vars([
        ("ACTIONS_ID_TOKEN_REQUEST_URL", server.url("/idtoken").as_str()),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", GITHUB_REQUEST_TOKEN),
    ]);
    IdentitySource::GithubActions { audience: None }
        .fetch(&ctx(env, Some(KEYLESS)))
        .await
        .unwrap();
    assert_eq!(
        server.requests()[0].raw_query.as_deref(),
        Some("audience=https%3A%2F%2Fkeyless.example.com")
    );
}

#[tokio::test]
async fn github_actions_refusals_are_reported() {
    let server = github_service().await;
    let source = IdentitySource::GithubActions { audience: None };
    let err = fetch_err(
        &source,
        &ctx(github_env(&server, "expired-request-token"), Some(KEYLESS)),
        "HTTP 401",
        "expired-request-token",
    )
    .await;
    assert_eq!(err.api().unwrap().status, 401);
    assert_eq!(err.api().unwrap().body["message"], "Unauthorized");

    // A job without `permissions: id-token: write` has neither variable.
    let env = Environment::from_vars([("GITHUB_ACTIONS", "true")]);
    let err = fetch_err(&source, &ctx(env, None), "permissions: id-token: write", "").await;
    assert!(matches!(err, ClientError::Config(_)));
    assert!(
        err.to_string()
            .contains("ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN not set"),
        "{err}"
    );

    // An answer without `value`.
    let server = FakeServer::start(|_| reply(200, "application/json", r#"{"count": 1}"#)).await;
    let err = fetch_err(
        &source,
        &ctx(github_env(&server, GITHUB_REQUEST_TOKEN), None),
        "no string field \"value\"",
        "",
    )
    .await;
    assert!(matches!(err, ClientError::Decode(_)));
}

// ---------------------------------------------------------------------------------------------------
// Google Cloud metadata server

const GCP_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/identity";

/// The metadata server: `Metadata-Flavor: Google` or 403 (its HTML page), an audience or 400.
async fn gcp_metadata_server() -> FakeServer {
    FakeServer::start(|request| {
        if request.header("metadata-flavor") != Some("Google") {
            return reply(
                403,
                "text/html; charset=UTF-8",
                "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 403 (Forbidden)!!1</title>\n  <p><b>403.</b> <ins>That’s an error.</ins>\n  <p>Your client does not have permission to get URL <code>/computeMetadata/v1/instance/service-accounts/default/identity</code> from this server. Missing Metadata-Flavor:Google header. <ins>That’s all we know.</ins>\n",
            );
        }
        if request.path != GCP_PATH {
            return reply(404, "text/html", "Not Found");
        }
        let Some(audience) = request.query("audience") else {
            return reply(400, "text/html", "non-empty audience parameter required");
        };
        let mut answer = reply(200, "text/html", gcp_jwt(audience));
        answer.headers.push(("Metadata-Flavor", "Google"));
        answer
    })
    .await
}

#[tokio::test]
async fn gcp_metadata_asks_for_a_full_format_token_with_the_flavor_header() {
    let server = gcp_metadata_server().await;
    let env = Environment::from_vars([("GCE_METADATA_HOST", server.addr.to_string())]);
    let token = IdentitySource::GcpMetadata { audience: None }
        .fetch(&ctx(env.clone(), Some(KEYLESS)))
        .await
        .unwrap();
    let claims = claims(&token);
    assert_eq!(claims["aud"], KEYLESS);
    assert_eq!(claims["google"]["compute_engine"]["project_id"], "acme-prod");
    let request = &server.requests()[0];
    assert_eq!((request.method.as_str(), request.path.as_str()), ("GET", GCP_PATH));
    assert_eq!(request.query("audience"), Some(KEYLESS));
    assert_eq!(request.query("format"), Some("full"));
    assert_eq!(request.header("metadata-flavor"), Some("Google"));

    // The same endpoint asked without the header (a `url` source) is refused, and the refusal reported.
    let bare = IdentitySource::Url {
        url: server.url(&format!("{GCP_PATH}?audience=x&format=full")),
        headers: BTreeMap::new(),
        json_field: None,
    };
    let err = fetch_err(&bare, &ctx(env.clone(), None), "HTTP 403", "").await;
    assert!(
        err.api()
            .unwrap()
            .message
            .as_deref()
            .unwrap()
            .contains("Missing Metadata-Flavor:Google header")
    );

    // An audience is required; the metadata server is not even asked without one.
    let n_requests = server.requests().len();
    fetch_err(
        &IdentitySource::GcpMetadata { audience: None },
        &ctx(env, None),
        "needs an audience",
        "",
    )
    .await;
    assert_eq!(server.requests().len(), n_requests);
}

#[tokio::test]
async fn gce_metadata_host_must_be_a_host_and_port() {
    let env = Environment::from_vars([("GCE_METADATA_HOST", "127.0.0.1:1/evil?")]);
    let source = IdentitySource::GcpMetadata {
        audience: Some(KEYLESS.to_owned()),
    };
    fetch_err(&source, &ctx(env, None), "is not a host[:port]", "").await;
}

// ---------------------------------------------------------------------------------------------------
// Azure

const IMDS_PATH: &str = "/metadata/identity/oauth2/token";

/// IMDS: `Metadata: true` or 400 with its OAuth-shaped error; the answer's `access_token` is the JWT.
async fn azure_imds() -> FakeServer {
    FakeServer::start(|request| {
        if request.header("metadata") != Some("true") {
            return reply(
                400,
                "application/json; charset=utf-8",
                r#"{"error":"invalid_request","error_description":"Required metadata header not specified"}"#,
            );
        }
        if request.path != IMDS_PATH || request.query("api-version") != Some("2018-02-01") {
            return reply(
                400,
                "application/json",
                r#"{"error":"invalid_request","error_description":"Invalid API version"}"#,
            );
        }
        let Some(resource) = request.query("resource") else {
            return reply(
                400,
                "application/json",
                r#"{"error":"invalid_request","error_description":"Required query variable 'resource' is missing"}"#,
            );
        };
        let answer = serde_json::json!({
            "access_token": azure_jwt(resource),
            "client_id": request.query("client_id").unwrap_or("8c3a1b52-2f4e-4d7a-9b61-0e5f3c2d1a90"),
            "expires_in": "86399", "expires_on": "1767312300", "ext_expires_in": "86399",
            "not_before": "1767225600", "resource": resource, "token_type": "Bearer"
        });
        reply(200, "application/json; charset=utf-8", answer.to_string())
    })
    .await
}

#[tokio::test]
async fn azure_imds_asks_for_the_resource_with_the_metadata_header() {
    let server = azure_imds().await;
    let env = Environment::from_vars([("KEYLESS_AZURE_IMDS_ENDPOINT", server.url(IMDS_PATH))]);
    let source = IdentitySource::Azure {
        audience: Some("api://keyless".to_owned()),
        client_id: Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".to_owned()),
    };
    let token = source.fetch(&ctx(env.clone(), Some(KEYLESS))).await.unwrap();
    assert_eq!(claims(&token)["aud"], "api://keyless");
    assert_eq!(
        claims(&token)["iss"],
        "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/"
    );
    let request = &server.requests()[0];
    assert_eq!(request.path, IMDS_PATH);
    assert_eq!(
        request.raw_query.as_deref(),
        Some("api-version=2018-02-01&resource=api%3A%2F%2Fkeyless&client_id=0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    );
    assert_eq!(request.header("metadata"), Some("true"));

    // The default audience, and no client_id for the system-assigned identity.
    let source = IdentitySource::Azure {
        audience: None,
        client_id: None,
    };
    let token = source.fetch(&ctx(env.clone(), Some(KEYLESS))).await.unwrap();
    assert_eq!(claims(&token)["aud"], KEYLESS);
    assert_eq!(server.requests()[1].query("client_id"), None);

    // Without the header IMDS refuses with an OAuth-shaped error, decoded.
    let bare = IdentitySource::Url {
        url: server.url(&format!("{IMDS_PATH}?api-version=2018-02-01&resource=x")),
        headers: BTreeMap::new(),
        json_field: Some("access_token".to_owned()),
    };
    let err = fetch_err(&bare, &ctx(env, None), "Required metadata header not specified", "").await;
    let api = err.api().unwrap();
    assert_eq!((api.status, api.kind.as_deref()), (400, Some("invalid_request")));
}

#[tokio::test]
async fn azure_workload_identity_reads_the_federated_token_file_not_imds() {
    let server = azure_imds().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("azure-identity-token");
    let token_text = kubernetes_jwt();
    std::fs::write(&path, format!("{token_text}\n")).unwrap();
    let env = Environment::from_vars([
        ("AZURE_FEDERATED_TOKEN_FILE", path.to_str().unwrap()),
        ("KEYLESS_AZURE_IMDS_ENDPOINT", server.url(IMDS_PATH).as_str()),
    ]);
    let source = IdentitySource::Azure {
        audience: None,
        client_id: None,
    };
    let token = source.fetch(&ctx(env, Some(KEYLESS))).await.unwrap();
    assert_eq!(token.expose_secret(), token_text);
    assert!(server.requests().is_empty());
}

// ---------------------------------------------------------------------------------------------------
// URL

#[tokio::test]
async fn url_sends_its_headers_and_reads_the_json_field_or_the_whole_body() {
    let token_text = gcp_jwt(KEYLESS);
    let answer = token_text.clone();
    let server = FakeServer::start(move |request| {
        if request.header("x-vault-request") != Some("true") || request.header("x-team") != Some("payments") {
            return reply(403, "application/json", r#"{"errors":["permission denied"]}"#);
        }
        match request.path.as_str() {
            "/v1/identity/oidc/token/keyless" => reply(
                200,
                "application/json",
                serde_json::json!({"data": {}, "token": answer}).to_string(),
            ),
            _ => reply(200, "text/plain", format!("{answer}\n")),
        }
    })
    .await;
    let headers: BTreeMap<String, String> = [("X-Vault-Request", "true"), ("X-Team", "payments")]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let ctx = ctx(Environment::default(), None);
    let json = IdentitySource::Url {
        url: server.url("/v1/identity/oidc/token/keyless"),
        headers: headers.clone(),
        json_field: Some("token".to_owned()),
    };
    assert_eq!(json.fetch(&ctx).await.unwrap().expose_secret(), token_text);
    let text = IdentitySource::Url {
        url: server.url("/token"),
        headers: headers.clone(),
        json_field: None,
    };
    assert_eq!(text.fetch(&ctx).await.unwrap().expose_secret(), token_text);

    let missing_field = IdentitySource::Url {
        url: server.url("/v1/identity/oidc/token/keyless"),
        headers: headers.clone(),
        json_field: Some("id_token".to_owned()),
    };
    fetch_err(&missing_field, &ctx, "no string field \"id_token\"", &token_text).await;
    // The plain body asked as JSON: the decoding error quotes nothing of it.
    let not_json = IdentitySource::Url {
        url: server.url("/token"),
        headers,
        json_field: Some("token".to_owned()),
    };
    fetch_err(&not_json, &ctx, "the answer is not JSON", &token_text).await;
    let no_headers = IdentitySource::Url {
        url: server.url("/token"),
        headers: BTreeMap::new(),
        json_field: None,
    };
    let err = fetch_err(&no_headers, &ctx, "HTTP 403", &token_text).await;
    assert_eq!(err.api().unwrap().status, 403);

    // Header values are checked, and never quoted.
    let bad_header = IdentitySource::Url {
        url: server.url("/token"),
        headers: [("Authorization".to_owned(), "Bearer s3cr3t\nX-Injected: 1".to_owned())].into(),
        json_field: None,
    };
    fetch_err(
        &bad_header,
        &ctx,
        "the value of header \"Authorization\" has characters",
        "s3cr3t",
    )
    .await;
    assert_eq!(server.requests().len(), 5);

    // Plain http only on loopback.
    let remote = IdentitySource::Url {
        url: "http://vault.internal/token".to_owned(),
        headers: BTreeMap::new(),
        json_field: None,
    };
    fetch_err(&remote, &ctx, "http is allowed only on loopback hosts", "").await;
}

#[tokio::test]
async fn url_answers_that_are_not_tokens_are_refused_without_quoting_them() {
    let server = FakeServer::start(|_| {
        reply(
            200,
            "text/html",
            "<html>captive portal: sign in at eyJhbGciOi.secret</html>",
        )
    })
    .await;
    let source = IdentitySource::Url {
        url: server.url("/token"),
        headers: BTreeMap::new(),
        json_field: None,
    };
    let err = fetch_err(
        &source,
        &ctx(Environment::default(), None),
        "is not a JWT",
        "captive portal",
    )
    .await;
    assert!(matches!(err, ClientError::Decode(_)));
}

// ---------------------------------------------------------------------------------------------------
// Files, Kubernetes, environment

#[tokio::test]
async fn a_token_file_is_read_again_at_every_fetch_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    let source: IdentitySource = serde_json::from_value(serde_json::json!({"source": "file", "path": path})).unwrap();
    let ctx = ctx(Environment::default(), None);

    let first = github_jwt("first");
    std::fs::write(&path, format!("{first}\n")).unwrap();
    assert_eq!(source.fetch(&ctx).await.unwrap().expose_secret(), first);
    // The kubelet rotates by replacing the file; a plain rewrite must be seen too.
    let second = github_jwt("second");
    std::fs::write(&path, &second).unwrap();
    assert_eq!(source.fetch(&ctx).await.unwrap().expose_secret(), second);
    let third = github_jwt("third");
    let staged = dir.path().join("..data_tmp");
    std::fs::write(&staged, format!("  {third}\r\n")).unwrap();
    std::fs::rename(&staged, &path).unwrap();
    assert_eq!(source.fetch(&ctx).await.unwrap().expose_secret(), third);
}

#[tokio::test]
async fn token_file_errors_say_what_is_wrong_and_quote_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(Environment::default(), None);
    let file = |path: &Path| IdentitySource::File { path: path.to_owned() };

    let missing = dir.path().join("missing");
    let err = fetch_err(&file(&missing), &ctx, "does not exist", "").await;
    assert_eq!(err.to_string(), format!("file {}: does not exist", missing.display()));
    fetch_err(&file(dir.path()), &ctx, "is a directory", "").await;

    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    fetch_err(&file(&empty), &ctx, "the identity token is empty", "").await;

    // Something that is not a token (a JSON credential file by mistake) is refused without quoting it.
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, r#"{"token": "s3cr3t.value"}"#).unwrap();
    fetch_err(&file(&wrong), &ctx, "is not a JWT", "s3cr3t").await;

    let huge = dir.path().join("huge");
    std::fs::write(&huge, "a".repeat(100_000)).unwrap();
    fetch_err(&file(&huge), &ctx, "is larger than 65536 bytes", "").await;

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let unreadable = dir.path().join("unreadable");
        std::fs::write(&unreadable, github_jwt("x")).unwrap();
        std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
        // root reads anything: the check only means something for other users.
        if std::fs::read(&unreadable).is_err() {
            fetch_err(&file(&unreadable), &ctx, "permission denied", "").await;
        }
    }
}

#[tokio::test]
async fn kubernetes_reads_the_configured_projected_token_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyless-token");
    let token_text = kubernetes_jwt();
    std::fs::write(&path, &token_text).unwrap();
    let ctx = ctx(Environment::default(), None);
    let source = IdentitySource::Kubernetes {
        path: Some(path.clone()),
    };
    assert_eq!(source.fetch(&ctx).await.unwrap().expose_secret(), token_text);
    assert_eq!(
        source.describe(),
        format!("Kubernetes service-account token {}", path.display())
    );

    let missing = IdentitySource::Kubernetes {
        path: Some(dir.path().join("nope")),
    };
    fetch_err(&missing, &ctx, "Kubernetes service-account token file", "").await;
}

#[tokio::test]
async fn env_reads_the_variable_at_fetch_time() {
    let token_text = github_jwt(KEYLESS);
    let source: IdentitySource = serde_json::from_str(r#"{"source": "env"}"#).unwrap();
    assert_eq!(
        source,
        IdentitySource::Env {
            var: "KEYLESS_IDENTITY_TOKEN".to_owned()
        }
    );
    let env = Environment::from_vars([("KEYLESS_IDENTITY_TOKEN", format!("{token_text}\n"))]);
    assert_eq!(source.fetch(&ctx(env, None)).await.unwrap().expose_secret(), token_text);

    let custom = IdentitySource::Env {
        var: "CI_JOB_JWT_V2".to_owned(),
    };
    let empty = Environment::from_vars([("CI_JOB_JWT_V2", "")]);
    fetch_err(
        &custom,
        &ctx(empty, None),
        "environment variable CI_JOB_JWT_V2 is not set",
        "",
    )
    .await;
    let garbage = Environment::from_vars([("CI_JOB_JWT_V2", "glpat-abcdef123456")]);
    fetch_err(&custom, &ctx(garbage, None), "is not a JWT", "glpat-abcdef123456").await;
}

// ---------------------------------------------------------------------------------------------------
// Executable

fn sh(script: &str, timeout_seconds: Option<u64>) -> IdentitySource {
    IdentitySource::Executable {
        command: vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()],
        timeout_seconds,
    }
}

#[tokio::test]
async fn executable_output_is_the_plain_token_or_googles_executable_response() {
    let with_audience = ctx(Environment::default(), Some(KEYLESS));
    let ctx = ctx(Environment::default(), None);
    let token_text = gcp_jwt(KEYLESS);

    let plain = sh(&format!("printf '%s\\n' '{token_text}'"), None);
    assert_eq!(plain.fetch(&ctx).await.unwrap().expose_secret(), token_text);

    for token_type in [
        "urn:ietf:params:oauth:token-type:jwt",
        "urn:ietf:params:oauth:token-type:id_token",
    ] {
        let response = serde_json::json!({
            "version": 1, "success": true, "token_type": token_type, "id_token": token_text, "expiration_time": 1_767_229_200
        });
        let json = sh(&format!("echo '{response}'"), Some(5));
        assert_eq!(json.fetch(&ctx).await.unwrap().expose_secret(), token_text);
    }

    // The helper learns the audience keyless expects.
    let audience_aware = sh(
        &format!(r#"test "$KEYLESS_IDENTITY_TOKEN_AUDIENCE" = '{KEYLESS}' && echo '{token_text}'"#),
        None,
    );
    assert_eq!(
        audience_aware.fetch(&with_audience).await.unwrap().expose_secret(),
        token_text
    );
    fetch_err(&audience_aware, &ctx, "exited with code 1", &token_text).await;

    let failure = sh(
        r#"echo '{"version": 1, "success": false, "code": "401", "message": "Caller not authorized."}'"#,
        None,
    );
    let err = fetch_err(&failure, &ctx, "reported failure (401): Caller not authorized.", "").await;
    assert!(matches!(err, ClientError::Config(_)));
}

#[tokio::test]
async fn executable_failures_quote_the_exit_code_and_first_stderr_line() {
    let ctx = ctx(Environment::default(), None);
    let token_text = github_jwt("leak");
    let failing = sh(
        &format!(
            "echo '{token_text}'; echo >&2; echo 'ERROR: (gcloud.auth) You do not currently have an active account selected.' >&2; echo second >&2; exit 3"
        ),
        None,
    );
    let err = fetch_err(
        &failing,
        &ctx,
        "exited with code 3: ERROR: (gcloud.auth) You do not currently have an active account selected.",
        &token_text,
    )
    .await;
    assert!(!err.to_string().contains("second"), "{err}");

    let missing = IdentitySource::Executable {
        command: vec!["/nonexistent/keyless-token-helper".to_owned()],
        timeout_seconds: None,
    };
    fetch_err(&missing, &ctx, "could not be started", "").await;

    let chatty = sh("head -c 200000 /dev/zero | tr '\\0' a", None);
    fetch_err(&chatty, &ctx, "printed more than 65536 bytes", "aaaaaaaaaaaaaaaa").await;

    let too_long = sh("true", Some(301));
    fetch_err(&too_long, &ctx, "timeout_seconds must be between 1 and 300", "").await;
    let empty = IdentitySource::Executable {
        command: vec![],
        timeout_seconds: None,
    };
    fetch_err(&empty, &ctx, "the command is empty", "").await;
}

#[tokio::test]
async fn executable_is_killed_promptly_on_timeout_with_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("sleep.pid");
    // `sh` starts `sleep` as its own child, so killing `sh` alone would leave `sleep` behind.
    let hanging = sh(&format!("sleep 5 & echo $! > {}; wait", pid_file.display()), Some(1));
    let started = Instant::now();
    fetch_err(
        &hanging,
        &ctx(Environment::default(), None),
        "timed out after 1 s and was killed",
        "",
    )
    .await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");

    #[cfg(target_os = "linux")]
    {
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        // Gone, or a zombie waiting for its new parent to reap it: not sleeping any more. SIGKILL is
        // delivered at once but the process may take a moment to die, so look for up to 2 s (the
        // sleep itself would live 5 s).
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
            let state = stat
                .rsplit(')')
                .next()
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned();
            if state == "Z" || state == "X" {
                break;
            }
            assert!(Instant::now() < deadline, "sleep is still alive: {stat}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Detection and `auto`

fn check_detect(vars: &[(&str, &str)], expect: Option<IdentitySource>, reason_has: &str) {
    let detection = detect(&Environment::from_vars(vars.iter().copied()));
    assert_eq!(detection.source, expect, "{vars:?}: {}", detection.reason);
    assert!(
        detection.reason.contains(reason_has),
        "{vars:?}: {:?} lacks {reason_has:?}",
        detection.reason
    );
}

#[test]
fn detect_finds_each_environment_in_order() {
    let github = [
        ("GITHUB_ACTIONS", "true"),
        (
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "https://pipelines.actions.githubusercontent.com/x/idtoken?api-version=2.0",
        ),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "t"),
    ];
    check_detect(
        &[
            ("KEYLESS_IDENTITY_TOKEN_FILE", "/var/run/secrets/tokens/keyless"),
            ("KEYLESS_IDENTITY_TOKEN", "x"),
        ],
        Some(IdentitySource::File {
            path: "/var/run/secrets/tokens/keyless".into(),
        }),
        "KEYLESS_IDENTITY_TOKEN_FILE is set",
    );
    check_detect(
        &[("KEYLESS_IDENTITY_TOKEN", "x"), github[1], github[2]],
        Some(IdentitySource::Env {
            var: "KEYLESS_IDENTITY_TOKEN".to_owned(),
        }),
        "KEYLESS_IDENTITY_TOKEN is set",
    );
    check_detect(
        &github,
        Some(IdentitySource::GithubActions { audience: None }),
        "GitHub Actions OIDC",
    );
    check_detect(
        &[
            (
                "AZURE_FEDERATED_TOKEN_FILE",
                "/var/run/secrets/azure/tokens/azure-identity-token",
            ),
            ("AZURE_CLIENT_ID", "c"),
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
        ],
        Some(IdentitySource::Azure {
            audience: None,
            client_id: None,
        }),
        "AKS workload identity",
    );
    check_detect(
        &[("GCE_METADATA_HOST", "169.254.169.254")],
        Some(IdentitySource::GcpMetadata { audience: None }),
        "GCE_METADATA_HOST is set",
    );
    check_detect(
        &[("K_SERVICE", "billing-api"), ("GOOGLE_CLOUD_PROJECT", "acme")],
        Some(IdentitySource::GcpMetadata { audience: None }),
        "K_SERVICE is set",
    );
    check_detect(
        &[("FUNCTION_TARGET", "handler")],
        Some(IdentitySource::GcpMetadata { audience: None }),
        "FUNCTION_TARGET is set",
    );
    // A GitHub job without `id-token: write` falls through, and says why.
    check_detect(
        &[("GITHUB_ACTIONS", "true"), ("K_SERVICE", "x")],
        Some(IdentitySource::GcpMetadata { audience: None }),
        "the job needs `permissions: id-token: write`",
    );
}

#[test]
fn detect_with_nothing_lists_what_it_checked() {
    let detection = detect(&Environment::from_vars([("GITHUB_ACTIONS", "true"), ("HOME", "/root")]));
    // The machine running the test may itself be a Compute Engine VM.
    if detection.source == Some(IdentitySource::GcpMetadata { audience: None }) {
        assert!(
            detection.reason.contains("Google Compute Engine"),
            "{}",
            detection.reason
        );
        return;
    }
    assert_eq!(detection.source, None);
    for checked in [
        "no identity token source found",
        "KEYLESS_IDENTITY_TOKEN_FILE",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "AZURE_FEDERATED_TOKEN_FILE",
        "KUBERNETES_SERVICE_HOST",
        "GCE_METADATA_HOST",
        "id-token: write",
    ] {
        assert!(
            detection.reason.contains(checked),
            "{:?} lacks {checked:?}",
            detection.reason
        );
    }
}

#[tokio::test]
async fn auto_delegates_to_the_detected_source_with_its_audience() {
    let server = github_service().await;
    let auto = IdentitySource::Auto {
        audience: Some("sts.keyless.internal".to_owned()),
    };
    let token = auto
        .fetch(&ctx(github_env(&server, GITHUB_REQUEST_TOKEN), Some(KEYLESS)))
        .await
        .unwrap();
    assert_eq!(claims(&token)["aud"], "sts.keyless.internal");
    let token = IdentitySource::Auto { audience: None }
        .fetch(&ctx(github_env(&server, GITHUB_REQUEST_TOKEN), Some(KEYLESS)))
        .await
        .unwrap();
    assert_eq!(claims(&token)["aud"], KEYLESS);

    let gcp = gcp_metadata_server().await;
    let env = Environment::from_vars([("GCE_METADATA_HOST", gcp.addr.to_string())]);
    let token = IdentitySource::Auto { audience: None }
        .fetch(&ctx(env, Some(KEYLESS)))
        .await
        .unwrap();
    assert_eq!(claims(&token)["google"]["compute_engine"]["zone"], "europe-west1-b");

    let nothing = Environment::from_vars([("GITHUB_ACTIONS", "true")]);
    let err = IdentitySource::Auto { audience: None }
        .fetch(&ctx(nothing, None))
        .await
        .unwrap_err();
    if !err.to_string().contains("Google Compute Engine") {
        assert!(err.to_string().contains("no identity token source found"), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------------
// The profile configuration's form

fn round_trip(source: IdentitySource, json: serde_json::Value) {
    assert_eq!(serde_json::to_value(&source).unwrap(), json, "{source:?}");
    assert_eq!(serde_json::from_value::<IdentitySource>(json).unwrap(), source);
}

#[test]
fn every_source_has_the_profile_config_form() {
    assert_eq!(
        serde_json::to_string(&IdentitySource::File {
            path: "/var/run/secrets/tokens/keyless".into()
        })
        .unwrap(),
        r#"{"source":"file","path":"/var/run/secrets/tokens/keyless"}"#
    );
    round_trip(
        IdentitySource::File { path: "/t".into() },
        serde_json::json!({"source": "file", "path": "/t"}),
    );
    round_trip(
        IdentitySource::Env {
            var: "CI_JOB_JWT".into(),
        },
        serde_json::json!({"source": "env", "var": "CI_JOB_JWT"}),
    );
    round_trip(
        IdentitySource::Executable {
            command: vec!["gcloud".into(), "auth".into(), "print-identity-token".into()],
            timeout_seconds: Some(10),
        },
        serde_json::json!({"source": "executable", "command": ["gcloud", "auth", "print-identity-token"], "timeout_seconds": 10}),
    );
    round_trip(
        IdentitySource::Executable {
            command: vec!["helper".into()],
            timeout_seconds: None,
        },
        serde_json::json!({"source": "executable", "command": ["helper"]}),
    );
    round_trip(
        IdentitySource::Url {
            url: "https://vault/t".into(),
            headers: [("X-A".to_owned(), "1".to_owned())].into(),
            json_field: Some("token".into()),
        },
        serde_json::json!({"source": "url", "url": "https://vault/t", "headers": {"X-A": "1"}, "json_field": "token"}),
    );
    round_trip(
        IdentitySource::Url {
            url: "https://t".into(),
            headers: BTreeMap::new(),
            json_field: None,
        },
        serde_json::json!({"source": "url", "url": "https://t"}),
    );
    round_trip(
        IdentitySource::GithubActions {
            audience: Some(KEYLESS.into()),
        },
        serde_json::json!({"source": "github_actions", "audience": KEYLESS}),
    );
    round_trip(
        IdentitySource::GithubActions { audience: None },
        serde_json::json!({"source": "github_actions"}),
    );
    round_trip(
        IdentitySource::GcpMetadata {
            audience: Some("a".into()),
        },
        serde_json::json!({"source": "gcp_metadata", "audience": "a"}),
    );
    round_trip(
        IdentitySource::Azure {
            audience: Some("api://k".into()),
            client_id: Some("c".into()),
        },
        serde_json::json!({"source": "azure", "audience": "api://k", "client_id": "c"}),
    );
    round_trip(
        IdentitySource::Azure {
            audience: None,
            client_id: None,
        },
        serde_json::json!({"source": "azure"}),
    );
    round_trip(
        IdentitySource::Kubernetes {
            path: Some("/p".into()),
        },
        serde_json::json!({"source": "kubernetes", "path": "/p"}),
    );
    round_trip(
        IdentitySource::Kubernetes { path: None },
        serde_json::json!({"source": "kubernetes"}),
    );
    round_trip(
        IdentitySource::Auto { audience: None },
        serde_json::json!({"source": "auto"}),
    );
}

#[test]
fn unknown_sources_and_fields_are_refused() {
    for json in [
        r#"{"source": "file", "path": "/t", "format": "json"}"#,
        r#"{"source": "aws"}"#,
        r#"{"path": "/t"}"#,
        r#"{"source": "github_actions", "audiences": ["x"]}"#,
    ] {
        assert!(serde_json::from_str::<IdentitySource>(json).is_err(), "{json}");
    }
}

#[test]
fn descriptions_name_the_source_and_no_secret() {
    let check = |source: IdentitySource, expect: &str| assert_eq!(source.describe(), expect);
    check(
        IdentitySource::File {
            path: "/var/run/t".into(),
        },
        "file /var/run/t",
    );
    check(
        IdentitySource::Env {
            var: "KEYLESS_IDENTITY_TOKEN".into(),
        },
        "environment variable KEYLESS_IDENTITY_TOKEN",
    );
    check(
        IdentitySource::GithubActions {
            audience: Some(KEYLESS.into()),
        },
        "GitHub Actions OIDC (audience https://keyless.example.com)",
    );
    check(
        IdentitySource::GcpMetadata { audience: None },
        "Google Cloud metadata server (default audience)",
    );
    check(
        IdentitySource::Azure {
            audience: None,
            client_id: Some("c".into()),
        },
        "Azure managed identity (default audience), client ID c",
    );
    check(
        IdentitySource::Kubernetes { path: None },
        "Kubernetes service-account token /var/run/secrets/kubernetes.io/serviceaccount/token",
    );
    check(
        IdentitySource::Auto { audience: None },
        "auto-detected (default audience)",
    );
    check(
        IdentitySource::Url {
            url: "https://user:hunter2@vault/t?secret=s3".into(),
            headers: [("Authorization".to_owned(), "Bearer x".to_owned())].into(),
            json_field: None,
        },
        "URL https://user@vault/t",
    );
    check(
        IdentitySource::Executable {
            command: vec!["helper".into(), "--flag".into()],
            timeout_seconds: None,
        },
        "executable `helper --flag`",
    );
}
