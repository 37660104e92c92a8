//! The box's HTTP server (hyper on smol): the lineup (`/playlist.m3u`), live HLS per channel
//! (`/hls/<channel>/index.m3u8` and its segments), continuous MPEG-TS (`/ts/<channel>`) and
//! `/api/status`. Routes live in [`route`].
//!
//! Bounded like everything facing the network: at most `max_clients` connections at once (more
//! wait in the kernel's accept queue), a header read timeout, HTTP/1.1 only, and handlers that
//! answer from bounded data.

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
    /// The channel's live window (complete segments, oldest first), or `None` when shutting down.
    fn window(
        &self,
        channel: shoal_core::ChannelId,
    ) -> impl std::future::Future<Output = Option<Vec<crate::swarm::WindowSegment>>> + Send;
    /// A complete segment's bytes.
    fn segment(
        &self,
        channel: shoal_core::ChannelId,
        seq: u64,
    ) -> impl std::future::Future<Output = Option<Vec<u8>>> + Send;
    /// A TV is watching `channel`.
    fn viewer(&self, channel: shoal_core::ChannelId) -> impl std::future::Future<Output = ()> + Send;
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
                .serve_connection(FuturesIo::new(stream), service);
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

/// Dispatches one request.
async fn route<B: Backend>(backend: Arc<B>, request: Request<Incoming>, _peer: SocketAddr) -> Response<Body> {
    let backend_ref = &*backend;
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return error(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are supported");
    }
    let path = request.uri().path();
    if path == "/playlist.m3u" {
        return lineup(backend_ref, &request);
    }
    if let Some(rest) = path.strip_prefix("/hls/") {
        return hls(backend_ref, rest).await;
    }
    if let Some(id) = path.strip_prefix("/ts/") {
        return ts(backend.clone(), id).await;
    }
    let response = match path {
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
    };
    // hyper leaves out the body of a HEAD response itself, keeping its length headers.
    response
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
    let mut m3u = String::from("#EXTM3U\n");
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

/// `/hls/<channel>/index.m3u8` and `/hls/<channel>/<seq>.ts`.
async fn hls<B: Backend>(backend: &B, rest: &str) -> Response<Body> {
    let Some((id, file)) = rest.split_once('/') else {
        return error(StatusCode::NOT_FOUND, "no such resource");
    };
    let Some(listing) = backend.lineup().iter().find(|c| c.id == id) else {
        return error(StatusCode::NOT_FOUND, "no such channel");
    };
    let channel = listing.channel;
    backend.viewer(channel).await;
    if file == "index.m3u8" {
        return match first_window(backend, channel).await {
            Ok(window) => {
                text(StatusCode::OK, "application/vnd.apple.mpegurl", media_playlist(&window).into_bytes())
            }
            Err(response) => response,
        };
    }
    let Some(seq) = file.strip_suffix(".ts").and_then(|s| s.parse::<u64>().ok()) else {
        return error(StatusCode::NOT_FOUND, "no such resource");
    };
    match backend.segment(channel, seq).await {
        Some(bytes) => text(StatusCode::OK, "video/mp2t", bytes),
        None => error(StatusCode::NOT_FOUND, "segment not held (outside the live window)"),
    }
}

/// Waits (bounded) until `channel` has a complete segment; its live window, or a 503 to answer.
async fn first_window<B: Backend>(
    backend: &B,
    channel: shoal_core::ChannelId,
) -> Result<Vec<crate::swarm::WindowSegment>, Response<Body>> {
    let deadline = std::time::Instant::now() + COLD_START_WAIT;
    loop {
        let Some(window) = backend.window(channel).await else {
            return Err(error(StatusCode::SERVICE_UNAVAILABLE, "the box is shutting down"));
        };
        if !window.is_empty() {
            return Ok(window);
        }
        if std::time::Instant::now() >= deadline {
            let mut response =
                error(StatusCode::SERVICE_UNAVAILABLE, "the channel is starting; no segment yet");
            response.headers_mut().insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("2"));
            return Err(response);
        }
        Timer::after(Duration::from_millis(200)).await;
    }
}

/// A `/ts` client that has not taken the next segment within this long is dropped, rather than
/// having segments kept for it.
const TS_STALL: Duration = Duration::from_secs(10);

/// `/ts/<channel>`: one continuous MPEG-TS stream, starting with the newest complete segment
/// (every segment starts with PAT, PMT and a keyframe) and going on with each next segment as
/// the swarm completes it. The body is produced only as fast as the client reads, one segment
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
    let start = window.last().map_or(0, |s| s.seq);
    let frames = smol::stream::unfold((backend, start), move |(backend, seq)| async move {
        let deadline = std::time::Instant::now() + TS_STALL;
        loop {
            backend.viewer(channel).await;
            if let Some(bytes) = backend.segment(channel, seq).await {
                let frame = hyper::body::Frame::data(Bytes::from(bytes));
                return Some((Ok::<_, std::convert::Infallible>(frame), (backend, seq + 1)));
            }
            let window = backend.window(channel).await?;
            if window.first().is_some_and(|s| s.seq > seq) {
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

/// A live media playlist over `window` (oldest first, not empty).
pub fn media_playlist(window: &[crate::swarm::WindowSegment]) -> String {
    let target = window.iter().map(|s| s.duration.as_secs_f64().ceil() as u64).max().unwrap_or(1).max(1);
    let first = window.first().map_or(0, |s| s.seq);
    let mut out =
        format!("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{first}\n");
    for (i, s) in window.iter().enumerate() {
        // A gap in the numbers is a discontinuity too: the stream jumps.
        let gap = i > 0 && window[i - 1].seq + 1 != s.seq;
        if s.discontinuity || gap {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        out.push_str(&format!("#EXTINF:{:.3},\n{}.ts\n", s.duration.as_secs_f64(), s.seq));
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
    use crate::swarm::WindowSegment;

    #[test]
    fn media_playlist_marks_discontinuities_and_numbers() {
        let seg =
            |seq, discontinuity| WindowSegment { seq, duration: Duration::from_millis(2020), discontinuity };
        let playlist = media_playlist(&[seg(10, false), seg(11, true), seg(13, false)]);
        assert_eq!(
            playlist,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:10\n\
             #EXTINF:2.020,\n10.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2.020,\n11.ts\n\
             #EXT-X-DISCONTINUITY\n#EXTINF:2.020,\n13.ts\n"
        );
    }
}
