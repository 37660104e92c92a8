//! Sources: what the ingester runs for a channel between `IngestStart` and `IngestStop`.
//!
//! Three kinds. `http://` and `https://` URLs are HLS origins ([`crate::origin::hls`]): master
//! or media playlists, live or VOD, MPEG-TS or fMP4. `builtin:testcard` loops a short H.264/AAC clip as a seamless live channel
//! ([`crate::testcard`]), so a fresh box plays something with no origin configured. And
//! `test://pattern?bitrate=B&duration=D`: a synthetic live channel
//! standing in for an origin. Like an HLS origin it numbers segments by wall-clock time
//! (segment `n` covers `[n·D, (n+1)·D)` since the Unix epoch), so a box that takes over continues
//! the same numbering, and its bytes are a pure function of (channel, sequence number), so every
//! box that fetches segment `n` gets the same bytes; benchmarks and swarm tests use it.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use shoal_core::{ChannelId, SegmentInfo};
use smol::channel::{Receiver, Sender};
use smol::{Task, Timer};

use crate::broadcast::{self, FileInput, TsChannel, TsInput, UdpInput};
use crate::config::Channel;
use crate::origin::hls::{self, HlsSource};
use crate::origin::{Fetcher, OriginUrl};
use crate::swarm::{Command, IngestCommand};

/// Segments a new ingester fetches behind the newest, like an HLS live playlist's window.
const ORIGIN_WINDOW: u64 = 3;

/// A parsed `test://pattern` URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestPattern {
    /// Bits per second.
    pub bitrate: u64,
    /// Segment duration.
    pub duration: Duration,
}

/// Why a source URL cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SourceError {
    /// A scheme this build cannot fetch.
    #[error(
        "unsupported source `{0}` (this build takes http(s):// HLS or HTTP-TS, udp://, rtp://, file://, builtin:testcard and test://pattern)"
    )]
    Unsupported(String),
    /// An http(s) URL that cannot be used.
    #[error(transparent)]
    Url(#[from] crate::origin::UrlError),
    /// A udp://, rtp:// or file:// URL that cannot be used.
    #[error(transparent)]
    Input(#[from] broadcast::InputError),
    /// A malformed parameter.
    #[error("bad source parameter in `{0}`: bitrate must be 1000..=100000000 and duration 1..=60 s")]
    BadParameter(String),
}

/// What an `http(s)://` source serves: an HLS playlist, or one continuous MPEG-TS stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpFormat {
    /// A master or media playlist.
    Hls,
    /// Continuous MPEG-TS (HTTP-TS), as encoders and udpxy serve it.
    Ts,
}

impl HttpFormat {
    /// `hls` or `ts`.
    pub fn parse(text: &str) -> Option<HttpFormat> {
        match text {
            "hls" => Some(HttpFormat::Hls),
            "ts" => Some(HttpFormat::Ts),
            _ => None,
        }
    }

    /// The format an `http(s)://` URL without a `format` most likely serves: TS when its path
    /// ends like a TS file or names a udpxy relay, HLS otherwise.
    fn guess(url: &OriginUrl) -> HttpFormat {
        let path = url.path_and_query.split('?').next().unwrap_or("").to_ascii_lowercase();
        let ts = [".ts", ".mpg", ".mpeg", ".m2ts", ".mts"].iter().any(|e| path.ends_with(e))
            || path.starts_with("/udp/")
            || path.starts_with("/rtp/");
        if ts {
            HttpFormat::Ts
        } else {
            HttpFormat::Hls
        }
    }
}

/// What a channel's `source` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// An HLS origin: a master or media playlist over HTTP or HTTPS.
    Hls(OriginUrl),
    /// A broadcast-style MPEG-TS feed: UDP, RTP, HTTP-TS or a file.
    Ts(TsInput),
    /// The built-in test card.
    TestCard,
    /// The synthetic test pattern.
    TestPattern(TestPattern),
}

impl SourceKind {
    /// Parses a channel's `source`; `format` says what an `http(s)://` URL serves.
    pub fn parse(source: &str, format: Option<HttpFormat>) -> Result<SourceKind, SourceError> {
        let lower = source.get(..8).unwrap_or(source).to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let url = OriginUrl::parse(source)?;
            return Ok(match format.unwrap_or_else(|| HttpFormat::guess(&url)) {
                HttpFormat::Hls => SourceKind::Hls(url),
                HttpFormat::Ts => SourceKind::Ts(TsInput::Http(url)),
            });
        }
        if lower.starts_with("udp://") || lower.starts_with("rtp://") {
            return Ok(SourceKind::Ts(TsInput::Udp(UdpInput::parse(source)?)));
        }
        if lower.starts_with("file://") {
            return Ok(SourceKind::Ts(TsInput::File(FileInput::parse(source)?)));
        }
        if source == "builtin:testcard" {
            return Ok(SourceKind::TestCard);
        }
        TestPattern::parse(source).map(SourceKind::TestPattern)
    }
}

impl TestPattern {
    /// Parses `test://pattern?bitrate=B&duration=D` (both optional).
    pub fn parse(url: &str) -> Result<TestPattern, SourceError> {
        let rest = url.strip_prefix("test://pattern").ok_or_else(|| SourceError::Unsupported(url.into()))?;
        let mut pattern = TestPattern { bitrate: 2_000_000, duration: Duration::from_secs(2) };
        let query = match rest {
            "" => "",
            q if q.starts_with('?') => &q[1..],
            _ => return Err(SourceError::Unsupported(url.into())),
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let bad = || SourceError::BadParameter(url.into());
            let (key, value) = pair.split_once('=').ok_or_else(bad)?;
            let value: u64 = value.parse().map_err(|_| bad())?;
            match key {
                "bitrate" if (1_000..=100_000_000).contains(&value) => pattern.bitrate = value,
                "duration" if (1..=60).contains(&value) => pattern.duration = Duration::from_secs(value),
                _ => return Err(bad()),
            }
        }
        Ok(pattern)
    }

    /// Bytes per segment.
    pub fn segment_len(&self) -> usize {
        (self.bitrate as u128 * self.duration.as_millis() / 8_000) as usize
    }

    /// The segment covering `time` since the epoch.
    pub fn seq_at(&self, since_epoch: Duration) -> u64 {
        (since_epoch.as_millis() / self.duration.as_millis()) as u64
    }

    /// The bytes of segment `seq` of `channel`: SHA-256 in counter mode, the same on every box.
    pub fn segment_bytes(&self, channel: ChannelId, seq: u64) -> Vec<u8> {
        let len = self.segment_len();
        let mut out = Vec::with_capacity(len + 32);
        let seed = Sha256::new().chain_update(channel.0).chain_update(seq.to_le_bytes());
        let mut counter = 0u64;
        while out.len() < len {
            out.extend_from_slice(&seed.clone().chain_update(counter.to_le_bytes()).finalize());
            counter += 1;
        }
        out.truncate(len);
        out
    }
}

fn since_epoch() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Runs sources as the driver asks: one task per channel being ingested. HLS origins and
/// HTTP-TS streams are fetched through `fetcher`; `relay_interface` is where relayed feeds
/// (channels the driver registers at run time) are joined.
pub async fn run(
    channels: Vec<Channel>,
    fetcher: Fetcher,
    relay_interface: Option<String>,
    live: broadcast::live::LiveFeeds,
    commands: Receiver<IngestCommand>,
    swarm: Sender<Command>,
    vod: Option<crate::vod::VodCache>,
) {
    let mut by_id: BTreeMap<ChannelId, Channel> = channels.into_iter().map(|c| (c.channel_id(), c)).collect();
    let mut running: BTreeMap<ChannelId, Task<()>> = BTreeMap::new();
    while let Ok(command) = commands.recv().await {
        match command {
            IngestCommand::Register(channel) => {
                let mut channel = *channel;
                channel.interface = channel.interface.or_else(|| relay_interface.clone());
                by_id.insert(channel.channel_id(), channel);
            }
            IngestCommand::Unregister { channel } => {
                running.remove(&channel);
                by_id.remove(&channel);
            }
            IngestCommand::Start { channel, resume_after } => {
                let Some(config) = by_id.get(&channel) else {
                    continue;
                };
                let swarm = swarm.clone();
                let task = match SourceKind::parse(&config.source, config.format) {
                    Ok(SourceKind::Hls(url)) => {
                        let source = HlsSource {
                            channel,
                            name: config.id.clone(),
                            url,
                            max_bitrate: config.max_bitrate,
                        };
                        // An asset this box has catalogued is resumed after its catalogued run,
                        // not fetched from the origin again (the RAM store, where
                        // `resume_after` comes from, holds only its last few segments).
                        let catalogued = vod.as_ref().and_then(|v| v.last_listed(channel));
                        let resume_after = match (resume_after, catalogued) {
                            (Some(held), Some(listed)) => Some(held.max(listed)),
                            (held, listed) => held.or(listed),
                        };
                        smol::spawn(hls::run(source, fetcher.clone(), resume_after, swarm))
                    }
                    Ok(SourceKind::Ts(input)) => {
                        let source = TsChannel {
                            channel,
                            name: config.id.clone(),
                            input,
                            segment: config.segment,
                            interface: config.interface.clone(),
                        };
                        smol::spawn(broadcast::run(
                            source,
                            fetcher.clone(),
                            live.clone(),
                            resume_after,
                            swarm,
                        ))
                    }
                    Ok(SourceKind::TestCard) => smol::spawn(testcard(channel, resume_after, swarm)),
                    Ok(SourceKind::TestPattern(pattern)) => {
                        smol::spawn(test_pattern(channel, pattern, resume_after, swarm))
                    }
                    // The config was checked at load: this is a bug, not an input.
                    Err(e) => {
                        log::error!("channel {}: {e}", config.id);
                        continue;
                    }
                };
                running.insert(channel, task);
            }
            IngestCommand::Stop { channel } => {
                // Dropping the task cancels it.
                running.remove(&channel);
            }
        }
    }
}

async fn test_pattern(
    channel: ChannelId,
    pattern: TestPattern,
    resume_after: Option<u64>,
    swarm: Sender<Command>,
) {
    // The newest complete segment is the one before the current interval.
    let newest = pattern.seq_at(since_epoch()).saturating_sub(1);
    let first = match resume_after {
        Some(held) => (held + 1).max(newest.saturating_sub(ORIGIN_WINDOW - 1)),
        None => newest,
    };
    let mut seq = first;
    loop {
        let current = pattern.seq_at(since_epoch()).saturating_sub(1);
        while seq <= current {
            let info = SegmentInfo::new(channel, seq, pattern.duration);
            let bytes = pattern.segment_bytes(channel, seq);
            if swarm.send(Command::Publish { info, bytes }).await.is_err() {
                return;
            }
            seq += 1;
        }
        // Wake when the next interval completes.
        let next_end = pattern.duration * ((seq + 1) as u32);
        let wait = next_end.saturating_sub(since_epoch()).max(Duration::from_millis(10));
        Timer::after(wait.min(pattern.duration * 2)).await;
    }
}

const TESTCARD_SEGMENT: Duration = crate::testcard::SEGMENT_DURATION;

async fn testcard(channel: ChannelId, resume_after: Option<u64>, swarm: Sender<Command>) {
    let seq_at = |t: Duration| (t.as_millis() / TESTCARD_SEGMENT.as_millis()) as u64;
    let newest = seq_at(since_epoch()).saturating_sub(1);
    let mut seq = match resume_after {
        Some(held) => (held + 1).max(newest.saturating_sub(ORIGIN_WINDOW - 1)),
        None => newest.saturating_sub(ORIGIN_WINDOW - 1),
    };
    loop {
        let current = seq_at(since_epoch()).saturating_sub(1);
        while seq <= current {
            let bytes = crate::testcard::segment(seq);
            let info = SegmentInfo::new(channel, seq, TESTCARD_SEGMENT);
            if swarm.send(Command::Publish { info, bytes }).await.is_err() {
                return;
            }
            seq += 1;
        }
        let next_end = TESTCARD_SEGMENT * ((seq + 1) as u32);
        let wait = next_end.saturating_sub(since_epoch()).max(Duration::from_millis(10));
        Timer::after(wait.min(TESTCARD_SEGMENT * 2)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_test_pattern_urls() {
        let p = TestPattern::parse("test://pattern?bitrate=4000000&duration=2").expect("valid");
        assert_eq!(p.segment_len(), 1_000_000);
        assert_eq!(TestPattern::parse("test://pattern").expect("defaults").duration, Duration::from_secs(2));
        assert!(matches!(TestPattern::parse("http://origin/x.m3u8"), Err(SourceError::Unsupported(_))));
        assert!(matches!(SourceKind::parse("https://o.example/live.m3u8", None), Ok(SourceKind::Hls(_))));
        assert!(matches!(SourceKind::parse("http://bad host/x", None), Err(SourceError::Url(_))));
        assert!(matches!(SourceKind::parse("rtmp://o/x", None), Err(SourceError::Unsupported(_))));
        assert_eq!(SourceKind::parse("builtin:testcard", None), Ok(SourceKind::TestCard));
        assert!(matches!(TestPattern::parse("test://pattern?duration=0"), Err(SourceError::BadParameter(_))));
        assert!(matches!(TestPattern::parse("test://pattern?speed=3"), Err(SourceError::BadParameter(_))));
    }

    #[test]
    fn http_sources_are_hls_unless_they_look_or_are_said_to_be_ts() {
        let ts = |url: &str, format| {
            matches!(SourceKind::parse(url, format), Ok(SourceKind::Ts(TsInput::Http(_))))
        };
        assert!(ts("http://encoder.local/live.ts", None));
        assert!(ts("http://udpxy.local:4022/udp/239.1.1.1:5000", None));
        assert!(ts("http://encoder.local/stream", Some(HttpFormat::Ts)));
        assert!(!ts("http://encoder.local/stream", None));
        assert!(!ts("http://encoder.local/live.ts", Some(HttpFormat::Hls)));
        assert!(matches!(
            SourceKind::parse("udp://@239.1.1.1:5000", None),
            Ok(SourceKind::Ts(TsInput::Udp(_)))
        ));
        assert!(matches!(
            SourceKind::parse("rtp://@239.1.1.1:5000", None),
            Ok(SourceKind::Ts(TsInput::Udp(_)))
        ));
        assert!(matches!(
            SourceKind::parse("file:///srv/a.ts?vod", None),
            Ok(SourceKind::Ts(TsInput::File(_)))
        ));
        assert!(matches!(SourceKind::parse("udp://@239.1.1.1", None), Err(SourceError::Input(_))));
    }

    #[test]
    fn segments_are_the_same_everywhere_and_differ_by_number() {
        let p = TestPattern::parse("test://pattern?bitrate=80000").expect("valid");
        let ch = ChannelId([1; 8]);
        assert_eq!(p.segment_bytes(ch, 5), p.segment_bytes(ch, 5));
        assert_ne!(p.segment_bytes(ch, 5), p.segment_bytes(ch, 6));
        assert_eq!(p.segment_bytes(ch, 5).len(), 20_000);
    }
}
