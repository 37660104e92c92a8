//! The `shoal` command line.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::config::{Config, DEFAULT_CONFIG_PATH};
use crate::lineup::OriginUrl;
use crate::status_cli;

/// What the user asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Cli {
    /// Run the box.
    Run {
        /// `--config`, if given.
        config: Option<PathBuf>,
        /// `--key`: overrides `network_key_file`.
        key: Option<PathBuf>,
        /// `--state-dir`: overrides `state_dir`.
        state_dir: Option<PathBuf>,
        /// `--board`: overrides `board` (a known profile's name).
        board: Option<String>,
    },
    /// Write a network key.
    Keygen {
        /// Where.
        out: PathBuf,
        /// Replace an existing key.
        force: bool,
    },
    /// Validate a config file.
    CheckConfig {
        /// Which file.
        config: PathBuf,
        /// `--board`: overrides `board` (a known profile's name).
        board: Option<String>,
    },
    /// Run three boxes on loopback with the built-in test card.
    Demo {
        /// How many boxes.
        boxes: usize,
        /// First HTTP port.
        port: u16,
        /// Stop after this many seconds.
        seconds: Option<u64>,
    },
    /// Summarise a running box and its swarm.
    Status {
        /// The box's HTTP address (`--url`).
        url: OriginUrl,
    },
    /// Bring an on-demand channel's asset onto the LAN before it is watched.
    Prefill {
        /// The channel's id in the lineup.
        channel: String,
        /// Keep the whole asset on this box too.
        full: bool,
        /// The box's HTTP address (`--url`).
        url: OriginUrl,
        /// Give up after this long.
        timeout: std::time::Duration,
    },
    /// Print version, target and board.
    Version,
    /// Print help.
    Help(Option<String>),
}

/// Help for the program and each command.
pub const HELP: &str = "\
shoal — LAN video distribution for set-top boxes

usage: shoal <command> [options]

commands:
  run            run this box (finds its peers by mDNS, shares channels, serves TVs)
  keygen         write a new network key for a deployment
  check-config   validate a config file and print what it means
  status         summarise a running box and its swarm: peers, channels, traffic, store
  prefill        fetch an on-demand channel onto the LAN (or whole onto this box) before an event
  demo           three boxes on this machine's loopback sharing a test card: play it in mpv or VLC
  version        print version, target and board
  help [command] print help for a command

Every box of a deployment needs the same network key file: make it once with `shoal keygen`
and copy it to each box. Logs go to stderr with timestamps; SHOAL_LOG=debug for more.";

const RUN_HELP: &str = "\
usage: shoal run [--config PATH] [--key PATH] [--state-dir DIR] [--board NAME]

  --config PATH     config file (default /etc/shoal/shoal.toml; built-in defaults if that is absent)
  --key PATH        network key file (overrides network_key_file)
  --state-dir DIR   where the node identity lives (overrides state_dir)
  --board NAME      board profile for the defaults (overrides board; values in the config still win)

Stops cleanly on SIGTERM or SIGINT (peers are told); SIGHUP reloads the log level.";

const KEYGEN_HELP: &str = "\
usage: shoal keygen [--out PATH] [--force]

  --out PATH   where to write the key (default /etc/shoal/network.key), mode 0600
  --force      replace an existing key (every box then needs the new one)";

const CHECK_HELP: &str = "\
usage: shoal check-config [--config PATH] [--board NAME]

  --board NAME   check it as `shoal run --board NAME` would read it

Exits 0 and prints the settings if the file is valid; otherwise prints the field and line at fault.";

const DEMO_HELP: &str = "\
usage: shoal demo [--boxes N] [--port P] [--seconds S]

  --boxes N     boxes to run, 2..=8 (default 3)
  --port P      HTTP port of the first box (default 8470; the others follow, then UDP)
  --seconds S   stop after S seconds (default: at Ctrl-C)

Boxes are in one process on 127.0.0.1 with an ephemeral key and know each other directly
(no mDNS, so nothing is announced on your network). The demo says how its start goes, then
prints the URLs; once a player watches, it prints what `shoal status` shows of box 0.";

const STATUS_HELP: &str = "\
usage: shoal status [--url URL]

  --url URL   the box's HTTP address (default http://127.0.0.1:7471, this box); `host:port`
              is enough

Prints the box (id, board, version, uptime, addresses), its peers (address, round trip, last
heard, alive or banned), its channels (state, ingester, viewers, bitrate, segments held, bytes
from the origin, from peers and to TVs, and the swarm's origin fetches per segment, peer
efficiency and uplink savings), every box of the swarm, and the store. Exits 1 when the box
cannot be reached or does not answer a status.";

const PREFILL_HELP: &str = "\
usage: shoal prefill <channel> [--full] [--url URL] [--timeout SECONDS]

  <channel>         the channel's id in the lineup (an HLS on-demand asset)
  --full            also keep every segment on this box's disk, so it plays on with the LAN cut
  --url URL         the box's HTTP address (default http://127.0.0.1:7471, this box)
  --timeout SECONDS give up after this long (default 3600)

The swarm fetches the asset from its origin once; each box keeps its share on disk (every
segment on two boxes), or all of it with --full. Prints progress; exits 0 when every segment
is on the LAN (with --full: on this box), 1 on an error or at the timeout. The box goes on in
the background after a timeout; running the command again follows it anew.";

/// Help text for `command`.
pub fn help(command: Option<&str>) -> &'static str {
    match command {
        Some("run") => RUN_HELP,
        Some("keygen") => KEYGEN_HELP,
        Some("check-config") => CHECK_HELP,
        Some("demo") => DEMO_HELP,
        Some("status") => STATUS_HELP,
        Some("prefill") => PREFILL_HELP,
        _ => HELP,
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cli, lexopt::Error> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let command = match parser.next()? {
        None => return Ok(Cli::Help(None)),
        Some(Long("help") | Short('h')) => return Ok(Cli::Help(None)),
        Some(Long("version") | Short('V')) => return Ok(Cli::Version),
        Some(Value(v)) => v.string()?,
        Some(other) => return Err(other.unexpected()),
    };
    let mut config = None;
    let mut key = None;
    let mut state_dir = None;
    let mut out = None;
    let mut force = false;
    let mut topic = None;
    let mut boxes = 3usize;
    let mut port = 8470u16;
    let mut seconds = None;
    let mut url = None;
    let mut board = None;
    let mut channel = None;
    let mut full = false;
    let mut timeout = std::time::Duration::from_secs(3600);
    while let Some(arg) = parser.next()? {
        match (command.as_str(), arg) {
            (_, Long("help") | Short('h')) => return Ok(Cli::Help(Some(command))),
            ("run" | "check-config", Long("config") | Short('c')) => {
                config = Some(PathBuf::from(parser.value()?))
            }
            ("run", Long("key")) => key = Some(PathBuf::from(parser.value()?)),
            ("run", Long("state-dir")) => state_dir = Some(PathBuf::from(parser.value()?)),
            ("run" | "check-config", Long("board")) => {
                let name = parser.value()?.string()?;
                crate::board::BoardProfile::named(&name)
                    .map_err(|e| lexopt::Error::Custom(format!("--board: {e}").into()))?;
                board = Some(name);
            }
            ("keygen", Long("out") | Short('o')) => out = Some(PathBuf::from(parser.value()?)),
            ("keygen", Long("force")) => force = true,
            ("help", Value(v)) if topic.is_none() => topic = Some(v.string()?),
            ("demo", Long("boxes")) => {
                boxes = parser.value()?.parse()?;
                if !(2..=8).contains(&boxes) {
                    return Err(lexopt::Error::Custom("--boxes must be between 2 and 8".into()));
                }
            }
            ("demo", Long("port")) => port = parser.value()?.parse()?,
            ("demo", Long("seconds")) => seconds = Some(parser.value()?.parse()?),
            ("prefill", Value(v)) if channel.is_none() => channel = Some(v.string()?),
            ("prefill", Long("full")) => full = true,
            ("prefill", Long("timeout")) => {
                let seconds: u64 = parser.value()?.parse()?;
                if !(1..=7 * 86_400).contains(&seconds) {
                    return Err(lexopt::Error::Custom("--timeout must be 1 to 604800 seconds".into()));
                }
                timeout = std::time::Duration::from_secs(seconds);
            }
            ("status" | "prefill", Long("url") | Long("http") | Short('u')) => {
                let text = parser.value()?.string()?;
                let parsed = status_cli::parse_url(&text)
                    .map_err(|e| lexopt::Error::Custom(format!("--url: {e}").into()))?;
                url = Some(parsed);
            }
            (_, other) => return Err(other.unexpected()),
        }
    }
    Ok(match command.as_str() {
        "run" => Cli::Run { config, key, state_dir, board },
        "keygen" => Cli::Keygen { out: out.unwrap_or_else(|| "/etc/shoal/network.key".into()), force },
        "check-config" => {
            Cli::CheckConfig { config: config.unwrap_or_else(|| DEFAULT_CONFIG_PATH.into()), board }
        }
        "version" => Cli::Version,
        "status" => Cli::Status {
            url: match url {
                Some(url) => url,
                None => status_cli::parse_url(status_cli::DEFAULT_URL)
                    .map_err(|e| lexopt::Error::Custom(e.to_string().into()))?,
            },
        },
        "prefill" => Cli::Prefill {
            channel: channel.ok_or_else(|| {
                lexopt::Error::Custom("prefill: which channel? (shoal prefill <channel>)".into())
            })?,
            full,
            url: match url {
                Some(url) => url,
                None => status_cli::parse_url(status_cli::DEFAULT_URL)
                    .map_err(|e| lexopt::Error::Custom(e.to_string().into()))?,
            },
            timeout,
        },
        "demo" => {
            if port < 1024 || u32::from(port) + 2 * boxes as u32 > 65_535 {
                return Err(lexopt::Error::Custom(
                    "--port must be at least 1024 and leave room for 2 ports per box".into(),
                ));
            }
            Cli::Demo { boxes, port, seconds }
        }
        "help" => Cli::Help(topic),
        other => {
            return Err(lexopt::Error::Custom(format!("unknown command `{other}` (see `shoal help`)").into()))
        }
    })
}

/// The config `shoal run` uses: the given file, else the default path if it exists, else the
/// built-in defaults; for `board` (`--board`) when given. Returns the file it read, for SIGHUP.
pub fn load_run_config(
    path: Option<PathBuf>,
    board: Option<&str>,
) -> Result<(Config, Option<PathBuf>), crate::config::ConfigError> {
    match path {
        Some(path) => Ok((Config::load_with_board(&path, board)?, Some(path))),
        None => {
            let default = PathBuf::from(DEFAULT_CONFIG_PATH);
            if default.exists() {
                Ok((Config::load_with_board(&default, board)?, Some(default)))
            } else {
                Ok((Config::parse_with_board("", board)?, None))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_commands() {
        assert_eq!(
            parse(args(&["run", "--config", "/x.toml"])).expect("valid"),
            Cli::Run { config: Some("/x.toml".into()), key: None, state_dir: None, board: None }
        );
        assert_eq!(
            parse(args(&["run", "--board", "rpi4"])).expect("valid"),
            Cli::Run { config: None, key: None, state_dir: None, board: Some("rpi4".into()) }
        );
        let bad = parse(args(&["check-config", "--board", "rpi9"])).unwrap_err().to_string();
        assert!(bad.starts_with("--board: board `rpi9` is unknown; known boards: generic, "), "{bad}");
        assert_eq!(
            parse(args(&["keygen", "--out", "k", "--force"])).expect("valid"),
            Cli::Keygen { out: "k".into(), force: true }
        );
        assert_eq!(parse(args(&["version"])).expect("valid"), Cli::Version);
        assert_eq!(parse(args(&["run", "--help"])).expect("valid"), Cli::Help(Some("run".into())));
        assert!(parse(args(&["run", "--out", "x"])).is_err());
        assert!(parse(args(&["fly"])).unwrap_err().to_string().contains("unknown command"));
        let Cli::Status { url } = parse(args(&["status"])).expect("valid") else { panic!("not status") };
        assert_eq!(url.to_string(), "http://127.0.0.1:7471/");
        let Cli::Status { url } = parse(args(&["status", "--url", "10.0.0.7:8080"])).expect("valid") else {
            panic!("not status")
        };
        assert_eq!(url.to_string(), "http://10.0.0.7:8080/");
        let bad = parse(args(&["status", "--url", "ftp://box"])).unwrap_err().to_string();
        assert!(bad.starts_with("--url: `ftp://box` is not an http:// or https:// URL"), "{bad}");
        assert!(parse(args(&["status", "--url"])).is_err());
        assert!(parse(args(&["status", "extra"])).is_err());
        let Cli::Prefill { channel, full, url, timeout } =
            parse(args(&["prefill", "films", "--full", "--url", "10.0.0.7:7471", "--timeout", "60"]))
                .expect("valid")
        else {
            panic!("not prefill")
        };
        assert_eq!(
            (channel.as_str(), full, url.to_string(), timeout.as_secs()),
            ("films", true, "http://10.0.0.7:7471/".into(), 60)
        );
        assert!(parse(args(&["prefill"])).unwrap_err().to_string().contains("which channel"));
        assert!(parse(args(&["prefill", "a", "b"])).is_err());
        assert!(parse(args(&["prefill", "a", "--timeout", "0"])).is_err());
    }
}
