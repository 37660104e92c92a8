//! The running box as the HTTP server sees it ([`crate::http::Backend`]): it reads the windows
//! the driver publishes, asks the driver for segments and status, counts the bytes TVs get,
//! gathers the swarm report from the peers' own `/api/status`, and takes admin actions.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::{json, Value};
use shoal_core::ChannelId;
use smol::channel::{bounded, Sender};
use smol::future::FutureExt as _;

use crate::admin::AdminNetworks;
use crate::broadcast::live::LiveFeeds;
use crate::discovery::Discovery;
use crate::guide::GuideCache;
use crate::http::AdminAction;
use crate::lineup::relay::{relay_channel, RelayPolicy, RelayRefused};
use crate::lineup::{Channel, Encapsulation, OriginUrl, SourceKind, TsInput, UdpInput};
use crate::model::status::{BoxStatus, Figures, Status, SwarmReport, Traffic};
use crate::model::{Guide, StoredSegment, Watch, Window, WindowSegment, Windows};
use crate::origin::Fetcher;
use crate::swarm::Command;
use crate::vod::{OriginFetch, Prefill, VodCache};
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
            .filter_map(|c| match &c.kind {
                SourceKind::Ts(TsInput::Udp(input)) => {
                    // A relay URL names no interface: match the feed whatever the config's.
                    let input = UdpInput { interface: None, ..input.clone() };
                    Some((input.canonical(), c.channel_id()))
                }
                _ => None,
            })
            .collect();
        RelaySettings { policy: config.relay.clone(), segment: config.relay_segment, configured }
    }
}

/// The HTTP backend of a running box.
pub(crate) struct Backend {
    commands: Sender<Command>,
    discovery: Arc<Mutex<Option<Discovery>>>,
    lineup: Vec<Channel>,
    guide: Option<GuideCache>,
    identity: BoxIdentity,
    admin_networks: AdminNetworks,
    /// Asks peers for their status.
    fetcher: Fetcher,
    /// Segment bytes sent to TVs, per channel (who the TVs are is the driver's to count).
    served: Mutex<BTreeMap<ChannelId, u64>>,
    identify_until: crate::status_led::IdentifyRequest,
    led: Option<crate::status_led::Shown>,
    /// Where `POST /api/reload` goes: the daemon's main loop, which answers with what changed.
    reload: Option<Sender<Sender<String>>>,
    relay: RelaySettings,
    live: LiveFeeds,
    windows: Windows,
    /// The disk tier for on-demand assets, and how segments missing from it are found.
    vod: Option<VodService>,
}

/// What answers for on-demand assets beyond the RAM store: this box's disk, the peers' disks,
/// the origin. Cheap to clone (a prefill runs on its own task).
#[derive(Clone)]
struct VodService {
    commands: Sender<Command>,
    windows: Windows,
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
    pub(crate) lineup: Vec<Channel>,
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
    pub(crate) live: LiveFeeds,
    /// The windows the driver publishes.
    pub(crate) windows: Windows,
    /// The disk tier for on-demand assets (`None`: disabled).
    pub(crate) vod: Option<VodCache>,
    /// [`vod_sources`] of the config.
    pub(crate) vod_sources: BTreeMap<ChannelId, OriginFetch>,
}

/// How each HLS channel of `config` is fetched from its origin, for segments of an on-demand
/// asset that no peer holds any more. Their origin requests are counted in `report`, the
/// driver's source events, as the ingest's are.
pub(crate) fn vod_sources(
    config: &crate::config::Config,
    fetcher: &Fetcher,
    report: &crate::model::SourceSink,
) -> BTreeMap<ChannelId, OriginFetch> {
    config
        .channels
        .iter()
        .filter_map(|c| match &c.kind {
            SourceKind::Hls(url) => {
                let channel = c.channel_id();
                let source = crate::origin::hls::HlsSource {
                    channel,
                    name: c.id.clone(),
                    url: url.clone(),
                    max_bitrate: c.max_bitrate,
                };
                Some((channel, OriginFetch { source, fetcher: fetcher.clone(), report: report.clone() }))
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
            served: Mutex::new(BTreeMap::new()),
            identify_until: parts.identify,
            led: parts.led,
            reload: parts.reload,
            relay: parts.relay,
            live: parts.live,
            windows: parts.windows.clone(),
            vod: match parts.vod {
                Some(cache) => Some(VodService {
                    commands: parts.commands.clone(),
                    windows: parts.windows.clone(),
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

    /// Adds what the HTTP side knows to the driver's status: the box, the bytes TVs got (and
    /// the figures that depend on them), discovery's counters.
    fn complete_status(&self, status: &mut Status) {
        let now = Instant::now();
        // A box bound to one address (the demo's loopback) is reached there only.
        let addresses = self.identity.http_ip.map_or_else(|| self.addresses(), |ip| vec![ip]);
        let reachable =
            addresses.iter().find(|a| a.is_ipv4()).copied().unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let http = SocketAddr::new(self.identity.http_ip.unwrap_or(reachable), self.identity.http_port);
        status.this_box = BoxStatus {
            node_id: status.node_id.clone(),
            board: self.identity.board.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_s: now.duration_since(self.identity.started).as_secs(),
            addresses: addresses.iter().map(ToString::to_string).collect(),
            http_port: self.identity.http_port,
            http: http.to_string(),
            identifying: self.identifying(),
            led: self.led.as_ref().and_then(|l| l.lock().ok().map(|s| (*s).to_owned())),
            admin_networks: self.admin_networks.describe(),
        };
        // By swarm id, as the status names channels (relayed feeds too).
        let served: BTreeMap<String, u64> = self
            .served
            .lock()
            .map(|s| s.iter().map(|(id, &bytes)| (id.to_string(), bytes)).collect())
            .unwrap_or_default();
        for c in &mut status.channels {
            c.bytes_to_tvs = served.get(&c.swarm_id).copied().unwrap_or(0);
            c.figures = Figures::new(&Traffic::of(c));
        }
        status.counters.served_bytes = served.values().sum();
        let discovery = self.discovery.lock().ok().and_then(|d| d.as_ref().map(Discovery::counters));
        if let Some(d) = discovery {
            status.discovery = Some(d);
            status.counters.rejected.foreign_key = Some(d.ignored_foreign_key);
            status.security.rejected.foreign_key = Some(d.ignored_foreign_key);
        }
    }
}

/// A peer's status, if it answers in time.
async fn peer_status(fetcher: &Fetcher, http: &str) -> Option<Status> {
    let url = OriginUrl::parse(&format!("http://{http}/api/status")).ok()?;
    let fetched = fetcher.session().get(&url, None, MAX_PEER_STATUS).await.ok()?;
    read_peer_status(&fetched.bytes)
}

/// A peer's answer as a status: a JSON object that reads as one (serde would take an array for
/// a struct too, and count a box that answered `[]` as reachable and empty).
fn read_peer_status(body: &[u8]) -> Option<Status> {
    let object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    object.then(|| serde_json::from_slice(body).ok()).flatten()
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
            let demand = Command::Viewer { channel, tv: None, segments: true };
            if self.commands.send(demand).await.is_err() {
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
        self.windows.get(channel).is_some_and(|w| w.segments.last().is_some_and(|s| !s.vod))
    }
}

/// The playlist window of an asset from its catalog.
fn catalog_window(catalog: &crate::vod::Catalog) -> Window {
    let segments = catalog
        .listable()
        .map(|(seq, e)| WindowSegment {
            seq,
            duration: e.duration(),
            discontinuity: e.discontinuity,
            init_len: e.init_len,
            init_id: e.init_id,
            vod: true,
            end_of_stream: e.end_of_stream,
        })
        .collect();
    // Never stale: an asset's age says nothing about its origin.
    Window { segments, newest_at: Some(Instant::now()), origin_failing: false }
}

/// How long a prefill may take.
const PREFILL_LIMIT: Duration = Duration::from_secs(6 * 3600);
/// A prefill whose asset has not grown for this long fails.
const PREFILL_STALL: Duration = Duration::from_secs(120);

impl crate::http::Backend for Backend {
    fn lineup(&self) -> &[Channel] {
        &self.lineup
    }

    fn window(&self, channel: ChannelId) -> Option<Arc<Window>> {
        // An asset is listed whole from its catalog: the RAM store holds only a few of its
        // segments, the LAN holds them all.
        match self.vod.as_ref().and_then(|v| v.cache.catalog(channel)) {
            Some(catalog) => Some(Arc::new(catalog_window(&catalog))),
            None => self.windows.get(channel),
        }
    }

    fn changed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let window = self.windows.listen();
        let feed = self.live.listen();
        window.or(feed)
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
        let segments = watch == Watch::Segments;
        let _ = self.commands.send(Command::Viewer { channel, tv: Some(client), segments }).await;
    }

    fn live(&self, channel: ChannelId) -> Option<smol::channel::Receiver<hyper::body::Bytes>> {
        self.live.subscribe(channel)
    }

    fn served(&self, channel: ChannelId, bytes: usize) {
        if let Ok(mut served) = self.served.lock() {
            *served.entry(channel).or_default() += bytes as u64;
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

    async fn status(&self) -> Option<Status> {
        let (reply, answer) = bounded(1);
        self.commands.send(Command::Status(reply)).await.ok()?;
        let mut status = answer.recv().await.ok()?;
        self.complete_status(&mut status);
        if let Some(vod) = &self.vod {
            let names = self.lineup.iter().map(|l| (l.channel_id(), l.id.clone())).collect();
            status.cache = Some(vod.cache.status(&names).await);
        }
        Some(status)
    }

    async fn swarm(&self) -> Option<SwarmReport> {
        let own = crate::http::Backend::status(self).await?;
        let peers: Vec<String> =
            own.alive_peers().filter_map(|p| p.http.clone()).take(MAX_PEERS_ASKED).collect();
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
        Some(crate::model::status::swarm_report(&own, &answers))
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
                vod.start_prefill(listing.channel_id(), full)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_status_is_an_object_that_reads_as_one() {
        assert!(read_peer_status(br#"{"node_id": "ab", "channels": []}"#).is_some());
        for garbage in [&b"[]"[..], b"[1, 2]", b"null", b"7", b"\"status\"", b"{\"channels\": 5}", b"<html>"]
        {
            assert!(read_peer_status(garbage).is_none(), "{:?}", String::from_utf8_lossy(garbage));
        }
    }
}
