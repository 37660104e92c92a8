//! Runs a simulated swarm with a live channel and prints, per segment, when it reached every box.
//!
//! `cargo run --release -p shoal-sim --bin swarm -- [--boxes N] [--seconds S] [--loss P]
//!  [--crash-ingester-at T] [--seed K]`
//!
//! What Shoal does, end to end, before the daemon exists: the boxes elect an ingester, it fetches
//! each segment from the (simulated) origin once, and the swarm spreads it over 100 Mbit/s links.

use core::time::Duration;
use std::process::ExitCode;

use shoal_core::Instant;
use shoal_sim::{sim_channel, Sim, SimConfig};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a value of the right type")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("usage: swarm [--boxes N (2..=256)] [--seconds S] [--loss P (0..1)] [--crash-ingester-at T] [--seed K]");
        return ExitCode::SUCCESS;
    }
    let parsed = (|| -> Result<_, String> {
        let boxes: usize = arg(&args, "--boxes", 16)?;
        let seconds: u64 = arg(&args, "--seconds", 30)?;
        let loss: f64 = arg(&args, "--loss", 0.0)?;
        let crash: f64 = arg(&args, "--crash-ingester-at", -1.0)?;
        let seed: u64 = arg(&args, "--seed", 1)?;
        if !(2..=256).contains(&boxes) {
            return Err("--boxes must be between 2 and 256".into());
        }
        if !(0.0..1.0).contains(&loss) {
            return Err("--loss must be in 0..1".into());
        }
        if !(1..=3600).contains(&seconds) {
            return Err("--seconds must be between 1 and 3600".into());
        }
        Ok((boxes, seconds, loss, crash, seed))
    })();
    let (boxes, seconds, loss, crash, seed) = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("swarm: {e} (see --help)");
            return ExitCode::from(2);
        }
    };
    let config = SimConfig { boxes, seed, loss, ..SimConfig::default() };
    println!(
        "{boxes} boxes, live channel {} Mbit/s in {} s segments, upload {} Mbit/s per box, loss {:.1} %, seed {seed}",
        config.bitrate / 1_000_000,
        config.segment_duration.as_secs(),
        config.upload_bps / 1_000_000,
        loss * 100.0
    );
    let mut sim = Sim::new(config);
    if crash >= 0.0 {
        sim.run_until(Instant::from_micros((crash * 1e6) as u64));
        let channel = sim_channel();
        if let Some(i) = sim
            .running()
            .into_iter()
            .find(|&i| sim.boxes[i].engine.as_ref().is_some_and(|e| e.is_ingesting(channel)))
        {
            println!("t={:?}: crashing the ingester, box {i}", sim.now());
            sim.crash(i);
        }
    }
    sim.run_until(Instant::from_secs(seconds));
    println!("\n| segment | origin at | fetches | reached all boxes after | boxes missing it |");
    println!("|---:|---:|---:|---:|---:|");
    let running = sim.running();
    let last = sim.origin.newest().unwrap_or(0);
    for (&seq, _) in sim.origin.published().iter().filter(|(&s, _)| s + 1 < last) {
        let available = sim.origin.available_at(seq).unwrap_or(Instant::ZERO);
        let done: Vec<_> = running.iter().filter_map(|&i| sim.boxes[i].completed.get(&seq)).collect();
        let missing = running.len() - done.len();
        let worst = done.iter().map(|t| t.saturating_since(available)).max().unwrap_or(Duration::ZERO);
        println!("| {seq} | {available} | {} | {worst:?} | {missing} |", sim.origin.fetches(seq));
    }
    let report = sim.report(Duration::ZERO..Duration::from_secs(seconds.saturating_sub(4)));
    println!(
        "\norigin fetches per segment {:.3}; delay after origin p50 {:?}, p99 {:?}; {} datagrams, {} lost",
        report.fetches_per_segment(),
        report.delay_percentile(0.5),
        report.delay_percentile(0.99),
        sim.network.stats.sent,
        sim.network.stats.lost
    );
    ExitCode::SUCCESS
}
