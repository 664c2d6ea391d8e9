//! The usage summary: `GET /v1/organizations/usage` — request counts per principal and workspace
//! over the hourly buckets of a time range.

use serde::{Deserialize, Serialize};

use crate::PrincipalType;

/// The answer: the range the counts cover and one row per principal and workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageSummary {
    /// The start of the range (RFC 3339).
    pub starting_at: String,
    /// The end of the range (RFC 3339).
    pub ending_at: String,
    /// One row per principal and workspace that made requests in the range.
    pub data: Vec<UsageRow>,
}

/// The requests of one principal in one workspace over the range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRow {
    /// The kind of credential; `None` when it was not recognised.
    pub principal_type: Option<PrincipalType>,
    /// The API key (`apikey_…`) or service account (`svac_…`); `None` for requests whose credential
    /// was not recognised.
    pub principal_id: Option<String>,
    /// The workspace (`wrkspc_…`); `None` when not known.
    pub workspace_id: Option<String>,
    /// Every request (through `/v1/authorize` or the built-in proxy).
    pub requests: u64,
    /// Requests that were authorized.
    pub allowed: u64,
    /// Requests that were refused.
    pub refused: u64,
    /// Requests that were rate limited.
    pub rate_limited: u64,
    /// Requests that ended in an upstream error.
    pub upstream_errors: u64,
    /// The mean latency, in milliseconds.
    pub mean_latency_ms: f64,
    /// When the last request was made (RFC 3339).
    pub last_request_at: Option<String>,
}
