//! The box's configuration file (TOML), with defaults for everything but the network key.
//!
//! Errors name the field and, when the field is in the file, its line:
//! `config line 12: store.budget_mb must be at least 16`. Unknown fields are errors too, so a
//! typo never silently falls back to a default.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use shoal_core::ChannelId;
use toml::Spanned;

/// Where `shoal run` looks for its config without `--config`.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/shoal/shoal.toml";

/// A problem with the config: the field, its line if known, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a field has the wrong type or is unknown.
    #[error("config {}: {message}", line.map_or("".to_string(), |l| format!("line {l}")))]
    Syntax {
        /// Line of the problem, 1-based.
        line: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// A value out of range.
    #[error("config {}{field} {why}", line.map_or("".to_string(), |l| format!("line {l}: ")))]
    Invalid {
        /// Dotted field name.
        field: String,
        /// Line, when the field is in the file.
        line: Option<usize>,
        /// What it must be.
        why: String,
    },
}

/// The validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Board profile name (reported in discovery and status).
    pub board: String,
    /// Where the node identity is kept.
    pub state_dir: PathBuf,
    /// The network key file.
    pub network_key_file: PathBuf,
    /// Run without a network key: datagrams are tagged under a public key. Never a default.
    pub insecure: bool,
    /// UDP port for the swarm.
    pub udp_port: u16,
    /// HTTP port for TVs and operators.
    pub http_port: u16,
    /// Address the HTTP server binds.
    pub http_bind: IpAddr,
    /// Interfaces for discovery; empty: every up, non-loopback interface.
    pub interfaces: Vec<String>,
    /// Largest datagram.
    pub max_datagram: usize,
    /// Upload rate the swarm paces itself to, in Mbit/s.
    pub upload_mbit: u32,
    /// Store budget in MiB.
    pub store_budget_mb: u32,
    /// Segments kept per channel.
    pub ring_len: usize,
    /// Live window, in segments.
    pub window_segments: u64,
    /// Log level.
    pub log_level: log::LevelFilter,
    /// HTTP connections served at once.
    pub http_max_clients: usize,
    /// Clients allowed to change things (identify, reload, lift bans).
    pub admin_networks: crate::admin::AdminNetworks,
    /// Extra CA certificates (PEM) trusted for HTTPS origins, besides the built-in roots.
    pub origin_ca_file: Option<PathBuf>,
    /// Deadline for one origin request (playlist or segment).
    pub origin_timeout: std::time::Duration,
    /// An XMLTV programme guide passed through at `/xmltv`.
    pub xmltv_url: Option<String>,
    /// The channel lineup.
    pub channels: Vec<Channel>,
}

/// One channel of the lineup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    /// Short id, used in URLs.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Where the ingester fetches it (`test://pattern?...` for the built-in test source).
    pub source: String,
    /// Fetched even without viewers.
    pub always_on: bool,
    /// Channel number in the lineup (`tvg-chno`).
    pub number: Option<u32>,
    /// Group in the lineup (`group-title`).
    pub group: Option<String>,
    /// Logo URL (`tvg-logo`).
    pub logo: Option<String>,
    /// For an HLS master playlist: the highest variant bandwidth to ingest, in bit/s.
    pub max_bitrate: Option<u64>,
}

impl Channel {
    /// The channel's swarm id.
    pub fn channel_id(&self) -> ChannelId {
        ChannelId::derive(&self.id, &self.source)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    board: Option<Spanned<String>>,
    state_dir: Option<Spanned<PathBuf>>,
    network_key_file: Option<Spanned<PathBuf>>,
    insecure: Option<bool>,
    #[serde(default)]
    net: RawNet,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    origin: RawOrigin,
    #[serde(default)]
    guide: RawGuide,
    #[serde(default, rename = "channel")]
    channels: Vec<Spanned<RawChannel>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNet {
    udp_port: Option<Spanned<u16>>,
    http_port: Option<Spanned<u16>>,
    http_bind: Option<Spanned<String>>,
    interfaces: Option<Vec<String>>,
    max_datagram: Option<Spanned<usize>>,
    upload_mbit: Option<Spanned<u32>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStore {
    budget_mb: Option<Spanned<u32>>,
    ring_len: Option<Spanned<usize>>,
    window_segments: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    max_clients: Option<Spanned<usize>>,
    admin_networks: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOrigin {
    ca_file: Option<Spanned<PathBuf>>,
    timeout_s: Option<Spanned<u32>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGuide {
    xmltv: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    id: Spanned<String>,
    name: Option<String>,
    source: Spanned<String>,
    #[serde(default)]
    always_on: bool,
    number: Option<u32>,
    group: Option<String>,
    logo: Option<String>,
    max_bitrate: Option<Spanned<u64>>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

impl Config {
    /// Reads and validates the config at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Config::parse(&text)
    }

    /// The defaults, as if the file were empty.
    pub fn defaults() -> Config {
        Config::parse("").unwrap_or_else(|e| unreachable!("the empty config is valid: {e}"))
    }

    /// Parses and validates config text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().to_string(),
        })?;
        let invalid = |field: &str, span: Option<std::ops::Range<usize>>, why: &str| ConfigError::Invalid {
            field: field.to_string(),
            line: span.map(|s| line_of(text, s.start)),
            why: why.to_string(),
        };
        let get = |v: Option<Spanned<u32>>, default: u32| {
            v.map(|s| (s.get_ref().to_owned(), Some(s.span()))).unwrap_or((default, None))
        };

        let board = raw.board.map(|b| b.into_inner()).unwrap_or_else(|| "generic".into());
        let state_dir = raw.state_dir.map(|s| s.into_inner()).unwrap_or_else(|| "/var/lib/shoal".into());
        let network_key_file =
            raw.network_key_file.map(|s| s.into_inner()).unwrap_or_else(|| "/etc/shoal/network.key".into());

        let udp_port = raw.net.udp_port.as_ref().map_or(7470, |p| *p.get_ref());
        if udp_port == 0 {
            return Err(invalid("net.udp_port", raw.net.udp_port.map(|p| p.span()), "must not be 0"));
        }
        let http_port = raw.net.http_port.as_ref().map_or(7471, |p| *p.get_ref());
        if http_port == udp_port && http_port != 0 {
            // Different protocols could share a number, but operators read them as one service.
            return Err(invalid(
                "net.http_port",
                raw.net.http_port.map(|p| p.span()),
                "must differ from net.udp_port",
            ));
        }
        let http_bind = match &raw.net.http_bind {
            None => IpAddr::from([0, 0, 0, 0]),
            Some(s) => s
                .get_ref()
                .parse()
                .map_err(|_| invalid("net.http_bind", Some(s.span()), "must be an IP address"))?,
        };
        let max_datagram =
            raw.net.max_datagram.as_ref().map_or(shoal_core::wire::DEFAULT_MAX_DATAGRAM, |m| *m.get_ref());
        if !(shoal_core::wire::MIN_MAX_DATAGRAM..=shoal_core::wire::MAX_MAX_DATAGRAM).contains(&max_datagram)
        {
            return Err(invalid(
                "net.max_datagram",
                raw.net.max_datagram.map(|m| m.span()),
                "must be between 1024 and 65507",
            ));
        }
        let (upload_mbit, span) = get(raw.net.upload_mbit, 100);
        if !(1..=100_000).contains(&upload_mbit) {
            return Err(invalid("net.upload_mbit", span, "must be between 1 and 100000"));
        }
        let (store_budget_mb, span) = get(raw.store.budget_mb, 64);
        if store_budget_mb < 16 {
            return Err(invalid("store.budget_mb", span, "must be at least 16"));
        }
        let ring_len = raw.store.ring_len.as_ref().map_or(64, |r| *r.get_ref());
        if !(2..=4096).contains(&ring_len) {
            return Err(invalid(
                "store.ring_len",
                raw.store.ring_len.map(|r| r.span()),
                "must be between 2 and 4096",
            ));
        }
        let window_segments = raw.store.window_segments.as_ref().map_or(6, |w| *w.get_ref());
        if window_segments == 0 || window_segments as usize > ring_len {
            return Err(invalid(
                "store.window_segments",
                raw.store.window_segments.map(|w| w.span()),
                "must be at least 1 and at most store.ring_len",
            ));
        }
        let log_level = match &raw.log.level {
            None => log::LevelFilter::Info,
            Some(l) => l.get_ref().parse().map_err(|_| {
                invalid("log.level", Some(l.span()), "must be one of off, error, warn, info, debug, trace")
            })?,
        };
        let http_max_clients = raw.http.max_clients.as_ref().map_or(64, |m| *m.get_ref());
        if !(1..=10_000).contains(&http_max_clients) {
            return Err(invalid(
                "http.max_clients",
                raw.http.max_clients.map(|m| m.span()),
                "must be between 1 and 10000",
            ));
        }
        let admin_networks = match raw.http.admin_networks {
            None => crate::admin::AdminNetworks::OwnSubnets,
            Some(list) => {
                let span = list.span();
                let networks = list
                    .into_inner()
                    .iter()
                    .map(|n| crate::admin::Network::parse(n))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid("http.admin_networks", Some(span), &format!("has {e}")))?;
                crate::admin::AdminNetworks::Configured(networks)
            }
        };
        let origin_ca_file = raw.origin.ca_file.map(Spanned::into_inner);
        let (timeout_s, span) = get(raw.origin.timeout_s, 10);
        if !(1..=300).contains(&timeout_s) {
            return Err(invalid("origin.timeout_s", span, "must be between 1 and 300"));
        }
        let xmltv_url = match raw.guide.xmltv {
            None => None,
            Some(url) => {
                crate::origin::OriginUrl::parse(url.get_ref())
                    .map_err(|e| invalid("guide.xmltv", Some(url.span()), &format!("is unusable: {e}")))?;
                Some(url.into_inner())
            }
        };
        let mut channels: Vec<Channel> = Vec::new();
        for spanned in raw.channels {
            let span = spanned.span();
            let c = spanned.into_inner();
            let id = c.id.get_ref().clone();
            let valid_id = !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid_id {
                return Err(invalid(
                    "channel.id",
                    Some(c.id.span()),
                    "must be 1-64 letters, digits, '-' or '_'",
                ));
            }
            if channels.iter().any(|o| o.id == id) {
                return Err(invalid("channel.id", Some(c.id.span()), "is used by another channel"));
            }
            let source = c.source.get_ref().clone();
            if let Err(e) = crate::source::SourceKind::parse(&source) {
                return Err(invalid("channel.source", Some(c.source.span()), &format!("is unusable: {e}")));
            }
            let max_bitrate = match c.max_bitrate {
                Some(b) if *b.get_ref() < 10_000 => {
                    return Err(invalid(
                        "channel.max_bitrate",
                        Some(b.span()),
                        "must be at least 10000 (bit/s)",
                    ))
                }
                b => b.map(Spanned::into_inner),
            };
            let name = c.name.unwrap_or_else(|| id.clone());
            let text_ok = |t: &Option<String>| {
                t.as_ref().is_none_or(|t| t.len() <= 256 && !t.contains(['"', '\n', '\r']))
            };
            if !text_ok(&c.group) || !text_ok(&c.logo) || name.len() > 256 || name.contains(['\n', '\r']) {
                return Err(invalid(
                    "channel",
                    Some(span),
                    "name, group and logo must be single lines of at most 256 characters, without quotes",
                ));
            }
            channels.push(Channel {
                id,
                name,
                source,
                always_on: c.always_on,
                number: c.number,
                group: c.group,
                logo: c.logo,
                max_bitrate,
            });
            if channels.len() > shoal_core::wire::MAX_LINEUP {
                return Err(invalid("channel", Some(span), "at most 64 channels"));
            }
        }
        Ok(Config {
            board,
            state_dir,
            network_key_file,
            insecure: raw.insecure.unwrap_or(false),
            udp_port,
            http_port,
            http_bind,
            interfaces: raw.net.interfaces.unwrap_or_default(),
            max_datagram,
            upload_mbit,
            store_budget_mb,
            ring_len,
            window_segments,
            log_level,
            http_max_clients,
            admin_networks,
            origin_ca_file,
            origin_timeout: std::time::Duration::from_secs(timeout_s.into()),
            xmltv_url,
            channels,
        })
    }

    /// Which changed settings only take effect after a restart (everything but the log level).
    pub fn needs_restart(&self, new: &Config) -> Vec<&'static str> {
        let mut changed = Vec::new();
        let mut check = |name, differs: bool| {
            if differs {
                changed.push(name);
            }
        };
        check("board", self.board != new.board);
        check("state_dir", self.state_dir != new.state_dir);
        check("network_key_file", self.network_key_file != new.network_key_file);
        check("insecure", self.insecure != new.insecure);
        check("net.udp_port", self.udp_port != new.udp_port);
        check("net.http_port", self.http_port != new.http_port);
        check("net.http_bind", self.http_bind != new.http_bind);
        check("net.interfaces", self.interfaces != new.interfaces);
        check("net.max_datagram", self.max_datagram != new.max_datagram);
        check("net.upload_mbit", self.upload_mbit != new.upload_mbit);
        check(
            "store",
            (self.store_budget_mb, self.ring_len, self.window_segments)
                != (new.store_budget_mb, new.ring_len, new.window_segments),
        );
        check("http.max_clients", self.http_max_clients != new.http_max_clients);
        check("http.admin_networks", self.admin_networks != new.admin_networks);
        check(
            "origin",
            (&self.origin_ca_file, self.origin_timeout) != (&new.origin_ca_file, new.origin_timeout),
        );
        check("guide.xmltv", self.xmltv_url != new.xmltv_url);
        check("channel", self.channels != new.channels);
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_is_valid_and_documents_every_field() {
        let example = include_str!("../shoal.example.toml");
        let config = Config::parse(example).expect("example config parses");
        assert_eq!(config.channels.len(), 2);
        // Every field the parser knows appears in the example (commented or not).
        for field in [
            "board",
            "state_dir",
            "network_key_file",
            "insecure",
            "udp_port",
            "http_port",
            "http_bind",
            "interfaces",
            "max_datagram",
            "upload_mbit",
            "budget_mb",
            "ring_len",
            "window_segments",
            "level",
            "max_clients",
            "id",
            "name",
            "source",
            "always_on",
            "max_bitrate",
            "admin_networks",
            "ca_file",
            "timeout_s",
            "xmltv",
        ] {
            assert!(example.contains(&format!("{field} =")), "example lacks {field}");
        }
    }

    #[test]
    fn empty_config_gives_working_defaults() {
        let c = Config::defaults();
        assert_eq!((c.udp_port, c.http_port, c.store_budget_mb), (7470, 7471, 64));
        assert!(!c.insecure);
    }

    #[test]
    fn errors_name_field_and_line() {
        let e = Config::parse("board = \"rpi4\"\n\n[store]\nbudget_mb = 8\n").unwrap_err().to_string();
        assert_eq!(e, "config line 4: store.budget_mb must be at least 16");
        let e = Config::parse("[net]\nudp_prt = 5\n").unwrap_err().to_string();
        assert!(e.starts_with("config line 2:") && e.contains("udp_prt"), "{e}");
        let e = Config::parse("[net]\nudp_port = \"x\"\n").unwrap_err().to_string();
        assert!(e.starts_with("config line 2:"), "{e}");
        let e = Config::parse("[[channel]]\nid = \"a b\"\nsource = \"test://pattern\"\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "config line 2: channel.id must be 1-64 letters, digits, '-' or '_'");
        let e = Config::parse("[log]\nlevel = \"loud\"\n").unwrap_err().to_string();
        assert!(e.starts_with("config line 2: log.level"), "{e}");
        let e =
            Config::parse("[http]\nadmin_networks = [\"10.0.0.0/8\", \"guests\"]\n").unwrap_err().to_string();
        assert!(e.starts_with("config line 2: http.admin_networks has `guests` is not a network"), "{e}");
        let e = Config::parse("[[channel]]\nid = \"a\"\nsource = \"ftp://x/y\"\n").unwrap_err().to_string();
        assert!(e.starts_with("config line 3: channel.source is unusable"), "{e}");
        let e = Config::parse("[origin]\ntimeout_s = 0\n").unwrap_err().to_string();
        assert_eq!(e, "config line 2: origin.timeout_s must be between 1 and 300");
        let e = Config::parse("[guide]\nxmltv = \"file:///etc/passwd\"\n").unwrap_err().to_string();
        assert!(e.starts_with("config line 2: guide.xmltv is unusable"), "{e}");
    }

    #[test]
    fn only_the_log_level_reloads_without_restart() {
        let a = Config::defaults();
        let mut b = a.clone();
        b.log_level = log::LevelFilter::Debug;
        assert!(a.needs_restart(&b).is_empty());
        b.udp_port = 9;
        assert_eq!(a.needs_restart(&b), ["net.udp_port"]);
    }
}
