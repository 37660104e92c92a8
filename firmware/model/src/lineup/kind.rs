//! What a channel's `source` names ([`SourceKind`]), parsed once when the lineup is loaded:
//! `http(s)://` HLS origins or HTTP-TS streams, `udp://`/`rtp://` feeds, `file://` TS files,
//! `builtin:testcard` and `test://pattern`.

use std::time::Duration;

use sha2::{Digest, Sha256};
use shoal_core::ChannelId;

use super::input::{FileInput, InputError, TsInput, UdpInput};
use super::url::{OriginUrl, UrlError};

/// A parsed `test://pattern` URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestPattern {
    /// Bits per second.
    pub bitrate: u64,
    /// Segment duration.
    pub duration: Duration,
}

/// Why a source URL cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SourceError {
    /// A scheme this build cannot fetch.
    #[error(
        "unsupported source `{0}` (this build takes http(s):// HLS or HTTP-TS, udp://, rtp://, file://, builtin:testcard and test://pattern)"
    )]
    Unsupported(String),
    /// An http(s) URL that cannot be used.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// A udp://, rtp:// or file:// URL that cannot be used.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A malformed parameter.
    #[error("bad source parameter in `{0}`: bitrate must be 1000..=100000000 and duration 1..=60 s")]
    BadParameter(String),
}

/// What an `http(s)://` source serves: an HLS playlist, or one continuous MPEG-TS stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpFormat {
    /// A master or media playlist.
    Hls,
    /// Continuous MPEG-TS (HTTP-TS), as encoders and udpxy serve it.
    Ts,
}

impl HttpFormat {
    /// `hls` or `ts`.
    pub fn parse(text: &str) -> Option<HttpFormat> {
        match text {
            "hls" => Some(HttpFormat::Hls),
            "ts" => Some(HttpFormat::Ts),
            _ => None,
        }
    }

    /// The format an `http(s)://` URL without a `format` most likely serves: TS when its path
    /// ends like a TS file or names a udpxy relay, HLS otherwise.
    fn guess(url: &OriginUrl) -> HttpFormat {
        let path = url.path_and_query.split('?').next().unwrap_or("").to_ascii_lowercase();
        let ts = [".ts", ".mpg", ".mpeg", ".m2ts", ".mts"].iter().any(|e| path.ends_with(e))
            || path.starts_with("/udp/")
            || path.starts_with("/rtp/");
        if ts {
            HttpFormat::Ts
        } else {
            HttpFormat::Hls
        }
    }
}

/// What a channel's `source` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// An HLS origin: a master or media playlist over HTTP or HTTPS.
    Hls(OriginUrl),
    /// A broadcast-style MPEG-TS feed: UDP, RTP, HTTP-TS or a file.
    Ts(TsInput),
    /// The built-in test card.
    TestCard,
    /// The synthetic test pattern.
    TestPattern(TestPattern),
}

impl SourceKind {
    /// Parses a channel's `source`; `format` says what an `http(s)://` URL serves.
    pub fn parse(source: &str, format: Option<HttpFormat>) -> Result<SourceKind, SourceError> {
        let lower = source.get(..8).unwrap_or(source).to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let url = OriginUrl::parse(source)?;
            return Ok(match format.unwrap_or_else(|| HttpFormat::guess(&url)) {
                HttpFormat::Hls => SourceKind::Hls(url),
                HttpFormat::Ts => SourceKind::Ts(TsInput::Http(url)),
            });
        }
        if lower.starts_with("udp://") || lower.starts_with("rtp://") {
            return Ok(SourceKind::Ts(TsInput::Udp(UdpInput::parse(source)?)));
        }
        if lower.starts_with("file://") {
            return Ok(SourceKind::Ts(TsInput::File(FileInput::parse(source)?)));
        }
        if source == "builtin:testcard" {
            return Ok(SourceKind::TestCard);
        }
        TestPattern::parse(source).map(SourceKind::TestPattern)
    }
}

impl TestPattern {
    /// Parses `test://pattern?bitrate=B&duration=D` (both optional).
    pub fn parse(url: &str) -> Result<TestPattern, SourceError> {
        let rest = url.strip_prefix("test://pattern").ok_or_else(|| SourceError::Unsupported(url.into()))?;
        let mut pattern = TestPattern { bitrate: 2_000_000, duration: Duration::from_secs(2) };
        let query = match rest {
            "" => "",
            q if q.starts_with('?') => &q[1..],
            _ => return Err(SourceError::Unsupported(url.into())),
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let bad = || SourceError::BadParameter(url.into());
            let (key, value) = pair.split_once('=').ok_or_else(bad)?;
            let value: u64 = value.parse().map_err(|_| bad())?;
            match key {
                "bitrate" if (1_000..=100_000_000).contains(&value) => pattern.bitrate = value,
                "duration" if (1..=60).contains(&value) => pattern.duration = Duration::from_secs(value),
                _ => return Err(bad()),
            }
        }
        Ok(pattern)
    }

    /// Bytes per segment.
    pub fn segment_len(&self) -> usize {
        (self.bitrate as u128 * self.duration.as_millis() / 8_000) as usize
    }

    /// The segment covering `time` since the epoch.
    pub fn seq_at(&self, since_epoch: Duration) -> u64 {
        (since_epoch.as_millis() / self.duration.as_millis()) as u64
    }

    /// The bytes of segment `seq` of `channel`: SHA-256 in counter mode, the same on every box.
    pub fn segment_bytes(&self, channel: ChannelId, seq: u64) -> Vec<u8> {
        let len = self.segment_len();
        let mut out = Vec::with_capacity(len + 32);
        let seed = Sha256::new().chain_update(channel.0).chain_update(seq.to_le_bytes());
        let mut counter = 0u64;
        while out.len() < len {
            out.extend_from_slice(&seed.clone().chain_update(counter.to_le_bytes()).finalize());
            counter += 1;
        }
        out.truncate(len);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_test_pattern_urls() {
        let p = TestPattern::parse("test://pattern?bitrate=4000000&duration=2").expect("valid");
        assert_eq!(p.segment_len(), 1_000_000);
        assert_eq!(TestPattern::parse("test://pattern").expect("defaults").duration, Duration::from_secs(2));
        assert!(matches!(TestPattern::parse("http://origin/x.m3u8"), Err(SourceError::Unsupported(_))));
        assert!(matches!(SourceKind::parse("https://o.example/live.m3u8", None), Ok(SourceKind::Hls(_))));
        assert!(matches!(SourceKind::parse("http://bad host/x", None), Err(SourceError::Url(_))));
        assert!(matches!(SourceKind::parse("rtmp://o/x", None), Err(SourceError::Unsupported(_))));
        assert_eq!(SourceKind::parse("builtin:testcard", None), Ok(SourceKind::TestCard));
        assert!(matches!(TestPattern::parse("test://pattern?duration=0"), Err(SourceError::BadParameter(_))));
        assert!(matches!(TestPattern::parse("test://pattern?speed=3"), Err(SourceError::BadParameter(_))));
    }

    #[test]
    fn http_sources_are_hls_unless_they_look_or_are_said_to_be_ts() {
        let ts = |url: &str, format| {
            matches!(SourceKind::parse(url, format), Ok(SourceKind::Ts(TsInput::Http(_))))
        };
        assert!(ts("http://encoder.local/live.ts", None));
        assert!(ts("http://udpxy.local:4022/udp/239.1.1.1:5000", None));
        assert!(ts("http://encoder.local/stream", Some(HttpFormat::Ts)));
        assert!(!ts("http://encoder.local/stream", None));
        assert!(!ts("http://encoder.local/live.ts", Some(HttpFormat::Hls)));
        assert!(matches!(
            SourceKind::parse("udp://@239.1.1.1:5000", None),
            Ok(SourceKind::Ts(TsInput::Udp(_)))
        ));
        assert!(matches!(
            SourceKind::parse("rtp://@239.1.1.1:5000", None),
            Ok(SourceKind::Ts(TsInput::Udp(_)))
        ));
        assert!(matches!(
            SourceKind::parse("file:///srv/a.ts?vod", None),
            Ok(SourceKind::Ts(TsInput::File(_)))
        ));
        assert!(matches!(SourceKind::parse("udp://@239.1.1.1", None), Err(SourceError::Input(_))));
    }
}
