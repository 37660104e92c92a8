//! `shoal status`: a box and its swarm, summarised for a terminal.
//!
//! [`fetch`] GETs `/api/status` and `/api/swarm` from a box with the HTTP client the daemon uses
//! for origins ([`crate::origin`]) and reads them as a [`Status`] and a [`SwarmReport`], and
//! [`render`] turns those into text. The split keeps the formatting pure: it is tested on sample
//! values, and `shoal demo` prints the same summary of its own boxes.
//!
//! The box is another program, possibly of another version. What it leaves out reads as the
//! defaults (an older box without the `box` fields is named by its top-level ones), and an
//! answer that is not a status at all is an error saying what is wrong with it. Even so
//! [`render`] takes nothing for granted: what is unknown (an empty string, a number that is not
//! finite or absurdly large, the counters of a box that did not answer) prints as "—", lists are
//! cut at [`MAX_ROWS`], and strings lose their control characters and are cut at [`MAX_TEXT`] (a
//! name with escape sequences in it would otherwise drive the terminal). A box without
//! `/api/swarm` (older firmware) gets the box part only.
//!
//! ```
//! use shoal::model::status::Status;
//!
//! let status: Status = serde_json::from_str(r#"{
//!     "box": { "node_id": "1a2b3c4d5e6f70811a2b3c4d5e6f7081", "board": "rpi4", "uptime_s": 7380 },
//!     "peers": [], "channels": [], "store": { "used_bytes": 0, "budget_bytes": 67108864 }
//! }"#)?;
//! let text = shoal::status_cli::render(&status, None);
//! assert!(text.starts_with("Box 1a2b3c4d (rpi4)"));
//! assert!(text.contains("up 2h 03m"));
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use serde::de::{DeserializeOwned, IgnoredAny};

use crate::lineup::{OriginUrl, UrlError};
use crate::model::status::{
    CacheStatus, ChannelState, Figures, PeerStatus, Status, StoreStatus, SwarmReport, Traffic,
};
use crate::origin::{FetchError, Fetcher, Session, TrustError};

/// Where `shoal status` looks without `--url`: the box it runs on, at the default HTTP port.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7471";

/// How long one request may take. A box answers its status in milliseconds; a box that takes
/// seconds is as good as unreachable for someone waiting at a terminal.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Largest answer accepted. A box with 64 peers and 100 channels answers about 100 KiB; the cap
/// only stops something that is not a box from filling memory.
const MAX_BODY: usize = 4 << 20;

/// Rows printed per list (peers, channels, swarm boxes); the rest are counted. Bounds the output
/// when the answer is huge or hostile.
pub const MAX_ROWS: usize = 64;

/// Characters kept of any string from the box (names, errors, addresses).
pub const MAX_TEXT: usize = 80;

/// Printed for a value that is not known.
const DASH: &str = "—";

/// Why `shoal status` could not show a box.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// No answer: connection refused, no route, timeout, TLS failure, a broken connection.
    #[error("cannot reach {url}: {why}")]
    Unreachable {
        /// The box, as given.
        url: String,
        /// What went wrong.
        why: String,
    },
    /// Something answered `/api/status` with an error status.
    #[error("{url} answered HTTP status {status}: is this a Shoal box?")]
    HttpStatus {
        /// The URL asked.
        url: String,
        /// The status.
        status: u16,
    },
    /// Something answered, but not with a status: not JSON, not a JSON object, or an object
    /// that does not read as a status.
    #[error("{url} did not answer a Shoal status ({why}): is this a Shoal box?")]
    BadAnswer {
        /// The URL asked.
        url: String,
        /// What is wrong with the answer.
        why: String,
    },
    /// The client could not be set up (TLS roots).
    #[error("cannot set up the HTTP client: {0}")]
    Client(#[from] TrustError),
}

/// What a box said: its status, and its swarm view if it has one.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// `/api/status`.
    pub status: Status,
    /// `/api/swarm`, when the box answered it with a swarm report.
    pub swarm: Option<SwarmReport>,
    /// Why there is no swarm view, when there is none.
    pub swarm_missing: Option<String>,
}

impl Snapshot {
    /// [`render`] of both, and a last line saying why the swarm part is missing.
    pub fn render(&self) -> String {
        let mut text = render(&self.status, self.swarm.as_ref());
        if let Some(why) = &self.swarm_missing {
            let _ = writeln!(text, "\n(no swarm view: {why})");
        }
        text
    }
}

/// Parses the `--url` of `shoal status`: an `http://` or `https://` URL of the box, or just
/// `host:port` (taken as `http://`). Any path is ignored: the API is at the root.
pub fn parse_url(text: &str) -> Result<OriginUrl, UrlError> {
    if text.contains("://") {
        OriginUrl::parse(text)
    } else {
        OriginUrl::parse(&format!("http://{text}"))
    }
}

/// Fetches a box's status and swarm view, then renders them: what `shoal status` prints.
pub fn run(base: &OriginUrl) -> Result<String, StatusError> {
    let fetcher = Fetcher::new(None, TIMEOUT)?;
    let snapshot = smol::block_on(fetch(&mut fetcher.session(), base))?;
    Ok(snapshot.render())
}

/// GETs `/api/status` and `/api/swarm` from the box at `base` (sequentially, on one
/// connection). Only the status is required: a swarm view that is missing or broken is noted
/// in [`Snapshot::swarm_missing`].
pub async fn fetch(session: &mut Session, base: &OriginUrl) -> Result<Snapshot, StatusError> {
    let status = fetch_status(session, base).await?;
    let (swarm, swarm_missing) = match get(session, base, "/api/swarm").await.map(|body| read(&body)) {
        Ok(Ok(swarm)) => (Some(swarm), None),
        Ok(Err(BadBody::Kind(kind))) => {
            (None, Some(format!("/api/swarm answered JSON {kind}, not an object")))
        }
        Ok(Err(BadBody::Shape(why))) => {
            (None, Some(format!("/api/swarm answered something that is not a Shoal swarm view: {why}")))
        }
        Ok(Err(bad @ BadBody::Syntax(_))) => {
            let url = endpoint(base, "/api/swarm");
            (None, Some(StatusError::BadAnswer { url, why: bad.describe("swarm view") }.to_string()))
        }
        Err(StatusError::HttpStatus { status: 404, .. }) => {
            (None, Some("this box has no /api/swarm (older firmware)".to_owned()))
        }
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(Snapshot { status, swarm, swarm_missing })
}

/// GETs `/api/status` alone from the box at `base`: a [`Status`], else an error saying what the
/// answer was instead.
pub async fn fetch_status(session: &mut Session, base: &OriginUrl) -> Result<Status, StatusError> {
    let body = get(session, base, "/api/status").await?;
    read(&body).map_err(|bad| StatusError::BadAnswer {
        url: endpoint(base, "/api/status"),
        why: bad.describe("status"),
    })
}

/// `base` shown as the user would type it: no trailing `/` for the root.
fn display_base(base: &OriginUrl) -> String {
    let text = base.to_string();
    match text.strip_suffix('/') {
        Some(root) if base.path_and_query == "/" => root.to_owned(),
        _ => text,
    }
}

fn endpoint(base: &OriginUrl, path: &str) -> String {
    base.join(path).map_or_else(|_| format!("{}{path}", display_base(base)), |url| url.to_string())
}

/// The body of `path` on the box at `base`.
async fn get(session: &mut Session, base: &OriginUrl, path: &str) -> Result<Vec<u8>, StatusError> {
    let url = endpoint(base, path);
    let target =
        base.join(path).map_err(|e| StatusError::BadAnswer { url: url.clone(), why: e.to_string() })?;
    let unreachable = |why: String| StatusError::Unreachable { url: display_base(base), why };
    let fetched = session.get(&target, None, MAX_BODY).await.map_err(|e| match e {
        FetchError::Connect(_, io) => unreachable(io.to_string()),
        FetchError::Timeout(after) => unreachable(format!("no answer within {} s", after.as_secs_f32())),
        FetchError::Tls(_, io) => unreachable(format!("TLS: {io}")),
        FetchError::Http(why) => unreachable(format!("HTTP: {why}")),
        FetchError::Truncated(why) => unreachable(format!("the answer was cut short: {why}")),
        FetchError::Status(status) => StatusError::HttpStatus { url: url.clone(), status },
        other @ (FetchError::TooLarge(_) | FetchError::Url(_) | FetchError::Redirects) => {
            StatusError::BadAnswer { url, why: other.to_string() }
        }
    })?;
    Ok(fetched.bytes)
}

/// What is wrong with an answer that should have been a Shoal document.
#[derive(Debug)]
enum BadBody {
    /// Not JSON at all: serde's message.
    Syntax(String),
    /// JSON, but not an object: what it is.
    Kind(&'static str),
    /// An object that does not read as the document: serde's message (what it expected where).
    Shape(String),
}

impl BadBody {
    /// The reason, for a document called `what` ("status").
    fn describe(&self, what: &str) -> String {
        match self {
            BadBody::Syntax(why) => format!("not JSON: {why}"),
            BadBody::Kind(kind) => format!("JSON {kind}, not an object"),
            BadBody::Shape(why) => format!("not a Shoal {what}: {why}"),
        }
    }
}

/// Reads a body as a `T`. Only a JSON object is taken: serde would read `[]` as a struct too.
fn read<T: DeserializeOwned>(body: &[u8]) -> Result<T, BadBody> {
    serde_json::from_slice::<IgnoredAny>(body).map_err(|e| BadBody::Syntax(e.to_string()))?;
    match kind(body) {
        "object" => serde_json::from_slice(body).map_err(|e| BadBody::Shape(e.to_string())),
        other => Err(BadBody::Kind(other)),
    }
}

/// What JSON value `body` (valid JSON) holds, from its first character.
fn kind(body: &[u8]) -> &'static str {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b't' | b'f') => "true/false",
        Some(b'n') => "null",
        _ => "number",
    }
}

/// The terminal summary of a box's `/api/status` and, if given, its `/api/swarm`: the box, its
/// peers, its channels (with the swarm's figures for each), the swarm's boxes, the store.
/// Total: never panics, whatever the values.
pub fn render(status: &Status, swarm: Option<&SwarmReport>) -> String {
    let mut out = String::new();
    let me = BoxView::of(status);
    render_box(&mut out, &me, status);
    render_peers(&mut out, &status.peers);
    render_channels(&mut out, &me, status, swarm);
    if let Some(swarm) = swarm {
        render_swarm(&mut out, swarm);
    }
    render_store(&mut out, &status.store);
    if let Some(cache) = &status.cache {
        render_cache(&mut out, cache);
    }
    out
}

/// Who the box is: from `box`, or, in older firmware without it, the top level.
struct BoxView {
    /// The full node id, to recognise this box where others name it.
    node_id: Option<String>,
    uptime_s: u64,
    /// Whether the answer has `box` fields at all.
    has_box: bool,
}

impl BoxView {
    fn of(status: &Status) -> BoxView {
        let b = &status.this_box;
        let has_box = *b != Default::default();
        BoxView {
            node_id: text(&b.node_id).or_else(|| text(&status.node_id)),
            uptime_s: if has_box { b.uptime_s } else { status.uptime_s },
            has_box,
        }
    }
}

fn render_box(out: &mut String, me: &BoxView, status: &Status) {
    let b = &status.this_box;
    let board = text(&b.board).map_or_else(String::new, |b| format!(" ({b})"));
    let _ = write!(out, "Box {}{board}", short_id(me.node_id.as_deref()));
    if let Some(version) = text(&b.version) {
        let _ = write!(out, ", shoal {version}");
    }
    let _ = write!(out, ", up {}", duration(me.uptime_s));
    out.push('\n');
    let addresses: Vec<String> = b.addresses.iter().take(MAX_ROWS).filter_map(|a| text(a)).collect();
    let addresses = if addresses.is_empty() { DASH.to_owned() } else { addresses.join(", ") };
    // Port 0: not given (a box listens on a real port).
    let port = match b.http_port {
        0 => String::new(),
        p => format!(" (HTTP port {p})"),
    };
    let _ = writeln!(out, "  addresses  {addresses}{port}");
    if b.identifying {
        let _ = writeln!(out, "  identifying: its LED is blinking");
    }
    if !me.has_box && status.node_id.is_empty() {
        let _ = writeln!(out, "  (the answer has no box fields: is this a Shoal box?)");
    }
}

fn render_peers(out: &mut String, peers: &[PeerStatus]) {
    let alive = peers.iter().filter(|p| p.alive && !p.banned).count();
    let _ = writeln!(out, "\nPeers: {} ({alive} alive)", peers.len());
    if peers.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = peers
        .iter()
        .take(MAX_ROWS)
        .map(|p| {
            let state = match (p.banned, p.alive) {
                (true, _) => "banned",
                (_, true) => "alive",
                (_, false) => "silent",
            };
            vec![
                text(&p.address).unwrap_or_else(|| DASH.to_owned()),
                short_id(Some(p.node_id.as_str())),
                opt_text(&p.board).unwrap_or_else(|| DASH.to_owned()),
                p.rtt_ms.and_then(number).map_or_else(|| DASH.to_owned(), rtt),
                p.last_seen_ms_ago.map_or_else(|| DASH.to_owned(), ago),
                state.to_owned(),
            ]
        })
        .collect();
    table(out, &["ADDRESS", "ID", "BOARD", "RTT", "LAST SEEN", "STATE"], &rows);
    more(out, peers.len());
}

fn render_channels(out: &mut String, me: &BoxView, status: &Status, swarm: Option<&SwarmReport>) {
    let channels = &status.channels;
    let _ = writeln!(out, "\nChannels: {}", channels.len());
    let my_id = me.node_id.as_deref();
    let swarm_channels = swarm.map_or(&[][..], |s| &s.channels);
    for channel in channels.iter().take(MAX_ROWS) {
        let id = text(&channel.id);
        let name = text(&channel.name).filter(|n| Some(n) != id.as_ref());
        // Firmware without a state field reads as idle; a box never reports idle a channel it
        // ingests (ingesting makes it wanted).
        let state = match channel.state {
            ChannelState::Idle if channel.ingesting => "ingesting",
            state => state.as_str(),
        };
        let _ = write!(out, "  {}", id.as_deref().unwrap_or("?"));
        if let Some(name) = name {
            let _ = write!(out, " \"{name}\"");
        }
        let _ = writeln!(out, ": {state}");

        let role = |node: &Option<String>| {
            opt_text(node).map(|node| {
                let mine = my_id == Some(node.as_str());
                format!("{}{}", short(&node), if mine { " (this box)" } else { "" })
            })
        };
        let mut roles = format!("ingester {}", role(&channel.ingester).unwrap_or_else(|| "none".to_owned()));
        if let Some(standby) = role(&channel.standby) {
            let _ = write!(roles, ", standby {standby}");
        }
        let _ = writeln!(out, "    {roles}");

        let in_swarm =
            id.as_ref().and_then(|id| swarm_channels.iter().find(|c| text(&c.id).as_ref() == Some(id)));
        let mut viewers = format!("{} viewers here", channel.viewers);
        if let Some(all) = in_swarm.map(|c| c.figures.traffic.viewers) {
            let _ = write!(viewers, ", {all} in the swarm");
        }
        let bitrate =
            channel.bitrate_bps.and_then(|bps| number(bps as f64)).map_or_else(|| DASH.to_owned(), bitrate);
        let held = channel.segments_held;
        let _ = writeln!(out, "    {viewers}; {bitrate}; {held} segments held");
        let _ = writeln!(out, "    this box: {}", traffic(&Traffic::of(channel)));

        if let Some(origin) = &channel.origin {
            let health = match (origin.healthy, opt_text(&origin.last_error)) {
                (true, _) => "healthy".to_owned(),
                (false, Some(why)) => format!("failing: {why}"),
                (false, None) => "failing".to_owned(),
            };
            let _ = writeln!(
                out,
                "    origin: {health}, {} segments fetched ({})",
                origin.segments_fetched,
                bytes(origin.bytes)
            );
        }
        let _ = writeln!(out, "    swarm: {}", figures(in_swarm.map(|c| &c.figures.figures)));
    }
    more(out, channels.len());
}

fn render_swarm(out: &mut String, swarm: &SwarmReport) {
    let boxes = &swarm.boxes;
    let _ = writeln!(out, "\nSwarm: {} boxes", boxes.len());
    if !boxes.is_empty() {
        let rows: Vec<Vec<String>> = boxes
            .iter()
            .take(MAX_ROWS)
            .map(|b| {
                let ingesting: Vec<String> = b.ingesting.iter().take(8).filter_map(|c| text(c)).collect();
                // A box that did not answer counted nothing: its counters are unknown, not zero.
                let counted =
                    |n: u64, show: fn(u64) -> String| if b.reachable { show(n) } else { DASH.to_owned() };
                vec![
                    short_id(b.node_id.as_deref()),
                    opt_text(&b.board).unwrap_or_else(|| DASH.to_owned()),
                    if b.reachable { "yes" } else { "no" }.to_owned(),
                    b.uptime_s.map_or_else(|| DASH.to_owned(), duration),
                    counted(b.viewers, |n| n.to_string()),
                    if ingesting.is_empty() { DASH.to_owned() } else { ingesting.join(",") },
                    counted(b.bytes_from_origin, bytes),
                    counted(b.bytes_from_peers, bytes),
                    counted(b.bytes_to_tvs, bytes),
                ]
            })
            .collect();
        let header = [
            "BOX",
            "BOARD",
            "REACHABLE",
            "UP",
            "VIEWERS",
            "INGESTING",
            "FROM ORIGIN",
            "FROM PEERS",
            "TO TVS",
        ];
        table(out, &header, &rows);
        more(out, boxes.len());
    }
    let totals = &swarm.totals;
    let _ = writeln!(out, "  totals: {}", figures(Some(&totals.figures)));
    let _ = writeln!(out, "          {}", traffic(&totals.traffic));
}

fn render_store(out: &mut String, store: &StoreStatus) {
    let (used, budget) = (store.used_bytes, store.budget_bytes);
    let mut line = if budget > 0 {
        let percent = used as f64 * 100.0 / budget as f64;
        format!("{} of {} used ({percent:.0}%)", bytes(used), bytes(budget))
    } else {
        format!("{} of {} used", bytes(used), bytes(budget))
    };
    let _ = write!(line, ", {} segments evicted", store.evicted);
    let _ = writeln!(out, "\nStore: {line}");
}

/// The disk tier: how full, and each on-demand asset's state on this box.
fn render_cache(out: &mut String, cache: &CacheStatus) {
    let disk = &cache.disk;
    let _ = writeln!(
        out,
        "Cache:  {} of {} on disk, {} segments; {} evicted, {} corrupt, {} write errors",
        bytes(disk.used_bytes),
        bytes(disk.cap_bytes),
        disk.objects,
        disk.evictions,
        disk.corrupt,
        disk.write_errors,
    );
    let assets = &cache.assets;
    if assets.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = assets
        .iter()
        .take(MAX_ROWS)
        .map(|a| {
            let total = a.segments_total.map_or_else(|| "?".to_owned(), |t| t.to_string());
            let prefill = match (a.prefill.as_ref().and_then(|p| text(&p.state)), a.whole_copy) {
                (Some(state), true) => format!("{state} (whole copy)"),
                (Some(state), false) => state,
                (None, _) => DASH.to_owned(),
            };
            vec![
                opt_text(&a.name).unwrap_or_else(|| DASH.to_owned()),
                format!("{}/{total}", a.segments_known),
                a.segments_on_disk.to_string(),
                bytes(a.bytes),
                prefill,
            ]
        })
        .collect();
    table(out, &["ASSET", "ON LAN", "ON DISK", "SIZE", "PREFILL"], &rows);
    more(out, assets.len());
}

/// The three swarm figures of a channel or of the totals (DESIGN.md section 5); all "—" for a
/// channel the swarm report lacks.
fn figures(figures: Option<&Figures>) -> String {
    let f = figures.copied().unwrap_or_default();
    let ratio =
        f.origin_fetches_per_segment.and_then(number).map_or_else(|| DASH.to_owned(), |r| format!("{r:.2}"));
    format!(
        "origin fetches per segment {ratio} · peer efficiency {} · uplink savings {}",
        percent_or_dash(f.peer_efficiency),
        percent_or_dash(f.uplink_savings)
    )
}

/// Bytes from the origin, from peers and to TVs.
fn traffic(t: &Traffic) -> String {
    format!(
        "{} from origin, {} from peers, {} to TVs",
        bytes(t.bytes_from_origin),
        bytes(t.bytes_from_peers),
        bytes(t.bytes_to_tvs)
    )
}

/// Rows under a header, columns padded to their widest cell, indented by two spaces.
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(line, "  {cell:<width$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// A line counting the rows [`MAX_ROWS`] left out.
fn more(out: &mut String, total: usize) {
    if total > MAX_ROWS {
        let _ = writeln!(out, "  ... and {} more", total - MAX_ROWS);
    }
}

/// A string from the box, fit for a terminal: control characters replaced, at most
/// [`MAX_TEXT`] characters; `None` for an empty one.
fn text(raw: &str) -> Option<String> {
    let mut clean: String =
        raw.chars().take(MAX_TEXT).map(|c| if c.is_control() { '?' } else { c }).collect();
    if raw.chars().count() > MAX_TEXT {
        clean.push('…');
    }
    (!clean.is_empty()).then_some(clean)
}

fn opt_text(raw: &Option<String>) -> Option<String> {
    raw.as_deref().and_then(text)
}

/// The first 8 characters of a node id, enough to tell boxes apart (as in the mDNS names).
fn short(id: &str) -> String {
    id.chars().take(8).collect()
}

/// A node id as [`short`] shows it, "?" for none.
fn short_id(id: Option<&str>) -> String {
    id.and_then(text).map_or_else(|| "?".to_owned(), |id| short(&id))
}

/// A finite number of plausible size: beyond 10^15 (a petabit per second, 30 000 years in
/// milliseconds) it is garbage, and printing all its digits would only flood the terminal.
fn number(value: f64) -> Option<f64> {
    Some(value).filter(|f| f.is_finite() && f.abs() < 1e15)
}

fn percent_or_dash(value: Option<f64>) -> String {
    value.and_then(number).map_or_else(|| DASH.to_owned(), |f| format!("{:.1}%", f * 100.0))
}

/// Bytes in binary units, as the config's `store.budget_mb` counts them.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn bitrate(bps: f64) -> String {
    if bps >= 1e9 {
        format!("{:.2} Gbit/s", bps / 1e9)
    } else if bps >= 1e6 {
        format!("{:.2} Mbit/s", bps / 1e6)
    } else if bps >= 1e3 {
        format!("{:.0} kbit/s", bps / 1e3)
    } else {
        format!("{:.0} bit/s", bps.max(0.0))
    }
}

fn rtt(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// A span in the two largest units that matter: `42s`, `5m 07s`, `2h 03m`, `3d 04h`.
fn duration(seconds: u64) -> String {
    let (d, h, m, s) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s:02}s"),
        (0, _, _) => format!("{h}h {m:02}m"),
        _ => format!("{d}d {h:02}h"),
    }
}

fn ago(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.1} s ago", ms as f64 / 1000.0)
    } else {
        format!("{} ago", duration(ms / 1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::status::{
        AssetStatus, BoxStatus, ChannelStatus, OriginStatus, SwarmBox, SwarmChannel, SwarmFigures,
    };
    use serde_json::json;

    const A: &str = "1a2b3c4d5e6f70811a2b3c4d5e6f7081";
    const B: &str = "5e6f7a8b00000000000000000000000b";
    const C: &str = "c0ffee0000000000000000000000000c";

    /// A status as the daemon writes it (read from JSON, as `fetch` does).
    fn status() -> Status {
        from_json(json!({
            "box": {
                "node_id": A, "board": "rpi4", "version": "0.3.0", "uptime_s": 7380,
                "addresses": ["10.99.0.1", "fe80::1"], "http_port": 7471, "identifying": false,
            },
            "node_id": A, "uptime_s": 7380,
            "peers": [
                { "node_id": B, "address": "10.99.0.2:7470", "alive": true, "banned": false,
                  "rtt_ms": 1.234, "last_seen_ms_ago": 300, "http": "10.99.0.2:7471", "board": "rpi3" },
                { "node_id": C, "address": "10.99.0.3:7470", "alive": false, "banned": true,
                  "rtt_ms": null, "last_seen_ms_ago": 41_000 },
            ],
            "channels": [{
                "id": "news", "name": "News 24", "state": "live", "ingester": A, "standby": B,
                "ingesting": true, "viewers": 2, "bitrate_bps": 1_200_000, "segments_held": 6,
                "origin": { "healthy": true, "last_error": null, "segments_fetched": 12, "bytes": 3_565_158 },
                "bytes_from_origin": 3_565_158, "bytes_from_peers": 0, "bytes_to_tvs": 42_050_000,
            }],
            "store": { "used_bytes": 12_897_485, "budget_bytes": 67_108_864, "evicted": 4 },
        }))
    }

    fn swarm() -> SwarmReport {
        from_json(json!({
            "boxes": [
                { "node_id": A, "board": "rpi4", "http": "http://10.99.0.1:7471", "reachable": true,
                  "uptime_s": 7380, "viewers": 2, "ingesting": ["news"], "bytes_from_origin": 3_565_158,
                  "bytes_from_peers": 0, "bytes_to_tvs": 42_050_000 },
                { "node_id": B, "board": "rpi3", "reachable": false },
            ],
            "channels": [{
                "id": "news", "name": "News 24", "state": "live", "ingester": A, "viewers": 5,
                "origin_fetches_per_segment": 1.0, "peer_efficiency": 0.75, "uplink_savings": 0.934,
                "bytes_from_origin": 3_565_158, "bytes_from_peers": 10_695_474, "bytes_to_tvs": 54_000_000,
            }],
            "totals": { "origin_fetches_per_segment": 1.0, "peer_efficiency": 0.75, "uplink_savings": null,
                        "bytes_from_origin": 3_565_158, "bytes_from_peers": 10_695_474, "bytes_to_tvs": 54_000_000 },
        }))
    }

    /// `value` read as `fetch` reads an answer.
    fn from_json<T: DeserializeOwned>(value: serde_json::Value) -> T {
        read(value.to_string().as_bytes()).unwrap_or_else(|e| panic!("{value} does not read: {e:?}"))
    }

    #[test]
    fn a_full_status_and_swarm_render_every_section() {
        let text = render(&status(), Some(&swarm()));
        println!("{text}");
        for expected in [
            "Box 1a2b3c4d (rpi4), shoal 0.3.0, up 2h 03m\n",
            "  addresses  10.99.0.1, fe80::1 (HTTP port 7471)\n",
            "Peers: 2 (1 alive)\n",
            "10.99.0.2:7470  5e6f7a8b  rpi3   1.2 ms  0.3 s ago  alive",
            "10.99.0.3:7470  c0ffee00  —      —       41s ago    banned",
            "  news \"News 24\": live\n",
            "    ingester 1a2b3c4d (this box), standby 5e6f7a8b\n",
            "    2 viewers here, 5 in the swarm; 1.20 Mbit/s; 6 segments held\n",
            "    this box: 3.4 MiB from origin, 0 B from peers, 40.1 MiB to TVs\n",
            "    origin: healthy, 12 segments fetched (3.4 MiB)\n",
            "    swarm: origin fetches per segment 1.00 · peer efficiency 75.0% · uplink savings 93.4%\n",
            "Swarm: 2 boxes\n",
            "  totals: origin fetches per segment 1.00 · peer efficiency 75.0% · uplink savings —\n",
            "          3.4 MiB from origin, 10.2 MiB from peers, 51.5 MiB to TVs\n",
            "Store: 12.3 MiB of 64.0 MiB used (19%), 4 segments evicted\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(!text.contains("identifying"), "{text}");
        // The swarm table: header, then one row per box, columns aligned.
        let rows: Vec<&str> = text.lines().skip_while(|l| !l.starts_with("Swarm:")).skip(1).take(3).collect();
        assert!(rows[0].starts_with("  BOX       BOARD  REACHABLE  UP      VIEWERS  INGESTING"), "{text}");
        assert!(rows[1].starts_with("  1a2b3c4d  rpi4   yes        2h 03m  2        news"), "{text}");
        assert!(rows[2].starts_with("  5e6f7a8b  rpi3   no         —       —        —"), "{text}");
    }

    #[test]
    fn without_a_swarm_view_the_box_part_is_shown() {
        let text = render(&status(), None);
        assert!(text.contains("Box 1a2b3c4d"), "{text}");
        assert!(!text.contains("Swarm:"), "{text}");
        assert!(
            text.contains("    swarm: origin fetches per segment — · peer efficiency — · uplink savings —\n")
        );
        assert!(text.contains("2 viewers here;"), "{text}");
        let snapshot = Snapshot {
            status: status(),
            swarm: None,
            swarm_missing: Some("this box has no /api/swarm".into()),
        };
        assert!(snapshot.render().ends_with("\n(no swarm view: this box has no /api/swarm)\n"));
    }

    #[test]
    fn the_disk_cache_and_its_assets_are_shown() {
        let mut with_cache = status();
        with_cache.cache = Some(from_json(json!({
            "disk": { "used_bytes": 3 << 20, "cap_bytes": 1 << 30, "objects": 300, "evictions": 0,
                      "corrupt": 1, "write_errors": 0 },
            "assets": [{ "name": "films", "segments_known": 600, "segments_total": 600,
                         "segments_on_disk": 300, "bytes": 45 << 20, "whole_copy": true,
                         "prefill": { "state": "done" } }],
        })));
        let text = render(&with_cache, None);
        assert!(
            text.contains("Cache:  3.0 MiB of 1.0 GiB on disk, 300 segments; 0 evicted, 1 corrupt"),
            "{text}"
        );
        assert!(
            text.contains("films") && text.contains("600/600") && text.contains("done (whole copy)"),
            "{text}"
        );
        assert!(!render(&status(), None).contains("Cache:"), "a box without a disk tier shows none");
    }

    #[test]
    fn older_firmware_fields_at_the_top_level_are_used() {
        let old: Status = from_json(json!({
            "node_id": B, "uptime_s": 65, "peers": [],
            "channels": [{ "id": "test", "name": "test", "ingester": null, "ingesting": true, "segments_held": 3 }],
            "store": { "used_bytes": 100, "budget_bytes": 0 },
        }));
        let text = render(&old, None);
        println!("{text}");
        assert!(text.starts_with("Box 5e6f7a8b, up 1m 05s\n"), "{text}");
        assert!(text.contains("  addresses  —\n"), "{text}");
        assert!(text.contains("Peers: 0 (0 alive)\n"), "{text}");
        // The name equals the id: not repeated. No state field: derived from `ingesting`.
        assert!(text.contains("  test: ingesting\n    ingester none\n"), "{text}");
        // No percentage of a zero budget (a field it lacks reads as 0: "0 segments evicted").
        assert!(text.contains("Store: 100 B of 0 B used, 0 segments evicted\n"), "{text}");
    }

    #[test]
    fn garbage_is_not_a_status_and_says_what_is_wrong() {
        let why =
            |body: &str| read::<Status>(body.as_bytes()).map(|_| ()).expect_err(body).describe("status");
        assert!(why("<html>router login</html>").starts_with("not JSON: expected value at line 1"));
        assert!(why("").starts_with("not JSON: EOF"), "{}", why(""));
        for (body, kind) in [
            ("null", "null"),
            ("[]", "array"),
            (" \"status\"", "string"),
            ("42", "number"),
            ("true", "true/false"),
        ] {
            assert_eq!(why(body), format!("JSON {kind}, not an object"));
        }
        for (body, field) in [
            (
                r#"{ "box": [], "peers": {}, "channels": "x", "store": 7 }"#,
                "invalid type: map, expected a sequence",
            ),
            (r#"{ "box": { "node_id": 7 } }"#, "invalid type: integer `7`, expected a string"),
            (r#"{ "uptime_s": -5 }"#, "invalid value: integer `-5`"),
            (r#"{ "peers": [{ "alive": "yes" }] }"#, "invalid type: string \"yes\", expected a boolean"),
            (r#"{ "channels": [{ "bitrate_bps": 1e308 }] }"#, "invalid type: floating point"),
        ] {
            let why = why(body);
            assert!(
                why.starts_with(&format!("not a Shoal status: {field}"))
                    && why.contains(" at line 1 column "),
                "{why}"
            );
        }
        let why = read::<SwarmReport>(br#"{ "boxes": [null] }"#).map(|_| ()).expect_err("a bad report");
        assert!(
            why.describe("swarm view").starts_with("not a Shoal swarm view: invalid type: null"),
            "{why:?}"
        );
    }

    #[test]
    fn odd_values_never_panic_and_print_dashes() {
        let odd = Status {
            this_box: BoxStatus {
                node_id: "7".into(),
                addresses: vec![String::new()],
                ..BoxStatus::default()
            },
            peers: vec![
                PeerStatus::default(),
                PeerStatus {
                    rtt_ms: Some(f64::NAN),
                    last_seen_ms_ago: Some(u64::MAX),
                    ..PeerStatus::default()
                },
                PeerStatus { alive: true, banned: true, rtt_ms: Some(-1e300), ..PeerStatus::default() },
                PeerStatus { node_id: "\u{1b}".into(), rtt_ms: Some(f64::INFINITY), ..PeerStatus::default() },
                PeerStatus { address: String::new(), ..PeerStatus::default() },
            ],
            channels: vec![
                ChannelStatus::default(),
                ChannelStatus {
                    bitrate_bps: Some(u64::MAX),
                    origin: Some(OriginStatus {
                        healthy: false,
                        last_error: Some(String::new()),
                        ..Default::default()
                    }),
                    bytes_to_tvs: u64::MAX,
                    ..ChannelStatus::default()
                },
            ],
            store: StoreStatus { used_bytes: u64::MAX, budget_bytes: 1, evicted: u64::MAX, rejected: 0 },
            cache: Some(CacheStatus {
                assets: vec![AssetStatus { name: Some(String::new()), ..AssetStatus::default() }],
                ..CacheStatus::default()
            }),
            ..Status::default()
        };
        let swarms = [
            SwarmReport::default(),
            SwarmReport {
                boxes: vec![
                    SwarmBox::default(),
                    SwarmBox {
                        ingesting: vec![String::new()],
                        uptime_s: Some(u64::MAX),
                        reachable: true,
                        ..SwarmBox::default()
                    },
                ],
                channels: vec![SwarmChannel {
                    figures: SwarmFigures {
                        figures: Figures { peer_efficiency: Some(f64::NAN), ..Figures::default() },
                        ..SwarmFigures::default()
                    },
                    ..SwarmChannel::default()
                }],
                totals: SwarmFigures {
                    figures: Figures {
                        origin_fetches_per_segment: Some(-0.0),
                        uplink_savings: Some(-3.0),
                        peer_efficiency: Some(1e300),
                    },
                    ..SwarmFigures::default()
                },
            },
        ];
        for status in [&Status::default(), &odd] {
            let _ = render(status, None);
            for swarm in &swarms {
                let text = render(status, Some(swarm));
                assert!(text.contains("Store:"), "{text}");
            }
        }
        let text = render(&odd, Some(&swarms[1]));
        println!("{text}");
        assert!(text.starts_with("Box 7, up 0s\n  addresses  —\n"), "{text}");
        assert!(text.contains("Peers: 5 (0 alive)"), "{text}");
        let first_peer = text.lines().skip_while(|l| !l.starts_with("Peers:")).nth(2).expect("a peer row");
        assert_eq!(
            first_peer.split_whitespace().collect::<Vec<_>>(),
            ["—", "?", "—", "—", "—", "silent"],
            "{text}"
        );
        assert!(text.contains("uplink savings -300.0%"), "{text}");
        assert!(
            text.contains("peer efficiency — · uplink savings -300.0%"),
            "an absurd ratio is not printed: {text}"
        );
        assert!(
            text.contains("0 viewers here; —; 0 segments held"),
            "an absurd bitrate is not printed: {text}"
        );
        assert!(text.contains("origin: failing, 0 segments fetched (0 B)"), "{text}");
        assert!(
            render(&Status::default(), None).contains("(the answer has no box fields: is this a Shoal box?)")
        );
    }

    /// A box that did not answer counted nothing: "—", not 0 (see also the full render).
    #[test]
    fn an_unreachable_box_has_no_counters() {
        let swarm = SwarmReport {
            boxes: vec![SwarmBox { http: "x".into(), ..SwarmBox::default() }],
            ..SwarmReport::default()
        };
        let text = render(&status(), Some(&swarm));
        assert!(
            text.contains("\n  ?    —      no         —   —        —          —            —           —\n"),
            "{text}"
        );
    }

    #[test]
    fn control_characters_and_long_strings_are_defused() {
        let mut hostile = status();
        hostile.this_box.board = "evil\u{1b}[2J\u{7}board".into();
        hostile.channels[0].name = "x".repeat(10_000);
        hostile.cache = Some(CacheStatus {
            assets: vec![AssetStatus { name: Some("films\u{1b}[2J".into()), ..AssetStatus::default() }],
            ..CacheStatus::default()
        });
        let text = render(&hostile, None);
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
        assert!(text.contains("(evil?[2J?board)"), "{text}");
        assert!(text.contains(&format!("\"{}…\"", "x".repeat(MAX_TEXT))), "{text}");
    }

    #[test]
    fn long_lists_are_cut() {
        let peers: Vec<PeerStatus> = (0..1000)
            .map(|i| PeerStatus {
                address: format!("10.99.{}.{}:7470", i / 256, i % 256),
                alive: true,
                ..PeerStatus::default()
            })
            .collect();
        let text = render(&Status { peers, ..Status::default() }, None);
        assert!(text.contains("Peers: 1000 (1000 alive)"), "{text}");
        assert!(text.contains(&format!("  ... and {} more\n", 1000 - MAX_ROWS)), "{text}");
        assert!(text.lines().count() < MAX_ROWS + 20, "{text}");
    }

    #[test]
    fn units_read_well() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(61), "1m 01s");
        assert_eq!(duration(7380), "2h 03m");
        assert_eq!(duration(3 * 86_400 + 4 * 3600 + 5), "3d 04h");
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(64 << 20), "64.0 MiB");
        assert_eq!(bytes(u64::MAX), "16384.0 PiB");
        assert_eq!(bitrate(1_200_000.0), "1.20 Mbit/s");
        assert_eq!(bitrate(800_000.0), "800 kbit/s");
        assert_eq!(rtt(0.054), "0.05 ms");
        assert_eq!(rtt(12.34), "12.3 ms");
        assert_eq!(ago(300), "0.3 s ago");
        assert_eq!(ago(125_000), "2m 05s ago");
    }

    #[test]
    fn urls_are_taken_with_or_without_a_scheme() {
        let url = parse_url("127.0.0.1:7471").expect("host:port");
        assert_eq!(display_base(&url), "http://127.0.0.1:7471");
        assert_eq!(endpoint(&url, "/api/status"), "http://127.0.0.1:7471/api/status");
        // A dashboard URL with a path: the API is still at the root.
        let url = parse_url("http://box.local:7471/channels/news?x=1").expect("with a path");
        assert_eq!(endpoint(&url, "/api/swarm"), "http://box.local:7471/api/swarm");
        assert_eq!(display_base(&url), "http://box.local:7471/channels/news?x=1");
        assert!(parse_url("ftp://box").is_err());
        assert!(parse_url("http://").is_err());
        assert!(parse_url("not a url").is_err());
        assert!(parse_url("box:99999").is_err());
    }
}
