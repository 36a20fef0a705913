//! One provider: its name, health (window and triggers), circuit, cached deadline and idle health
//! check, and every transition of that state. The router only routes between providers and keeps
//! the event queue; everything that happens to one provider happens here.

use crate::circuit::Circuit;
use crate::event::{CircuitState, Events, ProviderId, Reason};
use crate::headroom::Headroom;
use crate::outcome::{Outcome, OutcomeKind};
use crate::pacing::Pacing;
use crate::policy::{Compiled, MAX_NAME_LEN, ProbeMode};
use crate::ticket::{Recorded, TicketKind};
use crate::triggers::Health;
use crate::view::ProviderView;
use crate::window::WindowStats;

/// An idle health check handed out and not yet reported.
#[derive(Clone, Copy, Debug)]
struct IdleCheck {
    seq: u32,
    issued: u64,
    /// When it expires (its ticket is then stale and a new check may be asked for), unless that
    /// is its issue time (at `u64::MAX`): nothing expires at the instant it was issued.
    until: u64,
}

impl IdleCheck {
    fn expiry(&self) -> Option<u64> {
        (self.until > self.issued).then_some(self.until)
    }

    fn expired(&self, now: u64) -> bool {
        now >= self.until && now > self.issued
    }
}

/// One provider's whole state.
#[derive(Clone, Debug)]
pub(crate) struct Provider<const B: usize> {
    pub name: heapless::String<MAX_NAME_LEN>,
    pub health: Health<B>,
    pub circuit: Circuit,
    /// The rate-limit headroom hint (not a state: see `pacing`).
    pub pace: Pacing,
    /// Cached [`Provider::due_at`]: the earliest time a transition of this provider is due
    /// (`u64::MAX`: none). Kept current by [`Provider::maintain`] and the router's `refresh`.
    pub deadline: u64,
    /// When an outcome was last recorded for it (for idle health checks).
    last_seen: u64,
    /// The outstanding idle health check.
    check: Option<IdleCheck>,
    check_seq: u32,
}

impl<const B: usize> Provider<B> {
    /// Clears the provider's state by hand (`Router::reset`): window, baseline, circuit, strikes
    /// and idle check as new, seen at `now`. The circuit generation moves on, so a ticket issued
    /// before is stale.
    pub(crate) fn reset(&mut self, p: &Compiled, now: u64) {
        let generation = self.circuit.generation.wrapping_add(1);
        let name = core::mem::take(&mut self.name);
        *self = Provider::new(name, p);
        self.circuit.generation = generation;
        self.last_seen = now;
        self.deadline = self.due_at(p);
    }

    pub(crate) fn new(name: heapless::String<MAX_NAME_LEN>, p: &Compiled) -> Self {
        Provider {
            name,
            health: Health::new(p),
            circuit: Circuit::new(),
            pace: Pacing::default(),
            deadline: u64::MAX,
            last_seen: 0,
            check: None,
            check_seq: 0,
        }
    }

    /// The earliest time [`Provider::maintain`] has something to do (`u64::MAX`: never): the
    /// circuit's timers and, while the provider takes traffic, the timeout breach's sustain end.
    pub(crate) fn due_at(&self, p: &Compiled) -> u64 {
        self.due(p).unwrap_or(u64::MAX)
    }

    /// [`Provider::due_at`] as an option: `None` when nothing is scheduled, `Some(u64::MAX)` for a
    /// transition scheduled at the end of time (an input at `u64::MAX` performs it). What the view
    /// and `poll_timeout` report, so that both say the same thing. Includes the pacing hint's
    /// expiry.
    pub(crate) fn due(&self, p: &Compiled) -> Option<u64> {
        let d = self.circuit.due(p);
        let d = match (
            self.circuit.takes_traffic(),
            self.health.timeout_deadline(p),
        ) {
            (true, Some(t)) => Some(d.map_or(t, |d| d.min(t))),
            _ => d,
        };
        match self.pace.due() {
            Some(t) => Some(d.map_or(t, |d| d.min(t))),
            None => d,
        }
    }

    /// Takes every request offered to it: healthy, not throttled, not paced.
    #[inline]
    pub(crate) fn takes_all(&self) -> bool {
        self.circuit.takes_all() && !self.pace.active
    }

    /// Takes no new traffic at all for now: throttled (or benched), or paced at zero headroom.
    #[inline]
    pub(crate) fn held_back(&self) -> bool {
        self.circuit.throttled || self.pace.exhausted()
    }

    /// When the provider may take traffic again (`now` if it can now): the circuit's answer, or
    /// later the expiry of a pacing hint at zero headroom.
    pub(crate) fn available_at(&self, p: &Compiled, now: u64) -> u64 {
        let at = self.circuit.available_at(p, now);
        if self.pace.exhausted() {
            at.max(self.pace.until)
        } else {
            at
        }
    }

    /// Applies one answer's rate-limit headers (see `pacing`). Returns whether the deadline or the
    /// routing may have changed. Never touches the circuit or the throttle.
    pub(crate) fn observe_headroom<const E: usize>(
        &mut self,
        p: &Compiled,
        id: ProviderId,
        h: &Headroom,
        now: u64,
        events: &mut Events<E>,
    ) -> bool {
        self.pace.observe(p, id, h, now, events)
    }

    /// Performs the transitions due at `now` (bounded: a few steps) and refreshes the cached
    /// deadline.
    pub(crate) fn maintain<const E: usize>(
        &mut self,
        p: &Compiled,
        id: ProviderId,
        now: u64,
        events: &mut Events<E>,
    ) {
        for _ in 0..4 {
            self.circuit.maintain(p, id, now, events);
            self.pace.maintain(id, now, events);
            if self.circuit.takes_traffic()
                && self.health.timeout_deadline(p).is_some_and(|d| d <= now)
            {
                self.health
                    .advance(p, now, self.circuit.state == CircuitState::Healthy);
                let s = self.health.stats(p);
                if let Some(r) = self.health.check_timeouts(p, &s, now) {
                    self.trip(p, id, r, now, events);
                }
            }
            self.deadline = self.due_at(p);
            if self.deadline > now {
                break;
            }
        }
    }

    /// The fast path of `record`: an ordinary success of the current generation at a healthy
    /// provider that provably trips nothing (see `Health::record_quiet_success`). False when the
    /// general path must handle it; then nothing changed.
    #[inline(always)]
    pub(crate) fn record_quiet_success(
        &mut self,
        generation: u32,
        latency_ms: u32,
        now: u64,
    ) -> bool {
        if self.circuit.generation == generation
            && self.circuit.state == CircuitState::Healthy
            && self.health.record_quiet_success(now, latency_ms)
        {
            self.last_seen = now;
            self.circuit.note_success();
            return true;
        }
        false
    }

    /// Checks a ticket's claim before its outcome is applied: `Ok(probe)` says whether the
    /// outcome is a probe's; `Err(Stale)` for an earlier generation, an expired or unknown probe
    /// permit or idle check. Releases the permit or the idle check it claims.
    pub(crate) fn admit(
        &mut self,
        kind: TicketKind,
        generation: u32,
        probe_seq: u32,
        now: u64,
    ) -> Result<bool, Recorded> {
        if generation != self.circuit.generation {
            return Err(Recorded::Stale);
        }
        match kind {
            TicketKind::Request => Ok(false),
            TicketKind::HealthCheck if self.circuit.state == CircuitState::Healthy => {
                // A check of an idle healthy provider: counted like a request.
                match self.check {
                    Some(c) if c.seq == probe_seq && !c.expired(now) => {
                        self.check = None;
                        Ok(false)
                    }
                    _ => Err(Recorded::Stale),
                }
            }
            _ if self.circuit.release_permit(probe_seq) => Ok(true),
            _ => Err(Recorded::Stale),
        }
    }

    /// Applies one counted outcome (`probe`: it is a probe's or a health check's). Returns
    /// whether the cached deadline may have changed (the router then refreshes it).
    pub(crate) fn apply<const E: usize>(
        &mut self,
        p: &Compiled,
        id: ProviderId,
        outcome: Outcome,
        probe: bool,
        now: u64,
        events: &mut Events<E>,
    ) -> bool {
        let state = self.circuit.state;
        let before = self.timer_inputs();
        self.last_seen = now;
        // The baseline learns while healthy; a throttle is not a state.
        self.health.advance(p, now, state == CircuitState::Healthy);
        if outcome.retry_after_ms.is_some() || outcome.kind == OutcomeKind::RateLimited {
            self.circuit.throttle(p, id, &outcome, now, events);
        }
        if outcome.kind.benches() {
            self.circuit.bench(p, id, outcome.kind, now, events);
        }
        if outcome.kind == OutcomeKind::Success {
            // Any success ends a run of 429s, even one that carries a Retry-After.
            self.circuit.note_success();
        }
        let judged = self.circuit.takes_traffic();
        let mut reason: Option<Reason> = self.health.record(p, &outcome, now, judged);
        if state == CircuitState::Ramping {
            self.circuit.ramp.count(p, outcome.kind);
            if reason.is_none() {
                reason = crate::ramp::rollback(p, &self.health.stats(p), outcome.kind);
            }
        }
        if let Some(r) = reason {
            self.trip(p, id, r, now, events);
        } else if state == CircuitState::Probing && probe {
            // A probe that succeeds slower than the degradation limit answers, but too slowly to
            // show recovery on its own.
            let slow = self.health.degraded_latency(outcome.latency_ms);
            if p.is_failure(outcome.kind) {
                self.circuit.probe_failed(p, id, outcome.kind, now, events);
            } else if outcome.kind == OutcomeKind::Success
                && self.circuit.probe_succeeded(p, id, slow, now, events)
            {
                self.health.reset(p);
            }
        }
        // The deadline depends on the state, the throttle, the timeout breach and (ramping,
        // probing) the stage's samples and the probe permits; a healthy provider whose throttle
        // and breach did not move keeps its deadline.
        self.circuit.state != state
            || state != CircuitState::Healthy
            || before != self.timer_inputs()
    }

    /// What a healthy provider's deadline depends on besides its state.
    fn timer_inputs(&self) -> (bool, u64, Option<u64>) {
        (
            self.circuit.throttled,
            self.circuit.throttled_until,
            self.health.timeout_breach_since,
        )
    }

    fn trip<const E: usize>(
        &mut self,
        p: &Compiled,
        id: ProviderId,
        r: Reason,
        now: u64,
        events: &mut Events<E>,
    ) {
        self.health.timeout_breach_since = None;
        self.circuit.trip(p, id, r, now, events);
    }

    /// When this provider next needs a health check, if it will: a probe permit free in the
    /// `health_checks` probe mode (due at `now`), or an idle healthy provider under
    /// `health_check_interval_ms`.
    pub(crate) fn check_due_at(&self, p: &Compiled, now: u64) -> Option<u64> {
        if self.held_back() {
            return None;
        }
        match self.circuit.state {
            CircuitState::Probing if p.probe_mode == ProbeMode::HealthChecks => {
                self.circuit.has_free_permit(p).then_some(now)
            }
            CircuitState::Healthy => {
                let idle = self.last_seen.saturating_add(p.health_check_interval_ms?);
                match self.check {
                    None => Some(idle),
                    Some(c) => c.expiry().map(|e| idle.max(e)),
                }
            }
            _ => None,
        }
    }

    /// Hands out a health check due at `now`: its sequence number, and whether it took a probe
    /// permit (the deadline then changed). `None` when none is due.
    pub(crate) fn issue_check(&mut self, p: &Compiled, now: u64) -> Option<(u32, bool)> {
        if self.check_due_at(p, now).is_none_or(|due| due > now) {
            return None;
        }
        if self.circuit.state == CircuitState::Healthy {
            let seq = self.check_seq;
            self.check_seq = seq.wrapping_add(1);
            self.check = Some(IdleCheck {
                seq,
                issued: now,
                until: now.saturating_add(p.probe_timeout_ms),
            });
            return Some((seq, false));
        }
        self.circuit.take_permit(p, now).map(|seq| (seq, true))
    }

    /// The provider's state as plain data at `now` (the router's latest time).
    pub(crate) fn view(&self, p: &Compiled, id: ProviderId, now: u64) -> ProviderView<'_> {
        let mut v = self.state_view(p, id);
        v.window = self.health.window.stats_at(now, p.count_client_errors);
        let w = &self.health.window;
        v.latency_ms = w.latency_quantile_at(now, p.latency_quantile_ppm);
        v.latency_p50_ms = w.latency_quantile_at(now, 500_000);
        v.latency_p90_ms = w.latency_quantile_at(now, 900_000);
        v.latency_p99_ms = w.latency_quantile_at(now, 990_000);
        v
    }

    /// [`Provider::view`] without the window's figures and latency quantiles (zero and `None`):
    /// the circuit, throttle and pacing state, O(1).
    pub(crate) fn state_view(&self, p: &Compiled, id: ProviderId) -> ProviderView<'_> {
        let c = &self.circuit;
        ProviderView {
            id,
            name: self.name.as_str(),
            state: c.state,
            share_ppm: if self.pace.exhausted() {
                0
            } else {
                self.pace.scale(p, c.share_ppm(p))
            },
            throttled_until_ms: c.throttled.then_some(c.throttled_until),
            open_until_ms: (c.state == CircuitState::Open).then_some(c.open_until),
            ramp_stage: (c.state == CircuitState::Ramping).then_some(c.ramp.stage as u8),
            strikes: c.strikes,
            trips: c.trips,
            generation: c.generation,
            probes_in_flight: c.probes_in_flight(),
            probe_successes: if c.state == CircuitState::Probing {
                c.probe_ok
            } else {
                0
            },
            consecutive_failures: self.health.runs.hard,
            window: WindowStats::default(),
            latency_ms: None,
            baseline_ms: self.health.baseline.value_ms(),
            latency_p50_ms: None,
            latency_p90_ms: None,
            latency_p99_ms: None,
            next_transition_ms: self.due(p),
            paced_headroom_ppm: self.pace.active.then_some(self.pace.headroom_ppm),
            paced_until_ms: self.pace.due(),
            isolated: false,
        }
    }

    /// The first internal invariant of this provider that does not hold at `now`, if any.
    pub(crate) fn violation(&self, p: &Compiled, now: u64) -> Option<&'static str> {
        if let Some(v) = self.circuit.violation(p) {
            return Some(v);
        }
        if let Some(v) = self.pace.violation(p) {
            return Some(v);
        }
        if self.deadline != self.due_at(p) {
            return Some("cached provider deadline is out of date");
        }
        if self.deadline <= now && self.deadline != u64::MAX {
            return Some("a due transition was not performed");
        }
        #[cfg(debug_assertions)]
        self.health.check_invariants(p);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::Provider;
    use crate::event::CircuitState;
    use crate::policy::Policy;

    /// The provider's consistency check reports its circuit's and its pacing's first, then a
    /// stale cached deadline, then a transition left undone once due (none of these reachable
    /// through the router, whose runs the invariant suites check).
    #[test]
    fn violation_names_each_broken_part() {
        let p = Policy::default().compile(60).unwrap();
        let fresh = || Provider::<60>::new(heapless::String::try_from("a").unwrap(), &p);
        assert_eq!(fresh().violation(&p, 0), None);
        let mut x = fresh();
        x.circuit.state = CircuitState::Open;
        assert_eq!(
            x.violation(&p, 0),
            Some("circuit left healthy without a trip")
        );
        let mut x = fresh();
        x.pace.active = true;
        x.pace.headroom_ppm = p.pace_watermark_ppm.unwrap();
        x.pace.until = 10;
        assert_eq!(x.violation(&p, 0), Some("paced at or above the watermark"));
        let mut x = fresh();
        x.deadline = 5;
        assert_eq!(
            x.violation(&p, 0),
            Some("cached provider deadline is out of date")
        );
        // Throttled until 100, with the deadline cached: fine before 100, not at 100.
        let mut x = fresh();
        x.circuit.throttled = true;
        x.circuit.throttled_until = 100;
        x.deadline = x.due_at(&p);
        assert_eq!(x.deadline, 100);
        assert_eq!(x.violation(&p, 99), None);
        assert_eq!(
            x.violation(&p, 100),
            Some("a due transition was not performed")
        );
        // Nothing scheduled: nothing is ever due, even at the end of time.
        assert_eq!(fresh().violation(&p, u64::MAX), None);
    }
}
