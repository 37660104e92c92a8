//! What operators get: `/api/status` (this box), `/api/swarm` (every box it can reach, with the
//! swarm's figures), `/metrics` (Prometheus), the dashboard page at `/`, and the admin actions
//! (`POST /api/identify`, `/api/reload`, `/api/lift-bans`, `/api/prefill/<channel>[?full]`),
//! answered only for the admin networks.

use std::net::IpAddr;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use smol::Timer;

use super::{dashboard, error, json_response, text, AdminAction, Backend, Body};
use crate::model::status::{CacheStatus, ChannelStatus, PeerStatus, Status};
use crate::model::InputStats;

/// How long a status request waits for the driver.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the swarm report waits for the driver and the peers together.
const SWARM_TIMEOUT: Duration = Duration::from_secs(3);

async fn bounded<T>(limit: Duration, work: impl std::future::Future<Output = Option<T>>) -> Option<T> {
    smol::future::or(work, async {
        Timer::after(limit).await;
        None
    })
    .await
}

pub(super) async fn status<B: Backend>(backend: &B) -> Response<Body> {
    match bounded(STATUS_TIMEOUT, backend.status()).await {
        Some(value) => with_cors(json_response(StatusCode::OK, &value)),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "the box is busy or shutting down"),
    }
}

pub(super) async fn swarm<B: Backend>(backend: &B) -> Response<Body> {
    match bounded(SWARM_TIMEOUT, backend.swarm()).await {
        Some(value) => with_cors(json_response(StatusCode::OK, &value)),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "the box is busy or shutting down"),
    }
}

/// Read-only JSON may be read by another box's dashboard page.
fn with_cors(mut response: Response<Body>) -> Response<Body> {
    response.headers_mut().insert(hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// `/`: the dashboard, its tables rendered here so it reads with JavaScript off.
pub(super) async fn dashboard<B: Backend>(backend: &B) -> Response<Body> {
    let Some(status) = bounded(STATUS_TIMEOUT, backend.status()).await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the box is busy or shutting down");
    };
    let swarm = bounded(SWARM_TIMEOUT, backend.swarm()).await;
    let mut response = text(
        StatusCode::OK,
        "text/html; charset=utf-8",
        dashboard::page(&status, swarm.as_ref()).into_bytes(),
    );
    let headers = response.headers_mut();
    // The page needs nothing but itself: no other site may script it or frame it.
    headers.insert(
        hyper::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
    );
    headers.insert(hyper::header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// The admin action a path names (`/api/<path>`, with its query), if any.
pub(super) fn admin_action(path: &str, query: Option<&str>) -> Option<AdminAction> {
    match path {
        "identify" => Some(AdminAction::Identify),
        "reload" => Some(AdminAction::Reload),
        "lift-bans" => Some(AdminAction::LiftBans),
        _ => {
            // `prefill/<channel>[?full]`
            let channel = path.strip_prefix("prefill/").filter(|c| !c.is_empty() && !c.contains('/'))?;
            let full = query.is_some_and(|q| q.split('&').any(|p| p == "full" || p == "full=1"));
            Some(AdminAction::Prefill { channel: channel.to_owned(), full })
        }
    }
}

pub(super) async fn admin<B: Backend>(
    backend: &B,
    request: &Request<Incoming>,
    action: AdminAction,
    client: IpAddr,
) -> Response<Body> {
    if request.method() != Method::POST {
        let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "admin actions are POST requests");
        response.headers_mut().insert(hyper::header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    if !backend.is_admin(client) {
        let reason = format!(
            "{client} may not change this box: admin actions are accepted from {} (http.admin_networks)",
            backend.admin_networks()
        );
        return error(StatusCode::FORBIDDEN, &reason);
    }
    if cross_site(request) {
        // A plain form POST needs no preflight: any web page an admin has open could send one.
        return error(StatusCode::FORBIDDEN, "admin actions are not accepted from another site's page");
    }
    log::info!("admin action {action:?} from {client}");
    match backend.admin(action).await {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(why) => error(StatusCode::SERVICE_UNAVAILABLE, &why),
    }
}

/// Whether a browser sent the request from another site's page: `Sec-Fetch-Site` says so, or
/// the `Origin` names another host than the one asked. Tools (curl, scripts) send neither.
fn cross_site(request: &Request<Incoming>) -> bool {
    let headers = request.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    let Some(origin) = headers.get(hyper::header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers.get(hyper::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    origin_host != host
}

/// `/metrics`: the box's status for Prometheus, under stable names: OpenMetrics for a scraper
/// that asks for it (`Accept: application/openmetrics-text`), otherwise the classic text
/// format (0.0.4) that every scraper and `promtool` read.
pub(super) async fn metrics<B: Backend>(backend: &B, accept: Option<&HeaderValue>) -> Response<Body> {
    let Some(status) = bounded(STATUS_TIMEOUT, backend.status()).await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the box is busy or shutting down");
    };
    let mut body = String::new();
    if prometheus_client::encoding::text::encode(&mut body, &registry(&status)).is_err() {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "metrics could not be encoded");
    }
    let openmetrics =
        accept.and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("application/openmetrics-text"));
    if openmetrics {
        text(StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", body.into_bytes())
    } else {
        text(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", classic_text(&body).into_bytes())
    }
}

/// OpenMetrics text as the classic Prometheus text format: a counter's HELP and TYPE name its
/// samples (`x_total`), and the `# EOF` and `# UNIT` lines go.
fn classic_text(openmetrics: &str) -> String {
    let counters: Vec<&str> =
        openmetrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(&name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn gauge_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// What one number of a channel's status is read as.
type ChannelValue = fn(&ChannelStatus) -> u64;

/// A TS source's input counter (0 for other sources).
fn input(c: &ChannelStatus, counter: fn(&InputStats) -> u64) -> u64 {
    c.input.as_ref().map_or(0, counter)
}

/// The metrics of one scrape, from the status (one source of truth for both).
fn registry(status: &Status) -> Registry {
    let mut registry = Registry::with_prefix("shoal");
    let info = Family::<Labels, Gauge>::default();
    let own = &status.this_box;
    info.get_or_create(&labels(&[
        ("version", &own.version),
        ("board", &own.board),
        ("node_id", &own.node_id),
    ]))
    .set(1);
    registry.register("info", "The box: version, board and node id (always 1)", info);
    let uptime = Gauge::<i64>::default();
    uptime.set(gauge_i64(own.uptime_s));
    registry.register("uptime_seconds", "Seconds since the daemon started", uptime);

    let peers = Family::<Labels, Gauge>::default();
    let count = |f: fn(&PeerStatus) -> bool| gauge_i64(status.peers.iter().filter(|p| f(p)).count() as u64);
    peers.get_or_create(&labels(&[("state", "alive")])).set(count(|p| p.alive));
    peers.get_or_create(&labels(&[("state", "banned")])).set(count(|p| p.banned));
    peers.get_or_create(&labels(&[("state", "known")])).set(gauge_i64(status.peers.len() as u64));
    registry.register("peers", "Peers by state: known, alive (answering pings), banned", peers);

    let channel_gauges: [(&str, &str, ChannelValue); 3] = [
        ("channel_viewers", "TV clients that fetched the channel from this box in the last 6 s", |c| {
            c.viewers
        }),
        ("channel_segments_held", "Complete segments of the channel in the store", |c| c.segments_held),
        ("channel_rate_bytes_per_second", "Byte rate of the channel's newest segments", |c| {
            c.bitrate_bps.unwrap_or(0) / 8
        }),
    ];
    let channel_counters: [(&str, &str, ChannelValue); 10] = [
        ("channel_origin_bytes", "Segment bytes this box fetched from the channel's origin", |c| {
            c.bytes_from_origin
        }),
        ("channel_peer_bytes", "Segment bytes of the channel this box received from peers", |c| {
            c.bytes_from_peers
        }),
        ("channel_tv_bytes", "Segment bytes of the channel this box sent to TVs", |c| c.bytes_to_tvs),
        ("channel_origin_segments", "Segments this box fetched from the channel's origin", |c| {
            c.segments_from_origin
        }),
        ("channel_peer_segments", "Segments of the channel this box received from peers", |c| {
            c.segments_from_peers
        }),
        ("channel_input_bytes", "Bytes a TS source (UDP, RTP, HTTP-TS, file) took in", |c| {
            input(c, |i| i.bytes)
        }),
        (
            "channel_input_cc_errors",
            "Continuity-counter errors in a TS source's stream (lost or damaged packets)",
            |c| input(c, |i| i.cc_errors),
        ),
        ("channel_input_garbage_bytes", "Bytes a TS source skipped while looking for packet sync", |c| {
            input(c, |i| i.garbage_bytes)
        }),
        ("channel_input_rtp_lost", "RTP packets a TS source found missing", |c| input(c, |i| i.rtp_lost)),
        ("channel_input_rejoins", "Times a TS source joined its group again or reconnected", |c| {
            input(c, |i| i.rejoins)
        }),
    ];
    let channel = |c: &ChannelStatus| labels(&[("channel", &c.id)]);
    for (name, help, value) in channel_gauges {
        let family = Family::<Labels, Gauge>::default();
        for c in &status.channels {
            family.get_or_create(&channel(c)).set(gauge_i64(value(c)));
        }
        registry.register(name, help, family);
    }
    for (name, help, value) in channel_counters {
        let family = Family::<Labels, Counter>::default();
        for c in &status.channels {
            family.get_or_create(&channel(c)).inc_by(value(c));
        }
        registry.register(name, help, family);
    }
    let requests = Family::<Labels, Counter>::default();
    for c in &status.channels {
        let r = &c.origin_requests;
        for (kind, n) in [("playlist", r.playlists), ("segment", r.segments), ("init", r.init_sections)] {
            requests.get_or_create(&labels(&[("channel", &c.id), ("kind", kind)])).inc_by(n);
        }
    }
    registry.register(
        "channel_origin_requests",
        "Requests this box made to the channel's HTTP origin, by kind (failed and retried ones too)",
        requests,
    );
    let failed = Family::<Labels, Counter>::default();
    for c in &status.channels {
        failed.get_or_create(&channel(c)).inc_by(c.origin_requests.failed);
    }
    registry.register(
        "channel_origin_failed_requests",
        "Requests to the channel's HTTP origin for a fetch that did not succeed",
        failed,
    );
    let ingesting = Family::<Labels, Gauge>::default();
    let healthy = Family::<Labels, Gauge>::default();
    for c in &status.channels {
        ingesting.get_or_create(&channel(c)).set(i64::from(c.ingesting));
        if let Some(origin) = &c.origin {
            healthy.get_or_create(&channel(c)).set(i64::from(origin.healthy));
        }
    }
    registry.register("channel_ingesting", "1 while this box fetches the channel from its origin", ingesting);
    registry.register(
        "channel_origin_healthy",
        "1 while the channel's origin answers this box's source",
        healthy,
    );

    let store = [
        ("store_used_bytes", "Bytes of segments held", status.store.used_bytes),
        ("store_budget_bytes", "The store's byte budget", status.store.budget_bytes),
    ];
    for (name, help, value) in store {
        let gauge = Gauge::<i64>::default();
        gauge.set(gauge_i64(value));
        registry.register(name, help, gauge);
    }
    let evicted = Counter::<u64>::default();
    evicted.inc_by(status.store.evicted);
    registry.register("store_evicted_segments", "Segments evicted to stay within the budget", evicted);

    let datagrams = Family::<Labels, Counter>::default();
    let bytes = Family::<Labels, Counter>::default();
    let c = &status.counters;
    for (direction, n, b) in [("in", c.datagrams_in, c.bytes_in), ("out", c.datagrams_out, c.bytes_out)] {
        let l = labels(&[("direction", direction)]);
        datagrams.get_or_create(&l).inc_by(n);
        bytes.get_or_create(&l).inc_by(b);
    }
    registry.register("datagrams", "Swarm datagrams sent and received", datagrams);
    registry.register("datagram_bytes", "Swarm datagram bytes sent and received", bytes);

    let rejected = Family::<Labels, Counter>::default();
    for (reason, n) in status.security.rejected.by_reason() {
        rejected.get_or_create(&labels(&[("reason", reason)])).inc_by(n);
    }
    registry.register("rejected_datagrams", "Datagrams dropped, by reason", rejected);
    let bans = Counter::<u64>::default();
    bans.inc_by(status.security.bans);
    registry.register("bans", "Peers banned for misbehaving", bans);
    if let Some(cache) = &status.cache {
        register_cache(&mut registry, cache);
    }
    registry
}

/// The disk tier's figures (a box without one has none of these).
fn register_cache(registry: &mut Registry, cache: &CacheStatus) {
    let disk = &cache.disk;
    for (name, help, value) in [
        ("cache_used_bytes", "Bytes of on-demand segments on this box's disk", disk.used_bytes),
        ("cache_cap_bytes", "The disk tier's byte cap", disk.cap_bytes),
        ("cache_objects", "Segments on this box's disk", disk.objects),
    ] {
        let gauge = Gauge::<i64>::default();
        gauge.set(gauge_i64(value));
        registry.register(name, help, gauge);
    }
    let c = &cache.counters;
    let counters = [
        ("cache_evictions", "Segments evicted from disk (cap or full disk)", disk.evictions),
        ("cache_corrupt", "Segments on disk that failed their hash when read (dropped)", disk.corrupt),
        ("cache_write_errors", "Segments that could not be written to disk", disk.write_errors),
        ("cache_disk_hits", "Segments served to TVs from this box's disk", c.disk_hits),
        ("cache_peer_fetches", "Segments fetched from a peer's disk", c.peer_fetches),
        (
            "cache_origin_fetches",
            "Segments fetched from the origin because no peer had them",
            c.origin_fetches,
        ),
        ("cache_bad_objects", "Segments from a peer or the origin that failed their hash", c.bad_objects),
    ];
    for (name, help, value) in counters {
        let counter = Counter::<u64>::default();
        counter.inc_by(value);
        registry.register(name, help, counter);
    }
    let known = Family::<Labels, Gauge>::default();
    let on_disk = Family::<Labels, Gauge>::default();
    for a in &cache.assets {
        // An asset whose channel left the lineup has no name: its channel id tells it apart.
        let l = labels(&[("channel", a.name.as_deref().unwrap_or(&a.channel))]);
        known.get_or_create(&l).set(gauge_i64(a.segments_known));
        on_disk.get_or_create(&l).set(gauge_i64(a.segments_on_disk));
    }
    registry.register("asset_segments_known", "Segments of an on-demand asset in this box's catalog", known);
    registry.register("asset_segments_on_disk", "Segments of an on-demand asset on this box's disk", on_disk);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_have_stable_names_help_and_types() {
        let status: Status = serde_json::from_value(serde_json::json!({
            "box": { "version": "0.1.0", "board": "pi4", "node_id": "ab", "uptime_s": 7 },
            "peers": [{ "alive": true, "banned": false }, { "alive": false, "banned": true }],
            "channels": [{ "id": "news", "viewers": 3, "bytes_to_tvs": 1000, "ingesting": true,
                           "origin": { "healthy": false } }],
            "store": { "used_bytes": 5, "budget_bytes": 10, "evicted": 2 },
            "counters": { "datagrams_in": 4, "datagrams_out": 6, "bytes_in": 40, "bytes_out": 60 },
            "security": { "bans": 1, "rejected": { "bad_mac": 9 } },
            "cache": { "disk": { "used_bytes": 300, "cap_bytes": 1000, "objects": 3, "evictions": 2 },
                       "counters": { "peer_fetches": 5 },
                       "assets": [{ "name": "films", "segments_known": 600, "segments_on_disk": 310 }] },
        }))
        .expect("a status");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry(&status)).expect("encodes");
        for line in [
            "# HELP shoal_channel_viewers TV clients",
            "# TYPE shoal_channel_viewers gauge",
            "shoal_channel_viewers{channel=\"news\"} 3",
            "# TYPE shoal_channel_tv_bytes counter",
            "shoal_channel_tv_bytes_total{channel=\"news\"} 1000",
            "shoal_channel_origin_healthy{channel=\"news\"} 0",
            "shoal_peers{state=\"banned\"} 1",
            "shoal_rejected_datagrams_total{reason=\"bad_mac\"} 9",
            "shoal_info{version=\"0.1.0\",board=\"pi4\",node_id=\"ab\"} 1",
            "shoal_cache_used_bytes 300",
            "shoal_cache_evictions_total 2",
            "shoal_cache_peer_fetches_total 5",
            "shoal_asset_segments_on_disk{channel=\"films\"} 310",
            "# EOF",
        ] {
            assert!(text.contains(line), "missing `{line}` in:\n{text}");
        }
        let classic = classic_text(&text);
        assert!(classic.contains("# TYPE shoal_channel_tv_bytes_total counter\n"), "{classic}");
        assert!(classic.contains("# HELP shoal_channel_tv_bytes_total Segment bytes"), "{classic}");
        assert!(classic.contains("# TYPE shoal_channel_viewers gauge\n") && !classic.contains("# EOF"));
        // An empty status gives zeros, not a panic.
        let mut odd = String::new();
        prometheus_client::encoding::text::encode(&mut odd, &registry(&Status::default())).expect("encodes");
        assert!(odd.contains("shoal_uptime_seconds 0") && !odd.contains("shoal_cache"));
    }
}
