//! Time, injected: the engine never reads the wall clock directly, so timers, backoff,
//! timeouts and message expiry are tested with a [`ManualClock`].
//!
//! Connectors read it too: every [`Invocation`](crate::connector::Invocation) carries the
//! engine's clock as a [`SharedClock`], so a `Retry-After` date, the time left before a step's
//! deadline and an OAuth2 token's expiry are all measured on the same clock as the engine's
//! timers.
//!
//! What stays on the monotonic clock (`std::time::Instant`, `tokio::time`) is the *waiting*
//! itself, which measures elapsed real time, not a point in time: a step's timeout enforced
//! around the connector call and the call's duration for metrics (`runtime::worker`), a
//! request's time budget (`connector::http::transport`, `email`), the external-task long poll
//! (`runtime::external`), an evaluation's time budget (`budget`) and a scenario's run time
//! (`scenario::runner`).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Milliseconds since the Unix epoch (UTC). All stored times use it.
pub type Millis = i64;

/// Where the engine gets the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current time, in milliseconds since the Unix epoch.
    fn now(&self) -> Millis;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Millis) -> Self {
        Self(Arc::new(AtomicI64::new(start)))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    /// Sets the clock to `to` (also backwards).
    pub fn set(&self, to: Millis) {
        self.0.store(to, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// A cheap, cloneable handle on a clock, as connectors receive it; the default is the
/// [`SystemClock`].
///
/// Two handles always compare equal: an invocation is identified by what it asks for, not
/// by the clock it reads.
#[derive(Clone)]
pub struct SharedClock(Arc<dyn Clock>);

impl SharedClock {
    /// A handle on `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self(clock)
    }
}

impl Default for SharedClock {
    fn default() -> Self {
        Self(Arc::new(SystemClock))
    }
}

impl Clock for SharedClock {
    fn now(&self) -> Millis {
        self.0.now()
    }
}

impl std::fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SharedClock").field(&to_rfc3339(self.now())).finish()
    }
}

impl PartialEq for SharedClock {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// RFC 3339 text for a stored time.
pub fn to_rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}
