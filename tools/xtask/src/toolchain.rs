//! What `dist` and `dist-check` need on the build machine, found or installed.
//!
//! Like tools/test: run as root, a missing piece is installed (rustup targets and components,
//! Debian packages, zig and cargo-zigbuild in a Python venv under `target/dist-tools`);
//! otherwise the error names what is missing and the command that gets it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::board::Recipe;

/// Whether this process may install things (root, as on the CI machines).
fn is_root() -> bool {
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
