//! Finds 188-byte packets in a byte stream cut anywhere, skipping garbage.
//!
//! A packet is accepted when it starts with 0x47 and the byte 188 further on is 0x47 too, so
//! a stray 0x47 in garbage does not put the framer on a wrong grid, and a truncated packet
//! (a short UDP datagram) is skipped rather than glued to the next one. When that byte has
//! not arrived yet (the packet ends a push), the packet waits in the 188-byte carry buffer
//! for the next push to confirm it, or for [`Framer::finish`] at the end of the input. Other
//! packets are handed out in place, so memory is fixed whatever the input, and a push of
//! whole datagrams copies one packet per push into the carry.

use crate::PACKET_LEN;

const SYNC: u8 = 0x47;

/// Splits pushed bytes into packets; see the module docs.
pub(crate) struct Framer {
    /// The start of a packet whose end has not been pushed yet (`carry[..carry_len]`).
    carry: [u8; PACKET_LEN],
    carry_len: usize,
    /// Input offset of the next byte to classify (`carry[0]` when the carry is not empty).
    offset: u64,
    /// Whether the last packet was accepted, so the next one needs no confirmation.
    locked: bool,
}

/// What the framer reports besides packets.
#[derive(Default)]
pub(crate) struct FramerStats {
    pub(crate) garbage_bytes: u64,
    pub(crate) sync_losses: u64,
}

impl Framer {
    pub(crate) fn new() -> Self {
        Framer { carry: [0; PACKET_LEN], carry_len: 0, offset: 0, locked: false }
    }

    /// Total bytes classified so far (packets and garbage), not counting the carry.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes held back waiting for the rest of their packet.
    pub(crate) fn pending(&self) -> usize {
        self.carry_len
    }

    /// Ends the input: hands out a last whole packet that only lacked the next sync byte to
    /// confirm it, and counts anything else left as garbage.
    pub(crate) fn finish(&mut self, stats: &mut FramerStats, packet: impl FnOnce(&[u8; PACKET_LEN], u64)) {
        if self.carry_len == PACKET_LEN && self.carry[0] == SYNC {
            packet(&self.carry, self.offset);
            self.offset += PACKET_LEN as u64;
        } else {
            stats.garbage_bytes += self.carry_len as u64;
            self.offset += self.carry_len as u64;
        }
        self.carry_len = 0;
        self.locked = false;
    }

    /// Calls `packet(bytes, input_offset)` for every packet completed by `input`.
    pub(crate) fn push(
        &mut self,
        mut input: &[u8],
        stats: &mut FramerStats,
        mut packet: impl FnMut(&[u8; PACKET_LEN], u64),
    ) {
        // A packet started in an earlier push: complete it from the carry first.
        while self.carry_len > 0 {
            let take = (PACKET_LEN - self.carry_len).min(input.len());
            self.carry[self.carry_len..self.carry_len + take].copy_from_slice(&input[..take]);
            self.carry_len += take;
            input = &input[take..];
            if self.carry[0] != SYNC {
                self.lose_sync(stats);
                self.skip_carry_garbage(stats);
                continue;
            }
            if self.carry_len < PACKET_LEN {
                return; // input exhausted; wait for the rest of the packet
            }
            match input.first() {
                None => return, // wait for the byte that confirms the grid
                Some(&b) if b != SYNC => {
                    self.lose_sync(stats);
                    self.skip_carry_garbage(stats);
                    continue;
                }
                _ => {}
            }
            self.locked = true;
            packet(&self.carry, self.offset);
            self.offset += PACKET_LEN as u64;
            self.carry_len = 0;
        }

        let mut i = 0;
        while i < input.len() {
            let rest = &input[i..];
            if rest[0] == SYNC {
                if let Some((pkt, after)) = rest.split_first_chunk::<PACKET_LEN>() {
                    if after.first() == Some(&SYNC) {
                        self.locked = true;
                        packet(pkt, self.offset);
                        self.offset += PACKET_LEN as u64;
                        i += PACKET_LEN;
                        continue;
                    }
                    if !after.is_empty() {
                        // A 0x47 not followed by a packet: not a sync byte.
                        self.lose_sync(stats);
                        self.skip(1, stats);
                        i += 1;
                        continue;
                    }
                }
                // Too short to judge: keep it for the next push.
                self.carry[..rest.len()].copy_from_slice(rest);
                self.carry_len = rest.len();
                return;
            }
            self.lose_sync(stats);
            let skip = rest[1..].iter().position(|&b| b == SYNC).map_or(rest.len(), |p| p + 1);
            self.skip(skip, stats);
            i += skip;
        }
    }

    fn lose_sync(&mut self, stats: &mut FramerStats) {
        if self.locked {
            self.locked = false;
            stats.sync_losses += 1;
        }
    }

    fn skip(&mut self, n: usize, stats: &mut FramerStats) {
        stats.garbage_bytes += n as u64;
        self.offset += n as u64;
    }

    /// Drops `carry[0]` and whatever follows up to the next 0x47 in the carry.
    fn skip_carry_garbage(&mut self, stats: &mut FramerStats) {
        let n =
            self.carry[1..self.carry_len].iter().position(|&b| b == SYNC).map_or(self.carry_len, |p| p + 1);
        self.skip(n, stats);
        self.carry.copy_within(n..self.carry_len, 0);
        self.carry_len -= n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(pid: u8, fill: u8) -> Vec<u8> {
        let mut p = vec![fill; PACKET_LEN];
        p[0] = SYNC;
        p[1] = 0;
        p[2] = pid;
        p[3] = 0x10;
        p
    }

    /// Pushes `input` in chunks of the given sizes (cycled) and returns the packets' PIDs and offsets.
    fn frame(input: &[u8], chunks: &[usize]) -> (Vec<(u8, u64)>, FramerStats) {
        let mut framer = Framer::new();
        let mut stats = FramerStats::default();
        let mut out = Vec::new();
        let mut pos = 0;
        for &n in chunks.iter().cycle() {
            if pos >= input.len() {
                break;
            }
            let end = (pos + n).min(input.len());
            framer.push(&input[pos..end], &mut stats, |p, off| out.push((p[2], off)));
            pos = end;
        }
        framer.finish(&mut stats, |p, off| out.push((p[2], off)));
        (out, stats)
    }

    #[test]
    fn aligned_stream_in_any_chunking() {
        let input: Vec<u8> = (1..=5).flat_map(|pid| packet(pid, 0x47)).collect();
        for chunks in [&[188][..], &[1], &[7, 300, 2], &[187, 189], &[1000]] {
            let (out, stats) = frame(&input, chunks);
            // The last packet has no sync byte after it: `finish` accepts it on the grid.
            let want: Vec<(u8, u64)> = (1..=5).map(|pid| (pid, (pid as u64 - 1) * 188)).collect();
            assert_eq!(out, want, "chunks {chunks:?}");
            assert_eq!(stats.garbage_bytes, 0);
        }
    }

    #[test]
    fn resyncs_after_garbage_with_stray_sync_bytes() {
        let mut input = packet(1, 0);
        input.extend_from_slice(&[0x00, 0x47, 0x12, 0x47, 0x47, 0x99]); // 6 bytes of garbage
        input.extend(packet(2, 0));
        input.extend(packet(3, 0));
        for chunks in [&[188][..], &[1], &[5, 11], &[4096]] {
            let (out, stats) = frame(&input, chunks);
            // Packet 1 is not followed by a sync byte: it may be the truncated one, so it goes.
            assert_eq!(out, vec![(2, 194), (3, 382)], "chunks {chunks:?}");
            assert_eq!(stats.garbage_bytes, 188 + 6);
        }
    }

    #[test]
    fn truncated_packet_is_skipped() {
        let mut input = packet(1, 0);
        input.extend_from_slice(&packet(2, 0)[..100]); // cut short, like a truncated datagram
        input.extend(packet(3, 0));
        input.extend(packet(4, 0));
        for chunks in [&[188][..], &[1], &[1316]] {
            let (out, stats) = frame(&input, chunks);
            assert_eq!(out, vec![(1, 0), (3, 288), (4, 476)], "chunks {chunks:?}");
            assert_eq!(stats.garbage_bytes, 100);
            assert_eq!(stats.sync_losses, 1);
        }
    }

    #[test]
    fn unconfirmed_first_packet_waits_for_the_next_sync() {
        let mut input = vec![0x47, 1, 2, 3]; // garbage that starts with a sync byte
        input.extend(packet(7, 0));
        input.extend(packet(8, 0));
        let (out, stats) = frame(&input, &[3]);
        assert_eq!(out, vec![(7, 4), (8, 192)]);
        assert_eq!(stats.garbage_bytes, 4);
        assert_eq!(stats.sync_losses, 0, "never locked before the garbage");
    }
}
