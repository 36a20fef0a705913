//! Random policies and event sequences.

use crate::*;

// ------------------------------------------------------------------------------------------------
// Random policies and event sequences.
// ------------------------------------------------------------------------------------------------

pub(crate) fn ppm_of(choices: &'static [u32]) -> impl Strategy<Value = u32> {
    prop::sample::select(choices)
}

pub(crate) fn spec() -> impl Strategy<Value = Spec> {
    let window = (
        1..=4usize,
        prop_oneof![1 => Just(1u64), 1 => Just(10), 3 => Just(100), 2 => 1..=50u64, 1 => Just(250)],
        1..=12u64,
        1..=8u32,
    );
    let triggers = (
        prop::option::weighted(0.8, ppm_of(&[1, 100_000, 250_000, 500_000, 1_000_000])),
        prop::option::weighted(0.7, 1..=5u32),
        prop::option::weighted(0.7, ppm_of(&[100_000, 300_000, 500_000, 1_000_000])),
        1..=300u64,
        prop_oneof![
            Just(1u32),
            Just(50),
            Just(300),
            Just(2_000),
            1..=5_000u32,
            Just(30_000)
        ],
        prop::option::weighted(0.6, ppm_of(&[1, 200_000, 500_000, 1_000_000])),
        prop::option::weighted(
            0.7,
            prop::sample::select(&[1_001u64, 1_500, 2_000, 3_000][..]),
        ),
        ppm_of(&[1, 500_000, 900_000, 1_000_000]),
        1..=3_000u64,
        any::<bool>(),
    );
    let circuit = (
        1..=300u64,
        prop::sample::select(&[1.0f64, 1.5, 2.0, 3.7, 1e9][..]),
        0..=3_000u64,
        ppm_of(&[0, 0, 100_000, 500_000, 999_999]),
        any::<u64>(),
        1..=1_000u64,
    );
    let probes = (
        prop_oneof![3 => Just(ProbeMode::Requests), 1 => Just(ProbeMode::HealthChecks)],
        prop_oneof![4 => 1..=3u32, 1 => 1..=8u32],
        1..=3u32,
        1..=300u64,
        prop::option::weighted(0.3, 1..=500u64),
    );
    let ramp = (
        prop::sample::subsequence(
            vec![
                1u32, 50_000, 100_000, 250_000, 333_333, 500_000, 750_000, 999_999,
            ],
            0..=3,
        ),
        prop::collection::vec(1..=200u64, 4),
        prop_oneof![Just(0u64), 1..=100u64],
        1..=5u32,
        ppm_of(&[1, 200_000, 500_000, 1_000_000]),
    );
    let throttle = (
        1..=100u64,
        0..=1_000u64,
        1..=5_000u64,
        prop_oneof![Just(AllDown::Soonest), Just(AllDown::Fail)],
    );
    (window, triggers, circuit, probes, ramp, throttle).prop_map(
        |(
            (providers, bucket_ms, buckets, min_volume),
            (er, cf, tr, sustain, slow_ms, sr, lf, lq, lb, cce),
            (ob, om, omx, jit, seed, decay),
            (pm, pmax, ps, pt, hci),
            (shares, dwells, last_dwell, rms, rb),
            (tb, tmx, mra, ad),
        )| {
            let mut ramp: Vec<(u32, u64)> = shares.into_iter().zip(dwells).collect();
            ramp.push((PPM as u32, last_dwell));
            Spec {
                providers,
                bucket_ms,
                buckets,
                min_volume,
                error_rate: er,
                consecutive: cf,
                timeout_rate: tr,
                timeout_sustain_ms: sustain,
                slow_call_ms: slow_ms,
                slow_rate: sr,
                latency_factor_milli: lf,
                latency_quantile: lq,
                latency_baseline_ms: lb,
                count_client_errors: cce,
                open_base_ms: ob,
                open_multiplier: om,
                open_max_ms: ob + omx,
                jitter: jit,
                seed,
                backoff_decay_ms: decay,
                probe_mode: pm,
                probe_max: pmax,
                probe_successes: ps,
                probe_timeout_ms: pt,
                health_check_interval_ms: hci,
                ramp,
                ramp_min_samples: rms,
                rollback: rb,
                throttle_base_ms: tb,
                throttle_max_ms: tb + tmx,
                max_retry_after_ms: mra,
                all_down: ad,
            }
        },
    )
}

/// Raw randomness for one outcome; the driver turns it into an outcome that depends on whether
/// the provider is in a good or a bad phase.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawOutcome {
    pub(crate) kind: u8,
    pub(crate) latency: u16,
    pub(crate) scale: u8,
    pub(crate) retry_after: u8,
    pub(crate) retry_ms: u64,
}

pub(crate) fn raw_outcome() -> impl Strategy<Value = RawOutcome> {
    (
        any::<u8>(),
        any::<u16>(),
        any::<u8>(),
        any::<u8>(),
        any::<u64>(),
    )
        .prop_map(|(kind, latency, scale, retry_after, retry_ms)| RawOutcome {
            kind,
            latency,
            scale,
            retry_after,
            retry_ms,
        })
}

#[derive(Clone, Debug)]
pub(crate) enum Op {
    /// Picks, and (usually) records the ticket's outcome at once, as a request would.
    Pick {
        dt: Dt,
        key: Option<u8>,
        tried: u8,
        then: Option<(Dt, RawOutcome)>,
    },
    /// Records the `which`-th outstanding ticket (kept for a duplicate report when `keep`).
    Record {
        dt: Dt,
        which: usize,
        keep: bool,
        out: RawOutcome,
    },
    /// Records a ticket the router never issued (unknown provider, wrong generation, wrong probe).
    Forged {
        dt: Dt,
        provider: u8,
        kind: u8,
        generation: i8,
        seq: u32,
        out: RawOutcome,
    },
    Observe {
        dt: Dt,
        provider: u8,
        out: RawOutcome,
    },
    PollAction {
        dt: Dt,
    },
    HandleTimeout {
        dt: Dt,
    },
    /// `handle_timeout(poll_timeout())`, the run loop's sleep.
    SleepUntilDeadline,
}

pub(crate) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        40 => (
            dt(60, 2_000, 10_000_000),
            prop::option::weighted(0.2, 0..8u8),
            prop_oneof![6 => Just(0u8), 1 => any::<u8>()],
            prop::option::weighted(0.7, (dt(60, 2_000, 10_000_000), raw_outcome())),
        )
            .prop_map(|(dt, key, tried, then)| Op::Pick { dt, key, tried, then }),
        15 => (dt(60, 2_000, 10_000_000), any::<usize>(), prop::bool::weighted(0.05), raw_outcome())
            .prop_map(|(dt, which, keep, out)| Op::Record { dt, which, keep, out }),
        2 => (dt(60, 2_000, 10_000_000), 0..6u8, any::<u8>(), -2..=2i8, 0..4u32, raw_outcome()).prop_map(
            |(dt, provider, kind, generation, seq, out)| Op::Forged {
                dt,
                provider,
                kind,
                generation,
                seq,
                out
            }
        ),
        8 => (dt(60, 2_000, 10_000_000), 0..5u8, raw_outcome())
            .prop_map(|(dt, provider, out)| Op::Observe { dt, provider, out }),
        6 => dt(60, 2_000, 10_000_000).prop_map(|dt| Op::PollAction { dt }),
        5 => dt(60, 2_000, 10_000_000).prop_map(|dt| Op::HandleTimeout { dt }),
        5 => Just(Op::SleepUntilDeadline),
    ]
}

/// A case: a policy, where time starts, how long the good and bad phases last, and the inputs.
#[derive(Clone, Debug)]
pub(crate) struct Case {
    pub(crate) spec: Spec,
    pub(crate) start: u64,
    pub(crate) phase: usize,
    /// A healthy call's usual latency, ms.
    pub(crate) normal_latency: u32,
    /// What a bad phase looks like: 0 errors, 1 slow successes, 2 timeouts.
    pub(crate) flavour: u8,
    pub(crate) ops: Vec<Op>,
}

pub(crate) fn case(max_ops: usize) -> impl Strategy<Value = Case> {
    (
        spec(),
        prop_oneof![
            8 => Just(0u64),
            4 => 0..=1_000_000u64,
            2 => Just(1_764_000_000_000u64),
            1 => (u64::MAX - 100_000)..=u64::MAX,
        ],
        5..=60usize,
        (5..=500u32, 0..3u8, 0..10u8),
        prop::collection::vec(op(), 1..=max_ops),
    )
        .prop_map(
            |(mut spec, start, phase, (normal_latency, mut flavour, focus), ops)| {
                if focus < 2 {
                    // A short window that learns its baseline quickly, then slow phases: the
                    // latency trigger's home ground.
                    spec.bucket_ms = 100;
                    spec.buckets = spec.buckets.min(4);
                    spec.min_volume = spec.min_volume.min(3);
                    spec.latency_factor_milli.get_or_insert(2_000);
                    spec.slow_rate = None;
                    flavour = 1;
                } else if focus < 4 {
                    // Quick trips and recoveries with a growing, then decaying, backoff.
                    spec.probe_successes = 1;
                    spec.ramp_min_samples = spec.ramp_min_samples.min(2);
                    for stage in &mut spec.ramp {
                        stage.1 = stage.1.min(20);
                    }
                    spec.open_base_ms = spec.open_base_ms.min(50);
                    spec.open_max_ms = spec.open_base_ms * 1_000;
                    spec.backoff_decay_ms = spec.backoff_decay_ms % 30 + 1;
                }
                Case {
                    spec,
                    start,
                    phase,
                    normal_latency,
                    flavour,
                    ops,
                }
            },
        )
}

/// The outcome a call has: mostly successes in a good phase, mostly failures in a bad one.
pub(crate) fn outcome(raw: RawOutcome, bad: bool, case: &Case) -> Outcome {
    let spec = &case.spec;
    use OutcomeKind as K;
    let r = raw.kind;
    let kind = if bad && case.flavour == 2 {
        match r {
            0..=99 => K::Success,
            100..=109 => K::ServerError,
            110..=229 => K::Timeout,
            230..=239 => K::RateLimited,
            _ => K::Cancelled,
        }
    } else if bad && case.flavour == 0 {
        match r {
            0..=49 => K::Success,
            50..=129 => K::ServerError,
            130..=149 => K::ConnectionError,
            150..=214 => K::Timeout,
            215..=229 => K::RateLimited,
            230..=244 => K::ClientError,
            _ => K::Cancelled,
        }
    } else {
        match r {
            0..=214 => K::Success,
            215..=221 => K::ServerError,
            222..=224 => K::ConnectionError,
            225..=233 => K::Timeout,
            234..=241 => K::RateLimited,
            242..=249 => K::ClientError,
            _ => K::Cancelled,
        }
    };
    let l = u32::from(raw.latency);
    let normal = case.normal_latency;
    let latency = match raw.scale % 32 {
        0..=24 => normal + l % (normal / 4 + 1),
        25..=27 => spec.slow_call_ms.saturating_sub(50) + l % 100,
        28..=30 => l,
        _ => u32::MAX - l % 3,
    };
    // A slow phase: successes several times slower than normal.
    let latency = if bad && case.flavour == 1 {
        latency.saturating_mul(4 + u32::from(raw.scale / 32))
    } else {
        latency
    };
    let retry_after_ms = match raw.retry_after {
        0..=239 => None,
        240..=241 => Some(0),
        242..=248 => Some(raw.retry_ms % 200),
        249..=252 => Some(raw.retry_ms % 20_000),
        253 | 254 => Some(raw.retry_ms),
        _ => Some(u64::MAX),
    };
    // A 429 carries a Retry-After more often than other kinds.
    let retry_after_ms =
        if kind == K::RateLimited && retry_after_ms.is_none() && raw.retry_ms.is_multiple_of(3) {
            Some(raw.retry_ms % 500)
        } else {
            retry_after_ms
        };
    Outcome {
        kind,
        latency_ms: latency,
        retry_after_ms,
    }
}
