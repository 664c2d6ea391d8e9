//! Federation issuers: the identity providers an organization trusts, with their JWKS configuration and
//! the visible status of background JWKS polling.
//!
//! Parts: [`IssuerRecord`] (and its view for the exchange decision), [`IssuerPollStatus`]; on [`Tx`]:
//! `issuer_create`, `_get` (locks), `_update`, `_archive`, `issuer_poll_status_reset` (an admin change
//! resumes polling); on [`Store`]: `issuer_get`, `issuer_list`,
//! `issuer_list_due` (what the poller should fetch now, across organizations) and
//! `issuer_poll_status_set` (the poller's write, not an admin change, so not in a transaction).
//!
//! The `jwks` block (`{type: discovery | explicit_url | inline, …}`) is stored as JSON and validated by
//! the server, not here.

use keyless_core::id::{IssuerId, OrganizationId};
use keyless_core::issuer::Issuer;
use keyless_core::name::Name;
use serde_json::Value;

use crate::audit::{self, Audit};
use crate::backend::{Conn, Query, Row};
use crate::error::StoreError;
use crate::page::list_sql;
use crate::page::{Limit, ListQuery, Page};
use crate::store::{Store, Tx};

/// The status of an issuer's background JWKS polling (`poll_status`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssuerPollStatus {
    /// Failed fetches since the last success.
    pub consecutive_failures: i64,
    /// When the JWKS was last fetched successfully (Unix seconds).
    pub last_fetched_at: Option<i64>,
    /// When the next fetch is due.
    pub next_poll_at: Option<i64>,
    /// Why the last fetch failed, if it did.
    pub last_error: Option<String>,
}

/// A stored federation issuer.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuerRecord {
    /// Its ID.
    pub id: IssuerId,
    /// The organization it belongs to.
    pub organization_id: OrganizationId,
    /// Its name, unique in the organization (archived issuers included).
    pub name: Name,
    /// The URL `iss` must equal byte for byte.
    pub issuer_url: String,
    /// The `jwks` block, as validated by the server.
    pub jwks: Value,
    /// Whether a token carrying `jti` is single-use.
    pub check_jti: bool,
    /// The largest `exp − iat` accepted.
    pub max_jwt_lifetime_seconds: i64,
    /// When polling was paused after repeated failures (an update resumes it).
    pub jwks_polling_disabled_at: Option<i64>,
    /// The polling status.
    pub poll_status: IssuerPollStatus,
    /// Who created, updated and archived it, and when.
    pub audit: Audit,
}

impl IssuerRecord {
    /// What the exchange decision needs of it.
    pub fn to_issuer(&self) -> Issuer {
        Issuer {
            id: self.id.clone(),
            organization_id: self.organization_id.clone(),
            issuer_url: self.issuer_url.clone(),
            check_jti: self.check_jti,
            max_jwt_lifetime_seconds: self.max_jwt_lifetime_seconds,
            archived: self.audit.is_archived(),
        }
    }
}

macro_rules! columns {
    () => {
        "id, organization_id, name, issuer_url, jwks, check_jti, max_jwt_lifetime_seconds, \
         jwks_polling_disabled_at, poll_consecutive_failures, poll_last_fetched_at, poll_next_at, \
         poll_last_error, created_at, created_by_actor_id, updated_at, updated_by_actor_id, archived_at, \
         archived_by_actor_id"
    };
}

fn decode(row: &dyn Row) -> Result<IssuerRecord, StoreError> {
    Ok(IssuerRecord {
        id: row.parsed("id", IssuerId::parse)?,
        organization_id: row.parsed("organization_id", OrganizationId::parse)?,
        name: row.parsed("name", Name::parse)?,
        issuer_url: row.text("issuer_url")?,
        jwks: row.json("jwks")?,
        check_jti: row.bool("check_jti")?,
        max_jwt_lifetime_seconds: row.int("max_jwt_lifetime_seconds")?,
        jwks_polling_disabled_at: row.opt_int("jwks_polling_disabled_at")?,
        poll_status: IssuerPollStatus {
            consecutive_failures: row.int("poll_consecutive_failures")?,
            last_fetched_at: row.opt_int("poll_last_fetched_at")?,
            next_poll_at: row.opt_int("poll_next_at")?,
            last_error: row.opt_text("poll_last_error")?,
        },
        audit: Audit::decode(row)?,
    })
}

pub(crate) async fn get(
    conn: &mut Conn<'_>,
    organization_id: &OrganizationId,
    id: &IssuerId,
) -> Result<IssuerRecord, StoreError> {
    let query = Query::new(concat!(
        "SELECT ",
        columns!(),
        " FROM federation_issuers WHERE organization_id = $1 AND id = $2"
    ))
    .arg(organization_id.as_str())
    .arg(id.as_str())
    .locking();
    conn.fetch_optional(&query, decode).await?.ok_or(StoreError::NotFound)
}

impl Tx {
    /// Creates an issuer as given; a taken name is a [`StoreError::Conflict`] on `name`.
    pub async fn issuer_create(&mut self, issuer: &IssuerRecord) -> Result<(), StoreError> {
        let query = Query::new(concat!(
            "INSERT INTO federation_issuers (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        ))
        .arg(issuer.id.as_str())
        .arg(issuer.organization_id.as_str())
        .arg(issuer.name.as_str())
        .arg(issuer.issuer_url.as_str())
        .arg(&issuer.jwks)
        .arg(issuer.check_jti)
        .arg(issuer.max_jwt_lifetime_seconds)
        .arg(issuer.jwks_polling_disabled_at)
        .arg(issuer.poll_status.consecutive_failures)
        .arg(issuer.poll_status.last_fetched_at)
        .arg(issuer.poll_status.next_poll_at)
        .arg(issuer.poll_status.last_error.as_deref())
        .arg(issuer.audit.created_at)
        .arg(issuer.audit.created_by_actor_id.as_str())
        .arg(issuer.audit.updated_at)
        .arg(issuer.audit.updated_by_actor_id.as_str())
        .arg(issuer.audit.archived_at)
        .arg(issuer.audit.archived_by_actor_id.as_deref());
        self.conn().execute(&query).await.map(drop)
    }

    /// The issuer `id`, locked until the transaction ends.
    pub async fn issuer_get(
        &mut self,
        organization_id: &OrganizationId,
        id: &IssuerId,
    ) -> Result<IssuerRecord, StoreError> {
        get(&mut self.conn(), organization_id, id).await
    }

    /// Writes an issuer's configuration (`name`, `issuer_url`, `jwks`, `check_jti`,
    /// `max_jwt_lifetime_seconds`, `jwks_polling_disabled_at`) and `updated_*` columns; a taken name is a
    /// [`StoreError::Conflict`]. The poll status is left alone.
    pub async fn issuer_update(&mut self, issuer: &IssuerRecord) -> Result<(), StoreError> {
        let query = Query::new(
            "UPDATE federation_issuers SET name = $3, issuer_url = $4, jwks = $5, check_jti = $6, \
             max_jwt_lifetime_seconds = $7, jwks_polling_disabled_at = $8, updated_at = $9, \
             updated_by_actor_id = $10 WHERE organization_id = $1 AND id = $2",
        )
        .arg(issuer.organization_id.as_str())
        .arg(issuer.id.as_str())
        .arg(issuer.name.as_str())
        .arg(issuer.issuer_url.as_str())
        .arg(&issuer.jwks)
        .arg(issuer.check_jti)
        .arg(issuer.max_jwt_lifetime_seconds)
        .arg(issuer.jwks_polling_disabled_at)
        .arg(issuer.audit.updated_at)
        .arg(issuer.audit.updated_by_actor_id.as_str());
        match self.conn().execute(&query).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    /// Starts an issuer's polling over, as part of an admin change: no failures, no error, due at once,
    /// not paused; the time of the last successful fetch is kept.
    pub async fn issuer_poll_status_reset(
        &mut self,
        organization_id: &OrganizationId,
        id: &IssuerId,
    ) -> Result<(), StoreError> {
        let query = Query::new(
            "UPDATE federation_issuers SET poll_consecutive_failures = 0, poll_next_at = NULL, \
             poll_last_error = NULL, jwks_polling_disabled_at = NULL WHERE organization_id = $1 AND id = $2",
        )
        .arg(organization_id.as_str())
        .arg(id.as_str());
        match self.conn().execute(&query).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    /// Archives an issuer; returns `false` when it already was (the first archive is kept).
    pub async fn issuer_archive(
        &mut self,
        organization_id: &OrganizationId,
        id: &IssuerId,
        at: i64,
        actor_id: &str,
    ) -> Result<bool, StoreError> {
        audit::archive(
            &mut self.conn(),
            "UPDATE federation_issuers SET archived_at = $3, archived_by_actor_id = $4 \
             WHERE organization_id = $1 AND id = $2 AND archived_at IS NULL",
            "SELECT 1 AS one FROM federation_issuers WHERE organization_id = $1 AND id = $2",
            (organization_id.as_str(), id.as_str()),
            at,
            actor_id,
        )
        .await
    }
}

impl Store {
    /// The issuer `id`.
    pub async fn issuer_get(
        &self,
        organization_id: &OrganizationId,
        id: &IssuerId,
    ) -> Result<IssuerRecord, StoreError> {
        get(&mut self.read().await?.conn(), organization_id, id).await
    }

    /// A page of the organization's issuers, newest first.
    pub async fn issuer_list(
        &self,
        organization_id: &OrganizationId,
        list: &ListQuery,
    ) -> Result<Page<IssuerRecord>, StoreError> {
        let sql = list_sql!("federation_issuers", columns!());
        self.list_page(sql, organization_id, list, decode, |issuer| {
            (issuer.audit.created_at, issuer.id.as_str())
        })
        .await
    }

    /// Up to `limit` issuers of any organization whose JWKS poll is due at `now`: not archived, polling
    /// not paused, `next_poll_at` unset or not after `now`; the most overdue first.
    pub async fn issuer_list_due(&self, now: i64, limit: Limit) -> Result<Vec<IssuerRecord>, StoreError> {
        let query = Query::new(concat!(
            "SELECT ",
            columns!(),
            " FROM federation_issuers WHERE archived_at IS NULL AND jwks_polling_disabled_at IS NULL \
             AND (poll_next_at IS NULL OR poll_next_at <= $1) ORDER BY COALESCE(poll_next_at, 0), id LIMIT $2"
        ))
        .arg(now)
        .arg(i64::from(limit.get()));
        self.read().await?.conn().fetch_all(&query, decode).await
    }

    /// Records the outcome of a poll: the status and whether polling is now paused. Not an admin change:
    /// a single autocommitted statement.
    pub async fn issuer_poll_status_set(
        &self,
        organization_id: &OrganizationId,
        id: &IssuerId,
        status: &IssuerPollStatus,
        jwks_polling_disabled_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let query = Query::new(
            "UPDATE federation_issuers SET poll_consecutive_failures = $3, poll_last_fetched_at = $4, \
             poll_next_at = $5, poll_last_error = $6, jwks_polling_disabled_at = $7 \
             WHERE organization_id = $1 AND id = $2",
        )
        .arg(organization_id.as_str())
        .arg(id.as_str())
        .arg(status.consecutive_failures)
        .arg(status.last_fetched_at)
        .arg(status.next_poll_at)
        .arg(status.last_error.as_deref())
        .arg(jwks_polling_disabled_at);
        match self.write().await?.conn().execute(&query).await? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }
}
