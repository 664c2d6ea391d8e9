//! nginx `auth_request` in front of a real upstream, with keyless deciding: a real keyless server, a
//! real nginx process (its own prefix, temp paths, pid and logs in a temporary directory, on a free
//! loopback port) and a small upstream on loopback that records what reached it.
//!
//! nginx runs the configuration `docs/authorize.md` shows — the page's first `nginx` block, with only
//! its addresses replaced — so the page cannot drift from what is tested.
//!
//! The nginx binary is named by `KEYLESS_TEST_NGINX` (`.ci/run` installs nginx and sets it), else
//! `/usr/sbin/nginx` when present. Without one the tests say so and pass — except in CI (`CI` set),
//! where a missing nginx fails them instead of skipping them.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use keyless_server::config::RawRate;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::exchange::Env;
use crate::harness::{Db, databases};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The placeholders of the documented configuration, replaced by the test's addresses.
const DOC_KEYLESS: &str = "server keyless:8080;";
const DOC_UPSTREAM: &str = "server api:9000;";
const DOC_LISTEN: &str = "listen 80;";
/// The documented line that maps keyless's 429 and 503 back from nginx's 500.
const DOC_ERROR_PAGE: &str = "error_page 500 = @keyless_refused;";

fn nginx_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KEYLESS_TEST_NGINX") {
        let path = PathBuf::from(path);
        assert!(path.exists(), "KEYLESS_TEST_NGINX names {path:?}, which does not exist");
        return Some(path);
    }
    let debian = Path::new("/usr/sbin/nginx");
    if debian.exists() {
        return Some(debian.to_owned());
    }
    if std::env::var_os("CI").is_some() {
        panic!("KEYLESS_TEST_NGINX is not set in CI and /usr/sbin/nginx is missing: the nginx tests must run");
    }
    eprintln!("KEYLESS_TEST_NGINX is not set and /usr/sbin/nginx is missing: nginx auth_request is not exercised");
    None
}

/// The first ```` ```nginx ```` block of `docs/authorize.md`: `http`-level directives (upstreams and
/// the server).
fn documented_config() -> String {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/authorize.md")).unwrap();
    let (_, rest) = page
        .split_once("```nginx\n")
        .expect("docs/authorize.md has an nginx block");
    let (block, _) = rest.split_once("```").unwrap();
    for placeholder in [DOC_KEYLESS, DOC_UPSTREAM, DOC_LISTEN, DOC_ERROR_PAGE] {
        assert_eq!(
            block.matches(placeholder).count(),
            1,
            "the documented nginx block has `{placeholder}` exactly once"
        );
    }
    block.to_owned()
}

/// What the upstream received of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Path and query, as nginx sent them.
    target: String,
    /// The `keyless-*` headers.
    keyless: BTreeMap<String, String>,
    authorization: bool,
    api_key: bool,
    body: Vec<u8>,
}

/// The protected API: answers 200 to everything and records what it saw.
struct Upstream {
    address: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl Upstream {
    async fn start() -> Upstream {
        async fn record(State(seen): State<Arc<Mutex<Vec<Seen>>>>, request: Request) -> &'static str {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap().to_vec();
            let keyless = parts
                .headers
                .iter()
                .filter(|(name, _)| name.as_str().starts_with("keyless-"))
                .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap().to_owned()))
                .collect();
            seen.lock().unwrap().push(Seen {
                method: parts.method.as_str().to_owned(),
                target: parts.uri.to_string(),
                keyless,
                authorization: parts.headers.contains_key("authorization"),
                api_key: parts.headers.contains_key("x-api-key"),
                body,
            });
            "upstream"
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let router = Router::new().fallback(record).with_state(Arc::clone(&seen));
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Upstream { address, seen, task }
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().unwrap()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An nginx process of the test's own, stopped on drop.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Nginx {
    /// Runs `block` (`http`-level directives with the documented placeholders) with keyless at
    /// `keyless` and the upstream at `upstream`.
    async fn start(binary: &Path, block: &str, keyless: &str, upstream: &str) -> Nginx {
        for attempt in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            // When the tests run as root, nginx's workers run as `nobody`: let them reach their temp paths.
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            let prefix = dir.path().display().to_string();
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let server = block
                .replace(DOC_KEYLESS, &format!("server {keyless};"))
                .replace(DOC_UPSTREAM, &format!("server {upstream};"))
                .replace(DOC_LISTEN, &format!("listen 127.0.0.1:{port};"));
            // Everything nginx writes stays in the temporary directory, so it runs as any user.
            let config = format!(
                "pid {prefix}/nginx.pid;\n\
                 error_log {prefix}/error.log info;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n\
                 access_log off;\n\
                 client_body_temp_path {prefix}/client_body;\n\
                 proxy_temp_path {prefix}/proxy;\n\
                 fastcgi_temp_path {prefix}/fastcgi;\n\
                 uwsgi_temp_path {prefix}/uwsgi;\n\
                 scgi_temp_path {prefix}/scgi;\n\
                 {server}\n\
                 }}\n"
            );
            let conf = dir.path().join("nginx.conf");
            std::fs::write(&conf, config).unwrap();
            let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
            let child = Command::new(binary)
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&conf)
                .arg("-g")
                .arg("daemon off;")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap();
            let mut nginx = Nginx { child, dir, port };
            if nginx.ready().await {
                return nginx;
            }
            let logs = nginx.logs();
            // Another process may have taken the port between the probe and nginx's bind.
            assert!(
                attempt < 2 && logs.contains("Address already in use"),
                "nginx did not start:\n{logs}"
            );
        }
        unreachable!()
    }

    /// Waits until nginx accepts connections; false if it exited.
    async fn ready(&mut self) -> bool {
        for _ in 0..250 {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("nginx did not listen within 5 s:\n{}", self.logs());
    }

    fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("stderr:\n{}\nerror.log:\n{}", read("stderr.log"), read("error.log"))
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Sends `request_line` and `headers` as written — no client normalizes the target — and returns
    /// the status and the response headers (names in lower case).
    async fn raw(&self, request_line: &str, headers: &[(&str, &str)]) -> (u16, BTreeMap<String, String>) {
        let mut request = format!("{request_line}\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let port = self.port;
        let response = tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            let mut response = Vec::new();
            stream.read_to_end(&mut response).unwrap();
            String::from_utf8_lossy(&response).into_owned()
        })
        .await
        .unwrap();
        let (head, _) = response.split_once("\r\n\r\n").unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        (status, headers)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Already reaped: its ID may belong to another process by now.
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SIGTERM: the master stops its workers, then itself (SIGKILL would orphan the workers).
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response through nginx: its status and headers.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
}

impl Answer {
    async fn of(request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.unwrap();
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
        }
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |value| value.to_str().unwrap())
    }

    fn reason(&self) -> &str {
        self.header("keyless-reason")
    }
}

async fn created(env: &Env, path: &str, body: Value) -> String {
    let (status, object) = env.app.post_authed(&env.admin, path, &body).await;
    assert_eq!(status, 200, "POST {path}: {object}");
    object["id"].as_str().unwrap().to_owned()
}

/// A real exchange through `rule_id`: the service account's access token.
async fn access_token(env: &Env, rule_id: &str) -> String {
    let reply = env
        .exchange(&json!({
            "grant_type": JWT_BEARER,
            "assertion": env.token(),
            "federation_rule_id": rule_id,
            "organization_id": env.organization_id,
            "service_account_id": env.service_account_id,
        }))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["access_token"].as_str().unwrap().to_owned()
}

fn keyless_address(env: &Env) -> String {
    env.app.base_url.trim_start_matches("http://").to_owned()
}

#[tokio::test]
async fn nginx_auth_request_passes_the_identity_and_refuses_the_rest() {
    let Some(binary) = nginx_binary() else { return };
    for db in databases() {
        let env = Env::start(db).await;
        // The built-in route table: `/v1/messages/**` admits `workspace:inference`, other routes need
        // `workspace:developer` (the default rule's scope).
        let inference_rule = created(
            &env,
            "/v1/organizations/federation_rules",
            json!({
                "name": "inference-only",
                "issuer_id": env.issuer_id,
                "match": { "subject_prefix": "repo:acme/app:*", "claims": { "repository_owner": "acme" } },
                "target": { "type": "service_account", "service_account_id": env.service_account_id },
                "oauth_scope": "workspace:inference",
            }),
        )
        .await;
        let developer = access_token(&env, &env.rule_id).await;
        let inference = access_token(&env, &inference_rule).await;
        let (status, workspace) = env
            .app
            .get_authed(&env.admin, "/v1/organizations/workspaces/default")
            .await;
        assert_eq!(status, 200, "{workspace}");

        let upstream = Upstream::start().await;
        let nginx = Nginx::start(&binary, &documented_config(), &keyless_address(&env), &upstream.address).await;
        let http = reqwest::Client::new();

        // A WIF access token reaches the upstream with the identity headers and without the
        // credential; identity headers the client forged are replaced or dropped.
        let answer = Answer::of(
            http.get(nginx.url("/v1/models?limit=2"))
                .bearer_auth(&developer)
                .header("keyless-principal-id", "svac_forged")
                .header("keyless-api-key-id", "apikey_forged"),
        )
        .await;
        assert_eq!((answer.status, answer.reason()), (200, ""), "{db:?}: {}", nginx.logs());
        let seen = upstream.last();
        assert_eq!(
            (seen.method.as_str(), seen.target.as_str()),
            ("GET", "/v1/models?limit=2")
        );
        let expected: BTreeMap<String, String> = [
            ("keyless-organization-id", env.organization_id.as_str()),
            ("keyless-workspace-id", workspace["id"].as_str().unwrap()),
            ("keyless-principal-type", "service_account"),
            ("keyless-principal-id", env.service_account_id.as_str()),
            ("keyless-service-account-id", env.service_account_id.as_str()),
            ("keyless-federation-rule-id", env.rule_id.as_str()),
            ("keyless-scopes", "workspace:developer"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
        assert_eq!(seen.keyless, expected, "{db:?}");
        assert!(
            !seen.authorization && !seen.api_key,
            "{db:?}: the credential reached the upstream"
        );

        // The same token in `x-api-key` (the anthropic SDK's header), with a body: the body goes on,
        // the header does not.
        let message = serde_json::to_vec(&json!({ "model": "m", "max_tokens": 1 })).unwrap();
        let answer = Answer::of(
            http.post(nginx.url("/v1/messages"))
                .header("x-api-key", &developer)
                .header("content-type", "application/json")
                .body(message.clone()),
        )
        .await;
        assert_eq!(answer.status, 200, "{db:?}: {}", answer.reason());
        let seen = upstream.last();
        assert_eq!((seen.method.as_str(), seen.target.as_str()), ("POST", "/v1/messages"));
        assert_eq!(seen.body, message, "{db:?}");
        assert!(
            !seen.authorization && !seen.api_key,
            "{db:?}: the credential reached the upstream"
        );
        // A workspace API key of the same workspace, side by side with the WIF token.
        let (status, key) = env
            .app
            .post_authed(&env.admin, "/v1/organizations/api_keys", &json!({ "name": "legacy" }))
            .await;
        assert_eq!(status, 200, "{key}");
        let answer = Answer::of(
            http.post(nginx.url("/v1/messages"))
                .header("x-api-key", key["key"].as_str().unwrap())
                .header("content-type", "application/json")
                .body(message.clone()),
        )
        .await;
        assert_eq!(answer.status, 200, "{db:?}: {}", answer.reason());
        let seen = upstream.last();
        assert_eq!(seen.keyless["keyless-principal-type"], "api_key", "{db:?}");
        assert_eq!(seen.keyless["keyless-api-key-id"], key["id"].as_str().unwrap());
        assert_eq!(seen.keyless["keyless-workspace-id"], workspace["id"].as_str().unwrap());
        assert!(!seen.keyless.contains_key("keyless-service-account-id"), "{db:?}");
        assert!(!seen.api_key, "{db:?}: the API key reached the upstream");
        let n_passed = upstream.count();
        assert_eq!(n_passed, 3, "{db:?}");

        // No credential: 401 with the challenge and the reason; the upstream is not reached.
        let answer = Answer::of(http.get(nginx.url("/v1/models"))).await;
        assert_eq!((answer.status, answer.reason()), (401, "missing_credential"), "{db:?}");
        assert!(
            answer
                .header("www-authenticate")
                .starts_with("Bearer realm=\"keyless\""),
            "{db:?}: {:?}",
            answer.headers
        );

        // A scope short of the route's: 403; the route the scope does cover still passes.
        let answer = Answer::of(http.get(nginx.url("/v1/models")).bearer_auth(&inference)).await;
        assert_eq!((answer.status, answer.reason()), (403, "insufficient_scope"), "{db:?}");
        // The client cannot name the target keyless checks: nginx sets X-Original-URI itself.
        let answer = Answer::of(
            http.get(nginx.url("/v1/models"))
                .bearer_auth(&inference)
                .header("x-original-uri", "/v1/messages")
                .header("x-forwarded-uri", "/v1/messages"),
        )
        .await;
        assert_eq!((answer.status, answer.reason()), (403, "insufficient_scope"), "{db:?}");
        assert_eq!(
            upstream.count(),
            n_passed,
            "{db:?}: a refused request reached the upstream"
        );
        let answer = Answer::of(http.post(nginx.url("/v1/messages")).bearer_auth(&inference)).await;
        assert_eq!(answer.status, 200, "{db:?}: {}", answer.reason());
        assert_eq!(
            upstream.last().keyless["keyless-scopes"],
            "workspace:inference",
            "{db:?}"
        );
        let n_passed = upstream.count();

        // Path tricks, sent raw: nginx resolves `..` in `$uri` (and would forward the raw target
        // upstream), but keyless checks `$request_uri` as sent and refuses any dot segment before
        // looking at the credential — so an inference token cannot climb out of `/v1/messages/**`.
        for target in [
            "/v1/messages/../files",
            "/v1/messages/%2e%2e/files",
            "/v1/messages/./../files?x=1",
            "/v1/messages//files",
        ] {
            for token in [&inference, &developer] {
                let (status, headers) = nginx
                    .raw(
                        &format!("GET {target} HTTP/1.1"),
                        &[("Authorization", &format!("Bearer {token}"))],
                    )
                    .await;
                assert_eq!(
                    (status, headers.get("keyless-reason").map(String::as_str)),
                    (403, Some("path_not_canonical")),
                    "{db:?}: {target}"
                );
            }
        }
        assert_eq!(upstream.count(), n_passed, "{db:?}: a path trick reached the upstream");
        // Encoded unreserved characters are decoded before matching: still the inference route.
        let (status, _) = nginx
            .raw(
                "GET /v1/%6dessages/batches HTTP/1.1",
                &[("Authorization", &format!("Bearer {inference}"))],
            )
            .await;
        assert_eq!(status, 200, "{db:?}");
        let (status, headers) = nginx
            .raw(
                "GET /v1/%66iles HTTP/1.1",
                &[("Authorization", &format!("Bearer {inference}"))],
            )
            .await;
        assert_eq!(
            (status, headers.get("keyless-reason").map(String::as_str)),
            (403, Some("insufficient_scope")),
            "{db:?}"
        );
        let n_passed = upstream.count();

        // Revocation takes effect on the very next request, although the token was just cached.
        let answer = Answer::of(http.get(nginx.url("/v1/models")).bearer_auth(&developer)).await;
        assert_eq!(answer.status, 200, "{db:?}");
        let revoked = env
            .app
            .http
            .post(env.app.url("/v1/oauth/revoke"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={developer}"))
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), 200, "{db:?}");
        let answer = Answer::of(http.get(nginx.url("/v1/models")).bearer_auth(&developer)).await;
        assert_eq!((answer.status, answer.reason()), (401, "credential_revoked"), "{db:?}");
        assert_eq!(
            upstream.count(),
            n_passed + 1,
            "{db:?}: a revoked token reached the upstream"
        );
    }
}

/// keyless's 429 through nginx: `auth_request` turns it into 500 by itself; the documented
/// `error_page` maps it back to 429 with `Retry-After`. The limiter keeps no state in the database,
/// so SQLite alone shows it.
#[tokio::test]
async fn nginx_passes_on_a_rate_limit_only_with_the_documented_error_page() {
    let Some(binary) = nginx_binary() else { return };
    let env = Env::start_with(Db::Sqlite, |raw| {
        raw.rate_limits.service_account = Some(RawRate {
            requests_per_second: 0.01,
            burst: Some(2),
        });
    })
    .await;
    let token = access_token(&env, &env.rule_id).await;
    let upstream = Upstream::start().await;
    let block = documented_config();
    let mapped = Nginx::start(&binary, &block, &keyless_address(&env), &upstream.address).await;
    let unmapped = Nginx::start(
        &binary,
        &block.replace(DOC_ERROR_PAGE, ""),
        &keyless_address(&env),
        &upstream.address,
    )
    .await;
    let http = reqwest::Client::new();

    for _ in 0..2 {
        let answer = Answer::of(http.get(mapped.url("/v1/models")).bearer_auth(&token)).await;
        assert_eq!(answer.status, 200, "{}", answer.reason());
    }
    let answer = Answer::of(http.get(mapped.url("/v1/models")).bearer_auth(&token)).await;
    assert_eq!(
        (answer.status, answer.reason()),
        (429, "rate_limited"),
        "{}",
        mapped.logs()
    );
    let retry_after: u64 = answer.header("retry-after").parse().unwrap();
    assert!((1..=100).contains(&retry_after), "{retry_after}");

    let answer = Answer::of(http.get(unmapped.url("/v1/models")).bearer_auth(&token)).await;
    assert_eq!(answer.status, 500, "{}", unmapped.logs());
    assert!(
        unmapped.logs().contains("auth request unexpected status: 429"),
        "{}",
        unmapped.logs()
    );
    assert_eq!(upstream.count(), 2, "a rate-limited request reached the upstream");
}
