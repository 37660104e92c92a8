//! How long a TV waits: request → first byte and request → first decoded frame, for the test
//! card of `shoal demo` (three boxes in one process on 127.0.0.1, static peers, no mDNS).
//!
//! `cargo run --release -p shoal-bench --bin tvstart -- [--shoal PATH] [--runs N] [--cold-runs N]`
//!
//! Without `--shoal` it first builds the daemon (`cargo build --release -p shoal`) and uses the
//! binary next to its own. Two phases:
//!
//! - **cold**: the first request for the channel on a box, nobody having watched it: the box
//!   waits until the swarm holds a segment (election, origin fetch by the ingester, delivery over
//!   the swarm). One sample per fresh demo, on the box that is neither the channel's ingester nor
//!   its standby, so the segment crosses the swarm; `--cold-runs` demos per measurement.
//! - **warm**: the channel in the store, a viewer having watched it on the same box for a few
//!   seconds: first byte of `index.m3u8`, of the newest segment and of `/ts/testcard`, and the
//!   first decoded frame (ffmpeg) over HLS and `/ts`; `--runs` rounds, interleaved.
//!
//! First byte is timed with a plain HTTP/1.1 GET on a std `TcpStream`, from before `connect`
//! to the first byte of the response. The first decoded frame is the wall time from starting
//! `ffmpeg -i URL -frames:v 1 -f null -` to the `frame=1` line of its `-progress` output; the
//! same ffmpeg decoding the newest segment from a local file gives ffmpeg's own share of it.
//!
//! The floor: **first byte ≤ 50 ms for a channel already in the store**, checked on the
//! worst warm request of the three kinds. The program prints PASS or FAIL and exits non-zero on
//! FAIL.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use shoal_model::status::Status;

/// The floor for first byte of a channel already in the store.
const FLOOR: Duration = Duration::from_millis(50);
/// Boxes in the demo.
const BOXES: u16 = 3;
/// Every HTTP exchange gives up after this long; a cold box answers 503 after 8 s.
const HTTP_LIMIT: Duration = Duration::from_secs(15);
/// Every ffmpeg run gives up after this long.
const FFMPEG_LIMIT: Duration = Duration::from_secs(20);

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = arg(&args, "--runs").and_then(|v| v.parse().ok()).unwrap_or(30);
    let cold_runs: usize = arg(&args, "--cold-runs").and_then(|v| v.parse().ok()).unwrap_or(5);
    let explicit = arg(&args, "--shoal").map(PathBuf::from);
    let mut command =
        format!("cargo run --release -p shoal-bench --bin tvstart -- --runs {runs} --cold-runs {cold_runs}");
    if let Some(path) = &explicit {
        command.push_str(&format!(" --shoal {}", path.display()));
    }
    println!("command: {command}");
    let shoal = match explicit.map_or_else(build_shoal, Ok) {
        Ok(path) => path,
        Err(e) => {
            eprintln!("tvstart: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ffmpeg = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(str::to_owned));
    let Some(ffmpeg) = ffmpeg else {
        eprintln!("tvstart: ffmpeg is missing (apt-get install ffmpeg)");
        return ExitCode::FAILURE;
    };
    println!(
        "setup: `shoal demo`, {BOXES} boxes in one process on 127.0.0.1 (static peers, no mDNS), channel \
         testcard (320x180 H.264/AAC, 2 s segments); binary {}; {}; machine: {} cores",
        shoal.display(),
        ffmpeg.split(" Copyright").next().unwrap_or(&ffmpeg),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    match run(&shoal, runs, cold_runs) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("tvstart: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the release daemon and returns its path (next to this program's binary).
fn build_shoal() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    println!("building: cargo build --release -p shoal");
    let status = Command::new(&cargo)
        .args(["build", "--quiet", "--release", "-p", "shoal"])
        .current_dir(&workspace)
        .status()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if !status.success() {
        return Err("cargo build --release -p shoal failed (or pass --shoal PATH)".into());
    }
    let beside = std::env::current_exe().ok().and_then(|p| Some(p.parent()?.join("shoal")));
    let path = beside.filter(|p| p.exists()).unwrap_or_else(|| workspace.join("target/release/shoal"));
    path.canonicalize().map_err(|e| format!("{}: {e}", path.display()))
}

/// A child process (run under `timeout`) stopped when dropped: SIGTERM to `timeout` reaches the
/// program too; SIGKILL after 5 s.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running demo and its boxes' HTTP addresses.
struct Demo {
    _process: Running,
    boxes: Vec<SocketAddr>,
}

impl Demo {
    /// Starts the demo for at most `seconds` and waits until every box sees the others.
    fn start(shoal: &Path, seconds: u32) -> Result<Demo, String> {
        let port = free_ports(2 * BOXES);
        let mut child = Command::new("timeout")
            .args(["-k", "5", &(seconds + 5).to_string()])
            .arg(shoal)
            .args(["demo", "--seconds", &seconds.to_string(), "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the demo: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let process = Running(child);
        // "box 0: play http://127.0.0.1:P/hls/testcard/index.m3u8 ..."
        let boxes: Vec<SocketAddr> = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .take_while(|l| !l.starts_with("Try:"))
            .filter_map(|l| {
                let url = l.split_whitespace().nth(3)?;
                url.strip_prefix("http://")?.split('/').next()?.parse().ok()
            })
            .collect();
        if boxes.len() != usize::from(BOXES) {
            return Err(format!("the demo printed {} box addresses, expected {BOXES}", boxes.len()));
        }
        let demo = Demo { _process: process, boxes };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let statuses: Vec<Status> = demo.boxes.iter().filter_map(|b| status(*b)).collect();
            let alive = |s: &Status| s.alive_peers().count();
            if statuses.len() == demo.boxes.len() && statuses.iter().all(|s| alive(s) == demo.boxes.len() - 1)
            {
                return Ok(demo);
            }
            if Instant::now() > deadline {
                return Err("the demo's boxes did not see each other within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The box that is neither the channel's ingester nor its standby (as each box itself sees
    /// it), so the channel reaches it over the swarm; and how it was chosen.
    fn viewer_box(&self) -> (SocketAddr, &'static str) {
        for b in &self.boxes {
            let Some(s) = status(*b) else { continue };
            let me = Some(s.node_id.as_str());
            let channel = s.channels.first();
            let (ingester, standby) =
                (channel.and_then(|c| c.ingester.as_deref()), channel.and_then(|c| c.standby.as_deref()));
            if ingester != me && standby != me {
                return (*b, "neither ingester nor standby");
            }
        }
        (self.boxes[self.boxes.len() - 1], "the last box (roles unknown)")
    }
}

/// A box's `/api/status`.
fn status(addr: SocketAddr) -> Option<Status> {
    let r = get(addr, "/api/status", usize::MAX, Duration::from_secs(2)).ok()?;
    if r.status != 200 {
        return None;
    }
    serde_json::from_slice(&r.body).ok()
}

/// Segments of the test card `addr` holds.
fn segments_held(addr: SocketAddr) -> u64 {
    status(addr).and_then(|s| s.channels.first().map(|c| c.segments_held)).unwrap_or(0)
}

/// The first of `count` consecutive ports free on 127.0.0.1 for TCP and UDP.
fn free_ports(count: u16) -> u16 {
    use std::net::{TcpListener, UdpSocket};
    let start = 20_000 + (std::process::id() * 37 + rand_u32() % 1000 * 17) % 20_000;
    for attempt in 0..500u32 {
        let base = (20_000 + (start + attempt * 13) % 20_000) as u16;
        let free = (base..base + count).all(|p| {
            TcpListener::bind(("127.0.0.1", p)).is_ok() && UdpSocket::bind(("127.0.0.1", p)).is_ok()
        });
        if free {
            return base;
        }
    }
    panic!("no {count} consecutive free ports on 127.0.0.1");
}

/// A little variety for port choice (consecutive demos in one run).
fn rand_u32() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())
}

/// One HTTP response, timed from before `connect`.
struct Response {
    status: u16,
    /// The first byte of the response (its status line).
    first_byte: Duration,
    /// When `body_goal` bytes of body had arrived (or the whole body, if shorter).
    body_done: Option<Duration>,
    body: Vec<u8>,
}

/// `GET path` on `addr` (HTTP/1.1, `Connection: close`), reading the body until it is complete
/// or `body_goal` raw bytes of it have arrived (a `/ts` stream never ends).
fn get(addr: SocketAddr, path: &str, body_goal: usize, limit: Duration) -> Result<Response, String> {
    let t0 = Instant::now();
    let mut stream = TcpStream::connect_timeout(&addr, limit).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    stream.set_read_timeout(Some(limit)).map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: shoal-tvstart\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(|e| format!("send {path}: {e}"))?;
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut first_byte = None;
    let mut header_end = None;
    let mut content_length = None;
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) => return Err(format!("read {path} after {:?}: {e}", t0.elapsed())),
        };
        let now = t0.elapsed();
        if n > 0 && first_byte.is_none() {
            first_byte = Some(now);
        }
        buf.extend_from_slice(&chunk[..n]);
        if header_end.is_none() {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                header_end = Some(at + 4);
                let head = String::from_utf8_lossy(&buf[..at]).to_ascii_lowercase();
                content_length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
            }
        }
        let body_len = header_end.map_or(0, |h| buf.len() - h);
        let complete = content_length.is_some_and(|len| body_len >= len);
        if n == 0 || complete || (header_end.is_some() && body_len >= body_goal) {
            let Some(h) = header_end else {
                return Err(format!("{path}: connection closed before the headers"));
            };
            let status = String::from_utf8_lossy(&buf[..h])
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            return Ok(Response {
                status,
                first_byte: first_byte.unwrap_or(now),
                body_done: (body_len > 0).then_some(now),
                body: buf[h..].to_vec(),
            });
        }
    }
}

/// Like [`get`], failing unless the answer is 200.
fn get_ok(addr: SocketAddr, path: &str, body_goal: usize) -> Result<Response, String> {
    let r = get(addr, path, body_goal, HTTP_LIMIT)?;
    if r.status != 200 {
        return Err(format!(
            "GET {path} on {addr}: status {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ));
    }
    Ok(r)
}

/// Wall time from starting ffmpeg on `input` (with input `options`) to its first decoded video
/// frame (the `frame=1` line of its `-progress` output).
fn ffmpeg_first_frame(input: &str, options: &[&str]) -> Result<Duration, String> {
    let t0 = Instant::now();
    let mut child = Command::new("timeout")
        .args(["-k", "2", &FFMPEG_LIMIT.as_secs().to_string()])
        .args(["ffmpeg", "-nostdin", "-v", "error", "-stats_period", "0.001"])
        .args(options)
        .args(["-i", input])
        .args(["-frames:v", "1", "-f", "null", "-", "-progress", "pipe:1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut first = None;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if first.is_none()
            && line.strip_prefix("frame=").and_then(|f| f.trim().parse::<u64>().ok()) >= Some(1)
        {
            first = Some(t0.elapsed());
        }
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    first.ok_or_else(|| format!("ffmpeg decoded no frame of {input} ({status}): {}", stderr.trim()))
}

/// Samples of one measurement.
struct Samples {
    name: String,
    values: Vec<Duration>,
}

impl Samples {
    fn new(name: &str) -> Samples {
        Samples { name: name.into(), values: Vec::new() }
    }

    /// The `p`-th percentile (nearest rank).
    fn percentile(&self, p: f64) -> Duration {
        let mut v = self.values.clone();
        v.sort();
        if v.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    }

    fn max(&self) -> Duration {
        self.values.iter().max().copied().unwrap_or_default()
    }

    fn print(&self) {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "| {} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
            self.name,
            self.values.len(),
            ms(self.values.iter().min().copied().unwrap_or_default()),
            ms(self.percentile(50.0)),
            ms(self.percentile(95.0)),
            ms(self.max())
        );
    }
}

fn print_table(rows: &[&Samples]) {
    println!("| measurement | n | min | median | p95 | max |");
    println!("|---|---:|---:|---:|---:|---:|");
    for row in rows {
        row.print();
    }
}

const PLAYLIST: &str = "/hls/testcard/index.m3u8";
const TS: &str = "/ts/testcard";
/// How much of `/ts` counts as its first video: a few TS packets (PAT, PMT, the start of a
/// keyframe).
const TS_FIRST: usize = 4 * 188;

fn run(shoal: &Path, runs: usize, cold_runs: usize) -> Result<bool, String> {
    // Cold: one fresh demo per sample.
    let mut cold_playlist = Samples::new("cold: GET index.m3u8, first byte");
    let mut cold_ts = Samples::new("cold: GET /ts, first byte");
    let mut cold_frame = Samples::new("cold: ffmpeg on index.m3u8, first decoded frame");
    let mut cold_held = Samples::new("cold: the box holds a segment (its /api/status polled every 2 ms)");
    let mut how = "";
    for _ in 0..cold_runs {
        for kind in 0..3 {
            let demo = Demo::start(shoal, 60)?;
            let (tv, chosen) = demo.viewer_box();
            how = chosen;
            if segments_held(tv) != 0 {
                return Err("the channel was already there before anyone watched".into());
            }
            match kind {
                0 => {
                    // When the segment is there, apart from how soon the request notices it.
                    let t0 = Instant::now();
                    let poll = std::thread::spawn(move || {
                        while t0.elapsed() < HTTP_LIMIT {
                            if segments_held(tv) > 0 {
                                return Some(t0.elapsed());
                            }
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        None
                    });
                    cold_playlist.values.push(get_ok(tv, PLAYLIST, usize::MAX)?.first_byte);
                    let held = poll.join().ok().flatten().ok_or("the box never held a segment")?;
                    cold_held.values.push(held);
                }
                1 => cold_ts.values.push(get_ok(tv, TS, TS_FIRST)?.first_byte),
                _ => cold_frame.values.push(ffmpeg_first_frame(&format!("http://{tv}{PLAYLIST}"), &[])?),
            }
        }
    }
    println!(
        "\ncold: the first request for the channel on a box ({how}) of a fresh demo whose boxes see \
         each other; {cold_runs} demos per row"
    );
    print_table(&[&cold_playlist, &cold_held, &cold_ts, &cold_frame]);

    // Warm: one demo, a viewer watching on the measured box.
    let demo = Demo::start(shoal, 600)?;
    let (tv, how) = demo.viewer_box();
    let _viewer = Running(
        Command::new("timeout")
            .args(["-k", "2", "600", "ffmpeg", "-nostdin", "-v", "error", "-i"])
            .arg(format!("http://{tv}{PLAYLIST}"))
            .args(["-f", "null", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the viewer: {e}"))?,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while segments_held(tv) < 3 {
        if Instant::now() > deadline {
            return Err("the viewed box holds fewer than 3 segments after 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(4));
    let held = segments_held(tv);

    // ffmpeg's own share: the newest segment, decoded from a local file.
    let newest = |playlist: &[u8]| -> Result<String, String> {
        String::from_utf8_lossy(playlist)
            .lines()
            .rev()
            .find(|l| l.ends_with(".ts"))
            .map(str::to_owned)
            .ok_or_else(|| "no segment in the playlist".to_owned())
    };
    let name = newest(&get_ok(tv, PLAYLIST, usize::MAX)?.body)?;
    let segment = get_ok(tv, &format!("/hls/testcard/{name}"), usize::MAX)?.body;
    let file = std::env::temp_dir().join(format!("shoal-tvstart-{}.ts", std::process::id()));
    std::fs::write(&file, &segment).map_err(|e| e.to_string())?;

    let mut playlist_first = Samples::new("warm: GET index.m3u8, first byte");
    let mut playlist_whole = Samples::new("warm: GET index.m3u8, whole playlist");
    let mut segment_first = Samples::new("warm: GET newest segment, first byte");
    let mut segment_whole =
        Samples::new(&format!("warm: GET newest segment, whole ({} KiB)", segment.len() / 1024));
    let mut ts_first = Samples::new("warm: GET /ts, first byte");
    let mut ts_video = Samples::new(&format!("warm: GET /ts, first {TS_FIRST} bytes of video"));
    let mut frame_hls = Samples::new("warm: ffmpeg on index.m3u8, first decoded frame");
    let mut frame_ts = Samples::new("warm: ffmpeg on /ts, first decoded frame");
    let mut frame_ts_short =
        Samples::new("warm: ffmpeg -analyzeduration 1000000 (1 s, default 5 s) on /ts, first decoded frame");
    let mut frame_file = Samples::new("ffmpeg on the newest segment as a local file, first decoded frame");
    for _ in 0..runs {
        let p = get_ok(tv, PLAYLIST, usize::MAX)?;
        playlist_first.values.push(p.first_byte);
        playlist_whole.values.push(p.body_done.unwrap_or(p.first_byte));
        let s = get_ok(tv, &format!("/hls/testcard/{}", newest(&p.body)?), usize::MAX)?;
        segment_first.values.push(s.first_byte);
        segment_whole.values.push(s.body_done.unwrap_or(s.first_byte));
        let t = get_ok(tv, TS, TS_FIRST)?;
        ts_first.values.push(t.first_byte);
        ts_video.values.push(t.body_done.unwrap_or(t.first_byte));
        frame_hls.values.push(ffmpeg_first_frame(&format!("http://{tv}{PLAYLIST}"), &[])?);
        frame_ts.values.push(ffmpeg_first_frame(&format!("http://{tv}{TS}"), &[])?);
        frame_ts_short
            .values
            .push(ffmpeg_first_frame(&format!("http://{tv}{TS}"), &["-analyzeduration", "1000000"])?);
        frame_file.values.push(ffmpeg_first_frame(&file.display().to_string(), &[])?);
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_file(&file);
    println!(
        "\nwarm: the box ({how}) holds {held} segments of the channel, an ffmpeg viewer watching it there; \
         {runs} rounds, the measurements interleaved"
    );
    print_table(&[
        &playlist_first,
        &playlist_whole,
        &segment_first,
        &segment_whole,
        &ts_first,
        &ts_video,
        &frame_hls,
        &frame_ts,
        &frame_ts_short,
        &frame_file,
    ]);
    let worst =
        [&playlist_first, &segment_first, &ts_first].iter().map(|s| s.max()).max().unwrap_or_default();
    let pass = worst <= FLOOR;
    println!(
        "\nfloor: first byte ≤ {} ms for a channel already in the store; worst of {} warm requests \
         (playlist, segment, /ts): {:.2} ms: {}",
        FLOOR.as_millis(),
        3 * runs,
        worst.as_secs_f64() * 1e3,
        if pass { "PASS" } else { "FAIL" }
    );
    Ok(pass)
}
