//! The segmenter on hand-built streams, where every PTS, flag and counter is known.

mod common;
mod mux;

use std::time::Duration;

use common::{config, pid, segment};
use mux::{Mux, AUDIO_PID, FRAME, PMT_PID, VIDEO_PID};
use shoal_ts::{ConfigError, Segmenter, SegmenterConfig, VideoCodec, PACKET_LEN};

const TWO_S: Duration = Duration::from_secs(2);

fn offsets(segments: &[shoal_ts::Segment]) -> Vec<u64> {
    segments.iter().map(|s| s.input_offset).collect()
}

#[test]
fn cuts_at_keyframes_after_the_target() {
    let mut mux = Mux::new();
    let keyframes = mux.stream(900_000, 250, 25, true); // 10 s, a keyframe every second
    let (segments, counters) = segment(&mux.out, config(2000), &[mux.out.len()]);
    let want: Vec<u64> = keyframes.iter().step_by(2).copied().collect();
    assert_eq!(offsets(&segments), want);
    assert!(segments.iter().all(|s| s.duration == TWO_S && !s.forced && !s.discontinuity));
    assert_eq!(segments[0].first_pts, Some(900_000));
    assert_eq!(counters.keyframes_rai, 10);
    assert_eq!(counters.segments, 5);
    assert_eq!(counters.cc_errors + counters.garbage_bytes, 0);
    // Only the first PAT and PMT came before the first keyframe (and are re-emitted as copies).
    assert_eq!(counters.dropped_bytes, 2 * PACKET_LEN as u64);
    for s in &segments {
        assert_eq!(pid(&s.bytes), 0);
        assert_eq!(pid(&s.bytes[PACKET_LEN..]), PMT_PID);
        assert_eq!(pid(&s.bytes[2 * PACKET_LEN..]), VIDEO_PID, "keyframe right after PAT and PMT");
    }
    // Every input packet is in exactly one segment, plus one PAT and one PMT copy per segment.
    let total: usize = segments.iter().map(|s| s.bytes.len()).sum();
    assert_eq!(total, mux.out.len() - 2 * PACKET_LEN + 5 * 2 * PACKET_LEN);
}

#[test]
fn resyncs_across_garbage_and_split_pushes() {
    let mut mux = Mux::new();
    mux.stream(0, 150, 25, true);
    let packets: Vec<&[u8]> = mux.out.chunks(PACKET_LEN).collect();

    // Garbage runs (with stray sync bytes) between packets after the first second. A packet
    // followed by garbage that does not start with 0x47 cannot be told from a truncated one, so
    // the framer drops it too: the expected output is that of the stream without those.
    let junk = [0x00, 0x47, 0x12, 0x47, 0x34, 0x47, 0x47, 0x99, 0x00, 0x47];
    let mut runs = Vec::new(); // (packet index the run follows, run)
    for (k, i) in (61..packets.len() - 1).filter(|i| i % 37 == 0).enumerate() {
        let start = k % 2; // every other run starts with 0x47
        runs.push((i, &junk[start..start + 1 + i % 9]));
    }
    let mut dirty = Vec::new();
    let mut kept = Vec::new();
    let mut offsets_in_dirty = Vec::new();
    let mut garbage = 0;
    for (i, p) in packets.iter().enumerate() {
        let run = runs.iter().find(|(at, _)| *at == i).map(|r| r.1);
        let dropped = run.is_some_and(|r| r[0] != 0x47);
        if !dropped {
            offsets_in_dirty.push(dirty.len() as u64);
            kept.extend_from_slice(p);
        }
        dirty.extend_from_slice(p);
        if let Some(run) = run {
            dirty.extend_from_slice(run);
            garbage += run.len() + if dropped { PACKET_LEN } else { 0 };
        }
    }
    assert!(runs.len() > 10 && kept.len() < mux.out.len());
    let (want, _) = segment(&kept, config(2000), &[188]);
    assert!(want.len() >= 2);
    for chunks in [&[1][..], &[7 * 188], &[100, 3, 1500], &[dirty.len()]] {
        let (got, counters) = segment(&dirty, config(2000), chunks);
        assert_eq!(counters.garbage_bytes, garbage as u64, "chunks {chunks:?}");
        assert!(counters.sync_losses > 0);
        let mapped: Vec<u64> =
            want.iter().map(|s| offsets_in_dirty[s.input_offset as usize / PACKET_LEN]).collect();
        assert_eq!(offsets(&got), mapped, "chunks {chunks:?}");
        for (a, b) in got.iter().zip(&want) {
            assert!(
                a.bytes == b.bytes,
                "garbage reached the segment at {} (chunks {chunks:?})",
                a.input_offset
            );
        }
    }
}

#[test]
fn counts_continuity_errors() {
    let mut mux = Mux::new();
    mux.stream(0, 50, 25, true);
    let packets: Vec<Vec<u8>> = mux.out.chunks(PACKET_LEN).map(<[u8]>::to_vec).collect();
    let video: Vec<usize> = (0..packets.len()).filter(|&i| pid(&packets[i]) == VIDEO_PID).collect();

    let run = |packets: &[Vec<u8>]| segment(&packets.concat(), config(2000), &[1316]).1;
    assert_eq!(run(&packets).cc_errors, 0);

    // Three single video packets dropped far apart: three errors.
    let mut dropped = packets.clone();
    for &i in [video[40], video[20], video[5]].iter() {
        dropped.remove(i);
    }
    assert_eq!(run(&dropped).cc_errors, 3);

    // A duplicate is allowed once; twice is an error.
    let mut dup = packets.clone();
    dup.insert(video[10], packets[video[10]].clone());
    assert_eq!(run(&dup).cc_errors, 0);
    dup.insert(video[10], packets[video[10]].clone());
    assert_eq!(run(&dup).cc_errors, 1);

    // A jump flagged with the discontinuity_indicator is not an error.
    let mut flagged = packets.clone();
    let at = video[20..].iter().position(|&i| packets[i][3] & 0x20 != 0).map(|k| k + 20).unwrap();
    flagged[video[at]][5] |= 0x80; // a video packet with an adaptation field: set the flag ...
    flagged.remove(video[at - 1]); // ... and drop the video packet before it
    assert_eq!(run(&flagged).cc_errors, 0);

    // Adaptation-only packets repeat the counter without error.
    let mut af_only = packets.clone();
    let mut pcr =
        vec![0x47, (VIDEO_PID >> 8) as u8, VIDEO_PID as u8, 0x20 | (packets[video[7]][3] & 0x0F), 183, 0];
    pcr.resize(188, 0xFF);
    af_only.insert(video[7] + 1, pcr);
    assert_eq!(run(&af_only).cc_errors, 0);
}

#[test]
fn pmt_spanning_packets_is_read_and_re_emitted_whole() {
    let mut mux = Mux::new();
    mux.pmt_padding = 600; // a PMT section of ~640 bytes: four packets
    mux.stream(0, 100, 25, true);
    let mut segmenter = Segmenter::new(config(2000)).unwrap();
    let mut segments = Vec::new();
    for chunk in mux.out.chunks(1000) {
        segmenter.push(chunk, |s| segments.push(s));
    }
    let info = segmenter.stream_info().unwrap().clone();
    assert_eq!(info.video, Some((VIDEO_PID, VideoCodec::H264)));
    assert_eq!(info.audio, vec![(AUDIO_PID, 0x0F)]);
    assert_eq!(info.pmt_pid, PMT_PID);
    let pmt_packets = (mux.pmt_section().len() + 1).div_ceil(184);
    assert_eq!(pmt_packets, 4);
    for s in &segments {
        let pids: Vec<u16> = s.bytes.chunks(PACKET_LEN).take(6).map(pid).collect();
        assert_eq!(pids, vec![0, PMT_PID, PMT_PID, PMT_PID, PMT_PID, VIDEO_PID]);
    }
    assert_eq!(segmenter.counters().crc_errors, 0);
}

#[test]
fn bad_crc_is_ignored_and_counted() {
    let mut mux = Mux::new();
    mux.psi();
    mux.out[2 * PACKET_LEN - 10] ^= 0xFF; // corrupt a byte of the PMT section (it ends the packet)
    let bad_len = mux.out.len();
    mux.stream(0, 50, 25, true);
    let (segments, counters) = segment(&mux.out, config(2000), &[4096]);
    assert_eq!(counters.crc_errors, 1);
    // The PMT was only learned from the second copy: everything before it was dropped.
    assert!(counters.dropped_bytes >= bad_len as u64);
    assert_eq!(segments.len(), 1);
}

#[test]
fn pmt_change_flags_discontinuity() {
    let mut mux = Mux::new();
    mux.stream(0, 100, 25, true);
    mux.pmt_version = 1;
    mux.video_type = 0x24; // the encoder restarted in HEVC
    let switch = mux.out.len() as u64;
    mux.stream(100 * FRAME, 100, 25, true);
    let mut segmenter = Segmenter::new(config(2000)).unwrap();
    let mut segments = Vec::new();
    segmenter.push(&mux.out, |s| segments.push(s));
    segmenter.flush(|s| segments.push(s));
    assert_eq!(segmenter.counters().table_changes, 1);
    let flagged: Vec<_> = segments.iter().filter(|s| s.discontinuity).collect();
    assert_eq!(flagged.len(), 1);
    // The PSI packets come first, then the keyframe: 3 packets in.
    assert_eq!(flagged[0].input_offset, switch + 2 * PACKET_LEN as u64);
}

#[test]
fn forced_cut_by_duration_without_keyframes() {
    let mut mux = Mux::new();
    mux.stream(0, 500, 10_000, true); // 20 s with a single keyframe at the start
    let (segments, counters) = segment(&mux.out, config(2000), &[1316]);
    // 6 s (3 × target) each, cut at the first frame at or after the bound.
    assert_eq!(segments.len(), 4, "{counters:?}");
    assert!(!segments[0].forced);
    assert!(segments[1..].iter().all(|s| s.forced));
    assert_eq!(counters.forced_cuts, 3);
    for s in &segments[..3] {
        assert_eq!(s.duration, Duration::from_secs(6));
    }
    assert_eq!(segments[3].duration, Duration::from_secs(2));
}

#[test]
fn forced_cut_by_size() {
    let mut mux = Mux::new();
    for i in 0..200 {
        if i % 25 == 0 {
            mux.psi();
        }
        mux.video(i * FRAME, i == 0, i == 0, 20_000); // 500 kB/s: no keyframe after the first
    }
    let max = 64 * 1024;
    let cfg = SegmenterConfig { max_segment_bytes: max, ..config(2000) };
    let (segments, counters) = segment(&mux.out, cfg, &[1316]);
    assert!(segments.len() > 50);
    assert!(segments.iter().all(|s| s.bytes.len() <= max), "never over max_segment_bytes");
    assert_eq!(counters.forced_cuts, segments.len() as u64 - 1);
    let total: usize = segments.iter().map(|s| s.bytes.len()).sum();
    let psi = segments.len() * 2 * PACKET_LEN;
    assert_eq!(total - psi + counters.dropped_bytes as usize, mux.out.len(), "nothing lost");
    assert_eq!(counters.dropped_bytes, 2 * PACKET_LEN as u64, "the first PAT and PMT");
}

#[test]
fn audio_only_is_cut_by_time() {
    let mut mux = Mux::new();
    mux.with_video = false;
    // AAC at 48 kHz: 1920 ticks per frame, two frames per PES.
    for i in 0..400u64 {
        if i % 25 == 0 {
            mux.psi();
        }
        mux.audio(5_000 + i * 3840, 300);
    }
    let (segments, counters) = segment(&mux.out, config(2000), &[777]);
    assert_eq!(counters.dropped_bytes, 2 * PACKET_LEN as u64, "the first PAT and PMT");
    // 400 PES of 3840 ticks = 17.07 s; cuts at the first PES at or after 2 s: 47 PES = 2.005 s.
    let per = Duration::from_nanos(47 * 3840 * 100_000 / 9);
    assert_eq!(segments.len(), 9);
    assert!(segments[..8].iter().all(|s| s.duration == per), "{:?}", segments[0].duration);
    assert_eq!(segments[8].duration, Duration::from_nanos(24 * 3840 * 100_000 / 9));
    let info_free: Vec<u16> = segments[0].bytes.chunks(PACKET_LEN).take(3).map(pid).collect();
    assert_eq!(info_free, vec![0, PMT_PID, AUDIO_PID]);
}

#[test]
fn pts_wrap_is_not_a_discontinuity() {
    let mut mux = Mux::new();
    let start = (1u64 << 33) - 5 * 90_000; // wraps after 5 s
    let keyframes = mux.stream(start, 250, 25, true);
    let (segments, counters) = segment(&mux.out, config(2000), &[4000]);
    assert_eq!(offsets(&segments), keyframes.iter().step_by(2).copied().collect::<Vec<_>>());
    assert!(segments.iter().all(|s| s.duration == TWO_S && !s.discontinuity));
    assert_eq!(counters.discontinuities, 0);
    assert_eq!(segments[3].first_pts, Some((start + 6 * 90_000) & ((1 << 33) - 1)));
}

#[test]
fn pts_jump_flags_the_next_segment() {
    let mut mux = Mux::new();
    let first = mux.stream(0, 115, 25, true); // 4.6 s
    mux.stream(3600 * 90_000, 100, 25, true); // then the encoder restarts an hour later
    let (segments, counters) = segment(&mux.out, config(2000), &[1316]);
    assert_eq!(counters.discontinuities, 1);
    let flags: Vec<bool> = segments.iter().map(|s| s.discontinuity).collect();
    assert_eq!(flags, vec![false, false, false, true, false]);
    // The segment before the jump lasts what its frames last (0.6 s), not an hour.
    assert_eq!(segments[2].input_offset, first[4]);
    assert_eq!(segments[2].duration, Duration::from_millis(600));
    assert_eq!(segments[3].first_pts, Some(3600 * 90_000));
}

#[test]
fn keyframes_found_by_nal_scan_without_rai() {
    let mut mux = Mux::new();
    let keyframes = mux.stream(0, 250, 25, false);
    let (segments, counters) = segment(&mux.out, config(2000), &[1316]);
    assert_eq!(offsets(&segments), keyframes.iter().step_by(2).copied().collect::<Vec<_>>());
    assert_eq!(counters.keyframes_rai, 0);
    assert_eq!(counters.keyframes_scan, 10);
}

#[test]
fn idr_slice_after_long_sei_spanning_packets() {
    // The IDR slice comes after 1 KiB of SEI, several packets into the PES, while audio
    // packets are interleaved; the cut must still be before the PES's first packet.
    let mut mux = Mux::new();
    mux.psi();
    let mut keyframes = Vec::new();
    for i in 0..100u64 {
        let idr = i % 25 == 0;
        let mut pes = vec![0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5];
        pes.extend(mux::pts_bytes(i * FRAME));
        pes.extend([0, 0, 0, 1, 0x06]);
        pes.extend(std::iter::repeat_n(0x11, 1024));
        pes.extend([0x80, 0, 0, 1, if idr { 0x65 } else { 0x41 }]);
        pes.resize(2000, 0x22);
        let (a, b) = pes.split_at(400);
        if idr {
            keyframes.push(mux.out.len() as u64);
        }
        // First part of the PES, an audio PES, then the rest (continuation packets).
        let before = mux.out.len();
        mux.packetize(VIDEO_PID, a, false, false);
        let _ = before;
        mux.audio(i * FRAME, 300);
        let mut rest = Mux::new();
        rest.packetize(VIDEO_PID, b, false, false);
        // Re-label the continuation: no PUSI, continuing counters.
        for p in rest.out.chunks(PACKET_LEN) {
            let mut p = p.to_vec();
            p[1] &= !0x40;
            mux.out.extend_from_slice(&p);
        }
    }
    let (segments, counters) = segment(&mux.out, config(1000), &[333]);
    assert_eq!(offsets(&segments), keyframes);
    assert_eq!(counters.keyframes_scan, 4);
    for s in &segments {
        assert_eq!(pid(&s.bytes[2 * PACKET_LEN..]), VIDEO_PID);
    }
}

#[test]
fn bytes_before_the_first_keyframe_are_dropped() {
    let mut mux = Mux::new();
    mux.stream(0, 60, 25, true);
    let skip = 40 * 188; // start mid-GOP, mid-PSI
    let (segments, counters) = segment(&mux.out[skip..], config(2000), &[1316]);
    assert!(counters.dropped_bytes > 0);
    assert_eq!(segments.len(), 1, "from the keyframe at 1 s to the end at 2.4 s");
    assert!(!segments[0].forced);
    let dropped_until = segments[0].input_offset;
    assert!(counters.dropped_bytes <= dropped_until);
}

#[test]
fn waits_at_most_max_duration_for_a_keyframe() {
    let mut mux = Mux::new();
    mux.stream(0, 500, 100_000, false); // one keyframe at 0 ...
    let (segments, counters) = segment(&mux.out[188 * 30..], config(2000), &[1316]); // ... cut off
    assert_eq!(counters.forced_cuts as usize, segments.len());
    assert!(segments[0].forced);
}

#[test]
fn config_is_checked() {
    let bad = |c: SegmenterConfig| Segmenter::new(c).err();
    let ok = SegmenterConfig::default();
    assert_eq!(
        bad(SegmenterConfig { target_duration: Duration::ZERO, ..ok.clone() }),
        Some(ConfigError::TargetDuration(Duration::ZERO))
    );
    assert!(matches!(
        bad(SegmenterConfig { max_duration: Duration::from_secs(1), ..ok.clone() }),
        Some(ConfigError::MaxDuration { .. })
    ));
    assert_eq!(
        bad(SegmenterConfig { max_segment_bytes: 30 << 20, ..ok.clone() }),
        Some(ConfigError::MaxSegmentBytes(30 << 20))
    );
    assert!(Segmenter::new(ok).is_ok());
}

#[test]
fn counts_damaged_and_odd_packets() {
    let mut mux = Mux::new();
    mux.stream(0, 60, 25, true);
    let mut input = mux.out.clone();
    let packets = input.len() / PACKET_LEN;
    // A transport error on a late audio packet, and a null packet: neither is parsed.
    let audio = (0..packets).rev().find(|&i| pid(&input[i * PACKET_LEN..]) == AUDIO_PID).unwrap();
    input[audio * PACKET_LEN + 1] |= 0x80;
    let mut null = vec![0x47, 0x1F, 0xFF, 0x10];
    null.resize(PACKET_LEN, 0xFF);
    input.extend_from_slice(&null);
    // A video PES without PTS.
    let mut tail = Mux::new();
    tail.packetize(VIDEO_PID, &[0, 0, 1, 0xE0, 0, 0, 0x80, 0x00, 0, 0, 0, 1, 0x41], false, false);
    let mut p = tail.out;
    p[3] = (p[3] & 0xF0) | ((input[(packets - 1) * PACKET_LEN + 3] + 1) & 0x0F); // keep counters going
    let (segments, counters) = segment(&input, config(2000), &[999]);
    let (_, with_tail) = segment(&[input.clone(), p].concat(), config(2000), &[999]);
    assert_eq!(counters.transport_errors, 1);
    assert_eq!(counters.null_packets, 1);
    assert_eq!(counters.pes_without_pts, 0);
    assert_eq!(with_tail.pes_without_pts, 1);
    let carried: usize = segments.iter().map(|s| s.bytes.len() - 2 * PACKET_LEN).sum();
    assert_eq!(
        carried as u64,
        input.len() as u64 - counters.dropped_bytes - PACKET_LEN as u64,
        "null dropped"
    );
}
