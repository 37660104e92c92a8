//! What the driver records besides the engine's own counters, and the reports built from it:
//! one box's `/api/status`, and the swarm's figures (DESIGN.md §5) from every box's status.
//!
//! Figures, as DESIGN.md §5 defines them:
//! - *origin fetches per segment* = segments fetched from the origin ÷ distinct segments;
//! - *peer efficiency* = bytes from peers ÷ (bytes from peers + bytes from the origin);
//! - *uplink savings* = 1 − bytes from the origin ÷ bytes served to TVs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use shoal_core::{ChannelId, Engine, Instant, NodeId};

/// Names of the channels, for status reports.
pub type ChannelNames = BTreeMap<ChannelId, String>;

/// A live channel whose newest segment is older than this many target durations is stale
/// (its origin stopped delivering); the HTTP server answers 503 then.
pub(crate) const STALE_TARGET_DURATIONS: u32 = 4;

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
    /// What a TS source last counted about its input (`None`: not a TS source, or not
    /// ingested here).
    pub(crate) input: Option<crate::broadcast::InputStats>,
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
    pub(crate) names: ChannelNames,
    pub(crate) send_errors: u64,
    pub(crate) receive_errors: u64,
    pub(crate) peers: BTreeMap<NodeId, PeerMeta>,
    pub(crate) channels: BTreeMap<ChannelId, ChannelRecord>,
}

impl Records {
    pub(crate) fn new(started: Instant, names: ChannelNames) -> Records {
        let channels = names.keys().map(|&c| (c, ChannelRecord::default())).collect();
        Records { started, names, send_errors: 0, receive_errors: 0, peers: BTreeMap::new(), channels }
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
    pub(crate) fn add_channel(&mut self, channel: ChannelId, name: String) {
        self.names.insert(channel, name);
        self.channels.entry(channel).or_default();
    }

    /// A channel added at run time left the lineup.
    pub(crate) fn remove_channel(&mut self, channel: ChannelId) {
        self.names.remove(&channel);
        self.channels.remove(&channel);
    }

    /// A TS source's counts about its input.
    pub(crate) fn input_stats(&mut self, channel: ChannelId, stats: crate::broadcast::InputStats) {
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

/// The JSON of `/api/status`, as far as the driver knows it (the HTTP server adds the box's
/// identity, addresses, viewers and bytes served to TVs).
pub(crate) fn status(
    engine: &Engine,
    now: Instant,
    records: &Records,
    wanted_here: &BTreeMap<ChannelId, Instant>,
) -> Value {
    let c = engine.counters();
    let peers: Vec<Value> = engine
        .peers()
        .map(|p| {
            let meta = records.peers.get(&p.node_id);
            json!({
                "node_id": hex(p.node_id),
                "address": p.addr.to_string(),
                "alive": p.alive,
                "banned": p.banned,
                "rtt_ms": p.rtt.map(|r| r.as_secs_f64() * 1e3),
                "last_seen_ms_ago": p.last_heard.map(|t| now.saturating_since(t).as_millis() as u64),
                "bytes_in": p.bytes_in,
                "bytes_out": p.bytes_out,
                "http": meta.map(|m| m.http.to_string()),
                "board": meta.map(|m| m.board.clone()),
            })
        })
        .collect();
    let store = engine.store();
    let channels: Vec<Value> = records
        .names
        .iter()
        .map(|(&channel, name)| {
            let (ingester, standby) = engine.election(channel).unwrap_or((None, None));
            let record = records.channels.get(&channel).cloned().unwrap_or_default();
            let window: Vec<&shoal_core::Segment> = store.window(channel, 6).collect();
            let segments: Vec<Value> = window
                .iter()
                .map(|s| {
                    let m = s.manifest().manifest();
                    json!({
                        "seq": m.seq,
                        "bytes": m.length,
                        "duration_ms": m.duration().as_millis() as u64,
                        "signer": hex(m.signer),
                        // Names the content without reading it: SHA-256 over the manifest's
                        // block hashes (a status poll must not hash megabytes of video).
                        "content": s.is_complete().then(|| content_digest(m)),
                    })
                })
                .collect();
            let (bytes, duration) = window.iter().fold((0u64, Duration::ZERO), |(b, d), s| {
                let m = s.manifest().manifest();
                (b + u64::from(m.length), d + m.duration())
            });
            let bitrate = (!duration.is_zero()).then(|| (bytes as f64 * 8.0 / duration.as_secs_f64()) as u64);
            let target = window.iter().map(|s| s.manifest().manifest().duration()).max().unwrap_or_default();
            let vod = window.last().is_some_and(|s| s.manifest().manifest().vod);
            let age = record.newest.map(|(_, at)| now.saturating_since(at));
            let demanded = wanted_here.contains_key(&channel) || engine.is_ingesting(channel);
            let state = match (vod, age) {
                (true, _) => "vod",
                (false, Some(age)) if age <= target.max(Duration::from_secs(1)) * STALE_TARGET_DURATIONS => {
                    "live"
                }
                (false, Some(_)) if demanded => "stale",
                (false, None) if demanded => "starting",
                _ => "idle",
            };
            json!({
                "swarm_id": channel.to_string(),
                "name": name,
                "state": state,
                "ingester": ingester.map(hex),
                "standby": standby.map(hex),
                "ingesting": engine.is_ingesting(channel),
                "wanted_here": wanted_here.contains_key(&channel),
                "bitrate_bps": bitrate,
                "segments_held": store.segments(channel).filter(|s| s.is_complete()).count(),
                "newest_age_ms": age.map(|a| a.as_millis() as u64),
                "origin": record.origin.as_ref().map(|o| json!({
                    "healthy": o.error.is_none(),
                    "last_error": o.error,
                    "since_s": now.saturating_since(o.since).as_secs(),
                    "segments_fetched": record.origin_segments,
                    "bytes": record.origin_bytes,
                })),
                "input": record.input,
                "segments_from_origin": record.origin_segments,
                "segments_from_peers": record.peer_segments,
                "distinct_segments": record.distinct_segments,
                "bytes_from_origin": record.origin_bytes,
                "bytes_from_peers": record.peer_bytes,
                "window": segments,
            })
        })
        .collect();
    let sc = store.counters();
    let rejected = json!({
        "bad_mac": c.bad_mac,
        "replay": c.replay,
        "decode_error": c.malformed + c.too_short,
        "unknown_version": c.unknown_version,
        "bad_identity": c.bad_identity,
        "unconfirmed": c.unconfirmed,
        "unknown_peer": c.unknown_peer,
        "bad_block": c.bad_blocks,
        "forged_manifest": c.forged_manifests,
        "not_from_ingester": c.manifests_not_from_ingester,
        "banned": c.banned,
        "rate_limited": c.rate_limited,
        "bad_fragment": c.bad_fragments,
        "not_in_lineup": c.not_in_lineup,
    });
    let origin_bytes: u64 = records.channels.values().map(|c| c.origin_bytes).sum();
    let peer_bytes: u64 = records.channels.values().map(|c| c.peer_bytes).sum();
    json!({
        "node_id": hex(engine.node_id()),
        "uptime_s": now.saturating_since(records.started).as_secs(),
        "peers": peers,
        "channels": channels,
        "store": {
            "used_bytes": store.used(),
            "budget_bytes": store.budget(),
            "evicted": sc.evicted,
            "rejected": sc.rejected,
        },
        "security": { "bans": c.bans, "rejected": rejected.clone() },
        "counters": {
            "datagrams_in": c.datagrams_in,
            "datagrams_out": c.datagrams_out,
            "bytes_in": c.bytes_in,
            "bytes_out": c.bytes_out,
            "origin_bytes": origin_bytes,
            "peer_bytes": peer_bytes,
            "send_errors": records.send_errors,
            "receive_errors": records.receive_errors,
            "segments_published": c.segments_published,
            "segments_received": c.segments_received,
            "blocks_received": c.blocks_received,
            "requests_sent": c.requests_sent,
            "requests_served": c.requests_served,
            "takeovers": c.takeovers,
            "bans": c.bans,
            "rejected": rejected,
        },
    })
}

/// A figure's ratio, or `None` when its denominator is zero.
fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

fn u64_at(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// The swarm as seen from one box: its own status and what its peers answered (`None`: the
/// peer at that address did not answer). Channels are matched by their lineup id.
pub fn swarm_report(own: &Value, peers: &[(String, Option<Value>)]) -> Value {
    let own_http = own.pointer("/box/http").and_then(Value::as_str).unwrap_or("").to_owned();
    let statuses: Vec<(String, Option<&Value>)> = std::iter::once((own_http, Some(own)))
        .chain(peers.iter().map(|(http, status)| (http.clone(), status.as_ref())))
        .collect();
    let mut boxes = Vec::new();
    // Per channel id: (name, state, ingester, sums...).
    let mut channels: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut sums: BTreeMap<String, [u64; 6]> = BTreeMap::new();
    for (http, status) in &statuses {
        let Some(status) = status else {
            boxes.push(json!({ "http": http, "reachable": false }));
            continue;
        };
        let empty = Vec::new();
        let list = status.get("channels").and_then(Value::as_array).unwrap_or(&empty);
        let ingesting: Vec<&str> = list
            .iter()
            .filter(|c| c.get("ingesting") == Some(&Value::Bool(true)))
            .filter_map(|c| c.get("id").and_then(Value::as_str))
            .collect();
        let total = |key: &str| list.iter().map(|c| u64_at(c, key)).sum::<u64>();
        let node_id = status.pointer("/box/node_id").or_else(|| status.get("node_id")).cloned();
        boxes.push(json!({
            "node_id": node_id,
            "board": status.pointer("/box/board"),
            "http": http,
            "reachable": true,
            "uptime_s": status.pointer("/box/uptime_s").or_else(|| status.get("uptime_s")),
            "viewers": total("viewers"),
            "ingesting": ingesting,
            "bytes_from_origin": total("bytes_from_origin"),
            "bytes_from_peers": total("bytes_from_peers"),
            "bytes_to_tvs": total("bytes_to_tvs"),
        }));
        for c in list {
            let Some(id) = c.get("id").and_then(Value::as_str) else { continue };
            let entry = channels.entry(id.to_owned()).or_default();
            entry.entry("id").or_insert_with(|| json!(id));
            entry.entry("name").or_insert_with(|| c.get("name").cloned().unwrap_or(Value::Null));
            if c.get("ingesting") == Some(&Value::Bool(true)) {
                entry.insert("ingester".into(), node_id.clone().unwrap_or(Value::Null));
                // The ingester's view of the origin is the channel's.
                entry.insert("origin".into(), c.get("origin").cloned().unwrap_or(Value::Null));
            }
            let state = c.get("state").and_then(Value::as_str).unwrap_or("idle");
            // The liveliest state any box reports.
            let rank = |s: &str| ["idle", "starting", "stale", "vod", "live"].iter().position(|&x| x == s);
            let current = entry.get("state").and_then(Value::as_str).unwrap_or("idle");
            if rank(state) > rank(current) {
                entry.insert("state".into(), json!(state));
            }
            let s = sums.entry(id.to_owned()).or_default();
            s[0] += u64_at(c, "bytes_from_origin");
            s[1] += u64_at(c, "bytes_from_peers");
            s[2] += u64_at(c, "bytes_to_tvs");
            s[3] += u64_at(c, "segments_from_origin");
            // Distinct segments: a box that carried the channel throughout saw them all.
            s[4] = s[4].max(u64_at(c, "distinct_segments"));
            s[5] += u64_at(c, "viewers");
        }
    }
    let figures = |s: &[u64; 6]| {
        json!({
            "bytes_from_origin": s[0],
            "bytes_from_peers": s[1],
            "bytes_to_tvs": s[2],
            "segments_from_origin": s[3],
            "distinct_segments": s[4],
            "viewers": s[5],
            "origin_fetches_per_segment": ratio(s[3], s[4]),
            "peer_efficiency": ratio(s[1], s[0] + s[1]),
            "uplink_savings": ratio(s[0], s[2]).map(|r| 1.0 - r),
        })
    };
    let mut totals = [0u64; 6];
    let channels: Vec<Value> = channels
        .into_iter()
        .map(|(id, mut entry)| {
            let s = sums.get(&id).copied().unwrap_or_default();
            for (t, v) in totals.iter_mut().zip(s) {
                *t += v;
            }
            entry.entry("state").or_insert_with(|| json!("idle"));
            entry.entry("ingester").or_insert(Value::Null);
            entry.entry("origin").or_insert(Value::Null);
            if let Value::Object(f) = figures(&s) {
                entry.extend(f);
            }
            Value::Object(entry)
        })
        .collect();
    json!({ "boxes": boxes, "channels": channels, "totals": figures(&totals) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn box_status(id: &str, http: &str, channel: Value) -> Value {
        json!({ "box": { "node_id": id, "board": "pi4", "http": http, "uptime_s": 5 }, "channels": [channel] })
    }

    #[test]
    fn the_swarm_figures_follow_design_5() {
        // The ingester fetched 10 segments (one twice: 11 fetches) of 1000 bytes; two peers
        // received them; TVs got 8000 bytes from the three boxes.
        let ingester = box_status(
            "a",
            "10.0.0.1:7471",
            json!({ "id": "news", "name": "News", "state": "live", "ingesting": true, "viewers": 1,
                    "segments_from_origin": 11, "segments_from_peers": 0, "distinct_segments": 10,
                    "bytes_from_origin": 11000, "bytes_from_peers": 0, "bytes_to_tvs": 2000 }),
        );
        let peer = |id: &str, tvs: u64| {
            box_status(
                id,
                "x",
                json!({ "id": "news", "state": "live", "ingesting": false, "viewers": 2,
                        "segments_from_origin": 0, "segments_from_peers": 10, "distinct_segments": 10,
                        "bytes_from_origin": 0, "bytes_from_peers": 10000, "bytes_to_tvs": tvs }),
            )
        };
        let report = swarm_report(
            &ingester,
            &[
                ("10.0.0.2:7471".into(), Some(peer("b", 3000))),
                ("10.0.0.3:7471".into(), Some(peer("c", 3000))),
                ("10.0.0.4:7471".into(), None),
            ],
        );
        let news = &report["channels"][0];
        assert_eq!(news["ingester"], "a");
        assert_eq!(news["viewers"], 5);
        assert_eq!(news["origin_fetches_per_segment"], 1.1);
        assert_eq!(news["peer_efficiency"], 20000.0 / 31000.0);
        assert_eq!(news["uplink_savings"], 1.0 - 11000.0 / 8000.0);
        assert_eq!(report["boxes"].as_array().map(Vec::len), Some(4));
        assert_eq!(report["boxes"][3]["reachable"], false);
        assert_eq!(report["boxes"][0]["ingesting"][0], "news");
        assert_eq!(report["totals"]["bytes_to_tvs"], 8000);
    }

    #[test]
    fn odd_statuses_give_empty_figures_not_panics() {
        let report = swarm_report(&json!({ "channels": "nope" }), &[("?".into(), Some(json!([1, 2])))]);
        assert_eq!(report["totals"]["uplink_savings"], Value::Null);
        assert_eq!(report["channels"], json!([]));
        let report = swarm_report(&json!(null), &[]);
        assert_eq!(report["boxes"].as_array().map(Vec::len), Some(1));
    }
}
