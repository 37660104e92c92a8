//! What a box knows of an on-demand asset: every segment's duration, flags and content id, taken
//! from the signed manifests it accepted. Every box that carries the channel receives every
//! manifest (the push reaches all carriers), so every box can list the whole asset to its TVs
//! even though its disk keeps only its share of the segments.
//!
//! The catalog is what makes a segment findable later: its content id names the object on any
//! box's disk, and bytes from a peer or the origin are served only if they hash to it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shoal_disk::ContentId;

/// Most segments one asset may list: the origin playlist parser's own limit (a 24 h asset of
/// 2 s segments).
pub const MAX_ENTRIES: usize = crate::origin::playlist::MAX_SEGMENTS;
/// Format of the encoded catalog; bumped when `Entry` changes.
const FORMAT: u8 = 2;

/// One segment of an asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Playback duration in microseconds.
    pub duration_us: u64,
    /// Playback is discontinuous before it.
    pub discontinuity: bool,
    /// The asset's last segment.
    pub end_of_stream: bool,
    /// Length in bytes (with any init section).
    pub len: u32,
    /// Length of the fMP4 init section at its start (0: MPEG-TS).
    pub init_len: u32,
    /// Names the init section's content ([`crate::model::init_id`]; 0: none).
    pub init_id: u64,
    /// SHA-256 of its bytes.
    pub id: ContentId,
}

impl Entry {
    /// Playback duration.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.duration_us)
    }
}

/// The known segments of one asset, by sequence number.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    entries: BTreeMap<u64, Entry>,
}

/// Why a stored catalog was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("written by another version (format {0})")]
    Format(u8),
    #[error("undecodable: {0}")]
    Decode(#[from] postcard::Error),
    #[error("lists {0} segments, over the limit of {MAX_ENTRIES}")]
    TooLong(usize),
}

impl Catalog {
    /// Records `seq`; whether it was new. A catalog that is full takes nothing more.
    pub fn insert(&mut self, seq: u64, entry: Entry) -> bool {
        if self.entries.len() >= MAX_ENTRIES && !self.entries.contains_key(&seq) {
            return false;
        }
        self.entries.insert(seq, entry) != Some(entry)
    }

    /// The segment `seq`, if known.
    pub fn get(&self, seq: u64) -> Option<&Entry> {
        self.entries.get(&seq)
    }

    /// Segments known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Nothing known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All known segments, in order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Entry)> + '_ {
        self.entries.iter().map(|(&s, e)| (s, e))
    }

    /// The segments a playlist can list: the unbroken run from the first known one (a media
    /// playlist's sequence numbers have no holes).
    pub fn listable(&self) -> impl Iterator<Item = (u64, &Entry)> + '_ {
        let first = self.entries.keys().next().copied().unwrap_or(0);
        self.entries
            .iter()
            .enumerate()
            .take_while(move |&(i, (&s, _))| s == first + i as u64)
            .map(|(_, (&s, e))| (s, e))
    }

    /// How many segments the asset has, once its last one is known.
    pub fn total(&self) -> Option<usize> {
        let (&first, _) = self.entries.first_key_value()?;
        let (&last, entry) = self.entries.last_key_value()?;
        entry.end_of_stream.then(|| (last - first + 1) as usize)
    }

    /// Every segment from the first to the last is known.
    pub fn is_complete(&self) -> bool {
        self.total() == Some(self.entries.len())
    }

    /// The catalog as stored on disk.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT];
        // Encoding a map of plain fields into a Vec cannot fail.
        out.extend(postcard::to_stdvec(self).unwrap_or_default());
        out
    }

    /// A catalog read back from disk.
    pub fn decode(bytes: &[u8]) -> Result<Catalog, CatalogError> {
        match bytes.split_first() {
            Some((&FORMAT, rest)) => {
                let catalog: Catalog = postcard::from_bytes(rest)?;
                if catalog.entries.len() > MAX_ENTRIES {
                    return Err(CatalogError::TooLong(catalog.entries.len()));
                }
                Ok(catalog)
            }
            Some((&other, _)) => Err(CatalogError::Format(other)),
            None => Err(CatalogError::Format(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8, end_of_stream: bool) -> Entry {
        Entry {
            duration_us: 2_000_000,
            discontinuity: false,
            end_of_stream,
            len: 100,
            init_len: 0,
            init_id: 0,
            id: [n; 32],
        }
    }

    #[test]
    fn complete_only_with_every_segment_up_to_the_last() {
        let mut c = Catalog::default();
        assert!(c.insert(0, entry(0, false)) && c.insert(2, entry(2, true)));
        assert_eq!((c.total(), c.is_complete(), c.listable().count()), (Some(3), false, 1));
        assert!(c.insert(1, entry(1, false)));
        assert!(!c.insert(1, entry(1, false)), "the same entry again is not new");
        assert_eq!((c.total(), c.is_complete(), c.listable().count()), (Some(3), true, 3));
    }

    #[test]
    fn round_trips_and_refuses_other_formats() {
        let mut c = Catalog::default();
        for n in 0..5 {
            c.insert(u64::from(n) + 10, entry(n, n == 4));
        }
        assert_eq!(Catalog::decode(&c.encode()).unwrap(), c);
        let mut other = c.encode();
        other[0] = 9;
        assert!(matches!(Catalog::decode(&other), Err(CatalogError::Format(9))));
        assert!(Catalog::decode(&c.encode()[..20]).is_err());
        assert!(Catalog::decode(&[]).is_err());
    }
}
