//! Project automation, run as `cargo xtask <command>`:
//!
//! - `ci`: everything CI checks, in order: formatting, clippy with warnings denied, every test of
//!   the workspace (unit, property, doc and simulation scenarios), the dissemination benchmark's
//!   floor, the TV start floor (first byte ≤ 50 ms, on the test build of the daemon: slower than
//!   the release build, so a pass there holds for release), and a short fuzzing run when
//!   cargo-fuzz and a nightly toolchain are present.
//! - `bench`: the benchmarks whose results go into BENCHMARKS.md.
//! - `fuzz [SECONDS]`: every fuzz target for SECONDS (default 30) each.
//! - `dist --board NAME`: the board's release bundle `dist/shoal-<version>-<board>.tar.gz` and
//!   `dist/shoal_<version>_<arch>.deb` (see `dist.rs` and packaging/README.md).
//! - `dist-check [--board NAME]... [--system-dpkg]`: builds the minipc-x86_64, rpi4 and
//!   rpi-zero-w bundles (or minipc-x86_64 and the named ones) and checks them: sizes, `shoal
//!   version` under qemu-user, the systemd unit, the init script under BusyBox, the .deb in a
//!   temporary root (and, with --system-dpkg, installed for real and purged). See `dist_check.rs`.
//!
//! Each step prints the command it runs; the first failure stops the run with its exit code.

mod board;
mod dist;
mod dist_check;
mod elf;
mod toolchain;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(&root),
        Some("bench") => bench(&root),
        Some("fuzz") => {
            let seconds = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(30);
            fuzz(&root, seconds, true)
        }
        Some("dist") => match args.get(1..) {
            Some([flag, board]) if flag == "--board" => dist::dist(&root, board).map(drop),
            _ => {
                eprintln!("usage: cargo xtask dist --board NAME   (a boards/NAME.toml, or rpi4, rpi-zero-w, minipc-x86_64)");
                return ExitCode::from(2);
            }
        },
        Some("dist-check") => match dist_check::Options::parse(&args[1..]) {
            Ok(options) => dist_check::dist_check(&root, &options),
            Err(message) => {
                eprintln!("{message}\nusage: cargo xtask dist-check [--board NAME]... [--system-dpkg]");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: cargo xtask <ci | bench | fuzz [SECONDS] | dist --board NAME | dist-check [--board NAME]... [--system-dpkg]>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    // tools/xtask → the workspace root, two levels up from this crate's manifest.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub(crate) fn run(dir: &Path, program: &str, args: &[&str]) -> Result<(), String> {
    println!("\n==> {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .map_err(|e| format!("could not start `{program}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

fn succeeds(dir: &Path, program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).current_dir(dir).output().is_ok_and(|o| o.status.success())
}

fn ci(root: &Path) -> Result<(), String> {
    run(root, "cargo", &["fmt", "--all", "--check"])?;
    run(root, "cargo", &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    run(root, "cargo", &["test", "--workspace"])?;
    // The dissemination floor (every ratio within 1.0..=1.5) is a requirement, not a report.
    dissemination(root, 3)?;
    // The daemon `cargo test` just built.
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let shoal = target.join("debug/shoal");
    let shoal = shoal.to_string_lossy();
    let tvstart = ["run", "-p", "shoal-bench", "--bin", "tvstart", "--", "--runs", "10", "--cold-runs", "2"];
    run(root, "cargo", &[&tvstart[..], &["--shoal", &shoal]].concat())?;
    let seconds = std::env::var("SHOAL_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    fuzz(root, seconds, false)
}

fn bench(root: &Path) -> Result<(), String> {
    dissemination(root, 6)?;
    run(root, "cargo", &["bench", "-p", "shoal-core", "--bench", "core"])?;
    run(root, "cargo", &["run", "--profile", "bench", "-p", "shoal-bench", "--bin", "goodput"])?;
    run(root, "cargo", &["run", "--release", "-p", "shoal-bench", "--bin", "tvstart"])
}

/// The simulated dissemination benchmark, worst of `seeds` seeds; fails outside 1.0..=1.5.
fn dissemination(root: &Path, seeds: u32) -> Result<(), String> {
    let seeds = seeds.to_string();
    let args =
        ["run", "--profile", "bench", "-p", "shoal-sim", "--bin", "dissemination", "--", "--seeds", &seeds];
    run(root, "cargo", &args)
}

/// Runs every fuzz target for `seconds`. Without a nightly toolchain or cargo-fuzz this says
/// exactly what is missing; `required` turns that into a failure.
fn fuzz(root: &Path, seconds: u32, required: bool) -> Result<(), String> {
    let dir = root.join("tests/fuzz");
    let missing = if !succeeds(&dir, "cargo", &["+nightly", "--version"]) {
        Some("a nightly toolchain (`rustup toolchain install nightly`)")
    } else if !succeeds(&dir, "cargo", &["+nightly", "fuzz", "--version"]) {
        Some("cargo-fuzz (`cargo install cargo-fuzz --locked`)")
    } else {
        None
    };
    if let Some(what) = missing {
        let message = format!("fuzzing needs {what}");
        if required {
            return Err(message);
        }
        println!("\n==> fuzz: not run: {message}");
        return Ok(());
    }
    let targets = ["datagram_decode", "manifest_parse", "engine_datagrams"];
    let time = format!("-max_total_time={seconds}");
    for target in targets {
        // New inputs go to a scratch corpus under target/, so the committed seed corpus stays
        // small; libFuzzer reads both.
        let scratch = format!("target/corpus/{target}");
        std::fs::create_dir_all(dir.join(&scratch)).map_err(|e| format!("creating {scratch}: {e}"))?;
        let seeds = format!("corpus/{target}");
        run(
            &dir,
            "cargo",
            &[
                "+nightly",
                "fuzz",
                "run",
                // cargo-fuzz would otherwise look for a fuzz/ folder at the workspace root.
                "--fuzz-dir",
                ".",
                target,
                &scratch,
                &seeds,
                "--",
                &time,
                "-rss_limit_mb=2048",
            ],
        )?;
    }
    Ok(())
}
