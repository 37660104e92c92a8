//! The operator dashboard at `/`: one HTML page that an installer opens on a laptop on the LAN.
//!
//! The page is rendered here, on the server, from this box's [`Status`] (`/api/status`) and the
//! [`SwarmReport`] (`/api/swarm`: this box plus what it fetched from its peers), so it is complete
//! with JavaScript off: the boxes of the swarm with their viewers and traffic, who ingests which channel, each
//! channel's health and the three figures (origin fetches per segment, peer efficiency, uplink
//! savings), and this box's peers. With JavaScript on, `app.js` polls both APIs every 2 s and
//! rebuilds the same tables, draws origin-versus-peer traffic over the last five minutes, plays
//! any channel in a `<video>` element (native HLS) and asks the box to identify itself.
//!
//! What is not known shows "—", never a panic: a swarm report that could not be made (every
//! swarm cell), an empty string, a figure whose denominator is zero or that is not finite, the
//! counters of a box that did not answer. A peer of another version that answered half a status
//! is read with defaults, and one that answered no status at all is left out of the report
//! ([`crate::model::status`]). Everything that came from the network or the config (names, ids,
//! errors, addresses) is HTML-escaped; ids in links are percent-encoded too. The page has no inline script, style or event handler, so
//! it works under a strict `Content-Security-Policy` (`default-src 'self'`).
//!
//! The assets are compiled into the binary ([`asset`]): about 24 KB (a test keeps them under
//! 30 KB), no library, no external URL, so the dashboard works on a LAN with no Internet.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::model::status::{self as model, ChannelState, ChannelStatus, OriginStatus, Status};
use crate::model::status::{SwarmChannel, SwarmFigures, SwarmReport};

/// The script that keeps the page current; see the module docs.
const APP_JS: &str = include_str!("../../assets/dashboard/app.js");
/// The page's only stylesheet.
const STYLE_CSS: &str = include_str!("../../assets/dashboard/style.css");
/// The tab icon, so browsers stop asking for `/favicon.ico`.
const ICON_SVG: &str = include_str!("../../assets/dashboard/icon.svg");

/// How many hex digits of a node id name a box on the page: 8 (32 bits) tell a LAN's boxes
/// apart at a glance; the full id is in the cell's tooltip.
const SHORT_ID: usize = 8;

/// What the dashboard serves under `/dashboard/<name>`: the bytes and their content type, or
/// `None` for any other name (a 404).
pub(crate) fn asset(name: &str) -> Option<(&'static [u8], &'static str)> {
    match name {
        "app.js" => Some((APP_JS.as_bytes(), "text/javascript; charset=utf-8")),
        "style.css" => Some((STYLE_CSS.as_bytes(), "text/css; charset=utf-8")),
        "icon.svg" => Some((ICON_SVG.as_bytes(), "image/svg+xml")),
        _ => None,
    }
}

/// The dashboard for `status` (`/api/status` of this box) and `swarm` (`/api/swarm`, `None` when
/// the report could not be made in time).
pub(crate) fn page(status: &Status, swarm: Option<&SwarmReport>) -> String {
    let this = this_box(status);
    let boxes = boxes(status, swarm, &this);
    let channels = channels(status, swarm);
    let names = |id: Option<&str>| box_name(id, &boxes);

    let mut out = String::with_capacity(16 * 1024);
    let title = match this.id {
        Some(id) => format!("Shoal box {}", short(id)),
        None => "Shoal box".to_owned(),
    };
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n\
         <link rel=\"icon\" href=\"/dashboard/icon.svg\" type=\"image/svg+xml\">\n\
         <link rel=\"stylesheet\" href=\"/dashboard/style.css\">\n\
         <script src=\"/dashboard/app.js\" defer></script>\n\
         <noscript><meta http-equiv=\"refresh\" content=\"10\"></noscript>\n\
         </head>\n<body>\n",
        title = escape(&title)
    );
    header(&mut out, &this, status);
    figures(&mut out, swarm.map(|s| &s.totals));
    boxes_table(&mut out, &boxes);
    channels_table(&mut out, &channels, names);
    out.push_str(
        "<section id=\"traffic\">\n<h2>Traffic</h2>\n\
         <p class=\"note\">Bytes per second the swarm takes from the origin and passes between \
         boxes, over the last five minutes.</p>\n\
         <svg id=\"chart\" viewBox=\"0 0 600 160\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"origin and peer bytes per second\"></svg>\n\
         <p class=\"legend\"><span class=\"key origin\"></span>from the origin \
         <span class=\"key peers\"></span>between boxes <span id=\"chart-scale\"></span></p>\n\
         <noscript><p class=\"note\">The chart needs JavaScript.</p></noscript>\n</section>\n",
    );
    player(&mut out, &channels);
    peers_table(&mut out, status, names);
    cache_table(&mut out, status);
    out.push_str("<footer>Shoal");
    if let Some(version) = text(&status.this_box.version) {
        let _ = write!(out, " {}", escape(version));
    }
    out.push_str(
        " · <a href=\"/api/status\">/api/status</a> · <a href=\"/api/swarm\">/api/swarm</a> · \
         <a href=\"/playlist.m3u\">/playlist.m3u</a></footer>\n</body>\n</html>\n",
    );
    out
}

/// This box as `/api/status` describes it (`box.*`, or the older top-level `node_id`).
struct ThisBox<'a> {
    id: Option<&'a str>,
    board: Option<&'a str>,
}

fn this_box(status: &Status) -> ThisBox<'_> {
    ThisBox {
        id: text(&status.this_box.node_id).or_else(|| text(&status.node_id)),
        board: text(&status.this_box.board),
    }
}

/// One row of the boxes table.
struct BoxRow<'a> {
    id: Option<&'a str>,
    board: Option<&'a str>,
    /// `host:port` of its HTTP server.
    http: Option<Cow<'a, str>>,
    reachable: Option<bool>,
    uptime_s: Option<u64>,
    viewers: Option<u64>,
    ingesting: Vec<&'a str>,
    traffic: Traffic,
    this: bool,
}

/// Bytes from the origin, from peers and to TVs.
#[derive(Clone, Copy, Default)]
struct Traffic {
    origin: Option<u64>,
    peers: Option<u64>,
    tvs: Option<u64>,
}

impl Traffic {
    fn known(origin: u64, peers: u64, tvs: u64) -> Traffic {
        Traffic { origin: Some(origin), peers: Some(peers), tvs: Some(tvs) }
    }

    /// A channel's traffic on this box.
    fn of_channel(c: &ChannelStatus) -> Traffic {
        Traffic::known(c.bytes_from_origin, c.bytes_from_peers, c.bytes_to_tvs)
    }

    /// Traffic summed over boxes.
    fn of_sums(t: &model::Traffic) -> Traffic {
        Traffic::known(t.bytes_from_origin, t.bytes_from_peers, t.bytes_to_tvs)
    }

    /// The sum, field by field; unknown only where both are.
    fn add(self, other: Traffic) -> Traffic {
        let add = |x: Option<u64>, y: Option<u64>| match (x, y) {
            (None, None) => None,
            _ => Some(x.unwrap_or(0).saturating_add(y.unwrap_or(0))),
        };
        Traffic {
            origin: add(self.origin, other.origin),
            peers: add(self.peers, other.peers),
            tvs: add(self.tvs, other.tvs),
        }
    }
}

/// The swarm's boxes: those `/api/swarm` lists, then peers this box knows that it does not list
/// (so a failed swarm fetch still shows every box), and this box first if it is missing.
fn boxes<'a>(status: &'a Status, swarm: Option<&'a SwarmReport>, this: &ThisBox<'a>) -> Vec<BoxRow<'a>> {
    let mut rows: Vec<BoxRow<'a>> = swarm
        .map_or(&[][..], |s| &s.boxes)
        .iter()
        .map(|b| {
            let id = opt_text(&b.node_id);
            // A box that did not answer counted nothing: its counters are unknown, not zero.
            let answered = b.reachable;
            BoxRow {
                id,
                board: opt_text(&b.board),
                http: text(&b.http).map(Cow::Borrowed),
                reachable: Some(b.reachable),
                uptime_s: b.uptime_s,
                viewers: answered.then_some(b.viewers),
                ingesting: b.ingesting.iter().filter_map(|c| text(c)).collect(),
                traffic: if answered {
                    Traffic::known(b.bytes_from_origin, b.bytes_from_peers, b.bytes_to_tvs)
                } else {
                    Traffic::default()
                },
                this: id.is_some() && id == this.id,
            }
        })
        .collect();
    for peer in &status.peers {
        let id = text(&peer.node_id);
        if id.is_some() && (rows.iter().any(|r| r.id == id) || id == this.id) {
            continue;
        }
        rows.push(BoxRow {
            id,
            board: opt_text(&peer.board),
            http: opt_text(&peer.http).map(Cow::Borrowed),
            reachable: None,
            uptime_s: None,
            viewers: None,
            ingesting: Vec::new(),
            traffic: Traffic::default(),
            this: false,
        });
    }
    if this.id.is_some() && !rows.iter().any(|r| r.this) {
        let b = &status.this_box;
        let http =
            b.addresses.iter().find_map(|a| text(a)).map(|a| Cow::Owned(format!("{a}:{}", b.http_port)));
        rows.insert(
            0,
            BoxRow {
                id: this.id,
                board: this.board,
                http,
                reachable: Some(true),
                uptime_s: Some(b.uptime_s),
                viewers: Some(status.channels.iter().fold(0u64, |sum, c| sum.saturating_add(c.viewers))),
                ingesting: status
                    .channels
                    .iter()
                    .filter(|c| c.ingesting)
                    .filter_map(|c| text(&c.id))
                    .collect(),
                traffic: status
                    .channels
                    .iter()
                    .map(Traffic::of_channel)
                    .fold(Traffic::default(), Traffic::add),
                this: true,
            },
        );
    }
    rows
}

/// One row of the channels table: what the swarm says, plus this box's own view of it.
struct ChannelRow<'a> {
    id: Option<&'a str>,
    swarm: Option<&'a SwarmChannel>,
    local: Option<&'a ChannelStatus>,
}

impl<'a> ChannelRow<'a> {
    /// The name the swarm gives it, else this box's.
    fn name(&self) -> Option<&'a str> {
        let swarm = self.swarm.and_then(|s| s.name.as_deref());
        swarm.or_else(|| self.local.map(|l| l.name.as_str())).and_then(text)
    }

    /// The liveliest state any box reports, else this box's.
    fn state(&self) -> Option<ChannelState> {
        self.swarm.map(|s| s.state).or_else(|| self.local.map(|l| l.state))
    }

    /// The ingester the swarm names, else the one this box knows.
    fn ingester(&self) -> Option<&'a str> {
        let swarm = self.swarm.and_then(|s| s.ingester.as_deref());
        swarm.or_else(|| self.local.and_then(|l| l.ingester.as_deref())).and_then(text)
    }

    /// The origin as the ingester sees it, else as this box does.
    fn origin(&self) -> Option<&'a OriginStatus> {
        self.swarm.and_then(|s| s.origin.as_ref()).or_else(|| self.local.and_then(|l| l.origin.as_ref()))
    }

    /// Viewers in the swarm, else on this box.
    fn viewers(&self) -> Option<u64> {
        self.swarm.map(|s| s.figures.traffic.viewers).or_else(|| self.local.map(|l| l.viewers))
    }

    /// Bytes in the swarm, else on this box.
    fn traffic(&self) -> Traffic {
        match (self.swarm, self.local) {
            (Some(s), _) => Traffic::of_sums(&s.figures.traffic),
            (None, Some(l)) => Traffic::of_channel(l),
            (None, None) => Traffic::default(),
        }
    }

    /// The swarm's figures (none without a swarm report).
    fn figures(&self) -> model::Figures {
        self.swarm.map(|s| s.figures.figures).unwrap_or_default()
    }
}

fn channels<'a>(status: &'a Status, swarm: Option<&'a SwarmReport>) -> Vec<ChannelRow<'a>> {
    let mut rows: Vec<ChannelRow<'a>> = swarm
        .map_or(&[][..], |s| &s.channels)
        .iter()
        .map(|c| {
            let id = text(&c.id);
            ChannelRow { id, swarm: Some(c), local: id.and_then(|id| status.channel(id)) }
        })
        .collect();
    for c in &status.channels {
        let id = text(&c.id);
        if id.is_none() || !rows.iter().any(|r| r.id == id) {
            rows.push(ChannelRow { id, swarm: None, local: Some(c) });
        }
    }
    rows
}

fn header(out: &mut String, this: &ThisBox<'_>, status: &Status) {
    let b = &status.this_box;
    out.push_str("<header>\n<h1>Shoal <span class=\"box-name\" id=\"box-name\"");
    if let Some(id) = this.id {
        let _ = write!(out, " title=\"{}\">{}", escape(id), escape(short(id)));
    } else {
        out.push_str(">unknown box");
    }
    if let Some(board) = this.board {
        let _ = write!(out, " <span class=\"board\">{}</span>", escape(board));
    }
    out.push_str("</span></h1>\n<p class=\"facts\" id=\"box-facts\">");
    let mut facts = Vec::new();
    if let Some(version) = text(&b.version) {
        facts.push(format!("version {}", escape(version)));
    }
    facts.push(format!("up {}", duration(b.uptime_s)));
    let addresses: Vec<_> = b.addresses.iter().filter_map(|a| text(a)).map(escape).collect();
    if !addresses.is_empty() {
        facts.push(addresses.join(", "));
    }
    let store = &status.store;
    facts.push(format!("store {} of {}", bytes(Some(store.used_bytes)), bytes(Some(store.budget_bytes))));
    if b.identifying {
        facts.push("<strong>identifying</strong>".to_owned());
    }
    out.push_str(&facts.join(" · "));
    // Without JavaScript the form still works: the browser shows the box's JSON answer.
    out.push_str(
        "</p>\n<form id=\"identify\" method=\"post\" action=\"/api/identify\">\
         <button type=\"submit\">Identify this box</button> \
         <output id=\"identify-result\" aria-live=\"polite\"></output></form>\n</header>\n\
         <p id=\"connection\" class=\"banner\" hidden></p>\n",
    );
}

/// The three figures for the whole swarm (all "—" without a swarm report).
fn figures(out: &mut String, totals: Option<&SwarmFigures>) {
    let f = totals.map(|t| t.figures).unwrap_or_default();
    let figure = |out: &mut String, key: &str, label: &str, value: String, why: &str| {
        let _ = writeln!(
            out,
            "<div class=\"figure\" title=\"{why}\"><span class=\"value\" data-figure=\"{key}\">{value}</span>\
             <span class=\"label\">{label}</span></div>"
        );
    };
    out.push_str("<section id=\"figures\" class=\"figures\">\n");
    figure(
        out,
        "origin_fetches_per_segment",
        "origin fetches per segment",
        fetches(f.origin_fetches_per_segment),
        "Segment downloads from the origin divided by distinct segments: 1.00 means each segment crossed the uplink once.",
    );
    figure(
        out,
        "peer_efficiency",
        "peer efficiency",
        percent(f.peer_efficiency),
        "Bytes boxes got from peers divided by all bytes they got (peers and origin).",
    );
    figure(
        out,
        "uplink_savings",
        "uplink savings",
        percent(f.uplink_savings),
        "1 minus origin bytes divided by bytes served to TVs: the share of TV traffic that did not cross the uplink.",
    );
    let t = totals.map_or_else(Traffic::default, |t| Traffic::of_sums(&t.traffic));
    let _ = writeln!(
        out,
        "<p class=\"note\" id=\"totals\">Origin {} · between boxes {} · to TVs {}</p>\n</section>",
        bytes(t.origin),
        bytes(t.peers),
        bytes(t.tvs)
    );
}

fn boxes_table(out: &mut String, boxes: &[BoxRow<'_>]) {
    out.push_str(
        "<section>\n<h2>Boxes</h2>\n<table id=\"boxes\">\n<thead><tr><th>Box</th><th>Address</th>\
         <th>Reachable</th><th>Up</th><th>Viewers</th><th>Ingesting</th><th>From origin</th>\
         <th>From peers</th><th>To TVs</th></tr></thead>\n<tbody id=\"boxes-body\">\n",
    );
    if boxes.is_empty() {
        out.push_str("<tr><td colspan=\"9\" class=\"empty\">No boxes known yet.</td></tr>\n");
    }
    for b in boxes {
        let _ = write!(out, "<tr{}>", if b.this { " class=\"this\"" } else { "" });
        name_cell(out, b.id, b.board, b.this);
        // Only an IP:port becomes a link: a peer cannot point the operator elsewhere.
        match &b.http {
            Some(http) if http.parse::<SocketAddr>().is_ok() => {
                let _ = write!(out, "<td><a href=\"http://{0}/\">{0}</a></td>", escape(http));
            }
            Some(http) => {
                let _ = write!(out, "<td>{}</td>", escape(http));
            }
            None => out.push_str("<td>—</td>"),
        }
        let reachable = match b.reachable {
            Some(true) => "<td class=\"ok\">yes</td>",
            Some(false) => "<td class=\"bad\">no</td>",
            None => "<td>—</td>",
        };
        out.push_str(reachable);
        let uptime = b.uptime_s.map_or(Cow::Borrowed("—"), |s| Cow::Owned(duration(s)));
        let viewers = b.viewers.map_or(Cow::Borrowed("—"), |v| Cow::Owned(v.to_string()));
        let ingesting: Vec<_> = b.ingesting.iter().map(|c| escape(c)).collect();
        let ingesting = if ingesting.is_empty() { "—".to_owned() } else { ingesting.join(", ") };
        let _ = writeln!(
            out,
            "<td>{uptime}</td><td class=\"num\">{viewers}</td><td>{ingesting}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            bytes(b.traffic.origin),
            bytes(b.traffic.peers),
            bytes(b.traffic.tvs)
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn channels_table(out: &mut String, channels: &[ChannelRow<'_>], names: impl Fn(Option<&str>) -> String) {
    out.push_str(
        "<section>\n<h2>Channels</h2>\n<table id=\"channels\">\n<thead><tr><th>Channel</th><th>State</th>\
         <th>Origin</th><th>Ingested by</th><th>Viewers</th><th>Origin fetches per segment</th>\
         <th>Peer efficiency</th><th>Uplink savings</th><th>From origin</th><th>From peers</th>\
         <th>To TVs</th><th>Play</th></tr></thead>\n<tbody id=\"channels-body\">\n",
    );
    if channels.is_empty() {
        out.push_str("<tr><td colspan=\"12\" class=\"empty\">No channels configured.</td></tr>\n");
    }
    for c in channels {
        let name = c.name().or(c.id).unwrap_or("unnamed");
        let _ = write!(out, "<tr><td><span class=\"channel-name\">{}</span>", escape(name));
        if let Some(id) = c.id {
            let _ = write!(out, " <code>{}</code>", escape(id));
        }
        let state = c.state().map_or("unknown", ChannelState::as_str);
        let _ =
            write!(out, "</td><td><span class=\"state\" data-state=\"{0}\">{0}</span></td>", escape(state));
        // The origin's health as the ingesting box reports it: this box's own view when it
        // ingests, or the swarm's when it carries one.
        match c.origin() {
            Some(origin) if origin.healthy => out.push_str("<td class=\"ok\">healthy</td>"),
            Some(origin) => {
                let error = opt_text(&origin.last_error).unwrap_or("failing");
                let _ = write!(out, "<td class=\"bad\">{}</td>", escape(error));
            }
            None => out.push_str("<td>—</td>"),
        }
        let viewers = c.viewers().map_or(Cow::Borrowed("—"), |v| Cow::Owned(v.to_string()));
        let t = c.traffic();
        let f = c.figures();
        let _ = write!(
            out,
            "<td>{}</td><td class=\"num\">{viewers}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
            names(c.ingester()),
            fetches(f.origin_fetches_per_segment),
            percent(f.peer_efficiency),
            percent(f.uplink_savings),
            bytes(t.origin),
            bytes(t.peers),
            bytes(t.tvs)
        );
        match c.id {
            Some(id) => {
                let _ = writeln!(
                    out,
                    "<td><a href=\"/hls/{}/index.m3u8\">HLS</a></td></tr>",
                    escape(&path_segment(id))
                );
            }
            None => out.push_str("<td>—</td></tr>\n"),
        }
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn player(out: &mut String, channels: &[ChannelRow<'_>]) {
    out.push_str(
        // Hidden until app.js shows it: without JavaScript the player cannot start.
        "<section id=\"watch\">\n<h2>Watch</h2>\n<div id=\"player-box\" hidden>\
         <form id=\"player-form\" class=\"player-controls\">\
         <label>Channel <select id=\"channel-picker\">",
    );
    for c in channels {
        if let Some(id) = c.id {
            let name = c.name().unwrap_or(id);
            let _ = write!(out, "<option value=\"{}\">{}</option>", escape(id), escape(name));
        }
    }
    out.push_str(
        "</select></label> <button type=\"submit\" id=\"play\">Play</button> \
         <button type=\"button\" id=\"stop\">Stop</button> \
         <output id=\"player-state\" aria-live=\"polite\"></output></form>\n\
         <video id=\"player\" controls muted playsinline preload=\"none\"></video></div>\n\
         <noscript><p class=\"note\">The player needs JavaScript; the HLS links in the channels \
         table open in VLC or any other player.</p></noscript>\n</section>\n",
    );
}

fn peers_table(out: &mut String, status: &Status, names: impl Fn(Option<&str>) -> String) {
    out.push_str(
        "<section>\n<h2>Peers of this box</h2>\n<table id=\"peers\">\n<thead><tr><th>Box</th><th>Address</th>\
         <th>Alive</th><th>Round trip</th><th>Last heard</th></tr></thead>\n<tbody id=\"peers-body\">\n",
    );
    let peers = &status.peers;
    if peers.is_empty() {
        out.push_str("<tr><td colspan=\"5\" class=\"empty\">No peers heard yet.</td></tr>\n");
    }
    for p in peers {
        let alive = match (p.alive, p.banned) {
            (_, true) => "<td class=\"bad\">banned</td>",
            (true, _) => "<td class=\"ok\">yes</td>",
            (false, _) => "<td class=\"bad\">no</td>",
        };
        let rtt =
            p.rtt_ms.and_then(number).map_or(Cow::Borrowed("—"), |ms| Cow::Owned(format!("{ms:.1} ms")));
        let seen = p
            .last_seen_ms_ago
            .map_or(Cow::Borrowed("—"), |ms| Cow::Owned(format!("{:.1} s ago", ms as f64 / 1e3)));
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td>{alive}<td class=\"num\">{rtt}</td><td class=\"num\">{seen}</td></tr>",
            names(text(&p.node_id)),
            text(&p.address).map_or(Cow::Borrowed("—"), escape),
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// On-demand assets on this box (only for a box with a disk tier): how much of each the LAN
/// and this disk hold, and any prefill.
fn cache_table(out: &mut String, status: &Status) {
    let Some(cache) = &status.cache else { return };
    let disk = &cache.disk;
    let _ = write!(
        out,
        "<section>\n<h2>On-demand cache</h2>\n<p class=\"note\" id=\"cache-disk\">{} of {} on this box's disk</p>\n\
         <table id=\"cache\">\n<thead><tr><th>Asset</th><th>On the LAN</th><th>On this disk</th><th>Size</th>\
         <th>Prefill</th></tr></thead>\n<tbody id=\"cache-body\">\n",
        bytes(Some(disk.used_bytes)),
        bytes(Some(disk.cap_bytes)),
    );
    let assets = &cache.assets;
    if assets.is_empty() {
        out.push_str("<tr><td colspan=\"5\" class=\"empty\">No on-demand asset yet.</td></tr>\n");
    }
    for a in assets {
        let total = a.segments_total.map_or(Cow::Borrowed("?"), |t| Cow::Owned(t.to_string()));
        let (known, on_disk) = (a.segments_known, a.segments_on_disk);
        let prefill = match (a.prefill.as_ref().and_then(|p| text(&p.state)), a.whole_copy) {
            (Some(state), true) => Cow::Owned(format!("{} (whole copy)", escape(state))),
            (Some(state), false) => escape(state),
            (None, _) => Cow::Borrowed("—"),
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"num\">{known} of {total}</td><td class=\"num\">{on_disk}</td>\
             <td class=\"num\">{}</td><td>{prefill}</td></tr>",
            opt_text(&a.name).map_or(Cow::Borrowed("—"), escape),
            bytes(Some(a.bytes)),
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// The first cell of a box's row: short id (full id in the tooltip), board, "this box".
fn name_cell(out: &mut String, id: Option<&str>, board: Option<&str>, this: bool) {
    out.push_str("<td>");
    match id {
        Some(id) => {
            let _ = write!(out, "<span class=\"node\" title=\"{}\">{}</span>", escape(id), escape(short(id)));
        }
        None => out.push_str("<span class=\"node\">unknown</span>"),
    }
    if let Some(board) = board {
        let _ = write!(out, " <span class=\"board\">{}</span>", escape(board));
    }
    if this {
        out.push_str(" <span class=\"tag\">this box</span>");
    }
    out.push_str("</td>");
}

/// A box as other tables name it: its short id and board, or "—" for none.
fn box_name(id: Option<&str>, boxes: &[BoxRow<'_>]) -> String {
    let Some(id) = id else { return "—".to_owned() };
    let board = boxes.iter().find(|b| b.id == Some(id)).and_then(|b| b.board);
    let mut cell = format!("<span class=\"node\" title=\"{}\">{}</span>", escape(id), escape(short(id)));
    if let Some(board) = board {
        let _ = write!(cell, " <span class=\"board\">{}</span>", escape(board));
    }
    cell
}

/// The first [`SHORT_ID`] characters of a node id (all of it if shorter).
fn short(id: &str) -> &str {
    id.char_indices().nth(SHORT_ID).map_or(id, |(end, _)| &id[..end])
}

/// A string that says something: `None` for an empty one.
fn text(value: &str) -> Option<&str> {
    Some(value).filter(|s| !s.is_empty())
}

/// An optional string that says something.
fn opt_text(value: &Option<String>) -> Option<&str> {
    value.as_deref().and_then(text)
}

/// A finite number.
fn number(value: f64) -> Option<f64> {
    Some(value).filter(|f| f.is_finite())
}

/// Origin fetches per segment, to two places ("—" when unknown).
fn fetches(value: Option<f64>) -> String {
    value.and_then(number).map_or_else(|| "—".to_owned(), |f| format!("{f:.2}"))
}

/// A ratio as a whole percentage ("—" when unknown).
fn percent(value: Option<f64>) -> String {
    value.and_then(number).map_or_else(|| "—".to_owned(), |f| format!("{:.0} %", f * 100.0))
}

/// Bytes in binary units, to three significant digits ("—" when unknown).
fn bytes(value: Option<u64>) -> String {
    let Some(value) = value else { return "—".to_owned() };
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut scaled = value as f64;
    let mut unit = 0;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{value} B"),
        _ if scaled < 10.0 => format!("{scaled:.2} {}", UNITS[unit]),
        _ if scaled < 100.0 => format!("{scaled:.1} {}", UNITS[unit]),
        _ => format!("{scaled:.0} {}", UNITS[unit]),
    }
}

/// Seconds as the two largest units: "3 d 4 h", "12 min 5 s".
fn duration(seconds: u64) -> String {
    let (d, h, m, s) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
    match () {
        _ if d > 0 => format!("{d} d {h} h"),
        _ if h > 0 => format!("{h} h {m} min"),
        _ if m > 0 => format!("{m} min {s} s"),
        _ => format!("{s} s"),
    }
}

/// `text` safe inside HTML text and double- or single-quoted attributes.
fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `text` percent-encoded as one URL path segment (everything but RFC 3986's unreserved
/// characters), so an id cannot add path segments, a query or a scheme to a link.
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;
    use crate::model::status::{BoxStatus, CacheStatus, Figures, PeerStatus, SwarmBox};

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "fedcba9876543210fedcba9876543210";
    const C: &str = "00112233445566778899aabbccddeeff";

    /// `/api/status` of box A, as the daemon sends it.
    fn status() -> Status {
        serde_json::from_value(json!({
            "box": {"node_id": A, "board": "generic", "version": "0.1.0", "uptime_s": 3725,
                    "addresses": ["10.99.0.1"], "http_port": 7471, "identifying": false},
            "peers": [
                {"node_id": B, "address": "10.99.0.2:7470", "alive": true, "banned": false, "rtt_ms": 0.3,
                 "last_seen_ms_ago": 120, "http": "10.99.0.2:7471", "board": "pi4"},
                {"node_id": C, "address": "10.99.0.3:7470", "alive": false, "banned": false, "rtt_ms": null,
                 "last_seen_ms_ago": 9000, "http": "10.99.0.3:7471", "board": "generic"}
            ],
            "channels": [
                {"id": "live", "name": "Live TV", "state": "live", "ingester": A, "standby": B,
                 "ingesting": true, "viewers": 2, "bitrate_bps": 480000, "segments_held": 6,
                 "origin": {"healthy": false, "last_error": "HTTP 503 from origin", "segments_fetched": 10, "bytes": 123},
                 "bytes_from_origin": 5000, "bytes_from_peers": 0, "bytes_to_tvs": 20000},
                {"id": "news", "name": "News", "state": "idle", "ingester": null, "standby": null,
                 "ingesting": false, "viewers": 0}
            ],
            "store": {"used_bytes": 1048576, "budget_bytes": 67108864, "evicted": 0}
        }))
        .expect("a status")
    }

    /// `/api/swarm` as box A sees it: C did not answer.
    fn swarm() -> SwarmReport {
        serde_json::from_value(json!({
            "boxes": [
                {"node_id": A, "board": "generic", "http": "10.99.0.1:7471", "reachable": true, "uptime_s": 3725,
                 "viewers": 2, "ingesting": ["live"], "bytes_from_origin": 5000, "bytes_from_peers": 0, "bytes_to_tvs": 20000},
                {"node_id": B, "board": "pi4", "http": "10.99.0.2:7471", "reachable": true, "uptime_s": 60,
                 "viewers": 1, "ingesting": [], "bytes_from_origin": 0, "bytes_from_peers": 5000, "bytes_to_tvs": 10000},
                {"node_id": C, "board": "generic", "http": "10.99.0.3:7471", "reachable": false}
            ],
            "channels": [
                {"id": "live", "name": "Live TV", "state": "live", "ingester": A, "viewers": 3,
                 "origin_fetches_per_segment": 1.0, "peer_efficiency": 0.5, "uplink_savings": 0.8333,
                 "bytes_from_origin": 5000, "bytes_from_peers": 5000, "bytes_to_tvs": 30000},
                {"id": "news", "name": "News", "state": "idle", "ingester": null, "viewers": 0,
                 "origin_fetches_per_segment": null, "peer_efficiency": null, "uplink_savings": null}
            ],
            "totals": {"origin_fetches_per_segment": 1.0, "peer_efficiency": 0.5, "uplink_savings": 0.8333,
                       "bytes_from_origin": 5000, "bytes_from_peers": 5000, "bytes_to_tvs": 30000}
        }))
        .expect("a swarm report")
    }

    /// The HTML between `<table id="{id}"` and its end.
    fn table<'a>(html: &'a str, id: &str) -> &'a str {
        let start = html.find(&format!("<table id=\"{id}\"")).expect("table present");
        let end = html[start..].find("</table>").expect("table closed");
        &html[start..start + end]
    }

    #[test]
    fn lists_every_box_and_channel() {
        let html = page(&status(), Some(&swarm()));
        let boxes = table(&html, "boxes");
        for id in [A, B, C] {
            assert!(boxes.contains(&format!("title=\"{id}\">{}</span>", &id[..8])), "{id} in {boxes}");
        }
        assert_eq!(boxes.matches("<tr").count(), 4, "a header and three boxes: {boxes}");
        assert!(boxes.contains("this box"));
        assert!(boxes.contains("<a href=\"http://10.99.0.2:7471/\">10.99.0.2:7471</a>"));
        assert!(boxes.contains("<td class=\"bad\">no</td>"), "C is unreachable");
        assert!(boxes.contains("1 h 2 min"));

        let channels = table(&html, "channels");
        assert!(channels.contains("Live TV") && channels.contains("<code>live</code>"));
        assert!(channels.contains("News") && channels.contains("<code>news</code>"));
        assert!(channels.contains("HTTP 503 from origin"), "origin health: {channels}");
        assert!(channels.contains(&format!("title=\"{A}\">01234567</span> <span class=\"board\">generic")));
        assert!(channels.contains("<a href=\"/hls/live/index.m3u8\">"));
        for figure in ["1.00", "50 %", "83 %", "4.88 KiB", "29.3 KiB"] {
            assert!(channels.contains(figure), "{figure} in {channels}");
        }
        assert!(html.contains("data-figure=\"peer_efficiency\">50 %<"));
        assert!(html.contains("<option value=\"live\">Live TV</option><option value=\"news\">News</option>"));
        assert!(table(&html, "peers").contains("0.3 ms"));
        assert!(html.contains("version 0.1.0") && html.contains("10.99.0.1"));
    }

    #[test]
    fn shows_the_cache_only_on_a_box_with_one() {
        assert!(!page(&status(), Some(&swarm())).contains("id=\"cache\""));
        let mut with_cache = status();
        with_cache.cache = serde_json::from_value(json!({
            "disk": { "used_bytes": 3145728, "cap_bytes": 1073741824 },
            "assets": [{ "name": "<films>", "segments_known": 600, "segments_total": 600,
                         "segments_on_disk": 310, "bytes": 45000000, "whole_copy": false,
                         "prefill": { "state": "done" } }],
        }))
        .expect("a cache");
        let html = page(&with_cache, Some(&swarm()));
        let cache = table(&html, "cache");
        assert!(
            cache.contains("&lt;films&gt;") && cache.contains("600 of 600") && cache.contains(">310<"),
            "{cache}"
        );
        assert!(cache.contains("<td>done</td>"), "{cache}");
        assert!(html.contains("3.00 MiB of 1.00 GiB on this box"), "{html}");
    }

    #[test]
    fn escapes_what_came_from_the_network() {
        let mut status = status();
        status.channels[0].name = "<script>alert(1)</script>".into();
        if let Some(origin) = &mut status.channels[0].origin {
            origin.last_error = Some("<img src=x onerror=alert(2)>".into());
        }
        status.this_box.board = "\"><script>".into();
        let mut swarm = swarm();
        swarm.channels[0].name = Some("<script>alert(1)</script>".into());
        swarm.channels[1].id = "a/../b?c=\"d\"".into();
        swarm.boxes[1].http = "evil.example/\"><b>".into();
        let html = page(&status, Some(&swarm));
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<img"));
        assert!(!html.contains("\"><script>") && !html.contains("<b>"));
        assert!(html.contains("/hls/a%2F..%2Fb%3Fc%3D%22d%22/index.m3u8"));
        assert!(!html.contains("href=\"http://evil"), "only IP:port becomes a link");
        // The only script is the page's own.
        assert_eq!(html.matches("<script").count(), 1);
    }

    #[test]
    fn has_no_inline_script_style_or_handler() {
        let html = page(&status(), Some(&swarm()));
        assert!(html.contains("<script src=\"/dashboard/app.js\" defer></script>"));
        for banned in ["style=", "onclick", "onsubmit", "onload", "javascript:", "http://cdn", "https://"] {
            assert!(!html.contains(banned), "{banned} in the page");
        }
    }

    #[test]
    fn without_the_swarm_shows_this_box_and_its_peers() {
        let html = page(&status(), None);
        let boxes = table(&html, "boxes");
        for id in [A, B, C] {
            assert!(boxes.contains(id), "{id} in {boxes}");
        }
        assert!(boxes.contains("<a href=\"http://10.99.0.1:7471/\">"), "this box's own address");
        let channels = table(&html, "channels");
        assert!(channels.contains("Live TV") && channels.contains("News"));
        assert!(html.contains("data-figure=\"uplink_savings\">—<"));
    }

    #[test]
    fn missing_or_odd_fields_render_as_dashes() {
        let empty = Status::default();
        let odd = Status {
            node_id: A.into(),
            this_box: BoxStatus {
                node_id: String::new(),
                addresses: vec![String::new()],
                ..BoxStatus::default()
            },
            peers: vec![PeerStatus { rtt_ms: Some(f64::NAN), ..PeerStatus::default() }],
            channels: vec![ChannelStatus { viewers: u64::MAX, ..ChannelStatus::default() }; 2],
            cache: Some(CacheStatus::default()),
            ..Status::default()
        };
        let unknown = SwarmReport {
            boxes: vec![
                SwarmBox::default(),
                SwarmBox { node_id: Some(String::new()), ..SwarmBox::default() },
            ],
            channels: vec![SwarmChannel::default()],
            totals: SwarmFigures {
                figures: Figures { peer_efficiency: Some(f64::INFINITY), ..Figures::default() },
                ..SwarmFigures::default()
            },
        };
        for (status, swarm) in
            [(&empty, None), (&empty, Some(&SwarmReport::default())), (&odd, Some(&unknown)), (&odd, None)]
        {
            let html = page(status, swarm);
            assert!(html.ends_with("</html>\n"), "{html}");
        }
        assert!(page(&empty, None).contains("No boxes known yet."));
        assert!(page(&empty, None).contains("data-figure=\"peer_efficiency\">—<"));
        let html = page(&odd, Some(&unknown));
        assert!(html.contains("data-figure=\"peer_efficiency\">—<"), "not finite: {html}");
        assert!(html.contains("<td>—</td>"), "{html}");
        assert!(html.contains(&format!("<td class=\"num\">{}</td>", u64::MAX)), "viewers saturate: {html}");
        assert!(html.contains("<span class=\"node\">unknown</span>"), "{html}");
        let older: Status = serde_json::from_value(json!({"node_id": A})).expect("an older status reads");
        assert!(page(&older, None).contains(A), "older status documents");
    }

    /// A box that did not answer counted nothing: "—", not 0.
    #[test]
    fn an_unreachable_box_has_no_counters() {
        let html = page(&status(), Some(&swarm()));
        let boxes = table(&html, "boxes");
        let c = boxes.lines().find(|l| l.contains(C)).expect("C's row");
        assert!(
            c.ends_with(
                "<td class=\"bad\">no</td><td>—</td><td class=\"num\">—</td><td>—</td>\
                         <td class=\"num\">—</td><td class=\"num\">—</td><td class=\"num\">—</td></tr>"
            ),
            "{c}"
        );
    }

    /// JSON that is not a status never reaches the page: a peer's garbage is dropped where it is
    /// read (`backend::peer_status`), and a partial one reads with defaults.
    #[test]
    fn json_that_is_not_a_status_is_refused_where_it_is_read() {
        for garbage in [
            json!(null),
            json!([1, 2]),
            json!("swarm"),
            json!({"box": 7, "peers": {}, "channels": "x"}),
            json!({"node_id": A, "uptime_s": -1.5}),
            json!({"box": {"node_id": 5}}),
        ] {
            assert!(serde_json::from_value::<Status>(garbage.clone()).is_err(), "{garbage}");
        }
        for garbage in [json!({"boxes": [1, null, []]}), json!({"totals": {"peer_efficiency": "half"}})] {
            assert!(serde_json::from_value::<SwarmReport>(garbage.clone()).is_err(), "{garbage}");
        }
        let partial: Status = serde_json::from_value(json!({"box": {"node_id": ""}, "channels": [{}]}))
            .expect("a partial status reads");
        assert!(page(&partial, None).ends_with("</html>\n"));
    }

    #[test]
    fn formats_figures() {
        assert_eq!(bytes(Some(0)), "0 B");
        assert_eq!(bytes(Some(1023)), "1023 B");
        assert_eq!(bytes(Some(1536)), "1.50 KiB");
        assert_eq!(bytes(Some(150 * 1024 * 1024)), "150 MiB");
        assert_eq!(bytes(Some(u64::MAX)), "16384 PiB");
        assert_eq!(bytes(None), "—");
        assert_eq!(duration(59), "59 s");
        assert_eq!(duration(61), "1 min 1 s");
        assert_eq!(duration(90_000), "1 d 1 h");
        assert_eq!(percent(Some(0.755)), "76 %");
        assert_eq!(percent(Some(f64::NAN)), "—");
        assert_eq!(percent(None), "—");
        assert_eq!(fetches(Some(1.0)), "1.00");
        assert_eq!(short("abc"), "abc");
        assert_eq!(short("é123456789"), "é1234567");
    }

    #[test]
    fn serves_the_assets_and_nothing_else() {
        let (js, kind) = asset("app.js").expect("app.js");
        assert!(kind.starts_with("text/javascript") && js.starts_with(b"// Shoal dashboard"));
        assert!(asset("style.css").is_some_and(|(_, kind)| kind.starts_with("text/css")));
        assert!(asset("icon.svg").is_some_and(|(_, kind)| kind == "image/svg+xml"));
        for name in ["", "../Cargo.toml", "app.js/", "APP.JS", "index.html"] {
            assert!(asset(name).is_none(), "{name}");
        }
        let total: usize =
            ["app.js", "style.css", "icon.svg"].iter().map(|n| asset(n).map_or(0, |a| a.0.len())).sum();
        assert!(total < 30 * 1024, "the assets stay small: {total} bytes");
        let js = std::str::from_utf8(js).expect("UTF-8");
        assert!(!js.contains("innerHTML") && !js.contains("http://cdn") && !js.contains("https://"));
    }

    /// Any JSON, with keys the page looks for so that odd values reach every path.
    fn odd_json() -> impl Strategy<Value = Value> {
        let keys = prop::sample::select(vec![
            "box",
            "node_id",
            "board",
            "http",
            "peers",
            "channels",
            "boxes",
            "totals",
            "id",
            "name",
            "state",
            "ingester",
            "viewers",
            "origin",
            "healthy",
            "last_error",
            "uptime_s",
            "addresses",
            "http_port",
            "ingesting",
            "bytes_from_origin",
            "peer_efficiency",
            "rtt_ms",
            "alive",
            "store",
            "used_bytes",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-f0-9<>&\"' ]{0,40}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                prop::collection::vec((keys.clone(), inner), 0..8).prop_map(|fields| Value::Object(
                    fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
    }

    proptest! {
        /// Whatever a peer sends: JSON that reads as a status or a swarm report renders, the
        /// rest is an error where it is read, never a panic.
        #[test]
        fn never_panics_on_odd_json(status in odd_json(), swarm in odd_json()) {
            let status = serde_json::from_value::<Status>(status).unwrap_or_default();
            let swarm = serde_json::from_value::<SwarmReport>(swarm).ok();
            let html = page(&status, swarm.as_ref());
            prop_assert!(html.ends_with("</html>\n"));
            prop_assert_eq!(html.matches("<script").count(), 1);
        }

        /// Any typed status and report: the page is whole, and nothing from them is markup.
        #[test]
        fn escapes_and_never_panics_on_any_status(status in arbitrary::status(), swarm in arbitrary::swarm()) {
            let html = page(&status, swarm.as_ref());
            prop_assert!(html.ends_with("</html>\n"));
            prop_assert_eq!(html.matches("<script").count(), 1);
            // The generated strings carry `<b>`, quotes and `&`; escaped, none survives as is.
            prop_assert!(!html.contains("<b>") && !html.contains("<>") && !html.contains("\"\"\""));
            prop_assert!(!html.contains("&'") && !html.contains("'\""));
        }
    }

    /// Arbitrary typed statuses and swarm reports: strings full of `<>&"'` (and control
    /// characters), zero and huge numbers, non-finite ratios, empty lists, `None` everywhere.
    mod arbitrary {
        use proptest::prelude::*;

        use crate::model::status::{
            AssetStatus, BoxStatus, CacheStatus, ChannelState, ChannelStatus, DiskStatus, Figures,
            OriginStatus, PeerStatus, PrefillStatus, Status, StoreStatus, SwarmBox, SwarmChannel,
            SwarmFigures, SwarmReport, Traffic,
        };

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                4 => "[a-f0-9<>&\"' ]{0,12}",
                1 => Just(String::new()),
                1 => "[a-z\u{1b}\u{7}é/?=.:]{0,20}",
                1 => "10\\.99\\.0\\.[0-9]{1,3}:[0-9]{1,5}",
                1 => "x{70,100}",
            ]
        }

        fn opt_text() -> impl Strategy<Value = Option<String>> {
            prop::option::of(text())
        }

        fn count() -> impl Strategy<Value = u64> {
            prop_oneof![Just(0), Just(u64::MAX), 0..5000u64, any::<u64>()]
        }

        fn float() -> impl Strategy<Value = f64> {
            prop_oneof![
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                Just(-0.0),
                Just(1e300),
                Just(-3.0),
                0.0..2.0f64,
                any::<f64>(),
            ]
        }

        fn state() -> impl Strategy<Value = ChannelState> {
            prop_oneof![
                Just(ChannelState::Idle),
                Just(ChannelState::Starting),
                Just(ChannelState::Stale),
                Just(ChannelState::Vod),
                Just(ChannelState::Live),
            ]
        }

        fn origin() -> impl Strategy<Value = Option<OriginStatus>> {
            prop::option::of((any::<bool>(), opt_text(), count(), count(), count()).prop_map(
                |(healthy, last_error, since_s, segments_fetched, bytes)| OriginStatus {
                    healthy,
                    last_error,
                    since_s,
                    segments_fetched,
                    bytes,
                    variant: None,
                },
            ))
        }

        fn figures() -> impl Strategy<Value = Figures> {
            (prop::option::of(float()), prop::option::of(float()), prop::option::of(float())).prop_map(
                |(origin_fetches_per_segment, peer_efficiency, uplink_savings)| Figures {
                    origin_fetches_per_segment,
                    peer_efficiency,
                    uplink_savings,
                },
            )
        }

        fn traffic() -> impl Strategy<Value = Traffic> {
            (count(), count(), count(), count(), count(), count()).prop_map(|(o, p, t, s, d, v)| Traffic {
                bytes_from_origin: o,
                bytes_from_peers: p,
                bytes_to_tvs: t,
                segments_from_origin: s,
                origin_requests: s,
                distinct_segments: d,
                viewers: v,
            })
        }

        fn swarm_figures() -> impl Strategy<Value = SwarmFigures> {
            (traffic(), figures()).prop_map(|(traffic, figures)| SwarmFigures { traffic, figures })
        }

        fn box_status() -> impl Strategy<Value = BoxStatus> {
            (
                (text(), text(), text(), count()),
                (prop::collection::vec(text(), 0..3), any::<u16>(), text(), any::<bool>(), opt_text()),
            )
                .prop_map(
                    |(
                        (node_id, board, version, uptime_s),
                        (addresses, http_port, http, identifying, led),
                    )| {
                        BoxStatus {
                            node_id,
                            board,
                            version,
                            uptime_s,
                            addresses,
                            http_port,
                            http,
                            identifying,
                            led,
                            admin_networks: String::new(),
                        }
                    },
                )
        }

        fn peer(ids: Vec<String>) -> impl Strategy<Value = PeerStatus> {
            (
                (prop_oneof![prop::sample::select(ids), text()], text(), any::<bool>(), any::<bool>()),
                (
                    prop::option::of(float()),
                    prop::option::of(count()),
                    count(),
                    count(),
                    opt_text(),
                    opt_text(),
                ),
            )
                .prop_map(
                    |(
                        (node_id, address, alive, banned),
                        (rtt_ms, last_seen_ms_ago, bytes_in, bytes_out, http, board),
                    )| {
                        PeerStatus {
                            node_id,
                            address,
                            alive,
                            banned,
                            rtt_ms,
                            last_seen_ms_ago,
                            bytes_in,
                            bytes_out,
                            http,
                            board,
                        }
                    },
                )
        }

        fn channel(ids: Vec<String>) -> impl Strategy<Value = ChannelStatus> {
            (
                (prop_oneof![Just("live".to_owned()), Just("news".to_owned()), text()], text(), state()),
                (prop::option::of(prop::sample::select(ids.clone())), opt_text(), any::<bool>()),
                (prop::option::of(count()), count(), origin(), count()),
                (count(), count(), count(), figures()),
            )
                .prop_map(
                    |(
                        (id, name, state),
                        (ingester, standby, ingesting),
                        (bitrate_bps, segments_held, origin, viewers),
                        (bytes_from_origin, bytes_from_peers, bytes_to_tvs, figures),
                    )| ChannelStatus {
                        id,
                        name,
                        state,
                        ingester,
                        standby,
                        ingesting,
                        bitrate_bps,
                        segments_held,
                        origin,
                        viewers,
                        bytes_from_origin,
                        bytes_from_peers,
                        bytes_to_tvs,
                        figures,
                        ..ChannelStatus::default()
                    },
                )
        }

        fn asset() -> impl Strategy<Value = AssetStatus> {
            (
                (text(), opt_text(), count(), prop::option::of(count())),
                (any::<bool>(), count(), count(), any::<bool>()),
                prop::option::of((any::<bool>(), text(), opt_text())),
            )
                .prop_map(
                    |(
                        (channel, name, segments_known, segments_total),
                        (complete, segments_on_disk, bytes, whole_copy),
                        prefill,
                    )| {
                        AssetStatus {
                            channel,
                            name,
                            segments_known,
                            segments_total,
                            complete,
                            segments_on_disk,
                            bytes,
                            duration_s: 0.0,
                            whole_copy,
                            prefill: prefill.map(|(full, state, error)| PrefillStatus { full, state, error }),
                        }
                    },
                )
        }

        fn cache() -> impl Strategy<Value = Option<CacheStatus>> {
            prop::option::of(
                (
                    (count(), count(), count(), count(), count(), count()),
                    prop::collection::vec(asset(), 0..3),
                )
                    .prop_map(
                        |((used_bytes, cap_bytes, objects, evictions, corrupt, write_errors), assets)| {
                            CacheStatus {
                                disk: DiskStatus {
                                    used_bytes,
                                    cap_bytes,
                                    objects,
                                    evictions,
                                    corrupt,
                                    write_errors,
                                },
                                assets,
                                ..CacheStatus::default()
                            }
                        },
                    ),
            )
        }

        /// Node ids that recur across a status and its swarm report, so rows match up.
        fn ids() -> Vec<String> {
            ["0123456789abcdef", "fedcba9876543210", "<b>&'\"", ""].map(str::to_owned).to_vec()
        }

        pub(super) fn status() -> impl Strategy<Value = Status> {
            (
                (prop_oneof![prop::sample::select(ids()), text()], count(), box_status()),
                prop::collection::vec(peer(ids()), 0..4),
                prop::collection::vec(channel(ids()), 0..4),
                ((count(), count(), count()), cache()),
            )
                .prop_map(
                    |((node_id, uptime_s, this_box), peers, channels, ((used, budget, evicted), cache))| {
                        Status {
                            node_id,
                            uptime_s,
                            this_box,
                            peers,
                            channels,
                            store: StoreStatus {
                                used_bytes: used,
                                budget_bytes: budget,
                                evicted,
                                rejected: 0,
                            },
                            cache,
                            ..Status::default()
                        }
                    },
                )
        }

        fn swarm_box() -> impl Strategy<Value = SwarmBox> {
            (
                (prop::option::of(prop_oneof![prop::sample::select(ids()), text()]), opt_text(), text()),
                (any::<bool>(), prop::option::of(count()), count(), prop::collection::vec(text(), 0..3)),
                (count(), count(), count()),
            )
                .prop_map(
                    |((node_id, board, http), (reachable, uptime_s, viewers, ingesting), (o, p, t))| {
                        SwarmBox {
                            node_id,
                            board,
                            http,
                            reachable,
                            uptime_s,
                            viewers,
                            ingesting,
                            bytes_from_origin: o,
                            bytes_from_peers: p,
                            bytes_to_tvs: t,
                        }
                    },
                )
        }

        fn swarm_channel() -> impl Strategy<Value = SwarmChannel> {
            (
                prop_oneof![Just("live".to_owned()), Just("news".to_owned()), text()],
                opt_text(),
                state(),
                prop::option::of(prop::sample::select(ids())),
                origin(),
                swarm_figures(),
            )
                .prop_map(|(id, name, state, ingester, origin, figures)| SwarmChannel {
                    id,
                    name,
                    state,
                    ingester,
                    origin,
                    figures,
                })
        }

        pub(super) fn swarm() -> impl Strategy<Value = Option<SwarmReport>> {
            prop::option::of(
                (
                    prop::collection::vec(swarm_box(), 0..4),
                    prop::collection::vec(swarm_channel(), 0..4),
                    swarm_figures(),
                )
                    .prop_map(|(boxes, channels, totals)| SwarmReport {
                        boxes,
                        channels,
                        totals,
                    }),
            )
        }
    }
}
