//! The exchange load benchmark: `cargo xtask bench exchange` (or `cargo bench -p keyless-server --bench
//! exchange`).
//!
//! The server runs as a **separate process** (this binary re-executed in server mode) on loopback with a
//! fresh data directory — SQLite, and PostgreSQL when `KEYLESS_TEST_POSTGRES_URL` names a server (a fresh
//! database is created with `psql`). The parent sets up an issuer with an inline RS256 JWKS, a service
//! account and a rule through the Admin API, pre-mints RS256 subject tokens (each with its own `jti`,
//! so every exchange also burns a `jti`), then:
//! 1. **closed loop**: `CONCURRENCY` connections exchange as fast as they can for `DURATION` →
//!    exchanges/s, p50/p99 latency, server CPU per exchange (from `/proc/<pid>/stat`) and the load generator's own;
//! 2. **open loop** at 80 % of that rate for `DURATION`: requests are sent on a fixed schedule and each
//!    latency is measured from its scheduled time (no coordinated omission) → p50/p99. At most
//!    [`OPEN_LOOP_CONNECTIONS`] are in flight, as a fleet of clients behind a bounded pool would be: a
//!    request scheduled while all are busy waits for one, and the wait counts in its latency. (Unbounded,
//!    a stall of a few tens of milliseconds made the generator open a connection per late request until it
//!    ran out of file descriptors, and the connection storm, not the server, set the tail.);
//! 3. **crypto floor**, in this process: one RS256 verification plus one token generation, the work an
//!    exchange cannot avoid → µs per exchange, and the server's CPU per exchange as a ratio of it.
//!
//! Every exchange's activity event is durable before its response (group commit). Environment:
//! `KEYLESS_BENCH_SECONDS` (default 10), `KEYLESS_BENCH_CONCURRENCY` (default 64),
//! `KEYLESS_BENCH_DATABASES` (`sqlite,postgres` by default when PostgreSQL is configured).
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
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keyless_jose::{Algorithm, SigningKey};
use serde_json::{Value, json};

/// The allocator the `keyless` binary ships with, so the server measured here is the one users run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The most open-loop requests in flight (and connections), see the module docs.
const OPEN_LOOP_CONNECTIONS: usize = 256;

const CHILD_ENV: &str = "KEYLESS_BENCH_SERVER_DIR";
const KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn main() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        serve_child(&dir);
        return;
    }
    // `cargo bench` passes `--bench`; anything else (a filter) is ignored.
    let seconds: u64 = env_or("KEYLESS_BENCH_SECONDS", 10);
    let concurrency: usize = env_or("KEYLESS_BENCH_CONCURRENCY", 64);
    let postgres = std::env::var("KEYLESS_TEST_POSTGRES_URL").ok();
    let databases = std::env::var("KEYLESS_BENCH_DATABASES").unwrap_or_else(|_| {
        if postgres.is_some() {
            "sqlite,postgres"
        } else {
            "sqlite"
        }
        .to_owned()
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = SigningKey::generate(Algorithm::Rs256).unwrap();
    let floor = crypto_floor(&key);
    println!("crypto floor (RS256 verify + token generation, one core): {floor:.1} µs per exchange");
    let mut rows = Vec::new();
    for database in databases.split(',').map(str::trim).filter(|name| !name.is_empty()) {
        let pg_url = match database {
            "sqlite" => None,
            "postgres" => Some(create_pg_database(
                postgres.as_deref().expect("KEYLESS_TEST_POSTGRES_URL"),
            )),
            other => panic!("unknown database {other:?}"),
        };
        let row = runtime.block_on(run_database(
            database,
            pg_url.as_ref().map(|(url, _)| url.as_str()),
            &key,
            seconds,
            concurrency,
            floor,
        ));
        if let Some((_, name)) = pg_url {
            drop_pg_database(postgres.as_deref().unwrap(), &name);
        }
        rows.push(row);
    }
    println!();
    println!(
        "| database | exchanges/s (closed loop, {concurrency} conns) | p50 | p99 | open loop at 80 %: rate | p50 | p99 | server CPU per exchange | ÷ crypto floor ({floor:.0} µs) | load generator CPU per exchange |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Server mode: serve from the data directory until stdin closes; print the bound address first.
fn serve_child(dir: &str) {
    use keyless_server::config::{Config, RawConfig, RawKeys};
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
        if let Ok(url) = std::env::var("KEYLESS_BENCH_DATABASE_URL") {
            raw.database_url = Some(url.into());
            raw.keys = RawKeys {
                encryption_key: Some(KEK.to_owned().into()),
                encryption_key_file: None,
            };
        }
        let config = Config::from_raw(raw).unwrap();
        println!("LISTENING {address}");
        let shutdown = async {
            // The parent closes our stdin to stop us.
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
    fn start(pg_url: Option<&str>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .env(CHILD_ENV, &data_dir)
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(url) = pg_url {
            command.env("KEYLESS_BENCH_DATABASE_URL", url);
        }
        let mut child = command.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let address = line
            .trim()
            .strip_prefix("LISTENING ")
            .expect("the server prints its address")
            .to_owned();
        // The address is printed before the server opens its storage: wait for the bootstrap file.
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

    /// User plus system CPU time of the server process so far.
    fn cpu(&self) -> Duration {
        process_cpu(&self.child.id().to_string())
    }

    fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

async fn admin_post(http: &reqwest::Client, server: &Server, path: &str, body: Value) -> Value {
    let response = http
        .post(format!("{}{path}", server.base_url))
        .bearer_auth(&server.admin_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "POST {path}: {status} {body}");
    body
}

/// The issuer, service account and rule the load exchanges through; returns the request template.
async fn set_up(http: &reqwest::Client, server: &Server, key: &SigningKey) -> Value {
    let issuer = admin_post(
        http,
        server,
        "/v1/organizations/federation_issuers",
        json!({
            "name": "bench-issuer",
            "issuer_url": "https://bench.example.com",
            "jwks": { "type": "inline", "keys": [key.public_jwk()] },
        }),
    )
    .await;
    let account = admin_post(
        http,
        server,
        "/v1/organizations/service_accounts",
        json!({ "name": "bench-workload" }),
    )
    .await;
    let rule = admin_post(
        http,
        server,
        "/v1/organizations/federation_rules",
        json!({
            "name": "bench-rule",
            "issuer_id": issuer["id"],
            "match": { "subject_prefix": "system:serviceaccount:bench:*" },
            "target": { "type": "service_account", "service_account_id": account["id"] },
            "token_lifetime_seconds": 600,
        }),
    )
    .await;
    json!({
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "federation_rule_id": rule["id"],
        "organization_id": server.organization_id,
    })
}

fn now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

/// `count` RS256 subject tokens, each with its own `jti`, signed on every core.
fn mint_tokens(key: &SigningKey, audience: &str, count: usize) -> Vec<String> {
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let per_thread = count.div_ceil(threads);
    let now = now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                scope.spawn(move || {
                    (0..per_thread)
                        .map(|index| {
                            let claims = json!({
                                "iss": "https://bench.example.com",
                                "sub": format!("system:serviceaccount:bench:worker-{thread}"),
                                "aud": [audience],
                                "iat": now,
                                "exp": now + 3000,
                                "jti": format!("{thread}-{index}"),
                            });
                            key.sign_jwt(claims.as_object().unwrap()).unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|handle| handle.join().unwrap()).collect()
    })
}

/// User plus system CPU time of process `pid` (or `self`) so far.
fn process_cpu(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // Linux reports in USER_HZ, 100 per second on every mainstream configuration.
    Duration::from_millis(ticks * 10)
}

struct Row {
    database: String,
    closed_rate: f64,
    closed_p50: Duration,
    closed_p99: Duration,
    open_rate: f64,
    open_p50: Duration,
    open_p99: Duration,
    cpu_per_exchange: Duration,
    load_cpu_per_exchange: Duration,
    floor_us: f64,
}

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cpu_us = self.cpu_per_exchange.as_secs_f64() * 1e6;
        write!(
            f,
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {:.0}/s | {:.2} ms | {:.2} ms | {:.0} µs | {:.1}× | {:.0} µs |",
            self.database,
            self.closed_rate,
            ms(self.closed_p50),
            ms(self.closed_p99),
            self.open_rate,
            ms(self.open_p50),
            ms(self.open_p99),
            cpu_us,
            cpu_us / self.floor_us,
            self.load_cpu_per_exchange.as_secs_f64() * 1e6
        )
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

async fn run_database(
    database: &str,
    pg_url: Option<&str>,
    key: &SigningKey,
    seconds: u64,
    concurrency: usize,
    floor_us: f64,
) -> Row {
    let server = Server::start(pg_url);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency.max(OPEN_LOOP_CONNECTIONS))
        .build()
        .unwrap();
    let template = Arc::new(set_up(&http, &server, key).await);
    // Enough tokens for a closed loop at up to 15,000/s plus the open loop.
    let budget = usize::try_from(seconds).unwrap() * 15_000 * 2;
    eprintln!("{database}: minting {budget} RS256 subject tokens…");
    let tokens = Arc::new(mint_tokens(key, &server.base_url, budget));
    let next = Arc::new(AtomicUsize::new(0));
    let duration = Duration::from_secs(seconds);

    // Warm-up: connections, caches, the first group commits.
    closed_loop(
        &http,
        &server,
        &template,
        &tokens,
        &next,
        concurrency,
        Duration::from_secs(1),
    )
    .await;

    let (cpu_before, load_cpu_before) = (server.cpu(), process_cpu("self"));
    let started = Instant::now();
    let mut latencies = closed_loop(&http, &server, &template, &tokens, &next, concurrency, duration).await;
    let elapsed = started.elapsed();
    let cpu = server.cpu() - cpu_before;
    let load_cpu = process_cpu("self") - load_cpu_before;
    let completed = latencies.len();
    let closed_rate = completed as f64 / elapsed.as_secs_f64();
    latencies.sort();
    let (closed_p50, closed_p99) = percentiles(&latencies);
    eprintln!("{database}: closed loop {closed_rate:.0}/s, p50 {closed_p50:?}, p99 {closed_p99:?}");

    let open_rate = closed_rate * 0.8;
    let mut open = open_loop(&http, &server, &template, &tokens, &next, open_rate, duration).await;
    open.sort();
    let (open_p50, open_p99) = percentiles(&open);
    eprintln!("{database}: open loop at {open_rate:.0}/s, p50 {open_p50:?}, p99 {open_p99:?}");

    server.stop();
    Row {
        database: database.to_owned(),
        closed_rate,
        closed_p50,
        closed_p99,
        open_rate,
        open_p50,
        open_p99,
        cpu_per_exchange: cpu / u32::try_from(completed.max(1)).unwrap(),
        load_cpu_per_exchange: load_cpu / u32::try_from(completed.max(1)).unwrap(),
        floor_us,
    }
}

fn percentiles(sorted: &[Duration]) -> (Duration, Duration) {
    if sorted.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

async fn exchange_once(
    http: &reqwest::Client,
    base_url: &str,
    template: &Value,
    tokens: &[String],
    next: &AtomicUsize,
) -> bool {
    let index = next.fetch_add(1, Ordering::Relaxed);
    let Some(token) = tokens.get(index) else {
        return false;
    };
    let mut body = template.clone();
    body["assertion"] = Value::from(token.as_str());
    let response = http
        .post(format!("{base_url}/v1/oauth/token"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        panic!("exchange failed: {status} {text}");
    }
    let _ = response.bytes().await;
    true
}

async fn closed_loop(
    http: &reqwest::Client,
    server: &Server,
    template: &Arc<Value>,
    tokens: &Arc<Vec<String>>,
    next: &Arc<AtomicUsize>,
    concurrency: usize,
    duration: Duration,
) -> Vec<Duration> {
    let deadline = Instant::now() + duration;
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, template, tokens, next) = (http.clone(), template.clone(), tokens.clone(), next.clone());
        let base_url = server.base_url.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let started = Instant::now();
                if !exchange_once(&http, &base_url, &template, &tokens, &next).await {
                    panic!("ran out of pre-minted tokens: raise the budget");
                }
                latencies.push(started.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    all
}

async fn open_loop(
    http: &reqwest::Client,
    server: &Server,
    template: &Arc<Value>,
    tokens: &Arc<Vec<String>>,
    next: &Arc<AtomicUsize>,
    rate: f64,
    duration: Duration,
) -> Vec<Duration> {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let total = (rate * duration.as_secs_f64()) as u64;
    let start = Instant::now();
    let mut requests = Vec::with_capacity(usize::try_from(total).unwrap());
    let connections = Arc::new(tokio::sync::Semaphore::new(OPEN_LOOP_CONNECTIONS));
    for n in 0..total {
        let scheduled = start + interval * u32::try_from(n).unwrap();
        tokio::time::sleep_until(scheduled.into()).await;
        let (http, template, tokens, next) = (http.clone(), template.clone(), tokens.clone(), next.clone());
        let base_url = server.base_url.clone();
        let connections = Arc::clone(&connections);
        requests.push(tokio::spawn(async move {
            let _connection = connections.acquire_owned().await.unwrap();
            assert!(
                exchange_once(&http, &base_url, &template, &tokens, &next).await,
                "ran out of pre-minted tokens"
            );
            scheduled.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(requests.len());
    for request in requests {
        latencies.push(request.await.unwrap());
    }
    latencies
}

/// The unavoidable crypto of one exchange, measured on one core: verify an RS256 subject token and
/// generate an access token (32 random bytes, checksum, SHA-256 for storage).
fn crypto_floor(key: &SigningKey) -> f64 {
    let claims =
        json!({ "iss": "https://bench.example.com", "sub": "x", "aud": "y", "iat": now(), "exp": now() + 300 });
    let token = key.sign_jwt(claims.as_object().unwrap()).unwrap();
    let jwks = keyless_jose::Jwks::from_values(&[key.public_jwk()]);
    let limits = keyless_jose::Limits::default();
    let mut samples = Vec::new();
    for _ in 0..15 {
        let started = Instant::now();
        for _ in 0..1000 {
            std::hint::black_box(keyless_jose::verify_jws(&token, &jwks, &limits).unwrap());
            std::hint::black_box(keyless_server::service::token::mint().unwrap());
        }
        samples.push(started.elapsed().as_secs_f64() * 1e6 / 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn create_pg_database(admin_url: &str) -> (String, String) {
    let name = format!("keyless_bench_{}", std::process::id());
    psql(admin_url, &format!("DROP DATABASE IF EXISTS {name}"));
    psql(admin_url, &format!("CREATE DATABASE {name}"));
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    (format!("{base}/{name}"), name)
}

fn drop_pg_database(admin_url: &str, name: &str) {
    psql(admin_url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}

fn psql(url: &str, sql: &str) {
    let status = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .status()
        .unwrap();
    assert!(status.success(), "psql {sql}");
}
