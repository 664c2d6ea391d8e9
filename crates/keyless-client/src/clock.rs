//! The client's clock: [`Clock`], [`SystemClock`] (the one place this crate reads the time) and
//! [`ManualClock`] (for tests that move time by hand instead of sleeping). The token cache's refresh
//! windows and the resource verifier's cache lifetimes are decided against it.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the time is read.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The time since the Unix epoch.
    fn now(&self) -> Duration;

    /// Whole seconds since the Unix epoch.
    fn now_unix(&self) -> i64 {
        i64::try_from(self.now().as_secs()).unwrap_or(i64::MAX)
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        // A clock before 1970 reads as the epoch: everything then looks expired, which fails closed.
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}

/// A clock that stands still until moved: [`ManualClock::advance`], [`ManualClock::set`].
#[derive(Debug, Default)]
pub struct ManualClock {
    now: Mutex<Duration>,
}

impl ManualClock {
    /// A clock reading `now` (time since the Unix epoch).
    pub fn new(now: Duration) -> Self {
        Self { now: Mutex::new(now) }
    }

    /// A clock reading the system time now, then standing still.
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now = now.saturating_add(by);
    }

    /// Sets the clock to `now` (time since the Unix epoch).
    pub fn set(&self, now: Duration) {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = now;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
