//! `shoal run`: loads the keys, opens the sockets, starts the box ([`crate::app::start`]) and
//! handles signals.
//!
//! Shutdown on SIGTERM or SIGINT: the driver says goodbye to every peer, discovery withdraws the
//! mDNS record, and the process exits 0. SIGHUP re-reads the config: the log level changes at
//! once; other changes are reported as needing a restart.

use std::path::PathBuf;

use shoal_core::Authenticator;
use smol::stream::StreamExt;

use crate::app::{self, BoxSpec, Keys, Peers, StartError};
use crate::config::Config;
use crate::keys;

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
    let socket = crate::swarm::bind(config.udp_port)
        .map_err(|source| StartError::Listen { what: format!("UDP port {}", config.udp_port), source })?;
    let http_addr = std::net::SocketAddr::new(config.http_bind, config.http_port);
    let listener = app::listen_http(http_addr)?;
    let board = config.board.clone();
    let spec = BoxSpec {
        config: config.clone(),
        config_path: config_path.clone(),
        keys: Keys { identity, auth, fingerprint },
        socket,
        listener,
        peers: Peers::Mdns,
        status_led: true,
    };
    smol::block_on(async {
        let running = app::start(spec)?;
        log::info!(
            "shoal {node_id:#} up: swarm on UDP {}, HTTP on {http_addr} (port {}), board {board}",
            running.udp_port,
            running.http_port,
        );
        let mut current = config;
        match async_signal::Signals::new([
            async_signal::Signal::Term,
            async_signal::Signal::Int,
            async_signal::Signal::Hup,
        ]) {
            Ok(mut signals) => loop {
                // A signal, or a reload asked for over HTTP (`POST /api/reload`).
                let next = smol::future::or(async { Some(signals.next().await) }, async {
                    // Without a config file nobody sends reloads: wait for signals alone.
                    let Ok(reply) = running.reloads.recv().await else {
                        return smol::future::pending().await;
                    };
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
        running.shutdown().await;
        Ok::<(), StartError>(())
    })?;
    log::info!("stopped");
    Ok(())
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
