//! Identifiers: boxes ([`NodeId`]) and channels ([`ChannelId`]).
//!
//! A node id is derived from the box's ed25519 public key, so a box cannot claim another box's
//! id without its key pair. A channel id is derived from the channel's configured id and source,
//! so two deployments that reuse a name for different feeds never mix them up.
//!
//! ```
//! use shoal_core::ChannelId;
//! let a = ChannelId::derive("news", "https://origin.example/news.m3u8");
//! let b = ChannelId::derive("news", "udp://239.1.1.1:5000");
//! assert_ne!(a, b);
//! ```

use core::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A box, named by the first 16 bytes of SHA-256 of its ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub [u8; 16]);

impl NodeId {
    /// The node id that belongs to `public_key`.
    pub fn from_public_key(public_key: &[u8; 32]) -> Self {
        let digest = Sha256::new().chain_update(b"shoal-node-id").chain_update(public_key).finalize();
        let mut id = [0; 16];
        id.copy_from_slice(&digest[..16]);
        NodeId(id)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight hex digits tell boxes apart in logs; the full id is in `Display`'s alternate form.
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes: &[u8] = if f.alternate() { &self.0 } else { &self.0[..4] };
        for b in bytes {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A channel, named by 8 bytes of SHA-256 of its configured id and source.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChannelId(pub [u8; 8]);

impl ChannelId {
    /// The channel id of a channel configured as `id` with source `source`.
    pub fn derive(id: &str, source: &str) -> Self {
        let digest = Sha256::new()
            .chain_update(b"shoal-channel")
            .chain_update((id.len() as u64).to_le_bytes())
            .chain_update(id.as_bytes())
            .chain_update(source.as_bytes())
            .finalize();
        let mut out = [0; 8];
        out.copy_from_slice(&digest[..8]);
        ChannelId(out)
    }
}

impl fmt::Debug for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}
