//! The running box as the HTTP server sees it ([`crate::http::Backend`]): it asks the swarm
//! driver for windows, segments and status, counts TVs and the bytes they get, gathers the swarm
//! report from the peers' own `/api/status`, and takes admin actions.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::{json, Value};
use shoal_core::ChannelId;
use smol::channel::{bounded, Sender};

use crate::admin::AdminNetworks;
use crate::broadcast::relay::{relay_channel, RelayPolicy, RelayRefused};
use crate::broadcast::Encapsulation;
use crate::discovery::Discovery;
use crate::guide::GuideCache;
use crate::http::{AdminAction, Guide, Listing, StoredSegment, Watch};
use crate::origin::{Fetcher, OriginUrl};
use crate::swarm::{self, Command};
use crate::vod::{OriginFetch, Prefill, VodCache};

/// Most TV clients remembered per channel (the oldest are dropped beyond it).
const MAX_CLIENTS_PER_CHANNEL: usize = 4096;
/// How long an identify request makes the box blink.
const IDENTIFY_FOR: Duration = Duration::from_secs(60);
/// How long the swarm report waits for each peer's status.
const PEER_STATUS_TIMEOUT: Duration = Duration::from_millis(1500);
/// Largest peer status read.
const MAX_PEER_STATUS: usize = 1024 * 1024;
/// Most peers asked for the swarm report.
const MAX_PEERS_ASKED: usize = 64;

/// What never changes while the box runs.
#[derive(Clone, Debug)]
pub(crate) struct BoxIdentity {
    /// Board profile name.
    pub(crate) board: String,
    /// The HTTP port TVs and operators use.
    pub(crate) http_port: u16,
    /// The address the HTTP server is bound to, when it is one address (the demo's loopback)
    /// rather than every address.
    pub(crate) http_ip: Option<IpAddr>,
    /// When the box started.
    pub(crate) started: Instant,
}

/// How this box answers relay URLs (`/udp/…`, `/rtp/…`).
#[derive(Clone, Debug, Default)]
pub(crate) struct RelaySettings {
    /// What may be joined, and how many at once.
    pub(crate) policy: RelayPolicy,
    /// Target segment duration of relayed feeds.
    pub(crate) segment: Duration,
    /// Feeds the config lists as channels, by canonical URL: served as those channels.
    pub(crate) configured: BTreeMap<String, ChannelId>,
}

impl RelaySettings {
    /// The settings of `config`.
    pub(crate) fn of(config: &crate::config::Config) -> RelaySettings {
        let configured = config
            .channels
            .iter()
            .filter_map(|c| match crate::source::SourceKind::parse(&c.source, c.format) {
                Ok(crate::source::SourceKind::Ts(crate::broadcast::TsInput::Udp(input))) => {
                    // A relay URL names no interface: match the feed whatever the config's.
                    let input = crate::broadcast::UdpInput { interface: None, ..input };
                    Some((input.canonical(), c.channel_id()))
                }
                _ => None,
            })
            .collect();
        RelaySettings { policy: config.relay.clone(), segment: config.relay_segment, configured }
    }
}

/// TVs of one channel on this box.
#[derive(Debug, Default)]
struct ChannelTvs {
    /// Client address → when it last fetched something.
    clients: BTreeMap<IpAddr, Instant>,
    /// Segment bytes sent.
    bytes: u64,
}

/// The HTTP backend of a running box.
pub(crate) struct Backend {
    commands: Sender<Command>,
    discovery: Arc<Mutex<Option<Discovery>>>,
    lineup: Vec<Listing>,
    guide: Option<GuideCache>,
    identity: BoxIdentity,
    admin_networks: AdminNetworks,
    /// Asks peers for their status.
    fetcher: Fetcher,
    tvs: Mutex<BTreeMap<ChannelId, ChannelTvs>>,
    identify_until: crate::status_led::IdentifyRequest,
    led: Option<crate::status_led::Shown>,
    /// Where `POST /api/reload` goes: the daemon's main loop, which answers with what changed.
    reload: Option<Sender<Sender<String>>>,
    relay: RelaySettings,
    live: crate::broadcast::live::LiveFeeds,
    /// The disk tier for on-demand assets, and how segments missing from it are found.
    vod: Option<VodService>,
}

/// What answers for on-demand assets beyond the RAM store: this box's disk, the peers' disks,
/// the origin. Cheap to clone (a prefill runs on its own task).
#[derive(Clone)]
struct VodService {
    commands: Sender<Command>,
    cache: VodCache,
    /// How to fetch a segment of each HLS channel from its origin when no peer has it.
    sources: Arc<BTreeMap<ChannelId, OriginFetch>>,
    /// Asks peers for the objects on their disks.
    peer_fetcher: Fetcher,
}

/// What a backend is made of.
pub(crate) struct BackendParts {
    pub(crate) commands: Sender<Command>,
    pub(crate) discovery: Arc<Mutex<Option<Discovery>>>,
    pub(crate) lineup: Vec<Listing>,
    pub(crate) guide: Option<GuideCache>,
    pub(crate) identity: BoxIdentity,
    pub(crate) admin_networks: AdminNetworks,
    pub(crate) reload: Option<Sender<Sender<String>>>,
    /// Shared with the status LED task, which blinks while it is in the future.
    pub(crate) identify: crate::status_led::IdentifyRequest,
    /// What the LED shows (`None`: no LED task, as in the demo).
    pub(crate) led: Option<crate::status_led::Shown>,
    pub(crate) relay: RelaySettings,
    /// The feeds this box receives, for its TVs on `/ts` and `/udp`.
    pub(crate) live: crate::broadcast::live::LiveFeeds,
    /// The disk tier for on-demand assets (`None`: disabled).
    pub(crate) vod: Option<VodCache>,
    /// [`vod_sources`] of the config.
    pub(crate) vod_sources: BTreeMap<ChannelId, OriginFetch>,
}

/// How each HLS channel of `config` is fetched from its origin, for segments of an on-demand
/// asset that no peer holds any more.
pub(crate) fn vod_sources(
    config: &crate::config::Config,
    fetcher: &Fetcher,
) -> BTreeMap<ChannelId, OriginFetch> {
    config
        .channels
        .iter()
        .filter_map(|c| match crate::source::SourceKind::parse(&c.source, c.format) {
            Ok(crate::source::SourceKind::Hls(url)) => {
                let channel = c.channel_id();
                let source = crate::origin::hls::HlsSource {
                    channel,
                    name: c.id.clone(),
                    url,
                    max_bitrate: c.max_bitrate,
                };
                Some((channel, OriginFetch { source, fetcher: fetcher.clone() }))
            }
            _ => None,
        })
        .collect()
}

impl Backend {
    pub(crate) fn new(parts: BackendParts) -> Result<Backend, crate::origin::TrustError> {
        Ok(Backend {
            commands: parts.commands.clone(),
            discovery: parts.discovery,
            lineup: parts.lineup,
            guide: parts.guide,
            identity: parts.identity,
            admin_networks: parts.admin_networks,
            fetcher: Fetcher::new(None, PEER_STATUS_TIMEOUT)?,
            tvs: Mutex::new(BTreeMap::new()),
            identify_until: parts.identify,
            led: parts.led,
            reload: parts.reload,
            relay: parts.relay,
            live: parts.live,
            vod: match parts.vod {
                Some(cache) => Some(VodService {
                    commands: parts.commands.clone(),
                    cache,
                    sources: Arc::new(parts.vod_sources),
                    peer_fetcher: Fetcher::new(None, crate::vod::PEER_TIMEOUT)?,
                }),
                None => None,
            },
        })
    }

    /// Whether the box is blinking for a technician.
    pub(crate) fn identifying(&self) -> bool {
        self.identify_until.lock().ok().and_then(|u| *u).is_some_and(|until| Instant::now() < until)
    }

    /// The box's addresses: those of its up, non-loopback interfaces, IPv4 first.
    fn addresses(&self) -> Vec<IpAddr> {
        let mut addresses: Vec<IpAddr> = if_addrs::get_if_addrs()
            .map(|list| list.iter().filter(|i| !i.is_loopback()).map(|i| i.ip()).collect())
            .unwrap_or_default();
        addresses.sort_by_key(|a| (!a.is_ipv4(), *a));
        addresses
    }

    /// Adds what the HTTP side knows to the driver's status: the box, TVs per channel, the
    /// channels' lineup ids, discovery counters.
    fn complete_status(&self, status: &mut Value) {
        let now = Instant::now();
        // A box bound to one address (the demo's loopback) is reached there only.
        let addresses = self.identity.http_ip.map_or_else(|| self.addresses(), |ip| vec![ip]);
        let reachable =
            addresses.iter().find(|a| a.is_ipv4()).copied().unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let http = SocketAddr::new(self.identity.http_ip.unwrap_or(reachable), self.identity.http_port);
        let node_id = status.get("node_id").cloned().unwrap_or(Value::Null);
        let Some(object) = status.as_object_mut() else {
            return;
        };
        object.insert(
            "box".into(),
            json!({
                "node_id": node_id,
                "board": self.identity.board,
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_s": now.duration_since(self.identity.started).as_secs(),
                "addresses": addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "http_port": self.identity.http_port,
                "http": http.to_string(),
                "identifying": self.identifying(),
                "led": self.led.as_ref().and_then(|l| l.lock().ok().map(|s| *s)),
                "admin_networks": self.admin_networks.describe(),
            }),
        );
        let tvs = self.tvs.lock().map(|mut tvs| {
            let mut served = 0;
            let per_channel: BTreeMap<String, (usize, u64)> = tvs
                .iter_mut()
                .map(|(channel, c)| {
                    c.clients.retain(|_, seen| now.duration_since(*seen) <= swarm::VIEWER_TIMEOUT);
                    served += c.bytes;
                    (channel.to_string(), (c.clients.len(), c.bytes))
                })
                .collect();
            (per_channel, served)
        });
        let (per_channel, served) = tvs.unwrap_or_default();
        if let Some(channels) = object.get_mut("channels").and_then(Value::as_array_mut) {
            for c in channels.iter_mut() {
                let swarm_id = c.get("swarm_id").and_then(Value::as_str).unwrap_or("").to_owned();
                let id = self.lineup.iter().find(|l| l.channel.to_string() == swarm_id).map(|l| l.id.clone());
                let (viewers, bytes) = per_channel.get(&swarm_id).copied().unwrap_or_default();
                if let Some(c) = c.as_object_mut() {
                    c.insert("id".into(), json!(id));
                    c.insert("viewers".into(), json!(viewers));
                    c.insert("bytes_to_tvs".into(), json!(bytes));
                    // DESIGN.md §5's figures for this box alone (`/api/swarm` has the swarm's).
                    let at = |key: &str| c.get(key).and_then(Value::as_u64).unwrap_or(0);
                    let (origin, peers, distinct) =
                        (at("bytes_from_origin"), at("bytes_from_peers"), at("distinct_segments"));
                    let ratio = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
                    let figures = json!({
                        "origin_fetches_per_segment": ratio(at("segments_from_origin"), distinct),
                        "peer_efficiency": ratio(peers, peers + origin),
                        "uplink_savings": ratio(origin, bytes).map(|r| 1.0 - r),
                    });
                    c.insert("figures".into(), figures);
                }
            }
        }
        if let Some(counters) = object.get_mut("counters").and_then(Value::as_object_mut) {
            counters.insert("served_bytes".into(), served.into());
        }
        let discovery = self.discovery.lock().ok().and_then(|d| d.as_ref().map(Discovery::counters));
        if let Some(d) = discovery {
            object.insert(
                "discovery".into(),
                json!({
                    "found": d.found,
                    "lost": d.lost,
                    "ignored_foreign_key": d.ignored_foreign_key,
                    "ignored_bad_txt": d.ignored_bad_txt,
                    "ignored_version": d.ignored_version,
                    "errors": d.errors,
                }),
            );
            for path in ["/counters/rejected", "/security/rejected"] {
                if let Some(rejected) = object_at(status, path) {
                    rejected.insert("foreign_key".into(), d.ignored_foreign_key.into());
                }
            }
        }
    }
}

/// A peer's status, if it answers in time.
async fn peer_status(fetcher: &Fetcher, http: &str) -> Option<Value> {
    let url = OriginUrl::parse(&format!("http://{http}/api/status")).ok()?;
    let fetched = fetcher.session().get(&url, None, MAX_PEER_STATUS).await.ok()?;
    serde_json::from_slice(&fetched.bytes).ok()
}

fn object_at<'a>(value: &'a mut Value, pointer: &str) -> Option<&'a mut serde_json::Map<String, Value>> {
    value.pointer_mut(pointer).and_then(Value::as_object_mut)
}

impl VodService {
    /// A segment of an asset from this box's disk, a peer, or the origin.
    async fn segment(&self, channel: ChannelId, seq: u64) -> Option<(Vec<u8>, crate::vod::Entry)> {
        let (reply, answer) = bounded(1);
        self.commands.send(Command::VodPeers { channel, seq, reply }).await.ok()?;
        let peers = answer.recv().await.ok()?;
        self.cache.segment(channel, seq, &peers, &self.peer_fetcher, self.sources.get(&channel)).await
    }

    /// `shoal prefill`: brings `channel`'s asset onto the LAN (and, if `full`, whole onto this
    /// box), in the background; [`VodCache::status`] shows how far it got. A prefill asked
    /// again replaces the running one.
    fn start_prefill(&self, channel: ChannelId, full: bool) -> Result<(), String> {
        if !self.sources.contains_key(&channel) {
            return Err("only HLS channels can be prefilled".to_owned());
        }
        let generation = self.cache.prefill_started(channel, full);
        let service = self.clone();
        smol::spawn(async move {
            let Some(outcome) = service.prefill(channel, full, generation).await else {
                return;
            };
            match &outcome {
                Prefill::Failed(why) => log::warn!("prefill of {channel}: {why}"),
                _ => log::info!("prefill of {channel}: done"),
            }
            service.cache.prefill_ended(channel, generation, outcome);
        })
        .detach();
        Ok(())
    }

    /// How prefill `generation` ends; `None` if a later prefill replaced it.
    async fn prefill(&self, channel: ChannelId, full: bool, generation: u64) -> Option<Prefill> {
        let failed = |why: &str| Some(Prefill::Failed(why.to_owned()));
        let deadline = Instant::now() + PREFILL_LIMIT;
        let mut known = 0;
        let mut progress_at = Instant::now();
        // Demand the channel (as a TV would) until the swarm has published the whole asset.
        while !self.cache.is_complete(channel) {
            if !self.cache.prefill_current(channel, generation) {
                return None;
            }
            let now = Instant::now();
            if now >= deadline {
                return failed("the asset did not arrive in time");
            }
            let catalogued = self.cache.catalog(channel).map_or(0, |c| c.len());
            if catalogued > known {
                (known, progress_at) = (catalogued, now);
            } else if now.duration_since(progress_at) > PREFILL_STALL {
                return Some(Prefill::Failed(format!(
                    "no new segment for {} s ({known} arrived): the origin fails or the swarm cannot reach it",
                    PREFILL_STALL.as_secs()
                )));
            }
            if known == 0 && self.is_live(channel).await {
                return failed("a live channel: only on-demand assets (EXT-X-ENDLIST) can be prefilled");
            }
            if self.commands.send(Command::Viewer { channel, segments: true }).await.is_err() {
                return failed("the box is shutting down");
            }
            smol::Timer::after(Duration::from_millis(500)).await;
        }
        if !full {
            return Some(Prefill::Done);
        }
        let size: u64 =
            self.cache.catalog(channel).map_or(0, |c| c.iter().map(|(_, e)| u64::from(e.len)).sum());
        let cap = self.cache.cap();
        if size > cap {
            return Some(Prefill::Failed(format!(
                "the asset ({} MiB) is larger than this box's cache (cache.max_mb = {})",
                size >> 20,
                cap >> 20
            )));
        }
        // Segments that went by before `--full` (or were evicted since): copy them from the LAN.
        for seq in self.cache.missing(channel).await {
            if !self.cache.prefill_current(channel, generation) {
                return None;
            }
            if Instant::now() >= deadline {
                return failed("copying the asset took too long");
            }
            if self.segment(channel, seq).await.is_none() {
                return Some(Prefill::Failed(format!(
                    "segment {seq} is on no box and the origin did not give it"
                )));
            }
        }
        // A copy that did not stay (a full disk, other assets crowding it out) is not whole.
        let missing = self.cache.missing(channel).await.len();
        if missing > 0 {
            return Some(Prefill::Failed(format!(
                "{missing} segments could not be kept on this box's disk (full, or crowded out)"
            )));
        }
        Some(Prefill::Done)
    }

    /// Whether the RAM store holds segments of `channel` that belong to no asset.
    async fn is_live(&self, channel: ChannelId) -> bool {
        let (reply, answer) = bounded(1);
        if self.commands.send(Command::Window { channel, reply }).await.is_err() {
            return false;
        }
        answer.recv().await.is_ok_and(|w| w.segments.last().is_some_and(|s| !s.vod))
    }
}

/// The playlist window of an asset from its catalog.
fn catalog_window(catalog: &crate::vod::Catalog) -> swarm::Window {
    let segments = catalog
        .listable()
        .map(|(seq, e)| swarm::WindowSegment {
            seq,
            duration: e.duration(),
            discontinuity: e.discontinuity,
            init_len: e.init_len,
            init_id: e.init_id,
            vod: true,
            end_of_stream: e.end_of_stream,
        })
        .collect();
    swarm::Window { segments, newest_age: Some(Duration::ZERO) }
}

/// How long a prefill may take.
const PREFILL_LIMIT: Duration = Duration::from_secs(6 * 3600);
/// A prefill whose asset has not grown for this long fails.
const PREFILL_STALL: Duration = Duration::from_secs(120);

impl crate::http::Backend for Backend {
    fn lineup(&self) -> &[Listing] {
        &self.lineup
    }

    async fn window(&self, channel: ChannelId) -> Option<swarm::Window> {
        let (reply, answer) = bounded(1);
        self.commands.send(Command::Window { channel, reply }).await.ok()?;
        let window = answer.recv().await.ok()?;
        // An asset is listed whole from its catalog: the RAM store holds only a few of its
        // segments, the LAN holds them all.
        match self.vod.as_ref().and_then(|v| v.cache.catalog(channel)) {
            Some(catalog) => Some(catalog_window(&catalog)),
            None => Some(window),
        }
    }

    async fn segment(&self, channel: ChannelId, seq: u64) -> Option<StoredSegment> {
        let (reply, answer) = bounded(1);
        self.commands.send(Command::Segment { channel, seq, reply }).await.ok()?;
        if let Some(segment) = answer.recv().await.ok().flatten() {
            return Some(segment);
        }
        let vod = self.vod.as_ref()?;
        vod.cache.entry(channel, seq)?;
        let (bytes, entry) = vod.segment(channel, seq).await?;
        Some(StoredSegment { bytes: bytes.into(), init_len: entry.init_len as usize })
    }

    async fn object(&self, id: &str) -> Option<hyper::body::Bytes> {
        let id = shoal_disk::parse_hex(id)?;
        self.vod.as_ref()?.cache.object(id).await.map(Into::into)
    }

    async fn viewer(&self, channel: ChannelId, client: IpAddr, watch: Watch) {
        if let Ok(mut tvs) = self.tvs.lock() {
            let now = Instant::now();
            let clients = &mut tvs.entry(channel).or_default().clients;
            if clients.len() >= MAX_CLIENTS_PER_CHANNEL && !clients.contains_key(&client) {
                clients.retain(|_, seen| now.duration_since(*seen) <= swarm::VIEWER_TIMEOUT);
            }
            if clients.len() < MAX_CLIENTS_PER_CHANNEL || clients.contains_key(&client) {
                clients.insert(client, now);
            }
        }
        let segments = watch == Watch::Segments;
        let _ = self.commands.send(Command::Viewer { channel, segments }).await;
    }

    fn live(&self, channel: ChannelId) -> Option<smol::channel::Receiver<hyper::body::Bytes>> {
        self.live.subscribe(channel)
    }

    fn served(&self, channel: ChannelId, bytes: usize) {
        if let Ok(mut tvs) = self.tvs.lock() {
            tvs.entry(channel).or_default().bytes += bytes as u64;
        }
    }

    async fn relay(
        &self,
        encapsulation: Encapsulation,
        rest: &str,
    ) -> Result<ChannelId, (StatusCode, String)> {
        let input = self.relay.policy.check(encapsulation, rest).map_err(|e| {
            let status = match e {
                RelayRefused::Malformed => StatusCode::BAD_REQUEST,
                RelayRefused::Disabled | RelayRefused::NotAllowed(_) => StatusCode::FORBIDDEN,
                RelayRefused::TooMany(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            (status, e.to_string())
        })?;
        let channel = relay_channel(&input, self.relay.segment);
        let id =
            self.relay.configured.get(&input.canonical()).copied().unwrap_or_else(|| channel.channel_id());
        if self.relay.configured.contains_key(&input.canonical()) {
            return Ok(id);
        }
        let (reply, answer) = bounded(1);
        let gone = || (StatusCode::SERVICE_UNAVAILABLE, "the box is shutting down".to_owned());
        let command =
            Command::AddRelay { channel: Box::new(channel), max: self.relay.policy.max_joins, reply };
        self.commands.send(command).await.map_err(|_| gone())?;
        match answer.recv().await.map_err(|_| gone())? {
            Ok(()) => Ok(id),
            Err(why) => Err((StatusCode::SERVICE_UNAVAILABLE, why)),
        }
    }

    fn has_guide(&self) -> bool {
        self.guide.is_some()
    }

    async fn xmltv(&self) -> Option<Result<Guide, String>> {
        Some(self.guide.as_ref()?.get().await)
    }

    async fn status(&self) -> Option<Value> {
        let (reply, answer) = bounded(1);
        self.commands.send(Command::Status(reply)).await.ok()?;
        let mut status = answer.recv().await.ok()?;
        self.complete_status(&mut status);
        if let (Some(vod), Some(object)) = (&self.vod, status.as_object_mut()) {
            let names = self.lineup.iter().map(|l| (l.channel, l.id.clone())).collect();
            object.insert("cache".into(), vod.cache.status(&names).await);
        }
        Some(status)
    }

    async fn swarm(&self) -> Option<Value> {
        let own = crate::http::Backend::status(self).await?;
        let empty = Vec::new();
        let peers: Vec<String> = own
            .get("peers")
            .and_then(Value::as_array)
            .unwrap_or(&empty)
            .iter()
            .filter(|p| p.get("alive") == Some(&Value::Bool(true)))
            .filter_map(|p| p.get("http").and_then(Value::as_str).map(str::to_owned))
            .take(MAX_PEERS_ASKED)
            .collect();
        // Ask every peer at once (each answer is bounded by the fetcher's timeout).
        let tasks: Vec<_> = peers
            .into_iter()
            .map(|http| {
                let fetcher = self.fetcher.clone();
                smol::spawn(async move {
                    let status = peer_status(&fetcher, &http).await;
                    (http, status)
                })
            })
            .collect();
        let mut answers = Vec::with_capacity(tasks.len());
        for task in tasks {
            answers.push(task.await);
        }
        Some(swarm::swarm_report(&own, &answers))
    }

    fn is_admin(&self, client: IpAddr) -> bool {
        self.admin_networks.allows(client)
    }

    fn admin_networks(&self) -> String {
        self.admin_networks.describe()
    }

    async fn admin(&self, action: AdminAction) -> Result<Value, String> {
        match action {
            AdminAction::Identify => {
                let until = Instant::now() + IDENTIFY_FOR;
                if let Ok(mut slot) = self.identify_until.lock() {
                    *slot = Some(until);
                }
                log::info!("identify: blinking for {} s", IDENTIFY_FOR.as_secs());
                Ok(json!({ "identifying": true, "for_s": IDENTIFY_FOR.as_secs() }))
            }
            AdminAction::Reload => {
                let Some(reload) = &self.reload else {
                    return Err("this box has no config file to reload".to_owned());
                };
                let (reply, answer) = bounded(1);
                reload.send(reply).await.map_err(|_| "the box is shutting down".to_owned())?;
                let outcome = answer.recv().await.map_err(|_| "the box is shutting down".to_owned())?;
                Ok(json!({ "reloaded": true, "outcome": outcome }))
            }
            AdminAction::Prefill { channel, full } => {
                let listing = self
                    .lineup
                    .iter()
                    .find(|c| c.id == channel)
                    .ok_or_else(|| format!("no channel {channel:?} in the lineup"))?;
                let vod = self.vod.as_ref().ok_or("this box has no disk cache (cache.enabled = false)")?;
                vod.start_prefill(listing.channel, full)?;
                Ok(json!({ "prefilling": channel, "full": full }))
            }
            AdminAction::LiftBans => {
                let (reply, answer) = bounded(1);
                self.commands.send(Command::LiftBans(reply)).await.map_err(|_| "shutting down".to_owned())?;
                let lifted = answer.recv().await.map_err(|_| "shutting down".to_owned())?;
                Ok(json!({ "lifted": lifted }))
            }
        }
    }
}
