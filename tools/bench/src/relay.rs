//! CPU and memory of one box relaying multicast feeds to HTTP-TS clients (issue 5's floor).
//!
//! `cargo build --release -p shoal && cargo run --profile bench -p shoal-bench --bin relay -- target/release/shoal`
//!
//! A bed of two namespaces (needs root): host 1 is the headend — one ffmpeg per channel
//! looping a clip encoded once at the channel's bit rate (`-re -stream_loop -1 -c copy`) to its
//! own multicast group — and the TVs (one `curl` per channel reading `/ts/<channel>`); host 0
//! is the box, with the channels in its config. After a warm-up the box's CPU time
//! (`/proc/<pid>/stat` utime + stime) is measured over a window, its RSS sampled every 250 ms,
//! and the bytes every client received checked against the feed's rate (a relay that keeps up
//! delivers the feed's rate to each TV). Runs at 5 and at 40 Mbit/s per channel.
//!
//! Floor (issue 5): ≤ 25 % of one core and ≤ 16 MiB RSS at 8 × 40 Mbit/s. Reference, quoted
//! as their claim, not measured here: rtp2httpd publishes 17 % of a core and 4.5 MB for that
//! load on its own machine.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use shoal_model::status::Status;
use shoal_testbed::{skip_reason, Bed};

const CHANNELS: usize = 8;
const WARM_UP: Duration = Duration::from_secs(12);
const WINDOW: Duration = Duration::from_secs(30);
const CPU_FLOOR: f64 = 0.25;
const RSS_FLOOR_KIB: u64 = 16 * 1024;

fn main() -> ExitCode {
    let Some(binary) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: relay <path to a release shoal binary> [mbit ...]");
        return ExitCode::from(2);
    };
    let rates: Vec<u32> = std::env::args().skip(2).filter_map(|a| a.parse().ok()).collect();
    let rates = if rates.is_empty() { vec![5, 40] } else { rates };
    if let Some(reason) = skip_reason() {
        eprintln!("relay: cannot run: {reason}");
        return ExitCode::FAILURE;
    }
    let binary = binary.canonicalize().unwrap_or(binary);
    println!("command: cargo run --profile bench -p shoal-bench --bin relay -- {}", binary.display());
    println!(
        "setup: one box alone, {CHANNELS} multicast channels (ffmpeg -re -stream_loop -1 -c copy of a constant-rate \
         1280x720 H.264/AAC clip, 1316-byte datagrams), {CHANNELS} HTTP-TS clients (curl /ts/<channel>, one per \
         channel, in the headend's namespace); warm-up {} s, measured over {} s",
        WARM_UP.as_secs(),
        WINDOW.as_secs()
    );
    let mut ok = true;
    for mbit in &rates {
        let mbit = *mbit;
        match measure(&binary, mbit, false) {
            Ok(m) => {
                let floor = if mbit == 40 {
                    let pass = m.cpu <= CPU_FLOOR && m.rss_max_kib <= RSS_FLOOR_KIB;
                    ok &= pass;
                    format!("; floor ≤ 25 % and ≤ 16 MiB: {}", if pass { "met" } else { "NOT met" })
                } else {
                    String::new()
                };
                println!("alone, {CHANNELS} × {mbit} Mbit/s: {}{floor}", m.describe());
                ok &= m.client_mbit.0 >= f64::from(mbit) * 0.9;
            }
            Err(e) => {
                eprintln!("relay at {mbit} Mbit/s: {e}");
                ok = false;
            }
        }
    }
    // The same load on a box with a peer that carries the channels: the box now cuts, signs,
    // stores and pushes segments of the channels it receives, and serves the others from the
    // segments its peer sends. Reported for comparison (DESIGN.md §11: RSS ≤ store + 16 MiB).
    for mbit in rates {
        match measure(&binary, mbit, true) {
            Ok(m) => {
                println!(
                    "with a peer, {CHANNELS} × {mbit} Mbit/s: {}; receives {} of {CHANNELS} channels itself; \
                     RSS beyond the store {:.1} MiB",
                    m.describe(),
                    m.ingested,
                    (m.rss_max_kib as f64 - m.store_bytes as f64 / 1024.0) / 1024.0
                );
            }
            Err(e) => {
                eprintln!("relay with a peer at {mbit} Mbit/s: {e}");
                ok = false;
            }
        }
    }
    println!(
        "reference (their claim, not measured here): rtp2httpd 17 % of a core and 4.5 MB at 8 × 40 Mbit/s"
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

impl Measurement {
    fn describe(&self) -> String {
        format!(
            "CPU {:.1} % of one core, RSS max {:.1} MiB (mean {:.1} MiB), store holds {:.1} MiB; \
             each client got {:.1}–{:.1} Mbit/s",
            self.cpu * 100.0,
            self.rss_max_kib as f64 / 1024.0,
            self.rss_mean_kib as f64 / 1024.0,
            self.store_bytes as f64 / 1048576.0,
            self.client_mbit.0,
            self.client_mbit.1,
        )
    }
}

struct Measurement {
    cpu: f64,
    rss_max_kib: u64,
    rss_mean_kib: u64,
    store_bytes: u64,
    /// Channels the measured box received itself (the others came from its peer).
    ingested: usize,
    client_mbit: (f64, f64),
}

fn proc_field(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn ticks_per_second() -> f64 {
    let out = std::process::Command::new("getconf").arg("CLK_TCK").output();
    out.ok().and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok()).unwrap_or(100.0)
}

/// A 16 s 1280x720 H.264/AAC clip at a constant `mbit` Mbit/s as muxed (x264 fills to its
/// rate with filler data, as broadcast encoders do), encoded once into `dir`.
fn cbr_clip(dir: &Path, mbit: u32) -> Result<PathBuf, String> {
    let path = dir.join(format!("relay-cbr-{mbit}M.ts"));
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    // Audio and TS headers add about 1.7 %: aim the video below the channel's rate.
    let video = format!("{}k", mbit * 980 - 128);
    let part = dir.join(format!(".relay-cbr-{mbit}M.{}.part", std::process::id()));
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000", "-t", "16"])
        .args([
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-b:v", &video, "-minrate", &video, "-maxrate", &video, "-bufsize", &video])
        .args(["-x264-params", "nal-hrd=cbr", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0"])
        .args(["-c:a", "aac", "-b:a", "128k", "-f", "mpegts"])
        .arg(&part)
        .status()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    if !status.success() {
        return Err(format!("ffmpeg could not encode the {mbit} Mbit/s clip"));
    }
    std::fs::rename(&part, &path).map_err(|e| e.to_string())?;
    Ok(path)
}

fn measure(binary: &Path, mbit: u32, with_peer: bool) -> Result<Measurement, String> {
    let dir = std::env::temp_dir().join(format!("shoal-relay-{}-{mbit}-{with_peer}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let clips = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-clips");
    let clip = cbr_clip(&clips, mbit)?;
    let status = std::process::Command::new(binary)
        .args(["keygen", "--out"])
        .arg(dir.join("net.key"))
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("keygen failed".into());
    }
    // Host 0: the box measured; host 1: headend and TVs; host 2: the peer, if any.
    let mut bed = Bed::new(if with_peer { 3 } else { 2 }).map_err(|e| e.to_string())?;
    bed.set_process_lifetime(WARM_UP + WINDOW + Duration::from_secs(60));
    let mut config = format!(
        "state_dir = \"{d}/state\"\nnetwork_key_file = \"{d}/net.key\"\n[net]\ninterfaces = [\"eth0\"]\nupload_mbit = 1000\n\
         [store]\nbudget_mb = 512\nring_len = 3\nwindow_segments = 2\n",
        d = dir.display()
    );
    for c in 0..CHANNELS {
        let group = format!("239.255.30.{}", c + 1);
        config.push_str(&format!(
            "[[channel]]\nid = \"ch{c}\"\nsource = \"udp://@{group}:5000\"\ninterface = \"eth0\"\n"
        ));
        let output = format!("udp://{group}:5000?pkt_size=1316&ttl=1");
        bed.loop_clip(1, &clip, "mpegts", &output, &dir.join(format!("ffmpeg{c}.log")))
            .map_err(|e| e.to_string())?;
    }
    let config_path = dir.join("box.toml");
    std::fs::write(&config_path, &config).map_err(|e| e.to_string())?;
    let config_path = config_path.to_string_lossy().into_owned();
    let shoal = bed
        .spawn(0, binary, &["run", "--config", &config_path], &[], &dir.join("box.log"))
        .map_err(|e| e.to_string())?;
    if with_peer {
        let peer_config = dir.join("peer.toml");
        std::fs::write(&peer_config, config.replace("/state\"", "/peer-state\""))
            .map_err(|e| e.to_string())?;
        let peer_config = peer_config.to_string_lossy().into_owned();
        bed.spawn(2, binary, &["run", "--config", &peer_config], &[], &dir.join("peer.log"))
            .map_err(|e| e.to_string())?;
    }
    let pid = bed.pid(shoal).map_err(|e| e.to_string())?;
    let box_ip = bed.ip(0);
    // The TVs come once the box (and its peer) are up: the cold start is not what is measured.
    let peers_needed = usize::from(with_peer);
    let up = Instant::now();
    loop {
        let status = bed
            .http_get(0, &format!("http://{box_ip}:7471/api/status"))
            .ok()
            .and_then(|s| serde_json::from_str::<Status>(&s).ok());
        let alive = status.as_ref().map(|s| s.alive_peers().count());
        if alive.is_some_and(|a| a >= peers_needed) {
            break;
        }
        if up.elapsed() > Duration::from_secs(30) {
            return Err("the box (or its peer) did not come up in 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let mut outputs = Vec::new();
    for c in 0..CHANNELS {
        let out = dir.join(format!("client{c}.bytes"));
        let url = format!("http://{box_ip}:7471/ts/ch{c}");
        let seconds = (WARM_UP + WINDOW).as_secs().to_string();
        // curl counts what it received (%{size_download}) and throws the bytes away.
        // A cold channel answers 503 until its first segment or feed: retry as a TV would,
        // but never past the run (a timeout counts as transient too).
        let args = [
            "-s",
            "-o",
            "/dev/null",
            "--max-time",
            &seconds,
            "--retry",
            "10",
            "--retry-delay",
            "1",
            "--retry-max-time",
            &seconds,
            "-w",
            "%{size_download}\n",
            &url,
        ];
        bed.spawn(1, Path::new("curl"), &args, &[], &out).map_err(|e| e.to_string())?;
        outputs.push(out);
    }
    std::thread::sleep(WARM_UP);
    let ticks = ticks_per_second();
    let start_ticks = cpu_ticks(pid).ok_or("the box is not running")?;
    let start = Instant::now();
    let mut samples = Vec::new();
    while start.elapsed() < WINDOW {
        samples.push(proc_field(pid, "VmRSS:").ok_or("the box stopped")?);
        std::thread::sleep(Duration::from_millis(250));
    }
    let end_ticks = cpu_ticks(pid).ok_or("the box stopped")?;
    let cpu = (end_ticks - start_ticks) as f64 / ticks / start.elapsed().as_secs_f64();
    let status = bed
        .http_get(0, &format!("http://{box_ip}:7471/api/status"))
        .ok()
        .and_then(|s| serde_json::from_str::<Status>(&s).ok())
        .unwrap_or_default();
    let store_bytes = status.store.used_bytes;
    let ingested = status.channels.iter().filter(|c| c.ingesting).count();
    // Let the clients finish (they stop at WARM_UP + WINDOW after they started).
    std::thread::sleep(Duration::from_secs(4));
    let mut rates = Vec::new();
    for out in &outputs {
        // The last attempt's count (curl prints one line per attempt).
        let bytes: f64 = std::fs::read_to_string(out)
            .ok()
            .and_then(|s| s.lines().rev().find_map(|l| l.trim().parse().ok()))
            .unwrap_or(0.0);
        rates.push(bytes * 8.0 / (WARM_UP + WINDOW).as_secs_f64() / 1e6);
    }
    let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let max = rates.iter().copied().fold(0.0, f64::max);
    let rss_max_kib = samples.iter().copied().max().unwrap_or(0);
    let rss_mean_kib = samples.iter().sum::<u64>() / samples.len().max(1) as u64;
    drop(bed);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Measurement { cpu, rss_max_kib, rss_mean_kib, store_bytes, ingested, client_mbit: (min, max) })
}
