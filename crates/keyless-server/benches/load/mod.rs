//! What the load benchmarks share: the server as a separate process ([`Server`], this bench binary
//! re-executed in server mode by [`serve_child`]), the Admin API set-up of an issuer, a service account
//! and a rule ([`set_up`]), RS256 subject tokens ([`mint_tokens`]), process CPU from `/proc`
//! ([`process_cpu`]), latency percentiles, `/metrics` counters, and fresh PostgreSQL databases.
//!
//! Each bench binary declares `mod load;` and calls [`serve_child`] first thing when
//! [`CHILD_ENV`] is set.
#![allow(dead_code, reason = "each bench uses its own part")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keyless_jose::SigningKey;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Set in the server child's environment: its data directory.
pub(crate) const CHILD_ENV: &str = "KEYLESS_BENCH_SERVER_DIR";
const KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The value of the environment variable `name`, else `default`.
pub(crate) fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The databases to measure: `KEYLESS_BENCH_DATABASES`, by default SQLite, and PostgreSQL too when
/// `KEYLESS_TEST_POSTGRES_URL` is set.
pub(crate) fn databases() -> Vec<String> {
    let postgres = std::env::var("KEYLESS_TEST_POSTGRES_URL").ok();
    let databases = std::env::var("KEYLESS_BENCH_DATABASES").unwrap_or_else(|_| {
        if postgres.is_some() {
            "sqlite,postgres"
        } else {
            "sqlite"
        }
        .to_owned()
    });
    databases
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Runs `measure` against a fresh database of kind `database` (`sqlite` or `postgres`): `None` for
/// SQLite, else a PostgreSQL URL, dropped afterwards.
pub(crate) fn with_database<T>(database: &str, measure: impl FnOnce(Option<&str>) -> T) -> T {
    match database {
        "sqlite" => measure(None),
        "postgres" => {
            let admin_url = std::env::var("KEYLESS_TEST_POSTGRES_URL").expect("KEYLESS_TEST_POSTGRES_URL");
            let (url, name) = create_pg_database(&admin_url);
            let result = measure(Some(&url));
            drop_pg_database(&admin_url, &name);
            result
        }
        other => panic!("unknown database {other:?}"),
    }
}

/// Server mode: serve from the data directory until stdin closes; print the bound address first.
pub(crate) fn serve_child(dir: &str) {
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

/// The server process.
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub(crate) base_url: String,
    /// `127.0.0.1:<port>`.
    pub(crate) address: String,
    /// The bootstrap admin token.
    pub(crate) admin_token: String,
    /// The organization's ID.
    pub(crate) organization_id: String,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the server on a fresh data directory (SQLite), or on the PostgreSQL database `pg_url`,
    /// and waits until it has bootstrapped.
    pub(crate) fn start(pg_url: Option<&str>) -> Server {
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
            address,
            admin_token: bootstrap["admin_token"].as_str().unwrap().to_owned(),
            organization_id: bootstrap["organization_id"].as_str().unwrap().to_owned(),
            _dir: dir,
        }
    }

    /// The server's process ID (for `perf record -p`).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User plus system CPU time of the server process so far.
    pub(crate) fn cpu(&self) -> Duration {
        process_cpu(&self.child.id().to_string())
    }

    /// Closes the server's stdin and waits for it to exit.
    pub(crate) fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// `POST path` on the Admin API with the bootstrap admin token; panics unless it succeeds.
pub(crate) async fn admin_post(http: &reqwest::Client, server: &Server, path: &str, body: Value) -> Value {
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

/// The issuer, service account and rule (granting `oauth_scope`, when given) the load exchanges
/// through; returns the token request without its `assertion`.
pub(crate) async fn set_up(
    http: &reqwest::Client,
    server: &Server,
    key: &SigningKey,
    oauth_scope: Option<&str>,
) -> Value {
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
    let mut rule = json!({
        "name": "bench-rule",
        "issuer_id": issuer["id"],
        "match": { "subject_prefix": "system:serviceaccount:bench:*" },
        "target": { "type": "service_account", "service_account_id": account["id"] },
        "token_lifetime_seconds": 600,
    });
    if let Some(scope) = oauth_scope {
        rule["oauth_scope"] = Value::from(scope);
    }
    let rule = admin_post(http, server, "/v1/organizations/federation_rules", rule).await;
    json!({
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "federation_rule_id": rule["id"],
        "organization_id": server.organization_id,
    })
}

/// Now, in Unix seconds.
pub(crate) fn now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

/// Tokens a workload fleet mints per second, as the subject tokens' `exp`s advance (see [`mint_tokens`]).
const MINTED_PER_SECOND: usize = 10_000;

/// `count` (or a few more) RS256 subject tokens, signed on every core, shaped as a fleet presents them:
/// each with a random `jti` (a UUID's 122 random bits, as GitHub's and most issuers' are), and `exp`s
/// advancing in the order the tokens are handed out, one second per [`MINTED_PER_SECOND`] tokens — real
/// tokens are minted moments before they are exchanged, so a later exchange carries a later `exp`.
pub(crate) fn mint_tokens(key: &SigningKey, audience: &str, count: usize) -> Vec<String> {
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let per_thread = count.div_ceil(threads);
    let now = now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                scope.spawn(move || {
                    (0..per_thread)
                        .map(|index| {
                            let position = thread * per_thread + index;
                            let mut jti = [0u8; 16];
                            aws_lc_rs::rand::fill(&mut jti).unwrap();
                            let claims = json!({
                                "iss": "https://bench.example.com",
                                "sub": format!("system:serviceaccount:bench:worker-{thread}"),
                                "aud": [audience],
                                "iat": now,
                                "exp": now + 3000 + i64::try_from(position / MINTED_PER_SECOND).unwrap(),
                                "jti": jti.iter().map(|byte| format!("{byte:02x}")).collect::<String>(),
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
pub(crate) fn process_cpu(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // Linux reports in USER_HZ, 100 per second on every mainstream configuration.
    Duration::from_millis(ticks * 10)
}

/// Milliseconds, for the tables.
pub(crate) fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// The p50 and p99 of `sorted`.
pub(crate) fn percentiles(sorted: &[Duration]) -> (Duration, Duration) {
    if sorted.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// The cumulative bucket counts (`le` upper bound in seconds or units, count) of the histogram `name`
/// in the server's `/metrics`, from the series whose labels contain `labels` (e.g. a route).
pub(crate) async fn metrics_histogram(
    http: &reqwest::Client,
    server: &Server,
    name: &str,
    labels: &str,
) -> Vec<(f64, f64)> {
    let text = http
        .get(format!("{}/metrics", server.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("{name}_bucket{{");
    text.lines()
        .filter(|line| line.starts_with(&prefix) && line.contains(labels))
        .filter_map(|line| {
            let le = line.split("le=\"").nth(1)?.split('"').next()?;
            let count = line.rsplit(' ').next()?.parse().ok()?;
            Some((le.parse().unwrap_or(f64::INFINITY), count))
        })
        .collect()
}

/// The bucket a quantile `q` of `after - before` (cumulative bucket counts from
/// [`metrics_histogram`]) falls in, as that bucket's upper bound.
pub(crate) fn histogram_quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> f64 {
    let counts: Vec<(f64, f64)> = after
        .iter()
        .map(|&(le, count)| {
            let earlier = before.iter().find(|(other, _)| *other == le).map_or(0.0, |(_, c)| *c);
            (le, count - earlier)
        })
        .collect();
    let total = counts.last().map_or(0.0, |(_, count)| *count);
    counts
        .iter()
        .find(|(_, count)| *count >= total * q)
        .map_or(f64::NAN, |(le, _)| *le)
}

/// The value of the unlabelled counter `name` in the server's `/metrics` (0 when never incremented).
pub(crate) async fn metrics_counter(http: &reqwest::Client, server: &Server, name: &str) -> u64 {
    let text = http
        .get(format!("{}/metrics", server.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .find_map(|value| value.trim().parse::<f64>().ok())
        .map_or(0, |value| value as u64)
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

/// A keep-alive connection to `address` for the load generators' own HTTP/1.1 (`TCP_NODELAY`, as the
/// server sets).
pub(crate) async fn connect(address: &str) -> TcpStream {
    let stream = TcpStream::connect(address).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Reads one HTTP/1.1 response (head and `Content-Length` body) into `buffer`; its status.
pub(crate) async fn read_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> u16 {
    buffer.clear();
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
        read_more(stream, buffer).await;
    };
    let head = std::str::from_utf8(&buffer[..head_end]).unwrap();
    let status: u16 = head.get(9..12).and_then(|code| code.parse().ok()).unwrap();
    let length: usize = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, value)| value.trim().parse().unwrap());
    while buffer.len() < head_end + length {
        read_more(stream, buffer).await;
    }
    status
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    let read = stream.read(&mut chunk).await.unwrap();
    assert!(read > 0, "the server closed the connection");
    buffer.extend_from_slice(&chunk[..read]);
}
