//! Manifests: what a segment is, block by block, signed by the box that ingested it.
//!
//! The ingester cuts a segment into blocks of [`BLOCK_SIZE`] bytes and publishes a manifest with
//! the SHA-256 of every block, signed with its ed25519 key. A box checks the signature (and that
//! the signer is the channel's elected ingester, which the engine decides) before it believes a
//! manifest, and checks every block against it before storing, serving or forwarding the block.
//!
//! On the wire a manifest is `postcard(Manifest) ‖ signature`, sent in [`crate::wire::ManifestPart`]
//! fragments. Its [`tag`](SignedManifest::tag) (4 bytes of the hash of those bytes) names it in
//! data fragments, so blocks of two different manifests for one sequence number never mix.
//!
//! ```
//! use core::time::Duration;
//! use shoal_core::{ChannelId, Identity, PublicKey, SegmentInfo, SignedManifest, UnverifiedManifest};
//! let ingester = Identity::from_seed([1; 32]);
//! let info = SegmentInfo::new(ChannelId([1; 8]), 42, Duration::from_secs(2));
//! let bytes = vec![7u8; 40_000];
//! let signed = SignedManifest::build(&ingester, info, &bytes).unwrap();
//! let parsed = UnverifiedManifest::parse(signed.encoded()).unwrap();
//! let key = PublicKey::from_bytes(&ingester.public_key()).unwrap();
//! let verified = parsed.verify(&key).unwrap();
//! assert_eq!(verified.block_count(), 3);
//! assert!(verified.check_block(2, &bytes[32768..]));
//! ```

use core::time::Duration;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::crypto::{block_hash, Identity, PublicKey, SIGNATURE_LEN};
use crate::{ChannelId, NodeId};

/// Bytes per block: large enough that per-block hashing and bookkeeping are cheap, small enough
/// that a box forwards a block (cut-through) after ~1.3 ms at 100 Mbit/s.
pub const BLOCK_SIZE: usize = 16 * 1024;
/// Largest segment: 30 MiB, i.e. 10 s of a 25 Mbit/s 4K stream. It also keeps an encoded
/// manifest under 64 KiB, so fragment offsets fit in 16 bits.
pub const MAX_SEGMENT_LEN: usize = 30 * 1024 * 1024;
/// Most blocks in one segment.
pub const MAX_BLOCKS: usize = MAX_SEGMENT_LEN / BLOCK_SIZE;
/// Largest encoded manifest: all hashes plus fields and signature, with room to spare
/// (61,696 bytes, under `u16::MAX`).
pub const MAX_MANIFEST_LEN: usize = MAX_BLOCKS * 32 + 256;
/// Longest segment duration accepted.
pub const MAX_SEGMENT_DURATION: Duration = Duration::from_secs(600);
/// Domain separation for manifest signatures.
const SIGNING_CONTEXT: &[u8] = b"shoal manifest v1";

/// What the ingester knows about a segment besides its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The channel.
    pub channel: ChannelId,
    /// The segment's sequence number (the origin's media sequence number for HLS).
    pub seq: u64,
    /// Playback duration.
    pub duration: Duration,
    /// Whether playback is discontinuous before this segment (new encoder, takeover of a TS source).
    pub discontinuity: bool,
    /// Bytes at the start of the segment that are its fMP4 initialization section (the origin's
    /// `EXT-X-MAP`), carried with every segment so any box can serve any segment alone; 0 for
    /// MPEG-TS.
    pub init_len: u32,
    /// The segment belongs to an on-demand asset (the origin's playlist had `EXT-X-ENDLIST`).
    pub vod: bool,
    /// The asset's last segment: TVs' playlists end with `EXT-X-ENDLIST` once it is held.
    pub end_of_stream: bool,
}

impl SegmentInfo {
    /// A live MPEG-TS segment: no discontinuity, no init section.
    pub fn new(channel: ChannelId, seq: u64, duration: Duration) -> Self {
        SegmentInfo {
            channel,
            seq,
            duration,
            discontinuity: false,
            init_len: 0,
            vod: false,
            end_of_stream: false,
        }
    }
}

/// The signed fields of a manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The channel.
    pub channel: ChannelId,
    /// The segment's sequence number.
    pub seq: u64,
    /// The box that ingested and signed it.
    pub signer: NodeId,
    /// Playback duration in microseconds.
    pub duration_us: u64,
    /// Length of the segment in bytes.
    pub length: u32,
    /// Bytes per block (the last block may be shorter).
    pub block_size: u32,
    /// Whether playback is discontinuous before this segment.
    pub discontinuity: bool,
    /// Length of the fMP4 initialization section at the start of the segment (0: none).
    pub init_len: u32,
    /// Part of an on-demand asset.
    pub vod: bool,
    /// The on-demand asset's last segment.
    pub end_of_stream: bool,
    /// SHA-256 of each block.
    pub hashes: Vec<[u8; 32]>,
}

/// Why a manifest was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum ManifestError {
    /// Not a manifest at all.
    #[error("malformed manifest")]
    Malformed,
    /// Fields that cannot describe a real segment (sizes, counts, duration).
    #[error("manifest fields out of range")]
    OutOfRange,
    /// The signature is not the signer's.
    #[error("bad manifest signature")]
    BadSignature,
    /// A segment to publish is empty or larger than [`MAX_SEGMENT_LEN`].
    #[error("segment length {0} outside 1..={MAX_SEGMENT_LEN}")]
    BadLength(usize),
}

impl Manifest {
    /// Playback duration.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.duration_us)
    }

    /// Number of blocks.
    pub fn block_count(&self) -> usize {
        self.hashes.len()
    }

    /// Length of block `index` (the last may be short); 0 if out of range.
    pub fn block_len(&self, index: usize) -> usize {
        let size = self.block_size as usize;
        let len = self.length as usize;
        let start = index.saturating_mul(size);
        if index >= self.hashes.len() || start >= len {
            return 0;
        }
        size.min(len - start)
    }

    /// Byte offset of block `index` within the segment.
    pub fn block_offset(&self, index: usize) -> usize {
        index * self.block_size as usize
    }

    fn validate(&self) -> Result<(), ManifestError> {
        let len = self.length as usize;
        let size = self.block_size as usize;
        let ok = (1..=MAX_SEGMENT_LEN).contains(&len)
            && size == BLOCK_SIZE
            && self.hashes.len() == len.div_ceil(size)
            && (self.init_len as usize) < len
            && self.duration_us > 0
            && self.duration_us <= MAX_SEGMENT_DURATION.as_micros() as u64;
        if ok {
            Ok(())
        } else {
            Err(ManifestError::OutOfRange)
        }
    }
}

/// The signed bytes of a manifest (its encoding without the signature).
pub fn encode_body(manifest: &Manifest) -> Vec<u8> {
    postcard::to_stdvec(manifest).unwrap_or_default()
}

fn signing_input(body: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(SIGNING_CONTEXT.len() + body.len());
    input.extend_from_slice(SIGNING_CONTEXT);
    input.extend_from_slice(body);
    input
}

fn tag_of(encoded: &[u8]) -> u32 {
    let digest = Sha256::digest(encoded);
    u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// A manifest parsed from the network whose signature has not been checked yet.
#[derive(Debug)]
pub struct UnverifiedManifest {
    manifest: Manifest,
    encoded: Arc<[u8]>,
}

impl UnverifiedManifest {
    /// Parses an encoded manifest and checks its fields are in range.
    pub fn parse(encoded: &[u8]) -> Result<Self, ManifestError> {
        if encoded.len() <= SIGNATURE_LEN || encoded.len() > MAX_MANIFEST_LEN {
            return Err(ManifestError::Malformed);
        }
        let body = &encoded[..encoded.len() - SIGNATURE_LEN];
        let manifest = match postcard::take_from_bytes::<Manifest>(body) {
            Ok((m, [])) => m,
            _ => return Err(ManifestError::Malformed),
        };
        manifest.validate()?;
        Ok(UnverifiedManifest { manifest, encoded: encoded.into() })
    }

    /// The claimed contents, for deciding whether the signer is acceptable at all.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Checks the signature with the signer's key.
    pub fn verify(self, signer_key: &PublicKey) -> Result<SignedManifest, ManifestError> {
        let split = self.encoded.len() - SIGNATURE_LEN;
        let mut signature = [0; SIGNATURE_LEN];
        signature.copy_from_slice(&self.encoded[split..]);
        if !signer_key.verify(&signing_input(&self.encoded[..split]), &signature) {
            return Err(ManifestError::BadSignature);
        }
        let tag = tag_of(&self.encoded);
        Ok(SignedManifest { manifest: Arc::new(self.manifest), encoded: self.encoded, tag })
    }
}

/// A manifest whose signature has been checked (or that this box made itself).
///
/// Cloning is cheap (two reference counts): the engine holds one per queued block and request,
/// and a 4 MiB segment's hash list is 8 KiB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedManifest {
    manifest: Arc<Manifest>,
    encoded: Arc<[u8]>,
    tag: u32,
}

impl SignedManifest {
    /// Builds and signs the manifest of `bytes` as the ingester `identity`.
    pub fn build(identity: &Identity, info: SegmentInfo, bytes: &[u8]) -> Result<Self, ManifestError> {
        if bytes.is_empty() || bytes.len() > MAX_SEGMENT_LEN {
            return Err(ManifestError::BadLength(bytes.len()));
        }
        let duration_us = u64::try_from(info.duration.as_micros()).unwrap_or(u64::MAX);
        let manifest = Manifest {
            channel: info.channel,
            seq: info.seq,
            signer: identity.node_id(),
            duration_us,
            // Fits: bytes.len() <= MAX_SEGMENT_LEN < u32::MAX.
            length: bytes.len() as u32,
            block_size: BLOCK_SIZE as u32,
            discontinuity: info.discontinuity,
            init_len: info.init_len,
            vod: info.vod,
            end_of_stream: info.end_of_stream,
            hashes: bytes.chunks(BLOCK_SIZE).map(block_hash).collect(),
        };
        manifest.validate()?;
        let mut encoded = postcard::to_stdvec(&manifest).map_err(|_| ManifestError::Malformed)?;
        let signature = identity.sign(&signing_input(&encoded));
        encoded.extend_from_slice(&signature);
        let tag = tag_of(&encoded);
        Ok(SignedManifest { manifest: Arc::new(manifest), encoded: encoded.into(), tag })
    }

    /// The manifest's fields.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The encoded, signed bytes, as sent on the wire.
    pub fn encoded(&self) -> &Arc<[u8]> {
        &self.encoded
    }

    /// A short name for this exact manifest, carried in data fragments.
    pub fn tag(&self) -> u32 {
        self.tag
    }

    /// Number of blocks.
    pub fn block_count(&self) -> usize {
        self.manifest.block_count()
    }

    /// Whether `bytes` is block `index` of this segment.
    pub fn check_block(&self, index: usize, bytes: &[u8]) -> bool {
        match self.manifest.hashes.get(index) {
            Some(hash) => bytes.len() == self.manifest.block_len(index) && block_hash(bytes) == *hash,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> SegmentInfo {
        SegmentInfo { discontinuity: true, ..SegmentInfo::new(ChannelId([3; 8]), 7, Duration::from_secs(2)) }
    }

    #[test]
    fn forged_and_tampered_manifests_are_refused() {
        let ingester = Identity::from_seed([1; 32]);
        let impostor = Identity::from_seed([2; 32]);
        let signed = SignedManifest::build(&ingester, info(), &[9; 100_000]).unwrap();
        let impostor_key = PublicKey::from_bytes(&impostor.public_key()).unwrap();
        let err = UnverifiedManifest::parse(signed.encoded()).unwrap().verify(&impostor_key);
        assert_eq!(err.unwrap_err(), ManifestError::BadSignature);

        let mut tampered = signed.encoded().to_vec();
        tampered[20] ^= 0x01;
        let key = PublicKey::from_bytes(&ingester.public_key()).unwrap();
        let result = UnverifiedManifest::parse(&tampered).and_then(|m| m.verify(&key));
        assert!(result.is_err());
    }

    #[test]
    fn block_geometry() {
        let ingester = Identity::from_seed([1; 32]);
        let bytes: Vec<u8> = (0..50_000u32).map(|i| (i / 1000) as u8).collect();
        let signed = SignedManifest::build(&ingester, info(), &bytes).unwrap();
        let m = signed.manifest();
        assert_eq!(m.block_count(), 4);
        assert_eq!(m.block_len(3), 50_000 - 3 * BLOCK_SIZE);
        assert_eq!(m.block_len(4), 0);
        assert!(signed.check_block(1, &bytes[BLOCK_SIZE..2 * BLOCK_SIZE]));
        assert!(!signed.check_block(1, &bytes[..BLOCK_SIZE]));
        assert!(SignedManifest::build(&ingester, info(), &[]).is_err());
    }

    #[test]
    fn inconsistent_fields_are_out_of_range() {
        let ingester = Identity::from_seed([1; 32]);
        let signed = SignedManifest::build(&ingester, info(), &[1; 20_000]).unwrap();
        let mut m: Manifest = signed.manifest().clone();
        m.hashes.pop();
        let mut encoded = postcard::to_stdvec(&m).unwrap();
        encoded.extend_from_slice(&[0; SIGNATURE_LEN]);
        assert_eq!(UnverifiedManifest::parse(&encoded).unwrap_err(), ManifestError::OutOfRange);
    }

    #[test]
    fn an_init_section_must_leave_media_after_it() {
        let ingester = Identity::from_seed([1; 32]);
        let fmp4 = SegmentInfo { init_len: 700, vod: true, end_of_stream: true, ..info() };
        let signed = SignedManifest::build(&ingester, fmp4, &[1; 20_000]).unwrap();
        let key = PublicKey::from_bytes(&ingester.public_key()).unwrap();
        let parsed = UnverifiedManifest::parse(signed.encoded()).unwrap().verify(&key).unwrap();
        assert_eq!(
            (parsed.manifest().init_len, parsed.manifest().vod, parsed.manifest().end_of_stream),
            (700, true, true)
        );
        let whole = SegmentInfo { init_len: 20_000, ..info() };
        assert_eq!(
            SignedManifest::build(&ingester, whole, &[1; 20_000]).unwrap_err(),
            ManifestError::OutOfRange
        );
    }
}
