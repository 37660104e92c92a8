//! The swarm engine: one box's side of the protocol, as a deterministic state machine.
//!
//! Inputs: [`Engine::handle_datagram`], [`Engine::handle_timeout`] and commands
//! ([`Engine::add_peer`], [`Engine::remove_peer`], [`Engine::want_channel`],
//! [`Engine::publish_segment`], [`Engine::close`]). Outputs: [`Engine::poll_transmit`],
//! [`Engine::poll_timeout`], [`Engine::poll_event`].
//!
//! **The caller's one rule:** after every input, drain `poll_transmit` and `poll_event` until they
//! return `None`, then wait until `poll_timeout` (or the next datagram). The engine never reads a
//! clock: `now` comes with every call and must not go backwards.
//!
//! How the swarm works, in short (the details live beside the code):
//! - peers confirm each other's sessions with a hello handshake, then ping for liveness and RTT
//!   ([`peer`], `control.rs`);
//! - every channel's ingester is elected by rendezvous hash among the live boxes that carry it,
//!   the standby takes over when it goes silent or its segments are late ([`election`]);
//! - the ingester signs a manifest per segment and pushes each block into one of `stripes` trees;
//!   every box verifies a block and forwards it to its children at once (cut-through);
//! - whatever the push misses is pulled: missing fragments from the sender, missing blocks from
//!   peers that announced the segment, deadline-first (`repair.rs`);
//! - everything queued is bounded, paced to the upload rate, and counted when it overflows.
//!
//! ```
//! use core::time::Duration;
//! use shoal_core::{Authenticator, ChannelId, Config, Engine, Event, Identity, Instant, LineupEntry, NetworkKey, SegmentInfo};
//! let auth = Authenticator::new(&NetworkKey::from_bytes([1; 32]));
//! let channel = ChannelId::derive("test", "builtin:");
//! let mut config = Config::new(Identity::from_seed([1; 32]), auth);
//! config.lineup.push(LineupEntry { channel, always_on: true });
//! let mut engine = Engine::new(config, Instant::ZERO).unwrap();
//! engine.handle_timeout(Instant::ZERO);
//! // Alone, the box is its own ingester for an always-on channel.
//! assert!(matches!(engine.poll_event(), Some(Event::ElectionChanged { .. })));
//! assert_eq!(engine.poll_event(), Some(Event::IngestStart { channel, resume_after: None }));
//! let info = SegmentInfo::new(channel, 0, Duration::from_secs(2));
//! engine.publish_segment(Instant::ZERO, info, &[0x47; 188 * 100]).unwrap();
//! assert!(engine.store().segment(channel, 0).unwrap().is_complete());
//! ```

mod assembly;
mod config;
mod control;
pub mod election;
mod events;
mod inbound;
mod outbound;
pub(crate) mod peer;
mod repair;
mod sender;
mod signers;

use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use thiserror::Error;

pub use config::{Config, ConfigError, LineupEntry};
pub use events::{BanReason, Counters, Event};
pub use sender::IP_UDP_OVERHEAD;

use assembly::{BlockKey, BlockPool, ManifestPool};
use election::TreePosition;
use peer::{Peer, PeerLimits};
use sender::{Control, Payload, Sender, SenderLimits, Task};

use crate::manifest::{ManifestError, SegmentInfo, SignedManifest};
use crate::ranges::RangeSet;
use crate::store::{Store, StoreError};
use crate::{ChannelId, Instant, NodeId};

/// A datagram to send: `buf[..len]` (the buffer given to [`Engine::poll_transmit`]) to
/// `destination`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub destination: SocketAddr,
    /// How many bytes of the buffer.
    pub len: usize,
}

/// Why a segment could not be published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum PublishError {
    /// The channel is not in this box's lineup.
    #[error("channel not in the lineup")]
    NotInLineup,
    /// This box is not (or no longer) the channel's ingester; the fetch is discarded.
    #[error("this box is not the channel's ingester")]
    NotIngester,
    /// The segment cannot be described by a manifest.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The store refused it.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Events kept for the caller before the oldest are dropped (and counted).
const EVENT_CAPACITY: usize = 4096;
/// Housekeeping (liveness, pings, elections) runs at least this often.
const TICK: Duration = Duration::from_millis(50);
/// Requests this box keeps outstanding at one peer, and in all.
const MAX_OUTSTANDING_PER_PEER: usize = 16;
const MAX_OUTSTANDING: usize = 512;
/// An unanswered block request is retried elsewhere after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(250);
/// Segments known to exist whose manifest is being sought, at most.
const MAX_MANIFEST_WANTS: usize = 64;
/// Requests are served ahead of pushes of the same segment: somebody is already waiting.
const REPAIR_PRIORITY: Duration = Duration::from_secs(1);
/// Three strikes within this window ban a peer.
const STRIKE_WINDOW: Duration = Duration::from_secs(30);
const STRIKES_TO_BAN: u32 = 3;
/// Datagrams dropped for flooding within `FLOOD_WINDOW` before a ban.
const FLOOD_DROPS_TO_BAN: u64 = 1_000;
const FLOOD_WINDOW: Duration = Duration::from_secs(10);
/// Bad-MAC datagrams from one address within `FLOOD_WINDOW` before the address is ignored.
const BAD_MAC_TO_BAN: u32 = 200;
/// Source addresses tracked for bad MACs.
const MAX_TRACKED_ADDRS: usize = 256;
/// A standby waits this many target durations for a new ingester's first segment before it
/// takes over (origins can be slow to start), and 1.5 between segments after that.
const TAKEOVER_FIRST_SEGMENTS: u32 = 3;
/// After an election changes, manifests from the previous ingester are refused without a strike
/// for this many target durations: its view of the swarm lags by a few datagrams.
const ELECTION_SETTLING_SEGMENTS: u32 = 3;
/// A deposed ingester is passed over for this many target durations.
const DEPOSITION_SEGMENTS: u32 = 10;
/// An ingester keeps fetching this many target durations after the last viewer left.
const LINGER_SEGMENTS: u32 = 3;

/// What this box knows and decides about one channel of its lineup.
#[derive(Debug)]
struct ChannelState {
    always_on: bool,
    /// This box has viewers.
    wanted: bool,
    /// Election order of the live boxes that carry the channel (this one included).
    ranking: Vec<NodeId>,
    /// Rank 0 and 1 of the ranking, minus a deposed ingester: whom this box acts on.
    ingester: Option<NodeId>,
    standby: Option<NodeId>,
    /// This box is fetching the channel from its origin.
    ingesting: bool,
    deposed: Option<(NodeId, Instant)>,
    /// Since when the standby has been waiting on the current ingester: the election that made
    /// it ingester, or the moment demand last started (an ingester is only asked to fetch then).
    watch_since: Instant,
    /// Last manifest accepted from the current ingester.
    last_manifest: Option<Instant>,
    target: Duration,
    /// Whether the channel was demanded at the last decision, to see demand start.
    demanded: bool,
    /// This box ingests the channel and its origin fails ([`Engine::set_origin_failing`]).
    origin_failing: bool,
    /// When this box last published a segment of the channel.
    last_published: Option<Instant>,
    demand_lost_at: Option<Instant>,
    /// Newest sequence number known to exist, from manifests, haves and pings.
    newest_known: Option<u64>,
    /// Boxes other than this one whose manifests of the window it accepted or had vouched for.
    signers: signers::Signers,
}

impl ChannelState {
    fn new(always_on: bool, me: NodeId, now: Instant, target: Duration) -> Self {
        ChannelState {
            always_on,
            wanted: false,
            ranking: vec![me],
            ingester: None,
            standby: None,
            ingesting: false,
            deposed: None,
            watch_since: now,
            last_manifest: None,
            target,
            demanded: false,
            origin_failing: false,
            last_published: None,
            demand_lost_at: None,
            newest_known: None,
            signers: signers::Signers::default(),
        }
    }
}

/// An outstanding block request.
#[derive(Debug)]
struct Outstanding {
    peer: NodeId,
    sent_at: Instant,
    /// Peers already asked for this block (most recent last).
    tried: heapless::Vec<NodeId, 4>,
}

/// A segment known to exist whose manifest this box lacks.
#[derive(Debug)]
struct ManifestWant {
    hint: NodeId,
    next_try: Instant,
    attempts: u8,
}

/// Per-segment state that lives only while the segment is incomplete or being pushed.
#[derive(Debug)]
struct Dissemination {
    /// Where this box sits in the segment's push trees (fixed when the manifest arrived).
    tree: Option<TreePosition>,
    /// Last fragment received for the segment.
    last_activity: Instant,
}

/// Bad-MAC accounting for one source address.
#[derive(Debug)]
struct AddrRecord {
    bad: u32,
    since: Instant,
    banned_until: Option<Instant>,
}

/// One box's protocol state. See the module docs for how to drive it.
pub struct Engine {
    config: Config,
    me: NodeId,
    public_key: [u8; 32],
    session: u32,
    rng: ChaCha8Rng,
    peers: BTreeMap<NodeId, Peer>,
    peer_limits: PeerLimits,
    channels: BTreeMap<ChannelId, ChannelState>,
    store: Store,
    sender: Sender,
    blocks: BlockPool,
    manifests: ManifestPool,
    requests: BTreeMap<BlockKey, Outstanding>,
    manifest_wants: BTreeMap<(ChannelId, u64), ManifestWant>,
    dissemination: BTreeMap<(ChannelId, u64), Dissemination>,
    addrs: BTreeMap<SocketAddr, AddrRecord>,
    events: VecDeque<Event>,
    counters: Counters,
    next_tick: Instant,
    next_repair: Option<Instant>,
    membership_changed: bool,
    /// When the lineup last changed at run time: hellos repeat the new lineup to every peer
    /// for a few ping intervals, so one lost datagram does not leave a peer with the old one.
    lineup_changed_at: Option<Instant>,
    closed: bool,
}

impl Engine {
    /// A new engine, started at `now`.
    pub fn new(config: Config, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let me = config.identity.node_id();
        let public_key = config.identity.public_key();
        let session = rng.next_u32();
        // An honest peer sends at most at its upload rate, and deployments give their boxes
        // similar rates: allow four times our own, so a gigabit box is never taken for a flood.
        let line_rate = 4 * config.upload_rate / config.max_datagram as u64;
        let peer_limits = PeerLimits {
            datagrams_per_sec: config.peer_datagram_rate.max(line_rate),
            serve_bytes_per_sec: config.upload_rate / 2,
            serve_burst: 256 * 1024,
        };
        let sender = Sender::new(
            config.upload_rate,
            // Credit after idling: 4 datagrams or 1 ms of the rate, whichever is more. Event loops
            // wake with about millisecond precision; a smaller credit would cap the rate at a few
            // datagrams per wake-up.
            Duration::from_micros(4 * config.max_datagram as u64 * 1_000_000 / config.upload_rate)
                .max(Duration::from_millis(1)),
            SenderLimits { control: 8192, tasks: 65_536, pushes_per_peer: 4096, requests_per_peer: 64 },
        );
        let channels = config
            .lineup
            .iter()
            .map(|e| (e.channel, ChannelState::new(e.always_on, me, now, config.default_target_duration)))
            .collect();
        Ok(Engine {
            store: Store::new(config.store_budget, config.ring_len),
            blocks: BlockPool::new(config.max_partial_blocks),
            manifests: ManifestPool::new(16),
            me,
            public_key,
            session,
            rng,
            peers: BTreeMap::new(),
            peer_limits,
            channels,
            sender,
            requests: BTreeMap::new(),
            manifest_wants: BTreeMap::new(),
            dissemination: BTreeMap::new(),
            addrs: BTreeMap::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            next_tick: now,
            next_repair: None,
            membership_changed: true,
            lineup_changed_at: None,
            closed: false,
            config,
        })
    }

    /// This box's node id.
    pub fn node_id(&self) -> NodeId {
        self.me
    }

    /// This engine's session id (random per start; peers see a new one after a restart).
    pub fn session_id(&self) -> u32 {
        self.session
    }

    /// The store, for serving segments to TVs.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Counters since start.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The peers this box knows: node id, address, alive, smoothed RTT, last heard.
    pub fn peers(&self) -> impl Iterator<Item = PeerInfo> + '_ {
        self.peers.values().map(|p| PeerInfo {
            node_id: p.id,
            addr: p.addr,
            alive: p.alive,
            banned: p.banned_until.is_some(),
            rtt: p.srtt,
            last_heard: p.last_heard,
            bytes_in: p.bytes_in,
            bytes_out: p.bytes_out,
        })
    }

    /// This box's current view of a channel's ingester and standby.
    pub fn election(&self, channel: ChannelId) -> Option<(Option<NodeId>, Option<NodeId>)> {
        self.channels.get(&channel).map(|c| (c.ingester, c.standby))
    }

    /// Live peers that carry `channel` (have it in their lineup): 0 when this box is alone
    /// with it, so nobody else can need its segments.
    pub fn peers_carrying(&self, channel: ChannelId) -> usize {
        self.channels.get(&channel).map_or(0, |c| c.ranking.iter().filter(|&&n| n != self.me).count())
    }

    /// The live boxes that carry `channel`, this one included, in election order (empty for a
    /// channel outside the lineup).
    pub fn carriers(&self, channel: ChannelId) -> &[NodeId] {
        self.channels.get(&channel).map_or(&[], |c| c.ranking.as_slice())
    }

    /// How many live peers carrying `channel` said (in their latest `Have`) that they hold
    /// segment `seq` complete. Only the newest 64 segments of a peer are known.
    pub fn holders(&self, channel: ChannelId, seq: u64) -> usize {
        let Some(state) = self.channels.get(&channel) else {
            return 0;
        };
        state
            .ranking
            .iter()
            .filter(|&&n| n != self.me)
            .filter(|n| self.peers.get(n).is_some_and(|p| p.holds(channel, seq)))
            .count()
    }

    /// Whether `channel` is fetched even without viewers.
    pub fn is_always_on(&self, channel: ChannelId) -> bool {
        self.channels.get(&channel).is_some_and(|c| c.always_on)
    }

    /// Whether this box is fetching `channel` from its origin.
    pub fn is_ingesting(&self, channel: ChannelId) -> bool {
        self.channels.get(&channel).is_some_and(|c| c.ingesting)
    }

    /// A peer found by discovery (or configured). The engine says hello and confirms its session.
    pub fn add_peer(&mut self, now: Instant, node_id: NodeId, addr: SocketAddr) {
        if node_id == self.me || self.closed {
            return;
        }
        if let Some(peer) = self.peers.get_mut(&node_id) {
            if peer.addr != addr && !peer.alive {
                peer.addr = addr;
                peer.next_hello = now;
            }
            return;
        }
        if self.peers.len() >= self.config.max_peers {
            self.counters.peer_table_full += 1;
            return;
        }
        let mut peer = self.new_peer(node_id, addr, now);
        peer.next_hello = now + Duration::from_millis(1);
        self.peers.insert(node_id, peer);
        self.queue_control(node_id, Control::Hello);
        self.next_tick = self.next_tick.min(now + Duration::from_millis(1));
    }

    /// A peer discovery says is gone. It is forgotten now, not after a timeout.
    pub fn remove_peer(&mut self, now: Instant, node_id: NodeId) {
        if let Some(peer) = self.peers.remove(&node_id) {
            self.forget(now, &peer);
        }
    }

    /// Adds a channel to this box's lineup at run time (a TV asked for a relay URL that no
    /// config names). Peers learn the new lineup from hellos; the channel is then elected like
    /// any other among the boxes that carry it.
    pub fn add_channel(&mut self, now: Instant, entry: LineupEntry) -> Result<(), LineupFull> {
        if self.channels.contains_key(&entry.channel) {
            return Ok(());
        }
        if self.channels.len() >= crate::wire::MAX_LINEUP {
            return Err(LineupFull);
        }
        let state = ChannelState::new(entry.always_on, self.me, now, self.config.default_target_duration);
        self.channels.insert(entry.channel, state);
        self.lineup_changed(now);
        Ok(())
    }

    /// Removes a channel from this box's lineup at run time: stops ingesting it, forgets its
    /// segments and requests, and tells peers. Whether it was in the lineup.
    pub fn remove_channel(&mut self, now: Instant, channel: ChannelId) -> bool {
        let Some(state) = self.channels.remove(&channel) else {
            return false;
        };
        if state.ingesting {
            self.push_event(Event::IngestStop { channel });
        }
        self.store.remove_channel(channel);
        self.requests.retain(|&(c, _, _), _| c != channel);
        self.blocks.blocks.retain(|&(c, _, _), _| c != channel);
        self.manifest_wants.retain(|&(c, _), _| c != channel);
        self.dissemination.retain(|&(c, _), _| c != channel);
        self.lineup_changed(now);
        true
    }

    /// The channels in this box's lineup.
    pub fn lineup(&self) -> impl Iterator<Item = ChannelId> + '_ {
        self.channels.keys().copied()
    }

    fn lineup_changed(&mut self, now: Instant) {
        self.lineup_changed_at = Some(now);
        let ids: Vec<NodeId> = self.peers.values().filter(|p| p.session.is_some()).map(|p| p.id).collect();
        for id in ids {
            self.queue_control(id, Control::Hello);
        }
        self.membership_changed = true;
        self.next_tick = now;
    }

    /// Whether this box has viewers for `channel`. Peers learn at once.
    pub fn want_channel(&mut self, now: Instant, channel: ChannelId, wanted: bool) {
        let Some(state) = self.channels.get_mut(&channel) else {
            return;
        };
        if state.wanted == wanted {
            return;
        }
        state.wanted = wanted;
        let ids: Vec<NodeId> = self.peers.values().filter(|p| p.is_active(now)).map(|p| p.id).collect();
        for id in ids {
            self.queue_control(id, Control::Ping);
        }
        self.membership_changed = true;
        self.next_tick = now;
    }

    /// Publishes a segment fetched from the origin: signs its manifest, stores it and pushes it
    /// to the swarm. Only the channel's ingester may publish.
    pub fn publish_segment(
        &mut self,
        now: Instant,
        info: SegmentInfo,
        bytes: &[u8],
    ) -> Result<(), PublishError> {
        let Some(state) = self.channels.get(&info.channel) else {
            return Err(PublishError::NotInLineup);
        };
        if !state.ingesting {
            return Err(PublishError::NotIngester);
        }
        let manifest = SignedManifest::build(&self.config.identity, info, bytes)?;
        self.store.insert_complete(manifest.clone(), bytes, now)?;
        self.counters.segments_published += 1;
        let state = self.channels.get_mut(&info.channel).expect("checked above");
        state.last_published = Some(now);
        state.newest_known = Some(state.newest_known.map_or(info.seq, |n| n.max(info.seq)));
        state.target = state.target.max(info.duration);
        let members: Vec<NodeId> = state.ranking.iter().copied().filter(|&n| n != self.me).collect();
        let roots = election::roots(&members, self.config.stripes);
        let mut distinct = roots.clone();
        distinct.sort();
        distinct.dedup();
        let deadline = now;
        for &root in &distinct {
            self.queue_task(deadline, manifest_task(root, &manifest, false));
        }
        if !roots.is_empty() {
            for index in 0..manifest.block_count() {
                let root = roots[index % roots.len()];
                self.queue_task(deadline, block_task(root, &manifest, index as u16, RangeSet::new(), false));
            }
        }
        self.push_event(Event::SegmentComplete { channel: info.channel, seq: info.seq });
        self.announce_have(now, info.channel);
        Ok(())
    }

    /// The caller's source says whether the origin of a channel this box ingests fails. Peers
    /// learn it from the "fetching" announcement ([`Engine::origin_failing`] there): an
    /// ingester that keeps trying a failing origin is not late, and is not taken over.
    pub fn set_origin_failing(&mut self, channel: ChannelId, failing: bool) {
        if let Some(state) = self.channels.get_mut(&channel) {
            state.origin_failing = failing && state.ingesting;
        }
    }

    /// Whether the channel's origin fails, as its ingester says: this box's own source's word
    /// when it ingests, else the last "fetching" announcement of the box that does. `None`:
    /// nobody announces fetching it.
    pub fn origin_failing(&self, channel: ChannelId, now: Instant) -> Option<bool> {
        let state = self.channels.get(&channel)?;
        if state.ingesting {
            return Some(state.origin_failing);
        }
        self.peers
            .values()
            .filter(|p| p.is_active(now))
            .find_map(|p| p.ingesting.iter().find(|i| i.channel == channel).map(|i| i.origin_failing))
    }

    /// Says goodbye to every peer and stops ingesting. Drain `poll_transmit` afterwards to send
    /// the goodbyes; the engine takes no further input.
    pub fn close(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        let ids: Vec<NodeId> = self.peers.values().filter(|p| p.session.is_some()).map(|p| p.id).collect();
        self.sender = Sender::new(
            self.config.upload_rate,
            Duration::ZERO,
            SenderLimits { control: ids.len() + 1, tasks: 1, pushes_per_peer: 1, requests_per_peer: 1 },
        );
        for id in ids {
            self.queue_control(id, Control::Goodbye);
        }
        let channels: Vec<ChannelId> =
            self.channels.iter().filter(|(_, c)| c.ingesting).map(|(&c, _)| c).collect();
        for channel in channels {
            if let Some(state) = self.channels.get_mut(&channel) {
                state.ingesting = false;
            }
            self.push_event(Event::IngestStop { channel });
        }
        self.closed = true;
        log::info!("{}: closing at {now}", self.me);
    }

    /// The next event, if any. Drain after every input.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Engine::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = if self.closed { None } else { Some(self.next_tick) };
        for t in [self.next_repair, self.sender.next_send()].into_iter().flatten() {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        next
    }

    /// A fresh peer entry. Its packet numbers start at the count of datagrams this engine has
    /// sent so far: every per-peer counter is at most that count, so a peer that was removed and
    /// is added again never sees a packet number it has already seen from this session.
    fn new_peer(&mut self, id: NodeId, addr: SocketAddr, now: Instant) -> Peer {
        let challenge = self.rng.next_u64();
        let mut peer = Peer::new(id, addr, challenge, now, &self.peer_limits);
        peer.tx_packet = self.counters.datagrams_out;
        peer
    }

    fn push_event(&mut self, event: Event) {
        if self.events.len() >= EVENT_CAPACITY {
            self.events.pop_front();
            self.counters.events_dropped += 1;
        }
        self.events.push_back(event);
    }

    fn queue_control(&mut self, peer: NodeId, message: Control) {
        if !self.sender.control(peer, message) {
            self.counters.queue_full += 1;
        }
    }

    fn queue_task(&mut self, deadline: Instant, task: Task) -> bool {
        match self.sender.task(deadline, task) {
            Ok(()) => true,
            Err(_) => {
                self.counters.queue_full += 1;
                false
            }
        }
    }

    /// Drops a peer's state everywhere (it left, was removed, or is banned).
    fn forget(&mut self, _now: Instant, peer: &Peer) {
        self.sender.forget_peer(peer.id);
        self.requests.retain(|_, o| o.peer != peer.id);
        if peer.alive {
            self.push_event(Event::PeerDown(peer.id));
        }
        self.membership_changed = true;
    }

    fn ban(&mut self, now: Instant, id: NodeId, reason: BanReason) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if peer.is_banned(now) {
            return;
        }
        log::warn!("banning peer {id}: {reason:?}");
        peer.banned_until = Some(now + self.config.ban_duration);
        peer.reset_announcements();
        self.counters.bans += 1;
        self.sender.forget_peer(id);
        self.requests.retain(|_, o| o.peer != id);
        self.membership_changed = true;
        self.push_event(Event::PeerBanned { peer: id, reason });
    }

    /// Lifts every ban and forgets every strike (an operator's decision, after fixing what
    /// made a box misbehave); how many peers were banned.
    pub fn lift_bans(&mut self, now: Instant) -> usize {
        let mut lifted = 0;
        for peer in self.peers.values_mut() {
            if peer.is_banned(now) {
                lifted += 1;
                log::info!("lifting the ban on peer {}", peer.id);
            }
            peer.banned_until = None;
            peer.strikes = 0;
        }
        if lifted > 0 {
            self.membership_changed = true;
        }
        lifted
    }

    /// A strike against a peer; enough strikes in a window ban it.
    fn strike(&mut self, now: Instant, id: NodeId, reason: BanReason) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if now.saturating_since(peer.strikes_since) > STRIKE_WINDOW {
            peer.strikes = 0;
            peer.strikes_since = now;
        }
        peer.strikes += 1;
        if peer.strikes >= STRIKES_TO_BAN {
            self.ban(now, id, reason);
        }
    }

    /// Sends `Have` for `channel` to every active peer.
    fn announce_have(&mut self, now: Instant, channel: ChannelId) {
        let Some((newest, bitmap)) = self.store.have(channel) else {
            return;
        };
        let have = crate::wire::Have { channel, newest, bitmap };
        let ids: Vec<NodeId> = self.peers.values().filter(|p| p.is_active(now)).map(|p| p.id).collect();
        for id in ids {
            if !self.sender.background(now, id, Control::Have(have)) {
                self.counters.queue_full += 1;
            }
        }
    }

    fn schedule_repair(&mut self, now: Instant) {
        if self.next_repair.is_none() {
            self.next_repair = Some(now + self.config.repair_interval);
        }
    }
}

/// The lineup already holds [`crate::wire::MAX_LINEUP`] channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("the lineup is full ({} channels)", crate::wire::MAX_LINEUP)]
pub struct LineupFull;

/// A peer as reported by [`Engine::peers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its node id.
    pub node_id: NodeId,
    /// Its current address.
    pub addr: SocketAddr,
    /// Heard from within the peer timeout.
    pub alive: bool,
    /// Banned at some point (maybe expired).
    pub banned: bool,
    /// Smoothed round-trip time.
    pub rtt: Option<Duration>,
    /// Last authenticated datagram.
    pub last_heard: Option<Instant>,
    /// Bytes of authenticated datagrams received from it.
    pub bytes_in: u64,
    /// Bytes of datagrams sent to it.
    pub bytes_out: u64,
}

fn manifest_task(peer: NodeId, manifest: &SignedManifest, requested: bool) -> Task {
    let m = manifest.manifest();
    Task {
        peer,
        channel: m.channel,
        seq: m.seq,
        tag: manifest.tag(),
        payload: Payload::Manifest,
        remaining: RangeSet::full(manifest.encoded().len() as u16),
        requested,
    }
}

/// A task sending `ranges` (or the whole block when empty) of block `index`.
fn block_task(
    peer: NodeId,
    manifest: &SignedManifest,
    index: u16,
    ranges: RangeSet,
    requested: bool,
) -> Task {
    let m = manifest.manifest();
    let len = m.block_len(usize::from(index)) as u16;
    let remaining = if ranges.is_empty() { RangeSet::full(len) } else { ranges };
    Task {
        peer,
        channel: m.channel,
        seq: m.seq,
        tag: manifest.tag(),
        payload: Payload::Block(index),
        remaining,
        requested,
    }
}

#[cfg(test)]
mod tests;
