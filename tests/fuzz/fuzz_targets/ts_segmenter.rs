//! Arbitrary bytes into the MPEG-TS segmenter, pushed in chunks whose sizes come from the
//! input's first two bytes. Nothing may panic; every segment is whole packets within
//! `max_segment_bytes`, and the memory held stays within that bound plus a little.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_ts::{Segment, Segmenter, SegmenterConfig, MIN_SEGMENT_BYTES, PACKET_LEN};

fuzz_target!(|data: &[u8]| {
    let (chunk, data) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])).max(1), rest),
        _ => (1, data),
    };
    let config = SegmenterConfig { max_segment_bytes: MIN_SEGMENT_BYTES, ..SegmenterConfig::default() };
    let max = config.max_segment_bytes;
    let mut segmenter = Segmenter::new(config).expect("valid config");
    let check = |s: Segment| {
        assert!(s.bytes.len() <= max, "segment of {} bytes", s.bytes.len());
        assert_eq!(s.bytes.len() % PACKET_LEN, 0);
    };
    for piece in data.chunks(chunk) {
        segmenter.push(piece, check);
        assert!(segmenter.buffered_bytes() <= max + 16 * 1024);
    }
    segmenter.flush(check);
    assert_eq!(segmenter.counters().bytes, data.len() as u64);
});
