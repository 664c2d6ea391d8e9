//! `keyless serve` end to end: first start, restart, health, readiness, JWKS, shutdown.

use std::os::unix::fs::PermissionsExt;
use std::time::{SystemTime, UNIX_EPOCH};

use keyless_jose::{Algorithm, Jwks};
use serde_json::{Value, json};

use crate::harness::{Db, Site, bootstrap_file, databases, spawn_app};

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

async fn first_start_then_restart(db: Db) {
    let site = Site::new(db);
    let app = spawn_app(&site).await;

    assert_eq!(app.get_json("/healthz").await, (200, json!({"status": "ok"})));
    assert_eq!(app.get_json("/readyz").await, (200, json!({"status": "ready"})));

    // The one-time admin token: mode 0600, an org:admin token valid 24 hours.
    let path = bootstrap_file(&site);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600,
        "{db:?}"
    );
    let bootstrap: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let token = bootstrap["admin_token"].as_str().unwrap();
    assert!(token.starts_with("keyless_at_") && token.len() == 68, "{token}");
    let expires_at = bootstrap["expires_at"].as_i64().unwrap();
    assert!((expires_at - (now() + 86_400)).abs() < 120, "{expires_at}");
    let organization_id = bootstrap["organization_id"].as_str().unwrap().to_owned();
    assert_eq!(organization_id.len(), 36);
    assert!(!site.data_dir().join("bootstrap.json.tmp").exists());

    // The JWKS: one ES256 key, kid = its RFC 7638 thumbprint, parsed by our own strict reader.
    let res = app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "public, max-age=300");
    let body = res.bytes().await.unwrap();
    let jwks = Jwks::from_json(&body).unwrap();
    assert_eq!(jwks.keys().len(), 1, "{db:?}");
    assert!(jwks.skipped().is_empty());
    let key = &jwks.keys()[0];
    assert_eq!(key.alg(), Some(Algorithm::Es256));
    assert_eq!(key.kid(), Some(key.thumbprint()));
    let kid = key.kid().unwrap().to_owned();
    assert!(
        !String::from_utf8_lossy(&body).contains("\"d\""),
        "no private member is published"
    );

    app.stop().await.unwrap();

    // Restart on the same state: same organization and key, and the token file is not rewritten.
    let written = std::fs::read_to_string(&path).unwrap();
    let app = spawn_app(&site).await;
    let (_, jwks) = app.get_json("/.well-known/jwks.json").await;
    assert_eq!(jwks["keys"][0]["kid"], json!(kid), "{db:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), written);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn first_start_creates_the_organization_and_restart_reuses_it() {
    for db in databases() {
        first_start_then_restart(db).await;
    }
}

#[tokio::test]
async fn the_embedded_default_generates_a_private_key_encryption_key() {
    let site = Site::new(Db::Sqlite);
    let app = spawn_app(&site).await;
    app.stop().await.unwrap();
    let kek = site.data_dir().join("key-encryption-key");
    assert_eq!(std::fs::metadata(&kek).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(site.data_dir()).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[tokio::test]
async fn a_running_server_copies_its_sqlite_log_into_the_database_file() {
    // The first start's writes (migrations, organization, keys) go to the write-ahead log; the writer
    // does not copy them into the database file itself (not before 65,536 frames), the background
    // checkpointer does within a few of its 100-ms ticks.
    let site = Site::new(Db::Sqlite);
    let app = spawn_app(&site).await;
    let database = site.data_dir().join(keyless_server::config::SQLITE_FILE);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::metadata(&database).unwrap().len() < 64 * 1024 {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing was checkpointed: the database file is {} bytes",
            std::fs::metadata(&database).unwrap().len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_wrong_key_encryption_key_refuses_to_start() {
    let site = Site::new(Db::Sqlite);
    spawn_app(&site).await.stop().await.unwrap();
    let kek = site.data_dir().join("key-encryption-key");
    std::fs::write(&kek, "AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = keyless_server::config::Config::from_raw(keyless_server::config::RawConfig {
        listen: Some(listener.local_addr().unwrap().to_string()),
        data_dir: Some(site.data_dir()),
        ..Default::default()
    })
    .unwrap();
    let err = keyless_server::run(config, listener, async {})
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not open with this key-encryption key"), "{err}");
}

#[tokio::test]
async fn every_response_carries_a_fresh_request_id_and_unknown_routes_answer_json() {
    let site = Site::new(Db::Sqlite);
    let app = spawn_app(&site).await;
    let mut seen = std::collections::HashSet::new();
    for path in ["/healthz", "/readyz", "/.well-known/jwks.json", "/no/such/route"] {
        let res = app
            .http
            .get(app.url(path))
            .header("request-id", "req_chosen_by_the_caller")
            .send()
            .await
            .unwrap();
        let id = res.headers()["request-id"].to_str().unwrap().to_owned();
        assert!(
            id.starts_with("req_") && id.len() == 28 && id != "req_chosen_by_the_caller",
            "{path}: {id}"
        );
        assert!(seen.insert(id.clone()), "request IDs repeat: {id}");
        if path == "/no/such/route" {
            assert_eq!(res.status(), 404);
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["type"], json!("not_found_error"));
            assert_eq!(body["request_id"], json!(id), "the body names the same request");
        }
    }
    app.stop().await.unwrap();
}
