//! Workspace API keys, by hash: the key itself is never stored.
//!
//! Parts: [`ApiKeyRecord`]; on [`Tx`]: `api_key_create`, `api_key_get` (locks), `api_key_update`,
//! `api_key_archive`; on [`Store`]: `api_key_get`, `api_key_get_by_hash`, `api_key_list`,
//! `api_key_touch_many` (last-used times, written by the request log).
//!
//! A key belongs to one workspace (a composite foreign key with its organization). Its state is three
//! independent facts: `disabled` (reversible), `expires_at` and the archive (permanent); the caller
//! combines them ([`ApiKeyRecord::is_usable`]).

use keyless_core::id::{ApiKeyId, OrganizationId, WorkspaceId};
use keyless_core::name::Name;
use keyless_core::scope::ScopeSet;

use crate::audit::{self, Audit};
use crate::backend::{Conn, Query, Row};
use crate::error::StoreError;
use crate::page::{ListQuery, Page};
use crate::store::{Store, Tx};

/// A stored API key (its hash and what it may do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Its ID.
    pub id: ApiKeyId,
    /// The organization it acts in.
    pub organization_id: OrganizationId,
    /// The workspace it is bound to.
    pub workspace_id: WorkspaceId,
    /// Its name, unique in the organization (archived keys included).
    pub name: Name,
    /// The hash of the key.
    pub hash: Vec<u8>,
    /// The first and last characters of the key, to recognise it by.
    pub partial_key_hint: String,
    /// The scopes it holds.
    pub oauth_scope: ScopeSet,
    /// Whether it is disabled (reversibly).
    pub disabled: bool,
    /// When it stops working, if ever (Unix seconds).
    pub expires_at: Option<i64>,
    /// When it was last seen on a request, if ever (Unix seconds; written in batches, so a little behind).
    pub last_used_at: Option<i64>,
    /// Who created, updated and archived it, and when.
    pub audit: Audit,
}

impl ApiKeyRecord {
    /// Whether it authenticates requests at `now`: not archived, not disabled, not expired.
    pub fn is_usable(&self, now: i64) -> bool {
        !self.audit.is_archived() && !self.disabled && self.expires_at.is_none_or(|at| now < at)
    }
}

macro_rules! columns {
    () => {
        "id, organization_id, workspace_id, name, hash, partial_key_hint, oauth_scope, disabled, expires_at, \
         last_used_at, created_at, created_by_actor_id, updated_at, updated_by_actor_id, archived_at, \
         archived_by_actor_id"
    };
}

fn decode(row: &dyn Row) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: row.parsed("id", ApiKeyId::parse)?,
        organization_id: row.parsed("organization_id", OrganizationId::parse)?,
        workspace_id: row.parsed("workspace_id", WorkspaceId::parse)?,
        name: row.parsed("name", Name::parse)?,
        hash: row.bytes("hash")?,
        partial_key_hint: row.text("partial_key_hint")?,
        oauth_scope: row.parsed("oauth_scope", ScopeSet::parse)?,
        disabled: row.bool("disabled")?,
        expires_at: row.opt_int("expires_at")?,
        last_used_at: row.opt_int("last_used_at")?,
        audit: Audit::decode(row)?,
    })
}

async fn get(conn: &mut Conn<'_>, organization_id: &OrganizationId, id: &ApiKeyId) -> Result<ApiKeyRecord, StoreError> {
    let query = Query::new(concat!(
        "SELECT ",
        columns!(),
        " FROM api_keys WHERE organization_id = $1 AND id = $2"
    ))
    .arg(organization_id.as_str())
    .arg(id.as_str())
    .locking();
    conn.fetch_optional(&query, decode).await?.ok_or(StoreError::NotFound)
}

impl Tx {
    /// Moves the `last_used_at` of each `(organization, key, time)` forward to its time (never back).
    /// Not an admin change: no event, no configuration generation.
    pub async fn api_key_touch_many(&mut self, uses: &[(OrganizationId, ApiKeyId, i64)]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        for (organization_id, id, at) in uses {
            let query = Query::new(
                "UPDATE api_keys SET last_used_at = $3 WHERE organization_id = $1 AND id = $2 \
                 AND (last_used_at IS NULL OR last_used_at < $3)",
            )
            .arg(organization_id.as_str())
            .arg(id.as_str())
            .arg(*at);
            conn.execute(&query).await?;
        }
        Ok(())
    }

    /// Stores a new key; a taken name is a [`StoreError::Conflict`] on `name`, a workspace not in its
    /// organization is [`StoreError::NotFound`].
    pub async fn api_key_create(&mut self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let query = Query::new(concat!(
            "INSERT INTO api_keys (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ))
        .arg(key.id.as_str())
        .arg(key.organization_id.as_str())
        .arg(key.workspace_id.as_str())
        .arg(key.name.as_str())
        .arg(key.hash.as_slice())
        .arg(key.partial_key_hint.as_str())
        .arg(key.oauth_scope.to_string())
        .arg(key.disabled)
        .arg(key.expires_at)
        .arg(key.last_used_at)
        .arg(key.audit.created_at)
        .arg(key.audit.created_by_actor_id.as_str())
        .arg(key.audit.updated_at)
        .arg(key.audit.updated_by_actor_id.as_str())
        .arg(key.audit.archived_at)
        .arg(key.audit.archived_by_actor_id.as_deref())
        .on_conflict("api key hash");
        self.conn().execute(&query).await.map(drop)
    }

    /// The key `id`, locked until the transaction ends.
    pub async fn api_key_get(
        &mut self,
        organization_id: &OrganizationId,
        id: &ApiKeyId,
    ) -> Result<ApiKeyRecord, StoreError> {
        get(&mut self.conn(), organization_id, id).await
    }

    /// Writes a key's `name`, `disabled` and `updated_*` columns; a taken name is a
    /// [`StoreError::Conflict`].
    pub async fn api_key_update(&mut self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let query = Query::new(
            "UPDATE api_keys SET name = $3, disabled = $4, updated_at = $5, updated_by_actor_id = $6 \
             WHERE organization_id = $1 AND id = $2",
        )
        .arg(key.organization_id.as_str())
        .arg(key.id.as_str())
        .arg(key.name.as_str())
        .arg(key.disabled)
        .arg(key.audit.updated_at)
        .arg(key.audit.updated_by_actor_id.as_str());
        match self.conn().execute(&query).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    /// Archives (revokes) a key; returns `false` when it already was (the first archive is kept).
    pub async fn api_key_archive(
        &mut self,
        organization_id: &OrganizationId,
        id: &ApiKeyId,
        at: i64,
        actor_id: &str,
    ) -> Result<bool, StoreError> {
        audit::archive(
            &mut self.conn(),
            "UPDATE api_keys SET archived_at = $3, archived_by_actor_id = $4 \
             WHERE organization_id = $1 AND id = $2 AND archived_at IS NULL",
            "SELECT 1 AS one FROM api_keys WHERE organization_id = $1 AND id = $2",
            (organization_id.as_str(), id.as_str()),
            at,
            actor_id,
        )
        .await
    }

    /// The live (not archived) keys of the workspace `id`, sorted: what blocks archiving it.
    pub async fn api_keys_of_workspace(
        &mut self,
        organization_id: &OrganizationId,
        workspace_id: &WorkspaceId,
    ) -> Result<Vec<ApiKeyId>, StoreError> {
        let query = Query::new(
            "SELECT id FROM api_keys WHERE organization_id = $1 AND workspace_id = $2 AND archived_at IS NULL \
             ORDER BY id",
        )
        .arg(organization_id.as_str())
        .arg(workspace_id.as_str());
        self.conn()
            .fetch_all(&query, |row| row.parsed("id", ApiKeyId::parse))
            .await
    }
}

impl Store {
    /// The key `id`.
    pub async fn api_key_get(
        &self,
        organization_id: &OrganizationId,
        id: &ApiKeyId,
    ) -> Result<ApiKeyRecord, StoreError> {
        get(&mut self.read().await?.conn(), organization_id, id).await
    }

    /// The key whose hash is `hash`, whatever its state (check [`ApiKeyRecord::is_usable`]).
    pub async fn api_key_get_by_hash(&self, hash: &[u8]) -> Result<ApiKeyRecord, StoreError> {
        let query = Query::new(concat!("SELECT ", columns!(), " FROM api_keys WHERE hash = $1")).arg(hash);
        self.read()
            .await?
            .conn()
            .fetch_optional(&query, decode)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// A page of the organization's keys, newest first; of one workspace when `workspace_id` is given.
    pub async fn api_key_list(
        &self,
        organization_id: &OrganizationId,
        workspace_id: Option<&WorkspaceId>,
        list: &ListQuery,
    ) -> Result<Page<ApiKeyRecord>, StoreError> {
        let (created_at, id) = list.keyset();
        let query = Query::new(concat!(
            "SELECT ",
            columns!(),
            " FROM api_keys WHERE organization_id = $1 AND ($2 OR archived_at IS NULL) \
             AND (created_at, id) < ($3, $4) AND ($6 IS NULL OR workspace_id = $6) \
             ORDER BY created_at DESC, id DESC LIMIT $5"
        ))
        .arg(organization_id.as_str())
        .arg(list.include_archived)
        .arg(created_at)
        .arg(id)
        .arg(list.limit.fetch())
        .arg(workspace_id.map(WorkspaceId::as_str));
        let rows = self.read().await?.conn().fetch_all(&query, decode).await?;
        Ok(Page::from_rows(rows, list.limit, |key| {
            (key.audit.created_at, key.id.as_str())
        }))
    }
}
