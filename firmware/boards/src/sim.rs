//! A pin with no hardware behind it, for host runs, the simulator and tests.
//!
//! [`SimulatedPin`] is both an output and an input: the LED writes it, the button reads it. Its
//! [`PinHandle`] can be cloned and sent to other threads: the dashboard reads what the LED shows,
//! and a test (or a "press" button on the dashboard) sets the level the button reads.
//!
//! ```
//! use shoal_boards::{Instant, Led, LedState, SimulatedPin};
//! let pin = SimulatedPin::new(false);
//! let seen = pin.handle();
//! let mut led = Led::new(pin);
//! led.set_state(LedState::Streaming);
//! led.poll(Instant::ZERO).unwrap();
//! assert!(seen.is_high());
//! assert_eq!(seen.changes(), 1);
//! ```

use alloc::sync::Arc;
use core::convert::Infallible;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use embedded_hal::digital::{ErrorType, InputPin, OutputPin, StatefulOutputPin};

#[derive(Debug, Default)]
struct Level {
    high: AtomicBool,
    /// Writes that changed the level. 32 bits so that 32-bit ARM boards without 64-bit atomics
    /// build; it wraps after 2^32 changes, which only matters to a reader comparing counts.
    changes: AtomicU32,
}

/// A simulated pin: an output that records its level and an input that reads it.
#[derive(Debug)]
pub struct SimulatedPin {
    level: Arc<Level>,
}

/// A handle on a [`SimulatedPin`]'s level, for whoever watches or drives it from outside.
#[derive(Clone, Debug)]
pub struct PinHandle {
    level: Arc<Level>,
}

impl SimulatedPin {
    /// A pin at `high`.
    pub fn new(high: bool) -> Self {
        SimulatedPin { level: Arc::new(Level { high: AtomicBool::new(high), changes: AtomicU32::new(0) }) }
    }

    /// A handle that reads and sets this pin's level.
    pub fn handle(&self) -> PinHandle {
        PinHandle { level: Arc::clone(&self.level) }
    }
}

impl Level {
    fn set(&self, high: bool) {
        if self.high.swap(high, Ordering::Relaxed) != high {
            self.changes.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl PinHandle {
    /// The pin's level now.
    pub fn is_high(&self) -> bool {
        self.level.high.load(Ordering::Relaxed)
    }

    /// Sets the level, as a button or the wire would (e.g. a test pressing the button).
    pub fn set_high(&self, high: bool) {
        self.level.set(high);
    }

    /// How many times the level has changed (wrapping), so a reader can tell a blinking LED from
    /// a steady one without watching every edge.
    pub fn changes(&self) -> u32 {
        self.level.changes.load(Ordering::Relaxed)
    }
}

impl ErrorType for SimulatedPin {
    type Error = Infallible;
}

impl OutputPin for SimulatedPin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.level.set(false);
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        self.level.set(true);
        Ok(())
    }
}

impl StatefulOutputPin for SimulatedPin {
    fn is_set_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.level.high.load(Ordering::Relaxed))
    }

    fn is_set_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.level.high.load(Ordering::Relaxed))
    }
}

impl InputPin for SimulatedPin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.level.high.load(Ordering::Relaxed))
    }

    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.level.high.load(Ordering::Relaxed))
    }
}
