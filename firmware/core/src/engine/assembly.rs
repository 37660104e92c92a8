//! Reassembly of blocks and manifests from fragments, in bounded memory.
//!
//! A partial block lives here until all its bytes have arrived; only then is it hashed and, if
//! it matches its manifest, handed to the store. The pools have fixed capacities; when one is
//! full the entry touched longest ago is dropped (and counted by the engine), so a peer sending
//! fragments of many blocks at once costs at most the pool's size.

use std::collections::BTreeMap;

use crate::ranges::{RangeSet, RangesFull};
use crate::{ChannelId, Instant, NodeId};

/// A block being reassembled.
#[derive(Debug)]
pub(crate) struct PartialBlock {
    pub(crate) tag: u32,
    pub(crate) bytes: Vec<u8>,
    pub(crate) got: RangeSet,
    /// The peer that sent the latest fragment: the first one asked for what is missing.
    pub(crate) from: NodeId,
    /// Whether fragments came from more than one peer (a bad hash then names no culprit).
    pub(crate) mixed: bool,
    pub(crate) last_at: Instant,
    /// Repair requests sent for it since its last progress.
    pub(crate) nacks: u8,
}

pub(crate) type BlockKey = (ChannelId, u64, u16);

/// Why a fragment was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FragmentError {
    /// Outside the block.
    OutOfBounds,
    /// The block's range bookkeeping is full.
    TooFragmented,
}

/// Partial blocks, at most `capacity` at once.
#[derive(Debug)]
pub(crate) struct BlockPool {
    pub(crate) blocks: BTreeMap<BlockKey, PartialBlock>,
    capacity: usize,
}

impl BlockPool {
    pub(crate) fn new(capacity: usize) -> Self {
        BlockPool { blocks: BTreeMap::new(), capacity: capacity.max(1) }
    }

    /// Adds a fragment. Returns the whole block when it completes, and whether an older partial
    /// block had to be dropped to make room.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add(
        &mut self,
        key: BlockKey,
        tag: u32,
        block_len: usize,
        offset: usize,
        fragment: &[u8],
        from: NodeId,
        now: Instant,
    ) -> Result<(Option<PartialBlock>, bool), FragmentError> {
        let end = offset.checked_add(fragment.len()).ok_or(FragmentError::OutOfBounds)?;
        if end > block_len || fragment.is_empty() || block_len > usize::from(u16::MAX) {
            return Err(FragmentError::OutOfBounds);
        }
        let mut evicted = false;
        if self.blocks.get(&key).is_some_and(|b| b.tag != tag) {
            self.blocks.remove(&key);
        }
        if !self.blocks.contains_key(&key) && self.blocks.len() >= self.capacity {
            if let Some(oldest) = self.blocks.iter().min_by_key(|(_, b)| b.last_at).map(|(k, _)| *k) {
                self.blocks.remove(&oldest);
                evicted = true;
            }
        }
        let entry = self.blocks.entry(key).or_insert_with(|| PartialBlock {
            tag,
            bytes: vec![0; block_len],
            got: RangeSet::new(),
            from,
            mixed: false,
            last_at: now,
            nacks: 0,
        });
        // Offsets fit in u16: block_len <= u16::MAX was checked above.
        entry.got.insert(offset as u16, end as u16).map_err(|RangesFull| FragmentError::TooFragmented)?;
        entry.bytes[offset..end].copy_from_slice(fragment);
        entry.mixed |= entry.from != from;
        entry.from = from;
        entry.last_at = now;
        entry.nacks = 0;
        if entry.got.covers(block_len as u16) {
            Ok((self.blocks.remove(&key), evicted))
        } else {
            Ok((None, evicted))
        }
    }

    pub(crate) fn remove_segment(&mut self, channel: ChannelId, seq: u64) {
        self.blocks.retain(|&(c, s, _), _| c != channel || s != seq);
    }
}

/// A manifest being reassembled.
#[derive(Debug)]
pub(crate) struct PartialManifest {
    pub(crate) bytes: Vec<u8>,
    pub(crate) got: RangeSet,
    pub(crate) from: NodeId,
    pub(crate) last_at: Instant,
}

pub(crate) type ManifestKey = (ChannelId, u64, NodeId);

/// Partial manifests, at most `capacity` at once.
#[derive(Debug)]
pub(crate) struct ManifestPool {
    pub(crate) manifests: BTreeMap<ManifestKey, PartialManifest>,
    capacity: usize,
}

impl ManifestPool {
    pub(crate) fn new(capacity: usize) -> Self {
        ManifestPool { manifests: BTreeMap::new(), capacity: capacity.max(1) }
    }

    /// Adds a fragment of a manifest of `total` bytes; returns the whole encoding when complete.
    pub(crate) fn add(
        &mut self,
        key: ManifestKey,
        total: usize,
        offset: usize,
        fragment: &[u8],
        from: NodeId,
        now: Instant,
    ) -> Result<(Option<Vec<u8>>, bool), FragmentError> {
        let end = offset.checked_add(fragment.len()).ok_or(FragmentError::OutOfBounds)?;
        if end > total || fragment.is_empty() || total > usize::from(u16::MAX) {
            return Err(FragmentError::OutOfBounds);
        }
        if self.manifests.get(&key).is_some_and(|m| m.bytes.len() != total) {
            self.manifests.remove(&key);
        }
        let mut evicted = false;
        if !self.manifests.contains_key(&key) && self.manifests.len() >= self.capacity {
            if let Some(oldest) = self.manifests.iter().min_by_key(|(_, m)| m.last_at).map(|(k, _)| *k) {
                self.manifests.remove(&oldest);
                evicted = true;
            }
        }
        let entry = self.manifests.entry(key).or_insert_with(|| PartialManifest {
            bytes: vec![0; total],
            got: RangeSet::new(),
            from,
            last_at: now,
        });
        entry.got.insert(offset as u16, end as u16).map_err(|RangesFull| FragmentError::TooFragmented)?;
        entry.bytes[offset..end].copy_from_slice(fragment);
        entry.from = from;
        entry.last_at = now;
        if entry.got.covers(total as u16) {
            Ok((self.manifests.remove(&key).map(|m| m.bytes), evicted))
        } else {
            Ok((None, evicted))
        }
    }
}
