//! Arbitrary bytes into `UnverifiedManifest::parse`. A manifest that parses must describe a real
//! segment: blocks that tile its length exactly, each at most `BLOCK_SIZE` and only the last one
//! short. Verifying its signature (under an unrelated key) must fail cleanly, not panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shoal_core::{Identity, PublicKey, UnverifiedManifest, BLOCK_SIZE};

fn key() -> &'static PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let identity = Identity::from_seed(shoal_fuzz::PEER_IDENTITIES[0]);
        PublicKey::from_bytes(&identity.public_key()).expect("valid key")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = UnverifiedManifest::parse(data) else {
        return;
    };
    let m = parsed.manifest();
    let count = m.block_count();
    assert!(count >= 1, "a parsed manifest has at least one block");
    assert_eq!(count, m.hashes.len());
    let mut total = 0usize;
    for i in 0..count {
        let len = m.block_len(i);
        assert!((1..=BLOCK_SIZE).contains(&len), "block {i} has length {len}");
        assert!(
            i + 1 == count || len == BLOCK_SIZE,
            "only the last block may be short"
        );
        assert_eq!(
            m.block_offset(i),
            total,
            "block {i} does not start where the previous ended"
        );
        total += len;
    }
    assert_eq!(
        total, m.length as usize,
        "blocks do not add up to the segment length"
    );
    assert_eq!(m.block_len(count), 0, "block past the end has a length");
    assert_eq!(m.block_len(usize::MAX), 0);
    assert!(m.duration_us > 0);

    // Only seeds signed by PEER_IDENTITIES[0] verify; everything else is a clean BadSignature.
    if let Ok(signed) = parsed.verify(key()) {
        assert_eq!(signed.block_count(), count);
        assert_eq!(&signed.encoded()[..], data);
    }
});
