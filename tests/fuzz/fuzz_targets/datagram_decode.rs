//! Arbitrary bytes into the wire decoder: as a whole datagram under a fixed network key and
//! under the insecure key, and into `decode_body`, the postcard parser the MAC normally shields.
//! Whatever decodes must re-encode and decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::crypto::TAG_LEN;
use shoal_core::wire::{self, DecodeError, Header, Message};
use shoal_core::Authenticator;
use shoal_fuzz::{frame_insecure, fuzz_auth};

/// Re-encodes a decoded message and checks it decodes to the same value, as a datagram and as a
/// body, and that `body_len` predicts the encoding's length.
fn round_trip(auth: &Authenticator, header: &Header, message: &Message<'_>, input_len: usize) {
    // A canonical encoding is never longer than the (maybe non-canonical) one it came from.
    let mut buf = vec![0; input_len + wire::FRAMING_LEN + 64];
    let len = match wire::encode(auth, header, message, &mut buf) {
        Ok(len) => len,
        Err(e) => panic!("decoded message does not re-encode: {e}: {header:?} {message:?}"),
    };
    assert_eq!(
        wire::body_len(header, message) + wire::FRAMING_LEN,
        len,
        "body_len disagrees with encode"
    );
    let again = wire::decode(auth, &buf[..len]).expect("re-encoded datagram decodes");
    assert_eq!(&again.header, header);
    assert_eq!(&again.message, message);
    let (h, m) = wire::decode_body(&buf[1..len - TAG_LEN]).expect("re-encoded body decodes");
    assert_eq!(&h, header);
    assert_eq!(&m, message);
}

fuzz_target!(|data: &[u8]| {
    let keyed = fuzz_auth();
    let insecure = Authenticator::insecure();

    // 1. The whole input as a datagram, as it arrives from the network.
    for auth in [&keyed, &insecure] {
        if let Ok(d) = wire::decode(auth, data) {
            round_trip(auth, &d.header, &d.message, data.len());
        }
    }

    // 2. The parser behind the MAC, on the whole input and on the body of a framed input (so
    //    seeds that are real datagrams reach it unchanged).
    let mut bodies = vec![data];
    if data.len() > wire::FRAMING_LEN {
        bodies.push(&data[1..data.len() - TAG_LEN]);
    }
    for body in bodies {
        let parsed = wire::decode_body(body);
        if let Ok((header, message)) = &parsed {
            round_trip(&insecure, header, message, body.len());
        }
        // Framing a body with a valid tag must make `decode` agree with `decode_body` (an empty
        // body is the one exception: `decode` calls that datagram too short).
        let framed = frame_insecure(body);
        let decoded = wire::decode(&insecure, &framed).map(|d| (d.header, d.message));
        if body.is_empty() {
            assert_eq!(decoded, Err(DecodeError::TooShort));
        } else {
            assert_eq!(
                decoded, parsed,
                "decode and decode_body disagree on a validly tagged body"
            );
        }
    }
});
