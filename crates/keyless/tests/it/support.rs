//! The shared harness of the CLI's integration tests: a server's storage ([`Site`]: a data directory
//! and, with `KEYLESS_TEST_POSTGRES_URL`, a fresh PostgreSQL database), a running `keyless serve` on it
//! ([`Server`], killed on drop), and what one run of the binary printed ([`Run`]).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A key-encryption key for PostgreSQL sites (SQLite generates one in the data directory).
const KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Db {
    Sqlite,
    Postgres,
}

/// SQLite always, PostgreSQL when `KEYLESS_TEST_POSTGRES_URL` is set.
#[allow(clippy::print_stderr, reason = "says why PostgreSQL is skipped")]
pub(crate) fn databases() -> Vec<Db> {
    if std::env::var("KEYLESS_TEST_POSTGRES_URL").is_ok() {
        vec![Db::Sqlite, Db::Postgres]
    } else {
        eprintln!("KEYLESS_TEST_POSTGRES_URL is not set: PostgreSQL is not exercised by these tests");
        vec![Db::Sqlite]
    }
}

/// A fresh PostgreSQL database, dropped on drop.
pub(crate) struct PgDatabase {
    pub(crate) admin_url: String,
    pub(crate) name: String,
    pub(crate) url: String,
}

impl PgDatabase {
    pub(crate) fn create() -> PgDatabase {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let admin_url = std::env::var("KEYLESS_TEST_POSTGRES_URL").unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "keyless_cli_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        psql(&admin_url, &format!("CREATE DATABASE {name}"));
        let (base, _) = admin_url.rsplit_once('/').expect("the URL names a database");
        let url = format!("{base}/{name}");
        PgDatabase { admin_url, name, url }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        psql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

pub(crate) fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A server's storage: a data directory (not created yet) and, for PostgreSQL, a fresh database.
pub(crate) struct Site {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) pg: Option<PgDatabase>,
}

impl Site {
    pub(crate) fn new(db: Db) -> Site {
        Site {
            dir: tempfile::tempdir().unwrap(),
            pg: (db == Db::Postgres).then(PgDatabase::create),
        }
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `keyless <args> --data-dir … [--database-url …]`, with no `KEYLESS_*` variable but the KEK.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keyless"));
        command
            .env_clear()
            .env("RUST_BACKTRACE", "1")
            .args(args)
            .args(["--data-dir", self.data_dir().to_str().unwrap()]);
        if let Some(pg) = &self.pg {
            command
                .args(["--database-url", &pg.url])
                .env("KEYLESS_KEYS__ENCRYPTION_KEY", KEK);
        }
        command
    }

    /// Runs `keyless bootstrap admin-rule <args>`.
    pub(crate) fn bootstrap(&self, args: &[&str]) -> Run {
        let out = self
            .command(&[&["bootstrap", "admin-rule"], args].concat())
            .output()
            .unwrap();
        Run::from(out)
    }

    /// The organization and the one-time admin token of `bootstrap.json`.
    pub(crate) fn bootstrap_file(&self) -> (String, String) {
        let text = std::fs::read_to_string(self.data_dir().join("bootstrap.json")).unwrap();
        let document: Value = serde_json::from_str(&text).unwrap();
        (
            document["organization_id"].as_str().unwrap().to_owned(),
            document["admin_token"].as_str().unwrap().to_owned(),
        )
    }
}

/// What one run printed and how it exited.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }
}

impl Run {
    /// Asserts success and parses `--output json`.
    pub(crate) fn json(&self) -> Value {
        assert_eq!(self.code, Some(0), "{self:#?}");
        serde_json::from_str(&self.stdout).unwrap()
    }

    /// Asserts a refusal: exit 1, nothing on stdout, exactly `error: <message>` on stderr.
    pub(crate) fn assert_refused(&self, message: &str) {
        assert_eq!(self.code, Some(1), "{self:#?}");
        assert_eq!(self.stdout, "", "{self:#?}");
        assert_eq!(self.stderr, format!("error: {message}\n"));
        assert!(!self.stderr.contains("panicked") && !self.stderr.contains("backtrace"));
    }
}

/// A running `keyless serve` on a site, killed on drop.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

impl Server {
    pub(crate) fn start(site: &Site) -> Server {
        let port = free_port();
        let child = site
            .command(&["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.request("GET", "/readyz", None, None).is_none() {
            assert!(Instant::now() < deadline, "keyless serve did not answer within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// One HTTP/1.1 request; `None` when nothing answers.
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Option<(u16, String)> {
        let body = body.map(Value::to_string).unwrap_or_default();
        self.send(method, path, token, "application/json", &body)
    }

    /// `POST` a form body (the OAuth endpoints); `None` when nothing answers.
    pub(crate) fn form(&self, path: &str, token: &str, body: &str) -> Option<(u16, String)> {
        self.send("POST", path, Some(token), "application/x-www-form-urlencoded", body)
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &str,
    ) -> Option<(u16, String)> {
        let authorization = token.map(|token| format!("Bearer {token}"));
        let mut headers = vec![("content-type", content_type)];
        if let Some(authorization) = &authorization {
            headers.push(("authorization", authorization));
        }
        status_and_body(&http(self.port, method, path, &headers, body)?)
    }

    /// An Admin API call that must answer `expect_status`; its JSON body.
    pub(crate) fn api(&self, method: &str, path: &str, token: &str, body: Option<Value>, expect_status: u16) -> Value {
        let (status, text) = self.request(method, path, Some(token), body.as_ref()).unwrap();
        assert_eq!(status, expect_status, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One HTTP/1.1 request to `127.0.0.1:port`: the whole response (status line, headers, body), or
/// `None` when nothing answers.
pub(crate) fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    write!(stream, "{head}\r\n{body}").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// The status code and body of a whole response.
pub(crate) fn status_and_body(response: &str) -> Option<(u16, String)> {
    let status = response.get(9..12)?.parse().ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    Some((status, body.to_owned()))
}
