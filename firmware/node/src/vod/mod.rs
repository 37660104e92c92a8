//! The on-demand tier: assets fetched once per LAN, kept on disk across restarts, served by
//! any box.
//!
//! The elected ingester fetches a VOD asset (its playlist has `EXT-X-ENDLIST`) from the origin
//! once and publishes it segment by segment, paced so every carrier keeps up (see
//! [`crate::model::VOD_IN_FLIGHT`]). Every carrier receives every segment through the swarm and records it in
//! the asset's [`Catalog`]; its disk ([`shoal_disk::DiskTier`]) keeps only its *share* — the
//! segments for which it is among the [`REPLICAS`] highest rendezvous scores of the carriers —
//! unless the channel is kept whole (`shoal prefill --full`). So an asset far larger than any
//! box's RAM (or disk) lives on the LAN, each segment on two boxes.
//!
//! A TV's request for a segment is answered from the RAM store, else this box's disk, else a
//! peer's disk over HTTP (`/cache/<content id>`, the owners first), else — only if no peer
//! has it — the origin. Bytes from a peer or the origin are served only if they hash to the
//! content id of the signed manifest the catalog recorded, and are then kept on this box's
//! disk as a cache (least recently used first out).
//!
//! On disk: the objects, and one small catalog file per asset, rewritten (temp + rename) every
//! [`SAVE_EVERY`] new segments and when the asset completes: few writes, for SD cards. After a
//! restart the catalogs and the objects are back, and a channel whose catalog is complete is
//! served without asking the swarm, or the origin, for anything: its segments are verified
//! against their content ids when read.

pub mod catalog;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sha2::{Digest, Sha256};
use shoal_core::{ChannelId, NodeId};
use shoal_disk::{content_id, to_hex, ContentId, DiskError, DiskTier, ReadOutcome};

pub use catalog::{Catalog, Entry};

use crate::lineup::OriginUrl;
use crate::model::init_id;
use crate::model::status::{AssetStatus, CacheCounters, CacheStatus, DiskStatus, PrefillStatus};
use crate::origin::Fetcher;

/// Boxes whose disks keep each segment of an asset (by rendezvous score): one can be away.
pub const REPLICAS: usize = 2;
/// A catalog is saved after this many new segments (and when the asset is complete).
const SAVE_EVERY: usize = 64;
/// Largest object a peer may send (the swarm's own segment limit).
const MAX_OBJECT: usize = shoal_core::manifest::MAX_SEGMENT_LEN;
/// Bytes of segments waiting to be written to disk at most; beyond it a segment is catalogued
/// but not kept (a slow disk must not hold the asset in memory instead).
pub const MAX_PENDING_WRITES: usize = 32 << 20;
/// How long a request waits for another request's fetch of the same segment.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(15);
/// How long a peer has to answer for one object.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(5);

/// What `shoal prefill` asked of a channel, and how far it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prefill {
    /// Waiting for the asset to arrive (and, for `--full`, copying the missing segments).
    Running,
    /// Every segment is on the LAN (and, for `--full`, on this box).
    Done,
    /// Gave up: why.
    Failed(String),
}

struct State {
    catalogs: BTreeMap<ChannelId, Catalog>,
    /// Channels kept whole on this box.
    full: BTreeSet<ChannelId>,
    /// New catalog entries not yet saved, per channel.
    unsaved: BTreeMap<ChannelId, usize>,
    /// Per channel: the prefill asked last (its generation, whether whole, how far).
    prefills: BTreeMap<ChannelId, PrefillState>,
    /// Bumped for every prefill started: a superseded prefill task sees it and stops.
    prefill_generation: u64,
    /// Bytes handed to blocking threads for writing and not yet written.
    pending_write_bytes: usize,
    /// Segments being fetched from a peer or the origin right now: a second TV asking for
    /// one waits for that fetch instead of starting another.
    in_flight: BTreeSet<(ChannelId, u64)>,
    /// Per channel: how many entries its catalog had when it was last written, so a slower,
    /// older save never overwrites a newer one.
    saved_len: BTreeMap<ChannelId, usize>,
    counters: CacheCounters,
}

/// A prefill's settings and state.
#[derive(Clone, Debug)]
struct PrefillState {
    generation: u64,
    full: bool,
    outcome: Prefill,
}

/// The on-demand tier of one box: its disk and its catalogs. Cheap to clone (shared).
#[derive(Clone)]
pub struct VodCache {
    /// Locked only on blocking threads (`smol::unblock`): disk I/O never stalls the executor.
    disk: Arc<Mutex<DiskTier>>,
    state: Arc<Mutex<State>>,
    /// Catalog saves one at a time, so they land in the order they were taken.
    save_lock: Arc<smol::lock::Mutex<()>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock is a bug elsewhere; the data is still consistent enough
    // to serve (every operation leaves it valid between statements).
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn catalog_name(channel: ChannelId) -> String {
    format!("catalog-{channel}")
}

impl VodCache {
    /// Opens the disk tier in `dir` (at most `cap` bytes of objects) and loads the catalogs
    /// stored there. A catalog that cannot be read is dropped with a warning (the asset is
    /// fetched again when watched).
    pub fn open(dir: &Path, cap: u64) -> Result<VodCache, DiskError> {
        let disk = DiskTier::open(dir, cap)?;
        let mut catalogs = BTreeMap::new();
        for name in disk.meta_names()? {
            let Some(hex) = name.strip_prefix("catalog-") else { continue };
            let Some(channel) = parse_channel(hex) else { continue };
            match disk.get_meta(&name) {
                Ok(Some(bytes)) => match Catalog::decode(&bytes) {
                    Ok(catalog) => {
                        log::info!(
                            "cache: asset {channel}: {} segments known{}",
                            catalog.len(),
                            if catalog.is_complete() { ", complete" } else { "" }
                        );
                        catalogs.insert(channel, catalog);
                    }
                    Err(e) => {
                        log::warn!("cache: dropping the catalog of {channel}: {e}");
                        let _ = disk.remove_meta(&name);
                    }
                },
                Ok(None) => {}
                Err(e) => log::warn!("cache: cannot read the catalog of {channel}: {e}"),
            }
        }
        log::info!(
            "cache: {} objects, {} of {} MiB used, in {}",
            disk.len(),
            disk.used() >> 20,
            disk.cap() >> 20,
            disk.dir().display()
        );
        Ok(VodCache {
            disk: Arc::new(Mutex::new(disk)),
            state: Arc::new(Mutex::new(State {
                catalogs,
                full: BTreeSet::new(),
                unsaved: BTreeMap::new(),
                prefills: BTreeMap::new(),
                prefill_generation: 0,
                pending_write_bytes: 0,
                in_flight: BTreeSet::new(),
                saved_len: BTreeMap::new(),
                counters: CacheCounters::default(),
            })),
            save_lock: Arc::new(smol::lock::Mutex::new(())),
        })
    }

    /// Whether every segment of `channel`'s asset is in its catalog: the box can list it, and
    /// serve it from the LAN, without the origin.
    pub fn is_complete(&self, channel: ChannelId) -> bool {
        lock(&self.state).catalogs.get(&channel).is_some_and(Catalog::is_complete)
    }

    /// The catalog entry of a segment.
    pub fn entry(&self, channel: ChannelId, seq: u64) -> Option<Entry> {
        lock(&self.state).catalogs.get(&channel).and_then(|c| c.get(seq).copied())
    }

    /// The last segment of the unbroken run `channel`'s catalog lists from its first.
    pub fn last_listed(&self, channel: ChannelId) -> Option<u64> {
        lock(&self.state).catalogs.get(&channel).and_then(|c| c.listable().last().map(|(s, _)| s))
    }

    /// A copy of `channel`'s catalog (for a playlist), if it knows any segment.
    pub fn catalog(&self, channel: ChannelId) -> Option<Catalog> {
        lock(&self.state).catalogs.get(&channel).filter(|c| !c.is_empty()).cloned()
    }

    /// Keep every segment of `channel` on this box's disk from now on.
    pub fn keep_whole(&self, channel: ChannelId) {
        lock(&self.state).full.insert(channel);
    }

    /// Whether this box keeps `channel` whole.
    pub fn keeps_whole(&self, channel: ChannelId) -> bool {
        lock(&self.state).full.contains(&channel)
    }

    /// The counters.
    pub fn counters(&self) -> CacheCounters {
        lock(&self.state).counters
    }

    /// Records a segment of an asset that this box completed (from the swarm or its own
    /// ingest), and keeps its bytes on disk if `share` says this box is one of its owners or the
    /// channel is kept whole. Hashing and writing run on a blocking thread.
    pub async fn record(
        &self,
        channel: ChannelId,
        seq: u64,
        manifest: &shoal_core::Manifest,
        bytes: Arc<Vec<u8>>,
        share: bool,
    ) {
        let len = bytes.len();
        let keep = (share || self.keeps_whole(channel)) && {
            let mut state = lock(&self.state);
            if state.pending_write_bytes + len > MAX_PENDING_WRITES {
                state.counters.writes_skipped += 1;
                false
            } else {
                state.pending_write_bytes += len;
                true
            }
        };
        let init_len = (manifest.init_len as usize).min(len);
        let disk = self.disk.clone();
        let (id, init_id, written) = smol::unblock(move || {
            let id = content_id(&bytes);
            let init_id = init_id(&bytes[..init_len]);
            let written = keep.then(|| store_object(&disk, &id, &bytes));
            (id, init_id, written)
        })
        .await;
        let entry = Entry {
            duration_us: manifest.duration_us,
            discontinuity: manifest.discontinuity,
            end_of_stream: manifest.end_of_stream,
            len: manifest.length,
            init_len: manifest.init_len,
            init_id,
            id,
        };
        let save = {
            let mut state = lock(&self.state);
            if keep {
                state.pending_write_bytes -= len;
            }
            match written {
                Some(Err(e)) => {
                    state.counters.disk_errors += 1;
                    log::warn!("cache: could not keep segment {seq} of {channel}: {e}");
                }
                Some(Ok(shoal_disk::Put::Stored { .. })) => state.counters.kept += 1,
                Some(Ok(shoal_disk::Put::Present)) | None => {}
            }
            let catalog = state.catalogs.entry(channel).or_default();
            if !catalog.insert(seq, entry) {
                return;
            }
            let complete = catalog.is_complete();
            state.counters.recorded += 1;
            let unsaved = state.unsaved.entry(channel).or_default();
            *unsaved += 1;
            let due = *unsaved >= SAVE_EVERY || complete;
            if due {
                *unsaved = 0;
            }
            due.then(|| state.catalogs[&channel].clone())
        };
        if let Some(catalog) = save {
            self.save(channel, catalog).await;
        }
    }

    /// Writes a copy of `channel`'s catalog (temp + rename), unless a save of a longer one
    /// already landed (saves are taken in order but could finish out of it). A failed save is
    /// retried at the next new segment, or at shutdown.
    async fn save(&self, channel: ChannelId, catalog: Catalog) {
        let _turn = self.save_lock.lock().await;
        let len = catalog.len();
        if lock(&self.state).saved_len.get(&channel).is_some_and(|&saved| saved >= len) {
            return;
        }
        let disk = self.disk.clone();
        let encoded = catalog.encode();
        let result = smol::unblock(move || lock(&disk).put_meta(&catalog_name(channel), &encoded)).await;
        let mut state = lock(&self.state);
        match result {
            Ok(()) => {
                state.saved_len.insert(channel, len);
            }
            Err(e) => {
                state.counters.disk_errors += 1;
                state.unsaved.insert(channel, SAVE_EVERY);
                log::warn!("cache: could not save the catalog of {channel}: {e}");
            }
        }
    }

    /// Saves every catalog with unsaved entries (at shutdown).
    pub async fn save_all(&self) {
        let pending: Vec<(ChannelId, Catalog)> = {
            let mut state = lock(&self.state);
            let channels: Vec<ChannelId> =
                state.unsaved.iter().filter(|(_, &n)| n > 0).map(|(&c, _)| c).collect();
            channels
                .into_iter()
                .filter_map(|c| {
                    state.unsaved.insert(c, 0);
                    state.catalogs.get(&c).map(|cat| (c, cat.clone()))
                })
                .collect()
        };
        for (channel, catalog) in pending {
            self.save(channel, catalog).await;
        }
    }

    /// An object from this box's disk, verified (a torn or rotten file is dropped and `None`).
    /// The read and the hash run outside the disk's lock: other requests go on meanwhile.
    pub async fn object(&self, id: ContentId) -> Option<Vec<u8>> {
        let disk = self.disk.clone();
        let outcome = smol::unblock(move || {
            let object = lock(&disk).lookup(&id)?;
            let outcome = DiskTier::read_verified(&object, &id);
            match &outcome {
                ReadOutcome::Ok(_) => lock(&disk).touch(&id),
                ReadOutcome::Corrupt => lock(&disk).forget_corrupt(&id),
                ReadOutcome::Err(_) => {}
            }
            Some(outcome)
        })
        .await?;
        match outcome {
            ReadOutcome::Ok(bytes) => Some(bytes),
            ReadOutcome::Corrupt => {
                log::warn!("cache: {} failed its hash on disk: dropped", to_hex(&id));
                None
            }
            ReadOutcome::Err(e) => {
                lock(&self.state).counters.disk_errors += 1;
                log::warn!("cache: reading {}: {e}", to_hex(&id));
                None
            }
        }
    }

    /// Keeps bytes fetched from elsewhere (already verified) on this box's disk.
    async fn keep(&self, id: ContentId, bytes: Vec<u8>) {
        let disk = self.disk.clone();
        if let Err(e) = smol::unblock(move || store_object(&disk, &id, &bytes)).await {
            lock(&self.state).counters.disk_errors += 1;
            log::warn!("cache: could not keep {}: {e}", to_hex(&id));
        }
    }

    /// Segment `seq` of `channel` when the RAM store lacks it: from this box's disk, else a
    /// peer (`peers`, owners first, their HTTP addresses), else the origin through `origin`.
    /// `None` if the catalog does not know the segment or nobody could give bytes that hash
    /// to its content id.
    pub async fn segment(
        &self,
        channel: ChannelId,
        seq: u64,
        peers: &[SocketAddr],
        peer_fetcher: &Fetcher,
        origin: Option<&OriginFetch>,
    ) -> Option<(Vec<u8>, Entry)> {
        let entry = self.entry(channel, seq)?;
        if let Some(bytes) = self.object(entry.id).await {
            lock(&self.state).counters.disk_hits += 1;
            return Some((bytes, entry));
        }
        // One fetch per segment at a time: a TV asking while another's fetch runs waits for it
        // and reads what it kept.
        let _fetching = match self.claim(channel, seq).await {
            Claim::Mine(guard) => guard,
            Claim::Done => {
                if let Some(bytes) = self.object(entry.id).await {
                    lock(&self.state).counters.disk_hits += 1;
                    return Some((bytes, entry));
                }
                self.claim_now(channel, seq)?
            }
        };
        if let Some(bytes) = self.fetch_from_peers(entry.id, peers, peer_fetcher).await {
            lock(&self.state).counters.peer_fetches += 1;
            self.keep(entry.id, bytes.clone()).await;
            return Some((bytes, entry));
        }
        let origin = origin?;
        match origin.fetch(seq).await {
            Ok(bytes) if content_id(&bytes) == entry.id => {
                lock(&self.state).counters.origin_fetches += 1;
                log::info!("cache: segment {seq} of {channel} was on no peer: fetched from the origin");
                self.keep(entry.id, bytes.clone()).await;
                Some((bytes, entry))
            }
            Ok(_) => {
                lock(&self.state).counters.bad_objects += 1;
                log::warn!(
                    "cache: the origin's segment {seq} of {channel} differs from the one the swarm published"
                );
                None
            }
            Err(e) => {
                log::warn!("cache: segment {seq} of {channel} from the origin: {e}");
                None
            }
        }
    }

    /// Waits until nobody else fetches segment `seq` of `channel`, then claims it, or says the
    /// other fetch finished (the caller looks at the disk again).
    async fn claim(&self, channel: ChannelId, seq: u64) -> Claim {
        if let Some(guard) = self.claim_now(channel, seq) {
            return Claim::Mine(guard);
        }
        let deadline = std::time::Instant::now() + IN_FLIGHT_WAIT;
        while std::time::Instant::now() < deadline {
            smol::Timer::after(Duration::from_millis(20)).await;
            if !lock(&self.state).in_flight.contains(&(channel, seq)) {
                return Claim::Done;
            }
        }
        Claim::Done
    }

    fn claim_now(&self, channel: ChannelId, seq: u64) -> Option<InFlight> {
        let fresh = lock(&self.state).in_flight.insert((channel, seq));
        fresh.then(|| InFlight { state: self.state.clone(), key: (channel, seq) })
    }

    /// Asks each peer in turn for an object; the first answer that hashes right.
    async fn fetch_from_peers(
        &self,
        id: ContentId,
        peers: &[SocketAddr],
        fetcher: &Fetcher,
    ) -> Option<Vec<u8>> {
        let hex = to_hex(&id);
        let mut session = fetcher.session();
        for peer in peers {
            let Ok(url) = OriginUrl::parse(&format!("http://{peer}/cache/{hex}")) else { continue };
            match session.get(&url, None, MAX_OBJECT).await {
                Ok(fetched) if content_id(&fetched.bytes) == id => return Some(fetched.bytes),
                Ok(_) => {
                    lock(&self.state).counters.bad_objects += 1;
                    log::warn!("cache: peer {peer} sent an object that is not {hex}");
                }
                // 404: not held there; other errors: that peer is away. Try the next.
                Err(e) => log::debug!("cache: {hex} from {peer}: {e}"),
            }
        }
        None
    }

    /// Starts (or restarts) a prefill of `channel`; its progress shows in [`VodCache::status`].
    /// Returns its generation: a prefill started later supersedes it.
    pub fn prefill_started(&self, channel: ChannelId, full: bool) -> u64 {
        if full {
            self.keep_whole(channel);
        }
        let mut state = lock(&self.state);
        state.prefill_generation += 1;
        let generation = state.prefill_generation;
        // A whole copy asked before stays asked: a later plain prefill does not undo it.
        let full = full || state.prefills.get(&channel).is_some_and(|p| p.full);
        state.prefills.insert(channel, PrefillState { generation, full, outcome: Prefill::Running });
        generation
    }

    /// Whether prefill `generation` of `channel` is still the one asked for.
    pub fn prefill_current(&self, channel: ChannelId, generation: u64) -> bool {
        lock(&self.state).prefills.get(&channel).is_some_and(|p| p.generation == generation)
    }

    /// Records how prefill `generation` ended (ignored if it was superseded).
    pub fn prefill_ended(&self, channel: ChannelId, generation: u64, outcome: Prefill) {
        if let Some(p) = lock(&self.state).prefills.get_mut(&channel).filter(|p| p.generation == generation) {
            p.outcome = outcome;
        }
    }

    /// The disk tier's byte cap.
    pub fn cap(&self) -> u64 {
        lock(&self.disk).cap()
    }

    /// The segments of `channel`'s catalog that this box's disk lacks.
    pub async fn missing(&self, channel: ChannelId) -> Vec<u64> {
        let Some(catalog) = self.catalog(channel) else { return Vec::new() };
        let disk = self.disk.clone();
        smol::unblock(move || {
            let disk = lock(&disk);
            catalog.iter().filter(|(_, e)| !disk.contains(&e.id)).map(|(s, _)| s).collect()
        })
        .await
    }

    /// Per-asset cache state for `/api/status`: `channel` → name.
    pub async fn status(&self, names: &BTreeMap<ChannelId, String>) -> CacheStatus {
        let catalogs: Vec<AssetState> = {
            let state = lock(&self.state);
            let channels: BTreeSet<ChannelId> =
                state.catalogs.keys().chain(state.prefills.keys()).copied().collect();
            channels
                .into_iter()
                .map(|c| {
                    let catalog = state.catalogs.get(&c).cloned().unwrap_or_default();
                    let prefill = state.prefills.get(&c).map(|p| (p.full, p.outcome.clone()));
                    (c, catalog, state.full.contains(&c), prefill)
                })
                .collect()
        };
        let disk = self.disk.clone();
        let names = names.clone();
        let (assets, disk) = smol::unblock(move || {
            let disk = lock(&disk);
            let assets: Vec<AssetStatus> = catalogs
                .iter()
                .map(|(channel, catalog, full, prefill)| {
                    let on_disk = catalog.iter().filter(|(_, e)| disk.contains(&e.id)).count();
                    let bytes: u64 = catalog.iter().map(|(_, e)| u64::from(e.len)).sum();
                    let duration: Duration = catalog.iter().map(|(_, e)| e.duration()).sum();
                    let prefill = prefill.as_ref().map(|(full, p)| {
                        let (state, error) = match p {
                            Prefill::Running => ("running", None),
                            Prefill::Done => ("done", None),
                            Prefill::Failed(why) => ("failed", Some(why.clone())),
                        };
                        PrefillStatus { full: *full, state: state.to_owned(), error }
                    });
                    AssetStatus {
                        channel: channel.to_string(),
                        name: names.get(channel).cloned(),
                        segments_known: catalog.len() as u64,
                        segments_total: catalog.total().map(|t| t as u64),
                        complete: catalog.is_complete(),
                        segments_on_disk: on_disk as u64,
                        bytes,
                        duration_s: duration.as_secs_f64(),
                        whole_copy: *full,
                        prefill,
                    }
                })
                .collect();
            let counters = disk.counters();
            let status = DiskStatus {
                used_bytes: disk.used(),
                cap_bytes: disk.cap(),
                objects: disk.len() as u64,
                evictions: counters.evictions,
                corrupt: counters.corrupt,
                write_errors: counters.write_errors,
            };
            (assets, status)
        })
        .await;
        CacheStatus { disk, assets, counters: self.counters() }
    }
}

/// Writes an object with the file I/O outside the disk's lock (the lock is taken only to look
/// it up, to make room and to rename it into place); a full disk gets room made and one more try.
fn store_object(disk: &Mutex<DiskTier>, id: &ContentId, bytes: &[u8]) -> Result<shoal_disk::Put, DiskError> {
    let tmp = {
        let mut tier = lock(disk);
        if tier.contains(id) {
            tier.touch(id);
            return Ok(shoal_disk::Put::Present);
        }
        tier.tmp_dir()
    };
    let staged = match DiskTier::stage(&tmp, id, bytes) {
        Ok(staged) => staged,
        Err(e) if e.is_disk_full() => {
            lock(disk).make_room(bytes.len() as u64);
            DiskTier::stage(&tmp, id, bytes)?
        }
        Err(e) => return Err(e),
    };
    lock(disk).commit(staged)
}

/// Who fetches a segment that is on no disk of this box.
enum Claim {
    /// This request: the guard releases the claim when dropped.
    Mine(InFlight),
    /// Another request fetched it (or gave up): look at the disk again.
    Done,
}

/// A claim on fetching one segment; released when dropped.
struct InFlight {
    state: Arc<Mutex<State>>,
    key: (ChannelId, u64),
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.state).in_flight.remove(&self.key);
    }
}

/// An asset's catalog, whether this box keeps it whole, and its prefill (full, state).
type AssetState = (ChannelId, Catalog, bool, Option<(bool, Prefill)>);

/// Whether `me` is among the [`REPLICAS`] boxes of `carriers` that keep segment `seq` of
/// `channel`.
pub fn keeps_share(me: NodeId, carriers: &[NodeId], channel: ChannelId, seq: u64) -> bool {
    owners_first(carriers, channel, seq).iter().take(REPLICAS).any(|&n| n == me)
}

/// `carriers` ordered by their rendezvous score for segment `seq` of `channel`: the owners of
/// the segment first.
pub fn owners_first(carriers: &[NodeId], channel: ChannelId, seq: u64) -> Vec<NodeId> {
    let score = |node: &NodeId| {
        let mut h = Sha256::new();
        h.update(b"shoal-vod");
        h.update(node.0);
        h.update(channel.0);
        h.update(seq.to_le_bytes());
        let d = h.finalize();
        u64::from_be_bytes(d[..8].try_into().unwrap_or([0; 8]))
    };
    let mut ordered: Vec<(u64, NodeId)> = carriers.iter().map(|n| (score(n), *n)).collect();
    ordered.sort_by(|a, b| b.cmp(a));
    ordered.into_iter().map(|(_, n)| n).collect()
}

fn parse_channel(hex: &str) -> Option<ChannelId> {
    if hex.len() != 16 {
        return None;
    }
    let mut out = [0u8; 8];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(ChannelId(out))
}

/// How a box fetches one segment of an asset from its origin, when no peer has it.
pub struct OriginFetch {
    /// The channel's HLS source.
    pub source: crate::origin::hls::HlsSource,
    /// The origin fetcher (with the configured CA).
    pub fetcher: Fetcher,
    /// Where its origin requests are counted: the driver's, as the ingest's are.
    pub report: crate::model::SourceSink,
}

impl OriginFetch {
    /// Segment `seq`'s bytes (with any init section), as the ingester would have published them.
    pub async fn fetch(&self, seq: u64) -> Result<Vec<u8>, crate::origin::hls::IngestError> {
        crate::origin::hls::fetch_one(self.source.clone(), self.fetcher.clone(), seq, self.report.clone())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_segment_has_replicas_owners_and_shares_spread() {
        let boxes: Vec<NodeId> = (0..4u8).map(|i| NodeId([i; 16])).collect();
        let channel = ChannelId([7; 8]);
        let mut per_box = [0usize; 4];
        for seq in 0..400 {
            let owners: Vec<usize> =
                (0..4).filter(|&i| keeps_share(boxes[i], &boxes, channel, seq)).collect();
            assert_eq!(owners.len(), REPLICAS, "segment {seq}");
            for i in owners {
                per_box[i] += 1;
            }
            // The order does not depend on how the carriers were listed.
            let mut reversed = boxes.clone();
            reversed.reverse();
            assert_eq!(owners_first(&boxes, channel, seq), owners_first(&reversed, channel, seq));
        }
        // 800 copies over 4 boxes: each near 200.
        assert!(per_box.iter().all(|&n| (150..=250).contains(&n)), "{per_box:?}");
    }

    fn manifest(channel: ChannelId, seq: u64, bytes: &[u8], end_of_stream: bool) -> shoal_core::Manifest {
        shoal_core::Manifest {
            channel,
            seq,
            signer: NodeId([1; 16]),
            duration_us: 2_000_000,
            length: bytes.len() as u32,
            block_size: shoal_core::BLOCK_SIZE as u32,
            discontinuity: false,
            init_len: 0,
            vod: true,
            end_of_stream,
            hashes: Vec::new(),
        }
    }

    #[test]
    fn shares_and_catalogs_survive_a_restart_and_only_verified_bytes_come_back() {
        let dir = std::env::temp_dir().join(format!("shoal-vod-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let channel = ChannelId([3; 8]);
        let segments: Vec<Vec<u8>> = (0..3u8).map(|n| vec![n; 1000 + usize::from(n)]).collect();
        smol::block_on(async {
            let cache = VodCache::open(&dir, 1 << 20).expect("opens");
            for (seq, bytes) in segments.iter().enumerate() {
                let m = manifest(channel, seq as u64, bytes, seq == 2);
                // This box owns segments 0 and 2 only.
                cache.record(channel, seq as u64, &m, Arc::new(bytes.clone()), seq != 1).await;
            }
            assert!(cache.is_complete(channel));
            assert_eq!(cache.missing(channel).await, vec![1]);
            let entry = cache.entry(channel, 1).expect("segment 1 is catalogued");
            assert_eq!((entry.id, entry.len), (content_id(&segments[1]), 1001));
        });
        // After a restart: the catalog is back (saved when the asset completed), so are the
        // kept segments; a segment whose file rotted is dropped, not served.
        let object = |id: &ContentId| {
            let hex = to_hex(id);
            dir.join("objects").join(&hex[..2]).join(hex)
        };
        std::fs::write(object(&content_id(&segments[2])), b"rotten").expect("damage segment 2");
        smol::block_on(async {
            let cache = VodCache::open(&dir, 1 << 20).expect("opens again");
            assert!(cache.is_complete(channel));
            let peers: &[SocketAddr] = &[];
            let fetcher = Fetcher::new(None, Duration::from_secs(1)).expect("fetcher");
            let (bytes, _) =
                cache.segment(channel, 0, peers, &fetcher, None).await.expect("segment 0 from disk");
            assert_eq!(bytes, segments[0]);
            assert!(cache.segment(channel, 2, peers, &fetcher, None).await.is_none(), "rotten bytes served");
            assert!(cache.segment(channel, 9, peers, &fetcher, None).await.is_none());
            assert_eq!(cache.counters().disk_hits, 1);
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn channel_names_round_trip() {
        let c = ChannelId([0xab, 1, 2, 3, 4, 5, 6, 0xff]);
        assert_eq!(parse_channel(&c.to_string()), Some(c));
        assert_eq!(parse_channel("xyz"), None);
    }
}
