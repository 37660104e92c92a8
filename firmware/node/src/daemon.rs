//! `shoal run`: wires the swarm driver, discovery, sources, the HTTP server and signals together.
//!
//! Shutdown on SIGTERM or SIGINT: the driver says goodbye to every peer, discovery withdraws the
//! mDNS record, and the process exits 0. SIGHUP re-reads the config: the log level changes at
//! once; other changes are reported as needing a restart.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use shoal_core::{Authenticator, LineupEntry};
use smol::channel::{bounded, Sender};
use smol::stream::StreamExt;

use crate::backend::{Backend, BackendParts, BoxIdentity};
use crate::config::Config;
use crate::discovery::{Discovery, DiscoveryConfig, Interfaces};
use crate::keys;
use crate::swarm::{self, ChannelNames, Clock, Command};

/// Commands queued for the driver before senders wait (back-pressure on sources and HTTP).
const COMMAND_QUEUE: usize = 256;

/// Why the daemon could not start.
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

/// Runs the box until SIGTERM or SIGINT.
pub fn run(config: Config, config_path: Option<PathBuf>) -> Result<(), StartError> {
    // Insecure boxes announce the fingerprint "open", which keyed boxes do not share.
    let (auth, fingerprint) = if config.insecure {
        log::warn!("insecure mode: datagrams are not authenticated; any device on the LAN can join");
        (Authenticator::insecure(), *b"open")
    } else {
        let key = keys::load_network_key(&config.network_key_file)?;
        (Authenticator::new(&key), key.fingerprint())
    };
    let (identity, created) = keys::load_or_create_identity(&config.state_dir)?;
    let node_id = identity.node_id();
    if created {
        log::info!("created identity {node_id:#} in {}", config.state_dir.display());
    }
    let engine_config = engine_config(&config, identity, auth)?;
    let fetcher = crate::origin::Fetcher::new(config.origin_ca_file.as_deref(), config.origin_timeout)?;
    let clock = Clock::new();
    let engine = shoal_core::Engine::new(engine_config, clock.now())?;
    let names: ChannelNames = config.channels.iter().map(|c| (c.channel_id(), c.name.clone())).collect();

    let socket = swarm::bind(config.udp_port)
        .map_err(|source| StartError::Listen { what: format!("UDP port {}", config.udp_port), source })?;
    let http_addr = std::net::SocketAddr::new(config.http_bind, config.http_port);
    let listener = std::net::TcpListener::bind(http_addr)
        .and_then(smol::Async::new)
        .map(smol::net::TcpListener::from)
        .map_err(|source| StartError::Listen { what: format!("HTTP {http_addr}"), source })?;
    let udp_port = socket.get_ref().local_addr().map(|a| a.port()).unwrap_or(config.udp_port);
    let http_port = listener.local_addr().map(|a| a.port()).unwrap_or(config.http_port);

    let (commands, command_rx) = bounded(COMMAND_QUEUE);
    let (ingest, ingest_rx) = bounded(64);
    let (found, found_rx) = bounded(256);
    let discovery = Discovery::start(
        DiscoveryConfig {
            node_id,
            udp_port,
            http_port,
            board: config.board.clone(),
            key_fingerprint: fingerprint,
            interfaces: if config.interfaces.is_empty() {
                Interfaces::AllNonLoopback
            } else {
                Interfaces::Named(config.interfaces.clone())
            },
        },
        found,
    )
    .map_err(|e| StartError::Discovery(e.to_string()))?;
    let discovery = Arc::new(Mutex::new(Some(discovery)));
    log::info!(
        "shoal {node_id:#} up: swarm on UDP {udp_port}, HTTP on {http_addr} (port {http_port}), board {}",
        config.board
    );

    let lineup = current_lineup(&config);
    let live = crate::broadcast::live::LiveFeeds::default();
    // Without its disk tier a box still serves live channels (and VOD from RAM): a cache
    // directory that cannot be opened is reported, not fatal.
    let vod = config.cache.as_ref().and_then(|c| match crate::vod::VodCache::open(&c.dir, c.max_bytes) {
        Ok(vod) => Some(vod),
        Err(e) => {
            log::error!("cache: cannot use {}: {e}; on-demand assets are not kept on disk", c.dir.display());
            None
        }
    });
    let guide = config
        .xmltv_url
        .as_deref()
        .and_then(|url| crate::origin::OriginUrl::parse(url).ok())
        .map(|url| crate::guide::GuideCache::new(url, fetcher.clone()));
    let (reload_requests, reload_rx) = bounded::<Sender<String>>(4);
    let identify = crate::status_led::IdentifyRequest::default();
    let led_shown = crate::status_led::Shown::new(Mutex::new("booting"));
    let backend = Arc::new(Backend::new(BackendParts {
        commands: commands.clone(),
        discovery: discovery.clone(),
        lineup,
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
        led: Some(led_shown.clone()),
        relay: crate::backend::RelaySettings::of(&config),
        live: live.clone(),
        vod: vod.clone(),
        vod_sources: crate::backend::vod_sources(&config, &fetcher),
    })?);

    smol::block_on(async {
        let driver = smol::spawn(swarm::drive(
            engine,
            socket,
            clock,
            command_rx,
            ingest,
            names,
            swarm::Serving { live: live.clone(), vod: vod.clone() },
        ));
        let sources = smol::spawn(crate::source::run(
            config.channels.clone(),
            fetcher.clone(),
            config.relay_interface.clone(),
            live.clone(),
            ingest_rx,
            commands.clone(),
            vod.clone(),
        ));
        let forward = {
            let commands = commands.clone();
            smol::spawn(async move {
                while let Ok(event) = found_rx.recv().await {
                    if commands.send(Command::Discovered(event)).await.is_err() {
                        break;
                    }
                }
            })
        };
        let http = smol::spawn(crate::http::serve(listener, backend, config.http_max_clients));
        let status_led = smol::spawn(crate::status_led::run(
            crate::status_led::StatusLed {
                led: config.led.clone(),
                button: config.button.clone(),
                identify,
                config_path: config_path.clone(),
                board: config.board.clone(),
                shown: led_shown,
            },
            commands.clone(),
        ));

        let mut current = config;
        match async_signal::Signals::new([
            async_signal::Signal::Term,
            async_signal::Signal::Int,
            async_signal::Signal::Hup,
        ]) {
            Ok(mut signals) => loop {
                // A signal, or a reload asked for over HTTP (`POST /api/reload`).
                let next = smol::future::or(async { Some(signals.next().await) }, async {
                    let reply = reload_rx.recv().await.ok()?;
                    let outcome = reload(&mut current, config_path.as_deref(), "reload request");
                    let _ = reply.send(outcome).await;
                    None
                });
                match next.await {
                    None => {}
                    Some(None) => break,
                    Some(Some(Ok(async_signal::Signal::Hup))) => {
                        reload(&mut current, config_path.as_deref(), "SIGHUP");
                    }
                    Some(Some(Ok(signal))) => {
                        log::info!("{signal:?}: shutting down");
                        break;
                    }
                    Some(Some(Err(e))) => log::warn!("signal: {e}"),
                }
            },
            Err(e) => {
                log::error!("cannot handle signals ({e}); running until killed");
                smol::future::pending::<()>().await;
            }
        }
        drop(http);
        drop(status_led);
        drop(forward);
        drop(sources);
        let _ = commands.send(Command::Shutdown).await;
        // The driver sends its goodbyes, then returns.
        smol::future::or(driver, async {
            smol::Timer::after(std::time::Duration::from_secs(3)).await;
            log::warn!("driver did not stop within 3 s");
        })
        .await;
        if let Some(vod) = &vod {
            vod.save_all().await;
        }
    });
    if let Some(discovery) = discovery.lock().ok().and_then(|mut d| d.take()) {
        discovery.shutdown();
    }
    log::info!("stopped");
    Ok(())
}

/// The engine settings a box runs with.
pub(crate) fn engine_config(
    config: &Config,
    identity: shoal_core::Identity,
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

pub(crate) fn current_lineup(config: &Config) -> Vec<crate::http::Listing> {
    config
        .channels
        .iter()
        .map(|c| crate::http::Listing {
            id: c.id.clone(),
            name: c.name.clone(),
            number: c.number,
            group: c.group.clone(),
            logo: c.logo.clone(),
            channel: c.channel_id(),
        })
        .collect()
}

/// Re-reads the config (SIGHUP or `POST /api/reload`): applies the log level, names what needs
/// a restart; what happened, for the operator.
fn reload(current: &mut Config, path: Option<&std::path::Path>, trigger: &str) -> String {
    let Some(path) = path else {
        log::warn!("{trigger}: no config file to reload (started without one)");
        return "no config file to reload (started without one)".to_owned();
    };
    match Config::load_with_board(path, current.board_override.as_deref()) {
        Ok(new) => {
            let restart = current.needs_restart(&new);
            let mut outcome = Vec::new();
            if new.log_level != current.log_level {
                log::set_max_level(new.log_level);
                log::info!("{trigger}: log level now {}", new.log_level);
                outcome.push(format!("log level now {}", new.log_level));
            }
            if !restart.is_empty() {
                log::warn!("{trigger}: changes to {} take effect after a restart", restart.join(", "));
                outcome.push(format!("changes to {} take effect after a restart", restart.join(", ")));
            }
            current.log_level = new.log_level;
            if outcome.is_empty() {
                "no change".to_owned()
            } else {
                outcome.join("; ")
            }
        }
        Err(e) => {
            log::error!("{trigger}: keeping the running config: {e}");
            format!("keeping the running config: {e}")
        }
    }
}
