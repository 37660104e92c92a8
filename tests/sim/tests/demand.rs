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

/// Segments that appeared at the origin in `window` (origin time) and were fetched more than
/// once: (segment, fetches).
fn refetched(sim: &Sim, window: core::ops::Range<Duration>) -> Vec<(u64, u64)> {
    let first = sim.origin.published().keys().next().copied().unwrap_or(0);
    let last = sim.origin.newest().unwrap_or(0);
    (first..=last)
        .filter(|&seq| {
            sim.origin
                .available_at(seq)
                .is_some_and(|t| window.contains(&Duration::from_micros(t.as_micros())))
        })
        .map(|seq| (seq, sim.origin.fetches(seq)))
        .filter(|&(_, n)| n > 1)
        .collect()
}

/// A box restarts (crash, back 4 s later with the same identity, as the daemon does after a
/// power cut) while TVs on other boxes watch a demand-driven channel. A box that is neither
/// ingester nor standby costs the origin nothing; the ingester's restart costs at most the one
/// segment it had in flight: its standby takes over, and when it comes back it does not fetch
/// alongside its successor.
#[test]
fn a_box_restart_costs_no_second_fetch() {
    run_scenario("restart_under_demand", 44, |seed| {
        let config = SimConfig { boxes: 6, seed, always_on: false, ..SimConfig::default() };
        let mut sim = Sim::new(config);
        let ranking = sim.ranking();
        let (ingester, standby, watcher, other) = (ranking[0], ranking[1], ranking[2], ranking[3]);
        sim.run_for(Duration::from_secs(10));
        sim.want(watcher, true);
        sim.want(standby, true);
        sim.run_for(Duration::from_secs(16));
        assert_eq!(sim.ingesters(), [ingester]);

        // A box with no role restarts: nothing changes at the origin.
        sim.crash(other);
        sim.run_for(Duration::from_secs(4));
        sim.start_box(other);
        sim.run_for(Duration::from_secs(12));
        assert_eq!(sim.ingesters(), [ingester]);
        assert_eq!(sim.takeovers(), 0, "a restart of a box with no role is no reason to take over");
        let quiet = refetched(&sim, Duration::ZERO..Duration::from_secs(40));
        assert!(quiet.is_empty(), "refetched: {quiet:?}");

        // The ingester restarts.
        let crashed_at = sim.now();
        sim.crash(ingester);
        sim.run_for(Duration::from_secs(4));
        sim.start_box(ingester);
        sim.run_for(Duration::from_secs(30));
        let after = Duration::from_micros(crashed_at.as_micros());
        let ingesting = sim.ingesters();
        assert_eq!(ingesting.len(), 1, "one box fetches once the restarted box is back: {ingesting:?}");
        let twice = refetched(&sim, Duration::ZERO..Duration::from_secs(90));
        println!("seed={seed}: after the ingester's restart, {ingesting:?} ingest; refetched {twice:?}");
        assert!(twice.len() <= 1 && twice.iter().all(|&(_, n)| n == 2), "refetched: {twice:?}");
        let report = sim.report(after..after + Duration::from_secs(30));
        assert!(report.segments >= 14, "{} segments", report.segments);
        let watched_missing: Vec<_> =
            report.missing.iter().filter(|(i, _)| [watcher, standby].contains(i)).collect();
        assert!(watched_missing.is_empty(), "segments the TVs' boxes never got: {watched_missing:?}");
    });
}

/// How long an ingester cut off from every TV may go on fetching: its peers' silence is noticed
/// (a few seconds), then it lingers three target durations (6 s) as for any lapsed demand.
const LINGER_AFTER_A_SPLIT: Duration = Duration::from_secs(12);

/// The LAN splits while TVs in both halves watch: each half must fetch for itself (it cannot
/// reach the other), but once the LAN heals one ingester remains within two target durations
/// and each segment is fetched once again. A half with no TV stops fetching soon after a split.
#[test]
fn a_partition_under_demand_heals_to_one_fetcher() {
    run_scenario("partition_under_demand", 45, |seed| {
        let config = SimConfig { boxes: 8, seed, always_on: false, ..SimConfig::default() };
        let duration = config.segment_duration;
        let mut sim = Sim::new(config);
        // Boxes 0..4 in one half, 4..8 in the other; a TV on one box of each.
        sim.want(1, true);
        sim.want(6, true);
        sim.run_for(Duration::from_secs(12));
        assert_eq!(sim.ingesters().len(), 1);
        sim.network.partition(vec![0, 0, 0, 0, 1, 1, 1, 1]);
        sim.run_for(Duration::from_secs(16));
        assert_eq!(sim.ingesters().len(), 2, "each half fetches for its TV");
        let healed_at = sim.now();
        sim.network.heal();
        sim.run_for(duration * 2);
        assert_eq!(sim.ingesters().len(), 1, "one ingester within two target durations of the heal");
        sim.run_for(Duration::from_secs(20));
        assert_eq!(sim.ingesters().len(), 1);
        let after = Duration::from_micros(healed_at.as_micros()) + duration * 2;
        let twice = refetched(&sim, after..after + Duration::from_secs(18));
        assert!(twice.is_empty(), "fetched twice after the heal: {twice:?}");
        let report = sim.report(after..after + Duration::from_secs(18));
        assert!(report.missing.iter().all(|(i, _)| ![1, 6].contains(i)), "missing: {:?}", report.missing);

        // Now only one half watches, and the LAN splits again. An ingester cut off in the half
        // with no TV cannot be told the demand went with the split: it goes on until its
        // peers' silence says so, then lingers as for any lapsed demand, and stops.
        sim.want(6, false);
        sim.run_for(Duration::from_secs(12));
        sim.network.partition(vec![0, 0, 0, 0, 1, 1, 1, 1]);
        let split = Duration::from_micros(sim.now().as_micros());
        sim.run_for(Duration::from_secs(24));
        let ingesting = sim.ingesters();
        assert!(ingesting.len() == 1 && ingesting[0] < 4, "only the watched half fetches: {ingesting:?}");
        let overlap = refetched(&sim, split..split + Duration::from_secs(24));
        println!("seed={seed}: after the second split, fetched twice: {overlap:?}");
        let settled = split + LINGER_AFTER_A_SPLIT;
        assert!(
            overlap.iter().all(|&(seq, _)| Duration::from_micros(
                sim.origin.available_at(seq).expect("available").as_micros()
            ) < settled),
            "the cut-off half fetched for more than {LINGER_AFTER_A_SPLIT:?} after the split: {overlap:?}"
        );
    });
}

/// The standby stops hearing the ingester for 4 s (interference near it; the ingester still
/// hears the standby) while TVs watch. To the standby the ingester is gone, so it fetches; once
/// it hears the ingester again it steps back within a target duration: the two fetch only while
/// they cannot agree, and no TV misses a segment.
#[test]
fn a_one_way_cut_between_ingester_and_standby_heals_to_one_fetcher() {
    run_scenario("one_way_cut", 46, |seed| {
        let config = SimConfig { boxes: 4, seed, always_on: false, ..SimConfig::default() };
        let duration = config.segment_duration;
        let mut sim = Sim::new(config);
        let ranking = sim.ranking();
        let (ingester, standby, third) = (ranking[0], ranking[1], ranking[2]);
        sim.want(standby, true);
        sim.want(third, true);
        sim.run_for(Duration::from_secs(16));
        assert_eq!(sim.ingesters(), [ingester]);
        let cut_at = Duration::from_micros(sim.now().as_micros());
        sim.network.cut_one_way(ingester, standby);
        sim.run_for(Duration::from_secs(4));
        assert!(sim.ingesters().contains(&standby), "to the standby, the ingester is gone");
        sim.network.restore();
        let restored = Duration::from_micros(sim.now().as_micros());
        sim.run_for(duration);
        assert_eq!(sim.ingesters(), [ingester], "the standby stepped back within a target duration");
        sim.run_for(Duration::from_secs(20));
        assert_eq!(sim.ingesters(), [ingester]);
        let twice = refetched(&sim, Duration::ZERO..restored + Duration::from_secs(20));
        println!("seed={seed}: fetched twice {twice:?}");
        assert!(
            twice.iter().all(|&(seq, n)| {
                let t = Duration::from_micros(sim.origin.available_at(seq).expect("available").as_micros());
                n == 2 && t >= cut_at && t < restored + duration
            }),
            "fetched twice outside the cut: {twice:?}"
        );
        let report = sim.report(Duration::from_secs(8)..restored + Duration::from_secs(18));
        let missing: Vec<_> = report.missing.iter().filter(|(i, _)| [standby, third].contains(i)).collect();
        assert!(missing.is_empty(), "the TVs' boxes lack {missing:?}");
    });
}
