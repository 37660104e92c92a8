//! Channels that TVs switch on and off: nobody watches for a while, then a TV on some box tunes
//! in (the standby's own TV, the worst case: its lateness clock is the one that could fire), it
//! leaves, and a TV tunes in again later. Each time the origin must see one fetch per segment
//! and no box may take over from an ingester that is only starting.

use core::time::Duration;

use shoal_sim::{run_scenario, Sim, SimConfig};

/// Origin fetches per segment for the segments the origin made available in `window`, and how
/// many there were.
fn fetches(sim: &Sim, window: core::ops::Range<Duration>) -> (f64, u64) {
    let report = sim.report(window);
    (report.fetches_per_segment(), report.segments)
}

#[test]
fn a_channel_demanded_after_idling_is_fetched_once() {
    run_scenario("demand_after_idle", 41, |seed| {
        let config = SimConfig { boxes: 4, seed, always_on: false, ..SimConfig::default() };
        let mut sim = Sim::new(config);
        // Nobody watches for 20 s: nothing is fetched.
        sim.run_for(Duration::from_secs(20));
        assert!(sim.ingesters().is_empty(), "an unwatched channel is not fetched");
        assert_eq!(sim.origin.total_fetches(), 0);
        let ranking = sim.ranking();
        let (ingester, standby) = (ranking[0], ranking[1]);
        // A TV on the standby tunes in.
        sim.want(standby, true);
        sim.run_for(Duration::from_secs(30));
        assert_eq!(sim.ingesters(), [ingester], "the elected box fetches, alone");
        assert_eq!(sim.takeovers(), 0, "nobody took over from an ingester that was starting");
        let (per_segment, segments) = fetches(&sim, Duration::from_secs(20)..Duration::from_secs(48));
        assert!(segments >= 12, "{segments} segments");
        assert_eq!(per_segment, 1.0, "{segments} segments");
    });
}

#[test]
fn a_channel_watched_again_after_a_pause_is_fetched_once() {
    run_scenario("retune_after_pause", 43, |seed| {
        let config = SimConfig { boxes: 4, seed, always_on: false, ..SimConfig::default() };
        let mut sim = Sim::new(config);
        let ranking = sim.ranking();
        let (ingester, standby, third) = (ranking[0], ranking[1], ranking[2]);
        sim.want(third, true);
        sim.run_for(Duration::from_secs(20));
        assert_eq!(sim.ingesters(), [ingester]);
        // The TV leaves; 20 s later TVs on the standby and on the ingester tune in at once.
        sim.want(third, false);
        sim.run_for(Duration::from_secs(20));
        assert!(sim.ingesters().is_empty(), "nobody fetches an unwatched channel once it lingered");
        sim.want(standby, true);
        sim.want(ingester, true);
        sim.run_for(Duration::from_secs(30));
        assert_eq!(sim.ingesters(), [ingester]);
        assert_eq!(sim.takeovers(), 0);
        let (per_segment, segments) = fetches(&sim, Duration::from_secs(0)..Duration::from_secs(68));
        assert!(segments >= 20, "{segments} segments");
        assert_eq!(per_segment, 1.0, "{segments} segments");
    });
}
