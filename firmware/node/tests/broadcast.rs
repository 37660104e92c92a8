//! Broadcast-style sources on real boxes: ffmpeg plays a headend on its own host of the bed
//! (a clip encoded once, looped with `-c copy` to a multicast group, over RTP, as an HTTP-TS
//! stream), the boxes cut the feed into segments and serve it, and real players (ffmpeg, mpv)
//! play it from every box. Needs root (CI runs as root); without it every test prints why it is
//! skipped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use shoal_testbed::{encode_clip, skip_reason, Bed, ClipSpec, ProcessId};

mod common;
use common::boxes::Boxes;

/// One bed at a time: boxes, a headend and players fill two cores.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn skip() -> bool {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return true;
    }
    common::require("ffmpeg", "ffmpeg");
    false
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shoal-broadcast-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The test clip (H.264/AAC, 320x180, 2 s GOPs, 16 s, loops seamlessly), made once per target dir.
fn clip() -> PathBuf {
    encode_clip(Path::new(env!("CARGO_TARGET_TMPDIR")), "broadcast", ClipSpec::SMALL).expect("clip encodes")
}

/// A bed of `boxes` boxes and one headend host (the last), its scratch dir, and the turn.
struct Stage {
    bed: Bed,
    dir: PathBuf,
    headend: usize,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Stage {
    fn new(name: &str, boxes: usize) -> Stage {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let bed = Bed::new(boxes + 1).expect("test bed");
        Stage { bed, dir: scratch(name), headend: boxes, _turn: turn }
    }

    /// Runs ffmpeg on the headend host, looping `clip` in real time to `output` in `format`.
    fn headend(&mut self, clip: &Path, format: &str, output: &str) -> ProcessId {
        let log = self.dir.join(format!("headend-{}.log", format.replace('_', "-")));
        let clip = clip.to_string_lossy().into_owned();
        let args = [
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            &clip,
            "-c",
            "copy",
            "-f",
            format,
            output,
        ];
        self.bed.spawn(self.headend, Path::new("ffmpeg"), &args, &[], &log).expect("ffmpeg starts")
    }

    fn prefix(&self, i: usize) -> [&str; 4] {
        ["ip", "netns", "exec", self.bed.namespace(i)]
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A channel of the lineup.
fn channel(id: &str, source: &str) -> String {
    format!("[[channel]]\nid = \"{id}\"\nsource = \"{source}\"\ninterface = \"eth0\"\n")
}

/// Plays `seconds` of `path` from box `i` with ffmpeg and checks it decoded without error.
fn assert_plays(stage: &Stage, boxes: &Boxes, i: usize, path: &str, seconds: u32) {
    let url = boxes.url(&stage.bed, i, path);
    let out = common::play_ffmpeg(&stage.prefix(i), &url, seconds);
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
    let config = channel("mc", "udp://@239.255.10.1:5000");
    let boxes = Boxes::start(&mut stage.bed, &stage.dir.clone(), &vec![config; 3]);
    boxes.wait_for_peers(&stage.bed, Duration::from_secs(30));
    for i in 0..3 {
        assert_plays(&stage, &boxes, i, "/hls/mc/index.m3u8", 8);
        assert_plays(&stage, &boxes, i, "/ts/mc", 6);
    }
    let ingesters = boxes.ingesters(&stage.bed, "mc");
    assert_eq!(ingesters.len(), 1, "exactly one box joins the group: {ingesters:?}");
    let ingester = ingesters[0];
    for i in (0..3).filter(|&i| i != ingester) {
        let status = boxes.status(&stage.bed, i).expect("status");
        let mc = Boxes::channel(&status, "mc").expect("the channel");
        assert!(mc["segments_from_peers"].as_u64() > Some(0), "box {i} got segments from peers: {mc}");
        assert_eq!(mc["segments_from_origin"], 0, "box {i} did not join the group: {mc}");
    }
    let status = boxes.status(&stage.bed, ingester).expect("status");
    let input = &Boxes::channel(&status, "mc").expect("the channel")["input"];
    assert!(input["segments"].as_u64() > Some(3), "{input}");
    assert_eq!(input["cc_errors"], 0, "a clean feed has no continuity errors: {input}");
}
