//! The start of a PES packet: its PTS and where the elementary stream begins, plus 33-bit
//! timestamp arithmetic.

use std::time::Duration;

/// PTS and PCR base run at 90 kHz.
pub(crate) const PTS_HZ: u64 = 90_000;
/// PTS are 33-bit counters that wrap about every 26.5 hours.
const PTS_MODULUS: u64 = 1 << 33;

/// What the first packet of a PES tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PesStart {
    pub(crate) pts: Option<u64>,
    /// Where the elementary stream data begins, counted from the start of the PES packet; may
    /// lie beyond the first TS packet when the header is long.
    pub(crate) header_len: usize,
}

/// Parses the PES header at the start of `payload`; `None` if there is no PES start code.
pub(crate) fn parse_start(payload: &[u8]) -> Option<PesStart> {
    let [0, 0, 1, stream_id, ..] = *payload else { return None };
    // These streams have no optional header (ISO/IEC 13818-1 table 2-21): data starts at byte 6.
    let plain = matches!(stream_id, 0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF);
    if plain {
        return Some(PesStart { pts: None, header_len: 6 });
    }
    let (Some(&flags), Some(&header_data_len)) = (payload.get(7), payload.get(8)) else {
        return Some(PesStart { pts: None, header_len: 9 });
    };
    let header_len = 9 + usize::from(header_data_len);
    let pts = if flags & 0x80 != 0 { payload.get(9..14).map(timestamp) } else { None };
    Some(PesStart { pts, header_len })
}

/// Decodes the 5-byte PTS/DTS field; marker bits are not checked (some muxers get them wrong,
/// and the value is still right).
fn timestamp(b: &[u8]) -> u64 {
    let b = |i: usize| u64::from(b.get(i).copied().unwrap_or(0));
    ((b(0) >> 1) & 0x07) << 30 | b(1) << 22 | (b(2) >> 1) << 15 | b(3) << 7 | b(4) >> 1
}

/// `a - b` in ticks across the 33-bit wrap: the shorter way round, negative when `a` is before `b`.
pub(crate) fn pts_diff(a: u64, b: u64) -> i64 {
    let d = a.wrapping_sub(b) % PTS_MODULUS;
    if d >= PTS_MODULUS / 2 {
        d as i64 - PTS_MODULUS as i64
    } else {
        d as i64
    }
}

/// 90 kHz ticks in a duration, saturating.
pub(crate) fn ticks(d: Duration) -> u64 {
    u64::try_from(d.as_micros().saturating_mul(u128::from(PTS_HZ)) / 1_000_000).unwrap_or(u64::MAX)
}

/// The duration of a number of 90 kHz ticks.
pub(crate) fn duration(ticks: u64) -> Duration {
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(PTS_HZ);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes a PTS the way a muxer does ('0010' prefix and marker bits).
    pub(crate) fn pts_bytes(pts: u64) -> [u8; 5] {
        [
            0x21 | ((pts >> 29) & 0x0E) as u8,
            (pts >> 22) as u8,
            0x01 | ((pts >> 14) & 0xFE) as u8,
            (pts >> 7) as u8,
            0x01 | ((pts << 1) & 0xFE) as u8,
        ]
    }

    #[test]
    fn reads_pts_and_header_length() {
        let pts = (1 << 33) - 5;
        let mut pes = vec![0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5];
        pes.extend(pts_bytes(pts));
        pes.extend([0, 0, 0, 1, 0x09]);
        assert_eq!(parse_start(&pes), Some(PesStart { pts: Some(pts), header_len: 14 }));
        pes[7] = 0; // PTS_DTS_flags cleared
        assert_eq!(parse_start(&pes), Some(PesStart { pts: None, header_len: 14 }));
        assert_eq!(parse_start(&pes[..8]), Some(PesStart { pts: None, header_len: 9 }));
        assert_eq!(parse_start(&[0, 0, 2, 0xE0]), None);
    }

    #[test]
    fn differences_wrap_at_33_bits() {
        let max = (1u64 << 33) - 1;
        assert_eq!(pts_diff(10, max), 11);
        assert_eq!(pts_diff(max, 10), -11);
        assert_eq!(pts_diff(90_000, 0), 90_000);
        assert_eq!(ticks(Duration::from_secs(2)), 180_000);
        assert_eq!(duration(180_000), Duration::from_secs(2));
        assert_eq!(duration(3_600), Duration::from_millis(40));
    }
}
