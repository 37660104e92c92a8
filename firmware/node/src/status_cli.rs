//! `shoal status`: a box and its swarm, summarised for a terminal.
//!
//! [`fetch`] GETs `/api/status` and `/api/swarm` from a box with the HTTP client the daemon uses
//! for origins ([`crate::origin`]), and [`render`] turns the two JSON documents into text. The
//! split keeps the formatting pure: it is tested on sample documents, and `shoal demo` prints the
//! same summary of its own boxes.
//!
//! The box is another program, possibly of another version, so [`render`] takes nothing for
//! granted: every field is optional, a field of the wrong type prints as "—", lists are cut at
//! [`MAX_ROWS`], and strings lose their control characters and are cut at [`MAX_TEXT`] (a name
//! with escape sequences in it would otherwise drive the terminal). A box without `/api/swarm`
//! (older firmware) gets the box part only.
//!
//! ```
//! use serde_json::json;
//!
//! let status = json!({
//!     "box": { "node_id": "1a2b3c4d5e6f70811a2b3c4d5e6f7081", "board": "rpi4", "uptime_s": 7380 },
//!     "peers": [], "channels": [], "store": { "used_bytes": 0, "budget_bytes": 67108864 },
//! });
//! let text = shoal::status_cli::render(&status, None);
//! assert!(text.starts_with("Box 1a2b3c4d (rpi4)"));
//! assert!(text.contains("up 2h 03m"));
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use crate::lineup::{OriginUrl, UrlError};
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
/// when the JSON is huge or hostile.
pub const MAX_ROWS: usize = 64;

/// Characters kept of any string from the box (names, errors, addresses).
pub const MAX_TEXT: usize = 80;

/// Printed for a value that is missing, null or of the wrong type.
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
    /// Something answered, but not with a status document.
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
    /// `/api/status`, always a JSON object.
    pub status: Value,
    /// `/api/swarm`, when the box answered it with a JSON object.
    pub swarm: Option<Value>,
    /// Why there is no swarm view, when there is none.
    pub swarm_missing: Option<String>,
}

impl Snapshot {
    /// [`render`] of both documents, and a last line saying why the swarm part is missing.
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
    let (swarm, swarm_missing) = match get_json(session, base, "/api/swarm").await {
        Ok(swarm) if swarm.is_object() => (Some(swarm), None),
        Ok(other) => (None, Some(format!("/api/swarm answered JSON {}, not an object", kind(&other)))),
        Err(StatusError::HttpStatus { status: 404, .. }) => {
            (None, Some("this box has no /api/swarm (older firmware)".to_owned()))
        }
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(Snapshot { status, swarm, swarm_missing })
}

/// GETs `/api/status` alone from the box at `base`: a JSON object, else an error.
pub async fn fetch_status(session: &mut Session, base: &OriginUrl) -> Result<Value, StatusError> {
    let status = get_json(session, base, "/api/status").await?;
    if !status.is_object() {
        return Err(StatusError::BadAnswer {
            url: endpoint(base, "/api/status"),
            why: format!("JSON {}, not an object", kind(&status)),
        });
    }
    Ok(status)
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

async fn get_json(session: &mut Session, base: &OriginUrl, path: &str) -> Result<Value, StatusError> {
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
            StatusError::BadAnswer { url: url.clone(), why: other.to_string() }
        }
    })?;
    serde_json::from_slice(&fetched.bytes)
        .map_err(|e| StatusError::BadAnswer { url, why: format!("not JSON: {e}") })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The terminal summary of a box's `/api/status` and, if given, its `/api/swarm`: the box, its
/// peers, its channels (with the swarm's figures for each), the swarm's boxes, the store.
/// Total: never panics, whatever the JSON.
pub fn render(status: &Value, swarm: Option<&Value>) -> String {
    let mut out = String::new();
    let me = BoxView::of(status);
    render_box(&mut out, &me, status);
    render_peers(&mut out, &status["peers"]);
    render_channels(&mut out, &me, status, swarm);
    if let Some(swarm) = swarm {
        render_swarm(&mut out, swarm);
    }
    render_store(&mut out, &status["store"]);
    if status["cache"].is_object() {
        render_cache(&mut out, &status["cache"]);
    }
    out
}

/// The box's own fields, from `box` or, in older firmware, the top level.
struct BoxView<'a> {
    fields: &'a Value,
    top: &'a Value,
}

impl<'a> BoxView<'a> {
    fn of(status: &'a Value) -> BoxView<'a> {
        BoxView { fields: &status["box"], top: status }
    }

    fn field(&self, key: &str) -> &'a Value {
        match &self.fields[key] {
            Value::Null => &self.top[key],
            value => value,
        }
    }

    /// The full node id, to recognise this box where others name it.
    fn node_id(&self) -> Option<String> {
        text(self.field("node_id"))
    }
}

fn render_box(out: &mut String, me: &BoxView<'_>, status: &Value) {
    let board = text(me.field("board")).map_or_else(String::new, |b| format!(" ({b})"));
    let _ = write!(out, "Box {}{board}", short_id(me.field("node_id")));
    if let Some(version) = text(me.field("version")) {
        let _ = write!(out, ", shoal {version}");
    }
    if let Some(up) = count(me.field("uptime_s")) {
        let _ = write!(out, ", up {}", duration(up));
    }
    out.push('\n');
    let addresses: Vec<String> = list(me.field("addresses")).iter().take(MAX_ROWS).filter_map(text).collect();
    let addresses = if addresses.is_empty() { DASH.to_owned() } else { addresses.join(", ") };
    let port = count(me.field("http_port")).map_or_else(String::new, |p| format!(" (HTTP port {p})"));
    let _ = writeln!(out, "  addresses  {addresses}{port}");
    if me.field("identifying") == &Value::Bool(true) {
        let _ = writeln!(out, "  identifying: its LED is blinking");
    }
    if status.get("box").is_none() && status.get("node_id").is_none() {
        let _ = writeln!(out, "  (the answer has no box fields: is this a Shoal box?)");
    }
}

fn render_peers(out: &mut String, peers: &Value) {
    let peers = list(peers);
    let alive = peers.iter().filter(|p| p["alive"] == true && p["banned"] != true).count();
    let _ = writeln!(out, "\nPeers: {} ({alive} alive)", peers.len());
    if peers.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = peers
        .iter()
        .take(MAX_ROWS)
        .map(|p| {
            let state = match (&p["banned"], &p["alive"]) {
                (Value::Bool(true), _) => "banned",
                (_, Value::Bool(true)) => "alive",
                (_, Value::Bool(false)) => "silent",
                _ => DASH,
            };
            vec![
                text(&p["address"]).unwrap_or_else(|| DASH.to_owned()),
                short_id(&p["node_id"]),
                text(&p["board"]).unwrap_or_else(|| DASH.to_owned()),
                number(&p["rtt_ms"]).map_or_else(|| DASH.to_owned(), rtt),
                count(&p["last_seen_ms_ago"]).map_or_else(|| DASH.to_owned(), ago),
                state.to_owned(),
            ]
        })
        .collect();
    table(out, &["ADDRESS", "ID", "BOARD", "RTT", "LAST SEEN", "STATE"], &rows);
    more(out, peers.len());
}

fn render_channels(out: &mut String, me: &BoxView<'_>, status: &Value, swarm: Option<&Value>) {
    let channels = list(&status["channels"]);
    let _ = writeln!(out, "\nChannels: {}", channels.len());
    let my_id = me.node_id();
    let swarm_channels = swarm.map(|s| list(&s["channels"])).unwrap_or_default();
    for channel in channels.iter().take(MAX_ROWS) {
        let id = text(&channel["id"]);
        let name = text(&channel["name"]).filter(|n| Some(n) != id.as_ref());
        let state = text(&channel["state"]).unwrap_or_else(|| {
            if channel["ingesting"] == true {
                "ingesting".to_owned()
            } else {
                DASH.to_owned()
            }
        });
        let _ = write!(out, "  {}", id.as_deref().unwrap_or("?"));
        if let Some(name) = name {
            let _ = write!(out, " \"{name}\"");
        }
        let _ = writeln!(out, ": {state}");

        let role = |key: &str| {
            text(&channel[key]).map(|node| {
                let mine = my_id.as_deref() == Some(node.as_str());
                format!("{}{}", short(&node), if mine { " (this box)" } else { "" })
            })
        };
        let mut roles = format!("ingester {}", role("ingester").unwrap_or_else(|| "none".to_owned()));
        if let Some(standby) = role("standby") {
            let _ = write!(roles, ", standby {standby}");
        }
        let _ = writeln!(out, "    {roles}");

        let in_swarm = id
            .as_ref()
            .and_then(|id| swarm_channels.iter().find(|c| text(&c["id"]).as_ref() == Some(id)))
            .unwrap_or(&Value::Null);
        let mut viewers = format!("{} viewers here", count_or_dash(&channel["viewers"]));
        if let Some(all) = count(&in_swarm["viewers"]) {
            let _ = write!(viewers, ", {all} in the swarm");
        }
        let bitrate = number(&channel["bitrate_bps"]).map_or_else(|| DASH.to_owned(), bitrate);
        let held = count_or_dash(&channel["segments_held"]);
        let _ = writeln!(out, "    {viewers}; {bitrate}; {held} segments held");
        let _ = writeln!(out, "    this box: {}", traffic(channel));

        let origin = &channel["origin"];
        if origin.is_object() {
            let health = match &origin["healthy"] {
                Value::Bool(true) => "healthy".to_owned(),
                Value::Bool(false) => match text(&origin["last_error"]) {
                    Some(why) => format!("failing: {why}"),
                    None => "failing".to_owned(),
                },
                _ => DASH.to_owned(),
            };
            let _ = writeln!(
                out,
                "    origin: {health}, {} segments fetched ({})",
                count_or_dash(&origin["segments_fetched"]),
                count(&origin["bytes"]).map_or_else(|| DASH.to_owned(), bytes)
            );
        }
        let _ = writeln!(out, "    swarm: {}", figures(in_swarm));
    }
    more(out, channels.len());
}

fn render_swarm(out: &mut String, swarm: &Value) {
    let boxes = list(&swarm["boxes"]);
    let _ = writeln!(out, "\nSwarm: {} boxes", boxes.len());
    if !boxes.is_empty() {
        let rows: Vec<Vec<String>> = boxes
            .iter()
            .take(MAX_ROWS)
            .map(|b| {
                let ingesting: Vec<String> = list(&b["ingesting"]).iter().take(8).filter_map(text).collect();
                vec![
                    short_id(&b["node_id"]),
                    text(&b["board"]).unwrap_or_else(|| DASH.to_owned()),
                    match &b["reachable"] {
                        Value::Bool(true) => "yes".to_owned(),
                        Value::Bool(false) => "no".to_owned(),
                        _ => DASH.to_owned(),
                    },
                    count(&b["uptime_s"]).map_or_else(|| DASH.to_owned(), duration),
                    count_or_dash(&b["viewers"]),
                    if ingesting.is_empty() { DASH.to_owned() } else { ingesting.join(",") },
                    bytes_or_dash(&b["bytes_from_origin"]),
                    bytes_or_dash(&b["bytes_from_peers"]),
                    bytes_or_dash(&b["bytes_to_tvs"]),
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
    let totals = &swarm["totals"];
    let _ = writeln!(out, "  totals: {}", figures(totals));
    let _ = writeln!(out, "          {}", traffic(totals));
}

fn render_store(out: &mut String, store: &Value) {
    let used = count(&store["used_bytes"]);
    let budget = count(&store["budget_bytes"]);
    let mut line = match (used, budget) {
        (Some(used), Some(budget)) if budget > 0 => {
            let percent = used as f64 * 100.0 / budget as f64;
            format!("{} of {} used ({percent:.0}%)", bytes(used), bytes(budget))
        }
        (used, budget) => format!(
            "{} of {} used",
            used.map_or_else(|| DASH.to_owned(), bytes),
            budget.map_or_else(|| DASH.to_owned(), bytes)
        ),
    };
    if let Some(evicted) = count(&store["evicted"]) {
        let _ = write!(line, ", {evicted} segments evicted");
    }
    let _ = writeln!(out, "\nStore: {line}");
}

/// The disk tier: how full, and each on-demand asset's state on this box.
fn render_cache(out: &mut String, cache: &Value) {
    let disk = &cache["disk"];
    let _ = writeln!(
        out,
        "Cache:  {} of {} on disk, {} segments; {} evicted, {} corrupt, {} write errors",
        bytes_or_dash(&disk["used_bytes"]),
        bytes_or_dash(&disk["cap_bytes"]),
        count_or_dash(&disk["objects"]),
        count_or_dash(&disk["evictions"]),
        count_or_dash(&disk["corrupt"]),
        count_or_dash(&disk["write_errors"]),
    );
    let assets = list(&cache["assets"]);
    if assets.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = assets
        .iter()
        .take(MAX_ROWS)
        .map(|a| {
            let total = count(&a["segments_total"]).map_or_else(|| "?".to_owned(), |t| t.to_string());
            let prefill = match (a.pointer("/prefill/state").and_then(Value::as_str), &a["whole_copy"]) {
                (Some(state), Value::Bool(true)) => format!("{state} (whole copy)"),
                (Some(state), _) => state.to_owned(),
                (None, _) => DASH.to_owned(),
            };
            vec![
                a["name"].as_str().unwrap_or(DASH).to_owned(),
                format!("{}/{total}", count_or_dash(&a["segments_known"])),
                count_or_dash(&a["segments_on_disk"]),
                bytes_or_dash(&a["bytes"]),
                prefill,
            ]
        })
        .collect();
    table(out, &["ASSET", "ON LAN", "ON DISK", "SIZE", "PREFILL"], &rows);
    more(out, assets.len());
}

/// The three swarm figures of a channel or of the totals (DESIGN.md section 5).
fn figures(value: &Value) -> String {
    let ratio =
        number(&value["origin_fetches_per_segment"]).map_or_else(|| DASH.to_owned(), |r| format!("{r:.2}"));
    format!(
        "origin fetches per segment {ratio} · peer efficiency {} · uplink savings {}",
        percent_or_dash(&value["peer_efficiency"]),
        percent_or_dash(&value["uplink_savings"])
    )
}

/// Bytes from the origin, from peers and to TVs.
fn traffic(value: &Value) -> String {
    format!(
        "{} from origin, {} from peers, {} to TVs",
        bytes_or_dash(&value["bytes_from_origin"]),
        bytes_or_dash(&value["bytes_from_peers"]),
        bytes_or_dash(&value["bytes_to_tvs"])
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

fn list(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

/// A string from the box, fit for a terminal: control characters replaced, at most
/// [`MAX_TEXT`] characters. Numbers are accepted too (a port given as a number).
fn text(value: &Value) -> Option<String> {
    let raw = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let mut clean: String =
        raw.chars().take(MAX_TEXT).map(|c| if c.is_control() { '?' } else { c }).collect();
    if raw.chars().count() > MAX_TEXT {
        clean.push('…');
    }
    (!clean.is_empty()).then_some(clean)
}

/// The first 8 characters of a node id, enough to tell boxes apart (as in the mDNS names).
fn short(id: &str) -> String {
    id.chars().take(8).collect()
}

fn short_id(value: &Value) -> String {
    text(value).map_or_else(|| "?".to_owned(), |id| short(&id))
}

/// A non-negative integer (an integral float is accepted: JSON writers differ).
fn count(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 1.8e19)
            .map(|f| f as u64)
    })
}

fn count_or_dash(value: &Value) -> String {
    count(value).map_or_else(|| DASH.to_owned(), |n| n.to_string())
}

/// A finite number of plausible size: beyond 10^15 (a petabit per second, 30 000 years in
/// milliseconds) it is garbage, and printing all its digits would only flood the terminal.
fn number(value: &Value) -> Option<f64> {
    value.as_f64().filter(|f| f.is_finite() && f.abs() < 1e15)
}

fn percent_or_dash(value: &Value) -> String {
    number(value).map_or_else(|| DASH.to_owned(), |f| format!("{:.1}%", f * 100.0))
}

fn bytes_or_dash(value: &Value) -> String {
    count(value).map_or_else(|| DASH.to_owned(), bytes)
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
    use serde_json::json;

    const A: &str = "1a2b3c4d5e6f70811a2b3c4d5e6f7081";
    const B: &str = "5e6f7a8b00000000000000000000000b";
    const C: &str = "c0ffee0000000000000000000000000c";

    fn status() -> Value {
        json!({
            "box": {
                "node_id": A, "board": "rpi4", "version": "0.3.0", "uptime_s": 7380,
                "addresses": ["10.99.0.1", "fe80::1"], "http_port": 7471, "identifying": false,
            },
            "node_id": A, "uptime_s": 7380,
            "peers": [
                { "node_id": B, "address": "10.99.0.2:7470", "alive": true, "banned": false,
                  "rtt_ms": 1.234, "last_seen_ms_ago": 300, "http": 7471, "board": "rpi3" },
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
        })
    }

    fn swarm() -> Value {
        json!({
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
        })
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
        with_cache["cache"] = json!({
            "disk": { "used_bytes": 3 << 20, "cap_bytes": 1 << 30, "objects": 300, "evictions": 0,
                      "corrupt": 1, "write_errors": 0 },
            "assets": [{ "name": "films", "segments_known": 600, "segments_total": 600,
                         "segments_on_disk": 300, "bytes": 45 << 20, "whole_copy": true,
                         "prefill": { "state": "done" } }],
        });
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
        let old = json!({
            "node_id": B, "uptime_s": 65, "peers": [],
            "channels": [{ "id": "test", "name": "test", "ingester": null, "ingesting": true, "segments_held": 3 }],
            "store": { "used_bytes": 100, "budget_bytes": 0 },
        });
        let text = render(&old, None);
        println!("{text}");
        assert!(text.starts_with("Box 5e6f7a8b, up 1m 05s\n"), "{text}");
        assert!(text.contains("  addresses  —\n"), "{text}");
        assert!(text.contains("Peers: 0 (0 alive)\n"), "{text}");
        // The name equals the id: not repeated. No state field: derived from `ingesting`.
        assert!(text.contains("  test: ingesting\n    ingester none\n"), "{text}");
        assert!(text.contains("Store: 100 B of 0 B used\n"), "{text}");
    }

    #[test]
    fn garbage_never_panics_and_prints_dashes() {
        let documents = [
            json!(null),
            json!([]),
            json!("status"),
            json!(42),
            json!({}),
            json!({ "box": [], "peers": {}, "channels": "x", "store": 7 }),
            json!({ "box": { "node_id": 7, "uptime_s": -5, "addresses": "10.0.0.1", "http_port": "x" },
                    "peers": [null, 1, "x", [], { "alive": "yes", "rtt_ms": "fast", "last_seen_ms_ago": -1.5 }],
                    "channels": [null, { "id": [], "viewers": -1, "bitrate_bps": 1e308, "origin": { "healthy": 1 } }],
                    "store": { "used_bytes": 1.5, "budget_bytes": 1e30, "evicted": true } }),
        ];
        let swarms = [
            json!(null),
            json!({ "boxes": 5, "channels": {}, "totals": [] }),
            json!({ "boxes": [null, { "ingesting": "news", "uptime_s": 1e300 }],
                    "channels": [{ "id": null, "peer_efficiency": "75%" }],
                    "totals": { "origin_fetches_per_segment": -0.0, "uplink_savings": -3.0 } }),
        ];
        for status in &documents {
            let _ = render(status, None);
            for swarm in &swarms {
                let text = render(status, Some(swarm));
                assert!(text.contains("Store:"), "{text}");
            }
        }
        let text = render(&documents[6], Some(&swarms[2]));
        println!("{text}");
        assert!(text.starts_with("Box 7\n"), "a numeric id is shown, a negative uptime is not: {text}");
        assert!(text.contains("Peers: 5 (0 alive)"), "{text}");
        assert!(text.contains("uplink savings -300.0%"), "{text}");
        assert!(
            text.contains("— viewers here; —; — segments held"),
            "an absurd bitrate is not printed: {text}"
        );
        assert!(render(&json!({}), None).contains("(the answer has no box fields: is this a Shoal box?)"));
    }

    #[test]
    fn control_characters_and_long_strings_are_defused() {
        let mut hostile = status();
        hostile["box"]["board"] = json!("evil\u{1b}[2J\u{7}board");
        hostile["channels"][0]["name"] = json!("x".repeat(10_000));
        let text = render(&hostile, None);
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
        assert!(text.contains("(evil?[2J?board)"), "{text}");
        assert!(text.contains(&format!("\"{}…\"", "x".repeat(MAX_TEXT))), "{text}");
    }

    #[test]
    fn long_lists_are_cut() {
        let peers: Vec<Value> = (0..1000)
            .map(|i| json!({ "address": format!("10.99.{}.{}:7470", i / 256, i % 256), "alive": true }))
            .collect();
        let text = render(&json!({ "peers": peers }), None);
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
