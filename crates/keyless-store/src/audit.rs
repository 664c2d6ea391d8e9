//! The audit columns every admin-managed object carries, and archiving.
//!
//! Parts: [`Audit`] (`created_at`, `created_by_actor_id`, `updated_at`, `updated_by_actor_id`,
//! `archived_at`, `archived_by_actor_id`, as in the seed API's objects) and `archive`, the one
//! implementation of the archive semantics: idempotent, the first `archived_at` and its actor are kept.
//!
//! Times are Unix seconds. Actor IDs are the caller's (`svac_…`, `user_…`, `bootstrap`, …): the store
//! does not interpret them.

use crate::backend::{Conn, Query, Row};
use crate::error::StoreError;

/// Who created, last updated and archived an object, and when (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// When it was created.
    pub created_at: i64,
    /// Who created it.
    pub created_by_actor_id: String,
    /// When it was last updated (its creation time until then).
    pub updated_at: i64,
    /// Who last updated it.
    pub updated_by_actor_id: String,
    /// When it was archived, if it is.
    pub archived_at: Option<i64>,
    /// Who archived it.
    pub archived_by_actor_id: Option<String>,
}

impl Audit {
    /// The audit columns of an object `actor_id` creates at `at`.
    pub fn created(at: i64, actor_id: &str) -> Self {
        Self {
            created_at: at,
            created_by_actor_id: actor_id.to_owned(),
            updated_at: at,
            updated_by_actor_id: actor_id.to_owned(),
            archived_at: None,
            archived_by_actor_id: None,
        }
    }

    /// Records an update by `actor_id` at `at`.
    pub fn touch(&mut self, at: i64, actor_id: &str) {
        self.updated_at = at;
        actor_id.clone_into(&mut self.updated_by_actor_id);
    }

    /// Whether the object is archived.
    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }

    /// Reads the six audit columns of a row.
    pub(crate) fn decode(row: &dyn Row) -> Result<Self, StoreError> {
        Ok(Self {
            created_at: row.int("created_at")?,
            created_by_actor_id: row.text("created_by_actor_id")?,
            updated_at: row.int("updated_at")?,
            updated_by_actor_id: row.text("updated_by_actor_id")?,
            archived_at: row.opt_int("archived_at")?,
            archived_by_actor_id: row.opt_text("archived_by_actor_id")?,
        })
    }
}

/// Archives one object: `update` sets `archived_at = $3, archived_by_actor_id = $4` where
/// `organization_id = $1 AND id = $2 AND archived_at IS NULL`; `exists` selects the object by
/// `organization_id = $1 AND id = $2`. Returns whether this call archived it (`false`: it already was).
pub(crate) async fn archive(
    conn: &mut Conn<'_>,
    update: &'static str,
    exists: &'static str,
    ids: (&str, &str),
    at: i64,
    actor_id: &str,
) -> Result<bool, StoreError> {
    let (organization_id, id) = ids;
    let changed = conn
        .execute(&Query::new(update).arg(organization_id).arg(id).arg(at).arg(actor_id))
        .await?;
    if changed > 0 {
        return Ok(true);
    }
    conn.fetch_optional(&Query::new(exists).arg(organization_id).arg(id), |_| Ok(()))
        .await?
        .map(|()| false)
        .ok_or(StoreError::NotFound)
}
