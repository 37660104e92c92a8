//! Real HLS origins in front of real boxes: an origin host in the bed runs ffmpeg (a clip encoded
//! once, looped as live HLS) behind `origin.py` (plain HTTP or HTTPS, access log, injected
//! faults), and four `shoal` boxes ingest it and serve it to real players in their namespaces.
//! Needs root (CI runs as root); without it every test prints why it is skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use shoal::model::status::{Counters, SwarmReport};
use shoal_testbed::{make_test_ca, AccessEntry, ClipSpec, Fault, Origin, OriginOptions};

mod common;
use common::boxes::{alive_peers, json, read_json, BoxConfig, Boxes, HTTP_PORT};

/// The channel every box ingests from the origin.
const LIVE: &str = "live";

/// Boxes and an origin on one bed: hosts `0..boxes` are boxes, the last host is the origin.
/// One swarm at a time ([`Boxes::one_at_a_time`]): four boxes, an origin and eight players fill
/// two cores. Dereferences to its [`Boxes`].
struct Swarm {
    /// Declared first, so dropped first: the bed and its processes are gone before the origin.
    boxes: Boxes,
    origin: Origin,
}

impl Deref for Swarm {
    type Target = Boxes;
    fn deref(&self) -> &Boxes {
        &self.boxes
    }
}

impl DerefMut for Swarm {
    fn deref_mut(&mut self) -> &mut Boxes {
        &mut self.boxes
    }
}

fn skip() -> bool {
    common::skip(&[("ffmpeg", "ffmpeg"), ("python3", "python3")])
}

/// How a test wants its origin and channel.
#[derive(Default)]
struct Setup {
    options: OriginOptions,
    /// Make a test CA for the origin and give it to the boxes (`origin.ca_file`).
    https: bool,
    /// The channel's `max_bitrate`.
    max_bitrate: Option<u64>,
    /// Serve the master playlist rather than the single media playlist.
    master: bool,
    /// Ingest this path of the origin instead (written by the test before the boxes start).
    source_path: Option<&'static str>,
    /// Config text added to every box's (top-level tables, after `[origin]`).
    extra_config: String,
}

impl Swarm {
    fn start(name: &str, boxes: usize, setup: Setup) -> Swarm {
        Swarm::start_with(name, boxes, setup, |_| {})
    }

    /// Like `start`, calling `prepare` with the origin's web root before the boxes start.
    fn start_with(name: &str, n: usize, mut setup: Setup, prepare: impl FnOnce(&Path)) -> Swarm {
        let mut boxes = Boxes::one_at_a_time(name, n + 1);
        let origin_host = n;
        let ca = setup
            .https
            .then(|| make_test_ca(&boxes.dir.join("ca"), boxes.bed.ip(origin_host)).expect("test CA"));
        setup.options.tls = ca.clone();
        setup.options.clip_dir = Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
        let origin_dir = boxes.dir.join("origin");
        let origin = Origin::start(&mut boxes.bed, origin_host, &origin_dir, setup.options).expect("origin");
        origin.wait_for_segments(2, Duration::from_secs(20)).expect("the origin makes segments");
        prepare(origin.root());
        let source = match (setup.source_path, setup.master) {
            (Some(path), _) => origin.url(path),
            (None, true) => origin.url("master.m3u8"),
            (None, false) => origin.playlist_url(),
        };
        let mut config = String::new();
        if let Some(ca) = &ca {
            config.push_str(&format!("[origin]\nca_file = \"{}\"\n", ca.ca_pem.display()));
        }
        config.push_str(&setup.extra_config.replace("{origin}", &origin.url("")));
        config.push_str(&format!("[[channel]]\nid = \"{LIVE}\"\nsource = \"{source}\"\n"));
        if let Some(cap) = setup.max_bitrate {
            config.push_str(&format!("max_bitrate = {cap}\n"));
        }
        boxes.start(vec![BoxConfig::new(config); n]);
        let all_peers = boxes.wait_all(Duration::from_secs(30), |s| alive_peers(s) + 1 >= n);
        assert!(all_peers, "the boxes did not find each other:\n{}", boxes.logs());
        Swarm { boxes, origin }
    }

    /// Plays `path` from box `i` in real time with ffmpeg, judging it as a TV would.
    fn play(&self, i: usize, path: &str, seconds: u32) -> Realtime {
        play_realtime(&self.prefix(i), &self.url(i, path), seconds)
    }

    /// A counter of box `i`'s status, 0 when it does not answer.
    fn counter(&self, i: usize, counter: impl Fn(&Counters) -> u64) -> u64 {
        self.status(i).map_or(0, |s| counter(&s.counters))
    }

    /// Waits until the origin has heard nothing for 6 s (nobody fetches any more), at most
    /// `limit`; how long after `since` its last request came.
    fn wait_for_origin_silence(&self, since: Instant, limit: Duration) -> Duration {
        let mut requests = self.origin.fetch_log().len();
        let mut last_request = since;
        while last_request.elapsed() < Duration::from_secs(6) {
            assert!(since.elapsed() < limit, "the origin is still fetched with no viewer");
            std::thread::sleep(Duration::from_millis(500));
            let now = self.origin.fetch_log().len();
            if now != requests {
                (requests, last_request) = (now, Instant::now());
            }
        }
        last_request.duration_since(since)
    }

    /// Once nobody fetches: `/api/swarm` of box `i` counts the requests and bytes the origin's
    /// own access log shows (every request: playlists, init sections, segments, failed and
    /// cut-off ones), but for at most the last one: the ingest is cancelled when demand ends,
    /// and a request it had in flight then is logged by the origin and never answered to the
    /// box (the issue's "± the requests still in flight"). Its report.
    fn assert_accounting_matches_the_origin_log(&self, i: usize) -> SwarmReport {
        self.assert_accounting_matches(i, &self.origin.fetch_log())
    }

    /// As [`Swarm::assert_accounting_matches_the_origin_log`], against `log`: the part of the
    /// origin's log made by the boxes that still answer (a killed box's counters die with it).
    fn assert_accounting_matches(&self, i: usize, log: &[AccessEntry]) -> SwarmReport {
        let (code, report) = self.get(i, "/api/swarm");
        assert_eq!(code, 200);
        let report: SwarmReport =
            read_json(&format!("box {i}'s /api/swarm"), &String::from_utf8_lossy(&report));
        let traffic = &report.totals.traffic;
        let counted = |log: &[AccessEntry]| {
            let segments = log.iter().filter(|e| e.is_media_segment()).count() as u64;
            (log.len() as u64, log.iter().map(|e| e.sent).sum::<u64>(), segments)
        };
        let whole = counted(log);
        let but_last = counted(&log[..log.len().saturating_sub(1)]);
        let reported = (traffic.origin_requests, traffic.bytes_from_origin, traffic.segments_from_origin);
        assert!(
            reported == whole || reported == but_last,
            "requests, bytes, segment requests: the swarm says {reported:?}, the origin's log {whole:?} \
             ({but_last:?} without its last request)\n{report:#?}\n{log:#?}"
        );
        report
    }

    /// The segment numbers the origin's playlist lists right now, oldest first.
    fn origin_lists(&self) -> Vec<u64> {
        self.origin.listed_segments(LIVE)
    }

    /// The origin's newest listed segment, once it lists one.
    fn origin_newest(&self) -> u64 {
        *self.origin_lists().last().expect("the origin lists segments")
    }

    /// Waits (at most `limit`) until the origin's playlist lists segment `seq`.
    fn wait_until_the_origin_lists(&self, seq: u64, limit: Duration) {
        let listed = common::wait_until(limit, || self.origin_newest() >= seq);
        assert!(listed, "the origin never listed segment {seq}: it lists {:?}", self.origin_lists());
    }

    /// Takeovers counted by every box that answers.
    fn takeovers(&self) -> u64 {
        (0..self.len()).filter_map(|i| self.status(i)).map(|s| s.counters.takeovers).sum()
    }

    /// Asks box 0 for the playlist (starting the channel) and returns the ingester.
    fn ingester_after_first_request(&self) -> usize {
        let (code, _) = self.get(0, "/hls/live/index.m3u8");
        assert_eq!(code, 200, "the first request starts the channel:\n{}", self.logs());
        self.ingester(LIVE, Duration::from_secs(10))
    }
}

/// The origin's media segment answers, judged as the issue's floor counts them: whole answers
/// per distinct segment, with the failed ones (a 404, a truncated or cut-off body, a client that
/// gave up) counted apart.
#[derive(Debug)]
struct SegmentAnswers {
    /// Whole answers, by segment number.
    whole: BTreeMap<u64, usize>,
    /// Every other segment request.
    failed: Vec<AccessEntry>,
}

impl SegmentAnswers {
    fn of<'a>(log: impl IntoIterator<Item = &'a AccessEntry>) -> SegmentAnswers {
        let mut answers = SegmentAnswers { whole: BTreeMap::new(), failed: Vec::new() };
        for entry in log.into_iter().filter(|e| e.method == "GET") {
            let Some(seq) = entry.segment_number() else { continue };
            let whole = entry.status == 200 && entry.truncated.is_none() && entry.length == Some(entry.sent);
            if whole {
                *answers.whole.entry(seq).or_default() += 1;
            } else {
                answers.failed.push(entry.clone());
            }
        }
        answers
    }

    /// Whole answers ÷ distinct segments answered whole.
    fn per_segment(&self) -> f64 {
        self.whole.values().sum::<usize>() as f64 / self.whole.len().max(1) as f64
    }

    /// Who made the failed requests (retries included).
    fn failing_clients(&self) -> BTreeSet<IpAddr> {
        self.failed.iter().map(|e| e.client).collect()
    }

    /// Fails unless each segment was answered whole about once (≤ 1.02 per segment) and every
    /// failed request came from one box.
    fn assert_once(&self, context: &str) {
        assert!(
            self.per_segment() <= 1.02,
            "{context}: {:.3} whole answers per segment: {self:#?}",
            self.per_segment()
        );
        assert!(
            self.failing_clients().len() <= 1,
            "{context}: failed segment requests were retried by more than one box: {self:#?}"
        );
    }
}

/// TVs that keep asking each box for the channel's playlist once a second (as a TV's player
/// does through an outage), so that every box wants the channel; they stop when dropped. They
/// own what they need, so the test may stop and start the origin meanwhile.
struct Pollers {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Pollers {
    fn start(swarm: &Swarm, boxes: &[usize]) -> Pollers {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = boxes
            .iter()
            .map(|&i| {
                let stop = stop.clone();
                let prefix = swarm.prefix(i).map(str::to_owned);
                let mut curl: Vec<String> =
                    ["curl", "-s", "-o", "/dev/null", "--max-time", "3"].map(str::to_owned).into();
                curl.push(swarm.url(i, "/hls/live/index.m3u8"));
                std::thread::spawn(move || {
                    let prefix = prefix.each_ref().map(String::as_str);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        common::run_bounded(&prefix, &curl, Duration::from_secs(5));
                        std::thread::sleep(Duration::from_secs(1));
                    }
                })
            })
            .collect();
        Pollers { stop, threads }
    }
}

impl Drop for Pollers {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// An ffmpeg run judged against a TV's real-time playhead.
#[derive(Debug)]
struct Realtime {
    /// Frames decoded.
    frames: u64,
    /// Media seconds decoded.
    media: f64,
    /// The worst moment: how far the playhead of a TV that starts once it has one segment
    /// buffered would have been ahead of the decoded media (positive: the TV ran out).
    worst_underrun: f64,
    stderr: String,
    success: bool,
}

impl Realtime {
    /// Fails unless the run decoded without error at least `min_frames`, and never fell behind
    /// a TV's playhead by more than [`STALL_TOLERANCE`].
    fn assert_ok(&self, min_frames: u64, context: &str) {
        assert!(self.success, "{context}: the player failed: {}", self.stderr);
        assert!(self.stderr.trim().is_empty(), "{context}: decode errors: {}", self.stderr);
        assert!(
            self.frames >= min_frames,
            "{context}: {} frames ({:.1} s of media), expected {min_frames}: {self:?}",
            self.frames,
            self.media
        );
        assert!(
            self.worst_underrun <= STALL_TOLERANCE,
            "{context}: playback stalled for {:.1} s: {self:?}",
            self.worst_underrun
        );
    }
}

/// Media a TV holds before it starts showing: one 2 s segment.
const START_BUFFER: f64 = 2.0;
/// How far behind its playhead a TV's decoder may fall before the picture freezes: what players
/// keep beyond the start buffer (VLC's default network caching is 1 s; mpv keeps more).
const STALL_TOLERANCE: f64 = 1.0;

/// Plays `url` with ffmpeg (after `prefix`) for `seconds` of media, timing its progress reports:
/// a TV starts showing once it holds [`START_BUFFER`] of media and then needs media at real
/// time.
fn play_realtime(prefix: &[&str], url: &str, seconds: u32) -> Realtime {
    let limit = seconds as u64 + 30;
    let mut player = common::player_args(url, seconds);
    // Progress four times a second, for the playhead check (a global option: before the input).
    player.splice(1..1, ["-stats_period".to_owned(), "0.25".to_owned()]);
    let mut child = Command::new("timeout")
        .args(["-k", "5", &limit.to_string()])
        .args(prefix)
        .args(player)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg starts");
    let stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
        text
    });
    let mut frames = 0;
    let mut media = 0.0f64;
    let mut start: Option<Instant> = None;
    let mut worst = f64::NEG_INFINITY;
    for line in BufReader::new(child.stdout.take().expect("piped")).lines().map_while(Result::ok) {
        if let Some(f) = line.strip_prefix("frame=") {
            frames = f.trim().parse().unwrap_or(frames);
        }
        if let Some(us) = line.strip_prefix("out_time_us=") {
            let Ok(us) = us.trim().parse::<i64>() else { continue };
            media = us.max(0) as f64 / 1e6;
            let now = Instant::now();
            if start.is_none() && media >= START_BUFFER {
                // The TV starts showing media position 0 here.
                start = Some(now);
            }
            if let Some(t0) = start {
                let playhead = now.duration_since(t0).as_secs_f64();
                worst = worst.max(playhead - media);
            }
        }
    }
    let status = child.wait().expect("ffmpeg exits");
    Realtime {
        frames,
        media,
        worst_underrun: worst,
        stderr: errors.join().unwrap_or_default(),
        success: status.success(),
    }
}

/// Four boxes, one live MPEG-TS origin: on every box ffmpeg and mpv play from `/hls` and `/ts`
/// in real time, the origin sends each segment once, and the swarm's figures (DESIGN.md §5)
/// are printed.
#[test]
fn four_boxes_play_a_live_origin_fetching_each_segment_once() {
    if skip() {
        return;
    }
    let swarm = Swarm::start("four", 4, Setup::default());
    let started = Instant::now();
    // Sixteen TVs at once, four per box: ffmpeg and mpv on /hls and on /ts (320x180 decodes in
    // a few % of a core each).
    let paths = ["/hls/live/index.m3u8", "/ts/live"];
    let (ffmpeg_runs, mpv_runs) = std::thread::scope(|s| {
        let swarm = &swarm;
        let tvs = || (0..4).flat_map(|i| paths.map(move |path| (i, path)));
        let ffmpeg: Vec<_> = tvs()
            .map(|(i, path)| (format!("box {i} {path}"), s.spawn(move || swarm.play(i, path, 20))))
            .collect();
        let mpv: Vec<_> = tvs()
            .map(|(i, path)| {
                let url = swarm.url(i, path);
                (format!("box {i} {path}"), s.spawn(move || common::play_mpv(&swarm.prefix(i), &url, 20)))
            })
            .collect();
        let ffmpeg: Vec<_> = ffmpeg.into_iter().map(|(name, p)| (name, p.join().expect("ffmpeg"))).collect();
        let mpv: Vec<_> = mpv.into_iter().map(|(name, p)| (name, p.join().expect("mpv"))).collect();
        (ffmpeg, mpv)
    });
    for (name, run) in ffmpeg_runs {
        eprintln!("ffmpeg, {name}: {run:?}");
        run.assert_ok(20 * 25 - 10, &format!("ffmpeg, {name}"));
    }
    for (name, run) in mpv_runs {
        let played = common::assert_mpv_played(&run, 19.0, 19 * 25, &format!("mpv, {name}"));
        eprintln!("mpv, {name}: {played:?}");
        assert_eq!(played.waiting, 0, "mpv, {name}: the picture stood still while mpv waited for data");
    }
    let fetches = swarm.origin.segment_fetches();
    let per_segment = swarm.origin.fetches_per_segment().expect("the origin served segments");
    assert!(per_segment <= 1.02, "origin fetches per segment {per_segment:.3}: {fetches:?}");
    let sum = |counter: fn(&Counters) -> u64| (0..4).map(|i| swarm.counter(i, counter)).sum::<u64>();
    let (origin_bytes, peer_bytes, served) =
        (sum(|c| c.origin_bytes), sum(|c| c.peer_bytes), sum(|c| c.served_bytes));
    let efficiency = peer_bytes as f64 / (peer_bytes + origin_bytes) as f64;
    let savings = 1.0 - origin_bytes as f64 / served as f64;
    eprintln!(
        "FIGURES over {:.0} s, 4 boxes, 16 players: origin fetches per segment {per_segment:.3} \
         ({} segments); peer efficiency {efficiency:.3} (best 0.75); uplink savings {savings:.3} \
         (origin {origin_bytes} B, peers {peer_bytes} B, served to TVs {served} B)",
        started.elapsed().as_secs_f64(),
        fetches.len()
    );
    // Four boxes: at best (4 - 1) / 4.
    assert!(efficiency > 0.7, "peer efficiency {efficiency:.3}");

    // The swarm report agrees with the origin's own count of what it sent (checked exactly once
    // the channel is released, below); the figures follow from it.
    let (code, report) = swarm.get(2, "/api/swarm");
    assert_eq!(code, 200);
    let report: SwarmReport = read_json("box 2's /api/swarm", &String::from_utf8_lossy(&report));
    assert_eq!(report.boxes.len(), 4, "{report:#?}");
    let totals = &report.totals;
    let reported = totals.figures.uplink_savings.expect("a figure");
    let tvs = totals.traffic.bytes_to_tvs;
    let from_report = 1.0 - totals.traffic.bytes_from_origin as f64 / tvs as f64;
    assert!((reported - from_report).abs() < 1e-9, "{reported} vs {from_report}");

    // Prometheus reads the metrics as they are.
    let (code, metrics) = swarm.get(0, "/metrics");
    assert_eq!(code, 200);
    let path = swarm.dir.join("metrics.txt");
    std::fs::write(&path, &metrics).expect("metrics saved");
    common::require("promtool", "prometheus");
    let check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&path).expect("metrics file"))
        .output()
        .expect("promtool runs");
    assert!(
        check.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(metrics.contains("shoal_channel_tv_bytes_total{channel=\"live\"}"), "{metrics}");
    // Sixteen TVs on one channel: at best 1 - 1/16, less the cold start's extra segments.
    assert!(savings > 0.85, "uplink savings {savings:.3}");

    // Nobody watches any more: the viewers time out (6 s), the boxes stop wanting the channel,
    // the ingester lingers three target durations (6 s) in case a TV comes back, then stops:
    // the origin hears nothing more.
    let stopped_after = swarm.wait_for_origin_silence(Instant::now(), Duration::from_secs(30));
    eprintln!("the origin's last request came {stopped_after:?} after the players ended");
    assert!(stopped_after < Duration::from_secs(18), "fetching went on {stopped_after:?} without viewers");
    let report = swarm.assert_accounting_matches_the_origin_log(2);
    let segment_fetches = swarm.origin.fetches_per_segment().expect("segments");
    let reported = report.totals.figures.origin_fetches_per_segment.expect("a figure");
    assert!((reported - segment_fetches).abs() < 1e-9, "{reported} vs the origin's {segment_fetches}");
}

/// HTTPS with a certificate from a test CA the config names, through a master playlist with two
/// variants: the box takes the best variant under its cap, and only that one is fetched.
#[test]
fn https_master_playlist_plays_the_variant_under_the_cap() {
    if skip() {
        return;
    }
    let options = OriginOptions {
        variants: vec![("low".into(), ClipSpec::SMALL), ("high".into(), ClipSpec::MEDIUM)],
        ..OriginOptions::default()
    };
    let setup = Setup { options, https: true, max_bitrate: Some(800_000), master: true, ..Setup::default() };
    let swarm = Swarm::start("https", 2, setup);
    // Both boxes, /hls and /ts, at once.
    let runs: Vec<_> = std::thread::scope(|s| {
        let swarm = &swarm;
        let players: Vec<_> =
            [(0, "/hls/live/index.m3u8"), (0, "/ts/live"), (1, "/hls/live/index.m3u8"), (1, "/ts/live")]
                .map(|(i, path)| {
                    (format!("box {i} {path} over HTTPS"), s.spawn(move || swarm.play(i, path, 20)))
                })
                .into_iter()
                .collect();
        players.into_iter().map(|(name, p)| (name, p.join().expect("player"))).collect()
    });
    for (name, run) in &runs {
        run.assert_ok(20 * 25 - 10, name);
    }
    let log = swarm.origin.fetch_log();
    let segments: Vec<&str> = log.iter().filter(|e| e.is_media_segment()).map(|e| e.path.as_str()).collect();
    assert!(!segments.is_empty(), "no segment fetched: {log:?}");
    assert!(segments.iter().all(|p| p.contains("/low/")), "a segment of another variant: {segments:?}");
    let (code, _) = swarm.get(0, "/hls/live/index.m3u8");
    assert_eq!(code, 200);
}

/// An fMP4 origin: segments carry their init section through the swarm and TVs get
/// `EXT-X-MAP`; `/ts` refuses the channel with a reason.
#[test]
fn fmp4_origin_plays_through_hls() {
    if skip() {
        return;
    }
    let setup =
        Setup { options: OriginOptions { fmp4: true, ..OriginOptions::default() }, ..Setup::default() };
    let swarm = Swarm::start("fmp4", 2, setup);
    let ingester = swarm.ingester_after_first_request();
    let other = 1 - ingester;
    let played = swarm.play(other, "/hls/live/index.m3u8", 20);
    played.assert_ok(20 * 25 - 10, "the non-ingesting box, fMP4");
    let (code, playlist) = swarm.get(other, "/hls/live/index.m3u8");
    let playlist = String::from_utf8_lossy(&playlist);
    assert_eq!(code, 200);
    assert!(playlist.contains("#EXT-X-MAP:URI=\"init-") && playlist.contains(".m4s"), "{playlist}");
    let (code, _) = swarm.get(other, "/ts/live");
    assert_eq!(code, 404, "an fMP4 channel is not MPEG-TS");
}

/// The ingester dies mid-playback: players on the other boxes never notice.
#[test]
fn players_keep_playing_when_the_ingester_is_killed() {
    if skip() {
        return;
    }
    let mut swarm = Swarm::start("kill", 4, Setup::default());
    let ingester = swarm.ingester_after_first_request();
    let others: Vec<usize> = (0..4).filter(|&i| i != ingester).take(2).collect();
    let pid = swarm.pid(ingester);
    let (a, b) = std::thread::scope(|s| {
        let shared: &Swarm = &swarm;
        let a = s.spawn(|| shared.play(others[0], "/hls/live/index.m3u8", 30));
        let b = s.spawn(|| shared.play(others[1], "/ts/live", 30));
        std::thread::sleep(Duration::from_secs(10));
        let killed = Command::new("kill").args(["-9", &pid.to_string()]).status().expect("kill runs");
        assert!(killed.success(), "kill -9 the ingester");
        (a.join().expect("player"), b.join().expect("player"))
    });
    // Reaped, and no longer counted as running.
    swarm.kill(ingester);
    eprintln!("after the kill: /hls {a:?}\n/ts {b:?}");
    a.assert_ok(30 * 25 - 10, "/hls across the kill");
    b.assert_ok(30 * 25 - 10, "/ts across the kill");
    let new_ingester = swarm.ingester(LIVE, Duration::from_secs(5));
    assert_ne!(new_ingester, ingester);

    // The new ingester goes on where the dead one stopped: each segment fetched whole once
    // across the kill (one box fetching at a time), and the survivors' figures are the part of
    // the origin's log they made (the dead box's counters died with it).
    swarm.wait_for_origin_silence(Instant::now(), Duration::from_secs(30));
    let log = swarm.origin.fetch_log();
    let answers = SegmentAnswers::of(&log);
    eprintln!("across the kill: {answers:?}");
    answers.assert_once("kill -9 of the ingester");
    let dead = IpAddr::V4(swarm.bed.ip(ingester));
    let survivors: Vec<AccessEntry> = log.into_iter().filter(|e| e.client != dead).collect();
    assert!(!survivors.is_empty(), "the new ingester fetched from the origin");
    swarm.assert_accounting_matches(new_ingester, &survivors);
}

/// The origin cuts segments short (full length announced, connection closed) and then serves
/// cut files with matching lengths: no such segment ever reaches a TV, and playback goes on.
#[test]
fn truncated_segments_never_reach_a_tv() {
    if skip() {
        return;
    }
    let swarm = Swarm::start("truncated", 2, Setup::default());
    swarm.ingester_after_first_request();
    let check_window = |round: &str| {
        let (code, playlist) = swarm.get(1, "/hls/live/index.m3u8");
        assert_eq!(code, 200, "{round}");
        let playlist = String::from_utf8_lossy(&playlist).into_owned();
        let mut compared = 0;
        for name in playlist.lines().filter(|l| l.ends_with(".ts")) {
            let (code, served) = swarm.get(1, &format!("/hls/live/{name}"));
            let seq: u64 = name.trim_end_matches(".ts").parse().expect("number");
            let original = std::fs::read(swarm.origin.root().join(format!("live/seg{seq}.ts")));
            // A segment the origin cut may be gone from disk by now; one it still has must match.
            if code != 200 {
                continue;
            }
            if let Ok(original) = original {
                assert_eq!(
                    Sha256::digest(&served),
                    Sha256::digest(&original),
                    "{round}: box 1 serves segment {seq} unlike the origin's file"
                );
                compared += 1;
            }
        }
        assert!(compared >= 2, "{round}: compared only {compared} segments:\n{playlist}");
        playlist
    };
    swarm.origin.set_fault(Fault::Short { every: 3 }).expect("fault set");
    std::thread::sleep(Duration::from_secs(9));
    let played = swarm.play(1, "/hls/live/index.m3u8", 8);
    assert!(played.stderr.trim().is_empty() && played.success, "decode errors: {played:?}");
    check_window("short answers");
    swarm.origin.set_fault(Fault::Cut { every: 3 }).expect("fault set");
    std::thread::sleep(Duration::from_secs(9));
    let playlist = check_window("cut files");
    let truncated = swarm.origin.truncated_segments();
    assert!(truncated.len() >= 2, "the origin truncated only {truncated:?}");
    assert!(playlist.contains("#EXT-X-DISCONTINUITY"), "a skipped segment is a discontinuity:\n{playlist}");
    // Cut-off answers and their retries are counted like any request, by the one box that made
    // them: once nobody watches, the swarm's count is the origin's.
    swarm.wait_for_origin_silence(Instant::now(), Duration::from_secs(40));
    let report = swarm.assert_accounting_matches_the_origin_log(1);
    let failed: u64 = (0..2)
        .filter_map(|i| swarm.status(i))
        .flat_map(|s| s.channels)
        .map(|c| c.origin_requests.failed)
        .sum();
    assert!(failed >= 2, "the cut-off answers are counted as failed requests: {report:#?}");
    let clients: BTreeSet<_> = swarm.origin.fetch_log().iter().map(|e| e.client).collect();
    assert_eq!(clients.len(), 1, "one box asked the origin, retries included: {clients:?}");
    SegmentAnswers::of(&swarm.origin.fetch_log()).assert_once("truncated segments");
}

/// A channel nobody watched for 10 s is tuned in on two boxes at once: the origin serves each
/// segment once (no box takes over from an ingester that is only starting), and the swarm's
/// figures are the origin's own log.
#[test]
fn a_channel_tuned_in_after_idling_is_fetched_once() {
    if skip() {
        return;
    }
    let swarm = Swarm::start("idle", 4, Setup::default());
    std::thread::sleep(Duration::from_secs(10));
    assert!(swarm.origin.fetch_log().is_empty(), "an unwatched channel is not fetched");
    let runs = std::thread::scope(|s| {
        let swarm = &swarm;
        let players: Vec<_> =
            [1, 3].map(|i| s.spawn(move || (i, swarm.play(i, "/hls/live/index.m3u8", 16)))).into();
        players.into_iter().map(|p| p.join().expect("player")).collect::<Vec<_>>()
    });
    for (i, run) in runs {
        run.assert_ok(16 * 25 - 10, &format!("box {i}"));
    }
    assert_eq!(swarm.takeovers(), 0, "nobody took over from a starting ingester:\n{}", swarm.logs());
    let fetches = swarm.origin.segment_fetches();
    let per_segment = swarm.origin.fetches_per_segment().expect("segments");
    assert!(per_segment <= 1.02, "origin fetches per segment {per_segment:.3}: {fetches:?}");
    let clients: BTreeSet<_> = swarm.origin.fetch_log().iter().map(|e| e.client).collect();
    assert_eq!(clients.len(), 1, "one box fetches: {clients:?}");
    let players_ended = Instant::now();
    swarm.wait_for_origin_silence(players_ended, Duration::from_secs(30));
    swarm.assert_accounting_matches_the_origin_log(0);

    // Twenty seconds off, then a TV comes back to the channel, on a box that still holds the
    // old window: it waits for a fresh one like a cold start (no stale-window 503), and the
    // origin still serves each segment once.
    std::thread::sleep(Duration::from_secs(20).saturating_sub(players_ended.elapsed()));
    let before = swarm.origin.fetch_log().len();
    let (code, body) = swarm.get(1, "/hls/live/index.m3u8");
    assert_eq!(code, 200, "a re-tune after 20 s plays: {}\n{}", String::from_utf8_lossy(&body), swarm.logs());
    let run = swarm.play(1, "/hls/live/index.m3u8", 10);
    run.assert_ok(10 * 25 - 10, "the re-tune after 20 s off");
    assert_eq!(swarm.takeovers(), 0, "nobody took over when the channel returned:\n{}", swarm.logs());
    let log = swarm.origin.fetch_log();
    assert!(log.len() > before, "the re-tune fetched from the origin again");
    SegmentAnswers::of(&log).assert_once("idle, then a re-tune after 20 s off");
    let clients: BTreeSet<_> = log.iter().map(|e| e.client).collect();
    assert_eq!(clients.len(), 1, "one box fetches, before and after: {clients:?}");
    swarm.wait_for_origin_silence(Instant::now(), Duration::from_secs(30));
    swarm.assert_accounting_matches_the_origin_log(2);
}

/// Faults during playback, each in its turn, on four boxes whose TVs tuned in after the channel
/// idled for 10 s: a segment that answers 404, then one that takes 1.5 target durations to
/// arrive, then the origin down for 15 s. Origin trouble is the origin's, not the ingester's:
/// nobody takes over, each segment is fetched whole once, retries come from the ingester alone,
/// every segment the origin still lists when it returns reaches every box, and the swarm's
/// figures are the origin's own log.
#[test]
fn origin_faults_during_playback_cost_no_second_fetch() {
    if skip() {
        return;
    }
    let mut swarm = Swarm::start("faults", 4, Setup::default());
    std::thread::sleep(Duration::from_secs(10));
    assert!(swarm.origin.fetch_log().is_empty(), "an unwatched channel is not fetched");

    // A 404, then a slow segment, while a TV plays on every box.
    let (runs, missing, slow) = std::thread::scope(|s| {
        let swarm = &swarm;
        let players: Vec<_> = [
            (0, "/hls/live/index.m3u8"),
            (1, "/hls/live/index.m3u8"),
            (2, "/ts/live"),
            (3, "/hls/live/index.m3u8"),
        ]
        .map(|(i, path)| (format!("box {i} {path}"), s.spawn(move || swarm.play(i, path, 28))))
        .into();
        std::thread::sleep(Duration::from_secs(4));
        let missing = swarm.origin_newest() + 2;
        swarm.origin.set_fault(Fault::Missing { seq: missing }).expect("fault set");
        swarm.wait_until_the_origin_lists(missing + 2, Duration::from_secs(15));
        let slow = swarm.origin_newest() + 2;
        let delay = Duration::from_secs(3);
        swarm.origin.set_fault(Fault::Slow { seq: slow, delay }).expect("fault set");
        swarm.wait_until_the_origin_lists(slow + 1, Duration::from_secs(15));
        let asked = common::wait_until(Duration::from_secs(15), || {
            swarm.origin.fetch_log().iter().any(|e| e.segment_number() == Some(slow))
        });
        assert!(asked, "nobody fetched the slow segment {slow}");
        swarm.origin.set_fault(Fault::None).expect("fault cleared");
        let runs: Vec<_> = players.into_iter().map(|(name, p)| (name, p.join().expect("player"))).collect();
        (runs, missing, slow)
    });
    for (name, run) in &runs {
        eprintln!("{name}: {run:?}");
        assert!(run.success && run.stderr.trim().is_empty(), "{name}: decode errors: {run:?}");
        assert!(run.frames >= 24 * 25, "{name}: played too little: {run:?}");
    }
    let log = swarm.origin.fetch_log();
    let answers = SegmentAnswers::of(&log);
    answers.assert_once("a 404 and a slow segment");
    assert!(
        answers.failed.iter().any(|e| e.segment_number() == Some(missing) && e.status == 404),
        "the origin answered segment {missing} with 404: {answers:#?}"
    );
    let slow_answers: Vec<_> = log.iter().filter(|e| e.segment_number() == Some(slow)).collect();
    assert_eq!(slow_answers.len(), 1, "the slow segment is waited for, not asked twice: {slow_answers:#?}");
    assert_eq!(swarm.takeovers(), 0, "a 404 or a slow segment is no reason to take over:\n{}", swarm.logs());

    // The origin down for 15 s while TVs keep asking every box.
    let ingester = swarm.ingester(LIVE, Duration::from_secs(5));
    let back_lists = {
        let _tvs = Pollers::start(&swarm, &[0, 1, 2, 3]);
        let Swarm { boxes, origin } = &mut swarm;
        origin.stop_server(&mut boxes.bed).expect("origin stopped");
        std::thread::sleep(Duration::from_secs(15));
        let before = swarm.origin.fetch_log().len();
        let Swarm { boxes, origin } = &mut swarm;
        origin.start_server(&mut boxes.bed).expect("origin back");
        let back = Instant::now();
        // The ingester asks again within a target duration (its retries are capped so): the
        // segments the origin lists then are the ones it still has for the swarm. (Read after
        // the box's request, the list can only be newer than what the box was answered.)
        let asked = common::wait_until(Duration::from_secs(10), || swarm.origin.fetch_log().len() > before);
        let first_ask = back.elapsed();
        assert!(asked && first_ask <= Duration::from_secs(3), "the ingester asked again after {first_ask:?}");
        let lists = swarm.origin_lists();
        // Every segment the origin listed when it came back reaches every box.
        let held = |i: usize| -> Vec<u64> {
            lists
                .iter()
                .copied()
                .filter(|seq| swarm.get(i, &format!("/hls/live/{seq}.ts")).0 == 200)
                .collect()
        };
        let reached = common::wait_until(Duration::from_secs(20), || (0..4).all(|i| held(i) == lists));
        if !reached {
            let held: Vec<Vec<u64>> = (0..4).map(held).collect();
            panic!(
                "the origin listed {lists:?} when it came back; the boxes hold {held:?}:\n{}",
                swarm.logs()
            );
        }
        lists
    };
    // And they are the origin's segments, byte for byte, where it still has them.
    for seq in &back_lists {
        let Ok(original) = std::fs::read(swarm.origin.root().join(format!("live/seg{seq}.ts"))) else {
            continue;
        };
        for i in 0..4 {
            let (_, served) = swarm.get(i, &format!("/hls/live/{seq}.ts"));
            assert_eq!(Sha256::digest(&served), Sha256::digest(&original), "box {i}, segment {seq}");
        }
    }
    let played = swarm.play(3, "/hls/live/index.m3u8", 8);
    played.assert_ok(8 * 25 - 10, "after the origin returned");
    assert_eq!(swarm.takeovers(), 0, "an origin outage is no reason to take over:\n{}", swarm.logs());
    assert_eq!(swarm.ingester(LIVE, Duration::from_secs(5)), ingester, "the ingester stayed");

    swarm.wait_for_origin_silence(Instant::now(), Duration::from_secs(30));
    let log = swarm.origin.fetch_log();
    let answers = SegmentAnswers::of(&log);
    answers.assert_once("a 404, a slow segment and a 15 s outage");
    let clients: BTreeSet<_> = log.iter().map(|e| e.client).collect();
    assert_eq!(clients.len(), 1, "one box fetched, retries included: {clients:?}");
    let report = swarm.assert_accounting_matches_the_origin_log(1);
    eprintln!(
        "FAULTS: {} segment requests for {} segments, {} failed; the swarm counted {:?}",
        log.iter().filter(|e| e.is_media_segment()).count(),
        answers.whole.len(),
        answers.failed.len(),
        report.totals.traffic
    );
}

/// A master playlist whose best variant answers 404: the box sets it aside and plays the next
/// best within three target durations, says which in its status, and asks the broken one
/// again only after a while.
#[test]
fn a_master_playlist_with_a_broken_top_variant_plays_the_next() {
    if skip() {
        return;
    }
    let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=25000000,RESOLUTION=3840x2160\nuhd/index.m3u8\n\
                  #EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=320x180\nlive/index.m3u8\n";
    let setup = Setup { source_path: Some("broken-master.m3u8"), ..Setup::default() };
    let swarm = Swarm::start_with("variant", 2, setup, |root| {
        std::fs::write(root.join("broken-master.m3u8"), master).expect("master written");
    });
    let asked = Instant::now();
    let (code, _) = swarm.get(0, "/hls/live/index.m3u8");
    let waited = asked.elapsed();
    assert_eq!(code, 200, "plays despite the broken variant:\n{}", swarm.logs());
    assert!(waited <= Duration::from_secs(6), "within three target durations: {waited:?}");
    let played = swarm.play(1, "/hls/live/index.m3u8", 10);
    played.assert_ok(10 * 25 - 10, "the working variant");
    let ingester = swarm.ingester(LIVE, Duration::from_secs(5));
    let status = swarm.status(ingester).expect("status");
    let variant = status.channel(LIVE).and_then(|c| c.origin.as_ref()).and_then(|o| o.variant.clone());
    let variant = variant.expect("the variant in use is in the status");
    assert!(variant.url.ends_with("/live/index.m3u8") && variant.bandwidth == 800_000, "{variant:?}");
    let broken = swarm.origin.fetch_log().iter().filter(|e| e.path.contains("uhd/")).count();
    assert!(
        (1..=2).contains(&broken),
        "the broken variant is set aside, not retried on every poll: {broken}"
    );
    // The broken variant's 404s are counted like every other request.
    swarm.wait_for_origin_silence(Instant::now(), Duration::from_secs(30));
    SegmentAnswers::of(&swarm.origin.fetch_log()).assert_once("a broken top variant");
    swarm.assert_accounting_matches_the_origin_log(1);
}

/// The origin goes away: TVs get the buffered window, then a clear 503; when it returns, the
/// channel plays again.
#[test]
fn an_origin_outage_gives_the_window_then_503_then_recovers() {
    if skip() {
        return;
    }
    let mut swarm = Swarm::start("outage", 2, Setup::default());
    let ingester = swarm.ingester_after_first_request();
    // The TV is on the box that does not ingest: what it is told must come from the ingester.
    let tv = 1 - ingester;
    // `None`: no answer, or no LED.
    let led = |swarm: &Swarm, i: usize| swarm.status(i).and_then(|s| s.this_box.led);
    std::thread::sleep(Duration::from_secs(4));
    let Swarm { boxes, origin } = &mut swarm;
    origin.stop_server(&mut boxes.bed).expect("origin stopped");
    let stopped = Instant::now();
    // Right after the outage the window is still served.
    let (code, _) = swarm.get(tv, "/hls/live/index.m3u8");
    assert_eq!(code, 200, "the buffered window is served at first");
    let mut unavailable = None;
    while stopped.elapsed() < Duration::from_secs(30) {
        let (code, body) = swarm.get(tv, "/hls/live/index.m3u8");
        if code == 503 {
            unavailable = Some((stopped.elapsed(), String::from_utf8_lossy(&body).into_owned()));
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let (after, reason) = unavailable.expect("a 503 once the window is stale");
    assert!(reason.contains("origin"), "the 503 says why: {reason}");
    eprintln!("503 after {after:?}: {reason}");
    // Both LEDs say what is wrong: the ingester's, whose source fails, and the TV's box's, which
    // learns it from the ingester's announcement (it does not ingest, so it could not see it
    // itself; it showed "streaming" while its TVs got 503s before the health travelled).
    assert_eq!(led(&swarm, ingester).as_deref(), Some("origin-unreachable"));
    assert_eq!(led(&swarm, tv).as_deref(), Some("origin-unreachable"));
    let status = swarm.status(tv).expect("status");
    let live = status.channel(LIVE).expect("the channel");
    assert_eq!(live.origin_failing, Some(true), "the TV's box reports the ingester's word: {}", json(live));
    let Swarm { boxes, origin } = &mut swarm;
    origin.start_server(&mut boxes.bed).expect("origin back");
    let back = Instant::now();
    while back.elapsed() < Duration::from_secs(30) && swarm.get(tv, "/hls/live/index.m3u8").0 != 200 {
        std::thread::sleep(Duration::from_millis(500));
    }
    let played = swarm.play(tv, "/hls/live/index.m3u8", 10);
    played.assert_ok(10 * 25 - 10, "after the origin returned");
    assert_eq!(led(&swarm, ingester).as_deref(), Some("streaming"));
}

/// A VOD origin playlist is served whole with `ENDLIST`, with HEAD and Range on its segments; the
/// lineup names the XMLTV guide, passed through at `/xmltv`; nothing outside the routes is
/// reachable.
#[test]
fn vod_assets_ranges_and_the_guide_are_served() {
    if skip() {
        return;
    }
    const GUIDE: &str = "<?xml version=\"1.0\"?>\n<tv><channel id=\"live\"><display-name>Live</display-name></channel></tv>\n";
    let setup = Setup {
        source_path: Some("vod/index.m3u8"),
        extra_config: "[guide]\nxmltv = \"{origin}guide.xml\"\n[http]\nadmin_networks = [\"10.99.0.1/32\"]\n"
            .to_owned(),
        ..Setup::default()
    };
    let swarm = Swarm::start_with("vod", 2, setup, |www| {
        std::fs::create_dir_all(www.join("vod")).expect("vod dir");
        std::fs::write(www.join("guide.xml"), GUIDE).expect("guide");
        let clip = std::fs::read_dir(env!("CARGO_TARGET_TMPDIR"))
            .expect("clip dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("clip-320x180")))
            .expect("the origin's clip");
        let playlist = www.join("vod/index.m3u8");
        let out = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(&clip)
            .args([
                "-c",
                "copy",
                "-f",
                "hls",
                "-hls_time",
                "2",
                "-hls_playlist_type",
                "vod",
                "-hls_segment_filename",
            ])
            .arg(www.join("vod/v%d.ts"))
            .arg(&playlist)
            .output()
            .expect("ffmpeg runs");
        assert!(out.status.success(), "VOD packaging: {}", String::from_utf8_lossy(&out.stderr));
    });
    // The first request starts the channel; the whole asset arrives in a few seconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    let playlist = loop {
        let (code, body) = swarm.get(1, "/hls/live/index.m3u8");
        let body = String::from_utf8_lossy(&body).into_owned();
        if code == 200 && body.contains("#EXT-X-ENDLIST") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the VOD asset never completed ({code}):\n{body}\n{}",
            swarm.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD") && playlist.contains("#EXT-X-MEDIA-SEQUENCE:0\n"),
        "{playlist}"
    );
    let origin_segments = std::fs::read_dir(swarm.origin.root().join("vod")).expect("vod").count() - 1;
    assert_eq!(playlist.matches(".ts\n").count(), origin_segments, "every segment listed:\n{playlist}");
    let out = common::play_ffmpeg(&swarm.prefix(1), &swarm.url(1, "/hls/live/index.m3u8"), 60);
    let frames = common::judge_ffmpeg(&out, 14 * 25).unwrap_or_else(|why| panic!("VOD playback: {why}"));
    eprintln!("VOD: {frames} frames of {origin_segments} segments");

    // HEAD and Range on a segment, against the origin's file.
    let original = std::fs::read(swarm.origin.root().join("vod/v1.ts")).expect("origin segment");
    let url = swarm.url(1, "/hls/live/1.ts");
    let curl = |args: &[&str]| {
        let mut command = vec!["curl", "-s", "--max-time", "5"];
        command.extend_from_slice(args);
        command.push(&url);
        swarm.bed.exec(1, &command, Duration::from_secs(10)).expect("curl runs").stdout
    };
    let head = String::from_utf8_lossy(&curl(&["-I"])).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains(&format!("content-length: {}", original.len())), "{head}");
    assert!(head.contains("accept-ranges: bytes") && head.contains("content-type: video/mp2t"), "{head}");
    assert_eq!(curl(&["-r", "188-1127"]), original[188..1128].to_vec(), "a byte range");
    assert_eq!(curl(&["-r", "-376"]), original[original.len() - 376..].to_vec(), "a suffix range");
    let past = String::from_utf8_lossy(&curl(&["-r", "99999999-", "-o", "/dev/null", "-w", "%{http_code}"]))
        .into_owned();
    assert_eq!(past, "416");

    // The guide, and the lineup that names it.
    let (code, guide) = swarm.get(0, "/xmltv");
    assert_eq!((code, String::from_utf8_lossy(&guide).into_owned()), (200, GUIDE.to_owned()));
    let (_, lineup) = swarm.get(0, "/playlist.m3u");
    let lineup = String::from_utf8_lossy(&lineup);
    assert!(
        lineup.starts_with(&format!("#EXTM3U url-tvg=\"http://{}:{HTTP_PORT}/xmltv\"", swarm.bed.ip(0))),
        "{lineup}"
    );

    // Admin actions: only from the admin networks (box 0 admits 10.99.0.1 alone), and POST only.
    let post = |host: usize, path: &str| {
        let url = swarm.url(0, path);
        let out = swarm
            .bed
            .exec(host, &["curl", "-s", "-X", "POST", "-w", "\n%{http_code}", &url], Duration::from_secs(10))
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let refused = post(1, "/api/identify");
    assert!(refused.ends_with("\n403") && refused.contains("10.99.0.1/32"), "{refused}");
    let allowed = post(0, "/api/identify");
    assert!(allowed.ends_with("\n200") && allowed.contains("\"identifying\": true"), "{allowed}");
    let status = swarm.status(1).expect("box 1 answers");
    assert!(!status.this_box.identifying, "box 1 was not asked");
    assert!(post(0, "/api/lift-bans").ends_with("\n200"));
    // Another site's page in an admin's browser may not act for it.
    for header in ["Sec-Fetch-Site: cross-site", "Origin: http://evil.example"] {
        let url = swarm.url(0, "/api/identify");
        let out = swarm.bed.exec(
            0,
            &["curl", "-s", "-X", "POST", "-H", header, "-w", "\n%{http_code}", &url],
            Duration::from_secs(10),
        );
        let out = String::from_utf8_lossy(&out.expect("curl runs").stdout).into_owned();
        assert!(out.ends_with("\n403") && out.contains("another site"), "{header}: {out}");
    }
    assert!(post(0, "/api/reload").ends_with("\n200"));
    let (code, _) = swarm.get(0, "/api/identify");
    assert_eq!(code, 405, "admin actions are POST requests");

    // Bad requests get clear 4xx answers.
    let code_of = |args: &[&str]| {
        let mut command = vec!["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"];
        command.extend_from_slice(args);
        let out = swarm.bed.exec(0, &command, Duration::from_secs(10)).expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let long = swarm.url(0, &format!("/playlist.m3u?{}", "q".repeat(5000)));
    assert_eq!(code_of(&[&long]), "414", "a huge query string");
    assert_eq!(code_of(&["-X", "DELETE", &swarm.url(0, "/hls/live/index.m3u8")]), "405");
    assert_eq!(code_of(&["-X", "POST", &swarm.url(0, "/playlist.m3u")]), "405");
    assert_eq!(code_of(&["-H", &format!("X-Big: {}", "h".repeat(20_000)), &swarm.url(0, "/")]), "431");
    assert_eq!(code_of(&[&swarm.url(0, "/no/such/thing")]), "404");

    // Nothing else is reachable.
    for path in [
        "/hls/live/../../etc/passwd",
        "/hls/../../../etc/passwd",
        "/hls/live/%2e%2e%2fetc%2fpasswd",
        "/etc/passwd",
    ] {
        let out = swarm
            .bed
            .exec(
                0,
                &["curl", "-s", "--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", &swarm.url(0, path)],
                Duration::from_secs(10),
            )
            .expect("curl runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "404", "{path}");
    }
}
