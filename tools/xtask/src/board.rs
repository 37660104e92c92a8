//! Board profiles as `cargo xtask dist` needs them: the target triple to build for, the Debian
//! architecture of the .deb, and whether the board has GPIO (the systemd unit then adds the
//! `gpio` group). Read from `boards/<name>.toml`; the three reference boards also have built-in
//! defaults, so a bundle can be built before their profiles exist.

use std::path::Path;

/// What packaging needs to know about one board.
#[derive(Debug, Clone)]
pub(crate) struct Board {
    /// Profile name: `rpi4`, `rpi-zero-w`, `minipc-x86_64`, ...
    pub(crate) name: String,
    /// Rust target triple of the bundle's binary (always a static musl one).
    pub(crate) target: String,
    /// Debian architecture of the .deb: `arm64`, `armhf`, `amd64`.
    pub(crate) deb_arch: String,
    /// The board has a GPIO character device for the status LED and the button.
    pub(crate) gpio: bool,
    /// The qemu-user CPU model that stands for the board's CPU (`qemu_cpu`); none for x86_64.
    pub(crate) qemu_cpu: Option<String>,
}

/// Built-in defaults: (name, target, Debian architecture, GPIO, qemu CPU).
const BUILT_IN: [(&str, &str, &str, bool, Option<&str>); 3] = [
    ("rpi4", "aarch64-unknown-linux-musl", "arm64", true, Some("cortex-a72")),
    ("rpi-zero-w", "arm-unknown-linux-musleabihf", "armhf", true, Some("arm1176")),
    ("minipc-x86_64", "x86_64-unknown-linux-musl", "amd64", false, None),
];

impl Board {
    /// The profile `boards/<name>.toml` below `root`, else the built-in defaults for `name`.
    pub(crate) fn load(root: &Path, name: &str) -> Result<Board, String> {
        if name.is_empty()
            || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(format!("board name `{name}`: use lowercase letters, digits, `-` and `_`"));
        }
        let built_in = BUILT_IN.iter().find(|(n, ..)| *n == name);
        let path = root.join("boards").join(format!("{name}.toml"));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let Some(&(name, target, deb_arch, gpio, qemu_cpu)) = built_in else {
                    let known: Vec<&str> = BUILT_IN.iter().map(|b| b.0).collect();
                    return Err(format!(
                        "no board profile {} and no built-in one for `{name}` (built in: {})",
                        path.display(),
                        known.join(", ")
                    ));
                };
                return Ok(Board {
                    name: name.into(),
                    target: target.into(),
                    deb_arch: deb_arch.into(),
                    gpio,
                    qemu_cpu: qemu_cpu.map(str::to_owned),
                });
            }
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        let table: toml::Table = text.parse().map_err(|e| format!("{}: {e}", path.display()))?;
        let string = |key: &str| table.get(key).and_then(toml::Value::as_str).map(str::to_owned);
        let target =
            string("target").ok_or_else(|| format!("{}: no `target` (a target triple)", path.display()))?;
        let deb_arch = match string("deb_arch").or_else(|| deb_arch_of(&target).map(str::to_owned)) {
            Some(arch) => arch,
            None => return Err(format!("{}: no `deb_arch`, and none is known for {target}", path.display())),
        };
        // Any `gpio…` setting other than an explicit "none"/false means the board has GPIO.
        let gpio = match table.iter().find(|(key, _)| key.starts_with("gpio")) {
            Some((_, value)) => {
                !matches!(value, toml::Value::Boolean(false))
                    && value.as_str().is_none_or(|s| !s.is_empty() && s != "none")
            }
            None => built_in.is_some_and(|b| b.3),
        };
        let qemu_cpu = string("qemu_cpu").or_else(|| built_in.and_then(|b| b.4).map(str::to_owned));
        Ok(Board { name: name.into(), target, deb_arch, gpio, qemu_cpu })
    }

    /// The first part of the triple: `aarch64`, `arm`, `armv7`, `x86_64`.
    pub(crate) fn arch(&self) -> &str {
        self.target.split('-').next().unwrap_or(&self.target)
    }

    /// The qemu-user program that runs this board's binaries, if it is not the host's kind.
    pub(crate) fn qemu(&self) -> Option<&'static str> {
        match self.arch() {
            "x86_64" => None,
            "aarch64" => Some("qemu-aarch64-static"),
            _ => Some("qemu-arm-static"),
        }
    }

    /// How the binary is built for this target.
    pub(crate) fn recipe(&self) -> Recipe {
        match self.arch() {
            "x86_64" => Recipe::Cargo,
            "aarch64" => Recipe::Zigbuild,
            _ => Recipe::NightlyBuildStd,
        }
    }
}

/// The three build recipes that work on the build machines (`docs/TESTING.md`, "Cross-compiled builds").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recipe {
    /// rustup target + plain cargo (x86_64 musl: the host's cc compiles ring's C).
    Cargo,
    /// rustup target + cargo-zigbuild (zig supplies a C cross compiler and musl headers).
    Zigbuild,
    /// nightly `-Zbuild-std` + cargo-zigbuild, for targets rustup has no std for (ARMv6, ARMv7 musl).
    NightlyBuildStd,
}

/// The Debian architecture of a target triple, when there is one obvious answer.
fn deb_arch_of(target: &str) -> Option<&'static str> {
    match target.split('-').next()? {
        "x86_64" => Some("amd64"),
        "aarch64" => Some("arm64"),
        arch if arch.starts_with("arm") && target.ends_with("hf") => Some("armhf"),
        _ => None,
    }
}
