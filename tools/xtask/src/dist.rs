//! `cargo xtask dist --board <name>`: a board's release bundle and .deb.
//!
//! Builds a stripped, static musl `shoal` for the board's target with `SHOAL_BOARD=<name>`
//! (which `shoal version` prints), then writes
//! - `dist/shoal-<version>-<board>.tar.gz`: `shoal-<version>-<board>/` with the binary, the
//!   board's default `shoal.toml`, `shoal.service`, `init.d/shoal`, `install.sh`, `README.md`
//!   and `SHA256SUMS` of all of them;
//! - `dist/shoal_<version>_<deb_arch>.deb`: /usr/bin/shoal, /etc/shoal/shoal.toml (a conffile),
//!   /lib/systemd/system/shoal.service and the maintainer scripts of packaging/deb.
//!
//! Builds go to `target/dist-build`, apart from the target dir `cargo test` uses, so a bundle
//! build neither waits for nor invalidates a concurrent test build.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::board::{Board, Recipe};
use crate::{elf, toolchain};

/// What one `dist` run produced.
pub(crate) struct Bundle {
    pub(crate) board: Board,
    pub(crate) version: String,
    /// The stripped binary (as built, under target/dist-build).
    pub(crate) binary: PathBuf,
    pub(crate) tarball: PathBuf,
    pub(crate) deb: PathBuf,
}

/// Builds the bundle and .deb of board `name`.
pub(crate) fn dist(root: &Path, name: &str) -> Result<Bundle, String> {
    let board = Board::load(root, name)?;
    let version = workspace_version(root)?;
    println!(
        "\n==> dist {} {version}: {} ({:?}), deb {}",
        board.name,
        board.target,
        board.recipe(),
        board.deb_arch
    );
    let binary = build(root, &board)?;
    let info = elf::inspect(&binary)?;
    info.check_release(board.arch())?;
    println!("==> {}: {} bytes, static, stripped", binary.display(), info.size);

    let out = root.join("dist");
    fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let stage = root.join("target/dist-stage").join(&board.name);
    if stage.exists() {
        fs::remove_dir_all(&stage).map_err(|e| format!("clearing {}: {e}", stage.display()))?;
    }
    let files = Files::read(root, &board, &version)?;
    let tarball = tarball(root, &stage, &out, &board, &version, &binary, &files)?;
    let deb = deb(&stage, &out, &board, &version, &binary, &files)?;
    println!("==> wrote {}\n==> wrote {}", tarball.display(), deb.display());
    Ok(Bundle { board, version, binary, tarball, deb })
}

/// `[workspace.package] version` of the root Cargo.toml.
pub(crate) fn workspace_version(root: &Path) -> Result<String, String> {
    let path = root.join("Cargo.toml");
    let text = fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let table: toml::Table = text.parse().map_err(|e| format!("{}: {e}", path.display()))?;
    table
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("version"))
        .and_then(toml::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("{}: no [workspace.package] version", path.display()))
}

/// Builds `shoal` for the board; returns the binary's path.
fn build(root: &Path, board: &Board) -> Result<PathBuf, String> {
    let recipe = board.recipe();
    let extra_path = toolchain::for_recipe(root, recipe, &board.target)?;
    let target_dir = root.join("target/dist-build");
    let mut command = Command::new("cargo");
    if recipe == Recipe::NightlyBuildStd {
        command.arg("+nightly");
    }
    command.arg(if recipe == Recipe::Cargo { "build" } else { "zigbuild" });
    command.args(["--release", "--locked", "-p", "shoal", "--bin", "shoal", "--target", &board.target]);
    if recipe == Recipe::NightlyBuildStd {
        // No rust-std to download for these targets: build std itself. zig links against its
        // own musl, so rustc must not add the self-contained CRT objects as well.
        command.arg("-Zbuild-std=std,panic_abort");
        command.env("RUSTFLAGS", "-C link-self-contained=no");
    } else {
        command.env_remove("RUSTFLAGS");
    }
    if recipe == Recipe::Cargo {
        // cc-rs looks for `<arch>-linux-musl-gcc`; Debian's musl-tools calls it musl-gcc.
        command.env(format!("CC_{}", board.target.replace('-', "_")), "musl-gcc");
    }
    command.env_remove("CARGO_ENCODED_RUSTFLAGS");
    command.env("CARGO_TARGET_DIR", &target_dir).env("SHOAL_BOARD", &board.name).current_dir(root);
    if !extra_path.is_empty() {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let joined = std::env::join_paths(extra_path.iter().cloned().chain(std::env::split_paths(&path)))
            .map_err(|e| format!("PATH: {e}"))?;
        command.env("PATH", joined);
    }
    let shown: Vec<String> = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    let flags = match recipe {
        Recipe::NightlyBuildStd => "RUSTFLAGS='-C link-self-contained=no' ".to_owned(),
        Recipe::Cargo => format!("CC_{}=musl-gcc ", board.target.replace('-', "_")),
        Recipe::Zigbuild => String::new(),
    };
    println!("==> SHOAL_BOARD={} {flags}cargo {}", board.name, shown.join(" "));
    let status = command.status().map_err(|e| format!("could not start cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building shoal for {} failed ({status})", board.target));
    }
    Ok(target_dir.join(&board.target).join("release/shoal"))
}

/// The text files of a bundle, made for one board.
struct Files {
    config: String,
    service: String,
    init: String,
    install: String,
    readme: String,
    postinst: String,
    prerm: String,
    postrm: String,
    control: String,
}

impl Files {
    fn read(root: &Path, board: &Board, version: &str) -> Result<Files, String> {
        let read = |rel: &str| {
            let path = root.join(rel);
            fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))
        };
        Ok(Files {
            config: board_config(&read("firmware/node/shoal.example.toml")?, &board.name)?,
            service: board_unit(&read("packaging/shoal.service")?, board.gpio)?,
            init: read("packaging/init.d/shoal")?,
            install: read("packaging/install.sh")?,
            readme: bundle_readme(board, version),
            postinst: read("packaging/deb/postinst")?,
            prerm: read("packaging/deb/prerm")?,
            postrm: read("packaging/deb/postrm")?,
            control: read("packaging/deb/control.in")?,
        })
    }
}

/// The example config with `board = "<name>"`.
pub(crate) fn board_config(example: &str, board: &str) -> Result<String, String> {
    let mut replaced = false;
    let mut out = String::with_capacity(example.len());
    for line in example.lines() {
        if !replaced && line.trim_start().starts_with("board =") {
            let _ = writeln!(out, "board = \"{board}\"");
            replaced = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    replaced.then_some(out).ok_or_else(|| "firmware/node/shoal.example.toml has no `board = ` line".into())
}

/// The unit with the GPIO group for boards that have GPIO. (A `SupplementaryGroups=` naming a
/// group the system lacks stops the service from starting, so boards without GPIO leave it out.)
fn board_unit(template: &str, gpio: bool) -> Result<String, String> {
    const MARKER: &str = "# @GPIO_GROUP@";
    if !template.contains(MARKER) {
        return Err(format!("packaging/shoal.service has no `{MARKER}` line"));
    }
    let line = if gpio {
        "# The GPIO character devices belong to group gpio (Raspberry Pi OS, most board images).\nSupplementaryGroups=gpio"
    } else {
        "# This board has no GPIO: no gpio group."
    };
    Ok(template.replace(MARKER, line))
}

fn bundle_readme(board: &Board, version: &str) -> String {
    format!(
        "Shoal {version} for the {name} board ({target}, static musl binary)\n\n\
         Install on the box, as root:\n\n\
         \x20   ./install.sh                    # the deployment's first box: makes the network key\n\
         \x20   ./install.sh --key network.key  # every other box: the first box's /etc/shoal/network.key\n\n\
         With systemd it installs and starts shoal.service; without, /etc/init.d/shoal (BusyBox).\n\
         Settings: /etc/shoal/shoal.toml. Check the box: `shoal status`, or http://<box>:7471/.\n",
        name = board.name,
        target = board.target
    )
}

/// One file of a bundle or package: relative path, contents, mode.
struct Entry<'a> {
    path: &'a str,
    data: Vec<u8>,
    mode: u32,
}

fn write_entries(dir: &Path, entries: &[Entry<'_>]) -> Result<(), String> {
    for entry in entries {
        let path = dir.join(entry.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        fs::write(&path, &entry.data).map_err(|e| format!("writing {}: {e}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(entry.mode))
            .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    }
    Ok(())
}

fn tarball(
    root: &Path,
    stage: &Path,
    out: &Path,
    board: &Board,
    version: &str,
    binary: &Path,
    files: &Files,
) -> Result<PathBuf, String> {
    let name = format!("shoal-{version}-{}", board.name);
    let dir = stage.join(&name);
    let binary = fs::read(binary).map_err(|e| format!("reading {}: {e}", binary.display()))?;
    let mut entries = vec![
        Entry { path: "shoal", data: binary, mode: 0o755 },
        Entry { path: "shoal.toml", data: files.config.clone().into(), mode: 0o644 },
        Entry { path: "shoal.service", data: files.service.clone().into(), mode: 0o644 },
        Entry { path: "init.d/shoal", data: files.init.clone().into(), mode: 0o755 },
        Entry { path: "install.sh", data: files.install.clone().into(), mode: 0o755 },
        Entry { path: "README.md", data: files.readme.clone().into(), mode: 0o644 },
    ];
    entries.sort_by(|a, b| a.path.cmp(b.path));
    let mut sums = String::new();
    for entry in &entries {
        let _ = writeln!(sums, "{:x}  {}", Sha256::digest(&entry.data), entry.path);
    }
    entries.push(Entry { path: "SHA256SUMS", data: sums.into(), mode: 0o644 });
    write_entries(&dir, &entries)?;
    let tarball = out.join(format!("{name}.tar.gz"));
    // Reproducible: sorted, owned by root, every mtime the last commit's time.
    let mtime = format!("--mtime=@{}", source_date_epoch(root));
    let tarball_text = tarball.to_string_lossy();
    let stage_text = stage.to_string_lossy();
    crate::run(
        root,
        "tar",
        &[
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            &mtime,
            "-czf",
            &tarball_text,
            "-C",
            &stage_text,
            &name,
        ],
    )?;
    Ok(tarball)
}

/// SOURCE_DATE_EPOCH, else the last commit's time, else 0.
fn source_date_epoch(root: &Path) -> u64 {
    if let Some(epoch) = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.parse().ok()) {
        return epoch;
    }
    Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(root)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn deb(
    stage: &Path,
    out: &Path,
    board: &Board,
    version: &str,
    binary: &Path,
    files: &Files,
) -> Result<PathBuf, String> {
    let dir = stage.join("deb");
    let binary = fs::read(binary).map_err(|e| format!("reading {}: {e}", binary.display()))?;
    let payload = [
        Entry { path: "usr/bin/shoal", data: binary, mode: 0o755 },
        Entry { path: "etc/shoal/shoal.toml", data: files.config.clone().into(), mode: 0o644 },
        Entry { path: "lib/systemd/system/shoal.service", data: files.service.clone().into(), mode: 0o644 },
        Entry { path: "usr/share/doc/shoal/README.md", data: files.readme.clone().into(), mode: 0o644 },
    ];
    let installed_kib = payload.iter().map(|e| e.data.len().div_ceil(1024)).sum::<usize>();
    let control = files
        .control
        .replace("@VERSION@", version)
        .replace("@ARCH@", &board.deb_arch)
        .replace("@BOARD@", &board.name)
        .replace("@INSTALLED_SIZE@", &installed_kib.to_string());
    let meta = [
        Entry { path: "DEBIAN/control", data: control.into(), mode: 0o644 },
        Entry { path: "DEBIAN/conffiles", data: b"/etc/shoal/shoal.toml\n".to_vec(), mode: 0o644 },
        Entry { path: "DEBIAN/postinst", data: files.postinst.clone().into(), mode: 0o755 },
        Entry { path: "DEBIAN/prerm", data: files.prerm.clone().into(), mode: 0o755 },
        Entry { path: "DEBIAN/postrm", data: files.postrm.clone().into(), mode: 0o755 },
    ];
    write_entries(&dir, &payload)?;
    write_entries(&dir, &meta)?;
    // dpkg-deb insists on 0755 directories, whatever the umask made.
    set_dir_modes(&dir)?;
    let deb = out.join(format!("shoal_{version}_{}.deb", board.deb_arch));
    let (dir_text, deb_text) = (dir.to_string_lossy(), deb.to_string_lossy());
    crate::run(stage, "dpkg-deb", &["--build", "--root-owner-group", &dir_text, &deb_text])?;
    Ok(deb)
}

fn set_dir_modes(dir: &Path) -> Result<(), String> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
    for entry in fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.is_dir() {
            set_dir_modes(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_the_board() {
        let config =
            board_config("# x\nboard = \"generic\"\nboard_like = 1\n", "rpi4").expect("has a board line");
        assert_eq!(config, "# x\nboard = \"rpi4\"\nboard_like = 1\n");
        assert!(board_config("[net]\n", "rpi4").is_err());
    }

    #[test]
    fn unit_has_the_gpio_group_only_with_gpio() {
        let template = "[Service]\n# @GPIO_GROUP@\n";
        assert!(board_unit(template, true).expect("marker").contains("\nSupplementaryGroups=gpio"));
        assert!(!board_unit(template, false).expect("marker").contains("SupplementaryGroups"));
    }
}
