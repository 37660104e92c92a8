//! The origin in trouble during playback: one segment arrives late, or the origin is down for
//! 15 s. That is the origin's trouble, not the ingester's: the ingester keeps trying, says so in
//! its "fetching" announcement, nobody takes over (a second fetcher would double the load on the
//! origin when it is weakest), every box learns the origin fails, and once it answers again every
//! segment it still lists reaches every box, fetched once.

use core::time::Duration;

use shoal_core::Instant;
use shoal_sim::{run_scenario, sim_channel, Sim, SimConfig};

#[test]
fn a_segment_that_arrives_late_is_waited_for_not_fetched_twice() {
    run_scenario("slow_segment", 51, |seed| {
        let config = SimConfig { boxes: 4, seed, ..SimConfig::default() };
        let target = config.segment_duration;
        let mut sim = Sim::new(config);
        sim.run_for(Duration::from_secs(20));
        let ingester = sim.ingesters();
        assert_eq!(ingester.len(), 1);
        // Segment 12 appears at 24 s and takes 1.5 target durations longer than the others.
        sim.slow_segment(12, target * 3 / 2);
        sim.run_for(Duration::from_secs(30));
        assert_eq!(sim.ingesters(), ingester, "the same box fetches throughout");
        assert_eq!(sim.takeovers(), 0, "a late segment is not a dead ingester");
        let report = sim.report(Duration::from_secs(6)..Duration::from_secs(46));
        assert_eq!(report.fetches_per_segment(), 1.0, "{} segments", report.segments);
        assert!(report.missing.is_empty(), "missing: {:?}", report.missing);
    });
}

#[test]
fn an_origin_down_for_15_s_is_retried_by_the_ingester_alone() {
    run_scenario("origin_outage", 53, |seed| {
        let config = SimConfig { boxes: 4, seed, ..SimConfig::default() };
        let mut sim = Sim::new(config);
        sim.run_for(Duration::from_secs(20));
        let ingester = sim.ingesters();
        assert_eq!(ingester.len(), 1);
        sim.origin_outage(Instant::from_millis(20_100), Instant::from_millis(35_100));
        sim.run_until(Instant::from_millis(30_000));
        // Mid-outage: every box knows from the ingester that the origin fails.
        for i in sim.running() {
            let failing =
                sim.boxes[i].engine.as_ref().and_then(|e| e.origin_failing(sim_channel(), sim.now()));
            assert_eq!(failing, Some(true), "box {i} must know the origin fails");
        }
        sim.run_until(Instant::from_millis(60_000));
        assert_eq!(sim.ingesters(), ingester, "the same box fetches throughout");
        assert_eq!(sim.takeovers(), 0, "an origin outage is not a dead ingester");
        let retried_by: Vec<usize> = sim.origin.failed().keys().copied().collect();
        assert_eq!(retried_by, ingester, "only the ingester asks a failing origin");
        // Every segment the origin listed (all of them, here) reached every box, fetched once.
        let report = sim.report(Duration::from_secs(6)..Duration::from_secs(54));
        assert_eq!(report.fetches_per_segment(), 1.0, "{} segments", report.segments);
        assert!(report.missing.is_empty(), "missing after the outage: {:?}", report.missing);
        for i in sim.running() {
            let failing =
                sim.boxes[i].engine.as_ref().and_then(|e| e.origin_failing(sim_channel(), sim.now()));
            assert_eq!(failing, Some(false), "box {i}: the origin answers again");
        }
    });
}
