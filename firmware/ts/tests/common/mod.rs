//! Helpers shared by the integration tests: running ffmpeg/ffprobe, feeding a segmenter in
//! chunks, and building or editing TS packets by hand.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different part of this module

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use shoal_ts::{Counters, Segment, Segmenter, SegmenterConfig, PACKET_LEN};

/// Runs an ffmpeg-suite tool and returns its stdout; panics (fails the test) with a message a
/// person can act on if the tool is missing or fails.
pub fn run(tool: &str, args: &[&str]) -> (String, String) {
    let output = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!(
            "`{tool}` could not be run ({e}): these tests need ffmpeg and ffprobe (apt-get install ffmpeg)"
        )
    });
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "`{tool} {}` failed: {stderr}", args.join(" "));
    (String::from_utf8_lossy(&output.stdout).into_owned(), stderr)
}

/// A fresh directory for one test's files.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shoal-ts-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Whether this ffmpeg has an encoder (e.g. `libx265`).
pub fn has_encoder(name: &str) -> bool {
    let (out, _) = run("ffmpeg", &["-hide_banner", "-encoders"]);
    out.lines().any(|l| l.split_whitespace().nth(1) == Some(name))
}

/// Encodes a clip with ffmpeg (`args` go between the inputs and the output) into `dir/name`.
pub fn make_clip(dir: &Path, name: &str, args: &[&str]) -> (PathBuf, Vec<u8>) {
    let path = dir.join(name);
    let mut all = vec!["-y", "-hide_banner", "-v", "error"];
    all.extend_from_slice(args);
    all.extend(["-f", "mpegts", path.to_str().expect("utf-8 temp path")]);
    run("ffmpeg", &all);
    let bytes = std::fs::read(&path).expect("read clip");
    (path, bytes)
}

/// One video packet as ffprobe reports it.
#[derive(Clone, Copy, Debug)]
pub struct ProbedPacket {
    pub pos: u64,
    pub pts: u64,
    pub key: bool,
}

/// The video packets of a file, in file order.
pub fn video_packets(path: &Path) -> Vec<ProbedPacket> {
    let (out, _) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pos,flags,pts",
            "-of",
            "compact=p=0",
            path.to_str().expect("utf-8 path"),
        ],
    );
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let field = |k: &str| {
                line.split('|')
                    .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                    .unwrap_or_else(|| panic!("no {k} in ffprobe line {line:?}"))
            };
            ProbedPacket {
                pos: field("pos").parse().expect("pos"),
                pts: field("pts").parse().expect("pts"),
                key: field("flags").starts_with('K'),
            }
        })
        .collect()
}

/// The cuts the segmenter should make: the first keyframe, then each first keyframe at least
/// `target` after the start of the segment it ends.
pub fn expected_cuts(packets: &[ProbedPacket], target: Duration) -> Vec<u64> {
    let target_ticks = (target.as_micros() * 90 / 1000) as u64;
    let mut cuts = Vec::new();
    let mut start: Option<u64> = None;
    for p in packets.iter().filter(|p| p.key) {
        if start.is_none_or(|s| p.pts >= s + target_ticks) {
            cuts.push(p.pos);
            start = Some(p.pts);
        }
    }
    cuts
}

/// Pushes `input` in chunks of the given sizes (cycled), then flushes.
pub fn segment(input: &[u8], config: SegmenterConfig, chunks: &[usize]) -> (Vec<Segment>, Counters) {
    let mut segmenter = Segmenter::new(config).expect("valid config");
    let mut segments = Vec::new();
    let mut pos = 0;
    for &n in chunks.iter().cycle() {
        if pos >= input.len() {
            break;
        }
        let end = (pos + n.max(1)).min(input.len());
        segmenter.push(&input[pos..end], |s| segments.push(s));
        pos = end;
    }
    segmenter.flush(|s| segments.push(s));
    (segments, segmenter.counters())
}

pub fn config(target_ms: u64) -> SegmenterConfig {
    let target_duration = Duration::from_millis(target_ms);
    SegmenterConfig { target_duration, max_duration: 3 * target_duration, ..SegmenterConfig::default() }
}

pub fn pid(packet: &[u8]) -> u16 {
    u16::from(packet[1] & 0x1F) << 8 | u16::from(packet[2])
}

/// Clears the random_access_indicator of every packet and changes nothing else.
pub fn clear_rai(ts: &mut [u8]) -> usize {
    let mut cleared = 0;
    for p in ts.chunks_exact_mut(PACKET_LEN) {
        if p[0] == 0x47 && p[3] & 0x20 != 0 && p[4] > 0 && p[5] & 0x40 != 0 {
            p[5] &= !0x40;
            cleared += 1;
        }
    }
    cleared
}

/// Decodes a file with ffmpeg and returns what it printed at level "error".
pub fn decode_errors(path: &Path) -> String {
    let (_, stderr) =
        run("ffmpeg", &["-v", "error", "-i", path.to_str().expect("utf-8 path"), "-f", "null", "-"]);
    stderr
}
