//! keyless-server: `keyless serve` — the only crate that knows HTTP-server types.
//!
//! Parts, in reading order:
//! - [`config`]: the server's settings, layered defaults → `keyless.toml` → `KEYLESS_*` environment
//!   (`__` for nesting) → command-line flags, parsed raw then validated.
//! - [`service`]: the logic behind the handlers — the exchange ([`service::exchange`]) and its group
//!   commit ([`service::recorder`]), issuer keys ([`service::jwks`]), the Admin API
//!   ([`service::admin`]), introspection and revocation ([`service::access`]), signing keys sealed at
//!   rest ([`service::keys`]), access tokens ([`service::token`]), the first start
//!   ([`service::bootstrap`]).
//! - [`http`]: the router and its thin handlers; [`state`]: what they share.
//! - [`serve`] / [`run`]: open the database, set up the organization, serve until shut down.
//! - [`bootstrap_admin_rule`]: `keyless bootstrap admin-rule` — the same storage and organization,
//!   no serving: the first `org:admin` automation ([`service::bootstrap::admin_rule`]).
//!
//! On the embedded SQLite default or PostgreSQL: the token exchange, introspection, revocation, the
//! Admin API, the activity feed, health, readiness, metrics, the well-known documents and OpenAPI, the
//! forward-auth check (`/v1/authorize`) and, with an upstream, the built-in reverse proxy
//! ([`http::proxy`]).
//! Must not: know SQL (that is `keyless-store`), or decide an exchange (that is `keyless-core`).

mod clock;
pub mod config;
pub mod http;
pub mod service;
pub mod state;
pub mod telemetry;

use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use keyless_store::Store;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::config::{Config, Database};
use crate::service::authorize::Authorizer;
use crate::service::bootstrap::{self, AdminRuleError, AdminRuleOutcome, AdminRuleRequest, BootstrapError};
use crate::service::jwks::IssuerKeys;
use crate::service::jwks::poll;
use crate::service::jwks::source::UrlPolicy;
use crate::service::keys::{KeyEncryptionKey, KeyError};
use crate::service::recorder::Recorder;
use crate::service::request_log::{self, RequestLog};
use crate::service::{checkpoint, purge};
use crate::state::{AppState, Shared};

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] keyless_store::StoreError),
    /// The key-encryption key could not be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The organization could not be set up.
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    /// The upstream's client could not be built.
    #[error(transparent)]
    Upstream(#[from] http::proxy::UpstreamError),
    /// The listen address could not be bound, or serving failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Binds the configured address and serves until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Io {
            context: format!("binding {}", config.listen),
            source,
        })?;
    run(config, listener, shutdown_signal()).await
}

/// Serves on `listener` until `shutdown` completes, then drains in-flight requests.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if config.allow_insecure_urls {
        tracing::warn!(
            "issuers.allow_insecure_urls is ON: issuer documents may be fetched over plain http and from \
             loopback or private addresses. This is for tests and local development only"
        );
    }
    prepare_data_dir(&config.data_dir)?;
    let store = match &config.database {
        Database::Sqlite(path) => Store::open_sqlite(path).await?,
        Database::Postgres(url) => Store::connect(url.expose_secret()).await?,
    };
    let kek = KeyEncryptionKey::load(&config.kek)?;
    let organization = bootstrap::ensure_organization(&store, &kek, &config.data_dir, clock::now_unix()).await?;
    if let Some(path) = &organization.bootstrap_file {
        tracing::info!(
            organization_id = organization.id.as_str(),
            "first start: organization created; a one-time org:admin token (valid 24 hours) is in {}",
            path.display()
        );
    }
    let keys: Vec<&keyless_jose::SigningKey> = organization.signing_keys.iter().collect();
    let (recorder, writer) = Recorder::start(store.clone());
    let (request_log, request_writer) = RequestLog::start(store.clone(), config.request_log);
    let url_policy = UrlPolicy {
        allow_insecure: config.allow_insecure_urls,
    };
    let issuer_keys = Arc::new(IssuerKeys::new(config.jwks, url_policy));
    let poller_keys = Arc::clone(&issuer_keys);
    let upstream = match &config.upstream {
        Some(url) => {
            tracing::info!(upstream = %url, "the built-in proxy forwards authorized requests to the upstream");
            Some(Arc::new(http::proxy::Upstream::new(
                url,
                config.upstream_connect_timeout,
            )?))
        }
        None => None,
    };
    let state = AppState::new(Shared {
        store: store.clone(),
        organization_id: organization.id.clone(),
        default_workspace_id: organization.default_workspace_id.clone(),
        public_url: Arc::from(config.public_url.as_str()),
        url_policy,
        public_jwks: Arc::new(keyless_jose::public_jwks(&keys)),
        recorder,
        parties: Arc::default(),
        issuer_keys,
        authorizer: Arc::new(Authorizer::new(config.authorize)),
        request_log,
        upstream,
    });
    let address = listener.local_addr().map_err(|source| ServeError::Io {
        context: "reading the bound address".to_owned(),
        source,
    })?;
    tracing::info!(%address, public_url = %config.public_url, organization_id = organization.id.as_str(), "keyless is serving");
    let (stop_background, background_shutdown) = tokio::sync::watch::channel(false);
    let poller = poll::spawn(store.clone(), poller_keys, config.poll, background_shutdown.clone());
    let purger = purge::spawn(store.clone(), config.retention, background_shutdown.clone());
    let checkpointer = checkpoint::spawn(store.clone(), state.recorder.clone(), background_shutdown);
    let follower = tokio::spawn(follow_config_changes(store.clone()));
    // The peer address feeds the proxy's `x-forwarded-for`. `TCP_NODELAY`: a streamed answer's small
    // writes (server-sent events) must not wait for the client's delayed ACK.
    let app = http::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY on an accepted connection");
        }
    });
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    // The poller and the purger stop before the store closes, whatever ended serving.
    let _ = stop_background.send(true);
    if poller.await.is_err() {
        tracing::error!("the issuer key poller ended abnormally");
    }
    if purger.await.is_err() {
        tracing::error!("the purger of expired tokens ended abnormally");
    }
    if checkpointer.await.is_err() {
        tracing::error!("the SQLite checkpointer ended abnormally");
    }
    follower.abort();
    served.map_err(|source| ServeError::Io {
        context: "serving".to_owned(),
        source,
    })?;
    // The router (and with it every handle of the writer) is gone: the writer drains its queue and ends.
    if writer.await.is_err() {
        tracing::error!("the activity writer ended abnormally");
    }
    if request_writer.await.is_err() {
        tracing::error!("the request log writer ended abnormally");
    }
    store.close().await;
    tracing::info!("keyless stopped");
    Ok(())
}

/// `keyless bootstrap admin-rule`: checks `request`, then opens the storage `config` names exactly as
/// [`run`] does (creating the organization and `bootstrap.json` on a first start), builds the state
/// without serving or polling, and creates or reuses the issuer, admin service account and `org:admin`
/// rule through the Admin API's service functions. Nothing is opened or written when the request is
/// refused by its checks. Safe while a server runs on the same storage (SQLite WAL, or PostgreSQL).
pub async fn bootstrap_admin_rule(
    config: Config,
    request: AdminRuleRequest,
    now: i64,
) -> Result<AdminRuleOutcome, AdminRuleError> {
    let url_policy = UrlPolicy {
        allow_insecure: config.allow_insecure_urls,
    };
    let admin_rule = request.check(url_policy)?;
    prepare_data_dir(&config.data_dir)?;
    let store = match &config.database {
        Database::Sqlite(path) => Store::open_sqlite(path).await,
        Database::Postgres(url) => Store::connect(url.expose_secret()).await,
    }
    .map_err(ServeError::from)?;
    let outcome = async {
        let kek = KeyEncryptionKey::load(&config.kek).map_err(ServeError::from)?;
        let organization = bootstrap::ensure_organization(&store, &kek, &config.data_dir, now)
            .await
            .map_err(ServeError::from)?;
        let keys: Vec<&keyless_jose::SigningKey> = organization.signing_keys.iter().collect();
        // Nothing is recorded through the recorder here; its writer ends once the state is dropped.
        let (recorder, writer) = Recorder::start(store.clone());
        let (request_log, request_writer) = RequestLog::start(
            store.clone(),
            request_log::Settings {
                queue: 1,
                flush: Duration::ZERO,
            },
        );
        let state = AppState::new(Shared {
            store: store.clone(),
            organization_id: organization.id.clone(),
            default_workspace_id: organization.default_workspace_id.clone(),
            public_url: Arc::from(config.public_url.as_str()),
            url_policy,
            public_jwks: Arc::new(keyless_jose::public_jwks(&keys)),
            recorder,
            parties: Arc::default(),
            issuer_keys: Arc::new(IssuerKeys::new(config.jwks, url_policy)),
            authorizer: Arc::new(Authorizer::new(config.authorize)),
            request_log,
            upstream: None,
        });
        let outcome = bootstrap::admin_rule(&state, &admin_rule, now).await;
        drop(state);
        if writer.await.is_err() || request_writer.await.is_err() {
            tracing::error!("the activity writer ended abnormally");
        }
        outcome.map(|outcome| AdminRuleOutcome {
            bootstrap_file: organization.bootstrap_file,
            ..outcome
        })
    }
    .await;
    store.close().await;
    outcome
}

/// Creates the data directory (mode 0700) when missing; warns when an existing one is open to others.
fn prepare_data_dir(dir: &std::path::Path) -> Result<(), ServeError> {
    let fail = |source| ServeError::DataDir {
        path: dir.display().to_string(),
        source,
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(fail)?;
    }
    let mode = std::fs::metadata(dir).map_err(fail)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            data_dir = %dir.display(),
            "the data directory is accessible to group or others (mode {:o}); its secrets are 0600 files, \
             but `chmod 700` it",
            mode & 0o777
        );
    }
    Ok(())
}

/// Keeps [`Store::follow_config_changes`] running (PostgreSQL: other nodes' changes), reconnecting
/// after a pause when its connection fails; returns at once on SQLite.
async fn follow_config_changes(store: Store) {
    while let Err(error) = store.follow_config_changes().await {
        tracing::warn!(%error, "lost the configuration-change listener; credential checks read the database until it is back");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
