//! Service accounts (`svac_…`) and their workspace memberships: `/v1/organizations/service_accounts`.

use serde::{Deserialize, Serialize};

use crate::{Audit, OrganizationRole, WorkspaceRole};

/// A service account (`type: service_account`): a non-human identity that federation rules target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceAccount {
    /// `svac_…`.
    pub id: String,
    /// Always `service_account`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Unique per organization (archived accounts included); immutable.
    pub name: String,
    /// At most 1024 characters.
    pub description: Option<String>,
    /// `developer` or `admin`.
    pub organization_role: OrganizationRole,
    /// The audit fields.
    #[serde(flatten)]
    pub audit: Audit,
}

/// `POST /v1/organizations/service_accounts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateServiceAccount {
    /// `^[a-z0-9-]+$`, 1–255 characters.
    pub name: String,
    /// An optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The role; the server's default is `developer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_role: Option<OrganizationRole>,
}

/// `POST /v1/organizations/service_accounts/{id}`: a partial update; `None` fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateServiceAccount {
    /// Immutable: accepted only unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `Some(None)` clears the description (`null`), `Some(Some(_))` sets it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::nullable")]
    pub description: Option<Option<String>>,
    /// The new role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_role: Option<OrganizationRole>,
}

/// A workspace membership (`type: service_account_workspace_membership`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceMembership {
    /// Always `service_account_workspace_membership`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The member.
    pub service_account_id: String,
    /// The workspace (`wrkspc_…`).
    pub workspace_id: String,
    /// The role in that workspace.
    pub workspace_role: WorkspaceRole,
    /// `true` for the implicit `workspace_user` membership of the default workspace (not removable).
    pub implicit: bool,
    /// When it was created.
    pub created_at: String,
    /// Who created it.
    pub created_by_actor_id: String,
    /// When it last changed.
    pub updated_at: String,
    /// Who changed it last.
    pub updated_by_actor_id: String,
}

/// `POST …/service_accounts/{id}/workspaces`: add a membership or change its role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetWorkspaceMembership {
    /// `wrkspc_…` or `default`; `None` when the workspace is in the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// The role to hold there.
    pub workspace_role: WorkspaceRole,
}

/// The answer to `DELETE …/service_accounts/{id}/workspaces/{workspace_id}`
/// (`type: service_account_workspace_membership_deleted`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceMembershipDeleted {
    /// Always `service_account_workspace_membership_deleted`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The former member.
    pub service_account_id: String,
    /// The workspace it left.
    pub workspace_id: String,
}
