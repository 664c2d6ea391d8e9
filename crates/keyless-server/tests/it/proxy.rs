//! The built-in reverse proxy (`keyless serve --upstream`): the real server in front of a real upstream
//! on loopback ([`Stub`], under the base path `/base`), which records every request it receives.
//! Credentials are access tokens from real exchanges.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::exchange::Env;
use crate::harness::{Db, databases};
use crate::interop::{python, run_client};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// One request as the upstream received it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    uri: String,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Default)]
struct StubState {
    seen: Mutex<Vec<Seen>>,
    /// The SSE stream sends its last event once this is notified (or after 10 s).
    release: Notify,
    /// Set just before the SSE stream sends its last event.
    last_sent: AtomicBool,
}

/// The upstream: `POST /base/v1/messages` answers a Messages API response, `GET /base/v1/sse` three
/// server-sent events, everything else `{"ok": true}` with `request-id: upstream_req_1`.
struct Stub {
    base_url: String,
    state: Arc<StubState>,
    task: JoinHandle<()>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stub {
    async fn start() -> Stub {
        let state = Arc::new(StubState::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = Router::new().fallback(upstream).with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Stub {
            base_url: format!("http://{address}/base/"),
            state,
            task,
        }
    }

    fn hits(&self) -> usize {
        self.state.seen.lock().unwrap().len()
    }

    fn last(&self) -> Seen {
        self.state.seen.lock().unwrap().last().cloned().unwrap()
    }
}

async fn upstream(State(state): State<Arc<StubState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path = parts.uri.path().to_owned();
    state.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts.headers,
        body,
    });
    match path.as_str() {
        "/base/v1/messages" => axum::Json(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [{ "type": "text", "text": "hi" }],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": { "input_tokens": 1, "output_tokens": 1 },
        }))
        .into_response(),
        "/base/v1/sse" => {
            let (events, receiver) = mpsc::channel::<Bytes>(4);
            tokio::spawn(async move {
                let _ = events.send(Bytes::from_static(b"data: one\n\n")).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _ = events.send(Bytes::from_static(b"data: two\n\n")).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _ = tokio::time::timeout(Duration::from_secs(10), state.release.notified()).await;
                state.last_sent.store(true, Ordering::SeqCst);
                let _ = events.send(Bytes::from_static(b"data: three\n\n")).await;
            });
            let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
                let event = receiver.recv().await?;
                Some((Ok::<_, std::convert::Infallible>(event), receiver))
            });
            ([("content-type", "text/event-stream")], Body::from_stream(stream)).into_response()
        }
        _ => (
            [("request-id", "upstream_req_1"), ("connection", "close")],
            axum::Json(json!({ "ok": true })),
        )
            .into_response(),
    }
}

/// A server forwarding to `stub`, with the standard issuer, service account and rule.
async fn start(db: Db, upstream_url: &str) -> Env {
    let url = upstream_url.to_owned();
    Env::start_with(db, move |raw| raw.upstream.url = Some(url)).await
}

/// An access token of the environment's rule (`workspace:developer`).
async fn access_token(env: &Env) -> String {
    let reply = env.exchange(&env.body(&env.token())).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["access_token"].as_str().unwrap().to_owned()
}

/// An access token holding only `workspace:inference`, from a rule of its own.
async fn inference_token(env: &Env) -> String {
    let (status, rule) = env
        .app
        .post_authed(
            &env.admin,
            "/v1/organizations/federation_rules",
            &json!({
                "name": "inference-only",
                "issuer_id": env.issuer_id,
                "match": { "subject_prefix": "repo:acme/app:*", "claims": { "repository_owner": "acme" } },
                "target": { "type": "service_account", "service_account_id": env.service_account_id },
                "oauth_scope": "workspace:inference",
            }),
        )
        .await;
    assert_eq!(status, 200, "{rule}");
    let reply = env
        .exchange(&json!({
            "grant_type": JWT_BEARER,
            "assertion": env.token(),
            "federation_rule_id": rule["id"],
            "organization_id": env.organization_id,
            "service_account_id": env.service_account_id,
        }))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["scope"], "workspace:inference");
    reply.body["access_token"].as_str().unwrap().to_owned()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.to_str().unwrap())
}

/// The `api_request` event of `request_id`, waiting for the batched writer (10 s at most).
async fn api_request_event(env: &Env, request_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, page) = env
            .app
            .get_authed(
                &env.admin,
                &format!("/v1/organizations/activities?type=api_request&request_id={request_id}"),
            )
            .await;
        assert_eq!(status, 200, "{page}");
        if let Some(event) = page["data"].as_array().unwrap().first() {
            return event.clone();
        }
        assert!(Instant::now() < deadline, "no api_request event for {request_id}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_allowed_request_reaches_the_upstream_intact_with_the_identity_and_without_the_credential() {
    for db in databases() {
        let stub = Stub::start().await;
        let env = start(db, &stub.base_url).await;
        let token = access_token(&env).await;
        let response = env
            .app
            .http
            .patch(env.app.url("/v1/widgets/w1?beta=true&q=a%20b"))
            .bearer_auth(&token)
            .header("x-api-key", &token)
            .header("keyless-principal-id", "spoofed")
            .header("keyless-anything", "spoofed")
            .header("anthropic-version", "2023-06-01")
            .body("hello upstream")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{db:?}");
        let request_id = header(response.headers(), "request-id").unwrap().to_owned();
        assert!(request_id.starts_with("req_"), "{request_id}");
        assert_eq!(
            header(response.headers(), "upstream-request-id"),
            Some("upstream_req_1")
        );
        assert_eq!(header(response.headers(), "connection"), None);
        assert_eq!(response.json::<Value>().await.unwrap(), json!({ "ok": true }));

        let seen = stub.last();
        assert_eq!(seen.method, "PATCH");
        assert_eq!(seen.uri, "/base/v1/widgets/w1?beta=true&q=a%20b");
        assert_eq!(seen.body, "hello upstream");
        let headers = &seen.headers;
        assert_eq!(header(headers, "authorization"), None);
        assert_eq!(header(headers, "x-api-key"), None);
        assert_eq!(header(headers, "keyless-anything"), None);
        assert_eq!(headers.get_all("keyless-principal-id").iter().count(), 1);
        assert_eq!(
            header(headers, "keyless-principal-id"),
            Some(env.service_account_id.as_str())
        );
        assert_eq!(header(headers, "keyless-principal-type"), Some("service_account"));
        assert_eq!(
            header(headers, "keyless-service-account-id"),
            Some(env.service_account_id.as_str())
        );
        assert_eq!(
            header(headers, "keyless-federation-rule-id"),
            Some(env.rule_id.as_str())
        );
        assert_eq!(
            header(headers, "keyless-organization-id"),
            Some(env.organization_id.as_str())
        );
        assert_eq!(header(headers, "keyless-scopes"), Some("workspace:developer"));
        assert_eq!(header(headers, "keyless-request-id"), Some(request_id.as_str()));
        assert_eq!(header(headers, "anthropic-version"), Some("2023-06-01"));
        assert_eq!(header(headers, "x-forwarded-for"), Some("127.0.0.1"));
        assert_eq!(header(headers, "x-forwarded-proto"), Some("http"));
        let keyless_host = env.app.base_url.strip_prefix("http://").unwrap();
        assert_eq!(header(headers, "x-forwarded-host"), Some(keyless_host));
        let upstream_host = stub
            .base_url
            .strip_prefix("http://")
            .unwrap()
            .trim_end_matches("/base/");
        assert_eq!(header(headers, "host"), Some(upstream_host));

        // keyless's own subtrees are never forwarded, routed or not.
        let hits = stub.hits();
        for (path, status) in [
            ("/healthz", 200),
            ("/v1/organizations/no_such_thing", 404),
            ("/v1/oauth/nothing", 404),
            ("/.well-known/other", 404),
            ("/v1/%6Frganizations/no_such_thing", 404),
        ] {
            let response = env
                .app
                .http
                .get(env.app.url(path))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), status, "{path}");
        }
        assert_eq!(stub.hits(), hits, "{db:?}");
        env.app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn refused_requests_never_reach_the_upstream() {
    for db in databases() {
        let stub = Stub::start().await;
        let env = start(db, &stub.base_url).await;

        let response = env.app.http.post(env.app.url("/v1/messages")).send().await.unwrap();
        assert_eq!(response.status(), 401, "{db:?}");
        let challenge = header(response.headers(), "www-authenticate").unwrap();
        assert!(challenge.starts_with("Bearer realm=\"keyless\""), "{challenge}");
        assert_eq!(header(response.headers(), "keyless-reason"), Some("missing_credential"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "missing_credential", "{body}");

        let inference = inference_token(&env).await;
        let response = env
            .app
            .http
            .get(env.app.url("/v1/files"))
            .bearer_auth(&inference)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{db:?}");
        assert!(
            header(response.headers(), "www-authenticate")
                .unwrap()
                .contains("insufficient_scope")
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "insufficient_scope", "{body}");
        assert_eq!(stub.hits(), 0, "{db:?}");

        // A WebSocket upgrade is refused after the check, before the upstream.
        let response = env
            .app
            .http
            .get(env.app.url("/v1/stream"))
            .bearer_auth(access_token(&env).await)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 501, "{db:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "upgrade_not_supported", "{body}");
        assert_eq!(stub.hits(), 0, "{db:?}");
        env.app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn server_sent_events_reach_the_client_while_the_upstream_is_still_sending() {
    for db in databases() {
        let stub = Stub::start().await;
        let env = start(db, &stub.base_url).await;
        let token = access_token(&env).await;
        let mut response = env
            .app
            .http
            .get(env.app.url("/v1/sse"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{db:?}");
        assert_eq!(header(response.headers(), "content-type"), Some("text/event-stream"));
        let mut text = String::new();
        while !text.contains("data: one\n\n") {
            let chunk = response
                .chunk()
                .await
                .unwrap()
                .expect("the stream ended before its first event");
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        assert!(
            !stub.state.last_sent.load(Ordering::SeqCst),
            "the first event arrived only after the upstream sent its last"
        );
        stub.state.release.notify_one();
        while let Some(chunk) = response.chunk().await.unwrap() {
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        assert_eq!(text, "data: one\n\ndata: two\n\ndata: three\n\n");
        env.app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_streamed_request_body_arrives_intact() {
    for db in databases() {
        let stub = Stub::start().await;
        let env = start(db, &stub.base_url).await;
        let token = access_token(&env).await;
        // 1 MiB in 16 frames, with no content-length: sent chunked.
        let chunks: Vec<Bytes> = (0..16_u8)
            .map(|idx| Bytes::from((0..65_536_u32).map(|n| (n as u8) ^ idx).collect::<Vec<u8>>()))
            .collect();
        let expected: Vec<u8> = chunks.iter().flat_map(|chunk| chunk.iter().copied()).collect();
        let stream = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::convert::Infallible>));
        let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
        let request = axum::http::Request::post(env.app.url("/v1/files"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/octet-stream")
            .body(Body::from_stream(stream))
            .unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(response.status(), 200, "{db:?}");
        let seen = stub.last();
        assert_eq!(seen.method, "POST");
        assert_eq!(seen.body.len(), 1 << 20);
        assert!(seen.body == expected, "{db:?}: the body changed on the way");
        assert_eq!(header(&seen.headers, "content-length"), None);
        env.app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502() {
    for db in databases() {
        // A port that was just free: nothing listens there.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let env = start(db, &dead).await;
        let token = access_token(&env).await;
        let response = env
            .app
            .http
            .post(env.app.url("/v1/messages"))
            .bearer_auth(&token)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 502, "{db:?}");
        let request_id = header(response.headers(), "request-id").unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "error", "{body}");
        assert_eq!(body["error"]["type"], "api_error", "{body}");
        assert_eq!(body["error"]["code"], "upstream_unavailable", "{body}");
        assert_eq!(body["request_id"], request_id.as_str(), "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains("127.0.0.1") && !message.contains("refused"),
            "{message}"
        );

        let event = api_request_event(&env, &request_id).await;
        assert_eq!(event["status"], 502, "{event}");
        assert_eq!(event["source"], "proxy", "{event}");
        env.app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn proxied_and_refused_requests_are_in_the_request_log() {
    for db in databases() {
        let stub = Stub::start().await;
        let env = start(db, &stub.base_url).await;
        let token = access_token(&env).await;
        let response = env
            .app
            .http
            .post(env.app.url("/v1/messages?beta=true"))
            .bearer_auth(&token)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{db:?}");
        let request_id = header(response.headers(), "request-id").unwrap().to_owned();
        let event = api_request_event(&env, &request_id).await;
        assert_eq!(event["type"], "api_request", "{event}");
        assert_eq!(event["source"], "proxy", "{event}");
        assert_eq!(event["method"], "POST", "{event}");
        assert_eq!(event["path"], "/v1/messages", "{event}");
        assert_eq!(event["route"], "/v1/messages", "{event}");
        assert_eq!(event["status"], 200, "{event}");
        assert_eq!(event["outcome"], "allowed", "{event}");
        assert_eq!(event["actor_id"], env.service_account_id.as_str(), "{event}");
        assert_eq!(event["principal"]["type"], "service_account", "{event}");
        assert_eq!(event["principal"]["id"], env.service_account_id.as_str(), "{event}");
        assert!(event["latency_ms"].as_f64().unwrap() > 0.0, "{event}");

        let response = env.app.http.get(env.app.url("/v1/files")).send().await.unwrap();
        assert_eq!(response.status(), 401);
        let request_id = header(response.headers(), "request-id").unwrap().to_owned();
        let event = api_request_event(&env, &request_id).await;
        assert_eq!(event["source"], "proxy", "{event}");
        assert_eq!(event["status"], 401, "{event}");
        assert_eq!(event["outcome"], "refused", "{event}");
        assert_eq!(event["reason"], "missing_credential", "{event}");
        env.app.stop().await.unwrap();
    }
}

#[tokio::test]
async fn the_anthropic_sdk_calls_messages_through_the_proxy() {
    let Some(python) = python() else { return };
    for db in databases() {
        let stub = Stub::start().await;
        let env = start(db, &stub.base_url).await;
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, format!("{}\n", env.token())).unwrap();
        let reply = run_client(
            &python,
            "anthropic-messages",
            &[
                ("ANTHROPIC_BASE_URL", env.app.base_url.clone()),
                ("ANTHROPIC_FEDERATION_RULE_ID", env.rule_id.clone()),
                ("ANTHROPIC_ORGANIZATION_ID", env.organization_id.clone()),
                ("ANTHROPIC_SERVICE_ACCOUNT_ID", env.service_account_id.clone()),
                ("ANTHROPIC_IDENTITY_TOKEN_FILE", token_file.display().to_string()),
            ],
        )
        .await;
        assert_eq!(reply, json!({ "id": "msg_1", "text": "hi", "stop_reason": "end_turn" }));
        assert_eq!(stub.hits(), 1, "{db:?}");
        let seen = stub.last();
        assert_eq!((seen.method.as_str(), seen.uri.as_str()), ("POST", "/base/v1/messages"));
        assert_eq!(header(&seen.headers, "authorization"), None);
        assert_eq!(header(&seen.headers, "x-api-key"), None);
        assert_eq!(
            header(&seen.headers, "keyless-principal-id"),
            Some(env.service_account_id.as_str())
        );
        assert_eq!(
            header(&seen.headers, "keyless-federation-rule-id"),
            Some(env.rule_id.as_str())
        );
        let body: Value = serde_json::from_slice(&seen.body).unwrap();
        assert_eq!(body["model"], "claude-x", "{body}");
        env.app.stop().await.unwrap();
    }
}
