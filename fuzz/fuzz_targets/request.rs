//! The request engine under arbitrary inputs: requests with any options, any outcome kind with
//! or without a `Retry-After`, stream inputs, cancels, outcomes observed outside any request,
//! timers, and time moving forwards, standing still or backwards.
//!
//! After every operation the promises of `failover_testkit::request` hold (never an attempt to an
//! open, throttled or benched provider; never more attempts than the budget; never an attempt or
//! a wait past the request's deadline; finished stays finished; every attempt recorded exactly
//! once; refused inputs record nothing), and so do the router's own invariants (O(P · B), so on
//! a deterministic sample: every operation that changed a circuit, every 16th
//! (`FAILOVER_FULL_CHECK_EVERY=1`: every one) and the last). The same driver runs as a property
//! test in `crates/failover-core/tests/request.rs`, with the invariants after every operation.

#![no_main]

use libfuzzer_sys::fuzz_target;

use failover_testkit::check::Sample;
use failover_testkit::{request, stats};

fuzz_target!(|data: &[u8]| {
    match request::run_sampled(data, Sample::from_env(16)) {
        Ok(seen) => stats::add(seen.steps as usize),
        Err(v) => v.panic(),
    }
});
