//! The request engine under arbitrary inputs: requests with any options, any outcome kind with
//! or without a `Retry-After`, stream inputs, cancels, outcomes observed outside any request,
//! timers, and time moving forwards, standing still or backwards.
//!
//! After every operation the promises of `failover_testkit::request` hold (never an attempt to an
//! open, throttled or benched provider; never more attempts than the budget; never an attempt or
//! a wait past the request's deadline; finished stays finished; every attempt recorded exactly
//! once; refused inputs record nothing), and so do the router's own invariants. The same driver
//! runs as a property test in `crates/failover-core/tests/request.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(v) = failover_testkit::request::run(data) {
        v.panic();
    }
});
