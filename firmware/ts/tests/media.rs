//! The segmenter against real streams made by ffmpeg at test time, checked with ffprobe and by
//! decoding every segment alone. ffmpeg and ffprobe must be installed: without them these tests
//! fail (they do not skip), so CI cannot pass without exercising them.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use shoal_ts::{Segment, SegmenterConfig, VideoCodec, PACKET_LEN};

const TARGET_MS: u64 = 2000;
/// Odd chunk sizes, so packets straddle pushes everywhere: a UDP payload, small and large reads.
const CHUNKS: &[usize] = &[7 * 188, 1, 1000, 4093, 188, 65_536, 333];

const SOURCES: &[&str] = &[
    "-f",
    "lavfi",
    "-i",
    "testsrc2=size=320x180:rate=25",
    "-f",
    "lavfi",
    "-i",
    "sine=frequency=1000:sample_rate=48000",
    "-t",
    "12",
];

fn clip(dir: &Path, name: &str, video: &[&str]) -> (std::path::PathBuf, Vec<u8>) {
    let mut args = SOURCES.to_vec();
    args.extend_from_slice(video);
    args.extend(["-c:a", "aac", "-b:a", "64k"]);
    make_clip(dir, name, &args)
}

/// Everything `docs/TESTING.md` ("Segments cut from a file") asks of segments cut from a file: cuts exactly at the expected
/// keyframes, each segment decodable alone and starting with PAT then PMT, durations adding up.
fn check_segments(dir: &Path, path: &Path, segments: &[Segment], pmt_pid: u16, target: Duration) {
    let packets = video_packets(path);
    let keyframes: Vec<u64> = packets.iter().filter(|p| p.key).map(|p| p.pos).collect();
    let cuts: Vec<u64> = segments.iter().map(|s| s.input_offset).collect();
    for cut in &cuts {
        assert!(keyframes.contains(cut), "cut at {cut} is not a keyframe: {keyframes:?}");
    }
    assert_eq!(cuts, expected_cuts(&packets, target), "keyframes {keyframes:?}");
    assert!(segments.len() >= 4, "a 12 s clip makes several segments: {cuts:?}");

    for (i, segment) in segments.iter().enumerate() {
        assert!(!segment.forced && !segment.discontinuity, "segment {i}");
        assert_eq!(segment.bytes.len() % PACKET_LEN, 0);
        assert_eq!(pid(&segment.bytes[..PACKET_LEN]), 0, "segment {i} starts with the PAT");
        assert_eq!(pid(&segment.bytes[PACKET_LEN..]), pmt_pid, "segment {i}: PMT second");
        let file = dir.join(format!("seg{i}.ts"));
        std::fs::write(&file, &segment.bytes).expect("write segment");
        let errors = decode_errors(&file);
        assert!(errors.is_empty(), "segment {i} does not decode alone: {errors}");
    }

    let first = packets.iter().map(|p| p.pts).min().expect("video packets");
    let last = packets.iter().map(|p| p.pts).max().expect("video packets");
    let frame = 3600; // 25 fps
    let clip_len = Duration::from_micros((last + frame - first) * 1000 / 90);
    let total: Duration = segments.iter().map(|s| s.duration).sum();
    let diff = total.abs_diff(clip_len);
    assert!(diff <= Duration::from_millis(40), "durations add to {total:?}, clip is {clip_len:?}");
    for s in &segments[..segments.len() - 1] {
        assert!(s.duration >= target && s.duration < 2 * target, "{:?}", s.duration);
    }
}

/// Runs one clip through the segmenter with RAI as muxed, then with every RAI cleared; both must
/// cut at the same places, the second by scanning NAL units alone.
fn check_clip(name: &str, video: &[&str], codec: VideoCodec) {
    let dir = temp_dir(name);
    let (path, bytes) = clip(&dir, &format!("{name}.ts"), video);
    let target = Duration::from_millis(TARGET_MS);

    let mut segmenter = shoal_ts::Segmenter::new(config(TARGET_MS)).expect("config");
    let mut segments = Vec::new();
    for chunk in bytes.chunks(7 * 188) {
        segmenter.push(chunk, |s| segments.push(s));
    }
    let info = segmenter.stream_info().cloned().expect("PMT read");
    assert_eq!(info.video.map(|v| v.1), Some(codec));
    assert_eq!(info.audio.len(), 1);

    let (segments, counters) = segment(&bytes, config(TARGET_MS), CHUNKS);
    check_segments(&dir, &path, &segments, info.pmt_pid, target);
    assert_eq!(counters.cc_errors, 0);
    assert_eq!(counters.garbage_bytes, 0);
    assert_eq!(counters.segments, segments.len() as u64);
    assert!(counters.keyframes_rai > 0, "{counters:?}");
    assert_eq!(counters.keyframes_scan, 0, "RAI present: no keyframe needs the scanner");

    let mut no_rai = bytes.clone();
    assert!(clear_rai(&mut no_rai) > 0, "ffmpeg sets RAI on keyframes");
    let (scanned, counters) = segment(&no_rai, config(TARGET_MS), CHUNKS);
    let cuts = |s: &[Segment]| s.iter().map(|s| s.input_offset).collect::<Vec<_>>();
    assert_eq!(cuts(&scanned), cuts(&segments), "NAL scan cuts where RAI did");
    assert_eq!(counters.keyframes_rai, 0);
    assert!(counters.keyframes_scan >= segments.len() as u64, "{counters:?}");
    for (a, b) in scanned.iter().zip(&segments) {
        assert_eq!(a.duration, b.duration);
        assert_eq!(a.bytes.len(), b.bytes.len());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn h264_fixed_gop() {
    let video =
        ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0"];
    check_clip("h264", &video, VideoCodec::H264);
}

#[test]
fn h264_varying_gop_with_b_frames() {
    // Keyframes forced at irregular times plus the usual -g 50: GOPs from 0.4 s to 2.5 s, and
    // B-frames, so PTS go backwards in decode order.
    let video = [
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-bf",
        "2",
        "-g",
        "50",
        "-force_key_frames",
        "0,0.8,1.6,2.4,2.8,5.3,5.7,7.9,8.3,10.1",
    ];
    check_clip("h264-varying", &video, VideoCodec::H264);
}

#[test]
fn hevc() {
    // Debian's ffmpeg (which CI installs) has libx265: a missing encoder is a broken setup.
    assert!(has_encoder("libx265"), "this ffmpeg has no libx265 encoder: install Debian's ffmpeg");
    let video = [
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-x265-params",
        "keyint=25:min-keyint=25:scenecut=0:log-level=error",
    ];
    check_clip("hevc", &video, VideoCodec::Hevc);
}

#[test]
fn mpeg2() {
    let video = ["-c:v", "mpeg2video", "-g", "25", "-bf", "2", "-q:v", "5"];
    check_clip("mpeg2", &video, VideoCodec::Mpeg2);
}

#[test]
fn audio_only_service_cut_by_time() {
    let dir = temp_dir("audio");
    let args = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "10", "-c:a", "aac"];
    let (_, bytes) = make_clip(&dir, "audio.ts", &args);
    let (segments, counters) = segment(&bytes, config(TARGET_MS), CHUNKS);
    assert!(segments.len() >= 4, "{counters:?}");
    // 470 AAC frames of 1024 samples: 10.027 s. The last segment's duration is estimated as its
    // last PES start plus one PES duration (ffmpeg packs up to ~9 frames per PES), so it may
    // overshoot by a few frames.
    let total: Duration = segments.iter().map(|s| s.duration).sum();
    assert!(total.abs_diff(Duration::from_millis(10_027)) < Duration::from_millis(200), "{total:?}");
    for (i, s) in segments.iter().enumerate() {
        if i + 1 < segments.len() {
            assert!(s.duration >= Duration::from_millis(TARGET_MS), "{:?}", s.duration);
            assert!(s.duration < Duration::from_millis(TARGET_MS + 500), "{:?}", s.duration);
        }
        let file = dir.join(format!("seg{i}.ts"));
        std::fs::write(&file, &s.bytes).expect("write");
        assert_eq!(decode_errors(&file), "", "audio segment {i}");
    }
    assert_eq!(counters.keyframes_rai + counters.keyframes_scan, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Damage a real stream: drop packets, insert garbage runs, flip bytes. Nothing panics, the
/// damage is counted, and the segments cut after it still decode.
#[test]
fn corrupted_stream_recovers() {
    let dir = temp_dir("corrupt");
    let video = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-sc_threshold", "0"];
    let (_, clean) = clip(&dir, "clean.ts", &video);
    let packets: Vec<&[u8]> = clean.chunks(PACKET_LEN).collect();
    let damage_end = packets.len() / 3;
    let mut damaged = Vec::with_capacity(clean.len());
    let mut rng = 0x2545_f491_u32;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        rng
    };
    for (i, p) in packets.iter().enumerate() {
        if i < damage_end && i > 100 {
            match next() % 50 {
                0 => continue,                                                // dropped packet
                1 => damaged.extend((0..next() % 400).map(|_| next() as u8)), // garbage run
                2 => {
                    let mut p = p.to_vec();
                    let at = next() as usize % PACKET_LEN;
                    p[at] ^= 1 << (next() % 8); // flipped bit, maybe in the header
                    damaged.extend(p);
                    continue;
                }
                _ => {}
            }
        }
        damaged.extend_from_slice(p);
    }
    let (segments, counters) = segment(&damaged, config(TARGET_MS), CHUNKS);
    assert!(counters.cc_errors > 0, "{counters:?}");
    assert!(counters.garbage_bytes > 0 && counters.sync_losses > 0, "{counters:?}");
    // Segments cut well after the damage decode cleanly.
    let clean_from = (damage_end * PACKET_LEN + 200_000) as u64;
    let late: Vec<_> = segments.iter().filter(|s| s.input_offset > clean_from).collect();
    assert!(late.len() >= 2, "segments after the damage: {}", late.len());
    for (i, s) in late.iter().enumerate() {
        let file = dir.join(format!("late{i}.ts"));
        std::fs::write(&file, &s.bytes).expect("write");
        assert_eq!(decode_errors(&file), "", "segment after the damage");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file that loops (the same clip twice, as a looping source would send it): the timeline
/// restarts, and the first segment of the second pass is flagged as a discontinuity.
#[test]
fn looped_file_flags_discontinuity() {
    let dir = temp_dir("loop");
    let video = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-sc_threshold", "0"];
    let (_, once) = clip(&dir, "once.ts", &video);
    let twice = [once.clone(), once.clone()].concat();
    let (segments, counters) = segment(&twice, SegmenterConfig::default(), CHUNKS);
    let flagged: Vec<usize> =
        segments.iter().enumerate().filter(|(_, s)| s.discontinuity).map(|(i, _)| i).collect();
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    let second = &segments[flagged[0]];
    assert_eq!(second.input_offset, segments[0].input_offset + once.len() as u64);
    assert_eq!(counters.discontinuities, 1);
    let total: Duration = segments.iter().map(|s| s.duration).sum();
    assert!(total.abs_diff(Duration::from_secs(24)) <= Duration::from_millis(80), "{total:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
