//! Board profiles: what a kind of box is built for and the defaults that suit it.
//!
//! Each `boards/<name>.toml` at the workspace root (format in `boards/README.md`) is compiled
//! into the binary by `build.rs` and parsed here on first use. The config names a board
//! (`board = "rpi4"`, or `shoal run --board rpi4`); the profile then supplies the defaults for the
//! store, the client and channel limits, the interfaces and the GPIO lines, and the config file's
//! own values win over them (see [`crate::config`]).
//!
//! ```
//! use shoal::board::BoardProfile;
//!
//! let pi = BoardProfile::named("rpi4").expect("a compiled-in profile");
//! assert_eq!(pi.target.triple(), "aarch64-unknown-linux-musl");
//! assert!(BoardProfile::all().iter().any(|p| p.name == "generic"));
//! ```

use std::path::PathBuf;
use std::sync::OnceLock;

use serde::Deserialize;

include!(concat!(env!("OUT_DIR"), "/boards.rs"));

/// The profile used when neither the config, `--board` nor the build names one.
pub const DEFAULT_BOARD: &str = "generic";

/// The board this binary was built for: `SHOAL_BOARD` at build time (`cargo xtask dist` sets it;
/// `build.rs` checks that it names a profile), or none for a plain build.
pub const BUILT_FOR_BOARD: Option<&str> = option_env!("SHOAL_BOARD");

/// The target triple this binary was built for (from `build.rs`).
pub const BUILD_TARGET: &str = env!("SHOAL_TARGET");

/// The board a config that names none gets: the build's, else [`DEFAULT_BOARD`].
pub fn default_board() -> &'static str {
    BUILT_FOR_BOARD.unwrap_or(DEFAULT_BOARD)
}

/// One board profile, as in its `boards/<name>.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardProfile {
    /// The profile's name: its file name without `.toml`.
    #[serde(skip)]
    pub name: String,
    /// What boards it is for, for people.
    pub description: String,
    /// The Rust target its bundle is built for.
    pub target: Target,
    /// The Debian architecture of its `.deb`.
    pub deb_arch: DebArch,
    /// The `-cpu` model of qemu-user that runs its tests like the board would; none where the
    /// build machines run the binary natively (x86_64).
    pub qemu_cpu: Option<String>,
    /// Store and channel defaults.
    pub store: StoreDefaults,
    /// HTTP defaults.
    pub http: HttpDefaults,
    /// Network defaults.
    pub net: NetDefaults,
    /// The status LED and the button; absent: none.
    #[serde(default)]
    pub gpio: GpioDefaults,
}

/// A profile's `[store]`: defaults for the config's `[store]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreDefaults {
    /// Memory for segments, in MiB (`store.budget_mb`).
    pub budget_mb: u32,
    /// Segments kept per channel (`store.ring_len`).
    pub ring_len: usize,
    /// Channels the box holds at once (`store.max_channels`).
    pub max_channels: usize,
}

/// A profile's `[http]`: defaults for the config's `[http]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpDefaults {
    /// HTTP connections served at once (`http.max_clients`).
    pub max_clients: usize,
}

/// A profile's `[net]`: defaults for the config's `[net]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetDefaults {
    /// Interfaces for discovery (`net.interfaces`); empty: every up, non-loopback one.
    pub interfaces: Vec<String>,
}

/// A profile's `[gpio]`: the status LED and the button, each absent when the board has none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpioDefaults {
    /// The status LED (an output).
    pub led: Option<GpioLine>,
    /// The button (an input).
    pub button: Option<GpioLine>,
}

/// One GPIO line on a Linux GPIO character device (`/dev/gpiochipN`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpioLine {
    /// The chip's device name under `/dev`, e.g. `gpiochip0`.
    #[serde(default = "default_chip")]
    pub chip: String,
    /// The line's offset on the chip (on a Raspberry Pi's gpiochip0: the BCM GPIO number).
    pub line: u32,
    /// Low means on (LED) or pressed (button).
    #[serde(default)]
    pub active_low: bool,
    /// The pull resistor to request; a button to ground needs `pull-up`.
    #[serde(default)]
    pub bias: Bias,
}

fn default_chip() -> String {
    "gpiochip0".into()
}

impl GpioLine {
    /// The character device to open.
    pub fn device(&self) -> PathBuf {
        PathBuf::from("/dev").join(&self.chip)
    }

    /// Why the line is unusable, if it is: the chip must be a plain device name under `/dev`.
    pub fn problem(&self) -> Option<&'static str> {
        let plain = !self.chip.is_empty()
            && self.chip.len() <= 32
            && self.chip.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        (!plain).then_some("chip must be a device name under /dev such as \"gpiochip0\"")
    }
}

/// The bias (pull resistor) requested for a GPIO line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bias {
    /// Leave it as the kernel has it.
    #[default]
    AsIs,
    /// Pull up.
    PullUp,
    /// Pull down.
    PullDown,
    /// No pull resistor.
    Disabled,
}

/// The targets boards are built for (DESIGN §9): every bundle carries a static musl binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Target {
    /// ARMv6 hard-float: Pi Zero W, Pi 1.
    #[serde(rename = "arm-unknown-linux-musleabihf")]
    ArmV6,
    /// ARMv7 hard-float: Pi 2, TV boxes with a 32-bit userland.
    #[serde(rename = "armv7-unknown-linux-musleabihf")]
    ArmV7,
    /// 64-bit ARM: Pi 3/4/5, Zero 2 W, TV boxes with a 64-bit userland.
    #[serde(rename = "aarch64-unknown-linux-musl")]
    Aarch64,
    /// Mini PCs.
    #[serde(rename = "x86_64-unknown-linux-musl")]
    X86_64,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 4] = [Target::ArmV6, Target::ArmV7, Target::Aarch64, Target::X86_64];

    /// The Rust target triple.
    pub fn triple(self) -> &'static str {
        match self {
            Target::ArmV6 => "arm-unknown-linux-musleabihf",
            Target::ArmV7 => "armv7-unknown-linux-musleabihf",
            Target::Aarch64 => "aarch64-unknown-linux-musl",
            Target::X86_64 => "x86_64-unknown-linux-musl",
        }
    }

    /// The Debian architecture its binaries install under. ARMv6 is `armhf` too: Raspberry Pi
    /// OS calls its ARMv6 hard-float port that, and a static binary needs nothing more.
    pub fn deb_arch(self) -> DebArch {
        match self {
            Target::ArmV6 | Target::ArmV7 => DebArch::Armhf,
            Target::Aarch64 => DebArch::Arm64,
            Target::X86_64 => DebArch::Amd64,
        }
    }
}

/// A Debian architecture name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DebArch {
    /// 32-bit ARM, hard float.
    Armhf,
    /// 64-bit ARM.
    Arm64,
    /// x86_64.
    Amd64,
}

impl DebArch {
    /// The name dpkg uses.
    pub fn as_str(self) -> &'static str {
        match self {
            DebArch::Armhf => "armhf",
            DebArch::Arm64 => "arm64",
            DebArch::Amd64 => "amd64",
        }
    }
}

impl BoardProfile {
    /// Every compiled-in profile, sorted by name.
    pub fn all() -> &'static [BoardProfile] {
        static PROFILES: OnceLock<Vec<BoardProfile>> = OnceLock::new();
        PROFILES.get_or_init(|| {
            PROFILE_SOURCES
                .iter()
                .map(|(name, text)| {
                    // Invariant: the profiles are our own files, compiled in; the unit test
                    // `every_profile_parses_and_gives_a_valid_config` parses each one.
                    let mut profile: BoardProfile = toml::from_str(text)
                        .unwrap_or_else(|e| panic!("compiled-in boards/{name}.toml is invalid: {e}"));
                    profile.name = (*name).to_owned();
                    profile
                })
                .collect()
        })
    }

    /// The profile called `name`, or an error listing the known ones.
    pub fn named(name: &str) -> Result<&'static BoardProfile, UnknownBoard> {
        Self::all().iter().find(|p| p.name == name).ok_or_else(|| UnknownBoard { name: name.to_owned() })
    }

    /// The names of every profile, comma-separated, for messages.
    pub fn names() -> String {
        Self::all().iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// A board name no compiled-in profile has.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("board `{name}` is unknown; known boards: {}", BoardProfile::names())]
pub struct UnknownBoard {
    /// The name asked for.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn every_profile_parses_and_gives_a_valid_config() {
        assert!(BoardProfile::all().len() >= 10);
        for profile in BoardProfile::all() {
            assert!(Target::ALL.contains(&profile.target), "{}", profile.name);
            assert_eq!(profile.deb_arch, profile.target.deb_arch(), "{}: deb_arch", profile.name);
            for line in [&profile.gpio.led, &profile.gpio.button].into_iter().flatten() {
                assert_eq!(line.problem(), None, "{}", profile.name);
            }
            // The profile's values pass the config's own checks.
            let config = Config::parse_with_board("", Some(&profile.name))
                .unwrap_or_else(|e| panic!("{}: {e}", profile.name));
            assert_eq!(config.board, profile.name);
            assert_eq!(config.store_budget_mb, profile.store.budget_mb);
        }
    }

    #[test]
    fn the_profiles_the_design_names_are_there() {
        let cpu = |name: &str| BoardProfile::named(name).expect("known").qemu_cpu.clone();
        for (name, target, qemu) in [
            ("rpi-zero-w", Target::ArmV6, Some("arm1176")),
            ("rpi2", Target::ArmV7, Some("cortex-a7")),
            ("rpi-zero-2w", Target::Aarch64, Some("cortex-a53")),
            ("rpi3", Target::Aarch64, Some("cortex-a53")),
            ("rpi4", Target::Aarch64, Some("cortex-a72")),
            ("rpi5", Target::Aarch64, Some("cortex-a76")),
            ("tvbox-armv7", Target::ArmV7, Some("cortex-a7")),
            ("tvbox-aarch64", Target::Aarch64, Some("cortex-a53")),
            ("minipc-x86_64", Target::X86_64, None),
            ("generic", Target::X86_64, None),
        ] {
            assert_eq!(BoardProfile::named(name).expect("known").target, target, "{name}");
            assert_eq!(cpu(name).as_deref(), qemu, "{name}");
        }
        let generic = BoardProfile::named(DEFAULT_BOARD).expect("the default exists");
        assert_eq!(generic.gpio, GpioDefaults::default(), "generic has no GPIO");
    }

    #[test]
    fn unknown_boards_and_fields_are_errors() {
        let e = BoardProfile::named("rpi9").unwrap_err().to_string();
        assert!(e.starts_with("board `rpi9` is unknown; known boards: generic, minipc-x86_64, "), "{e}");
        let bad = "description = \"x\"\ntarget = \"aarch64-unknown-linux-musl\"\ndeb_arch = \"arm64\"\n\
                   [store]\nbudget_mb = 64\nring_len = 64\nmax_channels = 8\n[http]\nmax_clients = 8\n\
                   [net]\ninterfaces = []\nram_mb = 512\n";
        assert!(toml::from_str::<BoardProfile>(bad).unwrap_err().message().contains("ram_mb"));
        let riscv = bad.replace("aarch64-unknown-linux-musl", "riscv64gc-unknown-linux-musl");
        assert!(toml::from_str::<BoardProfile>(&riscv).is_err());
    }
}
