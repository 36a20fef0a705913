//! The engine's documented promises, as checks over what a router returned and what its views
//! show. `tests/invariants` runs them after every input of its property tests and the `events`
//! fuzz target after every step (the O(P · B) ones, [`state`] and [`views`], on the steps a
//! [`Sample`] picks and at the end of each input), so both check the same rules, written here
//! once.
//!
//! A check returns `Err(Violation)` naming the broken rule instead of panicking, so that a
//! property test can shrink the case (with the `proptest` feature a `Violation` converts into a
//! `TestCaseError`); a fuzz target calls [`Violation::panic`] or [`assert_holds`].

use core::fmt;

use failover_core::{
    Action, AllDown, CircuitState, Dimension, Event, EventKind, Headroom, Policy, ProbeMode,
    ProviderView, Recorded, Router, Ticket, TicketKind, Trigger, Unavailable, WindowStats,
};

/// A broken promise: what was expected and what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation(pub String);

impl Violation {
    /// The same violation, with `ctx` (where it happened) appended.
    #[must_use]
    pub fn at(self, ctx: &str) -> Violation {
        Violation(format!("{}; {ctx}", self.0))
    }

    /// Panics with the violation (for fuzz targets).
    pub fn panic(self) -> ! {
        panic!("{}", self.0)
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(feature = "proptest")]
impl From<Violation> for proptest::test_runner::TestCaseError {
    fn from(v: Violation) -> Self {
        proptest::test_runner::TestCaseError::fail(v.0)
    }
}

/// The result of a check.
pub type Check = Result<(), Violation>;

/// Panics when `c` is a violation (for fuzz targets).
#[track_caller]
pub fn assert_holds(c: Check) {
    if let Err(v) = c {
        v.panic();
    }
}

/// `Err(Violation)` with the message when the condition is false.
macro_rules! ensure {
    ($cond:expr) => {
        $crate::check::ensure!($cond, "{}", stringify!($cond))
    };
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::check::Violation(format!(
                "{} ({}:{})",
                format_args!($($msg)+),
                file!(),
                line!()
            )));
        }
    };
}

/// `Err(Violation)` showing both sides when they differ.
macro_rules! ensure_eq {
    ($a:expr, $b:expr) => {
        $crate::check::ensure_eq!($a, $b, "{} == {}", stringify!($a), stringify!($b))
    };
    ($a:expr, $b:expr, $($msg:tt)+) => {{
        let (a, b) = (&$a, &$b);
        $crate::check::ensure!(
            a == b,
            "{}: {:?} != {:?}",
            format_args!($($msg)+),
            a,
            b
        );
    }};
}

pub(crate) use {ensure, ensure_eq};

/// A ramp stage's share in parts per million, as the engine rounds it (never 0).
pub fn stage_share_ppm(p: &Policy, stage: usize) -> u32 {
    ((p.ramp[stage].share * 1e6 + 0.5) as u32).clamp(1, 1_000_000)
}

/// After every input: the engine's time is the latest input (`latest`, never backwards), its own
/// invariant check passes, and every view is consistent ([`views`]).
pub fn state<const P: usize, const B: usize, const E: usize>(
    r: &Router<P, B, E>,
    latest: u64,
    n: usize,
    p: &Policy,
) -> Check {
    ensure_eq!(r.now(), latest, "the engine's time is the latest input");
    ensure_eq!(r.invariant_violation(), None, "invariant_violation");
    views(r, n, p)
}

/// Every provider's view ([`view`]), and one per provider.
pub fn views<const P: usize, const B: usize, const E: usize>(
    r: &Router<P, B, E>,
    n: usize,
    p: &Policy,
) -> Check {
    ensure_eq!(r.len(), n);
    for v in r.views() {
        view(&v, r.now(), p)?;
        // The O(1) read the fuzz targets judge records by is the view's.
        ensure_eq!(
            r.generation(v.id),
            Some(v.generation),
            "generation() is the view's"
        );
        // The picks' O(1) reads are the view without its window figures.
        let mut light = v;
        light.window = WindowStats::default();
        (light.latency_ms, light.latency_p50_ms) = (None, None);
        (light.latency_p90_ms, light.latency_p99_ms) = (None, None);
        ensure_eq!(
            r.state_view(v.id),
            Some(light),
            "state_view() is the view's"
        );
    }
    Ok(())
}

/// `pace_watermark` in parts per million, as the engine rounds it (at least 1).
pub fn watermark_ppm(p: &Policy) -> Option<u32> {
    p.pace_watermark
        .map(|w| ((w * 1e6 + 0.5) as u32).clamp(1, 1_000_000))
}

/// One provider's view at the engine's time `now`: a share in [0, 1] consistent with the state (0
/// while open, probing or throttled, the stage's share while ramping, 1 while healthy), times
/// headroom / watermark while paced (0 at zero headroom: pacing never gives more than that);
/// deadlines in the future, permits only while probing, window figures that add up.
pub fn view(v: &ProviderView<'_>, now: u64, p: &Policy) -> Check {
    ensure!(v.share_ppm <= 1_000_000, "share above 1: {v:?}");
    // An isolated provider takes nothing, whatever its circuit says.
    let circuit = if v.throttled_until_ms.is_some() || v.isolated {
        0
    } else {
        match v.state {
            CircuitState::Healthy => 1_000_000,
            CircuitState::Open | CircuitState::Probing => 0,
            CircuitState::Ramping => stage_share_ppm(p, usize::from(v.ramp_stage.unwrap())),
        }
    };
    ensure_eq!(
        v.paced_headroom_ppm.is_some(),
        v.paced_until_ms.is_some(),
        "paced headroom and expiry: {v:?}"
    );
    let want = match v.paced_headroom_ppm {
        None => circuit,
        Some(h) => {
            let Some(w) = watermark_ppm(p) else {
                return Err(Violation(format!("paced without a watermark: {v:?}")));
            };
            ensure!(h < w, "paced at or above the watermark {w}: {v:?}");
            let u = v.paced_until_ms.unwrap();
            ensure!(
                u > now || u == u64::MAX,
                "a pacing hint past its expiry at {now}: {v:?}"
            );
            (u64::from(circuit) * (u64::from(h) * 1_000_000 / u64::from(w)) / 1_000_000) as u32
        }
    };
    ensure_eq!(v.share_ppm, want, "{v:?}");
    ensure_eq!(v.open_until_ms.is_some(), v.state == CircuitState::Open);
    ensure_eq!(v.ramp_stage.is_some(), v.state == CircuitState::Ramping);
    if let Some(s) = v.ramp_stage {
        ensure!(usize::from(s) < p.ramp.len());
    }
    ensure!(v.probes_in_flight <= p.probe_max_in_flight);
    if v.state != CircuitState::Probing {
        ensure_eq!(v.probes_in_flight, 0);
    }
    if v.state != CircuitState::Healthy {
        ensure!(v.trips >= 1);
    }
    let w = v.window;
    ensure_eq!(w.volume, w.successes + w.failures + w.timeouts);
    ensure!(w.slow <= w.successes);
    if let Some(d) = v.next_transition_ms {
        // A transition scheduled at the end of time is performed by the next input there.
        ensure!(
            d > now || d == u64::MAX,
            "transition due at {d} not performed by {now}"
        );
    }
    if let Some(u) = v.throttled_until_ms {
        ensure!(u > now || u == u64::MAX);
    }
    Ok(())
}

/// Held back from new traffic by its quota: paced at zero headroom.
/// Every provider's [`Router::state_view`] (no window figures: O(P), for the checks that run on
/// every pick).
fn state_views<const P: usize, const B: usize, const E: usize>(
    r: &Router<P, B, E>,
) -> impl Iterator<Item = ProviderView<'_>> + '_ {
    (0..r.len()).filter_map(|i| r.state_view(r.provider_at(i)?))
}

fn exhausted(v: &ProviderView<'_>) -> bool {
    v.paced_headroom_ppm == Some(0)
}

/// What pacing must leave alone in a provider: its circuit (state, strikes, trips, generation,
/// open period, ramp stage, probe permits) and its throttle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Circuit {
    /// `(state, strikes, trips, generation)`.
    pub state: (CircuitState, u32, u32, u32),
    /// `(open_until_ms, throttled_until_ms)`.
    pub until: (Option<u64>, Option<u64>),
    /// `(ramp_stage, probes_in_flight)`.
    pub ramp: (Option<u8>, u32),
}

/// Every provider's [`Circuit`], in order.
pub fn circuits<const P: usize, const B: usize, const E: usize>(
    r: &Router<P, B, E>,
) -> Vec<Circuit> {
    r.views()
        .map(|v| Circuit {
            state: (v.state, v.strikes, v.trips, v.generation),
            until: (v.open_until_ms, v.throttled_until_ms),
            ramp: (v.ramp_stage, v.probes_in_flight),
        })
        .collect()
}

/// After `observe_headroom(provider i, h, now)` (`before`: [`circuits`] once the input's
/// catch-up was done, i.e. after `handle_timeout(now)`; `was`: provider `i`'s pacing then, as
/// `(paced_headroom_ppm, paced_until_ms)`): pacing opened no circuit, started no ramp and touched
/// no throttle, in any provider; and provider `i`'s pacing is what the rules make of `h`: headers
/// without a usable figure (or no watermark) change nothing; at or above the watermark it is not
/// paced; below it, paced at that headroom until the latest reset of the dimensions below the
/// watermark or `pace_max_age_ms` after `now`, whichever is first (not paced when that is now).
pub fn headroom<const P: usize, const B: usize, const E: usize>(
    r: &Router<P, B, E>,
    i: usize,
    h: &Headroom,
    before: &[Circuit],
    was: (Option<u32>, Option<u64>),
    p: &Policy,
) -> Check {
    let after = circuits(r);
    ensure_eq!(
        after.as_slice(),
        before,
        "pacing changed a circuit or a throttle"
    );
    let Some(v) = r.views().nth(i) else {
        return Ok(());
    };
    let now = r.now();
    let want = match (watermark_ppm(p), h.headroom_ppm()) {
        (Some(w), Some(x)) if x < w => {
            let reset = Dimension::ALL
                .into_iter()
                .filter(|&d| h.dimension_ppm(d).is_some_and(|y| y < w))
                .filter_map(|d| h.quota(d).reset_in_ms)
                .max();
            let age = reset.map_or(p.pace_max_age_ms, |x| x.min(p.pace_max_age_ms));
            if age == 0 {
                (None, None)
            } else {
                (Some(x), Some(now.saturating_add(age)))
            }
        }
        (Some(_), Some(_)) => (None, None),
        _ => was,
    };
    ensure_eq!(
        (v.paced_headroom_ppm, v.paced_until_ms),
        want,
        "provider {i}'s pacing after {h:?} at {now}"
    );
    Ok(())
}

/// Events drained from `r`: stamped with the engine's time, no earlier than `since` (the engine's
/// time when the previous drain ended) nor than the previous event (`last`, updated), for a known
/// provider, with sane figures ([`event`]).
pub fn events<const P: usize, const B: usize, const E: usize>(
    r: &Router<P, B, E>,
    events: &[Event],
    n: usize,
    p: &Policy,
    since: u64,
    last: &mut u64,
) -> Check {
    for e in events {
        ensure!(
            e.at_ms >= since && e.at_ms <= r.now(),
            "an event at {} outside [{since}, {}]",
            e.at_ms,
            r.now()
        );
        ensure!(e.at_ms >= *last, "events out of order");
        *last = e.at_ms;
        ensure!(e.provider.index() < n);
        event(e, p)?;
    }
    Ok(())
}

/// A bounded event queue that overflowed: what it `kept` (drained at the end) and the count it
/// `dropped`, against `all` the events an unbounded queue delivered for the same inputs. The
/// queue keeps the newest events: `kept` is the tail of `all`, and `dropped` counts the rest.
pub fn queue_keeps_newest<T: PartialEq + fmt::Debug>(all: &[T], kept: &[T], dropped: u64) -> Check {
    ensure_eq!(
        kept.len() as u64 + dropped,
        all.len() as u64,
        "kept + dropped = every event"
    );
    let tail = &all[all.len() - kept.len()..];
    ensure!(
        kept == tail,
        "the newest events are kept: {kept:?} is not the tail {tail:?}"
    );
    Ok(())
}

/// One event's figures: an open circuit's deadline within `open_max_ms`, a probe failure from
/// probing, a ramp stage's share, a throttle within its cap, pacing below the watermark with the
/// factor headroom / watermark and an expiry within `pace_max_age_ms`, an end of pacing by a
/// figure at or above the watermark (or by expiry).
pub fn event(e: &Event, p: &Policy) -> Check {
    match e.kind {
        EventKind::Opened {
            until_ms,
            strikes,
            reason,
            from,
        } => {
            ensure!(until_ms > e.at_ms || until_ms == u64::MAX);
            ensure!(until_ms - e.at_ms <= p.open_max_ms);
            ensure!(strikes >= 1);
            ensure!(from != CircuitState::Open);
            if from == CircuitState::Probing {
                ensure_eq!(reason.trigger, Trigger::ProbeFailed);
            }
        }
        EventKind::RampStage { stage, share_ppm } => {
            ensure_eq!(share_ppm, stage_share_ppm(p, usize::from(stage)));
        }
        EventKind::Throttled {
            until_ms,
            retry_after,
        } => {
            ensure!(until_ms > e.at_ms);
            let cap = if retry_after {
                p.max_retry_after_ms
            } else {
                p.throttle_max_ms
            };
            ensure!(until_ms - e.at_ms <= cap);
        }
        EventKind::Paced {
            headroom_ppm,
            share_ppm,
            until_ms,
        } => {
            let Some(w) = watermark_ppm(p) else {
                return Err(Violation(format!("paced without a watermark: {e:?}")));
            };
            ensure!(headroom_ppm < w, "paced at or above the watermark: {e:?}");
            ensure_eq!(
                u64::from(share_ppm),
                u64::from(headroom_ppm) * 1_000_000 / u64::from(w),
                "the pacing factor is headroom / watermark"
            );
            ensure!(until_ms > e.at_ms || until_ms == u64::MAX);
            ensure!(
                until_ms - e.at_ms <= p.pace_max_age_ms,
                "a hint past its max age: {e:?}"
            );
        }
        EventKind::Unpaced {
            headroom_ppm: Some(x),
        } => {
            ensure!(
                watermark_ppm(p).is_some_and(|w| x >= w),
                "unpaced by a figure below the watermark: {e:?}"
            );
        }
        _ => {}
    }
    Ok(())
}

/// A pick's result (`tried`: bit i for provider i): never a provider already tried or throttled;
/// an ordinary request only to a healthy or ramping provider, a probe only to a probing one; no
/// available provider of higher priority skipped; a degraded pick (with its return as the hint)
/// only when nobody could take the request normally; unavailable only when every provider is
/// tried, or down under `AllDown::Fail`.
pub fn pick<const P: usize, const B: usize, const E: usize>(
    r: &Router<P, B, E>,
    res: &Result<Ticket, Unavailable>,
    tried: u64,
    n: usize,
    p: &Policy,
) -> Check {
    let is_tried = |i: usize| tried & (1 << i) != 0;
    let all_tried = (0..n).all(is_tried);
    match res {
        Ok(t) => {
            let i = t.provider.index();
            ensure!(i < n);
            ensure!(!is_tried(i), "picked a provider already tried");
            ensure!(
                !r.is_isolated(t.provider),
                "picked a provider isolated by hand"
            );
            ensure_eq!(t.issued_at_ms, r.now());
            ensure_eq!(t.degraded, t.retry_after_ms.is_some());
            let v = r.state_view(t.provider).unwrap();
            ensure_eq!(t.generation, v.generation);
            if t.degraded {
                ensure_eq!(p.when_all_down, AllDown::Soonest);
                ensure_eq!(t.kind, TicketKind::Request);
                // Nobody could take it normally.
                for (j, w) in state_views(r).enumerate() {
                    if !is_tried(j) && w.throttled_until_ms.is_none() && !exhausted(&w) {
                        ensure!(
                            matches!(w.state, CircuitState::Open | CircuitState::Probing),
                            "a degraded pick while provider {j} is {:?}",
                            w.state
                        );
                    }
                }
                // The hint is the chosen provider's return.
                let hint = t.retry_after_ms.unwrap();
                if let Some(u) = v.open_until_ms {
                    ensure!(hint >= u.saturating_sub(r.now()));
                }
                if let Some(u) = v.throttled_until_ms {
                    ensure!(hint >= u.saturating_sub(r.now()));
                }
                if exhausted(&v) {
                    ensure!(hint >= v.paced_until_ms.unwrap().saturating_sub(r.now()));
                }
                return Ok(());
            }
            ensure!(
                v.throttled_until_ms.is_none(),
                "picked a throttled provider"
            );
            // Until its hint expires (the quota's reset or the maximum age), none at all.
            ensure!(
                !exhausted(&v),
                "picked a provider paced at zero headroom: {v:?}"
            );
            match t.kind {
                TicketKind::Request => ensure!(
                    matches!(v.state, CircuitState::Healthy | CircuitState::Ramping),
                    "an ordinary request went to a {:?} provider",
                    v.state
                ),
                TicketKind::Probe => {
                    ensure_eq!(v.state, CircuitState::Probing);
                    ensure_eq!(p.probe_mode, ProbeMode::Requests);
                    ensure!(v.probes_in_flight >= 1);
                }
                TicketKind::HealthCheck => ensure!(false, "pick returned a health check"),
            }
            // No available provider of higher priority was skipped: a healthy one takes
            // everything (unless paced: then it takes its share).
            for (j, w) in state_views(r).enumerate().take(i) {
                if !is_tried(j) && w.throttled_until_ms.is_none() {
                    ensure!(
                        w.state != CircuitState::Healthy || w.paced_headroom_ppm.is_some(),
                        "provider {j} is healthy but {i} was picked"
                    );
                }
            }
        }
        Err(_) => {
            if !all_tried {
                ensure_eq!(
                    p.when_all_down,
                    AllDown::Fail,
                    "unavailable under 'soonest'"
                );
            }
            for (j, w) in state_views(r).enumerate() {
                if !is_tried(j) && w.throttled_until_ms.is_none() && !exhausted(&w) {
                    ensure!(
                        !matches!(w.state, CircuitState::Healthy | CircuitState::Ramping),
                        "unavailable while provider {j} is {:?}",
                        w.state
                    );
                }
            }
        }
    }
    Ok(())
}

/// A health check from `poll_action`: issued now, not degraded, for a provider that is not
/// throttled and is healthy with periodic checks on, or probing by health checks.
pub fn action<const P: usize, const B: usize, const E: usize>(
    r: &Router<P, B, E>,
    ticket: &Ticket,
    p: &Policy,
) -> Check {
    ensure_eq!(ticket.kind, TicketKind::HealthCheck);
    ensure!(!ticket.degraded);
    ensure_eq!(ticket.issued_at_ms, r.now());
    let v = r.view(ticket.provider).unwrap();
    ensure!(
        v.throttled_until_ms.is_none(),
        "a check of a throttled provider"
    );
    ensure!(
        (v.state == CircuitState::Healthy && p.health_check_interval_ms.is_some())
            || (v.state == CircuitState::Probing && p.probe_mode == ProbeMode::HealthChecks),
        "a health check of {v:?}"
    );
    Ok(())
}

/// A deadline from `poll_timeout` is never in the past (`now`: the engine's time when it was
/// asked).
pub fn deadline(d: u64, now: u64) -> Check {
    ensure!(d >= now, "a deadline at {d} in the past of {now}");
    Ok(())
}

/// The run loop, after `handle_timeout(poll_timeout())`: every timer due is done, so what is
/// left due now (`next`, the new `poll_timeout`) is a health check (`action`, from
/// `poll_action(now)`). Not judged at `u64::MAX`, where checks are due on every call.
pub fn after_sleep(now: u64, next: Option<u64>, action: Option<&Action>) -> Check {
    if now != u64::MAX {
        ensure_eq!(
            next.is_some_and(|x| x <= now),
            action.is_some(),
            "next deadline {next:?} but action {action:?}"
        );
    }
    Ok(())
}

/// A record of a ticket whose generation (`ticket_generation`) was already behind the provider's
/// (`generation`, read just before) is stale: generations only grow, and a late result from an
/// earlier generation changes nothing.
pub fn late_record(ticket_generation: u32, generation: u32, res: Recorded) -> Check {
    if ticket_generation != generation {
        ensure_eq!(res, Recorded::Stale, "a ticket of an earlier generation");
    }
    Ok(())
}

/// An observation is accepted for each of the router's `n` providers, refused for any other.
pub fn observed(provider: usize, n: usize, res: Recorded) -> Check {
    let want = if provider < n {
        Recorded::Accepted
    } else {
        Recorded::UnknownProvider
    };
    ensure_eq!(res, want, "an observation of provider {provider} of {n}");
    Ok(())
}

/// Which steps of a run get the full checks ([`state`]: `Router::invariant_violation`, O(P · B)
/// with the engine's debug recounts, and every view, O(P · B) again), so that a fuzz target can
/// run thousands of long inputs a second. The choice is deterministic (a finding reproduces):
///
/// - every `every`-th step (1: every step, as the property tests do);
/// - every step after which the engine changed state in a way it reports (it queued or dropped
///   an event: a trip, a probe, a ramp stage, a throttle, a recovery), where the cached
///   deadlines and the circuit fields are rebuilt;
/// - the last step of every input ([`Sample::last`]), so a violation that persists (drifted
///   window totals, a stale cached deadline, a broken circuit field) is caught in the input
///   that caused it, and the fuzzer's minimizer keeps it.
///
/// The cheap promises (outputs, picks, health checks, events, the clock) are still checked after
/// every step, and the engine's own `debug_assertions` checks of the changed provider still run
/// inside every call.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    every: u32,
    step: u32,
    /// `pending_events + dropped_events` after the previous full check decision.
    reported: u64,
}

impl Sample {
    /// A full check every `every` steps (at least 1), after every reported change and at the end.
    #[must_use]
    pub fn every(every: u32) -> Sample {
        Sample {
            every: every.max(1),
            step: 0,
            reported: 0,
        }
    }

    /// [`Sample::every`] `FAILOVER_FULL_CHECK_EVERY` steps when that variable is set (1 restores
    /// the full check after every step, for a slow thorough soak), else every `default` steps.
    #[must_use]
    pub fn from_env(default: u32) -> Sample {
        let every = std::env::var("FAILOVER_FULL_CHECK_EVERY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default);
        Sample::every(every)
    }

    /// Whether the step just taken on `r` gets the full checks. Call once per step.
    pub fn full<const P: usize, const B: usize, const E: usize>(
        &mut self,
        r: &Router<P, B, E>,
    ) -> bool {
        let reported = r.pending_events() as u64 + r.dropped_events();
        let changed = reported != self.reported;
        self.reported = reported;
        self.step = self.step.wrapping_add(1);
        changed || self.step.is_multiple_of(self.every)
    }

    /// Resets the change detector after the caller drained events from `r` (a drain is not a
    /// change).
    pub fn drained<const P: usize, const B: usize, const E: usize>(&mut self, r: &Router<P, B, E>) {
        self.reported = r.pending_events() as u64 + r.dropped_events();
    }

    /// Steps taken so far.
    #[must_use]
    pub fn steps(&self) -> u64 {
        u64::from(self.step)
    }
}
