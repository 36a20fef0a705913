//! Directed checks of the model itself, so that agreement means something.

use crate::*;

// ------------------------------------------------------------------------------------------------
// Directed checks of the model itself, so that agreement means something.
// ------------------------------------------------------------------------------------------------

#[test]
fn model_bins_match_the_documented_half_octaves() {
    assert_eq!(bin_of(0), 0);
    assert_eq!(bin_of(1), 0);
    assert_eq!(bin_of(2), 2);
    assert_eq!(bin_of(3), 3);
    assert_eq!(bin_of(4), 4);
    assert_eq!(bin_of(5), 4);
    assert_eq!(bin_of(6), 5);
    assert_eq!(bin_of(1000), 19);
    assert_eq!(bin_of(u32::MAX), 31);
    for b in 0..32 {
        // Bin 1 ([1.5, 2) ms) holds no integer latency; its middle rounds down into bin 0.
        let expect = if b == 1 { 0 } else { b };
        assert_eq!(bin_of(bin_mid(b)), expect);
    }
}

#[test]
fn model_ladder_follows_the_policy() {
    let s = Spec {
        open_base_ms: 30_000,
        open_multiplier: 2.0,
        open_max_ms: 600_000,
        ..default_spec()
    };
    let m = Model::new(&s, Semantics::DOCUMENTED);
    let ladder: Vec<u64> = (1..=7).map(|k| m.ladder(k)).collect();
    assert_eq!(
        ladder,
        [30_000, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000]
    );
    assert_eq!(m.max_strikes(), 6);
}

/// The defaults of `Policy`, as a `Spec`.
pub(crate) fn default_spec() -> Spec {
    Spec {
        providers: 2,
        bucket_ms: 1_000,
        buckets: 60,
        min_volume: 20,
        error_rate: Some(500_000),
        consecutive: Some(3),
        timeout_rate: Some(300_000),
        timeout_sustain_ms: 30_000,
        slow_call_ms: 30_000,
        slow_rate: Some(500_000),
        latency_factor_milli: Some(3_000),
        latency_quantile: 500_000,
        latency_baseline_ms: 1_800_000,
        count_client_errors: false,
        open_base_ms: 30_000,
        open_multiplier: 2.0,
        open_max_ms: 600_000,
        jitter: 100_000,
        seed: 0,
        backoff_decay_ms: 600_000,
        probe_mode: ProbeMode::Requests,
        probe_max: 1,
        probe_successes: 3,
        probe_timeout_ms: 60_000,
        health_check_interval_ms: None,
        ramp: vec![
            (50_000, 400_000),
            (250_000, 400_000),
            (500_000, 400_000),
            (1_000_000, 0),
        ],
        ramp_min_samples: 10,
        rollback: 200_000,
        throttle_base_ms: 1_000,
        throttle_max_ms: 60_000,
        max_retry_after_ms: 600_000,
        all_down: AllDown::Soonest,
    }
}

#[test]
fn default_spec_is_the_default_policy() {
    assert_eq!(default_spec().policy(), Policy::default());
}

/// The outage story of the domain brief, in lockstep: a long scripted run through every state.
#[test]
fn the_outage_story_agrees() {
    let mut ops = Vec::new();
    let ok = RawOutcome {
        kind: 0,
        latency: 5,
        scale: 0,
        retry_after: 0,
        retry_ms: 0,
    };
    for k in 0..4_000 {
        ops.push(Op::Pick {
            dt: Dt::Fwd(if k % 7 == 0 { 0 } else { 3 }),
            key: if k % 5 == 0 {
                Some((k % 8) as u8)
            } else {
                None
            },
            tried: 0,
            then: None,
        });
        ops.push(Op::Record {
            dt: Dt::Fwd(1),
            which: 0,
            keep: false,
            out: RawOutcome {
                kind: (k * 37 % 256) as u8,
                ..ok
            },
        });
        if k % 50 == 0 {
            ops.push(Op::SleepUntilDeadline);
        }
    }
    let spec = Spec {
        providers: 3,
        bucket_ms: 100,
        buckets: 12,
        min_volume: 5,
        timeout_sustain_ms: 500,
        slow_call_ms: 300,
        latency_baseline_ms: 2_000,
        open_base_ms: 200,
        open_max_ms: 2_000,
        backoff_decay_ms: 3_000,
        probe_timeout_ms: 300,
        ramp: vec![
            (50_000, 300),
            (250_000, 300),
            (500_000, 300),
            (1_000_000, 0),
        ],
        ramp_min_samples: 3,
        throttle_base_ms: 50,
        throttle_max_ms: 500,
        max_retry_after_ms: 400,
        ..default_spec()
    };
    let case = Case {
        spec,
        start: 0,
        phase: 150,
        normal_latency: 40,
        flavour: 0,
        ops,
    };
    let mut cov = Coverage::default();
    run(&case, Semantics::ENGINE, &mut cov).unwrap();
    for what in [
        "event opened",
        "event probing",
        "event ramp_stage",
        "event recovered",
    ] {
        assert!(cov.seen.contains_key(what), "{what} not reached: {cov:#?}");
    }
}

/// The random cases reach every event, every trigger and every kind of result, so that
/// agreement means something. Prints what it saw (`--nocapture`).
#[test]
fn random_cases_reach_every_behaviour() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = case(160);
    let mut cov = Coverage::default();
    for _ in 0..300 {
        let c = strategy.new_tree(&mut runner).unwrap().current();
        run(&c, Semantics::ENGINE, &mut cov).unwrap();
    }
    println!("{cov:#?}");
    let mut want: Vec<String> = [
        "opened",
        "probing",
        "probe_expired",
        "ramp_stage",
        "recovered",
        "throttled",
        "unthrottled",
        "backoff_decayed",
    ]
    .iter()
    .map(|e| format!("event {e}"))
    .collect();
    want.extend(
        [
            "error_rate",
            "consecutive_failures",
            "sustained_timeouts",
            "slow_calls",
            "latency_degradation",
            "probe_failed",
            "ramp_rollback",
        ]
        .iter()
        .map(|t| format!("trigger {t}")),
    );
    want.extend(
        [
            "opened from healthy",
            "opened from probing",
            "opened from ramping",
            "pick degraded",
            "pick probe",
            "pick unavailable",
            "pick request",
            "health check",
            "recorded Accepted",
            "recorded Stale",
            "recorded UnknownProvider",
            "time at u64::MAX",
        ]
        .map(String::from),
    );
    let missing: Vec<&String> = want.iter().filter(|w| !cov.seen.contains_key(*w)).collect();
    assert!(missing.is_empty(), "never reached: {missing:?}");
}
