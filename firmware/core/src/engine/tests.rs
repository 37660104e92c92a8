//! Engine tests with two or three engines wired directly (no loss, fixed 100 µs latency). The
//! multi-box behaviour under loss, crashes and attacks is tested in `tests/sim`.

use core::time::Duration;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;

use super::*;
use crate::{Authenticator, Identity, NetworkKey};

/// A datagram in flight: arrival time, tie-break order, from, to, bytes.
type InFlight = Reverse<(Instant, u64, usize, usize, Vec<u8>)>;

struct Wire {
    engines: Vec<Engine>,
    addrs: Vec<SocketAddr>,
    queue: BinaryHeap<InFlight>,
    order: u64,
    now: Instant,
    events: Vec<Vec<Event>>,
    /// Every datagram sent, (from, to, bytes), while `capture` is set.
    capture: bool,
    captured: Vec<(usize, usize, Vec<u8>)>,
}

fn channel() -> ChannelId {
    ChannelId::derive("test", "test://origin")
}

fn config(seed: u8, auth: Authenticator) -> Config {
    let mut config = Config::new(Identity::from_seed([seed; 32]), auth);
    config.seed = u64::from(seed);
    config.lineup.push(LineupEntry { channel: channel(), always_on: true });
    config
}

fn keyed() -> Authenticator {
    Authenticator::new(&NetworkKey::from_bytes([42; 32]))
}

impl Wire {
    fn new(configs: Vec<Config>) -> Self {
        let n = configs.len();
        let engines: Vec<Engine> =
            configs.into_iter().map(|c| Engine::new(c, Instant::ZERO).expect("valid")).collect();
        let addrs = (0..n).map(|i| SocketAddr::from(([10, 0, 0, i as u8 + 1], 5000))).collect();
        let mut wire = Wire {
            engines,
            addrs,
            queue: BinaryHeap::new(),
            order: 0,
            now: Instant::ZERO,
            events: vec![Vec::new(); n],
            capture: false,
            captured: Vec::new(),
        };
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    let id = wire.engines[j].node_id();
                    let addr = wire.addrs[j];
                    wire.engines[i].add_peer(Instant::ZERO, id, addr);
                }
            }
        }
        for i in 0..n {
            wire.drain(i);
        }
        wire
    }

    fn drain(&mut self, i: usize) {
        let mut buf = [0u8; 1500];
        while let Some(t) = self.engines[i].poll_transmit(self.now, &mut buf) {
            if let Some(to) = self.addrs.iter().position(|a| *a == t.destination) {
                if self.capture {
                    self.captured.push((i, to, buf[..t.len].to_vec()));
                }
                self.order += 1;
                let at = self.now + Duration::from_micros(100);
                self.queue.push(Reverse((at, self.order, i, to, buf[..t.len].to_vec())));
            }
        }
        while let Some(e) = self.engines[i].poll_event() {
            self.events[i].push(e);
        }
    }

    fn run(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            let next_delivery = self.queue.peek().map(|Reverse((at, ..))| *at);
            let next_timer = self.engines.iter().filter_map(Engine::poll_timeout).min();
            let next = [next_delivery, next_timer].into_iter().flatten().min();
            let Some(at) = next.filter(|&at| at <= until) else {
                break;
            };
            self.now = self.now.max(at);
            if next_delivery == Some(at) {
                let Reverse((_, _, from, to, bytes)) = self.queue.pop().expect("peeked");
                let from_addr = self.addrs[from];
                self.engines[to].handle_datagram(self.now, from_addr, &bytes);
                self.drain(to);
            } else {
                for i in 0..self.engines.len() {
                    if self.engines[i].poll_timeout().is_some_and(|t| t <= self.now) {
                        self.engines[i].handle_timeout(self.now);
                        self.drain(i);
                    }
                }
            }
        }
        self.now = until;
    }

    /// Where box `i` sends to box `j`.
    fn addr_of(&self, i: usize, j: usize) -> SocketAddr {
        let id = self.engines[j].node_id();
        self.engines[i].peers().find(|p| p.node_id == id).map(|p| p.addr).expect("a peer")
    }

    fn alive(&self, i: usize, j: usize) -> bool {
        let id = self.engines[j].node_id();
        self.engines[i].peers().any(|p| p.node_id == id && p.alive)
    }
}

#[test]
fn sessions_confirm_within_milliseconds() {
    let mut wire = Wire::new(vec![config(1, keyed()), config(2, keyed())]);
    wire.run(Duration::from_millis(5));
    assert!(wire.alive(0, 1) && wire.alive(1, 0));
    assert!(wire.events[0].contains(&Event::PeerUp(wire.engines[1].node_id())));
}

#[test]
fn keyed_and_insecure_boxes_do_not_talk() {
    let mut wire = Wire::new(vec![config(1, keyed()), config(2, Authenticator::insecure())]);
    wire.run(Duration::from_secs(2));
    assert!(!wire.alive(0, 1) && !wire.alive(1, 0));
    assert!(wire.engines[0].counters().bad_mac > 0 && wire.engines[1].counters().bad_mac > 0);
}

/// Regression: a peer removed and added again (discovery flapping) got packet numbers from 0,
/// which the other side's replay window refused forever.
#[test]
fn regression_readded_peer_is_not_taken_for_a_replay() {
    let mut wire = Wire::new(vec![config(1, keyed()), config(2, keyed())]);
    wire.run(Duration::from_secs(2));
    let id = wire.engines[1].node_id();
    let addr = wire.addrs[1];
    let now = wire.now;
    wire.engines[0].remove_peer(now, id);
    wire.engines[0].add_peer(now, id, addr);
    wire.drain(0);
    let replays_before = wire.engines[1].counters().replay;
    wire.run(Duration::from_secs(2));
    assert!(wire.alive(0, 1) && wire.alive(1, 0));
    assert_eq!(wire.engines[1].counters().replay, replays_before);
}

#[test]
fn a_published_segment_reaches_the_other_boxes_verified() {
    let mut wire = Wire::new(vec![config(1, keyed()), config(2, keyed()), config(3, keyed())]);
    wire.run(Duration::from_millis(200));
    let ingester = (0..3).find(|&i| wire.engines[i].is_ingesting(channel())).expect("one ingests");
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let info = SegmentInfo::new(channel(), 7, Duration::from_secs(2));
    let now = wire.now;
    assert_eq!(
        wire.engines[(ingester + 1) % 3].publish_segment(now, info, &bytes),
        Err(PublishError::NotIngester)
    );
    wire.engines[ingester].publish_segment(now, info, &bytes).expect("ingester publishes");
    wire.drain(ingester);
    wire.run(Duration::from_millis(200));
    for i in 0..3 {
        let segment = wire.engines[i].store().segment(channel(), 7).expect("stored");
        assert_eq!(segment.bytes(), Some(&bytes[..]), "box {i}");
        assert!(wire.events[i].contains(&Event::SegmentComplete { channel: channel(), seq: 7 }));
    }
    // Per-peer byte counts add up to the box totals, and the segment crossed every link it
    // needed: each box received at least its bytes from its peers.
    for i in 0..3 {
        let engine = &wire.engines[i];
        let (into, out_of): (u64, u64) =
            engine.peers().map(|p| (p.bytes_in, p.bytes_out)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        assert_eq!(out_of, engine.counters().bytes_out, "box {i}: every datagram goes to a peer");
        assert!(into <= engine.counters().bytes_in, "box {i}");
        if i != ingester {
            assert!(into > bytes.len() as u64, "box {i} received only {into} bytes");
        }
    }
}

#[test]
fn goodbye_is_noticed_before_any_timeout() {
    let mut wire = Wire::new(vec![config(1, keyed()), config(2, keyed())]);
    wire.run(Duration::from_secs(1));
    let now = wire.now;
    wire.engines[1].close(now);
    wire.drain(1);
    wire.run(Duration::from_millis(10));
    assert!(wire.events[0].contains(&Event::PeerDown(wire.engines[1].node_id())));
    assert!(wire.engines[0].peers().next().is_none());
}

#[test]
fn invalid_settings_name_the_field() {
    let mut c = config(1, keyed());
    c.max_datagram = 200;
    assert_eq!(Engine::new(c, Instant::ZERO).err().map(|e| e.field), Some("max_datagram"));
    let mut c = config(1, keyed());
    c.peer_timeout = c.ping_interval;
    assert_eq!(Engine::new(c, Instant::ZERO).err().map(|e| e.field), Some("peer_timeout"));
}

#[test]
fn the_pacer_holds_the_upload_rate() {
    let slow = |seed| {
        let mut c = config(seed, keyed());
        c.upload_rate = 1_000_000; // 1 MB/s
        c
    };
    let mut wire = Wire::new(vec![slow(1), slow(2)]);
    wire.run(Duration::from_millis(300));
    let now = wire.now;
    let i = (0..2).find(|&i| wire.engines[i].is_ingesting(channel())).expect("ingests");
    let bytes = vec![7u8; 1_000_000];
    let info = SegmentInfo::new(channel(), 1, Duration::from_secs(2));
    wire.engines[i].publish_segment(now, info, &bytes).expect("publish");
    let before = wire.engines[i].counters();
    wire.drain(i);
    wire.run(Duration::from_millis(500));
    let after = wire.engines[i].counters();
    let sent = after.bytes_out - before.bytes_out;
    // Half a second at 1 MB/s on the wire, 28 bytes of headers per datagram included, plus the
    // pacer's credit after idling (four datagrams) and the datagram that may leave at the very
    // end of the half second (its cost falls after it).
    let on_wire = sent + 28 * (after.datagrams_out - before.datagrams_out);
    assert!(on_wire <= 500_000 + 5 * 1260, "sent {sent} bytes ({on_wire} on the wire) in 0.5 s at 1 MB/s");
    assert!(sent >= 440_000, "sent only {sent} bytes");
}

/// Regression: the per-peer flood limit was a fixed 50,000 datagrams/s, so a box pushing at
/// gigabit speed (about 100,000/s) was banned by its own peers as a flood.
#[test]
fn regression_a_gigabit_peer_is_not_taken_for_a_flood() {
    let fast = |seed| {
        let mut c = config(seed, keyed());
        c.upload_rate = 125_000_000; // 1 Gbit/s
        c
    };
    let mut wire = Wire::new(vec![fast(1), fast(2)]);
    wire.run(Duration::from_millis(300));
    let i = (0..2).find(|&i| wire.engines[i].is_ingesting(channel())).expect("ingests");
    let bytes = vec![9u8; 8 * 1024 * 1024];
    // 48 MiB back to back: about 0.4 s of datagrams at line rate.
    for seq in 0..6 {
        let now = wire.now;
        let info = SegmentInfo::new(channel(), seq, Duration::from_secs(2));
        wire.engines[i].publish_segment(now, info, &bytes).expect("publish");
    }
    wire.drain(i);
    wire.run(Duration::from_secs(1));
    let receiver = 1 - i;
    assert_eq!(wire.engines[receiver].counters().bans, 0);
    assert_eq!(wire.engines[receiver].counters().rate_limited, 0);
    for seq in 0..6 {
        assert!(
            wire.engines[receiver].store().segment(channel(), seq).is_some_and(|s| s.is_complete()),
            "segment {seq}"
        );
    }
}

/// Regression: at start-up a channel nobody wanted counted as "demand just ended", so every
/// box fetched it from its origin for three target durations.
#[test]
fn regression_an_unwanted_channel_is_not_fetched_at_start() {
    let mut c = config(1, keyed());
    c.lineup[0].always_on = false;
    let mut wire = Wire::new(vec![c]);
    wire.run(Duration::from_secs(1));
    assert!(!wire.engines[0].is_ingesting(channel()));
    assert!(!wire.events[0].iter().any(|e| matches!(e, Event::IngestStart { .. })));
    // A viewer starts it; when the viewer leaves, it lingers, then stops.
    let now = wire.now;
    wire.engines[0].want_channel(now, channel(), true);
    wire.run(Duration::from_millis(100));
    assert!(wire.engines[0].is_ingesting(channel()));
    let now = wire.now;
    wire.engines[0].want_channel(now, channel(), false);
    wire.run(Duration::from_secs(2));
    assert!(wire.engines[0].is_ingesting(channel()), "lingers for three target durations");
    wire.run(Duration::from_secs(5));
    assert!(!wire.engines[0].is_ingesting(channel()));
}

#[test]
fn channels_added_at_run_time_are_elected_among_the_boxes_that_added_them() {
    let relay = ChannelId::derive("udp-239.1.1.1-5000", "udp://@239.1.1.1:5000");
    let mut wire = Wire::new(vec![config(1, keyed()), config(2, keyed()), config(3, keyed())]);
    wire.run(Duration::from_millis(200));
    let entry = LineupEntry { channel: relay, always_on: false };
    // Box 0 alone carries it: it is elected whatever the hash says, and ingests once wanted.
    let now = wire.now;
    wire.engines[0].add_channel(now, entry).expect("room in the lineup");
    wire.engines[0].want_channel(now, relay, true);
    wire.drain(0);
    wire.run(Duration::from_millis(300));
    assert!(wire.engines[0].is_ingesting(relay));
    assert_eq!(wire.engines[1].election(relay), None, "box 1 does not carry it");
    // Box 1 adds it too: both rank the same two boxes, and exactly one of them ingests.
    let now = wire.now;
    wire.engines[1].add_channel(now, entry).expect("room in the lineup");
    wire.drain(1);
    wire.run(Duration::from_secs(3));
    let (a, b) = (wire.engines[0].election(relay), wire.engines[1].election(relay));
    assert_eq!(a, b, "both boxes agree on the election");
    let ids = [wire.engines[0].node_id(), wire.engines[1].node_id()];
    let (ingester, standby) = a.expect("carried");
    assert!(ingester.is_some_and(|n| ids.contains(&n)) && standby.is_some_and(|n| ids.contains(&n)));
    assert_eq!((0..2).filter(|&i| wire.engines[i].is_ingesting(relay)).count(), 1);
    // A segment published by the ingester reaches the other carrier, not box 2.
    let ingesting = (0..2).find(|&i| wire.engines[i].is_ingesting(relay)).expect("one ingests");
    let now = wire.now;
    let bytes = vec![7u8; 50_000];
    wire.engines[ingesting]
        .publish_segment(now, SegmentInfo::new(relay, 1, Duration::from_secs(1)), &bytes)
        .expect("publishes");
    wire.drain(ingesting);
    wire.run(Duration::from_millis(300));
    assert!(wire.engines[1 - ingesting].store().segment(relay, 1).is_some_and(|s| s.is_complete()));
    assert!(wire.engines[2].store().segment(relay, 1).is_none());
    // Removing it forgets its segments and stops the ingester.
    let now = wire.now;
    assert!(wire.engines[ingesting].remove_channel(now, relay));
    wire.drain(ingesting);
    assert!(wire.events[ingesting].contains(&Event::IngestStop { channel: relay }));
    assert!(wire.engines[ingesting].store().segment(relay, 1).is_none());
    assert!(!wire.engines[ingesting].lineup().any(|c| c == relay));
    wire.run(Duration::from_secs(3));
    let other = 1 - ingesting;
    assert_eq!(wire.engines[other].election(relay).map(|e| e.0), Some(Some(wire.engines[other].node_id())));
}

#[test]
fn the_lineup_is_bounded_at_run_time() {
    let mut wire = Wire::new(vec![config(1, keyed())]);
    let now = wire.now;
    for i in 1..crate::wire::MAX_LINEUP {
        let entry = LineupEntry {
            channel: ChannelId::derive(&format!("c{i}"), "udp://@239.0.0.1:1"),
            always_on: false,
        };
        wire.engines[0].add_channel(now, entry).expect("room");
    }
    let one_more =
        LineupEntry { channel: ChannelId::derive("extra", "udp://@239.0.0.1:1"), always_on: false };
    assert_eq!(wire.engines[0].add_channel(now, one_more), Err(LineupFull));
}

/// Regression: datagrams box 1 sent to box 0, replayed unchanged to box 2 from another address,
/// moved box 2's view of box 1 to the attacker's address and pushed its replay window ahead, so
/// box 1's genuine datagrams were refused as replays. A datagram names its receiver now, and an
/// address moves only after a probe is answered from it.
#[test]
fn regression_a_datagram_for_another_box_is_refused_and_changes_nothing() {
    let mut wire = Wire::new(vec![config(1, keyed()), config(2, keyed()), config(3, keyed())]);
    wire.run(Duration::from_millis(300));
    assert!(wire.alive(2, 1));
    wire.capture = true;
    wire.run(Duration::from_millis(500));
    wire.capture = false;
    let attacker: SocketAddr = "10.0.0.66:5000".parse().expect("addr");
    let for_box_0: Vec<Vec<u8>> = wire
        .captured
        .iter()
        .filter(|(from, to, _)| (*from, *to) == (1, 0))
        .map(|(_, _, b)| b.clone())
        .collect();
    assert!(!for_box_0.is_empty());
    let before = wire.engines[2].counters();
    for bytes in &for_box_0 {
        // From the attacker's address, and from box 1's own (a forged source address).
        wire.engines[2].handle_datagram(wire.now, attacker, bytes);
        wire.engines[2].handle_datagram(wire.now, wire.addrs[1], bytes);
    }
    let after = wire.engines[2].counters();
    assert_eq!(after.misdirected - before.misdirected, 2 * for_box_0.len() as u64);
    assert_eq!(after.replay, before.replay);
    assert_eq!(wire.addr_of(2, 1), wire.addrs[1], "box 2 still sends to box 1 where it is");
    // Box 1's genuine datagrams to box 2 are still taken: its window did not move.
    wire.drain(2);
    let replays = wire.engines[2].counters().replay;
    wire.run(Duration::from_secs(2));
    assert!(wire.alive(2, 1) && wire.alive(1, 2));
    assert_eq!(wire.engines[2].counters().replay, replays, "no genuine datagram refused");
}

/// A datagram meant for this box, captured and replayed from another address before the
/// original arrives, is dropped unprocessed and answered only by a probe there (which the
/// attacker cannot answer): the peer's address and replay window stay as they were.
#[test]
fn a_datagram_replayed_from_another_address_does_not_move_the_peer() {
    let mut wire = Wire::new(vec![config(1, keyed()), config(2, keyed())]);
    wire.run(Duration::from_millis(300));
    let attacker: SocketAddr = "10.0.0.66:5000".parse().expect("addr");
    // Box 1's next pings, taken off the wire before box 0 sees them.
    wire.now += Duration::from_millis(300);
    wire.engines[1].handle_timeout(wire.now);
    let mut buf = [0u8; 1500];
    let mut in_flight = Vec::new();
    while let Some(t) = wire.engines[1].poll_transmit(wire.now, &mut buf) {
        if t.destination == wire.addrs[0] {
            in_flight.push(buf[..t.len].to_vec());
        }
    }
    assert!(!in_flight.is_empty(), "box 1 had datagrams on their way to box 0");
    let before = wire.engines[0].counters();
    for bytes in &in_flight {
        wire.engines[0].handle_datagram(wire.now, attacker, bytes);
    }
    let after = wire.engines[0].counters();
    assert_eq!(after.unverified_address - before.unverified_address, in_flight.len() as u64);
    assert_eq!(wire.addr_of(0, 1), wire.addrs[1]);
    // What box 0 sends in the next 10 ms (the pacer may hold a datagram a moment).
    let mut probes = 0;
    let until = wire.now + Duration::from_millis(10);
    while wire.now < until {
        while let Some(t) = wire.engines[0].poll_transmit(wire.now, &mut buf) {
            probes += usize::from(t.destination == attacker);
        }
        wire.now += Duration::from_micros(100);
    }
    assert_eq!(probes, 1, "one probe to the new address, rate-limited");
    wire.run(Duration::from_secs(2));
    assert!(wire.alive(0, 1) && wire.alive(1, 0));
    assert_eq!(wire.addr_of(0, 1), wire.addrs[1]);
}

/// A box whose address really changed (a new DHCP lease) is followed: its next datagrams from
/// the new address bring a probe there, its answer echoes the probe's challenge, and its peer
/// sends to the new address from then on, without losing the session.
#[test]
fn a_peer_that_moved_is_followed_after_it_answers_a_probe() {
    let mut wire = Wire::new(vec![config(1, keyed()), config(2, keyed())]);
    wire.run(Duration::from_millis(300));
    assert!(wire.alive(0, 1));
    let moved: SocketAddr = "10.0.0.99:5000".parse().expect("addr");
    wire.addrs[1] = moved;
    wire.run(Duration::from_millis(500));
    assert_eq!(wire.addr_of(0, 1), moved, "box 0 follows box 1 to its new address");
    assert!(wire.engines[0].counters().unverified_address >= 1, "after a probe");
    wire.run(Duration::from_secs(2));
    assert!(wire.alive(0, 1) && wire.alive(1, 0), "the session went on");
    let restarted = wire.events[0].iter().filter(|e| matches!(e, Event::PeerDown(_))).count();
    assert_eq!(restarted, 0, "the peer never went down");
}
