//! A tiny hand-rolled TS muxer for tests: PAT, PMT (optionally padded to span packets), and
//! H.264-like video and audio PES with exact control over PTS, RAI and continuity counters.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different part of this module

use std::collections::HashMap;

pub const PMT_PID: u16 = 0x100;
pub const VIDEO_PID: u16 = 0x101;
pub const AUDIO_PID: u16 = 0x102;
/// 25 fps.
pub const FRAME: u64 = 3600;

/// The MPEG-2 CRC-32 (polynomial 0x04C11DB7, no reflection, no final xor).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04C1_1DB7 } else { crc << 1 };
        }
    }
    crc
}

pub fn pts_bytes(pts: u64) -> [u8; 5] {
    let pts = pts & ((1 << 33) - 1);
    [
        0x21 | ((pts >> 29) & 0x0E) as u8,
        (pts >> 22) as u8,
        0x01 | ((pts >> 14) & 0xFE) as u8,
        (pts >> 7) as u8,
        0x01 | ((pts << 1) & 0xFE) as u8,
    ]
}

pub struct Mux {
    pub out: Vec<u8>,
    cc: HashMap<u16, u8>,
    pub video_type: u8,
    pub with_video: bool,
    pub pmt_version: u8,
    /// Extra descriptor bytes in the PMT, to make it span several packets.
    pub pmt_padding: usize,
}

impl Mux {
    pub fn new() -> Self {
        Mux {
            out: Vec::new(),
            cc: HashMap::new(),
            video_type: 0x1B,
            with_video: true,
            pmt_version: 0,
            pmt_padding: 0,
        }
    }

    fn next_cc(&mut self, pid: u16) -> u8 {
        let cc = self.cc.entry(pid).or_insert(15);
        *cc = (*cc + 1) & 0x0F;
        *cc
    }

    /// Packetizes `data` on `pid`: the first packet gets PUSI (and RAI if asked); the last is
    /// padded with adaptation-field stuffing. `pointer` adds a PSI pointer_field.
    pub fn packetize(&mut self, pid: u16, data: &[u8], rai: bool, pointer: bool) {
        let mut payload = Vec::new();
        if pointer {
            payload.push(0);
        }
        payload.extend_from_slice(data);
        let mut rest = &payload[..];
        let mut first = true;
        while !rest.is_empty() || first {
            let flags = if first && rai { Some(0x40u8) } else { None };
            let room = 184 - if flags.is_some() { 2 } else { 0 };
            let take = rest.len().min(room);
            // The adaptation field, length byte included: flags, then stuffing to fill the packet.
            let af_size = 184 - take;
            let mut af = Vec::new();
            if af_size >= 1 {
                af.push((af_size - 1) as u8);
            }
            if af_size >= 2 {
                af.push(flags.unwrap_or(0));
                af.resize(af_size, 0xFF);
            }
            let cc = self.next_cc(pid);
            let mut p = vec![0x47, (pid >> 8) as u8 | if first { 0x40 } else { 0 }, pid as u8];
            p.push(if af.is_empty() { 0x10 } else { 0x30 } | cc);
            p.extend_from_slice(&af);
            p.extend_from_slice(&rest[..take]);
            assert_eq!(p.len(), 188, "packet size");
            self.out.extend_from_slice(&p);
            rest = &rest[take..];
            first = false;
        }
    }

    fn section(table_id: u8, id: u16, version: u8, body: &[u8]) -> Vec<u8> {
        let len = 5 + body.len() + 4;
        let mut s = vec![table_id, 0xB0 | (len >> 8) as u8, len as u8, (id >> 8) as u8, id as u8];
        s.extend([0xC1 | (version << 1), 0, 0]);
        s.extend_from_slice(body);
        let crc = crc32(&s);
        s.extend(crc.to_be_bytes());
        s
    }

    pub fn pat_section(&self) -> Vec<u8> {
        Self::section(0x00, 1, 0, &[0, 1, 0xE0 | (PMT_PID >> 8) as u8, PMT_PID as u8])
    }

    pub fn pmt_section(&self) -> Vec<u8> {
        let mut body = vec![0xE0 | (VIDEO_PID >> 8) as u8, VIDEO_PID as u8, 0xF0, 0];
        let mut stream = |t: u8, pid: u16, info: &[u8]| {
            body.extend([
                t,
                0xE0 | (pid >> 8) as u8,
                pid as u8,
                0xF0 | (info.len() >> 8) as u8,
                info.len() as u8,
            ]);
            body.extend_from_slice(info);
        };
        if self.with_video {
            // Padding as private descriptors (tag 0xFE), 255 bytes at most each.
            let mut info = Vec::new();
            let mut left = self.pmt_padding;
            while left > 2 {
                let n = (left - 2).min(255);
                info.push(0xFE);
                info.push(n as u8);
                info.extend(std::iter::repeat_n(0xAA, n));
                left -= n + 2;
            }
            stream(self.video_type, VIDEO_PID, &info);
        }
        stream(0x0F, AUDIO_PID, &[]);
        Self::section(0x02, 1, self.pmt_version, &body)
    }

    pub fn psi(&mut self) {
        let pat = self.pat_section();
        self.packetize(0, &pat, false, true);
        let pmt = self.pmt_section();
        self.packetize(PMT_PID, &pmt, false, true);
    }

    /// One H.264 access unit of about `size` bytes: AUD, SPS+PPS if IDR, then the slice.
    pub fn video(&mut self, pts: u64, idr: bool, rai: bool, size: usize) {
        let mut pes = vec![0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5];
        pes.extend(pts_bytes(pts));
        pes.extend([0, 0, 0, 1, 0x09, 0xF0]);
        if idr {
            pes.extend([0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1E, 0, 0, 0, 1, 0x68, 0xCE, 0x3C, 0x80]);
        }
        pes.extend([0, 0, 1, if idr { 0x65 } else { 0x41 }]);
        pes.resize(pes.len().max(size), 0x5A);
        self.packetize(VIDEO_PID, &pes, rai, false);
    }

    pub fn audio(&mut self, pts: u64, size: usize) {
        let mut pes = vec![0, 0, 1, 0xC0, 0, 0, 0x80, 0x80, 5];
        pes.extend(pts_bytes(pts));
        pes.resize(pes.len().max(size), 0x33);
        self.packetize(AUDIO_PID, &pes, false, false);
    }

    /// `frames` video frames from `pts0`, IDR every `gop` frames, PSI once a second, audio
    /// between frames. Returns the offsets of the keyframes' first packets.
    pub fn stream(&mut self, pts0: u64, frames: u64, gop: u64, rai: bool) -> Vec<u64> {
        let mut keyframes = Vec::new();
        for i in 0..frames {
            if i % 25 == 0 {
                self.psi();
            }
            let idr = i % gop == 0;
            if idr {
                keyframes.push(self.out.len() as u64);
            }
            self.video(pts0 + i * FRAME, idr, rai && idr, if idr { 3000 } else { 700 });
            self.audio(pts0 + i * FRAME, 200);
        }
        keyframes
    }
}
