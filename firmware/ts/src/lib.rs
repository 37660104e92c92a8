//! Sans-IO MPEG-TS segmenter: cuts a transport stream at keyframes into self-contained HLS
//! segments.
//!
//! The caller pushes transport-stream bytes as they arrive (UDP payloads, chunks of an HTTP
//! body, file reads: any size, any alignment) and receives [`Segment`]s through a callback.
//! Each segment starts with copies of the most recent PAT and PMT packets followed by the
//! packet that starts a keyframe's PES, so a player can decode it alone.
//!
//! How it works, one packet at a time (see [`Segmenter`]):
//!
//! 1. The framer finds 188-byte packets, confirming a sync byte with the next one while hunting,
//!    and skips (and counts) garbage.
//! 2. PAT and PMT sections are reassembled, CRC-checked and parsed to find the video PID (or the
//!    first audio PID of a radio service); the raw packets of the latest ones are kept for the
//!    head of the next segment.
//! 3. Every packet is copied once into the current segment's buffer. At the start of a video
//!    PES the segmenter reads the PTS and decides whether it starts a keyframe: from the
//!    random_access_indicator, or by scanning the PES payload for the first slice's NAL type
//!    (or the MPEG-2 picture type). When a keyframe arrives after `target_duration`, the segment
//!    ends just before it.
//!
//! ```
//! use shoal_ts::{Segmenter, SegmenterConfig};
//!
//! let mut segmenter = Segmenter::new(SegmenterConfig::default()).expect("default config is valid");
//! let mut segments = Vec::new();
//! for chunk in [&[0x47u8, 0x1f, 0xff, 0x10][..], &[0xff; 184][..]] {
//!     segmenter.push(chunk, |segment| segments.push(segment));
//! }
//! segmenter.flush(|segment| segments.push(segment));
//! assert!(segments.is_empty()); // a null packet alone makes no segment
//! assert_eq!(segmenter.counters().packets, 1);
//! ```
#![forbid(unsafe_code)]

mod framer;
mod keyframe;
mod pes;
mod psi;
mod segmenter;

use std::time::Duration;

pub use segmenter::Segmenter;

/// The size of a transport-stream packet; the only size this crate accepts (no 192/204-byte
/// variants: M2TS and Reed-Solomon framings are not seen on the LANs Shoal serves).
pub const PACKET_LEN: usize = 188;

/// The largest `max_segment_bytes` accepted. Segments travel as one unit through the swarm and
/// its stores, which are sized for segments below 30 MiB.
pub const MAX_SEGMENT_BYTES_LIMIT: usize = 30 * 1024 * 1024 - 1;

/// The smallest `max_segment_bytes` accepted: room for PAT, PMT and a handful of video packets.
/// Anything smaller would force a cut on nearly every packet.
pub const MIN_SEGMENT_BYTES: usize = 64 * 1024;

/// How to cut the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmenterConfig {
    /// Cut at the first keyframe at which the current segment has lasted this long.
    pub target_duration: Duration,
    /// A segment that reaches this size without a keyframe is cut at the next packet (and the
    /// cut counted). Bounds the memory held: at most this plus one packet per segmenter.
    pub max_segment_bytes: usize,
    /// A segment that lasts this long without a keyframe is cut at the next video PES start.
    pub max_duration: Duration,
    /// The program to follow; `None` takes the first program listed in the PAT.
    pub program: Option<u16>,
}

impl Default for SegmenterConfig {
    /// Two-second segments (a usual HLS choice for live LAN playback), 24 MiB at most (a 3 × 2 s
    /// segment at 40 Mbit/s is 30 MB, so a runaway segment is caught before the 30 MiB limit),
    /// and forced cuts after three target durations.
    fn default() -> Self {
        let target_duration = Duration::from_secs(2);
        SegmenterConfig {
            target_duration,
            max_segment_bytes: 24 * 1024 * 1024,
            max_duration: 3 * target_duration,
            program: None,
        }
    }
}

/// Why a [`SegmenterConfig`] was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// `target_duration` is zero, which would cut at every keyframe, or longer than an hour.
    #[error("segment target_duration must be between 1 ms and 1 hour, not {0:?}")]
    TargetDuration(Duration),
    /// `max_duration` is shorter than `target_duration`, so every segment would be forced.
    #[error("segment max_duration ({max:?}) must be at least target_duration ({target:?})")]
    MaxDuration {
        /// The configured `max_duration`.
        max: Duration,
        /// The configured `target_duration`.
        target: Duration,
    },
    /// `max_segment_bytes` is outside [`MIN_SEGMENT_BYTES`]..=[`MAX_SEGMENT_BYTES_LIMIT`].
    #[error("max_segment_bytes must be between 64 KiB and 30 MiB - 1, not {0}")]
    MaxSegmentBytes(usize),
}

/// One self-contained piece of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Whole TS packets: PAT, PMT, then the stream from the cut point on.
    pub bytes: Vec<u8>,
    /// From this segment's first PTS to the next one's; for the last segment, or one ended by a
    /// timestamp discontinuity, the span of PTS seen plus one frame.
    pub duration: Duration,
    /// The timeline restarts here (PTS jump, discontinuity_indicator, new PMT): a playlist
    /// should put `#EXT-X-DISCONTINUITY` before this segment.
    pub discontinuity: bool,
    /// Cut without a keyframe because `max_segment_bytes` or `max_duration` was reached.
    pub forced: bool,
    /// Offset in the pushed input of the packet this segment was cut before (the keyframe's
    /// first packet), counting garbage bytes too.
    pub input_offset: u64,
    /// PTS (90 kHz, 33 bits) of the first frame, when its PES carried one.
    pub first_pts: Option<u64>,
}

/// What happened so far; plain totals since [`Segmenter::new`], for logs and `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Bytes pushed.
    pub bytes: u64,
    /// 188-byte packets found.
    pub packets: u64,
    /// Bytes skipped while looking for a sync byte.
    pub garbage_bytes: u64,
    /// Times the packet grid was lost (a packet did not start with 0x47).
    pub sync_losses: u64,
    /// Continuity-counter jumps, per PID, outside a discontinuity_indicator.
    pub cc_errors: u64,
    /// Packets with the transport_error_indicator set: copied but not parsed.
    pub transport_errors: u64,
    /// Packets with an impossible adaptation_field_length: copied but not parsed.
    pub malformed_packets: u64,
    /// Null packets (PID 0x1FFF), which are dropped.
    pub null_packets: u64,
    /// PAT or PMT sections whose CRC-32 did not match.
    pub crc_errors: u64,
    /// PAT or PMT contents that changed after the first one.
    pub table_changes: u64,
    /// Segments emitted.
    pub segments: u64,
    /// Keyframes recognised by the random_access_indicator.
    pub keyframes_rai: u64,
    /// Keyframes recognised by scanning the PES payload (IDR/IRAP NAL, MPEG-2 I-picture).
    pub keyframes_scan: u64,
    /// Cuts made without a keyframe (size or duration bound reached).
    pub forced_cuts: u64,
    /// Timeline breaks seen (PTS jumps, discontinuity_indicator, program changes).
    pub discontinuities: u64,
    /// Bytes dropped because no segment had started yet (before the PMT and the first keyframe).
    pub dropped_bytes: u64,
    /// PES starts of the timing stream that carried no PTS.
    pub pes_without_pts: u64,
}

/// The video codecs whose keyframes the segmenter recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// ISO/IEC 11172-2 (stream_type 0x01).
    Mpeg1,
    /// H.262 / MPEG-2 video (stream_type 0x02).
    Mpeg2,
    /// H.264 / AVC (stream_type 0x1B).
    H264,
    /// H.265 / HEVC (stream_type 0x24).
    Hevc,
}

/// The program being segmented, as the latest PMT describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    /// The program_number followed.
    pub program: u16,
    /// The PID carrying its PMT.
    pub pmt_pid: u16,
    /// The first video stream: its PID and codec.
    pub video: Option<(u16, VideoCodec)>,
    /// Audio streams (MPEG audio, AAC, AC-3, E-AC-3) in PMT order: PID and stream_type.
    pub audio: Vec<(u16, u8)>,
}
