//! PAT and PMT: reassembling sections from packets, checking their CRC, and reading the program.
//!
//! Sections may start anywhere in a packet (after the pointer_field), span several packets, or
//! share a packet with the next section. The reader keeps the raw packets that carried the
//! section being assembled, so the segmenter can re-emit the latest PAT and PMT byte for byte at
//! the head of every segment. Parsing of complete sections uses mpeg2ts-reader's section views;
//! its own demultiplexer is not used, because it dispatches through trait objects per packet and
//! keeps its own PID table, where the segmenter needs one flat state machine.

use mpeg2ts_reader::psi::pat::{PatSection, ProgramDescriptor};
use mpeg2ts_reader::psi::pmt::PmtSection;
use mpeg2ts_reader::psi::{CurrentNext, TableSyntaxHeader};
use mpeg2ts_reader::{mpegts_crc, StreamType};

use crate::{StreamInfo, VideoCodec, PACKET_LEN};

/// ISO/IEC 13818-1 limits PAT and PMT sections to 1024 bytes (section_length ≤ 1021).
const MAX_SECTION: usize = 1024;
/// table_id, section_syntax_indicator/section_length, then the 5-byte table syntax header.
const SECTION_HEADER: usize = 8;
const CRC_LEN: usize = 4;

/// Assembles the sections of one PID.
pub(crate) struct SectionReader {
    section: Vec<u8>,
    /// The section being assembled has a known beginning (we saw its first byte).
    collecting: bool,
    /// The packets that carried the section being assembled, as received.
    packets: Vec<u8>,
    /// Complete sections whose CRC-32 did not match.
    pub(crate) crc_errors: u64,
}

impl SectionReader {
    pub(crate) fn new() -> Self {
        SectionReader {
            section: Vec::with_capacity(MAX_SECTION),
            collecting: false,
            packets: Vec::with_capacity(6 * PACKET_LEN),
            crc_errors: 0,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.collecting = false;
        self.section.clear();
        self.packets.clear();
    }

    /// Feeds one packet of this PID; calls `on_section(section, packets)` for each complete
    /// section whose CRC-32 is right.
    pub(crate) fn push(
        &mut self,
        packet: &[u8; PACKET_LEN],
        payload: &[u8],
        unit_start: bool,
        mut on_section: impl FnMut(&[u8], &[u8]),
    ) {
        if !unit_start {
            if self.collecting {
                self.packets.extend_from_slice(packet);
                self.append(payload, &mut on_section);
            }
            return;
        }
        let Some((&pointer, after)) = payload.split_first() else { return };
        let (tail, mut rest) = after.split_at(usize::from(pointer).min(after.len()));
        if self.collecting {
            // The bytes before the pointer end the previous section.
            self.packets.extend_from_slice(packet);
            self.append(tail, &mut on_section);
        }
        self.reset();
        self.packets.extend_from_slice(packet);
        // Several sections may start in this packet; 0xFF is stuffing up to its end.
        while rest.first().is_some_and(|&b| b != 0xFF) {
            self.section.clear();
            self.collecting = true;
            let (used, status) = self.append(rest, &mut on_section);
            if status != Status::Done {
                return; // continues in the next packet, or was not a section
            }
            rest = &rest[used..];
        }
    }

    /// Adds bytes to the section being assembled and returns how many it took; a complete
    /// section is checked, delivered, and ends the collecting.
    fn append(&mut self, bytes: &[u8], on_section: &mut impl FnMut(&[u8], &[u8])) -> (usize, Status) {
        let mut used = (3usize.saturating_sub(self.section.len())).min(bytes.len());
        self.section.extend_from_slice(&bytes[..used]);
        let [_, hi, lo, ..] = self.section[..] else { return (used, Status::Incomplete) };
        let total = 3 + (usize::from(hi & 0x0F) << 8 | usize::from(lo));
        let syntax = hi & 0x80 != 0;
        if !syntax || !(SECTION_HEADER + CRC_LEN..=MAX_SECTION).contains(&total) {
            self.reset();
            return (used, Status::Invalid);
        }
        let take = (total - self.section.len()).min(bytes.len() - used);
        self.section.extend_from_slice(&bytes[used..used + take]);
        used += take;
        if self.section.len() < total {
            return (used, Status::Incomplete);
        }
        self.collecting = false;
        if mpegts_crc::sum32(&self.section) == 0 {
            on_section(&self.section, &self.packets);
        } else {
            self.crc_errors += 1;
        }
        (used, Status::Done)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Incomplete,
    Done,
    Invalid,
}

/// The table syntax header of a complete, CRC-checked section, if it is current (not "next").
fn header(section: &[u8], table_id: u8) -> Option<(TableSyntaxHeader<'_>, &[u8])> {
    if section.first() != Some(&table_id) || section.len() < SECTION_HEADER + CRC_LEN {
        return None;
    }
    let header = TableSyntaxHeader::new(&section[3..SECTION_HEADER]);
    if !matches!(header.current_next_indicator(), CurrentNext::Current) {
        return None;
    }
    Some((header, &section[SECTION_HEADER..section.len() - CRC_LEN]))
}

/// The PMT PID of `program` (or of the first program) in a PAT section.
pub(crate) fn read_pat(section: &[u8], program: Option<u16>) -> Option<(u16, u16)> {
    let (header, body) = header(section, 0x00)?;
    let first_section = header.section_number() == 0;
    PatSection::new(body).programs().find_map(|entry| match entry {
        ProgramDescriptor::Program { program_number, pid }
            if program.map_or(first_section, |p| p == program_number) =>
        {
            Some((program_number, u16::from(pid)))
        }
        _ => None,
    })
}

/// The streams of `program` in a PMT section; `None` if the section is for another program.
pub(crate) fn read_pmt(section: &[u8], program: u16, pmt_pid: u16) -> Option<StreamInfo> {
    let (header, body) = header(section, 0x02)?;
    if header.id() != program {
        return None;
    }
    let pmt = PmtSection::from_bytes(body).ok()?;
    let mut info = StreamInfo { program, pmt_pid, video: None, audio: Vec::new() };
    for stream in pmt.streams() {
        let pid = u16::from(stream.elementary_pid());
        let codec = match stream.stream_type() {
            StreamType::H264 => Some(VideoCodec::H264),
            StreamType::H265 => Some(VideoCodec::Hevc),
            StreamType::H262 => Some(VideoCodec::Mpeg2),
            StreamType::ISO_11172_VIDEO => Some(VideoCodec::Mpeg1),
            _ => None,
        };
        match (codec, stream.stream_type().0) {
            (Some(codec), _) if info.video.is_none() => info.video = Some((pid, codec)),
            // MPEG-1/2 audio, ADTS AAC, LATM AAC, AC-3, E-AC-3.
            (None, t @ (0x03 | 0x04 | 0x0F | 0x11 | 0x81 | 0x87)) => info.audio.push((pid, t)),
            _ => {}
        }
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(table_id: u8, body: &[u8]) -> Vec<u8> {
        let len = 5 + body.len() + 4;
        let mut s = vec![table_id, 0xB0 | (len >> 8) as u8, len as u8, 0, 1, 0xC1, 0, 0];
        s.extend_from_slice(body);
        let crc = mpegts_crc::sum32(&s);
        s.extend(crc.to_be_bytes());
        s
    }

    fn packet(unit_start: bool, payload: &[u8]) -> [u8; PACKET_LEN] {
        let mut p = [0xFF; PACKET_LEN];
        p[..4].copy_from_slice(&[0x47, if unit_start { 0x40 } else { 0 }, 0, 0x10]);
        p[4..4 + payload.len()].copy_from_slice(payload);
        p
    }

    /// Feeds packets and returns the sections delivered, with how many packets carried each.
    fn read(packets: &[(bool, Vec<u8>)]) -> (Vec<(Vec<u8>, usize)>, u64) {
        let mut reader = SectionReader::new();
        let mut out = Vec::new();
        for (unit_start, payload) in packets {
            let p = packet(*unit_start, payload);
            // The payload as if the rest of the packet were adaptation-field stuffing.
            let payload = &p[4..4 + payload.len()];
            reader.push(&p, payload, *unit_start, |s, pk| out.push((s.to_vec(), pk.len() / PACKET_LEN)));
        }
        (out, reader.crc_errors)
    }

    #[test]
    fn sections_spanning_and_sharing_packets() {
        let big = section(0x02, &[0xAB; 300]);
        let small = section(0x00, &[0, 1, 0xE1, 0]);
        // Packet 1: pointer 0, start of `big`. Packet 2: more of it. Packet 3: the end of
        // `big` before the pointer, then `small` whole.
        let mut p1 = vec![0];
        p1.extend_from_slice(&big[..183]);
        let p2 = big[183..183 + 100].to_vec();
        let rest = &big[283..];
        let mut p3 = vec![rest.len() as u8];
        p3.extend_from_slice(rest);
        p3.extend_from_slice(&small);
        let (out, crc_errors) = read(&[(true, p1), (false, p2), (true, p3)]);
        assert_eq!(out, vec![(big, 3), (small.clone(), 1)]);
        assert_eq!(crc_errors, 0);
        assert_eq!(read_pat(&small, None), Some((1, 0x100)));
        assert_eq!(read_pat(&small, Some(2)), None);
    }

    #[test]
    fn bad_crc_and_lost_start_are_not_delivered() {
        let mut bad = section(0x00, &[0, 1, 0xE1, 0]);
        bad[9] ^= 1;
        let mut p = vec![0];
        p.extend_from_slice(&bad);
        // A continuation without a start is ignored too.
        let (out, crc_errors) = read(&[(false, vec![1, 2, 3]), (true, p)]);
        assert!(out.is_empty());
        assert_eq!(crc_errors, 1);
    }
}
