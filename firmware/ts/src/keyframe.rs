//! Decides whether a video PES starts a keyframe by reading its elementary stream, for muxers
//! that do not set the random_access_indicator.
//!
//! The scanner walks start codes (`00 00 01`) across packet boundaries and stops at the first
//! one that decides: the first VCL NAL unit (H.264: IDR is type 5; HEVC: IRAP is 16..=23), or
//! the MPEG-1/2 picture header (I-picture is picture_coding_type 1). Parameter sets, SEI and
//! access-unit delimiters before it are skipped, however many packets they span. Work per PES
//! is the bytes up to that first slice, usually a few dozen, never more than [`SCAN_LIMIT`].

use crate::VideoCodec;

/// Give up (not a keyframe) after this many elementary-stream bytes without a slice. Real
/// access units reach their first slice within a few kilobytes (SPS/PPS/SEI); this bounds the
/// work a hostile stream can cause.
const SCAN_LIMIT: u32 = 64 * 1024;

/// The scanner's verdict so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Needs more bytes of this PES.
    Undecided,
    Keyframe,
    NotKeyframe,
}

/// Start-code scanner for one PES at a time.
pub(crate) struct Scanner {
    codec: VideoCodec,
    verdict: Verdict,
    /// PES header bytes still to skip before the elementary stream starts.
    skip: usize,
    /// Consecutive zero bytes just seen (saturating at 2, enough for a start code).
    zeros: u8,
    /// The next byte is the one after a start code.
    after_start_code: bool,
    /// MPEG-2 picture header bytes still to pass before picture_coding_type.
    picture_bytes: u8,
    scanned: u32,
}

impl Scanner {
    pub(crate) fn new(codec: VideoCodec) -> Self {
        Scanner {
            codec,
            verdict: Verdict::NotKeyframe,
            skip: 0,
            zeros: 0,
            after_start_code: false,
            picture_bytes: 0,
            scanned: 0,
        }
    }

    /// Starts on a new PES whose elementary stream begins `header_len` bytes into `payload`.
    pub(crate) fn start(&mut self, header_len: usize) {
        *self = Scanner { skip: header_len, verdict: Verdict::Undecided, ..Scanner::new(self.codec) };
    }

    #[cfg(test)]
    pub(crate) fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Stops scanning this PES (it ended, or nobody needs the answer any more).
    pub(crate) fn stop(&mut self) {
        if self.verdict == Verdict::Undecided {
            self.verdict = Verdict::NotKeyframe;
        }
    }

    /// Feeds the next bytes of the PES (the first call gets the whole payload, header included).
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> Verdict {
        if self.verdict != Verdict::Undecided {
            return self.verdict;
        }
        let skip = self.skip.min(bytes.len());
        self.skip -= skip;
        bytes = &bytes[skip..];
        self.scanned = self.scanned.saturating_add(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        for &b in bytes {
            if self.picture_bytes > 0 {
                self.picture_bytes -= 1;
                if self.picture_bytes == 0 {
                    // temporal_reference (10 bits), then picture_coding_type (3 bits).
                    return self.decide((b >> 3) & 0x07 == 1);
                }
                continue;
            }
            if self.after_start_code {
                self.after_start_code = false;
                if let Some(verdict) = self.start_code(b) {
                    return verdict;
                }
            }
            if b == 0 {
                self.zeros = (self.zeros + 1).min(2);
            } else {
                self.after_start_code = b == 1 && self.zeros == 2;
                self.zeros = 0;
            }
        }
        if self.scanned >= SCAN_LIMIT {
            return self.decide(false);
        }
        Verdict::Undecided
    }

    /// Looks at the byte after a start code: a NAL header or an MPEG-2 start code value.
    fn start_code(&mut self, b: u8) -> Option<Verdict> {
        match self.codec {
            VideoCodec::H264 => match b & 0x1F {
                5 => Some(self.decide(true)),
                1..=4 => Some(self.decide(false)),
                _ => None,
            },
            VideoCodec::Hevc => match (b >> 1) & 0x3F {
                16..=23 => Some(self.decide(true)),
                0..=31 => Some(self.decide(false)),
                _ => None,
            },
            VideoCodec::Mpeg1 | VideoCodec::Mpeg2 => {
                if b == 0x00 {
                    self.picture_bytes = 2;
                }
                None
            }
        }
    }

    fn decide(&mut self, keyframe: bool) -> Verdict {
        self.verdict = if keyframe { Verdict::Keyframe } else { Verdict::NotKeyframe };
        self.verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `es` after a 9-byte PES header, split at every possible point.
    fn scan_split(codec: VideoCodec, es: &[u8]) -> Verdict {
        let mut pes = vec![0, 0, 1, 0xE0, 0, 0, 0x80, 0, 0];
        pes.extend_from_slice(es);
        let mut verdicts = Vec::new();
        for split in 0..=pes.len() {
            let mut s = Scanner::new(codec);
            s.start(9);
            s.feed(&pes[..split]);
            s.feed(&pes[split..]);
            s.stop();
            verdicts.push(s.verdict());
        }
        assert!(verdicts.windows(2).all(|w| w[0] == w[1]), "split changes verdict: {verdicts:?}");
        verdicts[0]
    }

    #[test]
    fn h264_idr_after_parameter_sets() {
        let idr = [0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x68, 0xCE, 0, 0, 1, 0x65, 0x88];
        assert_eq!(scan_split(VideoCodec::H264, &idr), Verdict::Keyframe);
        let p = [0, 0, 0, 1, 0x09, 0x30, 0, 0, 1, 0x06, 0x05, 0, 0, 1, 0x41, 0x9A];
        assert_eq!(scan_split(VideoCodec::H264, &p), Verdict::NotKeyframe);
        // No slice at all: undecided until the PES ends, then not a keyframe.
        assert_eq!(scan_split(VideoCodec::H264, &[0, 0, 1, 0x09, 0x10]), Verdict::NotKeyframe);
    }

    #[test]
    fn hevc_irap_types() {
        // AUD (35), VPS (32), then IDR_W_RADL (19) or TRAIL_R (1) / CRA (21).
        let idr = [0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 1, 0x40, 0x01, 0xC0, 0, 0, 1, 0x26, 0x01, 0xAF];
        assert_eq!(scan_split(VideoCodec::Hevc, &idr), Verdict::Keyframe);
        let cra = [0, 0, 1, 0x2A, 0x01, 0xAF];
        assert_eq!(scan_split(VideoCodec::Hevc, &cra), Verdict::Keyframe);
        let trail = [0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 1, 0x02, 0x01, 0xD0];
        assert_eq!(scan_split(VideoCodec::Hevc, &trail), Verdict::NotKeyframe);
    }

    #[test]
    fn mpeg2_picture_coding_type() {
        // Sequence header, GOP header, picture header with temporal_reference 0 and type I / P.
        let i = [0, 0, 1, 0xB3, 0x14, 0, 0, 1, 0xB8, 0, 8, 0, 0, 0, 1, 0x00, 0x00, 0x0F, 0xFF];
        assert_eq!(scan_split(VideoCodec::Mpeg2, &i), Verdict::Keyframe);
        let p = [0, 0, 1, 0x00, 0x00, 0x57, 0xFF];
        assert_eq!(scan_split(VideoCodec::Mpeg2, &p), Verdict::NotKeyframe);
    }

    #[test]
    fn gives_up_after_the_scan_limit() {
        let mut s = Scanner::new(VideoCodec::H264);
        s.start(0);
        let junk = [0xAB; 4096];
        let mut verdict = Verdict::Undecided;
        for _ in 0..(SCAN_LIMIT as usize / junk.len() + 1) {
            verdict = s.feed(&junk);
        }
        assert_eq!(verdict, Verdict::NotKeyframe);
    }
}
