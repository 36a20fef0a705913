//! Property tests of the engine's invariants over random event sequences, including time that
//! goes backwards, stands still, jumps by hours and reaches `u64::MAX`:
//!
//! - no panic, and `Router::invariant_violation` is `None` after every input;
//! - every share is in [0, 1], and consistent with the state (0 while open, probing or throttled,
//!   the stage's share while ramping, 1 while healthy);
//! - over any run of requests during which the shares do not change, the split of picks is
//!   exactly the deterministic credit split of the shares;
//! - an open provider is never picked except as a degraded pick, a probe goes only to a probing
//!   provider, and a request never skips an available provider of higher priority;
//! - a ramp never advances before its dwell and its minimum sample;
//! - pacing (rate-limit headers, `observe_headroom`) never changes a circuit, a ramp or a
//!   throttle; its hint is what the rules make of the headers and expires on time; a paced
//!   provider's share is exactly headroom / watermark of its share (also in the split), and a
//!   provider at zero headroom gets no request until its hint expires;
//! - identical inputs give identical outputs, events included, and a clone continues identically;
//! - a full event queue drops and counts, and never changes a decision.

mod directed;
mod driver;
mod input;
mod split;

use failover_core::Router;
use failover_testkit::{Record, cases::per_mille, same_transcripts};
use proptest::prelude::*;

use driver::{names, run, run_with};
use input::{Case, case};

type R = Router<4, 12, 256>;

/// `default` cases, scaled by `INVARIANT_CASES` / 1000 when set (for long local runs).
fn cases(default: u32) -> u32 {
    per_mille("INVARIANT_CASES", default)
}

fn new_router<const E: usize>(case: &Case) -> Router<4, 12, E> {
    let names = names(case.providers);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    Router::new(&case.policy, &names).expect("the generated policy is valid")
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(800),
        max_shrink_iters: 20_000,
        .. ProptestConfig::default()
    })]

    /// Every invariant holds after every input, and identical inputs give identical outputs.
    #[test]
    fn invariants_hold_and_runs_are_deterministic(case in case(200)) {
        let mut a: R = new_router(&case);
        let first = run(&case, &mut a, true, true)?;
        let mut b: R = new_router(&case);
        let second = run(&case, &mut b, true, false)?;
        prop_assert_eq!(first, second);
    }

    /// `record`'s fast path for quiet successes changes exactly what the general path would:
    /// the same results, events, views (window figures included) and deadlines after every input.
    #[test]
    fn the_fast_path_records_exactly_like_the_general_path(case in case(200)) {
        let mut fast: R = new_router(&case);
        let mut general: R = new_router(&case);
        let a = run_with(&case, &mut fast, true, true, Record::Fast)?;
        let b = run_with(&case, &mut general, true, true, Record::General)?;
        same_transcripts(&a, &b)?;
    }

}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(250),
        max_shrink_iters: 20_000,
        .. ProptestConfig::default()
    })]

    /// A clone taken half-way continues exactly like the original.
    #[test]
    fn a_clone_continues_identically(case in case(120), split in 0..120usize) {
        let split = split.min(case.ops.len());
        let head = Case { ops: case.ops[..split].to_vec(), ..case.clone() };
        let tail = Case { ops: case.ops[split..].to_vec(), ..case.clone() };
        let mut a: R = new_router(&case);
        run(&head, &mut a, true, false)?;
        let mut b = a.clone();
        let tail = Case { start: a.now(), ..tail };
        prop_assert_eq!(run(&tail, &mut a, true, false)?, run(&tail, &mut b, true, false)?);
    }

    /// A full event queue drops its oldest events and counts them, keeping the newest; decisions
    /// do not depend on it.
    #[test]
    fn a_full_event_queue_counts_what_it_drops(case in case(120)) {
        let mut big: R = new_router(&case);
        let mut small: Router<4, 12, 2> = new_router(&case);
        let with_events = run(&case, &mut big, true, false)?;
        let without = run(&case, &mut small, false, false)?;
        let all: Vec<&String> = with_events.iter().filter(|l| l.starts_with("event ")).collect();
        let kept: Vec<String> =
            std::iter::from_fn(|| small.poll_event()).map(|e| format!("event {e:?}")).collect();
        let kept: Vec<&String> = kept.iter().collect();
        failover_testkit::check::queue_keeps_newest(&all, &kept, small.dropped_events())?;
        let decisions = |t: &[String]| -> Vec<String> {
            t.iter().filter(|l| !l.starts_with("event ") && !l.starts_with("dropped")).cloned().collect()
        };
        prop_assert_eq!(decisions(&with_events), decisions(&without));
    }
}
