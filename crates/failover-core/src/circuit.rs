//! One provider's circuit: healthy → open → probing → ramping → healthy, the growing and decaying
//! open duration, probe permits that expire, and the throttle (which is not a state: a throttled
//! provider keeps its circuit state and takes no traffic until the throttle ends).

use crate::event::{CircuitState, EventKind, Events, ProviderId, Reason, Trigger};
use crate::outcome::{Outcome, OutcomeKind};
use crate::policy::{Compiled, MAX_PROBES, MAX_STRIKES};
use crate::ramp::{Ramp, splitmix64};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ProbeSlot {
    active: bool,
    seq: u32,
    /// When it was handed out: nothing expires at the instant it was issued (at `u64::MAX`,
    /// where the deadline saturates to the issue time, a probe therefore never expires).
    issued: u64,
    deadline: u64,
}

impl ProbeSlot {
    fn expired(&self, now: u64) -> bool {
        self.active && now >= self.deadline && now > self.issued
    }

    /// When it expires, if it can.
    fn expiry(&self) -> Option<u64> {
        (self.active && self.deadline > self.issued).then_some(self.deadline)
    }
}

/// The ramp stage at `now` of a ramp that started at `start`, and when that stage began: every
/// stage lasts its dwell (past the last stage: the ramp's length, i.e. done).
pub(crate) fn shared_stage(p: &Compiled, start: u64, now: u64) -> (usize, u64) {
    let mut since = start;
    for (i, &(_, dwell)) in p.ramp.iter().enumerate() {
        let end = since.saturating_add(dwell);
        if dwell == 0 || now < end {
            return (i, since);
        }
        since = end;
    }
    (p.ramp.len(), since)
}

/// A provider's circuit.
#[derive(Clone, Debug)]
pub(crate) struct Circuit {
    pub state: CircuitState,
    /// Bumped on every trip and when the ramp starts: tickets from an earlier generation are stale.
    pub generation: u32,
    /// Trip count that sets the next open duration; decays while healthy.
    pub strikes: u32,
    /// All trips ever (seeds the jitter).
    pub trips: u32,
    pub open_until: u64,
    /// Start of the current healthy stretch (for backoff decay).
    pub healthy_since: u64,
    probes: [ProbeSlot; MAX_PROBES],
    /// Successful probes in this probing phase.
    pub probe_ok: u32,
    /// Of those, successes slower than the latency-degradation limit.
    probe_slow: u32,
    next_seq: u32,
    pub ramp: Ramp,
    pub throttled: bool,
    pub throttled_until: u64,
    throttle_streak: u32,
    /// Fleet mode: another instance holds this provider's probe lease, so this one hands out no
    /// probe permit (set by `crate::fleet` on every merge; false outside fleet mode).
    pub probe_hold: bool,
}

impl Circuit {
    pub(crate) fn new() -> Self {
        Circuit {
            state: CircuitState::Healthy,
            generation: 0,
            strikes: 0,
            trips: 0,
            open_until: 0,
            healthy_since: 0,
            probes: [ProbeSlot::default(); MAX_PROBES],
            probe_ok: 0,
            probe_slow: 0,
            next_seq: 0,
            ramp: Ramp::default(),
            throttled: false,
            throttled_until: 0,
            throttle_streak: 0,
            probe_hold: false,
        }
    }

    /// The share of offered traffic this provider takes now, in ppm (0 while open, probing or
    /// throttled).
    pub(crate) fn share_ppm(&self, p: &Compiled) -> u32 {
        if self.throttled {
            return 0;
        }
        match self.state {
            CircuitState::Healthy => crate::ramp::FULL_SHARE,
            CircuitState::Ramping => self.ramp.share_ppm(p),
            CircuitState::Open | CircuitState::Probing => 0,
        }
    }

    /// Healthy or ramping: the states in which the provider takes (some) traffic and its
    /// outcomes are judged by the triggers.
    #[inline]
    pub(crate) fn takes_traffic(&self) -> bool {
        matches!(self.state, CircuitState::Healthy | CircuitState::Ramping)
    }

    /// Healthy and not throttled: takes every request offered to it.
    #[inline]
    pub(crate) fn takes_all(&self) -> bool {
        self.state == CircuitState::Healthy && !self.throttled
    }

    pub(crate) fn probes_in_flight(&self) -> u32 {
        self.probes.iter().filter(|s| s.active).count() as u32
    }

    pub(crate) fn has_free_permit(&self, p: &Compiled) -> bool {
        self.state == CircuitState::Probing
            && !self.probe_hold
            && (self.probes_in_flight() as usize) < p.probe_max_in_flight
    }

    /// Takes a probe permit, if one is free. Returns the probe's sequence number.
    pub(crate) fn take_permit(&mut self, p: &Compiled, now: u64) -> Option<u32> {
        if !self.has_free_permit(p) {
            return None;
        }
        let slot = self.probes.iter_mut().find(|s| !s.active)?;
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        *slot = ProbeSlot {
            active: true,
            seq,
            issued: now,
            deadline: now.saturating_add(p.probe_timeout_ms),
        };
        Some(seq)
    }

    /// Frees the permit of probe `seq`. False if it is not outstanding (expired, or never issued).
    pub(crate) fn release_permit(&mut self, seq: u32) -> bool {
        match self.probes.iter_mut().find(|s| s.active && s.seq == seq) {
            Some(s) => {
                s.active = false;
                true
            }
            None => false,
        }
    }

    /// When the provider may take traffic again (`now` if it can now).
    pub(crate) fn available_at(&self, p: &Compiled, now: u64) -> u64 {
        let state_at = match self.state {
            CircuitState::Healthy | CircuitState::Ramping => now,
            CircuitState::Open => self.open_until,
            CircuitState::Probing => {
                if self.has_free_permit(p) {
                    now
                } else {
                    self.probes
                        .iter()
                        .filter_map(ProbeSlot::expiry)
                        .min()
                        .unwrap_or(u64::MAX)
                }
            }
        };
        let throttle_at = if self.throttled {
            self.throttled_until
        } else {
            now
        };
        state_at.max(throttle_at).max(now)
    }

    /// The earliest time at which [`Circuit::maintain`] has something to do (`u64::MAX`: never).
    /// The earliest time [`Circuit::maintain`] has something to do, if anything is scheduled
    /// (possibly at `u64::MAX`: a deadline that saturated there is still a deadline, performed by
    /// an input at `u64::MAX`).
    pub(crate) fn due(&self, p: &Compiled) -> Option<u64> {
        let mut d: Option<u64> = None;
        let mut at = |x: u64| d = Some(d.map_or(x, |y| y.min(x)));
        if self.throttled {
            at(self.throttled_until);
        }
        match self.state {
            CircuitState::Open => at(self.open_until),
            CircuitState::Probing => {
                for e in self.probes.iter().filter_map(ProbeSlot::expiry) {
                    at(e);
                }
            }
            CircuitState::Ramping => {
                if let Some(end) = self.ramp.stage_end(p) {
                    at(end);
                }
            }
            CircuitState::Healthy => {
                if self.strikes > 0 {
                    at(self.healthy_since.saturating_add(p.backoff_decay_ms));
                }
            }
        }
        d
    }

    fn open_duration(&self, p: &Compiled, id: ProviderId) -> u64 {
        let idx = (self.strikes.max(1) as usize - 1).min(MAX_STRIKES - 1);
        let base = p.open_ladder[idx];
        if p.jitter_ppm == 0 {
            return base;
        }
        let j = u64::from(p.jitter_ppm);
        let r = splitmix64(
            p.seed
                ^ (id.index() as u64).wrapping_mul(0xA24B_AED4_963E_E407)
                ^ u64::from(self.trips).wrapping_mul(0x9FB2_1C65_1E98_DF25),
        ) % (2 * j + 1);
        // Factor in [1 − j, 1 + j], in ppm.
        let factor = 1_000_000 - j + r;
        let d = (u128::from(base) * u128::from(factor) / 1_000_000) as u64;
        d.clamp(1, p.open_max_ms)
    }

    /// Opens the circuit for the next, longer, open duration.
    pub(crate) fn trip<const E: usize>(
        &mut self,
        p: &Compiled,
        id: ProviderId,
        reason: Reason,
        now: u64,
        ev: &mut Events<E>,
    ) {
        let from = self.state;
        self.strike(p);
        let until = now.saturating_add(self.open_duration(p, id));
        self.set_open(id, reason, from, until, now, ev);
    }

    /// Opens the circuit until `until`, a time another instance of the fleet decided (fleet mode:
    /// the shared register's open-until). A strike and a trip like any open.
    pub(crate) fn adopt_open<const E: usize>(
        &mut self,
        p: &Compiled,
        id: ProviderId,
        reason: Reason,
        until: u64,
        now: u64,
        ev: &mut Events<E>,
    ) {
        let from = self.state;
        self.strike(p);
        self.set_open(id, reason, from, until, now, ev);
    }

    /// Counts a trip: one more strike (up to the cap), a new generation.
    fn strike(&mut self, p: &Compiled) {
        // Past the cap a further strike would not lengthen the open duration, only the decay.
        self.strikes = self.strikes.saturating_add(1).min(p.max_strikes);
        self.trips = self.trips.saturating_add(1);
        self.generation = self.generation.wrapping_add(1);
    }

    fn set_open<const E: usize>(
        &mut self,
        id: ProviderId,
        reason: Reason,
        from: CircuitState,
        until: u64,
        now: u64,
        ev: &mut Events<E>,
    ) {
        // The longer of two deadlines wins (a throttle stays in force on its own).
        self.open_until = until;
        self.state = CircuitState::Open;
        self.probes = [ProbeSlot::default(); MAX_PROBES];
        self.probe_ok = 0;
        self.probe_slow = 0;
        ev.push(
            now,
            id,
            EventKind::Opened {
                reason,
                from,
                until_ms: until,
                strikes: self.strikes,
            },
        );
    }

    /// Applies a 429 or a `Retry-After`: benches the provider until then (the later deadline wins).
    pub(crate) fn throttle<const E: usize>(
        &mut self,
        p: &Compiled,
        id: ProviderId,
        outcome: &Outcome,
        now: u64,
        ev: &mut Events<E>,
    ) {
        let (dur, told) = match outcome.retry_after_ms {
            Some(ms) => (ms.min(p.max_retry_after_ms), true),
            None if outcome.kind == OutcomeKind::RateLimited => {
                let shift = self.throttle_streak.min(63);
                let d = p
                    .throttle_base_ms
                    .checked_shl(shift)
                    .filter(|d| d >> shift == p.throttle_base_ms)
                    .unwrap_or(u64::MAX)
                    .min(p.throttle_max_ms);
                self.throttle_streak = self.throttle_streak.saturating_add(1);
                (d, false)
            }
            None => return,
        };
        let until = now.saturating_add(dur);
        let current = if self.throttled {
            self.throttled_until
        } else {
            now
        };
        if until > current {
            self.throttled = true;
            self.throttled_until = until;
            ev.push(
                now,
                id,
                EventKind::Throttled {
                    until_ms: until,
                    retry_after: told,
                },
            );
        }
    }

    /// Benches the provider for the policy's `bench_ms` after `cause` (credentials rejected,
    /// quota exhausted): it takes no traffic until then, on the throttle's timer (the later end
    /// wins), with no strike, probe or ramp.
    pub(crate) fn bench<const E: usize>(
        &mut self,
        p: &Compiled,
        id: ProviderId,
        cause: OutcomeKind,
        now: u64,
        ev: &mut Events<E>,
    ) {
        let until = now.saturating_add(p.bench_ms);
        if !self.throttled || until > self.throttled_until {
            self.throttled = true;
            self.throttled_until = until;
            ev.push(
                now,
                id,
                EventKind::Benched {
                    until_ms: until,
                    cause,
                },
            );
        }
    }

    /// A success ends a run of 429s: the next one starts the throttle backoff from the base again.
    pub(crate) fn note_success(&mut self) {
        self.throttle_streak = 0;
    }

    /// Counts a successful probe; starts the ramp when enough have succeeded. Returns true when the
    /// ramp started (the caller resets the window).
    ///
    /// `slow`: it succeeded slower than the latency-degradation limit. Recovery needs
    /// `probe_successes` successful probes of which more than half were faster than that limit:
    /// a provider that answers, but mostly at several times its usual latency, has not recovered,
    /// and the phase fails like a failed probe (reopen with the next backoff). A majority, not
    /// every probe, because LLM latencies are heavy-tailed: one healthy call in ten can take 3x
    /// the median.
    pub(crate) fn probe_succeeded<const E: usize>(
        &mut self,
        p: &Compiled,
        id: ProviderId,
        slow: bool,
        now: u64,
        ev: &mut Events<E>,
    ) -> bool {
        self.probe_ok = self.probe_ok.saturating_add(1);
        self.probe_slow = self.probe_slow.saturating_add(u32::from(slow));
        if self.probe_ok < p.probe_successes {
            return false;
        }
        if self.probe_slow.saturating_mul(2) > self.probe_ok {
            let reason = Reason {
                trigger: Trigger::ProbeFailed,
                observed: u64::from(self.probe_ok - self.probe_slow),
                threshold: u64::from(p.probe_successes),
                volume: u64::from(self.probe_ok),
                outcome: Some(OutcomeKind::Success),
            };
            self.trip(p, id, reason, now, ev);
            return false;
        }
        self.generation = self.generation.wrapping_add(1);
        self.probes = [ProbeSlot::default(); MAX_PROBES];
        self.enter_stage(p, id, 0, now, ev);
        true
    }

    /// A probe failed: reopen with the next backoff.
    pub(crate) fn probe_failed<const E: usize>(
        &mut self,
        p: &Compiled,
        id: ProviderId,
        kind: OutcomeKind,
        now: u64,
        ev: &mut Events<E>,
    ) {
        let reason = Reason {
            trigger: Trigger::ProbeFailed,
            observed: u64::from(self.probe_ok),
            threshold: u64::from(p.probe_successes),
            volume: u64::from(self.probe_ok) + 1,
            outcome: Some(kind),
        };
        self.trip(p, id, reason, now, ev);
    }

    fn enter_stage<const E: usize>(
        &mut self,
        p: &Compiled,
        id: ProviderId,
        stage: usize,
        now: u64,
        ev: &mut Events<E>,
    ) {
        let last = p.ramp.len() - 1;
        let done = stage > last || (stage == last && p.ramp[last].1 == 0);
        if done {
            self.state = CircuitState::Healthy;
            self.healthy_since = now;
            ev.push(now, id, EventKind::Recovered);
            return;
        }
        let credit = if self.state == CircuitState::Ramping {
            self.ramp.credit
        } else {
            0
        };
        self.state = CircuitState::Ramping;
        self.ramp = Ramp {
            stage,
            credit,
            ..Ramp::start(now)
        };
        ev.push(
            now,
            id,
            EventKind::RampStage {
                stage: stage as u8,
                share_ppm: p.ramp[stage].0,
            },
        );
    }

    /// Fleet mode: puts the circuit on the fleet's shared ramp that started at `ramp_start`, at the
    /// stage every instance computes from that start (each stage lasts its dwell). From open or
    /// probing it starts ramping (a new generation: outstanding probes are stale); while ramping
    /// it only moves forward to that stage. Returns whether the state or the stage changed (the
    /// caller then resets the window when the ramp began).
    pub(crate) fn follow_ramp<const E: usize>(
        &mut self,
        p: &Compiled,
        id: ProviderId,
        ramp_start: u64,
        now: u64,
        ev: &mut Events<E>,
    ) -> bool {
        let (stage, since) = shared_stage(p, ramp_start, now);
        match self.state {
            CircuitState::Open | CircuitState::Probing => {
                self.generation = self.generation.wrapping_add(1);
                self.probes = [ProbeSlot::default(); MAX_PROBES];
            }
            CircuitState::Ramping if stage > self.ramp.stage => {}
            _ => return false,
        }
        self.enter_stage(p, id, stage, now, ev);
        if self.state == CircuitState::Ramping {
            self.ramp.since = since;
        }
        true
    }

    /// Performs every transition that is due at `now`. Spurious calls are a harmless no-op.
    /// Bounded work: a fixed number of steps, whatever the gap since the last call.
    pub(crate) fn maintain<const E: usize>(
        &mut self,
        p: &Compiled,
        id: ProviderId,
        now: u64,
        ev: &mut Events<E>,
    ) {
        if self.state == CircuitState::Probing {
            for s in self.probes.iter_mut() {
                if s.expired(now) {
                    s.active = false;
                    ev.push(now, id, EventKind::ProbeExpired);
                }
            }
        }
        if self.throttled && now >= self.throttled_until {
            self.throttled = false;
            ev.push(now, id, EventKind::Unthrottled);
        }
        match self.state {
            CircuitState::Open if now >= self.open_until => {
                self.state = CircuitState::Probing;
                self.probe_ok = 0;
                self.probe_slow = 0;
                ev.push(now, id, EventKind::Probing);
            }
            CircuitState::Ramping => {
                if let Some(end) = self.ramp.stage_end(p)
                    && now >= end
                {
                    self.enter_stage(p, id, self.ramp.stage + 1, now, ev);
                }
            }
            CircuitState::Healthy if self.strikes > 0 => {
                let elapsed = now.saturating_sub(self.healthy_since);
                let periods = elapsed / p.backoff_decay_ms;
                if periods > 0 {
                    let drop = periods.min(u64::from(self.strikes)) as u32;
                    self.strikes -= drop;
                    self.healthy_since = self
                        .healthy_since
                        .saturating_add(periods.saturating_mul(p.backoff_decay_ms));
                    ev.push(
                        now,
                        id,
                        EventKind::BackoffDecayed {
                            strikes: self.strikes,
                        },
                    );
                }
            }
            _ => {}
        }
    }

    /// Consistency of the circuit's own fields; `None` when all hold.
    pub(crate) fn violation(&self, p: &Compiled) -> Option<&'static str> {
        let in_flight = self.probes_in_flight() as usize;
        if self.state != CircuitState::Probing && in_flight > 0 {
            return Some("probe permits outstanding outside the probing state");
        }
        if in_flight > p.probe_max_in_flight {
            return Some("more probes in flight than probe_max_in_flight");
        }
        if self.state == CircuitState::Ramping && self.ramp.stage >= p.ramp.len() {
            return Some("ramp stage past the end of the ramp");
        }
        if self.ramp.credit >= crate::ramp::FULL_SHARE {
            return Some("ramp credit not below one request");
        }
        if self.strikes as usize > MAX_STRIKES {
            return Some("strikes above the cap");
        }
        if self.state != CircuitState::Healthy && self.trips == 0 {
            return Some("circuit left healthy without a trip");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::shared_stage;
    use crate::policy::Policy;

    /// Every instance computes the same stage from the shared ramp start: a stage ends exactly at
    /// its dwell (the next one starts then), and past the last stage the ramp is done.
    #[test]
    fn shared_stage_advances_exactly_at_each_dwell() {
        // The default ramp: 5 %, 25 %, 50 %, 100 %, 5 min each before the last.
        let p = Policy::default().compile(60).unwrap();
        let dwell = p.ramp[0].1;
        assert!(dwell > 0 && p.ramp.len() >= 2);
        let start = 1_000;
        assert_eq!(shared_stage(&p, start, start), (0, start));
        assert_eq!(shared_stage(&p, start, start + dwell - 1), (0, start));
        assert_eq!(shared_stage(&p, start, start + dwell), (1, start + dwell));
        // The last stage (dwell 0) holds for ever.
        let last = p.ramp.len() - 1;
        let to_last: u64 = p.ramp[..last].iter().map(|s| s.1).sum();
        assert_eq!(
            shared_stage(&p, start, start + to_last),
            (last, start + to_last)
        );
        assert_eq!(shared_stage(&p, start, u64::MAX), (last, start + to_last));
    }

    /// The consistency check fires on each field it guards: a circuit broken in one field at a
    /// time (none of these states is reachable through the router, whose runs the invariant
    /// suites check) is reported with that field's message, and the unbroken one passes.
    #[test]
    fn violation_names_each_broken_field() {
        use super::{Circuit, MAX_STRIKES};
        use crate::event::CircuitState;
        use crate::ramp::FULL_SHARE;
        let p = Policy {
            probe_max_in_flight: 2,
            ..Policy::default()
        }
        .compile(60)
        .unwrap();
        let ok = Circuit::new();
        assert_eq!(ok.violation(&p), None);
        let tripped = |state| Circuit {
            state,
            trips: 1,
            strikes: 1,
            ..Circuit::new()
        };
        for state in [
            CircuitState::Open,
            CircuitState::Probing,
            CircuitState::Ramping,
        ] {
            assert_eq!(tripped(state).violation(&p), None, "{state:?}");
        }
        let mut c = Circuit::new();
        c.probes[0].active = true;
        assert_eq!(
            c.violation(&p),
            Some("probe permits outstanding outside the probing state")
        );
        let mut c = tripped(CircuitState::Probing);
        for s in c.probes.iter_mut().take(p.probe_max_in_flight + 1) {
            s.active = true;
        }
        assert_eq!(
            c.violation(&p),
            Some("more probes in flight than probe_max_in_flight")
        );
        let mut c = tripped(CircuitState::Ramping);
        c.ramp.stage = p.ramp.len();
        assert_eq!(c.violation(&p), Some("ramp stage past the end of the ramp"));
        let mut c = Circuit::new();
        c.ramp.credit = FULL_SHARE;
        assert_eq!(c.violation(&p), Some("ramp credit not below one request"));
        let mut c = Circuit::new();
        c.strikes = MAX_STRIKES as u32 + 1;
        assert_eq!(c.violation(&p), Some("strikes above the cap"));
        let c = Circuit {
            state: CircuitState::Open,
            ..Circuit::new()
        };
        assert_eq!(c.violation(&p), Some("circuit left healthy without a trip"));
    }
}
