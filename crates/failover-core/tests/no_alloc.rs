//! The engine never allocates: a counting global allocator (test-only, std) watches a long mixed
//! workload — 16 and 64 providers, every outcome kind, outages that trip every trigger, probes,
//! health checks, ramps and rollbacks, throttles, time going backwards and reaching `u64::MAX` —
//! and the test asserts that not one allocation happened on the workload's thread while it ran.
//!
//! This file holds a single test so nothing else runs beside it; the count is per thread anyway.

// `Rng` (xorshift64*) does not allocate either.
use failover_core::{
    Action, ChunkFacts, EventKind, Facts, Headroom, Outcome, OutcomeKind, PickRequest, Policy,
    ProbeMode, ProviderId, ProviderSet, RampStage, Request, RequestOptions, Router, Step, Value,
    classify, classify_chunk, classify_status, hash_key, parse_retry_after,
};
use failover_testkit::alloc::{Counting, arm, assert_counting};
use failover_testkit::{NAMES, Rng};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Events seen, by kind (a fixed array: the tally must not allocate either).
#[derive(Default)]
struct Tally {
    events: [u64; 8],
    triggers: [u64; 7],
    dropped: u64,
}

impl Tally {
    fn event(&mut self, kind: &EventKind) {
        let i = match kind {
            EventKind::Opened { reason, .. } => {
                let k = match reason.trigger.name() {
                    "error_rate" => 0,
                    "consecutive_failures" => 1,
                    "sustained_timeouts" => 2,
                    "slow_calls" => 3,
                    "latency_degradation" => 4,
                    "probe_failed" => 5,
                    _ => 6,
                };
                self.triggers[k] += 1;
                0
            }
            EventKind::Probing => 1,
            EventKind::ProbeExpired => 2,
            EventKind::RampStage { .. } => 3,
            EventKind::Recovered => 4,
            EventKind::Throttled { .. } => 5,
            EventKind::Unthrottled => 6,
            EventKind::BackoffDecayed { .. } => 7,
            EventKind::Benched { .. } | EventKind::Paced { .. } => 5,
            EventKind::Unpaced { .. } | EventKind::Manual(_) => 6,
        };
        self.events[i] += 1;
    }
}

fn policy(mode: ProbeMode) -> Policy {
    let mut ramp = heapless::Vec::new();
    for (share, dwell_ms) in [(0.1, 2_000), (0.5, 2_000), (1.0, 0)] {
        ramp.push(RampStage { share, dwell_ms }).unwrap();
    }
    Policy {
        bucket_ms: 100,
        window_ms: 1_200,
        min_volume: 5,
        timeout_sustain_ms: 1_000,
        slow_call_ms: 2_000,
        latency_baseline_ms: 5_000,
        open_base_ms: 2_000,
        open_max_ms: 20_000,
        backoff_decay_ms: 30_000,
        probe_mode: mode,
        probe_max_in_flight: 2,
        probe_successes: 2,
        probe_timeout_ms: 1_000,
        health_check_interval_ms: Some(5_000),
        ramp,
        ramp_min_samples: 3,
        throttle_base_ms: 100,
        throttle_max_ms: 3_000,
        max_retry_after_ms: 10_000,
        ..Policy::default()
    }
}

/// One provider's outcome at `step`: providers take turns at outages of different kinds.
fn outcome(rng: &mut Rng, provider: usize, step: u64) -> Outcome {
    let phase = (step / 3_000 + provider as u64) % 6;
    let r = rng.below(100);
    let latency = 200 + rng.below(300) as u32;
    let kind = match phase {
        // Healthy, with a sprinkle of every kind.
        0..=2 => match r {
            0..=89 => OutcomeKind::Success,
            90..=91 => OutcomeKind::ServerError,
            92 => OutcomeKind::ConnectionError,
            93..=94 => OutcomeKind::Timeout,
            95..=96 => OutcomeKind::RateLimited,
            97..=98 => OutcomeKind::ClientError,
            _ => OutcomeKind::Cancelled,
        },
        // A 5xx outage.
        3 => {
            if r < 80 {
                OutcomeKind::ServerError
            } else {
                OutcomeKind::Success
            }
        }
        // Timeouts.
        4 => {
            if r < 60 {
                OutcomeKind::Timeout
            } else {
                OutcomeKind::Success
            }
        }
        // Slow successes (latency degradation and slow calls).
        _ => OutcomeKind::Success,
    };
    // Slow phases alternate between far beyond the slow-call limit and a few times the usual
    // latency (below the limit: the latency-degradation trigger's case).
    let latency_ms = match (phase, (step / 18_000 + provider as u64) % 2) {
        (5, 0) => latency * 20,
        (5, _) => latency * 4,
        _ => latency,
    };
    let retry_after_ms = match (kind, rng.below(4)) {
        (OutcomeKind::RateLimited, 0) => None,
        (OutcomeKind::RateLimited, k) => Some(k * 700),
        (OutcomeKind::ServerError, 0) if r.is_multiple_of(7) => Some(1_500),
        _ => None,
    };
    Outcome {
        kind,
        latency_ms,
        retry_after_ms,
    }
}

/// Drives `r` through `steps` mixed inputs starting at `t`. Returns the time reached.
fn workload<const P: usize, const B: usize, const E: usize>(
    r: &mut Router<P, B, E>,
    ids: &[ProviderId],
    rng: &mut Rng,
    steps: u64,
    mut t: u64,
    tally: &mut Tally,
) -> u64 {
    let n = r.len();
    for step in 0..steps {
        // Mostly forward in small steps; sometimes backwards, sometimes a long gap.
        t = match rng.below(1_000) {
            0..=899 => t.saturating_add(rng.below(25)),
            900..=969 => t.saturating_sub(rng.below(800)),
            970..=995 => t,
            _ => t.saturating_add(60_000 + rng.below(600_000)),
        };
        match rng.below(20) {
            0..=11 => {
                let key = (rng.below(4) == 0).then(|| hash_key(&rng.below(50).to_le_bytes()));
                let tried = if rng.below(10) == 0 {
                    ProviderSet::from_bits(rng.next() & ((1 << n.min(63)) - 1))
                } else {
                    ProviderSet::new()
                };
                if rng.below(4) == 0 {
                    // A whole request through the request engine, streamed or not.
                    t = request(r, rng, key, t, step);
                } else if let Ok(ticket) = r.pick_with(t, &PickRequest { key, tried }) {
                    let o = outcome(rng, ticket.provider.index(), step);
                    // Some results come back late, after other requests.
                    let done = t.saturating_add(rng.below(40));
                    if rng.below(50) != 0 {
                        r.record(&ticket, o, done);
                    }
                }
            }
            12..=14 => {
                let i = rng.below(n as u64 + 1) as usize;
                let o = outcome(rng, i, step);
                r.observe(ids[i.min(ids.len() - 1)], o, t);
                if rng.below(2) == 0 {
                    // The answer's rate-limit headers: plenty, a little or nothing left.
                    let mut h = Headroom::default();
                    let left = ["60", "5", "0", "-1"][rng.below(4) as usize];
                    h.header("x-ratelimit-limit-requests", "60", Some(t));
                    h.header("x-ratelimit-remaining-requests", left, Some(t));
                    h.header("x-ratelimit-reset-requests", "1.5s", Some(t));
                    r.observe_headroom(ids[i.min(ids.len() - 1)], &h, t);
                }
            }
            15 | 16 => {
                // Bounded: at u64::MAX the engine asks for a check on every call (reported).
                for _ in 0..2 * n {
                    let Some(Action::HealthCheck(ticket)) = r.poll_action(t) else {
                        break;
                    };
                    let o = outcome(rng, ticket.provider.index(), step);
                    r.record(&ticket, o, t.saturating_add(rng.below(30)));
                }
            }
            17 => {
                if let Some(d) = r.poll_timeout() {
                    t = t.max(d);
                    r.handle_timeout(d);
                }
            }
            18 => {
                // Dashboards and tools.
                let mut share = 0u64;
                for v in r.views() {
                    share += u64::from(v.share_ppm);
                    let _ = (v.latency_ms, v.baseline_ms, v.name.len());
                }
                assert!(share <= 1_000_000 * n as u64);
                assert!(r.invariant_violation().is_none());
            }
            _ => {
                let s = [200, 404, 408, 429, 499, 500, 503, 529, 0, u16::MAX];
                let _ = classify_status(s[rng.below(10) as usize]);
                let v = [
                    "120",
                    "1.5",
                    " 7 ",
                    "Sun, 06 Nov 1994 08:49:37 GMT",
                    "x",
                    "",
                ];
                let _ = parse_retry_after(v[rng.below(6) as usize], Some(t));
                r.handle_timeout(t);
            }
        }
        // Drain only sometimes, so the queue also overflows.
        if rng.below(3) != 0 {
            while let Some(e) = r.poll_event() {
                tally.event(&e.kind);
            }
        }
    }
    tally.dropped += r.dropped_events();
    t
}

/// Drives one request to its end (at most a few steps): attempts answered with random outcomes,
/// streams with first tokens, chunks, cuts and stalls, waits slept through, provider errors
/// classified from facts. Returns the time reached.
fn request<const P: usize, const B: usize, const E: usize>(
    r: &mut Router<P, B, E>,
    rng: &mut Rng,
    key: Option<u64>,
    mut t: u64,
    step: u64,
) -> u64 {
    let options = RequestOptions {
        stream: rng.below(2) == 0,
        key,
        max_wait_ms: (rng.below(3) == 0).then(|| rng.below(2_000)),
        ..RequestOptions::default()
    };
    let mut req = Request::new(r, &options, t);
    for _ in 0..8 {
        match req.poll(r, t) {
            Step::Attempt(a) => {
                t = t.saturating_add(rng.below(50));
                if options.stream && rng.below(3) != 0 {
                    // The stream's chunks, read by the core's chunk table.
                    let chunk = ChunkFacts {
                        kind: ["content_block_delta", "message_stop", "ping", "error"]
                            .get(rng.below(6) as usize)
                            .copied(),
                        delta_content: rng.below(2) == 0,
                        finish_reason: Some("stop").filter(|_| rng.below(3) == 0),
                        error: rng.below(8) == 0,
                        error_type: Some("overloaded_error").filter(|_| rng.below(2) == 0),
                        message: Some("prompt is too long").filter(|_| rng.below(2) == 0),
                        ..ChunkFacts::default()
                    };
                    let _ = classify_chunk(&chunk);
                    let _ = req.handle_first_token(t);
                    let _ = req.handle_chunk(t.saturating_add(1));
                    let _ = req.handle_end(r, rng.below(8) != 0, t.saturating_add(2));
                } else if rng.below(5) == 0 {
                    let facts = Facts {
                        status: Some([400, 401, 404, 429, 500, 529][rng.below(6) as usize]),
                        error_code: Some("insufficient_quota").filter(|_| rng.below(4) == 0),
                        retry_after: Some("2").filter(|_| rng.below(2) == 0),
                        ..Facts::default()
                    };
                    let c = classify(&facts);
                    let _ = req.handle_outcome(r, c.outcome(0), t);
                } else {
                    let o = outcome(rng, a.ticket.provider.index(), step);
                    let _ = req.handle_outcome(r, o, t);
                }
            }
            Step::InFlight { deadline_ms }
            | Step::Wait {
                until_ms: deadline_ms,
                ..
            } => t = t.max(deadline_ms),
            Step::Done(_) => break,
        }
    }
    if req.finish().is_none() {
        let _ = req.handle_cancel(r, t);
    }
    t
}

#[test]
fn a_long_mixed_workload_allocates_nothing() {
    // Everything that may allocate is set up before counting starts: the routers, the ids.
    let mut wide: Box<Router<64, 12, 16>> = Box::new(
        Router::new(
            &Policy {
                window_ms: 1_200,
                bucket_ms: 100,
                ..policy(ProbeMode::HealthChecks)
            },
            &NAMES,
        )
        .unwrap(),
    );
    let mut big: Box<Router<16, 120, 64>> = Box::new(
        Router::new(
            &Policy {
                window_ms: 12_000,
                ..policy(ProbeMode::Requests)
            },
            &NAMES[..16],
        )
        .unwrap(),
    );
    let wide_ids: Vec<ProviderId> = (0..64).map(|i| wide.provider_at(i).unwrap()).collect();
    let big_ids: Vec<ProviderId> = (0..16)
        .map(|i| big.provider_at(i).unwrap())
        .chain(wide_ids[16..17].iter().copied())
        .collect();
    let mut tally = Tally::default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);

    // The counter counts: one allocation while armed is seen.
    assert_counting();

    let armed = arm();

    // Building and validating a policy by name allocates nothing either.
    let mut p = Policy::default();
    p.set("window_ms", Value::Int(12_000)).unwrap();
    p.set("probe_mode", Value::Str("health_checks")).unwrap();
    p.set("error_rate_threshold", Value::Null).unwrap();
    let _ = p.set("no_such_field", Value::Bool(true));
    p.clear_ramp();
    p.push_ramp_stage(Value::Float(0.5), Value::Int(1_000))
        .unwrap();
    p.push_ramp_stage(Value::Float(1.0), Value::Int(0)).unwrap();
    p.validate(120).unwrap();
    let small: Router<4, 120, 8> = Router::new(&p, &["a", "b", "c"]).unwrap();
    let _ = small.len();

    let t = workload(&mut *big, &big_ids, &mut rng, 150_000, 0, &mut tally);
    workload(&mut *wide, &wide_ids, &mut rng, 60_000, t, &mut tally);
    // The end of time: everything saturates.
    let t = workload(
        &mut *big,
        &big_ids,
        &mut rng,
        2_000,
        u64::MAX - 50_000,
        &mut tally,
    );
    workload(&mut *wide, &wide_ids, &mut rng, 2_000, t, &mut tally);

    let allocations = armed.finish();

    println!(
        "events by kind (opened, probing, probe_expired, ramp_stage, recovered, throttled, \
         unthrottled, backoff_decayed): {:?}; triggers {:?}; dropped {}",
        tally.events, tally.triggers, tally.dropped
    );
    assert_eq!(allocations, 0, "the engine allocated {allocations} times");
    // The workload did exercise what it claims to.
    for (kind, n) in tally.events.iter().enumerate() {
        assert!(
            *n > 0,
            "event kind {kind} never happened: {:?}",
            tally.events
        );
    }
    for (trigger, n) in tally.triggers.iter().enumerate() {
        assert!(
            *n > 0,
            "trigger {trigger} never fired: {:?}",
            tally.triggers
        );
    }
    assert!(tally.dropped > 0, "the event queue never overflowed");
    assert_eq!(big.now(), u64::MAX);
}
