//! Writes the seed corpus under `corpus/<target>/` (run from tests/fuzz):
//!
//! ```text
//! cargo +nightly run --example gen_corpus
//! ```
//!
//! Everything is deterministic (fixed identities, keys, engine seed and times), so running it
//! again rewrites the same files byte for byte. Each engine seed is replayed through the harness
//! here and checked to reach what it is meant to reach (a confirmed peer, an accepted manifest,
//! a completed segment, a served request), so a protocol change that makes a seed useless fails
//! loudly instead of silently weakening the corpus.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use shoal_core::ranges::RangeSet;
use shoal_core::wire::{
    self, Data, Have, Header, Hello, Ingesting, Item, ManifestPart, Message, Ping, Reject,
    RejectReason, Request, Vouch,
};
use shoal_core::{
    Authenticator, ChannelId, Counters, Event, Identity, SegmentInfo, SignedManifest,
};
use shoal_fuzz::{channel, engine_id, fuzz_auth, peer_id, peer_identity, Harness, Op};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = corpus_dir(target);
    fs::create_dir_all(&dir).expect("create corpus dir");
    fs::write(dir.join(name), bytes).expect("write seed");
    println!("{target}/{name}: {} bytes", bytes.len());
}

fn header(peer: usize, session: u32, packet: u64) -> Header {
    Header {
        sender: peer_id(peer),
        receiver: engine_id(),
        session,
        packet,
    }
}

/// The postcard body of a message (what `Op::Wrap` frames).
fn body(header: &Header, message: &Message<'_>) -> Vec<u8> {
    let mut buf = vec![0; 70_000];
    let len = wire::encode(&Authenticator::insecure(), header, message, &mut buf).expect("fits");
    buf[1..len - shoal_core::crypto::TAG_LEN].to_vec()
}

fn datagram(auth: &Authenticator, header: &Header, message: &Message<'_>) -> Vec<u8> {
    let mut buf = vec![0; wire::DEFAULT_MAX_DATAGRAM];
    let len = wire::encode(auth, header, message, &mut buf).expect("fits in a datagram");
    buf.truncate(len);
    buf
}

fn hello(peer: usize, echo: Option<u64>, confirmed: Option<u32>) -> Message<'static> {
    Message::Hello(Hello {
        public_key: peer_identity(peer).public_key(),
        challenge: 0x1000 + peer as u64,
        echo,
        confirmed,
        lineup: [channel()].into_iter().collect(),
    })
}

fn ping(time: u64, newest: Option<u64>) -> Message<'static> {
    Message::Ping(Ping {
        time,
        wants: [channel()].into_iter().collect(),
        ingesting: [Ingesting {
            channel: channel(),
            newest,
            origin_failing: false,
        }]
        .into_iter()
        .collect(),
    })
}

/// A small segment signed by remote peer `peer`: (manifest, bytes).
fn peer_segment(peer: usize, seq: u64, len: usize) -> (SignedManifest, Vec<u8>) {
    let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + seq as usize) as u8).collect();
    let info = SegmentInfo::new(channel(), seq, Duration::from_secs(2));
    (
        SignedManifest::build(peer_identity(peer), info, &bytes).expect("valid segment"),
        bytes,
    )
}

fn manifest_part<'a>(
    peer: usize,
    seq: u64,
    encoded: &'a [u8],
    offset: usize,
    end: usize,
) -> Message<'a> {
    Message::ManifestPart(ManifestPart {
        channel: channel(),
        seq,
        signer: peer_id(peer),
        total: encoded.len() as u32,
        offset: offset as u32,
        bytes: &encoded[offset..end],
    })
}

fn data<'a>(seq: u64, tag: u32, block: u16, offset: u16, bytes: &'a [u8]) -> Message<'a> {
    Message::Data(Data {
        channel: channel(),
        seq,
        tag,
        block,
        offset,
        bytes,
    })
}

// ---- datagram_decode -------------------------------------------------------------------------

fn all_messages<'a>(
    manifest: &'a SignedManifest,
    block: &'a [u8],
) -> Vec<(&'static str, Message<'a>)> {
    let mut ranges = RangeSet::new();
    ranges.insert(0, 100).expect("room");
    ranges.insert(300, 400).expect("room");
    let encoded: &[u8] = manifest.encoded();
    vec![
        ("hello", hello(0, Some(42), Some(7))),
        ("ping", ping(123_456, Some(3))),
        ("pong", Message::Pong { echo: 123_456 }),
        ("goodbye", Message::Goodbye),
        (
            "have",
            Message::Have(Have {
                channel: channel(),
                newest: 9,
                bitmap: 0b1011,
            }),
        ),
        (
            "manifest_part",
            manifest_part(0, 5, encoded, 0, encoded.len()),
        ),
        (
            "request_manifest",
            Message::Request(Request {
                channel: channel(),
                seq: 5,
                item: Item::Manifest,
            }),
        ),
        (
            "request_block",
            Message::Request(Request {
                channel: channel(),
                seq: 5,
                item: Item::Block {
                    tag: manifest.tag(),
                    index: 0,
                    ranges,
                },
            }),
        ),
        ("data", data(5, manifest.tag(), 0, 0, &block[..600])),
        (
            "reject",
            Message::Reject(Reject {
                channel: ChannelId([9; 8]),
                seq: 5,
                block: Some(1),
                reason: RejectReason::Busy,
            }),
        ),
        (
            "vouch",
            Message::Vouch(Vouch {
                channel: channel(),
                public_key: Identity::from_seed([7; 32]).public_key(),
                first: 3,
                last: 5,
            }),
        ),
    ]
}

fn gen_datagram_decode() {
    let (manifest, bytes) = peer_segment(0, 5, 1000);
    let insecure = Authenticator::insecure();
    let keyed = fuzz_auth();
    for (i, (name, message)) in all_messages(&manifest, &bytes).into_iter().enumerate() {
        let h = header(0, 77, 1 + i as u64);
        write(
            "datagram_decode",
            &format!("insecure_{name}"),
            &datagram(&insecure, &h, &message),
        );
        if matches!(name, "hello" | "data" | "request_block") {
            write(
                "datagram_decode",
                &format!("keyed_{name}"),
                &datagram(&keyed, &h, &message),
            );
        }
    }
}

// ---- manifest_parse --------------------------------------------------------------------------

fn gen_manifest_parse() {
    for (name, len) in [
        ("one_block", 1000),
        ("two_blocks_exact", 2 * shoal_core::BLOCK_SIZE),
        ("three_blocks", 40_000),
    ] {
        let (manifest, _) = peer_segment(0, 5, len);
        write("manifest_parse", name, manifest.encoded());
    }
}

// ---- engine_datagrams ------------------------------------------------------------------------

/// Builds an engine seed op by op, replaying each op so later ops can use what the engine said.
struct Script {
    harness: Harness,
    bytes: Vec<u8>,
}

impl Script {
    fn new() -> Self {
        let mut harness = Harness::new();
        harness.events = Some(Vec::new());
        Script {
            harness,
            bytes: Vec::new(),
        }
    }

    fn op(&mut self, op: Op) -> &mut Self {
        op.encode(&mut self.bytes);
        self.harness.apply(&op);
        self
    }

    fn wrap(&mut self, slot: u8, header: Header, message: &Message<'_>) -> &mut Self {
        self.op(Op::Wrap {
            slot,
            body: body(&header, message),
        })
    }

    /// The full handshake of peer `peer` from address slot `peer`, with plain wrapped hellos:
    /// the second hello echoes the challenge the engine actually sent.
    fn handshake(&mut self, peer: usize, session: u32) -> &mut Self {
        let slot = peer as u8;
        self.wrap(slot, header(peer, session, 1), &hello(peer, None, None));
        self.advance_ms(1);
        let challenge = self
            .harness
            .challenge(peer)
            .expect("engine answered the hello with its challenge");
        let confirmed = Some(self.harness.engine().session_id());
        self.wrap(
            slot,
            header(peer, session, 2),
            &hello(peer, Some(challenge), confirmed),
        );
        self.advance_ms(1)
    }

    fn advance_ms(&mut self, ms: u16) -> &mut Self {
        self.op(Op::Advance { unit: 2, n: ms })
    }

    fn counters(&self) -> Counters {
        self.harness.engine().counters()
    }

    fn events(&self) -> &[Event] {
        self.harness.events.as_deref().unwrap_or_default()
    }

    fn save(&self, name: &str) {
        // The seed must replay to the same engine state from scratch.
        let mut replay = Harness::new();
        replay.run(&self.bytes);
        assert_eq!(
            replay.engine().counters(),
            self.counters(),
            "{name}: replay differs"
        );
        write("engine_datagrams", name, &self.bytes);
    }
}

fn peer_up(events: &[Event], peer: usize) -> bool {
    events.contains(&Event::PeerUp(peer_id(peer)))
}

fn gen_engine_datagrams() {
    // 1. A handshake, then a ping and time passing (pings, haves, pongs, elections).
    let mut s = Script::new();
    s.op(Op::Timer).handshake(0, 0xA0);
    s.wrap(0, header(0, 0xA0, 3), &ping(1_000, None));
    s.advance_ms(300).op(Op::Timer).advance_ms(300);
    assert!(peer_up(s.events(), 0), "handshake seed: peer 0 is not up");
    s.save("handshake_ping");

    // 2. The same handshake through the fix-up mode, for two peers, then a have, a reject, a
    //    goodbye, and a timeout of the remaining peer.
    let mut s = Script::new();
    for peer in 0..2 {
        let slot = peer as u8;
        s.op(Op::WrapFixup {
            slot,
            body: body(&header(peer, 0xB0, 1), &hello(peer, None, None)),
        });
        s.advance_ms(1);
        s.op(Op::WrapFixup {
            slot,
            body: body(&header(peer, 0xB0, 2), &hello(peer, None, None)),
        });
        s.advance_ms(1);
    }
    s.wrap(
        0,
        header(0, 0xB0, 3),
        &Message::Have(Have {
            channel: channel(),
            newest: 12,
            bitmap: 0b1101,
        }),
    );
    s.advance_ms(20);
    s.wrap(
        0,
        header(0, 0xB0, 4),
        &Message::Reject(Reject {
            channel: channel(),
            seq: 12,
            block: None,
            reason: RejectReason::Missing,
        }),
    );
    s.wrap(1, header(1, 0xB0, 3), &Message::Goodbye);
    s.advance_ms(2_000).op(Op::Timer);
    assert!(
        peer_up(s.events(), 0) && peer_up(s.events(), 1),
        "fixup seed: peers are not up: {:?} {:?}",
        s.events(),
        s.counters()
    );
    assert!(
        s.counters().requests_sent > 0,
        "fixup seed: no manifest request after the have"
    );
    s.save("fixup_two_peers_have_goodbye");

    // 3. A peer pushes a segment it signed: manifest, then the one block in two fragments.
    let (manifest, bytes) = peer_segment(0, 5, 1000);
    let encoded: &[u8] = manifest.encoded();
    let mut s = Script::new();
    s.op(Op::Timer).handshake(0, 0xC0);
    s.wrap(0, header(0, 0xC0, 3), &ping(1_000, Some(5)));
    s.op(Op::Timer);
    let half = encoded.len() / 2;
    s.wrap(
        0,
        header(0, 0xC0, 4),
        &manifest_part(0, 5, encoded, 0, half),
    );
    s.wrap(
        0,
        header(0, 0xC0, 5),
        &manifest_part(0, 5, encoded, half, encoded.len()),
    );
    s.wrap(
        0,
        header(0, 0xC0, 6),
        &data(5, manifest.tag(), 0, 0, &bytes[..500]),
    );
    s.wrap(
        0,
        header(0, 0xC0, 7),
        &data(5, manifest.tag(), 0, 500, &bytes[500..]),
    );
    s.advance_ms(10).op(Op::Timer);
    let c = s.counters();
    assert_eq!(
        c.manifests_accepted, 1,
        "push seed: manifest not accepted: {c:?}"
    );
    assert_eq!(
        c.segments_received, 1,
        "push seed: segment not completed: {c:?}"
    );
    s.save("peer_pushes_segment");

    // 4. The engine ingests and publishes; a peer then asks for the manifest and a block range,
    //    and time passes so the pacer sends the answers.
    let mut s = Script::new();
    s.op(Op::Timer).op(Op::Publish {
        seq: 3,
        len: 20_000,
    });
    assert_eq!(
        s.counters().segments_published,
        1,
        "serve seed: nothing published"
    );
    s.handshake(1, 0xD0);
    let tag = s
        .harness
        .engine()
        .store()
        .segment(channel(), 3)
        .expect("published")
        .manifest()
        .tag();
    let mut ranges = RangeSet::new();
    ranges.insert(1000, 2500).expect("room");
    s.wrap(
        1,
        header(1, 0xD0, 3),
        &Message::Request(Request {
            channel: channel(),
            seq: 3,
            item: Item::Manifest,
        }),
    );
    s.wrap(
        1,
        header(1, 0xD0, 4),
        &Message::Request(Request {
            channel: channel(),
            seq: 3,
            item: Item::Block {
                tag,
                index: 1,
                ranges,
            },
        }),
    );
    s.wrap(1, header(1, 0xD0, 5), &Message::Pong { echo: 0 });
    s.op(Op::Want(true))
        .advance_ms(5)
        .op(Op::Timer)
        .advance_ms(5)
        .op(Op::Timer);
    assert_eq!(
        s.counters().requests_served,
        2,
        "serve seed: requests not served: {:?}",
        s.counters()
    );
    s.save("engine_serves_requests");

    // 5. Unauthenticated noise: raw garbage, a wrong version, a datagram under another key, an
    //    add/remove of a peer, and a timer.
    let mut s = Script::new();
    let other = datagram(&fuzz_auth(), &header(0, 1, 1), &hello(0, None, None));
    s.op(Op::Raw {
        slot: 2,
        bytes: b"not a shoal datagram at all".to_vec(),
    });
    s.op(Op::Raw {
        slot: 2,
        bytes: [&[2u8][..], &[0; 20]].concat(),
    });
    s.op(Op::Raw {
        slot: 3,
        bytes: other,
    });
    s.op(Op::Peer {
        peer: 0,
        remove: false,
    })
    .advance_ms(50)
    .op(Op::Peer {
        peer: 0,
        remove: true,
    });
    s.op(Op::Timer);
    assert!(s.counters().bad_mac >= 1, "noise seed: no bad MAC counted");
    s.save("noise_and_commands");
}

fn main() {
    gen_datagram_decode();
    gen_manifest_parse();
    gen_engine_datagrams();
}
