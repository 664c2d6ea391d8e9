//! [`Verifier`]: is this keyless access token good, and whose is it — introspection, cached.
//!
//! `verify(token)`:
//! 1. A string not shaped like a keyless access token (`keyless_at_` + 57 base64url characters, or 49 for
//!    one minted by an earlier version) is
//!    refused at once, with no network call (the server would answer `active: false` anyway).
//! 2. The cache (keyed by SHA-256 of the token) answers if it holds a fresh answer.
//! 3. Otherwise one introspection call (`POST /v1/oauth/introspect` with the resource server's own
//!    credential) is made for every concurrent caller of the same token: the first starts it on a task
//!    of its own (so a caller that goes away does not cancel it for the others), the rest wait for its
//!    answer (single flight).
//! 4. Its answer is cached: an active token until `min(asked + max_ttl, exp)`, an inactive one until
//!    `asked + negative_ttl`, where `asked` is when the call started (so a slow call does not stretch
//!    the bound). A failure (unreachable, timed out, refused credential, unexpected answer) is not
//!    cached and is [`Denial::Unavailable`]: the verifier fails closed.
//!
//! The bound: a revoked token keeps being accepted by a verifier that had it cached for at most
//! `max_ttl` (default [`DEFAULT_MAX_TTL`], 10 s) after the revocation; an expired token is refused from
//! its `exp` second on, by the verifier's clock, cache or not.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use http::HeaderMap;
use http::header::AUTHORIZATION;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::watch;

use super::cache::{Answer, Cache, Key};
use super::{Denial, Principal};
use crate::Api;
use crate::clock::{Clock, SystemClock};

/// Default longest time an active answer is trusted without asking again: the revocation bound.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(10);
/// Default time an inactive answer (unknown, expired, revoked) is remembered.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(2);
/// Default number of answers held.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// Default time one introspection call may take before the request is refused with 503.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The prefix of every keyless access token.
const ACCESS_TOKEN_PREFIX: &str = "keyless_at_";
/// Characters after the prefix, base64url: 8 of mint time, 43 of randomness and 6 of checksum — or,
/// minted by an earlier server, no time.
const ACCESS_TOKEN_BODY_LENS: [usize; 2] = [57, 49];

/// The answer every concurrent caller of one token waits for.
type Outcome = Result<Answer, Denial>;

/// Verifies keyless access tokens for a resource server. Cheap to clone (clones share the cache).
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use keyless_client::resource::{SystemClock, Verifier};
/// use keyless_client::{Api, Environment, Explicit};
///
/// // The resource server's own credential, holding `oauth:introspect`: from the credential chain, so
/// // a federated token is refreshed before it expires and after a 401.
/// let own = keyless_client::resolve(&Explicit::default(), &Environment::from_process(), Arc::new(SystemClock))?;
/// let verifier = Verifier::new(Api::new(&own.base_url, own.credential)?);
/// let principal = verifier.verify("keyless_at_…").await?;
/// principal.require_scope("files:read")?;
/// # Ok(())
/// # }
/// ```
///
/// Needs a Tokio runtime (introspection calls run on tasks of their own).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    api: Api,
    clock: Arc<dyn Clock>,
    max_ttl: Duration,
    negative_ttl: Duration,
    timeout: Duration,
    state: Mutex<State>,
}

struct State {
    cache: Cache,
    /// Introspection calls in progress, by token hash.
    flights: HashMap<Key, watch::Receiver<Option<Outcome>>>,
}

/// Configures a [`Verifier`]; from [`Verifier::builder`].
#[derive(Debug)]
pub struct VerifierBuilder {
    api: Api,
    clock: Arc<dyn Clock>,
    max_ttl: Duration,
    negative_ttl: Duration,
    capacity: usize,
    timeout: Duration,
}

impl VerifierBuilder {
    /// The longest an active answer is trusted without asking keyless again ([`DEFAULT_MAX_TTL`]):
    /// the bound on how long a revoked token may still be accepted. `Duration::ZERO` caches no active
    /// answer (every request is one introspection call, concurrent ones still coalesced).
    pub fn max_ttl(mut self, max_ttl: Duration) -> Self {
        self.max_ttl = max_ttl;
        self
    }

    /// How long an inactive answer is remembered ([`DEFAULT_NEGATIVE_TTL`]), so one bad token sent in a
    /// loop costs one call per period. A token revoked or unknown stays refused regardless; this only
    /// delays accepting a token that was unknown and became valid, which keyless tokens never do.
    pub fn negative_ttl(mut self, negative_ttl: Duration) -> Self {
        self.negative_ttl = negative_ttl;
        self
    }

    /// How many answers are held at most ([`DEFAULT_CAPACITY`]); beyond it the oldest go first.
    /// 0 caches nothing.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// How long one introspection call may take ([`DEFAULT_TIMEOUT`]); past it the request is refused
    /// with [`Denial::Unavailable`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The clock freshness and expiry are decided against ([`SystemClock`]); tests pass a
    /// [`ManualClock`](super::ManualClock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The verifier.
    pub fn build(self) -> Verifier {
        Verifier {
            inner: Arc::new(Inner {
                api: self.api,
                clock: self.clock,
                max_ttl: self.max_ttl,
                negative_ttl: self.negative_ttl,
                timeout: self.timeout,
                state: Mutex::new(State {
                    cache: Cache::new(self.capacity),
                    flights: HashMap::new(),
                }),
            }),
        }
    }
}

impl Verifier {
    /// A verifier with the defaults, introspecting through `api`, whose credential must hold
    /// `oauth:introspect` (or `org:admin`, which is more than a resource server should hold).
    pub fn new(api: Api) -> Self {
        Self::builder(api).build()
    }

    /// A verifier to configure.
    pub fn builder(api: Api) -> VerifierBuilder {
        VerifierBuilder {
            api,
            clock: Arc::new(SystemClock),
            max_ttl: DEFAULT_MAX_TTL,
            negative_ttl: DEFAULT_NEGATIVE_TTL,
            capacity: DEFAULT_CAPACITY,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The revocation bound: the longest a revoked token may still be accepted.
    pub fn max_ttl(&self) -> Duration {
        self.inner.max_ttl
    }

    /// How many answers the cache holds now.
    pub fn cached_answers(&self) -> usize {
        self.inner.lock().cache.len()
    }

    /// The principal behind the `Authorization: Bearer` token of `headers` (see [`bearer_token`]).
    pub async fn verify_headers(&self, headers: &HeaderMap) -> Result<Principal, Denial> {
        let token = bearer_token(headers)?;
        self.verify(token).await
    }

    /// The principal behind `token`, or why it is refused. See the module documentation for the
    /// steps and the bound on revocation.
    pub async fn verify(&self, token: &str) -> Result<Principal, Denial> {
        if !looks_like_access_token(token) {
            return Err(Denial::InvalidToken("not a keyless access token"));
        }
        let key = key(token);
        let mut receiver = {
            let mut state = self.inner.lock();
            if let Some(answer) = state.cache.get(&key, self.inner.clock.now()) {
                return self.inner.decide(answer);
            }
            match state.flights.get(&key) {
                // A flight whose task ended without answering (its runtime shut down) is replaced.
                Some(flight) if flight.has_changed().is_ok() => flight.clone(),
                _ => {
                    let (sender, receiver) = watch::channel(None);
                    state.flights.insert(key, receiver.clone());
                    let inner = Arc::clone(&self.inner);
                    let token = SecretString::from(token);
                    tokio::spawn(async move { inner.fly(key, token, sender).await });
                    receiver
                }
            }
        };
        let outcome = match receiver.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            Err(_) => None,
        };
        match outcome {
            Some(Ok(answer)) => self.inner.decide(answer),
            Some(Err(denial)) => Err(denial),
            None => Err(Denial::Unavailable(
                "the introspection task ended without an answer".to_owned(),
            )),
        }
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("base_url", &self.inner.api.base_url().as_str())
            .field("max_ttl", &self.inner.max_ttl)
            .field("negative_ttl", &self.inner.negative_ttl)
            .field("timeout", &self.inner.timeout)
            .field("clock", &self.inner.clock)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is consistent after every statement, so a panic elsewhere does not spoil it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One introspection call: its answer is cached and the flight removed in one step, then every
    /// waiting caller is told.
    async fn fly(&self, key: Key, token: SecretString, sender: watch::Sender<Option<Outcome>>) {
        // Freshness counts from before the call: keyless's answer reflects some moment after this, so a
        // revocation after it is honoured within `max_ttl` even if the call was slow.
        let asked_at = self.clock.now();
        let outcome = self.introspect(&token).await;
        let now = self.clock.now();
        {
            let mut state = self.lock();
            state.flights.remove(&key);
            if let Ok(answer) = &outcome {
                let fresh_until = match answer {
                    Answer::Active(principal) => (asked_at + self.max_ttl).min(unix(principal.expires_at)),
                    Answer::Inactive(_) => asked_at + self.negative_ttl,
                };
                state.cache.insert(key, answer.clone(), fresh_until, now);
            }
        }
        // Nobody waiting (every caller went away) is fine: the answer is cached.
        let _ = sender.send(Some(outcome));
    }

    async fn introspect(&self, token: &SecretString) -> Outcome {
        let form = [("token", token.expose_secret())];
        let call = self
            .api
            .post_form::<Introspection>(&["v1", "oauth", "introspect"], &form);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(introspection)) => introspection.answer(),
            Ok(Err(error)) => Err(Denial::Unavailable(format!("introspection failed: {error}"))),
            Err(_) => Err(Denial::Unavailable(format!(
                "introspection took longer than {:?}",
                self.timeout
            ))),
        }
    }

    /// The final word on a (possibly cached) answer: an active token past its `exp` is refused.
    fn decide(&self, answer: Answer) -> Result<Principal, Denial> {
        match answer {
            Answer::Active(principal) if self.clock.now() < unix(principal.expires_at) => {
                Ok(Arc::unwrap_or_clone(principal))
            }
            Answer::Active(_) => Err(Denial::InvalidToken("the token has expired")),
            Answer::Inactive(reason) => Err(Denial::InvalidToken(reason)),
        }
    }
}

/// The RFC 7662 answer, as keyless gives it.
#[derive(Debug, Deserialize)]
struct Introspection {
    active: bool,
    scope: Option<String>,
    exp: Option<i64>,
    iat: Option<i64>,
    sub: Option<String>,
    organization_id: Option<String>,
    workspace_id: Option<String>,
    service_account_id: Option<String>,
    federation_rule_id: Option<String>,
}

impl Introspection {
    fn answer(self) -> Outcome {
        if !self.active {
            return Ok(Answer::Inactive("unknown, expired or revoked"));
        }
        let (Some(organization_id), Some(expires_at)) = (self.organization_id, self.exp) else {
            return Err(Denial::Unavailable(
                "the introspection answer lacks organization_id or exp".to_owned(),
            ));
        };
        let scopes = self
            .scope
            .unwrap_or_default()
            .split(' ')
            .filter(|scope| !scope.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Answer::Active(Arc::new(Principal {
            organization_id,
            workspace_id: self.workspace_id,
            service_account_id: self.service_account_id.or(self.sub),
            federation_rule_id: self.federation_rule_id,
            scopes,
            issued_at: self.iat,
            expires_at,
        })))
    }
}

/// The bearer token of `headers`, from `Authorization: Bearer <token>` only (the scheme is
/// case-insensitive; tokens in query strings or bodies are never read).
///
/// No header, or another scheme, is [`Denial::MissingToken`]; two `Authorization` headers, a value
/// that is not visible ASCII or an empty token is [`Denial::InvalidToken`].
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, Denial> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Denial::MissingToken);
    };
    if values.next().is_some() {
        return Err(Denial::InvalidToken("more than one Authorization header"));
    }
    let value = value
        .to_str()
        .map_err(|_| Denial::InvalidToken("the Authorization header is not visible ASCII"))?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Denial::MissingToken);
    }
    match token.trim() {
        "" => Err(Denial::InvalidToken("the bearer token is empty")),
        token => Ok(token),
    }
}

/// Whether `token` has the shape of a keyless access token (the checksum is left to the server).
fn looks_like_access_token(token: &str) -> bool {
    token.strip_prefix(ACCESS_TOKEN_PREFIX).is_some_and(|body| {
        ACCESS_TOKEN_BODY_LENS.contains(&body.len())
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// SHA-256 of the token: the cache key (the token itself is never kept).
fn key(token: &str) -> Key {
    let mut key = [0u8; 32];
    for (byte, digest_byte) in key.iter_mut().zip(digest(&SHA256, token.as_bytes()).as_ref()) {
        *byte = *digest_byte;
    }
    key
}

/// Unix seconds as time since the epoch; a negative time is the epoch.
fn unix(seconds: i64) -> Duration {
    Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use http::HeaderValue;

    use super::*;

    fn check_bearer(values: &[&str], expect: Result<&str, Denial>) {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        assert_eq!(bearer_token(&headers), expect, "{values:?}");
    }

    #[test]
    fn the_bearer_token_comes_from_the_authorization_header_only() {
        check_bearer(&[], Err(Denial::MissingToken));
        check_bearer(&["Bearer abc"], Ok("abc"));
        check_bearer(&["bearer abc"], Ok("abc"));
        check_bearer(&["BEARER   abc  "], Ok("abc"));
        check_bearer(&["Basic dXNlcjpwYXNz"], Err(Denial::MissingToken));
        check_bearer(&["Bearer"], Err(Denial::InvalidToken("the bearer token is empty")));
        check_bearer(&["Bearer "], Err(Denial::InvalidToken("the bearer token is empty")));
        check_bearer(
            &["Bearer a", "Bearer b"],
            Err(Denial::InvalidToken("more than one Authorization header")),
        );
    }

    #[test]
    fn only_keyless_shaped_tokens_are_introspected() {
        assert!(looks_like_access_token(&format!("keyless_at_{}", "A".repeat(57))));
        assert!(looks_like_access_token(&format!("keyless_at_{}", "A".repeat(49))));
        assert!(!looks_like_access_token(&format!("keyless_at_{}", "A".repeat(48))));
        assert!(!looks_like_access_token(&format!("keyless_at_{}", "A".repeat(56))));
        assert!(!looks_like_access_token(&format!("keyless_at_{}=", "A".repeat(48))));
        assert!(!looks_like_access_token(&format!("other_at_{}", "A".repeat(51))));
        assert!(!looks_like_access_token("eyJhbGciOiJSUzI1NiJ9.e30.sig"));
    }

    #[test]
    fn the_cache_key_is_the_tokens_sha256() {
        let key = key("abc");
        assert_eq!(
            key.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
