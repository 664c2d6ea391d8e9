//! `spawn_app()`: the real server on `127.0.0.1:0` with a fresh data directory, on SQLite or on a
//! fresh PostgreSQL database created with `psql` (dropped when the app is dropped).

use std::path::PathBuf;
use std::process::Command;

use keyless_server::config::{Config, RawConfig, RawKeys};
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Which database a test app runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Db {
    Sqlite,
    Postgres,
}

/// The databases to run each scenario on: SQLite always, PostgreSQL when CI says so.
pub(crate) fn databases() -> Vec<Db> {
    match std::env::var("KEYLESS_TEST_POSTGRES_URL") {
        Ok(_) => vec![Db::Sqlite, Db::Postgres],
        Err(_) => {
            eprintln!("KEYLESS_TEST_POSTGRES_URL is not set: PostgreSQL is not exercised by these tests");
            vec![Db::Sqlite]
        }
    }
}

/// A fresh PostgreSQL database, dropped on drop.
pub(crate) struct PgDatabase {
    admin_url: String,
    name: String,
    pub(crate) url: String,
}

impl PgDatabase {
    fn create() -> PgDatabase {
        let admin_url = std::env::var("KEYLESS_TEST_POSTGRES_URL").unwrap();
        let name = format!("keyless_server_test_{}_{}", std::process::id(), rand_suffix());
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

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .arg(url)
        .arg("-v")
        .arg("ON_ERROR_STOP=1")
        .arg("-qc")
        .arg(sql)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}_{nanos}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Where an app keeps its state, so a second app can be started on the same state.
pub(crate) struct Site {
    dir: tempfile::TempDir,
    pub(crate) pg: Option<PgDatabase>,
}

impl Site {
    pub(crate) fn new(db: Db) -> Site {
        let pg = (db == Db::Postgres).then(PgDatabase::create);
        Site {
            dir: tempfile::tempdir().unwrap(),
            pg,
        }
    }

    /// The data directory: not created yet, as on a first start.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The site's database opened a second time, beside its running server.
    pub(crate) async fn open_store(&self) -> keyless_store::Store {
        match &self.pg {
            Some(pg) => keyless_store::Store::connect(&pg.url).await.unwrap(),
            None => keyless_store::Store::open_sqlite(&self.data_dir().join(keyless_server::config::SQLITE_FILE))
                .await
                .unwrap(),
        }
    }

    fn config(&self, listen: &str, configure: impl FnOnce(&mut RawConfig)) -> Config {
        let mut raw = RawConfig {
            listen: Some(listen.to_owned()),
            data_dir: Some(self.data_dir()),
            ..RawConfig::default()
        };
        // Tests run their OIDC issuers on loopback over plain http.
        raw.issuers.allow_insecure_urls = true;
        if let Some(pg) = &self.pg {
            raw.database_url = Some(SecretString::from(pg.url.clone()));
            raw.keys = RawKeys {
                encryption_key: Some(SecretString::from("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")),
                encryption_key_file: None,
            };
        }
        configure(&mut raw);
        Config::from_raw(raw).unwrap()
    }
}

/// A running server.
pub(crate) struct TestApp {
    pub(crate) base_url: String,
    pub(crate) http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), keyless_server::ServeError>>>,
}

/// Starts the server on `site` and waits until it answers.
pub(crate) async fn spawn_app(site: &Site) -> TestApp {
    spawn_app_with(site, |_| {}).await
}

/// Starts the server on `site` with its configuration changed by `configure` (e.g. `[rate_limits]`).
pub(crate) async fn spawn_app_with(site: &Site, configure: impl FnOnce(&mut RawConfig)) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let config = site.config(&address.to_string(), configure);
    let (shutdown, signal) = oneshot::channel::<()>();
    let task = tokio::spawn(keyless_server::run(config, listener, async {
        let _ = signal.await;
    }));
    let app = TestApp {
        base_url: format!("http://{address}"),
        http: reqwest::Client::new(),
        shutdown: Some(shutdown),
        task: Some(task),
    };
    for _ in 0..200 {
        if app.http.get(app.url("/healthz")).send().await.is_ok() {
            return app;
        }
        if app.task.as_ref().is_some_and(JoinHandle::is_finished) {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let err = app.stop().await;
    panic!("the server did not start: {err:?}");
}

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The one-time `org:admin` token of the first start, read from `bootstrap.json`.
    pub(crate) fn admin_token(site: &Site) -> String {
        let text = std::fs::read_to_string(bootstrap_file(site)).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value["admin_token"].as_str().unwrap().to_owned()
    }

    /// `GET path` with a bearer token: status and JSON body.
    pub(crate) async fn get_authed(&self, token: &str, path: &str) -> (u16, serde_json::Value) {
        let res = self.http.get(self.url(path)).bearer_auth(token).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    /// `POST path` with a bearer token and a JSON body: status and JSON body.
    pub(crate) async fn post_authed(
        &self,
        token: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let res = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    pub(crate) async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let res = self.http.get(self.url(path)).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    /// Shuts the server down gracefully and returns how it ended.
    pub(crate) async fn stop(mut self) -> Result<(), String> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }
}

pub(crate) fn bootstrap_file(site: &Site) -> PathBuf {
    site.data_dir().join("bootstrap.json")
}
