//! Service accounts as the exchange decision sees them: the identity a minted token acts as.
//!
//! Parts: [`OrganizationRole`], [`ServiceAccount`]. Which scopes a role allows lives with the scopes
//! ([`crate::scope::Scope::allowed_for`]); workspace memberships are not modelled here yet.

use serde::{Deserialize, Serialize};

use crate::id::{OrganizationId, ServiceAccountId};

/// A service account's organization role (`organization_role`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrganizationRole {
    /// `developer`, the default.
    #[default]
    Developer,
    /// `admin`: may hold `org:` scopes.
    Admin,
}

/// A stored service account, reduced to what the decision needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    /// Its ID.
    pub id: ServiceAccountId,
    /// The organization it belongs to.
    pub organization_id: OrganizationId,
    /// Its organization role, which caps the scopes of its tokens.
    pub organization_role: OrganizationRole,
    /// Whether it is archived (archived accounts get no tokens).
    pub archived: bool,
}
