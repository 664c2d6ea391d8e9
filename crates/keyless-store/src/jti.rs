//! `jti` records: the single-use check of presented tokens (replay protection).
//!
//! Parts: [`Tx::jti_record_many`] (a group commit's uses in one statement per chunk: the first use
//! wins, each replay is reported), [`Tx::jti_record`] (one use; a replay is a conflict) and
//! [`Store::jti_purge`].
//!
//! The insert is `ON CONFLICT DO NOTHING … RETURNING`, and a replay is a use that was not returned, so a
//! replay does
//! not abort the surrounding transaction: a group commit of many exchanges can record every `jti` and
//! mint every other token in one transaction. Concurrent first uses of one `jti` serialize on the primary
//! key (PostgreSQL waits for the first inserter's commit; SQLite has one writer), so exactly one wins.
//! A record is kept until `keep_until` (the token's `exp` plus leeway, after which it is expired anyway).
//!
//! Records are keyed `(issuer_id, keep_until, jti)` and have no other index: the `jti`s of one second
//! are random, so any index holding them dirties a page per insert (a database page written per
//! exchange: about a fifth of a group commit's log on SQLite, in a replay of the exchange benchmark's
//! commits, until migration 7 dropped the `keep_until` index).
//! Purging walks each issuer's range of the key, from `federation_issuers`.
//!
//! Must not: delete an issuer's row while records of it are kept (issuers are archived, never
//! deleted), or the purge would no longer reach them.

use std::collections::HashSet;

use keyless_core::id::IssuerId;

use crate::backend::{Query, row_chunks};
use crate::error::StoreError;
use crate::store::{Store, Tx};

impl Tx {
    /// Records the use of `jti` from `issuer_id`, kept until `keep_until` (Unix seconds). A `jti` already
    /// recorded for that issuer is a [`StoreError::Conflict`] on `jti`, and the transaction stays usable.
    pub async fn jti_record(&mut self, issuer_id: &IssuerId, jti: &str, keep_until: i64) -> Result<(), StoreError> {
        match self.jti_record_many(&[(issuer_id, jti, keep_until)]).await?.as_slice() {
            [true] => Ok(()),
            _ => Err(StoreError::Conflict { what: "jti" }),
        }
    }

    /// Records many uses `(issuer_id, jti, keep_until)`; returns, in order, whether each was the first
    /// use (`false`: recorded before, by an earlier transaction or an earlier use in `uses`). A replay
    /// does not abort the transaction.
    pub async fn jti_record_many(&mut self, uses: &[(&IssuerId, &str, i64)]) -> Result<Vec<bool>, StoreError> {
        let mut first_uses = Vec::with_capacity(uses.len());
        for chunk in row_chunks(uses) {
            let mut query = Query::new("INSERT INTO jti_records (issuer_id, jti, keep_until) VALUES ").append();
            for (idx, (issuer_id, jti, keep_until)) in chunk.iter().enumerate() {
                query.push_sql(if idx == 0 { "(" } else { ", (" });
                query.push_arg(issuer_id.as_str());
                query.push_sql(", ");
                query.push_arg(*jti);
                query.push_sql(", ");
                query.push_arg(*keep_until);
                query.push_sql(")");
            }
            query.push_sql(" ON CONFLICT (issuer_id, keep_until, jti) DO NOTHING RETURNING issuer_id, jti, keep_until");
            let mut inserted: HashSet<(String, String, i64)> = self
                .append_returning(&query, |row| {
                    Ok((row.text("issuer_id")?, row.text("jti")?, row.int("keep_until")?))
                })
                .await?
                .into_iter()
                .collect();
            // A use twice in one chunk is inserted once: its first use takes the returned row.
            first_uses.extend(chunk.iter().map(|(issuer_id, jti, keep_until)| {
                inserted.remove(&(issuer_id.as_str().to_owned(), (*jti).to_owned(), *keep_until))
            }));
        }
        Ok(first_uses)
    }
}

impl Store {
    /// Deletes up to `limit` of the records kept until before `now`; returns how many. Not an admin
    /// change: one autocommitted statement, so the write lock is held for at most `limit` rows'
    /// deletes. It walks each registered issuer's range of the key (there is no index on `keep_until`
    /// alone, see the module docs).
    pub async fn jti_purge(&self, now: i64, limit: u32) -> Result<u64, StoreError> {
        let query = Query::new(
            "DELETE FROM jti_records WHERE (issuer_id, keep_until, jti) IN \
             (SELECT j.issuer_id, j.keep_until, j.jti FROM federation_issuers AS i \
             JOIN jti_records AS j ON j.issuer_id = i.id AND j.keep_until < $1 LIMIT $2)",
        )
        .arg(now)
        .arg(i64::from(limit));
        self.write().await?.conn().execute(&query).await
    }
}
