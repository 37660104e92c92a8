//! The segmenter's state machine: one call per packet, deciding where segments end.
//!
//! Every packet is copied once, into the buffer of the segment being built. At the first packet
//! of a PES on the timing stream (the video, or the first audio stream of a radio service), the
//! segmenter reads the PTS and decides whether the segment is due to end there. A video PES is a
//! cut point only if it starts a keyframe: known at once from the random_access_indicator, or
//! later, once the [`Scanner`] has seen the first slice. Until then the PES start is a
//! [`Candidate`] holding its offset in the buffer, and the segment is split there afterwards
//! (copying the few packets after it).
//!
//! Before the first keyframe, the buffer only holds the packets since the last PES start of the
//! timing stream; they are dropped (and counted) at each following PES start.

use std::mem;

use mpeg2ts_reader::packet::Packet;

use crate::framer::{Framer, FramerStats};
use crate::keyframe::{Scanner, Verdict};
use crate::pes::{self, pts_diff};
use crate::psi::{self, SectionReader};
use crate::{
    ConfigError, Counters, Segment, SegmenterConfig, StreamInfo, VideoCodec, MAX_SEGMENT_BYTES_LIMIT,
    MIN_SEGMENT_BYTES, PACKET_LEN,
};

/// Null packets pad constant-bitrate streams; a player never needs them.
const NULL_PID: u16 = 0x1FFF;
const PAT_PID: u16 = 0;
/// A PTS this far behind the previous one is a new timeline, not B-frame reordering (which
/// goes back a few frames, well under a second).
const MAX_PTS_BACKWARD: i64 = 2 * pes::PTS_HZ as i64;
/// A PTS this far ahead of the previous one of the same stream is a jump: a gap this long
/// between two frames means the source restarted or looped.
const MAX_PTS_FORWARD: i64 = 10 * pes::PTS_HZ as i64;
/// The frame-duration estimate never exceeds this (used for the last segment's duration).
const MAX_FRAME_TICKS: u64 = pes::PTS_HZ;

/// Cuts a transport stream into segments; see the crate docs.
///
/// Feed input with [`push`](Self::push), which hands out finished segments through its
/// callback as soon as the next segment starts, and call [`flush`](Self::flush) at the end of
/// the input for the last one. Callbacks rather than a queue: nothing is held after a call
/// returns, so memory stays within one segment whatever the caller pushes at once.
pub struct Segmenter {
    framer: Framer,
    stats: FramerStats,
    core: Core,
}

impl Segmenter {
    /// A segmenter for `config`, which is checked here.
    pub fn new(config: SegmenterConfig) -> Result<Self, ConfigError> {
        let target = config.target_duration;
        if target.is_zero() || target > std::time::Duration::from_secs(3600) {
            return Err(ConfigError::TargetDuration(target));
        }
        if config.max_duration < target {
            return Err(ConfigError::MaxDuration { max: config.max_duration, target });
        }
        if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES_LIMIT).contains(&config.max_segment_bytes) {
            return Err(ConfigError::MaxSegmentBytes(config.max_segment_bytes));
        }
        Ok(Segmenter { framer: Framer::new(), stats: FramerStats::default(), core: Core::new(config) })
    }

    /// Feeds the next bytes of the stream, of any length and alignment, and calls `on_segment`
    /// for every segment they complete (a segment completes when the next one starts).
    pub fn push(&mut self, bytes: &[u8], mut on_segment: impl FnMut(Segment)) {
        self.core.counters.bytes += bytes.len() as u64;
        let core = &mut self.core;
        self.framer
            .push(bytes, &mut self.stats, |packet, offset| core.packet(packet, offset, &mut on_segment));
    }

    /// Ends the input: hands out the last packet (which had no following sync byte to confirm
    /// it) and the segment being built, if one had started, then starts over as for a new
    /// stream (counters are kept). A trailing partial packet counts as garbage.
    pub fn flush(&mut self, mut on_segment: impl FnMut(Segment)) {
        let core = &mut self.core;
        self.framer.finish(&mut self.stats, |packet, offset| core.packet(packet, offset, &mut on_segment));
        let old = mem::replace(&mut core.seg, Building::waiting(self.framer.offset()));
        if let Some(last) = core.finish(old, None) {
            on_segment(last);
        }
        let mut counters = core.counters;
        counters.crc_errors += core.pat.crc_errors + core.pmt.crc_errors;
        *core = Core::new(core.config.clone());
        core.counters = counters;
    }

    /// Totals since creation.
    pub fn counters(&self) -> Counters {
        Counters {
            garbage_bytes: self.stats.garbage_bytes,
            sync_losses: self.stats.sync_losses,
            crc_errors: self.core.counters.crc_errors + self.core.pat.crc_errors + self.core.pmt.crc_errors,
            ..self.core.counters
        }
    }

    /// The program being followed, once its PMT has been read.
    pub fn stream_info(&self) -> Option<&StreamInfo> {
        self.core.info.as_ref()
    }

    /// Memory held for stream data: the segment buffer's capacity and any partial packet.
    /// Never more than `max_segment_bytes` plus a few packets.
    pub fn buffered_bytes(&self) -> usize {
        self.core.seg.buf.capacity() + self.framer.pending()
    }

    /// The configuration this segmenter was made with.
    pub fn config(&self) -> &SegmenterConfig {
        &self.core.config
    }
}

/// The segment being built.
struct Building {
    buf: Vec<u8>,
    /// False while waiting for the first keyframe: the buffer is dropped, not emitted.
    started: bool,
    input_offset: u64,
    /// The first PTS of the segment (while waiting: the first PTS seen, to bound the wait).
    first_pts: Option<u64>,
    /// The largest PTS seen, in ticks after `first_pts`.
    span: u64,
    /// A discontinuity was seen: later PTS belong to another timeline and no longer count.
    frozen: bool,
    discontinuity: bool,
    forced: bool,
}

impl Building {
    fn waiting(input_offset: u64) -> Self {
        Building {
            buf: Vec::new(),
            started: false,
            input_offset,
            first_pts: None,
            span: 0,
            frozen: false,
            discontinuity: false,
            forced: false,
        }
    }

    /// Takes a timing-stream PTS into the segment's span.
    fn observe(&mut self, pts: u64) {
        match self.first_pts {
            None => self.first_pts = Some(pts),
            Some(first) if !self.frozen => {
                self.span = self.span.max(u64::try_from(pts_diff(pts, first)).unwrap_or(0));
            }
            Some(_) => {}
        }
    }
}

/// A PES start where the segment may end, waiting for the scanner's verdict.
#[derive(Clone, Copy)]
struct Candidate {
    /// Where its first packet sits in the segment buffer.
    pos: usize,
    input_offset: u64,
    pts: Option<u64>,
    /// Cut here if it is a keyframe.
    due: bool,
    /// Cut here even if it is not (the segment has lasted `max_duration`).
    force: bool,
}

/// The stream the segmenter times and cuts on.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Timing {
    pid: u16,
    /// `None` for an audio-only service, cut at any PES start.
    video: Option<VideoCodec>,
}

/// Everything but the framer, so the framer's callback can borrow it.
struct Core {
    config: SegmenterConfig,
    target_ticks: i64,
    max_ticks: i64,
    counters: Counters,
    /// Per PID: 0x80 seen, 0x40 one duplicate already allowed, low nibble the last CC.
    cc: Vec<u8>,
    pat: SectionReader,
    pmt: SectionReader,
    pat_section: Vec<u8>,
    pmt_section: Vec<u8>,
    /// The packets of the latest PAT and PMT, as received: the head of every segment.
    pat_packets: Vec<u8>,
    pmt_packets: Vec<u8>,
    /// The program followed and its PMT PID, from the PAT.
    program: Option<(u16, u16)>,
    info: Option<StreamInfo>,
    timing: Option<Timing>,
    scanner: Scanner,
    candidate: Option<Candidate>,
    seg: Building,
    /// The previous PTS of the timing stream, to spot jumps.
    last_pts: Option<u64>,
    /// Smallest forward step between PTS of the timing stream: one frame (or audio PES).
    frame_ticks: u64,
    /// A discontinuity was seen: cut at the next keyframe, whatever the duration.
    discontinuity_pending: bool,
    /// The capacity to give the next segment's buffer: the last one's size plus a margin.
    size_hint: usize,
}

impl Core {
    fn new(config: SegmenterConfig) -> Self {
        let target_ticks = i64::try_from(pes::ticks(config.target_duration)).unwrap_or(i64::MAX);
        let max_ticks = i64::try_from(pes::ticks(config.max_duration)).unwrap_or(i64::MAX);
        Core {
            config,
            target_ticks,
            max_ticks,
            counters: Counters::default(),
            cc: vec![0; 8192],
            pat: SectionReader::new(),
            pmt: SectionReader::new(),
            pat_section: Vec::new(),
            pmt_section: Vec::new(),
            pat_packets: Vec::new(),
            pmt_packets: Vec::new(),
            program: None,
            info: None,
            timing: None,
            scanner: Scanner::new(VideoCodec::H264),
            candidate: None,
            seg: Building::waiting(0),
            last_pts: None,
            frame_ticks: u64::MAX,
            discontinuity_pending: false,
            size_hint: MIN_SEGMENT_BYTES,
        }
    }

    fn packet(&mut self, bytes: &[u8; PACKET_LEN], offset: u64, emit: &mut impl FnMut(Segment)) {
        self.counters.packets += 1;
        // The framer only hands out packets that start with the sync byte.
        let Some(packet) = Packet::try_new(bytes) else { return };
        let pid = u16::from(packet.pid());
        if pid == NULL_PID {
            self.counters.null_packets += 1;
            return;
        }
        if packet.transport_error_indicator() {
            // The header itself may be wrong: keep the bytes for the decoder, parse nothing.
            self.counters.transport_errors += 1;
            return self.append(bytes, offset, emit);
        }
        // Checked here so mpeg2ts-reader's accessors below never see an impossible length
        // (they would log a warning per packet, which a damaged stream must not cause).
        let control = packet.adaptation_control();
        let af_len = usize::from(bytes[4]);
        let sane = match (control.has_adaptation_field(), control.has_payload()) {
            (true, true) => af_len <= 182,
            (true, false) => af_len == 183,
            (false, _) => true,
        };
        if !sane {
            self.counters.malformed_packets += 1;
            return self.append(bytes, offset, emit);
        }
        let (rai, di) = packet
            .adaptation_field()
            .map_or((false, false), |af| (af.random_access_indicator(), af.discontinuity_indicator()));
        let payload = packet.payload();
        self.check_cc(pid, packet.continuity_counter().count(), payload.is_some(), di);
        let unit_start = packet.payload_unit_start_indicator();

        if let Some(payload) = payload {
            if pid == PAT_PID {
                self.on_pat(bytes, payload, unit_start);
            } else if self.program.is_some_and(|(_, pmt_pid)| pmt_pid == pid) {
                self.on_pmt(bytes, payload, unit_start);
            }
        }
        if let Some(timing) = self.timing.filter(|t| t.pid == pid) {
            if di {
                self.discontinuity();
            }
            let clear = !packet.transport_scrambling_control().is_scrambled();
            match payload {
                Some(payload) if clear && unit_start => self.pes_start(timing, payload, rai, offset, emit),
                Some(payload) if clear && self.candidate.is_some() => {
                    let verdict = self.scanner.feed(payload);
                    self.resolve(verdict, emit);
                }
                _ => {}
            }
        }
        self.append(bytes, offset, emit);
    }

    /// Counts continuity-counter errors. Packets without payload do not advance the counter,
    /// one duplicate is allowed, and a discontinuity_indicator restarts the count.
    fn check_cc(&mut self, pid: u16, cc: u8, has_payload: bool, discontinuity: bool) {
        const SEEN: u8 = 0x80;
        const DUPLICATE: u8 = 0x40;
        let Some(slot) = self.cc.get_mut(usize::from(pid)) else { return };
        if discontinuity || *slot & SEEN == 0 {
            *slot = SEEN | cc;
            return;
        }
        if !has_payload {
            return;
        }
        let last = *slot & 0x0F;
        if cc == last {
            if *slot & DUPLICATE != 0 {
                self.counters.cc_errors += 1;
            }
            *slot |= DUPLICATE;
            return;
        }
        if cc != (last + 1) & 0x0F {
            self.counters.cc_errors += 1;
        }
        *slot = SEEN | cc;
    }

    fn on_pat(&mut self, bytes: &[u8; PACKET_LEN], payload: &[u8], unit_start: bool) {
        let mut changed = false;
        let (pat_section, pat_packets) = (&mut self.pat_section, &mut self.pat_packets);
        self.pat.push(bytes, payload, unit_start, |section, packets| {
            pat_packets.clear();
            pat_packets.extend_from_slice(packets);
            if section != pat_section.as_slice() {
                pat_section.clear();
                pat_section.extend_from_slice(section);
                changed = true;
            }
        });
        if !changed {
            return;
        }
        let found = psi::read_pat(&self.pat_section, self.config.program);
        if found.is_some() && found != self.program {
            if self.program.is_some() {
                self.counters.table_changes += 1;
            }
            self.program = found;
            self.pmt.reset();
            self.pmt_section.clear();
        }
    }

    fn on_pmt(&mut self, bytes: &[u8; PACKET_LEN], payload: &[u8], unit_start: bool) {
        let Some((program, pmt_pid)) = self.program else { return };
        let mut changed = false;
        let (pmt_section, pmt_packets) = (&mut self.pmt_section, &mut self.pmt_packets);
        self.pmt.push(bytes, payload, unit_start, |section, packets| {
            // A PMT PID may carry the maps of several programs: keep only ours.
            if section.get(3..5) != Some(&program.to_be_bytes()[..]) {
                return;
            }
            pmt_packets.clear();
            pmt_packets.extend_from_slice(packets);
            if section != pmt_section.as_slice() {
                pmt_section.clear();
                pmt_section.extend_from_slice(section);
                changed = true;
            }
        });
        if !changed {
            return;
        }
        let Some(info) = psi::read_pmt(&self.pmt_section, program, pmt_pid) else { return };
        let timing = match (info.video, info.audio.first()) {
            (Some((pid, codec)), _) => Some(Timing { pid, video: Some(codec) }),
            (None, Some(&(pid, _))) => Some(Timing { pid, video: None }),
            (None, None) => None,
        };
        if self.info.is_some() {
            log::info!("PMT of program {program} changed: {info:?}");
            self.counters.table_changes += 1;
            self.discontinuity();
        }
        if timing != self.timing {
            self.timing = timing;
            self.candidate = None;
            self.last_pts = None;
            if let Some(Timing { video: Some(codec), .. }) = timing {
                self.scanner = Scanner::new(codec);
            }
        }
        self.info = Some(info);
    }

    /// The first packet of a PES on the timing stream: is it where the segment ends?
    fn pes_start(
        &mut self,
        timing: Timing,
        payload: &[u8],
        rai: bool,
        offset: u64,
        emit: &mut impl FnMut(Segment),
    ) {
        // The previous PES ended before its first slice: not a keyframe.
        self.scanner.stop();
        self.resolve(Verdict::NotKeyframe, emit);
        let Some(start) = pes::parse_start(payload) else { return };
        match start.pts {
            Some(pts) => self.observe_pts(pts),
            None => self.counters.pes_without_pts += 1,
        }
        if !self.seg.started {
            self.counters.dropped_bytes += self.seg.buf.len() as u64;
            self.seg.buf.clear();
        }
        let elapsed = match (start.pts, self.seg.first_pts) {
            (Some(pts), Some(first)) if !self.seg.frozen => pts_diff(pts, first),
            _ => 0,
        };
        let candidate = Candidate {
            pos: self.seg.buf.len(),
            input_offset: offset,
            pts: start.pts,
            due: !self.seg.started || self.discontinuity_pending || elapsed >= self.target_ticks,
            force: elapsed >= self.max_ticks,
        };
        self.candidate = Some(candidate);
        match timing.video {
            None => self.resolve(Verdict::Keyframe, emit),
            Some(_) if rai => {
                self.counters.keyframes_rai += 1;
                self.cut_at_candidate(false, emit);
            }
            Some(_) => {
                self.scanner.start(start.header_len);
                let verdict = self.scanner.feed(payload);
                self.resolve(verdict, emit);
            }
        }
        if let Some(pts) = start.pts {
            self.seg.observe(pts);
        }
    }

    /// Acts on a verdict about the pending candidate (for audio, every PES start is a
    /// "keyframe"; only video keyframes are counted).
    fn resolve(&mut self, verdict: Verdict, emit: &mut impl FnMut(Segment)) {
        let is_video = self.timing.is_some_and(|t| t.video.is_some());
        if verdict == Verdict::Keyframe && is_video && self.candidate.is_some() {
            self.counters.keyframes_scan += 1;
        }
        match verdict {
            Verdict::Undecided => {}
            Verdict::Keyframe => self.cut_at_candidate(false, emit),
            Verdict::NotKeyframe => self.cut_at_candidate(true, emit),
        }
    }

    /// Ends the segment before the pending candidate if it is due (a keyframe) or must be
    /// forced (`not_keyframe`), and forgets the candidate either way.
    fn cut_at_candidate(&mut self, not_keyframe: bool, emit: &mut impl FnMut(Segment)) {
        let Some(c) = self.candidate.take() else { return };
        if (!not_keyframe && c.due) || (not_keyframe && c.force) {
            self.cut(c.pos, c.input_offset, c.pts, not_keyframe, emit);
        }
    }

    /// Ends the current segment at `pos` in its buffer; what follows starts the next one.
    fn cut(
        &mut self,
        pos: usize,
        input_offset: u64,
        pts: Option<u64>,
        forced: bool,
        emit: &mut impl FnMut(Segment),
    ) {
        let tail = self.seg.buf.get(pos..).unwrap_or_default();
        let head = self.pat_packets.len() + self.pmt_packets.len();
        let mut buf = Vec::with_capacity(self.size_hint.max(head + tail.len() + PACKET_LEN));
        buf.extend_from_slice(&self.pat_packets);
        buf.extend_from_slice(&self.pmt_packets);
        buf.extend_from_slice(tail);
        self.seg.buf.truncate(pos);
        let discontinuity = self.discontinuity_pending && self.seg.started;
        self.discontinuity_pending = false;
        if forced {
            self.counters.forced_cuts += 1;
        }
        let next = Building {
            buf,
            started: true,
            input_offset,
            first_pts: pts,
            span: 0,
            frozen: false,
            discontinuity,
            forced,
        };
        let old = mem::replace(&mut self.seg, next);
        if let Some(segment) = self.finish(old, pts) {
            emit(segment);
        }
    }

    /// Turns a finished segment into its output; `next_pts` is the first PTS of the one after.
    fn finish(&mut self, old: Building, next_pts: Option<u64>) -> Option<Segment> {
        if !old.started {
            self.counters.dropped_bytes += old.buf.len() as u64;
            return None;
        }
        let next_is_continuous = !self.seg.discontinuity && !old.frozen;
        let ticks = match (old.first_pts, next_pts) {
            (Some(first), Some(next)) if next_is_continuous && pts_diff(next, first) > 0 => {
                pts_diff(next, first).unsigned_abs()
            }
            (Some(_), _) => old.span + self.frame_ticks.min(MAX_FRAME_TICKS),
            (None, _) => 0,
        };
        self.counters.segments += 1;
        let len = old.buf.len();
        self.size_hint = (len + len / 8).clamp(MIN_SEGMENT_BYTES, self.config.max_segment_bytes);
        Some(Segment {
            bytes: old.buf,
            duration: pes::duration(ticks),
            discontinuity: old.discontinuity,
            forced: old.forced,
            input_offset: old.input_offset,
            first_pts: old.first_pts,
        })
    }

    /// Notes a PTS of the timing stream: spots jumps and learns the frame duration.
    fn observe_pts(&mut self, pts: u64) {
        if let Some(last) = self.last_pts {
            let step = pts_diff(pts, last);
            if !(-MAX_PTS_BACKWARD..=MAX_PTS_FORWARD).contains(&step) {
                log::debug!("PTS jumped by {step} ticks: discontinuity");
                self.discontinuity();
            } else if step > 0 {
                self.frame_ticks = self.frame_ticks.min(step.unsigned_abs());
            }
        }
        self.last_pts = Some(pts);
    }

    /// The timeline breaks here: cut at the next keyframe and flag the new segment.
    fn discontinuity(&mut self) {
        self.last_pts = None;
        if self.seg.started {
            if !self.discontinuity_pending {
                self.counters.discontinuities += 1;
            }
            self.discontinuity_pending = true;
            self.seg.frozen = true;
        } else {
            self.seg.first_pts = None;
        }
    }

    /// Copies a packet into the segment being built, first cutting (or, before the first
    /// keyframe, dropping) if it would pass `max_segment_bytes`.
    fn append(&mut self, bytes: &[u8; PACKET_LEN], offset: u64, emit: &mut impl FnMut(Segment)) {
        if !self.seg.started && self.timing.is_none() {
            self.counters.dropped_bytes += PACKET_LEN as u64;
            return;
        }
        if self.seg.buf.len() + PACKET_LEN > self.config.max_segment_bytes {
            self.candidate = None;
            self.scanner.stop();
            if self.seg.started {
                self.cut(self.seg.buf.len(), offset, None, true, emit);
            } else {
                self.counters.dropped_bytes += self.seg.buf.len() as u64;
                self.seg.buf.clear();
            }
        }
        let buf = &mut self.seg.buf;
        if buf.len() + PACKET_LEN > buf.capacity() {
            // Grow by doubling, but never past the bound, so memory stays within it.
            let want = (buf.capacity() * 2).clamp(MIN_SEGMENT_BYTES, self.config.max_segment_bytes);
            buf.reserve_exact(want.saturating_sub(buf.len()).max(PACKET_LEN));
        }
        buf.extend_from_slice(bytes);
    }
}
