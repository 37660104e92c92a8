//! One remote box as the engine sees it: its session, liveness, what it announced.
//!
//! A peer's session is *confirmed* once a hello in that session echoes the challenge this box
//! sent it (see [`crate::wire::Hello`]); until then only hellos from it are processed. That keeps
//! a replayed datagram from an old session from being believed after the peer restarts.

use core::time::Duration;
use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::crypto::PublicKey;
use crate::replay::ReplayWindow;
use crate::wire::Ingesting;
use crate::{ChannelId, Instant, NodeId};

/// Requests per second one peer may send before the excess counts as a flood.
const REQUESTS_PER_SEC: u64 = 4_000;

/// A token bucket counting in arbitrary units (datagrams, bytes).
#[derive(Clone, Debug)]
pub(crate) struct Bucket {
    rate_per_sec: u64,
    burst: u64,
    tokens: u64,
    last: Instant,
}

impl Bucket {
    pub(crate) fn new(rate_per_sec: u64, burst: u64, now: Instant) -> Self {
        Bucket { rate_per_sec, burst, tokens: burst, last: now }
    }

    /// Takes `amount` tokens if there are enough.
    pub(crate) fn take(&mut self, amount: u64, now: Instant) -> bool {
        let elapsed = now.saturating_since(self.last).as_micros() as u64;
        let refill = elapsed.saturating_mul(self.rate_per_sec) / 1_000_000;
        if refill > 0 {
            self.tokens = (self.tokens + refill).min(self.burst);
            self.last = now;
        }
        if self.tokens >= amount {
            self.tokens -= amount;
            true
        } else {
            false
        }
    }
}

/// A confirmed session of a peer and its replay window.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) id: u32,
    pub(crate) window: ReplayWindow,
}

#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) id: NodeId,
    pub(crate) addr: SocketAddr,
    /// Set once its hello arrived and the key matched its node id.
    pub(crate) key: Option<PublicKey>,
    pub(crate) lineup: Vec<ChannelId>,
    pub(crate) session: Option<Session>,
    /// Our current challenge to this peer; replaced each time it confirms a session.
    pub(crate) our_challenge: u64,
    /// The peer's latest challenge to us, echoed in our hellos.
    pub(crate) their_challenge: Option<u64>,
    /// Whether the peer said it confirmed our current session.
    pub(crate) confirmed_us: bool,
    /// An address the peer's datagrams came from that is not yet proven to be its own, and the
    /// challenge a hello sent there carries: `addr` moves only when a hello from there echoes
    /// it, never on a datagram alone (one captured and replayed from elsewhere would move it).
    pub(crate) probe: Option<(SocketAddr, u64)>,
    /// When the next probe may go out (they are answered, so they are rate-limited).
    pub(crate) next_probe: Instant,
    /// Next packet number we send it.
    pub(crate) tx_packet: u64,
    /// Bytes of authenticated datagrams received from it.
    pub(crate) bytes_in: u64,
    /// Bytes of datagrams sent to it.
    pub(crate) bytes_out: u64,
    /// Last authenticated datagram in its confirmed session.
    pub(crate) last_heard: Option<Instant>,
    pub(crate) alive: bool,
    pub(crate) next_hello: Instant,
    pub(crate) next_ping: Instant,
    pub(crate) next_have: Instant,
    pub(crate) srtt: Option<Duration>,
    pub(crate) wants: Vec<ChannelId>,
    pub(crate) ingesting: Vec<Ingesting>,
    /// Per channel: newest complete segment and bitmap, as in `Have`.
    pub(crate) have: BTreeMap<ChannelId, (u64, u64)>,
    pub(crate) banned_until: Option<Instant>,
    /// Misbehaviour short of a ban (a manifest from a non-ingester): three in a window ban.
    pub(crate) strikes: u32,
    pub(crate) strikes_since: Instant,
    /// Inbound datagrams, to stop floods.
    pub(crate) inbound: Bucket,
    pub(crate) flood_drops: u64,
    pub(crate) flood_since: Instant,
    /// Bytes we serve it on request, so one peer cannot take all our upload.
    pub(crate) serve_budget: Bucket,
    /// Requests it may send us: an honest box keeps at most 16 outstanding and repairs every
    /// few milliseconds, far below this.
    pub(crate) request_rate: Bucket,
    /// It answered one of our requests with `Busy`: ask others until then.
    pub(crate) busy_until: Instant,
    /// Block requests we have outstanding at this peer.
    pub(crate) outstanding: usize,
    /// Last data fragment it sent us: a parent still sending is still pushing.
    pub(crate) last_data: Option<Instant>,
}

impl Peer {
    pub(crate) fn new(
        id: NodeId,
        addr: SocketAddr,
        challenge: u64,
        now: Instant,
        limits: &PeerLimits,
    ) -> Self {
        Peer {
            id,
            addr,
            key: None,
            lineup: Vec::new(),
            session: None,
            our_challenge: challenge,
            their_challenge: None,
            confirmed_us: false,
            probe: None,
            next_probe: now,
            tx_packet: 0,
            bytes_in: 0,
            bytes_out: 0,
            last_heard: None,
            alive: false,
            next_hello: now,
            next_ping: now,
            next_have: now,
            srtt: None,
            wants: Vec::new(),
            ingesting: Vec::new(),
            have: BTreeMap::new(),
            banned_until: None,
            strikes: 0,
            strikes_since: now,
            inbound: Bucket::new(limits.datagrams_per_sec, limits.datagrams_per_sec / 4, now),
            flood_drops: 0,
            flood_since: now,
            serve_budget: Bucket::new(limits.serve_bytes_per_sec, limits.serve_burst, now),
            request_rate: Bucket::new(REQUESTS_PER_SEC, REQUESTS_PER_SEC / 4, now),
            busy_until: now,
            outstanding: 0,
            last_data: None,
        }
    }

    pub(crate) fn is_banned(&self, now: Instant) -> bool {
        self.banned_until.is_some_and(|until| now < until)
    }

    /// Usable for election and dissemination: confirmed, keyed, alive, not banned.
    pub(crate) fn is_active(&self, now: Instant) -> bool {
        self.alive && self.key.is_some() && self.session.is_some() && !self.is_banned(now)
    }

    pub(crate) fn carries(&self, channel: ChannelId) -> bool {
        self.lineup.contains(&channel)
    }

    pub(crate) fn holds(&self, channel: ChannelId, seq: u64) -> bool {
        self.have.get(&channel).is_some_and(|&(newest, bitmap)| {
            seq <= newest && newest - seq < 64 && bitmap & (1 << (newest - seq)) != 0
        })
    }

    pub(crate) fn record_rtt(&mut self, sample: Duration) {
        self.srtt = Some(match self.srtt {
            None => sample,
            Some(srtt) => (srtt * 7 + sample) / 8,
        });
    }

    /// Forgets what the peer announced, for a new session after a restart.
    pub(crate) fn reset_announcements(&mut self) {
        self.wants.clear();
        self.ingesting.clear();
        self.have.clear();
        self.outstanding = 0;
    }
}

/// Per-peer limits taken from the engine's config.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PeerLimits {
    pub(crate) datagrams_per_sec: u64,
    pub(crate) serve_bytes_per_sec: u64,
    pub(crate) serve_burst: u64,
}
