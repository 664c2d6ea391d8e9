//! Organizations: the tenants. Everything else belongs to exactly one.
//!
//! Parts: [`OrganizationRecord`]; [`Tx::organization_create`], [`Tx::config_generation_bump`];
//! [`Store::organization_get`], [`Store::organization_list`], [`Store::config_generation`]. An
//! organization is never archived or deleted here.
//!
//! The configuration generation is a counter every admin change bumps in its own transaction, so a
//! cache of an organization's objects taken at generation N is current exactly while the counter reads
//! N — on every node, whoever made the change.

use keyless_core::id::OrganizationId;

use crate::backend::{Query, Row};
use crate::error::StoreError;
use crate::store::{Store, Tx};

/// A stored organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationRecord {
    /// Its ID (a UUID).
    pub id: OrganizationId,
    /// When it was created (Unix seconds).
    pub created_at: i64,
}

fn decode(row: &dyn Row) -> Result<OrganizationRecord, StoreError> {
    Ok(OrganizationRecord {
        id: row.parsed("id", OrganizationId::parse)?,
        created_at: row.int("created_at")?,
    })
}

impl Tx {
    /// Creates an organization; an existing ID is a [`StoreError::Conflict`] on `id`.
    pub async fn organization_create(&mut self, organization: &OrganizationRecord) -> Result<(), StoreError> {
        let query = Query::new("INSERT INTO organizations (id, created_at) VALUES ($1, $2)")
            .arg(organization.id.as_str())
            .arg(organization.created_at);
        self.conn().execute(&query).await.map(drop)
    }

    /// Bumps the organization's configuration generation (see the module docs); call it in every
    /// transaction that changes an object an exchange reads.
    pub async fn config_generation_bump(&mut self, id: &OrganizationId) -> Result<(), StoreError> {
        let query = Query::new("UPDATE organizations SET config_generation = config_generation + 1 WHERE id = $1")
            .arg(id.as_str());
        match self.conn().execute(&query).await? {
            0 => Err(StoreError::NotFound),
            _ => self.config_changed(id.as_str()).await,
        }
    }
}

impl Store {
    /// The organization's configuration generation; [`StoreError::NotFound`] for an unknown organization.
    pub async fn config_generation(&self, id: &OrganizationId) -> Result<i64, StoreError> {
        let query = Query::new("SELECT config_generation FROM organizations WHERE id = $1").arg(id.as_str());
        self.read()
            .await?
            .conn()
            .fetch_optional(&query, |row| row.int("config_generation"))
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// The organization `id`.
    pub async fn organization_get(&self, id: &OrganizationId) -> Result<OrganizationRecord, StoreError> {
        let query = Query::new("SELECT id, created_at FROM organizations WHERE id = $1").arg(id.as_str());
        self.read()
            .await?
            .conn()
            .fetch_optional(&query, decode)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Every organization, oldest first (a deployment has few: usually one).
    pub async fn organization_list(&self) -> Result<Vec<OrganizationRecord>, StoreError> {
        let query = Query::new("SELECT id, created_at FROM organizations ORDER BY created_at, id");
        self.read().await?.conn().fetch_all(&query, decode).await
    }
}
