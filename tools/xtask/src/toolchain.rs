//! What `dist` and `dist-check` need on the build machine, found or installed.
//!
//! Like tools/test: run as root, a missing piece is installed (rustup targets and components,
//! Debian packages, zig and cargo-zigbuild in a Python venv under `target/dist-tools`);
//! otherwise the error names what is missing and the command that gets it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::board::Recipe;

/// Whether this process may install things (root, as on the CI machines).
pub(crate) fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn quiet(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `program args`, printing it first.
fn install(program: &str, args: &[&str]) -> Result<(), String> {
    println!("==> installing: {program} {}", args.join(" "));
    let status =
        Command::new(program).args(args).status().map_err(|e| format!("could not start {program}: {e}"))?;
    status.success().then_some(()).ok_or_else(|| format!("`{program} {}` failed ({status})", args.join(" ")))
}

/// Installs with `how` when root, else fails naming `what` and `how`.
fn get(what: &str, how: &[&str]) -> Result<(), String> {
    if is_root() {
        install(how[0], &how[1..])
    } else {
        Err(format!(
            "{what} is missing: run `{}` (as root, `cargo xtask dist` does it itself)",
            how.join(" ")
        ))
    }
}

/// The rust-std of `target` for `toolchain` (`stable`: the default one).
pub(crate) fn rustup_target(toolchain: &str, target: &str) -> Result<(), String> {
    let plus = format!("+{toolchain}");
    let installed = quiet("rustup", &[&plus, "target", "list", "--installed"])
        .ok_or("rustup is missing: install Rust with rustup (https://rustup.rs)")?;
    if installed.lines().any(|l| l.trim() == target) {
        return Ok(());
    }
    get(
        &format!("the {target} standard library"),
        &["rustup", "target", "add", "--toolchain", toolchain, target],
    )
}

/// A nightly toolchain with rust-src, for `-Zbuild-std`.
pub(crate) fn nightly_with_src() -> Result<(), String> {
    if quiet("cargo", &["+nightly", "--version"]).is_none() {
        get("a nightly toolchain", &["rustup", "toolchain", "install", "nightly", "--profile", "minimal"])?;
    }
    let components = quiet("rustup", &["+nightly", "component", "list", "--installed"]).unwrap_or_default();
    if !components.lines().any(|l| l.starts_with("rust-src")) {
        get("rust-src for nightly", &["rustup", "component", "add", "--toolchain", "nightly", "rust-src"])?;
    }
    Ok(())
}

/// Directories to put first on PATH so that `cargo zigbuild` (and zig) are found: none when they
/// are already on PATH, else the venv under `target/dist-tools`, created when root.
pub(crate) fn zigbuild(root: &Path) -> Result<Vec<PathBuf>, String> {
    let has_zig =
        quiet("zig", &["version"]).is_some() || quiet("python3", &["-m", "ziglang", "version"]).is_some();
    if quiet("cargo-zigbuild", &["--version"]).is_some() && has_zig {
        return Ok(Vec::new());
    }
    let venv = root.join("target/dist-tools/venv");
    let bin = venv.join("bin");
    let ready = bin.join("cargo-zigbuild").exists() && bin.join("python3").exists();
    if !ready {
        let venv_text = venv.to_string_lossy();
        let pip = bin.join("pip").to_string_lossy().into_owned();
        if !is_root() {
            return Err(format!(
                "cargo-zigbuild and zig are missing: run `python3 -m venv {venv_text} && {pip} install ziglang cargo-zigbuild` \
                 (as root, `cargo xtask dist` does it itself)"
            ));
        }
        install("python3", &["-m", "venv", &venv_text])?;
        install(&pip, &["install", "--quiet", "ziglang", "cargo-zigbuild"])?;
    }
    // cargo-zigbuild runs `python3 -m ziglang` when no `zig` is on PATH: the venv's python3.
    Ok(vec![bin])
}

/// Everything `recipe` needs for `target`.
pub(crate) fn for_recipe(root: &Path, recipe: Recipe, target: &str) -> Result<Vec<PathBuf>, String> {
    match recipe {
        Recipe::Cargo => {
            rustup_target("stable", target)?;
            // ring compiles C: cc-rs wants a musl C compiler, Debian's musl-gcc wrapper.
            debian_tool("musl-gcc", "musl-tools")?;
            Ok(Vec::new())
        }
        Recipe::Zigbuild => {
            rustup_target("stable", target)?;
            zigbuild(root)
        }
        Recipe::NightlyBuildStd => {
            nightly_with_src()?;
            zigbuild(root)
        }
    }
}

/// A program from a Debian package: installed with apt-get when root.
pub(crate) fn debian_tool(program: &str, package: &str) -> Result<(), String> {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()));
    if found {
        return Ok(());
    }
    if !is_root() {
        return Err(format!("{program} is missing: run `apt-get install {package}` as root"));
    }
    // Packages must not start services here: a policy-rc.d forbids it on the build images.
    install("apt-get", &["install", "-y", "-qq", package]).or_else(|_| {
        install("apt-get", &["update", "-qq"])
            .and_then(|()| install("apt-get", &["install", "-y", "-qq", package]))
    })
}

/// Where [`modern_qemu`] unpacks qemu-user from bookworm-backports.
const MODERN_QEMU_DIR: &str = "target/dist-tools/qemu-user";

/// The oldest qemu-user major version known to run mdns-sd: 10 (bookworm-backports) does.
/// Debian 12's 7.2 does not emulate `IP_MULTICAST_IF` (`docs/TESTING.md`, "Cross-compiled builds"): under it the mixed
/// swarm's ARM boxes start, but no box ever finds another (seen on 2026-12-03). Versions 8 and 9
/// were not tried, so they are not trusted.
const QEMU_MULTICAST_MAJOR: u32 = 10;

/// The major version `program --version` prints (`qemu-aarch64 version 10.0.2 (...)`).
fn qemu_major(program: &Path) -> Option<u32> {
    let out = Command::new(program).arg("--version").output().ok()?;
    major_of(&String::from_utf8_lossy(&out.stdout))
}

fn major_of(version_text: &str) -> Option<u32> {
    let version = version_text.lines().next()?.split(" version ").nth(1)?;
    version.split('.').next()?.trim().parse().ok()
}

/// The directory holding a qemu-user (`qemu-aarch64`, `qemu-arm`) that can run mdns-sd.
///
/// A qemu-user of version [`QEMU_MULTICAST_MAJOR`] or later on PATH is used as it is. Otherwise
/// qemu-user (static binaries, no dependencies) is fetched from bookworm-backports with
/// `apt-get download` and unpacked with `dpkg-deb -x` under `target/dist-tools/qemu-user`: apt
/// runs with a sources list, package lists and cache of its own under
/// `target/dist-tools/qemu-download` (removed afterwards), so the machine's apt sources and its
/// installed qemu stay exactly as they were. About 63 MB and a few seconds, once per target dir.
pub(crate) fn modern_qemu(root: &Path) -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path).find(|dir| {
            let qemu = dir.join("qemu-aarch64");
            qemu.is_file() && qemu_major(&qemu).is_some_and(|m| m >= QEMU_MULTICAST_MAJOR)
        })
    }) {
        return Ok(dir);
    }
    let unpacked = root.join(MODERN_QEMU_DIR);
    let bin = unpacked.join("usr/bin");
    let usable = |bin: &Path| {
        bin.join("qemu-arm").is_file()
            && qemu_major(&bin.join("qemu-aarch64")).is_some_and(|m| m >= QEMU_MULTICAST_MAJOR)
    };
    if usable(&bin) {
        return Ok(bin);
    }
    let work = root.join("target/dist-tools/qemu-download");
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| format!("clearing {}: {e}", work.display()))?;
    }
    for dir in ["lists/partial", "parts", "cache/archives/partial"] {
        std::fs::create_dir_all(work.join(dir)).map_err(|e| format!("creating {}: {e}", work.display()))?;
    }
    let sources = work.join("sources.list");
    std::fs::write(&sources, "deb http://deb.debian.org/debian bookworm-backports main\n")
        .map_err(|e| format!("writing {}: {e}", sources.display()))?;
    let options = [
        format!("Dir::Etc::SourceList={}", sources.display()),
        format!("Dir::Etc::SourceParts={}", work.join("parts").display()),
        format!("Dir::State::Lists={}", work.join("lists").display()),
        format!("Dir::Cache={}", work.join("cache").display()),
        // As root, apt hands downloads to the _apt user, who cannot write under target/.
        "APT::Sandbox::User=root".to_owned(),
    ];
    let apt = |verb: &[&str]| -> Result<(), String> {
        let mut command = Command::new("apt-get");
        command.arg("-q");
        for option in &options {
            command.args(["-o", option]);
        }
        command.args(verb).current_dir(&work);
        println!("==> apt-get (private sources: bookworm-backports) {}", verb.join(" "));
        let out = command.output().map_err(|e| format!("could not start apt-get: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "apt-get {} failed ({}): {}{}",
                verb.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    apt(&["update"])?;
    apt(&["download", "qemu-user/bookworm-backports"])?;
    let deb = std::fs::read_dir(&work)
        .map_err(|e| format!("{}: {e}", work.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|e| e == "deb"))
        .ok_or_else(|| format!("apt-get download left no .deb in {}", work.display()))?;
    if unpacked.exists() {
        std::fs::remove_dir_all(&unpacked).map_err(|e| format!("clearing {}: {e}", unpacked.display()))?;
    }
    crate::run(root, "dpkg-deb", &["-x", &deb.to_string_lossy(), &unpacked.to_string_lossy()])?;
    // The .deb is unpacked: 63 MB that need not stay.
    let _ = std::fs::remove_dir_all(&work);
    if usable(&bin) {
        Ok(bin)
    } else {
        Err(format!(
            "{} holds no qemu-aarch64 and qemu-arm of version {QEMU_MULTICAST_MAJOR} or later",
            bin.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_versions_as_debian_prints_them() {
        let bookworm =
            "qemu-aarch64 version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022";
        assert_eq!(major_of(bookworm), Some(7));
        assert_eq!(major_of("qemu-arm version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\n"), Some(10));
        assert_eq!(major_of("qemu-arm: unknown option\n"), None);
    }
}
