//! The `shoal` command line, run as a user would. None of these start a box (and so none starts
//! mDNS outside a namespace): they stop at the key or config checks, or ask a box that is not
//! there. `tests/status.rs` runs `shoal status` against boxes that are.

use std::process::Command;

mod common;
use common::scratch;

fn shoal(args: &[&str]) -> std::process::Output {
    Command::new(common::boxes::shoal()).args(args).output().expect("shoal runs")
}

#[test]
fn run_without_a_key_refuses_and_says_how_to_make_one() {
    let dir = scratch("nokey");
    let config = dir.join("shoal.toml");
    std::fs::write(
        &config,
        format!("state_dir = \"{0}/state\"\nnetwork_key_file = \"{0}/missing.key\"\n", dir.display()),
    )
    .expect("write");
    let out = shoal(&["run", "--config", config.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("shoal keygen --out"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn check_config_names_the_field_and_line() {
    let dir = scratch("check");
    let config = dir.join("shoal.toml");
    std::fs::write(&config, "board = \"rpi4\"\n[net]\nupload_mbit = 0\n").expect("write");
    let out = shoal(&["check-config", "--config", config.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("config line 3: net.upload_mbit must be between 1 and 100000"), "{stderr}");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/shoal.example.toml");
    assert!(shoal(&["check-config", "--config", example]).status.success());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn keygen_and_help() {
    let dir = scratch("keygen");
    let key = dir.join("net.key");
    let key = key.to_str().expect("utf-8");
    assert!(shoal(&["keygen", "--out", key]).status.success());
    let again = shoal(&["keygen", "--out", key]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let help = String::from_utf8_lossy(&shoal(&["--help"]).stdout).into_owned();
    for command in ["run", "keygen", "check-config", "version"] {
        assert!(help.contains(command), "{help}");
    }
    let bad = shoal(&["frobnicate"]);
    assert_eq!(bad.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn version_names_the_target_and_board_without_a_config() {
    // From a directory with no config, and none at /etc/shoal either on a build machine.
    let version = String::from_utf8_lossy(&shoal(&["version"]).stdout).into_owned();
    // A plain build says generic; a bundle's build (SHOAL_BOARD set) names its board.
    let board = option_env!("SHOAL_BOARD").unwrap_or("generic");
    let target = shoal::board::BUILD_TARGET;
    assert!(target.starts_with(std::env::consts::ARCH) && target.contains("-linux-"), "{target}");
    let expected = format!("shoal {} (protocol ", env!("CARGO_PKG_VERSION"));
    assert!(version.starts_with(&expected), "{version}");
    assert!(version.ends_with(&format!(", target {target}, board {board})\n")), "{version}");
    assert_eq!(String::from_utf8_lossy(&shoal(&["--version"]).stdout), version);
}

#[test]
fn the_board_comes_from_the_command_line_or_the_config() {
    let dir = scratch("board");
    let config = dir.join("shoal.toml");
    std::fs::write(&config, "board = \"rpi4\"\n[store]\nring_len = 10\n").expect("write");
    let config = config.to_str().expect("utf-8");
    let out = shoal(&["check-config", "--config", config, "--board", "rpi-zero-w"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for setting in ["board: \"rpi-zero-w\"", "store_budget_mb: 32,", "ring_len: 10,", "line: 17,"] {
        assert!(stdout.contains(setting), "{setting}: {stdout}");
    }
    let out = shoal(&["check-config", "--config", config]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("store_budget_mb: 256,"), "{out:?}");
    let out = shoal(&["run", "--config", config, "--board", "rpi9"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("shoal: --board: board `rpi9` is unknown; known boards: generic, "),
        "{stderr}"
    );
    std::fs::write(dir.join("shoal.toml"), "\nboard = \"pi4\"\n").expect("write");
    let out = shoal(&["check-config", "--config", config]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("shoal check-config: config line 2: board `pi4` is unknown; known boards: "),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn status_of_a_box_that_is_not_there_says_why_and_exits_1() {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let out = shoal(&["status", "--url", "http://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("shoal status: cannot reach http://127.0.0.1:1: "), "{stderr}");
    assert!(stderr.to_lowercase().contains("refused"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {out:?}");
}

#[test]
fn status_with_a_bad_url_prints_its_usage_and_exits_2() {
    for url in ["ftp://box", "http://", "box:99999", "http://user@box/"] {
        let out = shoal(&["status", "--url", url]);
        assert_eq!(out.status.code(), Some(2), "{url}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("shoal: --url: "), "{url}: {stderr}");
        assert!(stderr.contains("usage: shoal status [--url URL]"), "{url}: {stderr}");
    }
    let help = String::from_utf8_lossy(&shoal(&["help", "status"]).stdout).into_owned();
    assert!(help.contains("default http://127.0.0.1:7471"), "{help}");
    let help = String::from_utf8_lossy(&shoal(&["help"]).stdout).into_owned();
    assert!(help.contains("\n  status "), "{help}");
}
