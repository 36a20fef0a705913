//! The driver: runs a case, checks the shared invariants (`failover_testkit::check`) after every
//! input, and returns the transcript of every output.

use std::collections::BTreeMap;

use failover_core::{Action, Event, EventKind, PickRequest, Recorded, Router, Ticket, hash_key};
use failover_testkit::headers::headroom;
use failover_testkit::time::advance;
use failover_testkit::{Record, check, ids, tried_set};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::input::{Case, Op, outcome};
use crate::split::{Stages, check_split, shares};

pub(crate) fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("provider-{i}")).collect()
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
pub(crate) fn run<const E: usize>(
    case: &Case,
    r: &mut Router<4, 12, E>,
    drain: bool,
    check: bool,
) -> Result<Vec<String>, TestCaseError> {
    run_with(case, r, drain, check, Record::Fast)
}

/// `run`, recording through `how`.
pub(crate) fn run_with<const E: usize>(
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
                let set = tried_set(&ids, u64::from(tried));
                let key = key.map(|k| hash_key(&[k]));
                let res = r.pick_with(t, &PickRequest { key, tried: set });
                out.push(format!("pick {res:?}"));
                absorb!(drain_events(r, drain));
                if check {
                    check::pick(r, &res, u64::from(tried), n, p).map_err(|v| v.at(&ctx()))?;
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
                                record_apart(r, t, drain, |r| how.record(r, &ticket, o, t))
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
                        record_apart(r, t, drain, |r| how.record(r, &ticket, o, t))
                            .map_err(|e| prefix(e, &ctx()))?;
                    if check {
                        check::late_record(ticket.generation, generation, res)
                            .map_err(|v| v.at(&ctx()))?;
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
                    check::observed(i, n, res).map_err(|v| v.at(&ctx()))?;
                }
                out.push(format!("observe {res:?}"));
                absorb!(pre);
                if res == Recorded::Accepted {
                    stages.count(i, &o);
                }
                absorb!(own);
            }
            Op::Headroom {
                dt,
                provider,
                ref quotas,
            } => {
                t = advance(t, dt);
                latest = latest.max(t);
                let i = usize::from(provider);
                let h = headroom(quotas);
                // What the input's catch-up leaves (it runs first): pacing must change no
                // circuit of it.
                let mut ahead = r.clone();
                ahead.handle_timeout(t);
                let before = check::circuits(&ahead);
                let was = ahead
                    .view(ids[i])
                    .map_or((None, None), |v| (v.paced_headroom_ppm, v.paced_until_ms));
                let (res, pre, own) =
                    record_apart(r, t, drain, |r| r.observe_headroom(ids[i], &h, t))
                        .map_err(|e| prefix(e, &ctx()))?;
                out.push(format!("headroom {res:?}"));
                if check {
                    check::observed(i, n, res).map_err(|v| v.at(&ctx()))?;
                    check::headroom(r, i, &h, &before, was, p).map_err(|v| v.at(&ctx()))?;
                    for e in &own {
                        prop_assert!(
                            e.provider == ids[i]
                                && matches!(
                                    e.kind,
                                    EventKind::Paced { .. } | EventKind::Unpaced { .. }
                                ),
                            "rate-limit headers gave {e:?}; {}",
                            ctx()
                        );
                    }
                }
                absorb!(pre);
                absorb!(own);
            }
            Op::PollAction { dt } => {
                t = advance(t, dt);
                latest = latest.max(t);
                let a = r.poll_action(t);
                out.push(format!("action {a:?}"));
                if let Some(Action::HealthCheck(ticket)) = a {
                    if check {
                        check::action(r, &ticket, p).map_err(|v| v.at(&ctx()))?;
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
                        check::pick(r, &res, 0, n, p).map_err(|v| v.at(&ctx()))?;
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
                        check::deadline(d, step_start).map_err(|v| v.at(&ctx()))?;
                    }
                    t = d;
                    latest = latest.max(t);
                    r.handle_timeout(d);
                    // The run loop: after the timer, take the action that is due, if any.
                    let now = r.now();
                    let next = r.poll_timeout();
                    let action = r.poll_action(now);
                    out.push(format!("action {action:?}"));
                    if check {
                        // Every timer due is done; what is left due now is a health check.
                        check::after_sleep(now, next, action.as_ref()).map_err(|v| v.at(&ctx()))?;
                    }
                    if let Some(Action::HealthCheck(ticket)) = action {
                        if check {
                            check::action(r, &ticket, p).map_err(|v| v.at(&ctx()))?;
                        }
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
        check::state(r, latest, n, p).map_err(|v| v.at(&ctx()))?;
        // Events: stamped with the engine's time, in order.
        check::events(r, &events, n, p, step_start, &mut last_event_at)
            .map_err(|v| v.at(&ctx()))?;
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
