//! Keys and the three integrity checks of the protocol.
//!
//! - [`Authenticator`]: the 16-byte HMAC-SHA256 tag on every datagram, keyed by the deployment's
//!   [`NetworkKey`]. It proves membership: a device without the key has no say.
//! - [`Identity`]: a box's ed25519 key pair. The ingester signs each segment's manifest with it, so
//!   a keyed box cannot publish segments for a channel it does not ingest.
//! - [`block_hash`]: SHA-256 of a block, checked against the signed manifest before a block is
//!   stored, served or forwarded.
//!
//! ```
//! use shoal_core::{Authenticator, NetworkKey};
//! let auth = Authenticator::new(&NetworkKey::from_bytes([7; 32]));
//! let tag = auth.tag(b"hello");
//! assert!(auth.verify(b"hello", &tag));
//! assert!(!auth.verify(b"hellO", &tag));
//! ```

use core::fmt;

use ed25519_dalek::{Signer, Verifier};
use hmac::{Mac, SimpleHmac};
use sha2::{Digest, Sha256};

/// Length of the datagram tag: HMAC-SHA256 truncated to 128 bits, as in common AEAD tags.
pub const TAG_LEN: usize = 16;
/// Length of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// The deployment's shared secret: 32 random bytes that every box of one deployment holds.
#[derive(Clone, PartialEq, Eq)]
pub struct NetworkKey([u8; 32]);

impl NetworkKey {
    /// A key from its 32 bytes (as read from the key file).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        NetworkKey(bytes)
    }

    /// The key's bytes, for writing the key file.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A short public fingerprint, so boxes of other deployments can be told apart (for example
    /// in mDNS TXT records) without revealing the key.
    pub fn fingerprint(&self) -> [u8; 4] {
        let digest = Sha256::new().chain_update(b"shoal-key-fingerprint").chain_update(self.0).finalize();
        [digest[0], digest[1], digest[2], digest[3]]
    }
}

impl fmt::Debug for NetworkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret itself.
        let fp = self.fingerprint();
        write!(f, "NetworkKey({:02x}{:02x}{:02x}{:02x}…)", fp[0], fp[1], fp[2], fp[3])
    }
}

/// Computes and checks datagram tags.
///
/// The HMAC state is keyed once and cloned per datagram, which saves re-hashing the key
/// (two SHA-256 compressions) on every packet.
#[derive(Clone)]
pub struct Authenticator {
    keyed: SimpleHmac<Sha256>,
    insecure: bool,
}

/// The key an `insecure` deployment uses: public, so it proves nothing but keeps one wire format.
const INSECURE_KEY: &[u8] = b"shoal insecure mode: no network key";

impl Authenticator {
    /// Tags under the deployment's network key.
    pub fn new(key: &NetworkKey) -> Self {
        Self::with_key(&key.0, false)
    }

    /// Tags under a well-known public key: anybody can forge them. Only for deployments that set
    /// `insecure` explicitly; such boxes cannot talk to keyed ones.
    pub fn insecure() -> Self {
        Self::with_key(INSECURE_KEY, true)
    }

    fn with_key(key: &[u8], insecure: bool) -> Self {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
        let keyed = <SimpleHmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        Authenticator { keyed, insecure }
    }

    /// Whether this authenticator is the public, insecure one.
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// The tag of `data`.
    pub fn tag(&self, data: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.keyed.clone();
        mac.update(data);
        let full = mac.finalize().into_bytes();
        let mut tag = [0; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// Whether `tag` is the tag of `data`, compared in constant time.
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.keyed.clone();
        mac.update(data);
        mac.verify_truncated_left(tag).is_ok()
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator").field("insecure", &self.insecure).finish()
    }
}

/// A box's ed25519 key pair and the node id derived from it.
#[derive(Clone)]
pub struct Identity {
    signing: ed25519_dalek::SigningKey,
    node_id: crate::NodeId,
}

impl Identity {
    /// The identity whose secret key is `seed` (32 bytes, as stored in the state directory).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let node_id = crate::NodeId::from_public_key(signing.verifying_key().as_bytes());
        Identity { signing, node_id }
    }

    /// The secret seed, for storing the identity.
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// This box's node id.
    pub fn node_id(&self) -> crate::NodeId {
        self.node_id
    }

    /// This box's public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity").field("node_id", &self.node_id).finish()
    }
}

/// A peer's public key, parsed once when its hello arrives.
#[derive(Clone, Debug)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Parses a public key; `None` if the bytes are not a valid curve point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<Self> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes).ok().map(PublicKey)
    }

    /// The key's 32 bytes, as a hello carries them.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.0.verify(message, &signature).is_ok()
    }
}

/// SHA-256 of a block.
pub fn block_hash(block: &[u8]) -> [u8; 32] {
    Sha256::digest(block).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_differ_by_key_and_insecure_is_not_keyed() {
        let a = Authenticator::new(&NetworkKey::from_bytes([1; 32]));
        let b = Authenticator::new(&NetworkKey::from_bytes([2; 32]));
        let open = Authenticator::insecure();
        let tag = a.tag(b"datagram");
        assert!(!b.verify(b"datagram", &tag));
        assert!(!open.verify(b"datagram", &tag));
        assert!(open.verify(b"datagram", &open.tag(b"datagram")));
        assert!(open.is_insecure() && !a.is_insecure());
    }

    #[test]
    fn signatures_bind_message_and_key() {
        let id = Identity::from_seed([9; 32]);
        let other = Identity::from_seed([8; 32]);
        let sig = id.sign(b"manifest");
        let key = PublicKey::from_bytes(&id.public_key()).expect("valid key");
        assert!(key.verify(b"manifest", &sig));
        assert!(!key.verify(b"manifesT", &sig));
        assert!(!key.verify(b"manifest", &other.sign(b"manifest")));
        assert_eq!(id.node_id(), crate::NodeId::from_public_key(&id.public_key()));
        assert_eq!(Identity::from_seed(id.seed()).node_id(), id.node_id());
    }
}
