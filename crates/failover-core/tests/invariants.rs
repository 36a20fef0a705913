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
//! - identical inputs give identical outputs, events included, and a clone continues identically;
//! - a full event queue drops and counts, and never changes a decision.

use std::collections::BTreeMap;

use failover_core::{
    Action, AllDown, CircuitState, Event, EventKind, Outcome, OutcomeKind, PickRequest, Policy,
    ProbeMode, ProviderId, ProviderSet, RampStage, Recorded, Router, Ticket, TicketKind, hash_key,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

type R = Router<4, 12, 256>;

// ------------------------------------------------------------------------------------------------
// Random policies and inputs.
// ------------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Case {
    policy: Policy,
    providers: usize,
    start: u64,
    ops: Vec<Op>,
}

#[derive(Clone, Copy, Debug)]
enum Dt {
    Fwd(u64),
    Same,
    Back(u64),
    Jump(u64),
    NearMax(u64),
    Max,
}

#[derive(Clone, Copy, Debug)]
enum Op {
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
}

fn dt() -> impl Strategy<Value = Dt> {
    prop_oneof![
        1_200 => (0..=80u64).prop_map(Dt::Fwd),
        100 => Just(Dt::Same),
        100 => (1..=5_000u64).prop_map(Dt::Back),
        60 => (1_000..=100_000_000u64).prop_map(Dt::Jump),
        3 => (0..=5_000u64).prop_map(Dt::NearMax),
        1 => Just(Dt::Max),
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
            dt(),
            prop::option::weighted(0.2, 0..16u8),
            prop_oneof![8 => Just(0u8), 1 => any::<u8>()],
            prop::option::weighted(0.75, (dt(), any::<u8>(), any::<u32>(), retry_after())),
        )
            .prop_map(|(dt, key, tried, then)| Op::Pick { dt, key, tried, then }),
        12 => (dt(), any::<usize>(), any::<u8>(), any::<u32>(), retry_after()).prop_map(
            |(dt, which, kind, latency, retry_after)| Op::Record {
                dt,
                which,
                kind,
                latency,
                retry_after
            }
        ),
        8 => (dt(), 0..6u8, any::<u8>(), any::<u32>(), retry_after()).prop_map(
            |(dt, provider, kind, latency, retry_after)| Op::Observe {
                dt,
                provider,
                kind,
                latency,
                retry_after
            }
        ),
        5 => dt().prop_map(|dt| Op::PollAction { dt }),
        3 => (dt(), 1..=60usize).prop_map(|(dt, n)| Op::Burst { dt, n }),
        4 => dt().prop_map(|dt| Op::HandleTimeout { dt }),
        4 => Just(Op::SleepUntilDeadline),
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
    );
    (a, b, c).prop_map(
        |(
            (bucket_ms, buckets, min_volume, er, cf, tr, sustain, slow_ms, sr, lf, lq, lb),
            (cce, ob, om, omx, jit, seed, decay, pm, pmax, ps, pt, hci),
            (shares, dwells, last_dwell, rms, rb, tb, tmx, mra, ad),
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
                                ..Policy::default()
            }
        },
    )
}

fn case(max_ops: usize) -> impl Strategy<Value = Case> {
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

fn advance(t: u64, dt: Dt) -> u64 {
    match dt {
        Dt::Fwd(d) | Dt::Jump(d) => t.saturating_add(d),
        Dt::Same => t,
        Dt::Back(d) => t.saturating_sub(d),
        Dt::NearMax(d) => u64::MAX - d,
        Dt::Max => u64::MAX,
    }
}

/// Mostly successes, sometimes failures of every kind; latencies of every size.
fn outcome(kind: u8, latency: u32, retry_after_ms: Option<u64>, bad: bool) -> Outcome {
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

// ------------------------------------------------------------------------------------------------
// The driver: runs a case and returns the transcript of every output.
// ------------------------------------------------------------------------------------------------

/// Ids 0..8, for forged tickets and unknown providers (a router has no public id constructor).
fn ids() -> Vec<ProviderId> {
    let p = Policy {
        bucket_ms: 1_000,
        window_ms: 1_000,
        ..Policy::default()
    };
    let r = Router::<8, 1, 1>::new(&p, &["a", "b", "c", "d", "e", "f", "g", "h"]).unwrap();
    (0..8).map(|i| r.provider_at(i).unwrap()).collect()
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("provider-{i}")).collect()
}

/// What a pick saw of the shares, for the split check.
#[derive(Clone, Debug, PartialEq)]
struct Shares {
    /// (state, share, throttled, probes in flight) per provider.
    providers: Vec<(CircuitState, u32, bool, u32)>,
}

fn shares<const P: usize, const B: usize, const E: usize>(r: &Router<P, B, E>) -> Shares {
    Shares {
        providers: r
            .views()
            .map(|v| {
                (
                    v.state,
                    v.share_ppm,
                    v.throttled_until_ms.is_some(),
                    v.probes_in_flight,
                )
            })
            .collect(),
    }
}

/// Checks that `taken` (one flag per request offered to a ramping provider) is the credit split of
/// `share_ppm`: some starting credit c0 in [0, 1e6) gives, after k offers, floor((c0 + k·share) /
/// 1e6) requests taken, for every k.
fn is_credit_split(taken: &[bool], share_ppm: u32) -> bool {
    let (s, m) = (i128::from(share_ppm), 1_000_000i128);
    let (mut lo, mut hi) = (0i128, m);
    let mut count = 0i128;
    for (k, &t) in taken.iter().enumerate() {
        count += i128::from(t);
        let ks = (k as i128 + 1) * s;
        lo = lo.max(count * m - ks);
        hi = hi.min((count + 1) * m - ks);
    }
    lo < hi
}

/// Checks a run of unkeyed, untried picks made while no share changed: walking the providers in
/// priority order, each ramping provider takes exactly its credit split of the requests offered to
/// it, and the first healthy provider takes everything left.
fn check_split(before: &Shares, picks: &[usize]) -> Result<(), TestCaseError> {
    if picks.is_empty() {
        return Ok(());
    }
    let available = |&(state, _, throttled, _): &(CircuitState, u32, bool, u32)| {
        !throttled && state != CircuitState::Open
    };
    // Only runs with somewhere to spill to are checked (otherwise the first ramping provider
    // takes what nobody takes, on top of its split).
    let Some(healthy) = before
        .providers
        .iter()
        .position(|p| available(p) && p.0 == CircuitState::Healthy)
    else {
        return Ok(());
    };
    let mut offered: Vec<usize> = picks.to_vec();
    for (i, p) in before.providers.iter().enumerate().take(healthy + 1) {
        if !available(p) || p.0 == CircuitState::Probing {
            prop_assert!(!offered.contains(&i), "provider {i} ({p:?}) took a request");
            continue;
        }
        if i == healthy {
            prop_assert!(
                offered.iter().all(|&x| x == i),
                "the first healthy provider {i} takes everything offered: {offered:?}"
            );
            break;
        }
        // Ramping.
        let taken: Vec<bool> = offered.iter().map(|&x| x == i).collect();
        prop_assert!(
            is_credit_split(&taken, p.1),
            "provider {i} at {} ppm took {} of {} offered: {taken:?}",
            p.1,
            taken.iter().filter(|t| **t).count(),
            taken.len()
        );
        offered.retain(|&x| x != i);
    }
    Ok(())
}

/// Tracks each ramping provider's stage: (stage, entered at, counted calls since).
struct Stages<'a> {
    p: &'a Policy,
    at: BTreeMap<usize, (u8, u64, u32)>,
}

impl Stages<'_> {
    fn count(&mut self, i: usize, o: &Outcome) {
        let counted = matches!(
            o.kind,
            OutcomeKind::Success
                | OutcomeKind::ServerError
                | OutcomeKind::ConnectionError
                | OutcomeKind::Timeout
        ) || (self.p.count_client_errors && o.kind == OutcomeKind::ClientError);
        if counted && let Some(s) = self.at.get_mut(&i) {
            s.2 += 1;
        }
    }

    /// A stage advances only after its dwell and its minimum sample.
    fn absorb(&mut self, events: &[Event]) -> Result<(), TestCaseError> {
        let p = self.p;
        for e in events {
            let i = e.provider.index();
            match e.kind {
                EventKind::RampStage { stage: k, .. } => {
                    if k > 0 {
                        let Some(&(prev, since, samples)) = self.at.get(&i) else {
                            prop_assert!(
                                false,
                                "stage {k} of provider {i} without stage {}",
                                k - 1
                            );
                            unreachable!()
                        };
                        prop_assert_eq!(prev + 1, k, "stages in order");
                        let dwell = p.ramp[usize::from(prev)].dwell_ms;
                        prop_assert!(
                            e.at_ms >= since.saturating_add(dwell),
                            "stage {prev} of provider {i} entered at {since} left at {} before its \
                             dwell {dwell}",
                            e.at_ms
                        );
                        prop_assert!(
                            samples >= p.ramp_min_samples,
                            "stage {prev} of provider {i} left after {samples} calls"
                        );
                    }
                    self.at.insert(i, (k, e.at_ms, 0));
                }
                EventKind::Recovered => {
                    if let Some((prev, since, samples)) = self.at.remove(&i) {
                        let last = p.ramp.len() - 1;
                        let dwell = p.ramp[usize::from(prev)].dwell_ms;
                        prop_assert!(usize::from(prev) == last || usize::from(prev) + 1 == last);
                        prop_assert!(e.at_ms >= since.saturating_add(dwell));
                        prop_assert!(samples >= p.ramp_min_samples);
                    } else {
                        // A one-stage ramp with no dwell: healthy as soon as probing succeeds.
                        prop_assert!(
                            p.ramp.len() == 1 && p.ramp[0].dwell_ms == 0,
                            "recovered without a ramp"
                        );
                    }
                }
                EventKind::Opened { .. } => {
                    self.at.remove(&i);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn drain_events<const E: usize>(r: &mut Router<4, 12, E>, drain: bool) -> Vec<Event> {
    if drain {
        std::iter::from_fn(|| r.poll_event()).collect()
    } else {
        Vec::new()
    }
}

/// Records through `f` and returns its result with the events of the catch-up that ran first and
/// those of the record itself, apart (the catch-up's are the events `handle_timeout(t)` gives).
fn record_apart<const E: usize>(
    r: &mut Router<4, 12, E>,
    t: u64,
    drain: bool,
    f: impl FnOnce(&mut Router<4, 12, E>) -> Recorded,
) -> Result<(Recorded, Vec<Event>, Vec<Event>), TestCaseError> {
    if !drain {
        return Ok((f(r), Vec::new(), Vec::new()));
    }
    let mut ahead = r.clone();
    ahead.handle_timeout(t);
    let catch_up = drain_events(&mut ahead, true);
    let res = f(r);
    let mut all = drain_events(r, true);
    prop_assert!(
        all.len() >= catch_up.len() && all[..catch_up.len()] == catch_up[..],
        "an input's catch-up differs from handle_timeout: {catch_up:?} vs {all:?}"
    );
    let own = all.split_off(catch_up.len());
    Ok((res, all, own))
}

/// Runs a case on `r`, checking the invariants after every input, and returns the transcript.
fn run<const E: usize>(
    case: &Case,
    r: &mut Router<4, 12, E>,
    drain: bool,
    check: bool,
) -> Result<Vec<String>, TestCaseError> {
    run_with(case, r, drain, check, Record::Fast)
}

/// Which entry point records outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Record {
    /// `Router::record`, with its fast path for quiet successes.
    Fast,
    /// `Router::record_general`: every rule, for every outcome.
    General,
}

fn record_with<const E: usize>(
    r: &mut Router<4, 12, E>,
    how: Record,
    ticket: &Ticket,
    o: Outcome,
    t: u64,
) -> Recorded {
    match how {
        Record::Fast => r.record(ticket, o, t),
        Record::General => r.record_general(ticket, o, t),
    }
}

fn run_with<const E: usize>(
    case: &Case,
    r: &mut Router<4, 12, E>,
    drain: bool,
    check: bool,
    how: Record,
) -> Result<Vec<String>, TestCaseError> {
    let ids = ids();
    let n = case.providers;
    let p = &case.policy;
    let mut out = Vec::new();
    let mut tickets: Vec<Ticket> = Vec::new();
    let mut t = case.start;
    let mut latest = 0u64;
    // Split check: the shares when the current run of picks began, and who got them.
    let mut run_shares = shares(r);
    let mut run_picks: Vec<usize> = Vec::new();
    let mut stages = Stages {
        p,
        at: BTreeMap::new(),
    };
    let mut last_event_at = 0u64;
    let mut step_start = r.now();

    for (step, op) in case.ops.iter().enumerate() {
        let ctx = || format!("step {step}: {op:?}");
        let bad = |i: usize| (step / 25 + i).is_multiple_of(3);
        let mut unkeyed_pick = None;
        // A probe taken changes who can take requests, even if the permit is back by the end; an
        // unkeyed pick that skips providers moves some credits but not others. Both end a run.
        let mut probe_taken = false;
        // The step's events, in order.
        let mut events: Vec<Event> = Vec::new();
        let mut ramp_check: Result<(), TestCaseError> = Ok(());
        macro_rules! absorb {
            ($ev:expr) => {{
                let ev: Vec<Event> = $ev;
                if check && ramp_check.is_ok() {
                    ramp_check = stages.absorb(&ev);
                }
                events.extend(ev);
            }};
        }
        match *op {
            Op::Pick {
                dt,
                key,
                tried,
                then,
            } => {
                t = advance(t, dt);
                latest = latest.max(t);
                let mut set = ProviderSet::new();
                for (i, id) in ids.iter().enumerate() {
                    if tried & (1 << i) != 0 {
                        set.insert(*id);
                    }
                }
                let key = key.map(|k| hash_key(&[k]));
                let res = r.pick_with(t, &PickRequest { key, tried: set });
                out.push(format!("pick {res:?}"));
                absorb!(drain_events(r, drain));
                if check {
                    check_pick(r, &res, tried, n, p).map_err(|e| prefix(e, &ctx()))?;
                }
                // An unkeyed pick that skips providers moves the credit of the others: it ends
                // the run of comparable picks too.
                probe_taken = key.is_none() && (tried != 0 || res.is_err());
                if let Ok(ticket) = res {
                    probe_taken |= ticket.is_probe() || (key.is_none() && ticket.degraded);
                    if key.is_none() && tried == 0 && !ticket.degraded && !probe_taken {
                        unkeyed_pick = Some(ticket.provider.index());
                    }
                    match then {
                        Some((dt2, kind, latency, ra)) => {
                            t = advance(t, dt2);
                            latest = latest.max(t);
                            let i = ticket.provider.index();
                            let o = outcome(kind, latency, ra, bad(i));
                            let (res, pre, own) =
                                record_apart(r, t, drain, |r| record_with(r, how, &ticket, o, t))
                                    .map_err(|e| prefix(e, &ctx()))?;
                            out.push(format!("record {res:?}"));
                            absorb!(pre);
                            if res == Recorded::Accepted {
                                stages.count(i, &o);
                            }
                            absorb!(own);
                        }
                        None => tickets.push(ticket),
                    }
                }
            }
            Op::Record {
                dt,
                which,
                kind,
                latency,
                retry_after,
            } => {
                t = advance(t, dt);
                if !tickets.is_empty() {
                    latest = latest.max(t);
                    let ticket = tickets.swap_remove(which % tickets.len());
                    let i = ticket.provider.index();
                    let o = outcome(kind, latency, retry_after, bad(i));
                    let generation = r.view(ticket.provider).unwrap().generation;
                    let (res, pre, own) =
                        record_apart(r, t, drain, |r| record_with(r, how, &ticket, o, t))
                            .map_err(|e| prefix(e, &ctx()))?;
                    if check && ticket.generation != generation {
                        // A late result from an earlier generation changes nothing.
                        prop_assert_eq!(res, Recorded::Stale, "{}", ctx());
                    }
                    out.push(format!("record {res:?}"));
                    absorb!(pre);
                    if res == Recorded::Accepted {
                        stages.count(i, &o);
                    }
                    absorb!(own);
                }
            }
            Op::Observe {
                dt,
                provider,
                kind,
                latency,
                retry_after,
            } => {
                t = advance(t, dt);
                latest = latest.max(t);
                let i = usize::from(provider);
                let o = outcome(kind, latency, retry_after, bad(i));
                let (res, pre, own) = record_apart(r, t, drain, |r| r.observe(ids[i], o, t))
                    .map_err(|e| prefix(e, &ctx()))?;
                if check {
                    let want = if i < n {
                        Recorded::Accepted
                    } else {
                        Recorded::UnknownProvider
                    };
                    prop_assert_eq!(res, want, "{}", ctx());
                }
                out.push(format!("observe {res:?}"));
                absorb!(pre);
                if res == Recorded::Accepted {
                    stages.count(i, &o);
                }
                absorb!(own);
            }
            Op::PollAction { dt } => {
                t = advance(t, dt);
                latest = latest.max(t);
                let a = r.poll_action(t);
                out.push(format!("action {a:?}"));
                if let Some(Action::HealthCheck(ticket)) = a {
                    if check {
                        prop_assert_eq!(ticket.kind, TicketKind::HealthCheck);
                        prop_assert!(!ticket.degraded);
                        let v = r.view(ticket.provider).unwrap();
                        prop_assert!(v.throttled_until_ms.is_none(), "{}", ctx());
                        prop_assert!(
                            v.state == CircuitState::Healthy
                                && p.health_check_interval_ms.is_some()
                                || v.state == CircuitState::Probing
                                    && p.probe_mode == ProbeMode::HealthChecks,
                            "health check of {v:?}; {}",
                            ctx()
                        );
                    }
                    tickets.push(ticket);
                }
                absorb!(drain_events(r, drain));
            }
            Op::HandleTimeout { dt } => {
                t = advance(t, dt);
                latest = latest.max(t);
                r.handle_timeout(t);
                absorb!(drain_events(r, drain));
            }
            Op::Burst { dt, n: count } => {
                t = advance(t, dt);
                latest = latest.max(t);
                r.handle_timeout(t);
                absorb!(drain_events(r, drain));
                // Nothing changes at one instant but the credits and the probe permits: the
                // burst's requests split exactly by the shares, up to the first probe.
                let before = shares(r);
                let mut picks = Vec::new();
                for _ in 0..count {
                    let res = r.pick(t);
                    out.push(format!("pick {res:?}"));
                    absorb!(drain_events(r, drain));
                    if check {
                        check_pick(r, &res, 0, n, p).map_err(|e| prefix(e, &ctx()))?;
                    }
                    match res {
                        Ok(ticket) if !ticket.is_probe() && !ticket.degraded => {
                            picks.push(ticket.provider.index());
                        }
                        _ => break,
                    }
                }
                if check {
                    check_split(&before, &picks).map_err(|e| prefix(e, &ctx()))?;
                }
                probe_taken = true;
            }
            Op::SleepUntilDeadline => {
                let d = r.poll_timeout();
                out.push(format!("deadline {d:?}"));
                if let Some(d) = d {
                    if check {
                        prop_assert!(d >= step_start, "{}", ctx());
                    }
                    t = d;
                    latest = latest.max(t);
                    r.handle_timeout(d);
                    // The run loop: after the timer, take the action that is due, if any.
                    let now = r.now();
                    let next = r.poll_timeout();
                    let action = r.poll_action(now);
                    out.push(format!("action {action:?}"));
                    if check && now != u64::MAX {
                        // Every timer due is done; what is left due now is a health check.
                        prop_assert_eq!(
                            next.is_some_and(|x| x <= now),
                            action.is_some(),
                            "next deadline {:?} but action {:?}; {}",
                            next,
                            action,
                            ctx()
                        );
                    }
                    if let Some(Action::HealthCheck(ticket)) = action {
                        tickets.push(ticket);
                    }
                }
                absorb!(drain_events(r, drain));
            }
        }
        for e in &events {
            out.push(format!("event {e:?}"));
        }
        for id in &ids[..n] {
            out.push(format!("view {:?}", r.view(*id).unwrap()));
        }
        out.push(format!("timeout {:?}", r.poll_timeout()));
        if !check {
            continue;
        }

        // Time: the latest input seen, never backwards.
        prop_assert_eq!(r.now(), latest, "{}", ctx());
        prop_assert_eq!(r.invariant_violation(), None, "{}", ctx());
        check_views(r, n, p).map_err(|e| prefix(e, &ctx()))?;

        // Events: stamped with the engine's time, in order.
        for e in &events {
            prop_assert!(e.at_ms >= step_start && e.at_ms <= r.now(), "{}", ctx());
            prop_assert!(e.at_ms >= last_event_at);
            last_event_at = e.at_ms;
            prop_assert!(e.provider.index() < n);
            check_event(e, p).map_err(|x| prefix(x, &ctx()))?;
        }
        step_start = r.now();
        ramp_check.map_err(|e| prefix(e, &ctx()))?;

        // Split: extend the current run of picks while the shares stay as they were.
        let now_shares = shares(r);
        let undisturbed = events.is_empty() && now_shares == run_shares && !probe_taken;
        match (unkeyed_pick, undisturbed) {
            (Some(i), true) => run_picks.push(i),
            (_, true) => {}
            (_, false) => {
                check_split(&run_shares, &run_picks).map_err(|e| prefix(e, &ctx()))?;
                run_picks.clear();
                run_shares = now_shares;
            }
        }
    }
    if check {
        check_split(&run_shares, &run_picks)?;
    }
    out.push(format!("dropped {}", r.dropped_events()));
    Ok(out)
}

fn prefix(e: TestCaseError, ctx: &str) -> TestCaseError {
    TestCaseError::fail(format!("{e}; {ctx}"))
}

fn check_pick<const E: usize>(
    r: &Router<4, 12, E>,
    res: &Result<Ticket, failover_core::Unavailable>,
    tried: u8,
    n: usize,
    p: &Policy,
) -> Result<(), TestCaseError> {
    let all_tried = (0..n).all(|i| tried & (1 << i) != 0);
    match res {
        Ok(t) => {
            let i = t.provider.index();
            prop_assert!(i < n);
            prop_assert!(tried & (1 << i) == 0, "picked a provider already tried");
            prop_assert_eq!(t.issued_at_ms, r.now());
            prop_assert_eq!(t.degraded, t.retry_after_ms.is_some());
            let v = r.view(t.provider).unwrap();
            prop_assert_eq!(t.generation, v.generation);
            if t.degraded {
                prop_assert_eq!(p.when_all_down, AllDown::Soonest);
                prop_assert_eq!(t.kind, TicketKind::Request);
                // Nobody could take it normally.
                for (j, w) in r.views().enumerate() {
                    if tried & (1 << j) != 0 || w.throttled_until_ms.is_some() {
                        continue;
                    }
                    prop_assert!(
                        matches!(w.state, CircuitState::Open | CircuitState::Probing),
                        "degraded pick while provider {j} is {:?}",
                        w.state
                    );
                }
                // The hint is the chosen provider's return.
                let hint = t.retry_after_ms.unwrap();
                if let Some(u) = v.open_until_ms {
                    prop_assert!(hint >= u.saturating_sub(r.now()));
                }
                if let Some(u) = v.throttled_until_ms {
                    prop_assert!(hint >= u.saturating_sub(r.now()));
                }
                return Ok(());
            }
            prop_assert!(
                v.throttled_until_ms.is_none(),
                "picked a throttled provider"
            );
            match t.kind {
                TicketKind::Request => prop_assert!(
                    matches!(v.state, CircuitState::Healthy | CircuitState::Ramping),
                    "an ordinary request went to a {:?} provider",
                    v.state
                ),
                TicketKind::Probe => {
                    prop_assert_eq!(v.state, CircuitState::Probing);
                    prop_assert_eq!(p.probe_mode, ProbeMode::Requests);
                    prop_assert!(v.probes_in_flight >= 1);
                }
                TicketKind::HealthCheck => prop_assert!(false, "pick returned a health check"),
            }
            // No available provider of higher priority was skipped: a healthy one takes
            // everything.
            for (j, w) in r.views().enumerate().take(i) {
                if tried & (1 << j) != 0 || w.throttled_until_ms.is_some() {
                    continue;
                }
                prop_assert!(
                    w.state != CircuitState::Healthy,
                    "provider {j} is healthy but {i} was picked"
                );
            }
        }
        Err(u) => {
            if !all_tried {
                prop_assert_eq!(
                    p.when_all_down,
                    AllDown::Fail,
                    "unavailable under 'soonest'"
                );
            }
            for (j, w) in r.views().enumerate() {
                if tried & (1 << j) != 0 || w.throttled_until_ms.is_some() {
                    continue;
                }
                prop_assert!(
                    !matches!(w.state, CircuitState::Healthy | CircuitState::Ramping),
                    "unavailable while provider {j} is {:?}",
                    w.state
                );
            }
            let _ = u.retry_after_ms;
        }
    }
    Ok(())
}

fn check_views<const E: usize>(
    r: &Router<4, 12, E>,
    n: usize,
    p: &Policy,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(r.len(), n);
    for v in r.views() {
        prop_assert!(v.share_ppm <= 1_000_000, "share above 1: {v:?}");
        let want = if v.throttled_until_ms.is_some() {
            0
        } else {
            match v.state {
                CircuitState::Healthy => 1_000_000,
                CircuitState::Open | CircuitState::Probing => 0,
                CircuitState::Ramping => {
                    let s = p.ramp[usize::from(v.ramp_stage.unwrap())].share;
                    ((s * 1e6 + 0.5) as u32).clamp(1, 1_000_000)
                }
            }
        };
        prop_assert_eq!(v.share_ppm, want, "{:?}", v);
        prop_assert_eq!(v.open_until_ms.is_some(), v.state == CircuitState::Open);
        prop_assert_eq!(v.ramp_stage.is_some(), v.state == CircuitState::Ramping);
        if let Some(s) = v.ramp_stage {
            prop_assert!(usize::from(s) < p.ramp.len());
        }
        prop_assert!(v.probes_in_flight <= p.probe_max_in_flight);
        if v.state != CircuitState::Probing {
            prop_assert_eq!(v.probes_in_flight, 0);
        }
        prop_assert!(v.strikes <= v.trips.max(v.strikes));
        if v.state != CircuitState::Healthy {
            prop_assert!(v.trips >= 1);
        }
        let w = v.window;
        prop_assert_eq!(w.volume, w.successes + w.failures + w.timeouts);
        prop_assert!(w.slow <= w.successes);
        if let Some(d) = v.next_transition_ms {
            prop_assert!(
                d > r.now(),
                "transition due at {d} not performed by {}",
                r.now()
            );
        }
        if let Some(u) = v.throttled_until_ms {
            prop_assert!(u > r.now() || u == u64::MAX);
        }
    }
    Ok(())
}

fn check_event(e: &Event, p: &Policy) -> Result<(), TestCaseError> {
    match e.kind {
        EventKind::Opened {
            until_ms,
            strikes,
            reason,
            from,
        } => {
            prop_assert!(until_ms > e.at_ms || until_ms == u64::MAX);
            prop_assert!(until_ms - e.at_ms <= p.open_max_ms);
            prop_assert!(strikes >= 1);
            prop_assert!(from != CircuitState::Open);
            if from == CircuitState::Probing {
                prop_assert_eq!(reason.trigger, failover_core::Trigger::ProbeFailed);
            }
        }
        EventKind::RampStage { stage, share_ppm } => {
            let s = p.ramp[usize::from(stage)].share;
            prop_assert_eq!(share_ppm, ((s * 1e6 + 0.5) as u32).clamp(1, 1_000_000));
        }
        EventKind::Throttled {
            until_ms,
            retry_after,
        } => {
            prop_assert!(until_ms > e.at_ms);
            let cap = if retry_after {
                p.max_retry_after_ms
            } else {
                p.throttle_max_ms
            };
            prop_assert!(until_ms - e.at_ms <= cap);
        }
        _ => {}
    }
    Ok(())
}

/// `default` cases, scaled by `INVARIANT_CASES` / 1000 when set (for long local runs).
fn cases(default: u32) -> u32 {
    std::env::var("INVARIANT_CASES")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(default, |n| (u64::from(default) * n / 1000).max(1) as u32)
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
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            prop_assert_eq!(x, y, "transcripts differ at line {}", i);
        }
        prop_assert_eq!(a.len(), b.len());
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

    /// A full event queue drops new events and counts them; decisions do not depend on it.
    #[test]
    fn a_full_event_queue_counts_what_it_drops(case in case(120)) {
        let mut big: R = new_router(&case);
        let mut small: Router<4, 12, 2> = new_router(&case);
        let with_events = run(&case, &mut big, true, false)?;
        let without = run(&case, &mut small, false, false)?;
        let all: Vec<&String> = with_events.iter().filter(|l| l.starts_with("event ")).collect();
        let kept: Vec<String> =
            std::iter::from_fn(|| small.poll_event()).map(|e| format!("event {e:?}")).collect();
        prop_assert_eq!(kept.len() as u64 + small.dropped_events(), all.len() as u64);
        prop_assert!(kept.iter().zip(&all).all(|(a, b)| a == *b), "the oldest events are kept");
        let decisions = |t: &[String]| -> Vec<String> {
            t.iter().filter(|l| !l.starts_with("event ") && !l.starts_with("dropped")).cloned().collect()
        };
        prop_assert_eq!(decisions(&with_events), decisions(&without));
    }
}

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
