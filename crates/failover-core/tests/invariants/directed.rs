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

/// The pacing checks do fire: shown a provider paced at zero headroom taking a request, a view
/// whose share is above headroom / watermark × its share, a circuit that pacing changed, or a
/// hint with the wrong figure or expiry, each rejects it (so that "no violation" from the property
/// tests and the fuzz target means something for pacing too).
#[test]
fn the_pacing_checks_reject_broken_promises() {
    use failover_core::{CircuitState, Ticket};
    use failover_testkit::headers::{Quota, headroom};

    let p = Policy {
        window_ms: 12_000,
        pace_watermark: Some(0.1),
        pace_max_age_ms: 60_000,
        ..Policy::default()
    };
    let mut r = R::new(&p, &["a", "b"]).unwrap();
    let (a, b) = (r.provider_at(0).unwrap(), r.provider_at(1).unwrap());
    let none = [Quota::default(); 4];
    // 5 % left of the requests, resetting in 2 s: a paced at half its share.
    let half = headroom(&[
        Quota::from_raw(100, 50, Some(2_000)),
        none[1],
        none[2],
        none[3],
    ]);
    // Nothing left of the input tokens, resetting in 30 s: b takes nothing.
    let zero = headroom(&[
        none[0],
        none[1],
        Quota::from_raw(1_000, 0, Some(30_000)),
        none[3],
    ]);
    r.handle_timeout(10);
    let before = check::circuits(&r);
    r.observe_headroom(a, &half, 10);
    r.observe_headroom(b, &zero, 10);
    assert!(check::headroom(&r, 0, &half, &before, (None, None), &p).is_ok());
    assert!(check::headroom(&r, 1, &zero, &before, (None, None), &p).is_ok());
    assert!(check::views(&r, 2, &p).is_ok());
    // The views borrow the router: read them from a copy.
    let snap = r.clone();
    let va = snap.view(a).unwrap();
    assert_eq!(
        (va.paced_headroom_ppm, va.paced_until_ms, va.share_ppm),
        (Some(50_000), Some(2_010), 500_000)
    );
    let vb = snap.view(b).unwrap();
    assert_eq!((vb.share_ppm, vb.paced_until_ms), (0, Some(30_010)));
    for e in std::iter::from_fn(|| r.poll_event()) {
        assert!(check::event(&e, &p).is_ok(), "{e:?}");
    }

    // Pacing opened a circuit / started a ramp / touched a throttle.
    let mut opened = before.clone();
    opened[1].state.0 = CircuitState::Open;
    assert!(check::headroom(&r, 1, &zero, &opened, (None, None), &p).is_err());
    let mut struck = before.clone();
    struck[0].state.1 += 1;
    assert!(check::headroom(&r, 0, &half, &struck, (None, None), &p).is_err());
    // The hint is not what the headers say: another figure, another expiry.
    assert!(check::headroom(&r, 0, &zero, &before, (None, None), &p).is_err());
    let later = headroom(&[
        Quota::from_raw(100, 50, Some(2_001)),
        none[1],
        none[2],
        none[3],
    ]);
    assert!(check::headroom(&r, 0, &later, &before, (None, None), &p).is_err());
    // A view taking more than headroom / watermark of its share, or anything at zero headroom.
    let mut more = va;
    more.share_ppm = 500_001;
    assert!(check::view(&more, r.now(), &p).is_err());
    let mut unpaced = va;
    unpaced.share_ppm = 1_000_000;
    assert!(check::view(&unpaced, r.now(), &p).is_err());
    let mut leaking = vb;
    leaking.share_ppm = 1;
    assert!(check::view(&leaking, r.now(), &p).is_err());
    let mut stale = va;
    stale.paced_until_ms = Some(r.now());
    assert!(
        check::view(&stale, r.now(), &p).is_err(),
        "a hint past its expiry"
    );
    // A request to the provider at zero headroom, before its reset.
    let forged = Ticket {
        provider: b,
        kind: TicketKind::Request,
        generation: vb.generation,
        probe_seq: 0,
        degraded: false,
        retry_after_ms: None,
        issued_at_ms: r.now(),
    };
    assert!(check::pick(&r, &Ok(forged), 0, 2, &p).is_err());
    // b gets nothing until its reset at 30 010, a half of the requests (exactly, by credit).
    let mut to_a = 0;
    for k in 0..1_000 {
        let t = 20 + k;
        let res = r.pick(t);
        assert!(check::pick(&r, &res, 0, 2, &p).is_ok());
        // With only b left, a takes what nobody else can: the split is checked with somewhere to
        // spill to (the property tests' split check); here a takes everything b cannot.
        to_a += usize::from(res.unwrap().provider == a);
    }
    assert_eq!(to_a, 1_000, "b, at zero headroom, took a request");
    r.handle_timeout(30_010);
    assert_eq!(
        r.view(b).unwrap().paced_headroom_ppm,
        None,
        "the reset ends it"
    );
    // A paced event with the wrong factor or past its max age, an end by a low figure.
    let paced = |share_ppm, until_ms| Event {
        at_ms: 0,
        provider: a,
        kind: EventKind::Paced {
            headroom_ppm: 50_000,
            share_ppm,
            until_ms,
        },
    };
    assert!(check::event(&paced(500_000, 60_000), &p).is_ok());
    assert!(check::event(&paced(500_001, 60_000), &p).is_err());
    assert!(check::event(&paced(500_000, 60_001), &p).is_err());
    let unpaced_low = Event {
        kind: EventKind::Unpaced {
            headroom_ppm: Some(99_999),
        },
        ..paced(0, 0)
    };
    assert!(check::event(&unpaced_low, &p).is_err());
}
