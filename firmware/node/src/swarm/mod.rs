//! The swarm driver: one task that owns the [`Engine`] and the UDP socket.
//!
//! It waits for whichever comes first — datagrams, a command, a source's event, or the engine's
//! next timeout — feeds the engine, then drains it: every transmit goes out on the socket, every
//! event is acted on, and each channel whose segments changed gets its [`Window`] published.
//! The decisions that are the driver's own (who watches what, relayed feeds, when a live feed is
//! segmented) are [`demand`]'s, sans-IO; [`report`] keeps the driver's records and builds the
//! status from them.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use hyper::body::Bytes;
use shoal_core::{ChannelId, Engine, Event, Instant, Store};
use smol::channel::{Receiver, Sender, TryRecvError};
use smol::future::FutureExt;
use smol::{Async, Timer};

use crate::broadcast::live::LiveFeeds;
use crate::discovery::DiscoveryEvent;
use crate::lineup::Channel;
use crate::model::status::Status;
use crate::model::{init_id, Health, SourceEvent, StoredSegment, Window, WindowSegment, Windows, HLS_WINDOW};
use crate::source::IngestCommand;
use crate::vod::VodCache;

mod demand;
mod report;
use demand::{Action, Demand, Viewer};
use report::{PeerMeta, Records};

/// Datagrams read per wake-up before the engine's outputs are drained (keeps latency bounded
/// under a flood).
const READ_BATCH: usize = 256;
/// Commands and source events taken per turn besides the one that woke the driver.
const QUEUE_BATCH: usize = 32;
/// Receive buffer requested from the kernel: about 30 ms of 1 Gbit/s, so bursts from several
/// peers are not dropped while the driver hashes a block.
const RECV_BUFFER: usize = 4 * 1024 * 1024;
const SEND_BUFFER: usize = 1024 * 1024;

/// The daemon's clock: `shoal_core::Instant` counts microseconds since the daemon started.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: std::time::Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn new() -> Self {
        Clock { start: std::time::Instant::now() }
    }

    /// Now, for the core.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.start.elapsed().as_micros() as u64)
    }

    /// A core instant as a std instant, for timers.
    pub fn at(&self, t: Instant) -> std::time::Instant {
        self.start + Duration::from_micros(t.as_micros())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// What the rest of the daemon asks of the driver: queries from the HTTP backend and the app,
/// and discovery's findings. Sources speak [`SourceEvent`]s on a channel of their own.
#[derive(Debug)]
pub enum Command {
    /// Discovery saw a peer come or go.
    Discovered(DiscoveryEvent),
    /// A TV (or this box's prefill) fetched something of `channel`: it is wanted for a while.
    /// `segments`: the TV plays segments (HLS, or `/ts` from the store) rather than the live feed.
    Viewer { channel: ChannelId, tv: Option<IpAddr>, segments: bool },
    /// A TV asked for a relayed feed: carry it as a channel (if not yet carried) while it has
    /// viewers, at most `max` at once. Answers with why not, if it cannot.
    AddRelay { channel: Box<Channel>, max: usize, reply: Sender<Result<(), String>> },
    /// The status as far as the driver knows it.
    Status(Sender<Status>),
    /// A complete segment's bytes (`None`: not held).
    Segment { channel: ChannelId, seq: u64, reply: Sender<Option<StoredSegment>> },
    /// The HTTP addresses of the peers that carry `channel`, the owners of segment `seq` of
    /// its asset first (where its bytes are on disk).
    VodPeers { channel: ChannelId, seq: u64, reply: Sender<Vec<SocketAddr>> },
    /// Lift every ban (an operator's action); answers how many peers were banned.
    LiftBans(Sender<usize>),
    /// What the status LED shows.
    Health(Sender<Health>),
    /// Say goodbye and stop.
    Shutdown,
}

/// Where the driver's inputs come from and its outputs go, besides the socket.
pub struct Wiring {
    /// Queries and discovery ([`Command`]).
    pub commands: Receiver<Command>,
    /// What the sources say ([`SourceEvent`]).
    pub sources: Receiver<SourceEvent>,
    /// What the sources are told.
    pub ingest: Sender<IngestCommand>,
    /// Every channel's window, published for the HTTP server.
    pub windows: Windows,
    /// The live feeds this box receives: the driver says when their segments are needed.
    pub live: LiveFeeds,
    /// The disk tier: complete segments of on-demand assets go into it.
    pub vod: Option<VodCache>,
}

/// Opens the swarm's UDP socket on every IPv4 address with generous buffers.
pub fn bind(port: u16) -> io::Result<Async<UdpSocket>> {
    bind_to(SocketAddr::from(([0, 0, 0, 0], port)))
}

/// Opens the swarm's UDP socket on `addr` with generous buffers.
pub fn bind_to(addr: SocketAddr) -> io::Result<Async<UdpSocket>> {
    let port = addr.port();
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    let _ = socket.set_send_buffer_size(SEND_BUFFER);
    socket.bind(&addr.into())?;
    log::debug!(
        "UDP socket on port {port}: receive buffer {:?}, send buffer {:?}",
        socket.recv_buffer_size().ok(),
        socket.send_buffer_size().ok()
    );
    Async::new(UdpSocket::from(socket))
}

/// Runs the engine until `Command::Shutdown` or until every command sender is gone.
pub async fn drive(
    engine: Engine,
    socket: Async<UdpSocket>,
    clock: Clock,
    lineup: &[Channel],
    wiring: Wiring,
) {
    let Wiring { commands, sources, ingest, windows, live, vod } = wiring;
    let mut driver = Driver {
        records: Records::new(clock.now(), lineup),
        engine,
        demand: Demand::default(),
        clock,
        socket,
        send_buf: vec![0u8; 65_536],
        ingest,
        windows,
        origin_failing: BTreeMap::new(),
        live,
        vod,
    };
    let mut recv_buf = vec![0u8; 65_536];
    // Sources may all stop (a box with no channel to ingest); the driver goes on without them.
    let mut sources_open = true;
    enum Wake {
        Readable,
        Command(Option<Command>),
        Source(Option<SourceEvent>),
        Timer,
    }
    loop {
        let deadline = driver.engine.poll_timeout();
        let wake = async {
            let _ = driver.socket.readable().await;
            Wake::Readable
        }
        .or(async { Wake::Command(commands.recv().await.ok()) })
        .or(async {
            if sources_open {
                Wake::Source(sources.recv().await.ok())
            } else {
                smol::future::pending().await
            }
        })
        .or(async {
            match deadline {
                Some(t) => {
                    Timer::at(clock.at(t)).await;
                }
                None => smol::future::pending::<()>().await,
            }
            Wake::Timer
        })
        .await;
        let now = clock.now();
        match wake {
            Wake::Readable => {
                for _ in 0..READ_BATCH {
                    match driver.socket.get_ref().recv_from(&mut recv_buf) {
                        Ok((len, from)) => driver.engine.handle_datagram(now, from, &recv_buf[..len]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            // ICMP errors from earlier sends surface here; they are not fatal.
                            driver.records.receive_errors += 1;
                            log::debug!("UDP receive: {e}");
                            break;
                        }
                    }
                }
            }
            Wake::Command(None) | Wake::Command(Some(Command::Shutdown)) => {
                log::info!("saying goodbye to peers");
                driver.engine.close(now);
                driver.flush().await;
                return;
            }
            Wake::Command(Some(command)) => driver.command(now, command).await,
            Wake::Source(Some(event)) => driver.source_event(now, event),
            Wake::Source(None) => sources_open = false,
            Wake::Timer => {}
        }
        // The race above favours the socket: under a steady stream of datagrams it would win
        // every turn, and queries and sources' segments would wait for a quiet moment. Each
        // turn therefore also takes what is already queued, a bounded batch of each.
        for _ in 0..QUEUE_BATCH {
            match commands.try_recv() {
                Ok(Command::Shutdown) | Err(TryRecvError::Closed) => {
                    log::info!("saying goodbye to peers");
                    driver.engine.close(now);
                    driver.flush().await;
                    return;
                }
                Ok(command) => driver.command(now, command).await,
                Err(TryRecvError::Empty) => break,
            }
        }
        for _ in 0..QUEUE_BATCH {
            match sources.try_recv() {
                Ok(event) => driver.source_event(now, event),
                Err(_) => break,
            }
        }
        driver.after_input(now).await;
    }
}

/// The driver's state between wake-ups.
struct Driver {
    engine: Engine,
    records: Records,
    demand: Demand,
    clock: Clock,
    socket: Async<UdpSocket>,
    send_buf: Vec<u8>,
    ingest: Sender<IngestCommand>,
    windows: Windows,
    /// Whether each channel's origin fails, as last published in its window.
    origin_failing: BTreeMap<ChannelId, bool>,
    live: LiveFeeds,
    vod: Option<VodCache>,
}

impl Driver {
    async fn command(&mut self, now: Instant, command: Command) {
        let engine = &mut self.engine;
        match command {
            Command::Discovered(DiscoveryEvent::PeerFound { node_id, addrs, http_port, board }) => {
                // IPv4 first: the swarm socket is IPv4.
                if let Some(addr) = addrs.iter().find(|a| a.is_ipv4()) {
                    engine.add_peer(now, node_id, *addr);
                    let meta = PeerMeta { http: SocketAddr::new(addr.ip(), http_port), board };
                    self.records.peers.insert(node_id, meta);
                }
            }
            Command::Discovered(DiscoveryEvent::PeerLost { node_id }) => {
                // Liveness is the engine's own: forget a peer only if its pings stopped too.
                let alive = engine.peers().any(|p| p.node_id == node_id && p.alive);
                if !alive {
                    engine.remove_peer(now, node_id);
                }
            }
            Command::Viewer { channel, tv, segments } => {
                // An asset this box can serve whole from the LAN needs nothing from the origin.
                let served_locally = self.vod.as_ref().is_some_and(|v| v.is_complete(channel));
                let viewer = tv.map_or(Viewer::Box, Viewer::Tv);
                self.demand.viewer(engine, now, channel, viewer, segments, served_locally);
            }
            Command::AddRelay { channel, max, reply } => {
                let answer = match self.demand.add_relay(engine, now, &channel, max) {
                    Ok(true) => {
                        log::info!("relaying {} as channel {}", channel.source, channel.id);
                        self.records.add_channel(&channel);
                        let _ = self.ingest.send(IngestCommand::Register(channel)).await;
                        Ok(())
                    }
                    Ok(false) => Ok(()),
                    Err(why) => Err(why),
                };
                let _ = reply.try_send(answer);
            }
            Command::Status(reply) => {
                let _ = reply.try_send(report::status(engine, now, &self.records, &self.demand));
            }
            Command::Segment { channel, seq, reply } => {
                let segment = engine.store().segment(channel, seq).and_then(|s| {
                    let init_len = s.manifest().manifest().init_len as usize;
                    s.shared_bytes()
                        .map(|b| StoredSegment { bytes: Bytes::from_owner(SharedBytes(b)), init_len })
                });
                let _ = reply.try_send(segment);
            }
            Command::VodPeers { channel, seq, reply } => {
                let me = engine.node_id();
                let peers = crate::vod::owners_first(engine.carriers(channel), channel, seq)
                    .into_iter()
                    .filter(|&n| n != me)
                    .filter_map(|n| self.records.peers.get(&n).map(|p| p.http))
                    .collect();
                let _ = reply.try_send(peers);
            }
            Command::LiftBans(reply) => {
                let _ = reply.try_send(engine.lift_bans(now));
            }
            Command::Health(reply) => {
                let _ = reply.try_send(self.health(now));
            }
            Command::Shutdown => {}
        }
    }

    fn source_event(&mut self, now: Instant, event: SourceEvent) {
        match event {
            SourceEvent::Publish { info, bytes } => match self.engine.publish_segment(now, info, &bytes) {
                Ok(()) => self.records.published(info.channel, bytes.len()),
                Err(e) => {
                    log::warn!(
                        "could not publish {} segment {}: {e}",
                        self.records.name(info.channel),
                        info.seq
                    )
                }
            },
            SourceEvent::OriginHealth { channel, error } => {
                // Peers learn it from this box's "fetching" announcement: an ingester trying a
                // failing origin is not late, and every box's status and LED say the same.
                self.engine.set_origin_failing(channel, error.is_some());
                self.records.origin_health(now, channel, error);
            }
            SourceEvent::InputStats { channel, stats } => self.records.input_stats(channel, stats),
            SourceEvent::OriginTraffic { channel, kind, requests, bytes, failed } => {
                self.records.origin_traffic(channel, kind, requests, bytes, failed)
            }
            SourceEvent::Variant { channel, url, bandwidth } => self.records.variant(channel, url, bandwidth),
            SourceEvent::Delivered { channel, seq, reply } => {
                let delivered = self.engine.holders(channel, seq) >= self.engine.peers_carrying(channel);
                let _ = reply.try_send(delivered);
            }
        }
    }

    fn health(&self, now: Instant) -> Health {
        let recent = Duration::from_secs(10);
        Health {
            peers_alive: self.engine.peers().filter(|p| p.alive).count(),
            streaming: self
                .records
                .channels
                .values()
                .any(|c| c.newest.is_some_and(|(_, at)| now.saturating_since(at) <= recent)),
            // The ingester's word, wherever it runs: a box whose TVs watch a channel with a
            // failing origin shows it as the ingester does.
            origin_failing: self.records.labels.keys().any(|&channel| {
                let here = self.engine.is_ingesting(channel) || self.demand.is_wanted(channel);
                here && self.engine.origin_failing(channel, now) == Some(true)
            }),
        }
    }

    /// After every input: demand's decisions, the engine's timers, the datagrams out, the
    /// engine's events, and the windows that changed.
    async fn after_input(&mut self, now: Instant) {
        for action in self.demand.poll(&mut self.engine, now) {
            match action {
                Action::Segmenting { channel, needed } => self.live.set_segmenting(channel, needed),
                Action::Unregister(channel) => {
                    log::info!("nobody watches relayed {} any more: leaving it", self.records.name(channel));
                    self.records.remove_channel(channel);
                    self.windows.remove(channel);
                    self.origin_failing.remove(&channel);
                    let _ = self.ingest.send(IngestCommand::Unregister { channel }).await;
                }
            }
        }
        self.engine.handle_timeout(now);
        self.flush().await;
        let mut changed = BTreeSet::new();
        while let Some(event) = self.engine.poll_event() {
            if let Event::SegmentComplete { channel, seq } = event {
                self.records.segment_complete(&self.engine, now, channel, seq);
                if let Some(vod) = &self.vod {
                    record_vod_segment(&self.engine, vod, channel, seq);
                }
                changed.insert(channel);
            }
            self.handle_event(event).await;
        }
        // A window also changes when its origin's health does (as the ingester announces it):
        // a TV waiting for a stale channel is then told the origin fails.
        for &channel in self.records.labels.keys() {
            let failing = self.engine.origin_failing(channel, now) == Some(true);
            if self.origin_failing.insert(channel, failing) != Some(failing) {
                changed.insert(channel);
            }
        }
        for channel in changed {
            let newest = self.records.channels.get(&channel).and_then(|c| c.newest);
            let failing = self.origin_failing.get(&channel).copied().unwrap_or(false);
            let window = window(self.engine.store(), channel, &self.clock, now, newest, failing);
            self.windows.publish(channel, window);
        }
    }

    async fn handle_event(&self, event: Event) {
        let name = |channel| self.records.name(channel);
        match event {
            Event::PeerUp(id) => log::info!("peer {id} up"),
            Event::PeerDown(id) => log::info!("peer {id} down"),
            Event::PeerBanned { peer, reason } => log::warn!("peer {peer} banned: {reason:?}"),
            Event::SegmentComplete { channel, seq } => {
                log::debug!("{} segment {seq} complete", name(channel))
            }
            Event::IngestStart { channel, resume_after } => {
                log::info!("ingesting {}", name(channel));
                let _ = self.ingest.send(IngestCommand::Start { channel, resume_after }).await;
            }
            Event::IngestStop { channel } => {
                log::info!("no longer ingesting {}", name(channel));
                let _ = self.ingest.send(IngestCommand::Stop { channel }).await;
            }
            Event::ElectionChanged { channel, ingester, standby } => {
                log::info!("{}: ingester {ingester:?}, standby {standby:?}", name(channel));
            }
        }
    }

    /// Sends everything the engine has to send now.
    async fn flush(&mut self) {
        while let Some(t) = self.engine.poll_transmit(self.clock.now(), &mut self.send_buf) {
            if let Err(e) = self.socket.send_to(&self.send_buf[..t.len], t.destination).await {
                self.records.send_errors += 1;
                log::debug!("UDP send to {}: {e}", t.destination);
            }
        }
    }
}

/// A complete segment of an on-demand asset goes into the asset's catalog, and onto this box's
/// disk if it is one of the segment's owners (in the background: hashing and writing take a
/// blocking thread).
fn record_vod_segment(engine: &Engine, vod: &VodCache, channel: ChannelId, seq: u64) {
    let Some(segment) = engine.store().segment(channel, seq) else { return };
    let manifest = segment.manifest().manifest();
    if !manifest.vod {
        return;
    }
    let Some(bytes) = segment.shared_bytes() else { return };
    let share = crate::vod::keeps_share(engine.node_id(), engine.carriers(channel), channel, seq);
    let manifest = manifest.clone();
    let vod = vod.clone();
    smol::spawn(async move { vod.record(channel, seq, &manifest, bytes, share).await }).detach();
}

/// A stored segment lent to the HTTP server without a copy.
struct SharedBytes(std::sync::Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The segments of `channel` to list in its HLS playlist; `newest` is the newest segment this
/// box completed and when.
fn window(
    store: &Store,
    channel: ChannelId,
    clock: &Clock,
    now: Instant,
    newest: Option<(u64, Instant)>,
    origin_failing: bool,
) -> Window {
    let vod = store.segments(channel).last().is_some_and(|s| s.manifest().manifest().vod);
    // An on-demand asset is listed whole, from the first segment held.
    let max = if vod { usize::MAX } else { HLS_WINDOW };
    let segments: Vec<WindowSegment> = store
        .window(channel, max)
        .map(|s| {
            let m = s.manifest().manifest();
            let init = s.bytes().map_or(&[][..], |b| &b[..m.init_len as usize]);
            WindowSegment {
                seq: m.seq,
                duration: m.duration(),
                discontinuity: m.discontinuity,
                init_len: m.init_len,
                init_id: init_id(init),
                vod: m.vod,
                end_of_stream: m.end_of_stream,
            }
        })
        .collect();
    let newest_at = segments.last().map(|last| match newest {
        Some((seq, at)) if seq >= last.seq => clock.at(at),
        // Completed before this box tracked it (or by another path): count it as fresh.
        _ => clock.at(now),
    });
    Window { segments, newest_at, origin_failing }
}
