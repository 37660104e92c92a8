//! What the driver records besides the engine's own counters, and the part of one box's
//! [`Status`] built from it (the HTTP backend adds the box itself, discovery and the disk tier;
//! the swarm's figures are [`crate::model::status::swarm_report`]'s).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use shoal_core::{ChannelId, Engine, Instant, NodeId};

use super::demand::Demand;
use crate::lineup::Channel;
use crate::model::status::{
    ChannelState, ChannelStatus, Counters, Figures, OriginRequests, OriginStatus, PeerStatus, Rejected,
    SecurityStatus, Status, StoreStatus, Traffic, VariantStatus, WindowEntry,
};
use crate::model::{is_stale, InputStats, OriginRequestKind, HLS_WINDOW};

/// How a channel is named in reports and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Label {
    /// The lineup id, as in URLs.
    pub(crate) id: String,
    /// The display name.
    pub(crate) name: String,
}

impl Label {
    pub(crate) fn of(channel: &Channel) -> Label {
        Label { id: channel.id.clone(), name: channel.name.clone() }
    }
}

/// Sequence numbers remembered per channel to count distinct segments (an hour of 2 s ones).
const RECENT_SEGMENTS: usize = 2048;

/// What discovery said about a peer beyond its swarm address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PeerMeta {
    /// Its HTTP server (status, dashboard).
    pub(crate) http: SocketAddr,
    /// Its board.
    pub(crate) board: String,
}

/// One channel as this box saw it.
#[derive(Clone, Debug, Default)]
pub(crate) struct ChannelRecord {
    /// Segment bytes this box fetched from the origin and published.
    pub(crate) origin_bytes: u64,
    /// Segments this box fetched from the origin and published.
    pub(crate) origin_segments: u64,
    /// Every request this box made to an HTTP (HLS) origin, as its source reported them.
    pub(crate) requests: OriginRequests,
    /// Segment bytes this box completed from peers.
    pub(crate) peer_bytes: u64,
    /// Segments this box completed from peers.
    pub(crate) peer_segments: u64,
    /// Distinct segments completed (published here or received).
    pub(crate) distinct_segments: u64,
    /// The sequence numbers of the latest ones, to tell a second copy from a new segment.
    pub(crate) recent: std::collections::BTreeSet<u64>,
    /// The newest segment completed, and when.
    pub(crate) newest: Option<(u64, Instant)>,
    /// The origin's last answer to this box's source: `None` until it asked.
    pub(crate) origin: Option<OriginRecord>,
    /// The variant of a master playlist this box's source uses.
    pub(crate) variant: Option<VariantStatus>,
    /// What a TS source last counted about its input (`None`: not a TS source, or not
    /// ingested here).
    pub(crate) input: Option<InputStats>,
}

impl ChannelRecord {
    /// Segment requests to the origin: an HTTP origin's own count (every request, as its log
    /// shows them); other sources have no requests to count, only the segments they read.
    pub(crate) fn segments_from_origin(&self) -> u64 {
        if self.requests.total() > 0 {
            self.requests.segments
        } else {
            self.origin_segments
        }
    }

    /// Bytes from the origin, counted the same way.
    pub(crate) fn bytes_from_origin(&self) -> u64 {
        if self.requests.total() > 0 {
            self.requests.bytes
        } else {
            self.origin_bytes
        }
    }
}

/// How the origin answered this box.
#[derive(Clone, Debug)]
pub(crate) struct OriginRecord {
    /// The last error, if the last attempt failed.
    pub(crate) error: Option<String>,
    /// Since when it has answered (or failed) like this.
    pub(crate) since: Instant,
}

/// Everything the driver records.
#[derive(Debug)]
pub(crate) struct Records {
    pub(crate) started: Instant,
    /// Every channel of the lineup, relayed feeds included: the one list the driver keeps.
    pub(crate) labels: BTreeMap<ChannelId, Label>,
    pub(crate) send_errors: u64,
    pub(crate) receive_errors: u64,
    pub(crate) peers: BTreeMap<NodeId, PeerMeta>,
    pub(crate) channels: BTreeMap<ChannelId, ChannelRecord>,
}

impl Records {
    pub(crate) fn new(started: Instant, lineup: &[Channel]) -> Records {
        let labels: BTreeMap<ChannelId, Label> =
            lineup.iter().map(|c| (c.channel_id(), Label::of(c))).collect();
        let channels = labels.keys().map(|&c| (c, ChannelRecord::default())).collect();
        Records { started, labels, send_errors: 0, receive_errors: 0, peers: BTreeMap::new(), channels }
    }

    /// A channel's name for logs: its lineup id, or its swarm id if it has left the lineup.
    pub(crate) fn name(&self, channel: ChannelId) -> String {
        self.labels.get(&channel).map_or_else(|| channel.to_string(), |l| l.id.clone())
    }

    /// This box published a segment it fetched from the origin.
    pub(crate) fn published(&mut self, channel: ChannelId, bytes: usize) {
        if let Some(c) = self.channels.get_mut(&channel) {
            c.origin_bytes += bytes as u64;
            c.origin_segments += 1;
        }
    }

    /// A segment became complete in the store (published here or received).
    pub(crate) fn segment_complete(&mut self, engine: &Engine, now: Instant, channel: ChannelId, seq: u64) {
        let Some(c) = self.channels.get_mut(&channel) else {
            return;
        };
        if let Some(m) = engine.store().segment(channel, seq).map(|s| s.manifest().manifest()) {
            if m.signer != engine.node_id() {
                c.peer_bytes += u64::from(m.length);
                c.peer_segments += 1;
            }
        }
        if c.recent.insert(seq) {
            c.distinct_segments += 1;
            if c.recent.len() > RECENT_SEGMENTS {
                c.recent.pop_first();
            }
        }
        if c.newest.is_none_or(|(newest, _)| seq >= newest) {
            c.newest = Some((seq, now));
        }
    }

    /// A channel joined the lineup at run time (a relayed feed).
    pub(crate) fn add_channel(&mut self, channel: &Channel) {
        let id = channel.channel_id();
        self.labels.insert(id, Label::of(channel));
        let channel = id;
        self.channels.entry(channel).or_default();
    }

    /// A channel added at run time left the lineup.
    pub(crate) fn remove_channel(&mut self, channel: ChannelId) {
        self.labels.remove(&channel);
        self.channels.remove(&channel);
    }

    /// An HLS source's requests to the origin.
    pub(crate) fn origin_traffic(
        &mut self,
        channel: ChannelId,
        kind: OriginRequestKind,
        requests: u64,
        bytes: u64,
        failed: bool,
    ) {
        let Some(c) = self.channels.get_mut(&channel) else { return };
        let r = &mut c.requests;
        match kind {
            OriginRequestKind::Playlist => r.playlists += requests,
            OriginRequestKind::Segment => r.segments += requests,
            OriginRequestKind::Init => r.init_sections += requests,
        }
        if failed {
            r.failed += requests;
        }
        r.bytes += bytes;
    }

    /// An HLS source chose a variant of its master playlist.
    pub(crate) fn variant(&mut self, channel: ChannelId, url: String, bandwidth: u64) {
        if let Some(c) = self.channels.get_mut(&channel) {
            c.variant = Some(VariantStatus { url, bandwidth });
        }
    }

    /// A TS source's counts about its input.
    pub(crate) fn input_stats(&mut self, channel: ChannelId, stats: InputStats) {
        if let Some(c) = self.channels.get_mut(&channel) {
            c.input = Some(stats);
        }
    }

    /// The source reported how the origin answered.
    pub(crate) fn origin_health(&mut self, now: Instant, channel: ChannelId, error: Option<String>) {
        let Some(c) = self.channels.get_mut(&channel) else {
            return;
        };
        match &mut c.origin {
            Some(o) if o.error.is_none() == error.is_none() => o.error = error,
            slot => *slot = Some(OriginRecord { error, since: now }),
        }
    }
}

/// SHA-256 over a segment's block hashes, in hex: equal for equal segments on every box.
fn content_digest(m: &shoal_core::Manifest) -> String {
    let mut digest = Sha256::new();
    for hash in &m.hashes {
        digest.update(hash);
    }
    format!("{:x}", digest.finalize())
}

fn hex(id: NodeId) -> String {
    format!("{id:#}")
}

/// One box's status as far as the driver knows it: the engine, its peers, every channel of the
/// lineup with its TVs. The HTTP backend adds the box itself, bytes to TVs, discovery and the
/// disk tier ([`Status::this_box`], [`Status::discovery`], [`Status::cache`]).
pub(crate) fn status(engine: &Engine, now: Instant, records: &Records, demand: &Demand) -> Status {
    let c = engine.counters();
    let peers = engine
        .peers()
        .map(|p| {
            let meta = records.peers.get(&p.node_id);
            PeerStatus {
                node_id: hex(p.node_id),
                address: p.addr.to_string(),
                alive: p.alive,
                banned: p.banned,
                rtt_ms: p.rtt.map(|r| r.as_secs_f64() * 1e3),
                last_seen_ms_ago: p.last_heard.map(|t| now.saturating_since(t).as_millis() as u64),
                bytes_in: p.bytes_in,
                bytes_out: p.bytes_out,
                http: meta.map(|m| m.http.to_string()),
                board: meta.map(|m| m.board.clone()),
            }
        })
        .collect();
    let channels = records
        .labels
        .iter()
        .map(|(&channel, label)| channel_status(engine, now, records, demand, channel, label))
        .collect();
    let sc = store_counters(engine);
    let rejected = Rejected {
        bad_mac: c.bad_mac,
        replay: c.replay,
        decode_error: c.malformed + c.too_short,
        unknown_version: c.unknown_version,
        bad_identity: c.bad_identity,
        unconfirmed: c.unconfirmed,
        misdirected: c.misdirected,
        unverified_address: c.unverified_address,
        unknown_peer: c.unknown_peer,
        bad_block: c.bad_blocks,
        forged_manifest: c.forged_manifests,
        not_from_ingester: c.manifests_not_from_ingester,
        banned: c.banned,
        rate_limited: c.rate_limited,
        bad_fragment: c.bad_fragments,
        not_in_lineup: c.not_in_lineup,
        foreign_key: None,
    };
    Status {
        node_id: hex(engine.node_id()),
        uptime_s: now.saturating_since(records.started).as_secs(),
        peers,
        channels,
        store: sc,
        security: SecurityStatus { bans: c.bans, rejected: rejected.clone() },
        counters: Counters {
            datagrams_in: c.datagrams_in,
            datagrams_out: c.datagrams_out,
            bytes_in: c.bytes_in,
            bytes_out: c.bytes_out,
            origin_bytes: records.channels.values().map(ChannelRecord::bytes_from_origin).sum(),
            peer_bytes: records.channels.values().map(|c| c.peer_bytes).sum(),
            served_bytes: 0,
            send_errors: records.send_errors,
            receive_errors: records.receive_errors,
            segments_published: c.segments_published,
            segments_received: c.segments_received,
            blocks_received: c.blocks_received,
            requests_sent: c.requests_sent,
            requests_served: c.requests_served,
            takeovers: c.takeovers,
            bans: c.bans,
            rejected,
        },
        ..Status::default()
    }
}

fn store_counters(engine: &Engine) -> StoreStatus {
    let store = engine.store();
    let sc = store.counters();
    StoreStatus {
        used_bytes: store.used() as u64,
        budget_bytes: store.budget() as u64,
        evicted: sc.evicted,
        rejected: sc.rejected,
    }
}

fn channel_status(
    engine: &Engine,
    now: Instant,
    records: &Records,
    demand: &Demand,
    channel: ChannelId,
    label: &Label,
) -> ChannelStatus {
    let store = engine.store();
    let (ingester, standby) = engine.election(channel).unwrap_or((None, None));
    let record = records.channels.get(&channel).cloned().unwrap_or_default();
    let window: Vec<&shoal_core::Segment> = store.window(channel, HLS_WINDOW).collect();
    let entries = window
        .iter()
        .map(|s| {
            let m = s.manifest().manifest();
            WindowEntry {
                seq: m.seq,
                bytes: u64::from(m.length),
                duration_ms: m.duration().as_millis() as u64,
                signer: hex(m.signer),
                // Names the content without reading it: a status poll must not hash megabytes.
                content: s.is_complete().then(|| content_digest(m)),
            }
        })
        .collect();
    let (bytes, duration) = window.iter().fold((0u64, Duration::ZERO), |(b, d), s| {
        let m = s.manifest().manifest();
        (b + u64::from(m.length), d + m.duration())
    });
    let bitrate = (!duration.is_zero()).then(|| (bytes as f64 * 8.0 / duration.as_secs_f64()) as u64);
    let target = window.iter().map(|s| s.manifest().manifest().duration()).max().unwrap_or_default();
    // The HLS target duration, as TVs are told it: whole seconds.
    let target = Duration::from_secs(target.as_secs_f64().round() as u64);
    let vod = window.last().is_some_and(|s| s.manifest().manifest().vod);
    let age = record.newest.map(|(_, at)| now.saturating_since(at));
    let wanted_here = demand.is_wanted(channel);
    let demanded = wanted_here || engine.is_ingesting(channel);
    let state = match (vod, age) {
        (true, _) => ChannelState::Vod,
        (false, Some(age)) if !is_stale(age, target) => ChannelState::Live,
        (false, Some(_)) if demanded => ChannelState::Stale,
        (false, None) if demanded => ChannelState::Starting,
        _ => ChannelState::Idle,
    };
    let mut status = ChannelStatus {
        id: label.id.clone(),
        swarm_id: channel.to_string(),
        name: label.name.clone(),
        state,
        ingester: ingester.map(hex),
        standby: standby.map(hex),
        ingesting: engine.is_ingesting(channel),
        wanted_here,
        bitrate_bps: bitrate,
        segments_held: store.segments(channel).filter(|s| s.is_complete()).count() as u64,
        newest_age_ms: age.map(|a| a.as_millis() as u64),
        origin: record.origin.as_ref().map(|o| OriginStatus {
            healthy: o.error.is_none(),
            last_error: o.error.clone(),
            since_s: now.saturating_since(o.since).as_secs(),
            segments_fetched: record.origin_segments,
            bytes: record.origin_bytes,
            variant: record.variant.clone(),
        }),
        origin_failing: engine.origin_failing(channel, now),
        input: record.input,
        segments_from_origin: record.segments_from_origin(),
        segments_from_peers: record.peer_segments,
        distinct_segments: record.distinct_segments,
        bytes_from_origin: record.bytes_from_origin(),
        origin_requests: record.requests,
        bytes_from_peers: record.peer_bytes,
        viewers: demand.tvs(channel) as u64,
        bytes_to_tvs: 0,
        figures: Figures::default(),
        window: entries,
    };
    status.figures = Figures::new(&Traffic::of(&status));
    status
}
