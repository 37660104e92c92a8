//! The store: verified segments under a byte budget.
//!
//! Each channel has a ring of segments ordered by sequence number. A segment enters the store when
//! its signed manifest is accepted: its full length is reserved against the budget then, so the
//! budget holds however blocks arrive. Blocks are checked against the manifest inside
//! [`Store::put_block`]: the store holds no unverified byte, and reads return only verified
//! blocks and complete segments. When a reservation does not fit, the oldest segments (in order
//! of arrival, across channels) are evicted first; a channel's ring also drops its oldest
//! segment beyond `ring_len`.
//!
//! ```
//! use core::time::Duration;
//! use shoal_core::{ChannelId, Identity, Instant, SegmentInfo, SignedManifest, Store};
//! let me = Identity::from_seed([1; 32]);
//! let channel = ChannelId([1; 8]);
//! let mut store = Store::new(100_000, 16);
//! for seq in 0..5 {
//!     let info = SegmentInfo::new(channel, seq, Duration::from_secs(2));
//!     let bytes = vec![seq as u8; 40_000];
//!     let manifest = SignedManifest::build(&me, info, &bytes).unwrap();
//!     store.insert_complete(manifest, &bytes, Instant::ZERO).unwrap();
//! }
//! assert!(store.used() <= 100_000);
//! let window: Vec<u64> = store.window(channel, 10).map(|s| s.manifest().manifest().seq).collect();
//! assert_eq!(window, [3, 4]);
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use thiserror::Error;

use crate::manifest::SignedManifest;
use crate::{ChannelId, Instant};

/// Why the store refused something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum StoreError {
    /// The segment is larger than the whole budget.
    #[error("segment of {0} bytes exceeds the store budget")]
    TooLarge(usize),
    /// A complete segment with a different manifest is already stored under this number.
    #[error("a different complete segment is stored under this sequence number")]
    Conflict,
    /// The segment is older than everything the channel's full ring keeps.
    #[error("segment older than the channel's ring")]
    Stale,
    /// No segment with that manifest is stored.
    #[error("unknown segment")]
    Unknown,
    /// The block does not match the manifest's hash.
    #[error("block does not match its manifest")]
    BadBlock,
    /// The bytes given for a complete segment do not match the manifest.
    #[error("segment does not match its manifest")]
    BadSegment,
}

/// What a successful [`Store::put_block`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockOutcome {
    /// The block was new and is now stored.
    Stored,
    /// The block was new, and it completed its segment.
    Completed,
    /// The block was already stored; nothing changed.
    Duplicate,
}

/// Counters a box reports; they only grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreCounters {
    /// Segments admitted (manifest accepted).
    pub admitted: u64,
    /// Segments completed.
    pub completed: u64,
    /// Segments evicted to make room or by ring length.
    pub evicted: u64,
    /// Segments refused (too large, stale, conflicting).
    pub rejected: u64,
    /// Blocks refused because they did not match their manifest.
    pub bad_blocks: u64,
    /// Verified blocks stored.
    pub blocks: u64,
}

/// One stored segment: its manifest and whichever blocks have been verified.
#[derive(Debug)]
pub struct Segment {
    manifest: SignedManifest,
    /// Allocated on the first block; its length is already reserved against the budget.
    /// Shared (see [`Segment::shared_bytes`]) only once complete, when it no longer changes.
    data: Arc<Vec<u8>>,
    verified: Vec<u64>,
    verified_count: usize,
    arrival: u64,
    admitted_at: Instant,
}

impl Segment {
    /// The segment's signed manifest.
    pub fn manifest(&self) -> &SignedManifest {
        &self.manifest
    }

    /// When the manifest was admitted.
    pub fn admitted_at(&self) -> Instant {
        self.admitted_at
    }

    /// Whether every block is verified.
    pub fn is_complete(&self) -> bool {
        self.verified_count == self.manifest.block_count()
    }

    /// Whether block `index` is verified.
    pub fn has_block(&self, index: usize) -> bool {
        index < self.manifest.block_count() && self.verified[index / 64] & (1 << (index % 64)) != 0
    }

    /// Number of verified blocks.
    pub fn verified_blocks(&self) -> usize {
        self.verified_count
    }

    /// Block `index`, if verified.
    pub fn block(&self, index: usize) -> Option<&[u8]> {
        if !self.has_block(index) {
            return None;
        }
        let m = self.manifest.manifest();
        let start = m.block_offset(index);
        Some(&self.data[start..start + m.block_len(index)])
    }

    /// The whole segment, if complete.
    pub fn bytes(&self) -> Option<&[u8]> {
        self.is_complete().then_some(&self.data[..])
    }

    /// The whole segment, if complete, shared rather than copied: a box serving one segment to
    /// many TVs holds it once.
    pub fn shared_bytes(&self) -> Option<Arc<Vec<u8>>> {
        self.is_complete().then(|| self.data.clone())
    }

    fn reserved(&self) -> usize {
        self.manifest.manifest().length as usize
    }
}

/// Verified segments of every channel, within a byte budget.
#[derive(Debug)]
pub struct Store {
    budget: usize,
    ring_len: usize,
    used: usize,
    channels: BTreeMap<ChannelId, BTreeMap<u64, Segment>>,
    /// Admission order for eviction: (arrival number, channel, seq). Entries whose segment was
    /// already removed are skipped when met.
    arrivals: VecDeque<(u64, ChannelId, u64)>,
    next_arrival: u64,
    counters: StoreCounters,
}

impl Store {
    /// A store that never holds more than `budget` bytes of segments, nor more than `ring_len`
    /// segments of one channel.
    pub fn new(budget: usize, ring_len: usize) -> Self {
        Store {
            budget,
            ring_len: ring_len.max(1),
            used: 0,
            channels: BTreeMap::new(),
            arrivals: VecDeque::new(),
            next_arrival: 0,
            counters: StoreCounters::default(),
        }
    }

    /// Bytes reserved by stored segments.
    pub fn used(&self) -> usize {
        self.used
    }

    /// The byte budget.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Counters since the store was made.
    pub fn counters(&self) -> StoreCounters {
        self.counters
    }

    /// Admits a segment by its manifest and reserves its length, evicting the oldest segments
    /// as needed. Re-admitting the same manifest is a no-op. An incomplete segment under the same
    /// number with a different manifest (from a new ingester after a takeover) is replaced.
    pub fn admit(&mut self, manifest: SignedManifest, now: Instant) -> Result<(), StoreError> {
        let m = manifest.manifest();
        let (channel, seq, len) = (m.channel, m.seq, m.length as usize);
        if let Some(existing) = self.segment(channel, seq) {
            if existing.manifest.tag() == manifest.tag() {
                return Ok(());
            }
            if existing.is_complete() {
                self.counters.rejected += 1;
                return Err(StoreError::Conflict);
            }
            self.remove(channel, seq);
        }
        if len > self.budget {
            self.counters.rejected += 1;
            return Err(StoreError::TooLarge(len));
        }
        let ring = self.channels.get(&channel);
        if let Some(ring) = ring {
            let oldest = ring.keys().next().copied();
            if ring.len() >= self.ring_len && oldest.is_some_and(|o| seq < o) {
                self.counters.rejected += 1;
                return Err(StoreError::Stale);
            }
        }
        while self.used + len > self.budget {
            if !self.evict_oldest() {
                break;
            }
        }
        while self.channels.get(&channel).is_some_and(|r| r.len() >= self.ring_len) {
            let oldest = self.channels[&channel].keys().next().copied();
            match oldest {
                Some(o) => {
                    self.remove(channel, o);
                    self.counters.evicted += 1;
                }
                None => break,
            }
        }
        let blocks = manifest.block_count();
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        let segment = Segment {
            manifest,
            data: Arc::new(Vec::new()),
            verified: vec![0; blocks.div_ceil(64)],
            verified_count: 0,
            arrival,
            admitted_at: now,
        };
        self.used += len;
        self.arrivals.push_back((arrival, channel, seq));
        self.channels.entry(channel).or_default().insert(seq, segment);
        self.counters.admitted += 1;
        Ok(())
    }

    /// Admits a segment this box ingested, with all its bytes. The bytes are checked against the
    /// manifest like any peer's.
    pub fn insert_complete(
        &mut self,
        manifest: SignedManifest,
        bytes: &[u8],
        now: Instant,
    ) -> Result<(), StoreError> {
        let m = manifest.manifest();
        let (channel, seq, tag) = (m.channel, m.seq, manifest.tag());
        if bytes.len() != m.length as usize {
            return Err(StoreError::BadSegment);
        }
        let block_size = m.block_size as usize;
        self.admit(manifest, now)?;
        for (index, block) in bytes.chunks(block_size).enumerate() {
            if let Err(e) = self.put_block(channel, seq, tag, index, block) {
                self.remove(channel, seq);
                return Err(if e == StoreError::BadBlock { StoreError::BadSegment } else { e });
            }
        }
        Ok(())
    }

    /// Stores block `index` of the segment whose manifest has tag `tag`, after checking it
    /// against the manifest.
    pub fn put_block(
        &mut self,
        channel: ChannelId,
        seq: u64,
        tag: u32,
        index: usize,
        bytes: &[u8],
    ) -> Result<BlockOutcome, StoreError> {
        let Some(segment) = self.channels.get_mut(&channel).and_then(|r| r.get_mut(&seq)) else {
            return Err(StoreError::Unknown);
        };
        if segment.manifest.tag() != tag {
            return Err(StoreError::Unknown);
        }
        if segment.has_block(index) {
            return Ok(BlockOutcome::Duplicate);
        }
        if !segment.manifest.check_block(index, bytes) {
            self.counters.bad_blocks += 1;
            return Err(StoreError::BadBlock);
        }
        if segment.data.is_empty() {
            segment.data = Arc::new(vec![0; segment.reserved()]);
        }
        let start = segment.manifest.manifest().block_offset(index);
        // Never shared while incomplete, so this never copies.
        Arc::make_mut(&mut segment.data)[start..start + bytes.len()].copy_from_slice(bytes);
        segment.verified[index / 64] |= 1 << (index % 64);
        segment.verified_count += 1;
        self.counters.blocks += 1;
        if segment.is_complete() {
            self.counters.completed += 1;
            Ok(BlockOutcome::Completed)
        } else {
            Ok(BlockOutcome::Stored)
        }
    }

    /// The stored segment `seq` of `channel`, complete or not.
    pub fn segment(&self, channel: ChannelId, seq: u64) -> Option<&Segment> {
        self.channels.get(&channel)?.get(&seq)
    }

    /// Verified block `index` of segment `seq`.
    pub fn block(&self, channel: ChannelId, seq: u64, index: usize) -> Option<&[u8]> {
        self.segment(channel, seq)?.block(index)
    }

    /// All stored segments of `channel`, complete or not, oldest first.
    pub fn segments(&self, channel: ChannelId) -> impl Iterator<Item = &Segment> + '_ {
        self.channels.get(&channel).into_iter().flat_map(|r| r.values())
    }

    /// The newest `max` complete segments of `channel`, oldest first: the window HLS serves.
    pub fn window(&self, channel: ChannelId, max: usize) -> impl Iterator<Item = &Segment> + '_ {
        let complete: Vec<&Segment> = self.segments(channel).filter(|s| s.is_complete()).collect();
        let skip = complete.len().saturating_sub(max);
        complete.into_iter().skip(skip)
    }

    /// The newest complete segment of `channel` and a bitmap of the 64 up to it (bit `i`: holds
    /// `newest - i`), as announced in `Have`.
    pub fn have(&self, channel: ChannelId) -> Option<(u64, u64)> {
        let ring = self.channels.get(&channel)?;
        let newest = ring.iter().rev().find(|(_, s)| s.is_complete()).map(|(&seq, _)| seq)?;
        let mut bitmap = 0u64;
        for (&seq, s) in ring.range(newest.saturating_sub(63)..=newest) {
            if s.is_complete() {
                bitmap |= 1 << (newest - seq);
            }
        }
        Some((newest, bitmap))
    }

    /// Channels with at least one stored segment.
    pub fn channels(&self) -> impl Iterator<Item = ChannelId> + '_ {
        self.channels.iter().filter(|(_, r)| !r.is_empty()).map(|(&c, _)| c)
    }

    /// Removes segment `seq` of `channel`, if stored.
    pub fn remove(&mut self, channel: ChannelId, seq: u64) -> bool {
        let Some(ring) = self.channels.get_mut(&channel) else {
            return false;
        };
        let Some(segment) = ring.remove(&seq) else {
            return false;
        };
        self.used -= segment.reserved();
        if ring.is_empty() {
            self.channels.remove(&channel);
        }
        true
    }

    /// Removes every segment of `channel` (it left the lineup); how many.
    pub fn remove_channel(&mut self, channel: ChannelId) -> usize {
        let Some(ring) = self.channels.remove(&channel) else {
            return 0;
        };
        self.used -= ring.values().map(Segment::reserved).sum::<usize>();
        // Their entries in `arrivals` no longer match a stored segment and are skipped there.
        ring.len()
    }

    fn evict_oldest(&mut self) -> bool {
        while let Some((arrival, channel, seq)) = self.arrivals.pop_front() {
            let current = self.segment(channel, seq).is_some_and(|s| s.arrival == arrival);
            if current {
                self.remove(channel, seq);
                self.counters.evicted += 1;
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{SegmentInfo, BLOCK_SIZE};
    use crate::Identity;
    use core::time::Duration;
    use proptest::prelude::*;

    fn manifest(id: &Identity, channel: u8, seq: u64, bytes: &[u8]) -> SignedManifest {
        let info = SegmentInfo::new(ChannelId([channel; 8]), seq, Duration::from_secs(2));
        SignedManifest::build(id, info, bytes).unwrap()
    }

    #[test]
    fn blocks_are_verified_before_they_are_stored() {
        let id = Identity::from_seed([1; 32]);
        let bytes = vec![5u8; 3 * BLOCK_SIZE];
        let m = manifest(&id, 1, 9, &bytes);
        let tag = m.tag();
        let ch = ChannelId([1; 8]);
        let mut store = Store::new(1 << 20, 8);
        store.admit(m, Instant::ZERO).unwrap();
        assert_eq!(store.put_block(ch, 9, tag, 0, &[6; BLOCK_SIZE]), Err(StoreError::BadBlock));
        assert_eq!(store.block(ch, 9, 0), None);
        assert_eq!(store.put_block(ch, 9, tag ^ 1, 0, &bytes[..BLOCK_SIZE]), Err(StoreError::Unknown));
        assert_eq!(store.put_block(ch, 9, tag, 0, &bytes[..BLOCK_SIZE]), Ok(BlockOutcome::Stored));
        assert_eq!(store.put_block(ch, 9, tag, 0, &bytes[..BLOCK_SIZE]), Ok(BlockOutcome::Duplicate));
        assert_eq!(store.segment(ch, 9).unwrap().bytes(), None);
        store.put_block(ch, 9, tag, 1, &bytes[..BLOCK_SIZE]).unwrap();
        assert_eq!(store.put_block(ch, 9, tag, 2, &bytes[..BLOCK_SIZE]), Ok(BlockOutcome::Completed));
        assert_eq!(store.segment(ch, 9).unwrap().bytes(), Some(&bytes[..]));
        assert_eq!(store.counters().bad_blocks, 1);
        assert_eq!(store.have(ch), Some((9, 1)));
    }

    #[test]
    fn oldest_is_evicted_first_across_channels() {
        let id = Identity::from_seed([1; 32]);
        let mut store = Store::new(100_000, 64);
        let bytes = vec![1u8; 30_000];
        store.insert_complete(manifest(&id, 1, 1, &bytes), &bytes, Instant::ZERO).unwrap();
        store.insert_complete(manifest(&id, 2, 1, &bytes), &bytes, Instant::ZERO).unwrap();
        store.insert_complete(manifest(&id, 1, 2, &bytes), &bytes, Instant::ZERO).unwrap();
        store.insert_complete(manifest(&id, 2, 2, &bytes), &bytes, Instant::ZERO).unwrap();
        assert!(store.segment(ChannelId([1; 8]), 1).is_none());
        assert!(store.segment(ChannelId([2; 8]), 1).is_some());
        assert_eq!(store.counters().evicted, 1);
        let big = vec![1u8; 100_001];
        let err = store.admit(manifest(&id, 3, 1, &big), Instant::ZERO);
        assert_eq!(err, Err(StoreError::TooLarge(100_001)));
    }

    #[test]
    fn a_takeover_manifest_replaces_an_incomplete_segment_only() {
        let old = Identity::from_seed([1; 32]);
        let new = Identity::from_seed([2; 32]);
        let bytes = vec![3u8; 20_000];
        let ch = ChannelId([1; 8]);
        let mut store = Store::new(1 << 20, 8);
        store.admit(manifest(&old, 1, 4, &bytes), Instant::ZERO).unwrap();
        store.admit(manifest(&new, 1, 4, &bytes), Instant::ZERO).unwrap();
        assert_eq!(store.used(), 20_000);
        assert_eq!(store.segment(ch, 4).unwrap().manifest().manifest().signer, new.node_id());
        let m = manifest(&new, 1, 5, &bytes);
        store.insert_complete(m, &bytes, Instant::ZERO).unwrap();
        assert_eq!(store.admit(manifest(&old, 1, 5, &bytes), Instant::ZERO), Err(StoreError::Conflict));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Admit { channel: u8, seq: u64, len: usize },
        Block { channel: u8, seq: u64, index: usize, corrupt: bool },
        Remove { channel: u8, seq: u64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..3, 0u64..40, 1usize..200_000).prop_map(|(channel, seq, len)| Op::Admit {
                channel,
                seq,
                len
            }),
            (0u8..3, 0u64..40, 0usize..13, any::<bool>())
                .prop_map(|(channel, seq, index, corrupt)| Op::Block { channel, seq, index, corrupt }),
            (0u8..3, 0u64..40).prop_map(|(channel, seq)| Op::Remove { channel, seq }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever peers send, the reserved bytes never exceed the budget, they always equal
        /// the sum of stored segment lengths, and only verified bytes are readable.
        #[test]
        fn budget_holds_whatever_arrives(budget in 10_000usize..600_000, ring in 1usize..10,
                                         ops in proptest::collection::vec(op(), 1..120)) {
            let id = Identity::from_seed([7; 32]);
            let mut store = Store::new(budget, ring);
            let mut contents: BTreeMap<(u8, u64), Vec<u8>> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Admit { channel, seq, len } => {
                        let bytes: Vec<u8> = (0..len).map(|i| (i as u64 ^ seq) as u8).collect();
                        let m = manifest(&id, channel, seq, &bytes);
                        if store.admit(m, Instant::ZERO).is_ok() {
                            contents.insert((channel, seq), bytes);
                        }
                    }
                    Op::Block { channel, seq, index, corrupt } => {
                        let ch = ChannelId([channel; 8]);
                        let (Some(bytes), Some(seg)) = (contents.get(&(channel, seq)), store.segment(ch, seq)) else { continue };
                        let tag = seg.manifest().tag();
                        let start = index * BLOCK_SIZE;
                        if start >= bytes.len() { continue; }
                        let mut block = bytes[start..(start + BLOCK_SIZE).min(bytes.len())].to_vec();
                        if corrupt { block[0] ^= 0xFF; }
                        let result = store.put_block(ch, seq, tag, index, &block);
                        prop_assert_eq!(result.is_ok(), !corrupt || seg_has(&store, ch, seq, index));
                    }
                    Op::Remove { channel, seq } => { store.remove(ChannelId([channel; 8]), seq); }
                }
                prop_assert!(store.used() <= budget);
                let sum: usize = (0..3u8).flat_map(|c| store.segments(ChannelId([c; 8])).map(|s| s.reserved()).collect::<Vec<_>>()).sum();
                prop_assert_eq!(sum, store.used());
                for c in 0..3u8 {
                    let ch = ChannelId([c; 8]);
                    prop_assert!(store.segments(ch).count() <= ring);
                    for s in store.segments(ch) {
                        let seq = s.manifest().manifest().seq;
                        let expected = &contents[&(c, seq)];
                        for i in 0..s.manifest().block_count() {
                            if let Some(b) = s.block(i) {
                                prop_assert_eq!(b, &expected[i * BLOCK_SIZE..i * BLOCK_SIZE + b.len()]);
                            }
                        }
                    }
                }
            }
        }
    }

    fn seg_has(store: &Store, ch: ChannelId, seq: u64, index: usize) -> bool {
        store.segment(ch, seq).is_some_and(|s| s.has_block(index))
    }
}
