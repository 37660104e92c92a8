//! The XMLTV programme guide, passed through at `/xmltv` from the configured URL.
//!
//! Fetched on first request and then at most once an hour; while the source fails, TVs get the
//! last good copy, and only with none at all an error. Failures are not retried more than every
//! 30 s, so TVs polling a dead guide do not become a storm at its server.

use std::time::{Duration, Instant};

use hyper::body::Bytes;
use smol::lock::Mutex;

use crate::lineup::OriginUrl;
use crate::model::Guide;
use crate::origin::Fetcher;

/// How long a fetched guide is served before it is fetched again.
const REFRESH: Duration = Duration::from_secs(3600);
/// How long after a failure the next attempt waits.
const RETRY: Duration = Duration::from_secs(30);
/// Largest guide accepted (a week of 64 channels is a few MiB).
pub const MAX_GUIDE_LEN: usize = 16 * 1024 * 1024;

/// A cached, self-refreshing guide.
pub struct GuideCache {
    url: OriginUrl,
    fetcher: Fetcher,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    guide: Option<(Instant, Guide)>,
    failure: Option<(Instant, String)>,
}

impl GuideCache {
    /// A cache of the guide at `url`; nothing is fetched until asked.
    pub fn new(url: OriginUrl, fetcher: Fetcher) -> GuideCache {
        GuideCache { url, fetcher, state: Mutex::new(State::default()) }
    }

    /// The guide: cached, freshly fetched, or the last good copy when the source fails.
    pub async fn get(&self) -> Result<Guide, String> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        if let Some((at, guide)) = &state.guide {
            if now.duration_since(*at) < REFRESH {
                return Ok(guide.clone());
            }
        }
        if let Some((at, why)) = &state.failure {
            if now.duration_since(*at) < RETRY {
                return state.guide.as_ref().map(|(_, g)| g.clone()).ok_or_else(|| why.clone());
            }
        }
        match self.fetcher.session().get(&self.url, None, MAX_GUIDE_LEN).await {
            Ok(fetched) => {
                let content_type = if fetched.bytes.starts_with(&[0x1f, 0x8b]) {
                    "application/gzip"
                } else {
                    "application/xml"
                };
                let guide = Guide { bytes: Bytes::from(fetched.bytes), content_type };
                state.guide = Some((now, guide.clone()));
                state.failure = None;
                Ok(guide)
            }
            Err(e) => {
                let why = format!("{}: {e}", self.url);
                log::warn!("XMLTV guide {why}");
                state.failure = Some((now, why.clone()));
                state.guide.as_ref().map(|(_, g)| g.clone()).ok_or(why)
            }
        }
    }
}
