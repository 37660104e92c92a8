//! Dissemination benchmark: how long a new segment takes to reach every box, against the lower
//! bound `S/u + ⌈log2 N⌉·b/u` (DESIGN.md §5), in the deterministic simulator.
//!
//! `cargo run --profile bench -p shoal-sim --bin dissemination [-- --seeds K]`
//!
//! Prints a markdown table (the worst of K seeds per cell) and exits non-zero if any ratio is
//! above 1.5 (the floor) or below 1.0 (which would mean the simulator lets data move faster
//! than the links allow: a bug).

use core::time::Duration;
use std::process::ExitCode;

use shoal_core::{SegmentInfo, BLOCK_SIZE};
use shoal_sim::{sim_channel, Sim, SimConfig};

const UPLOAD_BPS: u64 = 100_000_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let seeds: u64 = args
        .iter()
        .position(|a| a == "--seeds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    println!("command: cargo run --profile bench -p shoal-sim --bin dissemination -- --seeds {seeds}");
    println!(
        "setup: simulated LAN, upload u = {} Mbit/s per box (IP/UDP headers counted), link latency 0.2–1 ms, \
         jitter 0–0.1 ms, no loss, 1232-byte datagrams, block b = {} KiB, 2 stripes; worst of {seeds} seeds per cell",
        UPLOAD_BPS / 1_000_000,
        BLOCK_SIZE / 1024
    );
    println!();
    println!("| boxes N | segment S | measured | lower bound S/u + ⌈log2 N⌉·b/u | ratio |");
    println!("|---:|---:|---:|---:|---:|");
    let mut ok = true;
    for n in [4usize, 16, 64] {
        for size in [256 * 1024usize, 1024 * 1024, 4 * 1024 * 1024] {
            let bound = lower_bound(n, size);
            let mut worst = Duration::ZERO;
            for seed in 1..=seeds {
                match measure(n, size, seed) {
                    Some(t) => worst = worst.max(t),
                    None => {
                        eprintln!("N={n} S={size} seed={seed}: segment never reached every box");
                        return ExitCode::FAILURE;
                    }
                }
            }
            let ratio = worst.as_secs_f64() / bound.as_secs_f64();
            let verdict = if ratio < 1.0 {
                ok = false;
                " (below the bound: simulator error)"
            } else if ratio > 1.5 {
                ok = false;
                " (above the 1.5 floor)"
            } else {
                ""
            };
            println!(
                "| {n} | {} KiB | {:.1} ms | {:.1} ms | {ratio:.3}{verdict} |",
                size / 1024,
                worst.as_secs_f64() * 1e3,
                bound.as_secs_f64() * 1e3
            );
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn lower_bound(n: usize, size: usize) -> Duration {
    let u = UPLOAD_BPS as f64 / 8.0;
    let log2n = (n as f64).log2().ceil();
    Duration::from_secs_f64(size as f64 / u + log2n * BLOCK_SIZE as f64 / u)
}

/// Time from publication on the ingester until the last box completes the segment.
fn measure(n: usize, size: usize, seed: u64) -> Option<Duration> {
    let mut sim = Sim::new(SimConfig { boxes: n, seed, live: false, ..SimConfig::default() });
    // Let sessions confirm, RTTs settle and the election converge.
    sim.run_for(Duration::from_secs(2));
    let channel = sim_channel();
    let ingester = (0..n).find(|&i| sim.boxes[i].engine.as_ref().is_some_and(|e| e.is_ingesting(channel)))?;
    let bytes: Vec<u8> =
        (0..size).map(|i| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes()[7]).collect();
    let info = SegmentInfo::new(channel, 1, Duration::from_secs(2));
    let start = sim.now();
    if !sim.publish(ingester, info, &bytes) {
        return None;
    }
    let limit = start + Duration::from_secs(10);
    let done = sim.run_until_true(limit, |sim| sim.boxes.iter().all(|b| b.completed.contains_key(&1)));
    if !done {
        return None;
    }
    let last = sim.boxes.iter().filter_map(|b| b.completed.get(&1)).max().copied()?;
    Some(last.saturating_since(start))
}
