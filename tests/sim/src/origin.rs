//! The simulated origin: a live HLS-like channel whose segment `n` becomes available at
//! `n × duration`, and a log of how often each segment was fetched, and of the requests that
//! failed (an outage) by the box that made them.

use std::collections::BTreeMap;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use shoal_core::Instant;

use crate::SimConfig;

/// The origin and its fetch log.
#[derive(Debug)]
pub struct Origin {
    segment_len: usize,
    seed: u64,
    available: BTreeMap<u64, Instant>,
    fetches: BTreeMap<u64, u64>,
    published: BTreeMap<u64, Instant>,
    /// Requests that failed, by the box that made them.
    failed: BTreeMap<usize, u64>,
    /// Down from the first instant until the second: every request fails.
    pub(crate) outage: Option<(Instant, Instant)>,
    /// Extra time a segment takes to arrive (a slow origin), by sequence number.
    pub(crate) slow: BTreeMap<u64, core::time::Duration>,
    /// Requests still to fail for a segment (a 404 or a truncated answer), by sequence number.
    pub(crate) failing: BTreeMap<u64, u32>,
}

impl Origin {
    pub(crate) fn new(config: &SimConfig) -> Self {
        let bits = config.bitrate as u128 * config.segment_duration.as_micros() / 1_000_000;
        Origin {
            segment_len: (bits / 8) as usize,
            seed: config.seed,
            available: BTreeMap::new(),
            fetches: BTreeMap::new(),
            published: BTreeMap::new(),
            failed: BTreeMap::new(),
            outage: None,
            slow: BTreeMap::new(),
            failing: BTreeMap::new(),
        }
    }

    /// Bytes of one segment.
    pub fn segment_len(&self) -> usize {
        self.segment_len
    }

    /// The bytes of segment `seq` (the same every time it is fetched, as from a real origin).
    pub fn segment_bytes(&self, seq: u64) -> Vec<u8> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ seq.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let mut bytes = vec![0; self.segment_len];
        rng.fill_bytes(&mut bytes);
        bytes
    }

    pub(crate) fn available(&mut self, seq: u64, now: Instant) {
        self.available.insert(seq, now);
    }

    /// When segment `seq` appeared at the origin.
    pub fn available_at(&self, seq: u64) -> Option<Instant> {
        self.available.get(&seq).copied()
    }

    pub(crate) fn record_fetch(&mut self, seq: u64) {
        *self.fetches.entry(seq).or_default() += 1;
    }

    pub(crate) fn record_publish(&mut self, seq: u64, now: Instant) {
        self.published.entry(seq).or_insert(now);
    }

    /// Whether a request at `now` fails.
    pub(crate) fn is_down(&self, now: Instant) -> bool {
        self.outage.is_some_and(|(from, until)| now >= from && now < until)
    }

    /// Whether this request for segment `seq` fails (a fault set by
    /// [`crate::Sim::failing_segment`]); each failure uses up one.
    pub(crate) fn fails(&mut self, seq: u64) -> bool {
        match self.failing.get_mut(&seq) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn record_failure(&mut self, by: usize) {
        *self.failed.entry(by).or_default() += 1;
    }

    /// Failed requests (retries during an outage), by the box that made them.
    pub fn failed(&self) -> &BTreeMap<usize, u64> {
        &self.failed
    }

    /// Times segment `seq` was fetched.
    pub fn fetches(&self, seq: u64) -> u64 {
        self.fetches.get(&seq).copied().unwrap_or(0)
    }

    /// Total fetches.
    pub fn total_fetches(&self) -> u64 {
        self.fetches.values().sum()
    }

    /// First publication time of each segment.
    pub fn published(&self) -> &BTreeMap<u64, Instant> {
        &self.published
    }

    /// The newest segment available now.
    pub fn newest(&self) -> Option<u64> {
        self.available.keys().next_back().copied()
    }

    /// What a new ingester fetches: from the segment after `resume_after` (or the live edge when
    /// it holds nothing) to the newest, within the origin's live window.
    pub(crate) fn resume_range(&self, resume_after: Option<u64>, window: u64) -> std::ops::Range<u64> {
        let Some(newest) = self.newest() else {
            return 0..0;
        };
        let oldest_offered = newest.saturating_sub(window - 1);
        let start = match resume_after {
            Some(held) => (held + 1).max(oldest_offered),
            None => newest,
        };
        start..newest + 1
    }
}
