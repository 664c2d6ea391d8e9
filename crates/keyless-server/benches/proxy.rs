//! The proxy latency benchmark: `cargo xtask bench proxy` (or `cargo bench -p keyless-server --bench
//! proxy`). What the built-in proxy adds to a request, measured against the same upstream called directly.
//!
//! A trivial upstream (axum, `GET /v1/ping` → `ok`) runs on loopback on a thread and runtime of its own in
//! this process. keyless runs as a **separate process** (this binary re-executed in server mode, as in the
//! exchange benchmark) with a fresh SQLite data directory and `upstream.url` pointing at the upstream. The
//! parent sets up an issuer with an inline JWKS, a service account and a rule through the Admin API and
//! exchanges one subject token for an access token (`workspace:developer`). Then, serially, on one
//! keep-alive HTTP/1.1 connection per target (hyper-util, `TCP_NODELAY`, a current-thread runtime):
//! warm-up (credential cache, pools), then `REQUESTS` pairs, each pair one request **direct** to the
//! upstream and one **through keyless** with the access token, the order alternating from pair to pair.
//! Reported: p50, p90, p99 and mean of each, their difference, and keyless's CPU per proxied request
//! (`/proc/<pid>/stat`; the request log's writes included).
//!
//! Environment: `KEYLESS_BENCH_REQUESTS` (pairs, default 20000).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::Request;
use axum::serve::ListenerExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use keyless_jose::{Algorithm, SigningKey};
use serde_json::{Value, json};

/// The allocator the `keyless` binary ships with, so the server measured here is the one users run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHILD_ENV: &str = "KEYLESS_BENCH_SERVER_DIR";
const UPSTREAM_ENV: &str = "KEYLESS_BENCH_UPSTREAM";
const WARM_UP: usize = 2_000;

fn main() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        serve_child(&dir);
        return;
    }
    let pairs: usize = std::env::var("KEYLESS_BENCH_REQUESTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20_000);
    let upstream = start_upstream();
    let server = Server::start(&upstream);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(measure(&server, &upstream, pairs));
    server.stop();
}

/// The upstream on its own thread and runtime: `GET /v1/ping` (and anything else) → `ok`.
fn start_upstream() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let app = axum::Router::new().fallback(|| async { "ok" });
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{address}")
}

/// Server mode: serve from the data directory with the upstream until stdin closes; print the bound
/// address first.
fn serve_child(dir: &str) {
    use keyless_server::config::{Config, RawConfig};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut raw = RawConfig {
            listen: Some(address.to_string()),
            data_dir: Some(dir.into()),
            ..RawConfig::default()
        };
        raw.upstream.url = Some(std::env::var(UPSTREAM_ENV).unwrap());
        let config = Config::from_raw(raw).unwrap();
        println!("LISTENING {address}");
        let shutdown = async {
            let _ = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
            })
            .await;
        };
        keyless_server::run(config, listener, shutdown).await.unwrap();
    });
}

struct Server {
    child: Child,
    base_url: String,
    admin_token: String,
    organization_id: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(upstream: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, &data_dir)
            .env(UPSTREAM_ENV, upstream)
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let address = line
            .trim()
            .strip_prefix("LISTENING ")
            .expect("the server prints its address")
            .to_owned();
        let deadline = Instant::now() + Duration::from_secs(60);
        let bootstrap: Value = loop {
            let read = std::fs::read_to_string(data_dir.join("bootstrap.json")).ok();
            if let Some(bootstrap) = read.and_then(|text| serde_json::from_str(&text).ok()) {
                break bootstrap;
            }
            assert!(
                Instant::now() < deadline,
                "the server wrote no bootstrap.json within 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Server {
            child,
            base_url: format!("http://{address}"),
            admin_token: bootstrap["admin_token"].as_str().unwrap().to_owned(),
            organization_id: bootstrap["organization_id"].as_str().unwrap().to_owned(),
            _dir: dir,
        }
    }

    /// User plus system CPU time of the server process so far (USER_HZ = 100).
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }

    fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// An access token (`workspace:developer`) from one exchange through an inline-JWKS rule.
async fn access_token(http: &reqwest::Client, server: &Server) -> String {
    let post = |path: &'static str, body: Value, bearer: Option<String>| {
        let mut request = http.post(format!("{}{path}", server.base_url)).json(&body);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            assert!(status.is_success(), "POST {path}: {status} {body}");
            body
        }
    };
    let admin = Some(server.admin_token.clone());
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let issuer = post(
        "/v1/organizations/federation_issuers",
        json!({
            "name": "bench-issuer",
            "issuer_url": "https://bench.example.com",
            "jwks": { "type": "inline", "keys": [key.public_jwk()] },
        }),
        admin.clone(),
    )
    .await;
    let account = post(
        "/v1/organizations/service_accounts",
        json!({ "name": "bench-workload" }),
        admin.clone(),
    )
    .await;
    let rule = post(
        "/v1/organizations/federation_rules",
        json!({
            "name": "bench-rule",
            "issuer_id": issuer["id"],
            "match": { "subject_prefix": "system:serviceaccount:bench:*" },
            "target": { "type": "service_account", "service_account_id": account["id"] },
            "token_lifetime_seconds": 3600,
        }),
        admin,
    )
    .await;
    let now = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap();
    let claims = json!({
        "iss": "https://bench.example.com",
        "sub": "system:serviceaccount:bench:worker",
        "aud": [server.base_url],
        "iat": now,
        "exp": now + 3000,
        "jti": "bench-proxy-1",
    });
    let assertion = key.sign_jwt(claims.as_object().unwrap()).unwrap();
    let reply = post(
        "/v1/oauth/token",
        json!({
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": assertion,
            "federation_rule_id": rule["id"],
            "organization_id": server.organization_id,
        }),
        None,
    )
    .await;
    reply["access_token"].as_str().unwrap().to_owned()
}

/// One keep-alive connection's client: HTTP/1.1, `TCP_NODELAY`.
fn client() -> Client<HttpConnector, Body> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

/// One `GET` and its whole body; its latency.
async fn once(client: &Client<HttpConnector, Body>, url: &str, bearer: Option<&str>) -> Duration {
    let mut request = Request::get(url);
    if let Some(bearer) = bearer {
        request = request.header("authorization", bearer);
    }
    let request = request.body(Body::empty()).unwrap();
    let started = Instant::now();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let _ = axum::body::to_bytes(Body::new(response.into_body()), 1 << 20)
        .await
        .unwrap();
    started.elapsed()
}

async fn measure(server: &Server, upstream: &str, pairs: usize) {
    let http = reqwest::Client::new();
    let bearer = format!("Bearer {}", access_token(&http, server).await);
    let direct_url = format!("{upstream}/v1/ping");
    let proxied_url = format!("{}/v1/ping", server.base_url);
    let (direct_client, proxied_client) = (client(), client());
    for _ in 0..WARM_UP {
        once(&direct_client, &direct_url, None).await;
        once(&proxied_client, &proxied_url, Some(&bearer)).await;
    }
    let mut direct = Vec::with_capacity(pairs);
    let mut proxied = Vec::with_capacity(pairs);
    let cpu_before = server.cpu();
    for pair in 0..pairs {
        if pair % 2 == 0 {
            direct.push(once(&direct_client, &direct_url, None).await);
            proxied.push(once(&proxied_client, &proxied_url, Some(&bearer)).await);
        } else {
            proxied.push(once(&proxied_client, &proxied_url, Some(&bearer)).await);
            direct.push(once(&direct_client, &direct_url, None).await);
        }
    }
    let cpu = server.cpu() - cpu_before;
    direct.sort();
    proxied.sort();
    let (d, p) = (Stats::of(&direct), Stats::of(&proxied));
    println!("proxy latency, {pairs} serial request pairs (GET, 2-byte answer, keep-alive):");
    println!();
    println!("| target | p50 | p90 | p99 | mean |");
    println!("|---|---:|---:|---:|---:|");
    println!("{}", d.row("upstream directly"));
    println!("{}", p.row("through keyless"));
    println!(
        "| **added by keyless** | **{:.3} ms** | {:.3} ms | {:.3} ms | {:.3} ms |",
        ms(p.p50) - ms(d.p50),
        ms(p.p90) - ms(d.p90),
        ms(p.p99) - ms(d.p99),
        ms(p.mean) - ms(d.mean),
    );
    println!();
    println!(
        "keyless CPU per proxied request: {:.0} µs (request log included)",
        cpu.as_secs_f64() * 1e6 / pairs as f64
    );
}

struct Stats {
    p50: Duration,
    p90: Duration,
    p99: Duration,
    mean: Duration,
}

impl Stats {
    fn of(sorted: &[Duration]) -> Stats {
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        Stats {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            mean: sorted.iter().sum::<Duration>() / u32::try_from(sorted.len()).unwrap(),
        }
    }

    fn row(&self, name: &str) -> String {
        format!(
            "| {name} | {:.3} ms | {:.3} ms | {:.3} ms | {:.3} ms |",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.mean)
        )
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
