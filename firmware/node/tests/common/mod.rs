//! What the integration tests share: real `shoal` boxes on a test bed ([`boxes`]), a running
//! `shoal demo` ([`demo`]), real players as the TV (ffmpeg, mpv, VLC) and how a run of each is
//! judged (`docs/TESTING.md`, "How playback is judged"), and the plumbing around them: a time
//! bound on every process, a command prefix (such as `ip netns exec <ns>`) to play from inside a
//! network namespace, scratch directories, and skipping where there can be no test bed.
//!
//! Every player helper comes in two halves: one runs the player (`play_*`, bounded with `timeout`),
//! the other judges its output (`judge_*`, returning what was played or why the run failed) and
//! `assert_*` panics with that reason. The judges fail when nothing was played, so a test cannot
//! pass against a dead URL (`player_checks_fail_when_nothing_plays` in `tests/demo.rs`).

// Each test crate that includes this module uses only some of the helpers.
#![allow(dead_code)]

pub(crate) mod boxes;
pub(crate) mod demo;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shoal_testbed::{is_root, skip_reason};

/// How much longer than the media it plays a player may run before `timeout` stops it: start-up,
/// a cold channel (the box waits up to 8 s for the first segment) and the player's own buffering.
const PLAYER_SLACK: Duration = Duration::from_secs(30);

/// A number unique within this process, for names of namespaces and directories.
fn unique() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Whether a test that needs a bed must be skipped: says why and returns `true` when this
/// machine cannot build one (not root, no iproute2). Otherwise fails, with what to install,
/// unless every `(program, Debian package)` of `programs` runs: running as root on a machine
/// without them is a setup error, not a reason to skip.
pub(crate) fn skip(programs: &[(&str, &str)]) -> bool {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return true;
    }
    for (program, package) in programs {
        require(program, package);
    }
    false
}

/// Polls `check` every 250 ms until it holds or `limit` passes; whether it held. Looks at least
/// once, even with a zero limit.
pub(crate) fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A fresh, empty directory `<temp dir>/shoal-<test binary>-<pid>-<name>` for one test's files.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "shoal-{}-{}-{name}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A [`scratch`] directory, removed when dropped unless the test failed: its logs are what to
/// read then.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    pub(crate) fn new(name: &str) -> Scratch {
        Scratch(scratch(name))
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("logs kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Panics with an installation hint unless `program` runs (`program --version`).
pub(crate) fn require(program: &str, package: &str) {
    let runs = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(runs, "{program} is missing: apt-get install {package} (tools/test installs it as root)");
}

/// Runs `prefix` + `command` under `timeout` (SIGTERM after `limit`, SIGKILL 5 s later), with
/// stdin closed and stdout and stderr captured. `prefix` is empty to run on this machine, or
/// e.g. `["ip", "netns", "exec", ns]` to run inside a namespace.
pub(crate) fn run_bounded(prefix: &[&str], command: &[String], limit: Duration) -> Output {
    Command::new("timeout")
        .args(["-k", "5", &format!("{}", limit.as_secs().max(1))])
        .args(prefix)
        .args(command)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prefix:?} {command:?}: {e}"))
}

/// Stops a child started under `timeout`: SIGTERM (which `timeout` passes on; SIGKILL would
/// stop only `timeout`), then SIGKILL if it is still there after 5 s.
pub(crate) fn stop_gracefully(child: &mut std::process::Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `lines` lines of `text`, for failure messages.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// ffmpeg

/// ffmpeg's arguments to play `seconds` of `url` as fast as it arrives, decoding every frame and
/// printing its progress (`frame=N`) on stdout.
pub(crate) fn player_args(url: &str, seconds: u32) -> Vec<String> {
    let seconds = seconds.to_string();
    ["ffmpeg", "-nostdin", "-v", "error", "-i", url, "-t", &seconds, "-f", "null", "-", "-progress", "pipe:1"]
        .map(str::to_owned)
        .to_vec()
}

/// Plays `seconds` of `url` with ffmpeg ([`player_args`]) after `prefix`, bounded in time.
pub(crate) fn play_ffmpeg(prefix: &[&str], url: &str, seconds: u32) -> Output {
    run_bounded(prefix, &player_args(url, seconds), Duration::from_secs(seconds.into()) + PLAYER_SLACK)
}

/// The frames an ffmpeg run decoded, or why the run failed: it did not exit cleanly, printed
/// something on stderr (any decode error shows there) or decoded fewer than `min_frames`.
pub(crate) fn judge_ffmpeg(out: &Output, min_frames: u64) -> Result<u64, String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let frames: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .filter_map(|f| f.trim().parse().ok())
        .max()
        .unwrap_or(0);
    if !out.status.success() {
        return Err(format!("the player failed ({}): {stderr}", out.status));
    }
    if !stderr.trim().is_empty() {
        return Err(format!("decode errors: {stderr}"));
    }
    if frames < min_frames {
        return Err(format!("only {frames} frames decoded, expected {min_frames}"));
    }
    Ok(frames)
}

/// Fails unless the ffmpeg run passes [`judge_ffmpeg`]; `context` names the run in the message.
pub(crate) fn assert_played(out: &Output, min_frames: u64, context: &str) {
    if let Err(why) = judge_ffmpeg(out, min_frames) {
        panic!("{context}: {why}");
    }
}

// ---------------------------------------------------------------------------------------------
// mpv

/// Starts each status line mpv prints, so the judge can find them among its other output.
const MPV_STATUS: &str = "@shoal-status";

/// mpv's arguments to play `seconds` of `url` headless, writing its full log (each message with
/// its level) to `log`. Besides its usual messages, mpv prints a status line on stderr for every
/// frame it shows: playback position, frame number, whether it is waiting for its cache.
pub(crate) fn mpv_args(url: &str, seconds: u32, log: &Path) -> Vec<String> {
    vec![
        "mpv".into(),
        "--no-config".into(),
        "--vo=null".into(),
        "--ao=null".into(),
        // Not yt-dlp: mpv would hand it any URL its own demuxers refuse.
        "--ytdl=no".into(),
        format!("--length={seconds}"),
        format!("--log-file={}", log.display()),
        format!(
            "--term-status-msg={MPV_STATUS} time=${{=time-pos}} frame=${{=estimated-frame-number}} \
             waiting=${{=paused-for-cache}};"
        ),
        url.into(),
    ]
}

/// An mpv run: how it exited, what it printed, and its log.
#[derive(Debug)]
pub(crate) struct MpvRun {
    /// Exit status, terminal messages and status lines.
    pub(crate) output: Output,
    /// mpv's log file: `[time][level][module] message` lines.
    pub(crate) log: String,
}

/// Plays `seconds` of `url` with mpv ([`mpv_args`]) after `prefix`, bounded in time.
pub(crate) fn play_mpv(prefix: &[&str], url: &str, seconds: u32) -> MpvRun {
    let dir = TempDir::new("mpv");
    let log = dir.path().join("mpv.log");
    let output = run_bounded(
        prefix,
        &mpv_args(url, seconds, &log),
        Duration::from_secs(seconds.into()) + PLAYER_SLACK,
    );
    MpvRun { output, log: std::fs::read_to_string(&log).unwrap_or_default() }
}

/// What an mpv run played.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MpvPlayback {
    /// Seconds of media played: the last playback position shown minus the first.
    pub(crate) seconds: f64,
    /// Frames shown (mpv's estimate from the position and the frame rate).
    pub(crate) frames: u64,
    /// Status lines printed while mpv waited for its cache after playback had started: each is
    /// a moment the picture stood still.
    pub(crate) waiting: usize,
    /// Warnings in mpv's log (for instance the demuxer flagging a packet as corrupt).
    pub(crate) warnings: Vec<String>,
}

/// What an mpv run played, or why it failed: mpv exited with an error, logged an error, never
/// opened a video track and a video output for it, or played less than `min_seconds` of media
/// or fewer than `min_frames` frames.
pub(crate) fn judge_mpv(run: &MpvRun, min_seconds: f64, min_frames: u64) -> Result<MpvPlayback, String> {
    let terminal = format!(
        "{}{}",
        String::from_utf8_lossy(&run.output.stdout),
        String::from_utf8_lossy(&run.output.stderr)
    );
    let level = |l: &str, tag: &str| l.split_once(']').is_some_and(|(_, rest)| rest.starts_with(tag));
    let errors: Vec<&str> = run.log.lines().filter(|l| level(l, "[e]")).collect();
    let warnings: Vec<String> = run.log.lines().filter(|l| level(l, "[w]")).map(str::to_owned).collect();
    let mut first: Option<f64> = None;
    let mut last = 0.0_f64;
    let mut frames = (u64::MAX, 0u64);
    let mut waiting = 0;
    // Each status line runs from its marker to the `;` that ends it.
    for status in terminal.split(MPV_STATUS).skip(1).filter_map(|s| s.split_once(';').map(|(s, _)| s)) {
        let field = |name: &str| {
            status.split_whitespace().find_map(|f| f.strip_prefix(name)?.strip_prefix('=')).unwrap_or("")
        };
        let (Ok(time), Ok(frame)) = (field("time").parse::<f64>(), field("frame").parse::<u64>()) else {
            continue;
        };
        first.get_or_insert(time);
        last = last.max(time);
        frames = (frames.0.min(frame), frames.1.max(frame));
        waiting += usize::from(field("waiting") == "yes");
    }
    let played = MpvPlayback {
        seconds: first.map_or(0.0, |f| last - f),
        frames: if frames.1 >= frames.0 { frames.1 - frames.0 + 1 } else { 0 },
        waiting,
        warnings,
    };
    let mut failures = Vec::new();
    if !run.output.status.success() {
        failures.push(format!("mpv failed ({})", run.output.status));
    }
    if !errors.is_empty() {
        failures.push(format!("mpv logged errors:\n{}", errors.join("\n")));
    }
    if !run.log.contains("[cplayer]  (+) Video --vid=") || !run.log.contains("[cplayer] VO: ") {
        failures.push("mpv showed no video".to_owned());
    }
    if played.seconds < min_seconds || played.frames < min_frames {
        failures.push(format!(
            "mpv played {:.2} s and {} frames, expected {min_seconds} s and {min_frames} frames",
            played.seconds, played.frames
        ));
    }
    if failures.is_empty() {
        Ok(played)
    } else {
        Err(format!("{}\n{played:?}\nmpv's log ends:\n{}", failures.join("; "), tail(&run.log, 15)))
    }
}

/// Fails unless the mpv run passes [`judge_mpv`]; `context` names the run in the message.
pub(crate) fn assert_mpv_played(
    run: &MpvRun,
    min_seconds: f64,
    min_frames: u64,
    context: &str,
) -> MpvPlayback {
    judge_mpv(run, min_seconds, min_frames).unwrap_or_else(|why| panic!("{context}: {why}"))
}

// ---------------------------------------------------------------------------------------------
// VLC

/// What a VLC run played.
#[derive(Debug)]
pub(crate) struct VlcPlayback {
    /// How VLC exited and what it printed (its messages are on stderr).
    pub(crate) output: Output,
    /// Pictures VLC decoded and displayed: its video output wrote each one to a YUV4MPEG2 file.
    pub(crate) frames: u64,
    /// Frames per second, as the video output's file header states it.
    pub(crate) fps: f64,
}

/// Plays `seconds` of `url` with VLC (`cvlc`) after `prefix`, bounded in time, and counts the
/// pictures it displayed.
///
/// VLC refuses to run as root, so as root it runs as `nobody` (`runuser`), with a fresh home
/// directory. Its exit status says nothing (it exits 0 when it could not open the URL), so the
/// video output is VLC's `yuv` module: every displayed picture is appended to a YUV4MPEG2 file
/// (a header line, then `FRAME\n` and the raw picture for each), and the file's length counts
/// them. About 2 MB per second at 320×180, 25 frames/s; the directory is removed afterwards.
pub(crate) fn play_vlc(prefix: &[&str], url: &str, seconds: u32) -> VlcPlayback {
    let dir = TempDir::new("vlc");
    let home = dir.path().display().to_string();
    let video = dir.path().join("video.y4m");
    let mut command: Vec<String> = Vec::new();
    if is_root() {
        command.extend(["runuser", "-u", "nobody", "--"].map(str::to_owned));
    }
    command.extend(["env".to_owned(), format!("HOME={home}"), format!("XDG_RUNTIME_DIR={home}")]);
    command.extend(
        [
            "cvlc",
            "-I",
            "dummy",
            "--no-dbus",
            "--no-metadata-network-access",
            "--play-and-exit",
            "--aout",
            "dummy",
            "--vout",
            "yuv",
            "--yuv-yuv4mpeg2",
        ]
        .map(str::to_owned),
    );
    command.push(format!("--yuv-file={}", video.display()));
    command.push(format!("--run-time={seconds}"));
    command.push(url.to_owned());
    let output = run_bounded(prefix, &command, Duration::from_secs(seconds.into()) + PLAYER_SLACK);
    let (frames, fps) = count_y4m_frames(&video).unwrap_or((0, 0.0));
    VlcPlayback { output, frames, fps }
}

/// The frames in a YUV4MPEG2 file and its frame rate, from the header and the file's length
/// (only 4:2:0 pictures, VLC's default); `None` if there is no such file or its header is not
/// understood.
fn count_y4m_frames(path: &Path) -> Option<(u64, f64)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut head = [0u8; 256];
    let n = file.read(&mut head).ok()?;
    let header_end = head[..n].iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&head[..header_end]).ok()?;
    let mut fields = header.split(' ');
    if fields.next()? != "YUV4MPEG2" {
        return None;
    }
    let (mut width, mut height, mut fps) = (0u64, 0u64, 0.0);
    for field in fields {
        let (tag, value) = field.split_at(1);
        match tag {
            "W" => width = value.parse().ok()?,
            "H" => height = value.parse().ok()?,
            "F" => {
                let (num, den) = value.split_once(':')?;
                fps = num.parse::<f64>().ok()? / den.parse::<f64>().ok()?.max(1.0);
            }
            "C" if !value.starts_with("420") => return None,
            _ => {}
        }
    }
    let picture = width * height + 2 * width.div_ceil(2) * height.div_ceil(2);
    let body = len - (header_end as u64 + 1);
    Some((body / (b"FRAME\n".len() as u64 + picture), fps))
}

/// The frames a VLC run displayed, or why it failed: it did not exit (the time limit stopped
/// it) or displayed fewer than `min_frames` pictures.
pub(crate) fn judge_vlc(played: &VlcPlayback, min_frames: u64) -> Result<u64, String> {
    let mut failures = Vec::new();
    if !played.output.status.success() {
        failures.push(format!("VLC failed ({})", played.output.status));
    }
    if played.frames < min_frames {
        failures.push(format!("VLC displayed {} pictures, expected {min_frames}", played.frames));
    }
    if failures.is_empty() {
        Ok(played.frames)
    } else {
        let log = String::from_utf8_lossy(&played.output.stderr);
        Err(format!("{}; its log ends:\n{}", failures.join("; "), tail(&log, 15)))
    }
}

/// Fails unless the VLC run passes [`judge_vlc`]; `context` names the run in the message.
pub(crate) fn assert_vlc_played(played: &VlcPlayback, min_frames: u64, context: &str) -> u64 {
    judge_vlc(played, min_frames).unwrap_or_else(|why| panic!("{context}: {why}"))
}

/// A fresh directory anyone may write in (VLC runs as `nobody`), removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<temp dir>/shoal-<tag>-<pid>-<n>`.
    pub(crate) fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("shoal-{tag}-{}-{}", std::process::id(), unique()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temporary directory");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        TempDir(path)
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Ports

/// The first of `count` consecutive ports that are free on 127.0.0.1 for both TCP and UDP, so
/// that concurrent test processes (and tests within one) don't collide. Starts from a place
/// derived from the process id; the ports are released again before returning, so another
/// program could still take them first (unlikely in the ephemeral-port-free range used).
pub(crate) fn free_ports(count: u16) -> u16 {
    use std::net::{TcpListener, UdpSocket};
    let start = 20_000 + (std::process::id() * 37 + unique() * 101) % 20_000;
    for attempt in 0..200u32 {
        let base = (20_000 + (start + attempt * 13) % 20_000) as u16;
        let free = (base..base + count).all(|p| {
            TcpListener::bind(("127.0.0.1", p)).is_ok() && UdpSocket::bind(("127.0.0.1", p)).is_ok()
        });
        if free {
            return base;
        }
    }
    panic!("no {count} consecutive free ports on 127.0.0.1 between 20000 and 40000");
}
