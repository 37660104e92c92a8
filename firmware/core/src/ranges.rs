//! A small, bounded set of byte ranges inside one block.
//!
//! Fragments of a block can arrive from several peers, cut at different sizes, out of order and
//! twice. A `RangeSet` records which bytes have arrived as at most [`MAX_RANGES`] disjoint,
//! sorted, half-open ranges; its complement within a block is what a repair request asks for.
//!
//! ```
//! use shoal_core::RangeSet;
//! let mut got = RangeSet::new();
//! got.insert(0, 100).unwrap();
//! got.insert(200, 300).unwrap();
//! got.insert(100, 200).unwrap();
//! assert!(got.covers(300));
//! ```

use heapless::Vec;
use serde::{Deserialize, Serialize};

/// How many disjoint ranges a set keeps. A block of 16 KiB arrives in about 14 fragments, so
/// even every other fragment lost leaves at most 8 gaps; a set that would need more refuses the
/// insert (the fragment is dropped and fetched again later).
pub const MAX_RANGES: usize = 16;

/// Disjoint, sorted, non-empty half-open ranges `start..end` of byte offsets within a block.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeSet {
    ranges: Vec<(u16, u16), MAX_RANGES>,
}

/// The set would need more than [`MAX_RANGES`] ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangesFull;

impl RangeSet {
    /// The empty set.
    pub const fn new() -> Self {
        RangeSet { ranges: Vec::new() }
    }

    /// The single range `0..len`, or the empty set for `len == 0`.
    pub fn full(len: u16) -> Self {
        let mut set = RangeSet::new();
        if len > 0 {
            // An empty set has room for one range.
            let _ = set.ranges.push((0, len));
        }
        set
    }

    /// Adds `start..end`, merging with neighbours it touches or overlaps.
    pub fn insert(&mut self, start: u16, end: u16) -> Result<(), RangesFull> {
        if start >= end {
            return Ok(());
        }
        let (mut lo, mut hi) = (start, end);
        let mut merged: Vec<(u16, u16), MAX_RANGES> = Vec::new();
        let mut placed = false;
        for &(s, e) in &self.ranges {
            if e < lo {
                merged.push((s, e)).map_err(|_| RangesFull)?;
            } else if s > hi {
                if !placed {
                    merged.push((lo, hi)).map_err(|_| RangesFull)?;
                    placed = true;
                }
                merged.push((s, e)).map_err(|_| RangesFull)?;
            } else {
                lo = lo.min(s);
                hi = hi.max(e);
            }
        }
        if !placed {
            merged.push((lo, hi)).map_err(|_| RangesFull)?;
        }
        self.ranges = merged;
        Ok(())
    }

    /// Removes `start..end` (used by a sender as fragments go out).
    pub fn remove(&mut self, start: u16, end: u16) {
        let mut kept: Vec<(u16, u16), MAX_RANGES> = Vec::new();
        for &(s, e) in &self.ranges {
            // Cutting a hole can split one range in two; if that overflows, keeping the larger
            // set is the conservative choice (bytes are sent twice, never skipped).
            if e <= start || s >= end {
                if kept.push((s, e)).is_err() {
                    return;
                }
                continue;
            }
            if s < start && kept.push((s, start)).is_err() {
                return;
            }
            if e > end && kept.push((end, e)).is_err() {
                return;
            }
        }
        self.ranges = kept;
    }

    /// Whether the set is exactly `0..len`.
    pub fn covers(&self, len: u16) -> bool {
        len == 0 || self.ranges.as_slice() == [(0, len)]
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The ranges, sorted.
    pub fn iter(&self) -> impl Iterator<Item = (u16, u16)> + '_ {
        self.ranges.iter().copied()
    }

    /// The first range, if any.
    pub fn first(&self) -> Option<(u16, u16)> {
        self.ranges.first().copied()
    }

    /// Number of bytes in the set.
    pub fn len_bytes(&self) -> usize {
        self.ranges.iter().map(|&(s, e)| usize::from(e - s)).sum()
    }

    /// The parts of `0..len` that are not in the set.
    pub fn complement(&self, len: u16) -> RangeSet {
        let mut out = RangeSet::new();
        let mut at = 0;
        for &(s, e) in &self.ranges {
            if s > at {
                // At most one more gap than ranges, and ranges ≤ MAX_RANGES: a full complement
                // can drop its last gap, which is fetched in the next round.
                let _ = out.ranges.push((at, s.min(len)));
            }
            at = e;
        }
        if at < len {
            let _ = out.ranges.push((at, len));
        }
        out
    }

    /// Whether every range lies within `0..len` and is non-empty, sorted and disjoint (a set
    /// decoded from the network is checked with this before use).
    pub fn is_valid_within(&self, len: u16) -> bool {
        let mut at = 0u16;
        for (i, &(s, e)) in self.ranges.iter().enumerate() {
            if s >= e || e > len || (i > 0 && s <= at) {
                return false;
            }
            at = e;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn complement_and_remove() {
        let mut set = RangeSet::new();
        set.insert(10, 20).unwrap();
        set.insert(30, 40).unwrap();
        let gaps: std::vec::Vec<_> = set.complement(50).iter().collect();
        assert_eq!(gaps, [(0, 10), (20, 30), (40, 50)]);
        let mut all = RangeSet::full(50);
        all.remove(0, 25);
        assert_eq!(all.iter().collect::<std::vec::Vec<_>>(), [(25, 50)]);
        all.remove(30, 35);
        assert_eq!(all.len_bytes(), 20);
    }

    proptest! {
        #[test]
        fn insert_matches_a_bitmap(ops in proptest::collection::vec((0u16..500, 1u16..80), 0..40)) {
            let mut set = RangeSet::new();
            let mut bits = [false; 600];
            for (start, len) in ops {
                if set.insert(start, start + len).is_ok() {
                    for b in &mut bits[usize::from(start)..usize::from(start + len)] { *b = true; }
                }
                prop_assert!(set.is_valid_within(600));
                let count = bits.iter().filter(|b| **b).count();
                prop_assert_eq!(set.len_bytes(), count);
            }
        }
    }
}
