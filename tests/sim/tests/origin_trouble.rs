//! The origin in trouble during playback: one segment arrives late, a segment fails (a 404 or a
//! truncated answer) and is retried or skipped, or the origin is down for 15 s. That is the
//! origin's trouble, not the ingester's: the ingester keeps trying, nobody takes over (a second
//! fetcher would double the load on the origin when it is weakest), every box learns of an
//! outage, and once the origin answers again every segment it still lists reaches every box,
//! fetched once.
//!
//! Each scenario runs twice: with the channel always on, and demand-driven, where TVs on two
//! boxes (the standby's among them: its lateness clock is the one that could fire) tune in
//! after the channel idled for 10 s.

use core::time::Duration;

use shoal_core::Instant;
use shoal_sim::{run_scenario, sim_channel, Sim, SimConfig, SEGMENT_ATTEMPTS};

/// Four boxes, playing by 20 s; the boxes whose TVs watch (every box when `always_on`).
fn playing(seed: u64, always_on: bool) -> (Sim, Vec<usize>) {
    let mut sim = Sim::new(SimConfig { boxes: 4, seed, always_on, ..SimConfig::default() });
    if always_on {
        sim.run_for(Duration::from_secs(20));
        return (sim, (0..4).collect());
    }
    sim.run_for(Duration::from_secs(10));
    assert!(sim.ingesters().is_empty(), "an unwatched channel is not fetched");
    let ranking = sim.ranking();
    let watchers = vec![ranking[1], ranking[2]];
    for &i in &watchers {
        sim.want(i, true);
    }
    sim.run_for(Duration::from_secs(10));
    (sim, watchers)
}

/// Segments that watching boxes never got, in `window`.
fn missing_on(sim: &Sim, window: core::ops::Range<Duration>, watchers: &[usize]) -> Vec<(usize, u64)> {
    sim.report(window).missing.into_iter().filter(|(i, _)| watchers.contains(i)).collect()
}

fn late_segment(seed: u64, always_on: bool) {
    let (mut sim, watchers) = playing(seed, always_on);
    let target = sim.config.segment_duration;
    let ingester = sim.ingesters();
    assert_eq!(ingester.len(), 1);
    // Segment 12 appears at 24 s and takes 1.5 target durations longer than the others.
    sim.slow_segment(12, target * 3 / 2);
    sim.run_for(Duration::from_secs(30));
    assert_eq!(sim.ingesters(), ingester, "the same box fetches throughout");
    assert_eq!(sim.takeovers(), 0, "a late segment is not a dead ingester");
    let report = sim.report(Duration::from_secs(6)..Duration::from_secs(46));
    assert_eq!(report.fetches_per_segment(), 1.0, "{} segments", report.segments);
    let missing = missing_on(&sim, Duration::from_secs(6)..Duration::from_secs(46), &watchers);
    assert!(missing.is_empty(), "missing: {missing:?}");
}

#[test]
fn a_segment_that_arrives_late_is_waited_for_not_fetched_twice() {
    run_scenario("slow_segment", 51, |seed| late_segment(seed, true));
}

#[test]
fn a_late_segment_of_a_channel_tuned_in_after_idling_is_fetched_once() {
    run_scenario("slow_segment_on_demand", 52, |seed| late_segment(seed, false));
}

fn failing_segments(seed: u64, always_on: bool) {
    let (mut sim, watchers) = playing(seed, always_on);
    let ingester = sim.ingesters();
    assert_eq!(ingester.len(), 1);
    // Segment 12 fails twice, then arrives (a truncated answer, retried); segment 15 fails
    // every attempt (a 404) and is skipped.
    sim.failing_segment(12, 2);
    sim.failing_segment(15, SEGMENT_ATTEMPTS);
    sim.run_for(Duration::from_secs(30));
    assert_eq!(sim.ingesters(), ingester, "the same box fetches throughout");
    assert_eq!(sim.takeovers(), 0, "a failing segment is not a dead ingester");
    let retried_by: Vec<usize> = sim.origin.failed().keys().copied().collect();
    assert_eq!(retried_by, ingester, "only the ingester retries a failing segment");
    assert_eq!(sim.origin.failed().values().sum::<u64>(), 2 + u64::from(SEGMENT_ATTEMPTS));
    assert_eq!(sim.origin.fetches(12), 1, "segment 12, once it arrived whole");
    assert_eq!(sim.origin.fetches(15), 0, "segment 15 was skipped");
    let window = Duration::from_secs(6)..Duration::from_secs(46);
    assert_eq!(sim.report(window.clone()).fetches_per_segment(), 1.0);
    let missing = missing_on(&sim, window, &watchers);
    assert!(missing.is_empty(), "missing besides the skipped segment: {missing:?}");
}

#[test]
fn a_failing_segment_is_retried_or_skipped_by_the_ingester_alone() {
    run_scenario("failing_segment", 55, |seed| failing_segments(seed, true));
}

#[test]
fn a_failing_segment_of_a_channel_tuned_in_after_idling_is_retried_by_the_ingester_alone() {
    run_scenario("failing_segment_on_demand", 56, |seed| failing_segments(seed, false));
}

fn outage(seed: u64, always_on: bool) {
    let (mut sim, watchers) = playing(seed, always_on);
    let ingester = sim.ingesters();
    assert_eq!(ingester.len(), 1);
    sim.origin_outage(Instant::from_millis(20_100), Instant::from_millis(35_100));
    sim.run_until(Instant::from_millis(30_000));
    // Mid-outage: every box that watches knows from the ingester that the origin fails.
    for &i in watchers.iter().chain(&ingester) {
        let failing = sim.boxes[i].engine.as_ref().and_then(|e| e.origin_failing(sim_channel(), sim.now()));
        assert_eq!(failing, Some(true), "box {i} must know the origin fails");
    }
    sim.run_until(Instant::from_millis(60_000));
    assert_eq!(sim.ingesters(), ingester, "the same box fetches throughout");
    assert_eq!(sim.takeovers(), 0, "an origin outage is not a dead ingester");
    let retried_by: Vec<usize> = sim.origin.failed().keys().copied().collect();
    assert_eq!(retried_by, ingester, "only the ingester asks a failing origin");
    // Every segment the origin listed (all of them, here) reached every box, fetched once.
    let window = Duration::from_secs(6)..Duration::from_secs(54);
    let report = sim.report(window.clone());
    assert_eq!(report.fetches_per_segment(), 1.0, "{} segments", report.segments);
    let missing = missing_on(&sim, window, &watchers);
    assert!(missing.is_empty(), "missing after the outage: {missing:?}");
    for &i in &watchers {
        let failing = sim.boxes[i].engine.as_ref().and_then(|e| e.origin_failing(sim_channel(), sim.now()));
        assert_eq!(failing, Some(false), "box {i}: the origin answers again");
    }
}

#[test]
fn an_origin_down_for_15_s_is_retried_by_the_ingester_alone() {
    run_scenario("origin_outage", 53, |seed| outage(seed, true));
}

#[test]
fn an_outage_of_a_channel_tuned_in_after_idling_is_retried_by_the_ingester_alone() {
    run_scenario("origin_outage_on_demand", 54, |seed| outage(seed, false));
}
