//! [`TokenCache`]: an exchanged access token, kept and refreshed ahead of its expiry.
//!
//! Refresh policy (the reference SDKs', scaled for short lifetimes):
//! - **fresh** until `expires_at − min(120 s, lifetime / 2)`: the cached token is returned;
//! - **advisory** window until `expires_at − min(30 s, lifetime / 4)`: one caller tries to refresh while
//!   the others keep using the cached token; a failed advisory refresh is logged and tolerated;
//! - **mandatory** after that: callers wait for the one refresh in flight (single flight), and a
//!   failure is returned.
//!
//! Scaling matters for short tokens: with the fixed 120 s a 60 s token would be refreshed on every call.
//!
//! With a disk cache (a credentials file, see [`crate::config`]) processes share tokens: a refresh takes an
//! exclusive lock on `<file>.lock`, re-reads the file (another process may have refreshed meanwhile),
//! and only then exchanges and writes the file atomically — so two processes starting together
//! exchange once.
//!
//! [`TokenCache::invalidate`] (after a 401 from the API) drops the cached token and makes the next
//! refresh bypass the disk cache, so a revoked token is never served again.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use secrecy::SecretString;

use crate::ClientError;
use crate::clock::Clock;
use crate::config::{self, StoredCredentials};

/// Longest advisory window, in seconds before expiry.
pub const ADVISORY_REFRESH_SECONDS: i64 = 120;
/// Longest mandatory window, in seconds before expiry.
pub const MANDATORY_REFRESH_SECONDS: i64 = 30;

/// An access token and when it expires.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The token (`Debug` shows `[REDACTED]`).
    pub token: SecretString,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unix seconds when it was obtained.
    pub issued_at: i64,
    /// The granted scope, when the server said.
    pub scope: Option<String>,
}

impl AccessToken {
    fn phase(&self, now: i64) -> Phase {
        let lifetime = (self.expires_at - self.issued_at).max(1);
        if now < self.expires_at - ADVISORY_REFRESH_SECONDS.min(lifetime / 2) {
            Phase::Fresh
        } else if now < self.expires_at - MANDATORY_REFRESH_SECONDS.min(lifetime / 4) {
            Phase::Advisory
        } else {
            Phase::Stale
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Fresh,
    Advisory,
    Stale,
}

/// A boxed future of a token source.
pub type Fetch<'a> = Pin<Box<dyn Future<Output = Result<AccessToken, ClientError>> + Send + 'a>>;

/// Where new tokens come from (a federation exchange, in practice).
pub trait TokenSource: Send + Sync {
    /// Obtains a new token. `force` is set on the first fetch after [`TokenCache::invalidate`].
    fn fetch(&self, force: bool) -> Fetch<'_>;
    /// What it is, for `keyless auth status` and errors (never a secret).
    fn describe(&self) -> String;
}

/// A token kept and refreshed for many callers. Share it behind an `Arc`.
pub struct TokenCache {
    source: Arc<dyn TokenSource>,
    clock: Arc<dyn Clock>,
    disk: Option<PathBuf>,
    current: Mutex<Option<AccessToken>>,
    refresh: tokio::sync::Mutex<()>,
    force_next: AtomicBool,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("source", &self.source.describe())
            .field("disk", &self.disk)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A cache over `source`, in memory only.
    pub fn new(source: Arc<dyn TokenSource>, clock: Arc<dyn Clock>) -> Self {
        Self {
            source,
            clock,
            disk: None,
            current: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
            force_next: AtomicBool::new(false),
        }
    }

    /// Shares tokens with other processes through the credentials file at `path`.
    #[must_use]
    pub fn with_disk_cache(mut self, path: PathBuf) -> Self {
        self.disk = Some(path);
        self
    }

    /// What the tokens come from.
    pub fn describe(&self) -> String {
        self.source.describe()
    }

    /// The credentials file shared with other processes, if any.
    pub fn disk_cache(&self) -> Option<&PathBuf> {
        self.disk.as_ref()
    }

    /// A token that is not about to expire, refreshing as the policy says.
    pub async fn token(&self) -> Result<AccessToken, ClientError> {
        if let Some(current) = self.current() {
            match current.phase(self.clock.now_unix()) {
                Phase::Fresh => return Ok(current),
                Phase::Advisory => {
                    // One caller refreshes; everyone else keeps the still-valid token.
                    let Ok(_refreshing) = self.refresh.try_lock() else {
                        return Ok(current);
                    };
                    return match self.refresh_now(Phase::Advisory).await {
                        Ok(token) => Ok(token),
                        Err(error) => {
                            tracing::warn!(%error, "advisory token refresh failed; the current token stays in use");
                            Ok(current)
                        }
                    };
                }
                Phase::Stale => {}
            }
        }
        let _refreshing = self.refresh.lock().await;
        // Another caller may have refreshed while this one waited.
        if let Some(current) = self.current()
            && current.phase(self.clock.now_unix()) != Phase::Stale
        {
            return Ok(current);
        }
        self.refresh_now(Phase::Stale).await
    }

    /// Drops the cached token (after the API answered 401): the next call refreshes, bypassing the
    /// disk cache.
    pub fn invalidate(&self) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.force_next.store(true, Ordering::SeqCst);
    }

    fn current(&self) -> Option<AccessToken> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn keep(&self, token: &AccessToken) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
    }

    /// Refreshes; the caller holds `self.refresh`. `from` is the phase that made it refresh: a token
    /// on disk better than that is taken instead of exchanging.
    async fn refresh_now(&self, from: Phase) -> Result<AccessToken, ClientError> {
        let force = self.force_next.swap(false, Ordering::SeqCst);
        let Some(path) = &self.disk else {
            let token = self.source.fetch(force).await?;
            self.keep(&token);
            return Ok(token);
        };
        let lock = config::lock_exclusive(path).await?;
        let stored = if force { None } else { config::read_credentials(path)? };
        if let Some(token) = stored.and_then(|stored| stored.access_token()) {
            let phase = token.phase(self.clock.now_unix());
            if phase == Phase::Fresh || (from == Phase::Stale && phase == Phase::Advisory) {
                self.keep(&token);
                return Ok(token);
            }
        }
        let result = self.source.fetch(force).await;
        if let Ok(token) = &result {
            if let Err(error) = config::write_credentials(path, &StoredCredentials::from_token(token)) {
                tracing::warn!(%error, "could not write the token to the disk cache (best effort)");
            }
            self.keep(token);
        } else if force {
            self.force_next.store(true, Ordering::SeqCst);
        }
        drop(lock);
        result
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use crate::clock::ManualClock;

    use secrecy::ExposeSecret;

    use super::*;

    /// Mints `token-N` valid `lifetime` seconds from the shared clock; can be told to fail; counts calls
    /// and the `force` flags it saw.
    struct Minter {
        clock: Arc<ManualClock>,
        lifetime: i64,
        calls: AtomicUsize,
        forced: AtomicUsize,
        fail: AtomicBool,
        gate: Option<tokio::sync::Semaphore>,
    }

    impl Minter {
        fn new(clock: &Arc<ManualClock>, lifetime: i64) -> Arc<Self> {
            Arc::new(Self {
                clock: Arc::clone(clock),
                lifetime,
                calls: AtomicUsize::new(0),
                forced: AtomicUsize::new(0),
                fail: AtomicBool::new(false),
                gate: None,
            })
        }

        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl TokenSource for Minter {
        fn fetch(&self, force: bool) -> Fetch<'_> {
            Box::pin(async move {
                if let Some(gate) = &self.gate {
                    drop(gate.acquire().await.unwrap());
                }
                let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                if force {
                    self.forced.fetch_add(1, Ordering::SeqCst);
                }
                if self.fail.load(Ordering::SeqCst) {
                    return Err(ClientError::Config("the identity provider is down".to_owned()));
                }
                let now = self.clock.now_unix();
                Ok(AccessToken {
                    token: SecretString::from(format!("token-{n}")),
                    expires_at: now + self.lifetime,
                    issued_at: now,
                    scope: None,
                })
            })
        }

        fn describe(&self) -> String {
            "minter".to_owned()
        }
    }

    fn cache(minter: &Arc<Minter>, clock: &Arc<ManualClock>) -> TokenCache {
        TokenCache::new(
            Arc::clone(minter) as Arc<dyn TokenSource>,
            Arc::clone(clock) as Arc<dyn Clock>,
        )
    }

    async fn token(cache: &TokenCache) -> String {
        cache.token().await.unwrap().token.expose_secret().to_owned()
    }

    #[tokio::test]
    async fn refresh_windows_for_an_hour_token() {
        let clock = Arc::new(ManualClock::new(Duration::from_secs(1_000_000)));
        let minter = Minter::new(&clock, 3600);
        let cache = cache(&minter, &clock);
        assert_eq!(token(&cache).await, "token-1");
        clock.advance(Duration::from_secs(3600 - 121));
        assert_eq!(token(&cache).await, "token-1", "fresh until expiry − 120 s");
        assert_eq!(minter.calls(), 1);

        // Advisory window: a refresh is tried, and its failure is tolerated.
        clock.advance(Duration::from_secs(1));
        minter.fail.store(true, Ordering::SeqCst);
        assert_eq!(token(&cache).await, "token-1");
        assert_eq!(minter.calls(), 2);
        minter.fail.store(false, Ordering::SeqCst);
        assert_eq!(token(&cache).await, "token-3", "the next call in the window refreshes");

        // Mandatory: a failure is an error.
        clock.advance(Duration::from_secs(3600 - 30));
        minter.fail.store(true, Ordering::SeqCst);
        assert!(cache.token().await.is_err());
        minter.fail.store(false, Ordering::SeqCst);
        assert_eq!(token(&cache).await, "token-5");
    }

    #[tokio::test]
    async fn short_tokens_scale_the_windows() {
        let clock = Arc::new(ManualClock::new(Duration::from_secs(1_000_000)));
        let minter = Minter::new(&clock, 60);
        let cache = cache(&minter, &clock);
        assert_eq!(token(&cache).await, "token-1");
        clock.advance(Duration::from_secs(29));
        assert_eq!(
            token(&cache).await,
            "token-1",
            "a 60 s token is fresh for its first half"
        );
        assert_eq!(minter.calls(), 1);
        clock.advance(Duration::from_secs(1));
        assert_eq!(token(&cache).await, "token-2", "advisory from 30 s before expiry");
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_refresh() {
        let clock = Arc::new(ManualClock::new(Duration::from_secs(1_000_000)));
        let minter = Arc::new(Minter {
            gate: Some(tokio::sync::Semaphore::new(0)),
            ..Arc::into_inner(Minter::new(&clock, 3600)).unwrap()
        });
        let cache = Arc::new(cache(&minter, &clock));
        let callers: Vec<_> = (0..50)
            .map(|_| {
                let cache = Arc::clone(&cache);
                tokio::spawn(async move { token(&cache).await })
            })
            .collect();
        // Let every caller reach the cache, then open the gate for the one fetch in flight.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        minter.gate.as_ref().unwrap().add_permits(1000);
        for caller in callers {
            assert_eq!(caller.await.unwrap(), "token-1");
        }
        assert_eq!(minter.calls(), 1);

        // In the advisory window nobody waits: callers keep the valid token while one refreshes.
        clock.advance(Duration::from_secs(3600 - 60));
        assert_eq!(token(&cache).await, "token-2");
        assert_eq!(minter.calls(), 2);
    }

    #[tokio::test]
    async fn invalidate_forces_a_new_token() {
        let clock = Arc::new(ManualClock::new(Duration::from_secs(1_000_000)));
        let minter = Minter::new(&clock, 3600);
        let cache = cache(&minter, &clock);
        assert_eq!(token(&cache).await, "token-1");
        cache.invalidate();
        assert_eq!(token(&cache).await, "token-2");
        assert_eq!(minter.forced.load(Ordering::SeqCst), 1);
        assert_eq!(token(&cache).await, "token-2");
    }

    #[tokio::test]
    async fn two_caches_on_one_disk_file_exchange_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials").join("ci.json");
        let clock = Arc::new(ManualClock::new(Duration::from_secs(1_000_000)));
        let minter = Minter::new(&clock, 3600);
        let first = cache(&minter, &clock).with_disk_cache(path.clone());
        let second = cache(&minter, &clock).with_disk_cache(path.clone());
        let (a, b) = tokio::join!(token(&first), token(&second));
        assert_eq!((a.as_str(), b.as_str()), ("token-1", "token-1"));
        assert_eq!(minter.calls(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let dir_mode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777;
            assert_eq!(dir_mode, 0o700);
        }
        // A third "process" starting later reads the file instead of exchanging.
        clock.advance(Duration::from_secs(600));
        let third = cache(&minter, &clock).with_disk_cache(path.clone());
        assert_eq!(token(&third).await, "token-1");
        assert_eq!(minter.calls(), 1);
        // After a 401 the disk copy is not trusted.
        third.invalidate();
        assert_eq!(token(&third).await, "token-2");
        assert_eq!(
            token(&first).await,
            "token-1",
            "the first keeps its own copy while fresh"
        );
    }
}
