//! The core's own notion of time.
//!
//! The core never reads a clock: every input carries `now`, an [`Instant`] the caller makes from
//! whatever clock it has (a monotonic clock on a box, a virtual clock in the simulator). An
//! `Instant` counts microseconds from an arbitrary zero chosen by the caller, like smoltcp's.
//!
//! ```
//! use core::time::Duration;
//! use shoal_core::Instant;
//! let t = Instant::from_millis(1500);
//! assert_eq!(t + Duration::from_millis(500), Instant::from_secs(2));
//! assert_eq!(Instant::from_secs(2).saturating_since(t), Duration::from_millis(500));
//! ```

use core::fmt;
use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in time, in microseconds since the caller's chosen zero.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The caller's zero.
    pub const ZERO: Instant = Instant(0);
    /// Further in the future than any real deadline.
    pub const FAR_FUTURE: Instant = Instant(u64::MAX);

    /// An instant `micros` microseconds after zero.
    pub const fn from_micros(micros: u64) -> Self {
        Instant(micros)
    }

    /// An instant `millis` milliseconds after zero.
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis * 1_000)
    }

    /// An instant `secs` seconds after zero.
    pub const fn from_secs(secs: u64) -> Self {
        Instant(secs * 1_000_000)
    }

    /// Microseconds since zero.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Time elapsed since `earlier`, or zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(micros(rhs)))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_sub(micros(rhs)))
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
