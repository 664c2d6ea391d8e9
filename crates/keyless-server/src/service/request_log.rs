//! Every request on the record: one `api_request` activity event per request authorized or refused
//! (through `/v1/authorize` or the built-in proxy), the per-hour usage counts, and API keys'
//! last-used times — written in batches, off the request path.
//!
//! Parts: [`ApiRequest`] (one request's facts), [`RequestLog`] (the handle: [`RequestLog::record`] never
//! waits), and the writer task ([`RequestLog::start`]).
//!
//! Memory is bounded: the queue holds at most the configured number of requests (`request_log.queue`);
//! a request that finds it full is dropped and counted in `keyless_api_requests_dropped_total`, so a
//! database slower than the traffic costs records, never latency or memory. The writer waits for a
//! first request, lets the batch gather for the flush interval (`request_log.flush_ms`, default
//! [`DEFAULT_FLUSH`]; sooner when [`MAX_BATCH`] are queued), and writes it in one transaction — so a
//! record reaches the feed within about that interval, and under load a commit carries hundreds of
//! requests instead of the few dozen that arrive while the previous one is written (a commit's own cost,
//! its statements, the wake-ups of the database thread and the pages it rewrites, was a sixth of the
//! server's CPU per check on SQLite). Each transaction holds the events (stored batched, a few
//! rows per batch rather than one per request: `keyless_store::activity_batch`), the usage counts
//! summed per hour, principal and workspace, and the API keys' last-used times (one commit per batch).
//! A batch that fails is retried once after a pause, then dropped and counted. Each event's payload is
//! serialized straight from the request into JSON text (a `Value` built and torn down per request was
//! a tenth of the writer's CPU).
//!
//! The event: `actor_id` is the principal (`apikey_…`, `svac_…`, `bootstrap`; none when the credential
//! was not recognised), `resource_id` the workspace, `request_id` the request's; the payload carries
//! `method`, `path` (canonical, without the query, which may hold secrets), `route` (the matched
//! pattern), `status`, `latency_ms`, `outcome` (`allowed`/`refused`), `reason` (the refusal code),
//! `source` (`authorize`/`proxy`) and the principal's IDs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use keyless_core::id::{ApiKeyId, OrganizationId};
use keyless_store::Store;
use keyless_store::activity::{NewActivity, Payload};
use keyless_store::usage::UsageCount;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::service::authorize::Principal;

/// The activity type of every recorded request.
pub const ACTIVITY_TYPE: &str = "api_request";
/// The most requests one transaction carries.
pub const MAX_BATCH: usize = 2048;
/// The default queue bound.
pub const DEFAULT_QUEUE: usize = 65_536;
/// The default flush interval: how long a batch gathers after its first request.
pub const DEFAULT_FLUSH: Duration = Duration::from_millis(50);

/// The writer's bounds (`[request_log]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The most requests waiting for the database; more are dropped and counted.
    pub queue: usize,
    /// How long a batch gathers after its first request before it is written (zero: at once).
    pub flush: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            queue: DEFAULT_QUEUE,
            flush: DEFAULT_FLUSH,
        }
    }
}

/// Where a request was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `/v1/authorize` (a forward-auth check).
    Authorize,
    /// The built-in reverse proxy.
    Proxy,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::Authorize => "authorize",
            Self::Proxy => "proxy",
        }
    }
}

/// One request's facts.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// The organization.
    pub organization_id: OrganizationId,
    /// When it was decided (Unix seconds).
    pub at: i64,
    /// The request's ID.
    pub request_id: String,
    /// Where it was decided.
    pub source: Source,
    /// Who made it, when recognised.
    pub principal: Option<Arc<Principal>>,
    /// Its method.
    pub method: String,
    /// Its canonical path, when it had one.
    pub path: Option<String>,
    /// The route pattern that matched.
    pub route: Option<String>,
    /// The answer's status: the decision's (authorize), or the upstream's (proxy).
    pub status: u16,
    /// The refusal code, when refused.
    pub reason: Option<&'static str>,
    /// How long it took: the decision (authorize), or until the upstream's response head (proxy).
    pub latency: Duration,
}

/// The handle: cheap to clone.
#[derive(Debug, Clone)]
pub struct RequestLog {
    queue: mpsc::Sender<ApiRequest>,
}

impl RequestLog {
    /// Starts the writer on the current runtime. The writer ends (after writing what is queued) when
    /// every handle is dropped.
    pub fn start(store: Store, settings: Settings) -> (Self, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(settings.queue.max(1));
        let writer = tokio::spawn(write_loop(store, receiver, settings.flush));
        (Self { queue }, writer)
    }

    /// Queues `request`; when the queue is full it is dropped and counted, never waited for.
    pub fn record(&self, request: ApiRequest) {
        if self.queue.try_send(request).is_err() {
            metrics::counter!("keyless_api_requests_dropped_total").increment(1);
        }
    }
}

async fn write_loop(store: Store, mut receiver: mpsc::Receiver<ApiRequest>, flush: Duration) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if !flush.is_zero() {
            // Whatever arrives within the interval (until the batch is full) joins this commit.
            let gather = tokio::time::sleep(flush);
            tokio::pin!(gather);
            while let Some(room) = MAX_BATCH.checked_sub(batch.len()).filter(|room| *room > 0) {
                tokio::select! {
                    () = &mut gather => break,
                    received = receiver.recv_many(&mut batch, room) => if received == 0 { break },
                }
            }
        }
        let mut written = write(&store, &batch).await;
        if let Err(error) = &written {
            tracing::warn!(%error, requests = batch.len(), "writing a batch of request records failed; retrying once");
            tokio::time::sleep(Duration::from_millis(200)).await;
            written = write(&store, &batch).await;
        }
        match written {
            Ok(()) => metrics::counter!("keyless_api_requests_recorded_total").increment(batch.len() as u64),
            Err(error) => {
                tracing::error!(%error, requests = batch.len(), "request records dropped: the database refused them twice");
                metrics::counter!("keyless_api_requests_dropped_total").increment(batch.len() as u64);
            }
        }
        batch.clear();
    }
}

async fn write(store: &Store, batch: &[ApiRequest]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let payloads: Vec<Box<RawValue>> = batch.iter().map(payload).collect::<Result<_, _>>()?;
    let events: Vec<NewActivity<'_>> = batch
        .iter()
        .zip(&payloads)
        .map(|(request, payload)| {
            let principal = request.principal.as_deref();
            NewActivity {
                organization_id: &request.organization_id,
                activity_type: ACTIVITY_TYPE,
                actor_id: principal.map(|principal| principal.id.as_str()),
                resource_id: principal
                    .and_then(|principal| principal.workspace_id.as_ref())
                    .map(|id| id.as_str()),
                request_id: Some(&request.request_id),
                created_at: request.at,
                payload: Payload::Text(payload),
            }
        })
        .collect();
    let counts = usage(batch);
    let mut last_used: HashMap<(&OrganizationId, &ApiKeyId), i64> = HashMap::new();
    for request in batch {
        if let Some(id) = request
            .principal
            .as_ref()
            .and_then(|principal| principal.api_key_id.as_ref())
        {
            let at = last_used.entry((&request.organization_id, id)).or_insert(request.at);
            *at = (*at).max(request.at);
        }
    }
    let touches: Vec<(OrganizationId, ApiKeyId, i64)> = last_used
        .into_iter()
        .map(|((organization_id, id), at)| (organization_id.clone(), id.clone(), at))
        .collect();
    let mut tx = store.begin().await?;
    tx.activity_append_batched(&events).await?;
    tx.usage_add_many(&counts).await?;
    tx.api_key_touch_many(&touches).await?;
    Ok(tx.commit().await?)
}

/// The event's payload (see the module's documentation), serialized straight from the request.
fn payload(request: &ApiRequest) -> Result<Box<RawValue>, serde_json::Error> {
    #[derive(Serialize)]
    struct Event<'a> {
        source: &'static str,
        method: &'a str,
        path: Option<&'a str>,
        route: Option<&'a str>,
        status: u16,
        outcome: &'static str,
        reason: Option<&'static str>,
        latency_ms: f64,
        principal: Option<PrincipalView<'a>>,
        workspace_id: Option<&'a str>,
    }
    #[derive(Serialize)]
    struct PrincipalView<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        id: &'a str,
        scope: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        api_key_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        service_account_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        federation_rule_id: Option<&'a str>,
    }
    let principal = request.principal.as_deref();
    let event = Event {
        source: request.source.as_str(),
        method: &request.method,
        path: request.path.as_deref(),
        route: request.route.as_deref(),
        status: request.status,
        outcome: if request.reason.is_none() { "allowed" } else { "refused" },
        reason: request.reason,
        latency_ms: request.latency.as_secs_f64() * 1000.0,
        principal: principal.map(|principal| PrincipalView {
            kind: principal.kind.as_str(),
            id: &principal.id,
            scope: principal.scope.to_string(),
            api_key_id: principal.api_key_id.as_ref().map(|id| id.as_str()),
            service_account_id: principal.service_account_id.as_ref().map(|id| id.as_str()),
            federation_rule_id: principal.rule_id.as_ref().map(|id| id.as_str()),
        }),
        workspace_id: principal
            .and_then(|principal| principal.workspace_id.as_ref())
            .map(|id| id.as_str()),
    };
    serde_json::value::to_raw_value(&event)
}

/// The batch's counts, one per hour, principal and workspace.
fn usage(batch: &[ApiRequest]) -> Vec<UsageCount> {
    let mut counts: HashMap<(&OrganizationId, i64, &str, &str), UsageCount> = HashMap::new();
    for request in batch {
        let principal = request.principal.as_deref();
        let principal_id = principal.map_or("", |principal| principal.id.as_str());
        let workspace_id = principal
            .and_then(|principal| principal.workspace_id.as_ref())
            .map_or("", |id| id.as_str());
        let hour = request.at - request.at.rem_euclid(3600);
        let count = counts
            .entry((&request.organization_id, hour, principal_id, workspace_id))
            .or_insert_with(|| UsageCount {
                organization_id: request.organization_id.clone(),
                hour,
                principal_id: principal_id.to_owned(),
                workspace_id: workspace_id.to_owned(),
                requests: 0,
                refused: 0,
                rate_limited: 0,
                upstream_errors: 0,
                latency_us_sum: 0,
                last_request_at: request.at,
            });
        count.requests += 1;
        count.refused += i64::from(request.reason.is_some());
        count.rate_limited += i64::from(request.status == 429);
        count.upstream_errors += i64::from(request.reason.is_none() && request.status >= 500);
        count.latency_us_sum += i64::try_from(request.latency.as_micros()).unwrap_or(i64::MAX);
        count.last_request_at = count.last_request_at.max(request.at);
    }
    counts.into_values().collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use keyless_store::organization::OrganizationRecord;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    async fn store_with_organization(dir: &tempfile::TempDir) -> (Store, OrganizationId) {
        let store = Store::open_sqlite(dir.path().join("keyless.db")).await.unwrap();
        let organization_id = OrganizationId::parse("0190a1b2-c3d4-7e5f-8a9b-000000000001").unwrap();
        let mut tx = store.begin().await.unwrap();
        tx.organization_create(&OrganizationRecord {
            id: organization_id.clone(),
            created_at: NOW,
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
        (store, organization_id)
    }

    fn request(organization_id: &OrganizationId, n: usize) -> ApiRequest {
        ApiRequest {
            organization_id: organization_id.clone(),
            at: NOW,
            request_id: format!("req_{n:026}"),
            source: Source::Authorize,
            principal: None,
            method: "GET".to_owned(),
            path: Some("/v1/models".to_owned()),
            route: None,
            status: 401,
            reason: Some("missing_credential"),
            latency: Duration::from_micros(40),
        }
    }

    async fn recorded(store: &Store, organization_id: &OrganizationId) -> usize {
        store
            .activity_scan(organization_id, &[ACTIVITY_TYPE], None, 10_000)
            .await
            .unwrap()
            .len()
    }

    /// How long a test waits for something the writer does at once (a loaded CI machine is slow).
    const PATIENCE: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn a_batch_gathers_for_the_flush_interval_and_is_written_early_when_full_or_at_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let (store, organization_id) = store_with_organization(&dir).await;
        let settings = Settings {
            queue: 4 * MAX_BATCH,
            flush: Duration::from_secs(3600),
        };
        let (log, writer) = RequestLog::start(store.clone(), settings);

        // Gathering: a request (and another a moment later) waits for the interval.
        log.record(request(&organization_id, 0));
        tokio::time::sleep(Duration::from_millis(200)).await;
        log.record(request(&organization_id, 1));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(recorded(&store, &organization_id).await, 0);

        // A full batch is written without waiting for the interval, in one transaction.
        for n in 2..MAX_BATCH {
            log.record(request(&organization_id, n));
        }
        tokio::time::timeout(PATIENCE, async {
            while recorded(&store, &organization_id).await < MAX_BATCH {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(recorded(&store, &organization_id).await, MAX_BATCH);

        // What is gathering when the last handle goes is written at once, not after the interval.
        log.record(request(&organization_id, MAX_BATCH));
        drop(log);
        tokio::time::timeout(PATIENCE, writer).await.unwrap().unwrap();
        assert_eq!(recorded(&store, &organization_id).await, MAX_BATCH + 1);
        store.close().await;
    }

    #[tokio::test]
    async fn without_a_flush_interval_a_request_is_written_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, organization_id) = store_with_organization(&dir).await;
        let settings = Settings {
            queue: 16,
            flush: Duration::ZERO,
        };
        let (log, writer) = RequestLog::start(store.clone(), settings);
        log.record(request(&organization_id, 0));
        tokio::time::timeout(PATIENCE, async {
            while recorded(&store, &organization_id).await < 1 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap();
        drop(log);
        writer.await.unwrap();
        store.close().await;
    }
}
