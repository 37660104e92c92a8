//! Filling N boxes with a whole on-demand asset: Shoal's prefill against a BitTorrent swarm doing
//! the same job on the same links, measured in the same run (issue 8's floor: Shoal no slower
//! than BitTorrent).
//!
//! `cargo build --release -p shoal && cargo run --profile bench -p shoal-bench --bin vodfill -- target/release/shoal [boxes ...]`
//!
//! The asset is [`VodSpec::TWENTY_MINUTES`] (20 min of 160x90 H.264/AAC in 600 segments of 2 s,
//! about 45 MB), encoded once and cached in `target/bench-clips`. For each N (default 4 and 8)
//! two fresh beds (needs root) of N + 1 hosts, every host's link capped at [`RATE_MBIT`] each
//! way (tbf on the host's `eth0` for what it sends, on its bridge port for what it receives):
//!
//! - **BitTorrent**: host 0 seeds `asset.ts` (the segments concatenated) with libtorrent,
//!   hosts 1..=N leech it, all started at once, each given the seed's and every other
//!   leecher's address (no tracker, DHT, LSD, UPnP, NAT-PMP or uTP: see `bittorrent.py`).
//!   Time: from starting the leechers to the last one holding every piece hash-checked (each
//!   leecher prints the wall-clock time it completed). Every download is then compared with
//!   `asset.ts` byte for byte.
//! - **Shoal**: host 0 serves the HLS asset with the test bed's static origin (`origin.py`,
//!   which logs every request); hosts 1..=N run `shoal run` with one channel `vod` whose
//!   source is the origin's playlist and a disk cache. Once every box sees all the others
//!   alive (`/api/status` `peers`), every box runs `shoal prefill vod --full --http
//!   127.0.0.1:7471 --timeout 600` at once; it exits 0 when that box holds every segment on
//!   disk. Time: from starting the prefills to the last one exiting 0 (polled every 10 ms).
//!   The origin's log then shows how many times each segment was fetched (the point of a
//!   swarm: once) and how many bytes the origin sent.
//!
//! Both halves start their clients at once and are timed to the last client done; starting a
//! process (python and libtorrent, or the `shoal` CLI) counts in both. Exits non-zero when the
//! floor (Shoal ≤ BitTorrent for every N) is not met, a half fails, or the origin did not send
//! every segment exactly once; the run's logs are then kept and their directory printed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shoal_model::status::Status;
use shoal_testbed::{encode_vod_asset, skip_reason, Bed, Origin, ProcessId, VodAsset, VodSpec};

/// Every host's link, each way. At 40 Mbit/s one box needs about 9.5 s just to receive the
/// 45 MB asset, so a run takes well under two minutes per N while the transfer, not start-up,
/// dominates; it is also a plausible wired home LAN or good Wi-Fi rate.
const RATE_MBIT: u32 = 40;
/// The BitTorrent piece size: 256 KiB is libtorrent's own choice for a file of this size
/// (about 180 pieces, so leechers have plenty to trade from the start).
const PIECE_KIB: u32 = 256;
/// libtorrent's port on every host.
const TORRENT_PORT: u16 = 6881;
/// The origin's port on host 0.
const ORIGIN_PORT: u16 = 8080;
/// The boxes' ports (each box has its own namespace), as in the node's tests.
const UDP_PORT: u16 = 7470;
const HTTP_PORT: u16 = 7471;
/// The `--timeout` of `shoal prefill`, in seconds.
const PREFILL_TIMEOUT_S: u64 = 600;
/// How long the swarm may take: far more than the ~10 s the links allow.
const TORRENT_LIMIT: Duration = Duration::from_secs(300);
/// How long the seed may take to hash-check the asset and the boxes to see each other.
const SETUP_LIMIT: Duration = Duration::from_secs(60);
/// How long a bed's processes may live: prefill's own timeout plus set-up and margin.
const LIFETIME: Duration = Duration::from_secs(PREFILL_TIMEOUT_S + 180);
/// The Python that has Debian's libtorrent module (a pyenv or venv `python3` first in `PATH`
/// would not).
const PYTHON: &str = "/usr/bin/python3";
/// The swarm script, found through this crate's source directory at compile time.
const BITTORRENT_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/bittorrent.py");

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(binary) = args.next().map(PathBuf::from) else {
        eprintln!("usage: vodfill <path to a release shoal binary> [boxes ...]");
        return ExitCode::from(2);
    };
    let sizes: Vec<usize> = args.filter_map(|a| a.parse().ok()).filter(|&n| n >= 1).collect();
    let sizes = if sizes.is_empty() { vec![4, 8] } else { sizes };
    if let Some(reason) = skip_reason() {
        eprintln!("vodfill: cannot run: {reason}");
        return ExitCode::FAILURE;
    }
    let binary = binary.canonicalize().unwrap_or(binary);
    let sizes_text: Vec<String> = sizes.iter().map(ToString::to_string).collect();
    println!(
        "command: cargo run --profile bench -p shoal-bench --bin vodfill -- {} {}",
        binary.display(),
        sizes_text.join(" ")
    );
    match run(&binary, &sizes) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("vodfill: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One N's results; a half that failed holds its error.
struct Row {
    boxes: usize,
    torrent: Result<Swarm, String>,
    shoal: Result<Prefill, String>,
}

fn run(binary: &Path, sizes: &[usize]) -> Result<bool, String> {
    let libtorrent = libtorrent_version()?;
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-clips");
    let spec = VodSpec::TWENTY_MINUTES;
    let started = Instant::now();
    let asset = encode_vod_asset(&cache, spec).map_err(|e| format!("encoding the asset: {e}"))?;
    let encoded = started.elapsed();
    let mib = asset.bytes as f64 / 1048576.0;
    let link_floor = asset.bytes as f64 * 8.0 / (f64::from(RATE_MBIT) * 1e6);
    println!(
        "setup: asset {} min of {}x{} H.264 at {} kbit/s + AAC 64 kbit/s, {} segments of {} s, {mib:.1} MiB \
         ({} in {:.1} s); every host's link capped at {RATE_MBIT} Mbit/s each way (tbf), so one box needs \
         ≥ {link_floor:.1} s to receive it; host 0 = origin / seed, hosts 1..=N = boxes / leechers; \
         BitTorrent: libtorrent {libtorrent}, {PIECE_KIB} KiB pieces, TCP, peers given explicitly; \
         Shoal: {}, upload_mbit = {RATE_MBIT}; machine: {} cores",
        spec.minutes,
        spec.width,
        spec.height,
        spec.video_kbps,
        asset.segments,
        spec.segment_seconds,
        if encoded > Duration::from_secs(1) { "encoded" } else { "cached, found" },
        encoded.as_secs_f64(),
        binary.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let dir = std::env::temp_dir().join(format!("shoal-vodfill-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let key = dir.join("net.key");
    let keygen = Command::new(binary).args(["keygen", "--out"]).arg(&key).status();
    if !keygen.is_ok_and(|s| s.success()) {
        return Err(format!("`{} keygen` failed", binary.display()));
    }

    let mut rows = Vec::new();
    for &n in sizes {
        let torrent = swarm(&asset, n, &dir.join(format!("bt-{n}")));
        match &torrent {
            Ok(s) => println!("N = {n}: BitTorrent {:.1} s; {}", s.seconds, s.describe(&asset)),
            Err(e) => println!("N = {n}: BitTorrent failed: {e}"),
        }
        let shoal = prefill(binary, &key, &asset, n, &dir.join(format!("shoal-{n}")));
        match &shoal {
            Ok(p) => println!("N = {n}: Shoal {:.1} s; {}", p.seconds, p.describe(&asset)),
            Err(e) => println!("N = {n}: Shoal failed: {e}"),
        }
        rows.push(Row { boxes: n, torrent, shoal });
    }

    println!("\n| boxes | Shoal prefill | BitTorrent | asset | origin fetches per segment | origin sent |");
    println!("|---:|---:|---:|---:|---|---:|");
    let seconds = |r: &Result<f64, &String>| r.as_ref().map_or("failed".to_owned(), |s| format!("{s:.1} s"));
    let mut ok = true;
    for row in &rows {
        let shoal = row.shoal.as_ref().map(|p| p.seconds);
        let torrent = row.torrent.as_ref().map(|s| s.seconds);
        let (fetches, sent) = row.shoal.as_ref().map_or(("-".to_owned(), "-".to_owned()), |p| {
            (p.fetches_text(&asset), format!("{:.1} MiB", p.origin_sent as f64 / 1048576.0))
        });
        println!(
            "| {} | {} | {} | {mib:.1} MiB | {fetches} | {sent} |",
            row.boxes,
            seconds(&shoal),
            seconds(&torrent)
        );
        ok &= row.shoal.as_ref().is_ok_and(|p| p.once(&asset));
    }
    for row in &rows {
        let met = match (&row.shoal, &row.torrent) {
            (Ok(p), Ok(s)) => p.seconds <= s.seconds,
            _ => false,
        };
        ok &= met;
        println!("N = {}: floor (Shoal ≤ BitTorrent): {}", row.boxes, if met { "met" } else { "NOT met" });
    }
    if ok {
        let _ = fs::remove_dir_all(&dir);
    } else {
        println!("logs kept in {}", dir.display());
    }
    Ok(ok)
}

/// libtorrent's version, imported inside a throw-away bed (nothing of it runs outside one).
fn libtorrent_version() -> Result<String, String> {
    let bed = Bed::new(1).map_err(|e| e.to_string())?;
    let import = [PYTHON, "-c", "import libtorrent; print(libtorrent.__version__)"];
    let output = bed.exec(0, &import, Duration::from_secs(20)).map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "python3-libtorrent is missing for {PYTHON}: `apt-get install python3-libtorrent` (as root): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A bed of `n + 1` hosts, every link capped at [`RATE_MBIT`] both ways.
fn capped_bed(n: usize) -> Result<Bed, String> {
    let mut bed = Bed::new(n + 1).map_err(|e| e.to_string())?;
    bed.set_process_lifetime(LIFETIME);
    let rate = format!("{RATE_MBIT}mbit");
    for host in 0..=n {
        bed.set_rate(host, RATE_MBIT).map_err(|e| e.to_string())?;
        // What the host receives leaves the bridge through its port `vb<host>`: the same
        // token bucket there caps the download side (the bed itself only shapes `eth0`).
        let port = format!("vb{host}");
        let output = Command::new("tc")
            .args(["-n", bed.bridge_namespace(), "qdisc", "replace", "dev", &port, "root", "tbf"])
            .args(["rate", &rate, "burst", "32kb", "latency", "50ms"])
            .output()
            .map_err(|e| format!("tc: {e}"))?;
        if !output.status.success() {
            return Err(format!("tc on {port}: {}", String::from_utf8_lossy(&output.stderr).trim()));
        }
    }
    Ok(bed)
}

/// What the swarm did.
struct Swarm {
    seconds: f64,
    /// Payload bytes the seed uploaded: the swarm's "origin" load.
    seed_uploaded: u64,
}

impl Swarm {
    fn describe(&self, asset: &VodAsset) -> String {
        format!(
            "every download equals asset.ts; the seed uploaded {:.1} MiB ({:.2} × the asset)",
            self.seed_uploaded as f64 / 1048576.0,
            self.seed_uploaded as f64 / asset.bytes as f64
        )
    }
}

/// The BitTorrent half for `n` leechers, its files in `dir`.
fn swarm(asset: &VodAsset, n: usize, dir: &Path) -> Result<Swarm, String> {
    let mut bed = capped_bed(n)?;
    let seed_dir = dir.join("seed");
    fs::create_dir_all(&seed_dir).map_err(|e| e.to_string())?;
    let file = seed_dir.join("asset.ts");
    if fs::hard_link(&asset.file, &file).is_err() {
        fs::copy(&asset.file, &file).map_err(|e| format!("cannot copy the asset: {e}"))?;
    }
    let torrent = dir.join("asset.torrent");
    let text = |p: &Path| p.to_string_lossy().into_owned();
    let (file_text, torrent_text, piece) = (text(&file), text(&torrent), PIECE_KIB.to_string());
    let make = [PYTHON, BITTORRENT_PY, "make", "--file", &file_text, "--torrent", &torrent_text];
    let make: Vec<&str> = make.into_iter().chain(["--piece-kib", &piece]).collect();
    let output = bed.exec(0, &make, Duration::from_secs(120)).map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!("making the torrent: {}", String::from_utf8_lossy(&output.stderr).trim()));
    }

    let limit = TORRENT_LIMIT.as_secs().to_string();
    let addresses: Vec<String> = (0..=n).map(|host| format!("{}:{TORRENT_PORT}", bed.ip(host))).collect();
    let listen = |host: usize| addresses[host].clone();
    let seed_log = dir.join("seed.log");
    let seed_listen = listen(0);
    let seed_dir_text = text(&seed_dir);
    let args = [BITTORRENT_PY, "seed", "--torrent", &torrent_text, "--dir", &seed_dir_text];
    let args: Vec<&str> = args.into_iter().chain(["--listen", &seed_listen, "--timeout", &limit]).collect();
    let seed = bed.spawn(0, Path::new(PYTHON), &args, &[], &seed_log).map_err(|e| e.to_string())?;
    wait_for_line(&mut bed, seed, &seed_log, "seeding", SETUP_LIMIT)?;

    let start = SystemTime::now();
    let mut leechers = Vec::new();
    for host in 1..=n {
        let leech_dir = dir.join(format!("leech{host}"));
        fs::create_dir_all(&leech_dir).map_err(|e| e.to_string())?;
        let mut args: Vec<String> =
            [BITTORRENT_PY, "leech", "--torrent", &torrent_text, "--dir"].map(String::from).into();
        args.extend([text(&leech_dir), "--listen".into(), listen(host), "--timeout".into(), limit.clone()]);
        for peer in (0..=n).filter(|&p| p != host) {
            args.extend(["--peer".to_owned(), listen(peer)]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let log = dir.join(format!("leech{host}.log"));
        let process = bed.spawn(host, Path::new(PYTHON), &args, &[], &log).map_err(|e| e.to_string())?;
        leechers.push((process, log, leech_dir));
    }

    // Each leecher's completion time, from the line it prints.
    let deadline = Instant::now() + TORRENT_LIMIT + Duration::from_secs(10);
    let mut done: Vec<Option<f64>> = vec![None; n];
    while done.iter().any(Option::is_none) {
        for (i, (process, log, _)) in leechers.iter().enumerate() {
            if done[i].is_some() {
                continue;
            }
            let text = fs::read_to_string(log).unwrap_or_default();
            done[i] = text.lines().find_map(|l| l.strip_prefix("complete ")?.trim().parse().ok());
            if done[i].is_none() {
                if let Some(status) = bed.wait(*process, Duration::ZERO).map_err(|e| e.to_string())? {
                    return Err(format!("leecher {} exited ({status}): {}", i + 1, tail(log)));
                }
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the swarm did not finish in {TORRENT_LIMIT:?}; leecher 1: {}",
                tail(&leechers[0].1)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let start = start.duration_since(UNIX_EPOCH).map_err(|e| e.to_string())?.as_secs_f64();
    let last = done.iter().flatten().copied().fold(0.0, f64::max);

    for (process, _, _) in &leechers {
        stop(&mut bed, *process);
    }
    stop(&mut bed, seed);
    let seed_uploaded = fs::read_to_string(&seed_log)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("uploaded ")?.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let original = fs::read(&asset.file).map_err(|e| e.to_string())?;
    for (host, (_, _, leech_dir)) in (1..).zip(&leechers) {
        let got = fs::read(leech_dir.join("asset.ts")).map_err(|e| format!("leecher {host}'s file: {e}"))?;
        if got != original {
            return Err(format!("leecher {host}'s file differs from asset.ts ({} bytes)", got.len()));
        }
    }
    drop(bed);
    // The downloads are N copies of the asset: not worth keeping (the logs are).
    for (_, _, leech_dir) in &leechers {
        let _ = fs::remove_dir_all(leech_dir);
    }
    let _ = fs::remove_dir_all(seed_dir);
    Ok(Swarm { seconds: last - start, seed_uploaded })
}

/// What the prefill did.
struct Prefill {
    seconds: f64,
    /// GET requests the origin answered per segment of the asset, in playlist order.
    fetches: Vec<usize>,
    /// Segment GETs the origin got before the prefills started.
    early: usize,
    /// Body bytes the origin sent in all.
    origin_sent: u64,
    /// Bytes under each box's cache directory afterwards.
    cached: Vec<u64>,
}

impl Prefill {
    /// Whether the origin sent every segment exactly once.
    fn once(&self, asset: &VodAsset) -> bool {
        self.fetches.len() == asset.segments && self.fetches.iter().all(|&f| f == 1)
    }

    fn fetches_text(&self, asset: &VodAsset) -> String {
        let total: usize = self.fetches.iter().sum();
        let once = self.fetches.iter().filter(|&&f| f == 1).count();
        let never = self.fetches.iter().filter(|&&f| f == 0).count();
        let max = self.fetches.iter().copied().max().unwrap_or(0);
        format!(
            "{:.2} ({once} of {} once, {never} never, max {max})",
            total as f64 / asset.segments.max(1) as f64,
            asset.segments
        )
    }

    fn describe(&self, asset: &VodAsset) -> String {
        let cached: Vec<String> =
            self.cached.iter().map(|b| format!("{:.1}", *b as f64 / 1048576.0)).collect();
        format!(
            "origin fetches per segment {}{}; origin sent {:.1} MiB; cache per box (MiB): {}",
            self.fetches_text(asset),
            if self.early > 0 {
                format!(", {} of them before the prefill", self.early)
            } else {
                String::new()
            },
            self.origin_sent as f64 / 1048576.0,
            cached.join(" ")
        )
    }
}

/// The Shoal half for `n` boxes, its files in `dir`.
fn prefill(binary: &Path, key: &Path, asset: &VodAsset, n: usize, dir: &Path) -> Result<Prefill, String> {
    let mut bed = capped_bed(n)?;
    fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let origin = Origin::start_static(&mut bed, 0, &dir.join("origin"), "vod", &asset.dir, ORIGIN_PORT)
        .map_err(|e| format!("origin: {e}"))?;
    let source = origin.playlist_url();
    let mut boxes = Vec::new();
    for host in 1..=n {
        let box_dir = dir.join(format!("box{host}"));
        let config = format!(
            "state_dir = \"{d}/state\"\nnetwork_key_file = \"{key}\"\n\
             [net]\nudp_port = {UDP_PORT}\nhttp_port = {HTTP_PORT}\ninterfaces = [\"eth0\"]\nupload_mbit = {RATE_MBIT}\n\
             [store]\nbudget_mb = 16\n[log]\nlevel = \"info\"\n\
             [cache]\ndir = \"{d}/cache\"\nmax_mb = 1024\n\
             [[channel]]\nid = \"vod\"\nsource = \"{source}\"\n",
            d = box_dir.display(),
            key = key.display()
        );
        fs::create_dir_all(&box_dir).map_err(|e| e.to_string())?;
        let path = box_dir.join("box.toml");
        fs::write(&path, config).map_err(|e| e.to_string())?;
        let path = path.to_string_lossy().into_owned();
        let log = box_dir.join("box.log");
        let process =
            bed.spawn(host, binary, &["run", "--config", &path], &[], &log).map_err(|e| e.to_string())?;
        boxes.push((process, log, box_dir));
    }

    // Every box sees all the others alive.
    let deadline = Instant::now() + SETUP_LIMIT;
    loop {
        let alive = |host: usize| {
            let url = format!("http://{}:{HTTP_PORT}/api/status", bed.ip(host));
            let status = bed.http_get(host, &url).ok()?;
            let status: Status = serde_json::from_str(&status).ok()?;
            Some(status.alive_peers().count())
        };
        if (1..=n).all(|host| alive(host).is_some_and(|a| a + 1 >= n)) {
            break;
        }
        for (i, (process, log, _)) in boxes.iter().enumerate() {
            if let Some(status) = bed.wait(*process, Duration::ZERO).map_err(|e| e.to_string())? {
                return Err(format!("box {} exited ({status}): {}", i + 1, tail(log)));
            }
        }
        if Instant::now() > deadline {
            return Err(format!("the boxes did not all see each other within {SETUP_LIMIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(250));
    }

    let early = origin.segment_fetches().values().sum();
    let http = format!("127.0.0.1:{HTTP_PORT}");
    let timeout = PREFILL_TIMEOUT_S.to_string();
    let args = ["prefill", "vod", "--full", "--http", &http, "--timeout", &timeout];
    let start = Instant::now();
    let mut prefills = Vec::new();
    for host in 1..=n {
        let log = dir.join(format!("box{host}/prefill.log"));
        let process = bed.spawn(host, binary, &args, &[], &log).map_err(|e| e.to_string())?;
        prefills.push((process, log));
    }
    let deadline = start + Duration::from_secs(PREFILL_TIMEOUT_S + 10);
    let mut finished: Vec<Option<Duration>> = vec![None; n];
    while finished.iter().any(Option::is_none) {
        for (i, (process, log)) in prefills.iter().enumerate() {
            if finished[i].is_some() {
                continue;
            }
            if let Some(status) = bed.wait(*process, Duration::ZERO).map_err(|e| e.to_string())? {
                if !status.success() {
                    return Err(format!("prefill on box {} failed ({status}): {}", i + 1, tail(log)));
                }
                finished[i] = Some(start.elapsed());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("the prefills did not all finish within {PREFILL_TIMEOUT_S} s"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let seconds = finished.iter().flatten().max().copied().unwrap_or_default().as_secs_f64();

    // A request's log line follows its last byte: give the last ones a moment.
    std::thread::sleep(Duration::from_millis(300));
    let by_path = origin.segment_fetches();
    let names = asset.segment_names().map_err(|e| e.to_string())?;
    let fetches =
        names.iter().map(|name| by_path.get(&format!("/vod/{name}")).copied().unwrap_or(0)).collect();
    let origin_sent = origin.fetch_log().iter().map(|e| e.sent).sum();
    let cached = boxes.iter().map(|(_, _, box_dir)| tree_size(&box_dir.join("cache"))).collect();
    drop(bed);
    Ok(Prefill { seconds, fetches, early, origin_sent, cached })
}

/// Waits until `log` has a line starting with `line`, failing if `process` exits first.
fn wait_for_line(
    bed: &mut Bed,
    process: ProcessId,
    log: &Path,
    line: &str,
    limit: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        if fs::read_to_string(log).is_ok_and(|t| t.lines().any(|l| l.starts_with(line))) {
            return Ok(());
        }
        if let Some(status) = bed.wait(process, Duration::ZERO).map_err(|e| e.to_string())? {
            return Err(format!("{} exited ({status}): {}", log.display(), tail(log)));
        }
        if Instant::now() > deadline {
            return Err(format!("no `{line}` in {} within {limit:?}: {}", log.display(), tail(log)));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM, and up to 10 s to exit (a leecher closes its files); SIGKILL after.
fn stop(bed: &mut Bed, process: ProcessId) {
    let _ = bed.stop(process, Duration::from_secs(10));
}

/// The total size of the files under `dir` (0 if it does not exist).
fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// The last lines of a log, for error messages.
fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(8).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}
