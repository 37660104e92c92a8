//! Boxes come and go: the ingester crashes, the LAN splits and heals, a box joins late, a box
//! leaves cleanly.

use core::time::Duration;

use shoal_core::{Event, Instant};
use shoal_sim::{run_scenario, sim_channel, Sim, SimConfig};

fn ingester(sim: &Sim) -> usize {
    let channel = sim_channel();
    let ingesting: Vec<usize> = sim
        .running()
        .into_iter()
        .filter(|&i| sim.boxes[i].engine.as_ref().is_some_and(|e| e.is_ingesting(channel)))
        .collect();
    assert_eq!(ingesting.len(), 1, "exactly one box should ingest, got {ingesting:?}");
    ingesting[0]
}

/// Largest delay (origin availability → last running box complete) per segment in a window.
fn worst_delay(sim: &Sim, from: u64, to: u64) -> Vec<(u64, Duration)> {
    (from..=to)
        .map(|seq| {
            let available = sim.origin.available_at(seq).expect("published by the origin");
            let worst = sim
                .running()
                .iter()
                .map(|&i| {
                    sim.boxes[i].completed.get(&seq).map_or(Duration::MAX, |t| t.saturating_since(available))
                })
                .max()
                .unwrap_or(Duration::ZERO);
            (seq, worst)
        })
        .collect()
}

#[test]
fn ingester_crash_standby_takes_over() {
    run_scenario("ingester_crash", 31, |seed| {
        let config = SimConfig { boxes: 8, seed, ..SimConfig::default() };
        let duration = config.segment_duration;
        let mut sim = Sim::new(config);
        sim.run_for(Duration::from_secs(20));
        let steady = worst_delay(&sim, 3, 8).into_iter().map(|(_, d)| d).max().expect("segments");
        let old = ingester(&sim);
        let standby_id =
            sim.boxes[old].engine.as_ref().and_then(|e| e.election(sim_channel())).and_then(|(_, s)| s);
        // Crash mid-stream: segment 10 appears at the origin at 20 s, the ingester has it 30 ms
        // later and is pushing it when it dies, 15 ms into the push.
        sim.run_until(Instant::from_millis(20_045));
        let partial =
            sim.running().iter().filter(|&&i| i != old && !sim.boxes[i].completed.contains_key(&10)).count();
        assert!(partial > 0, "the crash must interrupt a segment's dissemination");
        sim.crash(old);
        sim.run_for(Duration::from_secs(20));
        let new = ingester(&sim);
        assert_ne!(new, old);
        assert_eq!(sim.boxes[new].engine.as_ref().map(|e| e.node_id()), standby_id, "the standby takes over");
        let delays = worst_delay(&sim, 9, 18);
        println!("seed={seed}: steady worst {steady:?}; around the crash {delays:?}");
        for (seq, d) in delays {
            assert!(d != Duration::MAX, "segment {seq} missing on a survivor");
            assert!(
                d <= steady + duration,
                "segment {seq}: {d:?} exceeds steady {steady:?} + one segment duration"
            );
        }
    });
}

#[test]
fn partition_heals() {
    run_scenario("partition_heals", 32, |seed| {
        let mut sim = Sim::new(SimConfig { boxes: 8, seed, ..SimConfig::default() });
        sim.run_for(Duration::from_secs(10));
        let fetches_before = sim.origin.total_fetches();
        sim.network.partition(vec![0, 0, 0, 0, 1, 1, 1, 1]);
        sim.run_for(Duration::from_secs(12));
        // Both halves keep playing: each elects its own ingester.
        let during = worst_delay(&sim, 8, 10);
        assert!(during.iter().all(|&(_, d)| d < Duration::from_secs(4)), "during the partition: {during:?}");
        assert!(sim.origin.total_fetches() - fetches_before >= 6 * 2 - 1, "each half fetched for itself");
        sim.network.heal();
        sim.run_for(Duration::from_secs(20));
        ingester(&sim);
        // After the heal: one ingester again, one fetch per segment, nothing missing.
        for seq in 15..=20 {
            assert_eq!(sim.origin.fetches(seq), 1, "segment {seq} fetched {} times", sim.origin.fetches(seq));
        }
        let after = worst_delay(&sim, 13, 20);
        println!("seed={seed}: during {during:?}; after {after:?}");
        assert!(after.iter().all(|&(_, d)| d < Duration::from_secs(2)), "after the heal: {after:?}");
    });
}

#[test]
fn late_joiner_gets_the_current_window() {
    run_scenario("late_joiner", 33, |seed| {
        let config = SimConfig { boxes: 8, seed, ..SimConfig::default() };
        let window = 6;
        let mut sim = Sim::new(config);
        sim.crash(7); // box 7 is not there at first
        sim.run_for(Duration::from_secs(21));
        let newest = sim.origin.newest().expect("segments");
        sim.start_box(7);
        sim.run_for(Duration::from_secs(3));
        let held: Vec<u64> = sim.boxes[7].completed.keys().copied().collect();
        println!("seed={seed}: newest at join {newest}; box 7 holds {held:?}");
        for seq in newest + 1 - window..=newest {
            assert!(
                sim.boxes[7].completed.contains_key(&seq),
                "late joiner lacks segment {seq} of the window"
            );
        }
        sim.run_for(Duration::from_secs(10));
        let last = sim.origin.newest().expect("segments");
        for seq in newest..last {
            assert!(sim.boxes[7].completed.contains_key(&seq), "late joiner lacks live segment {seq}");
        }
    });
}

#[test]
fn clean_leave_is_noticed_at_once() {
    run_scenario("clean_leave", 34, |seed| {
        let config = SimConfig { boxes: 8, seed, ..SimConfig::default() };
        let duration = config.segment_duration;
        let mut sim = Sim::new(config);
        sim.run_for(Duration::from_secs(15));
        let steady = worst_delay(&sim, 2, 6).into_iter().map(|(_, d)| d).max().expect("segments");
        // The ingester leaves (the hardest case): its peers hear the goodbye, not a timeout.
        let leaver = ingester(&sim);
        let leaver_id = sim.boxes[leaver].engine.as_ref().map(|e| e.node_id()).expect("running");
        let left_at = sim.now();
        sim.leave(leaver);
        sim.run_for(Duration::from_millis(100));
        for i in sim.running() {
            let saw_goodbye = sim.boxes[i].events.iter().any(|&(t, e)| {
                e == Event::PeerDown(leaver_id) && t.saturating_since(left_at) < Duration::from_millis(50)
            });
            assert!(saw_goodbye, "box {i} did not drop the leaver within 50 ms");
        }
        sim.run_for(Duration::from_secs(15));
        let new = ingester(&sim);
        assert_ne!(new, leaver);
        let delays = worst_delay(&sim, 8, 14);
        println!("seed={seed}: steady {steady:?}; after leave {delays:?}");
        for (seq, d) in delays {
            assert!(d <= steady + duration / 2, "segment {seq}: {d:?}");
        }
    });
}

/// A box that joins after the ingester died still gets the window: the segments the former
/// ingester signed, while it was rightly elected, are vouched for by its successor, whom the
/// newcomer trusts (it never met the signer, and its own election does not name it).
#[test]
fn late_joiner_gets_segments_signed_by_a_former_ingester() {
    run_scenario("late_joiner_former_ingester", 34, |seed| {
        let config = SimConfig { boxes: 8, seed, ..SimConfig::default() };
        let window = 6;
        let mut sim = Sim::new(config);
        sim.crash(7); // box 7 is not there at first
        sim.run_for(Duration::from_secs(20));
        let old = ingester(&sim);
        let old_id = sim.boxes[old].engine.as_ref().map(|e| e.node_id()).expect("running");
        sim.crash(old);
        // The standby takes over; the former ingester's segments are still in the window.
        sim.run_for(Duration::from_secs(6));
        let new = ingester(&sim);
        assert_ne!(new, old);
        let newest = sim.origin.newest().expect("segments");
        let signed_by_old: Vec<u64> = (newest + 1 - window..=newest)
            .filter(|&seq| {
                let segment =
                    sim.boxes[new].engine.as_ref().and_then(|e| e.store().segment(sim_channel(), seq));
                segment.is_some_and(|s| s.manifest().manifest().signer == old_id)
            })
            .collect();
        assert!(!signed_by_old.is_empty(), "the window must hold segments the former ingester signed");
        sim.start_box(7);
        sim.run_for(Duration::from_secs(3));
        let held: Vec<u64> = sim.boxes[7].completed.keys().copied().collect();
        println!("seed={seed}: newest at join {newest}; signed by the former ingester {signed_by_old:?}; box 7 holds {held:?}");
        for seq in newest + 1 - window..=newest {
            assert!(
                sim.boxes[7].completed.contains_key(&seq),
                "late joiner lacks segment {seq} of the window (the former ingester signed {signed_by_old:?})"
            );
        }
        let vouched = sim.boxes[7].engine.as_ref().map_or(0, |e| e.counters().manifests_vouched);
        assert!(
            vouched >= signed_by_old.len() as u64,
            "box 7 took {vouched} manifests on the successor's word"
        );
    });
}
