//! The swarm driver: one task that owns the [`Engine`] and the UDP socket.
//!
//! It waits for whichever comes first — datagrams, a command, or the engine's next timeout —
//! feeds the engine, then drains it: every transmit goes out on the socket, every event is
//! acted on. This is the whole of the "thin shell" around the sans-IO core.

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use hyper::body::Bytes;
use serde_json::Value;
use sha2::{Digest, Sha256};
use shoal_core::{ChannelId, Engine, Event, Instant, SegmentInfo, Store};
use smol::channel::{Receiver, Sender};
use smol::future::FutureExt;
use smol::{Async, Timer};

use crate::discovery::DiscoveryEvent;

mod report;
pub use report::{swarm_report, ChannelNames};
use report::{PeerMeta, Records};

/// Datagrams read per wake-up before the engine's outputs are drained (keeps latency bounded
/// under a flood).
const READ_BATCH: usize = 256;
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

/// What the rest of the daemon asks of the driver.
#[derive(Debug)]
pub enum Command {
    /// Discovery saw a peer come or go.
    Discovered(DiscoveryEvent),
    /// A segment fetched by this box's source for a channel it ingests.
    Publish {
        /// Its description.
        info: SegmentInfo,
        /// Its bytes.
        bytes: Vec<u8>,
    },
    /// This box has (or no longer has) viewers for a channel.
    Want {
        /// The channel.
        channel: ChannelId,
        /// Whether.
        wanted: bool,
    },
    /// A status report as JSON.
    Status(Sender<Value>),
    /// The complete segments of a channel's window, for an HLS playlist.
    Window {
        /// The channel.
        channel: ChannelId,
        /// Where to answer.
        reply: Sender<Window>,
    },
    /// A complete segment's bytes.
    Segment {
        /// The channel.
        channel: ChannelId,
        /// The segment.
        seq: u64,
        /// Where to answer (`None`: not held).
        reply: Sender<Option<crate::http::StoredSegment>>,
    },
    /// A TV fetched something of this channel: it has a viewer for a while.
    Viewer {
        /// The channel.
        channel: ChannelId,
        /// The TV plays segments (HLS, or `/ts` from the store) rather than the live feed.
        segments: bool,
    },
    /// How the channel's origin answered the last time this box's source asked it.
    OriginHealth {
        /// The channel.
        channel: ChannelId,
        /// `None`: it answered; otherwise the error.
        error: Option<String>,
    },
    /// What a TS source counted about its input (UDP/RTP/HTTP-TS/file).
    InputStats {
        /// The channel.
        channel: ChannelId,
        /// The counts since the source started.
        stats: crate::broadcast::InputStats,
    },
    /// A TV asked for a relayed feed: carry it as a channel (if not yet carried) while it has
    /// viewers. Answers with why not, if it cannot.
    AddRelay {
        /// The feed as a channel.
        channel: Box<crate::config::Channel>,
        /// Most relayed feeds carried at once.
        max: usize,
        /// Where to answer.
        reply: Sender<Result<(), String>>,
    },
    /// Whether every live carrier of `channel` holds segment `seq` (an asset's ingest waits
    /// for it before publishing further).
    Delivered {
        /// The channel.
        channel: ChannelId,
        /// The segment.
        seq: u64,
        /// Where to answer.
        reply: Sender<bool>,
    },
    /// The HTTP addresses of the peers that carry `channel`, the owners of segment `seq` of
    /// its asset first (where its bytes are on disk).
    VodPeers {
        /// The channel.
        channel: ChannelId,
        /// The segment.
        seq: u64,
        /// Where to answer.
        reply: Sender<Vec<SocketAddr>>,
    },
    /// Lift every ban (an operator's action); answers how many peers were banned.
    LiftBans(Sender<usize>),
    /// What the status LED shows.
    Health(Sender<Health>),
    /// Say goodbye and stop.
    Shutdown,
}

/// What a box can serve of a channel right now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// Complete segments, oldest first: the newest few of a live channel, every one held of an
    /// on-demand asset.
    pub segments: Vec<WindowSegment>,
    /// How long ago this box completed the newest of them (`None`: it holds none): a live
    /// channel whose newest segment is old has lost its origin.
    pub newest_age: Option<Duration>,
}

/// The box's state as its status LED shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// Peers answering pings.
    pub peers_alive: usize,
    /// A segment of some channel completed within the last four target durations (or 10 s).
    pub streaming: bool,
    /// This box ingests a channel whose origin fails.
    pub origin_failing: bool,
}

/// One segment of an HLS window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowSegment {
    /// Sequence number.
    pub seq: u64,
    /// Playback duration.
    pub duration: Duration,
    /// Discontinuity before it.
    pub discontinuity: bool,
    /// Length of its fMP4 initialization section (0: MPEG-TS).
    pub init_len: u32,
    /// Names the init section's content, so a playlist repeats `EXT-X-MAP` only when it changes.
    pub init_id: u64,
    /// Part of an on-demand asset.
    pub vod: bool,
    /// The asset's last segment.
    pub end_of_stream: bool,
}

/// A channel has a viewer while a TV fetched its playlist or a segment within this long (three
/// 2 s target durations, DESIGN.md §5).
pub(crate) const VIEWER_TIMEOUT: Duration = Duration::from_secs(6);
/// Segments in the HLS window served to TVs.
const HLS_WINDOW: usize = 6;
/// A relayed feed nobody has watched for this long leaves the lineup (and its group is left).
const RELAY_IDLE: Duration = Duration::from_secs(30);

/// What the driver tells the sources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IngestCommand {
    /// A channel added at run time (a relayed feed): how to fetch it when elected.
    Register(Box<crate::config::Channel>),
    /// A channel added at run time is gone: stop it and forget it.
    Unregister {
        /// The channel.
        channel: ChannelId,
    },
    /// Start fetching a channel.
    Start {
        /// The channel.
        channel: ChannelId,
        /// Newest complete segment held.
        resume_after: Option<u64>,
    },
    /// Stop fetching a channel.
    Stop {
        /// The channel.
        channel: ChannelId,
    },
}

/// What the driver keeps up to date for serving TVs besides the store.
pub struct Serving {
    /// The live feeds this box receives: the driver says when their segments are needed.
    pub live: crate::broadcast::live::LiveFeeds,
    /// The disk tier: complete segments of on-demand assets go into it.
    pub vod: Option<crate::vod::VodCache>,
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
    mut engine: Engine,
    socket: Async<UdpSocket>,
    clock: Clock,
    commands: Receiver<Command>,
    ingest: Sender<IngestCommand>,
    names: ChannelNames,
    serving: Serving,
) {
    let Serving { live, vod } = serving;
    let mut recv_buf = vec![0u8; 65_536];
    let mut send_buf = vec![0u8; 65_536];
    let mut records = Records::new(clock.now(), names);
    let mut viewers: BTreeMap<ChannelId, Instant> = BTreeMap::new();
    // Relayed feeds carried at run time, and when a TV last asked for each.
    let mut relays: BTreeMap<ChannelId, Instant> = BTreeMap::new();
    // When a TV last played each channel from segments (not from a live feed).
    let mut segment_viewers: BTreeMap<ChannelId, Instant> = BTreeMap::new();
    enum Wake {
        Readable,
        Command(Option<Command>),
        Timer,
    }
    loop {
        let deadline = engine.poll_timeout();
        let wake = async {
            let _ = socket.readable().await;
            Wake::Readable
        }
        .or(async { Wake::Command(commands.recv().await.ok()) })
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
                    match socket.get_ref().recv_from(&mut recv_buf) {
                        Ok((len, from)) => engine.handle_datagram(now, from, &recv_buf[..len]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            // ICMP errors from earlier sends surface here; they are not fatal.
                            records.receive_errors += 1;
                            log::debug!("UDP receive: {e}");
                            break;
                        }
                    }
                }
            }
            Wake::Command(None) | Wake::Command(Some(Command::Shutdown)) => {
                log::info!("saying goodbye to peers");
                engine.close(now);
                flush(&mut engine, &socket, &clock, &mut send_buf, &mut records).await;
                return;
            }
            Wake::Command(Some(Command::Viewer { channel, segments })) => {
                // An asset this box can serve whole from the LAN needs nothing from the origin.
                let served_locally = vod.as_ref().is_some_and(|v| v.is_complete(channel));
                if !served_locally && viewers.insert(channel, now).is_none() {
                    engine.want_channel(now, channel, true);
                }
                if segments {
                    segment_viewers.insert(channel, now);
                }
                if let Some(seen) = relays.get_mut(&channel) {
                    *seen = now;
                }
            }
            Wake::Command(Some(Command::AddRelay { channel, max, reply })) => {
                let id = channel.channel_id();
                let answer = if relays.contains_key(&id) || engine.lineup().any(|c| c == id) {
                    relays.entry(id).and_modify(|seen| *seen = now);
                    Ok(())
                } else if relays.len() >= max {
                    Err(format!("this box already relays {max} feeds (relay.max_joins)"))
                } else {
                    match engine.add_channel(now, shoal_core::LineupEntry { channel: id, always_on: false }) {
                        Ok(()) => {
                            log::info!("relaying {} as channel {}", channel.source, channel.id);
                            relays.insert(id, now);
                            records.add_channel(id, channel.name.clone());
                            let _ = ingest.send(IngestCommand::Register(channel)).await;
                            Ok(())
                        }
                        Err(e) => Err(e.to_string()),
                    }
                };
                let _ = reply.try_send(answer);
            }
            Wake::Command(Some(command)) => handle_command(&mut engine, now, command, &mut records, &viewers),
            Wake::Timer => {}
        }
        let expired: Vec<ChannelId> = viewers
            .iter()
            .filter(|(_, &t)| now.saturating_since(t) > VIEWER_TIMEOUT)
            .map(|(&c, _)| c)
            .collect();
        for channel in expired {
            viewers.remove(&channel);
            engine.want_channel(now, channel, false);
        }
        segment_viewers.retain(|_, &mut t| now.saturating_since(t) <= VIEWER_TIMEOUT);
        // A live feed's ingester cuts segments only when someone can use them.
        for channel in engine.lineup().filter(|&c| engine.is_ingesting(c)) {
            let needed = engine.is_always_on(channel)
                || engine.peers_carrying(channel) > 0
                || segment_viewers.contains_key(&channel);
            live.set_segmenting(channel, needed);
        }
        let idle: Vec<ChannelId> =
            relays.iter().filter(|(_, &t)| now.saturating_since(t) > RELAY_IDLE).map(|(&c, _)| c).collect();
        for channel in idle {
            log::info!("nobody watches relayed {} any more: leaving it", name(&records.names, channel));
            relays.remove(&channel);
            engine.remove_channel(now, channel);
            records.remove_channel(channel);
            let _ = ingest.send(IngestCommand::Unregister { channel }).await;
        }
        engine.handle_timeout(now);
        flush(&mut engine, &socket, &clock, &mut send_buf, &mut records).await;
        while let Some(event) = engine.poll_event() {
            if let Event::SegmentComplete { channel, seq } = event {
                records.segment_complete(&engine, now, channel, seq);
                if let Some(vod) = &vod {
                    record_vod_segment(&engine, vod, channel, seq);
                }
            }
            handle_event(event, &ingest, &records.names).await;
        }
    }
}

fn handle_command(
    engine: &mut Engine,
    now: Instant,
    command: Command,
    records: &mut Records,
    viewers: &BTreeMap<ChannelId, Instant>,
) {
    match command {
        Command::Discovered(DiscoveryEvent::PeerFound { node_id, addrs, http_port, board }) => {
            // IPv4 first: the swarm socket is IPv4.
            if let Some(addr) = addrs.iter().find(|a| a.is_ipv4()) {
                engine.add_peer(now, node_id, *addr);
                records
                    .peers
                    .insert(node_id, PeerMeta { http: SocketAddr::new(addr.ip(), http_port), board });
            }
        }
        Command::Discovered(DiscoveryEvent::PeerLost { node_id }) => {
            // Liveness is the engine's own: forget a peer only if its pings stopped too.
            let alive = engine.peers().any(|p| p.node_id == node_id && p.alive);
            if !alive {
                engine.remove_peer(now, node_id);
            }
        }
        Command::Publish { info, bytes } => match engine.publish_segment(now, info, &bytes) {
            Ok(()) => records.published(info.channel, bytes.len()),
            Err(e) => {
                log::warn!(
                    "could not publish {} segment {}: {e}",
                    name(&records.names, info.channel),
                    info.seq
                )
            }
        },
        Command::OriginHealth { channel, error } => records.origin_health(now, channel, error),
        Command::InputStats { channel, stats } => records.input_stats(channel, stats),
        Command::Want { channel, wanted } => engine.want_channel(now, channel, wanted),
        Command::Status(reply) => {
            let _ = reply.try_send(report::status(engine, now, records, viewers));
        }
        Command::Window { channel, reply } => {
            let newest = records.channels.get(&channel).and_then(|c| c.newest);
            let _ = reply.try_send(window(engine.store(), channel, now, newest));
        }
        Command::Segment { channel, seq, reply } => {
            let segment = engine.store().segment(channel, seq).and_then(|s| {
                let init_len = s.manifest().manifest().init_len as usize;
                s.shared_bytes().map(|b| crate::http::StoredSegment {
                    bytes: Bytes::from_owner(SharedBytes(b)),
                    init_len,
                })
            });
            let _ = reply.try_send(segment);
        }
        Command::Delivered { channel, seq, reply } => {
            let _ = reply.try_send(engine.holders(channel, seq) >= engine.peers_carrying(channel));
        }
        Command::VodPeers { channel, seq, reply } => {
            let me = engine.node_id();
            let peers = crate::vod::owners_first(engine.carriers(channel), channel, seq)
                .into_iter()
                .filter(|&n| n != me)
                .filter_map(|n| records.peers.get(&n).map(|p| p.http))
                .collect();
            let _ = reply.try_send(peers);
        }
        Command::LiftBans(reply) => {
            let _ = reply.try_send(engine.lift_bans(now));
        }
        Command::Health(reply) => {
            let recent = Duration::from_secs(10);
            let health = Health {
                peers_alive: engine.peers().filter(|p| p.alive).count(),
                streaming: records
                    .channels
                    .values()
                    .any(|c| c.newest.is_some_and(|(_, at)| now.saturating_since(at) <= recent)),
                origin_failing: records.channels.iter().any(|(&channel, c)| {
                    engine.is_ingesting(channel) && c.origin.as_ref().is_some_and(|o| o.error.is_some())
                }),
            };
            let _ = reply.try_send(health);
        }
        Command::Viewer { .. } | Command::AddRelay { .. } | Command::Shutdown => {}
    }
}

/// A complete segment of an on-demand asset goes into the asset's catalog, and onto this box's
/// disk if it is one of the segment's owners (in the background: hashing and writing take a
/// blocking thread).
fn record_vod_segment(engine: &Engine, vod: &crate::vod::VodCache, channel: ChannelId, seq: u64) {
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

/// The segments of `channel` to list in its HLS playlist.
fn window(store: &Store, channel: ChannelId, now: Instant, newest: Option<(u64, Instant)>) -> Window {
    let vod = store.segments(channel).last().is_some_and(|s| s.manifest().manifest().vod);
    // An on-demand asset is listed whole, from the first segment held.
    let max = if vod { usize::MAX } else { HLS_WINDOW };
    let segments: Vec<WindowSegment> = store
        .window(channel, max)
        .map(|s| {
            let m = s.manifest().manifest();
            let init = s.bytes().map_or(&[][..], |b| &b[..m.init_len as usize]);
            let digest = Sha256::digest(init);
            let init_id = u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8]));
            WindowSegment {
                seq: m.seq,
                duration: m.duration(),
                discontinuity: m.discontinuity,
                init_len: m.init_len,
                init_id,
                vod: m.vod,
                end_of_stream: m.end_of_stream,
            }
        })
        .collect();
    let newest_age = segments.last().map(|last| match newest {
        Some((seq, at)) if seq >= last.seq => now.saturating_since(at),
        // Completed before this box tracked it (or by another path): count it as fresh.
        _ => Duration::ZERO,
    });
    Window { segments, newest_age }
}

fn name(names: &ChannelNames, channel: ChannelId) -> String {
    names.get(&channel).cloned().unwrap_or_else(|| channel.to_string())
}

async fn handle_event(event: Event, ingest: &Sender<IngestCommand>, names: &ChannelNames) {
    match event {
        Event::PeerUp(id) => log::info!("peer {id} up"),
        Event::PeerDown(id) => log::info!("peer {id} down"),
        Event::PeerBanned { peer, reason } => log::warn!("peer {peer} banned: {reason:?}"),
        Event::SegmentComplete { channel, seq } => {
            log::debug!("{} segment {seq} complete", name(names, channel))
        }
        Event::IngestStart { channel, resume_after } => {
            log::info!("ingesting {}", name(names, channel));
            let _ = ingest.send(IngestCommand::Start { channel, resume_after }).await;
        }
        Event::IngestStop { channel } => {
            log::info!("no longer ingesting {}", name(names, channel));
            let _ = ingest.send(IngestCommand::Stop { channel }).await;
        }
        Event::ElectionChanged { channel, ingester, standby } => {
            log::info!("{}: ingester {ingester:?}, standby {standby:?}", name(names, channel));
        }
    }
}

/// Sends everything the engine has to send now.
async fn flush(
    engine: &mut Engine,
    socket: &Async<UdpSocket>,
    clock: &Clock,
    buf: &mut [u8],
    records: &mut Records,
) {
    while let Some(t) = engine.poll_transmit(clock.now(), buf) {
        if let Err(e) = socket.send_to(&buf[..t.len], t.destination).await {
            records.send_errors += 1;
            log::debug!("UDP send to {}: {e}", t.destination);
        }
    }
}
