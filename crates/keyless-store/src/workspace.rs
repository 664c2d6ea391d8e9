//! Workspaces: where tokens and API keys are bound. Every organization has exactly one default workspace
//! (a partial unique index enforces it).
//!
//! Parts: [`WorkspaceRecord`], [`WorkspaceReferences`]; [`Tx::workspace_create`], [`Tx::workspace_get`]
//! (locks), [`Tx::workspace_update`], [`Tx::workspace_archive`], [`Tx::workspace_references`];
//! [`Store::workspace_get`], [`Store::workspace_get_default`], [`Store::workspace_list`].
//!
//! Policy (that the default workspace cannot be archived, that archived ones cannot be updated, that
//! live references block an archive) is the caller's; this module stores and counts.

use keyless_core::id::{ApiKeyId, OrganizationId, RuleId, ServiceAccountId, WorkspaceId};
use keyless_core::name::Name;

use crate::audit::{self, Audit};
use crate::backend::{Conn, Query, Row};
use crate::error::StoreError;
use crate::page::list_sql;
use crate::page::{ListQuery, Page};
use crate::store::{Store, Tx};

/// A stored workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceRecord {
    /// Its ID.
    pub id: WorkspaceId,
    /// The organization it belongs to.
    pub organization_id: OrganizationId,
    /// Its name, unique in the organization (archived workspaces included).
    pub name: Name,
    /// Whether it is the organization's default workspace.
    pub is_default: bool,
    /// Who created, updated and archived it, and when.
    pub audit: Audit,
}

/// What still uses a workspace: live rules that list it, live service accounts with an explicit
/// membership of it (each by ID, sorted). Rules that apply to all workspaces do not list it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkspaceReferences {
    /// Live (not archived) rules with the workspace among their listed workspaces.
    pub rule_ids: Vec<RuleId>,
    /// Live (not archived) service accounts with an explicit membership of the workspace.
    pub service_account_ids: Vec<ServiceAccountId>,
    /// Live (not archived) API keys of the workspace.
    pub api_key_ids: Vec<ApiKeyId>,
}

impl WorkspaceReferences {
    /// Whether nothing live uses the workspace.
    pub fn is_empty(&self) -> bool {
        self.rule_ids.is_empty() && self.service_account_ids.is_empty() && self.api_key_ids.is_empty()
    }
}

macro_rules! columns {
    () => {
        "id, organization_id, name, is_default, created_at, created_by_actor_id, updated_at, \
         updated_by_actor_id, archived_at, archived_by_actor_id"
    };
}

fn decode(row: &dyn Row) -> Result<WorkspaceRecord, StoreError> {
    Ok(WorkspaceRecord {
        id: row.parsed("id", WorkspaceId::parse)?,
        organization_id: row.parsed("organization_id", OrganizationId::parse)?,
        name: row.parsed("name", Name::parse)?,
        is_default: row.bool("is_default")?,
        audit: Audit::decode(row)?,
    })
}

async fn get(
    conn: &mut Conn<'_>,
    organization_id: &OrganizationId,
    id: &WorkspaceId,
) -> Result<WorkspaceRecord, StoreError> {
    let query = Query::new(concat!(
        "SELECT ",
        columns!(),
        " FROM workspaces WHERE organization_id = $1 AND id = $2"
    ))
    .arg(organization_id.as_str())
    .arg(id.as_str())
    .locking();
    conn.fetch_optional(&query, decode).await?.ok_or(StoreError::NotFound)
}

impl Tx {
    /// Creates a workspace as given; a taken name is a [`StoreError::Conflict`] on `name`, a second
    /// default workspace one on `default workspace`.
    pub async fn workspace_create(&mut self, workspace: &WorkspaceRecord) -> Result<(), StoreError> {
        let query = Query::new(concat!(
            "INSERT INTO workspaces (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .arg(workspace.id.as_str())
        .arg(workspace.organization_id.as_str())
        .arg(workspace.name.as_str())
        .arg(workspace.is_default)
        .arg(workspace.audit.created_at)
        .arg(workspace.audit.created_by_actor_id.as_str())
        .arg(workspace.audit.updated_at)
        .arg(workspace.audit.updated_by_actor_id.as_str())
        .arg(workspace.audit.archived_at)
        .arg(workspace.audit.archived_by_actor_id.as_deref())
        .on_conflict("default workspace");
        self.conn().execute(&query).await.map(drop)
    }

    /// The workspace `id`, locked until the transaction ends.
    pub async fn workspace_get(
        &mut self,
        organization_id: &OrganizationId,
        id: &WorkspaceId,
    ) -> Result<WorkspaceRecord, StoreError> {
        get(&mut self.conn(), organization_id, id).await
    }

    /// Writes a workspace's `name` and `updated_*` columns; a taken name is a [`StoreError::Conflict`].
    pub async fn workspace_update(&mut self, workspace: &WorkspaceRecord) -> Result<(), StoreError> {
        let query = Query::new(
            "UPDATE workspaces SET name = $3, updated_at = $4, updated_by_actor_id = $5 \
             WHERE organization_id = $1 AND id = $2",
        )
        .arg(workspace.organization_id.as_str())
        .arg(workspace.id.as_str())
        .arg(workspace.name.as_str())
        .arg(workspace.audit.updated_at)
        .arg(workspace.audit.updated_by_actor_id.as_str());
        match self.conn().execute(&query).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    /// Archives a workspace; returns `false` when it already was (the first archive is kept).
    pub async fn workspace_archive(
        &mut self,
        organization_id: &OrganizationId,
        id: &WorkspaceId,
        at: i64,
        actor_id: &str,
    ) -> Result<bool, StoreError> {
        audit::archive(
            &mut self.conn(),
            "UPDATE workspaces SET archived_at = $3, archived_by_actor_id = $4 \
             WHERE organization_id = $1 AND id = $2 AND archived_at IS NULL",
            "SELECT 1 AS one FROM workspaces WHERE organization_id = $1 AND id = $2",
            (organization_id.as_str(), id.as_str()),
            at,
            actor_id,
        )
        .await
    }

    /// The live rules and service accounts that use the workspace `id`: what blocks archiving it. Lock
    /// the workspace first ([`Tx::workspace_get`]); rule and membership writers lock the workspaces they
    /// add, so no reference appears between this read and the archive.
    pub async fn workspace_references(
        &mut self,
        organization_id: &OrganizationId,
        id: &WorkspaceId,
    ) -> Result<WorkspaceReferences, StoreError> {
        let rules = Query::new(
            "SELECT r.id AS id FROM federation_rules r JOIN federation_rule_workspaces w \
             ON w.organization_id = r.organization_id AND w.rule_id = r.id \
             WHERE r.organization_id = $1 AND w.workspace_id = $2 AND r.archived_at IS NULL ORDER BY r.id",
        )
        .arg(organization_id.as_str())
        .arg(id.as_str());
        let memberships = Query::new(
            "SELECT s.id AS id FROM service_accounts s JOIN service_account_workspaces m \
             ON m.organization_id = s.organization_id AND m.service_account_id = s.id \
             WHERE s.organization_id = $1 AND m.workspace_id = $2 AND s.archived_at IS NULL ORDER BY s.id",
        )
        .arg(organization_id.as_str())
        .arg(id.as_str());
        let (rule_ids, service_account_ids) = {
            let mut conn = self.conn();
            let rule_ids = conn.fetch_all(&rules, |row| row.parsed("id", RuleId::parse)).await?;
            let service_account_ids = conn
                .fetch_all(&memberships, |row| row.parsed("id", ServiceAccountId::parse))
                .await?;
            (rule_ids, service_account_ids)
        };
        let api_key_ids = self.api_keys_of_workspace(organization_id, id).await?;
        Ok(WorkspaceReferences {
            rule_ids,
            service_account_ids,
            api_key_ids,
        })
    }
}

impl Store {
    /// The workspace `id`.
    pub async fn workspace_get(
        &self,
        organization_id: &OrganizationId,
        id: &WorkspaceId,
    ) -> Result<WorkspaceRecord, StoreError> {
        get(&mut self.read().await?.conn(), organization_id, id).await
    }

    /// The organization's default workspace.
    pub async fn workspace_get_default(&self, organization_id: &OrganizationId) -> Result<WorkspaceRecord, StoreError> {
        let query = Query::new(concat!(
            "SELECT ",
            columns!(),
            " FROM workspaces WHERE organization_id = $1 AND is_default"
        ))
        .arg(organization_id.as_str());
        self.read()
            .await?
            .conn()
            .fetch_optional(&query, decode)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// A page of the organization's workspaces, newest first.
    pub async fn workspace_list(
        &self,
        organization_id: &OrganizationId,
        list: &ListQuery,
    ) -> Result<Page<WorkspaceRecord>, StoreError> {
        let sql = list_sql!("workspaces", columns!());
        self.list_page(sql, organization_id, list, decode, |workspace| {
            (workspace.audit.created_at, workspace.id.as_str())
        })
        .await
    }
}
