//! The one state every handler shares: cheap to clone, no globals.

use std::sync::Arc;

use keyless_core::id::OrganizationId;
use keyless_store::Store;
use serde_json::Value;

/// What handlers need.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The organization this server serves.
    pub organization_id: OrganizationId,
    /// The public JWKS document of keyless's signing keys.
    pub public_jwks: Arc<Value>,
}
