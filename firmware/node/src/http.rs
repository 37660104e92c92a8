//! The box's HTTP server (hyper on smol): the lineup (`/playlist.m3u`), live HLS per channel
//! (`/hls/<channel>/index.m3u8` and its segments), continuous MPEG-TS (`/ts/<channel>`) and
//! `/api/status`. Routes live in [`route`].
//!
//! Bounded like everything facing the network: at most `max_clients` connections at once (more
//! wait in the kernel's accept queue), 16 KiB and 10 s for request headers, a client that stops
//! reading dropped after 30 s ([`stall`]), HTTP/1.1 only, and handlers that answer from bounded
//! data.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use smol::lock::Semaphore;
use smol::net::TcpListener;
use smol::Timer;
use smol_hyper::rt::{FuturesIo, SmolTimer};

use crate::swarm::{Window, WindowSegment};

mod stall;
use stall::StallGuard;

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a status request waits for the driver.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a playlist request for a channel with nothing stored yet waits for its first
/// segment before answering 503 (the ingester has to start fetching first).
const COLD_START_WAIT: Duration = Duration::from_secs(8);

/// A channel as TVs see it.
#[derive(Clone, Debug)]
pub struct Listing {
    /// URL id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Lineup number.
    pub number: Option<u32>,
    /// Lineup group.
    pub group: Option<String>,
    /// Logo URL.
    pub logo: Option<String>,
    /// Swarm id.
    pub channel: shoal_core::ChannelId,
}

/// What handlers need from the rest of the daemon.
pub trait Backend: Send + Sync + 'static {
    /// The status report, or `None` if the box is shutting down.
    fn status(&self) -> impl std::future::Future<Output = Option<Value>> + Send;
    /// The lineup.
    fn lineup(&self) -> &[Listing];
    /// The channel's window (complete segments, oldest first), or `None` when shutting down.
    fn window(
        &self,
        channel: shoal_core::ChannelId,
    ) -> impl std::future::Future<Output = Option<Window>> + Send;
    /// A complete segment.
    fn segment(
        &self,
        channel: shoal_core::ChannelId,
        seq: u64,
    ) -> impl std::future::Future<Output = Option<StoredSegment>> + Send;
    /// A TV is watching `channel`.
    fn viewer(&self, channel: shoal_core::ChannelId) -> impl std::future::Future<Output = ()> + Send;
    /// Counts bytes of segments sent to TVs.
    fn served(&self, bytes: usize);
    /// Whether a guide is configured.
    fn has_guide(&self) -> bool;
    /// The XMLTV guide: `None` when none is configured, `Some(Err)` when it cannot be had.
    fn xmltv(&self) -> impl std::future::Future<Output = Option<Result<Guide, String>>> + Send;
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

/// Serves HTTP on `listener` until the task is dropped.
pub async fn serve<B: Backend>(listener: TcpListener, backend: Arc<B>, max_clients: usize) {
    let slots = Arc::new(Semaphore::new(max_clients));
    loop {
        let permit = slots.acquire_arc().await;
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                log::warn!("HTTP accept: {e}");
                Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        let backend = backend.clone();
        smol::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let backend = backend.clone();
                async move { Ok::<_, std::convert::Infallible>(route(backend, request, peer).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(SmolTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(16 * 1024)
                .serve_connection(FuturesIo::new(StallGuard::new(stream, stall::WRITE_STALL)), service);
            if let Err(e) = connection.await {
                log::debug!("HTTP connection from {peer}: {e}");
            }
            drop(permit);
        })
        .detach();
    }
}

/// Every response body: whole (playlists, JSON) or streamed (`/ts`).
type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// Dispatches one request. Every path is matched exactly or parsed into a channel id from the
/// lineup and a number: nothing here reads files, so there is no path to traverse.
async fn route<B: Backend>(backend: Arc<B>, request: Request<Incoming>, _peer: SocketAddr) -> Response<Body> {
    let backend_ref = &*backend;
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are supported");
        response.headers_mut().insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let path = request.uri().path();
    if let Some(rest) = path.strip_prefix("/hls/") {
        return hls(backend_ref, rest, request.headers().get(hyper::header::RANGE)).await;
    }
    if let Some(id) = path.strip_prefix("/ts/") {
        return ts(backend.clone(), id).await;
    }
    // hyper leaves out the body of a HEAD response itself, keeping its length headers.
    match path {
        "/playlist.m3u" => lineup(backend_ref, &request),
        "/xmltv" => xmltv(backend_ref).await,
        "/api/status" => {
            let status = smol::future::or(backend_ref.status(), async {
                Timer::after(STATUS_TIMEOUT).await;
                None
            })
            .await;
            match status {
                Some(value) => json_response(StatusCode::OK, &value),
                None => error(StatusCode::SERVICE_UNAVAILABLE, "the box is busy or shutting down"),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "no such resource"),
    }
}

/// `/playlist.m3u`: the lineup as an extended M3U, with URLs on the host the TV asked.
fn lineup<B: Backend>(backend: &B, request: &Request<Incoming>) -> Response<Body> {
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
async fn xmltv<B: Backend>(backend: &B) -> Response<Body> {
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
async fn hls<B: Backend>(backend: &B, rest: &str, range: Option<&HeaderValue>) -> Response<Body> {
    let Some((id, file)) = rest.split_once('/') else {
        return error(StatusCode::NOT_FOUND, "no such resource");
    };
    let Some(listing) = backend.lineup().iter().find(|c| c.id == id) else {
        return error(StatusCode::NOT_FOUND, "no such channel");
    };
    let channel = listing.channel;
    if file == "index.m3u8" {
        backend.viewer(channel).await;
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
    backend.viewer(channel).await;
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
    if let Some(len) = hyper::body::Body::size_hint(response.body()).exact() {
        backend.served(len as usize);
    }
    response
}

/// A segment's bytes, whole or the single byte range the client asked for (RFC 9110 §14).
fn ranged(bytes: Bytes, content_type: &'static str, range: Option<&HeaderValue>) -> Response<Body> {
    let len = bytes.len();
    let requested = range.and_then(|r| r.to_str().ok()).map(|r| parse_range(r, len));
    let (status, body, content_range) = match requested {
        // No Range header, or one this server ignores (several ranges, other units).
        None | Some(RangeRequest::Ignore) => (StatusCode::OK, bytes, None),
        Some(RangeRequest::Unsatisfiable) => {
            let mut response = error(StatusCode::RANGE_NOT_SATISFIABLE, "the range is outside the segment");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                response.headers_mut().insert(hyper::header::CONTENT_RANGE, v);
            }
            return response;
        }
        Some(RangeRequest::Range(start, end)) => (
            StatusCode::PARTIAL_CONTENT,
            bytes.slice(start..end),
            Some(format!("bytes {start}-{}/{len}", end - 1)),
        ),
    };
    let mut response = Response::new(Full::new(body).boxed_unsync());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(hyper::header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // A segment's bytes never change once published.
    headers.insert(hyper::header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
    if let Some(v) = content_range.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(hyper::header::CONTENT_RANGE, v);
    }
    response
}

/// A `Range` header, judged against a resource of `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RangeRequest {
    /// Serve the whole resource (multiple ranges or unknown units: allowed by RFC 9110).
    Ignore,
    /// No byte of the range exists.
    Unsatisfiable,
    /// Bytes `start..end`.
    Range(usize, usize),
}

fn parse_range(header: &str, len: usize) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Ignore;
    };
    if spec.contains(',') {
        return RangeRequest::Ignore;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Ignore;
    };
    let parse = |s: &str| s.trim().parse::<usize>().ok();
    match (first.trim().is_empty(), parse(first), parse(last)) {
        // bytes=-N: the last N bytes.
        (true, _, Some(suffix)) if suffix > 0 && len > 0 => RangeRequest::Range(len - suffix.min(len), len),
        (true, _, _) => RangeRequest::Unsatisfiable,
        (false, Some(start), _) if start >= len => RangeRequest::Unsatisfiable,
        (false, Some(start), None) if last.trim().is_empty() => RangeRequest::Range(start, len),
        (false, Some(start), Some(end)) if end >= start => RangeRequest::Range(start, end.min(len - 1) + 1),
        _ => RangeRequest::Ignore,
    }
}

/// A live channel whose newest segment is older than this many target durations has lost its
/// origin: the box has served its buffered window and now says so with a 503.
const STALE_TARGET_DURATIONS: u32 = 4;

/// Waits (bounded) until `channel` has a complete segment; its window, or a response to
/// answer instead (503 while cold, or when a live channel has stopped arriving).
async fn first_window<B: Backend>(
    backend: &B,
    channel: shoal_core::ChannelId,
) -> Result<Window, Response<Body>> {
    let deadline = std::time::Instant::now() + COLD_START_WAIT;
    loop {
        let Some(window) = backend.window(channel).await else {
            return Err(error(StatusCode::SERVICE_UNAVAILABLE, "the box is shutting down"));
        };
        if let (Some(last), Some(age)) = (window.segments.last(), window.newest_age) {
            let target = target_duration(&window.segments);
            if !last.vod && age > Duration::from_secs(target) * STALE_TARGET_DURATIONS {
                let mut response = error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!(
                        "the channel's origin is not delivering: no new segment for {} s",
                        age.as_secs()
                    ),
                );
                response.headers_mut().insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("5"));
                return Err(response);
            }
            return Ok(window);
        }
        if std::time::Instant::now() >= deadline {
            let mut response =
                error(StatusCode::SERVICE_UNAVAILABLE, "the channel is starting; no segment yet");
            response.headers_mut().insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("2"));
            return Err(response);
        }
        // Short: a cold channel's first segment is served within a poll of its arrival.
        Timer::after(COLD_START_POLL).await;
    }
}

/// How often a request for a cold channel looks for its first segment.
const COLD_START_POLL: Duration = Duration::from_millis(20);

/// A `/ts` client that has not taken the next segment within this long is dropped, rather than
/// having segments kept for it.
const TS_STALL: Duration = Duration::from_secs(10);

/// `/ts/<channel>`: one continuous MPEG-TS stream, starting with the second-newest complete
/// segment (every segment starts with PAT, PMT and a keyframe; two segments give a player
/// the few seconds it analyses before its first frame at once) and going on with each next
/// segment as the swarm completes it. The body is produced only as fast as the client reads, one segment
/// at a time; a client that falls out of the window (or a channel that stops) ends the stream.
async fn ts<B: Backend>(backend: Arc<B>, id: &str) -> Response<Body> {
    let Some(listing) = backend.lineup().iter().find(|c| c.id == id) else {
        return error(StatusCode::NOT_FOUND, "no such channel");
    };
    let channel = listing.channel;
    backend.viewer(channel).await;
    let window = match first_window(&*backend, channel).await {
        Ok(window) => window,
        Err(response) => return response,
    };
    if window.segments.iter().any(|s| s.init_len > 0) {
        return error(StatusCode::NOT_FOUND, "the channel is fragmented MP4, not MPEG-TS: play it from /hls");
    }
    let second_newest = window.segments.len().saturating_sub(2);
    let start = window.segments.get(second_newest).map_or(0, |s| s.seq);
    let frames = smol::stream::unfold((backend, start), move |(backend, seq)| async move {
        let deadline = std::time::Instant::now() + TS_STALL;
        loop {
            backend.viewer(channel).await;
            if let Some(segment) = backend.segment(channel, seq).await {
                backend.served(segment.bytes.len());
                let frame = hyper::body::Frame::data(segment.bytes);
                return Some((Ok::<_, std::convert::Infallible>(frame), (backend, seq + 1)));
            }
            let window = backend.window(channel).await?;
            if window.segments.first().is_some_and(|s| s.seq > seq) {
                log::info!("a /ts client of channel {channel} fell behind the live window; dropping it");
                return None;
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            Timer::after(Duration::from_millis(100)).await;
        }
    });
    let mut response = Response::new(http_body_util::StreamBody::new(frames).boxed_unsync());
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("video/mp2t"));
    response.headers_mut().insert(hyper::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn target_duration(window: &[WindowSegment]) -> u64 {
    window.iter().map(|s| s.duration.as_secs_f64().round() as u64).max().unwrap_or(1).max(1)
}

/// A media playlist over `window` (oldest first, not empty): a sliding live window, or an
/// on-demand asset (`EVENT` while it is still arriving, `VOD` with `ENDLIST` once whole).
pub fn media_playlist(window: &[WindowSegment]) -> String {
    // RFC 8216 §4.3.3.1: EXTINF rounded to the nearest integer must not exceed it.
    let target = target_duration(window);
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

fn text(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert(hyper::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let body = serde_json::to_vec_pretty(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, reason: &str) -> Response<Body> {
    json_response(status, &json!({ "error": reason }))
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

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range("bytes=0-99", 1000), RangeRequest::Range(0, 100));
        assert_eq!(parse_range("bytes=900-", 1000), RangeRequest::Range(900, 1000));
        assert_eq!(parse_range("bytes=-100", 1000), RangeRequest::Range(900, 1000));
        assert_eq!(parse_range("bytes=-5000", 1000), RangeRequest::Range(0, 1000));
        assert_eq!(parse_range("bytes=500-99999", 1000), RangeRequest::Range(500, 1000));
        assert_eq!(parse_range("bytes=1000-", 1000), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-2", 1000), RangeRequest::Ignore);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), RangeRequest::Ignore);
        assert_eq!(parse_range("items=0-1", 1000), RangeRequest::Ignore);
    }
}
