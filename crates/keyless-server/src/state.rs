//! The one state every handler shares: cheap to clone, no globals.

use std::sync::Arc;

use keyless_core::id::{OrganizationId, WorkspaceId};
use keyless_store::Store;
use serde_json::Value;

use crate::http::proxy::Upstream;
use crate::service::authorize::Authorizer;
use crate::service::exchange::PartiesCache;
use crate::service::jwks::IssuerKeys;
use crate::service::jwks::source::UrlPolicy;
use crate::service::recorder::Recorder;
use crate::service::request_log::RequestLog;

/// What handlers need: the [`Shared`] fields behind one `Arc`, reached through `Deref`. axum clones the
/// state for every request that extracts it; cloning the fields themselves (two connection pools, two ID
/// strings, a queue sender, several `Arc`s) and dropping them again was ~6 % of the server's samples
/// under `/v1/authorize` load.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// The state of `shared`.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`].
pub struct Shared {
    /// The database.
    pub store: Store,
    /// The organization this server serves.
    pub organization_id: OrganizationId,
    /// Its default workspace (what `workspace_id: "default"` means).
    pub default_workspace_id: WorkspaceId,
    /// The server's public URL: the issuer of its metadata and the audience a subject token must
    /// carry when its rule sets no `match.audience`.
    pub public_url: Arc<str>,
    /// Whether issuer URLs may be http, loopback or private (`issuers.allow_insecure_urls`).
    pub url_policy: UrlPolicy,
    /// The public JWKS document of keyless's signing keys.
    pub public_jwks: Arc<Value>,
    /// The group-commit writer of exchange outcomes.
    pub recorder: Recorder,
    /// What exchanges read, cached per configuration generation.
    pub parties: Arc<PartiesCache>,
    /// Issuer keys: fetched, cached and shared with the background poller.
    pub issuer_keys: Arc<IssuerKeys>,
    /// Request authorization: the route table, the credential cache, the rate limits.
    pub authorizer: Arc<Authorizer>,
    /// The `api_request` writer.
    pub request_log: RequestLog,
    /// The built-in proxy's upstream, when one is configured.
    pub upstream: Option<Arc<Upstream>>,
}
