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

use shoal_core::{ChannelId, SegmentInfo};
use smol::channel::Receiver;
use smol::{Task, Timer};

use crate::broadcast::{self, TsChannel};
use crate::lineup::{Channel, SourceKind, TestPattern};
use crate::model::{SourceEvent, SourceSink};
use crate::origin::hls::{self, HlsSource};
use crate::origin::Fetcher;

/// Segments a new ingester fetches behind the newest, like an HLS live playlist's window.
const ORIGIN_WINDOW: u64 = 3;

/// What the driver tells the sources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IngestCommand {
    /// A channel added at run time (a relayed feed): how to fetch it when elected.
    Register(Box<Channel>),
    /// A channel added at run time is gone: stop it and forget it.
    Unregister { channel: ChannelId },
    /// Start fetching a channel; `resume_after` is the newest complete segment held.
    Start { channel: ChannelId, resume_after: Option<u64> },
    /// Stop fetching a channel.
    Stop { channel: ChannelId },
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
    swarm: SourceSink,
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
                let task = match &config.kind {
                    SourceKind::Hls(url) => {
                        let source = HlsSource {
                            channel,
                            name: config.id.clone(),
                            url: url.clone(),
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
                    SourceKind::Ts(input) => {
                        let source = TsChannel {
                            channel,
                            name: config.id.clone(),
                            input: input.clone(),
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
                    SourceKind::TestCard => smol::spawn(testcard(channel, resume_after, swarm)),
                    &SourceKind::TestPattern(pattern) => {
                        smol::spawn(test_pattern(channel, pattern, resume_after, swarm))
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
    swarm: SourceSink,
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
            if swarm.send(SourceEvent::Publish { info, bytes }).await.is_err() {
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

async fn testcard(channel: ChannelId, resume_after: Option<u64>, swarm: SourceSink) {
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
            if swarm.send(SourceEvent::Publish { info, bytes }).await.is_err() {
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
    fn segments_are_the_same_everywhere_and_differ_by_number() {
        let p = TestPattern::parse("test://pattern?bitrate=80000").expect("valid");
        let ch = ChannelId([1; 8]);
        assert_eq!(p.segment_bytes(ch, 5), p.segment_bytes(ch, 5));
        assert_ne!(p.segment_bytes(ch, 5), p.segment_bytes(ch, 6));
        assert_eq!(p.segment_bytes(ch, 5).len(), 20_000);
    }
}
