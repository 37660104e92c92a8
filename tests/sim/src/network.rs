//! The simulated LAN: per-link latency, jitter, loss, duplication, partitions, and each box's
//! upload link that serialises what it sends at its rate.

use core::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::RngCore;
use shoal_core::engine::IP_UDP_OVERHEAD;
use shoal_core::Instant;

use crate::SimConfig;

/// What the network did with datagrams.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinkStats {
    /// Datagrams handed to the network.
    pub sent: u64,
    /// Lost at random.
    pub lost: u64,
    /// Dropped by a partition.
    pub partitioned: u64,
    /// Delivered twice.
    pub duplicated: u64,
    /// Bytes on the wire, headers included.
    pub wire_bytes: u64,
}

/// Links between every pair of boxes, and each box's upload.
#[derive(Debug)]
pub struct Network {
    latency_us: Vec<Vec<u64>>,
    jitter_us: u64,
    /// Loss probability, as a threshold on a u32 draw.
    loss: u32,
    duplicate: u32,
    upload_bps: u64,
    /// When each box's upload link is free again, in nanoseconds.
    link_free_ns: Vec<u64>,
    /// Partition group per box; datagrams between groups are dropped.
    groups: Vec<u8>,
    /// Links cut in one direction only, (from, to): a burst of interference near one box.
    cut: std::collections::BTreeSet<(usize, usize)>,
    /// Counts.
    pub stats: LinkStats,
    /// Bytes each box uploaded (headers included).
    pub uploaded: Vec<u64>,
}

fn threshold(p: f64) -> u32 {
    (p.clamp(0.0, 1.0) * f64::from(u32::MAX)) as u32
}

impl Network {
    pub(crate) fn new(config: &SimConfig, rng: &mut ChaCha8Rng) -> Self {
        let n = config.boxes;
        let (lo, hi) = (config.latency.0.as_micros() as u64, config.latency.1.as_micros() as u64);
        let mut latency_us = vec![vec![0; n]; n];
        for (i, row) in latency_us.iter_mut().enumerate() {
            for (j, l) in row.iter_mut().enumerate() {
                if i != j {
                    *l = lo + rng.next_u64() % (hi - lo + 1);
                }
            }
        }
        Network {
            latency_us,
            jitter_us: config.jitter.as_micros() as u64,
            loss: threshold(config.loss),
            duplicate: threshold(config.duplicate),
            upload_bps: config.upload_bps,
            link_free_ns: vec![0; n],
            groups: vec![0; n],
            cut: std::collections::BTreeSet::new(),
            stats: LinkStats::default(),
            uploaded: vec![0; n],
        }
    }

    /// Sets the loss probability from now on.
    pub fn set_loss(&mut self, p: f64) {
        self.loss = threshold(p);
    }

    /// Splits the boxes into groups that cannot reach each other.
    pub fn partition(&mut self, groups: Vec<u8>) {
        self.groups = groups;
    }

    /// Joins all groups again.
    pub fn heal(&mut self) {
        self.groups.iter_mut().for_each(|g| *g = 0);
    }

    /// Drops every datagram from `from` to `to` (not the other way) until [`Network::restore`].
    pub fn cut_one_way(&mut self, from: usize, to: usize) {
        self.cut.insert((from, to));
    }

    /// Mends every one-way cut.
    pub fn restore(&mut self) {
        self.cut.clear();
    }

    /// One-way latency of the link from `a` to `b`.
    pub fn latency(&self, a: usize, b: usize) -> Duration {
        Duration::from_micros(self.latency_us[a][b])
    }

    /// Sends `len` bytes from `from` to `to` at `now`: returns the arrival times (none if
    /// lost, two if duplicated). The sender's link is busy for the datagram's wire time.
    pub(crate) fn transmit(
        &mut self,
        now: Instant,
        from: usize,
        to: usize,
        len: usize,
        rng: &mut ChaCha8Rng,
    ) -> Vec<Instant> {
        let wire = (len + IP_UDP_OVERHEAD) as u64;
        self.stats.sent += 1;
        self.stats.wire_bytes += wire;
        self.uploaded[from] += wire;
        let start = self.link_free_ns[from].max(now.as_micros() * 1_000);
        let done = start + wire * 8 * 1_000_000_000 / self.upload_bps;
        self.link_free_ns[from] = done;
        if self.groups[from] != self.groups[to] || self.cut.contains(&(from, to)) {
            self.stats.partitioned += 1;
            return Vec::new();
        }
        if self.loss > 0 && (rng.next_u32() < self.loss) {
            self.stats.lost += 1;
            return Vec::new();
        }
        let mut at = vec![self.arrival(done, from, to, rng)];
        if self.duplicate > 0 && rng.next_u32() < self.duplicate {
            self.stats.duplicated += 1;
            at.push(self.arrival(done, from, to, rng));
        }
        at
    }

    fn arrival(&self, sent_ns: u64, from: usize, to: usize, rng: &mut ChaCha8Rng) -> Instant {
        let jitter = if self.jitter_us == 0 { 0 } else { rng.next_u64() % self.jitter_us };
        Instant::from_micros(sent_ns.div_ceil(1_000) + self.latency_us[from][to] + jitter)
    }
}
