//! `cargo xtask cross-test`: the unit tests of the core, the board logic, the TS code and the
//! node, built for the boards' two Debian ABIs and run under qemu-user (`docs/TESTING.md`, "Cross-compiled builds"), as
//! ripgrep and librespot do for their ARM targets.
//!
//! The targets are the glibc ones, `aarch64-unknown-linux-gnu` and
//! `armv7-unknown-linux-gnueabihf`: rustup ships their std, Debian their cross gcc (the linker,
//! and the C compiler for ring) and their libc under `/usr/<triple>`, which qemu-user's `-L`
//! makes the test binaries' root for the dynamic loader. The bundles are static musl builds of
//! the same code; the musl-specific bits (the C library itself) are exercised by `dist-check`
//! and `mixed-swarm` running the bundle binaries under qemu.
//!
//! Linker and runner go through `CARGO_TARGET_<TRIPLE>_LINKER` / `_RUNNER` for this one cargo
//! run, not a `.cargo/config.toml`, so nobody's host builds change; the builds go to
//! `target/cross`, apart from the host's target dir, so neither invalidates the other.
//!
//! The runner is Debian's qemu-user-static (7.2 on Debian 12), with the board family's CPU model.
//! Every one of these unit tests passes under it (2026-12-03), so none is skipped. What 7.2 lacks
//! for the daemon is `IP_MULTICAST_IF`, which mdns-sd sets, and no unit test starts mdns-sd (it
//! must never run in the machine's own network namespace); the daemon with mdns-sd runs under
//! qemu 10 in `mixed-swarm`. Should a unit test ever need what 7.2 lacks, run it under
//! [`toolchain::modern_qemu`]'s qemu rather than skipping it.
//!
//! Only `--lib` tests: the node's integration tests run real boxes in network namespaces and
//! are covered natively by `cargo test` and, across architectures, by `mixed-swarm`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::toolchain;

/// One target the unit tests run on.
struct Target {
    triple: &'static str,
    /// Debian's cross gcc: the linker, and the C compiler for ring.
    gcc: &'static str,
    /// The Debian package of `gcc` (it brings the target's libc under `/usr/<triple>`).
    package: &'static str,
    /// The qemu-user program of Debian's qemu-user-static.
    qemu: &'static str,
    /// The CPU model standing for the oldest board of that ABI: a Pi 3 / Zero 2 W core for
    /// aarch64, a Pi 2 core for armv7.
    cpu: &'static str,
}

const TARGETS: [Target; 2] = [
    Target {
        triple: "aarch64-unknown-linux-gnu",
        gcc: "aarch64-linux-gnu-gcc",
        package: "gcc-aarch64-linux-gnu",
        qemu: "qemu-aarch64-static",
        cpu: "cortex-a53",
    },
    Target {
        triple: "armv7-unknown-linux-gnueabihf",
        gcc: "arm-linux-gnueabihf-gcc",
        package: "gcc-arm-linux-gnueabihf",
        qemu: "qemu-arm-static",
        cpu: "cortex-a7",
    },
];

/// The crates whose unit tests run under emulation.
const PACKAGES: [&str; 4] = ["shoal-core", "shoal-boards", "shoal-ts", "shoal"];

/// Builds and runs the unit tests for both targets.
pub(crate) fn cross_test(root: &Path) -> Result<(), String> {
    for Target { triple: target, gcc, package, qemu, cpu } in TARGETS {
        let start = Instant::now();
        toolchain::rustup_target("stable", target)?;
        toolchain::debian_tool(gcc, package)?;
        toolchain::debian_tool(qemu, "qemu-user-static")?;
        let sysroot = format!("/usr/{}", gcc.trim_end_matches("-gcc"));
        if !Path::new(&sysroot).join("lib").is_dir() {
            return Err(format!("{sysroot}/lib is missing: the runner needs it (apt-get install {package})"));
        }
        let env_name = target.replace('-', "_").to_uppercase();
        let runner = format!("{qemu} -cpu {cpu} -L {sysroot}");
        let mut args = vec!["test", "--locked", "--target", target];
        for p in PACKAGES {
            args.extend(["-p", p]);
        }
        args.push("--lib");
        let mut command = Command::new("cargo");
        command
            .args(&args)
            .env("CARGO_TARGET_DIR", root.join("target/cross"))
            .env(format!("CARGO_TARGET_{env_name}_LINKER"), gcc)
            .env(format!("CARGO_TARGET_{env_name}_RUNNER"), &runner)
            // ring's build script compiles C with this.
            .env(format!("CC_{}", target.replace('-', "_")), gcc)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .current_dir(root);
        println!(
            "\n==> CARGO_TARGET_DIR=target/cross CARGO_TARGET_{env_name}_LINKER={gcc} \
             CARGO_TARGET_{env_name}_RUNNER='{runner}' cargo {}",
            args.join(" ")
        );
        let status = command.status().map_err(|e| format!("could not start cargo: {e}"))?;
        if !status.success() {
            return Err(format!("unit tests for {target} under qemu failed ({status})"));
        }
        println!("==> {target}: unit tests passed under qemu in {:.1} s", start.elapsed().as_secs_f64());
    }
    Ok(())
}
