//! Pass-through for the box that receives a UDP/RTP feed: its own TVs on `/ts/<channel>` and
//! `/udp/…` get the transport stream as it arrives, the way udpxy relays it — no segment of
//! delay, no segment buffered for them. Boxes that get the channel from their peers serve it
//! from segments as usual.
//!
//! Segments cost memory (a whole segment per channel while it is cut, the store's ring) and
//! hashing, so the ingester cuts them only when someone can use them: a peer carries the
//! channel, a TV here watches it over HLS, or it is always on. A lone box relaying feeds to its
//! TVs holds no segments at all.
//!
//! A TV that joins a live feed mid-stream would see garbage until the next keyframe (udpxy's
//! TVs do): here it starts at a keyframe the muxer flagged, after copies of the latest PAT
//! and PMT, like a segment. A feed that flags no keyframes starts the TV after
//! [`START_WAIT`] anyway.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use shoal_core::ChannelId;
use smol::channel::{bounded, Receiver, Sender, TrySendError};

/// Chunks queued per TV before it counts as too slow and is dropped. A chunk is at most one
/// receive batch (about 42 KiB), so a TV holds at most about 1.3 MiB here; its TCP socket
/// buffers the rest.
const QUEUE_CHUNKS: usize = 32;
/// Longest a new TV waits for a flagged keyframe before it gets the feed as it is.
const START_WAIT: Duration = Duration::from_secs(3);
const PACKET: usize = 188;
const PAT_PID: u16 = 0;

/// The feeds this box receives now, and who listens.
#[derive(Clone, Debug, Default)]
pub struct LiveFeeds {
    inner: Arc<Mutex<BTreeMap<ChannelId, Feed>>>,
    /// Rings when a feed opens, for a TV waiting to be passed one.
    opened: Arc<event_listener::Event>,
}

#[derive(Debug)]
struct Feed {
    subscribers: Vec<Subscriber>,
    /// The latest PAT and PMT packets, and where the video is.
    psi: Psi,
    /// Whether the ingester should cut segments too (set by the swarm driver).
    segmenting: Arc<AtomicBool>,
    /// TVs dropped for not keeping up.
    dropped: u64,
}

impl LiveFeeds {
    /// An ingester starts receiving `channel`: TVs may subscribe until the handle is dropped.
    pub fn open(&self, channel: ChannelId) -> FeedHandle {
        let segmenting = Arc::new(AtomicBool::new(true));
        if let Ok(mut feeds) = self.inner.lock() {
            let feed = Feed {
                subscribers: Vec::new(),
                psi: Psi::default(),
                segmenting: segmenting.clone(),
                dropped: 0,
            };
            feeds.insert(channel, feed);
        }
        self.opened.notify(usize::MAX);
        FeedHandle { feeds: self.clone(), channel, segmenting }
    }

    /// Wakes when the next feed opens. Take it before looking for the feed it is to wait for.
    pub fn listen(&self) -> event_listener::EventListener {
        self.opened.listen()
    }

    /// The stream of `channel` as it arrives, if this box receives it now.
    pub fn subscribe(&self, channel: ChannelId) -> Option<Receiver<Bytes>> {
        let mut feeds = self.inner.lock().ok()?;
        let feed = feeds.get_mut(&channel)?;
        let (sender, receiver) = bounded(QUEUE_CHUNKS);
        feed.subscribers.push(Subscriber { sender, started: false, since: Instant::now() });
        Some(receiver)
    }

    /// Tells `channel`'s ingester whether segments are needed.
    pub fn set_segmenting(&self, channel: ChannelId, segmenting: bool) {
        if let Some(feed) = self.inner.lock().ok().and_then(|f| f.get(&channel).map(|f| f.segmenting.clone()))
        {
            feed.store(segmenting, Ordering::Relaxed);
        }
    }

    /// TVs receiving `channel` live here, and TVs dropped for being too slow.
    pub fn clients(&self, channel: ChannelId) -> Option<(usize, u64)> {
        let feeds = self.inner.lock().ok()?;
        feeds.get(&channel).map(|f| (f.subscribers.len(), f.dropped))
    }
}

/// An ingester's side of a live feed. Dropping it ends every TV's stream (they continue from
/// segments, if the swarm has them).
#[derive(Debug)]
pub struct FeedHandle {
    feeds: LiveFeeds,
    channel: ChannelId,
    segmenting: Arc<AtomicBool>,
}

impl FeedHandle {
    /// Whether any TV listens (so the ingester gathers bytes for them only when one does).
    pub fn has_subscribers(&self) -> bool {
        self.feeds.inner.lock().is_ok_and(|f| f.get(&self.channel).is_some_and(|f| !f.subscribers.is_empty()))
    }

    /// Whether segments are needed (a peer carries the channel, an HLS viewer, always on).
    pub fn segmenting(&self) -> bool {
        self.segmenting.load(Ordering::Relaxed)
    }

    /// Hands `chunk` (whole TS packets) to every TV; a TV whose queue is full is dropped (a TV
    /// that cannot keep up with a live feed would only fall further behind). Returns how many
    /// TVs there are.
    pub fn send(&self, chunk: Bytes) -> usize {
        let Ok(mut feeds) = self.feeds.inner.lock() else {
            return 0;
        };
        let Some(feed) = feeds.get_mut(&self.channel) else {
            return 0;
        };
        feed.psi.update(&chunk);
        let waiting = feed.subscribers.iter().any(|s| !s.started);
        let keyframe = if waiting { feed.psi.keyframe_at(&chunk) } else { None };
        let mut dropped = 0;
        let psi = &feed.psi;
        feed.subscribers.retain_mut(|s| {
            let piece = if s.started {
                chunk.clone()
            } else if let Some(at) = keyframe.filter(|_| psi.ready()) {
                s.started = true;
                psi.prefixed(chunk.slice(at..))
            } else if s.since.elapsed() >= START_WAIT {
                s.started = true;
                chunk.clone()
            } else {
                return !s.sender.is_closed();
            };
            match s.sender.try_send(piece) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    dropped += 1;
                    false
                }
                Err(TrySendError::Closed(_)) => false,
            }
        });
        if dropped > 0 {
            log::info!(
                "dropped {dropped} TV(s) of channel {} that did not keep up with the live feed",
                self.channel
            );
        }
        feed.dropped += dropped;
        feed.subscribers.len()
    }
}

/// One TV on a live feed.
#[derive(Debug)]
struct Subscriber {
    sender: Sender<Bytes>,
    /// It has had its start (PAT, PMT, a keyframe).
    started: bool,
    since: Instant,
}

/// What a TV needs before a keyframe: the latest PAT and PMT packets, and the video PID they
/// name (whose flagged keyframes are start points).
#[derive(Debug, Default)]
struct Psi {
    pat: Option<[u8; PACKET]>,
    pmt_pid: Option<u16>,
    pmt: Option<[u8; PACKET]>,
    video_pid: Option<u16>,
}

/// The PID of a TS packet.
fn pid(packet: &[u8]) -> u16 {
    u16::from_be_bytes([packet[1] & 0x1f, packet[2]])
}

/// The section a packet starting one carries (after the pointer field), if it does.
fn section(packet: &[u8; PACKET]) -> Option<&[u8]> {
    if packet[1] & 0x40 == 0 {
        return None;
    }
    let start = match packet[3] & 0x30 {
        0x10 => 4,
        0x30 => 5 + usize::from(packet[4]),
        _ => return None,
    };
    let pointer = usize::from(*packet.get(start)?);
    packet.get(start + 1 + pointer..)
}

impl Psi {
    fn ready(&self) -> bool {
        self.pat.is_some() && self.pmt.is_some()
    }

    /// Keeps the latest single-packet PAT and PMT of `chunk` and reads the PIDs they name.
    fn update(&mut self, chunk: &[u8]) {
        for packet in chunk.chunks_exact(PACKET).filter(|p| p[0] == 0x47) {
            let pid = pid(packet);
            let Ok(packet) = <&[u8; PACKET]>::try_from(packet) else { continue };
            if pid == PAT_PID {
                // The first program's PMT PID: table 0, then entries of program number and PID.
                let pmt_pid = section(packet).filter(|s| s.len() >= 12 && s[0] == 0).and_then(|s| {
                    let end = (3 + usize::from(u16::from_be_bytes([s[1] & 0x0f, s[2]]))).min(s.len()) - 4;
                    s.get(8..end)?
                        .chunks_exact(4)
                        .find(|e| e[0] != 0 || e[1] != 0)
                        .map(|e| u16::from_be_bytes([e[2] & 0x1f, e[3]]))
                });
                if let Some(pmt_pid) = pmt_pid {
                    self.pat = Some(*packet);
                    self.pmt_pid = Some(pmt_pid);
                }
            } else if Some(pid) == self.pmt_pid {
                // The first video stream of the program: table 2, skip program info, read the
                // stream loop.
                let video = section(packet).filter(|s| s.len() >= 16 && s[0] == 2).and_then(|s| {
                    let end = (3 + usize::from(u16::from_be_bytes([s[1] & 0x0f, s[2]]))).min(s.len()) - 4;
                    let info = usize::from(u16::from_be_bytes([s[10] & 0x0f, s[11]]));
                    let mut at = 12 + info;
                    while at + 5 <= end {
                        let stream_type = s[at];
                        let es_pid = u16::from_be_bytes([s[at + 1] & 0x1f, s[at + 2]]);
                        if matches!(stream_type, 0x01 | 0x02 | 0x1b | 0x24) {
                            return Some(es_pid);
                        }
                        at += 5 + usize::from(u16::from_be_bytes([s[at + 3] & 0x0f, s[at + 4]]));
                    }
                    None
                });
                if let Some(video) = video {
                    self.pmt = Some(*packet);
                    self.video_pid = Some(video);
                }
            }
        }
    }

    /// Where in `chunk` the first packet of a flagged video keyframe begins: a unit start with
    /// the random-access indicator set.
    fn keyframe_at(&self, chunk: &[u8]) -> Option<usize> {
        let video = self.video_pid?;
        chunk
            .chunks_exact(PACKET)
            .position(|p| {
                p[0] == 0x47
                    && pid(p) == video
                    && p[1] & 0x40 != 0
                    && p[3] & 0x20 != 0
                    && p[4] > 0
                    && p[5] & 0x40 != 0
            })
            .map(|i| i * PACKET)
    }

    /// `rest` after copies of the PAT and PMT.
    fn prefixed(&self, rest: Bytes) -> Bytes {
        let mut out = Vec::with_capacity(2 * PACKET + rest.len());
        for packet in [&self.pat, &self.pmt].into_iter().flatten() {
            out.extend_from_slice(packet);
        }
        out.extend_from_slice(&rest);
        Bytes::from(out)
    }
}

impl Drop for FeedHandle {
    fn drop(&mut self) {
        if let Ok(mut feeds) = self.feeds.inner.lock() {
            feeds.remove(&self.channel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_get_every_chunk_and_slow_ones_are_dropped() {
        let feeds = LiveFeeds::default();
        let channel = ChannelId([3; 8]);
        assert!(feeds.subscribe(channel).is_none(), "no feed yet");
        let handle = feeds.open(channel);
        assert!(!handle.has_subscribers());
        let fast = feeds.subscribe(channel).expect("open");
        let slow = feeds.subscribe(channel).expect("open");
        // They start at the first keyframe, after the PAT and PMT.
        let start = [pat(), pmt(), packet(VIDEO, true, true), packet(VIDEO, false, false)].concat();
        assert_eq!(handle.send(Bytes::from(start.clone())), 2);
        assert_eq!(fast.try_recv().expect("started").len(), 4 * PACKET);
        for i in 0..QUEUE_CHUNKS - 1 {
            let chunk = packet(VIDEO, i % 2 == 0, false);
            assert_eq!(handle.send(Bytes::from(chunk)), 2);
            assert!(fast.try_recv().is_ok());
        }
        // The slow TV's queue is full: the next chunk drops it, the fast one gets it.
        assert_eq!(handle.send(Bytes::from(packet(VIDEO, false, false))), 1);
        assert!(fast.try_recv().is_ok());
        assert_eq!(feeds.clients(channel), Some((1, 1)));
        assert_eq!(slow.len(), QUEUE_CHUNKS);
        // Segments are cut unless the driver says nobody needs them.
        assert!(handle.segmenting());
        feeds.set_segmenting(channel, false);
        assert!(!handle.segmenting());
        // The ingester stops: streams end.
        drop(handle);
        assert!(fast.try_recv().is_err() && fast.is_closed());
        assert!(feeds.subscribe(channel).is_none());
    }

    #[test]
    fn a_new_tv_starts_at_a_keyframe_after_pat_and_pmt() {
        let feeds = LiveFeeds::default();
        let channel = ChannelId([4; 8]);
        let handle = feeds.open(channel);
        handle.send(Bytes::from([pat(), pmt()].concat()));
        let tv = feeds.subscribe(channel).expect("open");
        // Mid-GOP: nothing yet.
        handle.send(Bytes::from([packet(VIDEO, true, false), packet(AUDIO, true, true)].concat()));
        assert!(tv.try_recv().is_err(), "an audio keyframe or a non-keyframe is no start");
        let keyframe = packet(VIDEO, true, true);
        handle.send(Bytes::from([packet(AUDIO, false, false), keyframe.clone()].concat()));
        let first = tv.try_recv().expect("started at the keyframe");
        assert_eq!(&first[..], &[pat(), pmt(), keyframe].concat()[..]);
    }

    const PMT_PID: u16 = 0x100;
    const VIDEO: u16 = 0x101;
    const AUDIO: u16 = 0x102;

    /// A packet of `pid`, a unit start or not, with the random-access indicator or not.
    fn packet(pid: u16, unit_start: bool, random_access: bool) -> Vec<u8> {
        let mut p = vec![0xff; PACKET];
        p[0] = 0x47;
        p[1] = (pid >> 8) as u8 | if unit_start { 0x40 } else { 0 };
        p[2] = pid as u8;
        p[3] = 0x30;
        p[4] = 1;
        p[5] = if random_access { 0x40 } else { 0 };
        p
    }

    fn psi_packet(pid: u16, section: &[u8]) -> Vec<u8> {
        let mut p = vec![0xff; PACKET];
        p[..5].copy_from_slice(&[0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10, 0]);
        p[5..5 + section.len()].copy_from_slice(section);
        p
    }

    fn pat() -> Vec<u8> {
        // table 0, length 13, ts id 1, version, section 0/0, program 1 → PMT PID, CRC (unchecked).
        psi_packet(
            0,
            &[0, 0xb0, 13, 0, 1, 0xc1, 0, 0, 0, 1, 0xe0 | (PMT_PID >> 8) as u8, PMT_PID as u8, 0, 0, 0, 0],
        )
    }

    fn pmt() -> Vec<u8> {
        // table 2, program 1, PCR PID = video, no program info, AAC audio then H.264 video.
        let v = [0xe0 | (VIDEO >> 8) as u8, VIDEO as u8];
        let a = [0xe0 | (AUDIO >> 8) as u8, AUDIO as u8];
        let section = [
            &[2, 0xb0, 23, 0, 1, 0xc1, 0, 0][..],
            &v,
            &[0xf0, 0],
            &[0x0f, a[0], a[1], 0xf0, 0],
            &[0x1b, v[0], v[1], 0xf0, 0],
            &[0, 0, 0, 0],
        ]
        .concat();
        psi_packet(PMT_PID, &section)
    }
}
