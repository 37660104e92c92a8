//! One box, wired: the swarm driver, the sources, discovery, the HTTP server and the status LED,
//! on a socket and a listener the caller opened. [`start`] is the only place the parts meet
//! (mini-redis's `server::run`): `shoal run` ([`crate::daemon`]), `shoal demo` ([`crate::demo`])
//! and the in-process tests all start boxes through it, and [`Running::shutdown`] stops one the
//! same way for all of them.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_core::{Authenticator, Identity, LineupEntry};
use smol::channel::{bounded, Receiver, Sender};
use smol::net::TcpListener;
use smol::{Async, Task};

use crate::backend::{Backend, BackendParts, BoxIdentity, RelaySettings};
use crate::broadcast::live::LiveFeeds;
use crate::config::Config;
use crate::discovery::{Discovery, DiscoveryConfig, DiscoveryEvent, Interfaces};
use crate::keys;
use crate::model::Windows;
use crate::origin::Fetcher;
use crate::swarm::{self, Clock, Command, Wiring};
use crate::vod::VodCache;

/// Commands queued for the driver before senders wait (back-pressure on HTTP and discovery).
const COMMAND_QUEUE: usize = 256;
/// Source events queued for the driver (a segment each, at most).
const SOURCE_QUEUE: usize = 64;
/// How long a stopping box waits for the driver's goodbyes.
const GOODBYE_WAIT: Duration = Duration::from_secs(3);

/// Why a box could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A key problem.
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    /// The engine refused the settings.
    #[error("{0}")]
    Engine(#[from] shoal_core::engine::ConfigError),
    /// A socket could not be opened.
    #[error("cannot listen on {what}: {source}")]
    Listen {
        /// Which socket.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// mDNS could not start.
    #[error("discovery: {0}")]
    Discovery(String),
    /// The origin CA file is unusable.
    #[error(transparent)]
    Origin(#[from] crate::origin::TrustError),
}

/// Who the box is to the swarm.
pub struct Keys {
    /// Its identity (node id and signing key).
    pub identity: Identity,
    /// The deployment's datagram authenticator.
    pub auth: Authenticator,
    /// The network key's fingerprint, announced in mDNS so other deployments ignore the box.
    pub fingerprint: [u8; 4],
}

/// How the box finds its peers.
pub enum Peers {
    /// mDNS on the config's interfaces.
    Mdns,
    /// Known from the start, as discovery would tell them (the demo: no mDNS on the real LAN).
    Known(Vec<DiscoveryEvent>),
}

/// Everything a box is started from.
pub struct BoxSpec {
    /// The settings.
    pub config: Config,
    /// Where they came from: `POST /api/reload` re-reads it (`None`: nothing to reload).
    pub config_path: Option<PathBuf>,
    /// Identity and network key.
    pub keys: Keys,
    /// The swarm's UDP socket ([`swarm::bind`]).
    pub socket: Async<UdpSocket>,
    /// The HTTP listener.
    pub listener: TcpListener,
    /// How peers are found.
    pub peers: Peers,
    /// Whether the status LED and button task runs (boards), or not (the demo).
    pub status_led: bool,
}

/// A running box.
pub struct Running {
    /// The driver's command queue (status, segments, ...).
    pub commands: Sender<Command>,
    /// Reload requests from `POST /api/reload`: whoever owns the config answers each with what
    /// changed ([`crate::daemon`] does; without a config path none arrive).
    pub reloads: Receiver<Sender<String>>,
    /// The HTTP port it listens on (the listener may have been bound to port 0).
    pub http_port: u16,
    /// The UDP port of its swarm socket.
    pub udp_port: u16,
    driver: Task<()>,
    /// Sources, HTTP, discovery's forwarding, the LED: dropped (cancelled) before the driver stops.
    tasks: Vec<Task<()>>,
    discovery: Arc<Mutex<Option<Discovery>>>,
    vod: Option<VodCache>,
}

/// Starts a box: the engine on `spec.socket`, sources, discovery, HTTP on `spec.listener` and,
/// on boards, the status LED. Its tasks run on smol's global executor until
/// [`Running::shutdown`].
pub fn start(spec: BoxSpec) -> Result<Running, StartError> {
    let BoxSpec { config, config_path, keys, socket, listener, peers, status_led } = spec;
    let node_id = keys.identity.node_id();
    let fetcher = Fetcher::new(config.origin_ca_file.as_deref(), config.origin_timeout)?;
    let clock = Clock::new();
    let engine = shoal_core::Engine::new(engine_config(&config, keys.identity, keys.auth)?, clock.now())?;
    let udp_port = socket.get_ref().local_addr().map(|a| a.port()).unwrap_or(config.udp_port);
    let http_port = listener.local_addr().map(|a| a.port()).unwrap_or(config.http_port);

    let (commands, command_rx) = bounded(COMMAND_QUEUE);
    let (source_events, source_rx) = bounded(SOURCE_QUEUE);
    let (ingest, ingest_rx) = bounded(64);
    let mut tasks = Vec::new();
    let discovery = Arc::new(Mutex::new(None));
    match peers {
        Peers::Mdns => {
            let (found, found_rx) = bounded(256);
            let interfaces = if config.interfaces.is_empty() {
                Interfaces::AllNonLoopback
            } else {
                Interfaces::Named(config.interfaces.clone())
            };
            let mdns = Discovery::start(
                DiscoveryConfig {
                    node_id,
                    udp_port,
                    http_port,
                    board: config.board.clone(),
                    key_fingerprint: keys.fingerprint,
                    interfaces,
                },
                found,
            )
            .map_err(|e| StartError::Discovery(e.to_string()))?;
            *discovery.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(mdns);
            let commands = commands.clone();
            tasks.push(smol::spawn(async move {
                while let Ok(event) = found_rx.recv().await {
                    if commands.send(Command::Discovered(event)).await.is_err() {
                        break;
                    }
                }
            }));
        }
        Peers::Known(found) => {
            for event in found {
                let _ = commands.try_send(Command::Discovered(event));
            }
        }
    }

    let live = LiveFeeds::default();
    let windows = Windows::default();
    // Without its disk tier a box still serves live channels (and VOD from RAM): a cache
    // directory that cannot be opened is reported, not fatal.
    let vod = config.cache.as_ref().and_then(|c| match VodCache::open(&c.dir, c.max_bytes) {
        Ok(vod) => Some(vod),
        Err(e) => {
            log::error!("cache: cannot use {}: {e}; on-demand assets are not kept on disk", c.dir.display());
            None
        }
    });
    let guide = config
        .xmltv_url
        .as_deref()
        .and_then(|url| crate::lineup::OriginUrl::parse(url).ok())
        .map(|url| crate::guide::GuideCache::new(url, fetcher.clone()));
    let (reload_requests, reloads) = bounded::<Sender<String>>(4);
    let identify = crate::status_led::IdentifyRequest::default();
    let led_shown = status_led.then(|| crate::status_led::Shown::new(Mutex::new("booting")));
    let backend = Arc::new(Backend::new(BackendParts {
        commands: commands.clone(),
        discovery: discovery.clone(),
        lineup: config.channels.clone(),
        guide,
        identity: BoxIdentity {
            board: config.board.clone(),
            http_port,
            http_ip: (!config.http_bind.is_unspecified()).then_some(config.http_bind),
            started: Instant::now(),
        },
        admin_networks: config.admin_networks.clone(),
        reload: config_path.is_some().then_some(reload_requests),
        identify: identify.clone(),
        led: led_shown.clone(),
        relay: RelaySettings::of(&config),
        live: live.clone(),
        windows: windows.clone(),
        vod: vod.clone(),
        vod_sources: crate::backend::vod_sources(&config, &fetcher, &source_events),
    })?);

    let lineup = config.channels.clone();
    let wiring = Wiring {
        commands: command_rx,
        sources: source_rx,
        ingest,
        windows,
        live: live.clone(),
        vod: vod.clone(),
    };
    let driver = smol::spawn(async move { swarm::drive(engine, socket, clock, &lineup, wiring).await });
    tasks.push(smol::spawn(crate::source::run(
        config.channels.clone(),
        fetcher,
        config.relay_interface.clone(),
        live,
        ingest_rx,
        source_events,
        vod.clone(),
    )));
    tasks.push(smol::spawn(crate::http::serve(listener, backend, config.http_max_clients)));
    if let Some(shown) = led_shown {
        tasks.push(smol::spawn(crate::status_led::run(
            crate::status_led::StatusLed {
                led: config.led.clone(),
                button: config.button.clone(),
                identify,
                config_path,
                board: config.board.clone(),
                shown,
            },
            commands.clone(),
        )));
    }
    Ok(Running { commands, reloads, http_port, udp_port, driver, tasks, discovery, vod })
}

impl Running {
    /// Stops the box: HTTP, sources and the LED first, then the driver says goodbye to every
    /// peer (bounded), the disk tier saves its catalogs, and discovery withdraws the record.
    pub async fn shutdown(self) {
        let Running { commands, driver, tasks, discovery, vod, .. } = self;
        drop(tasks);
        let _ = commands.send(Command::Shutdown).await;
        smol::future::or(driver, async {
            smol::Timer::after(GOODBYE_WAIT).await;
            log::warn!("driver did not stop within {} s", GOODBYE_WAIT.as_secs());
        })
        .await;
        if let Some(vod) = &vod {
            vod.save_all().await;
        }
        let mdns = discovery.lock().ok().and_then(|mut d| d.take());
        if let Some(mdns) = mdns {
            // mdns-sd's shutdown waits for its daemon thread: not on the executor.
            smol::unblock(move || mdns.shutdown()).await;
        }
    }
}

/// The engine settings a box runs with.
fn engine_config(
    config: &Config,
    identity: Identity,
    auth: Authenticator,
) -> Result<shoal_core::Config, keys::KeyError> {
    let mut engine_config = shoal_core::Config::new(identity, auth);
    let seed = keys::random_bytes()?;
    engine_config.seed =
        u64::from_le_bytes([seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6], seed[7]]);
    engine_config.max_datagram = config.max_datagram;
    engine_config.upload_rate = u64::from(config.upload_mbit) * 1_000_000 / 8;
    engine_config.store_budget = config.store_budget_mb as usize * 1024 * 1024;
    engine_config.ring_len = config.ring_len;
    engine_config.window_segments = config.window_segments;
    engine_config.lineup = config
        .channels
        .iter()
        .map(|c| LineupEntry { channel: c.channel_id(), always_on: c.always_on })
        .collect();
    Ok(engine_config)
}

/// Binds the HTTP listener at `addr`.
pub fn listen_http(addr: std::net::SocketAddr) -> Result<TcpListener, StartError> {
    std::net::TcpListener::bind(addr)
        .and_then(Async::new)
        .map(TcpListener::from)
        .map_err(|source| StartError::Listen { what: format!("HTTP {addr}"), source })
}

/// Binds the swarm's UDP socket at `addr`.
pub fn listen_udp(addr: std::net::SocketAddr) -> Result<Async<UdpSocket>, StartError> {
    swarm::bind_to(addr).map_err(|source| StartError::Listen { what: format!("UDP {addr}"), source })
}
