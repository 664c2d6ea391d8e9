//! The exchange load benchmark: `cargo xtask bench exchange` (or `cargo bench -p keyless-server --bench
//! exchange`).
//!
//! The server runs as a **separate process** (this binary re-executed in server mode) on loopback with a
//! fresh data directory — SQLite, and PostgreSQL when `KEYLESS_TEST_POSTGRES_URL` names a server (a fresh
//! database is created with `psql`). The parent sets up an issuer with an inline RS256 JWKS, a service
//! account and a rule through the Admin API, pre-mints RS256 subject tokens (each with its own `jti`,
//! so every exchange also burns a `jti`), then drives `POST /v1/oauth/token` (the JSON `jwt-bearer`
//! grant) over keep-alive HTTP/1.1 connections it speaks itself — a fixed head, the template's body
//! around each token, a minimal response parser (since 2026-12-07: `reqwest` took 40–60 µs of CPU
//! per exchange, a quarter of the server's, on the same two cores):
//! 1. **closed loop**: `CONCURRENCY` connections exchange as fast as they can for `DURATION` →
//!    exchanges/s, p50/p99 latency, server CPU per exchange (from `/proc/<pid>/stat`) and the load generator's own;
//! 2. **open loops**, each for `DURATION`: at 80 % of the target rate (`TARGET_RATE`, a
//!    fixed load that compares across runs), then at each of `LOADS` (fractions of the closed loop's
//!    rate: the machine's own headroom). Their tokens are minted first, and each is preceded by one unmeasured second at its
//!    rate on the same connections (the server sat idle during the minting): requests are sent on a
//!    fixed schedule and each latency is measured from its scheduled time (no coordinated omission)
//!    → p50/p99; each schedule's start is printed as a Unix time, to line the timeline up with a
//!    system trace (`perf record -a`). At most
//!    [`OPEN_LOOP_CONNECTIONS`] are in flight, as a fleet of clients behind a bounded pool would be: a
//!    request scheduled while all are busy waits for one, and the wait counts in its latency. (Unbounded,
//!    a stall of a few tens of milliseconds made the generator open a connection per late request until it
//!    ran out of file descriptors, and the connection storm, not the server, set the tail.);
//! 3. **crypto floor**, in this process: one RS256 verification plus one token generation, the work an
//!    exchange cannot avoid → µs per exchange, and the server's CPU per exchange as a ratio of it.
//!
//! Every exchange's activity event is durable before its response (group commit). Environment:
//! `KEYLESS_BENCH_SECONDS` (default 10), `KEYLESS_BENCH_CONCURRENCY` (default 64),
//! `KEYLESS_BENCH_TARGET_RATE` (default 10,000 exchanges/s, issue 3's target), `KEYLESS_BENCH_LOADS`
//! (default `0.8`; a list such as `0.5,0.6,0.7,0.8` sweeps the load),
//! `KEYLESS_BENCH_DATABASES` (`sqlite,postgres` by default when PostgreSQL is configured),
//! `KEYLESS_BENCH_LATENCY_OUT` (a path: each open loop's scheduled times and latencies are written to
//! `<path>.<database>.target` and `<path>.<database>.load80` for a load of 0.8, to line the slow
//! exchanges up with what the server was doing).
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
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use load::{
    Server, connect, env_or, histogram_quantile, metrics_counter, metrics_histogram, mint_tokens, ms, now, percentiles,
    process_cpu, read_response, set_up,
};

/// The allocator the `keyless` binary ships with, so the server measured here is the one users run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The most open-loop requests in flight (and connections), see the module docs.
const OPEN_LOOP_CONNECTIONS: usize = 256;
/// The fastest closed loop the pre-minted tokens last for (exchanges per second; ~18,000 measured).
const CLOSED_LOOP_MAX_RATE: usize = 25_000;

fn main() {
    if let Ok(dir) = std::env::var(load::CHILD_ENV) {
        load::serve_child(&dir);
        return;
    }
    // `cargo bench` passes `--bench`; anything else (a filter) is ignored.
    let settings = Settings {
        seconds: env_or("KEYLESS_BENCH_SECONDS", 10),
        concurrency: env_or("KEYLESS_BENCH_CONCURRENCY", 64),
        target_rate: env_or("KEYLESS_BENCH_TARGET_RATE", 10_000.0),
        loads: std::env::var("KEYLESS_BENCH_LOADS")
            .unwrap_or_else(|_| "0.8".to_owned())
            .split(',')
            .map(|load| {
                load.trim()
                    .parse()
                    .expect("KEYLESS_BENCH_LOADS: fractions such as 0.6,0.8")
            })
            .collect(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = SigningKey::generate(Algorithm::Rs256).unwrap();
    let floor = crypto_floor(&key);
    println!("crypto floor (RS256 verify + token generation, one core): {floor:.1} µs per exchange");
    let mut runs = Vec::new();
    for database in load::databases() {
        let run = load::with_database(&database, |pg_url| {
            runtime.block_on(run_database(&database, pg_url, &key, &settings))
        });
        runs.push(run);
    }
    println!();
    println!(
        "| database | exchanges/s (closed loop, {} conns) | p50 | p99 | server CPU per exchange | ÷ crypto floor ({floor:.0} µs) | load generator CPU per exchange |",
        settings.concurrency
    );
    println!("|---|---|---|---|---|---|---|");
    for run in &runs {
        let cpu_us = run.cpu_per_exchange.as_secs_f64() * 1e6;
        println!(
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {cpu_us:.0} µs | {:.1}× | {:.0} µs |",
            run.database,
            run.closed_rate,
            ms(run.closed_p50),
            ms(run.closed_p99),
            cpu_us / floor,
            run.load_cpu_per_exchange.as_secs_f64() * 1e6
        );
    }
    println!();
    println!("| database | open loop | exchanges/s | p50 | p99 | SQLite log restarts |");
    println!("|---|---|---|---|---|---|");
    for run in &runs {
        for (schedule, open) in &run.open {
            println!(
                "| {} | {} | {:.0} | {:.2} ms | {:.2} ms | {} |",
                run.database,
                schedule.describe(),
                open.rate,
                ms(open.p50),
                ms(open.p99),
                open.restarts
            );
        }
    }
}

/// What the environment asks for (see the module docs).
struct Settings {
    seconds: u64,
    concurrency: usize,
    target_rate: f64,
    /// The open loops' loads as fractions of the closed loop's rate.
    loads: Vec<f64>,
}

/// How an open loop's rate is chosen.
#[derive(Clone, Copy)]
enum Schedule {
    /// 80 % of the target rate (exchanges/s).
    Target(f64),
    /// A fraction of the rate the closed loop reached.
    Load(f64),
}

impl Schedule {
    fn rate(self, closed_rate: f64) -> f64 {
        match self {
            Schedule::Target(target) => target * 0.8,
            Schedule::Load(fraction) => closed_rate * fraction,
        }
    }

    fn describe(self) -> String {
        match self {
            Schedule::Target(target) => format!("80 % of the target {target:.0}/s"),
            Schedule::Load(fraction) => format!("{:.0} % of the closed loop", fraction * 100.0),
        }
    }

    /// The suffix of its timeline file.
    fn slug(self) -> String {
        match self {
            Schedule::Target(_) => "target".to_owned(),
            Schedule::Load(fraction) => format!("load{:.0}", fraction * 100.0),
        }
    }
}

/// One database's figures.
struct Run {
    database: String,
    closed_rate: f64,
    closed_p50: Duration,
    closed_p99: Duration,
    cpu_per_exchange: Duration,
    load_cpu_per_exchange: Duration,
    open: Vec<(Schedule, OpenLoop)>,
}

async fn run_database(database: &str, pg_url: Option<&str>, key: &SigningKey, settings: &Settings) -> Run {
    let (seconds, concurrency) = (settings.seconds, settings.concurrency);
    let server = Server::start(pg_url);
    let http = reqwest::Client::new();
    let exchange = Arc::new(Exchange::new(&server.address, &set_up(&http, &server, key, None).await));
    // Enough tokens for the warm-up and the closed loop at up to `CLOSED_LOOP_MAX_RATE`; the open loop's
    // are minted once its rate is known.
    let budget = (usize::try_from(seconds).unwrap() + 1) * CLOSED_LOOP_MAX_RATE;
    eprintln!("{database}: minting {budget} RS256 subject tokens…");
    let tokens = Arc::new(mint_tokens(key, &server.base_url, budget));
    let next = Arc::new(AtomicUsize::new(0));
    let duration = Duration::from_secs(seconds);

    // Warm-up: connections, caches, the first group commits.
    closed_loop(&server, &exchange, &tokens, &next, concurrency, Duration::from_secs(1)).await;

    let (cpu_before, load_cpu_before) = (server.cpu(), process_cpu("self"));
    let started = Instant::now();
    let mut latencies = closed_loop(&server, &exchange, &tokens, &next, concurrency, duration).await;
    let elapsed = started.elapsed();
    let cpu = server.cpu() - cpu_before;
    let load_cpu = process_cpu("self") - load_cpu_before;
    let completed = latencies.len();
    let closed_rate = completed as f64 / elapsed.as_secs_f64();
    latencies.sort();
    let (closed_p50, closed_p99) = percentiles(&latencies);
    eprintln!("{database}: closed loop {closed_rate:.0}/s, p50 {closed_p50:?}, p99 {closed_p99:?}");

    // 80 % of the target rate (a fixed load, comparable across runs and machines), then the
    // asked fractions of the rate this closed loop reached (the machine's own headroom).
    let schedules: Vec<Schedule> = std::iter::once(Schedule::Target(settings.target_rate))
        .chain(settings.loads.iter().map(|load| Schedule::Load(*load)))
        .collect();
    // Each schedule's count with its warm-up second, and some to spare.
    let budget = schedules
        .iter()
        .map(|schedule| (schedule.rate(closed_rate) * (duration.as_secs_f64() + 1.0) * 1.05) as usize + 1_000)
        .sum();
    eprintln!("{database}: minting {budget} more for the open loops…");
    let (tokens, next) = (
        Arc::new(mint_tokens(key, &server.base_url, budget)),
        Arc::new(AtomicUsize::new(0)),
    );
    let mut streams = open_connections(&server).await;
    let mut open = Vec::new();
    for schedule in schedules {
        let rate = schedule.rate(closed_rate);
        let (result, carried) =
            measured_open_loop(&http, &server, &exchange, &tokens, &next, rate, duration, streams).await;
        eprintln!(
            "{database}: open loop at {rate:.0}/s, p50 {:?}, p99 {:?}, {} log restarts",
            result.p50, result.p99, result.restarts
        );
        if let Ok(path) = std::env::var("KEYLESS_BENCH_LATENCY_OUT") {
            write_timeline(&format!("{path}.{database}.{}", schedule.slug()), &result.timeline);
        }
        open.push((schedule, result));
        streams = carried;
    }

    server.stop();
    Run {
        database: database.to_owned(),
        closed_rate,
        closed_p50,
        closed_p99,
        cpu_per_exchange: cpu / u32::try_from(completed.max(1)).unwrap(),
        load_cpu_per_exchange: load_cpu / u32::try_from(completed.max(1)).unwrap(),
        open,
    }
}

/// A measured open loop: its rate, latency quantiles, the SQLite log restarts during it, and its
/// `(scheduled, latency)` pairs.
struct OpenLoop {
    rate: f64,
    p50: Duration,
    p99: Duration,
    restarts: u64,
    timeline: Vec<(Duration, Duration)>,
}

/// One unmeasured second at `rate` (the server may have sat idle while tokens were minted), then
/// `duration` measured at it, on the same connections so the schedule goes on without a pause; prints
/// the server's own stage quantiles for the measured part. Returns the connections for the next loop.
#[allow(clippy::too_many_arguments)]
async fn measured_open_loop(
    http: &reqwest::Client,
    server: &Server,
    exchange: &Arc<Exchange>,
    tokens: &Arc<Vec<String>>,
    next: &Arc<AtomicUsize>,
    rate: f64,
    duration: Duration,
    streams: Vec<TcpStream>,
) -> (OpenLoop, Vec<TcpStream>) {
    let (_, streams) = open_loop(exchange, tokens, next, rate, Duration::from_secs(1), streams).await;
    let restarts_before = metrics_counter(http, server, "keyless_sqlite_wal_restarts_total").await;
    let stages_before = server_stages(http, server).await;
    let (timeline, streams) = open_loop(exchange, tokens, next, rate, duration, streams).await;
    let restarts = metrics_counter(http, server, "keyless_sqlite_wal_restarts_total").await - restarts_before;
    let stages = server_stages(http, server).await;
    for ((name, before), (_, after)) in stages_before.iter().zip(&stages) {
        let [p50, p90, p99] = [0.5, 0.9, 0.99].map(|q| histogram_quantile(before, after, q) * 1e3);
        eprintln!("open loop at {rate:.0}/s, {name}: p50 ≤ {p50} ms, p90 ≤ {p90} ms, p99 ≤ {p99} ms");
    }
    let mut latencies: Vec<Duration> = timeline.iter().map(|(_, latency)| *latency).collect();
    latencies.sort();
    let (p50, p99) = percentiles(&latencies);
    let result = OpenLoop {
        rate,
        p50,
        p99,
        restarts,
        timeline,
    };
    (result, streams)
}

/// An exchange request's bytes around its assertion: the HTTP/1.1 head and JSON body of the template,
/// so that a request is two copies and a length, not a JSON serialization.
struct Exchange {
    host: String,
    body_before: String,
    body_after: String,
}

impl Exchange {
    fn new(address: &str, template: &Value) -> Self {
        const HOLE: &str = "ASSERTION";
        let mut body = template.clone();
        body["assertion"] = Value::from(HOLE);
        let body = body.to_string();
        let (before, after) = body.split_once(&format!("\"{HOLE}\"")).unwrap();
        Self {
            host: address.to_owned(),
            body_before: format!("{before}\""),
            body_after: format!("\"{after}"),
        }
    }

    fn request(&self, token: &str) -> Vec<u8> {
        let length = self.body_before.len() + token.len() + self.body_after.len();
        format!(
            "POST /v1/oauth/token HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n{}{token}{}",
            self.host, self.body_before, self.body_after
        )
        .into_bytes()
    }
}

/// Takes the next pre-minted token and exchanges it on `stream`. Panics on any answer but 200, and
/// when the tokens run out.
async fn exchange_once(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    exchange: &Exchange,
    tokens: &[String],
    next: &AtomicUsize,
) {
    let token = tokens
        .get(next.fetch_add(1, Ordering::Relaxed))
        .expect("ran out of pre-minted tokens: raise the budget");
    stream.write_all(&exchange.request(token)).await.unwrap();
    let status = read_response(stream, buffer).await;
    assert_eq!(status, 200, "exchange failed: {}", String::from_utf8_lossy(buffer));
}

/// `concurrency` keep-alive connections, each exchanging one token after another until `duration` is
/// over; the latency of every exchange.
async fn closed_loop(
    server: &Server,
    exchange: &Arc<Exchange>,
    tokens: &Arc<Vec<String>>,
    next: &Arc<AtomicUsize>,
    concurrency: usize,
    duration: Duration,
) -> Vec<Duration> {
    let deadline = Instant::now() + duration;
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (exchange, tokens, next) = (exchange.clone(), tokens.clone(), next.clone());
        let address = server.address.clone();
        workers.push(tokio::spawn(async move {
            let mut stream = connect(&address).await;
            let mut buffer = Vec::with_capacity(4096);
            let mut latencies = Vec::new();
            let mut started = Instant::now();
            while started < deadline {
                exchange_once(&mut stream, &mut buffer, &exchange, &tokens, &next).await;
                let finished = Instant::now();
                latencies.push(finished - started);
                started = finished;
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

/// `rate` exchanges per second on a fixed schedule for `duration`, over `streams` (see
/// [`open_connections`]): whichever connection is free takes the next scheduled exchange, so one that
/// is scheduled while all are busy waits for one. Each latency is measured from its scheduled time;
/// returned with that time (since the start) in order of completion per connection, and the
/// connections, for the next loop.
async fn open_loop(
    exchange: &Arc<Exchange>,
    tokens: &Arc<Vec<String>>,
    next: &Arc<AtomicUsize>,
    rate: f64,
    duration: Duration,
    streams: Vec<TcpStream>,
) -> (Vec<(Duration, Duration)>, Vec<TcpStream>) {
    let total = (rate * duration.as_secs_f64()) as usize;
    let start = tokio::time::Instant::now() + Duration::from_millis(10);
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        + Duration::from_millis(10);
    eprintln!("open loop schedule starts at Unix {:.3} s", unix.as_secs_f64());
    let slots = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::with_capacity(streams.len());
    for mut stream in streams {
        let (exchange, tokens, next, slots) = (exchange.clone(), tokens.clone(), next.clone(), slots.clone());
        workers.push(tokio::spawn(async move {
            let mut buffer = Vec::with_capacity(4096);
            let mut latencies = Vec::new();
            loop {
                let slot = slots.fetch_add(1, Ordering::Relaxed);
                if slot >= total {
                    break (latencies, stream);
                }
                let scheduled = start + Duration::from_secs_f64(slot as f64 / rate);
                tokio::time::sleep_until(scheduled).await;
                exchange_once(&mut stream, &mut buffer, &exchange, &tokens, &next).await;
                latencies.push((scheduled - start, scheduled.elapsed()));
            }
        }));
    }
    let mut all = Vec::with_capacity(total);
    let mut streams = Vec::with_capacity(workers.len());
    for worker in workers {
        let (latencies, stream) = worker.await.unwrap();
        all.extend(latencies);
        streams.push(stream);
    }
    (all, streams)
}

/// The open loop's [`OPEN_LOOP_CONNECTIONS`] connections, all open before its schedule starts: the
/// clients are a fleet already connected, and 256 handshakes inside the first scheduled milliseconds
/// would be measured as the server's.
async fn open_connections(server: &Server) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(OPEN_LOOP_CONNECTIONS);
    for _ in 0..OPEN_LOOP_CONNECTIONS {
        streams.push(connect(&server.address).await);
    }
    streams
}

/// The server's own histograms of an exchange's time, read from `/metrics` before and after the open
/// loop: the request in the handler, the wait for a group commit, the group commit itself.
async fn server_stages(http: &reqwest::Client, server: &Server) -> Vec<(&'static str, Vec<(f64, f64)>)> {
    let mut stages = Vec::new();
    for (name, metric, labels) in [
        (
            "request in the server",
            "keyless_http_request_duration_seconds",
            "/v1/oauth/token",
        ),
        ("wait for a group commit", "keyless_group_commit_wait_seconds", ""),
        ("group commit", "keyless_group_commit_seconds", ""),
    ] {
        stages.push((name, metrics_histogram(http, server, metric, labels).await));
    }
    stages
}

/// Writes the open loop's `(scheduled, latency)` pairs, in milliseconds and in schedule order, one per
/// line — to see when the slow exchanges were scheduled (`KEYLESS_BENCH_LATENCY_OUT`).
fn write_timeline(path: &str, timeline: &[(Duration, Duration)]) {
    let mut sorted = timeline.to_vec();
    sorted.sort();
    let text: String = sorted
        .iter()
        .map(|(scheduled, latency)| format!("{:.3} {:.3}\n", ms(*scheduled), ms(*latency)))
        .collect();
    std::fs::write(path, text).unwrap();
    eprintln!("open loop timeline: {path}");
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
