//! The issuer key cache the token exchange verifies with: [`IssuerKeys`].
//!
//! Parts: [`KeySettings`] (cache bounds, cooldown, staleness, fetch bounds), [`IssuerKeys`] (one entry
//! per issuer and configuration, a single-flight fetch per entry), [`KeysError`], [`PollOutcome`] (what
//! the background poller records).
//!
//! Rules, for an issuer whose keys are fetched (`discovery`, `explicit_url`; `inline` keys are never
//! fetched):
//! - Keys are fresh for the response's `Cache-Control: max-age` (less `Age`) or `Expires`, clamped to
//!   `[cache_min_seconds, cache_max_seconds]`, or `cache_default_seconds` when the response says nothing.
//! - A fetch happens when nothing is cached or the keys are no longer fresh — at most once per
//!   `refetch_cooldown_seconds` per issuer (counted from the last attempt, so a failing issuer is not
//!   hammered) — and when a token names a `kid` the fresh keys lack — at most once per cooldown per
//!   issuer (counted from the last such re-fetch; a scheduled fetch does not start it, so a key rotated
//!   right after one is still picked up at once). Concurrent callers that need a fetch wait for the
//!   same one (single flight): a burst of tokens signed with a newly rotated key costs one fetch.
//! - A failed fetch keeps the last good keys in use until `max_staleness_seconds` after their last
//!   successful fetch; past that (or when no fetch ever succeeded) the caller gets
//!   [`KeysError::Unavailable`]. A fetch that yields no usable key counts as failed.
//! - Entries are keyed by the issuer ID *and* a digest of its configuration (`issuer_url` + `jwks`),
//!   so an updated issuer never uses keys fetched under its old configuration; [`IssuerKeys::forget`]
//!   drops an entry at once.
//!
//! Time is a parameter (`now`, Unix seconds); this module never reads the clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use keyless_core::id::IssuerId;
use keyless_jose::Jwks;
use keyless_store::issuer::IssuerRecord;

use super::fetch::{FetchError, FetchSettings, Fetcher};
use super::source::{JwksSource, UrlPolicy};

/// The cache's bounds. The defaults are what `keyless serve` uses when `[issuers]` says nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySettings {
    /// Shortest time keys are considered fresh, whatever the response says (default 60 s).
    pub cache_min_seconds: i64,
    /// Longest time keys are considered fresh, whatever the response says (default 24 h).
    pub cache_max_seconds: i64,
    /// Freshness when the response carries no caching header (default 15 min).
    pub cache_default_seconds: i64,
    /// Least time between two fetches of one issuer's keys (default 30 s).
    pub refetch_cooldown_seconds: i64,
    /// How long after their last successful fetch the last good keys stay in use while fetches fail
    /// (default 24 h).
    pub max_staleness_seconds: i64,
    /// Timeouts, size cap and redirects of each fetch.
    pub fetch: FetchSettings,
}

impl Default for KeySettings {
    fn default() -> Self {
        KeySettings {
            cache_min_seconds: 60,
            cache_max_seconds: 24 * 3600,
            cache_default_seconds: 15 * 60,
            refetch_cooldown_seconds: 30,
            max_staleness_seconds: 24 * 3600,
            fetch: FetchSettings::default(),
        }
    }
}

impl KeySettings {
    /// How long keys stay fresh given a response's max age.
    pub fn freshness(&self, max_age: Option<i64>) -> i64 {
        max_age.unwrap_or(self.cache_default_seconds).clamp(
            self.cache_min_seconds,
            self.cache_max_seconds.max(self.cache_min_seconds),
        )
    }
}

/// Why no keys can be given for an issuer. The exchange maps every variant to `jwks_unavailable`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    /// No usable keys: the fetch failed (or yielded no usable key) and there are no last good keys
    /// fetched within `max_staleness_seconds`; inline keys none of which is usable.
    #[error("issuer keys unavailable: {0}")]
    Unavailable(FetchError),
}

impl KeysError {
    /// The stable code: `jwks_unavailable`. [`KeysError::cause_code`] says why.
    pub fn code(&self) -> &'static str {
        match self {
            KeysError::Unavailable(_) => "jwks_unavailable",
        }
    }

    /// The code of the underlying failure (`timeout`, `http_status`, `no_usable_keys`, …).
    pub fn cause_code(&self) -> &'static str {
        match self {
            KeysError::Unavailable(cause) => cause.code(),
        }
    }

    /// The underlying failure.
    pub fn cause(&self) -> &FetchError {
        match self {
            KeysError::Unavailable(cause) => cause,
        }
    }
}

/// What the poller records for an issuer after [`IssuerKeys::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    /// Keys are cached: fetched (now or earlier) at `fetched_at`, fresh until `fresh_until`.
    Fresh {
        /// When the keys were last fetched successfully (`None` for inline keys).
        fetched_at: Option<i64>,
        /// When they need fetching again.
        fresh_until: i64,
    },
    /// The fetch failed.
    Failed(FetchError),
}

/// Keys fetched successfully.
#[derive(Debug, Clone)]
struct Good {
    jwks: Arc<Jwks>,
    /// `None` for inline keys.
    fetched_at: Option<i64>,
    fresh_until: i64,
}

impl Good {
    fn has_kid(&self, kid: &str) -> bool {
        self.jwks.keys().iter().any(|jwk| jwk.kid() == Some(kid))
    }
}

/// What is known of one issuer's keys.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    good: Option<Good>,
    /// The `now` of the last completed fetch.
    last_attempt_at: Option<i64>,
    /// The `now` of the last completed fetch caused by an unknown `kid`.
    last_refetch_at: Option<i64>,
    /// Why the last fetch failed, if it did.
    last_error: Option<FetchError>,
    /// Bumped by every completed fetch: a waiter that sees it changed uses that fetch's result.
    generation: u64,
}

/// One issuer under one configuration.
#[derive(Debug)]
struct Entry {
    config_digest: [u8; 32],
    /// The configuration, parsed once (inline keys are parsed into the snapshot).
    source: JwksSource,
    snapshot: Mutex<Snapshot>,
    /// Held while fetching: the single flight.
    fetching: tokio::sync::Mutex<()>,
}

impl Entry {
    fn snapshot(&self) -> Snapshot {
        self.snapshot.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// The issuer key cache; share it behind an `Arc`.
#[derive(Debug)]
pub struct IssuerKeys {
    settings: KeySettings,
    fetcher: Fetcher,
    entries: Mutex<HashMap<IssuerId, Arc<Entry>>>,
}

/// What a caller holding a snapshot should do.
enum Plan {
    Serve(Result<Arc<Jwks>, KeysError>),
    /// Fetch; `true` when it is the re-fetch of an unknown `kid` (which starts its cooldown).
    Fetch(bool),
}

impl IssuerKeys {
    /// An empty cache fetching under `policy`.
    pub fn new(settings: KeySettings, policy: UrlPolicy) -> Self {
        IssuerKeys {
            settings,
            fetcher: Fetcher::new(settings.fetch, policy),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &KeySettings {
        &self.settings
    }

    /// The keys to verify a token from `issuer` whose header carries `kid` (`None`: no `kid`), at `now`.
    ///
    /// What the caller gets:
    /// - `Ok(keys)` holding `kid` when the cache has it or a fetch allowed now finds it;
    /// - `Ok(keys)` *without* `kid` when the keys are usable but lack it even after the one fetch the
    ///   cooldown allows (the verifier then reports `key_not_found`); likewise stale keys within
    ///   `max_staleness_seconds` while fetches fail;
    /// - `Err(KeysError::Unavailable)` when there is no usable key to verify with at all: the fetch
    ///   failed, no last good keys are recent enough, or inline keys hold no usable key.
    pub async fn keys_for(&self, issuer: &IssuerRecord, kid: Option<&str>, now: i64) -> Result<Arc<Jwks>, KeysError> {
        let entry = self.entry(issuer)?;
        let seen = entry.snapshot();
        let refetch = match self.plan(&seen, kid, now) {
            Plan::Serve(result) => return result,
            Plan::Fetch(refetch) => refetch,
        };
        let _flight = entry.fetching.lock().await;
        let current = entry.snapshot();
        if current.generation != seen.generation {
            // Someone fetched while this caller waited: use that outcome, fetch no more.
            return self.serve_after_fetch(&current, now);
        }
        let after = self.fetch_into(&entry, issuer, now, refetch).await;
        self.serve_after_fetch(&after, now)
    }

    /// The poller's call: fetches the issuer's keys unless cached keys stay fresh past `now`, and says
    /// what to record. Shares the single flight with [`IssuerKeys::keys_for`].
    pub async fn poll(&self, issuer: &IssuerRecord, now: i64) -> PollOutcome {
        let entry = match self.entry(issuer) {
            Ok(found) => found,
            Err(KeysError::Unavailable(cause)) => return PollOutcome::Failed(cause),
        };
        let seen = entry.snapshot();
        if let Some(good) = seen.good.as_ref().filter(|good| good.fresh_until > now) {
            return match inline(good) {
                Err(KeysError::Unavailable(cause)) if good.fetched_at.is_none() => PollOutcome::Failed(cause),
                _ => PollOutcome::Fresh {
                    fetched_at: good.fetched_at,
                    fresh_until: good.fresh_until,
                },
            };
        }
        let _flight = entry.fetching.lock().await;
        let current = entry.snapshot();
        let after = if current.generation != seen.generation {
            current
        } else {
            self.fetch_into(&entry, issuer, now, false).await
        };
        match (&after.last_error, &after.good) {
            (None, Some(good)) => PollOutcome::Fresh {
                fetched_at: good.fetched_at,
                fresh_until: good.fresh_until,
            },
            (Some(error), _) => PollOutcome::Failed(error.clone()),
            (None, None) => PollOutcome::Failed(FetchError::Config("no keys".to_owned())),
        }
    }

    /// Drops what is cached for an issuer (after an admin update or archive).
    pub fn forget(&self, issuer_id: &IssuerId) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(issuer_id);
    }

    /// The entry for the issuer's current configuration (a new one, parsed once, when the
    /// configuration changed). Inline keys are parsed once, into the entry.
    fn entry(&self, issuer: &IssuerRecord) -> Result<Arc<Entry>, KeysError> {
        let digest = config_digest(issuer);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = entries.get(&issuer.id).filter(|entry| entry.config_digest == digest) {
            return Ok(Arc::clone(entry));
        }
        let source = JwksSource::parse(&issuer.jwks, self.fetcher.policy())
            .map_err(|err| KeysError::Unavailable(FetchError::Config(err.to_string())))?;
        let mut snapshot = Snapshot::default();
        if let Some(jwks) = source.inline_jwks() {
            snapshot.good = Some(Good {
                jwks: Arc::new(jwks),
                fetched_at: None,
                fresh_until: i64::MAX,
            });
        }
        let entry = Arc::new(Entry {
            config_digest: digest,
            source,
            snapshot: Mutex::new(snapshot),
            fetching: tokio::sync::Mutex::new(()),
        });
        entries.insert(issuer.id.clone(), Arc::clone(&entry));
        Ok(entry)
    }

    /// Decides from a snapshot whether to serve or to fetch.
    ///
    /// Fresh keys lacking `kid` are re-fetched unless the last such re-fetch is within the cooldown
    /// (a scheduled fetch does not start it: a key rotated just after one is still found at once).
    /// Stale or missing keys are fetched unless the last attempt of any kind is within the cooldown
    /// (so a failing issuer is asked at most once per cooldown).
    fn plan(&self, snapshot: &Snapshot, kid: Option<&str>, now: i64) -> Plan {
        let cooldown = self.settings.refetch_cooldown_seconds;
        let within_cooldown = |at: Option<i64>| at.is_some_and(|at| now < at.saturating_add(cooldown));
        match &snapshot.good {
            Some(good) if good.fetched_at.is_none() => Plan::Serve(inline(good)),
            Some(good) if good.fresh_until > now => {
                if kid.is_none_or(|kid| good.has_kid(kid)) || within_cooldown(snapshot.last_refetch_at) {
                    Plan::Serve(Ok(Arc::clone(&good.jwks)))
                } else {
                    Plan::Fetch(true)
                }
            }
            _ if within_cooldown(snapshot.last_attempt_at) => Plan::Serve(self.serve_after_fetch(snapshot, now)),
            _ => Plan::Fetch(false),
        }
    }

    /// What to give once the latest fetch is known: its keys, else the last good ones within the
    /// staleness bound, else its error.
    fn serve_after_fetch(&self, snapshot: &Snapshot, now: i64) -> Result<Arc<Jwks>, KeysError> {
        if let Some(good) = &snapshot.good {
            let Some(fetched_at) = good.fetched_at else {
                return inline(good);
            };
            if snapshot.last_error.is_none() || now <= fetched_at.saturating_add(self.settings.max_staleness_seconds) {
                return Ok(Arc::clone(&good.jwks));
            }
        }
        Err(KeysError::Unavailable(snapshot.last_error.clone().unwrap_or_else(
            || FetchError::Config("the issuer's keys were never fetched".to_owned()),
        )))
    }

    /// Fetches (the caller holds the entry's flight lock), records the outcome and returns the new
    /// snapshot.
    async fn fetch_into(&self, entry: &Entry, issuer: &IssuerRecord, now: i64, refetch: bool) -> Snapshot {
        let result = self.fetcher.fetch(&issuer.issuer_url, &entry.source, now).await;
        // The attempt is recorded when it completes, with the generation: a caller that looked while
        // it was in flight saw no cooldown, so it waits on the flight lock and then uses this outcome.
        let mut snapshot = entry.snapshot.lock().unwrap_or_else(PoisonError::into_inner);
        snapshot.last_attempt_at = Some(now);
        if refetch {
            snapshot.last_refetch_at = Some(now);
        }
        match result {
            Ok(fetched) => {
                snapshot.good = Some(Good {
                    jwks: Arc::new(fetched.jwks),
                    fetched_at: Some(now),
                    fresh_until: now.saturating_add(self.settings.freshness(fetched.max_age)),
                });
                snapshot.last_error = None;
            }
            Err(error) => {
                tracing::warn!(
                    issuer_id = issuer.id.as_str(),
                    code = error.code(),
                    "fetching issuer keys failed: {error}"
                );
                snapshot.last_error = Some(error);
            }
        }
        snapshot.generation = snapshot.generation.wrapping_add(1);
        snapshot.clone()
    }
}

/// Inline keys: usable ones, or `no_usable_keys`.
fn inline(good: &Good) -> Result<Arc<Jwks>, KeysError> {
    if good.jwks.keys().is_empty() {
        return Err(KeysError::Unavailable(FetchError::NoUsableKeys {
            url: "inline".to_owned(),
            skipped: good.jwks.skipped().len(),
        }));
    }
    Ok(Arc::clone(&good.jwks))
}

/// SHA-256 over the issuer URL and the `jwks` block as stored (serde_json writes object members in a
/// fixed order, so equal blocks give equal bytes).
fn config_digest(issuer: &IssuerRecord) -> [u8; 32] {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(&(issuer.issuer_url.len() as u64).to_be_bytes());
    context.update(issuer.issuer_url.as_bytes());
    context.update(issuer.jwks.to_string().as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}
