//! Directed checks of the split and of keyed picks, of extreme timestamps, and of the shared
//! checks themselves.

use failover_core::{
    Action, Event, EventKind, Outcome, OutcomeKind, PickRequest, Policy, ProviderSet, Recorded,
    TicketKind, hash_key,
};
use failover_testkit::{check, ids, same_transcripts};

use crate::R;
use crate::split::is_credit_split;

// ------------------------------------------------------------------------------------------------
// Directed checks of the split and of keyed picks.
// ------------------------------------------------------------------------------------------------

fn ramping_router() -> (R, u64) {
    let p = Policy {
        open_jitter: 0.0,
        window_ms: 12_000,
        ..Policy::default()
    };
    let mut r = R::new(&p, &["primary", "secondary"]).unwrap();
    let primary = r.provider_at(0).unwrap();
    for k in 0..5 {
        let t = r.pick(k).unwrap();
        r.record(&t, Outcome::server_error(1), k);
    }
    let until = r.view(primary).unwrap().open_until_ms.unwrap();
    for k in 0..3 {
        let t = r.pick(until + k).unwrap();
        assert_eq!(t.kind, TicketKind::Probe);
        r.record(&t, Outcome::success(5), until + k);
    }
    assert_eq!(r.view(primary).unwrap().share_ppm, 50_000);
    (r, until + 2)
}

#[test]
fn the_split_is_exact_at_every_stage() {
    let (mut r, mut t) = ramping_router();
    let primary = r.provider_at(0).unwrap();
    for (share, n) in [(50_000u32, 2_000usize), (250_000, 4_000), (500_000, 1_000)] {
        assert_eq!(r.view(primary).unwrap().share_ppm, share);
        let picks: Vec<bool> = (0..n)
            .map(|_| r.pick(t).unwrap().provider == primary)
            .collect();
        assert_eq!(
            picks.iter().filter(|x| **x).count() as u64,
            n as u64 * u64::from(share) / 1_000_000
        );
        // Exactly one in 1/share in every window of that length.
        let period = (1_000_000 / share) as usize;
        for w in picks.windows(period) {
            assert_eq!(w.iter().filter(|x| **x).count(), 1);
        }
        assert!(is_credit_split(&picks, share));
        // Move to the next stage: enough samples, then the dwell.
        for _ in 0..10 {
            r.observe(primary, Outcome::success(5), t);
        }
        t += 400_000;
        r.handle_timeout(t);
    }
}

#[test]
fn keys_moved_back_stay_back_through_the_ramp() {
    let (mut r, mut t) = ramping_router();
    let primary = r.provider_at(0).unwrap();
    let keys: Vec<u64> = (0..2_000u32).map(|k| hash_key(&k.to_le_bytes())).collect();
    let mut back = vec![false; keys.len()];
    for share in [50_000u32, 250_000, 500_000, 1_000_000] {
        assert_eq!(r.view(primary).unwrap().share_ppm, share);
        let mut count = 0;
        for (k, &key) in keys.iter().enumerate() {
            let req = PickRequest {
                key: Some(key),
                tried: ProviderSet::new(),
            };
            let on_primary = r.pick_with(t, &req).unwrap().provider == primary;
            // The same key, asked again, goes to the same provider.
            assert_eq!(
                r.pick_with(t, &req).unwrap().provider == primary,
                on_primary
            );
            assert!(
                on_primary || !back[k],
                "key {k} moved back and then away again"
            );
            back[k] = on_primary;
            count += usize::from(on_primary);
        }
        // About `share` of the keys (a hash, so only roughly).
        let expected = keys.len() as f64 * f64::from(share) / 1e6;
        assert!(
            (count as f64 - expected).abs() <= 4.0 * expected.sqrt() + 2.0,
            "{count} keys at {share} ppm"
        );
        if share == 1_000_000 {
            break;
        }
        for _ in 0..10 {
            r.observe(primary, Outcome::success(5), t);
        }
        t += 400_000;
        r.handle_timeout(t);
    }
}

#[test]
fn the_credit_split_check_rejects_other_splits() {
    assert!(is_credit_split(&[false, false, false, true], 250_000));
    assert!(is_credit_split(&[true, false, false, false, true], 250_000));
    assert!(!is_credit_split(&[true, true], 250_000));
    assert!(!is_credit_split(&[false; 5], 250_000));
    assert!(is_credit_split(&[true; 5], 1_000_000));
    assert!(!is_credit_split(&[true, false], 1_000_000));
}

#[test]
fn extreme_timestamps_never_panic() {
    let policies = [
        Policy::default(),
        Policy {
            bucket_ms: 1,
            window_ms: 12,
            open_base_ms: u64::MAX / 2,
            open_max_ms: u64::MAX,
            open_multiplier: 1e300,
            backoff_decay_ms: u64::MAX,
            probe_timeout_ms: u64::MAX,
            throttle_base_ms: u64::MAX / 3,
            throttle_max_ms: u64::MAX,
            max_retry_after_ms: u64::MAX,
            timeout_sustain_ms: u64::MAX,
            health_check_interval_ms: Some(u64::MAX),
            latency_baseline_ms: u64::MAX,
            ..Policy::default()
        },
    ];
    let times = [
        0,
        1,
        u64::MAX / 2,
        u64::MAX - 1_000_000,
        u64::MAX - 1,
        u64::MAX,
        3,
        u64::MAX,
    ];
    for p in &policies {
        let p = Policy {
            window_ms: p.bucket_ms * 12,
            ..p.clone()
        };
        let mut r = R::new(&p, &["a", "b", "c"]).unwrap();
        let ids = ids();
        for (k, &t) in times.iter().cycle().take(400).enumerate() {
            let kind = OutcomeKind::ALL[k % 7];
            let o = Outcome {
                kind,
                latency_ms: [0, 1, u32::MAX][k % 3],
                retry_after_ms: [None, Some(0), Some(u64::MAX)][k % 3],
            };
            match k % 5 {
                0 => {
                    if let Ok(ticket) = r.pick(t) {
                        r.record(&ticket, o, t);
                    }
                }
                1 => {
                    r.observe(ids[k % 4], o, t);
                }
                2 => {
                    if let Some(Action::HealthCheck(ticket)) = r.poll_action(t) {
                        r.record(&ticket, o, t);
                    }
                }
                3 => r.handle_timeout(t),
                _ => {
                    if let Some(d) = r.poll_timeout() {
                        r.handle_timeout(d);
                    }
                }
            }
            assert_eq!(r.invariant_violation(), None, "step {k} at {t}");
            while r.poll_event().is_some() {}
        }
        assert_eq!(r.now(), u64::MAX);
    }
}

/// The shared checks do fire: each rejects a broken promise it is shown (so that "no violation"
/// from the property tests and the fuzz target means something).
#[test]
fn the_shared_checks_reject_broken_promises() {
    let p = Policy {
        window_ms: 12_000,
        ..Policy::default()
    };
    let ids = ids();
    let r = R::new(&p, &["a", "b"]).unwrap();
    assert_eq!(r.now(), 0);
    let recovered = |at_ms, provider: usize| Event {
        at_ms,
        provider: ids[provider],
        kind: EventKind::Recovered,
    };
    let events =
        |e: Event, since: u64, mut last: u64| check::events(&r, &[e], 2, &p, since, &mut last);
    assert!(events(recovered(0, 1), 0, 0).is_ok());
    assert!(
        events(recovered(1, 0), 0, 0).is_err(),
        "after the engine's time"
    );
    assert!(
        events(recovered(0, 0), 1, 0).is_err(),
        "before the previous drain"
    );
    assert!(events(recovered(0, 0), 0, 5).is_err(), "out of order");
    assert!(
        events(recovered(0, 2), 0, 0).is_err(),
        "an unknown provider"
    );
    let throttled = Event {
        kind: EventKind::Throttled {
            until_ms: p.throttle_max_ms + 1,
            retry_after: false,
        },
        ..recovered(0, 0)
    };
    assert!(
        check::event(&throttled, &p).is_err(),
        "a throttle past its cap"
    );
    assert!(check::after_sleep(10, Some(10), None).is_err());
    assert!(check::after_sleep(u64::MAX, Some(10), None).is_ok());
    assert!(check::late_record(1, 2, Recorded::Accepted).is_err());
    assert!(check::observed(2, 2, Recorded::Accepted).is_err());
    assert!(check::deadline(4, 5).is_err());
    assert!(
        check::state(&r, 1, 2, &p).is_err(),
        "time is not the latest input"
    );
    assert!(check::views(&r, 3, &p).is_err(), "a provider count");
    let mut r = r.clone();
    let res = r.pick(0);
    assert!(check::pick(&r, &res, 0, 2, &p).is_ok());
    assert!(
        check::pick(&r, &res, 1, 2, &p).is_err(),
        "a provider already tried"
    );
    assert!(same_transcripts(&["a".into()], &["b".into()]).is_err());
    assert!(same_transcripts(&["a".into()], &[]).is_err());
}

/// The fuzz targets' sample of full checks (`check::Sample`) picks every n-th step, every step
/// after which the engine queued or dropped an event (a trip, a probe, a recovery: where cached
/// deadlines and circuit fields are rebuilt), and never a mere drain; with `every(1)` it picks
/// every step, as the property tests check. And the sampled request driver agrees with the one
/// that checks after every operation.
#[test]
fn the_sample_of_full_checks_picks_every_change_and_every_nth_step() {
    use failover_core::Router;
    use failover_testkit::check::Sample;
    let p = Policy {
        consecutive_failures: Some(1),
        open_jitter: 0.0,
        window_ms: 12_000,
        ..Policy::default()
    };
    // A queue of two events, so that drops are seen too.
    let mut r: Router<2, 12, 2> = Router::new(&p, &["a", "b"]).unwrap();
    let a = r.provider_at(0).unwrap();
    let mut s = Sample::every(4);
    let quiet: Vec<bool> = (1..=8)
        .map(|t| {
            r.handle_timeout(t);
            s.full(&r)
        })
        .collect();
    assert_eq!(
        quiet,
        [false, false, false, true, false, false, false, true]
    );
    // A trip queues an event: picked at once, off the period.
    r.observe(a, Outcome::server_error(1), 9);
    assert!(r.pending_events() > 0);
    assert!(s.full(&r), "a step that tripped a circuit");
    // Draining is not a change.
    while r.poll_event().is_some() {}
    s.drained(&r);
    r.handle_timeout(10);
    assert!(!s.full(&r), "a drain");
    // The queue fills, then drops: each is a change.
    let b = r.provider_at(1).unwrap();
    r.observe(b, Outcome::server_error(1), 11);
    assert!(s.full(&r));
    let until = r.view(a).unwrap().open_until_ms.unwrap();
    r.handle_timeout(until);
    r.handle_timeout(until + 1);
    assert!(r.dropped_events() > 0 || r.pending_events() > 1);
    assert!(s.full(&r), "an event queued or dropped");
    assert_eq!(s.steps(), 12);
    let mut every = Sample::every(1);
    assert!((0..5).all(|_| every.full(&r)));

    let mut rng = failover_testkit::Rng(0x05A4_D91E);
    for case in 0..200 {
        let data: Vec<u8> = (0..600).map(|_| rng.next() as u8).collect();
        let full = failover_testkit::request::run(&data);
        let sampled = failover_testkit::request::run_sampled(&data, Sample::every(16));
        assert_eq!(full, sampled, "case {case}");
    }
}
