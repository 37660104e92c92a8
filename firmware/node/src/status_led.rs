//! The status LED and the button (DESIGN.md §8): one task that shows the box's state on the
//! LED and turns button presses into actions.
//!
//! The state comes from the swarm driver once a second ([`Command::Health`]): booting until the
//! first answer, searching while no peer answers, streaming while segments arrive, origin
//! unreachable while a channel this box ingests or serves has a failing origin (as its ingester
//! announces to the swarm). Identify (a short press, or
//! `POST /api/identify`) blinks fast for a minute over any state. A press of 10 s or more resets
//! the config to the board's defaults (the file is kept as `<config>.bak`).
//!
//! Boards with GPIO lines in their profile get real pins through the Linux GPIO character
//! device; others (and any board whose lines cannot be opened) get simulated pins, so the same
//! logic runs everywhere and the dashboard can show what the LED would.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
use shoal_boards::{Button, ButtonEvent, Led, LedState, PinHandle, Polarity, SimulatedPin};
use smol::channel::{bounded, Sender};
use smol::Timer;

use crate::board::GpioLine;
use crate::model::Health;
use crate::swarm::Command;

/// How often the driver is asked for the box's state.
const HEALTH_EVERY: Duration = Duration::from_secs(1);
/// How long a failing pin waits before it is tried again.
const PIN_RETRY: Duration = Duration::from_secs(1);

/// When identify was asked for last, shared by the HTTP backend, the button and the LED.
pub type IdentifyRequest = Arc<Mutex<Option<Instant>>>;

/// What the LED shows now (its state's name), for `/api/status` and the dashboard.
pub type Shown = Arc<Mutex<&'static str>>;

/// What the LED task needs.
pub struct StatusLed {
    /// The LED line from the board profile (or config).
    pub led: Option<GpioLine>,
    /// The button line.
    pub button: Option<GpioLine>,
    /// Identify asked until this instant.
    pub identify: IdentifyRequest,
    /// The config file a long press resets (none: nothing to reset).
    pub config_path: Option<PathBuf>,
    /// The board, kept in a reset config.
    pub board: String,
    /// Where the task says what the LED shows.
    pub shown: Shown,
}

/// A pin that is real when the board has it, simulated otherwise.
enum Output {
    #[cfg(target_os = "linux")]
    Real(shoal_boards::GpioOutput),
    Simulated(SimulatedPin),
}

enum Input {
    #[cfg(target_os = "linux")]
    Real(shoal_boards::GpioInput),
    Simulated(SimulatedPin),
}

/// Pin errors as text: the task logs them and retries.
#[derive(Debug)]
struct PinError(String);

impl embedded_hal::digital::Error for PinError {
    fn kind(&self) -> embedded_hal::digital::ErrorKind {
        embedded_hal::digital::ErrorKind::Other
    }
}

impl ErrorType for Output {
    type Error = PinError;
}

impl ErrorType for Input {
    type Error = PinError;
}

fn infallible<T>(result: Result<T, Infallible>) -> T {
    match result {
        Ok(value) => value,
        Err(never) => match never {},
    }
}

impl OutputPin for Output {
    fn set_low(&mut self) -> Result<(), PinError> {
        match self {
            #[cfg(target_os = "linux")]
            Output::Real(pin) => pin.set_low().map_err(|e| PinError(format!("{e:?}"))),
            Output::Simulated(pin) => {
                infallible(pin.set_low());
                Ok(())
            }
        }
    }

    fn set_high(&mut self) -> Result<(), PinError> {
        match self {
            #[cfg(target_os = "linux")]
            Output::Real(pin) => pin.set_high().map_err(|e| PinError(format!("{e:?}"))),
            Output::Simulated(pin) => {
                infallible(pin.set_high());
                Ok(())
            }
        }
    }
}

impl InputPin for Input {
    fn is_high(&mut self) -> Result<bool, PinError> {
        match self {
            #[cfg(target_os = "linux")]
            Input::Real(pin) => pin.is_high().map_err(|e| PinError(format!("{e:?}"))),
            Input::Simulated(pin) => Ok(infallible(pin.is_high())),
        }
    }

    fn is_low(&mut self) -> Result<bool, PinError> {
        self.is_high().map(|high| !high)
    }
}

#[cfg(target_os = "linux")]
fn bias(bias: &crate::board::Bias) -> shoal_boards::Bias {
    match bias {
        crate::board::Bias::PullUp => shoal_boards::Bias::PullUp,
        crate::board::Bias::PullDown => shoal_boards::Bias::PullDown,
        _ => shoal_boards::Bias::AsIs,
    }
}

/// The LED pin: the board's line if it opens, a simulated one otherwise (and its handle).
fn open_led(line: Option<&GpioLine>) -> (Led<Output>, Option<PinHandle>) {
    #[cfg(target_os = "linux")]
    if let Some(l) = line {
        match shoal_boards::open_output(&l.chip, l.line, l.active_low) {
            Ok(pin) => return (Led::new(Output::Real(pin)), None),
            Err(e) => log::warn!("status LED: {e}; showing the state on a simulated LED"),
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = line;
    let pin = SimulatedPin::new(false);
    let handle = pin.handle();
    (Led::new(Output::Simulated(pin)), Some(handle))
}

fn open_button(line: Option<&GpioLine>) -> Button<Input> {
    #[cfg(target_os = "linux")]
    if let Some(l) = line {
        match shoal_boards::open_input(&l.chip, l.line, l.active_low, bias(&l.bias)) {
            // The line's level is logical: high is pressed.
            Ok(pin) => return Button::new(Input::Real(pin), Polarity::ActiveHigh),
            Err(e) => log::warn!("button: {e}; no button"),
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = line;
    Button::new(Input::Simulated(SimulatedPin::new(false)), Polarity::ActiveHigh)
}

fn state_name(state: LedState) -> &'static str {
    match state {
        LedState::Off => "off",
        LedState::Booting => "booting",
        LedState::Searching => "searching",
        LedState::Streaming => "streaming",
        LedState::OriginUnreachable => "origin-unreachable",
    }
}

/// The LED state for the box's health.
fn led_state(health: Option<Health>) -> LedState {
    match health {
        None => LedState::Booting,
        Some(h) if h.origin_failing => LedState::OriginUnreachable,
        Some(h) if h.peers_alive == 0 && !h.streaming => LedState::Searching,
        Some(h) if h.streaming => LedState::Streaming,
        Some(_) => LedState::Searching,
    }
}

/// Runs until dropped: shows the state on the LED, handles the button.
pub async fn run(setup: StatusLed, commands: Sender<Command>) {
    let started = Instant::now();
    let at = |now: Instant| shoal_boards::Instant::from(now.duration_since(started));
    let (mut led, simulated) = open_led(setup.led.as_ref());
    if simulated.is_some() && setup.led.is_some() {
        log::info!("status LED simulated");
    }
    let mut button = open_button(setup.button.as_ref());
    let mut next_health = started;
    let mut health: Option<Health> = None;
    let mut identify_seen: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now >= next_health {
            let (reply, answer) = bounded(1);
            if commands.send(Command::Health(reply)).await.is_err() {
                return;
            }
            health = answer.recv().await.ok().or(health);
            next_health = now + HEALTH_EVERY;
        }
        let state = led_state(health);
        led.set_state(state);
        if let Ok(mut shown) = setup.shown.lock() {
            *shown = if led.is_identifying() { "identify" } else { state_name(state) };
        }
        let requested = setup.identify.lock().ok().and_then(|r| *r);
        if requested != identify_seen {
            identify_seen = requested;
            if let Some(until) = requested.filter(|&u| u > now) {
                led.identify_for(until - now);
            }
        }
        match button.poll(at(now)) {
            Ok(Some(ButtonEvent::Identify)) => {
                log::info!("button: identify");
                if let Ok(mut r) = setup.identify.lock() {
                    *r = Some(now + shoal_boards::IDENTIFY_DURATION);
                }
            }
            Ok(Some(ButtonEvent::ResetConfig)) => {
                reset_config(setup.config_path.as_deref(), &setup.board);
                led.identify_for(Duration::from_secs(5));
            }
            Ok(None) => {}
            Err(PinError(e)) => {
                log::warn!("button: {e}");
                Timer::after(PIN_RETRY).await;
            }
        }
        let wake = match led.poll(at(now)) {
            Ok(deadline) => deadline.map(|d| started + d.as_duration()),
            Err(PinError(e)) => {
                log::warn!("status LED: {e}");
                Some(now + PIN_RETRY)
            }
        };
        let sample = now + shoal_boards::SAMPLE_INTERVAL;
        let wake = wake.map_or(sample, |w| w.min(sample)).min(next_health);
        Timer::at(wake).await;
    }
}

/// A long press: the config file is set aside as `<file>.bak` and replaced by the board's
/// defaults, keeping only what the box needs to stay itself (board, key file, state dir).
fn reset_config(path: Option<&std::path::Path>, board: &str) {
    let Some(path) = path else {
        log::warn!("button: reset asked, but the box runs without a config file");
        return;
    };
    let kept: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter(|l| {
            let key = l.split('=').next().unwrap_or("").trim();
            matches!(key, "network_key_file" | "state_dir" | "insecure")
        })
        .map(str::to_owned)
        .collect();
    let mut text = format!(
        "# Reset to the defaults of board {board} by a long press of the button.\nboard = \"{board}\"\n"
    );
    for line in kept {
        text.push_str(&line);
        text.push('\n');
    }
    let backup = path.with_extension("toml.bak");
    let result = std::fs::copy(path, &backup).and_then(|_| {
        let temporary = path.with_extension("toml.new");
        std::fs::write(&temporary, &text)?;
        std::fs::rename(&temporary, path)
    });
    match result {
        Ok(()) => log::warn!(
            "button: config {} reset to the defaults (the old one is {}); restart to apply",
            path.display(),
            backup.display()
        ),
        Err(e) => log::error!("button: cannot reset config {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_led_shows_the_worst_news_first() {
        let health =
            |peers_alive, streaming, origin_failing| Some(Health { peers_alive, streaming, origin_failing });
        assert_eq!(led_state(None), LedState::Booting);
        assert_eq!(led_state(health(0, false, false)), LedState::Searching);
        assert_eq!(led_state(health(3, false, false)), LedState::Searching);
        assert_eq!(led_state(health(3, true, false)), LedState::Streaming);
        assert_eq!(led_state(health(0, true, false)), LedState::Streaming, "a lone box streaming its origin");
        assert_eq!(led_state(health(3, true, true)), LedState::OriginUnreachable);
    }

    #[test]
    fn a_reset_keeps_the_identity_of_the_box() {
        let dir = std::env::temp_dir().join(format!("shoal-reset-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("shoal.toml");
        std::fs::write(
            &path,
            "board = \"rpi4\"\nnetwork_key_file = \"/k\"\nstate_dir = \"/s\"\n[store]\nbudget_mb = 999\n",
        )
        .unwrap();
        reset_config(Some(&path), "rpi4");
        let reset = std::fs::read_to_string(&path).unwrap();
        let config = crate::config::Config::parse(&reset).expect("the reset config is valid");
        assert_eq!(config.board, "rpi4");
        assert_eq!(config.network_key_file, PathBuf::from("/k"));
        assert!(!reset.contains("budget_mb"));
        assert!(std::fs::read_to_string(path.with_extension("toml.bak"))
            .unwrap()
            .contains("budget_mb = 999"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
