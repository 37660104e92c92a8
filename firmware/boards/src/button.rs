//! The button: debounced presses turned into "identify" and "reset the config".
//!
//! The pin is sampled on every [`Button::poll`]; there are no interrupts, so the caller polls every
//! [`SAMPLE_INTERVAL`]. A level counts only once it has held for [`DEBOUNCE`]: contact bounce and
//! induced spikes shorter than that are ignored. A press released before [`LONG_PRESS`] means
//! identify; a press held for [`LONG_PRESS`] means reset the config, reported once at that moment
//! (so the user can let go when the LED reacts) and not again on release.
//!
//! A button already held when the `Button` is made is ignored until it is released: a stuck or
//! shorted button must not wipe the config on every boot.

use core::time::Duration;

use embedded_hal::digital::InputPin;

use crate::Instant;

/// How long a level must hold before it counts. Switch contacts bounce for 1-10 ms; 30 ms rejects
/// that with margin and is still far below a deliberate press (~100 ms).
pub const DEBOUNCE: Duration = Duration::from_millis(30);

/// How long to hold for a config reset: long enough that no one does it by accident.
pub const LONG_PRESS: Duration = Duration::from_secs(10);

/// How often to poll: three samples per debounce window, and 100 wake-ups a second is nothing
/// next to the daemon's network work.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(10);

/// Which level means "pressed".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Polarity {
    /// Pressed reads high (button to the supply, pull-down).
    ActiveHigh,
    /// Pressed reads low (button to ground, pull-up): the usual wiring on boards.
    ActiveLow,
}

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ButtonEvent {
    /// A short press: blink the LED so the box can be found.
    Identify,
    /// A press held for [`LONG_PRESS`]: forget the local config and restart with the defaults.
    ResetConfig,
}

/// A level seen but not yet held for [`DEBOUNCE`].
#[derive(Clone, Copy, Debug)]
struct Candidate {
    pressed: bool,
    since: Instant,
}

/// The button on pin `P`.
#[derive(Debug)]
pub struct Button<P> {
    pin: P,
    polarity: Polarity,
    /// The debounced level; `None` until the first level has held for [`DEBOUNCE`].
    pressed: Option<bool>,
    candidate: Option<Candidate>,
    /// When the current press began and whether it counts: `None` when released, or when the
    /// button was already held at start.
    press: Option<Press>,
}

#[derive(Clone, Copy, Debug)]
struct Press {
    since: Instant,
    /// [`ButtonEvent::ResetConfig`] was reported for this press.
    long: bool,
}

impl<P: InputPin> Button<P> {
    /// A button on `pin`, pressed at the `polarity` level.
    pub fn new(pin: P, polarity: Polarity) -> Self {
        Button { pin, polarity, pressed: None, candidate: None, press: None }
    }

    /// Samples the pin at `now` and reports what the user asked for, if anything. Call it every
    /// [`SAMPLE_INTERVAL`]. A pin error is returned as is and the sample is skipped.
    pub fn poll(&mut self, now: Instant) -> Result<Option<ButtonEvent>, P::Error> {
        let high = self.pin.is_high()?;
        let raw = high == (self.polarity == Polarity::ActiveHigh);
        if Some(raw) == self.pressed {
            // Back to the debounced level before the candidate held: a glitch.
            self.candidate = None;
        } else {
            match self.candidate {
                Some(c) if c.pressed == raw => {
                    if now.saturating_since(c.since) >= DEBOUNCE {
                        self.candidate = None;
                        return Ok(self.settle(raw, c.since));
                    }
                }
                _ => self.candidate = Some(Candidate { pressed: raw, since: now }),
            }
        }
        // Held long enough, and not on its way up (a pending release must not turn a 9.99 s press
        // into a reset).
        if let Some(press) = &mut self.press {
            if raw && !press.long && now.saturating_since(press.since) >= LONG_PRESS {
                press.long = true;
                return Ok(Some(ButtonEvent::ResetConfig));
            }
        }
        Ok(None)
    }

    /// The debounced level became `pressed`, as of `since` (when it was first seen).
    fn settle(&mut self, pressed: bool, since: Instant) -> Option<ButtonEvent> {
        let first = self.pressed.is_none();
        self.pressed = Some(pressed);
        if pressed {
            // A press already under way at start is not the user's doing: ignore it.
            self.press = (!first).then_some(Press { since, long: false });
            return None;
        }
        match self.press.take() {
            Some(Press { long: false, .. }) => Some(ButtonEvent::Identify),
            Some(Press { long: true, .. }) | None => None,
        }
    }

    /// Whether the button is pressed, debounced (false until the first level has settled).
    pub fn is_pressed(&self) -> bool {
        self.pressed == Some(true)
    }

    /// Gives the pin back.
    pub fn release(self) -> P {
        self.pin
    }
}

#[cfg(test)]
mod tests;
