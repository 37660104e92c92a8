//! Board I/O for Shoal: the status LED and the button.
//!
//! Both are state machines over embedded-hal 1.0 pins that take `now` from the caller and never
//! read a clock or block, like the rest of Shoal's core: [`Led::poll`] drives the pin and returns
//! when to poll next; [`Button::poll`] samples the pin and returns what the user asked for. The
//! pins are the caller's: [`SimulatedPin`] on hosts and in tests, the Linux GPIO character device
//! with the `gpio-cdev` feature (`open_led`, `open_button`), or any embedded-hal 1.0 pin.
//!
//! # LED patterns
//!
//! Each pattern repeats from the moment its state is entered; "on"/"off" are the pin driven
//! high/low (high = lit).
//!
//! | state | meaning | pattern | period |
//! |---|---|---|---|
//! | [`Off`](LedState::Off) | stopped, or LED disabled | dark | — |
//! | [`Booting`](LedState::Booting) | starting up | 100 ms on, 100 ms off (5 Hz) | 200 ms |
//! | [`Searching`](LedState::Searching) | no peer yet | 500 ms on, 500 ms off (1 Hz) | 1 s |
//! | [`Streaming`](LedState::Streaming) | peers, segments flowing | 1.9 s on, 100 ms off (heartbeat blip) | 2 s |
//! | [`OriginUnreachable`](LedState::OriginUnreachable) | cannot fetch from the origin | 150 on, 150 off, 150 on, 1050 off (double blink) | 1.5 s |
//! | identify ([`Led::identify`]) | "here I am", over any state | 50 ms on, 50 ms off (10 Hz) for 60 s, then back to the state | 100 ms |
//!
//! # Button
//!
//! Debounced over [`DEBOUNCE`] (30 ms). A press released before [`LONG_PRESS`] (10 s) gives
//! [`ButtonEvent::Identify`] on release; a press held for 10 s gives [`ButtonEvent::ResetConfig`]
//! once, at the 10 s mark, and its release gives nothing. A button held at start is ignored until
//! released.
//!
//! # Features
//!
//! - `alloc` (default): [`SimulatedPin`], which shares its level through an `Arc`.
//! - `gpio-cdev`: real pins on Linux through `/dev/gpiochipN` (needs std).
//!
//! Without features the crate is `no_std` and allocation-free.
//!
//! # Example
//!
//! A daemon loop, on a virtual clock: the button asks for identify, the LED blinks at 10 Hz.
//!
//! ```
//! # #[cfg(feature = "alloc")] {
//! use shoal_boards::{Button, ButtonEvent, Instant, Led, LedState, Polarity, SimulatedPin, SAMPLE_INTERVAL};
//!
//! let led_pin = SimulatedPin::new(false);
//! let lit = led_pin.handle();
//! let mut led = Led::new(led_pin);
//! let button_pin = SimulatedPin::new(true); // active low: high is released
//! let finger = button_pin.handle();
//! let mut button = Button::new(button_pin, Polarity::ActiveLow);
//!
//! led.set_state(LedState::Streaming);
//! let mut now = Instant::ZERO;
//! let mut led_deadline = led.poll(now).unwrap();
//! assert!(lit.is_high());
//! for tick in 0..100 {
//!     finger.set_high(!(20..40).contains(&tick)); // pressed for 200 ms
//!     if let Some(ButtonEvent::Identify) = button.poll(now).unwrap() {
//!         led.identify();
//!         led_deadline = led.poll(now).unwrap();
//!     }
//!     if led_deadline.is_some_and(|d| d <= now) {
//!         led_deadline = led.poll(now).unwrap();
//!     }
//!     now += SAMPLE_INTERVAL;
//! }
//! assert!(led.is_identifying());
//! assert!(lit.changes() > 5);
//! # }
//! ```
//!
//! In the daemon, `now` is `Instant::from(started.elapsed())` and a deadline `d` becomes a timer
//! at `started + d.as_duration()`.

#![cfg_attr(not(any(test, feature = "gpio-cdev")), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(all(feature = "gpio-cdev", not(target_os = "linux")))]
compile_error!("the `gpio-cdev` feature needs Linux: the GPIO character device is Linux-only");

#[cfg(any(test, feature = "alloc"))]
extern crate alloc;

mod button;
#[cfg(feature = "gpio-cdev")]
mod cdev;
mod led;
#[cfg(any(test, feature = "alloc"))]
mod sim;
mod time;

pub use button::{Button, ButtonEvent, Polarity, DEBOUNCE, LONG_PRESS, SAMPLE_INTERVAL};
#[cfg(feature = "gpio-cdev")]
pub use cdev::{open_button, open_input, open_led, open_output, Bias, GpioError, GpioInput, GpioOutput};
pub use led::{Led, LedState, IDENTIFY_DURATION};
#[cfg(any(test, feature = "alloc"))]
pub use sim::{PinHandle, SimulatedPin};
pub use time::Instant;
