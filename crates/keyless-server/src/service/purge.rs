//! Forgetting what has expired: issued access tokens and `jti` records stop mattering at a known time,
//! and without this task both tables would grow with every exchange, forever.
//!
//! Parts: [`spawn`] (the task `run` starts and stops) and [`purge_once`] (one pass).
//!
//! Every [`INTERVAL`] a pass deletes access tokens that expired more than [`TOKEN_GRACE_SECONDS`] ago
//! (until then a late caller still hears `credential_expired` rather than that the token is unknown,
//! and introspection answers `active: false` either way) and `jti` records past their `keep_until`
//! (the token's `exp` plus leeway: the token itself would fail its `exp` check by then). Deletes go in
//! statements of at most [`CHUNK`] rows, each its own short transaction, so a backlog (a server that was
//! down, a first start on old data) never holds SQLite's write lock for long: exchanges' group commits
//! take their turns between chunks. Counted in `keyless_purged_total{kind="access_token"|"jti"}`.
//! Activity events are never purged: the feed is the audit record.
//!
//! With several nodes every node purges; a row deleted twice is deleted once, so that costs a query.

use std::time::Duration;

use keyless_store::{Store, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Time between passes.
pub const INTERVAL: Duration = Duration::from_secs(60);
/// How long after its expiry a token is kept (so refusals can still say it expired).
pub const TOKEN_GRACE_SECONDS: i64 = 3600;
/// The most rows one delete statement removes.
pub const CHUNK: u32 = 2000;

/// How many rows one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Access tokens.
    pub access_tokens: u64,
    /// `jti` records.
    pub jtis: u64,
}

/// Starts the purger: a pass at once, then every [`INTERVAL`]. It stops when `shutdown` turns `true` (or
/// its sender is dropped), abandoning a pass midway if need be: each chunk is one statement, all or nothing.
pub fn spawn(store: Store, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
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
                purged = purge_once(&store, crate::clock::now_unix()) => {
                    if let Err(error) = purged {
                        tracing::warn!(%error, "purging expired access tokens and jti records failed; the next pass retries");
                    }
                }
            }
        }
    })
}

/// One pass at `now`: deletes, chunk by chunk, every access token expired before
/// `now - TOKEN_GRACE_SECONDS` and every `jti` record kept until before `now`.
pub async fn purge_once(store: &Store, now: i64) -> Result<Purged, StoreError> {
    let token_cutoff = now.saturating_sub(TOKEN_GRACE_SECONDS);
    let purged = Purged {
        access_tokens: in_chunks("access_token", || store.access_token_purge(token_cutoff, CHUNK)).await?,
        jtis: in_chunks("jti", || store.jti_purge(now, CHUNK)).await?,
    };
    if purged != Purged::default() {
        tracing::debug!(
            access_tokens = purged.access_tokens,
            jtis = purged.jtis,
            "purged expired access tokens and jti records"
        );
    }
    Ok(purged)
}

/// Runs `delete` (one chunk) until a chunk comes back short; returns the rows deleted.
async fn in_chunks<F, Fut>(kind: &'static str, mut delete: F) -> Result<u64, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0;
    loop {
        let deleted = delete().await?;
        metrics::counter!("keyless_purged_total", "kind" => kind).increment(deleted);
        total += deleted;
        if deleted < u64::from(CHUNK) {
            return Ok(total);
        }
    }
}
