//! One engine (insecure mode, one always-on channel) fed a sequence of datagrams, raw or with a
//! valid tag prepended, interleaved with timer calls at advancing times and a few commands. The
//! input format is documented in `src/lib.rs`. The engine must never panic, and everything it
//! sends must decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_fuzz::Harness;

fuzz_target!(|data: &[u8]| {
    let mut harness = Harness::new();
    harness.run(data);
});
