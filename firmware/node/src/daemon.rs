//! `shoal run`: wires the swarm driver, discovery, sources, the HTTP server and signals together.
//!
//! Shutdown on SIGTERM or SIGINT: the driver says goodbye to every peer, discovery withdraws the
//! mDNS record, and the process exits 0. SIGHUP re-reads the config: the log level changes at
//! once; other changes are reported as needing a restart.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use shoal_core::{Authenticator, LineupEntry};
use smol::channel::{bounded, Sender};
use smol::stream::StreamExt;

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

/// What the HTTP server asks of a running box.
pub(crate) struct Backend {
    pub(crate) commands: Sender<Command>,
    pub(crate) discovery: Arc<std::sync::Mutex<Option<Discovery>>>,
    pub(crate) lineup: Vec<crate::http::Listing>,
    pub(crate) guide: Option<crate::guide::GuideCache>,
    /// Segment bytes sent to TVs.
    pub(crate) served_bytes: std::sync::atomic::AtomicU64,
}

impl crate::http::Backend for Backend {
    fn lineup(&self) -> &[crate::http::Listing] {
        &self.lineup
    }

    async fn window(&self, channel: shoal_core::ChannelId) -> Option<swarm::Window> {
        let (reply, answer) = bounded(1);
        self.commands.send(Command::Window { channel, reply }).await.ok()?;
        answer.recv().await.ok()
    }

    async fn segment(&self, channel: shoal_core::ChannelId, seq: u64) -> Option<crate::http::StoredSegment> {
        let (reply, answer) = bounded(1);
        self.commands.send(Command::Segment { channel, seq, reply }).await.ok()?;
        answer.recv().await.ok().flatten()
    }

    async fn viewer(&self, channel: shoal_core::ChannelId) {
        let _ = self.commands.send(Command::Viewer(channel)).await;
    }

    fn served(&self, bytes: usize) {
        self.served_bytes.fetch_add(bytes as u64, std::sync::atomic::Ordering::Relaxed);
    }

    fn has_guide(&self) -> bool {
        self.guide.is_some()
    }

    async fn xmltv(&self) -> Option<Result<crate::http::Guide, String>> {
        Some(self.guide.as_ref()?.get().await)
    }

    async fn status(&self) -> Option<Value> {
        let (reply, answer) = bounded(1);
        self.commands.send(Command::Status(reply)).await.ok()?;
        let mut status = answer.recv().await.ok()?;
        let served = self.served_bytes.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(counters) = status.get_mut("counters").and_then(Value::as_object_mut) {
            counters.insert("served_bytes".into(), served.into());
        }
        let counters = self.discovery.lock().ok().and_then(|d| d.as_ref().map(Discovery::counters));
        if let (Some(d), Some(object)) = (counters, status.as_object_mut()) {
            object.insert(
                "discovery".into(),
                serde_json::json!({
                    "found": d.found,
                    "lost": d.lost,
                    "ignored_foreign_key": d.ignored_foreign_key,
                    "ignored_bad_txt": d.ignored_bad_txt,
                    "ignored_version": d.ignored_version,
                    "errors": d.errors,
                }),
            );
            if let Some(rejected) =
                object.get_mut("counters").and_then(|c| c.get_mut("rejected")).and_then(Value::as_object_mut)
            {
                rejected.insert("foreign_key".into(), d.ignored_foreign_key.into());
            }
        }
        Some(status)
    }
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
    let discovery = Arc::new(std::sync::Mutex::new(Some(discovery)));
    log::info!(
        "shoal {node_id:#} up: swarm on UDP {udp_port}, HTTP on {http_addr} (port {http_port}), board {}",
        config.board
    );

    smol::block_on(async {
        let driver = smol::spawn(swarm::drive(engine, socket, clock, command_rx, ingest, names));
        let sources = smol::spawn(crate::source::run(
            config.channels.clone(),
            fetcher.clone(),
            ingest_rx,
            commands.clone(),
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
        let lineup = current_lineup(&config);
        let guide = config
            .xmltv_url
            .as_deref()
            .and_then(|url| crate::origin::OriginUrl::parse(url).ok())
            .map(|url| crate::guide::GuideCache::new(url, fetcher.clone()));
        let backend = Arc::new(Backend {
            commands: commands.clone(),
            discovery: discovery.clone(),
            lineup,
            guide,
            served_bytes: Default::default(),
        });
        let http = smol::spawn(crate::http::serve(listener, backend, config.http_max_clients));

        let mut current = config;
        match async_signal::Signals::new([
            async_signal::Signal::Term,
            async_signal::Signal::Int,
            async_signal::Signal::Hup,
        ]) {
            Ok(mut signals) => {
                while let Some(signal) = signals.next().await {
                    match signal {
                        Ok(async_signal::Signal::Hup) => reload(&mut current, config_path.as_deref()),
                        Ok(signal) => {
                            log::info!("{signal:?}: shutting down");
                            break;
                        }
                        Err(e) => log::warn!("signal: {e}"),
                    }
                }
            }
            Err(e) => {
                log::error!("cannot handle signals ({e}); running until killed");
                smol::future::pending::<()>().await;
            }
        }
        drop(http);
        drop(forward);
        drop(sources);
        let _ = commands.send(Command::Shutdown).await;
        // The driver sends its goodbyes, then returns.
        smol::future::or(driver, async {
            smol::Timer::after(std::time::Duration::from_secs(3)).await;
            log::warn!("driver did not stop within 3 s");
        })
        .await;
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

fn reload(current: &mut Config, path: Option<&std::path::Path>) {
    let Some(path) = path else {
        log::warn!("SIGHUP: no config file to reload (started without one)");
        return;
    };
    match Config::load(path) {
        Ok(new) => {
            let restart = current.needs_restart(&new);
            if new.log_level != current.log_level {
                log::set_max_level(new.log_level);
                log::info!("SIGHUP: log level now {}", new.log_level);
            }
            if !restart.is_empty() {
                log::warn!("SIGHUP: changes to {} take effect after a restart", restart.join(", "));
            }
            current.log_level = new.log_level;
        }
        Err(e) => log::error!("SIGHUP: keeping the running config: {e}"),
    }
}
