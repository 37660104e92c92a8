//! `shoal demo`: three boxes in one process on this machine's loopback, sharing the built-in
//! test card, with an ephemeral network key — what Shoal does, for anyone with a player.
//!
//! The boxes know each other's addresses from the start instead of finding each other with
//! mDNS: mdns-sd joins the mDNS group on every interface as soon as it starts, which would
//! announce a demo on the real LAN. Everything else is what `shoal run` does.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use shoal_core::{Authenticator, Identity, NetworkKey};
use smol::channel::bounded;
use smol::stream::StreamExt;

use crate::config::{Channel, Config};
use crate::daemon::{current_lineup, engine_config, Backend, StartError};
use crate::keys;
use crate::swarm::{self, ChannelNames, Clock, Command};

/// Prints a line, ignoring a closed stdout: the demo keeps serving when its output is piped into
/// something that stopped reading (`shoal demo | head`).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Runs `boxes` boxes until SIGINT/SIGTERM, or for `seconds` if given. HTTP ports are
/// `http_base`, `http_base + 1`, ...; UDP ports follow them.
pub fn run(boxes: usize, http_base: u16, seconds: Option<u64>) -> Result<(), StartError> {
    let key = NetworkKey::from_bytes(keys::random_bytes()?);
    let mut config = Config::defaults();
    config.channels = vec![Channel {
        id: "testcard".into(),
        name: "Shoal test card".into(),
        source: "builtin:testcard".into(),
        always_on: false,
        number: Some(1),
        group: Some("Demo".into()),
        logo: None,
        max_bitrate: None,
    }];
    let fetcher = crate::origin::Fetcher::new(None, config.origin_timeout)?;
    config.http_bind = Ipv4Addr::LOCALHOST.into();
    let clock = Clock::new();
    let loopback = |port: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let udp_port = |i: usize| http_base + boxes as u16 + i as u16;

    let mut planned = Vec::new();
    for i in 0..boxes {
        let identity = Identity::from_seed(keys::random_bytes()?);
        planned.push((identity.node_id(), identity));
        let _ = i;
    }
    let ids: Vec<_> = planned.iter().map(|(id, _)| *id).collect();
    smol::block_on(async {
        let mut tasks = Vec::new();
        let mut shutdowns = Vec::new();
        for (i, (_, identity)) in planned.into_iter().enumerate() {
            let mut engine = shoal_core::Engine::new(
                engine_config(&config, identity, Authenticator::new(&key))?,
                clock.now(),
            )?;
            for (j, id) in ids.iter().enumerate() {
                if j != i {
                    engine.add_peer(clock.now(), *id, loopback(udp_port(j)));
                }
            }
            let socket = swarm::bind_to(loopback(udp_port(i)))
                .map_err(|source| StartError::Listen { what: format!("UDP {}", udp_port(i)), source })?;
            let http_addr = loopback(http_base + i as u16);
            let listener = std::net::TcpListener::bind(http_addr)
                .and_then(smol::Async::new)
                .map(smol::net::TcpListener::from)
                .map_err(|source| StartError::Listen { what: format!("HTTP {http_addr}"), source })?;
            let names: ChannelNames =
                config.channels.iter().map(|c| (c.channel_id(), c.name.clone())).collect();
            let (commands, command_rx) = bounded(256);
            let (ingest, ingest_rx) = bounded(64);
            tasks.push(smol::spawn(swarm::drive(engine, socket, clock, command_rx, ingest, names)));
            tasks.push(smol::spawn(crate::source::run(
                config.channels.clone(),
                fetcher.clone(),
                ingest_rx,
                commands.clone(),
            )));
            let backend = Arc::new(Backend {
                commands: commands.clone(),
                discovery: Arc::new(std::sync::Mutex::new(None)),
                lineup: current_lineup(&config),
                guide: None,
                served_bytes: Default::default(),
            });
            tasks.push(smol::spawn(crate::http::serve(listener, backend, config.http_max_clients)));
            shutdowns.push(commands);
            say!("box {i}: play http://{http_addr}/hls/testcard/index.m3u8   (lineup http://{http_addr}/playlist.m3u, status http://{http_addr}/api/status)");
        }
        say!("\nShoal demo: {boxes} boxes on this machine's loopback share one channel; the first player to ask starts it.");
        say!("Try: mpv http://127.0.0.1:{http_base}/hls/testcard/index.m3u8   (Ctrl-C stops the demo)");
        let stop = async {
            match seconds {
                Some(s) => {
                    smol::Timer::after(Duration::from_secs(s)).await;
                }
                None => {
                    match async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int])
                    {
                        Ok(mut signals) => {
                            signals.next().await;
                        }
                        Err(_) => smol::future::pending::<()>().await,
                    }
                }
            }
        };
        stop.await;
        for commands in &shutdowns {
            let _ = commands.send(Command::Shutdown).await;
        }
        smol::Timer::after(Duration::from_millis(200)).await;
        drop(tasks);
        Ok(())
    })
}
