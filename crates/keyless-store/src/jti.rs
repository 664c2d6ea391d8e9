//! `jti` records: the single-use check of presented tokens (replay protection).
//!
//! Parts: [`Tx::jti_record`] (a unique insert: the first use wins, a replay is a conflict) and
//! [`Store::jti_purge`].
//!
//! The insert is `ON CONFLICT DO NOTHING` and a replay is reported from the row count, so a replay does
//! not abort the surrounding transaction: a group commit of many exchanges can record every `jti` and
//! mint every other token in one transaction. Concurrent first uses of one `jti` serialize on the primary
//! key (PostgreSQL waits for the first inserter's commit; SQLite has one writer), so exactly one wins.
//! A record is kept until `keep_until` (the token's `exp` plus leeway, after which it is expired anyway).

use keyless_core::id::IssuerId;

use crate::backend::Query;
use crate::error::StoreError;
use crate::store::{Store, Tx};

impl Tx {
    /// Records the use of `jti` from `issuer_id`, kept until `keep_until` (Unix seconds). A `jti` already
    /// recorded for that issuer is a [`StoreError::Conflict`] on `jti`, and the transaction stays usable.
    pub async fn jti_record(&mut self, issuer_id: &IssuerId, jti: &str, keep_until: i64) -> Result<(), StoreError> {
        let query = Query::new(
            "INSERT INTO jti_records (issuer_id, jti, keep_until) VALUES ($1, $2, $3) \
             ON CONFLICT (issuer_id, jti) DO NOTHING",
        )
        .arg(issuer_id.as_str())
        .arg(jti)
        .arg(keep_until);
        match self.conn().execute(&query).await? {
            0 => Err(StoreError::Conflict { what: "jti" }),
            _ => Ok(()),
        }
    }
}

impl Store {
    /// Deletes the records kept until before `now`; returns how many. Not an admin change: one
    /// autocommitted statement.
    pub async fn jti_purge(&self, now: i64) -> Result<u64, StoreError> {
        let query = Query::new("DELETE FROM jti_records WHERE keep_until < $1").arg(now);
        self.write().await?.conn().execute(&query).await
    }
}
