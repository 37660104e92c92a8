//! The wire format: one datagram is one message.
//!
//! ```text
//! +---------+------------------------------------------------+-------------------+
//! | version | postcard( Header, Message )                    | HMAC-SHA256[..16] |
//! | 1 byte  | sender and receiver node ids, session, packet  | over all before   |
//! +---------+------------------------------------------------+-------------------+
//! ```
//!
//! Decoding checks, in order: length, version, tag (constant time), then postcard into typed,
//! borrowed values with no trailing bytes. Every failure is a [`DecodeError`] the engine counts;
//! nothing here panics on input. Bounded collections (`heapless::Vec`) refuse oversized lists
//! while decoding, so a message never holds more than its type allows.
//!
//! ```
//! use shoal_core::{wire, Authenticator, NetworkKey, NodeId};
//! let auth = Authenticator::new(&NetworkKey::from_bytes([3; 32]));
//! let header = wire::Header { sender: NodeId([1; 16]), receiver: NodeId([2; 16]), session: 7, packet: 1 };
//! let mut buf = [0u8; wire::DEFAULT_MAX_DATAGRAM];
//! let len = wire::encode(&auth, &header, &wire::Message::Goodbye, &mut buf).unwrap();
//! let datagram = wire::decode(&auth, &buf[..len]).unwrap();
//! assert_eq!(datagram.header, header);
//! assert!(matches!(datagram.message, wire::Message::Goodbye));
//! ```

use heapless::Vec;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::crypto::{Authenticator, TAG_LEN};
use crate::ranges::RangeSet;
use crate::{ChannelId, NodeId};

/// The protocol version this build speaks. A datagram of another version is dropped and counted.
pub const PROTOCOL_VERSION: u8 = 5;
/// Default largest datagram: 1280-byte IPv6 minimum MTU minus 40 (IPv6) and 8 (UDP) bytes, so it
/// crosses any path without fragmentation.
pub const DEFAULT_MAX_DATAGRAM: usize = 1232;
/// Smallest configurable datagram: a hello with a full lineup must fit.
pub const MIN_MAX_DATAGRAM: usize = 1024;
/// Largest configurable datagram: the UDP payload limit over IPv4.
pub const MAX_MAX_DATAGRAM: usize = 65_507;
/// Channels a box can carry (and announce in its hello).
pub const MAX_LINEUP: usize = 64;
/// Channels one ping can list as wanted or being ingested.
pub const MAX_STATUS_CHANNELS: usize = 32;
/// Bytes a datagram spends on version and tag, outside the postcard body.
pub const FRAMING_LEN: usize = 1 + TAG_LEN;

/// Who sent a datagram, to whom, in which session, as which packet (for replay protection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The sending box.
    pub sender: NodeId,
    /// The box it is for: a datagram is valid for one receiver only, so one sent to another
    /// box and replayed to this one is refused (packet numbers count per receiver).
    pub receiver: NodeId,
    /// Random per start of the sender's engine; a restart starts a new session.
    pub session: u32,
    /// Increases by one per datagram from this sender to this receiver within a session.
    pub packet: u64,
}

/// A protocol message.
///
/// The variants differ in size (a ping can list 64 channels); a message lives on the stack for
/// the one datagram it is decoded from or encoded into, so boxing the large ones would only add
/// allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message<'a> {
    /// Who I am and what I carry; also the session handshake.
    Hello(Hello),
    /// Liveness, RTT and status: what I want and what I am fetching from origins.
    Ping(Ping),
    /// Answer to a ping: echoes its time.
    Pong {
        /// The `time` of the ping being answered.
        echo: u64,
    },
    /// I am leaving; forget me now rather than after a timeout.
    Goodbye,
    /// Which segments of a channel I hold completely.
    Have(Have),
    /// A fragment of an encoded, signed manifest.
    #[serde(borrow)]
    ManifestPart(ManifestPart<'a>),
    /// Please send me (part of) a block, or a manifest.
    Request(Request),
    /// A fragment of a block.
    #[serde(borrow)]
    Data(Data<'a>),
    /// I cannot serve your request.
    Reject(Reject),
    /// As a channel's ingester, I vouch for a box that signed part of its window before me.
    Vouch(Vouch),
}

/// Sent on first contact and whenever a peer's session is not yet confirmed.
///
/// The challenge/echo pair confirms sessions: a box accepts a peer's new session only once a
/// hello in that session echoes the challenge it sent, which a replayed old hello cannot do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's ed25519 public key; its hash must be the header's node id.
    pub public_key: [u8; 32],
    /// A fresh random value the receiver must echo.
    pub challenge: u64,
    /// The receiver's last challenge to the sender, if the sender has seen one.
    pub echo: Option<u64>,
    /// The receiver's session that the sender has confirmed, if any: tells the receiver that
    /// the sender will now process its datagrams.
    pub confirmed: Option<u32>,
    /// The channels the sender carries (its lineup).
    pub lineup: Vec<ChannelId, MAX_LINEUP>,
}

/// Periodic liveness and status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// The sender's clock, echoed in the pong to measure RTT.
    pub time: u64,
    /// Channels the sender has viewers for.
    pub wants: Vec<ChannelId, MAX_STATUS_CHANNELS>,
    /// Channels the sender is fetching from their origins ("fetching" announcements).
    pub ingesting: Vec<Ingesting, MAX_STATUS_CHANNELS>,
}

/// One channel a box is fetching from its origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ingesting {
    /// The channel.
    pub channel: ChannelId,
    /// The sequence number of the newest segment it has published, if any.
    pub newest: Option<u64>,
    /// The origin fails the ingester's requests (it keeps trying): the channel's trouble, the
    /// same for every box, and no reason for another box to fetch too.
    pub origin_failing: bool,
}

/// A channel's ingester vouches for a former signer: the segments `first..=last` signed by the
/// holder of `public_key` were accepted under an election that named it. A box that never met
/// that signer, or whose election names it no more, can then check them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vouch {
    /// The channel.
    pub channel: ChannelId,
    /// The former signer's ed25519 public key (its node id is derived from it).
    pub public_key: [u8; 32],
    /// The first sequence number vouched for.
    pub first: u64,
    /// The last sequence number vouched for.
    pub last: u64,
}

/// The segments of one channel a box holds completely: bit `i` of `bitmap` is set when it holds
/// segment `newest - i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Have {
    /// The channel.
    pub channel: ChannelId,
    /// The newest segment held.
    pub newest: u64,
    /// Which of the 64 segments up to `newest` are held.
    pub bitmap: u64,
}

/// A fragment of an encoded manifest: bytes `offset..offset + bytes.len()` of `total`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestPart<'a> {
    /// The channel.
    pub channel: ChannelId,
    /// The segment's sequence number.
    pub seq: u64,
    /// The box that signed the manifest.
    pub signer: NodeId,
    /// Length of the whole encoded manifest.
    pub total: u32,
    /// Where this fragment starts.
    pub offset: u32,
    /// The fragment.
    pub bytes: &'a [u8],
}

/// A request for part of a segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The channel.
    pub channel: ChannelId,
    /// The segment's sequence number.
    pub seq: u64,
    /// What is wanted.
    pub item: Item,
}

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Item {
    /// The segment's manifest.
    Manifest,
    /// Byte ranges of one block, under the manifest whose tag is `tag`.
    Block {
        /// [`crate::Manifest::tag`] of the manifest the requester holds.
        tag: u32,
        /// The block's index.
        index: u16,
        /// The ranges wanted; empty means the whole block.
        ranges: RangeSet,
    },
}

/// A fragment of a block: bytes `offset..offset + bytes.len()` of block `block`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Data<'a> {
    /// The channel.
    pub channel: ChannelId,
    /// The segment's sequence number.
    pub seq: u64,
    /// [`crate::Manifest::tag`]: which manifest (and so which hashes) the block belongs to.
    pub tag: u32,
    /// The block's index in the segment.
    pub block: u16,
    /// Where this fragment starts within the block.
    pub offset: u16,
    /// The fragment.
    pub bytes: &'a [u8],
}

/// A refused request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// The channel.
    pub channel: ChannelId,
    /// The segment's sequence number.
    pub seq: u64,
    /// The block, or `None` for the manifest.
    pub block: Option<u16>,
    /// Why.
    pub reason: RejectReason,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    /// The server's queue for the requester is full; ask someone else or later.
    Busy,
    /// The server does not hold it.
    Missing,
}

/// A decoded datagram. Borrowed fields point into the received bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// Who sent it.
    pub header: Header,
    /// What it says.
    pub message: Message<'a>,
}

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Shorter than version byte plus tag.
    #[error("datagram too short")]
    TooShort,
    /// A version this build does not speak.
    #[error("unknown protocol version {0}")]
    UnknownVersion(u8),
    /// The tag does not match: no key, another deployment's key, or corruption.
    #[error("bad MAC")]
    BadMac,
    /// The tag matched but the body is not a valid message (a keyed peer with a bug, or a
    /// different build).
    #[error("malformed message")]
    Malformed,
}

/// A message did not fit the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("message does not fit in {0} bytes")]
pub struct TooLarge(pub usize);

/// Writes `header` and `message` as one datagram into `buf`; returns its length.
pub fn encode(
    auth: &Authenticator,
    header: &Header,
    message: &Message<'_>,
    buf: &mut [u8],
) -> Result<usize, TooLarge> {
    if buf.len() < FRAMING_LEN + 1 {
        return Err(TooLarge(buf.len()));
    }
    let capacity = buf.len();
    let body_room = capacity - TAG_LEN;
    buf[0] = PROTOCOL_VERSION;
    let body_len =
        postcard::to_slice(&(header, message), &mut buf[1..body_room]).map_err(|_| TooLarge(capacity))?.len();
    let end = 1 + body_len;
    let tag = auth.tag(&buf[..end]);
    buf[end..end + TAG_LEN].copy_from_slice(&tag);
    Ok(end + TAG_LEN)
}

/// Checks and decodes one datagram.
pub fn decode<'a>(auth: &Authenticator, bytes: &'a [u8]) -> Result<Datagram<'a>, DecodeError> {
    if bytes.len() < FRAMING_LEN + 1 {
        return Err(DecodeError::TooShort);
    }
    if bytes[0] != PROTOCOL_VERSION {
        return Err(DecodeError::UnknownVersion(bytes[0]));
    }
    let (signed, tag) = bytes.split_at(bytes.len() - TAG_LEN);
    if !auth.verify(signed, tag) {
        return Err(DecodeError::BadMac);
    }
    let (header, message) = decode_body(&signed[1..])?;
    Ok(Datagram { header, message })
}

/// Decodes a body without checking a tag (for fuzzing the parser behind the MAC).
pub fn decode_body(body: &[u8]) -> Result<(Header, Message<'_>), DecodeError> {
    match postcard::take_from_bytes::<(Header, Message<'_>)>(body) {
        Ok((decoded, [])) => Ok(decoded),
        _ => Err(DecodeError::Malformed),
    }
}

/// Bytes a message's postcard body takes, for sizing fragments.
pub fn body_len(header: &Header, message: &Message<'_>) -> usize {
    postcard::experimental::serialized_size(&(header, message)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NetworkKey;

    fn auth() -> Authenticator {
        Authenticator::new(&NetworkKey::from_bytes([5; 32]))
    }

    fn header() -> Header {
        Header { sender: NodeId([2; 16]), receiver: NodeId([3; 16]), session: 99, packet: 12345 }
    }

    #[test]
    fn data_roundtrip_borrows_payload() {
        let payload = [0xAB; 900];
        let msg = Message::Data(Data {
            channel: ChannelId([4; 8]),
            seq: 1 << 40,
            tag: 0xDEADBEEF,
            block: 3,
            offset: 1100,
            bytes: &payload,
        });
        let mut buf = [0; DEFAULT_MAX_DATAGRAM];
        let len = encode(&auth(), &header(), &msg, &mut buf).unwrap();
        let got = decode(&auth(), &buf[..len]).unwrap();
        assert_eq!(got.message, msg);
        assert_eq!(body_len(&header(), &msg) + FRAMING_LEN, len);
    }

    #[test]
    fn every_rejection_is_typed() {
        let mut buf = [0; 200];
        let len = encode(&auth(), &header(), &Message::Goodbye, &mut buf).unwrap();
        assert_eq!(decode(&auth(), &buf[..5]), Err(DecodeError::TooShort));
        let other = Authenticator::new(&NetworkKey::from_bytes([6; 32]));
        assert_eq!(decode(&other, &buf[..len]), Err(DecodeError::BadMac));
        let mut flipped = buf;
        flipped[3] ^= 1;
        assert_eq!(decode(&auth(), &flipped[..len]), Err(DecodeError::BadMac));
        let mut next = buf;
        next[0] = PROTOCOL_VERSION + 1;
        assert_eq!(decode(&auth(), &next[..len]), Err(DecodeError::UnknownVersion(PROTOCOL_VERSION + 1)));
        // A well-tagged body with trailing garbage is malformed, not silently accepted.
        let mut padded = [0u8; 64];
        let body = postcard::to_slice(&(header(), Message::Goodbye), &mut padded[1..40]).unwrap().len();
        padded[0] = PROTOCOL_VERSION;
        padded[1 + body] = 0x55;
        let tag = auth().tag(&padded[..2 + body]);
        padded[2 + body..2 + body + TAG_LEN].copy_from_slice(&tag);
        assert_eq!(decode(&auth(), &padded[..2 + body + TAG_LEN]), Err(DecodeError::Malformed));
    }

    #[test]
    fn oversized_lists_fail_to_decode() {
        // A hello claiming 65 lineup entries exceeds MAX_LINEUP and must not decode.
        let mut body = std::vec::Vec::new();
        body.extend_from_slice(&postcard::to_stdvec(&header()).unwrap());
        body.push(0); // Message::Hello
        body.extend_from_slice(&[1; 32]); // public key
        body.push(5); // challenge
        body.push(0); // echo: None
        body.push(0); // confirmed: None
        body.push(65); // lineup length
        body.extend(std::iter::repeat_n(9u8, 65 * 8));
        assert_eq!(decode_body(&body), Err(DecodeError::Malformed));
        // Sender and receiver (16 bytes each), session and packet varints, variant, key, three
        // one-byte fields: the lineup length.
        body[16 + 16 + 1 + 2 + 1 + 32 + 3] = 64;
        body.truncate(body.len() - 8);
        assert!(decode_body(&body).is_ok());
    }

    #[test]
    fn too_small_buffer_is_an_error() {
        let payload = [0; 2000];
        let msg = Message::Data(Data {
            channel: ChannelId([4; 8]),
            seq: 1,
            tag: 1,
            block: 0,
            offset: 0,
            bytes: &payload,
        });
        let mut buf = [0; DEFAULT_MAX_DATAGRAM];
        assert!(encode(&auth(), &header(), &msg, &mut buf).is_err());
    }
}
