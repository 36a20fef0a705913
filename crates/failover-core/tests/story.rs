//! The domain brief's stories, told through the public API.

use failover_core::{
    Action, CircuitState, Event, EventKind, Finish, GiveUp, Outcome, OutcomeKind, PickRequest,
    Policy, ProbeMode, ProviderSet, Recorded, Request, RequestOptions, Router, Step, Ticket,
    TicketKind, Trigger, Value, hash_key,
};

type R = Router<4, 120, 256>;

fn router(policy: Policy) -> R {
    R::new(&policy, &["primary", "secondary", "tertiary"]).unwrap()
}

/// The default policy without jitter, and with the consecutive-failure count these stories were
/// written for (5; the default is 3 since the request engine).
fn no_jitter() -> Policy {
    Policy {
        open_jitter: 0.0,
        consecutive_failures: Some(5),
        ..Policy::default()
    }
}

fn drain(r: &mut R) -> Vec<Event> {
    std::iter::from_fn(|| r.poll_event()).collect()
}

fn opened(events: &[Event]) -> Vec<(usize, Trigger, u64)> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Opened {
                reason, until_ms, ..
            } => Some((e.provider.index(), reason.trigger, until_ms)),
            _ => None,
        })
        .collect()
}

/// Picks and records `outcome_for(provider index)` once per `step` ms from `from` to `to`.
/// Returns how many picks each provider got.
fn traffic(
    r: &mut R,
    from: u64,
    to: u64,
    step: u64,
    mut outcome_for: impl FnMut(usize, &Ticket) -> Outcome,
) -> [u64; 4] {
    let mut counts = [0u64; 4];
    let mut t = from;
    while t < to {
        if let Ok(ticket) = r.pick(t) {
            counts[ticket.provider.index()] += 1;
            let o = outcome_for(ticket.provider.index(), &ticket);
            r.record(&ticket, o, t);
        }
        t += step;
    }
    counts
}

#[test]
fn a_5xx_outage_opens_at_once_and_recovers_over_twenty_minutes() {
    let mut r = router(no_jitter());
    let p0 = r.provider("primary").unwrap();
    // Healthy traffic for a minute.
    let c = traffic(&mut r, 0, 60_000, 100, |_, _| Outcome::success(800));
    assert_eq!(c[0], 600);
    drain(&mut r);
    // The primary starts answering 500: the fifth in a row opens it.
    let c = traffic(&mut r, 60_000, 60_500, 100, |i, _| {
        if i == 0 {
            Outcome::server_error(50)
        } else {
            Outcome::success(900)
        }
    });
    assert_eq!(c[0], 5, "exactly five failed attempts reach the primary");
    let ev = drain(&mut r);
    assert_eq!(
        opened(&ev),
        vec![(0, Trigger::ConsecutiveFailures, 60_400 + 30_000)]
    );
    assert_eq!(r.view(p0).unwrap().state, CircuitState::Open);
    // While open, everything goes to the secondary.
    let c = traffic(&mut r, 60_500, 90_400, 100, |_, _| Outcome::success(900));
    assert_eq!(c[0], 0);
    // At 90 400 the open period ends: three requests probe the primary (one at a time).
    r.handle_timeout(90_400);
    assert_eq!(r.view(p0).unwrap().state, CircuitState::Probing);
    let mut probes = 0;
    for k in 0..3 {
        let t = r.pick(90_400 + k * 1000).unwrap();
        assert_eq!(t.provider, p0);
        assert_eq!(t.kind, TicketKind::Probe);
        // Only one permit: the next request goes to the secondary meanwhile.
        let other = r.pick(90_400 + k * 1000 + 1).unwrap();
        assert_eq!(other.provider.index(), 1);
        r.record(&t, Outcome::success(700), 90_400 + k * 1000 + 700);
        probes += 1;
    }
    assert_eq!(probes, 3);
    let v = r.view(p0).unwrap();
    assert_eq!(v.state, CircuitState::Ramping);
    assert_eq!(v.share_ppm, 50_000);
    let ramp_start = 92_400 + 700;
    // Ramp: 5 %, 25 %, 50 % for 400 s each, then healthy. Count picks per stage.
    let mut t = ramp_start;
    let mut per_stage = vec![];
    for share in [50_000u32, 250_000, 500_000] {
        assert_eq!(r.view(p0).unwrap().share_ppm, share);
        let c = traffic(&mut r, t, t + 400_000, 100, |_, _| Outcome::success(700));
        per_stage.push(c);
        t += 400_000;
        // The stage ends exactly at its dwell.
        r.handle_timeout(t);
    }
    assert_eq!(per_stage[0][0], 200, "5 % of 4000 requests");
    assert_eq!(per_stage[1][0], 1000, "25 % of 4000 requests");
    assert_eq!(per_stage[2][0], 2000, "50 % of 4000 requests");
    let v = r.view(p0).unwrap();
    assert_eq!(v.state, CircuitState::Healthy);
    assert_eq!(v.share_ppm, 1_000_000);
    assert_eq!(t - ramp_start, 1_200_000, "20 minutes");
    let ev = drain(&mut r);
    let kinds: Vec<&str> = ev
        .iter()
        .filter(|e| e.provider == p0)
        .map(|e| e.kind.name())
        .collect();
    assert_eq!(
        kinds,
        [
            "probing",
            "ramp_stage",
            "ramp_stage",
            "ramp_stage",
            "recovered"
        ]
    );
}

/// The provider a request keyed by `key` is sent to at `now`, by index.
fn pick_keyed(r: &mut R, now: u64, key: u64) -> usize {
    r.pick_with(
        now,
        &PickRequest {
            key: Some(key),
            tried: ProviderSet::new(),
        },
    )
    .unwrap()
    .provider
    .index()
}

/// A key whose position for the first provider is `pos` (found by search).
fn key_at(pos: u32) -> u64 {
    (0u64..50_000_000)
        .find(|&h| failover_core::key_position(h, 0) == pos)
        .expect("a key at that position")
}

/// Opens the primary, lets it probe back, and returns the ramp's start time.
fn open_and_probe_back(r: &mut R, t0: u64) -> u64 {
    for k in 0..5 {
        let t = r.pick(t0 + k).unwrap();
        assert_eq!(t.provider.index(), 0);
        r.record(&t, Outcome::server_error(1), t0 + k);
    }
    let view = r.view(r.provider_at(0).unwrap()).unwrap();
    let until = view.open_until_ms.unwrap();
    for k in 0..3 {
        let t = r.pick(until + k).unwrap();
        assert_eq!(t.kind, TicketKind::Probe, "probe {k} at {}", until + k);
        r.record(&t, Outcome::success(5), until + k);
    }
    assert_eq!(
        r.view(r.provider_at(0).unwrap()).unwrap().state,
        CircuitState::Ramping
    );
    until + 2
}

#[test]
fn a_spike_on_the_ramp_rolls_back_with_a_longer_backoff() {
    let mut r = router(no_jitter());
    let start = open_and_probe_back(&mut r, 1_000);
    // Stage 0 passes with healthy traffic.
    let mut t = start;
    traffic(&mut r, t, t + 400_000, 100, |_, _| Outcome::success(10));
    t += 400_000;
    r.handle_timeout(t);
    assert_eq!(
        r.view(r.provider_at(0).unwrap()).unwrap().share_ppm,
        250_000
    );
    drain(&mut r);
    // At 25 % the primary falters again: every call it takes times out.
    let c = traffic(&mut r, t, t + 60_000, 100, |i, _| {
        if i == 0 {
            Outcome::timeout(30_000)
        } else {
            Outcome::success(10)
        }
    });
    let ev = drain(&mut r);
    let op = opened(&ev);
    assert_eq!(op.len(), 1);
    assert_eq!(op[0].1, Trigger::RampRollback);
    // The rolling window still holds stage 0's last minute: one success every 2 s, about 30.
    // At 25 % a timeout arrives every 400 ms while those successes age out: 7 timeouts are
    // 7 / 35.6 = 19.7 % (below 20 %), the 8th makes 8 / 36.4 = 22 %: rollback on the 8th call to
    // the primary, which is request 32 of this minute.
    assert_eq!(c[0], 8);
    let opened_at = ev.iter().find(|e| e.kind.name() == "opened").unwrap().at_ms;
    assert_eq!(opened_at, t + 31 * 100);
    // Second strike: 60 s instead of 30 s.
    assert_eq!(op[0].2, opened_at + 60_000);
    match ev.iter().find(|e| e.kind.name() == "opened").unwrap().kind {
        EventKind::Opened { strikes, from, .. } => {
            assert_eq!(strikes, 2);
            assert_eq!(from, CircuitState::Ramping);
        }
        _ => unreachable!(),
    }
}

#[test]
fn rate_limits_throttle_then_return_full_traffic_without_a_ramp() {
    let mut r = router(no_jitter());
    let t0 = 10_000;
    let t = r.pick(t0).unwrap();
    assert_eq!(t.provider.index(), 0);
    r.record(&t, Outcome::rate_limited(Some(20_000)), t0);
    let ev = drain(&mut r);
    assert!(matches!(
        ev[0].kind,
        EventKind::Throttled {
            until_ms: 30_000,
            retry_after: true
        }
    ));
    // No traffic to the primary until 30 000, no trip.
    let c = traffic(&mut r, t0 + 1, 30_000, 100, |_, _| Outcome::success(10));
    assert_eq!(c[0], 0);
    let v = r.view(r.provider_at(0).unwrap()).unwrap();
    assert_eq!(v.state, CircuitState::Healthy);
    assert_eq!(v.trips, 0);
    // At 30 000 it takes everything again.
    let c = traffic(&mut r, 30_000, 31_000, 100, |_, _| Outcome::success(10));
    assert_eq!(c[0], 10);
    assert_eq!(drain(&mut r)[0].kind, EventKind::Unthrottled);
    // Without Retry-After: 1 s, 2 s, 4 s … until a success resets it.
    for (k, want) in [(0u64, 1_000u64), (1, 2_000), (2, 4_000)] {
        let now = 40_000 + k * 10_000;
        let t = r.pick_with(now, &PickRequest::default()).unwrap();
        assert_eq!(t.provider.index(), 0);
        r.record(&t, Outcome::rate_limited(None), now);
        let ev: Vec<_> = drain(&mut r)
            .into_iter()
            .filter(|e| e.kind.name() == "throttled")
            .collect();
        assert_eq!(
            ev[0].kind,
            EventKind::Throttled {
                until_ms: now + want,
                retry_after: false
            },
            "{k}"
        );
    }
}

#[test]
fn a_provider_is_benched_once_for_rejections_at_the_same_moment() {
    let mut r = router(no_jitter());
    // Three requests in flight on the primary; two come back 401 at the same millisecond.
    let a = r.pick(1_000).unwrap();
    let b = r.pick(1_000).unwrap();
    let c = r.pick(1_000).unwrap();
    assert_eq!(
        (a.provider.index(), b.provider.index(), c.provider.index()),
        (0, 0, 0)
    );
    drain(&mut r);
    let rejected = Outcome::new(OutcomeKind::CredentialsRejected, 20);
    r.record(&a, rejected, 1_020);
    r.record(&b, rejected, 1_020);
    let benched: Vec<_> = drain(&mut r)
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::Benched { .. }))
        .collect();
    // The second rejection ends the bench no later than the first: nothing new to announce.
    assert_eq!(benched.len(), 1, "{benched:?}");
    let until = 1_020 + no_jitter().bench_ms;
    assert!(matches!(benched[0].kind, EventKind::Benched { until_ms, .. } if until_ms == until));
    // The third, later, extends it, and says so.
    r.record(&c, rejected, 2_000);
    let later: Vec<_> = drain(&mut r)
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Benched { until_ms, .. } => Some(until_ms),
            _ => None,
        })
        .collect();
    assert_eq!(later, [2_000 + no_jitter().bench_ms]);
}

#[test]
fn a_bench_at_the_end_of_time_is_announced() {
    let mut r = router(no_jitter());
    // A throttle that saturates at u64::MAX, over at u64::MAX.
    let t0 = u64::MAX - 10;
    let t = r.pick(t0).unwrap();
    r.record(&t, Outcome::rate_limited(Some(1_000)), t0);
    assert_eq!(
        r.view(t.provider).unwrap().throttled_until_ms,
        Some(u64::MAX)
    );
    let t = r.pick(u64::MAX).unwrap();
    assert_eq!(t.provider.index(), 0, "the throttle is over at its end");
    drain(&mut r);
    // A rejection then benches it until u64::MAX (saturated): still a bench, and announced.
    r.record(
        &t,
        Outcome::new(OutcomeKind::CredentialsRejected, 0),
        u64::MAX,
    );
    let ev = drain(&mut r);
    assert!(
        ev.iter().any(|e| matches!(
            e.kind,
            EventKind::Benched {
                until_ms: u64::MAX,
                ..
            }
        )),
        "{ev:?}"
    );
    assert_eq!(r.invariant_violation(), None);
}

#[test]
fn strikes_stop_at_the_cap_of_a_flat_ladder() {
    // A multiplier of 1 never reaches open_max_ms: the ladder is flat and only the compiled cap
    // (64 strikes) bounds the strikes.
    let mut r = router(Policy {
        open_base_ms: 1_000,
        open_max_ms: 2_000,
        open_multiplier: 1.0,
        ..no_jitter()
    });
    let mut strikes = Vec::new();
    let mut t = 0;
    // Every probe of the primary fails: each one opens it again, one strike more.
    while t < 400_000 {
        traffic(&mut r, t, t + 10_000, 100, |i, _| {
            if i == 0 {
                Outcome::server_error(10)
            } else {
                Outcome::success(10)
            }
        });
        t += 10_000;
        strikes.extend(drain(&mut r).into_iter().filter_map(|e| match e.kind {
            EventKind::Opened { strikes, .. } if e.provider.index() == 0 => Some(strikes),
            _ => None,
        }));
        assert_eq!(r.invariant_violation(), None, "at {t} after {strikes:?}");
    }
    let at_cap = strikes.iter().filter(|&&s| s == 64).count();
    assert_eq!(strikes.iter().max(), Some(&64));
    assert!(at_cap >= 10, "the cap holds over many trips: {strikes:?}");
    assert_eq!(strikes[..64], (1..=64).collect::<Vec<u32>>()[..]);
}

#[test]
fn the_longer_deadline_wins() {
    let mut r = router(no_jitter());
    let t = r.pick(0).unwrap();
    r.record(&t, Outcome::rate_limited(Some(60_000)), 0);
    let t2 = Ticket { ..t };
    // A later, shorter Retry-After does not shorten the throttle (LiteLLM #40130).
    r.record(&t2, Outcome::rate_limited(Some(1_000)), 100);
    let v = r.view(t.provider).unwrap();
    assert_eq!(v.throttled_until_ms, Some(60_000));
}

#[test]
fn a_timeout_spike_does_not_trip_but_sustained_timeouts_do() {
    let mut r = router(no_jitter());
    let p0 = r.provider_at(0).unwrap();
    traffic(&mut r, 0, 60_000, 100, |_, _| Outcome::success(500));
    // A five-second spike of timeouts on every call.
    traffic(&mut r, 60_000, 65_000, 100, |i, _| {
        if i == 0 {
            Outcome::timeout(10_000)
        } else {
            Outcome::success(500)
        }
    });
    traffic(&mut r, 65_000, 200_000, 100, |_, _| Outcome::success(500));
    assert_eq!(r.view(p0).unwrap().trips, 0);
    drain(&mut r);
    // Now 40 % of calls time out, for good.
    let mut n = 0u64;
    traffic(&mut r, 200_000, 320_000, 100, |i, _| {
        n += 1;
        if i == 0 && n % 5 < 2 {
            Outcome::timeout(10_000)
        } else {
            Outcome::success(500)
        }
    });
    let ev = drain(&mut r);
    let op = opened(&ev);
    // (Once open, its failing probes reopen it: only the first trip matters here.)
    assert_eq!(op[0].1, Trigger::SustainedTimeouts, "{ev:?}");
    let at = ev.iter().find(|e| e.kind.name() == "opened").unwrap().at_ms;
    // The rate crosses 30 % some seconds in, and must hold for 30 s more.
    assert!((230_000..300_000).contains(&at), "{at}");
}

#[test]
fn latency_degradation_trips_against_the_providers_own_baseline() {
    let mut r = router(no_jitter());
    let p0 = r.provider_at(0).unwrap();
    // Two minutes at ~800 ms build the baseline (it needs a window's worth of updates).
    traffic(&mut r, 0, 120_000, 100, |_, _| Outcome::success(800));
    let base = r.view(p0).unwrap().baseline_ms.unwrap();
    assert!((700..=1000).contains(&base), "{base}");
    assert_eq!(r.view(p0).unwrap().trips, 0);
    // 2× slower: not enough.
    traffic(&mut r, 120_000, 240_000, 100, |_, _| {
        Outcome::success(1_600)
    });
    assert_eq!(r.view(p0).unwrap().trips, 0);
    // 5× slower (still under the 30 s slow-call limit): trips on latency.
    traffic(&mut r, 240_000, 300_000, 100, |_, _| {
        Outcome::success(5_000)
    });
    let op = opened(&drain(&mut r));
    assert_eq!(op.len(), 1);
    assert_eq!(op[0].1, Trigger::LatencyDegradation);
}

#[test]
fn slow_calls_trip_above_the_absolute_limit() {
    let mut r = router(Policy {
        latency_factor: None,
        ..no_jitter()
    });
    traffic(&mut r, 0, 10_000, 100, |i, _| {
        Outcome::success(if i == 0 { 45_000 } else { 900 })
    });
    let op = opened(&drain(&mut r));
    assert_eq!(op.len(), 1, "{op:?}");
    assert_eq!(op[0].1, Trigger::SlowCalls);
}

#[test]
fn error_rate_trips_with_minimum_volume_only() {
    let mut r = router(Policy {
        consecutive_failures: None,
        ..no_jitter()
    });
    let p0 = r.provider_at(0).unwrap();
    // Alternating failures: 50 % error rate; with min_volume 20 the 20th call trips it.
    let mut n = 0;
    let c = traffic(&mut r, 0, 3_000, 100, |_, _| {
        n += 1;
        if n % 2 == 0 {
            Outcome::server_error(5)
        } else {
            Outcome::success(5)
        }
    });
    assert_eq!(c[0], 20);
    let ev = drain(&mut r);
    let op = opened(&ev);
    assert_eq!(op[0].1, Trigger::ErrorRate);
    assert_eq!(r.view(p0).unwrap().state, CircuitState::Open);
}

#[test]
fn client_errors_never_trip() {
    let mut r = router(no_jitter());
    let p0 = r.provider_at(0).unwrap();
    let c = traffic(&mut r, 0, 600_000, 100, |_, _| Outcome::client_error(5));
    assert_eq!(c[0], 6_000);
    let v = r.view(p0).unwrap();
    assert_eq!(v.trips, 0);
    assert_eq!(v.window.volume, 0);
    assert!(v.window.client_errors > 0);
    // Unless the policy says so.
    let mut r = router(Policy {
        count_client_errors: true,
        ..no_jitter()
    });
    traffic(&mut r, 0, 1_000, 100, |_, _| Outcome::client_error(5));
    assert_eq!(opened(&drain(&mut r))[0].1, Trigger::ConsecutiveFailures);
}

#[test]
fn all_down_gives_the_soonest_provider_with_a_hint() {
    let mut r = router(no_jitter());
    // Open all three, at different times.
    for (t0, _) in [(0u64, 0), (10_000, 1), (20_000, 2)] {
        traffic(&mut r, t0, t0 + 5, 1, |_, _| Outcome::server_error(1));
    }
    let v: Vec<_> = r.views().map(|v| v.state).collect();
    assert_eq!(v, [CircuitState::Open; 3]);
    let t = r.pick(25_000).unwrap();
    assert!(t.degraded);
    assert_eq!(t.provider.index(), 0);
    assert_eq!(t.retry_after_ms, Some(30_004 - 25_000));
    // With `when_all_down = "fail"` the caller gets the hint and no provider.
    let mut p = no_jitter();
    p.set("when_all_down", Value::Str("fail")).unwrap();
    let mut r = router(p);
    for t0 in [0u64, 10_000, 20_000] {
        traffic(&mut r, t0, t0 + 5, 1, |_, _| Outcome::server_error(1));
    }
    assert_eq!(r.pick(25_000).unwrap_err().retry_after_ms, 5_004);
    // Every provider tried: unavailable, whatever the policy.
    let mut r = router(no_jitter());
    let mut tried = ProviderSet::new();
    for i in 0..3 {
        tried.insert(r.provider_at(i).unwrap());
    }
    let e = r
        .pick_with(0, &PickRequest { key: None, tried })
        .unwrap_err();
    assert_eq!(e.retry_after_ms, 0);
}

#[test]
fn fallback_skips_the_providers_already_tried() {
    let mut r = router(no_jitter());
    let mut tried = ProviderSet::new();
    let mut order = vec![];
    while let Ok(t) = r.pick_with(0, &PickRequest { key: None, tried }) {
        order.push(t.provider.index());
        tried.insert(t.provider);
    }
    assert_eq!(order, [0, 1, 2]);
}

#[test]
fn a_late_result_from_an_earlier_generation_is_stale() {
    let mut r = router(no_jitter());
    let early = r.pick(0).unwrap();
    traffic(&mut r, 1, 6, 1, |_, _| Outcome::server_error(1));
    assert_eq!(r.view(early.provider).unwrap().state, CircuitState::Open);
    assert_eq!(r.record(&early, Outcome::success(1), 10), Recorded::Stale);
    let mut bogus = early;
    bogus.provider = failover_core::ProviderId::clone(&r.provider_at(2).unwrap());
    bogus.generation = 99;
    assert_eq!(r.record(&bogus, Outcome::success(1), 10), Recorded::Stale);
}

#[test]
fn probes_that_are_never_reported_expire() {
    let mut r = router(no_jitter());
    traffic(&mut r, 0, 5, 1, |_, _| Outcome::server_error(1));
    let until = r
        .view(r.provider_at(0).unwrap())
        .unwrap()
        .open_until_ms
        .unwrap();
    let lost = r.pick(until).unwrap();
    assert_eq!(lost.kind, TicketKind::Probe);
    // Permit held: no second probe.
    assert_eq!(r.pick(until + 1).unwrap().provider.index(), 1);
    // After probe_timeout_ms (60 s) the permit is free again.
    let t = r.pick(until + 60_000).unwrap();
    assert_eq!(t.kind, TicketKind::Probe);
    assert!(
        drain(&mut r)
            .iter()
            .any(|e| e.kind == EventKind::ProbeExpired)
    );
    // The lost probe's late result is stale.
    assert_eq!(
        r.record(&lost, Outcome::success(1), until + 60_001),
        Recorded::Stale
    );
    assert_eq!(
        r.record(&t, Outcome::success(1), until + 60_001),
        Recorded::Accepted
    );
}

#[test]
fn health_checks_probe_without_risking_requests() {
    let mut r = router(Policy {
        probe_mode: ProbeMode::HealthChecks,
        ..no_jitter()
    });
    traffic(&mut r, 0, 5, 1, |_, _| Outcome::server_error(1));
    let until = r
        .view(r.provider_at(0).unwrap())
        .unwrap()
        .open_until_ms
        .unwrap();
    assert_eq!(r.poll_timeout(), Some(until));
    assert_eq!(r.poll_action(until - 1), None);
    let mut checks = 0;
    let mut t = until;
    while let Some(Action::HealthCheck(ticket)) = r.poll_action(t) {
        assert_eq!(ticket.provider.index(), 0);
        // Requests still avoid the primary.
        assert_eq!(r.pick(t).unwrap().provider.index(), 1);
        r.record(&ticket, Outcome::success(3), t + 3);
        checks += 1;
        t += 1000;
        assert!(checks <= 3);
    }
    assert_eq!(checks, 3);
    assert_eq!(
        r.view(r.provider_at(0).unwrap()).unwrap().state,
        CircuitState::Ramping
    );
}

#[test]
fn keyed_picks_stay_put_through_the_ramp() {
    let mut r = router(no_jitter());
    let start = open_and_probe_back(&mut r, 0);
    let keys: Vec<u64> = (0..2000u32)
        .map(|k| hash_key(format!("conv-{k}").as_bytes()))
        .collect();
    let placement =
        |r: &mut R, t: u64| -> Vec<usize> { keys.iter().map(|&k| pick_keyed(r, t, k)).collect() };
    let at5 = placement(&mut r, start);
    let back5 = at5.iter().filter(|&&p| p == 0).count();
    assert!((60..140).contains(&back5), "{back5} of 2000 keys at 5 %");
    // Give the stage its samples, then move to 25 %.
    traffic(&mut r, start, start + 400_000, 1000, |_, _| {
        Outcome::success(5)
    });
    r.handle_timeout(start + 400_000);
    let at25 = placement(&mut r, start + 400_000);
    let back25 = at25.iter().filter(|&&p| p == 0).count();
    assert!(
        (420..580).contains(&back25),
        "{back25} of 2000 keys at 25 %"
    );
    for (a, b) in at5.iter().zip(&at25) {
        assert!(*a != 0 || *b == 0, "a key moved back at 5 % left at 25 %");
    }
}

#[test]
fn backoff_grows_with_each_trip_and_decays_after_a_healthy_period() {
    let mut r = router(no_jitter());
    let p0 = r.provider_at(0).unwrap();
    // First trip: 30 s. Probes fail: 60 s, then 120 s.
    traffic(&mut r, 0, 5, 1, |_, _| Outcome::server_error(1));
    let mut until = r.view(p0).unwrap().open_until_ms.unwrap();
    assert_eq!(until, 4 + 30_000);
    for want in [60_000u64, 120_000] {
        let t = r.pick(until).unwrap();
        assert!(t.is_probe());
        r.record(&t, Outcome::server_error(1), until);
        let next = r.view(p0).unwrap().open_until_ms.unwrap();
        assert_eq!(next - until, want);
        until = next;
    }
    assert_eq!(r.view(p0).unwrap().strikes, 3);
    // Recover fully.
    for k in 0..3 {
        let t = r.pick(until + k).unwrap();
        r.record(&t, Outcome::success(1), until + k);
    }
    let mut t = until + 3;
    for _ in 0..3 {
        traffic(&mut r, t, t + 400_000, 1000, |_, _| Outcome::success(1));
        t += 400_000;
        r.handle_timeout(t);
    }
    assert_eq!(r.view(p0).unwrap().state, CircuitState::Healthy);
    drain(&mut r);
    // Ten healthy minutes drop one strike, twenty more drop two.
    r.handle_timeout(t + 600_000);
    assert_eq!(r.view(p0).unwrap().strikes, 2);
    r.handle_timeout(t + 1_800_000);
    assert_eq!(r.view(p0).unwrap().strikes, 0);
    let decays: Vec<_> = drain(&mut r)
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::BackoffDecayed { strikes } => Some(strikes),
            _ => None,
        })
        .collect();
    assert_eq!(decays, [2, 0]);
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn jitter_is_deterministic_and_bounded() {
    let run = |seed: u64| {
        let mut r = router(Policy {
            seed,
            ..Policy::default()
        });
        traffic(&mut r, 0, 5, 1, |_, _| Outcome::server_error(1));
        r.view(r.provider_at(0).unwrap())
            .unwrap()
            .open_until_ms
            .unwrap()
            - 4
    };
    assert_eq!(run(7), run(7));
    let ds: Vec<u64> = (0..50).map(run).collect();
    assert!(ds.iter().all(|d| (27_000..=33_000).contains(d)), "{ds:?}");
    assert!(ds.iter().any(|&d| d != ds[0]), "different seeds spread out");
}

#[test]
fn time_going_backwards_is_clamped_to_the_latest_time_seen() {
    let mut r = router(no_jitter());
    traffic(&mut r, 100_000, 100_005, 1, |_, _| Outcome::server_error(1));
    let until = r
        .view(r.provider_at(0).unwrap())
        .unwrap()
        .open_until_ms
        .unwrap();
    // An input from the past is applied at the latest time seen: the circuit stays open.
    let t = r.pick(5).unwrap();
    assert_eq!(t.provider.index(), 1);
    assert_eq!(t.issued_at_ms, 100_004);
    assert_eq!(r.now(), 100_004);
    r.handle_timeout(0);
    assert_eq!(
        r.view(r.provider_at(0).unwrap()).unwrap().open_until_ms,
        Some(until)
    );
    assert_eq!(r.invariant_violation(), None);
}

#[test]
fn timestamps_near_the_end_of_time_saturate() {
    let mut r = router(no_jitter());
    let t0 = u64::MAX - 10;
    traffic(&mut r, t0, t0 + 5, 1, |_, _| Outcome::server_error(1));
    let v = r.view(r.provider_at(0).unwrap()).unwrap();
    assert_eq!(v.state, CircuitState::Open);
    assert_eq!(v.open_until_ms, Some(u64::MAX));
    let t = r.pick(u64::MAX).unwrap();
    r.record(&t, Outcome::rate_limited(Some(u64::MAX)), u64::MAX);
    r.handle_timeout(u64::MAX);
    assert_eq!(r.invariant_violation(), None);
    // At u64::MAX the open period is over.
    assert_eq!(
        r.view(r.provider_at(0).unwrap()).unwrap().state,
        CircuitState::Probing
    );
}

#[test]
fn a_full_event_queue_counts_what_it_drops() {
    let mut r: Router<2, 60, 1> = Router::new(&no_jitter(), &["a", "b"]).unwrap();
    for k in 0..5 {
        let t = r.pick(k).unwrap();
        r.record(&t, Outcome::rate_limited(Some(1000 + k)), k);
    }
    assert_eq!(r.pending_events(), 1);
    assert!(r.dropped_events() >= 1);
    // Every event was queued once: the one kept and those dropped.
    assert_eq!(r.queued_total(), 1 + r.dropped_events());
    assert_eq!(r.newest_events(8).count(), 1);
    // The newest event is the one kept: the last 429's throttle (at 4, for 1004 ms).
    match r.poll_event().map(|e| e.kind) {
        Some(EventKind::Throttled { until_ms, .. }) => assert_eq!(until_ms, 4 + 1004),
        other => panic!("expected the last throttle, got {other:?}"),
    }
}

#[test]
fn configuration_errors_are_named() {
    let bad = R::new(&Policy::default(), &[]).unwrap_err();
    assert_eq!(bad.code(), "no_providers");
    assert_eq!(
        R::new(&Policy::default(), &["a", "b", "c", "d", "e"])
            .unwrap_err()
            .code(),
        "too_many_providers"
    );
    assert_eq!(
        R::new(&Policy::default(), &["a", "a"]).unwrap_err().code(),
        "duplicate_name"
    );
    assert_eq!(
        R::new(&Policy::default(), &[""]).unwrap_err().code(),
        "empty_name"
    );
    let long = "x".repeat(65);
    assert_eq!(
        R::new(&Policy::default(), &[&long]).unwrap_err().code(),
        "name_too_long"
    );
    let e = R::new(
        &Policy {
            window_ms: 600_000,
            ..Policy::default()
        },
        &["a"],
    )
    .unwrap_err();
    assert_eq!(e.code(), "window_too_long");
    assert!(e.to_string().contains("600 buckets"), "{e}");
}

#[test]
fn an_isolated_provider_gets_no_traffic_probes_or_health_checks_until_released() {
    let p = Policy {
        health_check_interval_ms: Some(1_000),
        ..no_jitter()
    };
    let mut r = router(p);
    let primary = r.provider_at(0).unwrap();
    assert!(r.isolate(primary, 0));
    for t in (0..10_000).step_by(100) {
        let tk = r.pick(t).unwrap();
        assert_ne!(tk.provider, primary);
        r.record(&tk, Outcome::success(10), t);
        while let Some(Action::HealthCheck(h)) = r.poll_action(t) {
            assert_ne!(
                h.provider, primary,
                "no health check of an isolated provider"
            );
            r.record(&h, Outcome::success(5), t);
        }
        // Nothing is due for the isolated provider: no busy loop on its idle check.
        assert!(r.poll_timeout().is_none_or(|d| d > t));
    }
    // Every other provider down: still never the isolated one.
    for _ in 0..5 {
        for i in 1..3 {
            let id = r.provider_at(i).unwrap();
            r.observe(id, Outcome::server_error(1), 10_000);
        }
    }
    let t = r.pick(10_001).unwrap();
    assert!(t.degraded);
    assert_ne!(t.provider, primary);
    assert!(r.release(primary, 10_002));
    assert_eq!(r.pick(10_002).unwrap().provider, primary);
    let kinds: Vec<&str> = std::iter::from_fn(|| r.poll_event())
        .map(|e| e.kind.name())
        .filter(|k| matches!(*k, "isolated" | "released"))
        .collect();
    assert_eq!(kinds, ["isolated", "released"]);
}

#[test]
fn the_event_queue_counts_what_waits_and_shows_the_newest() {
    let mut r = router(no_jitter());
    // A 429 with a Retry-After on each provider in turn (a throttled one is not picked again):
    // three throttles queued.
    for k in 0..3u64 {
        let t = r.pick(k).unwrap();
        assert_eq!(t.provider.index() as u64, k);
        r.record(&t, Outcome::rate_limited(Some(1_000 * (k + 1))), k);
    }
    assert_eq!(r.pending_events(), 3);
    assert_eq!(r.queued_total(), 3);
    // Looking does not take: the two newest, oldest first, are what the last two polls return.
    let newest: Vec<Event> = r.newest_events(2).copied().collect();
    assert_eq!(r.pending_events(), 3);
    let first = r.poll_event().unwrap();
    assert_eq!(first.provider.index(), 0);
    assert_eq!(r.pending_events(), 2);
    let rest = drain(&mut r);
    assert_eq!(rest, newest);
    assert_eq!(
        rest.iter().map(|e| e.provider.index()).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(r.pending_events(), 0);
    // Drained, not dropped: the total stays.
    assert_eq!((r.queued_total(), r.dropped_events()), (3, 0));
}

#[test]
fn at_the_end_of_time_one_input_performs_every_transition_due() {
    // Timeouts above the rate from one sustain period before the end of time: the input at
    // u64::MAX finds them sustained and trips the circuit, and the open period, saturated at
    // u64::MAX, is over in the same input: one input performs every transition due at its time,
    // chained (here a trip, then the probing it leads to), not one per input.
    let mut r = router(no_jitter());
    let t0 = u64::MAX - no_jitter().timeout_sustain_ms;
    for k in 0..25 {
        let t = r.pick(t0).unwrap();
        assert_eq!(t.provider.index(), 0);
        // 2 of every 5 time out: 40 %, above the 30 % rate, never 5 failures in a row.
        let o = if k % 5 < 2 {
            Outcome::timeout(1_000)
        } else {
            Outcome::success(100)
        };
        r.record(&t, o, t0);
    }
    let primary = r.provider("primary").unwrap();
    assert_eq!(r.view(primary).unwrap().state, CircuitState::Healthy);
    drain(&mut r);
    assert_eq!(r.poll_timeout(), Some(u64::MAX));
    r.handle_timeout(u64::MAX);
    let kinds: Vec<_> = drain(&mut r)
        .into_iter()
        .filter(|e| e.provider == primary)
        .map(|e| match e.kind {
            EventKind::Opened { reason, .. } => format!("opened {:?}", reason.trigger),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["opened SustainedTimeouts", "Probing"]);
    assert_eq!(r.view(primary).unwrap().state, CircuitState::Probing);
    assert_eq!(r.invariant_violation(), None);
}

#[test]
fn with_health_check_probing_a_request_gives_up_rather_than_wait_for_no_time() {
    // Probing by health checks only: a probing provider takes no request, yet it is "available
    // now" as far as a wait is concerned (a check may run at any time). A request that finds
    // nothing else gives up at once: a wait of no time would be polled again at once, and again,
    // until its deadline.
    let policy = Policy {
        probe_mode: ProbeMode::HealthChecks,
        ..no_jitter()
    };
    let mut r = R::new(&policy, &["only"]).unwrap();
    let only = r.provider("only").unwrap();
    for k in 0..5 {
        r.observe(only, Outcome::server_error(10), k);
    }
    let open_until = r.view(only).unwrap().open_until_ms.unwrap();
    r.handle_timeout(open_until);
    assert_eq!(r.view(only).unwrap().state, CircuitState::Probing);
    let mut q = Request::new(&r, &RequestOptions::default(), open_until);
    match q.poll(&mut r, open_until) {
        Step::Done(Finish::GaveUp {
            reason: GiveUp::NoProvider,
            last: None,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn providers_by_index_stop_at_the_last_and_a_router_is_never_empty() {
    let r = router(no_jitter());
    assert_eq!(r.len(), 3);
    assert!(!r.is_empty());
    for (i, name) in ["primary", "secondary", "tertiary"].into_iter().enumerate() {
        assert_eq!(r.provider_at(i), r.provider(name));
        assert_eq!(r.name(r.provider_at(i).unwrap()), name);
    }
    assert_eq!(r.provider_at(3), None);
    assert_eq!(r.provider_at(usize::MAX), None);
}

#[test]
fn a_streams_first_token_deadline_follows_the_providers_baseline_once_it_has_one() {
    // Before a baseline, a streamed attempt gets `first_token_timeout_ms`; once the provider has
    // one, `first_token_factor` times it, within `first_token_min_ms..=first_token_timeout_ms`.
    let p = no_jitter();
    let mut r = router(p.clone());
    let primary = r.provider("primary").unwrap();
    let stream = RequestOptions {
        stream: true,
        ..RequestOptions::default()
    };
    let first_token_timeout = |r: &mut R, now: u64| {
        let mut q = Request::new(r, &stream, now);
        let Step::Attempt(a) = q.poll(r, now) else {
            panic!("no attempt")
        };
        assert_eq!(a.ticket.provider, primary);
        q.handle_outcome(r, Outcome::success(1_000), now + 1_000)
            .unwrap();
        a.timeout_ms
    };
    assert_eq!(r.baseline_ms(primary), None);
    assert_eq!(first_token_timeout(&mut r, 0), p.first_token_timeout_ms);
    // A minute of 1 s calls, every 100 ms.
    traffic(&mut r, 0, 60_000, 100, |_, _| Outcome::success(1_000));
    let b = r.baseline_ms(primary).expect("a baseline after a minute");
    assert_eq!(Some(b), r.view(primary).unwrap().baseline_ms);
    let expected = (u64::from(b) * u64::from(p.first_token_factor))
        .clamp(p.first_token_min_ms, p.first_token_timeout_ms);
    assert!(expected < p.first_token_timeout_ms, "{b} ms");
    assert_eq!(first_token_timeout(&mut r, 60_000), expected);
}

#[test]
fn isolation_is_reported_while_it_lasts_and_no_provider_says_when_to_retry() {
    let mut r = router(no_jitter());
    let (primary, secondary) = (r.provider_at(0).unwrap(), r.provider_at(1).unwrap());
    assert!(!r.is_isolated(primary));
    assert!(r.isolate(primary, 0));
    assert!(r.is_isolated(primary) && !r.is_isolated(secondary));
    assert!(!r.isolate(primary, 0), "already isolated");
    assert!(r.release(primary, 1));
    assert!(!r.is_isolated(primary));
    assert!(!r.release(primary, 1), "not isolated");
    // Every provider tried: unavailable, retry at once (each can take traffic now).
    let all = ProviderSet::from_bits(0b111);
    let e = r
        .pick_with(
            2,
            &PickRequest {
                key: None,
                tried: all,
            },
        )
        .unwrap_err();
    assert_eq!(e.retry_after_ms, 0);
    assert_eq!(e.to_string(), "no provider available; retry after 0 ms");
}

#[test]
fn releasing_one_isolated_provider_leaves_the_others_isolated() {
    let mut r = router(no_jitter());
    let ids: Vec<_> = (0..3).map(|i| r.provider_at(i).unwrap()).collect();
    for &id in &ids[1..] {
        assert!(r.isolate(id, 0));
    }
    assert!(r.release(ids[1], 1));
    let isolated: Vec<bool> = ids.iter().map(|&id| r.is_isolated(id)).collect();
    assert_eq!(isolated, [false, false, true]);
    assert!(r.release(ids[2], 2));
    assert!(ids.iter().all(|&id| !r.is_isolated(id)));
    assert!(r.views().all(|v| !v.isolated));
}

/// A ramp's share is half-open: a key goes back to the recovering provider when its position is
/// below the share, so at 5 % (50,000 ppm) a key at position 49,999 is sent there and one at
/// exactly 50,000 is not.
#[test]
fn a_key_exactly_at_the_ramps_share_stays_away() {
    let mut r = router(no_jitter());
    let start = open_and_probe_back(&mut r, 0);
    assert_eq!(
        pick_keyed(&mut r, start, key_at(49_999)),
        0,
        "below the share"
    );
    assert_eq!(pick_keyed(&mut r, start, key_at(50_000)), 1, "at the share");
}

/// A driver that calls the request out of turn gets an error that says what is wrong: an outcome
/// with no attempt in flight, a first token for a request that is not streamed, anything after
/// the end.
#[test]
fn a_request_used_out_of_turn_says_what_is_wrong() {
    use failover_core::RequestError;
    let mut r = router(no_jitter());
    let mut q = Request::new(&r, &RequestOptions::default(), 0);
    let no_attempt = q.handle_outcome(&mut r, Outcome::success(5), 0);
    assert_eq!(no_attempt, Err(RequestError::NoAttempt));
    let Step::Attempt(_) = q.poll(&mut r, 0) else {
        panic!("no attempt")
    };
    let not_streamed = q.handle_first_token(1);
    assert_eq!(not_streamed, Err(RequestError::NotStreamed));
    q.handle_outcome(&mut r, Outcome::success(5), 2).unwrap();
    let finished = q.handle_outcome(&mut r, Outcome::success(5), 3);
    assert_eq!(finished, Err(RequestError::Finished));
    let said: Vec<(String, &str)> = [no_attempt, not_streamed, finished]
        .map(|e| e.unwrap_err())
        .iter()
        .map(|e| (e.to_string(), e.name()))
        .collect();
    assert_eq!(
        said,
        [
            ("no attempt is in flight".to_string(), "no_attempt"),
            ("the request is not streamed".to_string(), "not_streamed"),
            ("the request is over".to_string(), "finished"),
        ]
    );
}

/// A provider both isolated by hand and already tried by the request is still skipped (the two
/// sets are joined, not toggled).
#[test]
fn an_isolated_provider_the_request_tried_stays_skipped() {
    let mut r = router(no_jitter());
    let primary = r.provider_at(0).unwrap();
    assert!(r.isolate(primary, 0));
    let mut tried = ProviderSet::new();
    tried.insert(primary);
    let t = r.pick_with(10, &PickRequest { key: None, tried }).unwrap();
    assert_eq!(t.provider.index(), 1);
}

/// A healthy provider paced by its rate-limit headroom takes a keyed request when the key's
/// position is below its paced share (half-open, as on a ramp): here 5 % of its requests left
/// against the default watermark of 10 % (a share of one half), and keys just below and exactly
/// at that share.
#[test]
fn a_key_exactly_at_a_paced_share_stays_away() {
    let mut r = router(no_jitter());
    let primary = r.provider_at(0).unwrap();
    let mut h = failover_core::Headroom::default();
    h.header("x-ratelimit-limit-requests", "100", None);
    h.header("x-ratelimit-remaining-requests", "5", None);
    h.header("x-ratelimit-reset-requests", "60s", None);
    r.observe_headroom(primary, &h, 0);
    let v = r.view(primary).unwrap();
    assert_eq!(v.state, CircuitState::Healthy);
    // Paced share = headroom / watermark: 5 % left against the default watermark of 10 %.
    let share = v.share_ppm;
    assert_eq!(share, 500_000);
    assert_eq!(pick_keyed(&mut r, 10, key_at(0)), 0, "at the start");
    assert_eq!(
        pick_keyed(&mut r, 10, key_at(share - 1)),
        0,
        "just below the share"
    );
    assert_eq!(pick_keyed(&mut r, 10, key_at(share)), 1, "at the share");
    assert_eq!(pick_keyed(&mut r, 10, key_at(999_999)), 1, "at the end");
}
