//! The crate's notion of time: milliseconds since a zero the caller picks (boot, or the daemon's
//! start).
//!
//! Nothing here reads a clock. The caller turns its monotonic clock into an [`Instant`] on every
//! call and turns returned deadlines back into timers. Milliseconds are plenty for an LED and a
//! button, and a `u64` of them outlasts any box.
//!
//! ```
//! use core::time::Duration;
//! use shoal_boards::Instant;
//! // In the daemon: `Instant::from(started.elapsed())`, and a deadline `d` becomes a timer at
//! // `started + d.as_duration()`.
//! let t = Instant::from(Duration::from_millis(1500));
//! assert_eq!(t + Duration::from_millis(500), Instant::from_secs(2));
//! assert_eq!(Instant::from_secs(2).saturating_since(t), Duration::from_millis(500));
//! ```

use core::fmt;
use core::ops::{Add, AddAssign};
use core::time::Duration;

/// A point in time, in milliseconds since the caller's chosen zero.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The caller's zero.
    pub const ZERO: Instant = Instant(0);

    /// An instant `millis` milliseconds after zero.
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis)
    }

    /// An instant `secs` seconds after zero (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Instant(secs.saturating_mul(1_000))
    }

    /// Milliseconds since zero.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Time since zero, to add to the clock reading that zero stands for.
    pub const fn as_duration(self) -> Duration {
        Duration::from_millis(self.0)
    }

    /// Time elapsed since `earlier`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// Whole milliseconds of `d`, saturating: sub-millisecond parts are dropped.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl From<Duration> for Instant {
    /// The instant `since_zero` after zero, e.g. `std::time::Instant::elapsed()` of the start.
    fn from(since_zero: Duration) -> Self {
        Instant(millis(since_zero))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(millis(rhs)))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1_000, self.0 % 1_000)
    }
}
