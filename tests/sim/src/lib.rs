//! # shoal-sim: a deterministic multi-box simulator for the swarm engine
//!
//! N boxes, each a real [`shoal_core::Engine`], on a virtual clock. Datagrams cross simulated
//! links with their own latency, per-datagram jitter, loss and duplication (jitter reorders);
//! every box has an upload rate that transfers really consume: a datagram leaves only when the
//! box's link has finished sending the previous one, so no box can send faster than its rate. A
//! simulated origin publishes a live channel; whichever box the engines elect fetches it.
//!
//! Everything is driven by one seeded RNG and ordered containers, so a run is a pure function of
//! its [`SimConfig`]: a failing scenario is reproduced exactly from the seed it prints.
//!
//! ```
//! use core::time::Duration;
//! use shoal_sim::{Sim, SimConfig};
//! let mut sim = Sim::new(SimConfig { boxes: 3, seed: 1, ..SimConfig::default() });
//! sim.run_for(Duration::from_secs(7));
//! let report = sim.report(Duration::from_secs(2)..Duration::from_secs(5));
//! assert!(report.missing.is_empty(), "{report:?}");
//! ```

mod harness;
mod network;
mod origin;

pub use harness::{run_scenario, seed_from_env};
pub use network::{LinkStats, Network};
pub use origin::Origin;

use core::time::Duration;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use shoal_core::{
    Authenticator, ChannelId, Config, Engine, Event, Identity, Instant, LineupEntry, NetworkKey, SegmentInfo,
};

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Number of boxes.
    pub boxes: usize,
    /// Seed of everything random: identities, links, loss, the engines' own RNGs.
    pub seed: u64,
    /// Per-link one-way latency, drawn uniformly from this range once per link.
    pub latency: (Duration, Duration),
    /// Extra per-datagram delay, uniform in `0..jitter` (reorders datagrams).
    pub jitter: Duration,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f64,
    /// Every box's upload rate in bits per second.
    pub upload_bps: u64,
    /// The live channel: segment duration.
    pub segment_duration: Duration,
    /// The live channel: bit rate in bits per second.
    pub bitrate: u64,
    /// Whether the origin publishes at all (benchmarks publish by hand).
    pub live: bool,
    /// Time for the ingester to fetch one segment from the origin.
    pub fetch_latency: Duration,
    /// Segments the origin's live playlist offers behind the newest.
    pub origin_window: u64,
    /// Store budget per box.
    pub store_budget: usize,
    /// Whether datagrams are tagged under a network key (true) or in insecure mode.
    pub keyed: bool,
    /// Whether the channel is fetched without viewers (true), or only while some box wants it
    /// ([`Sim::want`]), as a channel that TVs switch on and off is.
    pub always_on: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            boxes: 4,
            seed: 1,
            latency: (Duration::from_micros(200), Duration::from_micros(1_000)),
            jitter: Duration::from_micros(100),
            loss: 0.0,
            duplicate: 0.0,
            upload_bps: 100_000_000,
            segment_duration: Duration::from_secs(2),
            bitrate: 4_000_000,
            live: true,
            fetch_latency: Duration::from_millis(30),
            origin_window: 6,
            store_budget: 24 * 1024 * 1024,
            keyed: true,
            always_on: true,
        }
    }
}

/// How soon an ingester asks again after the origin failed a request.
pub const ORIGIN_RETRY: Duration = Duration::from_millis(500);

/// Attempts per segment before an ingester skips it, as the daemon's HLS source.
pub const SEGMENT_ATTEMPTS: u32 = 3;

/// The network key every simulated box shares (not secret: it is a simulation).
pub const SIM_KEY: [u8; 32] = [0x5A; 32];

/// The simulated channel.
pub fn sim_channel() -> ChannelId {
    ChannelId::derive("sim", "sim://origin/live.m3u8")
}

/// One simulated box.
pub struct SimBox {
    /// The engine, or `None` while the box is down.
    pub engine: Option<Engine>,
    /// Its address.
    pub addr: SocketAddr,
    /// Bumped on every restart, so stale fetches of an old incarnation are discarded.
    pub incarnation: u32,
    /// When each segment completed on this box (or was published by it).
    pub completed: BTreeMap<u64, Instant>,
    /// Whether it is fetching the channel from the origin, and since which segment.
    pub ingesting: bool,
    /// Highest store usage seen, to check the budget held throughout.
    pub peak_store: usize,
    /// Events seen, for assertions (bans, takeovers).
    pub events: Vec<(Instant, Event)>,
    /// Closed and sending its goodbyes; stops once they are out.
    leaving: bool,
    /// Segments its source failed to fetch (the origin was down), fetched in order, one
    /// request per [`ORIGIN_RETRY`], once the origin answers.
    pending: std::collections::BTreeSet<u64>,
    /// A retry is scheduled.
    retrying: bool,
    /// Failed attempts at each failing segment (see [`Sim::failing_segment`]).
    segment_attempts: BTreeMap<u64, u32>,
    timer_generation: u64,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Deliver { to: usize, from: SocketAddr, bytes: Vec<u8> },
    OriginSegment { seq: u64 },
    FetchDone { to: usize, incarnation: u32, seq: u64 },
    Retry { to: usize, incarnation: u32 },
    Timer { to: usize, generation: u64 },
}

/// The simulation.
pub struct Sim {
    /// Settings.
    pub config: SimConfig,
    now: Instant,
    /// The boxes.
    pub boxes: Vec<SimBox>,
    /// Links, loss, partitions.
    pub network: Network,
    /// The live origin and its fetch log.
    pub origin: Origin,
    queue: BinaryHeap<Reverse<(Instant, u64, Action)>>,
    order: u64,
    rng: ChaCha8Rng,
    by_addr: BTreeMap<SocketAddr, usize>,
    buf: Vec<u8>,
    /// Keyed datagrams delivered, kept when `capture` is on (for replay attacks).
    pub captured: Vec<(usize, SocketAddr, Vec<u8>)>,
    /// Whether to keep delivered datagrams in `captured`.
    pub capture: bool,
    /// Boxes whose outgoing data fragments are corrupted (a keyed, lying box).
    pub corrupt_data_from: Vec<usize>,
}

impl Sim {
    /// Builds the swarm: every box knows every other (as mDNS would tell it) from the start.
    pub fn new(config: SimConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let network = Network::new(&config, &mut rng);
        let origin = Origin::new(&config);
        let mut sim = Sim {
            now: Instant::ZERO,
            boxes: Vec::new(),
            network,
            origin,
            queue: BinaryHeap::new(),
            order: 0,
            rng,
            by_addr: BTreeMap::new(),
            buf: vec![0; 65_536],
            captured: Vec::new(),
            capture: false,
            corrupt_data_from: Vec::new(),
            config,
        };
        for i in 0..sim.config.boxes {
            let addr = SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::new(10, 99, (i / 250) as u8, (i % 250 + 1) as u8),
                5000,
            ));
            sim.by_addr.insert(addr, i);
            sim.boxes.push(SimBox {
                engine: None,
                addr,
                incarnation: 0,
                completed: BTreeMap::new(),
                ingesting: false,
                peak_store: 0,
                events: Vec::new(),
                leaving: false,
                pending: Default::default(),
                retrying: false,
                segment_attempts: BTreeMap::new(),
                timer_generation: 0,
            });
        }
        for i in 0..sim.config.boxes {
            sim.start_box(i);
        }
        if sim.config.live {
            sim.schedule(Instant::ZERO, Action::OriginSegment { seq: 0 });
        }
        sim
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The identity of box `i` in incarnation `incarnation`.
    pub fn identity(&self, i: usize) -> Identity {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&self.config.seed.to_le_bytes());
        seed[8..16].copy_from_slice(&(i as u64).to_le_bytes());
        Identity::from_seed(seed)
    }

    /// The engine config box `i` runs with.
    pub fn engine_config(&self, i: usize, incarnation: u32) -> Config {
        let auth = if self.config.keyed {
            Authenticator::new(&NetworkKey::from_bytes(SIM_KEY))
        } else {
            Authenticator::insecure()
        };
        let mut config = Config::new(self.identity(i), auth);
        config.seed =
            self.config.seed ^ ((i as u64) << 32) ^ u64::from(incarnation).wrapping_mul(0x9E37_79B9);
        config.upload_rate = self.config.upload_bps / 8;
        config.store_budget = self.config.store_budget;
        config.default_target_duration = self.config.segment_duration;
        config.lineup = vec![LineupEntry { channel: sim_channel(), always_on: self.config.always_on }];
        config
    }

    /// Starts (or restarts) box `i` and tells it about every live box, and them about it.
    pub fn start_box(&mut self, i: usize) {
        let incarnation = self.boxes[i].incarnation + 1;
        let engine = Engine::new(self.engine_config(i, incarnation), self.now).expect("valid sim config");
        let me = engine.node_id();
        let b = &mut self.boxes[i];
        b.incarnation = incarnation;
        b.engine = Some(engine);
        b.ingesting = false;
        b.pending.clear();
        b.retrying = false;
        b.segment_attempts.clear();
        b.leaving = false;
        let now = self.now;
        let others: Vec<(usize, shoal_core::NodeId, SocketAddr)> = self
            .boxes
            .iter()
            .enumerate()
            .filter(|&(j, b)| j != i && b.engine.is_some())
            .map(|(j, b)| (j, b.engine.as_ref().map(Engine::node_id).expect("running"), b.addr))
            .collect();
        let my_addr = self.boxes[i].addr;
        for &(j, id, addr) in &others {
            if let Some(e) = self.boxes[i].engine.as_mut() {
                e.add_peer(now, id, addr);
            }
            if let Some(e) = self.boxes[j].engine.as_mut() {
                e.add_peer(now, me, my_addr);
            }
        }
        self.drive(i);
        for (j, _, _) in others {
            self.drive(j);
        }
    }

    /// A TV on box `i` starts (`true`) or stops watching the channel, as the daemon's viewer
    /// tracking tells the engine.
    pub fn want(&mut self, i: usize, wanted: bool) {
        let now = self.now;
        if let Some(engine) = self.boxes[i].engine.as_mut() {
            engine.want_channel(now, sim_channel(), wanted);
        }
        self.drive(i);
    }

    /// The origin fails every request from `from` until `until` (an outage); ingesters retry
    /// every [`ORIGIN_RETRY`] and say so to their engines, as the daemon's sources do.
    pub fn origin_outage(&mut self, from: Instant, until: Instant) {
        self.origin.outage = Some((from, until));
    }

    /// Segment `seq` takes `extra` longer than others to arrive from the origin.
    pub fn slow_segment(&mut self, seq: u64, extra: Duration) {
        self.origin.slow.insert(seq, extra);
    }

    /// The first `failures` requests for segment `seq` fail (a 404, a truncated answer): the
    /// ingester retries it as the daemon's source does (after 0.5 s, then 1 s), and skips it
    /// after [`SEGMENT_ATTEMPTS`] failed attempts. A failing segment is the origin's trouble but
    /// not an outage: the source does not report the origin as failing.
    pub fn failing_segment(&mut self, seq: u64, failures: u32) {
        self.origin.failing.insert(seq, failures);
    }

    /// Box `i` crashes: no goodbye, its state is gone.
    pub fn crash(&mut self, i: usize) {
        self.boxes[i].engine = None;
        self.boxes[i].ingesting = false;
    }

    /// Box `i` leaves cleanly: goodbyes go out (paced like any datagram), then it stops.
    pub fn leave(&mut self, i: usize) {
        let now = self.now;
        let Some(engine) = self.boxes[i].engine.as_mut() else {
            return;
        };
        engine.close(now);
        self.boxes[i].leaving = true;
        self.drive(i);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs until virtual time `until`.
    pub fn run_until(&mut self, until: Instant) {
        while let Some(Reverse((at, _, _))) = self.queue.peek() {
            if *at > until {
                break;
            }
            let Reverse((at, _, action)) = self.queue.pop().expect("peeked");
            self.now = at;
            self.act(action);
        }
        self.now = until;
    }

    /// Runs until `done` holds (checked after every action) or `limit` passes; whether it held.
    pub fn run_until_true(&mut self, limit: Instant, mut done: impl FnMut(&Sim) -> bool) -> bool {
        while let Some(Reverse((at, _, _))) = self.queue.peek() {
            if *at > limit {
                break;
            }
            let Reverse((at, _, action)) = self.queue.pop().expect("peeked");
            self.now = at;
            self.act(action);
            if done(self) {
                return true;
            }
        }
        self.now = self.now.max(limit);
        done(self)
    }

    /// Delivers `bytes` to box `to` as if sent from `from` (an attacker, a replay), now.
    pub fn inject(&mut self, to: usize, from: SocketAddr, bytes: Vec<u8>) {
        self.schedule(self.now, Action::Deliver { to, from, bytes });
    }

    /// Publishes a segment on box `i` by hand (benchmarks); returns whether the engine took it.
    pub fn publish(&mut self, i: usize, info: SegmentInfo, bytes: &[u8]) -> bool {
        let now = self.now;
        let Some(engine) = self.boxes[i].engine.as_mut() else {
            return false;
        };
        let ok = engine.publish_segment(now, info, bytes).is_ok();
        if ok {
            self.boxes[i].completed.insert(info.seq, now);
        }
        self.drive(i);
        ok
    }

    fn schedule(&mut self, at: Instant, action: Action) {
        self.order += 1;
        self.queue.push(Reverse((at, self.order, action)));
    }

    fn act(&mut self, action: Action) {
        let now = self.now;
        match action {
            Action::Deliver { to, from, bytes } => {
                if self.capture {
                    self.captured.push((to, from, bytes.clone()));
                }
                let Some(engine) = self.boxes[to].engine.as_mut() else {
                    return;
                };
                engine.handle_datagram(now, from, &bytes);
                self.drive(to);
            }
            Action::Retry { to, incarnation } => {
                let b = &mut self.boxes[to];
                if b.incarnation != incarnation || !b.ingesting || b.engine.is_none() {
                    b.retrying = false;
                    b.pending.clear();
                    return;
                }
                if self.origin.is_down(now) {
                    self.origin.record_failure(to);
                    self.schedule(now + ORIGIN_RETRY, Action::Retry { to, incarnation });
                    return;
                }
                b.retrying = false;
                let pending = std::mem::take(&mut b.pending);
                for (k, seq) in pending.into_iter().enumerate() {
                    let at = now + self.config.fetch_latency * (k as u32 + 1);
                    self.schedule(at, Action::FetchDone { to, incarnation, seq });
                }
            }
            Action::Timer { to, generation } => {
                if self.boxes[to].timer_generation != generation {
                    return;
                }
                let Some(engine) = self.boxes[to].engine.as_mut() else {
                    return;
                };
                engine.handle_timeout(now);
                self.drive(to);
            }
            Action::OriginSegment { seq } => {
                self.origin.available(seq, now);
                for i in 0..self.boxes.len() {
                    if self.boxes[i].ingesting && self.boxes[i].engine.is_some() {
                        let incarnation = self.boxes[i].incarnation;
                        let slow = self.origin.slow.get(&seq).copied().unwrap_or_default();
                        self.schedule(
                            now + self.config.fetch_latency + slow,
                            Action::FetchDone { to: i, incarnation, seq },
                        );
                    }
                }
                self.schedule(now + self.config.segment_duration, Action::OriginSegment { seq: seq + 1 });
            }
            Action::FetchDone { to, incarnation, seq } => {
                let b = &self.boxes[to];
                if b.incarnation != incarnation || !b.ingesting || b.engine.is_none() {
                    return;
                }
                let channel = sim_channel();
                if self.origin.is_down(now) || self.boxes[to].retrying {
                    // The request fails (or waits behind one that failed): the source says so
                    // to its engine and asks again, one request at a time.
                    self.boxes[to].pending.insert(seq);
                    if !self.boxes[to].retrying {
                        self.origin.record_failure(to);
                        if let Some(engine) = self.boxes[to].engine.as_mut() {
                            engine.set_origin_failing(channel, true);
                        }
                        self.drive(to);
                        self.boxes[to].retrying = true;
                        self.schedule(now + ORIGIN_RETRY, Action::Retry { to, incarnation });
                    }
                    return;
                }
                if let Some(engine) = self.boxes[to].engine.as_mut() {
                    engine.set_origin_failing(channel, false);
                }
                if self.origin.fails(seq) {
                    self.origin.record_failure(to);
                    let b = &mut self.boxes[to];
                    let attempt = b.segment_attempts.entry(seq).or_insert(0);
                    *attempt += 1;
                    if *attempt < SEGMENT_ATTEMPTS {
                        // The daemon's backoff: 0.5 s, then 1 s.
                        let wait = ORIGIN_RETRY * 2u32.pow(*attempt - 1);
                        self.schedule(now + wait, Action::FetchDone { to, incarnation, seq });
                    }
                    return;
                }
                self.origin.record_fetch(seq);
                let info = SegmentInfo::new(sim_channel(), seq, self.config.segment_duration);
                let bytes = self.origin.segment_bytes(seq);
                if self.publish(to, info, &bytes) {
                    self.origin.record_publish(seq, now);
                }
            }
        }
    }

    /// After any input to box `i`: drain its transmits and events, rearm its timer.
    fn drive(&mut self, i: usize) {
        let now = self.now;
        let mut buf = std::mem::take(&mut self.buf);
        while let Some(engine) = self.boxes[i].engine.as_mut() {
            let Some(t) = engine.poll_transmit(now, &mut buf) else {
                break;
            };
            let mut bytes = buf[..t.len].to_vec();
            if self.corrupt_data_from.contains(&i) {
                corrupt_data(&mut bytes);
            }
            self.send(i, t.destination, bytes);
        }
        self.buf = buf;
        let mut ingest_starts = Vec::new();
        let b = &mut self.boxes[i];
        if let Some(engine) = b.engine.as_mut() {
            while let Some(event) = engine.poll_event() {
                match event {
                    Event::SegmentComplete { seq, .. } => {
                        b.completed.entry(seq).or_insert(now);
                    }
                    Event::IngestStart { resume_after, .. } => {
                        b.ingesting = true;
                        ingest_starts.push(resume_after);
                    }
                    Event::IngestStop { .. } => b.ingesting = false,
                    _ => {}
                }
                b.events.push((now, event));
            }
            b.peak_store = b.peak_store.max(engine.store().used());
        }
        for resume_after in ingest_starts {
            // HLS-like origin: resume at the origin's own sequence numbers, from the segment
            // after the newest this box holds, within the origin's live window.
            let incarnation = self.boxes[i].incarnation;
            let seqs = self.origin.resume_range(resume_after, self.config.origin_window);
            for (k, seq) in seqs.enumerate() {
                let at = now + self.config.fetch_latency * (k as u32 + 1);
                self.schedule(at, Action::FetchDone { to: i, incarnation, seq });
            }
        }
        let next = self.boxes[i].engine.as_ref().and_then(Engine::poll_timeout);
        if next.is_none() && self.boxes[i].leaving {
            self.boxes[i].engine = None;
            self.boxes[i].ingesting = false;
        }
        if let Some(at) = next {
            let b = &mut self.boxes[i];
            b.timer_generation += 1;
            let generation = b.timer_generation;
            self.schedule(at.max(now), Action::Timer { to: i, generation });
        }
    }

    fn send(&mut self, from: usize, to_addr: SocketAddr, bytes: Vec<u8>) {
        let Some(&to) = self.by_addr.get(&to_addr) else {
            return;
        };
        let now = self.now;
        let deliveries = self.network.transmit(now, from, to, bytes.len(), &mut self.rng);
        let from_addr = self.boxes[from].addr;
        for at in deliveries {
            self.schedule(at, Action::Deliver { to, from: from_addr, bytes: bytes.clone() });
        }
    }

    /// A datagram as box `i` would send it to box `to` (its node id and session, the network
    /// key) with packet number `packet`: what a keyed box that misbehaves can put on the wire.
    pub fn forge(
        &self,
        i: usize,
        to: usize,
        packet: u64,
        message: &shoal_core::wire::Message<'_>,
    ) -> Vec<u8> {
        let engine = self.boxes[i].engine.as_ref().expect("forging box is running");
        let receiver = self.boxes[to].engine.as_ref().expect("the target is running").node_id();
        let header = shoal_core::wire::Header {
            sender: engine.node_id(),
            receiver,
            session: engine.session_id(),
            packet,
        };
        let auth = Authenticator::new(&NetworkKey::from_bytes(SIM_KEY));
        let mut buf = vec![0; 65_507];
        let len = shoal_core::wire::encode(&auth, &header, message, &mut buf).expect("fits");
        buf.truncate(len);
        buf
    }

    /// Boxes in election order for the simulated channel (ingester first), over running boxes.
    pub fn ranking(&self) -> Vec<usize> {
        let mut ids: Vec<(shoal_core::NodeId, usize)> = self
            .running()
            .into_iter()
            .filter_map(|i| self.boxes[i].engine.as_ref().map(|e| (e.node_id(), i)))
            .collect();
        let mut nodes: Vec<shoal_core::NodeId> = ids.iter().map(|(n, _)| *n).collect();
        shoal_core::engine::election::rank(sim_channel(), &mut nodes);
        nodes
            .into_iter()
            .map(|n| {
                let pos = ids.iter().position(|(m, _)| *m == n).expect("present");
                ids.remove(pos).1
            })
            .collect()
    }

    /// A random number from the simulation's RNG (for tests that need one reproducibly).
    pub fn random(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// The running boxes that fetch the channel from the origin now.
    pub fn ingesters(&self) -> Vec<usize> {
        let channel = sim_channel();
        self.running()
            .into_iter()
            .filter(|&i| self.boxes[i].engine.as_ref().is_some_and(|e| e.is_ingesting(channel)))
            .collect()
    }

    /// Takeovers counted by the running boxes.
    pub fn takeovers(&self) -> u64 {
        self.running()
            .iter()
            .filter_map(|&i| self.boxes[i].engine.as_ref())
            .map(|e| e.counters().takeovers)
            .sum()
    }

    /// Which boxes are running.
    pub fn running(&self) -> Vec<usize> {
        (0..self.boxes.len()).filter(|&i| self.boxes[i].engine.is_some()).collect()
    }

    /// Delivery report for segments published within `window` (origin time), over running boxes.
    pub fn report(&self, window: core::ops::Range<Duration>) -> Report {
        let running = self.running();
        let mut report = Report::default();
        for (&seq, &published) in self.origin.published() {
            let available = self.origin.available_at(seq);
            let Some(available) = available else { continue };
            let t = Duration::from_micros(available.as_micros());
            if !window.contains(&t) {
                continue;
            }
            report.segments += 1;
            report.fetches += self.origin.fetches(seq);
            let mut worst = Duration::ZERO;
            for &i in &running {
                match self.boxes[i].completed.get(&seq) {
                    Some(&done) => {
                        let since_publish = done.saturating_since(published);
                        worst = worst.max(since_publish);
                        report.delays.push(done.saturating_since(available));
                    }
                    None => report.missing.push((i, seq)),
                }
            }
            report.worst_after_publish = report.worst_after_publish.max(worst);
        }
        report.delays.sort();
        report
    }
}

/// How segments reached the boxes.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Segments in the window.
    pub segments: u64,
    /// Origin fetches of those segments.
    pub fetches: u64,
    /// (box, seq) pairs never completed.
    pub missing: Vec<(usize, u64)>,
    /// Per (box, segment): completion time after the origin made the segment available.
    pub delays: Vec<Duration>,
    /// Largest time from the ingester's publish to a box's completion.
    pub worst_after_publish: Duration,
}

impl Report {
    /// Origin fetches per segment.
    pub fn fetches_per_segment(&self) -> f64 {
        if self.segments == 0 {
            return 0.0;
        }
        self.fetches as f64 / self.segments as f64
    }

    /// A percentile of the delays (0.0..=1.0).
    pub fn delay_percentile(&self, p: f64) -> Duration {
        if self.delays.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.delays.len() - 1) as f64 * p).round() as usize;
        self.delays[i]
    }
}

/// Flips bytes inside the payload of a data fragment while keeping it well-formed and correctly
/// tagged: what a keyed box that lies would send.
fn corrupt_data(bytes: &mut Vec<u8>) {
    let auth = Authenticator::new(&NetworkKey::from_bytes(SIM_KEY));
    let Ok(datagram) = shoal_core::wire::decode(&auth, bytes) else {
        return;
    };
    let shoal_core::wire::Message::Data(data) = &datagram.message else {
        return;
    };
    let mut payload = data.bytes.to_vec();
    for b in payload.iter_mut().step_by(97) {
        *b ^= 0xFF;
    }
    let forged = shoal_core::wire::Message::Data(shoal_core::wire::Data { bytes: &payload, ..data.clone() });
    let mut out = vec![0; bytes.len() + 16];
    if let Ok(len) = shoal_core::wire::encode(&auth, &datagram.header, &forged, &mut out) {
        out.truncate(len);
        *bytes = out;
    }
}
