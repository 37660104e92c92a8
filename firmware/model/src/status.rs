//! `/api/status` and `/api/swarm` as types: one box's [`Status`], built by the driver (the swarm
//! as it sees it) and completed by the HTTP backend (the box, its TVs, discovery, the disk tier);
//! and the [`SwarmReport`] gathered from every box's status. The dashboard, `/metrics`,
//! `shoal status` and the tests read these by field.
//!
//! Every struct reads with `#[serde(default)]`: a peer running another version may lack a field,
//! and its status must still count. DESIGN.md §5's three figures are computed in one place,
//! [`Figures::new`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::InputStats;

/// One box's status, as `/api/status` serves it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    /// This box's node id (hex).
    pub node_id: String,
    /// Seconds since the driver started.
    pub uptime_s: u64,
    /// The box itself: board, version, addresses, LED.
    #[serde(rename = "box")]
    pub this_box: BoxStatus,
    /// Every peer the engine knows.
    pub peers: Vec<PeerStatus>,
    /// Every channel of the lineup, relayed feeds included.
    pub channels: Vec<ChannelStatus>,
    /// The RAM segment store.
    pub store: StoreStatus,
    /// Bans and rejected input.
    pub security: SecurityStatus,
    /// Traffic and protocol counters.
    pub counters: Counters,
    /// mDNS discovery (absent in the demo, which runs none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoveryStatus>,
    /// The disk tier for on-demand assets (absent when disabled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheStatus>,
}

impl Status {
    /// The peers answering pings.
    pub fn alive_peers(&self) -> impl Iterator<Item = &PeerStatus> {
        self.peers.iter().filter(|p| p.alive)
    }

    /// A channel by its URL id.
    pub fn channel(&self, id: &str) -> Option<&ChannelStatus> {
        self.channels.iter().find(|c| c.id == id)
    }
}

/// What the box is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BoxStatus {
    pub node_id: String,
    pub board: String,
    pub version: String,
    pub uptime_s: u64,
    /// Its addresses (up, non-loopback interfaces), IPv4 first.
    pub addresses: Vec<String>,
    pub http_port: u16,
    /// Where its HTTP server is reached (`address:port`).
    pub http: String,
    /// Blinking for a technician.
    pub identifying: bool,
    /// What its status LED shows (`None`: no LED task, as in the demo).
    pub led: Option<String>,
    /// The networks admin actions are taken from.
    pub admin_networks: String,
}

/// A peer as the engine sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerStatus {
    pub node_id: String,
    /// Its swarm (UDP) address.
    pub address: String,
    pub alive: bool,
    pub banned: bool,
    pub rtt_ms: Option<f64>,
    pub last_seen_ms_ago: Option<u64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Its HTTP server, as discovery announced it.
    pub http: Option<String>,
    pub board: Option<String>,
}

/// A channel's state, from the box's point of view; ordered from the least to the most lively
/// (the swarm report shows the liveliest any box reports).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelState {
    /// Nobody here wants it.
    #[default]
    Idle,
    /// Wanted, and no segment yet.
    Starting,
    /// Wanted, and the newest segment is old: the origin stopped delivering.
    Stale,
    /// An on-demand asset.
    Vod,
    /// Segments keep arriving.
    Live,
}

impl ChannelState {
    /// The state as the JSON writes it (`"live"`), for the dashboard and `shoal status`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelState::Idle => "idle",
            ChannelState::Starting => "starting",
            ChannelState::Stale => "stale",
            ChannelState::Vod => "vod",
            ChannelState::Live => "live",
        }
    }
}

/// One channel on this box.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChannelStatus {
    /// The lineup id, as in URLs (`/hls/<id>/`); a relayed feed's is its relay path.
    pub id: String,
    /// The swarm id (hex).
    pub swarm_id: String,
    pub name: String,
    pub state: ChannelState,
    pub ingester: Option<String>,
    pub standby: Option<String>,
    /// This box fetches it from the origin.
    pub ingesting: bool,
    /// A TV here watched it within the viewer timeout.
    pub wanted_here: bool,
    pub bitrate_bps: Option<u64>,
    pub segments_held: u64,
    pub newest_age_ms: Option<u64>,
    /// The origin's answers to this box's source (`None` until it asked).
    pub origin: Option<OriginStatus>,
    /// Whether the channel's origin fails, as its ingester announces it to the swarm (`None`:
    /// nobody fetches it now). The same on every box.
    pub origin_failing: Option<bool>,
    /// A TS source's input counters (`None`: not a TS source, or not ingested here).
    pub input: Option<InputStats>,
    /// Segment requests this box made to the origin: for an HLS origin every request for a
    /// segment, failed, retried and discarded ones too; for other sources, segments read.
    pub segments_from_origin: u64,
    pub segments_from_peers: u64,
    pub distinct_segments: u64,
    /// Bytes this box received from the origin: for an HLS origin every answer's body
    /// (playlists, init sections, segments, errors); for other sources, the segments read.
    pub bytes_from_origin: u64,
    /// Every request this box made to an HLS origin, by kind (all zero for other sources).
    pub origin_requests: OriginRequests,
    pub bytes_from_peers: u64,
    /// TVs that fetched something within the viewer timeout.
    pub viewers: u64,
    pub bytes_to_tvs: u64,
    /// DESIGN.md §5's figures for this box alone (`/api/swarm` has the swarm's).
    pub figures: Figures,
    /// The newest segments held, oldest first.
    pub window: Vec<WindowEntry>,
}

/// How the origin answered this box's source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OriginStatus {
    pub healthy: bool,
    pub last_error: Option<String>,
    /// Seconds it has answered (or failed) like this.
    pub since_s: u64,
    pub segments_fetched: u64,
    pub bytes: u64,
    /// For a master playlist: the variant in use (the best under the cap that works).
    pub variant: Option<VariantStatus>,
}

/// The variant of a master playlist a source uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VariantStatus {
    pub url: String,
    /// Its `BANDWIDTH`, bit/s.
    pub bandwidth: u64,
}

/// The requests one box made to a channel's HTTP origin: what the origin's access log shows of
/// it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OriginRequests {
    pub playlists: u64,
    pub segments: u64,
    pub init_sections: u64,
    /// Requests for a fetch that did not succeed (an error status, a cut-off or malformed
    /// answer, a retry's earlier tries), of any kind.
    pub failed: u64,
    /// Body bytes of all the answers.
    pub bytes: u64,
}

impl OriginRequests {
    /// All requests.
    pub fn total(&self) -> u64 {
        self.playlists + self.segments + self.init_sections
    }
}

/// A segment of the window, as the status names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WindowEntry {
    pub seq: u64,
    pub bytes: u64,
    pub duration_ms: u64,
    pub signer: String,
    /// SHA-256 over the manifest's block hashes (hex): equal for equal segments on every box,
    /// without reading the bytes. `None` while incomplete.
    pub content: Option<String>,
}

/// The RAM segment store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreStatus {
    pub used_bytes: u64,
    pub budget_bytes: u64,
    pub evicted: u64,
    pub rejected: u64,
}

/// Bans, and input rejected by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecurityStatus {
    pub bans: u64,
    pub rejected: Rejected,
}

/// Datagrams, manifests and announcements rejected, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rejected {
    pub bad_mac: u64,
    pub replay: u64,
    pub decode_error: u64,
    pub unknown_version: u64,
    pub bad_identity: u64,
    pub unconfirmed: u64,
    /// Addressed to another box (replayed from one receiver to another).
    pub misdirected: u64,
    /// From an address the peer has not proven to be its own.
    pub unverified_address: u64,
    pub unknown_peer: u64,
    pub bad_block: u64,
    pub forged_manifest: u64,
    pub not_from_ingester: u64,
    pub banned: u64,
    pub rate_limited: u64,
    pub bad_fragment: u64,
    pub not_in_lineup: u64,
    /// mDNS records of another deployment (absent without discovery).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreign_key: Option<u64>,
}

impl Rejected {
    /// Every reason with its count, for `/metrics`.
    pub fn by_reason(&self) -> [(&'static str, u64); 17] {
        [
            ("bad_mac", self.bad_mac),
            ("replay", self.replay),
            ("decode_error", self.decode_error),
            ("unknown_version", self.unknown_version),
            ("bad_identity", self.bad_identity),
            ("unconfirmed", self.unconfirmed),
            ("misdirected", self.misdirected),
            ("unverified_address", self.unverified_address),
            ("unknown_peer", self.unknown_peer),
            ("bad_block", self.bad_block),
            ("forged_manifest", self.forged_manifest),
            ("not_from_ingester", self.not_from_ingester),
            ("banned", self.banned),
            ("rate_limited", self.rate_limited),
            ("bad_fragment", self.bad_fragment),
            ("not_in_lineup", self.not_in_lineup),
            ("foreign_key", self.foreign_key.unwrap_or(0)),
        ]
    }
}

/// Traffic and protocol counters since the box started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    pub datagrams_in: u64,
    pub datagrams_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub origin_bytes: u64,
    pub peer_bytes: u64,
    /// Segment bytes sent to TVs.
    pub served_bytes: u64,
    pub send_errors: u64,
    pub receive_errors: u64,
    pub segments_published: u64,
    pub segments_received: u64,
    pub blocks_received: u64,
    pub requests_sent: u64,
    pub requests_served: u64,
    pub takeovers: u64,
    pub bans: u64,
    pub rejected: Rejected,
}

/// What mDNS discovery has seen since it started. `found - lost` is the number of peers known
/// now. The `ignored_*` counters count records as mdns-sd resolves them, not boxes: a box that
/// announces again or changes its record counts again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiscoveryStatus {
    /// Boxes newly found (address updates of a known box are not counted).
    pub found: u64,
    /// Boxes lost.
    pub lost: u64,
    /// Records ignored because their key fingerprint (`fp`) is not ours: another deployment.
    pub ignored_foreign_key: u64,
    /// Records ignored because a TXT field is missing or malformed, or the SRV port is 0.
    pub ignored_bad_txt: u64,
    /// Records ignored because their protocol version (`v`) is not ours.
    pub ignored_version: u64,
    /// Trouble: errors mdns-sd reported, subscriptions it ended, and boxes or events dropped
    /// because the peer table or the outbox was full. Each one is also logged.
    pub errors: u64,
}

/// The disk tier.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheStatus {
    pub disk: DiskStatus,
    pub assets: Vec<AssetStatus>,
    pub counters: CacheCounters,
}

/// The disk tier's disk.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiskStatus {
    pub used_bytes: u64,
    pub cap_bytes: u64,
    pub objects: u64,
    pub evictions: u64,
    pub corrupt: u64,
    pub write_errors: u64,
}

/// One on-demand asset as this box knows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AssetStatus {
    /// The swarm id (hex).
    pub channel: String,
    /// The lineup id.
    pub name: Option<String>,
    pub segments_known: u64,
    /// `None` until the asset's end is known.
    pub segments_total: Option<u64>,
    pub complete: bool,
    pub segments_on_disk: u64,
    pub bytes: u64,
    pub duration_s: f64,
    /// `--full`: this box keeps all of it.
    pub whole_copy: bool,
    pub prefill: Option<PrefillStatus>,
}

/// A prefill's progress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PrefillStatus {
    pub full: bool,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub error: Option<String>,
}

/// The disk tier's work since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheCounters {
    /// Segments recorded in a catalog.
    pub recorded: u64,
    /// Segments written to disk as this box's share (or whole copy).
    pub kept: u64,
    /// TV requests answered from this box's disk.
    pub disk_hits: u64,
    /// Objects fetched from a peer's disk.
    pub peer_fetches: u64,
    /// Objects fetched from the origin because no peer had them.
    pub origin_fetches: u64,
    /// Objects from a peer or the origin that did not hash to their content id (dropped).
    pub bad_objects: u64,
    /// Disk writes or reads that failed (the box goes on without them).
    pub disk_errors: u64,
    /// Segments not written because too many bytes were already waiting for the disk (a slow
    /// SD card): they stay on the LAN, and `prefill --full` copies them later.
    pub writes_skipped: u64,
}

/// DESIGN.md §5's figures; `None` where the denominator is zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Figures {
    /// Segments fetched from the origin ÷ distinct segments.
    pub origin_fetches_per_segment: Option<f64>,
    /// Bytes from peers ÷ (bytes from peers + bytes from the origin).
    pub peer_efficiency: Option<f64>,
    /// 1 − bytes from the origin ÷ bytes served to TVs.
    pub uplink_savings: Option<f64>,
}

impl Figures {
    /// The figures of these sums: the only place they are computed.
    pub fn new(traffic: &Traffic) -> Figures {
        let ratio = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
        Figures {
            origin_fetches_per_segment: ratio(traffic.segments_from_origin, traffic.distinct_segments),
            peer_efficiency: ratio(
                traffic.bytes_from_peers,
                traffic.bytes_from_peers + traffic.bytes_from_origin,
            ),
            uplink_savings: ratio(traffic.bytes_from_origin, traffic.bytes_to_tvs).map(|r| 1.0 - r),
        }
    }
}

/// What the figures are computed from: one channel on one box, or summed over boxes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Traffic {
    pub bytes_from_origin: u64,
    pub bytes_from_peers: u64,
    pub bytes_to_tvs: u64,
    pub segments_from_origin: u64,
    /// Every request made to the origin (playlists, segments, init sections).
    pub origin_requests: u64,
    /// Distinct segments: summed over boxes, the most any box saw (a box that carried the
    /// channel throughout saw them all).
    pub distinct_segments: u64,
    pub viewers: u64,
}

impl Traffic {
    /// One channel's traffic on one box.
    pub fn of(channel: &ChannelStatus) -> Traffic {
        Traffic {
            bytes_from_origin: channel.bytes_from_origin,
            bytes_from_peers: channel.bytes_from_peers,
            bytes_to_tvs: channel.bytes_to_tvs,
            segments_from_origin: channel.segments_from_origin,
            origin_requests: channel.origin_requests.total(),
            distinct_segments: channel.distinct_segments,
            viewers: channel.viewers,
        }
    }

    /// Adds another box's traffic of the same channel.
    pub fn add(&mut self, other: &Traffic) {
        self.bytes_from_origin += other.bytes_from_origin;
        self.bytes_from_peers += other.bytes_from_peers;
        self.bytes_to_tvs += other.bytes_to_tvs;
        self.segments_from_origin += other.segments_from_origin;
        self.origin_requests += other.origin_requests;
        self.distinct_segments = self.distinct_segments.max(other.distinct_segments);
        self.viewers += other.viewers;
    }
}

/// `/api/swarm`: the swarm as seen from one box, from its own status and its peers'.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SwarmReport {
    pub boxes: Vec<SwarmBox>,
    pub channels: Vec<SwarmChannel>,
    /// Every channel's traffic summed, and its figures.
    pub totals: SwarmFigures,
}

/// One box in the swarm report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SwarmBox {
    pub node_id: Option<String>,
    pub board: Option<String>,
    pub http: String,
    /// Whether it answered; the rest is empty when it did not.
    pub reachable: bool,
    pub uptime_s: Option<u64>,
    pub viewers: u64,
    /// Lineup ids of the channels it ingests.
    pub ingesting: Vec<String>,
    pub bytes_from_origin: u64,
    pub bytes_from_peers: u64,
    pub bytes_to_tvs: u64,
}

/// One channel across the swarm.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SwarmChannel {
    pub id: String,
    pub name: Option<String>,
    /// The liveliest state any box reports.
    pub state: ChannelState,
    /// The node id of the box that says it ingests it.
    pub ingester: Option<String>,
    /// The ingester's view of the origin: the channel's.
    pub origin: Option<OriginStatus>,
    #[serde(flatten)]
    pub figures: SwarmFigures,
}

/// Traffic summed over boxes, and DESIGN.md §5's figures of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SwarmFigures {
    #[serde(flatten)]
    pub traffic: Traffic,
    #[serde(flatten)]
    pub figures: Figures,
}

impl SwarmFigures {
    fn of(traffic: Traffic) -> SwarmFigures {
        SwarmFigures { traffic, figures: Figures::new(&traffic) }
    }
}

/// The swarm report from this box's status and what its peers answered (`None`: the peer at
/// that HTTP address did not answer). Channels are matched by their lineup id.
pub fn swarm_report(own: &Status, peers: &[(String, Option<Status>)]) -> SwarmReport {
    let statuses = std::iter::once((own.this_box.http.clone(), Some(own)))
        .chain(peers.iter().map(|(http, status)| (http.clone(), status.as_ref())));
    let mut boxes = Vec::new();
    let mut channels: BTreeMap<String, (SwarmChannel, Traffic)> = BTreeMap::new();
    for (http, status) in statuses {
        let Some(status) = status else {
            boxes.push(SwarmBox { http, reachable: false, ..SwarmBox::default() });
            continue;
        };
        let node_id = Some(status.this_box.node_id.clone())
            .filter(|id| !id.is_empty())
            .or_else(|| Some(status.node_id.clone()).filter(|id| !id.is_empty()));
        let mut own_traffic = Traffic::default();
        for c in status.channels.iter().filter(|c| !c.id.is_empty()) {
            let traffic = Traffic::of(c);
            own_traffic.add(&traffic);
            let (entry, sums) = channels.entry(c.id.clone()).or_insert_with(|| {
                (
                    SwarmChannel { id: c.id.clone(), name: Some(c.name.clone()), ..SwarmChannel::default() },
                    Traffic::default(),
                )
            });
            if c.ingesting {
                entry.ingester = node_id.clone();
                entry.origin = c.origin.clone();
            }
            entry.state = entry.state.max(c.state);
            sums.add(&traffic);
        }
        boxes.push(SwarmBox {
            node_id,
            board: Some(status.this_box.board.clone()).filter(|b| !b.is_empty()),
            http,
            reachable: true,
            uptime_s: Some(status.this_box.uptime_s.max(status.uptime_s)),
            viewers: own_traffic.viewers,
            ingesting: status
                .channels
                .iter()
                .filter(|c| c.ingesting && !c.id.is_empty())
                .map(|c| c.id.clone())
                .collect(),
            bytes_from_origin: own_traffic.bytes_from_origin,
            bytes_from_peers: own_traffic.bytes_from_peers,
            bytes_to_tvs: own_traffic.bytes_to_tvs,
        });
    }
    let mut totals = Traffic::default();
    let channels = channels
        .into_values()
        .map(|(mut channel, traffic)| {
            totals.bytes_from_origin += traffic.bytes_from_origin;
            totals.bytes_from_peers += traffic.bytes_from_peers;
            totals.bytes_to_tvs += traffic.bytes_to_tvs;
            totals.segments_from_origin += traffic.segments_from_origin;
            totals.origin_requests += traffic.origin_requests;
            // Across channels distinct segments add up; across boxes of one channel they do not.
            totals.distinct_segments += traffic.distinct_segments;
            totals.viewers += traffic.viewers;
            channel.figures = SwarmFigures::of(traffic);
            channel
        })
        .collect();
    SwarmReport { boxes, channels, totals: SwarmFigures::of(totals) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn box_status(id: &str, http: &str, channel: ChannelStatus) -> Status {
        Status {
            this_box: BoxStatus {
                node_id: id.into(),
                board: "pi4".into(),
                http: http.into(),
                uptime_s: 5,
                ..BoxStatus::default()
            },
            channels: vec![channel],
            ..Status::default()
        }
    }

    fn news(
        ingesting: bool,
        viewers: u64,
        from_origin: (u64, u64),
        from_peers: (u64, u64),
        tvs: u64,
    ) -> ChannelStatus {
        ChannelStatus {
            id: "news".into(),
            name: "News".into(),
            state: ChannelState::Live,
            ingesting,
            viewers,
            segments_from_origin: from_origin.0,
            bytes_from_origin: from_origin.1,
            segments_from_peers: from_peers.0,
            bytes_from_peers: from_peers.1,
            distinct_segments: 10,
            bytes_to_tvs: tvs,
            ..ChannelStatus::default()
        }
    }

    #[test]
    fn the_swarm_figures_follow_design_5() {
        // The ingester fetched 10 segments (one twice: 11 fetches) of 1000 bytes; two peers
        // received them; TVs got 8000 bytes from the three boxes.
        let ingester = box_status("a", "10.0.0.1:7471", news(true, 1, (11, 11000), (0, 0), 2000));
        let peer = |id: &str| box_status(id, "x", news(false, 2, (0, 0), (10, 10000), 3000));
        let report = swarm_report(
            &ingester,
            &[
                ("10.0.0.2:7471".into(), Some(peer("b"))),
                ("10.0.0.3:7471".into(), Some(peer("c"))),
                ("10.0.0.4:7471".into(), None),
            ],
        );
        let news = &report.channels[0];
        assert_eq!(news.ingester.as_deref(), Some("a"));
        assert_eq!(news.figures.traffic.viewers, 5);
        assert_eq!(news.figures.figures.origin_fetches_per_segment, Some(1.1));
        assert_eq!(news.figures.figures.peer_efficiency, Some(20000.0 / 31000.0));
        assert_eq!(news.figures.figures.uplink_savings, Some(1.0 - 11000.0 / 8000.0));
        assert_eq!(report.boxes.len(), 4);
        assert!(!report.boxes[3].reachable);
        assert_eq!(report.boxes[0].ingesting, ["news"]);
        assert_eq!(report.totals.traffic.bytes_to_tvs, 8000);
        // The JSON keeps the flat shape the dashboard and operators' scripts read.
        let json = serde_json::to_value(&report).expect("serializes");
        assert_eq!(json["channels"][0]["origin_fetches_per_segment"], 1.1);
        assert_eq!(json["totals"]["bytes_to_tvs"], 8000);
        assert_eq!(json["channels"][0]["state"], "live");
    }

    #[test]
    fn odd_statuses_read_as_empty_figures_not_errors() {
        let status: Status =
            serde_json::from_str(r#"{ "channels": [], "node_id": "x" }"#).expect("partial status reads");
        let report = swarm_report(&status, &[("?".into(), None)]);
        assert_eq!(report.totals.figures.uplink_savings, None);
        assert!(report.channels.is_empty());
        assert_eq!(report.boxes.len(), 2);
        assert!(serde_json::from_str::<Status>(r#"{ "channels": "nope" }"#).is_err());
    }

    #[test]
    fn a_state_reads_as_the_json_writes_it() {
        use ChannelState::*;
        for state in [Idle, Starting, Stale, Vod, Live] {
            assert_eq!(serde_json::to_value(state).expect("serializes"), state.as_str());
        }
    }

    #[test]
    fn a_status_survives_a_round_trip() {
        let mut status = box_status("a", "h", news(true, 1, (1, 2), (3, 4), 5));
        status.channels[0].figures = Figures::new(&Traffic::of(&status.channels[0]));
        let json = serde_json::to_string(&status).expect("serializes");
        assert_eq!(serde_json::from_str::<Status>(&json).expect("reads back"), status);
        assert!(!json.contains("\"discovery\""), "absent parts stay absent");
    }
}
