//! Forgetting what has expired: issued access tokens and `jti` records stop mattering at a known time,
//! and without this task both tables would grow with every exchange, forever; and the high-volume
//! activity events, once they are older than the operator's [`Retention`].
//!
//! Parts: [`spawn`] (the task `run` starts and stops), [`purge_once`] (one pass), [`Retention`].
//!
//! Every [`INTERVAL`] a pass deletes access tokens that expired more than [`TOKEN_GRACE_SECONDS`] ago
//! (until then a late caller still hears `credential_expired` rather than that the token is unknown,
//! and introspection answers `active: false` either way) and `jti` records past their `keep_until`
//! (the token's `exp` plus leeway: the token itself would fail its `exp` check by then). Deletes go in
//! statements of at most [`CHUNK`] rows ([`BATCH_CHUNK`] rows of batched events, up to 512 events
//! each), each its own short transaction, so a backlog (a server that was
//! down, a first start on old data) never holds SQLite's write lock for long: exchanges' group commits
//! take their turns between chunks.
//!
//! Retention: `api_request` events (one per checked request) older than `request_days` (90 by
//! default), exchange events (`platform_federated_authentication` and `_shadow`) older than
//! `exchange_days` (kept forever by default), and the hourly usage counts of hours that ended more than
//! `usage_days` ago (400 by default), organization by organization, oldest first; `0` keeps them
//! forever. Admin changes and every other event are always kept: the feed is the audit record.
//!
//! Counted in `keyless_purged_total{kind="access_token"|"jti"|"api_request"|"exchange"|"usage"}`.
//!
//! With several nodes every node purges; a row deleted twice is deleted once, so that costs a query.

use std::time::Duration;

use keyless_store::{Store, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::service::{exchange, request_log};

/// Time between passes.
pub const INTERVAL: Duration = Duration::from_secs(60);
/// How long after its expiry a token is kept (so refusals can still say it expired).
pub const TOKEN_GRACE_SECONDS: i64 = 3600;
/// The most rows one delete statement removes.
pub const CHUNK: u32 = 2000;
/// The most rows of batched events (up to 512 events each) one delete removes.
pub const BATCH_CHUNK: u32 = 4;

/// The longest retention that can be set, in days (a century).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// How long the high-volume activity events are kept, in days; `0` keeps them forever (`[retention]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `api_request` events.
    pub request_days: u32,
    /// `platform_federated_authentication` and `platform_federated_authentication_shadow` events.
    pub exchange_days: u32,
    /// The hourly usage counts (`GET /v1/organizations/usage`).
    pub usage_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            request_days: 90,
            exchange_days: 0,
            usage_days: 400,
        }
    }
}

/// The time `days` before `now`, or `None` for `0` (forever).
fn cutoff(days: u32, now: i64) -> Option<i64> {
    (days > 0).then(|| now.saturating_sub(i64::from(days) * 86_400))
}

impl Retention {
    /// Each activity type with a retention, its metric kind, and the time before which its events go.
    fn cutoffs(self, now: i64) -> impl Iterator<Item = (&'static str, &'static str, i64)> {
        let requests = cutoff(self.request_days, now).map(|before| ("api_request", request_log::ACTIVITY_TYPE, before));
        let exchanges = cutoff(self.exchange_days, now).into_iter().flat_map(|before| {
            [exchange::ACTIVITY_TYPE, exchange::SHADOW_ACTIVITY_TYPE]
                .map(|activity_type| ("exchange", activity_type, before))
        });
        requests.into_iter().chain(exchanges)
    }
}

/// How many rows one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Access tokens.
    pub access_tokens: u64,
    /// `jti` records.
    pub jtis: u64,
    /// `api_request` events.
    pub requests: u64,
    /// Exchange events.
    pub exchanges: u64,
    /// Hourly usage counts.
    pub usage: u64,
}

/// Starts the purger: a pass at once, then every [`INTERVAL`]. It stops when `shutdown` turns `true` (or
/// its sender is dropped), abandoning a pass midway if need be: each chunk is one statement, all or nothing.
pub fn spawn(store: Store, retention: Retention, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    // A deletion policy is said out loud once, so nobody learns of it from a shorter feed.
    tracing::info!(
        request_days = retention.request_days,
        exchange_days = retention.exchange_days,
        usage_days = retention.usage_days,
        "retention: api_request events, exchange events and hourly usage counts older than this many days are deleted (0 keeps them forever)"
    );
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { break } else { continue },
                _ = interval.tick() => {}
            }
            tokio::select! {
                changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { break } else { continue },
                purged = purge_once(&store, retention, crate::clock::now_unix()) => {
                    if let Err(error) = purged {
                        tracing::warn!(%error, "purging expired tokens, jti records and old activity events failed; the next pass retries");
                    }
                }
            }
        }
    })
}

/// One pass at `now`: deletes, chunk by chunk, every access token expired before
/// `now - TOKEN_GRACE_SECONDS`, every `jti` record kept until before `now`, and every organization's
/// activity events past their `retention`.
pub async fn purge_once(store: &Store, retention: Retention, now: i64) -> Result<Purged, StoreError> {
    let token_cutoff = now.saturating_sub(TOKEN_GRACE_SECONDS);
    let mut purged = Purged {
        access_tokens: in_chunks("access_token", CHUNK, || async {
            store
                .access_token_purge(token_cutoff, CHUNK)
                .await
                .map(|rows| (rows, rows))
        })
        .await?,
        jtis: in_chunks("jti", CHUNK, || async {
            store.jti_purge(now, CHUNK).await.map(|rows| (rows, rows))
        })
        .await?,
        ..Purged::default()
    };
    // A usage row is its hour's start: it goes once the whole hour is past the cutoff.
    let usage_cutoff = cutoff(retention.usage_days, now).map(|before| before.saturating_sub(3600));
    if retention.cutoffs(now).next().is_some() || usage_cutoff.is_some() {
        for organization in store.organization_list().await? {
            if let Some(before) = usage_cutoff {
                purged.usage += in_chunks("usage", CHUNK, || async {
                    store
                        .usage_purge(&organization.id, before, CHUNK)
                        .await
                        .map(|rows| (rows, rows))
                })
                .await?;
            }
            for (kind, activity_type, before) in retention.cutoffs(now) {
                let rows = in_chunks(kind, CHUNK, || async {
                    let deleted = store
                        .activity_purge(&organization.id, activity_type, before, CHUNK)
                        .await?;
                    Ok((deleted, deleted))
                })
                .await?;
                let batched = in_chunks(kind, BATCH_CHUNK, || async {
                    let deleted = store.activity_batch_purge(&organization.id, activity_type, before, BATCH_CHUNK);
                    deleted.await.map(|deleted| (deleted.rows, deleted.events))
                })
                .await?;
                let deleted = rows + batched;
                match kind {
                    "api_request" => purged.requests += deleted,
                    _ => purged.exchanges += deleted,
                }
            }
        }
    }
    if purged != Purged::default() {
        tracing::debug!(
            access_tokens = purged.access_tokens,
            jtis = purged.jtis,
            requests = purged.requests,
            exchanges = purged.exchanges,
            usage = purged.usage,
            "purged expired access tokens and jti records, and activity events and usage counts past their retention"
        );
    }
    Ok(purged)
}

/// Runs `delete` (one chunk of at most `limit` rows) until a chunk comes back short; `delete` answers
/// the rows it deleted and what they count as (events, for rows of batched events); returns the count.
async fn in_chunks<F, Fut>(kind: &'static str, limit: u32, mut delete: F) -> Result<u64, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(u64, u64), StoreError>>,
{
    let mut total = 0;
    loop {
        let (rows, counted) = delete().await?;
        metrics::counter!("keyless_purged_total", "kind" => kind).increment(counted);
        total += counted;
        if rows < u64::from(limit) {
            return Ok(total);
        }
    }
}
