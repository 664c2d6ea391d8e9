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

mod load;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keyless_jose::{Algorithm, SigningKey};
use serde_json::{Value, json};

use load::{Server, env_or, mint_tokens, ms, now, percentiles, process_cpu, set_up};

/// The allocator the `keyless` binary ships with, so the server measured here is the one users run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The most open-loop requests in flight (and connections), see the module docs.
const OPEN_LOOP_CONNECTIONS: usize = 256;

fn main() {
    if let Ok(dir) = std::env::var(load::CHILD_ENV) {
        load::serve_child(&dir);
        return;
    }
    // `cargo bench` passes `--bench`; anything else (a filter) is ignored.
    let seconds: u64 = env_or("KEYLESS_BENCH_SECONDS", 10);
    let concurrency: usize = env_or("KEYLESS_BENCH_CONCURRENCY", 64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = SigningKey::generate(Algorithm::Rs256).unwrap();
    let floor = crypto_floor(&key);
    println!("crypto floor (RS256 verify + token generation, one core): {floor:.1} µs per exchange");
    let mut rows = Vec::new();
    for database in load::databases() {
        let row = load::with_database(&database, |pg_url| {
            runtime.block_on(run_database(&database, pg_url, &key, seconds, concurrency, floor))
        });
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
    let template = Arc::new(set_up(&http, &server, key, None).await);
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
            std::hint::black_box(keyless_server::service::token::mint(1_800_000_000_000).unwrap());
        }
        samples.push(started.elapsed().as_secs_f64() * 1e6 / 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
