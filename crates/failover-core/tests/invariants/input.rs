//! Random policies and inputs.

use failover_core::{AllDown, Outcome, OutcomeKind, Policy, ProbeMode, RampStage};
use failover_testkit::headers::Quota;
use failover_testkit::time::{Dt, dt};
use proptest::prelude::*;

#[derive(Clone, Debug)]
pub(crate) struct Case {
    pub(crate) policy: Policy,
    pub(crate) providers: usize,
    pub(crate) start: u64,
    pub(crate) ops: Vec<Op>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    /// A pick, recorded at once (`Some`) or left outstanding.
    Pick {
        dt: Dt,
        key: Option<u8>,
        tried: u8,
        then: Option<(Dt, u8, u32, Option<u64>)>,
    },
    /// Records an outstanding ticket (a late, possibly stale result).
    Record {
        dt: Dt,
        which: usize,
        kind: u8,
        latency: u32,
        retry_after: Option<u64>,
    },
    Observe {
        dt: Dt,
        provider: u8,
        kind: u8,
        latency: u32,
        retry_after: Option<u64>,
    },
    PollAction {
        dt: Dt,
    },
    /// Many unkeyed picks at one instant (a burst of requests), never recorded.
    Burst {
        dt: Dt,
        n: usize,
    },
    HandleTimeout {
        dt: Dt,
    },
    SleepUntilDeadline,
    /// One answer's rate-limit headers for a provider (`Router::observe_headroom`): pacing.
    Headroom {
        dt: Dt,
        provider: u8,
        quotas: [Quota; 4],
    },
}

/// One dimension's headers: often absent, else a limit (now and then 0 or huge), a remaining
/// mostly low (below any watermark, often zero) and a reset.
fn quota() -> impl Strategy<Value = Quota> {
    let limit = prop_oneof![8 => 1..=1_000u64, 1 => Just(0u64), 1 => any::<u64>()];
    let per_mille =
        prop_oneof![3 => Just(0u16), 4 => 0..=150u16, 3 => 0..=1_000u16, 1 => 1_001..=1_100u16];
    let reset = prop_oneof![
        3 => Just(None),
        1 => Just(Some(0u64)),
        4 => (1..=5_000u64).prop_map(Some),
        1 => (1..=200_000u64).prop_map(Some),
    ];
    prop_oneof![
        1 => Just(Quota::default()),
        2 => (limit, per_mille, reset).prop_map(|(l, m, r)| Quota::from_raw(l, m, r)),
    ]
}

fn retry_after() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![
        30 => Just(None),
        1 => Just(Some(0)),
        2 => (1..=2_000u64).prop_map(Some),
        1 => any::<u64>().prop_map(Some),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        40 => (
            dt(80, 5_000, 100_000_000),
            prop::option::weighted(0.2, 0..16u8),
            prop_oneof![8 => Just(0u8), 1 => any::<u8>()],
            prop::option::weighted(0.75, (dt(80, 5_000, 100_000_000), any::<u8>(), any::<u32>(), retry_after())),
        )
            .prop_map(|(dt, key, tried, then)| Op::Pick { dt, key, tried, then }),
        12 => (dt(80, 5_000, 100_000_000), any::<usize>(), any::<u8>(), any::<u32>(), retry_after()).prop_map(
            |(dt, which, kind, latency, retry_after)| Op::Record {
                dt,
                which,
                kind,
                latency,
                retry_after
            }
        ),
        8 => (dt(80, 5_000, 100_000_000), 0..6u8, any::<u8>(), any::<u32>(), retry_after()).prop_map(
            |(dt, provider, kind, latency, retry_after)| Op::Observe {
                dt,
                provider,
                kind,
                latency,
                retry_after
            }
        ),
        5 => dt(80, 5_000, 100_000_000).prop_map(|dt| Op::PollAction { dt }),
        3 => (dt(80, 5_000, 100_000_000), 1..=60usize).prop_map(|(dt, n)| Op::Burst { dt, n }),
        4 => dt(80, 5_000, 100_000_000).prop_map(|dt| Op::HandleTimeout { dt }),
        4 => Just(Op::SleepUntilDeadline),
        6 => (dt(80, 5_000, 100_000_000), 0..6u8, [quota(), quota(), quota(), quota()])
            .prop_map(|(dt, provider, quotas)| Op::Headroom { dt, provider, quotas }),
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    let a = (
        prop_oneof![Just(1u64), Just(10), Just(100), 1..=50u64],
        1..=12u64,
        1..=8u32,
        prop::option::weighted(0.8, 0.05..=1.0f64),
        prop::option::weighted(0.7, 1..=5u32),
        prop::option::weighted(0.7, 0.05..=1.0f64),
        1..=400u64,
        1..=3_000u32,
        prop::option::weighted(0.5, 0.05..=1.0f64),
        prop::option::weighted(0.5, 1.01..=10.0f64),
        0.01..=1.0f64,
        1..=3_000u64,
    );
    let b = (
        any::<bool>(),
        1..=300u64,
        1.0..=4.0f64,
        0..=3_000u64,
        prop_oneof![Just(0.0f64), 0.0..0.99f64],
        any::<u64>(),
        1..=1_000u64,
        prop_oneof![3 => Just(ProbeMode::Requests), 1 => Just(ProbeMode::HealthChecks)],
        1..=4u32,
        1..=3u32,
        1..=300u64,
        prop::option::weighted(0.3, 1..=800u64),
    );
    let c = (
        prop::sample::subsequence(vec![0.01f64, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9], 0..=3),
        prop::collection::vec(1..=200u64, 4),
        prop_oneof![Just(0u64), 1..=100u64],
        1..=5u32,
        0.05..=1.0f64,
        1..=100u64,
        0..=1_000u64,
        1..=5_000u64,
        prop_oneof![Just(AllDown::Soonest), Just(AllDown::Fail)],
        prop::option::weighted(0.85, 0.01..=1.0f64),
        prop_oneof![1..=2_000u64, 1..=120_000u64],
    );
    (a, b, c).prop_map(
        |(
            (bucket_ms, buckets, min_volume, er, cf, tr, sustain, slow_ms, sr, lf, lq, lb),
            (cce, ob, om, omx, jit, seed, decay, pm, pmax, ps, pt, hci),
            (shares, dwells, last_dwell, rms, rb, tb, tmx, mra, ad, pw, pma),
        )| {
            let mut ramp = heapless::Vec::new();
            for (share, dwell_ms) in shares.into_iter().zip(dwells) {
                ramp.push(RampStage { share, dwell_ms }).unwrap();
            }
            ramp.push(RampStage {
                share: 1.0,
                dwell_ms: last_dwell,
            })
            .unwrap();
            Policy {
                bucket_ms,
                window_ms: bucket_ms * buckets,
                min_volume,
                error_rate_threshold: er,
                consecutive_failures: cf,
                timeout_rate_threshold: tr,
                timeout_sustain_ms: sustain,
                slow_call_ms: slow_ms,
                slow_call_rate_threshold: sr,
                latency_factor: lf,
                latency_quantile: lq,
                latency_baseline_ms: lb,
                count_client_errors: cce,
                open_base_ms: ob,
                open_multiplier: om,
                open_max_ms: ob + omx,
                open_jitter: jit,
                seed,
                backoff_decay_ms: decay,
                probe_mode: pm,
                probe_max_in_flight: pmax,
                probe_successes: ps,
                probe_timeout_ms: pt,
                health_check_interval_ms: hci,
                ramp,
                ramp_min_samples: rms,
                ramp_rollback_threshold: rb,
                throttle_base_ms: tb,
                throttle_max_ms: tb + tmx,
                max_retry_after_ms: mra,
                when_all_down: ad,
                pace_watermark: pw,
                pace_max_age_ms: pma,
                ..Policy::default()
            }
        },
    )
}

pub(crate) fn case(max_ops: usize) -> impl Strategy<Value = Case> {
    (
        policy(),
        1..=4usize,
        prop_oneof![
            8 => Just(0u64),
            4 => 0..=1_000_000u64,
            1 => (u64::MAX - 100_000)..=u64::MAX,
        ],
        prop::collection::vec(op(), 1..=max_ops),
    )
        .prop_map(|(policy, providers, start, ops)| Case {
            policy,
            providers,
            start,
            ops,
        })
}

/// Mostly successes, sometimes failures of every kind; latencies of every size.
pub(crate) fn outcome(kind: u8, latency: u32, retry_after_ms: Option<u64>, bad: bool) -> Outcome {
    use OutcomeKind as K;
    let kind = if bad {
        [
            K::Success,
            K::ServerError,
            K::ServerError,
            K::ConnectionError,
            K::Timeout,
            K::Timeout,
            K::RateLimited,
            K::ClientError,
            K::Cancelled,
        ][usize::from(kind) % 9]
    } else {
        match kind {
            0..=219 => K::Success,
            220..=225 => K::ServerError,
            226..=230 => K::Timeout,
            231..=238 => K::RateLimited,
            239..=246 => K::ClientError,
            247..=250 => K::ConnectionError,
            _ => K::Cancelled,
        }
    };
    let latency_ms = match latency % 8 {
        0..=4 => latency % 300,
        5 | 6 => latency % 40_000,
        _ => latency,
    };
    Outcome {
        kind,
        latency_ms,
        retry_after_ms,
    }
}
