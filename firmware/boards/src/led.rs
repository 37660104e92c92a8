//! The status LED: one pin, a blink pattern per daemon state, and an identify overlay.
//!
//! A pattern is a short cycle of lit/dark steps that repeats from the moment the state was entered
//! (its *anchor*). [`Led::poll`] works out where `now` falls in the cycle, writes the pin only when
//! the level changes, and returns the end of the current step: the caller sleeps until then (or
//! until it changes the state) and polls again. Polling late is harmless: the level is computed from
//! the anchor, so a slow loop skips steps rather than stretching them.
//!
//! Identify is not a state but an overlay: it blinks at 10 Hz for a bounded time and then hands the
//! LED back to whatever state the daemon set meanwhile, so a forgotten identify never hides the box's
//! real status.

use core::time::Duration;

use embedded_hal::digital::{OutputPin, PinState};

use crate::Instant;

/// How long [`Led::identify`] blinks: long enough to walk to a rack and find the box, short enough
/// that the LED is soon telling the truth again.
pub const IDENTIFY_DURATION: Duration = Duration::from_secs(60);

/// What the daemon wants the LED to say. See the crate docs for the patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum LedState {
    /// Dark: shut down, or the LED is disabled by config.
    #[default]
    Off,
    /// Starting up: config, keys, sockets. Fast blink, 5 Hz.
    Booting,
    /// Running, but no peer seen yet. Slow blink, 1 Hz.
    Searching,
    /// Peers known and segments flowing. Solid, with a short dark blip every 2 s as a heartbeat (a
    /// hung daemon leaves the LED solid or dark, never blipping).
    Streaming,
    /// This box should fetch from the origin and cannot. Double blink every 1.5 s.
    OriginUnreachable,
}

/// One step of a pattern: a level held for a time.
#[derive(Clone, Copy, Debug)]
struct Step {
    lit: bool,
    millis: u16,
}

const fn on(millis: u16) -> Step {
    Step { lit: true, millis }
}

const fn off(millis: u16) -> Step {
    Step { lit: false, millis }
}

// The patterns. A one-step pattern is a constant level (its length is unused); longer ones repeat.
// Every step is at least 50 ms: shorter flashes are hard to see, and a box polling every few tens
// of milliseconds would blur them.
const DARK: &[Step] = &[off(1)];
/// 100 ms on, 100 ms off: 5 Hz, clearly "busy".
const BOOTING: &[Step] = &[on(100), off(100)];
/// 500 ms on, 500 ms off: 1 Hz, calm "waiting".
const SEARCHING: &[Step] = &[on(500), off(500)];
/// 1.9 s on, 100 ms off: reads as solid, the blip proves the daemon is alive.
const STREAMING: &[Step] = &[on(1900), off(100)];
/// Two 150 ms flashes 300 ms apart, then dark to 1.5 s: the only pattern with a rhythm, so "look
/// at the origin" cannot be mistaken for the others.
const ORIGIN_UNREACHABLE: &[Step] = &[on(150), off(150), on(150), off(1050)];
/// 50 ms on, 50 ms off: 10 Hz, twice as fast as booting and only while identify lasts.
const IDENTIFY: &[Step] = &[on(50), off(50)];

impl LedState {
    fn pattern(self) -> &'static [Step] {
        match self {
            LedState::Off => DARK,
            LedState::Booting => BOOTING,
            LedState::Searching => SEARCHING,
            LedState::Streaming => STREAMING,
            LedState::OriginUnreachable => ORIGIN_UNREACHABLE,
        }
    }
}

/// The level of `pattern` at `elapsed` after its anchor, and how long that level still lasts
/// (`None`: for ever).
fn level_at(pattern: &[Step], elapsed: Duration) -> (bool, Option<Duration>) {
    let Some((last, cycle)) = pattern.split_last().filter(|(_, rest)| !rest.is_empty()) else {
        return (pattern.first().is_some_and(|s| s.lit), None);
    };
    let period: u64 = pattern.iter().map(|s| u64::from(s.millis)).sum();
    let mut position = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX) % period;
    for step in cycle {
        let length = u64::from(step.millis);
        if position < length {
            return (step.lit, Some(Duration::from_millis(length - position)));
        }
        position -= length;
    }
    // Whatever is left of the period belongs to the last step.
    (last.lit, Some(Duration::from_millis(u64::from(last.millis).saturating_sub(position))))
}

/// Identify, as asked for and as running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Identify {
    Idle,
    /// Asked for; starts at the next poll, which is the first time we know `now`.
    Requested(Duration),
    Until(Instant),
}

/// The status LED on pin `P` (high = lit).
///
/// Changes ([`set_state`](Led::set_state), [`identify`](Led::identify)) take effect at the next
/// [`poll`](Led::poll): call it right after them, then again at the deadline it returns.
#[derive(Debug)]
pub struct Led<P> {
    pin: P,
    state: LedState,
    identify: Identify,
    /// When the shown pattern started; `None` restarts it at the next poll.
    anchor: Option<Instant>,
    /// The level last written, `None` before the first write or after a failed one (so the next poll
    /// writes again rather than trusting a pin that may not have changed).
    lit: Option<bool>,
}

impl<P: OutputPin> Led<P> {
    /// An LED in [`LedState::Off`]; the pin is first written at the first poll.
    pub fn new(pin: P) -> Self {
        Led { pin, state: LedState::Off, identify: Identify::Idle, anchor: None, lit: None }
    }

    /// Shows `state` from the next poll. Setting the state it already has changes nothing (the
    /// pattern keeps its rhythm), so the daemon may set it on every loop. During identify the new
    /// state is remembered and shown when identify ends.
    pub fn set_state(&mut self, state: LedState) {
        if state != self.state {
            self.state = state;
            if self.identify == Identify::Idle {
                self.anchor = None;
            }
        }
    }

    /// The state set last (what the LED shows when not identifying).
    pub fn state(&self) -> LedState {
        self.state
    }

    /// Blinks at 10 Hz for [`IDENTIFY_DURATION`] from the next poll, over any state. Asking again
    /// while identifying starts the time over.
    pub fn identify(&mut self) {
        self.identify_for(IDENTIFY_DURATION);
    }

    /// Like [`identify`](Led::identify), for `duration` instead.
    pub fn identify_for(&mut self, duration: Duration) {
        self.identify = Identify::Requested(duration);
    }

    /// Ends identify now; the state's pattern starts over at the next poll.
    pub fn stop_identify(&mut self) {
        if self.identify != Identify::Idle {
            self.identify = Identify::Idle;
            self.anchor = None;
        }
    }

    /// Whether identify is asked for or running.
    pub fn is_identifying(&self) -> bool {
        self.identify != Identify::Idle
    }

    /// Whether the LED was last driven lit (false before the first poll).
    pub fn is_lit(&self) -> bool {
        self.lit == Some(true)
    }

    /// Drives the pin for `now` and returns when to poll next (`None`: nothing will change until the
    /// state does). A pin error is returned as is and leaves the state machine unchanged; poll again
    /// later to retry the write.
    pub fn poll(&mut self, now: Instant) -> Result<Option<Instant>, P::Error> {
        match self.identify {
            Identify::Requested(duration) => {
                self.identify = Identify::Until(now + duration);
                self.anchor = Some(now);
            }
            // The state's pattern starts when identify ended, not when we noticed, so a late poll
            // does not shift its rhythm.
            Identify::Until(end) if now >= end => {
                self.identify = Identify::Idle;
                self.anchor = Some(end);
            }
            Identify::Until(_) | Identify::Idle => {}
        }
        let (pattern, identify_end) = match self.identify {
            Identify::Until(end) => (IDENTIFY, Some(end)),
            Identify::Idle | Identify::Requested(_) => (self.state.pattern(), None),
        };
        let anchor = *self.anchor.get_or_insert(now);
        let (lit, remaining) = level_at(pattern, now.saturating_since(anchor));
        if self.lit != Some(lit) {
            self.lit = None;
            self.pin.set_state(PinState::from(lit))?;
            self.lit = Some(lit);
        }
        let step_end = remaining.map(|r| now + r);
        Ok(match (step_end, identify_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Gives the pin back.
    pub fn release(self) -> P {
        self.pin
    }
}

#[cfg(test)]
mod tests;
