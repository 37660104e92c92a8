//! # shoal-model: the daemon's bottom floors
//!
//! What the rest of the daemon (`shoal`, in `firmware/node`) speaks to itself in, in a crate of
//! its own so that nothing here can name the floors above (docs/ARCHITECTURE.md, "The daemon's
//! floors"). The daemon re-exports it as `shoal::model`, with [`lineup`] and [`admin`] as
//! `shoal::lineup` and `shoal::admin`.
//!
//! - The vocabulary, at the root: the swarm driver publishes [`Window`]s into [`Windows`] and
//!   serves [`StoredSegment`]s, the HTTP server reads them; sources report through
//!   [`SourceEvent`]s; the status LED reads [`Health`]. The timing rules that more than one floor
//!   applies ([`VIEWER_TIMEOUT`], [`Window::is_stale`], [`init_id`]) are defined once, here.
//! - [`status`]: `/api/status` and `/api/swarm` as types, and DESIGN.md §5's figures.
//! - [`lineup`]: channels with their sources parsed once; inputs, origin URLs, the relay policy.
//! - [`admin`]: IP networks, and which clients may take admin actions.

pub mod admin;
pub mod lineup;
pub mod status;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use event_listener::{Event, EventListener};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shoal_core::{ChannelId, SegmentInfo};
use smol::channel::Sender;

/// A channel has a viewer while a TV fetched its playlist or a segment within this long (three
/// 2 s target durations, DESIGN.md §5).
pub const VIEWER_TIMEOUT: Duration = Duration::from_secs(6);

/// Segments in the HLS window served to TVs (and shown per channel in the status).
pub const HLS_WINDOW: usize = 6;

/// A live channel whose newest segment is older than this many target durations has lost its
/// origin: boxes say so (status `stale`, HTTP 503) instead of serving an old window.
pub const STALE_TARGET_DURATIONS: u32 = 4;

/// An on-demand asset's ingest publishes segment `n` only once every live carrier holds
/// `n - VOD_IN_FLIGHT`, so the RAM stores (far smaller than the asset) never drop a segment
/// before every carrier has it on record.
pub const VOD_IN_FLIGHT: u64 = 4;

/// What a box can serve of a channel right now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// Complete segments, oldest first: the newest few of a live channel, every one held of an
    /// on-demand asset.
    pub segments: Vec<WindowSegment>,
    /// When (on the driver's clock) this box completed the newest of them; `None` when it holds
    /// none. Turned into an age with [`Window::newest_age`].
    pub newest_at: Option<std::time::Instant>,
    /// The channel's ingester (this box or another) says its origin fails.
    pub origin_failing: bool,
}

impl Window {
    /// How long ago the newest segment completed (`None`: no segment).
    pub fn newest_age(&self, now: std::time::Instant) -> Option<Duration> {
        self.newest_at.map(|at| now.saturating_duration_since(at))
    }

    /// The HLS target duration (RFC 8216 §4.3.3.1): the longest segment, rounded to whole
    /// seconds, at least 1 s.
    pub fn target_duration(&self) -> Duration {
        Duration::from_secs(target_duration_secs(&self.segments))
    }

    /// A live window whose newest segment is older than [`STALE_TARGET_DURATIONS`] target
    /// durations: the origin stopped delivering. An on-demand asset is never stale.
    pub fn is_stale(&self, now: std::time::Instant) -> bool {
        match (self.segments.last(), self.newest_age(now)) {
            (Some(last), Some(age)) => !last.vod && is_stale(age, self.target_duration()),
            _ => false,
        }
    }
}

/// Every channel's current [`Window`], published by the driver whenever one changes (a segment
/// completed, a channel left) and read by the HTTP server without asking the driver: a TV's
/// playlist request, a cold start waiting for its first segment and a `/ts` client waiting for
/// the next all read the snapshot and sleep on [`Windows::listen`] until it changes.
#[derive(Clone, Default)]
pub struct Windows {
    inner: Arc<WindowsInner>,
}

#[derive(Default)]
struct WindowsInner {
    windows: Mutex<BTreeMap<ChannelId, Arc<Window>>>,
    changed: Event,
}

impl Windows {
    /// The channel's window, if the driver published one.
    pub fn get(&self, channel: ChannelId) -> Option<Arc<Window>> {
        self.lock().get(&channel).cloned()
    }

    /// Wakes on the next change of any window. Take it *before* looking at the window it is
    /// to wait for, so a change in between is not missed.
    pub fn listen(&self) -> EventListener {
        self.inner.changed.listen()
    }

    /// Replaces the channel's window and wakes every listener.
    pub fn publish(&self, channel: ChannelId, window: Window) {
        self.lock().insert(channel, Arc::new(window));
        self.inner.changed.notify(usize::MAX);
    }

    /// Forgets a channel that left the lineup.
    pub fn remove(&self, channel: ChannelId) {
        self.lock().remove(&channel);
        self.inner.changed.notify(usize::MAX);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<ChannelId, Arc<Window>>> {
        // A panic while holding this lock leaves a map of whole windows: still usable.
        self.inner.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Windows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Windows").field("channels", &self.lock().len()).finish()
    }
}

/// The one staleness rule: newest segment older than [`STALE_TARGET_DURATIONS`] × `target`.
pub fn is_stale(newest_age: Duration, target: Duration) -> bool {
    newest_age > target.max(Duration::from_secs(1)) * STALE_TARGET_DURATIONS
}

/// The HLS target duration of `segments` in whole seconds (at least 1).
pub fn target_duration_secs(segments: &[WindowSegment]) -> u64 {
    segments.iter().map(|s| s.duration.as_secs_f64().round() as u64).max().unwrap_or(1).max(1)
}

/// One segment of an HLS window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowSegment {
    /// Sequence number.
    pub seq: u64,
    /// Playback duration.
    pub duration: Duration,
    /// Discontinuity before it.
    pub discontinuity: bool,
    /// Length of its fMP4 initialization section (0: MPEG-TS).
    pub init_len: u32,
    /// Names the init section's content ([`init_id`]), so a playlist repeats `EXT-X-MAP` only
    /// when it changes.
    pub init_id: u64,
    /// Part of an on-demand asset.
    pub vod: bool,
    /// The asset's last segment.
    pub end_of_stream: bool,
}

/// Names an fMP4 init section by its content: the first 8 bytes of its SHA-256, or 0 for none
/// (an MPEG-TS segment). The live window and the on-demand catalog name them alike.
pub fn init_id(init: &[u8]) -> u64 {
    if init.is_empty() {
        return 0;
    }
    let digest = Sha256::digest(init);
    u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8]))
}

/// A complete segment as stored: an fMP4 segment starts with its init section.
#[derive(Clone, Debug)]
pub struct StoredSegment {
    /// The segment.
    pub bytes: Bytes,
    /// Length of the init section at its start (0: MPEG-TS).
    pub init_len: usize,
}

/// An XMLTV guide's bytes and their content type.
#[derive(Clone, Debug)]
pub struct Guide {
    /// The document (XML, or gzip-compressed XML).
    pub bytes: Bytes,
    /// `application/xml` or `application/gzip`.
    pub content_type: &'static str,
}

/// How a TV watches a channel: it matters to the ingester, which cuts segments only when
/// someone uses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watch {
    /// From segments: HLS, or `/ts` on a box that gets the channel from its peers.
    Segments,
    /// From the live feed of the box that receives it.
    Live,
}

/// The box's state as its status LED shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// Peers answering pings.
    pub peers_alive: usize,
    /// A segment of some channel completed within the last four target durations (or 10 s).
    pub streaming: bool,
    /// A channel this box ingests or serves to TVs has an origin that fails (as its ingester
    /// says, wherever that runs).
    pub origin_failing: bool,
}

/// What a source says while it ingests a channel: the source's output, ripgrep's `Sink` seam.
/// The driver is one consumer; a one-segment fetch that publishes nothing needs no swarm at all.
#[derive(Debug)]
pub enum SourceEvent {
    /// A segment fetched for the swarm.
    Publish {
        /// Its description.
        info: SegmentInfo,
        /// Its bytes.
        bytes: Vec<u8>,
    },
    /// How the channel's origin answered the last time the source asked it (`None`: it
    /// answered).
    OriginHealth { channel: ChannelId, error: Option<String> },
    /// What an HLS source asked of the channel's origin since its last report: `requests` HTTP
    /// requests for `kind` (redirects, errors, retries and truncated answers too) and the body
    /// bytes of their answers. `failed`: the fetch they were for did not succeed.
    OriginTraffic { channel: ChannelId, kind: OriginRequestKind, requests: u64, bytes: u64, failed: bool },
    /// An HLS source chose a variant of its master playlist: the best under the channel's
    /// bit-rate cap that works (one that fails is set aside for a while).
    Variant { channel: ChannelId, url: String, bandwidth: u64 },
    /// What a TS source counted about its input since it started.
    InputStats { channel: ChannelId, stats: InputStats },
    /// Asks whether every live carrier of `channel` holds segment `seq` (an asset's ingest
    /// waits for it before publishing further, [`VOD_IN_FLIGHT`]).
    Delivered { channel: ChannelId, seq: u64, reply: Sender<bool> },
}

/// What an origin request was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OriginRequestKind {
    /// A master or media playlist.
    Playlist,
    /// A media segment (or a byte range of one).
    Segment,
    /// An fMP4 initialization section.
    Init,
}

/// Where a source sends its [`SourceEvent`]s.
pub type SourceSink = Sender<SourceEvent>;

/// What the ingester counts about its input, for `/api/status` and `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InputStats {
    /// Datagrams (UDP/RTP) or reads (HTTP, file) taken in.
    pub reads: u64,
    /// Bytes taken in.
    pub bytes: u64,
    /// RTP packets lost (sequence jumps).
    pub rtp_lost: u64,
    /// RTP packets out of order.
    pub rtp_reordered: u64,
    /// Datagrams that were neither TS nor RTP carrying TS.
    pub malformed_datagrams: u64,
    /// Times the feed was joined again (link change or silence) or the stream reconnected.
    pub rejoins: u64,
    /// TS packets seen by the segmenter.
    pub ts_packets: u64,
    /// Continuity-counter errors (lost or garbled TS packets).
    pub cc_errors: u64,
    /// Bytes skipped while looking for TS sync.
    pub garbage_bytes: u64,
    /// Times TS sync was lost.
    pub sync_losses: u64,
    /// Packets flagged with transport errors by the sender.
    pub transport_errors: u64,
    /// Segments cut.
    pub segments: u64,
    /// Segments cut without a keyframe (one grew too long or too large).
    pub forced_cuts: u64,
    /// Keyframes the muxer flagged (random-access indicator).
    pub keyframes_by_flag: u64,
    /// Keyframes found in the video itself (H.264 IDR / HEVC IRAP NAL units) where the muxer did
    /// not flag them.
    pub keyframes_by_scan: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(seq: u64, secs: f64, vod: bool) -> WindowSegment {
        WindowSegment {
            seq,
            duration: Duration::from_secs_f64(secs),
            discontinuity: false,
            init_len: 0,
            init_id: 0,
            vod,
            end_of_stream: false,
        }
    }

    #[test]
    fn a_live_window_goes_stale_after_four_target_durations_and_an_asset_never() {
        let now = std::time::Instant::now();
        let at = |ago: u64| Some(now.checked_sub(Duration::from_secs(ago)).expect("the clock is past"));
        let live = |ago| Window {
            segments: vec![segment(1, 2.0, false), segment(2, 2.4, false)],
            newest_at: at(ago),
            origin_failing: false,
        };
        assert_eq!(live(0).target_duration(), Duration::from_secs(2));
        assert!(!live(8).is_stale(now));
        assert!(live(9).is_stale(now));
        let asset =
            Window { segments: vec![segment(1, 2.0, true)], newest_at: at(3600), origin_failing: false };
        assert!(!asset.is_stale(now));
        assert!(!Window::default().is_stale(now));
    }

    #[test]
    fn init_sections_are_named_by_content_and_none_is_zero() {
        assert_eq!(init_id(&[]), 0);
        assert_eq!(init_id(b"moov"), init_id(b"moov"));
        assert_ne!(init_id(b"moov"), init_id(b"moof"));
    }
}
