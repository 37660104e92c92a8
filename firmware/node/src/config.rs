//! The box's configuration file (TOML), with defaults for everything but the network key.
//!
//! The board profile ([`crate::board`]) the config names (or `--board`, or the build) supplies
//! the defaults for the store, the limits, the interfaces and the GPIO lines; values in the file
//! win over the profile's.
//!
//! Errors name the field and, when the field is in the file, its line:
//! `config line 12: store.budget_mb must be at least 16`. Unknown fields are errors too, so a
//! typo never silently falls back to a default.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::board::{BoardProfile, GpioLine};
use crate::lineup::relay::{default_allow, RelayPolicy};
use crate::lineup::{Channel, HttpFormat, OriginUrl, SourceKind};

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
    /// The config or `--board` names a board no compiled-in profile has.
    #[error("{}{source}", line.map_or("".to_string(), |l| format!("config line {l}: ")))]
    UnknownBoard {
        /// Line of `board`, when the name came from the file.
        line: Option<usize>,
        /// The name and the known ones.
        source: crate::board::UnknownBoard,
    },
}

/// The validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Board profile name (reported in discovery and status): `--board`, else the file's
    /// `board`, else the board the binary was built for, else `generic`.
    pub board: String,
    /// `--board`, when given: a reload applies it again (see [`Config::load_with_board`]).
    pub board_override: Option<String>,
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
    /// Channels the box holds at once (the lineup may list more).
    pub max_channels: usize,
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
    /// The status LED, if the box has one.
    pub led: Option<GpioLine>,
    /// The button, if the box has one.
    pub button: Option<GpioLine>,
    /// udpxy-style relay URLs (`/udp/…`, `/rtp/…`): whether, which groups, how many.
    pub relay: RelayPolicy,
    /// Target segment duration for TS feeds relayed through `/udp/` and `/rtp/`.
    pub relay_segment: std::time::Duration,
    /// The interface relayed feeds are joined on (`None`: the kernel's route).
    pub relay_interface: Option<String>,
    /// The disk tier for on-demand assets (`None`: `cache.enabled = false`).
    pub cache: Option<CacheSettings>,
    /// The channel lineup.
    pub channels: Vec<Channel>,
}

/// Where and how much of on-demand assets a box keeps on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheSettings {
    /// The directory (on a USB disk or the SD card); default `<state_dir>/cache`.
    pub dir: PathBuf,
    /// Bytes of segments kept at most; the least recently used go first.
    pub max_bytes: u64,
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
    #[serde(default)]
    gpio: RawGpio,
    #[serde(default)]
    relay: RawRelay,
    #[serde(default)]
    cache: RawCache,
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
    max_channels: Option<Spanned<usize>>,
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRelay {
    enabled: Option<bool>,
    allow: Option<Spanned<Vec<String>>>,
    max_joins: Option<Spanned<usize>>,
    segment_s: Option<Spanned<f64>>,
    interface: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCache {
    enabled: Option<bool>,
    dir: Option<Spanned<PathBuf>>,
    max_mb: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGpio {
    led: Option<Spanned<GpioSetting>>,
    button: Option<Spanned<GpioSetting>>,
}

/// `led = "none"` (the board's line is not wired) or a table describing the line.
enum GpioSetting {
    None,
    Line(GpioLine),
}

impl<'de> Deserialize<'de> for GpioSetting {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = GpioSetting;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"none\" or a table with chip, line, active_low and bias")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<GpioSetting, E> {
                match v {
                    "none" => Ok(GpioSetting::None),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<GpioSetting, A::Error> {
                GpioLine::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(GpioSetting::Line)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
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
    segment_s: Option<Spanned<f64>>,
    interface: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
}

/// Segment durations a TS feed may be cut to, in seconds.
const SEGMENT_RANGE: std::ops::RangeInclusive<f64> = 0.5..=10.0;
/// Default target duration for TS feeds: short enough for a quick start, long enough that
/// players' playlists stay small.
const DEFAULT_SEGMENT_S: f64 = 2.0;
/// Default size of the disk tier for on-demand assets, in MiB.
const DEFAULT_CACHE_MB: u64 = 1024;

fn valid_interface(name: &str) -> bool {
    !name.is_empty() && name.len() <= 15 && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

impl Config {
    /// Reads and validates the config at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with_board(path, None)
    }

    /// Reads and validates the config at `path` for `board` (`--board`), when given, whatever
    /// board the file names.
    pub fn load_with_board(path: &Path, board: Option<&str>) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Config::parse_with_board(&text, board)
    }

    /// The defaults, as if the file were empty: those of the board the binary was built for,
    /// else of `generic`.
    pub fn defaults() -> Config {
        Config::parse("").unwrap_or_else(|e| unreachable!("the empty config is valid: {e}"))
    }

    /// Parses and validates config text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse_with_board(text, None)
    }

    /// Parses and validates config text for `board` (`--board`), when given, whatever board
    /// the text names: the board's profile supplies the defaults the text leaves out.
    pub fn parse_with_board(text: &str, board: Option<&str>) -> Result<Config, ConfigError> {
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

        // `--board` wins over the file, which wins over the build's board.
        let (name, line) = match (board, &raw.board) {
            (Some(name), _) => (name, None),
            (None, Some(name)) => (name.get_ref().as_str(), Some(line_of(text, name.span().start))),
            (None, None) => (crate::board::default_board(), None),
        };
        let profile =
            BoardProfile::named(name).map_err(|source| ConfigError::UnknownBoard { line, source })?;
        let board_override = board.map(str::to_owned);
        let board = profile.name.clone();
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
        let (store_budget_mb, span) = get(raw.store.budget_mb, profile.store.budget_mb);
        if store_budget_mb < 16 {
            return Err(invalid("store.budget_mb", span, "must be at least 16"));
        }
        let ring_len = raw.store.ring_len.as_ref().map_or(profile.store.ring_len, |r| *r.get_ref());
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
        let max_channels =
            raw.store.max_channels.as_ref().map_or(profile.store.max_channels, |m| *m.get_ref());
        if !(1..=shoal_core::wire::MAX_LINEUP).contains(&max_channels) {
            return Err(invalid(
                "store.max_channels",
                raw.store.max_channels.map(|m| m.span()),
                &format!("must be between 1 and {}", shoal_core::wire::MAX_LINEUP),
            ));
        }
        let log_level = match &raw.log.level {
            None => log::LevelFilter::Info,
            Some(l) => l.get_ref().parse().map_err(|_| {
                invalid("log.level", Some(l.span()), "must be one of off, error, warn, info, debug, trace")
            })?,
        };
        let http_max_clients =
            raw.http.max_clients.as_ref().map_or(profile.http.max_clients, |m| *m.get_ref());
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
                OriginUrl::parse(url.get_ref())
                    .map_err(|e| invalid("guide.xmltv", Some(url.span()), &format!("is unusable: {e}")))?;
                Some(url.into_inner())
            }
        };
        let gpio =
            |field: &str, setting: Option<Spanned<GpioSetting>>, default: &Option<GpioLine>| match setting {
                None => Ok(default.clone()),
                Some(s) => {
                    let span = s.span();
                    match s.into_inner() {
                        GpioSetting::None => Ok(None),
                        GpioSetting::Line(line) => match line.problem() {
                            Some(why) => Err(invalid(field, Some(span), why)),
                            None => Ok(Some(line)),
                        },
                    }
                }
            };
        let led = gpio("gpio.led", raw.gpio.led, &profile.gpio.led)?;
        let button = gpio("gpio.button", raw.gpio.button, &profile.gpio.button)?;
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
            let format =
                match &c.format {
                    None => None,
                    Some(f) => Some(HttpFormat::parse(f.get_ref()).ok_or_else(|| {
                        invalid("channel.format", Some(f.span()), "must be \"hls\" or \"ts\"")
                    })?),
                };
            let source = c.source.get_ref().clone();
            let kind = SourceKind::parse(&source, format).map_err(|e| {
                invalid("channel.source", Some(c.source.span()), &format!("is unusable: {e}"))
            })?;
            let segment = match &c.segment_s {
                None => std::time::Duration::from_secs_f64(DEFAULT_SEGMENT_S),
                Some(s) if SEGMENT_RANGE.contains(s.get_ref()) => {
                    std::time::Duration::from_secs_f64(*s.get_ref())
                }
                Some(s) => {
                    return Err(invalid(
                        "channel.segment_s",
                        Some(s.span()),
                        "must be between 0.5 and 10 (seconds)",
                    ))
                }
            };
            let interface = match c.interface {
                Some(i) if !valid_interface(i.get_ref()) => {
                    return Err(invalid(
                        "channel.interface",
                        Some(i.span()),
                        "must be an interface name such as eth0",
                    ))
                }
                i => i.map(Spanned::into_inner),
            };
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
                kind,
                always_on: c.always_on,
                number: c.number,
                group: c.group,
                logo: c.logo,
                max_bitrate,
                segment,
                interface,
            });
            if channels.len() > shoal_core::wire::MAX_LINEUP {
                return Err(invalid("channel", Some(span), "at most 64 channels"));
            }
        }
        let relay_allow = match raw.relay.allow {
            None => default_allow(),
            Some(list) => {
                let span = list.span();
                list.into_inner()
                    .iter()
                    .map(|n| crate::admin::Network::parse(n))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid("relay.allow", Some(span), &format!("has {e}")))?
            }
        };
        let max_joins = raw.relay.max_joins.as_ref().map_or(8, |m| *m.get_ref());
        if !(1..=shoal_core::wire::MAX_LINEUP).contains(&max_joins) {
            return Err(invalid(
                "relay.max_joins",
                raw.relay.max_joins.map(|m| m.span()),
                &format!("must be between 1 and {}", shoal_core::wire::MAX_LINEUP),
            ));
        }
        let relay_segment = match &raw.relay.segment_s {
            None => std::time::Duration::from_secs_f64(DEFAULT_SEGMENT_S),
            Some(s) if SEGMENT_RANGE.contains(s.get_ref()) => {
                std::time::Duration::from_secs_f64(*s.get_ref())
            }
            Some(s) => {
                return Err(invalid(
                    "relay.segment_s",
                    Some(s.span()),
                    "must be between 0.5 and 10 (seconds)",
                ))
            }
        };
        let relay_interface = match raw.relay.interface {
            Some(i) if !valid_interface(i.get_ref()) => {
                return Err(invalid(
                    "relay.interface",
                    Some(i.span()),
                    "must be an interface name such as eth0",
                ))
            }
            i => i.map(Spanned::into_inner),
        };
        let relay = RelayPolicy { enabled: raw.relay.enabled.unwrap_or(true), allow: relay_allow, max_joins };
        let cache_dir = match raw.cache.dir {
            Some(d) if !d.get_ref().is_absolute() => {
                return Err(invalid("cache.dir", Some(d.span()), "must be an absolute path"))
            }
            Some(d) => d.into_inner(),
            None => state_dir.join("cache"),
        };
        let (max_mb, span) =
            raw.cache.max_mb.map(|s| (*s.get_ref(), Some(s.span()))).unwrap_or((DEFAULT_CACHE_MB, None));
        if !(16..=(1 << 24)).contains(&max_mb) {
            return Err(invalid("cache.max_mb", span, "must be between 16 and 16777216 (MiB)"));
        }
        let cache = raw
            .cache
            .enabled
            .unwrap_or(true)
            .then_some(CacheSettings { dir: cache_dir, max_bytes: max_mb << 20 });
        Ok(Config {
            board,
            board_override,
            state_dir,
            network_key_file,
            insecure: raw.insecure.unwrap_or(false),
            udp_port,
            http_port,
            http_bind,
            interfaces: raw.net.interfaces.unwrap_or_else(|| profile.net.interfaces.clone()),
            max_datagram,
            upload_mbit,
            store_budget_mb,
            ring_len,
            max_channels,
            window_segments,
            log_level,
            http_max_clients,
            admin_networks,
            origin_ca_file,
            origin_timeout: std::time::Duration::from_secs(timeout_s.into()),
            xmltv_url,
            led,
            button,
            relay,
            relay_segment,
            relay_interface,
            cache,
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
            (self.store_budget_mb, self.ring_len, self.max_channels, self.window_segments)
                != (new.store_budget_mb, new.ring_len, new.max_channels, new.window_segments),
        );
        check("http.max_clients", self.http_max_clients != new.http_max_clients);
        check("http.admin_networks", self.admin_networks != new.admin_networks);
        check(
            "origin",
            (&self.origin_ca_file, self.origin_timeout) != (&new.origin_ca_file, new.origin_timeout),
        );
        check("guide.xmltv", self.xmltv_url != new.xmltv_url);
        check("gpio", (&self.led, &self.button) != (&new.led, &new.button));
        check("cache", self.cache != new.cache);
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
            "max_mb",
            "dir",
            "xmltv",
            "max_channels",
            "led",
            "button",
            "chip",
            "line",
            "active_low",
            "bias",
            "enabled",
            "allow",
            "max_joins",
            "segment_s",
            "interface",
            "format",
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
    fn the_boards_profile_gives_the_defaults() {
        let c = Config::parse("board = \"rpi-zero-w\"\n").expect("valid");
        assert_eq!((c.board.as_str(), c.store_budget_mb, c.ring_len), ("rpi-zero-w", 32, 24));
        assert_eq!(
            (c.max_channels, c.http_max_clients, c.interfaces.as_slice()),
            (2, 8, &["wlan0".into()][..])
        );
        let led = c.led.expect("the Pi profiles have an LED");
        assert_eq!((led.chip.as_str(), led.line, led.active_low), ("gpiochip0", 17, false));
        let button = c.button.expect("and a button");
        assert_eq!((button.line, button.active_low, button.bias), (27, true, crate::board::Bias::PullUp));
        // Without a board (and in a plain build), generic: no GPIO, the old defaults.
        let c = Config::parse_with_board("", Some("generic")).expect("valid");
        assert_eq!((c.store_budget_mb, c.ring_len, c.http_max_clients), (64, 64, 64));
        assert_eq!((c.led, c.button), (None, None));
        assert!(c.interfaces.is_empty());
    }

    #[test]
    fn values_in_the_file_win_over_the_profile() {
        let text = "board = \"rpi4\"\n[net]\ninterfaces = []\n[store]\nbudget_mb = 100\nmax_channels = 3\n\
                    [http]\nmax_clients = 5\n[gpio]\nled = \"none\"\nbutton = { line = 22 }\n";
        let c = Config::parse(text).expect("valid");
        assert_eq!((c.store_budget_mb, c.max_channels, c.http_max_clients), (100, 3, 5));
        assert_eq!(c.ring_len, 64, "what the file leaves out still comes from rpi4");
        assert!(c.interfaces.is_empty());
        assert_eq!(c.led, None);
        let button = c.button.expect("configured");
        assert_eq!((button.chip.as_str(), button.line, button.active_low), ("gpiochip0", 22, false));
        // --board wins over the file's board, and the file's values still win over it.
        let c = Config::parse_with_board("board = \"rpi4\"\n[store]\nring_len = 10\n", Some("rpi-zero-w"))
            .expect("valid");
        assert_eq!((c.board.as_str(), c.store_budget_mb, c.ring_len), ("rpi-zero-w", 32, 10));
        assert_eq!(c.board_override.as_deref(), Some("rpi-zero-w"));
        // A line as its own table.
        let c =
            Config::parse("board = \"rpi5\"\n[gpio.led]\nchip = \"gpiochip4\"\nline = 17\n").expect("valid");
        assert_eq!(c.led.map(|l| (l.chip, l.line)), Some(("gpiochip4".into(), 17)));
        assert_eq!(c.button.map(|b| b.line), Some(27), "the profile's button stays");
    }

    #[test]
    fn an_unknown_board_is_an_error_listing_the_known_ones() {
        let e = Config::parse("# kitchen\nboard = \"rpi9\"\n").unwrap_err().to_string();
        assert!(e.starts_with("config line 2: board `rpi9` is unknown; known boards: generic, "), "{e}");
        assert!(e.contains("rpi4") && e.contains("tvbox-armv7"), "{e}");
        let e = Config::parse_with_board("", Some("rpi9")).unwrap_err().to_string();
        assert!(e.starts_with("board `rpi9` is unknown; known boards: "), "{e}");
        let e = Config::parse("[gpio]\nled = \"off\"\n").unwrap_err().to_string();
        assert!(e.starts_with("config line 2:") && e.contains("\"none\" or a table"), "{e}");
        let e = Config::parse("[gpio]\nled = { line = 3, pin = 4 }\n").unwrap_err().to_string();
        assert!(e.starts_with("config line 2:") && e.contains("pin"), "{e}");
        let e =
            Config::parse("[gpio]\nled = { chip = \"/dev/gpiochip0\", line = 3 }\n").unwrap_err().to_string();
        assert!(e.starts_with("config line 2: gpio.led chip must be a device name"), "{e}");
        let e = Config::parse("[store]\nmax_channels = 0\n").unwrap_err().to_string();
        assert_eq!(e, "config line 2: store.max_channels must be between 1 and 64");
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
