//! Origin URLs: absolute `http://` and `https://` URLs, and resolving the references playlists
//! contain (RFC 3986 §5.2) against the playlist's own URL.
//!
//! Hand-written rather than the `url` crate: origins are plain http(s) URLs with an ASCII host
//! and a path, and the `url` crate's IDNA tables would add a fifth to the binary of a Pi Zero
//! build for host names no origin uses.

use std::fmt;

/// Longest URL accepted, from the config or from an origin's playlist.
pub const MAX_URL_LEN: usize = 4096;

/// http or https.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

/// An absolute origin URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OriginUrl {
    /// http or https.
    pub scheme: Scheme,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (the scheme's default when the URL has none).
    pub port: u16,
    /// Path and query, starting with `/`; never contains a fragment.
    pub path_and_query: String,
}

/// Why a URL cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not http:// or https://.
    #[error("`{0}` is not an http:// or https:// URL")]
    Scheme(String),
    /// A malformed host, port or character.
    #[error("malformed URL `{0}`")]
    Malformed(String),
}

impl OriginUrl {
    /// Parses an absolute http(s) URL.
    pub fn parse(text: &str) -> Result<OriginUrl, UrlError> {
        let malformed = || UrlError::Malformed(shorten(text));
        if text.len() > MAX_URL_LEN || text.bytes().any(|b| b <= b' ' || b == 0x7f || b >= 0x80) {
            return Err(malformed());
        }
        let (scheme, rest) = if let Some(rest) = strip_prefix_ignore_case(text, "https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(text, "http://") {
            (Scheme::Http, rest)
        } else {
            return Err(UrlError::Scheme(shorten(text)));
        };
        let rest = rest.split('#').next().unwrap_or("");
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        if authority.contains('@') {
            // Credentials in URLs end up in logs; origins that need them are not supported.
            return Err(malformed());
        }
        let default_port = match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(malformed)?;
            let port = match after {
                "" => default_port,
                p => p.strip_prefix(':').and_then(|p| p.parse().ok()).ok_or_else(malformed)?,
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, port.parse().map_err(|_| malformed())?),
                None => (authority, default_port),
            }
        };
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b));
        if !host_ok || port == 0 {
            return Err(malformed());
        }
        let path_and_query = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(OriginUrl { scheme, host: host.to_ascii_lowercase(), port, path_and_query })
    }

    /// Resolves `reference` (absolute, scheme-relative, absolute-path or relative, as found in
    /// a playlist) against this URL.
    pub fn join(&self, reference: &str) -> Result<OriginUrl, UrlError> {
        let reference = reference.trim();
        if reference.len() > MAX_URL_LEN {
            return Err(UrlError::Malformed(shorten(reference)));
        }
        let lower = reference.get(..8).unwrap_or(reference).to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return OriginUrl::parse(reference);
        }
        if reference.contains("://") && reference.find("://") < reference.find(['/', '?']) {
            return Err(UrlError::Scheme(shorten(reference)));
        }
        if let Some(rest) = reference.strip_prefix("//") {
            let scheme = match self.scheme {
                Scheme::Http => "http://",
                Scheme::Https => "https://",
            };
            return OriginUrl::parse(&format!("{scheme}{rest}"));
        }
        let reference = reference.split('#').next().unwrap_or("");
        let (base_path, base_query) =
            self.path_and_query.split_once('?').unwrap_or((&self.path_and_query, ""));
        let path_and_query = if reference.is_empty() {
            self.path_and_query.clone()
        } else if let Some(query) = reference.strip_prefix('?') {
            format!("{base_path}?{query}")
        } else {
            let _ = base_query;
            let (ref_path, ref_query) = match reference.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (reference, None),
            };
            let merged = if ref_path.starts_with('/') {
                ref_path.to_owned()
            } else {
                let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
                format!("{dir}{ref_path}")
            };
            let mut path = remove_dot_segments(&merged);
            if let Some(q) = ref_query {
                path.push('?');
                path.push_str(q);
            }
            path
        };
        let joined = OriginUrl { path_and_query, ..self.clone() };
        // Re-check the characters of what came from the playlist.
        if joined.path_and_query.bytes().any(|b| b <= b' ' || b == 0x7f || b >= 0x80) {
            return Err(UrlError::Malformed(shorten(reference)));
        }
        Ok(joined)
    }

    /// `host:port` as the `Host` header wants it.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let default = matches!((self.scheme, self.port), (Scheme::Http, 80) | (Scheme::Https, 443));
        if default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for OriginUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}://{}{}", self.authority(), self.path_and_query)
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// RFC 3986 §5.2.4 on an absolute path: `.` and `..` segments go away, never above the root.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// The start of a long string, for error messages.
fn shorten(text: &str) -> String {
    let mut end = text.len().min(120);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_absolute_urls() {
        let u = OriginUrl::parse("HTTPS://Origin.Example:8443/live/index.m3u8?token=1#frag").unwrap();
        assert_eq!(u.scheme, Scheme::Https);
        assert_eq!((u.host.as_str(), u.port), ("origin.example", 8443));
        assert_eq!(u.path_and_query, "/live/index.m3u8?token=1");
        assert_eq!(u.to_string(), "https://origin.example:8443/live/index.m3u8?token=1");
        let v6 = OriginUrl::parse("http://[fd00::1]/a").unwrap();
        assert_eq!((v6.host.as_str(), v6.port, v6.authority()), ("fd00::1", 80, "[fd00::1]".to_owned()));
        assert_eq!(OriginUrl::parse("http://10.0.0.1").unwrap().path_and_query, "/");
    }

    #[test]
    fn refuses_what_is_not_an_origin_url() {
        assert!(matches!(OriginUrl::parse("ftp://x/y"), Err(UrlError::Scheme(_))));
        assert!(matches!(OriginUrl::parse("file:///etc/passwd"), Err(UrlError::Scheme(_))));
        for bad in
            ["http://", "http://user:pw@host/", "http://host:99999/", "http://ho st/", "http://host:0/"]
        {
            assert!(matches!(OriginUrl::parse(bad), Err(UrlError::Malformed(_))), "{bad}");
        }
        assert!(OriginUrl::parse(&format!("http://h/{}", "a".repeat(MAX_URL_LEN))).is_err());
    }

    #[test]
    fn resolves_playlist_references() {
        let base = OriginUrl::parse("http://o:8080/live/hd/index.m3u8?k=v").unwrap();
        let join = |r| base.join(r).unwrap().to_string();
        assert_eq!(join("seg1.ts"), "http://o:8080/live/hd/seg1.ts");
        assert_eq!(join("../sd/index.m3u8"), "http://o:8080/live/sd/index.m3u8");
        assert_eq!(join("../../../../x.ts"), "http://o:8080/x.ts");
        assert_eq!(join("/abs/x.ts?t=2"), "http://o:8080/abs/x.ts?t=2");
        assert_eq!(join("//cdn.example/x.ts"), "http://cdn.example/x.ts");
        assert_eq!(join("https://cdn.example/y.ts"), "https://cdn.example/y.ts");
        assert_eq!(join("./a/./b/../c.ts"), "http://o:8080/live/hd/a/c.ts");
        assert!(base.join("gopher://x/y").is_err());
        assert!(base.join("seg 1.ts").is_err());
    }
}
