//! Workspaces (`wrkspc_…`): `/v1/organizations/workspaces`. Wherever a workspace ID is accepted,
//! `default` names the default workspace.

use serde::{Deserialize, Serialize};

use crate::Audit;

/// A workspace (`type: workspace`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    /// `wrkspc_…`.
    pub id: String,
    /// Always `workspace`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Unique per organization.
    pub name: String,
    /// Whether this is the organization's default workspace.
    pub is_default: bool,
    /// The audit fields.
    #[serde(flatten)]
    pub audit: Audit,
}

/// `POST /v1/organizations/workspaces`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspace {
    /// `^[a-z0-9-]+$`, 1–255 characters.
    pub name: String,
}

/// `POST /v1/organizations/workspaces/{id}`: a partial update.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateWorkspace {
    /// The new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}
