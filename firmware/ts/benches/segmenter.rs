//! Throughput of the segmenter on a real stream, in bytes of input per second.
//!
//! The clip is made by ffmpeg when the bench starts (10 s of 640x360 H.264 at about 8 Mbit/s
//! with B-frames, AAC audio, a keyframe every second: about 10 MB), then pushed in 1316-byte
//! chunks (7 packets, one UDP datagram) through a fresh segmenter per iteration, 2 s segments.
//! Segment buffers are allocated as in service. Two cases:
//!
//! - `segmenter/rai`: keyframes flagged by random_access_indicator, as ffmpeg muxes them.
//! - `segmenter/nal_scan`: the same bytes with every RAI cleared, so each video PES is scanned
//!   up to its first slice.
//!
//! The daemon needs 8 × 40 Mbit/s = 40 MB/s on one core of a Raspberry-Pi-class board.
//!
//! ```text
//! cargo bench -p shoal-ts --bench segmenter
//! cargo bench -p shoal-ts --bench segmenter -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;
use std::process::Command;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shoal_ts::{Segmenter, SegmenterConfig, PACKET_LEN};

/// A UDP datagram's worth of packets: how the daemon receives multicast TS.
const CHUNK: usize = 7 * PACKET_LEN;

fn make_clip() -> Vec<u8> {
    let path = std::env::temp_dir().join(format!("shoal-ts-bench-{}.ts", std::process::id()));
    let status = Command::new("ffmpeg")
        .args(["-y", "-hide_banner", "-v", "error"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000", "-t", "10"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "25", "-b:v", "8M"])
        .args(["-c:a", "aac", "-b:a", "128k", "-f", "mpegts"])
        .arg(&path)
        .status()
        .expect("the benchmark needs ffmpeg (apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg failed to make the benchmark clip");
    let clip = std::fs::read(&path).expect("read clip");
    let _ = std::fs::remove_file(&path);
    clip
}

fn clear_rai(ts: &mut [u8]) {
    for p in ts.chunks_exact_mut(PACKET_LEN) {
        if p[3] & 0x20 != 0 && p[4] > 0 {
            p[5] &= !0x40;
        }
    }
}

/// Segments the whole clip; returns the number of segments so the work cannot be optimised out.
fn run(clip: &[u8]) -> usize {
    let mut segmenter = Segmenter::new(SegmenterConfig::default()).expect("default config");
    let mut segments = 0;
    for chunk in clip.chunks(CHUNK) {
        segmenter.push(chunk, |s| segments += black_box(s).bytes.len().min(1));
    }
    segmenter.flush(|s| segments += black_box(s).bytes.len().min(1));
    segments
}

fn bench(c: &mut Criterion) {
    let clip = make_clip();
    let mut no_rai = clip.clone();
    clear_rai(&mut no_rai);
    let segments = run(&clip);
    assert!(segments >= 4 && segments == run(&no_rai), "the clip is cut the same both ways");
    eprintln!("clip: {} bytes, {} packets, {segments} segments", clip.len(), clip.len() / PACKET_LEN);

    let mut group = c.benchmark_group("segmenter");
    group.throughput(Throughput::Bytes(clip.len() as u64));
    group.sample_size(20);
    group.bench_function("rai", |b| b.iter(|| run(black_box(&clip))));
    group.bench_function("nal_scan", |b| b.iter(|| run(black_box(&no_rai))));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
