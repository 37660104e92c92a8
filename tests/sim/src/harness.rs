//! Running scenarios reproducibly: seeds from the environment, and the seed printed on failure.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// The seed to use: `SHOAL_SIM_SEED` if set (to reproduce a failure), else `default`.
pub fn seed_from_env(default: u64) -> u64 {
    std::env::var("SHOAL_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Runs `scenario` with `seed`; if it panics, prints the seed and how to rerun, then fails.
pub fn run_scenario(name: &str, default_seed: u64, scenario: impl FnOnce(u64)) {
    let seed = seed_from_env(default_seed);
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| scenario(seed))) {
        eprintln!("scenario `{name}` failed with seed {seed}; rerun with SHOAL_SIM_SEED={seed}");
        std::panic::resume_unwind(panic);
    }
}
