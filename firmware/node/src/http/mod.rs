//! The box's HTTP server (hyper on smol): the lineup (`/playlist.m3u`), live HLS per channel
//! (`/hls/<channel>/index.m3u8` and its segments), continuous MPEG-TS (`/ts/<channel>`),
//! udpxy-style relay URLs (`/udp/<group>:<port>`, `/rtp/…`), the dashboard, `/api/status`,
//! `/api/swarm` and `/metrics`. Routes live in [`route`]; what TVs get is in [`tv`], byte
//! ranges in [`range`], the operator's API in [`api`].
//!
//! The server knows the rest of the box only through [`Backend`], in the vocabulary of
//! [`crate::model`] and [`crate::lineup`]: it never names the swarm driver or a source.
//!
//! Bounded like everything facing the network: at most `max_clients` connections at once (more
//! wait in the kernel's accept queue), 16 KiB and 10 s for request headers, a client that stops
//! reading dropped after 30 s ([`stall`]), HTTP/1.1 only, and handlers that answer from bounded
//! data.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use shoal_core::ChannelId;
use smol::lock::Semaphore;
use smol::net::TcpListener;
use smol::Timer;
use smol_hyper::rt::{FuturesIo, SmolTimer};

use crate::lineup::{Channel, Encapsulation};
use crate::model::status::{Status, SwarmReport};
use crate::model::{Guide, StoredSegment, Watch, Window};

mod api;
mod dashboard;
mod range;
mod stall;
mod tv;

use stall::StallGuard;
pub use tv::media_playlist;
use tv::{hls, lineup, object, relay, ts, xmltv};

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What handlers need from the rest of the daemon.
pub trait Backend: Send + Sync + 'static {
    /// The status report, or `None` if the box is shutting down.
    fn status(&self) -> impl Future<Output = Option<Status>> + Send;
    /// The lineup TVs are offered (`/playlist.m3u`, `/hls/<id>/`).
    fn lineup(&self) -> &[Channel];
    /// The channel's window as last published (complete segments, oldest first); `None` before
    /// the first.
    fn window(&self, channel: ChannelId) -> Option<Arc<Window>>;
    /// Resolves at the next change of any window or live feed. Take it before looking at what
    /// it is to wait for.
    fn changed(&self) -> impl Future<Output = ()> + Send + 'static;
    /// A complete segment.
    fn segment(&self, channel: ChannelId, seq: u64) -> impl Future<Output = Option<StoredSegment>> + Send;
    /// A TV at `client` is watching `channel`, from segments or from the live feed.
    fn viewer(
        &self,
        channel: ChannelId,
        client: std::net::IpAddr,
        watch: Watch,
    ) -> impl Future<Output = ()> + Send;
    /// The stream of `channel` as this box receives it (a UDP/RTP feed it ingests), if it does.
    fn live(&self, channel: ChannelId) -> Option<smol::channel::Receiver<Bytes>>;
    /// An object of the disk tier by its content id (64 hex digits), verified, for a peer.
    fn object(&self, id: &str) -> impl Future<Output = Option<Bytes>> + Send;
    /// Counts bytes of `channel`'s segments sent to TVs.
    fn served(&self, channel: ChannelId, bytes: usize);
    /// The swarm report (this box and what its peers answered), or `None` when shutting down.
    fn swarm(&self) -> impl Future<Output = Option<SwarmReport>> + Send;
    /// Whether a client at `client` may take admin actions.
    fn is_admin(&self, client: std::net::IpAddr) -> bool;
    /// Which networks may, for the 403 message.
    fn admin_networks(&self) -> String;
    /// Takes an admin action; its result as JSON, or why it failed.
    fn admin(&self, action: AdminAction) -> impl Future<Output = Result<Value, String>> + Send;
    /// The channel carrying the feed a relay URL names (`rest` follows `/udp/` or `/rtp/`),
    /// added to the lineup if need be; or the status and reason to refuse it with.
    fn relay(
        &self,
        encapsulation: Encapsulation,
        rest: &str,
    ) -> impl Future<Output = Result<ChannelId, (StatusCode, String)>> + Send;
    /// Whether a guide is configured.
    fn has_guide(&self) -> bool;
    /// The XMLTV guide: `None` when none is configured, `Some(Err)` when it cannot be had.
    fn xmltv(&self) -> impl Future<Output = Option<Result<Guide, String>>> + Send;
}

/// What an operator may ask a box to do (`POST /api/<action>`), from the admin networks only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminAction {
    /// Blink the status LED (and flag the box on the dashboard) so a technician finds it.
    Identify,
    /// Re-read the config, as SIGHUP does.
    Reload,
    /// Lift every ban on a peer.
    LiftBans,
    /// Bring an on-demand channel's asset onto the LAN (`shoal prefill`).
    Prefill {
        /// The channel's URL id.
        channel: String,
        /// Also keep the whole asset on this box.
        full: bool,
    },
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
pub(crate) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// Longest request target (path and query) answered; longer ones get 414. Only the prefill
/// action reads a query (`?full`), and a TV's URL is short.
const MAX_TARGET: usize = 2048;

/// Dispatches one request. Every path is matched exactly or parsed into a channel id from the
/// lineup and a number, or (`/cache/`) into a 64-hex-digit content id that the disk tier maps to
/// its own file name: no request names a file, so there is no path to traverse.
async fn route<B: Backend>(backend: Arc<B>, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let backend_ref = &*backend;
    let target_len = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target_len > MAX_TARGET {
        return error(StatusCode::URI_TOO_LONG, "the request target is longer than 2048 bytes");
    }
    let path = request.uri().path();
    let client = peer.ip();
    if let Some(action) = path.strip_prefix("/api/").and_then(|p| api::admin_action(p, request.uri().query()))
    {
        return api::admin(backend_ref, &request, action, client).await;
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are supported here");
        response.headers_mut().insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if let Some(rest) = path.strip_prefix("/hls/") {
        let head = request.method() == Method::HEAD;
        return hls(backend_ref, rest, client, request.headers().get(hyper::header::RANGE), head).await;
    }
    if let Some(id) = path.strip_prefix("/cache/") {
        return object(backend_ref, id, request.headers().get(hyper::header::RANGE)).await;
    }
    if let Some(id) = path.strip_prefix("/ts/") {
        return ts(backend.clone(), id, client).await;
    }
    for (prefix, encapsulation) in [("/udp/", Encapsulation::Udp), ("/rtp/", Encapsulation::Rtp)] {
        if let Some(rest) = path.strip_prefix(prefix) {
            return relay(backend.clone(), encapsulation, rest, client).await;
        }
    }
    if let Some(name) = path.strip_prefix("/dashboard/") {
        return match dashboard::asset(name) {
            Some((bytes, content_type)) => {
                let mut response = text(StatusCode::OK, content_type, bytes.to_vec());
                response
                    .headers_mut()
                    .insert(hyper::header::CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
                response
            }
            None => error(StatusCode::NOT_FOUND, "no such asset"),
        };
    }
    // hyper leaves out the body of a HEAD response itself, keeping its length headers.
    match path {
        "/" => api::dashboard(backend_ref).await,
        "/playlist.m3u" => lineup(backend_ref, &request),
        "/xmltv" => xmltv(backend_ref).await,
        "/api/status" => api::status(backend_ref).await,
        "/api/swarm" => api::swarm(backend_ref).await,
        "/metrics" => api::metrics(backend_ref, request.headers().get(hyper::header::ACCEPT)).await,
        _ => error(StatusCode::NOT_FOUND, "no such resource"),
    }
}

pub(crate) fn text(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert(hyper::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub(crate) fn json_response<T: serde::Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_vec_pretty(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub(crate) fn error(status: StatusCode, reason: &str) -> Response<Body> {
    json_response(status, &json!({ "error": reason }))
}
