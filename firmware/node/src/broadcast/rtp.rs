//! Unwrapping RTP (RFC 3550) around MPEG-TS (RFC 2250, payload type 33): headers, CSRCs,
//! extensions and padding are skipped; lost and reordered packets are counted from the
//! sequence numbers (the transport stream's own continuity counters tell the segmenter the rest).

/// MPEG-TS sync byte: a datagram starting with it is plain TS, not RTP.
const TS_SYNC: u8 = 0x47;
/// RFC 3551's static payload type for MPEG-2 transport streams.
const PAYLOAD_TYPE_MP2T: u8 = 33;

/// What became of one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unwrapped<'a> {
    /// Transport-stream bytes to segment.
    Ts(&'a [u8]),
    /// Not usable: a malformed RTP header or another payload type.
    Dropped,
}

/// Per-feed RTP state and counters.
#[derive(Clone, Debug, Default)]
pub struct RtpReceiver {
    next_seq: Option<u16>,
    /// RTP packets received.
    pub packets: u64,
    /// Packets missing from the sequence (a jump forward).
    pub lost: u64,
    /// Packets arriving after a later one (a jump back), passed on anyway.
    pub reordered: u64,
    /// Datagrams that were not RTP carrying MPEG-TS.
    pub malformed: u64,
}

impl RtpReceiver {
    /// The TS bytes in `datagram`. With `expect_rtp` false, a datagram that starts with the TS
    /// sync byte is plain TS and passed whole; anything else is tried as RTP.
    pub fn unwrap<'a>(&mut self, datagram: &'a [u8], expect_rtp: bool) -> Unwrapped<'a> {
        if !expect_rtp && datagram.first() == Some(&TS_SYNC) {
            return Unwrapped::Ts(datagram);
        }
        match parse(datagram) {
            Some((seq, payload)) => {
                self.packets += 1;
                if let Some(expected) = self.next_seq {
                    let ahead = seq.wrapping_sub(expected);
                    if ahead != 0 && ahead < 0x8000 {
                        self.lost += u64::from(ahead);
                    } else if ahead >= 0x8000 {
                        self.reordered += 1;
                        return Unwrapped::Ts(payload);
                    }
                }
                self.next_seq = Some(seq.wrapping_add(1));
                Unwrapped::Ts(payload)
            }
            None => {
                self.malformed += 1;
                Unwrapped::Dropped
            }
        }
    }
}

/// The sequence number and MPEG-TS payload of an RTP packet, or `None` if it is not one.
fn parse(datagram: &[u8]) -> Option<(u16, &[u8])> {
    let (&first, rest) = datagram.split_first()?;
    let (&second, _) = rest.split_first()?;
    if first >> 6 != 2 || datagram.len() < 12 || second & 0x7f != PAYLOAD_TYPE_MP2T {
        return None;
    }
    let seq = u16::from_be_bytes([datagram[2], datagram[3]]);
    let csrc = usize::from(first & 0x0f) * 4;
    let mut start = 12 + csrc;
    if first & 0x10 != 0 {
        let header = datagram.get(start..start + 4)?;
        start += 4 + usize::from(u16::from_be_bytes([header[2], header[3]])) * 4;
    }
    let mut end = datagram.len();
    if first & 0x20 != 0 {
        let padding = usize::from(*datagram.last()?);
        end = end.checked_sub(padding)?;
    }
    let payload = datagram.get(start..end)?;
    (payload.first() == Some(&TS_SYNC)).then_some((seq, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seq: u16, flags: u8, extra: &[u8], ts: &[u8], tail: &[u8]) -> Vec<u8> {
        let mut packet = vec![0x80 | flags, PAYLOAD_TYPE_MP2T];
        packet.extend_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(&[0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef]);
        packet.extend_from_slice(extra);
        packet.extend_from_slice(ts);
        packet.extend_from_slice(tail);
        packet
    }

    #[test]
    fn headers_csrcs_extensions_and_padding_are_skipped() {
        let ts = [[0x47u8; 1].as_slice(), &[0u8; 187]].concat();
        let mut r = RtpReceiver::default();
        assert_eq!(r.unwrap(&rtp(1, 0, &[], &ts, &[]), true), Unwrapped::Ts(&ts));
        // Two CSRCs, an extension of one word, three bytes of padding.
        let extra = [[0u8; 8].as_slice(), &[0xbe, 0xde, 0, 1], &[9, 9, 9, 9]].concat();
        let packet = rtp(2, 0x20 | 0x10 | 2, &extra, &ts, &[0, 0, 3]);
        assert_eq!(r.unwrap(&packet, true), Unwrapped::Ts(&ts));
        assert_eq!((r.packets, r.lost, r.malformed), (2, 0, 0));
        // Plain TS passes whole unless RTP is expected.
        assert_eq!(r.unwrap(&ts, false), Unwrapped::Ts(&ts));
        assert_eq!(r.unwrap(&ts, true), Unwrapped::Dropped);
    }

    #[test]
    fn losses_and_reordering_are_counted_across_the_wrap() {
        let ts = [0x47u8; 188];
        let mut r = RtpReceiver::default();
        for seq in [65_534u16, 65_535, 2, 1, 3] {
            assert!(matches!(r.unwrap(&rtp(seq, 0, &[], &ts, &[]), true), Unwrapped::Ts(_)));
        }
        assert_eq!((r.lost, r.reordered), (2, 1));
    }

    #[test]
    fn malformed_datagrams_are_dropped_not_trusted() {
        let mut r = RtpReceiver::default();
        let ts = [0x47u8; 188];
        let mut wrong_type = rtp(1, 0, &[], &ts, &[]);
        wrong_type[1] = 96;
        let mut too_much_padding = rtp(1, 0x20, &[], &ts, &[]);
        *too_much_padding.last_mut().expect("non-empty") = 255;
        let huge_extension = rtp(1, 0x10, &[0, 0, 0xff, 0xff], &ts, &[]);
        for bad in [&[][..], &[0x80], &[0x80, 33, 0], &wrong_type, &too_much_padding, &huge_extension] {
            assert_eq!(r.unwrap(bad, true), Unwrapped::Dropped);
        }
        assert_eq!(r.malformed, 6);
    }
}
