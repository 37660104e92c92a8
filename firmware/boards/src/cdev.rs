//! Real pins on Linux, through the GPIO character device (`/dev/gpiochipN`).
//!
//! Built on `gpiocdev-embedded-hal`, which speaks both the v1 uAPI (the 4.x vendor kernels of
//! many TV boxes) and v2 (5.10 on, Raspberry Pi OS). The line stays requested for as long as the pin
//! lives, so no other program can take it; `gpioinfo` shows it as used.
//!
//! Levels through these pins are *logical*: with `active_low`, `set_high` drives the wire low and
//! `is_high` reads true when the wire is low. So the LED is lit by "high" and the button pressed
//! at "high" whatever the wiring: use [`open_led`] and [`open_button`], which get this right, or pair
//! [`open_input`] with [`Polarity::ActiveHigh`].
//!
//! An input can ask for a pull resistor ([`Bias`]); kernels before 5.5 refuse bias flags, so a
//! board on such a kernel keeps [`Bias::AsIs`] and sets the pull elsewhere (device tree, or
//! `gpio=27=ip,pu` in a Raspberry Pi's `config.txt`). Lines are requested as consumer `shoal`. The
//! daemon's user needs read-write access to the chip device (group `gpio` on Raspberry Pi OS).

use embedded_hal::digital::{ErrorKind, ErrorType, InputPin, OutputPin, PinState};

use crate::{Button, Led, Polarity};

/// What went wrong with a GPIO line.
#[derive(Debug, thiserror::Error)]
pub enum GpioError {
    /// The line could not be requested: no such chip or line, no permission, or the line is
    /// already in use by another program or driver.
    #[error(
        "GPIO {chip} line {line}: cannot request it: {source} (check the chip and line in the board \
         profile, that the daemon may open {chip}, and `gpioinfo` for another user of the line)"
    )]
    Request {
        /// The chip's device path.
        chip: String,
        /// The line's offset on the chip.
        line: u32,
        /// What the kernel said.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading or setting a requested line failed.
    #[error("GPIO {chip} line {line}: {source}")]
    Io {
        /// The chip's device path.
        chip: String,
        /// The line's offset on the chip.
        line: u32,
        /// What the kernel said.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl embedded_hal::digital::Error for GpioError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

/// Where a line is, for error messages.
#[derive(Debug, Clone)]
struct Line {
    chip: String,
    line: u32,
}

impl Line {
    fn new(chip: &str, line: u32) -> Self {
        // "gpiochip0" and "/dev/gpiochip0" both name the chip.
        let chip = if chip.contains('/') { String::from(chip) } else { format!("/dev/{chip}") };
        Line { chip, line }
    }

    fn request_error(&self, e: gpiocdev_embedded_hal::Error) -> GpioError {
        GpioError::Request { chip: self.chip.clone(), line: self.line, source: Box::new(e) }
    }

    fn io_error(&self, e: gpiocdev_embedded_hal::Error) -> GpioError {
        GpioError::Io { chip: self.chip.clone(), line: self.line, source: Box::new(e) }
    }
}

/// The pull resistor requested for an input line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Bias {
    /// Leave the line as the kernel and firmware set it.
    #[default]
    AsIs,
    /// Pull up: a button to ground (active low).
    PullUp,
    /// Pull down: a button to the supply (active high).
    PullDown,
}

/// The label `gpioinfo` shows for our lines.
const CONSUMER: &str = "shoal";

/// An output line (logical levels: high = active).
#[derive(Debug)]
pub struct GpioOutput {
    pin: gpiocdev_embedded_hal::OutputPin,
    active_low: bool,
    line: Line,
}

/// An input line (logical levels: high = active).
#[derive(Debug)]
pub struct GpioInput {
    pin: gpiocdev_embedded_hal::InputPin,
    active_low: bool,
    line: Line,
}

/// The wire level for a logical one.
fn wire(high: bool, active_low: bool) -> PinState {
    PinState::from(high != active_low)
}

/// Requests `line` on `chip` (`"gpiochip0"` or a path) as an output, inactive to start with.
pub fn open_output(chip: &str, line: u32, active_low: bool) -> Result<GpioOutput, GpioError> {
    let line = Line::new(chip, line);
    let off = if active_low { gpiocdev::line::Value::Active } else { gpiocdev::line::Value::Inactive };
    let request = gpiocdev::Request::builder()
        .on_chip(&line.chip)
        .with_consumer(CONSUMER)
        .with_line(line.line)
        .as_output(off)
        .request()
        .map_err(|e| line.request_error(e.into()))?;
    let pin = gpiocdev_embedded_hal::OutputPin::try_from(request).map_err(|e| line.request_error(e))?;
    Ok(GpioOutput { pin, active_low, line })
}

/// Requests `line` on `chip` (`"gpiochip0"` or a path) as an input with `bias`.
pub fn open_input(chip: &str, line: u32, active_low: bool, bias: Bias) -> Result<GpioInput, GpioError> {
    let line = Line::new(chip, line);
    let bias = match bias {
        Bias::AsIs => None,
        Bias::PullUp => Some(gpiocdev::line::Bias::PullUp),
        Bias::PullDown => Some(gpiocdev::line::Bias::PullDown),
    };
    let request = gpiocdev::Request::builder()
        .on_chip(&line.chip)
        .with_consumer(CONSUMER)
        .with_line(line.line)
        .as_input()
        .with_bias(bias)
        .request()
        .map_err(|e| line.request_error(e.into()))?;
    let pin = gpiocdev_embedded_hal::InputPin::try_from(request).map_err(|e| line.request_error(e))?;
    Ok(GpioInput { pin, active_low, line })
}

/// The status LED on `line` of `chip`; `active_low` when the LED lights with the wire low.
pub fn open_led(chip: &str, line: u32, active_low: bool) -> Result<Led<GpioOutput>, GpioError> {
    open_output(chip, line, active_low).map(Led::new)
}

/// The button on `line` of `chip`; `active_low` when pressing pulls the wire low.
pub fn open_button(
    chip: &str,
    line: u32,
    active_low: bool,
    bias: Bias,
) -> Result<Button<GpioInput>, GpioError> {
    open_input(chip, line, active_low, bias).map(|pin| Button::new(pin, Polarity::ActiveHigh))
}

impl ErrorType for GpioOutput {
    type Error = GpioError;
}

impl OutputPin for GpioOutput {
    fn set_low(&mut self) -> Result<(), GpioError> {
        self.set_state(PinState::Low)
    }

    fn set_high(&mut self) -> Result<(), GpioError> {
        self.set_state(PinState::High)
    }

    fn set_state(&mut self, state: PinState) -> Result<(), GpioError> {
        let level = wire(state == PinState::High, self.active_low);
        self.pin.set_state(level).map_err(|e| self.line.io_error(e))
    }
}

impl ErrorType for GpioInput {
    type Error = GpioError;
}

impl InputPin for GpioInput {
    fn is_high(&mut self) -> Result<bool, GpioError> {
        let wire_high = self.pin.is_high().map_err(|e| self.line.io_error(e))?;
        Ok(wire_high != self.active_low)
    }

    fn is_low(&mut self) -> Result<bool, GpioError> {
        self.is_high().map(|high| !high)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chip_names_become_device_paths() {
        assert_eq!(Line::new("gpiochip0", 17).chip, "/dev/gpiochip0");
        assert_eq!(Line::new("/dev/gpiochip4", 17).chip, "/dev/gpiochip4");
    }

    #[test]
    fn active_low_inverts_the_wire() {
        assert_eq!(wire(true, false), PinState::High);
        assert_eq!(wire(true, true), PinState::Low);
        assert_eq!(wire(false, true), PinState::High);
    }

    // No GPIO on the build machines: opening must fail cleanly, naming the line.
    #[test]
    fn a_missing_chip_is_an_error_that_names_the_line() {
        let e = open_output("gpiochip-missing", 17, false).unwrap_err();
        let message = e.to_string();
        assert!(matches!(e, GpioError::Request { line: 17, .. }), "{message}");
        assert!(message.contains("/dev/gpiochip-missing line 17"), "{message}");
        let e = open_button("/nonexistent/gpiochip0", 4, true, Bias::PullUp).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/gpiochip0 line 4"), "{e}");
    }
}
