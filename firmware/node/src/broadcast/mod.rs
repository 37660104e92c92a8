//! Broadcast-style sources: MPEG-TS over UDP or RTP (multicast or unicast), continuous
//! MPEG-TS over HTTP, and local TS files — cut at keyframes into segments by [`shoal_ts`] and
//! published to the swarm like an HLS origin's segments.
//!
//! Such a feed has no segment numbers of its own, so the ingester numbers them: after the
//! newest segment the swarm already holds (a takeover continues there, marked discontinuous,
//! DESIGN.md §5), or from the wall clock in seconds on a cold start, which keeps numbers rising
//! across restarts as long as segments last a second or more. A file served as VOD is
//! numbered from 0, so every box that reads the same file names its segments alike.

pub mod live;
pub mod rtp;
pub mod udp;

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper::body::Bytes;
use shoal_core::{ChannelId, SegmentInfo};
use shoal_ts::{Segmenter, SegmenterConfig};
use smol::future::FutureExt;
use smol::io::AsyncReadExt;
use smol::Timer;

use crate::lineup::{Encapsulation, FileInput, OriginUrl, TsInput, UdpInput};
use crate::model::{InputStats, SourceEvent, SourceSink};
use crate::origin::Fetcher;
use rtp::{RtpReceiver, Unwrapped};

/// Datagrams read per wake-up before the segmenter's output is looked at.
const READ_BATCH: usize = 64;
/// A feed silent this long is reported to the operator and joined again.
const SILENCE: Duration = Duration::from_secs(3);
/// How often the interface a feed is joined on is checked for a new address or index.
const LINK_CHECK: Duration = Duration::from_secs(2);
/// How often input counters are sent to the status report.
const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// First wait before reconnecting an HTTP stream (doubles up to [`MAX_BACKOFF`]).
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// Read size for files and the cap on one HTTP piece handed to the segmenter at once.
const FILE_CHUNK: usize = 256 * 1024;

/// One TS channel to ingest.
#[derive(Clone, Debug)]
pub struct TsChannel {
    /// The channel.
    pub channel: ChannelId,
    /// Its name, for logs.
    pub name: String,
    /// What to read.
    pub input: TsInput,
    /// Target segment duration (cuts happen at the first keyframe after it).
    pub segment: Duration,
    /// The interface to join multicast groups on, unless the URL names one.
    pub interface: Option<String>,
}

/// Runs until dropped (the ingester is stopped) or, for a VOD file, until its last segment is
/// published.
pub async fn run(
    source: TsChannel,
    fetcher: Fetcher,
    live: live::LiveFeeds,
    resume_after: Option<u64>,
    swarm: SourceSink,
) {
    let vod = matches!(&source.input, TsInput::File(f) if f.vod);
    let first = match (resume_after, vod) {
        (_, true) => 0,
        (Some(held), false) => held + 1,
        (None, false) => SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs(),
    };
    let config = SegmenterConfig {
        target_duration: source.segment,
        max_duration: 3 * source.segment,
        ..SegmenterConfig::default()
    };
    let segmenter = match Segmenter::new(config) {
        Ok(segmenter) => segmenter,
        Err(e) => {
            // The config was checked at load (0.5..=10 s): this is a bug, not an input.
            log::error!("{}: {e}", source.name);
            return;
        }
    };
    let mut ingest = Ingest {
        segmenter,
        cut: VecDeque::new(),
        publisher: Publisher {
            channel: source.channel,
            next_seq: first,
            // A takeover continues someone else's stream: players must reset their decoders.
            pending_discontinuity: resume_after.is_some() && !vod,
            vod,
            swarm,
        },
        stats: InputStats::default(),
        rtp: RtpReceiver::default(),
        last_stats: Instant::now(),
        source,
    };
    let result = match ingest.source.input.clone() {
        TsInput::Udp(input) => {
            let feed = live.open(ingest.source.channel);
            ingest.udp(&input, &feed).await
        }
        TsInput::Http(url) => ingest.http(&fetcher, &url).await,
        TsInput::File(file) => ingest.file(&file).await,
    };
    if let Err(Stopped) = result {
        log::debug!("{}: the swarm stopped; ingest ends", ingest.source.name);
    }
}

/// The swarm is gone (the daemon is stopping).
struct Stopped;

struct Ingest {
    source: TsChannel,
    segmenter: Segmenter,
    /// Segments the segmenter completed, not yet published.
    cut: VecDeque<shoal_ts::Segment>,
    publisher: Publisher,
    stats: InputStats,
    rtp: RtpReceiver,
    last_stats: Instant,
}

impl Ingest {
    /// Hands input to the segmenter; completed segments wait in `cut`.
    fn feed(&mut self, bytes: &[u8]) {
        let cut = &mut self.cut;
        self.segmenter.push(bytes, |segment| cut.push_back(segment));
    }

    /// Receives a UDP/RTP feed, joining again when the link changes or the feed goes silent.
    /// TVs of this box get it live through `feed`; segments are cut while `feed` says they are
    /// needed.
    async fn udp(&mut self, input: &UdpInput, live: &live::FeedHandle) -> Result<(), Stopped> {
        let interface = input.interface.clone().or_else(|| self.source.interface.clone());
        let expect_rtp = input.encapsulation == Encapsulation::Rtp;
        let mut buf = vec![0u8; 65_536];
        loop {
            let socket =
                match udp::Link::current(interface.as_deref()).and_then(|link| udp::open(input, link)) {
                    Ok(socket) => socket,
                    Err(e) => {
                        self.health(Some(format!("cannot receive {}: {e}", input.canonical()))).await?;
                        Timer::after(SILENCE).await;
                        continue;
                    }
                };
            let mut last_data = Instant::now();
            let mut last_link_check = Instant::now();
            let mut healthy = None;
            loop {
                let readable = async { socket.socket.readable().await.is_ok() }
                    .or(async {
                        Timer::after(LINK_CHECK.min(SILENCE)).await;
                        false
                    })
                    .await;
                let mut got = 0;
                if readable {
                    let segmenting = live.segmenting();
                    if !segmenting && self.segmenter.buffered_bytes() > 0 {
                        // Nobody needs segments now: free the one being cut. When they are
                        // needed again, the stream resumes after a gap.
                        self.segmenter.flush(|_| {});
                        self.publisher.pending_discontinuity = true;
                    }
                    let mut tap = live.has_subscribers().then(|| Vec::with_capacity(READ_BATCH * 1316));
                    for _ in 0..READ_BATCH {
                        let Ok(len) = socket.socket.get_ref().recv(&mut buf) else {
                            break;
                        };
                        got += 1;
                        self.stats.reads += 1;
                        self.stats.bytes += len as u64;
                        if let Unwrapped::Ts(ts) = self.rtp.unwrap(&buf[..len], expect_rtp) {
                            if let Some(tap) = &mut tap {
                                tap.extend_from_slice(ts);
                            }
                            if segmenting {
                                let cut = &mut self.cut;
                                self.segmenter.push(ts, |segment| cut.push_back(segment));
                            }
                        }
                    }
                    if let Some(tap) = tap.filter(|t| !t.is_empty()) {
                        live.send(Bytes::from(tap));
                    }
                    self.drain().await?;
                }
                let now = Instant::now();
                if got > 0 {
                    last_data = now;
                    if healthy != Some(true) {
                        healthy = Some(true);
                        self.health(None).await?;
                    }
                }
                if now.duration_since(last_data) >= SILENCE {
                    let why = format!("no data from {} for {} s", input.canonical(), SILENCE.as_secs());
                    log::warn!("{}: {why}; joining again", self.source.name);
                    self.health(Some(why)).await?;
                    break;
                }
                if now.duration_since(last_link_check) >= LINK_CHECK {
                    last_link_check = now;
                    let link = udp::Link::current(interface.as_deref()).ok();
                    if link.as_ref() != Some(&socket.link) {
                        log::info!(
                            "{}: the link changed ({:?} → {link:?}); joining again",
                            self.source.name,
                            socket.link
                        );
                        break;
                    }
                }
            }
            self.stats.rejoins += 1;
        }
    }

    /// Reads a continuous HTTP-TS stream, reconnecting with backoff when it ends or stalls.
    async fn http(&mut self, fetcher: &Fetcher, url: &OriginUrl) -> Result<(), Stopped> {
        let mut failures = 0u32;
        loop {
            let mut session = fetcher.session();
            match session.stream(url).await {
                Ok(mut stream) => {
                    self.health(None).await?;
                    let error = loop {
                        match stream.next(SILENCE).await {
                            Ok(Some(chunk)) => {
                                failures = 0;
                                self.stats.reads += 1;
                                self.stats.bytes += chunk.len() as u64;
                                self.feed(&chunk);
                                self.drain().await?;
                            }
                            Ok(None) => break "the origin ended the stream".to_owned(),
                            Err(e) => break e.to_string(),
                        }
                    };
                    self.health(Some(format!("{url}: {error}"))).await?;
                }
                Err(e) => self.health(Some(format!("{url}: {e}"))).await?,
            }
            failures += 1;
            self.stats.rejoins += 1;
            Timer::after((FIRST_BACKOFF * 2u32.saturating_pow(failures - 1)).min(MAX_BACKOFF)).await;
        }
    }

    /// Reads a file: looped and paced as a live channel, or whole as an on-demand asset.
    async fn file(&mut self, file: &FileInput) -> Result<(), Stopped> {
        let mut buf = vec![0u8; FILE_CHUNK];
        // Live: each segment is published when its playback time has come, so TVs see a
        // live edge that advances in real time.
        let start = Instant::now();
        let mut played = Duration::ZERO;
        let mut failures = 0u32;
        loop {
            let mut reader = match smol::fs::File::open(&file.path).await {
                Ok(f) => f,
                Err(e) => {
                    self.health(Some(format!("{}: {e}", file.path.display()))).await?;
                    failures += 1;
                    Timer::after((FIRST_BACKOFF * 2u32.saturating_pow(failures - 1)).min(MAX_BACKOFF)).await;
                    continue;
                }
            };
            self.health(None).await?;
            loop {
                let len = match reader.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(len) => len,
                    Err(e) => {
                        self.health(Some(format!("{}: {e}", file.path.display()))).await?;
                        break;
                    }
                };
                self.stats.reads += 1;
                self.stats.bytes += len as u64;
                self.feed(&buf[..len]);
                while let Some(segment) = self.cut.pop_front() {
                    if !file.vod {
                        let due = start + played;
                        Timer::at(due).await;
                        played += segment.duration;
                    }
                    self.publisher.publish(segment, false).await?;
                    self.report_stats(false).await?;
                }
            }
            let cut = &mut self.cut;
            self.segmenter.flush(|segment| cut.push_back(segment));
            if file.vod {
                // The last segment closes the asset.
                while let Some(segment) = self.cut.pop_front() {
                    let last = self.cut.is_empty();
                    self.publisher.publish(segment, last).await?;
                }
                self.report_stats(true).await?;
                log::info!("{}: the whole file is published", self.source.name);
                return Ok(());
            }
            // Loop: the file's last segment ends here, and the next starts a new timeline.
            while let Some(segment) = self.cut.pop_front() {
                Timer::at(start + played).await;
                played += segment.duration;
                self.publisher.publish(segment, false).await?;
            }
            self.publisher.pending_discontinuity = true;
            if self.stats.bytes == 0 {
                self.health(Some(format!("{} is empty", file.path.display()))).await?;
                Timer::after(SILENCE).await;
            }
        }
    }

    /// Publishes whatever segments the segmenter has completed.
    async fn drain(&mut self) -> Result<(), Stopped> {
        while let Some(segment) = self.cut.pop_front() {
            self.publisher.publish(segment, false).await?;
        }
        self.report_stats(false).await
    }

    async fn health(&self, error: Option<String>) -> Result<(), Stopped> {
        let report = SourceEvent::OriginHealth { channel: self.source.channel, error };
        self.publisher.swarm.send(report).await.map_err(|_| Stopped)
    }

    async fn report_stats(&mut self, now_anyway: bool) -> Result<(), Stopped> {
        if !now_anyway && self.last_stats.elapsed() < STATS_INTERVAL {
            return Ok(());
        }
        self.last_stats = Instant::now();
        let c = self.segmenter.counters();
        let stats = InputStats {
            rtp_lost: self.rtp.lost,
            rtp_reordered: self.rtp.reordered,
            malformed_datagrams: self.rtp.malformed,
            ts_packets: c.packets,
            cc_errors: c.cc_errors,
            garbage_bytes: c.garbage_bytes,
            sync_losses: c.sync_losses,
            transport_errors: c.transport_errors,
            segments: c.segments,
            forced_cuts: c.forced_cuts,
            keyframes_by_flag: c.keyframes_rai,
            keyframes_by_scan: c.keyframes_scan,
            ..self.stats
        };
        let report = SourceEvent::InputStats { channel: self.source.channel, stats };
        self.publisher.swarm.send(report).await.map_err(|_| Stopped)
    }
}

/// Numbers segments and hands them to the swarm.
struct Publisher {
    channel: ChannelId,
    next_seq: u64,
    pending_discontinuity: bool,
    vod: bool,
    swarm: SourceSink,
}

impl Publisher {
    async fn publish(&mut self, segment: shoal_ts::Segment, end_of_stream: bool) -> Result<(), Stopped> {
        let duration =
            segment.duration.clamp(Duration::from_millis(1), shoal_core::manifest::MAX_SEGMENT_DURATION);
        let mut info = SegmentInfo::new(self.channel, self.next_seq, duration);
        info.discontinuity = segment.discontinuity || std::mem::take(&mut self.pending_discontinuity);
        info.vod = self.vod;
        info.end_of_stream = end_of_stream;
        self.next_seq += 1;
        self.swarm.send(SourceEvent::Publish { info, bytes: segment.bytes }).await.map_err(|_| Stopped)
    }
}
