//! `Router::record`'s fast path against its general path (`Router::record_general`) on workloads
//! built to reach the fast path often and to sit on its edges: mostly successes with latencies
//! around the slow-call and latency-degradation limits, a few timeouts and failures, bucket widths
//! of 1, 2 and 10 ms, windows of 1 to 12 buckets, small `min_volume`, the timeout and latency
//! triggers on or off, and start times near `u64::MAX`.
//!
//! After every input both routers must agree on the result, the events, every view and the next
//! deadline, and `invariant_violation` must be `None` (in debug builds it also checks the fast
//! path's cached facts against a recount of the window).
//!
//! `tests/invariants` runs the same comparison on its general workload; this one exists because that
//! workload reaches the fast path in only a minority of cases.

use failover_core::{Outcome, Policy, RampStage, Router, Ticket};
use failover_testkit::{Record, same_transcripts};
use proptest::prelude::*;

type R = Router<2, 12, 1024>;

#[derive(Clone, Debug)]
struct Shape {
    bucket_ms: u64,
    buckets: u64,
    min_volume: u32,
    timeouts: Option<f64>,
    latency_factor: Option<f64>,
    slow_call_ms: u32,
    start: u64,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    /// Pick and record at once: `kind` 0..=27 success, 28 timeout, 29 server error, 30 429, 31
    /// timeout.
    Call {
        dt: u64,
        kind: u8,
        latency: u32,
    },
    /// Pick now, record later (`Late`).
    Hold {
        dt: u64,
    },
    /// Record the oldest held ticket as a success.
    Late {
        dt: u64,
        latency: u32,
    },
    HandleTimeout {
        dt: u64,
    },
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        prop_oneof![1 => Just(1u64), 1 => Just(2), 3 => Just(10)],
        1u64..=12,
        1u32..=4,
        prop_oneof![Just(None), Just(Some(0.3)), Just(Some(0.5))],
        prop_oneof![Just(None), Just(Some(1.5)), Just(Some(3.0))],
        prop_oneof![Just(5u32), Just(40), Just(1_000)],
        prop_oneof![
            Just(0u64),
            Just(1_000_000),
            Just(u64::MAX - 5_000),
            Just(u64::MAX - 200)
        ],
    )
        .prop_map(
            |(bucket_ms, buckets, min_volume, timeouts, latency_factor, slow_call_ms, start)| {
                Shape {
                    bucket_ms,
                    buckets,
                    min_volume,
                    timeouts,
                    latency_factor,
                    slow_call_ms,
                    start,
                }
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    let dt = prop_oneof![6 => Just(0u64), 6 => 1u64..3, 1 => 3u64..40];
    let latency = prop_oneof![4 => 1u32..8, 2 => 8u32..60, 1 => 60u32..2_000];
    prop_oneof![
        12 => (dt.clone(), 0u8..32, latency.clone())
            .prop_map(|(dt, kind, latency)| Op::Call { dt, kind, latency }),
        1 => dt.clone().prop_map(|dt| Op::Hold { dt }),
        1 => (dt.clone(), latency).prop_map(|(dt, latency)| Op::Late { dt, latency }),
        1 => dt.prop_map(|dt| Op::HandleTimeout { dt }),
    ]
}

fn policy(s: &Shape) -> Policy {
    Policy {
        bucket_ms: s.bucket_ms,
        window_ms: s.bucket_ms * s.buckets,
        min_volume: s.min_volume,
        timeout_rate_threshold: s.timeouts,
        timeout_sustain_ms: 3,
        slow_call_ms: s.slow_call_ms,
        latency_factor: s.latency_factor,
        latency_baseline_ms: s.bucket_ms * 4,
        open_base_ms: 20,
        open_max_ms: 80,
        open_jitter: 0.0,
        probe_timeout_ms: 15,
        backoff_decay_ms: 50,
        ramp: heapless::Vec::from_slice(&[
            RampStage {
                share: 0.5,
                dwell_ms: 10,
            },
            RampStage {
                share: 1.0,
                dwell_ms: 0,
            },
        ])
        .unwrap(),
        ramp_min_samples: 1,
        ..Policy::default()
    }
}

fn outcome(kind: u8, latency: u32) -> Outcome {
    match kind {
        0..=27 => Outcome::success(latency),
        28 | 31 => Outcome::timeout(latency),
        29 => Outcome::server_error(latency),
        _ => Outcome::rate_limited(None),
    }
}

/// Runs `ops`, recording `how`, and returns the transcript.
fn run(s: &Shape, ops: &[Op], how: Record) -> Result<Vec<String>, TestCaseError> {
    let mut r = R::new(&policy(s), &["a", "b"]).expect("valid policy");
    let mut out = Vec::new();
    let mut held: Vec<Ticket> = Vec::new();
    let mut now = s.start;
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Call { dt, kind, latency } => {
                now = now.saturating_add(dt);
                let picked = r.pick(now);
                out.push(format!("pick {picked:?}"));
                if let Ok(t) = picked {
                    let res = how.record(&mut r, &t, outcome(kind, latency), now);
                    out.push(format!("record {res:?}"));
                }
            }
            Op::Hold { dt } => {
                now = now.saturating_add(dt);
                let picked = r.pick(now);
                out.push(format!("hold {picked:?}"));
                held.extend(picked.ok());
            }
            Op::Late { dt, latency } => {
                now = now.saturating_add(dt);
                if !held.is_empty() {
                    let t = held.remove(0);
                    let res = how.record(&mut r, &t, Outcome::success(latency), now);
                    out.push(format!("late {res:?}"));
                }
            }
            Op::HandleTimeout { dt } => {
                now = now.saturating_add(dt);
                r.handle_timeout(now);
            }
        }
        out.extend(std::iter::from_fn(|| r.poll_event()).map(|e| format!("event {e:?}")));
        out.extend(r.views().map(|v| format!("view {v:?}")));
        out.push(format!("timeout {:?}", r.poll_timeout()));
        if let Some(v) = r.invariant_violation() {
            return Err(TestCaseError::fail(format!("step {step} ({op:?}): {v}")));
        }
    }
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: failover_testkit::cases::from_env("FAST_PATH_CASES", 600),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_fast_path_agrees_with_the_general_path_at_its_edges(
        s in shape(),
        ops in proptest::collection::vec(op(), 1..240),
    ) {
        let fast = run(&s, &ops, Record::Fast)?;
        let general = run(&s, &ops, Record::General)?;
        same_transcripts(&fast, &general)?;
    }
}

/// A directed case: the fast path must stop at the instant a success would lift the window to
/// `min_volume` with the timeout rate at its threshold (the breach starts on a success).
#[test]
fn a_success_that_completes_the_volume_still_starts_a_timeout_breach() {
    let s = Shape {
        bucket_ms: 1_000,
        buckets: 10,
        min_volume: 4,
        timeouts: Some(0.5),
        latency_factor: None,
        slow_call_ms: 1_000,
        start: 0,
    };
    let mut r = R::new(&policy(&s), &["a", "b"]).unwrap();
    let a = r.provider_at(0).unwrap();
    r.observe(a, Outcome::timeout(5), 1);
    r.observe(a, Outcome::timeout(5), 2);
    r.observe(a, Outcome::success(5), 3);
    assert_eq!(
        r.view(a).unwrap().next_transition_ms,
        None,
        "3 calls: below min_volume"
    );
    let t = r.pick(4).unwrap();
    r.record(&t, Outcome::success(5), 4);
    // 2 timeouts in 4 calls = 50 %: the breach starts now and becomes sustained 3 ms later.
    assert_eq!(r.view(a).unwrap().next_transition_ms, Some(7));
    assert_eq!(r.invariant_violation(), None);
}
