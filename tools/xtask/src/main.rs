//! Project automation, run as `cargo xtask <command>`:
//!
//! - `ci`: everything CI checks, in order: formatting, clippy with warnings denied, every test of
//!   the workspace (unit, property, doc and simulation scenarios), the dissemination benchmark's
//!   floor, the TV start floor (first byte ≤ 50 ms, on the test build of the daemon: slower than
//!   the release build, so a pass there holds for release), and a short fuzzing run when
//!   cargo-fuzz and a nightly toolchain are present; then the ARM steps of issue 6, each timed:
//!   `cross-test`, `dist-check` (as root with `--system-dpkg`) and `mixed-swarm` on the bundles
//!   dist-check built.
//! - `bench`: the benchmarks whose results go into BENCHMARKS.md (the relay and VOD ones need
//!   root, python3-libtorrent for the BitTorrent comparison).
//! - `fuzz [SECONDS]`: every fuzz target for SECONDS (default 30) each.
//! - `dist --board NAME`: the board's release bundle `dist/shoal-<version>-<board>.tar.gz` and
//!   `dist/shoal_<version>_<arch>.deb` (see `dist.rs` and packaging/README.md).
//! - `dist-check [--board NAME]... [--system-dpkg]`: builds the minipc-x86_64, rpi4 and
//!   rpi-zero-w bundles (or minipc-x86_64 and the named ones) and checks them: sizes, `shoal
//!   version` under qemu-user, the systemd unit, the init script under BusyBox, the .deb in a
//!   temporary root (and, with --system-dpkg, installed for real and purged). See `dist_check.rs`.
//! - `ci-boards`: only the ARM steps of `ci`.
//! - `cross-test`: the unit tests of shoal-core, shoal-boards, shoal-ts and shoal built for
//!   aarch64-unknown-linux-gnu and armv7-unknown-linux-gnueabihf and run under qemu-user. See
//!   `cross_test.rs`.
//! - `mixed-swarm [--board NAME]...`: builds the minipc-x86_64, rpi4 and rpi-zero-w bundles (or
//!   minipc-x86_64 and the named ones) and runs their binaries as one swarm, the ARM ones under
//!   qemu-user, in network namespaces. See `mixed_swarm.rs`.
//!
//! Each step prints the command it runs; the first failure stops the run with its exit code.

mod board;
mod cross_test;
mod dist;
mod dist_check;
mod elf;
mod mixed_swarm;
mod toolchain;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

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
            Ok(options) => dist_check::dist_check(&root, &options).map(drop),
            Err(message) => {
                eprintln!("{message}\nusage: cargo xtask dist-check [--board NAME]... [--system-dpkg]");
                return ExitCode::from(2);
            }
        },
        Some("ci-boards") => ci_boards(&root),
        Some("cross-test") => cross_test::cross_test(&root),
        Some("mixed-swarm") => match dist_check::Options::parse(&args[1..]) {
            Ok(options) if !options.system_dpkg => options
                .boards()
                .iter()
                .map(|board| dist::dist(&root, board))
                .collect::<Result<Vec<_>, _>>()
                .and_then(|bundles| mixed_swarm::mixed_swarm(&root, &bundles)),
            _ => {
                eprintln!("usage: cargo xtask mixed-swarm [--board NAME]...");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: cargo xtask <ci | bench | fuzz [SECONDS] | dist --board NAME | dist-check [--board NAME]... [--system-dpkg] | ci-boards | cross-test | mixed-swarm [--board NAME]...>");
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
    let started = Instant::now();
    let result = ci_steps(root);
    println!(
        "\n==> ci: {} after {:.1} min",
        if result.is_ok() { "passed" } else { "FAILED" },
        started.elapsed().as_secs_f64() / 60.0
    );
    result
}

/// Every CI step, each timed, so a run's log says where its minutes went.
fn ci_steps(root: &Path) -> Result<(), String> {
    timed("cargo fmt --check", || run(root, "cargo", &["fmt", "--all", "--check"]))?;
    timed("cargo clippy", || {
        run(root, "cargo", &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])
    })?;
    timed("cargo test --workspace", || run(root, "cargo", &["test", "--workspace"]))?;
    // The dissemination floor (every ratio within 1.0..=1.5) is a requirement, not a report.
    timed("dissemination floor", || dissemination(root, 3))?;
    // The daemon `cargo test` just built.
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let shoal = target.join("debug/shoal");
    let shoal = shoal.to_string_lossy();
    let tvstart = ["run", "-p", "shoal-bench", "--bin", "tvstart", "--", "--runs", "10", "--cold-runs", "2"];
    timed("TV start floor", || run(root, "cargo", &[&tvstart[..], &["--shoal", &shoal]].concat()))?;
    let seconds = std::env::var("SHOAL_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    timed("fuzz", || fuzz(root, seconds, false))?;
    ci_boards(root)
}

/// CI's steps for the boards (issue 6): the unit tests on the boards' CPUs, the bundles, and a
/// swarm of three architectures. Root (as CI is) also installs the amd64 .deb into this system
/// for real.
fn ci_boards(root: &Path) -> Result<(), String> {
    timed("cargo xtask cross-test", || cross_test::cross_test(root))?;
    let system_dpkg = toolchain::is_root();
    let options = dist_check::Options { boards: Vec::new(), system_dpkg };
    let name = if system_dpkg { "cargo xtask dist-check --system-dpkg" } else { "cargo xtask dist-check" };
    let bundles = timed(name, || dist_check::dist_check(root, &options))?;
    timed("cargo xtask mixed-swarm", || mixed_swarm::mixed_swarm(root, &bundles))
}

/// Runs one CI step, printing what it is and how long it took (also when it failed).
fn timed<T>(name: &str, step: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    println!("\n==> ci step: {name}");
    let start = Instant::now();
    let result = step();
    let verdict = if result.is_ok() { "passed" } else { "FAILED" };
    println!("==> ci step: {name}: {verdict} in {:.1} s", start.elapsed().as_secs_f64());
    result
}

fn bench(root: &Path) -> Result<(), String> {
    dissemination(root, 6)?;
    run(root, "cargo", &["bench", "-p", "shoal-core", "--bench", "core"])?;
    run(root, "cargo", &["run", "--profile", "bench", "-p", "shoal-bench", "--bin", "goodput"])?;
    run(root, "cargo", &["run", "--release", "-p", "shoal-bench", "--bin", "tvstart"])?;
    // The relay and VOD benchmarks run the release daemon in namespaces (root).
    run(root, "cargo", &["build", "--release", "-p", "shoal"])?;
    let shoal = root.join("target/release/shoal");
    let shoal = shoal.to_string_lossy();
    run(root, "cargo", &["run", "--profile", "bench", "-p", "shoal-bench", "--bin", "relay", "--", &shoal])?;
    run(root, "cargo", &["run", "--profile", "bench", "-p", "shoal-bench", "--bin", "vodfill", "--", &shoal])
}

/// The simulated dissemination benchmark, worst of `seeds` seeds; fails outside 1.0..=1.5.
fn dissemination(root: &Path, seeds: u32) -> Result<(), String> {
    let seeds = seeds.to_string();
    let args =
        ["run", "--profile", "bench", "-p", "shoal-sim", "--bin", "dissemination", "--", "--seeds", &seeds];
    run(root, "cargo", &args)
}

/// Regenerates the seed corpus, which also checks that each scripted session still reaches its
/// goal, and fails if that changed a committed file: a protocol change must come with its seeds,
/// or the fuzzers start from datagrams the engine drops as another version.
fn check_seed_corpus(dir: &Path) -> Result<(), String> {
    run(dir, "cargo", &["run", "--quiet", "--example", "gen_corpus"])?;
    let status = Command::new("git")
        .args(["status", "--porcelain", "--", "corpus"])
        .current_dir(dir)
        .output()
        .map_err(|e| format!("git status: {e}"))?;
    if !status.status.success() {
        // Not a git checkout (a source tarball): nothing to compare with.
        return Ok(());
    }
    let changed = String::from_utf8_lossy(&status.stdout);
    if !changed.trim().is_empty() {
        return Err(format!("the seed corpus is stale; commit what gen_corpus wrote:\n{changed}"));
    }
    Ok(())
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
    check_seed_corpus(&dir)?;
    let targets = ["datagram_decode", "manifest_parse", "engine_datagrams", "ts_segmenter"];
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
