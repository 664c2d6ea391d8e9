//! Token lifetimes: a rule's `token_lifetime_seconds`, and the lifetime actually granted.
//!
//! One part, [`TokenLifetime`]: 60 to 86400 seconds, default 3600. The granted lifetime is
//! `min(rule lifetime, 2 × (exp − now))`, never below 60 s, so a minted token outlives the presented JWT
//! by at most its remaining life (and at least one minute). `now` is a parameter.

use serde::{Deserialize, Serialize};

/// A `token_lifetime_seconds` outside 60 to 86400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be between 60 and 86400")]
pub struct LifetimeError;

/// A rule's token lifetime, in seconds, within [`TokenLifetime::MIN_SECONDS`, `TokenLifetime::MAX_SECONDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct TokenLifetime(i64);

impl TokenLifetime {
    /// The shortest lifetime, also the floor of every granted lifetime.
    pub const MIN_SECONDS: i64 = 60;
    /// The longest lifetime.
    pub const MAX_SECONDS: i64 = 86_400;
    /// The lifetime of a rule that sets none.
    pub const DEFAULT_SECONDS: i64 = 3600;

    /// Checks `seconds` is within 60 to 86400.
    pub fn new(seconds: i64) -> Result<Self, LifetimeError> {
        if (Self::MIN_SECONDS..=Self::MAX_SECONDS).contains(&seconds) {
            Ok(Self(seconds))
        } else {
            Err(LifetimeError)
        }
    }

    /// The lifetime in seconds.
    pub fn seconds(self) -> i64 {
        self.0
    }

    /// The lifetime to grant at `now` for a presented token expiring at `exp`:
    /// `min(self, 2 × (exp − now))`, never below 60.
    pub fn granted(self, exp: i64, now: i64) -> i64 {
        let twice_remaining = exp.saturating_sub(now).saturating_mul(2);
        self.0.min(twice_remaining).max(Self::MIN_SECONDS)
    }
}

impl Default for TokenLifetime {
    fn default() -> Self {
        Self(Self::DEFAULT_SECONDS)
    }
}

impl TryFrom<i64> for TokenLifetime {
    type Error = LifetimeError;

    fn try_from(seconds: i64) -> Result<Self, LifetimeError> {
        Self::new(seconds)
    }
}

impl From<TokenLifetime> for i64 {
    fn from(lifetime: TokenLifetime) -> i64 {
        lifetime.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    const NOW: i64 = 1_760_000_000;

    fn check(rule_seconds: i64, remaining: i64, expect: i64) {
        let lifetime = TokenLifetime::new(rule_seconds).unwrap();
        assert_eq!(
            lifetime.granted(NOW + remaining, NOW),
            expect,
            "rule {rule_seconds}, remaining {remaining}"
        );
    }

    #[test]
    fn granted() {
        check(3600, 300, 600);
        check(600, 300, 600);
        check(300, 3600, 300);
        check(3600, 20, 60);
        check(3600, -29, 60);
        check(86_400, i64::MAX - NOW, 86_400);
    }

    #[test]
    fn range() {
        assert_eq!(TokenLifetime::default().seconds(), 3600);
        assert!(TokenLifetime::new(59).is_err());
        assert!(TokenLifetime::new(60).is_ok());
        assert!(TokenLifetime::new(86_400).is_ok());
        assert!(TokenLifetime::new(86_401).is_err());
    }
}
