//! Discovery: find the other boxes of this deployment on the LAN with mDNS / DNS-SD.
//!
//! Every box registers one `_shoal._udp.local.` service named `shoal-<first 8 hex digits of its
//! node id>`, whose SRV port is the box's UDP port and whose TXT record says who it is:
//!
//! | key     | value                                                   |
//! |---------|---------------------------------------------------------|
//! | `id`    | node id, 32 lowercase hex digits                        |
//! | `v`     | wire protocol version (`shoal_core::wire::PROTOCOL_VERSION`), decimal |
//! | `http`  | HTTP status port, decimal                               |
//! | `board` | board name, 1 to 64 bytes of UTF-8 without control characters |
//! | `fp`    | network key fingerprint, 8 lowercase hex digits         |
//!
//! Every box also registers its dashboard as an `_http._tcp.local.` service named
//! `Shoal <first 8 hex digits> (<board>)`, at the HTTP port with TXT `path=/`, on the same host
//! name: browsers and service browsers (Avahi's, macOS's) list the boxes of a LAN under that
//! name. Boxes do not browse it. Both records are withdrawn together on shutdown.
//!
//! Every box also browses `_shoal._udp` with one long-lived browser (browsing again within a
//! second is rate-limited by RFC 6762 and costs about a second). TXT records are parsed strictly
//! at this boundary: a box of another deployment (another key fingerprint), of another protocol
//! version, or with a malformed record is counted in [`DiscoveryStatus`] and ignored, never
//! passed on. Unknown keys are ignored, so later versions may add some.
//!
//! mdns-sd runs its own thread. [`Discovery::start`] adds one more, the browse thread, which drains
//! the browser into a peer table and sends [`DiscoveryEvent`]s to the caller's channel. It never
//! waits on that channel while mdns-sd has events for it, because mdns-sd ends a subscription
//! whose channel fills up (1000 events) and discovery would stop for good. Events the caller has
//! not taken yet wait in an outbox that keeps only the newest event per node, so it is bounded by
//! the peer table.
//!
//! `PeerLost` comes from a peer's goodbye (a clean shutdown) or from its records expiring in the
//! mDNS cache; a box that loses power is noticed much sooner by the UDP layer than here.
//!
//! The pieces: `txt` writes our TXT record and parses others' (pure functions); `peers` holds
//! the peer table and the outbox (no IO, fed mdns-sd's events); this file runs the mdns-sd
//! daemon and the browse thread.
//!
//! Network safety: mdns-sd joins the mDNS groups on every interface as soon as its daemon starts,
//! before [`Interfaces`] narrows them down. Tests that start [`Discovery`] therefore run inside a
//! network namespace that they create (`tests/discovery_netns.rs`); the example below is
//! `no_run` for the same reason.
//!
//! ```no_run
//! use shoal::discovery::{Discovery, DiscoveryConfig, DiscoveryEvent, Interfaces};
//! use shoal_core::NodeId;
//!
//! let (tx, rx) = smol::channel::bounded(64);
//! let config = DiscoveryConfig {
//!     node_id: NodeId([7; 16]),
//!     udp_port: 7400,
//!     http_port: 8080,
//!     board: "rpi4".into(),
//!     key_fingerprint: [0xde, 0xad, 0xbe, 0xef],
//!     interfaces: Interfaces::AllNonLoopback,
//! };
//! let discovery = Discovery::start(config, tx)?;
//! smol::block_on(async {
//!     while let Ok(event) = rx.recv().await {
//!         match event {
//!             DiscoveryEvent::PeerFound { node_id, addrs, .. } => println!("{node_id} at {addrs:?}"),
//!             DiscoveryEvent::PeerLost { node_id } => println!("{node_id} left"),
//!         }
//!     }
//! });
//! discovery.shutdown();
//! # Ok::<(), shoal::discovery::DiscoveryError>(())
//! ```

mod peers;
mod txt;

use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use mdns_sd::{DaemonEvent, IfKind, IfPredicate, Receiver, ServiceDaemon, ServiceEvent, ServiceInfo};
use shoal_core::NodeId;
use smol::channel::Sender;
use smol::future::{self, FutureExt as _};

use peers::{Counters, PeerTable};
use txt::{hex, parse_board, txt_records, BOARD_MAX_LEN};

use crate::model::status::DiscoveryStatus;

/// The DNS-SD service type every box registers and browses.
pub const SERVICE_TYPE: &str = "_shoal._udp.local.";

/// The DNS-SD service type of web pages (RFC 6763 section 7), under which each box announces its
/// dashboard.
pub const HTTP_SERVICE_TYPE: &str = "_http._tcp.local.";

/// Longest DNS label (RFC 1035 section 2.3.4): the dashboard's instance name is cut to fit,
/// else mdns-sd could not write the record at all.
const MAX_LABEL_BYTES: usize = 63;

/// Everything `shutdown` may take: the daemon that owns us wants to exit within a second.
const SHUTDOWN_BUDGET: Duration = Duration::from_millis(900);

/// How long `shutdown` waits for the browse thread; it stops at its next await point, which is
/// microseconds away unless the machine is overloaded.
const STOP_THREAD_WAIT: Duration = Duration::from_millis(200);

/// How long `shutdown` waits for mdns-sd to confirm the goodbye was sent.
const UNREGISTER_WAIT: Duration = Duration::from_millis(400);

/// Pause before browsing again after mdns-sd ended our subscription: peers would rate-limit an
/// earlier query anyway (RFC 6762 section 6: one second).
const REBROWSE_DELAY: Duration = Duration::from_secs(1);

/// Attempts to browse again while mdns-sd's command queue is full, before giving up.
const REBROWSE_ATTEMPTS: u32 = 10;

/// What a box announces about itself, and where it speaks mDNS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// This box; announced in TXT `id` as 32 lowercase hex digits.
    pub node_id: NodeId,
    /// The UDP port of the data plane; announced as the SRV port.
    pub udp_port: u16,
    /// The HTTP status port; announced in TXT `http`.
    pub http_port: u16,
    /// The board name, for people and metrics; announced in TXT `board`. 1 to 64 bytes,
    /// no control characters.
    pub board: String,
    /// `shoal_core::NetworkKey::fingerprint` of this deployment's key; announced in TXT `fp`.
    /// Boxes with another fingerprint are ignored.
    pub key_fingerprint: [u8; 4],
    /// Interfaces on which to announce and browse.
    pub interfaces: Interfaces,
}

/// Interfaces on which discovery announces and browses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Interfaces {
    /// Every interface that is up, except loopback: what a box in the field wants.
    AllNonLoopback,
    /// These interfaces, by name (`"eth0"`, `"wlan0"`, or `"lo"` for a demo on one machine). A
    /// name with no address yet is used once it gets one.
    Named(Vec<String>),
}

/// What discovery tells the daemon about other boxes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscoveryEvent {
    /// A box of this deployment was found, or its addresses, HTTP port or board changed: `addrs`
    /// is then the new full set, and replaces the previous one.
    PeerFound {
        /// The box.
        node_id: NodeId,
        /// Where its UDP port is reached: every address it announced, IPv4 and IPv6, with the
        /// SRV port. IPv6 link-local addresses carry their scope id; those without one are left
        /// out. Sorted, IPv4 first; never empty.
        addrs: Vec<SocketAddr>,
        /// Its HTTP status port.
        http_port: u16,
        /// Its board name.
        board: String,
    },
    /// A box said goodbye or its records expired. When the caller is slow, a `PeerFound` not yet
    /// taken is replaced by this event, so a `PeerLost` may name a node never reported found.
    PeerLost {
        /// The box.
        node_id: NodeId,
    },
}

impl DiscoveryEvent {
    /// The box the event is about.
    pub fn node_id(&self) -> NodeId {
        match self {
            DiscoveryEvent::PeerFound { node_id, .. } | DiscoveryEvent::PeerLost { node_id } => *node_id,
        }
    }
}

/// Why discovery could not start.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The board name cannot go in a TXT record.
    #[error(
        "discovery: board name {board:?} cannot be announced: it must be 1 to {BOARD_MAX_LEN} \
         bytes long without control characters"
    )]
    InvalidBoard {
        /// The rejected name.
        board: String,
    },
    /// `Interfaces::Named` lists no interface, or an empty name.
    #[error(
        "discovery: `interfaces` must name at least one interface (for example \"eth0\") and no \
         empty name, or use all non-loopback interfaces"
    )]
    NoInterfaces,
    /// mdns-sd refused a command; the daemon it started, if any, has been shut down.
    #[error("discovery: mDNS could not {action}: {reason}")]
    Mdns {
        /// What was being done, for example "start the mDNS daemon".
        action: &'static str,
        /// mdns-sd's explanation.
        reason: String,
    },
    /// The browse thread could not be started (out of memory or threads).
    #[error("discovery: cannot start the browse thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// A running discovery: this box announced, others browsed. Stop it with [`Discovery::shutdown`];
/// dropping it stops it too, but without waiting for the goodbye to go out.
pub struct Discovery {
    daemon: ServiceDaemon,
    /// Our `_shoal._udp` service's full name, which `unregister` needs.
    fullname: String,
    /// Our dashboard's `_http._tcp` full name, likewise.
    http_fullname: String,
    counters: Arc<Counters>,
    /// Closing it stops the browse thread.
    stop: Sender<()>,
    /// Disconnects when the browse thread has finished.
    browse_done: mpsc::Receiver<()>,
    browse_thread: Option<thread::JoinHandle<()>>,
    /// Set by `shutdown`, so `Drop` does not stop twice.
    stopped: bool,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("fullname", &self.fullname)
            .field("counters", &self.counters())
            .finish_non_exhaustive()
    }
}

impl Discovery {
    /// Announces this box and starts looking for others; events go to `events`.
    ///
    /// Returns once the mDNS daemon and the browse thread run; the first peers arrive within
    /// about a second. `events` may be bounded: while the caller does not take events, the
    /// newest one per node waits.
    pub fn start(
        config: DiscoveryConfig,
        events: Sender<DiscoveryEvent>,
    ) -> Result<Discovery, DiscoveryError> {
        // Everything that can be checked is checked before mdns-sd opens a socket.
        validate(&config)?;
        let service = service_info(&config)?;
        let dashboard = dashboard_info(&config)?;
        warn_about_missing_interfaces(&config.interfaces);

        let daemon = ServiceDaemon::new().map_err(mdns_error("start the mDNS daemon"))?;
        match Self::run(daemon.clone(), service, dashboard, &config, events) {
            Ok(discovery) => Ok(discovery),
            Err(e) => {
                // Don't leave a daemon running on interfaces nobody asked for.
                if let Err(stop) = daemon.shutdown() {
                    debug!("discovery: stopping the mDNS daemon after a failed start: {stop}");
                }
                Err(e)
            }
        }
    }

    /// What discovery has seen so far.
    pub fn counters(&self) -> DiscoveryStatus {
        self.counters.snapshot()
    }

    /// Says goodbye on the LAN (peers see `PeerLost` at once) and stops, within a second.
    /// No event is sent after it returns, unless the browse thread did not stop in time (logged).
    pub fn shutdown(mut self) {
        self.stopped = true;
        let deadline = Instant::now() + SHUTDOWN_BUDGET;

        self.stop.close();
        match self.browse_done.recv_timeout(STOP_THREAD_WAIT) {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                warn!("discovery: the browse thread did not stop within {STOP_THREAD_WAIT:?}; left running")
            }
            // Disconnected: the thread has finished (we never send on this channel).
            _ => {
                if let Some(thread) = self.browse_thread.take() {
                    if thread.join().is_err() {
                        error!("discovery: the browse thread panicked");
                    }
                }
            }
        }

        // Both goodbyes go out before waiting for either: the wait is shared.
        let unregistering: Vec<_> = [&self.fullname, &self.http_fullname]
            .into_iter()
            .filter_map(|name| match self.daemon.unregister(name) {
                Ok(status) => Some((name, status)),
                Err(e) => {
                    warn!("discovery: cannot unregister {name}: {e}");
                    None
                }
            })
            .collect();
        let unregistered_by = Instant::now() + UNREGISTER_WAIT;
        for (name, status) in unregistering {
            let wait = unregistered_by.min(deadline).saturating_duration_since(Instant::now());
            match status.recv_timeout(wait) {
                Ok(status) => debug!("discovery: unregistered {name}: {status:?}"),
                Err(e) => warn!("discovery: no goodbye confirmation for {name}: {e}"),
            }
        }

        match self.daemon.shutdown() {
            Ok(status) => match status.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(status) => debug!("discovery: mDNS daemon: {status:?}"),
                Err(e) => warn!("discovery: the mDNS daemon did not confirm its shutdown: {e}"),
            },
            Err(e) => warn!("discovery: cannot stop the mDNS daemon: {e}"),
        }
    }

    /// Selects interfaces, subscribes, registers and starts the browse thread on `daemon`.
    fn run(
        daemon: ServiceDaemon,
        service: ServiceInfo,
        dashboard: ServiceInfo,
        config: &DiscoveryConfig,
        events: Sender<DiscoveryEvent>,
    ) -> Result<Discovery, DiscoveryError> {
        daemon.disable_interface(IfKind::All).map_err(mdns_error("disable interfaces"))?;
        daemon
            .enable_interface(if_kinds(&config.interfaces))
            .map_err(mdns_error("enable the selected interfaces"))?;
        let monitor = daemon.monitor().map_err(mdns_error("monitor its daemon"))?;
        let browse = daemon.browse(SERVICE_TYPE).map_err(mdns_error("browse for other boxes"))?;
        let fullname = service.get_fullname().to_owned();
        daemon.register(service).map_err(mdns_error("register this box"))?;
        let http_fullname = dashboard.get_fullname().to_owned();
        daemon.register(dashboard).map_err(mdns_error("register this box's dashboard"))?;
        info!("discovery: announcing {fullname} and {http_fullname}");

        let counters = Arc::new(Counters::default());
        let table = PeerTable::new(config, &fullname, counters.clone());
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let (done, browse_done) = mpsc::sync_channel::<()>(0);
        let loop_daemon = daemon.clone();
        let browse_thread = thread::Builder::new()
            .name("shoal-discovery".into())
            .spawn(move || {
                // Dropped when the thread ends, however it ends: that is the signal.
                let _done = done;
                let stop = async {
                    // Only ever closed, never sent to.
                    let _ = stopped.recv().await;
                };
                smol::block_on(stop.or(browse_loop(table, loop_daemon, browse, monitor, events)));
            })
            .map_err(DiscoveryError::Thread)?;

        Ok(Discovery {
            daemon,
            fullname,
            http_fullname,
            counters,
            stop,
            browse_done,
            browse_thread: Some(browse_thread),
            stopped: false,
        })
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        // Same steps as `shutdown`, without waiting: drop may run on an async executor.
        self.stop.close();
        for name in [&self.fullname, &self.http_fullname] {
            if let Err(e) = self.daemon.unregister(name) {
                debug!("discovery: unregister {name} on drop: {e}");
            }
        }
        if let Err(e) = self.daemon.shutdown() {
            debug!("discovery: mDNS daemon shutdown on drop: {e}");
        }
    }
}

/// Checks what mdns-sd would accept late or not at all.
fn validate(config: &DiscoveryConfig) -> Result<(), DiscoveryError> {
    if parse_board(config.board.as_bytes()).is_none() {
        return Err(DiscoveryError::InvalidBoard { board: config.board.clone() });
    }
    if let Interfaces::Named(names) = &config.interfaces {
        if names.is_empty() || names.iter().any(String::is_empty) {
            return Err(DiscoveryError::NoInterfaces);
        }
    }
    Ok(())
}

/// The instance name of `node_id`: 32 bits of the id tell boxes apart on one LAN (two boxes
/// collide with odds of about n²/2³³), and the TXT `id` is what identifies a box anyway.
fn instance_name(node_id: NodeId) -> String {
    format!("shoal-{}", hex(&node_id.0[..4]))
}

/// Our service record. Building it opens nothing.
fn service_info(config: &DiscoveryConfig) -> Result<ServiceInfo, DiscoveryError> {
    let instance = instance_name(config.node_id);
    let host = format!("{instance}.local.");
    let txt = txt_records(config);
    let mut service = ServiceInfo::new(SERVICE_TYPE, &instance, &host, (), config.udp_port, &txt[..])
        .map_err(mdns_error("build the service record"))?
        // mdns-sd fills in, and keeps up to date, the addresses of the selected interfaces.
        .enable_addr_auto();
    service.set_interfaces(if_kinds(&config.interfaces));
    // Probing for name conflicts delays the first announcement by ~0.8 s; names come from node
    // ids, so a conflict is as unlikely as a 32-bit collision (see `instance_name`).
    service.set_requires_probe(false);
    Ok(service)
}

/// The dashboard's instance name, `Shoal <id8> (<board>)`, with the board cut (at a character
/// boundary) so that the name fits in one DNS label.
fn dashboard_instance_name(node_id: NodeId, board: &str) -> String {
    let id = hex(&node_id.0[..4]);
    // "Shoal " + 8 hex digits + " (" + ")".
    let room = MAX_LABEL_BYTES - (6 + 8 + 2 + 1);
    let mut cut = board.len().min(room);
    while !board.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("Shoal {id} ({})", &board[..cut])
}

/// Our dashboard's record: the HTTP port on the same host name as our `_shoal._udp` record.
/// Building it opens nothing.
fn dashboard_info(config: &DiscoveryConfig) -> Result<ServiceInfo, DiscoveryError> {
    let instance = dashboard_instance_name(config.node_id, &config.board);
    let host = format!("{}.local.", instance_name(config.node_id));
    let mut service =
        ServiceInfo::new(HTTP_SERVICE_TYPE, &instance, &host, (), config.http_port, &[("path", "/")][..])
            .map_err(mdns_error("build the dashboard's service record"))?
            .enable_addr_auto();
    service.set_interfaces(if_kinds(&config.interfaces));
    // As for `service_info`: the id in the name makes a conflict a 32-bit collision.
    service.set_requires_probe(false);
    Ok(service)
}

/// The mdns-sd selection for `interfaces`, applied after disabling all of them.
fn if_kinds(interfaces: &Interfaces) -> Vec<IfKind> {
    match interfaces {
        // mdns-sd itself leaves out interfaces that are down.
        Interfaces::AllNonLoopback => vec![IfKind::Predicate(IfPredicate::new(|intf| !intf.is_loopback()))],
        Interfaces::Named(names) => names.iter().map(|name| IfKind::Name(name.clone())).collect(),
    }
}

/// Logs named interfaces that have no address now: a typo, or a link that is not up yet.
fn warn_about_missing_interfaces(interfaces: &Interfaces) {
    let Interfaces::Named(names) = interfaces else {
        return;
    };
    let present = match if_addrs::get_if_addrs() {
        Ok(present) => present,
        Err(e) => {
            warn!("discovery: cannot list network interfaces: {e}");
            return;
        }
    };
    for name in names {
        if !present.iter().any(|intf| &intf.name == name) {
            warn!("discovery: interface {name:?} has no address yet; it is used once it has one");
        }
    }
}

fn mdns_error(action: &'static str) -> impl FnOnce(mdns_sd::Error) -> DiscoveryError {
    move |e| DiscoveryError::Mdns { action, reason: e.to_string() }
}

/// What the browse thread waits for.
enum Input {
    Browse(Result<ServiceEvent, mdns_sd::RecvError>),
    Monitor(Result<DaemonEvent, mdns_sd::RecvError>),
    /// The outbox's first event went to the caller (`true`) or the caller is gone (`false`).
    Delivered(bool),
}

/// The browse thread: drains mdns-sd into `table` and `table`'s outbox into `events`, until the
/// caller drops its receiver or mdns-sd stops. The caller stops it by dropping this future.
async fn browse_loop(
    mut table: PeerTable,
    daemon: ServiceDaemon,
    mut browse: Receiver<ServiceEvent>,
    monitor: Receiver<DaemonEvent>,
    events: Sender<DiscoveryEvent>,
) {
    let mut monitor_open = true;
    loop {
        // A clone, so that the event stays in the outbox (and can still be coalesced) until
        // delivered: a send that loses the race below is dropped unsent.
        let next = table.next_event().cloned();
        // `or` polls in order: mdns-sd's channels come before delivery to the caller.
        let input = async { Input::Browse(browse.recv_async().await) }
            .or(async {
                if monitor_open {
                    Input::Monitor(monitor.recv_async().await)
                } else {
                    future::pending().await
                }
            })
            .or(async {
                match next {
                    Some(event) => Input::Delivered(events.send(event).await.is_ok()),
                    None => future::pending().await,
                }
            })
            .await;
        match input {
            Input::Browse(Ok(event)) => table.handle_service_event(event),
            Input::Browse(Err(_)) => {
                table.subscription_lost();
                warn!("discovery: mDNS ended the browse subscription; browsing again");
                match browse_again(&daemon).await {
                    Some(fresh) => browse = fresh,
                    None => return,
                }
            }
            Input::Monitor(Ok(event)) => table.handle_daemon_event(event),
            Input::Monitor(Err(_)) => monitor_open = false,
            Input::Delivered(true) => table.event_delivered(),
            Input::Delivered(false) => {
                debug!("discovery: the event receiver is gone; browsing stops");
                return;
            }
        }
    }
}

/// A new browse subscription, or `None` when mdns-sd is gone.
async fn browse_again(daemon: &ServiceDaemon) -> Option<Receiver<ServiceEvent>> {
    for _ in 0..REBROWSE_ATTEMPTS {
        smol::Timer::after(REBROWSE_DELAY).await;
        match daemon.browse(SERVICE_TYPE) {
            Ok(browse) => return Some(browse),
            Err(mdns_sd::Error::Again) => continue,
            Err(e) => {
                error!("discovery: cannot browse again, discovery stops: {e}");
                return None;
            }
        }
    }
    error!("discovery: the mDNS daemon stays busy, discovery stops");
    None
}

// None of these tests may start mdns-sd (`Discovery::start`, `ServiceDaemon::new`): it would join
// the mDNS groups of this machine's real interfaces. `tests/discovery_netns.rs` does that inside
// a network namespace.
#[cfg(test)]
mod tests {
    use super::*;

    /// The fingerprint of every test config.
    pub(super) const FP: [u8; 4] = [0xde, 0xad, 0xbe, 0xef];

    /// A config for node `[node; 16]` with fingerprint `FP`.
    pub(super) fn config(node: u8) -> DiscoveryConfig {
        DiscoveryConfig {
            node_id: NodeId([node; 16]),
            udp_port: 7400,
            http_port: 8080,
            board: "rpi4".into(),
            key_fingerprint: FP,
            interfaces: Interfaces::Named(vec!["lo".into()]),
        }
    }

    #[test]
    fn config_is_validated_before_mdns_starts() {
        assert!(validate(&config(1)).is_ok());
        let mut bad = config(1);
        bad.board = String::new();
        assert!(matches!(validate(&bad), Err(DiscoveryError::InvalidBoard { .. })));
        bad = config(1);
        bad.interfaces = Interfaces::Named(vec![]);
        assert!(matches!(validate(&bad), Err(DiscoveryError::NoInterfaces)));
        bad.interfaces = Interfaces::Named(vec!["eth0".into(), String::new()]);
        assert!(matches!(validate(&bad), Err(DiscoveryError::NoInterfaces)));
        // Building the record opens nothing.
        let service = service_info(&config(0x12)).map_err(|e| e.to_string());
        assert_eq!(service.as_ref().map(ServiceInfo::get_fullname), Ok("shoal-12121212._shoal._udp.local."));
        assert_eq!(service.as_ref().map(ServiceInfo::get_hostname), Ok("shoal-12121212.local."));
        let dashboard = dashboard_info(&config(0x12)).map_err(|e| e.to_string());
        assert_eq!(
            dashboard.as_ref().map(ServiceInfo::get_fullname),
            Ok("Shoal 12121212 (rpi4)._http._tcp.local.")
        );
        assert_eq!(dashboard.as_ref().map(ServiceInfo::get_hostname), Ok("shoal-12121212.local."));
        assert_eq!(dashboard.as_ref().map(ServiceInfo::get_port), Ok(8080));
        assert_eq!(dashboard.as_ref().ok().and_then(|d| d.get_property_val_str("path")), Some("/"));
    }

    #[test]
    fn the_dashboard_name_fits_in_a_dns_label() {
        let id = NodeId([0xab; 16]);
        assert_eq!(dashboard_instance_name(id, "rpi4"), "Shoal abababab (rpi4)");
        let longest = "b".repeat(BOARD_MAX_LEN);
        let name = dashboard_instance_name(id, &longest);
        assert_eq!(name.len(), MAX_LABEL_BYTES, "{name}");
        assert!(name.starts_with("Shoal abababab (bbb") && name.ends_with("b)"), "{name}");
        // Cut at a character boundary: 'é' is two bytes.
        let name = dashboard_instance_name(id, &"é".repeat(BOARD_MAX_LEN / 2));
        assert!(name.len() <= MAX_LABEL_BYTES && name.ends_with("é)"), "{name}");
        // Dots are escaped by mdns-sd (RFC 6763 section 4.3), not cut.
        let mut dotted = config(1);
        dotted.board = "box.kitchen".into();
        let info = dashboard_info(&dotted).map_err(|e| e.to_string());
        assert_eq!(
            info.as_ref().map(ServiceInfo::get_fullname),
            Ok("Shoal 01010101 (box\\.kitchen)._http._tcp.local.")
        );
    }
}
