//! What TVs get: the lineup, the guide, HLS playlists and segments, and continuous MPEG-TS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use smol::future::FutureExt as _;
use smol::Timer;

use super::range::ranged;
use super::{error, text, Backend, Body};
use crate::lineup::Encapsulation;
use crate::model::{target_duration_secs, Watch, Window, WindowSegment};

/// How long a playlist request for a channel with nothing stored yet waits for its first
/// segment before answering 503 (the ingester has to start fetching first).
const COLD_START_WAIT: Duration = Duration::from_secs(8);

/// `/playlist.m3u`: the lineup as an extended M3U, with URLs on the host the TV asked.
pub(super) fn lineup<B: Backend>(backend: &B, request: &Request<Incoming>) -> Response<Body> {
    // The Host header names this box as the TV reached it; accept only a plain host[:port].
    let host = request
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".:-[]".contains(&b))
        })
        .unwrap_or("localhost");
    let mut m3u = String::from("#EXTM3U");
    if backend.has_guide() {
        m3u.push_str(&format!(" url-tvg=\"http://{host}/xmltv\""));
    }
    m3u.push('\n');
    for c in backend.lineup() {
        m3u.push_str(&format!("#EXTINF:-1 tvg-id=\"{}\" tvg-name=\"{}\"", c.id, c.name.replace('"', "'")));
        if let Some(n) = c.number {
            m3u.push_str(&format!(" tvg-chno=\"{n}\""));
        }
        if let Some(g) = &c.group {
            m3u.push_str(&format!(" group-title=\"{g}\""));
        }
        if let Some(l) = &c.logo {
            m3u.push_str(&format!(" tvg-logo=\"{l}\""));
        }
        m3u.push_str(&format!(",{}\nhttp://{host}/hls/{}/index.m3u8\n", c.name, c.id));
    }
    text(StatusCode::OK, "audio/x-mpegurl", m3u.into_bytes())
}

/// `/xmltv`: the configured guide, passed through (cached by the backend).
pub(super) async fn xmltv<B: Backend>(backend: &B) -> Response<Body> {
    match backend.xmltv().await {
        None => error(StatusCode::NOT_FOUND, "no XMLTV guide is configured (guide.xmltv)"),
        Some(Err(why)) => {
            let mut response =
                error(StatusCode::BAD_GATEWAY, &format!("the XMLTV guide is unavailable: {why}"));
            response.headers_mut().insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("60"));
            response
        }
        Some(Ok(guide)) => {
            let mut response = Response::new(Full::new(guide.bytes).boxed_unsync());
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(guide.content_type));
            response
                .headers_mut()
                .insert(hyper::header::CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
            response
        }
    }
}

/// Which part of a stored segment a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// `<seq>.ts` or `<seq>.m4s`: the media, without any init section.
    Media,
    /// `init-<seq>.mp4`: the fMP4 initialization section stored with segment `seq`.
    Init,
}

fn parse_segment_name(file: &str) -> Option<(u64, Part)> {
    let number = |s: &str| s.parse::<u64>().ok().filter(|_| s.bytes().all(|b| b.is_ascii_digit()));
    if let Some(seq) = file.strip_prefix("init-").and_then(|f| f.strip_suffix(".mp4")) {
        return number(seq).map(|n| (n, Part::Init));
    }
    let seq = file.strip_suffix(".ts").or_else(|| file.strip_suffix(".m4s"))?;
    number(seq).map(|n| (n, Part::Media))
}

/// `/hls/<channel>/index.m3u8`, its segments `<seq>.ts` / `<seq>.m4s`, and fMP4 init sections
/// `init-<seq>.mp4`.
pub(super) async fn hls<B: Backend>(
    backend: &B,
    rest: &str,
    client: std::net::IpAddr,
    range: Option<&HeaderValue>,
    head: bool,
) -> Response<Body> {
    let Some((id, file)) = rest.split_once('/') else {
        return error(StatusCode::NOT_FOUND, "no such resource");
    };
    let Some(listing) = backend.lineup().iter().find(|c| c.id == id) else {
        return error(StatusCode::NOT_FOUND, "no such channel");
    };
    let channel = listing.channel_id();
    if file == "index.m3u8" {
        backend.viewer(channel, client, Watch::Segments).await;
        return match first_window(backend, channel).await {
            Ok(window) => text(
                StatusCode::OK,
                "application/vnd.apple.mpegurl",
                media_playlist(&window.segments).into_bytes(),
            ),
            Err(response) => response,
        };
    }
    let Some((seq, part)) = parse_segment_name(file) else {
        return error(StatusCode::NOT_FOUND, "no such resource");
    };
    backend.viewer(channel, client, Watch::Segments).await;
    let Some(segment) = backend.segment(channel, seq).await else {
        return error(StatusCode::NOT_FOUND, "segment not held (outside the window)");
    };
    let init_len = segment.init_len.min(segment.bytes.len());
    let (bytes, content_type) = match part {
        Part::Init if init_len == 0 => {
            return error(StatusCode::NOT_FOUND, "the segment has no init section")
        }
        Part::Init => (segment.bytes.slice(..init_len), "video/mp4"),
        Part::Media if init_len > 0 => (segment.bytes.slice(init_len..), "video/iso.segment"),
        Part::Media => (segment.bytes, "video/mp2t"),
    };
    let response = ranged(bytes, content_type, range);
    // hyper sends no body for HEAD: only bytes that go out count as served.
    if let Some(len) = hyper::body::Body::size_hint(response.body()).exact().filter(|_| !head) {
        backend.served(channel, len as usize);
    }
    response
}

/// `/cache/<content id>`: an object of this box's disk tier (a segment of an on-demand asset,
/// named by the SHA-256 of its bytes), for a peer whose TV needs it. The peer checks the hash;
/// the bytes never change, so they may be cached for good.
pub(super) async fn object<B: Backend>(backend: &B, id: &str, range: Option<&HeaderValue>) -> Response<Body> {
    match backend.object(id).await {
        Some(bytes) => {
            let mut response = ranged(bytes, "application/octet-stream", range);
            response.headers_mut().insert(
                hyper::header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=31536000, immutable"),
            );
            response
        }
        None => error(StatusCode::NOT_FOUND, "no such object on this box"),
    }
}

/// Waits (bounded) until `channel` has a fresh window; the window, or the response to answer
/// instead. The wait wakes when the driver publishes a window, not on a timer. A TV that comes
/// back to a channel whose window went stale while nobody watched waits like a cold start (its
/// request demands the channel again); the answers say what is true:
/// - the channel's ingester says its origin fails: 503 naming it, at once, `Retry-After: 5`;
/// - a live window that stays stale: 503, the origin is not delivering, `Retry-After: 5`;
/// - nothing yet: 503, the channel is starting, `Retry-After: 2`.
async fn first_window<B: Backend>(
    backend: &B,
    channel: shoal_core::ChannelId,
) -> Result<Arc<Window>, Response<Body>> {
    let deadline = Instant::now() + COLD_START_WAIT;
    loop {
        // Listening before looking: a window published in between still wakes this wait.
        let changed = backend.changed();
        let window = backend.window(channel);
        let now = Instant::now();
        if let Some(window) = window.as_ref().filter(|w| !w.segments.is_empty() && !w.is_stale(now)) {
            return Ok(window.clone());
        }
        if window.as_ref().is_some_and(|w| w.origin_failing) {
            let reason = "the channel's origin is failing; the box keeps trying";
            return Err(unavailable(reason, "5"));
        }
        if now >= deadline {
            return Err(match window.as_ref().and_then(|w| w.newest_age(now)) {
                Some(age) => unavailable(
                    &format!(
                        "the channel's origin is not delivering: no new segment for {} s",
                        age.as_secs()
                    ),
                    "5",
                ),
                None => unavailable("the channel is starting; no segment yet", "2"),
            });
        }
        changed.or(until(deadline)).await;
    }
}

/// A 503 with its reason and when to ask again.
fn unavailable(reason: &str, retry_after: &'static str) -> Response<Body> {
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, reason);
    response.headers_mut().insert(hyper::header::RETRY_AFTER, HeaderValue::from_static(retry_after));
    response
}

/// Sleeps until `deadline`: the bound on a wait for a change.
async fn until(deadline: Instant) {
    Timer::at(deadline).await;
}

/// A `/ts` client that has not taken the next segment within this long is dropped, rather than
/// having segments kept for it.
const TS_STALL: Duration = Duration::from_secs(10);

/// `/ts/<channel>`: one continuous MPEG-TS stream, starting with the second-newest complete
/// segment (every segment starts with PAT, PMT and a keyframe; two segments give a player
/// the few seconds it analyses before its first frame at once) and going on with each next
/// segment as the swarm completes it. The body is produced only as fast as the client reads, one segment
/// at a time; a client that falls out of the window (or a channel that stops) ends the stream.
pub(super) async fn ts<B: Backend>(backend: Arc<B>, id: &str, client: std::net::IpAddr) -> Response<Body> {
    let Some(listing) = backend.lineup().iter().find(|c| c.id == id) else {
        return error(StatusCode::NOT_FOUND, "no such channel");
    };
    ts_stream(backend.clone(), listing.channel_id(), client).await
}

/// `/udp/<group>:<port>` and `/rtp/<group>:<port>`: a udpxy-compatible relay URL. The feed
/// is carried as a channel of the swarm and streamed like `/ts/<channel>`.
pub(super) async fn relay<B: Backend>(
    backend: Arc<B>,
    encapsulation: Encapsulation,
    rest: &str,
    client: std::net::IpAddr,
) -> Response<Body> {
    match backend.relay(encapsulation, rest).await {
        Ok(channel) => ts_stream(backend, channel, client).await,
        Err((status, why)) => error(status, &why),
    }
}

/// How often a TV on the live feed is counted as a viewer again.
const LIVE_VIEWER_REFRESH: Duration = Duration::from_secs(1);

/// Continuous MPEG-TS of `channel` for one TV: the live feed when this box receives the channel
/// (udpxy's way: bytes as they arrive), else segments from the store. A TV on the live feed
/// goes on from segments if this box stops receiving (another box took the channel over).
async fn ts_stream<B: Backend>(
    backend: Arc<B>,
    channel: shoal_core::ChannelId,
    client: std::net::IpAddr,
) -> Response<Body> {
    backend.viewer(channel, client, Watch::Live).await;
    // A cold channel: wait (bounded) until this box receives it or has a segment of it.
    let deadline = Instant::now() + COLD_START_WAIT;
    let live = loop {
        let changed = backend.changed();
        if let Some(live) = backend.live(channel) {
            break Some(live);
        }
        if backend.window(channel).is_some_and(|w| !w.segments.is_empty()) {
            break None;
        }
        if Instant::now() >= deadline {
            let mut response =
                error(StatusCode::SERVICE_UNAVAILABLE, "the channel is starting; no segment yet");
            response.headers_mut().insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("2"));
            return response;
        }
        changed.or(until(deadline)).await;
    };
    let body = match live {
        Some(live) => {
            let segments = segment_stream(backend.clone(), channel, client, None);
            let live = live_stream(backend, channel, client, live);
            http_body_util::StreamBody::new(smol::stream::StreamExt::chain(live, segments)).boxed_unsync()
        }
        None => {
            backend.viewer(channel, client, Watch::Segments).await;
            let window = match first_window(&*backend, channel).await {
                Ok(window) => window,
                Err(response) => return response,
            };
            if window.segments.iter().any(|s| s.init_len > 0) {
                return error(
                    StatusCode::NOT_FOUND,
                    "the channel is fragmented MP4, not MPEG-TS: play it from /hls",
                );
            }
            let second_newest = window.segments.len().saturating_sub(2);
            let start = window.segments.get(second_newest).map_or(0, |s| s.seq);
            http_body_util::StreamBody::new(segment_stream(backend, channel, client, Some(start)))
                .boxed_unsync()
        }
    };
    let mut response = Response::new(body);
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("video/mp2t"));
    response.headers_mut().insert(hyper::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

type Frames = std::pin::Pin<
    Box<
        dyn smol::stream::Stream<
                Item = Result<hyper::body::Frame<hyper::body::Bytes>, std::convert::Infallible>,
            > + Send,
    >,
>;

/// The live feed's chunks as body frames, refreshing the TV's viewer mark as they go.
fn live_stream<B: Backend>(
    backend: Arc<B>,
    channel: shoal_core::ChannelId,
    client: std::net::IpAddr,
    live: smol::channel::Receiver<hyper::body::Bytes>,
) -> Frames {
    let refreshed = Instant::now();
    Box::pin(smol::stream::unfold(
        (backend, live, refreshed),
        move |(backend, live, mut refreshed)| async move {
            let chunk = live.recv().await.ok()?;
            if refreshed.elapsed() >= LIVE_VIEWER_REFRESH {
                refreshed = Instant::now();
                backend.viewer(channel, client, Watch::Live).await;
            }
            backend.served(channel, chunk.len());
            Some((Ok(hyper::body::Frame::data(chunk)), (backend, live, refreshed)))
        },
    ))
}

/// Segments from `start` on (`None`: the newest held when the stream gets there), each as the
/// swarm completes it; ends when the TV falls out of the window or the channel stops.
fn segment_stream<B: Backend>(
    backend: Arc<B>,
    channel: shoal_core::ChannelId,
    client: std::net::IpAddr,
    start: Option<u64>,
) -> Frames {
    Box::pin(smol::stream::unfold((backend, start), move |(backend, seq)| async move {
        let deadline = Instant::now() + TS_STALL;
        let mut seq = seq;
        // When to go on without the awaited segment, once a newer one is here.
        let mut give_up_at: Option<Instant> = None;
        loop {
            let changed = backend.changed();
            backend.viewer(channel, client, Watch::Segments).await;
            let window = backend.window(channel);
            let next = match seq {
                Some(seq) => Some(seq),
                // Coming from the live feed: go on with the newest segment there is.
                None => match window.as_ref().and_then(|w| w.segments.last()) {
                    Some(last) if last.init_len == 0 => Some(last.seq),
                    Some(_) => return None,
                    None => None,
                },
            };
            if let Some(next) = next {
                seq = Some(next);
                if let Some(segment) = backend.segment(channel, next).await {
                    backend.served(channel, segment.bytes.len());
                    let frame = hyper::body::Frame::data(segment.bytes);
                    return Some((Ok(frame), (backend, Some(next + 1))));
                }
                let held = window.as_ref().map_or(&[][..], |w| &w.segments[..]);
                if held.first().is_some_and(|s| s.seq > next) {
                    log::info!("a /ts client of channel {channel} fell behind the live window; dropping it");
                    return None;
                }
                // A newer segment is here and the awaited one is not: the ingester skipped it
                // (the newer one is marked discontinuous), or it is lost. Go on with the newer
                // one, at once when it is marked, else after a target duration's grace (it may
                // still be on its way), rather than stall until the TV is dropped.
                if let Some(newer) = held.iter().find(|s| s.seq > next) {
                    let grace = window.as_ref().map_or(Duration::ZERO, |w| w.target_duration());
                    let at = *give_up_at.get_or_insert_with(|| Instant::now() + grace);
                    if newer.discontinuity || Instant::now() >= at {
                        log::debug!(
                            "a /ts client of channel {channel} goes on at {} without {next}",
                            newer.seq
                        );
                        seq = Some(newer.seq);
                        give_up_at = None;
                        continue;
                    }
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            // Wakes when a window changes; the timer only renews this TV's viewer mark, which
            // would otherwise lapse while a slow channel's next segment is on its way, or ends
            // the grace for a missing one.
            let wake = give_up_at.map_or(deadline, |at| at.min(deadline)).min(now + VIEWER_REFRESH);
            changed.or(until(wake)).await;
        }
    }))
}

/// How often a waiting `/ts` client is counted as a viewer again (well inside the viewer
/// timeout).
const VIEWER_REFRESH: Duration = Duration::from_secs(2);

/// A media playlist over `window` (oldest first, not empty): a sliding live window, or an
/// on-demand asset (`EVENT` while it is still arriving, `VOD` with `ENDLIST` once whole).
pub fn media_playlist(window: &[WindowSegment]) -> String {
    // RFC 8216 §4.3.3.1: EXTINF rounded to the nearest integer must not exceed it.
    let target = target_duration_secs(window);
    let first = window.first().map_or(0, |s| s.seq);
    let fmp4 = window.iter().any(|s| s.init_len > 0);
    let version = if fmp4 { 7 } else { 3 };
    let vod = window.first().is_some_and(|s| s.vod);
    let complete = vod && window.last().is_some_and(|s| s.end_of_stream);
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{first}\n"
    );
    if vod {
        out.push_str(if complete { "#EXT-X-PLAYLIST-TYPE:VOD\n" } else { "#EXT-X-PLAYLIST-TYPE:EVENT\n" });
    }
    for (i, s) in window.iter().enumerate() {
        let previous = i.checked_sub(1).map(|p| &window[p]);
        // A gap in the numbers is a discontinuity too: the stream jumps.
        let discontinuous = s.discontinuity || previous.is_some_and(|p| p.seq + 1 != s.seq);
        if discontinuous {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if s.init_len > 0
            && (discontinuous || previous.is_none_or(|p| p.init_id != s.init_id || p.init_len == 0))
        {
            out.push_str(&format!("#EXT-X-MAP:URI=\"init-{}.mp4\"\n", s.seq));
        }
        let extension = if s.init_len > 0 { "m4s" } else { "ts" };
        out.push_str(&format!("#EXTINF:{:.3},\n{}.{extension}\n", s.duration.as_secs_f64(), s.seq));
    }
    if complete {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(seq: u64, discontinuity: bool) -> WindowSegment {
        WindowSegment {
            seq,
            duration: Duration::from_millis(2020),
            discontinuity,
            init_len: 0,
            init_id: 0,
            vod: false,
            end_of_stream: false,
        }
    }

    #[test]
    fn live_playlists_mark_discontinuities_and_numbers() {
        let playlist = media_playlist(&[seg(10, false), seg(11, true), seg(13, false)]);
        assert_eq!(
            playlist,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:10\n\
             #EXTINF:2.020,\n10.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2.020,\n11.ts\n\
             #EXT-X-DISCONTINUITY\n#EXTINF:2.020,\n13.ts\n"
        );
    }

    #[test]
    fn fmp4_playlists_map_init_sections_when_they_change() {
        let fmp4 = |seq, init_id| WindowSegment { init_len: 800, init_id, ..seg(seq, false) };
        let playlist = media_playlist(&[fmp4(5, 1), fmp4(6, 1), fmp4(7, 2)]);
        assert_eq!(
            playlist,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:5\n\
             #EXT-X-MAP:URI=\"init-5.mp4\"\n#EXTINF:2.020,\n5.m4s\n#EXTINF:2.020,\n6.m4s\n\
             #EXT-X-MAP:URI=\"init-7.mp4\"\n#EXTINF:2.020,\n7.m4s\n"
        );
    }

    #[test]
    fn vod_playlists_end_once_the_last_segment_is_held() {
        let vod = |seq, end_of_stream| WindowSegment { vod: true, end_of_stream, ..seg(seq, false) };
        let arriving = media_playlist(&[vod(0, false), vod(1, false)]);
        assert!(arriving.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n") && !arriving.contains("ENDLIST"));
        let whole = media_playlist(&[vod(0, false), vod(1, false), vod(2, true)]);
        assert!(whole.contains("#EXT-X-PLAYLIST-TYPE:VOD\n") && whole.ends_with("2.ts\n#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn segment_names_are_numbers_only() {
        assert_eq!(parse_segment_name("42.ts"), Some((42, Part::Media)));
        assert_eq!(parse_segment_name("42.m4s"), Some((42, Part::Media)));
        assert_eq!(parse_segment_name("init-42.mp4"), Some((42, Part::Init)));
        for bad in [
            "../42.ts",
            "+42.ts",
            "42.mp4",
            "init-.mp4",
            "42",
            "..%2f..%2fetc%2fpasswd",
            "99999999999999999999.ts",
        ] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
    }
}

#[cfg(test)]
mod waits {
    //! `first_window` against a backend with nothing behind it but published windows: the wait
    //! wakes on a publication, and the answers say what is true.

    use std::net::IpAddr;

    use serde_json::Value;
    use shoal_core::ChannelId;

    use super::*;
    use crate::http::{AdminAction, Guide};
    use crate::lineup::{Channel, Encapsulation};
    use crate::model::status::{Status, SwarmReport};
    use crate::model::{StoredSegment, Windows};

    const CHANNEL: ChannelId = ChannelId([9; 8]);

    #[derive(Default)]
    struct Published {
        windows: Windows,
    }

    impl Backend for Published {
        async fn status(&self) -> Option<Status> {
            None
        }
        fn lineup(&self) -> &[Channel] {
            &[]
        }
        fn window(&self, channel: ChannelId) -> Option<Arc<Window>> {
            self.windows.get(channel)
        }
        fn changed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
            self.windows.listen()
        }
        /// A segment the published window lists: its number as its bytes.
        async fn segment(&self, channel: ChannelId, seq: u64) -> Option<StoredSegment> {
            let window = self.windows.get(channel)?;
            window
                .segments
                .iter()
                .any(|s| s.seq == seq)
                .then(|| StoredSegment { bytes: hyper::body::Bytes::from(seq.to_string()), init_len: 0 })
        }
        async fn viewer(&self, _: ChannelId, _: IpAddr, _: Watch) {}
        fn live(&self, _: ChannelId) -> Option<smol::channel::Receiver<hyper::body::Bytes>> {
            None
        }
        async fn object(&self, _: &str) -> Option<hyper::body::Bytes> {
            None
        }
        fn served(&self, _: ChannelId, _: usize) {}
        async fn swarm(&self) -> Option<SwarmReport> {
            None
        }
        fn is_admin(&self, _: IpAddr) -> bool {
            false
        }
        fn admin_networks(&self) -> String {
            String::new()
        }
        async fn admin(&self, _: AdminAction) -> Result<Value, String> {
            Err(String::new())
        }
        async fn relay(&self, _: Encapsulation, _: &str) -> Result<ChannelId, (StatusCode, String)> {
            Err((StatusCode::NOT_FOUND, String::new()))
        }
        fn has_guide(&self) -> bool {
            false
        }
        async fn xmltv(&self) -> Option<Result<Guide, String>> {
            None
        }
    }

    fn live(seq: u64, age: Duration, origin_failing: bool) -> Window {
        let segment = WindowSegment {
            seq,
            duration: Duration::from_secs(2),
            discontinuity: false,
            init_len: 0,
            init_id: 0,
            vod: false,
            end_of_stream: false,
        };
        let newest_at = Instant::now().checked_sub(age);
        Window { segments: vec![segment], newest_at, origin_failing }
    }

    async fn body(response: Response<Body>) -> String {
        let bytes = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn a_cold_channel_is_answered_when_its_first_window_is_published() {
        smol::block_on(async {
            let backend = Arc::new(Published::default());
            let publisher = backend.clone();
            let asked = Instant::now();
            let publish = smol::spawn(async move {
                Timer::after(Duration::from_millis(300)).await;
                publisher.windows.publish(CHANNEL, live(7, Duration::ZERO, false));
            });
            let window = first_window(&*backend, CHANNEL).await.expect("a window");
            assert_eq!(window.segments[0].seq, 7);
            // Woken by the publication, not by a poll or the 8 s bound.
            let waited = asked.elapsed();
            assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(3), "{waited:?}");
            publish.await;
        });
    }

    #[test]
    fn a_returning_viewer_waits_for_a_fresh_window_instead_of_a_stale_one() {
        smol::block_on(async {
            let backend = Arc::new(Published::default());
            // Watched a minute ago: the window is stale, the origin healthy.
            backend.windows.publish(CHANNEL, live(3, Duration::from_secs(60), false));
            let publisher = backend.clone();
            let fresh = smol::spawn(async move {
                Timer::after(Duration::from_millis(300)).await;
                publisher.windows.publish(CHANNEL, live(33, Duration::ZERO, false));
            });
            let window = first_window(&*backend, CHANNEL).await.expect("the fresh window, not a 503");
            assert_eq!(window.segments[0].seq, 33);
            fresh.await;
        });
    }

    #[test]
    fn a_failing_origin_is_named_at_once_and_a_fresh_window_is_still_served() {
        smol::block_on(async {
            let backend = Published::default();
            backend.windows.publish(CHANNEL, live(3, Duration::from_secs(60), true));
            let asked = Instant::now();
            let response = first_window(&backend, CHANNEL).await.expect_err("a 503");
            assert!(asked.elapsed() < Duration::from_secs(1), "at once");
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[hyper::header::RETRY_AFTER], "5");
            assert!(body(response).await.contains("origin is failing"));
            // A fresh window with a failing origin is still served: TVs get what is buffered.
            backend.windows.publish(CHANNEL, live(4, Duration::ZERO, true));
            assert!(first_window(&backend, CHANNEL).await.is_ok());
        });
    }

    /// The first `count` segments a `/ts` stream from `start` sends, and when each came.
    async fn ts_stream(backend: Arc<Published>, start: u64, count: usize) -> Vec<(String, Duration)> {
        use smol::stream::StreamExt;
        let asked = Instant::now();
        let client = IpAddr::from([10, 0, 0, 9]);
        let stream = segment_stream(backend, CHANNEL, client, Some(start));
        let frames: Vec<_> = stream.take(count).collect().await;
        frames
            .into_iter()
            .map(|frame| {
                let data = frame.expect("infallible").into_data().expect("a data frame");
                (String::from_utf8_lossy(&data).into_owned(), asked.elapsed())
            })
            .collect()
    }

    #[test]
    fn a_ts_stream_goes_on_past_a_segment_the_ingester_skipped() {
        let window = |discontinuity: bool| {
            let segment = |seq, discontinuity| WindowSegment {
                seq,
                discontinuity,
                ..live(seq, Duration::ZERO, false).segments[0]
            };
            Window {
                segments: vec![segment(1, false), segment(2, false), segment(4, discontinuity)],
                newest_at: Some(Instant::now()),
                origin_failing: false,
            }
        };
        smol::block_on(async {
            // Segment 3 was skipped, and 4 says so: on at once.
            let backend = Arc::new(Published::default());
            backend.windows.publish(CHANNEL, window(true));
            let sent = ts_stream(backend, 1, 3).await;
            let names: Vec<&str> = sent.iter().map(|(name, _)| name.as_str()).collect();
            assert_eq!(names, ["1", "2", "4"]);
            assert!(sent[2].1 < Duration::from_secs(1), "{sent:?}");
            // Segment 3 is missing with no word why: it may still come, so 4 follows after a
            // target duration (2 s) of grace, not after the stall that drops the TV.
            let backend = Arc::new(Published::default());
            backend.windows.publish(CHANNEL, window(false));
            let sent = ts_stream(backend, 1, 3).await;
            let names: Vec<&str> = sent.iter().map(|(name, _)| name.as_str()).collect();
            assert_eq!(names, ["1", "2", "4"]);
            assert!(sent[2].1 >= Duration::from_secs(2) && sent[2].1 < TS_STALL, "{sent:?}");
        });
    }
}
