//! Single byte ranges of segments (RFC 9110 §14): what seeking players and download tools ask.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::{error, Body};

/// A segment's bytes, whole or the single byte range the client asked for (RFC 9110 §14).
pub(super) fn ranged(
    bytes: Bytes,
    content_type: &'static str,
    range: Option<&HeaderValue>,
) -> Response<Body> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
