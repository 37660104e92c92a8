//! What a broadcast-style source URL names: a UDP or RTP feed (multicast or unicast), a
//! continuous MPEG-TS stream over HTTP, or a local TS file.
//!
//! The URL forms are the ones IPTV lists and players already use:
//! - `udp://@239.1.1.1:5000`, `rtp://@239.1.1.1:5000`: join the group (the `@` is optional);
//! - `udp://10.0.0.9@232.1.1.1:5000`: source-specific multicast from 10.0.0.9;
//! - `udp://@:5000` or `udp://0.0.0.0:5000`: unicast, whatever arrives on port 5000;
//! - `?iface=eth1` on any of them: join on that interface instead of the channel's or the
//!   box's default;
//! - `file:///srv/clip.ts` loops the file as a live channel, `file:///srv/clip.ts?vod` serves
//!   it as an on-demand asset;
//! - HTTP-TS is an `http(s)://` URL with `format = "ts"` in the channel (see
//!   [`super::SourceKind`]).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

use super::url::OriginUrl;

/// Why a broadcast source URL cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    /// Not `scheme://[source@]address:port[?iface=name]`.
    #[error("`{0}` is not udp://[source@]group:port or rtp://… (for example udp://@239.1.1.1:5000)")]
    Malformed(String),
    /// A multicast group that is not one (or a source that is).
    #[error("`{0}`: {1}")]
    Address(String, &'static str),
    /// An interface name no Linux interface could have.
    #[error("`{0}`: interface names are 1-15 characters without '/' or spaces")]
    Interface(String),
    /// A `file://` URL that is not an absolute path, or an unknown option.
    #[error("`{0}` is not file:///absolute/path.ts[?vod]")]
    File(String),
}

/// How datagrams carry the transport stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encapsulation {
    /// TS packets straight in UDP (7 × 188 bytes per datagram, usually). RTP is still
    /// recognised and unwrapped if the sender uses it: udpxy does the same.
    Udp,
    /// RTP (RFC 3551 payload type 33, MP2T) over UDP.
    Rtp,
}

/// A UDP or RTP feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpInput {
    /// UDP or RTP.
    pub encapsulation: Encapsulation,
    /// The group (multicast) or the address to listen on (unicast; 0.0.0.0 for any).
    pub group: Ipv4Addr,
    /// The port.
    pub port: u16,
    /// Source-specific multicast: only this sender.
    pub source: Option<Ipv4Addr>,
    /// The interface to join on (`None`: the channel's, else the kernel's route for the group).
    pub interface: Option<String>,
}

impl UdpInput {
    /// Parses `udp://…` or `rtp://…`.
    pub fn parse(url: &str) -> Result<UdpInput, InputError> {
        let malformed = || InputError::Malformed(url.to_owned());
        let (encapsulation, rest) = if let Some(rest) = strip_prefix_ignore_case(url, "udp://") {
            (Encapsulation::Udp, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(url, "rtp://") {
            (Encapsulation::Rtp, rest)
        } else {
            return Err(malformed());
        };
        let (address, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut interface = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("iface" | "ifname", name)) => {
                    let valid = !name.is_empty()
                        && name.len() <= 15
                        && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
                    if !valid {
                        return Err(InputError::Interface(url.to_owned()));
                    }
                    interface = Some(name.to_owned());
                }
                _ => return Err(malformed()),
            }
        }
        let (source, group) = match address.split_once('@') {
            Some(("", group)) => (None, group),
            Some((source, group)) => (Some(source.parse::<Ipv4Addr>().map_err(|_| malformed())?), group),
            None => (None, address),
        };
        let (group, port) = match group.rsplit_once(':') {
            Some(("", port)) => (Ipv4Addr::UNSPECIFIED, port),
            Some((group, port)) => (group.parse::<Ipv4Addr>().map_err(|_| malformed())?, port),
            None => return Err(malformed()),
        };
        let port: u16 = port.parse().ok().filter(|&p| p != 0).ok_or_else(malformed)?;
        if let Some(s) = source {
            if !group.is_multicast() {
                return Err(InputError::Address(
                    url.to_owned(),
                    "a source is given only for a multicast group",
                ));
            }
            if s.is_multicast() || s.is_unspecified() {
                return Err(InputError::Address(url.to_owned(), "the source must be a unicast address"));
            }
        }
        Ok(UdpInput { encapsulation, group, port, source, interface })
    }

    /// Whether the feed is multicast (joined) rather than unicast (listened for).
    pub fn is_multicast(&self) -> bool {
        self.group.is_multicast()
    }

    /// The group and port.
    pub fn address(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.group, self.port)
    }

    /// The canonical URL (what a channel id derives from, so every box names a feed alike).
    pub fn canonical(&self) -> String {
        let scheme = match self.encapsulation {
            Encapsulation::Udp => "udp",
            Encapsulation::Rtp => "rtp",
        };
        let source = self.source.map(|s| s.to_string()).unwrap_or_default();
        let mut url = format!("{scheme}://{source}@{}:{}", self.group, self.port);
        if let Some(interface) = &self.interface {
            url.push_str(&format!("?iface={interface}"));
        }
        url
    }
}

/// A local MPEG-TS file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInput {
    /// The file.
    pub path: PathBuf,
    /// Served as an on-demand asset (all segments, `ENDLIST`) instead of looped as live.
    pub vod: bool,
}

impl FileInput {
    /// Parses `file:///path[?vod|?loop]`.
    pub fn parse(url: &str) -> Result<FileInput, InputError> {
        let bad = || InputError::File(url.to_owned());
        let rest = strip_prefix_ignore_case(url, "file://").ok_or_else(bad)?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let vod = match query {
            "" | "loop" => false,
            "vod" => true,
            _ => return Err(bad()),
        };
        if !path.starts_with('/') || path.split('/').any(|part| part == "..") {
            return Err(bad());
        }
        Ok(FileInput { path: PathBuf::from(path), vod })
    }
}

/// A broadcast-style input: what the TS ingester reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TsInput {
    /// UDP or RTP, multicast or unicast.
    Udp(UdpInput),
    /// Continuous MPEG-TS over HTTP or HTTPS.
    Http(OriginUrl),
    /// A local file.
    File(FileInput),
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_urls_in_the_forms_iptv_lists_use() {
        let joined = UdpInput::parse("udp://@239.1.2.3:5000").expect("valid");
        assert_eq!((joined.group, joined.port, joined.source), (Ipv4Addr::new(239, 1, 2, 3), 5000, None));
        assert!(joined.is_multicast() && joined.encapsulation == Encapsulation::Udp);
        assert_eq!(UdpInput::parse("udp://239.1.2.3:5000"), Ok(joined.clone()));
        assert_eq!(joined.canonical(), "udp://@239.1.2.3:5000");
        let rtp = UdpInput::parse("RTP://@239.1.2.3:5000?iface=eth1").expect("valid");
        assert_eq!((rtp.encapsulation, rtp.interface.as_deref()), (Encapsulation::Rtp, Some("eth1")));
        assert_eq!(rtp.canonical(), "rtp://@239.1.2.3:5000?iface=eth1");
        let ssm = UdpInput::parse("udp://10.0.0.9@232.1.1.1:1234").expect("valid");
        assert_eq!(ssm.source, Some(Ipv4Addr::new(10, 0, 0, 9)));
        let unicast = UdpInput::parse("udp://@:5000").expect("valid");
        assert!(!unicast.is_multicast() && unicast.group.is_unspecified());
        for bad in [
            "udp://@239.1.2.3",
            "udp://@239.1.2.3:0",
            "udp://@239.1.2.3:70000",
            "udp://@host.example:5000",
            "udp://10.0.0.9@10.0.0.1:5000",
            "udp://239.0.0.9@239.1.1.1:5000",
            "udp://@239.1.1.1:5000?iface=",
            "udp://@239.1.1.1:5000?iface=a/b",
            "udp://@239.1.1.1:5000?ttl=4",
            "tcp://@239.1.1.1:5000",
        ] {
            assert!(UdpInput::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_urls_are_absolute_and_say_live_or_vod() {
        assert_eq!(
            FileInput::parse("file:///srv/tv/clip.ts"),
            Ok(FileInput { path: "/srv/tv/clip.ts".into(), vod: false })
        );
        assert!(FileInput::parse("file:///srv/clip.ts?vod").expect("valid").vod);
        for bad in ["file://clip.ts", "file:///srv/../etc/shadow", "file:///srv/clip.ts?fast", "http://x/y"] {
            assert!(FileInput::parse(bad).is_err(), "{bad}");
        }
    }
}
