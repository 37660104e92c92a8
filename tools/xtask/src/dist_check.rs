//! `cargo xtask dist-check`: evidence that the bundles work, as far as this machine can show
//! (DESIGN.md §9, `docs/TESTING.md`, "Cross-compiled builds" and "What cannot be tested here"). Each step is timed; the first failure stops the run.
//!
//! 0. `shellcheck --shell=sh` of the init script, install.sh and the .deb's maintainer scripts.
//! 1. `dist` for minipc-x86_64, rpi4 and rpi-zero-w; each binary static and stripped, its size
//!    printed; the aarch64 one at most 4 MiB (DESIGN.md §11).
//! 2. `shoal version` of each: natively for x86_64, under `qemu-aarch64-static -cpu cortex-a72`
//!    and `qemu-arm-static -cpu arm1176` (a Pi Zero's ARMv6: an ARMv7 instruction dies there
//!    with SIGILL); it must name the version, the target's architecture and the board.
//! 3. Every tarball unpacks, its SHA256SUMS match, its default config passes `check-config`, and
//!    the x86_64 one's install.sh installs into a temporary root (making a network key, as on a
//!    deployment's first box).
//! 4. `systemd-analyze verify` of each unit, with ExecStart pointed at the installed binary.
//! 5. The init script under `busybox sh` with BusyBox's start-stop-daemon: start, /api/status
//!    answers naming the board, reload (SIGHUP applies a new log level), stop. The daemon runs mdns-sd, which must never run in the machine's own
//!    network namespace: all of this runs inside `unshare --net` with only loopback up.
//! 6. The amd64 .deb installs with `dpkg --root` into a temporary root (maintainer scripts run
//!    outside a chroot with DPKG_ROOT set, so they touch nothing) and its `shoal version` runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::dist::{self, Bundle};
use crate::toolchain::debian_tool;

/// The aarch64 binary's ceiling (DESIGN.md §11).
const AARCH64_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// The POSIX shell scripts of the bundles and the .deb: they run under BusyBox ash or dash.
const SHIPPED_SCRIPTS: [&str; 5] = [
    "packaging/init.d/shoal",
    "packaging/install.sh",
    "packaging/deb/postinst",
    "packaging/deb/prerm",
    "packaging/deb/postrm",
];

/// Boards built and checked: the mini PC first (its binary runs here), then the 64-bit and the
/// ARMv6 Pi, run under qemu-user with their profile's `qemu_cpu`.
const BOARDS: [&str; 3] = ["minipc-x86_64", "rpi4", "rpi-zero-w"];

/// Times each step and prints the table at the end, also on failure.
struct Steps {
    done: Vec<(String, Duration, bool)>,
    start: Instant,
}

impl Steps {
    fn step<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
        println!("\n==> dist-check: {name}");
        let start = Instant::now();
        let result = f();
        self.done.push((name.to_owned(), start.elapsed(), result.is_ok()));
        result.map_err(|e| format!("{name}: {e}"))
    }

    fn report(&self) {
        println!("\n==> dist-check timings");
        for (name, took, ok) in &self.done {
            println!("    {:>7.1} s  {}  {name}", took.as_secs_f64(), if *ok { "ok  " } else { "FAIL" });
        }
        println!("    {:>7.1} s  total", self.start.elapsed().as_secs_f64());
    }
}

/// What `dist-check` was asked to do.
pub(crate) struct Options {
    /// Boards to build and check besides minipc-x86_64 (whose binary the later steps run);
    /// empty: all of [`BOARDS`].
    pub(crate) boards: Vec<String>,
    /// Also `dpkg -i` the amd64 .deb into this machine for real (root only), then purge it.
    pub(crate) system_dpkg: bool,
}

impl Options {
    pub(crate) fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options { boards: Vec::new(), system_dpkg: false };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--board" => options.boards.push(args.next().ok_or("--board needs a name")?.clone()),
                "--system-dpkg" => options.system_dpkg = true,
                other => return Err(format!("dist-check: unknown option `{other}`")),
            }
        }
        Ok(options)
    }

    pub(crate) fn boards(&self) -> Vec<String> {
        let mut boards = vec![BOARDS[0].to_owned()];
        let wanted: Vec<String> = if self.boards.is_empty() {
            BOARDS.iter().map(|b| b.to_string()).collect()
        } else {
            self.boards.clone()
        };
        for board in wanted {
            if !boards.contains(&board) {
                boards.push(board);
            }
        }
        boards
    }
}

/// Builds and checks the bundles; returns them (for `mixed-swarm`).
pub(crate) fn dist_check(root: &Path, options: &Options) -> Result<Vec<Bundle>, String> {
    let mut steps = Steps { done: Vec::new(), start: Instant::now() };
    let result = check(root, options, &mut steps);
    steps.report();
    result
}

fn check(root: &Path, options: &Options, steps: &mut Steps) -> Result<Vec<Bundle>, String> {
    steps.step("tools", || {
        for (program, package) in [
            ("dpkg-deb", "dpkg"),
            ("tar", "tar"),
            ("sha256sum", "coreutils"),
            ("unshare", "util-linux"),
            ("ip", "iproute2"),
            ("busybox", "busybox"),
            ("systemd-analyze", "systemd"),
            ("qemu-aarch64-static", "qemu-user-static"),
            ("shellcheck", "shellcheck"),
        ] {
            debian_tool(program, package)?;
        }
        Ok(())
    })?;
    steps.step("shellcheck of the shell scripts that ship", || {
        let mut command = Command::new("shellcheck");
        command.args(["--shell=sh"]).args(SHIPPED_SCRIPTS).current_dir(root);
        output(&mut command).map(|_| println!("    no findings"))
    })?;
    let scratch = root.join("target/dist-check");
    if scratch.exists() {
        fs::remove_dir_all(&scratch).map_err(|e| format!("clearing {}: {e}", scratch.display()))?;
    }
    let mut bundles = Vec::new();
    for board in options.boards() {
        let board = board.as_str();
        let bundle = steps.step(&format!("dist --board {board}"), || dist::dist(root, board))?;
        steps.step(&format!("{board}: size and `shoal version`"), || check_binary(&bundle))?;
        bundles.push(bundle);
    }
    let x86 = &bundles[0];
    let x86_root = scratch.join(&x86.board.name).join("root");
    let x86_shoal = x86_root.join("usr/bin/shoal");
    let mut unpacked = Vec::new();
    for (i, bundle) in bundles.iter().enumerate() {
        let name = &bundle.board.name;
        let what = if i == 0 { "install.sh --root" } else { "sh -n install.sh" };
        unpacked.push(steps.step(&format!("{name}: unpack, SHA256SUMS, check-config, {what}"), || {
            install_bundle(&bundle.tarball, &scratch.join(name), (i > 0).then_some(x86_shoal.as_path()))
        })?);
    }
    for (bundle, dir) in bundles.iter().zip(&unpacked) {
        steps.step(&format!("{}: systemd-analyze verify shoal.service", bundle.board.name), || {
            verify_unit(&x86_root, &dir.join("shoal.service"))
        })?;
    }
    steps.step("init.d/shoal under busybox sh, in a network namespace", || init_script(&x86_root))?;
    steps.step("dpkg -i of the amd64 .deb into a temporary root, then `shoal version`", || {
        deb_install(&x86.deb, &scratch.join("dpkg"), &x86.version)
    })?;
    if options.system_dpkg {
        steps.step("dpkg -i of the amd64 .deb into this system, `shoal version`, dpkg --purge", || {
            system_deb_install(&x86.deb, &x86.version)
        })?;
    }
    Ok(bundles)
}

/// Output of a command that must succeed.
fn output(command: &mut Command) -> Result<String, String> {
    let shown = format!("{command:?}");
    println!("    $ {shown}");
    let out = command.output().map_err(|e| format!("could not run {shown}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{shown} failed ({}):\n{text}", out.status))
    }
}

fn check_binary(bundle: &Bundle) -> Result<(), String> {
    let size = fs::metadata(&bundle.binary).map_err(|e| format!("{}: {e}", bundle.binary.display()))?.len();
    println!(
        "    {} stripped binary: {size} bytes ({:.2} MiB)",
        bundle.board.target,
        size as f64 / 1048576.0
    );
    if bundle.board.arch() == "aarch64" && size > AARCH64_MAX_BYTES {
        return Err(format!("the aarch64 binary is {size} bytes, over the {AARCH64_MAX_BYTES}-byte ceiling"));
    }
    let mut command = match bundle.board.qemu() {
        Some(qemu) => {
            debian_tool(qemu, "qemu-user-static")?;
            let mut c = Command::new(qemu);
            if let Some(cpu) = &bundle.board.qemu_cpu {
                c.args(["-cpu", cpu]);
            }
            c.arg(&bundle.binary);
            c
        }
        None => Command::new(&bundle.binary),
    };
    let text = output(command.arg("version"))?;
    println!("    {}", text.trim());
    check_version_line(&text, &bundle.version, bundle.board.arch(), &bundle.board.name)
}

/// `shoal version` names the version, the target (at least its architecture) and the board.
fn check_version_line(text: &str, version: &str, arch: &str, board: &str) -> Result<(), String> {
    let line = text.trim();
    let has_target = line.contains(&format!("target {arch}-")) || line.contains(&format!("target {arch} "));
    if line.starts_with(&format!("shoal {version} "))
        && has_target
        && line.contains(&format!("board {board})"))
    {
        Ok(())
    } else {
        Err(format!(
            "`shoal version` printed `{line}`: expected version {version}, target {arch}-…, board {board}"
        ))
    }
}

/// Unpacks `tarball` into `dir`, checks SHA256SUMS and the default config. Without a `checker`
/// (a shoal that runs here) the bundle's own binary is one: then its install.sh installs it into
/// `dir/root`. Returns the unpacked bundle directory.
fn install_bundle(tarball: &Path, dir: &Path, checker: Option<&Path>) -> Result<PathBuf, String> {
    fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    output(Command::new("tar").arg("-xzf").arg(tarball).arg("-C").arg(dir))?;
    let name =
        tarball.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".tar.gz")).unwrap_or("");
    let unpacked = dir.join(name);
    println!(
        "{}",
        output(Command::new("sha256sum").arg("-c").arg("SHA256SUMS").current_dir(&unpacked))?.trim_end()
    );
    let checker = match checker {
        None => {
            let root = dir.join("root");
            let text = output(
                Command::new("sh").arg("./install.sh").arg("--root").arg(&root).current_dir(&unpacked),
            )?;
            println!("{}", text.trim_end());
            root.join("usr/bin/shoal")
        }
        Some(checker) => {
            // A foreign binary cannot run here to make a key: install.sh itself ran with the
            // x86_64 bundle; here it only has to parse.
            output(Command::new("sh").arg("-n").arg(unpacked.join("install.sh")))?;
            checker.to_path_buf()
        }
    };
    // The bundle's default config is valid (every build knows every board profile).
    let checked =
        output(Command::new(&checker).arg("check-config").arg("--config").arg(unpacked.join("shoal.toml")))?;
    println!("    {}", checked.lines().next().unwrap_or_default());
    Ok(unpacked)
}

/// `systemd-analyze verify` of `unit`, with ExecStart pointed at the binary install.sh put in
/// `root` (verify wants the program to exist; `--root` would also want a whole systemd tree
/// there). It exits 0 even on unknown keys or bad values, so any output at all is a finding.
fn verify_unit(root: &Path, unit: &Path) -> Result<(), String> {
    let root = root.canonicalize().map_err(|e| format!("{}: {e}", root.display()))?;
    let text = fs::read_to_string(unit).map_err(|e| format!("reading {}: {e}", unit.display()))?;
    let binary = root.join("usr/bin/shoal");
    if !text.contains("ExecStart=/usr/bin/shoal ") {
        return Err(format!("{}: ExecStart does not run /usr/bin/shoal", unit.display()));
    }
    let text = text.replace("ExecStart=/usr/bin/shoal ", &format!("ExecStart={} ", binary.display()));
    let dir = root.join("verify");
    fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let copy = dir.join("shoal.service");
    fs::write(&copy, text).map_err(|e| format!("writing {}: {e}", copy.display()))?;
    let findings = output(
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&copy)
            .env("SYSTEMD_LOG_LEVEL", "notice"),
    )?;
    if findings.trim().is_empty() {
        println!("    shoal.service: no findings");
        // For the record: systemd's own exposure score of the sandboxing (0 best, 10 worst).
        let security =
            Command::new("systemd-analyze").args(["security", "--offline=true"]).arg(&copy).output();
        if let Some(line) = security.ok().and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| l.contains("Overall exposure"))
                .map(str::to_owned)
        }) {
            println!("    {}", line.trim_start_matches(|c: char| !c.is_ascii_alphanumeric()));
        }
        Ok(())
    } else {
        Err(format!("systemd-analyze verify:\n{}", findings.trim_end()))
    }
}

/// The init script under BusyBox, against the installed x86_64 binary in `root`.
fn init_script(root: &Path) -> Result<(), String> {
    let root = root.canonicalize().map_err(|e| format!("{}: {e}", root.display()))?;
    // BusyBox applets first on PATH, so start-stop-daemon and friends are BusyBox's.
    let applets = root.join("busybox-bin");
    fs::create_dir_all(&applets).map_err(|e| format!("creating {}: {e}", applets.display()))?;
    let busybox = which("busybox").ok_or("busybox is missing (apt-get install busybox)")?;
    for applet in [
        "start-stop-daemon",
        "sh",
        "kill",
        "sleep",
        "cat",
        "rm",
        "mkdir",
        "dirname",
        "wget",
        "ip",
        "grep",
        "timeout",
    ] {
        let link = applets.join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink(&busybox, &link).map_err(|e| format!("linking {applet}: {e}"))?;
        }
    }
    // 127.0.0.1 only, discovery on lo only, everything in the temporary root.
    // HTTP on 127.0.0.1 only, discovery on lo only, state and key in the temporary root, the
    // test card as the one channel (no origin to reach). The installed default config itself
    // passed `shoal check-config` right after install.sh.
    let config = format!(
        "board = \"minipc-x86_64\"\nstate_dir = \"{root}/var/lib/shoal\"\n\
         network_key_file = \"{root}/etc/shoal/network.key\"\n\n\
         [net]\nhttp_bind = \"127.0.0.1\"\ninterfaces = [\"lo\"]\n\n\
         [[channel]]\nid = \"testcard\"\nname = \"Test card\"\nsource = \"builtin:testcard\"\n",
        root = root.display()
    );
    let test_config = root.join("etc/shoal/test.toml");
    fs::write(&test_config, config).map_err(|e| format!("writing {}: {e}", test_config.display()))?;
    let driver = root.join("init-test.sh");
    fs::write(&driver, INIT_DRIVER).map_err(|e| format!("writing {}: {e}", driver.display()))?;
    let path = format!("{}:{}", applets.display(), std::env::var("PATH").unwrap_or_default());
    let pidfile = root.join("run/shoal.pid");
    let result = output(
        Command::new("timeout")
            .args(["-k", "5", "60", "unshare", "--net", "--"])
            .arg(&busybox)
            .arg("sh")
            .arg(&driver)
            .env("PATH", path)
            .env("INIT", root.join("etc/init.d/shoal"))
            .env("SHOAL_BIN", root.join("usr/bin/shoal"))
            .env("SHOAL_CONFIG", &test_config)
            .env("SHOAL_PIDFILE", &pidfile)
            .env("SHOAL_LOGFILE", root.join("var/log/shoal.log")),
    );
    // Whatever happened, no daemon outlives the check: stop it by its pid.
    if let Ok(pid) = fs::read_to_string(&pidfile) {
        let _ = Command::new("kill").arg("-KILL").arg(pid.trim()).status();
    }
    let text = result.map_err(|e| {
        let log = fs::read_to_string(root.join("var/log/shoal.log")).unwrap_or_default();
        format!("{e}\n--- daemon log ---\n{log}")
    })?;
    println!("{}", text.trim_end());
    Ok(())
}

/// Runs inside the fresh network namespace, under busybox sh.
const INIT_DRIVER: &str = r#"set -eu
ip link set lo up
ip link set lo multicast on
# BusyBox 1.35's wget crashes with -T: bound it with timeout instead.
status() { timeout 3 wget -q -O - http://127.0.0.1:7471/api/status; }
"$INIT" start
i=0
until status >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -ge 20 ]; then echo "no /api/status after 10 s" >&2; "$INIT" stop; exit 1; fi
    sleep 0.5
done
status | grep '"board": *"minipc-x86_64"' || { echo "/api/status names another board" >&2; "$INIT" stop; exit 1; }
echo "/api/status answered after $i polls"
"$INIT" status
# reload: the daemon re-reads the config and applies a new log level at once.
printf '\n[log]\nlevel = "debug"\n' >> "$SHOAL_CONFIG"
"$INIT" reload
sleep 0.5
grep -i 'log level now debug' "$SHOAL_LOGFILE" || { echo "SIGHUP did not reload" >&2; "$INIT" stop; exit 1; }
"$INIT" status
"$INIT" stop
if "$INIT" status; then echo "still running after stop" >&2; exit 1; fi
echo "init script: start, status, reload, stop all work"
"#;

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}

/// `dpkg -i` into a temporary root: an admin dir of its own, scripts run with DPKG_ROOT set.
fn deb_install(deb: &Path, dir: &Path, version: &str) -> Result<(), String> {
    let admin = dir.join("var/lib/dpkg");
    for sub in ["info", "updates", "triggers"] {
        fs::create_dir_all(admin.join(sub)).map_err(|e| format!("creating {}: {e}", admin.display()))?;
    }
    fs::write(admin.join("status"), "").map_err(|e| format!("dpkg status: {e}"))?;
    println!("{}", output(Command::new("dpkg-deb").arg("--info").arg(deb))?.trim_end());
    println!("{}", output(Command::new("dpkg-deb").arg("--contents").arg(deb))?.trim_end());
    let root = format!("--root={}", dir.display());
    let force = "--force-script-chrootless,not-root";
    println!("{}", output(Command::new("dpkg").args([&root, force, "-i"]).arg(deb))?.trim_end());
    let listed = output(Command::new("dpkg").args([&root, "-s", "shoal"]))?;
    if !listed.contains("Status: install ok installed") {
        return Err(format!("dpkg does not list shoal as installed:\n{listed}"));
    }
    let text = output(Command::new(dir.join("usr/bin/shoal")).arg("version"))?;
    println!("    {}", text.trim());
    if !text.starts_with(&format!("shoal {version} ")) {
        return Err(format!("the installed shoal printed `{}`", text.trim()));
    }
    output(Command::new("dpkg").args([&root, force, "--purge", "shoal"]))?;
    Ok(())
}

/// `dpkg -i` for real (DESIGN.md §9's evidence), then `--purge`. Refuses to replace a shoal
/// package that is already installed. Without a running systemd the postinst enables nothing.
fn system_deb_install(deb: &Path, version: &str) -> Result<(), String> {
    if Command::new("dpkg").args(["-s", "shoal"]).output().is_ok_and(|o| o.status.success()) {
        return Err("a shoal package is already installed here: not touching it".into());
    }
    println!("{}", output(Command::new("dpkg").arg("-i").arg(deb))?.trim_end());
    let result = output(Command::new("/usr/bin/shoal").arg("version"));
    let purged = output(Command::new("dpkg").args(["--purge", "shoal"]));
    let text = result?;
    println!("    {}", text.trim());
    purged?;
    if text.starts_with(&format!("shoal {version} ")) {
        Ok(())
    } else {
        Err(format!("the installed shoal printed `{}`", text.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_lines_today_and_with_the_full_triple() {
        let today = "shoal 0.1.0 (protocol 3, target aarch64-linux, board rpi4)";
        assert!(check_version_line(today, "0.1.0", "aarch64", "rpi4").is_ok());
        let planned = "shoal 0.1.0 (target arm-unknown-linux-musleabihf, board rpi-zero-w)";
        assert!(check_version_line(planned, "0.1.0", "arm", "rpi-zero-w").is_ok());
        assert!(check_version_line(planned, "0.1.0", "arm", "rpi4").is_err());
        assert!(check_version_line(today, "0.1.0", "arm", "rpi4").is_err());
        assert!(check_version_line("shoal 0.1.0 (target x86_64-linux, board none)", "0.1.0", "x86_64", "x")
            .is_err());
    }
}
