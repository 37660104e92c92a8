use core::time::Duration;
use std::io::ErrorKind;
use std::vec::Vec;

use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction};
use embedded_hal_mock::eh1::MockError;
use proptest::prelude::*;

use super::*;
use crate::SimulatedPin;

const TICK: u64 = 10;

/// A script of wire levels: (how long in ms, high?), sampled every 10 ms from 0.
fn samples(script: &[(u64, bool)]) -> Vec<bool> {
    script.iter().flat_map(|&(millis, high)| core::iter::repeat_n(high, (millis / TICK) as usize)).collect()
}

/// Plays `script` into a button of `polarity` on a mock pin that must be read exactly once per
/// sample; returns the events with their times.
fn play(polarity: Polarity, script: &[(u64, bool)]) -> Vec<(u64, ButtonEvent)> {
    let levels = samples(script);
    let reads: Vec<_> =
        levels.iter().map(|&high| Transaction::get(if high { State::High } else { State::Low })).collect();
    let mut pin = PinMock::new(&reads);
    let mut button = Button::new(pin.clone(), polarity);
    let mut events = Vec::new();
    for i in 0..levels.len() as u64 {
        let now = Instant::from_millis(i * TICK);
        if let Some(event) = button.poll(now).unwrap() {
            events.push((now.as_millis(), event));
        }
    }
    pin.done();
    events
}

const PRESSED: bool = true;
const RELEASED: bool = false;

#[test]
fn a_short_press_identifies_on_release() {
    let events = play(Polarity::ActiveHigh, &[(100, RELEASED), (200, PRESSED), (200, RELEASED)]);
    // Released at 300, confirmed 30 ms later.
    assert_eq!(events, [(330, ButtonEvent::Identify)]);
}

#[test]
fn active_low_presses_pull_the_wire_low() {
    let events = play(Polarity::ActiveLow, &[(100, true), (200, false), (200, true)]);
    assert_eq!(events, [(330, ButtonEvent::Identify)]);
    // The same wire read as active high is a press held at start (ignored), then a short press
    // from 300 on that is never released.
    assert_eq!(play(Polarity::ActiveHigh, &[(100, true), (200, false), (200, true)]), []);
}

#[test]
fn a_press_just_past_the_debounce_counts() {
    // Pressed for 4 samples (0, 10, 20, 30 ms after the edge): held 30 ms when last sampled.
    let events = play(Polarity::ActiveHigh, &[(100, RELEASED), (40, PRESSED), (100, RELEASED)]);
    assert_eq!(events, [(170, ButtonEvent::Identify)]);
}

#[test]
fn glitches_shorter_than_the_debounce_are_ignored() {
    let mut script = std::vec![(100, RELEASED)];
    for _ in 0..20 {
        script.extend([(30, PRESSED), (50, RELEASED), (10, PRESSED), (20, RELEASED)]);
    }
    assert_eq!(play(Polarity::ActiveHigh, &script), []);
}

#[test]
fn a_long_press_resets_once_at_10_s_and_its_release_is_silent() {
    let events = play(Polarity::ActiveHigh, &[(100, RELEASED), (15_000, PRESSED), (200, RELEASED)]);
    assert_eq!(events, [(10_100, ButtonEvent::ResetConfig)]);
}

#[test]
fn a_release_glitch_does_not_split_a_long_press() {
    let script = [(100, RELEASED), (5_000, PRESSED), (20, RELEASED), (6_000, PRESSED), (100, RELEASED)];
    assert_eq!(play(Polarity::ActiveHigh, &script), [(10_100, ButtonEvent::ResetConfig)]);
}

#[test]
fn a_press_released_just_before_10_s_is_a_short_press() {
    // Pressed from 100 to 10 090: the sample at 10 100 (10 s after the press) already reads
    // released, so no reset, and the release is confirmed at 10 120.
    let events = play(Polarity::ActiveHigh, &[(100, RELEASED), (9_990, PRESSED), (200, RELEASED)]);
    assert_eq!(events, [(10_120, ButtonEvent::Identify)]);
}

#[test]
fn a_button_held_at_start_is_ignored_until_released() {
    let script = [(12_000, PRESSED), (100, RELEASED), (200, PRESSED), (100, RELEASED)];
    assert_eq!(play(Polarity::ActiveHigh, &script), [(12_330, ButtonEvent::Identify)]);
}

#[test]
fn pin_errors_are_returned_and_the_sample_skipped() {
    let broken = MockError::Io(ErrorKind::BrokenPipe);
    let mut pin = PinMock::new(&[
        Transaction::get(State::Low),
        Transaction::get(State::Low).with_error(broken.clone()),
        Transaction::get(State::Low),
        Transaction::get(State::Low),
    ]);
    let mut button = Button::new(pin.clone(), Polarity::ActiveHigh);
    assert_eq!(button.poll(Instant::from_millis(0)), Ok(None));
    assert_eq!(button.poll(Instant::from_millis(10)), Err(broken));
    assert_eq!(button.poll(Instant::from_millis(20)), Ok(None));
    assert_eq!(button.poll(Instant::from_millis(30)), Ok(None));
    assert!(!button.is_pressed());
    pin.done();
}

#[test]
fn works_on_a_simulated_pin() {
    let pin = SimulatedPin::new(false);
    let finger = pin.handle();
    let mut button = Button::new(pin, Polarity::ActiveHigh);
    let mut now = Instant::ZERO;
    let mut events = Vec::new();
    for tick in 0..100 {
        finger.set_high((10..50).contains(&tick));
        events.extend(button.poll(now).unwrap());
        now += SAMPLE_INTERVAL;
    }
    assert_eq!(events, [ButtonEvent::Identify]);
    assert_eq!(DEBOUNCE, Duration::from_millis(30));
}

/// Runs of (samples, pressed) played on a simulated active-high button; returns the events.
fn play_runs(runs: &[(u64, bool)]) -> Vec<ButtonEvent> {
    let pin = SimulatedPin::new(false);
    let finger = pin.handle();
    let mut button = Button::new(pin, Polarity::ActiveHigh);
    let mut now = Instant::ZERO;
    let mut events = Vec::new();
    for &(count, pressed) in runs {
        for _ in 0..count {
            finger.set_high(pressed);
            events.extend(button.poll(now).unwrap());
            now += SAMPLE_INTERVAL;
        }
    }
    events
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Presses of at most 2 samples (20 ms) never count, whatever lies between them.
    #[test]
    fn short_spikes_never_count(runs in prop::collection::vec((1u64..3, 1u64..30), 1..100)) {
        let mut script = std::vec![(5, false)];
        for (pressed, released) in runs {
            script.extend([(pressed, true), (released, false)]);
        }
        prop_assert_eq!(play_runs(&script), []);
    }

    /// Every press and release held for the debounce is one event: a reset when held 10 s, an
    /// identify otherwise.
    #[test]
    fn every_clean_press_is_one_event(presses in prop::collection::vec((4u64..1_200, 4u64..50), 1..12)) {
        let mut script = std::vec![(5, false)];
        let mut expected = Vec::new();
        for &(pressed, released) in &presses {
            script.extend([(pressed, true), (released, false)]);
            // Held `pressed` samples: the last one is (pressed - 1) ticks after the first.
            let held = (pressed - 1) * TICK;
            expected.push(if held >= LONG_PRESS.as_millis() as u64 {
                ButtonEvent::ResetConfig
            } else {
                ButtonEvent::Identify
            });
        }
        prop_assert_eq!(play_runs(&script), expected);
    }
}
