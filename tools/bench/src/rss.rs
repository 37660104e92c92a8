//! Memory of real `shoal` processes: an idle box, and a box relaying four channels.
//!
//! `cargo build --release -p shoal && cargo run --profile bench -p shoal-bench --bin rss -- target/release/shoal`
//!
//! Runs boxes in network namespaces (needs root), reads `VmRSS` from `/proc/<pid>/status`.
//! DESIGN.md §11 floors: idle ≤ 12 MiB; RSS ≤ store budget + 16 MiB.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use shoal_testbed::{skip_reason, Bed};

fn main() -> ExitCode {
    let Some(binary) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: rss <path to a release shoal binary>");
        return ExitCode::from(2);
    };
    if let Some(reason) = skip_reason() {
        eprintln!("rss: cannot run: {reason}");
        return ExitCode::FAILURE;
    }
    let binary = binary.canonicalize().unwrap_or(binary);
    println!("command: cargo run --profile bench -p shoal-bench --bin rss -- {}", binary.display());
    match run(&binary) {
        Ok(ok) => {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("rss: {e}");
            ExitCode::FAILURE
        }
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn config(dir: &Path, i: usize, channels: usize, budget_mb: u32) -> String {
    let mut text = format!(
        "state_dir = \"{d}/state{i}\"\nnetwork_key_file = \"{d}/net.key\"\n[net]\ninterfaces = [\"eth0\"]\n[store]\nbudget_mb = {budget_mb}\n",
        d = dir.display()
    );
    for c in 0..channels {
        text.push_str(&format!(
            "[[channel]]\nid = \"ch{c}\"\nsource = \"test://pattern?bitrate=4000000&duration=2\"\nalways_on = true\n"
        ));
    }
    text
}

fn run(binary: &Path) -> Result<bool, String> {
    let dir = std::env::temp_dir().join(format!("shoal-rss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let status = std::process::Command::new(binary)
        .args(["keygen", "--out"])
        .arg(dir.join("net.key"))
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("keygen failed".into());
    }
    let mut ok = true;

    // An idle box: alone, no channels.
    let mut bed = Bed::new(1).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("idle.toml"), config(&dir, 0, 0, 64)).map_err(|e| e.to_string())?;
    let idle_config = dir.join("idle.toml").to_string_lossy().into_owned();
    let p = bed
        .spawn(0, binary, &["run", "--config", &idle_config], &[], &dir.join("idle.log"))
        .map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_secs(5));
    let idle = bed.pid(p).ok().and_then(rss_kib).ok_or("idle box not running")?;
    println!("setup: release binary, one box alone in a namespace, no channels, 5 s after start");
    println!("idle box RSS: {:.1} MiB (floor 12 MiB)", idle as f64 / 1024.0);
    ok &= idle <= 12 * 1024;
    drop(bed);

    // Two boxes, four always-on 4 Mbit/s channels; measure the one that relays (receives all).
    let budget = 16;
    let mut bed = Bed::new(2).map_err(|e| e.to_string())?;
    let mut pids = Vec::new();
    for i in 0..2 {
        let path = dir.join(format!("relay{i}.toml"));
        std::fs::write(&path, config(&dir, i + 1, 4, budget)).map_err(|e| e.to_string())?;
        let path = path.to_string_lossy().into_owned();
        let log = dir.join(format!("relay{i}.log"));
        pids.push(bed.spawn(i, binary, &["run", "--config", &path], &[], &log).map_err(|e| e.to_string())?);
    }
    std::thread::sleep(Duration::from_secs(40));
    println!("setup: two boxes, 4 always-on channels at 4 Mbit/s in 2 s segments, store budget {budget} MiB, 40 s after start");
    for (i, p) in pids.iter().enumerate() {
        let rss = bed.pid(*p).ok().and_then(rss_kib).ok_or("relay box not running")?;
        let limit = (budget + 16) * 1024;
        println!(
            "relaying box {i} RSS: {:.1} MiB (floor: budget + 16 = {} MiB)",
            rss as f64 / 1024.0,
            limit / 1024
        );
        ok &= rss <= u64::from(limit);
    }
    drop(bed);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ok)
}
