//! Loss, jitter, reordering and duplication: every segment still arrives, verified; the delay
//! it costs is reported.

use core::time::Duration;

use shoal_sim::{run_scenario, Sim, SimConfig};

fn lossy(boxes: usize, loss: f64, seed: u64) {
    let config = SimConfig {
        boxes,
        seed,
        loss,
        // Jitter of up to 2 ms against ~0.1 ms between datagrams reorders heavily.
        jitter: Duration::from_millis(2),
        duplicate: 0.01,
        ..SimConfig::default()
    };
    let budget = config.store_budget;
    let mut sim = Sim::new(config);
    sim.run_for(Duration::from_secs(40));
    let report = sim.report(Duration::from_secs(6)..Duration::from_secs(34));
    let stats = sim.network.stats;
    println!(
        "N={boxes} loss={:.0}% seed={seed}: {} segments, delay after origin p50 {:?} p99 {:?} max {:?}; \
         {} datagrams sent, {} lost, {} duplicated; requests sent {}",
        loss * 100.0,
        report.segments,
        report.delay_percentile(0.5),
        report.delay_percentile(0.99),
        report.delay_percentile(1.0),
        stats.sent,
        stats.lost,
        stats.duplicated,
        sim.boxes.iter().filter_map(|b| b.engine.as_ref()).map(|e| e.counters().requests_sent).sum::<u64>(),
    );
    assert!(report.segments >= 12);
    assert!(report.missing.is_empty(), "missing: {:?}", report.missing);
    assert!(report.fetches_per_segment() <= 1.02, "fetches/segment {}", report.fetches_per_segment());
    for b in &sim.boxes {
        assert!(b.peak_store <= budget);
        let engine = b.engine.as_ref().expect("running");
        assert_eq!(engine.counters().bad_blocks, 0, "loss must never look like a bad block");
        for segment in engine.store().segments(shoal_sim::sim_channel()).filter(|s| s.is_complete()) {
            let seq = segment.manifest().manifest().seq;
            assert_eq!(segment.bytes().expect("complete"), &sim.origin.segment_bytes(seq)[..]);
        }
    }
}

#[test]
fn loss_5_percent_with_jitter_and_reordering() {
    run_scenario("loss_5_percent", 21, |seed| lossy(16, 0.05, seed));
}

#[test]
fn loss_20_percent_with_jitter_and_reordering() {
    run_scenario("loss_20_percent", 22, |seed| lossy(16, 0.20, seed));
}
