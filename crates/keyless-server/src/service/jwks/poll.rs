//! Background polling of issuer keys: keeps the cache warm and the `poll_status` of every issuer
//! visible to admins.
//!
//! Parts: [`PollSettings`], [`spawn`] (the task `run` starts and stops), [`poll_once`] (one tick:
//! what is due, polled concurrently, statuses written), [`next_status`] (the pure bookkeeping).
//!
//! Each tick (every `interval_seconds`) takes up to `batch_size` issuers whose poll is due
//! ([`keyless_store::Store::issuer_list_due`]: not archived, not paused, `next_poll_at` unset or past)
//! and polls each through the shared [`IssuerKeys`] — a fetch only when the cached keys are no longer
//! fresh, so polling and token exchanges never fetch the same keys twice. On success the next poll is
//! due when the keys stop being fresh; on failure after an exponential backoff (`retry_min_seconds`
//! doubling up to `retry_max_seconds`). After `failures_before_pause` consecutive failures polling is
//! paused (`jwks_polling_disabled_at`); an admin update of the issuer resumes it. Inline keys are never
//! fetched: they are "polled" once a `cache_max_seconds` period, which only records that they are usable.
//!
//! With several nodes, whichever node lists an issuer first polls it; two nodes may occasionally poll
//! the same issuer in one tick, which costs a fetch and nothing else (the last status written wins).

use std::sync::Arc;
use std::time::Duration;

use keyless_store::issuer::{IssuerPollStatus, IssuerRecord};
use keyless_store::{Limit, Store, StoreError};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::cache::{IssuerKeys, PollOutcome};

/// How the poller runs. The defaults are what `keyless serve` uses when `[issuers]` says nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollSettings {
    /// Seconds between ticks (default 5).
    pub interval_seconds: u64,
    /// Most issuers polled per tick (1–100, default 20).
    pub batch_size: u32,
    /// Consecutive failures after which polling is paused (default 10).
    pub failures_before_pause: i64,
    /// Wait after a first failure; doubled after each further one (default 30 s).
    pub retry_min_seconds: i64,
    /// Longest wait between failed polls (default 1 h).
    pub retry_max_seconds: i64,
}

impl Default for PollSettings {
    fn default() -> Self {
        PollSettings {
            interval_seconds: 5,
            batch_size: 20,
            failures_before_pause: 10,
            retry_min_seconds: 30,
            retry_max_seconds: 3600,
        }
    }
}

/// Starts the poller; it stops when `shutdown` turns `true` (or its sender is dropped).
pub fn spawn(
    store: Store,
    keys: Arc<IssuerKeys>,
    settings: PollSettings,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(settings.interval_seconds.max(1)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                changed = shutdown.changed() => if changed.is_err() { break } else { continue },
                _ = interval.tick() => {}
            }
            let now = crate::clock::now_unix();
            tokio::select! {
                changed = shutdown.changed() => if changed.is_err() { break } else { continue },
                polled = poll_once(&store, &keys, &settings, now) => {
                    if let Err(err) = polled {
                        tracing::warn!("issuer key polling: {err}");
                    }
                }
            }
        }
    })
}

/// One tick at `now`: polls every due issuer (up to `batch_size`, concurrently) and writes each one's
/// status. Returns how many issuers were polled.
pub async fn poll_once(
    store: &Store,
    keys: &Arc<IssuerKeys>,
    settings: &PollSettings,
    now: i64,
) -> Result<usize, StoreError> {
    let limit = Limit::new(settings.batch_size.clamp(1, Limit::MAX)).unwrap_or(Limit::DEFAULT);
    let due = store.issuer_list_due(now, limit).await?;
    let polled = due.len();
    let mut tasks = JoinSet::new();
    for issuer in due {
        let store = store.clone();
        let keys = Arc::clone(keys);
        let settings = *settings;
        tasks.spawn(async move { poll_issuer(&store, &keys, &settings, &issuer, now).await });
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                first_error.get_or_insert(err);
            }
            Err(err) => tracing::error!("an issuer poll ended abnormally: {err}"),
        }
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(polled),
    }
}

async fn poll_issuer(
    store: &Store,
    keys: &IssuerKeys,
    settings: &PollSettings,
    issuer: &IssuerRecord,
    now: i64,
) -> Result<(), StoreError> {
    let outcome = keys.poll(issuer, now).await;
    let (status, paused_at) = next_status(
        &issuer.poll_status,
        &outcome,
        settings,
        keys.settings().cache_max_seconds,
        now,
    );
    if paused_at.is_some() {
        tracing::warn!(
            issuer_id = issuer.id.as_str(),
            failures = status.consecutive_failures,
            "issuer key polling paused after repeated failures; an update of the issuer resumes it"
        );
    }
    match store
        .issuer_poll_status_set(&issuer.organization_id, &issuer.id, &status, paused_at)
        .await
    {
        // Deleted in the meantime: nothing to record.
        Err(StoreError::NotFound) => Ok(()),
        other => other,
    }
}

/// The status to record after a poll, and when polling is paused (`None`: it is not).
pub fn next_status(
    previous: &IssuerPollStatus,
    outcome: &PollOutcome,
    settings: &PollSettings,
    cache_max_seconds: i64,
    now: i64,
) -> (IssuerPollStatus, Option<i64>) {
    match outcome {
        PollOutcome::Fresh {
            fetched_at,
            fresh_until,
        } => {
            let next = (*fresh_until)
                .min(now.saturating_add(cache_max_seconds))
                .max(now.saturating_add(1));
            let status = IssuerPollStatus {
                consecutive_failures: 0,
                last_fetched_at: fetched_at.or(previous.last_fetched_at),
                next_poll_at: Some(next),
                last_error: None,
            };
            (status, None)
        }
        PollOutcome::Failed(error) => {
            let failures = previous.consecutive_failures.saturating_add(1);
            let exponent = u32::try_from(failures.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
            let wait = settings
                .retry_min_seconds
                .max(1)
                .saturating_mul(1_i64 << exponent)
                .min(settings.retry_max_seconds.max(1));
            let status = IssuerPollStatus {
                consecutive_failures: failures,
                last_fetched_at: previous.last_fetched_at,
                next_poll_at: Some(now.saturating_add(wait)),
                last_error: Some(format!("{}: {error}", error.code())),
            };
            let paused_at = (failures >= settings.failures_before_pause).then_some(now);
            (status, paused_at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fetch::FetchError;
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn failed() -> PollOutcome {
        PollOutcome::Failed(FetchError::HttpStatus {
            url: "https://issuer.example/jwks".to_owned(),
            status: 503,
        })
    }

    fn check(previous_failures: i64, outcome: PollOutcome, expect_failures: i64, expect_next: i64, paused: bool) {
        let previous = IssuerPollStatus {
            consecutive_failures: previous_failures,
            last_fetched_at: Some(NOW - 100),
            next_poll_at: Some(NOW),
            last_error: None,
        };
        let settings = PollSettings::default();
        let (status, paused_at) = next_status(&previous, &outcome, &settings, 86_400, NOW);
        assert_eq!(status.consecutive_failures, expect_failures, "{outcome:?}");
        assert_eq!(status.next_poll_at, Some(NOW + expect_next), "{outcome:?}");
        assert_eq!(paused_at, paused.then_some(NOW), "{outcome:?}");
        assert_eq!(status.last_error.is_some(), expect_failures > 0);
    }

    #[test]
    fn success_is_due_again_when_the_keys_stop_being_fresh() {
        let fresh = |fetched_at, fresh_until| PollOutcome::Fresh {
            fetched_at,
            fresh_until,
        };
        check(3, fresh(Some(NOW), NOW + 900), 0, 900, false);
        check(0, fresh(None, i64::MAX), 0, 86_400, false);
        check(0, fresh(Some(NOW - 10), NOW), 0, 1, false);
    }

    #[test]
    fn failures_back_off_then_pause() {
        check(0, failed(), 1, 30, false);
        check(1, failed(), 2, 60, false);
        check(2, failed(), 3, 120, false);
        check(7, failed(), 8, 3600, false);
        check(8, failed(), 9, 3600, false);
        check(9, failed(), 10, 3600, true);
        check(500, failed(), 501, 3600, true);
    }

    #[test]
    fn the_error_is_recorded_with_its_code() {
        let (status, _) = next_status(
            &IssuerPollStatus::default(),
            &failed(),
            &PollSettings::default(),
            86_400,
            NOW,
        );
        assert_eq!(
            status.last_error.as_deref(),
            Some("http_status: https://issuer.example/jwks: HTTP status 503")
        );
        assert_eq!(status.last_fetched_at, None);
    }
}
