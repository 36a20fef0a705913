//! A reference model of failover-core's documented semantics, and a property test that drives the
//! core and the model with the same random event sequences and asserts that they agree on every
//! decision (pick results, record results), every provider's state, share and figures, the next
//! deadline, and every event.
//!
//! The model is deliberately simple rather than fast: it allocates, keeps every outcome of the
//! window in a `Vec` and recounts it on every question, computes each open duration from scratch,
//! and is written from the doc comments of `Policy`, `Router`, `Trigger`, `EventKind` and the
//! modules' headers, not from the engine's code. It shares only the documented pure helpers
//! [`key_position`] (a key's position for keyed picks) and nothing else.
//!
//! Jitter: the documentation promises a factor in [1 − jitter, 1 + jitter] drawn
//! deterministically from the seed, the provider and its trip count, not a particular hash. The
//! model therefore takes each jittered open duration from the core's `Opened` event of the same
//! step and checks that it lies within the documented bounds (identical inputs giving identical
//! draws is checked in `tests/invariants`).
//!
//! [`Semantics`] records, in one place, the points where the documentation and the engine once
//! disagreed and how each was settled; the engine now follows the documentation on all of them.
//! The `repro_*` tests are minimal reproductions of each, kept as regression tests.

use std::collections::VecDeque;

use failover_core::{
    AllDown, CircuitState, EventKind, Outcome, OutcomeKind, PickRequest, Policy, ProbeMode,
    ProviderView, RampStage, Reason, Recorded, Router, Ticket, TicketKind, Trigger, WindowStats,
    key_position,
};
use failover_testkit::time::{Dt, advance, dt};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

pub(crate) type Core = Router<4, 12, 256>;

pub(crate) const PPM: u64 = 1_000_000;
/// The ladder of open durations has this many rungs (`policy.rs`: "Strikes beyond this all use
/// the capped open duration").
pub(crate) const MAX_STRIKES: u32 = 64;

mod circuit;
mod directed;
mod driver;
mod input;
mod reference;
mod repro;
mod router;
mod semantics;

use driver::*;
use input::*;
use reference::*;
use semantics::*;

fn cases() -> u32 {
    failover_testkit::cases::from_env("MODEL_CASES", 2_000)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 20_000,
        .. ProptestConfig::default()
    })]

    /// The engine agrees with the model on every decision, state, share and event.
    #[test]
    fn engine_agrees_with_the_model(case in case(160)) {
        run(&case, Semantics::ENGINE, &mut Coverage::default())?;
    }
}
