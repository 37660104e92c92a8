//! The built-in test card: 2 s MPEG-TS segments of a 10 s 320×180 H.264/AAC clip (made by
//! `firmware/node/assets/testcard/make.sh`, compiled into the binary), played as an endless live
//! channel.
//!
//! Each time the clip comes round again its timestamps (PTS, DTS, PCR) move on by the clip's
//! length, and every segment's continuity counters carry on from the segment before (the files
//! start each PID's counter afresh), so players that feed segment after segment into one
//! demuxer, as ffmpeg, mpv and VLC do with HLS and `/ts`, see one unbroken stream.

/// The clip's segments, each starting with SDT, PAT, PMT and a keyframe.
const SEGMENTS: [&[u8]; 5] = [
    include_bytes!("../assets/testcard/seg0.ts"),
    include_bytes!("../assets/testcard/seg1.ts"),
    include_bytes!("../assets/testcard/seg2.ts"),
    include_bytes!("../assets/testcard/seg3.ts"),
    include_bytes!("../assets/testcard/seg4.ts"),
];
/// Duration of one segment.
pub const SEGMENT_DURATION: std::time::Duration = std::time::Duration::from_secs(2);
/// One video frame at 25 frames/s, in 90 kHz ticks.
const FRAME_TICKS: u64 = 3_600;
const PACKET: usize = 188;
/// Timestamps are 33 bits.
const TS_MASK: u64 = (1 << 33) - 1;

/// Live segment `seq` of the test card.
pub fn segment(seq: u64) -> Vec<u8> {
    let index = (seq % SEGMENTS.len() as u64) as usize;
    let round = seq / SEGMENTS.len() as u64;
    let mut bytes = SEGMENTS[index].to_vec();
    renumber_continuity(&mut bytes, index, round);
    if round > 0 {
        let span = clip_ticks();
        for packet in bytes.chunks_exact_mut(PACKET) {
            shift_packet(packet, round * span);
        }
    }
    bytes
}

/// Per PID: how many payload-carrying packets (each steps the 4-bit continuity counter) a
/// segment file holds, and its first counter.
type PidCounts = std::collections::BTreeMap<u16, (u64, u8)>;

fn continuity_counts() -> &'static [PidCounts; 5] {
    static COUNTS: std::sync::OnceLock<[PidCounts; 5]> = std::sync::OnceLock::new();
    COUNTS.get_or_init(|| {
        SEGMENTS.map(|segment| {
            let mut counts = PidCounts::new();
            for packet in segment.chunks_exact(PACKET).filter(|p| p[3] & 0x10 != 0) {
                counts.entry(pid(packet)).or_insert((0, packet[3] & 0x0f)).0 += 1;
            }
            counts
        })
    })
}

/// Rewrites the continuity counters of segment file `index` in round `round` so they continue
/// from everything played before it.
fn renumber_continuity(bytes: &mut [u8], index: usize, round: u64) {
    let counts = continuity_counts();
    for packet in bytes.chunks_exact_mut(PACKET).filter(|p| p[0] == 0x47 && p[3] & 0x10 != 0) {
        let pid = pid(packet);
        // Payload packets of this PID in every earlier round and in this round's earlier files.
        let per_round: u64 = counts.iter().filter_map(|c| c.get(&pid)).map(|&(n, _)| n).sum();
        let earlier: u64 = counts[..index].iter().filter_map(|c| c.get(&pid)).map(|&(n, _)| n).sum();
        let first = counts[index].get(&pid).map_or(0, |&(_, first)| first);
        let offset = round.wrapping_mul(per_round).wrapping_add(earlier) % 16;
        let counter = ((packet[3] & 0x0f).wrapping_sub(first) as u64 + offset) % 16;
        packet[3] = (packet[3] & 0xf0) | counter as u8;
    }
}

/// How far one round moves timestamps: from the clip's first timestamp to one frame past its
/// last, over every stream (the audio runs a few milliseconds past 10 s, so exactly 10 s would
/// step its timestamps back at the wrap).
fn clip_ticks() -> u64 {
    static SPAN: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SPAN.get_or_init(|| {
        let stamps: Vec<u64> =
            SEGMENTS.iter().flat_map(|s| s.chunks_exact(PACKET)).filter_map(pes_pts).collect();
        let (min, max) =
            (stamps.iter().min().copied().unwrap_or(0), stamps.iter().max().copied().unwrap_or(0));
        max - min + FRAME_TICKS
    })
}

/// The PTS of a packet that starts a PES packet with one.
fn pes_pts(packet: &[u8]) -> Option<u64> {
    let control = packet[3];
    let payload = if control & 0x20 != 0 { 5 + usize::from(packet[4]) } else { 4 };
    if packet[1] & 0x40 == 0 || payload + 14 > PACKET || packet[payload..payload + 3] != [0, 0, 1] {
        return None;
    }
    if packet[payload + 7] & 0x80 == 0 {
        return None;
    }
    Some(read_timestamp(&packet[payload + 9..payload + 14]))
}

fn read_timestamp(f: &[u8]) -> u64 {
    (u64::from(f[0] >> 1) & 0x07) << 30
        | u64::from(f[1]) << 22
        | (u64::from(f[2]) >> 1) << 15
        | u64::from(f[3]) << 7
        | u64::from(f[4]) >> 1
}

fn pid(packet: &[u8]) -> u16 {
    (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2])
}

/// Adds `ticks` to the PCR and to PES PTS/DTS of one packet. Packets that are not well-formed
/// are left alone.
fn shift_packet(packet: &mut [u8], ticks: u64) {
    if packet.len() != PACKET || packet[0] != 0x47 {
        return;
    }
    let control = packet[3];
    let mut payload = 4;
    if control & 0x20 != 0 {
        let length = usize::from(packet[4]);
        if length > 0 && 5 + length <= PACKET && packet[5] & 0x10 != 0 && length >= 7 {
            shift_pcr(&mut packet[6..12], ticks);
        }
        payload = 5 + length;
    }
    let unit_start = packet[1] & 0x40 != 0;
    if !unit_start || control & 0x10 == 0 || payload + 19 > PACKET {
        return;
    }
    let pes = &mut packet[payload..];
    if pes[..3] != [0, 0, 1] {
        return; // PSI, not PES
    }
    let flags = pes[7] >> 6;
    if flags & 0b10 != 0 {
        shift_timestamp(&mut pes[9..14], ticks);
    }
    if flags == 0b11 {
        shift_timestamp(&mut pes[14..19], ticks);
    }
}

fn shift_timestamp(field: &mut [u8], ticks: u64) {
    let value = (read_timestamp(field) + ticks) & TS_MASK;
    field[0] = (field[0] & 0xf0) | ((value >> 29) as u8 & 0x0e) | 1;
    field[1] = (value >> 22) as u8;
    field[2] = ((value >> 14) as u8 & 0xfe) | 1;
    field[3] = (value >> 7) as u8;
    field[4] = ((value << 1) as u8 & 0xfe) | 1;
}

fn shift_pcr(field: &mut [u8], ticks: u64) {
    let base = u64::from(field[0]) << 25
        | u64::from(field[1]) << 17
        | u64::from(field[2]) << 9
        | u64::from(field[3]) << 1
        | u64::from(field[4]) >> 7;
    let base = (base + ticks) & TS_MASK;
    field[0] = (base >> 25) as u8;
    field[1] = (base >> 17) as u8;
    field[2] = (base >> 9) as u8;
    field[3] = (base >> 1) as u8;
    field[4] = (field[4] & 0x7f) | (((base & 1) as u8) << 7);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_pts(bytes: &[u8]) -> Option<u64> {
        bytes.chunks_exact(PACKET).find_map(pes_pts)
    }

    #[test]
    fn every_round_moves_timestamps_on_by_the_clip_length() {
        let first = first_pts(&segment(0)).expect("a PES");
        let span = clip_ticks();
        assert!((10 * 90_000..=10 * 90_000 + 3 * FRAME_TICKS).contains(&span), "span {span}");
        assert_eq!(first_pts(&segment(5)), Some(first + span));
        assert_eq!(first_pts(&segment(15)), Some(first + 3 * span));
        // No stream steps back at the wrap: the last timestamp of a round is below the first
        // of the next.
        let last = segment(4).chunks_exact(PACKET).filter_map(pes_pts).max().expect("PES");
        let next = segment(5).chunks_exact(PACKET).filter_map(pes_pts).min().expect("PES");
        assert!(next > last, "{next} <= {last}");
        assert_eq!(segment(7).len(), segment(2).len());
    }

    #[test]
    fn continuity_counters_run_on_across_segments_and_rounds() {
        let mut last: std::collections::BTreeMap<u16, u8> = Default::default();
        for seq in 0..12 {
            for packet in segment(seq).chunks_exact(PACKET).filter(|p| p[3] & 0x10 != 0) {
                let counter = packet[3] & 0x0f;
                if let Some(previous) = last.insert(pid(packet), counter) {
                    assert_eq!(counter, (previous + 1) % 16, "PID {:#x} in segment {seq}", pid(packet));
                }
            }
        }
        assert!(last.len() >= 4, "PAT, PMT, video and audio at least: {last:x?}");
    }

    #[test]
    fn segments_are_small_mpeg_ts_starting_with_pat_and_pmt() {
        let mut total = 0;
        for seq in 0..5 {
            let bytes = segment(seq);
            total += bytes.len();
            assert!(!bytes.is_empty() && bytes.len() % PACKET == 0);
            assert!(bytes.chunks(PACKET).all(|p| p[0] == 0x47));
            let pids: Vec<u16> = bytes.chunks(PACKET).take(4).map(pid).collect();
            assert!(pids.contains(&0) && pids.contains(&0x1000), "segment {seq} starts with {pids:x?}");
        }
        assert!(total <= 300 * 1024, "{total} bytes");
    }
}
