//! Service accounts and their workspace memberships.
//!
//! Parts: [`ServiceAccountRecord`] (and its view for the exchange decision), [`WorkspaceRole`],
//! [`WorkspaceMembership`]; on [`Tx`]: `service_account_create`, `_get` (locks), `_update`, `_archive`,
//! `service_account_workspace_add`, `_get` (locks), `_update`, `_remove`; on [`Store`]:
//! `service_account_get`, `service_account_list`, `service_account_workspace_list`.
//!
//! A service account's name is immutable (`service_account_update` does not write it) and unique in its
//! organization, archived accounts included. The implicit membership of the default workspace is not
//! stored: only explicit memberships are. Policy (admin accounts need a human, archived accounts cannot
//! change, live rules block archiving) is the caller's.

use keyless_core::id::{OrganizationId, ServiceAccountId, WorkspaceId};
use keyless_core::name::Name;
use keyless_core::service_account::{OrganizationRole, ServiceAccount};

use crate::audit::{self, Audit};
use crate::backend::{Conn, Query, Row};
use crate::error::StoreError;
use crate::page::list_sql;
use crate::page::{ListQuery, Page};
use crate::store::{Store, Tx};

/// A stored service account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountRecord {
    /// Its ID.
    pub id: ServiceAccountId,
    /// The organization it belongs to.
    pub organization_id: OrganizationId,
    /// Its name: immutable, unique in the organization (archived accounts included).
    pub name: Name,
    /// Its description.
    pub description: Option<String>,
    /// Its organization role.
    pub organization_role: OrganizationRole,
    /// Who created, updated and archived it, and when.
    pub audit: Audit,
}

impl ServiceAccountRecord {
    /// What the exchange decision needs of it.
    pub fn to_service_account(&self) -> ServiceAccount {
        ServiceAccount {
            id: self.id.clone(),
            organization_id: self.organization_id.clone(),
            organization_role: self.organization_role,
            archived: self.audit.is_archived(),
        }
    }
}

fn role_text(role: OrganizationRole) -> &'static str {
    match role {
        OrganizationRole::Developer => "developer",
        OrganizationRole::Admin => "admin",
    }
}

fn role_parse(text: &str) -> Result<OrganizationRole, String> {
    match text {
        "developer" => Ok(OrganizationRole::Developer),
        "admin" => Ok(OrganizationRole::Admin),
        _ => Err(format!("unknown organization role `{text}`")),
    }
}

/// A service account's role in one workspace (`workspace_role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkspaceRole {
    /// `workspace_admin`.
    Admin,
    /// `workspace_developer`.
    Developer,
    /// `workspace_restricted_developer`.
    RestrictedDeveloper,
    /// `workspace_user`: also the implicit role in the default workspace.
    User,
}

impl WorkspaceRole {
    /// Every role.
    pub const ALL: [WorkspaceRole; 4] = [Self::Admin, Self::Developer, Self::RestrictedDeveloper, Self::User];

    /// Its wire spelling, e.g. `workspace_admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "workspace_admin",
            Self::Developer => "workspace_developer",
            Self::RestrictedDeveloper => "workspace_restricted_developer",
            Self::User => "workspace_user",
        }
    }

    /// Parses its wire spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == text)
    }
}

/// An explicit membership of a service account in a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceMembership {
    /// The organization of both.
    pub organization_id: OrganizationId,
    /// The member.
    pub service_account_id: ServiceAccountId,
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The member's role there.
    pub workspace_role: WorkspaceRole,
    /// When it was added (Unix seconds).
    pub created_at: i64,
    /// Who added it.
    pub created_by_actor_id: String,
    /// When its role last changed.
    pub updated_at: i64,
    /// Who last changed its role.
    pub updated_by_actor_id: String,
}

macro_rules! columns {
    () => {
        "id, organization_id, name, description, organization_role, created_at, created_by_actor_id, \
         updated_at, updated_by_actor_id, archived_at, archived_by_actor_id"
    };
}

macro_rules! membership_columns {
    () => {
        "organization_id, service_account_id, workspace_id, workspace_role, created_at, created_by_actor_id, \
         updated_at, updated_by_actor_id"
    };
}

fn decode(row: &dyn Row) -> Result<ServiceAccountRecord, StoreError> {
    Ok(ServiceAccountRecord {
        id: row.parsed("id", ServiceAccountId::parse)?,
        organization_id: row.parsed("organization_id", OrganizationId::parse)?,
        name: row.parsed("name", Name::parse)?,
        description: row.opt_text("description")?,
        organization_role: row.parsed("organization_role", role_parse)?,
        audit: Audit::decode(row)?,
    })
}

fn decode_membership(row: &dyn Row) -> Result<WorkspaceMembership, StoreError> {
    Ok(WorkspaceMembership {
        organization_id: row.parsed("organization_id", OrganizationId::parse)?,
        service_account_id: row.parsed("service_account_id", ServiceAccountId::parse)?,
        workspace_id: row.parsed("workspace_id", WorkspaceId::parse)?,
        workspace_role: row.parsed("workspace_role", |text| {
            WorkspaceRole::parse(text).ok_or_else(|| format!("unknown workspace role `{text}`"))
        })?,
        created_at: row.int("created_at")?,
        created_by_actor_id: row.text("created_by_actor_id")?,
        updated_at: row.int("updated_at")?,
        updated_by_actor_id: row.text("updated_by_actor_id")?,
    })
}

pub(crate) async fn get(
    conn: &mut Conn<'_>,
    organization_id: &OrganizationId,
    id: &ServiceAccountId,
) -> Result<ServiceAccountRecord, StoreError> {
    let query = Query::new(concat!(
        "SELECT ",
        columns!(),
        " FROM service_accounts WHERE organization_id = $1 AND id = $2"
    ))
    .arg(organization_id.as_str())
    .arg(id.as_str())
    .locking();
    conn.fetch_optional(&query, decode).await?.ok_or(StoreError::NotFound)
}

async fn membership_get(
    conn: &mut Conn<'_>,
    organization_id: &OrganizationId,
    service_account_id: &ServiceAccountId,
    workspace_id: &WorkspaceId,
) -> Result<WorkspaceMembership, StoreError> {
    let query = Query::new(concat!(
        "SELECT ",
        membership_columns!(),
        " FROM service_account_workspaces \
          WHERE organization_id = $1 AND service_account_id = $2 AND workspace_id = $3"
    ))
    .arg(organization_id.as_str())
    .arg(service_account_id.as_str())
    .arg(workspace_id.as_str())
    .locking();
    conn.fetch_optional(&query, decode_membership)
        .await?
        .ok_or(StoreError::NotFound)
}

impl Tx {
    /// Creates a service account as given; a taken name is a [`StoreError::Conflict`] on `name`.
    pub async fn service_account_create(&mut self, service_account: &ServiceAccountRecord) -> Result<(), StoreError> {
        let query = Query::new(concat!(
            "INSERT INTO service_accounts (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .arg(service_account.id.as_str())
        .arg(service_account.organization_id.as_str())
        .arg(service_account.name.as_str())
        .arg(service_account.description.as_deref())
        .arg(role_text(service_account.organization_role))
        .arg(service_account.audit.created_at)
        .arg(service_account.audit.created_by_actor_id.as_str())
        .arg(service_account.audit.updated_at)
        .arg(service_account.audit.updated_by_actor_id.as_str())
        .arg(service_account.audit.archived_at)
        .arg(service_account.audit.archived_by_actor_id.as_deref());
        self.conn().execute(&query).await.map(drop)
    }

    /// The service account `id`, locked until the transaction ends.
    pub async fn service_account_get(
        &mut self,
        organization_id: &OrganizationId,
        id: &ServiceAccountId,
    ) -> Result<ServiceAccountRecord, StoreError> {
        get(&mut self.conn(), organization_id, id).await
    }

    /// Writes a service account's `description`, `organization_role` and `updated_*` columns (the name is
    /// immutable).
    pub async fn service_account_update(&mut self, service_account: &ServiceAccountRecord) -> Result<(), StoreError> {
        let query = Query::new(
            "UPDATE service_accounts SET description = $3, organization_role = $4, updated_at = $5, \
             updated_by_actor_id = $6 WHERE organization_id = $1 AND id = $2",
        )
        .arg(service_account.organization_id.as_str())
        .arg(service_account.id.as_str())
        .arg(service_account.description.as_deref())
        .arg(role_text(service_account.organization_role))
        .arg(service_account.audit.updated_at)
        .arg(service_account.audit.updated_by_actor_id.as_str());
        match self.conn().execute(&query).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    /// Archives a service account; returns `false` when it already was (the first archive is kept).
    pub async fn service_account_archive(
        &mut self,
        organization_id: &OrganizationId,
        id: &ServiceAccountId,
        at: i64,
        actor_id: &str,
    ) -> Result<bool, StoreError> {
        audit::archive(
            &mut self.conn(),
            "UPDATE service_accounts SET archived_at = $3, archived_by_actor_id = $4 \
             WHERE organization_id = $1 AND id = $2 AND archived_at IS NULL",
            "SELECT 1 AS one FROM service_accounts WHERE organization_id = $1 AND id = $2",
            (organization_id.as_str(), id.as_str()),
            at,
            actor_id,
        )
        .await
    }

    /// Adds a membership; an existing one is a [`StoreError::Conflict`] on `workspace membership`, an
    /// unknown service account or workspace (in this organization) is [`StoreError::NotFound`].
    pub async fn service_account_workspace_add(&mut self, membership: &WorkspaceMembership) -> Result<(), StoreError> {
        let query = Query::new(concat!(
            "INSERT INTO service_account_workspaces (",
            membership_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .arg(membership.organization_id.as_str())
        .arg(membership.service_account_id.as_str())
        .arg(membership.workspace_id.as_str())
        .arg(membership.workspace_role.as_str())
        .arg(membership.created_at)
        .arg(membership.created_by_actor_id.as_str())
        .arg(membership.updated_at)
        .arg(membership.updated_by_actor_id.as_str())
        .on_key_conflict("workspace membership");
        self.conn().execute(&query).await.map(drop)
    }

    /// The membership of `service_account_id` in `workspace_id`, locked until the transaction ends.
    pub async fn service_account_workspace_get(
        &mut self,
        organization_id: &OrganizationId,
        service_account_id: &ServiceAccountId,
        workspace_id: &WorkspaceId,
    ) -> Result<WorkspaceMembership, StoreError> {
        membership_get(&mut self.conn(), organization_id, service_account_id, workspace_id).await
    }

    /// Writes a membership's `workspace_role` and `updated_*` columns.
    pub async fn service_account_workspace_update(
        &mut self,
        membership: &WorkspaceMembership,
    ) -> Result<(), StoreError> {
        let query = Query::new(
            "UPDATE service_account_workspaces SET workspace_role = $4, updated_at = $5, updated_by_actor_id = $6 \
             WHERE organization_id = $1 AND service_account_id = $2 AND workspace_id = $3",
        )
        .arg(membership.organization_id.as_str())
        .arg(membership.service_account_id.as_str())
        .arg(membership.workspace_id.as_str())
        .arg(membership.workspace_role.as_str())
        .arg(membership.updated_at)
        .arg(membership.updated_by_actor_id.as_str());
        match self.conn().execute(&query).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    /// Removes a membership ([`StoreError::NotFound`] if there is none).
    pub async fn service_account_workspace_remove(
        &mut self,
        organization_id: &OrganizationId,
        service_account_id: &ServiceAccountId,
        workspace_id: &WorkspaceId,
    ) -> Result<(), StoreError> {
        let query = Query::new(
            "DELETE FROM service_account_workspaces \
             WHERE organization_id = $1 AND service_account_id = $2 AND workspace_id = $3",
        )
        .arg(organization_id.as_str())
        .arg(service_account_id.as_str())
        .arg(workspace_id.as_str());
        match self.conn().execute(&query).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }
}

impl Store {
    /// The service account `id`.
    pub async fn service_account_get(
        &self,
        organization_id: &OrganizationId,
        id: &ServiceAccountId,
    ) -> Result<ServiceAccountRecord, StoreError> {
        get(&mut self.read().await?.conn(), organization_id, id).await
    }

    /// A page of the organization's service accounts, newest first.
    pub async fn service_account_list(
        &self,
        organization_id: &OrganizationId,
        list: &ListQuery,
    ) -> Result<Page<ServiceAccountRecord>, StoreError> {
        let sql = list_sql!("service_accounts", columns!());
        self.list_page(sql, organization_id, list, decode, |service_account| {
            (service_account.audit.created_at, service_account.id.as_str())
        })
        .await
    }

    /// The explicit workspace memberships of a service account, by workspace ID.
    pub async fn service_account_workspace_list(
        &self,
        organization_id: &OrganizationId,
        service_account_id: &ServiceAccountId,
    ) -> Result<Vec<WorkspaceMembership>, StoreError> {
        let query = Query::new(concat!(
            "SELECT ",
            membership_columns!(),
            " FROM service_account_workspaces WHERE organization_id = $1 AND service_account_id = $2 \
              ORDER BY workspace_id"
        ))
        .arg(organization_id.as_str())
        .arg(service_account_id.as_str());
        self.read().await?.conn().fetch_all(&query, decode_membership).await
    }
}
