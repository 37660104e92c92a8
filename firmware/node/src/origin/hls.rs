//! The HLS ingest loop for one channel: resolve the master playlist to a variant, poll the
//! media playlist, fetch each new segment once (with its init section for fMP4), check it is
//! whole, and publish it under the origin's media sequence number.
//!
//! It runs only on the channel's elected ingester, between `IngestStart` and `IngestStop`; a
//! box that takes over starts after the newest segment the swarm already holds, and since it
//! reads the same playlist it continues the same numbering with the same bytes.
//!
//! Failures are retried with exponential backoff; a segment that stays unfetchable, or arrives
//! cut short, is skipped (the next published segment is marked discontinuous) rather than
//! published broken.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use shoal_core::manifest::MAX_SEGMENT_LEN;
use shoal_core::{ChannelId, SegmentInfo};
use smol::Timer;

use super::client::{FetchError, Fetcher, Session};
use super::container::{self, ContainerError};
use super::playlist::{self, InitSection, MediaPlaylist, Playlist, PlaylistError, Segment, MAX_PLAYLIST_LEN};
use crate::lineup::{OriginUrl, UrlError};
use crate::model::{OriginRequestKind, SourceEvent, SourceSink, VOD_IN_FLIGHT};

/// Segments behind the live edge a new ingester starts with (what a player would buffer).
const LIVE_START_SEGMENTS: usize = 3;
/// Attempts per segment before it is skipped.
const SEGMENT_ATTEMPTS: u32 = 3;
/// First retry delay; doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between playlist attempts while the origin is failing, unless the channel is
/// live: then a target duration ([`Ingest::retry_cap`]).
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// Largest fMP4 initialization section.
const MAX_INIT_LEN: usize = 1024 * 1024;
/// A variant of a master playlist that failed (HTTP error, unparsable, no segments) is set aside
/// for this long, and the next best under the cap is used meanwhile.
const VARIANT_ASIDE: Duration = Duration::from_secs(60);

/// What to ingest.
#[derive(Clone, Debug)]
pub struct HlsSource {
    /// The channel.
    pub channel: ChannelId,
    /// Its name, for logs.
    pub name: String,
    /// The master or media playlist.
    pub url: OriginUrl,
    /// Variant cap in bit/s.
    pub max_bitrate: Option<u64>,
}

/// Why a playlist or segment could not be had.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("fetching {0}: {1}")]
    Fetch(String, FetchError),
    #[error("playlist {0}: {1}")]
    Playlist(String, PlaylistError),
    #[error("playlist {0}: a variant URI: {1}")]
    Url(String, UrlError),
    #[error("init section {0}: {1}")]
    Init(String, ContainerError),
    #[error("segment {0}: {1}")]
    Segment(String, ContainerError),
    #[error("segment {0}: encrypted (EXT-X-KEY) segments are not supported")]
    Encrypted(String),
    #[error("segment {0}: with its init section over the {MAX_SEGMENT_LEN}-byte segment limit")]
    TooLarge(String),
    #[error("the swarm stopped")]
    SwarmGone,
    #[error("segment {0} is not in the origin's playlist")]
    NotListed(u64),
}

/// How long an asset's ingest waits for the carriers to take a segment before it goes on.
const CARRIER_WAIT: Duration = Duration::from_secs(10);
const CARRIER_POLL: Duration = Duration::from_millis(20);

/// One segment of `source`'s asset (by media sequence number), fetched from the origin as the
/// ingester would publish it (init section first): for a box whose TV needs a segment that no
/// peer holds any more.
///
/// Every request it makes is counted in `report` as the ingest's are ([`SourceEvent::OriginTraffic`]),
/// so the status still matches the origin's log; what else the one-off ingest says (its choice
/// of variant, its view of the origin's health) is not the channel's and is dropped.
pub async fn fetch_one(
    source: HlsSource,
    fetcher: Fetcher,
    seq: u64,
    report: SourceSink,
) -> Result<Vec<u8>, IngestError> {
    let (events, said) = smol::channel::bounded(4);
    let fetch = async move {
        let mut ingest = Ingest::new(source, &fetcher, None, events);
        let media = ingest.media_playlist().await?;
        let segment = media.segments.iter().find(|s| s.seq == seq).ok_or(IngestError::NotListed(seq))?;
        match ingest.fetch_bytes(segment).await? {
            Some((bytes, _)) => Ok(bytes),
            None => Err(IngestError::NotListed(seq)),
        }
        // The ingest, and with it the last sender, is dropped here: the forwarding below ends.
    };
    let forward = async {
        while let Ok(event) = said.recv().await {
            if matches!(event, SourceEvent::OriginTraffic { .. }) {
                // The driver gone means the box is stopping: nothing left to count for.
                let _ = report.send(event).await;
            }
        }
    };
    smol::future::zip(fetch, forward).await.0
}

/// Runs until dropped (the ingester is stopped) or, for a VOD asset, until its last segment is
/// published.
pub async fn run(source: HlsSource, fetcher: Fetcher, resume_after: Option<u64>, swarm: SourceSink) {
    Ingest::new(source, &fetcher, resume_after, swarm).run().await;
}

struct Ingest {
    source: HlsSource,
    session: Session,
    /// The media playlist, once the master playlist (if any) is resolved.
    media_url: Option<OriginUrl>,
    /// Next sequence number to publish; `None` until the first playlist is read.
    next: Option<u64>,
    /// `next` came from what the swarm held, not from this box's own reading.
    resumed: bool,
    /// Something was skipped: mark the next published segment.
    pending_discontinuity: bool,
    /// The last init section fetched.
    init: Option<(InitSection, OriginUrl, Vec<u8>)>,
    /// Consecutive playlist failures, for backoff.
    failures: u32,
    /// The target duration of the last live media playlist read (`None`: none yet, or an
    /// on-demand asset).
    live_target: Option<Duration>,
    /// The variant of a master playlist in use, if the source is one.
    variant: Option<OriginUrl>,
    /// Variants that failed, and until when they are set aside.
    aside: BTreeMap<String, Instant>,
    /// The last segments of an on-demand asset this ingest published, oldest first (at most
    /// [`VOD_IN_FLIGHT`]): the pacing waits for the carriers to hold the oldest.
    published: VecDeque<u64>,
    swarm: SourceSink,
}

impl Ingest {
    /// An ingest of `source` that publishes after `resume_after` (from the start of the
    /// playlist's window when `None`).
    fn new(source: HlsSource, fetcher: &Fetcher, resume_after: Option<u64>, swarm: SourceSink) -> Self {
        Ingest {
            session: fetcher.session(),
            media_url: None,
            next: resume_after.map(|s| s + 1),
            resumed: resume_after.is_some(),
            pending_discontinuity: false,
            init: None,
            failures: 0,
            live_target: None,
            variant: None,
            aside: BTreeMap::new(),
            published: VecDeque::new(),
            swarm,
            source,
        }
    }

    async fn run(&mut self) {
        let name = self.source.name.clone();
        loop {
            let result = self.media_playlist().await;
            let health = result.as_ref().err().map(ToString::to_string);
            let report = SourceEvent::OriginHealth { channel: self.source.channel, error: health };
            if self.swarm.send(report).await.is_err() {
                return;
            }
            let media = match result {
                Ok(media) => media,
                Err(e) => {
                    self.failures += 1;
                    let wait = backoff(self.failures).min(self.retry_cap());
                    log::warn!("{name}: origin: {e}; retrying in {wait:?}");
                    if self.failures % 3 == 0 {
                        // The variant may have moved or died: resolve the master playlist again,
                        // with this one set aside if another can stand in.
                        if let Some(variant) = self.variant.take() {
                            self.aside.insert(variant.to_string(), Instant::now() + VARIANT_ASIDE);
                        }
                        self.media_url = None;
                    }
                    Timer::after(wait).await;
                    continue;
                }
            };
            if self.failures > 0 {
                log::info!("{name}: origin reachable again");
                self.failures = 0;
            }
            self.live_target = (!media.end_list).then_some(media.target_duration);
            let published = match self.fetch_new(&media).await {
                Ok(n) => n,
                Err(IngestError::SwarmGone) => return,
                Err(e) => {
                    log::warn!("{name}: {e}");
                    0
                }
            };
            let done = media.end_list && media.segments.last().is_none_or(|s| self.next > Some(s.seq));
            if done {
                log::info!("{name}: the on-demand asset is complete ({} segments)", media.segments.len());
                return;
            }
            // RFC 8216 §6.3.4: reload after a target duration, or half of one if nothing changed.
            let wait = if published > 0 { media.target_duration } else { media.target_duration / 2 };
            Timer::after(wait.max(Duration::from_millis(250))).await;
        }
    }

    /// The longest wait between playlist attempts while the origin fails. A live origin
    /// drops a segment from its playlist every target duration, so a live ingest asks at
    /// least that often, as its normal polling does: every segment the origin still lists
    /// when it comes back is fetched, not lost to a long backoff.
    fn retry_cap(&self) -> Duration {
        self.live_target.map_or(MAX_BACKOFF, |target| target.clamp(FIRST_BACKOFF, MAX_BACKOFF))
    }

    /// Fetches and parses the media playlist, resolving a master playlist first if needed.
    async fn media_playlist(&mut self) -> Result<MediaPlaylist, IngestError> {
        let url = self.media_url.clone().unwrap_or_else(|| self.source.url.clone());
        let (fetched_url, playlist) = self.playlist(&url).await?;
        match playlist {
            Playlist::Media(media) => {
                self.media_url = Some(fetched_url);
                Ok(media)
            }
            Playlist::Master(variants) => self.pick_variant(&fetched_url, &variants).await,
        }
    }

    /// The media playlist of the best variant under the cap that works: one that fails (an HTTP
    /// error, unparsable, no segments) is set aside for [`VARIANT_ASIDE`] and the next best is
    /// tried, so a broken 4K rendition does not keep a channel dark. When every variant is set
    /// aside they are all tried again, best first.
    async fn pick_variant(
        &mut self,
        master: &OriginUrl,
        variants: &[playlist::Variant],
    ) -> Result<MediaPlaylist, IngestError> {
        let shown = master.to_string();
        let now = Instant::now();
        self.aside.retain(|_, until| *until > now);
        let ranked = playlist::rank_variants(variants, self.source.max_bitrate);
        let mut candidates = Vec::new();
        for variant in &ranked {
            let url = master.join(&variant.uri).map_err(|e| IngestError::Url(shown.clone(), e))?;
            candidates.push((url, variant.bandwidth));
        }
        if candidates.iter().all(|(url, _)| self.aside.contains_key(&url.to_string())) {
            self.aside.clear();
        }
        let mut last_error = IngestError::Playlist(shown.clone(), PlaylistError::NoVariant);
        for (url, bandwidth) in candidates {
            if self.aside.contains_key(&url.to_string()) {
                continue;
            }
            let name = self.source.name.clone();
            let error = match self.playlist(&url).await {
                Ok((fetched_url, Playlist::Media(media))) if !media.segments.is_empty() => {
                    if self.variant.as_ref() != Some(&url) {
                        log::info!("{name}: variant {url} ({bandwidth} bit/s) of {} offered", variants.len());
                        let choice = SourceEvent::Variant {
                            channel: self.source.channel,
                            url: url.to_string(),
                            bandwidth,
                        };
                        self.swarm.send(choice).await.map_err(|_| IngestError::SwarmGone)?;
                    }
                    self.variant = Some(url);
                    self.media_url = Some(fetched_url);
                    return Ok(media);
                }
                Ok((_, Playlist::Media(_))) => {
                    IngestError::Playlist(url.to_string(), PlaylistError::Syntax("no segments".to_owned()))
                }
                Ok((_, Playlist::Master(_))) => IngestError::Playlist(
                    url.to_string(),
                    PlaylistError::Syntax("a variant is itself a master playlist".to_owned()),
                ),
                Err(IngestError::SwarmGone) => return Err(IngestError::SwarmGone),
                Err(e) => e,
            };
            log::warn!(
                "{name}: variant {url} ({bandwidth} bit/s) fails ({error}); setting it aside for {} s",
                VARIANT_ASIDE.as_secs()
            );
            self.aside.insert(url.to_string(), Instant::now() + VARIANT_ASIDE);
            last_error = error;
        }
        Err(last_error)
    }

    async fn playlist(&mut self, url: &OriginUrl) -> Result<(OriginUrl, Playlist), IngestError> {
        let fetched = self.session.get(url, None, MAX_PLAYLIST_LEN).await;
        let parsed = fetched.as_ref().ok().map(|f| playlist::parse(&f.bytes));
        self.count(OriginRequestKind::Playlist, !matches!(parsed, Some(Ok(_)))).await;
        let fetched = fetched.map_err(|e| IngestError::Fetch(url.to_string(), e))?;
        let playlist = parsed
            .unwrap_or_else(|| unreachable!("parsed when fetched"))
            .map_err(|e| IngestError::Playlist(url.to_string(), e))?;
        Ok((fetched.url, playlist))
    }

    /// Reports what the session asked of the origin since the last report: every request and
    /// the bytes of every answer, failed ones too, so the status matches the origin's own log.
    async fn count(&mut self, kind: OriginRequestKind, failed: bool) {
        let traffic = self.session.take_traffic();
        if traffic.requests == 0 && traffic.bytes == 0 {
            return;
        }
        let (requests, bytes) = (traffic.requests, traffic.bytes);
        let event =
            SourceEvent::OriginTraffic { channel: self.source.channel, kind, requests, bytes, failed };
        // The driver gone means the box is stopping: nothing left to count for.
        let _ = self.swarm.send(event).await;
    }

    /// Publishes every segment of `media` after the last one published; how many.
    async fn fetch_new(&mut self, media: &MediaPlaylist) -> Result<usize, IngestError> {
        let (Some(first), Some(last)) = (media.segments.first(), media.segments.last()) else {
            return Ok(0);
        };
        let start = start_in(self.next, self.resumed, first.seq, last.seq, media.end_list);
        let name = &self.source.name;
        match start.gone {
            Some((from, _)) if start.fresh => log::info!(
                "{name}: the swarm's newest segment ({}) is older than the origin's playlist ({}..={}): \
                 starting at the live edge, segment {}",
                from.saturating_sub(1),
                first.seq,
                last.seq,
                start.next
            ),
            Some((from, to)) => {
                log::warn!(
                    "{name}: segments {from}..={to} left the origin's playlist before they were fetched; \
                     going on with {}",
                    start.next
                );
                self.pending_discontinuity = true;
            }
            None => {}
        }
        let next = start.next;
        self.resumed = false;
        self.next = Some(next);
        let mut published = 0;
        for segment in media.segments.iter().filter(|s| s.seq >= next) {
            let end_of_stream = media.end_list && segment.seq == last.seq;
            match self.fetch_segment(segment, media.end_list, end_of_stream).await {
                Ok(()) => published += 1,
                Err(IngestError::SwarmGone) => return Err(IngestError::SwarmGone),
                Err(e) => {
                    log::warn!("{}: skipping segment {}: {e}", self.source.name, segment.seq);
                    self.pending_discontinuity = true;
                }
            }
            self.next = Some(segment.seq + 1);
        }
        Ok(published)
    }

    /// Fetches one segment (retrying), checks it and publishes it.
    async fn fetch_segment(
        &mut self,
        segment: &Segment,
        vod: bool,
        end_of_stream: bool,
    ) -> Result<(), IngestError> {
        if vod {
            self.wait_for_carriers().await?;
        }
        let Some((bytes, init_len)) = self.fetch_bytes(segment).await? else {
            return Ok(());
        };
        let info = SegmentInfo {
            discontinuity: segment.discontinuity || std::mem::take(&mut self.pending_discontinuity),
            init_len: init_len as u32,
            vod,
            end_of_stream,
            ..SegmentInfo::new(self.source.channel, segment.seq, segment.duration)
        };
        log::debug!("{}: publishing segment {} ({} bytes)", self.source.name, segment.seq, bytes.len());
        self.swarm.send(SourceEvent::Publish { info, bytes }).await.map_err(|_| IngestError::SwarmGone)?;
        if vod {
            if self.published.len() as u64 >= VOD_IN_FLIGHT {
                self.published.pop_front();
            }
            self.published.push_back(segment.seq);
        }
        Ok(())
    }

    /// An asset is published no faster than the slowest carrier takes it: with
    /// [`VOD_IN_FLIGHT`] segments published and not yet held by every live carrier,
    /// the next waits (bounded: a box that stopped answering is not waited for long). Only
    /// segments this ingest published count: a skipped or never-listed number is not waited for.
    async fn wait_for_carriers(&mut self) -> Result<(), IngestError> {
        if (self.published.len() as u64) < VOD_IN_FLIGHT {
            return Ok(());
        }
        let Some(&oldest) = self.published.front() else {
            return Ok(());
        };
        let deadline = Instant::now() + CARRIER_WAIT;
        while Instant::now() < deadline {
            let (reply, answer) = smol::channel::bounded(1);
            let ask = SourceEvent::Delivered { channel: self.source.channel, seq: oldest, reply };
            self.swarm.send(ask).await.map_err(|_| IngestError::SwarmGone)?;
            if answer.recv().await.map_err(|_| IngestError::SwarmGone)? {
                return Ok(());
            }
            Timer::after(CARRIER_POLL).await;
        }
        log::info!("{}: carriers are slow to take segment {oldest}; going on", self.source.name);
        Ok(())
    }

    /// Fetches one segment's bytes (retrying) and checks them: the bytes with any init section
    /// first, and the init section's length; `None` before the media playlist is known.
    async fn fetch_bytes(&mut self, segment: &Segment) -> Result<Option<(Vec<u8>, usize)>, IngestError> {
        let Some(base) = self.media_url.clone() else {
            return Ok(None);
        };
        let url = base.join(&segment.uri).map_err(|e| IngestError::Url(base.to_string(), e))?;
        let shown = url.to_string();
        if segment.encrypted {
            return Err(IngestError::Encrypted(shown));
        }
        let init = match &segment.map {
            Some(map) => Some(self.init_section(&base, map).await?),
            None => None,
        };
        let init_len = init.as_ref().map_or(0, Vec::len);
        let mut attempt = 0;
        let media = loop {
            attempt += 1;
            let result = self.session.get(&url, segment.byte_range, MAX_SEGMENT_LEN - init_len).await;
            let checked = result.map(|fetched| {
                let check = container::check_segment(&fetched.bytes);
                (fetched, check)
            });
            self.count(OriginRequestKind::Segment, !matches!(checked, Ok((_, Ok(_))))).await;
            let error = match checked {
                Ok((fetched, Ok(_))) => break fetched.bytes,
                Ok((_, Err(e))) => IngestError::Segment(shown.clone(), e),
                Err(e) => {
                    let transient = e.is_transient();
                    let error = IngestError::Fetch(shown.clone(), e);
                    if !transient {
                        return Err(error);
                    }
                    error
                }
            };
            if attempt >= SEGMENT_ATTEMPTS {
                return Err(error);
            }
            log::info!("{}: {error}; retrying", self.source.name);
            Timer::after(backoff(attempt)).await;
        };
        let mut bytes = init.unwrap_or_default();
        bytes.extend_from_slice(&media);
        if bytes.len() > MAX_SEGMENT_LEN {
            return Err(IngestError::TooLarge(shown));
        }
        Ok(Some((bytes, init_len)))
    }

    /// The init section `map` (fetched once while it stays the same).
    async fn init_section(&mut self, base: &OriginUrl, map: &InitSection) -> Result<Vec<u8>, IngestError> {
        let url = base.join(&map.uri).map_err(|e| IngestError::Url(base.to_string(), e))?;
        if let Some((cached, cached_url, bytes)) = &self.init {
            if cached == map && *cached_url == url {
                return Ok(bytes.clone());
            }
        }
        let shown = url.to_string();
        let mut attempt = 0;
        let bytes = loop {
            attempt += 1;
            let result = self.session.get(&url, map.byte_range, MAX_INIT_LEN).await;
            let checked = result.map(|fetched| {
                let check = container::check_init(&fetched.bytes);
                (fetched, check)
            });
            self.count(OriginRequestKind::Init, !matches!(checked, Ok((_, Ok(_))))).await;
            match checked {
                Ok((fetched, check)) => {
                    check.map_err(|e| IngestError::Init(shown.clone(), e))?;
                    break fetched.bytes;
                }
                Err(e) if e.is_transient() && attempt < SEGMENT_ATTEMPTS => {
                    log::info!("{}: init section {shown}: {e}; retrying", self.source.name);
                    Timer::after(backoff(attempt)).await;
                }
                Err(e) => return Err(IngestError::Fetch(shown, e)),
            }
        };
        self.init = Some((map.clone(), url, bytes.clone()));
        Ok(bytes)
    }
}

/// Where an ingest goes on in a playlist that lists `first..=last`.
#[derive(Debug, PartialEq, Eq)]
struct Start {
    /// The first segment to fetch.
    next: u64,
    /// Segments after the last one published (or held by the swarm) that the origin no longer
    /// lists, inclusive: they cannot be had.
    gone: Option<(u64, u64)>,
    /// Nothing continues: the swarm's newest is older than everything the origin lists (the
    /// channel idled), so the ingest starts where a fresh one would.
    fresh: bool,
}

/// Where an ingest goes on: `next` is the segment after the last one this ingest published, or
/// (`resumed`) after the newest the swarm holds, `None` before either. Everything the origin still
/// lists after it is fetched, so an outage or a takeover loses only what the origin dropped; a
/// fresh live start begins [`LIVE_START_SEGMENTS`] behind the edge, an asset at its start.
fn start_in(next: Option<u64>, resumed: bool, first: u64, last: u64, end_list: bool) -> Start {
    let live_start =
        if end_list { first } else { last.saturating_sub(LIVE_START_SEGMENTS as u64 - 1).max(first) };
    match next {
        None => Start { next: live_start, gone: None, fresh: true },
        Some(n) if n >= first => Start { next: n, gone: None, fresh: false },
        // The swarm's newest is older than the whole playlist: the channel idled, and a TV
        // tuning in now wants the live edge, not the oldest segment the origin still has.
        Some(n) if resumed && !end_list => {
            Start { next: live_start, gone: Some((n, first - 1)), fresh: true }
        }
        Some(n) => Start { next: first, gone: Some((n, first - 1)), fresh: false },
    }
}

/// 0.5 s, 1 s, 2 s, ... for attempt 1, 2, 3, ...
fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF * 2u32.saturating_pow(attempt.saturating_sub(1).min(6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ingest_goes_on_with_everything_the_origin_still_lists() {
        // A fresh live start: three behind the edge; an asset: from its start.
        assert_eq!(start_in(None, false, 30, 42, false), Start { next: 40, gone: None, fresh: true });
        assert_eq!(start_in(None, false, 0, 99, true), Start { next: 0, gone: None, fresh: true });
        // After an outage the origin still lists 35..=42 and this ingest last published 33:
        // 34 is gone, 35.. are fetched (not only the live edge).
        let after_outage = start_in(Some(34), false, 35, 42, false);
        assert_eq!(after_outage, Start { next: 35, gone: Some((34, 34)), fresh: false });
        // A takeover resumes after the swarm's newest when the origin still lists the next.
        assert_eq!(start_in(Some(38), true, 35, 42, false), Start { next: 38, gone: None, fresh: false });
        // The swarm's newest is older than the whole playlist: the channel idled.
        assert_eq!(
            start_in(Some(3), true, 35, 42, false),
            Start { next: 40, gone: Some((3, 34)), fresh: true }
        );
        // Nothing new yet.
        assert_eq!(start_in(Some(43), false, 35, 42, false), Start { next: 43, gone: None, fresh: false });
        // An asset whose early segments the origin dropped goes on from its first listed one.
        assert_eq!(
            start_in(Some(3), true, 10, 99, true),
            Start { next: 10, gone: Some((3, 9)), fresh: false }
        );
    }

    /// A one-request-per-connection HTTP server on 127.0.0.1 answering `files` (404 for
    /// anything else) for `requests` requests; its address.
    fn serve(files: Vec<(&'static str, Vec<u8>)>, requests: usize) -> std::net::SocketAddr {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let addr = listener.local_addr().expect("its address");
        std::thread::spawn(move || {
            for stream in listener.incoming().take(requests) {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                let path = request.split(' ').nth(1).unwrap_or_default().to_owned();
                // The headers, up to the blank line.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let (status, body) = match files.iter().find(|(name, _)| *name == path) {
                    Some((_, body)) => ("200 OK", body.clone()),
                    None => ("404 Not Found", b"no such file".to_vec()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
            }
        });
        addr
    }

    #[test]
    fn a_segment_fetched_for_the_disk_tier_is_counted_like_the_ingests() {
        let segment: Vec<u8> = (0..4).flat_map(|_| std::iter::once(0x47).chain([0u8; 187])).collect();
        let master = b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=900000\nbroken/index.m3u8\n\
                       #EXT-X-STREAM-INF:BANDWIDTH=800000\nv/index.m3u8\n"
            .to_vec();
        let media = b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
                      #EXTINF:2.0,\nseg0.ts\n#EXTINF:2.0,\nseg1.ts\n#EXT-X-ENDLIST\n"
            .to_vec();
        let files = vec![
            ("/master.m3u8", master.clone()),
            ("/v/index.m3u8", media.clone()),
            ("/v/seg1.ts", segment.clone()),
        ];
        // The master, the broken variant (404), the working one, the segment.
        let addr = serve(files, 4);
        let source = HlsSource {
            channel: ChannelId([5; 8]),
            name: "films".to_owned(),
            url: OriginUrl::parse(&format!("http://{addr}/master.m3u8")).expect("url"),
            max_bitrate: None,
        };
        let fetcher = Fetcher::new(None, Duration::from_secs(5)).expect("fetcher");
        let (report, counted) = smol::channel::unbounded();
        let bytes = smol::block_on(fetch_one(source, fetcher, 1, report)).expect("segment 1");
        assert_eq!(bytes, segment);
        let mut requests = 0;
        let mut bytes = 0;
        let mut failed = 0;
        while let Ok(event) = counted.try_recv() {
            let SourceEvent::OriginTraffic { requests: r, bytes: b, failed: f, .. } = event else {
                panic!("only traffic is reported: {event:?}");
            };
            (requests, bytes, failed) = (requests + r, bytes + b, failed + u64::from(f));
        }
        // What the server sent: every body, the 404's included.
        let sent = master.len() + b"no such file".len() + media.len() + segment.len();
        assert_eq!((requests, bytes, failed), (4, sent as u64, 1));
    }
}
