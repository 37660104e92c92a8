//! A live channel (2 s segments, 4 Mbit/s) for 60 simulated seconds on swarms of 2 to 64 boxes:
//! every box holds every segment, verified, within two segment durations of its ingest; the
//! origin is asked for each segment once; the store budget holds on every box throughout.

use core::time::Duration;

use shoal_sim::{run_scenario, Sim, SimConfig};

const RUN: Duration = Duration::from_secs(60);
/// Steady state: after the swarm formed and the first segments flowed, before the end.
const STEADY: core::ops::Range<Duration> = Duration::from_secs(6)..Duration::from_secs(56);

fn live_swarm(boxes: usize, seed: u64) {
    let config = SimConfig { boxes, seed, ..SimConfig::default() };
    let budget = config.store_budget;
    let duration = config.segment_duration;
    let mut sim = Sim::new(config);
    sim.run_for(RUN);
    let report = sim.report(STEADY);
    println!(
        "N={boxes} seed={seed}: {} segments, fetches/segment {:.3}, delay after origin p50 {:?} p99 {:?} max {:?}, worst after ingest {:?}",
        report.segments,
        report.fetches_per_segment(),
        report.delay_percentile(0.5),
        report.delay_percentile(0.99),
        report.delay_percentile(1.0),
        report.worst_after_publish,
    );
    assert!(report.segments >= 24, "too few segments published: {}", report.segments);
    assert!(report.missing.is_empty(), "segments missing on boxes: {:?}", report.missing);
    assert!(
        report.worst_after_publish <= duration * 2,
        "a segment took {:?} after its ingest to reach every box",
        report.worst_after_publish
    );
    assert!(
        report.fetches_per_segment() <= 1.02,
        "origin fetches per segment {}",
        report.fetches_per_segment()
    );
    for (i, b) in sim.boxes.iter().enumerate() {
        assert!(b.peak_store <= budget, "box {i} used {} of a {budget}-byte budget", b.peak_store);
        // Every completed segment really is verified and complete in the store.
        let engine = b.engine.as_ref().expect("running");
        let store = engine.store();
        for segment in store.segments(shoal_sim::sim_channel()) {
            if segment.is_complete() {
                let seq = segment.manifest().manifest().seq;
                let bytes = segment.bytes().expect("complete");
                assert_eq!(
                    bytes,
                    &sim.origin.segment_bytes(seq)[..],
                    "box {i} segment {seq} differs from the origin's"
                );
            }
        }
        let counters = engine.counters();
        assert_eq!(counters.bad_blocks, 0);
        // Without loss the push delivers everything: pulls are the exception.
        assert!(
            counters.requests_sent <= 10,
            "box {i} sent {} requests on a lossless LAN",
            counters.requests_sent
        );
    }
}

#[test]
fn live_2_boxes() {
    run_scenario("live_2_boxes", 11, |seed| live_swarm(2, seed));
}

#[test]
fn live_8_boxes() {
    run_scenario("live_8_boxes", 12, |seed| live_swarm(8, seed));
}

#[test]
fn live_32_boxes() {
    run_scenario("live_32_boxes", 13, |seed| live_swarm(32, seed));
}

#[test]
fn live_64_boxes() {
    run_scenario("live_64_boxes", 14, |seed| live_swarm(64, seed));
}

/// Two runs from one seed are identical: the simulator and the engines are deterministic.
#[test]
fn runs_are_reproducible_from_the_seed() {
    let run = |seed| {
        let mut sim = Sim::new(SimConfig { boxes: 6, seed, loss: 0.05, ..SimConfig::default() });
        sim.run_for(Duration::from_secs(12));
        let completions: Vec<_> = sim.boxes.iter().map(|b| b.completed.clone()).collect();
        (completions, sim.network.stats.sent, sim.network.stats.lost)
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

/// A store budget of three segments: boxes evict the oldest all the time, never exceed the
/// budget, and still hold the newest segments.
#[test]
fn small_store_budget_holds() {
    run_scenario("small_budget", 15, |seed| {
        let config = SimConfig { boxes: 8, seed, store_budget: 3 * 1024 * 1024, ..SimConfig::default() };
        let budget = config.store_budget;
        let mut sim = Sim::new(config);
        sim.run_for(Duration::from_secs(30));
        let report = sim.report(Duration::from_secs(4)..Duration::from_secs(26));
        assert!(report.missing.is_empty(), "{:?}", report.missing);
        for (i, b) in sim.boxes.iter().enumerate() {
            let engine = b.engine.as_ref().expect("running");
            assert!(b.peak_store <= budget, "box {i}: {} > {budget}", b.peak_store);
            let store = engine.store();
            assert!(store.counters().evicted >= 8, "box {i} evicted {}", store.counters().evicted);
            let held = store.window(shoal_sim::sim_channel(), 10).count();
            assert!((2..=3).contains(&held), "box {i} keeps what fits: {held}");
        }
    });
}
