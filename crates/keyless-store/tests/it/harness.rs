//! Test databases and fixtures.
//!
//! [`run`] gives a scenario a fresh store on the chosen backend and removes the database afterwards, even
//! when the scenario panics. SQLite: a new directory under the system temp directory. PostgreSQL: `CREATE
//! DATABASE keyless_test_<random>` through `KEYLESS_TEST_POSTGRES_URL`, dropped at the end; unset, the
//! PostgreSQL half of each test passes without running and the binary says so once on stderr.
//! Fixtures build records with fixed times ([`NOW`]) and predictable IDs.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use keyless_core::id::{IssuerId, OrganizationId, RuleId, ServiceAccountId, WorkspaceId};
use keyless_core::lifetime::TokenLifetime;
use keyless_core::name::Name;
use keyless_core::rule::{MatchDraft, RuleMode, RuleWorkspaces};
use keyless_core::scope::ScopeSet;
use keyless_core::service_account::OrganizationRole;
use keyless_store::Store;
use keyless_store::activity::Activity;
use keyless_store::audit::Audit;
use keyless_store::issuer::{IssuerPollStatus, IssuerRecord};
use keyless_store::organization::OrganizationRecord;
use keyless_store::rule::RuleRecord;
use keyless_store::service_account::ServiceAccountRecord;
use keyless_store::workspace::WorkspaceRecord;
use serde_json::json;
use sqlx::Connection;

/// The fixed "now" of every test (Unix seconds).
pub(crate) const NOW: i64 = 1_750_000_000;
/// The actor of fixture changes.
pub(crate) const ADMIN: &str = "svac_admin";

/// The environment variable naming the PostgreSQL server to test against.
const POSTGRES_URL_VAR: &str = "KEYLESS_TEST_POSTGRES_URL";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// A scenario's database: the store, and the URL to open it again.
pub(crate) struct Db {
    pub(crate) store: Store,
    pub(crate) url: String,
}

impl Db {
    /// Opens the same database again (migrations run again: they must be a no-op).
    pub(crate) async fn reopen(&self) -> Store {
        Store::connect(&self.url).await.expect("reopen the database")
    }
}

enum Cleanup {
    Directory(PathBuf),
    Database { admin_url: String, name: String },
}

/// A name no other test, run or process uses.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let random = RandomState::new().build_hasher().finish();
    format!(
        "{}_{}_{random:016x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(base, query)| (base, Some(query)));
    let authority_start = base.find("://").map_or(0, |idx| idx + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |idx| authority_start + idx);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

async fn create(backend: Backend) -> Option<(Db, Cleanup)> {
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("keyless-store-test-{}", unique_suffix()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("keyless.db");
            let store = Store::open_sqlite(&path).await.expect("open a fresh SQLite database");
            let url = format!("sqlite://{}", path.display());
            Some((Db { store, url }, Cleanup::Directory(dir)))
        }
        Backend::Postgres => {
            let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
                static NOTICE: Once = Once::new();
                NOTICE.call_once(|| {
                    let _ = writeln!(
                        std::io::stderr(),
                        "keyless-store: {POSTGRES_URL_VAR} is not set: PostgreSQL was not exercised"
                    );
                });
                return None;
            };
            let name = format!("keyless_test_{}", unique_suffix());
            let mut admin = sqlx::PgConnection::connect(&admin_url)
                .await
                .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is set but PostgreSQL is unreachable: {e}"));
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut admin)
                .await
                .unwrap();
            admin.close().await.unwrap();
            let url = with_database(&admin_url, &name);
            let store = Store::connect(&url)
                .await
                .expect("connect to the fresh PostgreSQL database");
            Some((Db { store, url }, Cleanup::Database { admin_url, name }))
        }
    }
}

async fn clean(cleanup: Cleanup) {
    match cleanup {
        Cleanup::Directory(dir) => {
            let _ = std::fs::remove_dir_all(dir);
        }
        Cleanup::Database { admin_url, name } => {
            let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await
            .unwrap();
            admin.close().await.unwrap();
        }
    }
}

/// Runs `scenario` on a fresh database of `backend`, then removes the database, then re-raises the
/// scenario's panic if it panicked.
pub(crate) async fn run<F, Fut>(backend: Backend, scenario: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some((db, cleanup)) = create(backend).await else {
        return;
    };
    let store = db.store.clone();
    let res = tokio::spawn(scenario(db)).await;
    store.close().await;
    clean(cleanup).await;
    if let Err(error) = res {
        std::panic::resume_unwind(error.into_panic());
    }
}

// ---- fixtures ----

/// The organization numbered `n`.
pub(crate) fn org_id(n: u32) -> OrganizationId {
    OrganizationId::parse(&format!("0190a1b2-c3d4-7e5f-8a9b-{n:012x}")).unwrap()
}

pub(crate) fn workspace_id(text: &str) -> WorkspaceId {
    WorkspaceId::parse(&format!("wrkspc_{text}")).unwrap()
}

pub(crate) fn service_account_id(text: &str) -> ServiceAccountId {
    ServiceAccountId::parse(&format!("svac_{text}")).unwrap()
}

pub(crate) fn issuer_id(text: &str) -> IssuerId {
    IssuerId::parse(&format!("fdis_{text}")).unwrap()
}

pub(crate) fn rule_id(text: &str) -> RuleId {
    RuleId::parse(&format!("fdrl_{text}")).unwrap()
}

pub(crate) fn name(text: &str) -> Name {
    Name::parse(text).unwrap()
}

/// An organization, seeded: `org_id(n)` with its default workspace `wrkspc_default{n}`.
pub(crate) struct Org {
    pub(crate) id: OrganizationId,
    pub(crate) default_workspace: WorkspaceId,
}

/// Creates organization `n` and its default workspace, with an activity event, in one transaction.
pub(crate) async fn seed_org(store: &Store, n: u32) -> Org {
    let org = Org {
        id: org_id(n),
        default_workspace: workspace_id(&format!("default{n}")),
    };
    let mut tx = store.begin().await.unwrap();
    tx.organization_create(&OrganizationRecord {
        id: org.id.clone(),
        created_at: NOW,
    })
    .await
    .unwrap();
    tx.workspace_create(&WorkspaceRecord {
        id: org.default_workspace.clone(),
        organization_id: org.id.clone(),
        name: name("default"),
        is_default: true,
        audit: Audit::created(NOW, "system"),
    })
    .await
    .unwrap();
    tx.activity_append(&activity(&org.id, "platform_organization_created", None, NOW))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    org
}

pub(crate) fn workspace(org: &Org, id: &str, workspace_name: &str, at: i64) -> WorkspaceRecord {
    WorkspaceRecord {
        id: workspace_id(id),
        organization_id: org.id.clone(),
        name: name(workspace_name),
        is_default: false,
        audit: Audit::created(at, ADMIN),
    }
}

pub(crate) fn service_account(org: &Org, id: &str, account_name: &str, at: i64) -> ServiceAccountRecord {
    ServiceAccountRecord {
        id: service_account_id(id),
        organization_id: org.id.clone(),
        name: name(account_name),
        description: Some(format!("{account_name} does things")),
        organization_role: OrganizationRole::Developer,
        audit: Audit::created(at, ADMIN),
    }
}

pub(crate) fn issuer(org: &Org, id: &str, issuer_name: &str, at: i64) -> IssuerRecord {
    IssuerRecord {
        id: issuer_id(id),
        organization_id: org.id.clone(),
        name: name(issuer_name),
        issuer_url: format!("https://{issuer_name}.example.com"),
        jwks: json!({"type": "discovery"}),
        check_jti: true,
        max_jwt_lifetime_seconds: 3600,
        jwks_polling_disabled_at: None,
        poll_status: IssuerPollStatus::default(),
        audit: Audit::created(at, ADMIN),
    }
}

pub(crate) fn rule(
    org: &Org,
    id: &str,
    rule_name: &str,
    issuer: &IssuerId,
    target: &ServiceAccountId,
    at: i64,
) -> RuleRecord {
    RuleRecord {
        id: rule_id(id),
        organization_id: org.id.clone(),
        name: name(rule_name),
        description: None,
        issuer_id: issuer.clone(),
        r#match: MatchDraft {
            subject_prefix: Some("repo:acme/*".to_owned()),
            audience: None,
            claims: Some([("repository_owner".to_owned(), "acme".to_owned())].into()),
            condition: Some("claims.ref == \"refs/heads/main\"".to_owned()),
        },
        service_account_id: target.clone(),
        oauth_scope: ScopeSet::default_grant(),
        token_lifetime: TokenLifetime::new(600).unwrap(),
        workspaces: RuleWorkspaces::Listed([org.default_workspace.clone()].into()),
        mode: RuleMode::Enforce,
        audit: Audit::created(at, ADMIN),
    }
}

pub(crate) fn activity(org: &OrganizationId, activity_type: &str, resource_id: Option<&str>, at: i64) -> Activity {
    Activity {
        organization_id: org.clone(),
        activity_type: activity_type.to_owned(),
        actor_id: Some(ADMIN.to_owned()),
        resource_id: resource_id.map(str::to_owned),
        request_id: None,
        created_at: at,
        payload: json!({"at": at}),
    }
}

/// Creates an issuer and a service account (and commits), for tests that need a rule's references.
pub(crate) async fn seed_issuer_and_account(store: &Store, org: &Org) -> (IssuerId, ServiceAccountId) {
    let mut tx = store.begin().await.unwrap();
    let issuer = issuer(org, "gh", "github", NOW);
    let account = service_account(org, "deploy", "deploy", NOW);
    tx.issuer_create(&issuer).await.unwrap();
    tx.service_account_create(&account).await.unwrap();
    tx.commit().await.unwrap();
    (issuer.id, account.id)
}

#[test]
fn database_urls() {
    let check = |url: &str, expect: &str| assert_eq!(with_database(url, "db1"), expect, "{url}");
    check(
        "postgres://postgres@127.0.0.1:5432/test",
        "postgres://postgres@127.0.0.1:5432/db1",
    );
    check(
        "postgres://postgres@127.0.0.1:5432",
        "postgres://postgres@127.0.0.1:5432/db1",
    );
    check(
        "postgres://u:p@localhost/test?sslmode=disable",
        "postgres://u:p@localhost/db1?sslmode=disable",
    );
}
