//! Hostile input: arbitrary bytes, and real-looking streams with random damage, in arbitrary
//! chunking. Nothing may panic, memory stays bounded, and what comes out is whole packets.

mod mux;

use mux::{Mux, VIDEO_PID};
use proptest::prelude::*;
use shoal_ts::{Segmenter, SegmenterConfig, MIN_SEGMENT_BYTES, PACKET_LEN};

/// Slack over `max_segment_bytes`: the PAT/PMT head copied into a new segment, one packet,
/// and the framer's carry.
const SLACK: usize = 16 * 1024;

fn small_config() -> SegmenterConfig {
    SegmenterConfig { max_segment_bytes: MIN_SEGMENT_BYTES, ..SegmenterConfig::default() }
}

/// Feeds `input` cut at `cuts`, checking the bounds after every push.
fn feed(input: &[u8], cuts: &[usize]) -> shoal_ts::Counters {
    let config = small_config();
    let max = config.max_segment_bytes;
    let mut segmenter = Segmenter::new(config).expect("valid config");
    let mut check = |s: shoal_ts::Segment| {
        assert!(s.bytes.len() <= max, "segment of {} bytes", s.bytes.len());
        assert_eq!(s.bytes.len() % PACKET_LEN, 0);
        assert!(s.bytes.chunks(PACKET_LEN).all(|p| p[0] == 0x47));
    };
    let mut pos = 0usize;
    for &cut in cuts.iter().chain(std::iter::once(&usize::MAX)) {
        let end = pos.saturating_add(cut).min(input.len());
        segmenter.push(&input[pos..end], &mut check);
        assert!(segmenter.buffered_bytes() <= max + SLACK, "holds {} bytes", segmenter.buffered_bytes());
        pos = end;
    }
    segmenter.flush(&mut check);
    let counters = segmenter.counters();
    assert_eq!(counters.bytes, input.len() as u64);
    counters
}

/// A stream worth damaging: PSI, video with and without RAI, audio, a PTS wrap, and a long
/// stretch without keyframes that reaches the size bound.
fn sample_stream() -> Vec<u8> {
    let mut mux = Mux::new();
    mux.stream(8_589_000_000, 120, 10, false); // starts just before the PTS wrap
    mux.stream(0, 80, 10, true);
    // 6 s without a keyframe, over 64 KiB: cut by size, then by duration.
    mux.stream(80 * mux::FRAME, 150, 1000, true);
    mux.out
}

#[derive(Clone, Debug)]
enum Damage {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, bit)| Damage::Flip(at, bit)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..300))
            .prop_map(|(at, b)| Damage::Insert(at, b)),
        (any::<usize>(), 1..2000usize).prop_map(|(at, n)| Damage::Delete(at, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(
        input in prop::collection::vec(any::<u8>(), 0..40_000),
        cuts in prop::collection::vec(0..3000usize, 0..40),
    ) {
        feed(&input, &cuts);
    }

    /// Arbitrary bytes made of packet-shaped pieces, so the framer locks and the parser runs.
    #[test]
    fn arbitrary_packets_never_panic(
        packets in prop::collection::vec(
            (0..4u16, any::<u8>(), prop::collection::vec(any::<u8>(), 184)), 0..400),
        cuts in prop::collection::vec(0..3000usize, 0..40),
    ) {
        let pids = [0, 0x100, VIDEO_PID, 0x102];
        let mut input = Vec::new();
        for (pid, flags, body) in &packets {
            let pid = pids[usize::from(*pid)];
            input.extend([0x47, (pid >> 8) as u8 | (flags & 0xE0), pid as u8, flags.rotate_right(4)]);
            input.extend_from_slice(body);
        }
        let mut prefix = Mux::new();
        prefix.psi(); // so the random packets meet a known program
        prefix.out.extend(input);
        feed(&prefix.out, &cuts);
    }

    #[test]
    fn damaged_streams_never_panic(
        damages in prop::collection::vec(damage(), 0..30),
        cuts in prop::collection::vec(0..5000usize, 0..60),
    ) {
        let mut input = sample_stream();
        for d in damages {
            let len = input.len().max(1);
            match d {
                Damage::Flip(at, bit) => {
                    if let Some(b) = input.get_mut(at % len) {
                        *b ^= 1 << (bit % 8);
                    }
                }
                Damage::Insert(at, bytes) => {
                    let at = at % len;
                    input.splice(at..at, bytes);
                }
                Damage::Delete(at, n) => {
                    let at = at % len;
                    let end = (at + n).min(input.len());
                    input.drain(at..end);
                }
            }
        }
        feed(&input, &cuts);
    }
}

#[test]
fn undamaged_sample_is_cut() {
    let input = sample_stream();
    let counters = feed(&input, &[1316]);
    assert!(counters.segments >= 3, "{counters:?}");
    assert!(counters.forced_cuts >= 1, "the size bound is exercised: {counters:?}");
    assert_eq!(counters.cc_errors + counters.garbage_bytes, 0);
}
