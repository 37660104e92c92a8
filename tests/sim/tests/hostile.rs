//! Hostile input: corrupt blocks, forged manifests, datagrams without the key, replays and
//! floods. Nothing of it is accepted, the offender is banned, and the honest boxes keep their
//! deadlines.

use core::time::Duration;
use std::net::SocketAddr;

use shoal_core::engine::BanReason;
use shoal_core::wire::{self, Item, ManifestPart, Message, Request};
use shoal_core::{Authenticator, Event, NetworkKey, NodeId, SegmentInfo, SignedManifest};
use shoal_sim::{run_scenario, sim_channel, Sim, SimConfig};

fn node(sim: &Sim, i: usize) -> NodeId {
    sim.boxes[i].engine.as_ref().map(|e| e.node_id()).expect("running")
}

fn banned_by(sim: &Sim, i: usize, peer: NodeId) -> Option<BanReason> {
    sim.boxes[i].events.iter().find_map(|&(_, e)| match e {
        Event::PeerBanned { peer: p, reason } if p == peer => Some(reason),
        _ => None,
    })
}

/// Every honest box holds every segment of the window within two durations of its ingest, and
/// every stored segment is byte-for-byte the origin's.
fn honest_boxes_keep_deadlines(sim: &Sim, honest: &[usize], from: u64, to: u64) {
    let duration = sim.config.segment_duration;
    for seq in from..=to {
        let published = sim.origin.published()[&seq];
        for &i in honest {
            let done =
                sim.boxes[i].completed.get(&seq).unwrap_or_else(|| panic!("box {i} lacks segment {seq}"));
            assert!(done.saturating_since(published) <= duration * 2, "box {i} segment {seq} late");
        }
    }
    for &i in honest {
        let engine = sim.boxes[i].engine.as_ref().expect("running");
        for segment in engine.store().segments(sim_channel()).filter(|s| s.is_complete()) {
            let seq = segment.manifest().manifest().seq;
            assert_eq!(
                segment.bytes().expect("complete"),
                &sim.origin.segment_bytes(seq)[..],
                "box {i} seq {seq}"
            );
        }
    }
}

#[test]
fn a_box_sending_corrupt_blocks_is_banned() {
    run_scenario("corrupt_blocks", 41, |seed| {
        let mut sim = Sim::new(SimConfig { boxes: 8, seed, ..SimConfig::default() });
        sim.run_for(Duration::from_secs(8));
        // Rank 2 is the second member of the first push tree: it forwards a quarter of every
        // segment to two children.
        let liar = sim.ranking()[2];
        let liar_id = node(&sim, liar);
        sim.corrupt_data_from.push(liar);
        sim.run_for(Duration::from_secs(24));
        let honest: Vec<usize> = (0..8).filter(|&i| i != liar).collect();
        let bans: Vec<_> =
            honest.iter().filter_map(|&i| banned_by(&sim, i, liar_id).map(|r| (i, r))).collect();
        println!("seed={seed}: liar {liar} banned by {bans:?}");
        assert!(!bans.is_empty(), "nobody banned the liar");
        assert!(bans.iter().all(|&(_, r)| r == BanReason::BadBlock));
        for &i in &honest {
            for &(_, e) in &sim.boxes[i].events {
                if let Event::PeerBanned { peer, .. } = e {
                    assert_eq!(peer, liar_id, "box {i} banned an honest peer");
                }
            }
        }
        honest_boxes_keep_deadlines(&sim, &honest, 5, 14);
    });
}

#[test]
fn manifests_not_from_the_ingester_are_refused() {
    run_scenario("forged_manifests", 42, |seed| {
        let mut sim = Sim::new(SimConfig { boxes: 8, seed, ..SimConfig::default() });
        sim.run_for(Duration::from_secs(8));
        let ranking = sim.ranking();
        let (ingester, impostor, victim, victim2) = (ranking[0], ranking[4], ranking[5], ranking[6]);
        let impostor_id = node(&sim, impostor);
        let impostor_key = sim.identity(impostor);
        let from: SocketAddr = sim.boxes[impostor].addr;
        let before = sim.boxes[victim].engine.as_ref().map(|e| e.counters()).expect("running");
        // Three well-signed manifests from a box that is not the channel's ingester.
        for (k, seq) in (100..103).enumerate() {
            let info = SegmentInfo::new(sim_channel(), seq, Duration::from_secs(2));
            let manifest = SignedManifest::build(&impostor_key, info, &[0x47; 50_000]).expect("valid");
            let part = Message::ManifestPart(ManifestPart {
                channel: sim_channel(),
                seq,
                signer: impostor_id,
                total: manifest.encoded().len() as u32,
                offset: 0,
                bytes: manifest.encoded(),
            });
            let datagram = sim.forge(impostor, victim, (1 << 40) + k as u64, &part);
            sim.inject(victim, from, datagram);
        }
        // A manifest claiming to be the ingester's but signed by the impostor: a forgery.
        let ingester_id = node(&sim, ingester);
        let info = SegmentInfo::new(sim_channel(), 200, Duration::from_secs(2));
        let forged = SignedManifest::build(&impostor_key, info, &[0x47; 50_000]).expect("valid");
        let mut claimed = forged.manifest().clone();
        claimed.signer = ingester_id;
        let mut encoded = postcard_encode(&claimed);
        encoded.extend_from_slice(&forged.encoded()[forged.encoded().len() - 64..]);
        let part = Message::ManifestPart(ManifestPart {
            channel: sim_channel(),
            seq: 200,
            signer: ingester_id,
            total: encoded.len() as u32,
            offset: 0,
            bytes: &encoded,
        });
        let datagram = sim.forge(impostor, victim2, 1 << 41, &part);
        sim.inject(victim2, from, datagram);
        sim.run_for(Duration::from_secs(12));

        let after = sim.boxes[victim].engine.as_ref().map(|e| e.counters()).expect("running");
        assert_eq!(after.manifests_not_from_ingester - before.manifests_not_from_ingester, 3);
        assert_eq!(banned_by(&sim, victim, impostor_id), Some(BanReason::NotIngester));
        assert_eq!(banned_by(&sim, victim2, impostor_id), Some(BanReason::ForgedManifest));
        for &v in &[victim, victim2] {
            let store = sim.boxes[v].engine.as_ref().expect("running").store();
            for seq in [100, 101, 102, 200] {
                assert!(store.segment(sim_channel(), seq).is_none(), "box {v} stored forged segment {seq}");
            }
        }
        let honest: Vec<usize> = (0..8).filter(|&i| i != impostor).collect();
        honest_boxes_keep_deadlines(&sim, &honest, 5, 8);

        // The operator lifts the bans: the impostor is a peer in good standing again.
        let now = sim.now();
        let engine = sim.boxes[victim].engine.as_mut().expect("running");
        assert_eq!(engine.lift_bans(now), 1);
        assert!(engine.peers().all(|p| !p.banned), "no ban left");
        assert_eq!(engine.lift_bans(now), 0);
    });
}

/// The signed part of a manifest, encoded as the engine encodes it.
fn postcard_encode(manifest: &shoal_core::Manifest) -> Vec<u8> {
    shoal_core::manifest::encode_body(manifest)
}

#[test]
fn keyless_replayed_and_flooding_datagrams_are_dropped() {
    run_scenario("floods_and_replays", 43, |seed| {
        let mut sim = Sim::new(SimConfig { boxes: 6, seed, ..SimConfig::default() });
        sim.run_for(Duration::from_secs(6));
        sim.capture = true;
        sim.run_for(Duration::from_millis(500));
        sim.capture = false;
        // A box that is neither ingester nor standby receives the whole stream from its peers.
        let victim = sim.ranking()[5];
        let captured: Vec<_> = sim.captured.iter().filter(|(to, _, _)| *to == victim).cloned().collect();
        sim.run_for(Duration::from_secs(2));

        // Replays: every captured datagram again.
        let before = sim.boxes[victim].engine.as_ref().map(|e| e.counters()).expect("running");
        for (_, from, bytes) in &captured {
            sim.inject(victim, *from, bytes.clone());
        }
        sim.run_for(Duration::from_millis(1));
        let after = sim.boxes[victim].engine.as_ref().map(|e| e.counters()).expect("running");
        assert_eq!(after.replay - before.replay, captured.len() as u64, "every replay is refused");
        assert_eq!(after.blocks_received, before.blocks_received, "no replayed block is stored");

        // Datagrams under another deployment's key, and garbage, from an outsider.
        let outsider: SocketAddr = "10.99.9.9:5000".parse().expect("addr");
        let foreign = Authenticator::new(&NetworkKey::from_bytes([1; 32]));
        let receiver = node(&sim, victim);
        let header = wire::Header { sender: NodeId([9; 16]), receiver, session: 1, packet: 0 };
        for k in 0..2_000u64 {
            let mut buf = vec![0; 1232];
            let header = wire::Header { packet: k, ..header };
            let len = wire::encode(&foreign, &header, &Message::Goodbye, &mut buf).expect("fits");
            buf.truncate(len);
            sim.inject(victim, outsider, buf);
            let junk: Vec<u8> = (0..(sim.random() % 1300)).map(|_| sim.random() as u8).collect();
            sim.inject(victim, "10.99.9.10:5000".parse().expect("addr"), junk);
        }
        // A keyed box flooding requests.
        let flooder = sim.ranking()[3];
        let flooder_id = node(&sim, flooder);
        let held = *sim.boxes[victim].completed.keys().next_back().expect("segments");
        let tag = sim.boxes[victim]
            .engine
            .as_ref()
            .and_then(|e| e.store().segment(sim_channel(), held))
            .map(|s| s.manifest().tag())
            .expect("held");
        for k in 0..5_000u64 {
            let request = Message::Request(Request {
                channel: sim_channel(),
                seq: held,
                item: Item::Block { tag, index: (k % 60) as u16, ranges: Default::default() },
            });
            let datagram = sim.forge(flooder, victim, (1 << 40) + k, &request);
            sim.inject(victim, sim.boxes[flooder].addr, datagram);
        }
        sim.run_for(Duration::from_secs(14));
        let c = sim.boxes[victim].engine.as_ref().map(|e| e.counters()).expect("running");
        println!("seed={seed}: victim counters {c:?}");
        assert!(c.bad_mac >= 200 && c.banned >= 1_500, "the keyless sender is ignored: {c:?}");
        assert!(c.too_short + c.unknown_version + c.bad_mac + c.banned >= 3_900);
        assert_eq!(banned_by(&sim, victim, flooder_id), Some(BanReason::Flood));
        assert!(captured.len() > 500, "a segment's worth of datagrams was captured and replayed");
        let honest: Vec<usize> = (0..6).filter(|&i| i != flooder).collect();
        honest_boxes_keep_deadlines(&sim, &honest, 3, 10);
    });
}

/// A keyed box that is neither ingester nor standby vouches for a key of its own making, then
/// sends manifests signed with it for the window: the vouch is refused and so are they.
#[test]
fn a_vouch_from_a_box_the_election_does_not_name_is_refused() {
    run_scenario("forged_vouch", 43, |seed| {
        let mut sim = Sim::new(SimConfig { boxes: 8, seed, ..SimConfig::default() });
        sim.run_for(Duration::from_secs(8));
        let ranking = sim.ranking();
        let (impostor, victim) = (ranking[4], ranking[5]);
        let from: SocketAddr = sim.boxes[impostor].addr;
        let accomplice = shoal_core::Identity::from_seed([0xAC; 32]);
        let newest = sim.origin.newest().expect("segments");
        let seq = newest + 1;
        let vouch = Message::Vouch(wire::Vouch {
            channel: sim_channel(),
            public_key: accomplice.public_key(),
            first: seq,
            last: seq + 2,
        });
        let datagram = sim.forge(impostor, victim, 1 << 40, &vouch);
        sim.inject(victim, from, datagram);
        let info = SegmentInfo::new(sim_channel(), seq, Duration::from_secs(2));
        let manifest = SignedManifest::build(&accomplice, info, &[0x47; 50_000]).expect("valid");
        let part = Message::ManifestPart(ManifestPart {
            channel: sim_channel(),
            seq,
            signer: accomplice.node_id(),
            total: manifest.encoded().len() as u32,
            offset: 0,
            bytes: manifest.encoded(),
        });
        let datagram = sim.forge(impostor, victim, (1 << 40) + 1, &part);
        // Before the real segment `seq` exists, so nothing else can have taken its place.
        sim.inject(victim, from, datagram);
        sim.run_for(Duration::from_millis(100));
        let counters = sim.boxes[victim].engine.as_ref().map(|e| e.counters()).expect("running");
        assert_eq!(counters.vouches_refused, 1, "{counters:?}");
        assert_eq!(counters.manifests_vouched, 0, "{counters:?}");
        let store = sim.boxes[victim].engine.as_ref().expect("running").store();
        let stored = store.segment(sim_channel(), seq).map(|s| s.manifest().manifest().signer);
        assert_ne!(stored, Some(accomplice.node_id()), "the accomplice's segment {seq} was stored");
    });
}

/// Regression (the cross-receiver replay): every datagram box 2 sent to box 1 is replayed
/// unchanged to box 0, from another address and from box 2's own, for 20 s. Before datagrams
/// named their receiver, box 0 moved box 2 to the attacker's address and refused box 2's genuine
/// datagrams as replays, box 2 went silent to it, and a second box started fetching. Now box 0
/// refuses every replay as misdirected, keeps box 2 where it is, and the origin still serves
/// each segment once.
#[test]
fn datagrams_replayed_from_one_receiver_to_another_change_nothing() {
    run_scenario("cross_receiver_replay", 47, |seed| {
        let mut sim = Sim::new(SimConfig { boxes: 4, seed, ..SimConfig::default() });
        sim.run_for(Duration::from_secs(6));
        let ranking = sim.ranking();
        // The ingester's datagrams to its standby, replayed to the third box: the worst case
        // (the third box losing the ingester would make it fetch).
        let (sender, first, target) = (ranking[0], ranking[1], ranking[2]);
        let attacker: SocketAddr = "10.99.6.66:7470".parse().expect("addr");
        let sender_addr = sim.boxes[sender].addr;
        let before = sim.boxes[target].engine.as_ref().map(|e| e.counters()).expect("running");
        let fetched_before = sim.origin.total_fetches();
        let mut replayed = 0u64;
        for _ in 0..40 {
            sim.capture = true;
            sim.run_for(Duration::from_millis(500));
            sim.capture = false;
            let batch: Vec<Vec<u8>> = std::mem::take(&mut sim.captured)
                .into_iter()
                .filter(|(to, from, _)| *to == first && *from == sender_addr)
                .map(|(_, _, bytes)| bytes)
                .collect();
            for bytes in batch {
                sim.inject(target, attacker, bytes.clone());
                sim.inject(target, sender_addr, bytes);
                replayed += 2;
            }
        }
        sim.run_for(Duration::from_secs(2));
        let after = sim.boxes[target].engine.as_ref().map(|e| e.counters()).expect("running");
        println!("seed={seed}: {replayed} replays; target counters {after:?}");
        assert!(replayed > 1_000, "a real stream was replayed: {replayed}");
        assert_eq!(after.misdirected - before.misdirected, replayed, "every replay is refused");
        assert_eq!(after.replay, before.replay, "no genuine datagram was taken for a replay");
        let engine = sim.boxes[target].engine.as_ref().expect("running");
        let seen = engine.peers().find(|p| p.node_id == node(&sim, sender)).expect("a peer");
        assert!(seen.alive && seen.addr == sender_addr, "the sender stays where it is: {seen:?}");
        assert_eq!(sim.ingesters(), [sender], "nobody else started fetching");
        assert_eq!(sim.takeovers(), 0);
        let segments = (sim.origin.total_fetches() - fetched_before) as f64;
        let distinct = sim.origin.published().len() as f64;
        assert!(segments >= 9.0, "{segments} fetches during the 20 s attack");
        assert_eq!(sim.origin.total_fetches() as f64 / distinct, 1.0, "one fetch per segment");
        honest_boxes_keep_deadlines(&sim, &[0, 1, 2, 3], 3, 12);
    });
}
