use core::time::Duration;
use shoal_sim::{Sim, SimConfig};

#[test]
fn smoke() {
    for n in [2usize, 4, 8] {
        let t = std::time::Instant::now();
        let mut sim = Sim::new(SimConfig { boxes: n, seed: 3, ..SimConfig::default() });
        sim.run_for(Duration::from_secs(20));
        let r = sim.report(Duration::from_secs(4)..Duration::from_secs(16));
        eprintln!("n={n} segs={} fetches/seg={:.2} missing={} p50={:?} p100={:?} worst_after_pub={:?} wall={:?} stats={:?}",
            r.segments, r.fetches_per_segment(), r.missing.len(), r.delay_percentile(0.5), r.delay_percentile(1.0), r.worst_after_publish, t.elapsed(), sim.network.stats);
        for b in &sim.boxes { let e = b.engine.as_ref().unwrap(); eprintln!("  {:?} {:?}", e.node_id(), e.counters()); }
    }
}
