//! A small HTTP/1.1 client for origins: GET over plain TCP or TLS (rustls with ring), one
//! reusable connection per [`Session`], redirects, a deadline on every request and a cap on
//! every body.
//!
//! A body is accepted only whole: hyper fails a body that ends before its `Content-Length`,
//! and [`Session::get`] also checks the length it got against the header (and against a
//! requested byte range), so a segment cut short by the origin or the network is an error
//! here and is never published.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_rustls::TlsConnector;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use smol::future::FutureExt;
use smol::net::TcpStream;
use smol::{Task, Timer};
use smol_hyper::rt::FuturesIo;

use crate::lineup::url::{OriginUrl, Scheme, UrlError};

/// Redirects followed per request.
const MAX_REDIRECTS: usize = 5;
/// `User-Agent` sent to origins.
const USER_AGENT: &str = concat!("shoal/", env!("CARGO_PKG_VERSION"));

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL (or a redirect's `Location`) is unusable.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// No TCP connection.
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    /// The TLS handshake failed (certificate, protocol).
    #[error("TLS with {0}: {1}")]
    Tls(String, std::io::Error),
    /// The request did not complete in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The origin answered with an error status.
    #[error("HTTP status {0}")]
    Status(u16),
    /// More bytes than the caller accepts.
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    /// The body ended early or its length disagrees with the headers.
    #[error("truncated body: {0}")]
    Truncated(String),
    /// The connection broke or the origin spoke bad HTTP.
    #[error("HTTP: {0}")]
    Http(String),
    /// Too many redirects.
    #[error("more than {MAX_REDIRECTS} redirects")]
    Redirects,
}

impl FetchError {
    /// Whether trying again may help (network trouble, overload), as opposed to an answer that
    /// will not change (not found, forbidden, too large, bad URL).
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Connect(..)
            | FetchError::Timeout(_)
            | FetchError::Truncated(_)
            | FetchError::Http(_)
            | FetchError::Tls(..) => true,
            FetchError::Status(s) => *s == 408 || *s == 429 || *s >= 500,
            FetchError::Url(_) | FetchError::TooLarge(_) | FetchError::Redirects => false,
        }
    }
}

/// Why the TLS trust store could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The CA file could not be read or holds no certificate.
    #[error("origin CA file {path}: {why}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// What every session shares: TLS trust and the time limits.
#[derive(Clone)]
pub struct Fetcher {
    tls: TlsConnector,
    /// Deadline for one request: connect, headers and whole body.
    timeout: Duration,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl Fetcher {
    /// A fetcher trusting Mozilla's roots (built in) plus the certificates in `ca_file` (PEM).
    pub fn new(ca_file: Option<&Path>, timeout: Duration) -> Result<Fetcher, TrustError> {
        let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if let Some(path) = ca_file {
            let error = |why: String| TrustError::CaFile { path: path.display().to_string(), why };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| error(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| error(e.to_string()))?;
            if certs.is_empty() {
                return Err(error("no PEM certificate in it".to_owned()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| error(e.to_string()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Fetcher { tls: TlsConnector::from(Arc::new(config)), timeout })
    }

    /// A session: sequential requests reusing one connection.
    pub fn session(&self) -> Session {
        Session { fetcher: self.clone(), connection: None, traffic: Traffic::default() }
    }
}

/// A fetched body.
#[derive(Debug)]
pub struct Fetched {
    /// Where it finally came from (after redirects): relative references resolve against it.
    pub url: OriginUrl,
    /// The body, complete.
    pub bytes: Vec<u8>,
}

/// The body of a continuous response, read as it arrives.
pub struct BodyStream {
    body: hyper::body::Incoming,
    /// Keeps the connection's driver alive while the body is read.
    _connection: Option<Connection>,
}

impl BodyStream {
    /// The next piece of the body; `Ok(None)` when the origin ended it. Nothing arriving within
    /// `idle` is an error: a live stream that stalls is as good as broken.
    pub async fn next(&mut self, idle: Duration) -> Result<Option<Bytes>, FetchError> {
        let read = async {
            loop {
                match self.body.frame().await {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(FetchError::Truncated(e.to_string())),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            if !data.is_empty() {
                                return Ok(Some(data));
                            }
                        }
                    }
                }
            }
        };
        read.or(async {
            Timer::after(idle).await;
            Err(FetchError::Timeout(idle))
        })
        .await
    }
}

struct Connection {
    scheme: Scheme,
    authority: (String, u16),
    sender: SendRequest<Empty<Bytes>>,
    /// Drives the connection; dropping it closes the connection.
    _driver: Task<()>,
}

/// Requests to origins, one at a time, keeping the last connection open for the next.
pub struct Session {
    fetcher: Fetcher,
    connection: Option<Connection>,
    traffic: Traffic,
}

/// What a session asked of its servers: every request sent (redirects, errors, retries and
/// truncated answers too) and every body byte received, as the server's own access log counts
/// them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// HTTP requests sent.
    pub requests: u64,
    /// Body bytes received (of error answers and cut-off bodies too).
    pub bytes: u64,
}

/// Most bytes of an error or redirect answer read (and counted) before the connection is
/// dropped: error pages are small, and reading them keeps the count equal to the server's.
const MAX_ERROR_BODY: usize = 64 * 1024;

impl Session {
    /// What this session has asked so far, and zero from now on: the caller's share since it
    /// last took it.
    pub fn take_traffic(&mut self) -> Traffic {
        std::mem::take(&mut self.traffic)
    }

    /// GETs `url` (the bytes `range` = (offset, length) of it, if given), following redirects,
    /// within the fetcher's deadline; a body over `max_len` bytes is refused.
    pub async fn get(
        &mut self,
        url: &OriginUrl,
        range: Option<(u64, u64)>,
        max_len: usize,
    ) -> Result<Fetched, FetchError> {
        self.call(hyper::Method::GET, url, range, max_len).await
    }

    /// POSTs an empty body to `url` (an admin action of a box) and reads the answer, as
    /// [`Session::get`] does.
    pub async fn post(&mut self, url: &OriginUrl, max_len: usize) -> Result<Fetched, FetchError> {
        self.call(hyper::Method::POST, url, None, max_len).await
    }

    async fn call(
        &mut self,
        method: hyper::Method,
        url: &OriginUrl,
        range: Option<(u64, u64)>,
        max_len: usize,
    ) -> Result<Fetched, FetchError> {
        let timeout = self.fetcher.timeout;
        let result = self.get_following(method, url, range, max_len).or(async {
            Timer::after(timeout).await;
            Err(FetchError::Timeout(timeout))
        });
        let result = result.await;
        if result.is_err() {
            // The connection may be mid-response: never reuse it.
            self.connection = None;
        }
        result
    }

    async fn get_following(
        &mut self,
        method: hyper::Method,
        url: &OriginUrl,
        range: Option<(u64, u64)>,
        max_len: usize,
    ) -> Result<Fetched, FetchError> {
        let (url, response) = self.request(method, url, range).await?;
        let declared: Option<usize> = response
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        if declared.is_some_and(|d| d > max_len) {
            self.connection = None;
            return Err(FetchError::TooLarge(max_len));
        }
        let bytes = self.read_body(response.into_body(), max_len).await?;
        if let Some(d) = declared.filter(|&d| d != bytes.len()) {
            return Err(FetchError::Truncated(format!("{} of {d} bytes", bytes.len())));
        }
        if let Some((_, length)) = range.filter(|&(_, l)| l != bytes.len() as u64) {
            return Err(FetchError::Truncated(format!("{} bytes of a {length}-byte range", bytes.len())));
        }
        Ok(Fetched { url, bytes })
    }

    /// Reads a body of at most `max_len` bytes, counting what arrives even when it is cut off.
    async fn read_body(
        &mut self,
        mut body: hyper::body::Incoming,
        max_len: usize,
    ) -> Result<Vec<u8>, FetchError> {
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| FetchError::Truncated(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                self.traffic.bytes += data.len() as u64;
                if bytes.len() + data.len() > max_len {
                    return Err(FetchError::TooLarge(max_len));
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok(bytes)
    }

    /// Reads (and counts) what is left of an answer that will not be used, up to
    /// [`MAX_ERROR_BODY`]; the connection is dropped afterwards either way.
    async fn discard_body(&mut self, response: hyper::Response<hyper::body::Incoming>) {
        let _ = self.read_body(response.into_body(), MAX_ERROR_BODY).await;
    }

    /// Opens a continuous stream (HTTP-TS): the response to a GET of `url`, following
    /// redirects, whose body is then read piece by piece as the origin sends it. Connecting and
    /// the headers must come within the fetcher's deadline; each read has its own
    /// (see [`BodyStream::next`]). The stream has its own connection.
    pub async fn stream(&mut self, url: &OriginUrl) -> Result<BodyStream, FetchError> {
        let timeout = self.fetcher.timeout;
        let opened = self.request(hyper::Method::GET, url, None).or(async {
            Timer::after(timeout).await;
            Err(FetchError::Timeout(timeout))
        });
        let result = opened.await;
        // The connection now carries an endless body: never reuse it for another request.
        let connection = self.connection.take();
        let (_, response) = result?;
        Ok(BodyStream { body: response.into_body(), _connection: connection })
    }

    /// Sends `method` for `url` and follows redirects; the final URL and the `200` (or `206` for a
    /// range) response, its body unread.
    async fn request(
        &mut self,
        method: hyper::Method,
        url: &OriginUrl,
        range: Option<(u64, u64)>,
    ) -> Result<(OriginUrl, hyper::Response<hyper::body::Incoming>), FetchError> {
        let mut url = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let sender = self.connect(&url).await?;
            let mut request = Request::builder()
                .method(method.clone())
                .uri(url.path_and_query.as_str())
                .header(hyper::header::HOST, url.authority())
                .header(hyper::header::USER_AGENT, USER_AGENT)
                .header(hyper::header::ACCEPT_ENCODING, "identity");
            if let Some((offset, length)) = range {
                let last = offset + length.saturating_sub(1);
                request = request.header(hyper::header::RANGE, format!("bytes={offset}-{last}"));
            }
            let request = request.body(Empty::new()).map_err(|e| FetchError::Http(e.to_string()))?;
            let response = sender.send_request(request).await;
            // Sent, whatever came back (the server logs it even when the answer breaks off).
            self.traffic.requests += 1;
            let response = response.map_err(|e| FetchError::Http(e.to_string()))?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(hyper::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or(FetchError::Status(status.as_u16()))?;
                let location = location.to_owned();
                // Read (and count) the redirect's short body, then drop the connection: the
                // redirect may leave its host.
                self.discard_body(response).await;
                url = url.join(&location)?;
                self.connection = None;
                continue;
            }
            let expected_status = if range.is_some() { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
            if status != expected_status {
                self.discard_body(response).await;
                self.connection = None;
                return Err(FetchError::Status(status.as_u16()));
            }
            return Ok((url, response));
        }
        Err(FetchError::Redirects)
    }

    /// A ready sender to `url`'s origin, reusing the open connection when it goes there.
    async fn connect(&mut self, url: &OriginUrl) -> Result<&mut SendRequest<Empty<Bytes>>, FetchError> {
        let authority = (url.host.clone(), url.port);
        let reusable = self
            .connection
            .as_ref()
            .is_some_and(|c| c.scheme == url.scheme && c.authority == authority && !c.sender.is_closed());
        if reusable {
            let connection = self.connection.as_mut().expect("checked above");
            if connection.sender.ready().await.is_ok() {
                return Ok(&mut self.connection.as_mut().expect("checked above").sender);
            }
        }
        self.connection = None;
        let name = url.authority();
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| FetchError::Connect(name.clone(), e))?;
        let _ = tcp.set_nodelay(true);
        let (sender, driver) = match url.scheme {
            Scheme::Http => handshake(tcp).await?,
            Scheme::Https => {
                let server_name = ServerName::try_from(url.host.clone())
                    .map_err(|_| FetchError::Url(UrlError::Malformed(url.host.clone())))?;
                let tls = self
                    .fetcher
                    .tls
                    .connect(server_name, tcp)
                    .await
                    .map_err(|e| FetchError::Tls(name.clone(), e))?;
                handshake(tls).await?
            }
        };
        let connection =
            self.connection.insert(Connection { scheme: url.scheme, authority, sender, _driver: driver });
        Ok(&mut connection.sender)
    }
}

async fn handshake<T>(io: T) -> Result<(SendRequest<Empty<Bytes>>, Task<()>), FetchError>
where
    T: smol::io::AsyncRead + smol::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(64 * 1024)
        .handshake(FuturesIo::new(io))
        .await
        .map_err(|e| FetchError::Http(e.to_string()))?;
    let driver = smol::spawn(async move {
        if let Err(e) = connection.await {
            log::debug!("origin connection: {e}");
        }
    });
    Ok((sender, driver))
}
