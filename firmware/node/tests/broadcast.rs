//! Broadcast-style sources on real boxes: ffmpeg plays a headend on its own host of the bed
//! (a clip encoded once, looped with `-c copy` to a multicast group, over RTP, as an HTTP-TS
//! stream), the boxes cut the feed into segments and serve it, and real players (ffmpeg, mpv)
//! play it from every box. Needs root (CI runs as root); without it every test prints why it is
//! skipped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use shoal_testbed::{encode_clip, ClipSpec, ProcessId};

mod common;
use common::boxes::{channel, json, read_json, BoxConfig, Boxes};
use shoal::model::status::{Status, SwarmReport};
use shoal::model::InputStats;

fn skip() -> bool {
    common::skip(&[("ffmpeg", "ffmpeg")])
}

/// The input counters of channel `id` in a status: the channel must be there, with them.
fn input_of(status: &Status, id: &str) -> InputStats {
    let channel = channel(status, id).unwrap_or_else(|| panic!("no channel {id}: {}", json(status)));
    channel.input.unwrap_or_else(|| panic!("channel {id} has no input counters: {}", json(channel)))
}

/// The test clip (H.264/AAC, 320x180, 2 s GOPs, 16 s, loops seamlessly), made once per target dir.
fn clip() -> PathBuf {
    encode_clip(Path::new(env!("CARGO_TARGET_TMPDIR")), "broadcast", ClipSpec::SMALL).expect("clip encodes")
}

/// A bed of `boxes` boxes and one headend host (the last); one at a time, as boxes, a headend
/// and players fill two cores.
struct Stage {
    boxes: Boxes,
    headend: usize,
}

impl Stage {
    fn new(name: &str, boxes: usize) -> Stage {
        Stage { boxes: Boxes::one_at_a_time(name, boxes + 1), headend: boxes }
    }

    /// Runs ffmpeg on the headend host, looping `clip` in real time to `output` in `format`.
    fn headend(&mut self, clip: &Path, format: &str, output: &str) -> ProcessId {
        let log = self.boxes.dir.join(format!("headend-{}.log", format.replace('_', "-")));
        self.boxes.bed.loop_clip(self.headend, clip, format, output, &log).expect("ffmpeg starts")
    }

    /// Starts one box per config and hands them over.
    fn start<C: Into<BoxConfig>>(&mut self, configs: impl IntoIterator<Item = C>) -> &mut Boxes {
        self.boxes.start(configs)
    }
}

/// A channel of the lineup.
fn lineup_channel(id: &str, source: &str) -> String {
    format!("[[channel]]\nid = \"{id}\"\nsource = \"{source}\"\ninterface = \"eth0\"\n")
}

/// Plays `seconds` of `path` from box `i` with ffmpeg and checks it decoded without error.
fn assert_plays(boxes: &Boxes, i: usize, path: &str, seconds: u32) {
    let url = boxes.url(i, path);
    let out = common::play_ffmpeg(&boxes.prefix(i), &url, seconds);
    let frames = u64::from(seconds) * 25 * 9 / 10;
    if let Err(why) = common::judge_ffmpeg(&out, frames) {
        panic!("box {i} {path}: {why}\n{}", boxes.logs());
    }
}

/// A multicast feed configured as a channel plays on every box from `/hls` and `/ts`; one box
/// joins the group, the others get the segments from their peers.
#[test]
fn a_multicast_feed_plays_on_every_box() {
    if skip() {
        return;
    }
    let mut stage = Stage::new("multicast", 3);
    stage.headend(&clip(), "mpegts", "udp://239.255.10.1:5000?pkt_size=1316&ttl=1");
    let config = lineup_channel("mc", "udp://@239.255.10.1:5000");
    let boxes = stage.start(vec![config; 3]);
    boxes.wait_for_peers(Duration::from_secs(30));
    for i in 0..3 {
        assert_plays(boxes, i, "/hls/mc/index.m3u8", 8);
        assert_plays(boxes, i, "/ts/mc", 6);
    }
    let ingesters = boxes.ingesters("mc");
    // mpv as well, on a box that gets the channel from its peers, over HLS and over /ts.
    let watcher = (ingesters.first().copied().unwrap_or(0) + 1) % 3;
    for path in ["/hls/mc/index.m3u8", "/ts/mc"] {
        let run = common::play_mpv(&boxes.prefix(watcher), &boxes.url(watcher, path), 8);
        common::assert_mpv_played(&run, 6.0, 150, &format!("mpv on box {watcher} {path}"));
    }
    assert_eq!(ingesters.len(), 1, "exactly one box joins the group: {ingesters:?}");
    let ingester = ingesters[0];
    for i in (0..3).filter(|&i| i != ingester) {
        let status = boxes.status(i).expect("status");
        let mc = channel(&status, "mc").expect("the channel");
        assert!(mc.segments_from_peers > 0, "box {i} got segments from peers: {}", json(mc));
        assert_eq!(mc.segments_from_origin, 0, "box {i} did not join the group: {}", json(mc));
    }
    let status = boxes.status(ingester).expect("status");
    let input = input_of(&status, "mc");
    assert!(input.segments > 3, "{input:?}");
    assert_eq!(input.cc_errors, 0, "a clean feed has no continuity errors: {input:?}");
}

/// A continuous HTTP-TS server (what encoders and udpxy offer): every client gets the file
/// in a loop, paced at its average bit rate.
const HTTP_TS_SERVER: &str = r#"
import http.server, os, sys, time
path, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rate = os.path.getsize(path) / seconds
class Stream(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.end_headers()
        start, sent = time.monotonic(), 0
        try:
            while True:
                with open(path, "rb") as f:
                    while chunk := f.read(188 * 70):
                        self.wfile.write(chunk)
                        sent += len(chunk)
                        ahead = sent / rate - (time.monotonic() - start)
                        if ahead > 0:
                            time.sleep(ahead)
        except (BrokenPipeError, ConnectionResetError):
            pass
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", port), Stream).serve_forever()
"#;

/// A raw multicast sender: the file in a loop, in real time, as 1316-byte datagrams, exactly as
/// it is (ffmpeg would re-mux it). With `damage`, every 40th datagram is lost, every 97th is
/// replaced by a sync byte and garbage, and every 61st is scrambled in its middle.
const TS_SENDER: &str = r#"
import os, socket, sys, time
path, group, port, seconds, damage = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5] == "damage"
data = open(path, "rb").read()
rate = len(data) / seconds
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
start, sent, n = time.monotonic(), 0, 0
while True:
    for i in range(0, len(data) - 1316 + 1, 1316):
        n += 1
        datagram = data[i:i + 1316]
        sent += 1316
        if damage and n % 40 == 0:
            pass
        elif damage and n % 97 == 0:
            s.sendto(b"\x47" + os.urandom(600), (group, port))
        elif damage and n % 61 == 0:
            s.sendto(datagram[:300] + os.urandom(400) + datagram[700:], (group, port))
        else:
            s.sendto(datagram, (group, port))
        ahead = sent / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
"#;

impl Stage {
    /// Runs a Python helper script on the headend host.
    fn python(&mut self, name: &str, script: &str, args: &[&str]) -> ProcessId {
        let path = self.boxes.dir.join(format!("{name}.py"));
        std::fs::write(&path, script).expect("script written");
        let path = path.to_string_lossy().into_owned();
        let log = self.boxes.dir.join(format!("{name}.log"));
        let mut all = vec!["-u", path.as_str()];
        all.extend_from_slice(args);
        self.boxes.bed.spawn(self.headend, Path::new("python3"), &all, &[], &log).expect("python3 starts")
    }
}

/// The same feed over RTP multicast, over HTTP-TS and from a local file plays from `/hls` and
/// `/ts`; the file also plays as an on-demand asset.
#[test]
fn rtp_http_ts_and_file_sources_play() {
    if skip() {
        return;
    }
    let mut stage = Stage::new("kinds", 1);
    let clip = clip();
    stage.headend(&clip, "rtp_mpegts", "rtp://239.255.10.2:5002?ttl=1");
    let clip_path = clip.to_string_lossy().into_owned();
    stage.python("http-ts", HTTP_TS_SERVER, &[&clip_path, "8090", "16"]);
    let headend = stage.boxes.bed.ip(stage.headend);
    let config = [
        lineup_channel("rtp", "rtp://@239.255.10.2:5002"),
        format!("[[channel]]\nid = \"httpts\"\nsource = \"http://{headend}:8090/live\"\nformat = \"ts\"\n"),
        format!("[[channel]]\nid = \"file\"\nsource = \"file://{clip_path}\"\n"),
        format!("[[channel]]\nid = \"vod\"\nsource = \"file://{clip_path}?vod\"\nalways_on = true\n"),
    ]
    .concat();
    let boxes = stage.start([config]);
    // A lone box relaying to its own TV passes the feed through: no segment is cut for it.
    assert_plays(boxes, 0, "/rtp/239.255.10.2:5002", 6);
    let status = boxes.status(0).expect("status");
    let rtp = input_of(&status, "rtp");
    assert_eq!(rtp.segments, 0, "nobody needed segments: {rtp:?}");
    assert!(rtp.bytes > 100_000, "{rtp:?}");
    for id in ["rtp", "httpts", "file"] {
        assert_plays(boxes, 0, &format!("/hls/{id}/index.m3u8"), 8);
        assert_plays(boxes, 0, &format!("/ts/{id}"), 6);
    }
    // The file as VOD: the whole clip, numbered from 0, closed with ENDLIST.
    let (code, playlist) = boxes.get(0, "/hls/vod/index.m3u8");
    let playlist = String::from_utf8_lossy(&playlist).into_owned();
    assert_eq!(code, 200, "{playlist}");
    assert!(
        playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD") && playlist.ends_with("#EXT-X-ENDLIST\n"),
        "{playlist}"
    );
    assert!(playlist.contains("#EXT-X-MEDIA-SEQUENCE:0\n"), "{playlist}");
    assert_eq!(playlist.matches("#EXTINF:").count(), 8, "16 s in 2 s GOPs: {playlist}");
    let url = boxes.url(0, "/hls/vod/index.m3u8");
    let out = common::play_ffmpeg(&boxes.prefix(0), &url, 16);
    if let Err(why) = common::judge_ffmpeg(&out, 16 * 25 - 2) {
        panic!("the VOD file: {why}\n{}", boxes.logs());
    }
}

/// `/udp/<group>:<port>` plays on boxes where the feed is not configured: the feed becomes a
/// channel of the swarm that one box joins; unicast targets, malformed addresses and joins over
/// the cap are refused.
#[test]
fn udpxy_urls_relay_feeds_no_config_names() {
    if skip() {
        return;
    }
    let mut stage = Stage::new("udpxy", 2);
    stage.headend(&clip(), "mpegts", "udp://239.255.10.3:5004?pkt_size=1316&ttl=1");
    let config = "[relay]\nmax_joins = 1\n".to_owned();
    let boxes = stage.start(vec![config; 2]);
    boxes.wait_for_peers(Duration::from_secs(30));
    let relay = "/udp/239.255.10.3:5004";
    // Both boxes' TVs ask at once.
    std::thread::scope(|scope| {
        let players: Vec<_> = (0..2)
            .map(|i| {
                let boxes = &*boxes;
                scope.spawn(move || {
                    let url = boxes.url(i, relay);
                    (i, common::play_ffmpeg(&boxes.prefix(i), &url, 10))
                })
            })
            .collect();
        for player in players {
            let (i, out) = player.join().expect("player thread");
            if let Err(why) = common::judge_ffmpeg(&out, 10 * 25 * 9 / 10) {
                panic!("box {i} {relay}: {why}\n{}", boxes.logs());
            }
        }
    });
    let name = "udp://239.255.10.3:5004";
    let ingesters = boxes.ingesters(name);
    assert_eq!(ingesters.len(), 1, "one box joins the group: {ingesters:?}\n{}", boxes.logs());
    let other = 1 - ingesters[0];
    let status = boxes.status(other).expect("status");
    let relayed = channel(&status, name).expect("the relayed feed is a channel");
    assert!(relayed.segments_from_peers > 0, "{}", json(relayed));
    // The relayed feed is a channel like any other to the operator: its lineup id in
    // /api/status, a row of /api/swarm with its ingester, and a label in /metrics.
    let id = "udp-239_255_10_3-5004";
    assert_eq!(relayed.id, id, "{}", json(relayed));
    let (code, report) = boxes.get(other, "/api/swarm");
    assert_eq!(code, 200);
    let report: SwarmReport = read_json("/api/swarm", &String::from_utf8_lossy(&report));
    let row = report
        .channels
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("{id} in /api/swarm: {report:#?}"));
    assert!(row.ingester.is_some() && row.figures.traffic.bytes_from_peers > 0, "{row:#?}");
    let (code, metrics) = boxes.get(other, "/metrics");
    assert_eq!(code, 200);
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(metrics.contains(&format!("shoal_channel_peer_bytes_total{{channel=\"{id}\"}}")), "{metrics}");
    assert!(!metrics.contains("channel=\"\""), "an unlabelled channel in /metrics:\n{metrics}");
    // Refusals, with the reason.
    for (path, code) in [
        ("/udp/10.99.0.1:53", 403),
        ("/udp/224.0.0.251:5353", 403),
        ("/udp/239.255.10.3", 400),
        ("/rtp/not-an-address:5000", 400),
        ("/udp/239.255.10.4:5006", 503),
    ] {
        let (status, body) = boxes.get(other, path);
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, code, "{path}: {body}");
        assert!(body.contains("error"), "{path}: {body}");
    }
}

/// A copy of `clip` with the random-access indicator cleared on every packet: a muxer that does
/// not flag keyframes.
fn without_random_access_flags(clip: &Path, dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(clip).expect("clip readable");
    let mut cleared = 0;
    for packet in bytes.chunks_exact_mut(188) {
        // adaptation_field_control 2 or 3, a non-empty adaptation field: byte 5 holds its flags.
        if packet[0] == 0x47 && packet[3] & 0x20 != 0 && packet[4] > 0 && packet[5] & 0x40 != 0 {
            packet[5] &= !0x40;
            cleared += 1;
        }
    }
    assert!(cleared > 0, "the clip's muxer flags keyframes: nothing to clear");
    let out = dir.join("no-rai.ts");
    std::fs::write(&out, bytes).expect("written");
    out
}

/// Whether the first video packet of a TS segment is a keyframe, by ffprobe.
fn starts_with_keyframe(segment: &Path) -> bool {
    let out = common::run_bounded(
        &[],
        &[
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=flags",
            "-of",
            "csv=p=0",
            "-read_intervals",
            "%+#1",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([segment.to_string_lossy().into_owned()])
        .collect::<Vec<_>>(),
        Duration::from_secs(30),
    );
    String::from_utf8_lossy(&out.stdout).lines().next().is_some_and(|flags| flags.starts_with('K'))
}

/// A feed whose muxer sets no random-access indicator is still cut at keyframes (found in the
/// H.264 NAL units), and every segment a TV gets starts with one.
#[test]
fn a_feed_without_keyframe_flags_is_cut_at_keyframes() {
    if skip() {
        return;
    }
    let mut stage = Stage::new("norai", 1);
    let stripped = without_random_access_flags(&clip(), &stage.boxes.dir);
    let stripped = stripped.to_string_lossy().into_owned();
    stage.python("sender", TS_SENDER, &[&stripped, "239.255.10.6", "5010", "16", "clean"]);
    let boxes = stage.start([lineup_channel("norai", "udp://@239.255.10.6:5010")]);
    assert_plays(boxes, 0, "/hls/norai/index.m3u8", 8);
    let (code, playlist) = boxes.get(0, "/hls/norai/index.m3u8");
    assert_eq!(code, 200);
    let playlist = String::from_utf8_lossy(&playlist).into_owned();
    let names: Vec<&str> = playlist.lines().filter(|l| l.ends_with(".ts")).collect();
    assert!(names.len() >= 3, "{playlist}");
    for name in names {
        let (code, bytes) = boxes.get(0, &format!("/hls/norai/{name}"));
        assert_eq!(code, 200, "{name}");
        let file = boxes.dir.join(name);
        std::fs::write(&file, &bytes).expect("segment written");
        assert!(starts_with_keyframe(&file), "segment {name} does not start with a keyframe");
    }
    for line in playlist.lines().filter_map(|l| l.strip_prefix("#EXTINF:")) {
        let seconds: f64 = line.trim_end_matches(',').parse().expect("a duration");
        // Cut at the clip's 2 s GOPs (a loop of the sender may end one early).
        assert!(seconds <= 2.01, "{playlist}");
    }
    let status = boxes.status(0).expect("status");
    let input = input_of(&status, "norai");
    assert_eq!(input.keyframes_by_flag, 0, "{input:?}");
    assert!(input.keyframes_by_scan > 3, "{input:?}");
}

/// A damaged feed (lost datagrams, garbage, scrambled packets) is counted and skipped: the box
/// keeps running and keeps serving segments.
#[test]
fn a_damaged_feed_is_counted_and_skipped() {
    if skip() {
        return;
    }
    let mut stage = Stage::new("damaged", 1);
    let clip = clip().to_string_lossy().into_owned();
    stage.python("sender", TS_SENDER, &[&clip, "239.255.10.7", "5012", "16", "damage"]);
    let boxes = stage.start([lineup_channel("damaged", "udp://@239.255.10.7:5012")]);
    // Decode errors are expected: the player must still get pictures through.
    let url = boxes.url(0, "/hls/damaged/index.m3u8");
    let out = common::play_ffmpeg(&boxes.prefix(0), &url, 10);
    let progress = String::from_utf8_lossy(&out.stdout);
    let frames: u64 =
        progress.lines().filter_map(|l| l.strip_prefix("frame=")?.trim().parse().ok()).max().unwrap_or(0);
    assert!(frames >= 150, "{frames} frames of 250 through the damage\n{}", boxes.logs());
    assert!(boxes.alive(0), "the box died:\n{}", boxes.logs());
    let status = boxes.status(0).expect("the box answers");
    let input = input_of(&status, "damaged");
    assert!(input.cc_errors > 10, "losses are counted: {input:?}");
    assert!(input.garbage_bytes > 0, "garbage is counted: {input:?}");
    assert!(input.segments > 3, "{input:?}");
    boxes.kill(0);
}

/// The ingesting box is killed: another box joins the group, its segments continue the
/// numbering after one discontinuity, and a TV on a surviving box plays on.
#[test]
fn another_box_joins_when_the_ingester_dies() {
    if skip() {
        return;
    }
    let mut stage = Stage::new("takeover", 3);
    stage.headend(&clip(), "mpegts", "udp://239.255.10.8:5014?pkt_size=1316&ttl=1");
    let config = format!("{}always_on = true\n", lineup_channel("mc", "udp://@239.255.10.8:5014"));
    let boxes = stage.start(vec![config; 3]);
    boxes.wait_for_peers(Duration::from_secs(30));
    let ingester = boxes.ingester("mc", Duration::from_secs(20));
    let watcher = (ingester + 1) % 3;
    assert!(
        boxes.wait_all(Duration::from_secs(20), |s| {
            channel(s, "mc").is_some_and(|c| c.segments_held >= 3)
        }),
        "the boxes hold no window:\n{}",
        boxes.logs()
    );
    let url = boxes.url(watcher, "/hls/mc/index.m3u8");
    let prefix: Vec<String> = boxes.prefix(watcher).map(str::to_owned).to_vec();
    let player = std::thread::spawn(move || {
        let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
        common::play_mpv(&prefix, &url, 30)
    });
    std::thread::sleep(Duration::from_secs(8));
    boxes.kill(ingester);
    // The survivors elect a new ingester, which joins the group and continues the numbering.
    let mut playlist = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline && !playlist.contains("#EXT-X-DISCONTINUITY") {
        std::thread::sleep(Duration::from_millis(500));
        playlist = String::from_utf8_lossy(&boxes.get(watcher, "/hls/mc/index.m3u8").1).into_owned();
    }
    assert_eq!(
        playlist.matches("#EXT-X-DISCONTINUITY").count(),
        1,
        "one discontinuity:\n{playlist}\n{}",
        boxes.logs()
    );
    let numbers: Vec<u64> = playlist.lines().filter_map(|l| l.strip_suffix(".ts")?.parse().ok()).collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "numbers continue: {numbers:?}");
    let new_ingesters = boxes.ingesters("mc");
    assert_eq!(new_ingesters.len(), 1, "{new_ingesters:?}");
    let run = player.join().expect("player thread");
    let played = common::assert_mpv_played(&run, 24.0, 24 * 25, "the TV through the takeover");
    eprintln!("played through the takeover: {played:?}");
}

/// The box's address changes while it receives a feed: it joins the group again on the
/// interface's new address and the feed keeps coming.
#[test]
fn the_feed_is_joined_again_when_the_address_changes() {
    if skip() {
        return;
    }
    let mut stage = Stage::new("rejoin", 1);
    stage.headend(&clip(), "mpegts", "udp://239.255.10.9:5016?pkt_size=1316&ttl=1");
    let config = format!("{}always_on = true\n", lineup_channel("mc", "udp://@239.255.10.9:5016"));
    let boxes = stage.start([config]);
    // Asked over loopback: the box's LAN address is about to change.
    // `None` until the box answers with the channel's input counters.
    let input = |boxes: &Boxes| -> Option<InputStats> {
        let status = boxes.status_over_loopback(0).unwrap_or_default();
        channel(&status, "mc").and_then(|c| c.input)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while input(boxes).map(|i| i.segments) < Some(2) {
        assert!(std::time::Instant::now() < deadline, "no segments:\n{}", boxes.logs());
        std::thread::sleep(Duration::from_millis(250));
    }
    let old = boxes.bed.ip(0);
    let new = std::net::Ipv4Addr::new(old.octets()[0], old.octets()[1], old.octets()[2], 200);
    for command in [format!("ip addr add {new}/24 dev eth0"), format!("ip addr del {old}/24 dev eth0")] {
        let args: Vec<&str> = command.split(' ').collect();
        let out = boxes.bed.exec(0, &args, Duration::from_secs(5)).expect("ip runs");
        assert!(out.status.success(), "{command}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while input(boxes).map(|i| i.rejoins) < Some(1) {
        assert!(std::time::Instant::now() < deadline, "never joined again:\n{}", boxes.logs());
        std::thread::sleep(Duration::from_millis(250));
    }
    let before = input(boxes);
    std::thread::sleep(Duration::from_secs(6));
    let after = input(boxes);
    assert!(
        after.map(|i| i.segments) >= before.map(|i| i.segments + 2),
        "the feed stopped after the change: {before:?} → {after:?}\n{}",
        boxes.logs()
    );
}
