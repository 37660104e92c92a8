use core::time::Duration;
use std::io::ErrorKind;
use std::vec::Vec;

use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction};
use embedded_hal_mock::eh1::MockError;
use proptest::prelude::*;

use super::*;
use crate::SimulatedPin;

fn at(millis: u64) -> Instant {
    Instant::from_millis(millis)
}

/// The pin writes that `transitions` stand for, in order.
fn writes(transitions: &[(u64, bool)]) -> Vec<Transaction> {
    transitions.iter().map(|&(_, lit)| Transaction::set(if lit { State::High } else { State::Low })).collect()
}

/// Polls at `from`, then at every deadline up to `until`, like the daemon's timer would; returns
/// the level changes as (time, lit). Deadlines must move forward.
fn run<P: OutputPin>(led: &mut Led<P>, from: u64, until: u64) -> Vec<(u64, bool)>
where
    P::Error: core::fmt::Debug,
{
    let mut now = at(from);
    let mut seen = Vec::new();
    let mut last = None;
    loop {
        let next = led.poll(now).unwrap();
        if last != Some(led.is_lit()) {
            last = Some(led.is_lit());
            seen.push((now.as_millis(), led.is_lit()));
        }
        match next {
            Some(t) if t.as_millis() <= until => {
                assert!(t > now, "deadline {t:?} not after {now:?}");
                now = t;
            }
            _ => return seen,
        }
    }
}

/// Checks `state`'s transitions over `0..=until` against `expected`, on a mock pin that must see
/// exactly the matching writes.
fn check_pattern(state: LedState, until: u64, expected: &[(u64, bool)]) {
    let mut pin = PinMock::new(&writes(expected));
    let mut led = Led::new(pin.clone());
    led.set_state(state);
    assert_eq!(run(&mut led, 0, until), expected);
    pin.done();
}

#[test]
fn off_is_dark_and_needs_no_timer() {
    let mut pin = PinMock::new(&[Transaction::set(State::Low)]);
    let mut led = Led::new(pin.clone());
    assert_eq!(led.poll(at(0)), Ok(None));
    assert_eq!(led.poll(at(5_000)), Ok(None));
    pin.done();
}

#[test]
fn booting_blinks_at_5_hz() {
    let expected =
        [(0, true), (100, false), (200, true), (300, false), (400, true), (500, false), (600, true)];
    check_pattern(LedState::Booting, 600, &expected);
}

#[test]
fn searching_blinks_at_1_hz() {
    let expected = [(0, true), (500, false), (1000, true), (1500, false), (2000, true)];
    check_pattern(LedState::Searching, 2000, &expected);
}

#[test]
fn streaming_is_solid_with_a_blip_every_2_s() {
    let expected = [(0, true), (1900, false), (2000, true), (3900, false), (4000, true)];
    check_pattern(LedState::Streaming, 4000, &expected);
}

#[test]
fn origin_unreachable_double_blinks_every_1_5_s() {
    let expected = [
        (0, true),
        (150, false),
        (300, true),
        (450, false),
        (1500, true),
        (1650, false),
        (1800, true),
        (1950, false),
        (3000, true),
    ];
    check_pattern(LedState::OriginUnreachable, 3000, &expected);
}

#[test]
fn identify_blinks_at_10_hz_then_returns_to_the_state() {
    let expected = [(0, true), (1000, true), (1050, false), (1100, true), (1150, false), (1200, true)];
    let mut pin =
        PinMock::new(&writes(&[(0, true), (1050, false), (1100, true), (1150, false), (1200, true)]));
    let mut led = Led::new(pin.clone());
    led.set_state(LedState::Searching);
    assert_eq!(led.poll(at(0)), Ok(Some(at(500))));
    // Identify for 200 ms from 1000; the searching pattern would have been lit at 1000 already.
    led.identify_for(Duration::from_millis(200));
    assert!(led.is_identifying());
    let mut seen = std::vec![(0, true)];
    seen.extend(run(&mut led, 1000, 1200));
    assert_eq!(seen, expected);
    // At 1200 identify ended and searching started over: lit until 1700.
    assert!(!led.is_identifying());
    assert_eq!(led.poll(at(1200)), Ok(Some(at(1700))));
    pin.done();
}

#[test]
fn identify_lasts_60_s() {
    let pin = SimulatedPin::new(false);
    let lit = pin.handle();
    let mut led = Led::new(pin);
    led.identify();
    let transitions = run(&mut led, 0, 70_000);
    // 600 periods of 100 ms: 1200 changes, the last one (dark) at 60 s.
    assert_eq!(transitions.len(), 1 + 1199);
    assert_eq!(transitions.last(), Some(&(59_950, false)));
    assert!(!led.is_identifying());
    assert!(!lit.is_high());
}

#[test]
fn the_state_set_during_identify_shows_when_identify_ends() {
    let mut led = Led::new(SimulatedPin::new(false));
    led.set_state(LedState::Searching);
    led.identify_for(Duration::from_millis(500));
    assert_eq!(led.poll(at(0)), Ok(Some(at(50))));
    led.set_state(LedState::Booting);
    // Still identifying: the 10 Hz rhythm goes on.
    assert_eq!(led.poll(at(60)), Ok(Some(at(100))));
    assert!(!led.is_lit());
    // Booting starts at the end of identify (500), even when noticed late.
    assert_eq!(led.poll(at(530)), Ok(Some(at(600))));
    assert!(led.is_lit());
    assert_eq!(led.state(), LedState::Booting);
}

#[test]
fn asking_for_identify_again_starts_the_time_over() {
    let mut led = Led::new(SimulatedPin::new(false));
    led.identify_for(Duration::from_millis(1000));
    led.poll(at(0)).unwrap();
    led.identify_for(Duration::from_millis(1000));
    led.poll(at(800)).unwrap();
    led.poll(at(1500)).unwrap();
    assert!(led.is_identifying());
    led.poll(at(1800)).unwrap();
    assert!(!led.is_identifying());
}

#[test]
fn stop_identify_restarts_the_state_at_once() {
    let mut led = Led::new(SimulatedPin::new(false));
    led.set_state(LedState::Streaming);
    led.identify();
    led.poll(at(0)).unwrap();
    assert_eq!(led.poll(at(1050)), Ok(Some(at(1100))));
    assert!(!led.is_lit());
    led.stop_identify();
    assert_eq!(led.poll(at(1060)), Ok(Some(at(2960))));
    assert!(led.is_lit());
}

#[test]
fn setting_the_same_state_keeps_the_rhythm() {
    let mut pin = PinMock::new(&[Transaction::set(State::High), Transaction::set(State::Low)]);
    let mut led = Led::new(pin.clone());
    led.set_state(LedState::Searching);
    assert_eq!(led.poll(at(0)), Ok(Some(at(500))));
    assert_eq!(led.poll(at(700)), Ok(Some(at(1000))));
    led.set_state(LedState::Searching);
    assert_eq!(led.poll(at(750)), Ok(Some(at(1000))));
    pin.done();
}

#[test]
fn a_new_state_starts_its_pattern_at_the_next_poll() {
    let mut pin = PinMock::new(&writes(&[(0, true), (700, false), (750, true)]));
    let mut led = Led::new(pin.clone());
    led.set_state(LedState::Searching);
    assert_eq!(led.poll(at(0)), Ok(Some(at(500))));
    assert_eq!(led.poll(at(700)), Ok(Some(at(1000))));
    led.set_state(LedState::Booting);
    assert_eq!(led.poll(at(750)), Ok(Some(at(850))));
    pin.done();
}

#[test]
fn a_late_poll_skips_steps_instead_of_stretching_them() {
    let mut led = Led::new(SimulatedPin::new(false));
    led.set_state(LedState::Booting);
    led.poll(at(0)).unwrap();
    // 1234 ms in: 34 ms into an "on" step that ends at 1300.
    assert_eq!(led.poll(at(1234)), Ok(Some(at(1300))));
    assert!(led.is_lit());
}

#[test]
fn pin_errors_are_returned_and_the_write_is_retried() {
    let broken = MockError::Io(ErrorKind::PermissionDenied);
    let mut pin = PinMock::new(&[
        Transaction::set(State::High).with_error(broken.clone()),
        Transaction::set(State::High),
        Transaction::set(State::Low),
    ]);
    let mut led = Led::new(pin.clone());
    led.set_state(LedState::Searching);
    assert_eq!(led.poll(at(0)), Err(broken));
    assert!(!led.is_lit());
    assert_eq!(led.poll(at(10)), Ok(Some(at(500))));
    assert!(led.is_lit());
    assert_eq!(led.poll(at(500)), Ok(Some(at(1000))));
    pin.done();
}

/// The crate docs' table, written out independently of the step lists.
fn documented_level(state: LedState, t: u64) -> bool {
    match state {
        LedState::Off => false,
        LedState::Booting => t % 200 < 100,
        LedState::Searching => t % 1000 < 500,
        LedState::Streaming => t % 2000 < 1900,
        LedState::OriginUnreachable => {
            let p = t % 1500;
            p < 150 || (300..450).contains(&p)
        }
    }
}

fn any_state() -> impl Strategy<Value = LedState> {
    prop_oneof![
        Just(LedState::Off),
        Just(LedState::Booting),
        Just(LedState::Searching),
        Just(LedState::Streaming),
        Just(LedState::OriginUnreachable),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Polled at arbitrary times, the LED shows the documented level, and the level holds until the
    /// deadline it returns.
    #[test]
    fn any_poll_shows_the_documented_level(state in any_state(), gaps in prop::collection::vec(0u64..3_000, 1..40)) {
        let pin = SimulatedPin::new(false);
        let wire = pin.handle();
        let mut led = Led::new(pin);
        led.set_state(state);
        // The pattern starts at the first poll.
        led.poll(at(0)).unwrap();
        let mut t = 0;
        for gap in gaps {
            t += gap;
            let next = led.poll(at(t)).unwrap();
            prop_assert_eq!(wire.is_high(), documented_level(state, t), "at {}", t);
            match next {
                Some(deadline) => {
                    let end = deadline.as_millis();
                    prop_assert!(end > t);
                    prop_assert_eq!(documented_level(state, end - 1), wire.is_high());
                    prop_assert_ne!(documented_level(state, end), wire.is_high());
                }
                None => prop_assert_eq!(state, LedState::Off),
            }
        }
    }
}
