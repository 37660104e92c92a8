//! `shoal demo`: three boxes in one process on this machine's loopback, sharing the built-in
//! test card, with an ephemeral network key — what Shoal does, for anyone with a player.
//!
//! The boxes know each other's addresses from the start instead of finding each other with
//! mDNS: mdns-sd joins the mDNS group on every interface as soon as it starts, which would
//! announce a demo on the real LAN. Everything else is what `shoal run` does.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use shoal_core::{Authenticator, Identity, NetworkKey};
use smol::future::FutureExt as _;
use smol::stream::StreamExt;

use crate::app::{self, BoxSpec, Keys, Peers, StartError};
use crate::config::Config;
use crate::discovery::DiscoveryEvent;
use crate::keys;
use crate::lineup::url::Scheme;
use crate::lineup::Channel;
use crate::lineup::OriginUrl;
use crate::model::status::Status;
use crate::origin::{Fetcher, Session};
use crate::status_cli;

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
    let mut testcard = Channel::new("testcard", "Shoal test card", "builtin:testcard", None)
        .unwrap_or_else(|e| unreachable!("the test card is a valid source: {e}"));
    testcard.number = Some(1);
    testcard.group = Some("Demo".into());
    testcard.segment = crate::testcard::SEGMENT_DURATION;
    config.channels = vec![testcard];
    config.board = "demo".to_owned();
    // The demo's boxes keep nothing on disk.
    config.cache = None;
    config.http_bind = Ipv4Addr::LOCALHOST.into();
    let loopback = |port: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let udp_port = |i: usize| http_base + boxes as u16 + i as u16;
    let identities: Vec<Identity> =
        (0..boxes).map(|_| keys::random_bytes().map(Identity::from_seed)).collect::<Result<_, _>>()?;
    let ids: Vec<_> = identities.iter().map(Identity::node_id).collect();
    smol::block_on(async {
        let started = Instant::now();
        say!(
            "Starting {boxes} boxes on 127.0.0.1 (HTTP ports {http_base}-{}, UDP ports {}-{})",
            http_base + boxes as u16 - 1,
            udp_port(0),
            udp_port(boxes - 1)
        );
        let mut running = Vec::new();
        let mut http_addrs = Vec::new();
        for (i, identity) in identities.into_iter().enumerate() {
            let http_addr = loopback(http_base + i as u16);
            // The boxes know each other as discovery would tell them: swarm and HTTP addresses.
            let peers = ids
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(j, &node_id)| DiscoveryEvent::PeerFound {
                    node_id,
                    addrs: vec![loopback(udp_port(j))],
                    http_port: http_base + j as u16,
                    board: "demo".to_owned(),
                })
                .collect();
            running.push(app::start(BoxSpec {
                config: config.clone(),
                config_path: None,
                keys: Keys { identity, auth: Authenticator::new(&key), fingerprint: key.fingerprint() },
                socket: app::listen_udp(loopback(udp_port(i)))?,
                listener: app::listen_http(http_addr)?,
                peers: Peers::Known(peers),
                status_led: false,
            })?);
            http_addrs.push(http_addr);
        }
        let mut progress = Progress::new(&http_addrs)?;
        progress.startup(started).await;
        for (i, http_addr) in http_addrs.iter().enumerate() {
            // tests/demo.rs and tools/bench read these lines up to `Try:`: the URL is the fourth word.
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
        stop.or(progress.watch()).await;
        progress.farewell().await;
        for running in running {
            running.shutdown().await;
        }
        Ok(())
    })
}

/// How long the demo waits for its boxes to answer and to see each other before it prints the
/// URLs anyway (with a warning). On loopback both take well under a second.
const STARTUP_WAIT: Duration = Duration::from_secs(10);

/// How often the demo asks its boxes while they start.
const STARTUP_POLL: Duration = Duration::from_millis(50);

/// How often the demo looks for players once it runs: a status request per box per second is
/// nothing next to the video it serves.
const WATCH_POLL: Duration = Duration::from_secs(1);

/// Playing time before the first summary: by then a few segments have crossed the swarm, so
/// the figures (peer efficiency, uplink savings) say something.
const FIRST_SUMMARY_AFTER: Duration = Duration::from_secs(6);

/// Time between summaries while someone watches.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Deadline of one status request to a box of the demo (they are on loopback).
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// What the demo tells its user as it goes: the boxes coming up and finding each other, then,
/// once a player watches, `shoal status`'s summary of box 0 (its swarm view covers every box).
/// It asks the boxes over HTTP like any client would, so the summary is exactly what
/// `shoal status --url` prints.
struct Progress {
    /// The HTTP root of each box.
    boxes: Vec<OriginUrl>,
    /// One connection per box, reused between polls.
    sessions: Vec<Session>,
    /// Whether a summary was ever printed: the farewell repeats it only then.
    summarised: bool,
    /// For a fresh connection at the farewell: the demo may have stopped in the middle of a
    /// request on the old one.
    fetcher: Fetcher,
}

impl Progress {
    fn new(addrs: &[SocketAddr]) -> Result<Progress, crate::origin::TrustError> {
        let fetcher = Fetcher::new(None, STATUS_TIMEOUT)?;
        let boxes: Vec<OriginUrl> = addrs
            .iter()
            .map(|addr| OriginUrl {
                scheme: Scheme::Http,
                host: addr.ip().to_string(),
                port: addr.port(),
                path_and_query: "/".into(),
            })
            .collect();
        let sessions = boxes.iter().map(|_| fetcher.session()).collect();
        Ok(Progress { boxes, sessions, summarised: false, fetcher })
    }

    /// Every box's `/api/status`, `None` for a box that did not answer.
    async fn statuses(&mut self) -> Vec<Option<Status>> {
        let mut statuses = Vec::with_capacity(self.boxes.len());
        for (session, base) in self.sessions.iter_mut().zip(&self.boxes) {
            statuses.push(status_cli::fetch_status(session, base).await.ok());
        }
        statuses
    }

    /// Waits until every box answers and sees all the others (at most [`STARTUP_WAIT`] each),
    /// saying so, then describes the channel.
    async fn startup(&mut self, started: Instant) {
        let n = self.boxes.len();
        let deadline = Instant::now() + STARTUP_WAIT;
        let statuses = loop {
            let statuses = self.statuses().await;
            let up = statuses.iter().flatten().count();
            if up == n {
                say!("  {n} boxes up after {:.2} s", started.elapsed().as_secs_f64());
                break statuses;
            }
            if Instant::now() >= deadline {
                say!("  warning: {up} of {n} boxes answer after {} s; carrying on", STARTUP_WAIT.as_secs());
                return;
            }
            smol::Timer::after(STARTUP_POLL).await;
        };
        let deadline = Instant::now() + STARTUP_WAIT;
        let mut statuses = statuses;
        loop {
            let alive: Vec<usize> =
                statuses.iter().map(|s| s.as_ref().map_or(0, |s| s.alive_peers().count())).collect();
            if alive.iter().all(|&a| a + 1 >= n) {
                say!("  every box sees its {} peers after {:.2} s", n - 1, started.elapsed().as_secs_f64());
                break;
            }
            if Instant::now() >= deadline {
                for (i, a) in alive.iter().enumerate().filter(|(_, &a)| a + 1 < n) {
                    say!(
                        "  warning: box {i} sees {a} of {} peers after {} s; carrying on",
                        n - 1,
                        STARTUP_WAIT.as_secs()
                    );
                }
                break;
            }
            smol::Timer::after(STARTUP_POLL).await;
            statuses = self.statuses().await;
        }
        let channel = statuses.first().and_then(Option::as_ref).and_then(|s| s.channels.first());
        let id = channel.map(|c| c.id.as_str()).filter(|id| !id.is_empty()).unwrap_or("testcard");
        say!("  channel {id} is ready: idle until a player asks for it, then one box fetches it and the others get it from the swarm\n");
    }

    /// Watches for players, forever: when one starts, a summary after [`FIRST_SUMMARY_AFTER`],
    /// then every [`SUMMARY_EVERY`] while anyone watches.
    async fn watch(&mut self) {
        let mut next_summary: Option<Instant> = None;
        let mut announced = false;
        loop {
            smol::Timer::after(WATCH_POLL).await;
            let statuses = self.statuses().await;
            let watched = statuses.iter().position(|s| s.as_ref().is_some_and(has_viewers));
            if let (Some(i), None) = (watched, next_summary) {
                if !announced {
                    say!(
                        "\nA player is watching on box {i}; a summary of the swarm follows in {} s.",
                        FIRST_SUMMARY_AFTER.as_secs()
                    );
                    announced = true;
                }
                next_summary = Some(Instant::now() + FIRST_SUMMARY_AFTER);
            }
            if next_summary.is_some_and(|at| Instant::now() >= at) {
                self.summary().await;
                next_summary = watched.map(|_| Instant::now() + SUMMARY_EVERY);
            }
        }
    }

    /// Prints box 0's summary, as `shoal status --url` would.
    async fn summary(&mut self) {
        let (Some(session), Some(base)) = (self.sessions.first_mut(), self.boxes.first()) else {
            return;
        };
        match status_cli::fetch(session, base).await {
            Ok(snapshot) => {
                say!("\n--- shoal status --url {}:{}", base.host, base.port);
                say!("{}", snapshot.render().trim_end());
                self.summarised = true;
            }
            Err(e) => say!("\n(no summary: {e})"),
        }
    }

    /// The last summary, when the demo stops after someone watched.
    async fn farewell(&mut self) {
        if self.summarised {
            if let Some(session) = self.sessions.first_mut() {
                *session = self.fetcher.session();
            }
            say!("\nThe demo stops. Last summary:");
            self.summary().await;
        }
    }
}

/// Whether a box has TV clients: a channel with viewers.
fn has_viewers(status: &Status) -> bool {
    status.channels.iter().any(|c| c.viewers > 0)
}
