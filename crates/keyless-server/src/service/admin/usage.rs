//! The usage summary: requests per principal and workspace over a time range, from the hourly counts the
//! request log keeps (`service::request_log`).
//!
//! The range is widened to whole hours: from the start of `starting_at`'s hour to the end of the hour
//! `ending_at` falls in (an `ending_at` on the hour is kept as is); the answer says which range it
//! covers. Defaults: `ending_at` now, `starting_at` 24 hours before `ending_at`. A range longer than
//! 366 days is refused. Counts lag the requests by one write batch (well under a second at rest).

use serde_json::{Value, json};

use crate::service::admin::{AdminError, parse_time, time};
use crate::state::AppState;

const HOUR: i64 = 3600;
const MAX_RANGE: i64 = 366 * 24 * HOUR;

/// `GET /v1/organizations/usage`'s query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageQuery {
    /// `starting_at` (RFC 3339).
    pub starting_at: Option<String>,
    /// `ending_at` (RFC 3339).
    pub ending_at: Option<String>,
    /// `workspace_id`.
    pub workspace_id: Option<String>,
    /// `principal_id` (`apikey_…`, `svac_…`, `bootstrap`).
    pub principal_id: Option<String>,
}

fn parse(field: &str, text: &str) -> Result<i64, AdminError> {
    parse_time(text).ok_or_else(|| {
        AdminError::Invalid(format!(
            "{field}: must be an RFC 3339 time such as 2026-12-01T00:00:00Z"
        ))
    })
}

fn principal_type(id: &str) -> Value {
    match id {
        "" => Value::Null,
        "bootstrap" => Value::from("bootstrap"),
        id if id.starts_with("apikey_") => Value::from("api_key"),
        id if id.starts_with("svac_") => Value::from("service_account"),
        _ => Value::Null,
    }
}

/// The summary for `query` at `now`.
pub async fn summary(state: &AppState, query: &UsageQuery, now: i64) -> Result<Value, AdminError> {
    let ending_at = query
        .ending_at
        .as_deref()
        .map(|text| parse("ending_at", text))
        .transpose()?
        .unwrap_or(now);
    let starting_at = match query.starting_at.as_deref() {
        Some(text) => parse("starting_at", text)?,
        None => ending_at - 24 * HOUR,
    };
    if starting_at >= ending_at {
        return Err(AdminError::Invalid("starting_at: must be before ending_at".to_owned()));
    }
    if ending_at - starting_at > MAX_RANGE {
        return Err(AdminError::Invalid(
            "starting_at: the range may be at most 366 days".to_owned(),
        ));
    }
    let from_hour = starting_at - starting_at.rem_euclid(HOUR);
    let until_hour = ending_at + (HOUR - ending_at.rem_euclid(HOUR)) % HOUR;
    let rows = state
        .store
        .usage_summary(
            &state.organization_id,
            from_hour,
            until_hour,
            query.principal_id.as_deref(),
            query.workspace_id.as_deref(),
        )
        .await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|row| {
            let known = |text: &str| {
                if text.is_empty() {
                    Value::Null
                } else {
                    Value::from(text)
                }
            };
            #[allow(clippy::cast_precision_loss, reason = "a mean for display")]
            let mean_latency_ms = if row.requests > 0 {
                row.latency_us_sum as f64 / row.requests as f64 / 1000.0
            } else {
                0.0
            };
            json!({
                "principal_type": principal_type(&row.principal_id),
                "principal_id": known(&row.principal_id),
                "workspace_id": known(&row.workspace_id),
                "requests": row.requests,
                "allowed": row.requests - row.refused,
                "refused": row.refused,
                "rate_limited": row.rate_limited,
                "upstream_errors": row.upstream_errors,
                "mean_latency_ms": mean_latency_ms,
                "last_request_at": time(row.last_request_at),
            })
        })
        .collect();
    Ok(json!({ "starting_at": time(from_hour), "ending_at": time(until_hour), "data": data }))
}
