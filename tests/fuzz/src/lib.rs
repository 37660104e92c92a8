//! Shared code of the Shoal fuzz targets and of the seed-corpus generator.
//!
//! The interesting part is [`Harness`], which drives one [`Engine`] from a byte string (the
//! `engine_datagrams` target). The constants here (keys, identities, the channel, the peers'
//! addresses) are fixed so that the seed corpus written by `examples/gen_corpus.rs` stays
//! meaningful to the targets: a seed's hello carries a public key that hashes to its sender's
//! node id, a seed's manifest is signed by a peer whose key the engine learns from that hello.
//!
//! # Input format of `engine_datagrams`
//!
//! A sequence of operations, each one opcode byte followed by its operands, run until the input
//! ends or [`MAX_STEPS`] operations ran. Bits 0..3 of the opcode are the [`Op`] kind, bits 3..5
//! the *slot* (a source address for datagrams, a time unit, a peer). Lengths are `u16`
//! little-endian and are clamped to what is left of the input.
//!
//! | kind | operands            | does                                                                   |
//! |------|---------------------|------------------------------------------------------------------------|
//! | 0    | len, bytes          | `handle_datagram(bytes)` from address `slot` as is                       |
//! | 1    | len, body           | the same with `version ‖ body ‖ insecure tag`, so the MAC passes        |
//! | 2    | len, body           | as 1, but a `Hello` body gets `echo`/`confirmed` fixed up (see below)   |
//! | 3    | u16 `n`             | `now += n × [1 µs, 100 µs, 1 ms, 10 ms][slot]`, `handle_timeout(now)`    |
//! | 4    | –                   | `now = max(now, poll_timeout())`, `handle_timeout(now)`                 |
//! | 5    | –                   | `want_channel(channel, slot is odd)`                                    |
//! | 6    | u8 seq, u16 len     | `publish_segment(seq, len bytes)` (fails unless this box ingests)       |
//! | 7    | –                   | slot 0/1: `add_peer(peer slot)`, slot 2/3: `remove_peer(peer slot − 2)` |
//!
//! The fix-up of kind 2 sets a hello's `echo` to the last challenge the engine sent to that
//! source address and `confirmed` to the engine's session, which completes the session handshake
//! without the input having to predict the engine's random challenge. After every operation the
//! harness drains `poll_transmit` (into a [`wire::DEFAULT_MAX_DATAGRAM`]-byte buffer) and
//! `poll_event`, and checks that every datagram the engine sends decodes.

use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;

use shoal_core::crypto::TAG_LEN;
use shoal_core::wire::{self, Message};
use shoal_core::{
    Authenticator, ChannelId, Config, Engine, Event, Identity, Instant, LineupEntry, NetworkKey,
    NodeId, SegmentInfo,
};

/// The network key of the keyed half of `datagram_decode`.
pub const FUZZ_KEY: [u8; 32] = [0x5a; 32];
/// Seed of the fuzzed engine's identity.
pub const ENGINE_IDENTITY: [u8; 32] = [0x01; 32];
/// Seeds of the two remote peers whose hellos and manifests the corpus carries.
pub const PEER_IDENTITIES: [[u8; 32]; 2] = [[0x11; 32], [0x22; 32]];
/// Operations per input at most (an input of many tiny operations stays fast).
pub const MAX_STEPS: usize = 256;
/// Datagrams drained after one operation at most (the pacer normally stops far earlier).
pub const MAX_DRAIN: usize = 1024;

/// The keyed authenticator of `datagram_decode`.
pub fn fuzz_auth() -> Authenticator {
    Authenticator::new(&NetworkKey::from_bytes(FUZZ_KEY))
}

/// The one channel of the engine's lineup.
pub fn channel() -> ChannelId {
    ChannelId::derive("fuzz", "builtin:fuzz")
}

/// Remote peer `i`'s identity (derived once: key derivation would dominate a fuzz run).
pub fn peer_identity(i: usize) -> &'static Identity {
    static PEERS: OnceLock<[Identity; 2]> = OnceLock::new();
    let peers = PEERS.get_or_init(|| PEER_IDENTITIES.map(Identity::from_seed));
    &peers[i % peers.len()]
}

/// Source address of slot `slot` (0..4).
pub fn addr(slot: usize) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(192, 168, 7, 10 + (slot % 4) as u8)),
        4433,
    )
}

fn slot_of(addr: SocketAddr) -> Option<usize> {
    (0..4).find(|&s| self::addr(s) == addr)
}

/// `version ‖ body ‖ tag` under the insecure (public) key.
pub fn frame_insecure(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + body.len() + TAG_LEN);
    out.push(wire::PROTOCOL_VERSION);
    out.extend_from_slice(body);
    let tag = Authenticator::insecure().tag(&out);
    out.extend_from_slice(&tag);
    out
}

/// The fuzzed engine's node id: the receiver every datagram to it names.
pub fn engine_id() -> NodeId {
    Identity::from_seed(ENGINE_IDENTITY).node_id()
}

/// The engine's configuration: defaults, insecure mode, one always-on channel.
pub fn engine_config() -> Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut config = Config::new(
                Identity::from_seed(ENGINE_IDENTITY),
                Authenticator::insecure(),
            );
            config.lineup.push(LineupEntry {
                channel: channel(),
                always_on: true,
            });
            config
        })
        .clone()
}

/// One operation of the input format (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Kind 0.
    Raw { slot: u8, bytes: Vec<u8> },
    /// Kind 1.
    Wrap { slot: u8, body: Vec<u8> },
    /// Kind 2.
    WrapFixup { slot: u8, body: Vec<u8> },
    /// Kind 3.
    Advance { unit: u8, n: u16 },
    /// Kind 4.
    Timer,
    /// Kind 5.
    Want(bool),
    /// Kind 6.
    Publish { seq: u8, len: u16 },
    /// Kind 7: `add_peer` (`remove == false`) or `remove_peer` of peer `peer` (0 or 1).
    Peer { peer: u8, remove: bool },
}

impl Op {
    /// Appends this operation's encoding (for writing seeds).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let op = |kind: u8, slot: u8| kind | ((slot & 3) << 3);
        let with_len = |out: &mut Vec<u8>, bytes: &[u8]| {
            let len = u16::try_from(bytes.len()).expect("seed chunk under 64 KiB");
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(bytes);
        };
        match self {
            Op::Raw { slot, bytes } => {
                out.push(op(0, *slot));
                with_len(out, bytes);
            }
            Op::Wrap { slot, body } => {
                out.push(op(1, *slot));
                with_len(out, body);
            }
            Op::WrapFixup { slot, body } => {
                out.push(op(2, *slot));
                with_len(out, body);
            }
            Op::Advance { unit, n } => {
                out.push(op(3, *unit));
                out.extend_from_slice(&n.to_le_bytes());
            }
            Op::Timer => out.push(op(4, 0)),
            Op::Want(on) => out.push(op(5, u8::from(*on))),
            Op::Publish { seq, len } => {
                out.push(op(6, 0));
                out.push(*seq);
                out.extend_from_slice(&len.to_le_bytes());
            }
            Op::Peer { peer, remove } => out.push(op(7, (peer & 1) | if *remove { 2 } else { 0 })),
        }
    }

    /// Parses the next operation off `input`; `None` when the input is used up.
    pub fn parse(input: &mut &[u8]) -> Option<Op> {
        let (&opcode, rest) = input.split_first()?;
        *input = rest;
        let slot = (opcode >> 3) & 3;
        let read_u16 = |input: &mut &[u8]| -> u16 {
            let lo = input.first().copied().unwrap_or(0);
            let hi = input.get(1).copied().unwrap_or(0);
            *input = &input[input.len().min(2)..];
            u16::from_le_bytes([lo, hi])
        };
        Some(match opcode & 7 {
            kind @ 0..=2 => {
                let len = usize::from(read_u16(input)).min(input.len());
                let (bytes, rest) = input.split_at(len);
                *input = rest;
                let bytes = bytes.to_vec();
                match kind {
                    0 => Op::Raw { slot, bytes },
                    1 => Op::Wrap { slot, body: bytes },
                    _ => Op::WrapFixup { slot, body: bytes },
                }
            }
            3 => Op::Advance {
                unit: slot,
                n: read_u16(input),
            },
            4 => Op::Timer,
            5 => Op::Want(slot & 1 == 1),
            6 => {
                let seq = input.first().copied().unwrap_or(0);
                *input = &input[input.len().min(1)..];
                Op::Publish {
                    seq,
                    len: read_u16(input),
                }
            }
            _ => Op::Peer {
                peer: slot & 1,
                remove: slot & 2 != 0,
            },
        })
    }
}

/// Drives one engine; see the module docs.
pub struct Harness {
    engine: Engine,
    now: Instant,
    buf: Vec<u8>,
    /// Last challenge the engine sent in a hello to each source address.
    challenges: [Option<u64>; 4],
    /// Every datagram the engine sent, if recording (for the corpus generator).
    pub record: Option<Vec<(SocketAddr, Vec<u8>)>>,
    /// Every event the engine reported, if recording.
    pub events: Option<Vec<Event>>,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// A fresh engine at time zero.
    pub fn new() -> Self {
        let engine = Engine::new(engine_config(), Instant::ZERO).expect("valid fuzz config");
        Harness {
            engine,
            now: Instant::ZERO,
            buf: vec![0; wire::DEFAULT_MAX_DATAGRAM],
            challenges: [None; 4],
            record: None,
            events: None,
        }
    }

    /// The engine, for inspection.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Last challenge the engine sent to address `slot`.
    pub fn challenge(&self, slot: usize) -> Option<u64> {
        self.challenges[slot % 4]
    }

    /// Runs a whole fuzz input.
    pub fn run(&mut self, mut input: &[u8]) {
        let mut steps = 0;
        while steps < MAX_STEPS {
            let Some(op) = Op::parse(&mut input) else {
                break;
            };
            self.apply(&op);
            steps += 1;
        }
    }

    /// Runs one operation, then drains transmits and events.
    pub fn apply(&mut self, op: &Op) {
        let now = self.now;
        match op {
            Op::Raw { slot, bytes } => {
                self.engine
                    .handle_datagram(now, addr(usize::from(*slot)), bytes)
            }
            Op::Wrap { slot, body } => {
                let datagram = frame_insecure(body);
                self.engine
                    .handle_datagram(now, addr(usize::from(*slot)), &datagram);
            }
            Op::WrapFixup { slot, body } => {
                let datagram = self.fixed_up(usize::from(*slot), body);
                self.engine
                    .handle_datagram(now, addr(usize::from(*slot)), &datagram);
            }
            Op::Advance { unit, n } => {
                let scale = [1u64, 100, 1_000, 10_000][usize::from(*unit & 3)];
                self.now += Duration::from_micros(u64::from(*n) * scale);
                self.engine.handle_timeout(self.now);
            }
            Op::Timer => {
                if let Some(t) = self.engine.poll_timeout() {
                    // Never jump to "never": FAR_FUTURE would freeze the rest of the input.
                    if t > self.now && t.as_micros() - self.now.as_micros() <= 3_600_000_000 {
                        self.now = t;
                    }
                }
                self.engine.handle_timeout(self.now);
            }
            Op::Want(on) => self.engine.want_channel(now, channel(), *on),
            Op::Publish { seq, len } => {
                let len = usize::from(*len).max(1);
                let bytes: Vec<u8> = (0..len).map(|i| (i as u8) ^ seq).collect();
                let info = SegmentInfo::new(channel(), u64::from(*seq), Duration::from_secs(2));
                let _ = self.engine.publish_segment(now, info, &bytes);
            }
            Op::Peer { peer, remove } => {
                let id = peer_identity(usize::from(*peer)).node_id();
                if *remove {
                    self.engine.remove_peer(now, id);
                } else {
                    self.engine.add_peer(now, id, addr(usize::from(*peer)));
                }
            }
        }
        self.drain();
    }

    /// The datagram of a kind-2 operation.
    fn fixed_up(&self, slot: usize, body: &[u8]) -> Vec<u8> {
        let Ok((header, Message::Hello(mut hello))) = wire::decode_body(body) else {
            return frame_insecure(body);
        };
        if let Some(challenge) = self.challenges[slot % 4] {
            hello.echo = Some(challenge);
        }
        hello.confirmed = Some(self.engine.session_id());
        let mut buf = vec![0; body.len() + 64];
        let auth = Authenticator::insecure();
        match wire::encode(&auth, &header, &Message::Hello(hello), &mut buf) {
            Ok(len) => {
                buf.truncate(len);
                buf
            }
            Err(_) => frame_insecure(body),
        }
    }

    fn drain(&mut self) {
        let auth = Authenticator::insecure();
        let me = self.engine.node_id();
        for _ in 0..MAX_DRAIN {
            let Some(transmit) = self.engine.poll_transmit(self.now, &mut self.buf) else {
                break;
            };
            assert!(
                transmit.len <= self.buf.len(),
                "transmit longer than the buffer"
            );
            let datagram = &self.buf[..transmit.len];
            // Whatever the engine sends, its peers must be able to decode.
            let decoded = match wire::decode(&auth, datagram) {
                Ok(d) => d,
                Err(e) => panic!("engine sent an undecodable datagram ({e}): {datagram:02x?}"),
            };
            assert_eq!(
                decoded.header.sender, me,
                "engine sent a datagram in another's name"
            );
            if let (Message::Hello(hello), Some(slot)) =
                (&decoded.message, slot_of(transmit.destination))
            {
                self.challenges[slot] = Some(hello.challenge);
            }
            if let Some(record) = &mut self.record {
                record.push((transmit.destination, datagram.to_vec()));
            }
        }
        while let Some(event) = self.engine.poll_event() {
            if let Some(events) = &mut self.events {
                events.push(event);
            }
        }
    }
}

/// Node id of remote peer `i`.
pub fn peer_id(i: usize) -> NodeId {
    peer_identity(i).node_id()
}
