//! Request counts per organization, hour, principal and workspace: the usage summary.
//!
//! Parts: [`UsageCount`] (one row's counts, to add), [`UsageRow`] (a summed row); on [`Tx`]:
//! `usage_add_many`; on [`Store`]: `usage_summary`, and `usage_purge` (retention).
//!
//! Counts only grow: `usage_add_many` adds to the row of its key, creating it at zero. The request log
//! aggregates a batch in memory first, so one statement never names a key twice (PostgreSQL refuses
//! that in an upsert). An empty principal or workspace means "not known": a request whose credential was
//! not recognised.

use std::borrow::Borrow;

use keyless_core::id::OrganizationId;

use crate::backend::{Query, Row, row_chunks};
use crate::error::StoreError;
use crate::store::{Store, Tx};

/// Counts to add to one `(organization, hour, principal, workspace)` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageCount {
    /// The organization.
    pub organization_id: OrganizationId,
    /// The hour (Unix seconds at its start).
    pub hour: i64,
    /// The principal (`apikey_…`, `svac_…`, `bootstrap`), or empty when not known.
    pub principal_id: String,
    /// The workspace, or empty when not known.
    pub workspace_id: String,
    /// Requests seen.
    pub requests: i64,
    /// Of which refused (401, 403, 429).
    pub refused: i64,
    /// Of which refused by a rate limit (429).
    pub rate_limited: i64,
    /// Of which answered with a 5xx by the upstream (the built-in proxy only).
    pub upstream_errors: i64,
    /// The sum of their latencies (microseconds).
    pub latency_us_sum: i64,
    /// The latest request time among them (Unix seconds).
    pub last_request_at: i64,
}

/// One principal's and workspace's counts over a time range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    /// The principal, or empty when not known.
    pub principal_id: String,
    /// The workspace, or empty when not known.
    pub workspace_id: String,
    /// Requests seen.
    pub requests: i64,
    /// Of which refused.
    pub refused: i64,
    /// Of which rate limited.
    pub rate_limited: i64,
    /// Of which the upstream failed.
    pub upstream_errors: i64,
    /// The sum of their latencies (microseconds).
    pub latency_us_sum: i64,
    /// The latest request time (Unix seconds).
    pub last_request_at: i64,
}

impl Tx {
    /// Adds each count to its row (one key at most once per call).
    pub async fn usage_add_many<T: Borrow<UsageCount>>(&mut self, counts: &[T]) -> Result<(), StoreError> {
        for chunk in row_chunks(counts) {
            let mut query = Query::new(
                "INSERT INTO api_usage (organization_id, hour, principal_id, workspace_id, requests, refused, \
                 rate_limited, upstream_errors, latency_us_sum, last_request_at) VALUES ",
            )
            .append();
            for (idx, count) in chunk.iter().map(Borrow::borrow).enumerate() {
                query.push_sql(if idx == 0 { "(" } else { ", (" });
                query.push_arg(count.organization_id.as_str());
                query.push_sql(", ");
                query.push_arg(count.hour);
                query.push_sql(", ");
                query.push_arg(count.principal_id.as_str());
                query.push_sql(", ");
                query.push_arg(count.workspace_id.as_str());
                for value in [
                    count.requests,
                    count.refused,
                    count.rate_limited,
                    count.upstream_errors,
                    count.latency_us_sum,
                    count.last_request_at,
                ] {
                    query.push_sql(", ");
                    query.push_arg(value);
                }
                query.push_sql(")");
            }
            query.push_sql(
                " ON CONFLICT (organization_id, hour, principal_id, workspace_id) DO UPDATE SET \
                 requests = api_usage.requests + excluded.requests, \
                 refused = api_usage.refused + excluded.refused, \
                 rate_limited = api_usage.rate_limited + excluded.rate_limited, \
                 upstream_errors = api_usage.upstream_errors + excluded.upstream_errors, \
                 latency_us_sum = api_usage.latency_us_sum + excluded.latency_us_sum, \
                 last_request_at = CASE WHEN excluded.last_request_at > api_usage.last_request_at \
                 THEN excluded.last_request_at ELSE api_usage.last_request_at END",
            );
            self.append(&query).await?;
        }
        Ok(())
    }
}

impl Store {
    /// Retention: deletes up to `limit` of the organization's counts of hours that began before `before`
    /// (the oldest hours first); returns how many. A read finds whether there is anything to delete
    /// first, so an idle pass takes no write lock. One autocommitted statement, not an admin change.
    pub async fn usage_purge(
        &self,
        organization_id: &OrganizationId,
        before: i64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let any = Query::new("SELECT hour FROM api_usage WHERE organization_id = $1 AND hour < $2 LIMIT 1")
            .arg(organization_id.as_str())
            .arg(before);
        let hour = |row: &dyn Row| row.int("hour");
        if self.read().await?.conn().fetch_optional(&any, hour).await?.is_none() {
            return Ok(0);
        }
        let query = Query::new(
            "DELETE FROM api_usage WHERE (organization_id, hour, principal_id, workspace_id) IN \
             (SELECT organization_id, hour, principal_id, workspace_id FROM api_usage \
             WHERE organization_id = $1 AND hour < $2 ORDER BY hour LIMIT $3)",
        )
        .arg(organization_id.as_str())
        .arg(before)
        .arg(i64::from(limit));
        self.write().await?.conn().execute(&query).await
    }

    /// The counts of the hours in `[from_hour, until_hour)`, summed per principal and workspace, most
    /// requests first; only `principal_id` and `workspace_id` when given.
    pub async fn usage_summary(
        &self,
        organization_id: &OrganizationId,
        from_hour: i64,
        until_hour: i64,
        principal_id: Option<&str>,
        workspace_id: Option<&str>,
    ) -> Result<Vec<UsageRow>, StoreError> {
        let query = Query::new(
            "SELECT principal_id, workspace_id, CAST(SUM(requests) AS BIGINT) AS requests, CAST(SUM(refused) AS BIGINT) AS refused, \
             CAST(SUM(rate_limited) AS BIGINT) AS rate_limited, CAST(SUM(upstream_errors) AS BIGINT) AS upstream_errors, \
             CAST(SUM(latency_us_sum) AS BIGINT) AS latency_us_sum, MAX(last_request_at) AS last_request_at \
             FROM api_usage WHERE organization_id = $1 AND hour >= $2 AND hour < $3 \
             AND ($4 IS NULL OR principal_id = $4) AND ($5 IS NULL OR workspace_id = $5) \
             GROUP BY principal_id, workspace_id ORDER BY requests DESC, principal_id, workspace_id",
        )
        .arg(organization_id.as_str())
        .arg(from_hour)
        .arg(until_hour)
        .arg(principal_id)
        .arg(workspace_id);
        self.read()
            .await?
            .conn()
            .fetch_all(&query, |row: &dyn Row| {
                Ok(UsageRow {
                    principal_id: row.text("principal_id")?,
                    workspace_id: row.text("workspace_id")?,
                    requests: row.int("requests")?,
                    refused: row.int("refused")?,
                    rate_limited: row.int("rate_limited")?,
                    upstream_errors: row.int("upstream_errors")?,
                    latency_us_sum: row.int("latency_us_sum")?,
                    last_request_at: row.int("last_request_at")?,
                })
            })
            .await
    }
}
