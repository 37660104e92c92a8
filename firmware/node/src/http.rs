//! The box's HTTP server (hyper on smol): `/api/status` now; playlists and streams for TVs come
//! in later issues as more routes in [`route`].
//!
//! Bounded like everything facing the network: at most `max_clients` connections at once (more
//! wait in the kernel's accept queue), a header read timeout, HTTP/1.1 only, and handlers that
//! answer from bounded data.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
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

/// What handlers need from the rest of the daemon.
pub trait Backend: Send + Sync + 'static {
    /// The status report, or `None` if the box is shutting down.
    fn status(&self) -> impl std::future::Future<Output = Option<Value>> + Send;
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
                async move { Ok::<_, std::convert::Infallible>(route(&*backend, request, peer).await) }
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

/// Dispatches one request.
async fn route<B: Backend>(
    backend: &B,
    request: Request<Incoming>,
    _peer: SocketAddr,
) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return error(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are supported");
    }
    let response = match request.uri().path() {
        "/api/status" => {
            let status = smol::future::or(backend.status(), async {
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

fn json_response(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec_pretty(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, reason: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({ "error": reason }))
}
