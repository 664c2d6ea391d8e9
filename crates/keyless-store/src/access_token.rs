//! Access tokens keyless issued, by hash: the token itself is never stored.
//!
//! Parts: [`AccessTokenRecord`]; on [`Tx`]: `access_token_create`, `access_token_revoke`; on [`Store`]:
//! `access_token_get`, `access_token_purge`.
//!
//! The caller hashes the token (SHA-256 or an HMAC with a server pepper) and looks it up by that hash; the
//! hash is the primary key. A token minted by an exchange names its workspace, service account and rule;
//! the bootstrap token names none of them. Each is a composite foreign key with the organization, so a
//! token can never be bound to another organization's objects.

use std::borrow::Borrow;

use keyless_core::id::{OrganizationId, RuleId, ServiceAccountId, WorkspaceId};
use keyless_core::scope::ScopeSet;

use crate::backend::{Query, Row, row_chunks};
use crate::error::StoreError;
use crate::store::{Store, Tx};

/// A stored access token (its hash and what it is bound to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenRecord {
    /// The hash of the token.
    pub hash: Vec<u8>,
    /// The organization it acts in.
    pub organization_id: OrganizationId,
    /// The one workspace it is bound to (none for organization-level tokens such as the bootstrap token).
    pub workspace_id: Option<WorkspaceId>,
    /// The service account it acts as (none for the bootstrap token).
    pub service_account_id: Option<ServiceAccountId>,
    /// The rule that minted it (none when no rule did).
    pub rule_id: Option<RuleId>,
    /// Its scope.
    pub scope: ScopeSet,
    /// When it was issued (Unix seconds).
    pub created_at: i64,
    /// When it expires.
    pub expires_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

impl AccessTokenRecord {
    /// Whether it is usable at `now`: not revoked and not expired.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

fn decode(row: &dyn Row) -> Result<AccessTokenRecord, StoreError> {
    Ok(AccessTokenRecord {
        hash: row.bytes("hash")?,
        organization_id: row.parsed("organization_id", OrganizationId::parse)?,
        workspace_id: row.opt_parsed("workspace_id", WorkspaceId::parse)?,
        service_account_id: row.opt_parsed("service_account_id", ServiceAccountId::parse)?,
        rule_id: row.opt_parsed("rule_id", RuleId::parse)?,
        scope: row.parsed("scope", ScopeSet::parse)?,
        created_at: row.int("created_at")?,
        expires_at: row.int("expires_at")?,
        revoked_at: row.opt_int("revoked_at")?,
    })
}

impl Tx {
    /// Stores an issued token; an existing hash is a [`StoreError::Conflict`] on `hash`, an object it names
    /// that is not in its organization is [`StoreError::NotFound`].
    pub async fn access_token_create(&mut self, token: &AccessTokenRecord) -> Result<(), StoreError> {
        self.access_token_create_many(std::slice::from_ref(token)).await
    }

    /// Stores issued tokens, one statement per chunk, with the errors of [`Tx::access_token_create`].
    pub async fn access_token_create_many<T: Borrow<AccessTokenRecord>>(
        &mut self,
        tokens: &[T],
    ) -> Result<(), StoreError> {
        for chunk in row_chunks(tokens) {
            let mut query = Query::new(
                "INSERT INTO access_tokens (hash, organization_id, workspace_id, service_account_id, rule_id, scope, \
                 created_at, expires_at, revoked_at) VALUES ",
            )
            .on_key_conflict("hash")
            .append();
            for (idx, token) in chunk.iter().map(Borrow::borrow).enumerate() {
                query.push_sql(if idx == 0 { "(" } else { ", (" });
                query.push_arg(token.hash.as_slice());
                query.push_sql(", ");
                query.push_arg(token.organization_id.as_str());
                query.push_sql(", ");
                query.push_arg(token.workspace_id.as_ref().map(WorkspaceId::as_str));
                query.push_sql(", ");
                query.push_arg(token.service_account_id.as_ref().map(ServiceAccountId::as_str));
                query.push_sql(", ");
                query.push_arg(token.rule_id.as_ref().map(RuleId::as_str));
                query.push_sql(", ");
                query.push_arg(token.scope.to_string());
                query.push_sql(", ");
                query.push_arg(token.created_at);
                query.push_sql(", ");
                query.push_arg(token.expires_at);
                query.push_sql(", ");
                query.push_arg(token.revoked_at);
                query.push_sql(")");
            }
            self.append(&query).await?;
        }
        Ok(())
    }

    /// Revokes the token with `hash` at `at`; returns `false` when it already was revoked (the first
    /// revocation is kept), [`StoreError::NotFound`] when no such token is stored.
    pub async fn access_token_revoke(&mut self, hash: &[u8], at: i64) -> Result<bool, StoreError> {
        let query = Query::new("UPDATE access_tokens SET revoked_at = $2 WHERE hash = $1 AND revoked_at IS NULL")
            .arg(hash)
            .arg(at);
        let mut conn = self.conn();
        if conn.execute(&query).await? > 0 {
            return Ok(true);
        }
        let exists = Query::new("SELECT 1 AS one FROM access_tokens WHERE hash = $1").arg(hash);
        conn.fetch_optional(&exists, |_| Ok(()))
            .await?
            .map(|()| false)
            .ok_or(StoreError::NotFound)
    }
}

impl Store {
    /// The token with `hash`, whatever its state (check [`AccessTokenRecord::is_active`]).
    pub async fn access_token_get(&self, hash: &[u8]) -> Result<AccessTokenRecord, StoreError> {
        let query = Query::new(
            "SELECT hash, organization_id, workspace_id, service_account_id, rule_id, scope, created_at, \
             expires_at, revoked_at FROM access_tokens WHERE hash = $1",
        )
        .arg(hash);
        self.read()
            .await?
            .conn()
            .fetch_optional(&query, decode)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Deletes up to `limit` of the tokens that expired before `before` (the oldest expiries first);
    /// returns how many. Not an admin change: one autocommitted statement, so the write lock is held
    /// for at most `limit` rows' deletes.
    pub async fn access_token_purge(&self, before: i64, limit: u32) -> Result<u64, StoreError> {
        let query = Query::new(
            "DELETE FROM access_tokens WHERE hash IN \
             (SELECT hash FROM access_tokens WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)",
        )
        .arg(before)
        .arg(i64::from(limit));
        self.write().await?.conn().execute(&query).await
    }
}
