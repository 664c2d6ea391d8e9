//! Opening databases: migrations apply on a fresh database and are a no-op on reopen; URLs the store
//! refuses; the SQLite settings actually in force.

use keyless_store::{Backend, Store, StoreError};
use sqlx::Connection;

use crate::harness::{self, Db, NOW};

async fn migrations_apply_and_reopen(db: Db) {
    let store = &db.store;
    store.ping().await.unwrap();
    assert!(store.organization_list().await.unwrap().is_empty());
    let org = harness::seed_org(store, 1).await;

    for _ in 0..2 {
        let reopened = db.reopen().await;
        assert_eq!(reopened.backend(), store.backend());
        let orgs = reopened.organization_list().await.unwrap();
        assert_eq!(orgs.len(), 1);
        assert_eq!(orgs[0].id, org.id);
        assert_eq!(orgs[0].created_at, NOW);
        assert_eq!(
            reopened.workspace_get_default(&org.id).await.unwrap().id,
            org.default_workspace
        );
        reopened.close().await;
    }
    assert_eq!(
        store.organization_get(&org.id).await.unwrap().id,
        org.id,
        "the first store still works"
    );
    assert!(matches!(
        store.organization_get(&harness::org_id(99)).await,
        Err(StoreError::NotFound)
    ));
}

async fn backend_is_reported(db: Db) {
    let expected = if db.url.starts_with("sqlite:") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    };
    assert_eq!(db.store.backend(), expected);
    assert!(format!("{:?}", db.store).contains(&format!("{expected:?}")));
}

/// sqlx 0.9.0 leaves `TCP_NODELAY` off; the store's connect hook sets it (see `keyless_store::nodelay`).
/// Without the hook no socket to the server would have it: sqlx never sets it.
async fn postgres_sockets_have_tcp_nodelay(db: Db) {
    if db.url.starts_with("sqlite:") {
        return;
    }
    assert!(db.store.organization_list().await.unwrap().is_empty());
    let authority = db.url.split("://").nth(1).unwrap().split('/').next().unwrap();
    let host_port = authority.rsplit('@').next().unwrap();
    let port = host_port
        .rsplit_once(':')
        .map_or(5432, |(_, port)| port.parse().unwrap());
    let (sockets, with_nodelay) = keyless_store::nodelay::count_for_peer_port(port).unwrap();
    assert!(sockets >= 1, "the store holds a connection to port {port}");
    assert!(
        with_nodelay >= 1,
        "{with_nodelay} of {sockets} sockets to port {port} have TCP_NODELAY"
    );
}

conformance!(
    migrations_apply_and_reopen,
    backend_is_reported,
    postgres_sockets_have_tcp_nodelay
);

#[tokio::test]
async fn refused_urls() {
    for url in [
        "mysql://localhost/db",
        "sqlite::memory:",
        "sqlite://x.db?mode=memory",
        "",
    ] {
        let res = Store::connect(url).await;
        assert!(matches!(res, Err(StoreError::Unavailable(_))), "{url}");
    }
}

#[tokio::test]
async fn sqlite_settings() {
    let dir = std::env::temp_dir().join(format!("keyless-store-settings-{}", std::process::id()));
    let path = dir.join("nested").join("keyless.db");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let store = Store::open_sqlite(&path).await.unwrap();
    assert!(path.exists(), "created if missing");
    store.close().await;

    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(journal_mode, "wal");
    let migrations: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(migrations, 7);
    conn.close().await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}
