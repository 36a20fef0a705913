//! The model's circuit: trips, the ladder of open durations, ramps, throttles and timers.

use crate::*;

impl Model {
    // --- the circuit ------------------------------------------------------------------------------

    /// The open duration for the current trip count before jitter: `open_base_ms` multiplied by
    /// `open_multiplier` for each further trip, capped at `open_max_ms`.
    pub(crate) fn ladder(&self, strikes: u32) -> u64 {
        let max = self.s.open_max_ms as f64;
        let mut d = self.s.open_base_ms as f64;
        for _ in 1..strikes.max(1) {
            if d >= max {
                break;
            }
            d *= self.s.open_multiplier;
        }
        if d >= max {
            self.s.open_max_ms
        } else {
            d as u64
        }
    }

    /// `open_max_ms`: "Once a trip reaches the cap, further trips no longer raise the strike
    /// count".
    pub(crate) fn max_strikes(&self) -> u32 {
        (1..=MAX_STRIKES)
            .find(|&k| self.ladder(k) >= self.s.open_max_ms)
            .unwrap_or(MAX_STRIKES)
    }

    pub(crate) fn trip(&mut self, i: usize, reason: Reason, now: u64) {
        let cap = self.max_strikes();
        let (strikes, from) = {
            let p = &mut self.provs[i];
            p.strikes = (p.strikes + 1).min(cap);
            p.trips = p.trips.saturating_add(1);
            p.generation = p.generation.wrapping_add(1);
            (p.strikes, p.state)
        };
        let base = self.ladder(strikes);
        let until = if self.s.jitter == 0 {
            now.saturating_add(base)
        } else {
            // Scaled by a factor in [1 − j, 1 + j], then capped at open_max_ms (and at least 1).
            let j = u128::from(self.s.jitter);
            let lo = ((u128::from(base) * (u128::from(PPM) - j) / u128::from(PPM)) as u64)
                .clamp(1, self.s.open_max_ms);
            let hi = ((u128::from(base) * (u128::from(PPM) + j) / u128::from(PPM)) as u64)
                .clamp(1, self.s.open_max_ms);
            match self.jitter_draws.front() {
                Some(&(p, until)) if p == i => {
                    self.jitter_draws.pop_front();
                    if until < now.saturating_add(lo) || until > now.saturating_add(hi) {
                        self.broken.push(format!(
                            "provider {i}: jittered open period {} outside [{lo}, {hi}] \
                             (base {base}, jitter {} ppm)",
                            until.wrapping_sub(now),
                            self.s.jitter
                        ));
                    }
                    until
                }
                _ => now.saturating_add(base),
            }
        };
        let p = &mut self.provs[i];
        p.open_until = until;
        p.state = CircuitState::Open;
        p.probes.clear();
        p.probe_ok = 0;
        p.probe_slow = 0;
        self.emit(
            i,
            EventKind::Opened {
                reason,
                from,
                until_ms: until,
                strikes,
            },
        );
    }

    pub(crate) fn enter_stage(&mut self, i: usize, stage: usize, now: u64) {
        let last = self.s.ramp.len() - 1;
        if stage > last || (stage == last && self.s.ramp[last].1 == 0) {
            let p = &mut self.provs[i];
            p.state = CircuitState::Healthy;
            p.healthy_since = now;
            self.emit(i, EventKind::Recovered);
            return;
        }
        let p = &mut self.provs[i];
        // The split carries over from stage to stage; a new ramp starts from nothing.
        if p.state != CircuitState::Ramping {
            p.credit = 0;
        }
        p.state = CircuitState::Ramping;
        p.stage = stage;
        p.stage_since = now;
        p.stage_samples = 0;
        let share_ppm = self.s.ramp[stage].0;
        self.emit(
            i,
            EventKind::RampStage {
                stage: stage as u8,
                share_ppm,
            },
        );
    }

    /// Counts a ramped call toward the stage's minimum sample; judges the rollback on a failure:
    /// failures (hard failures and timeouts) / counted calls in the rolling window (which holds
    /// only ramped traffic), with at least `ramp_min_samples` calls.
    pub(crate) fn ramp_record(&mut self, i: usize, kind: OutcomeKind) -> Option<Reason> {
        let failed = is_hard(&self.s, kind) || kind == OutcomeKind::Timeout;
        if !(failed || kind == OutcomeKind::Success) {
            return None;
        }
        let p = &mut self.provs[i];
        p.stage_samples = p.stage_samples.saturating_add(1);
        let w = self.stats(i);
        let (f, n) = (w.failures + w.timeouts, w.volume);
        (failed && n >= u64::from(self.s.ramp_min_samples) && reaches(f, n, self.s.rollback))
            .then_some(Reason {
                trigger: Trigger::RampRollback,
                observed: rate(f, n),
                threshold: u64::from(self.s.rollback),
                volume: n,
                outcome: Some(kind),
            })
    }

    pub(crate) fn throttle(&mut self, i: usize, o: &Outcome, now: u64) {
        let s = &self.s;
        let p = &mut self.provs[i];
        let (dur, told) = match o.retry_after_ms {
            Some(ms) => (ms.min(s.max_retry_after_ms), true),
            None => {
                // Doubles with each further 429 until a success, capped.
                let d = if p.throttle_streak >= 64 {
                    u64::MAX
                } else {
                    let d = u128::from(s.throttle_base_ms) << p.throttle_streak;
                    u64::try_from(d).unwrap_or(u64::MAX)
                };
                p.throttle_streak = p.throttle_streak.saturating_add(1);
                (d.min(s.throttle_max_ms), false)
            }
        };
        let until = now.saturating_add(dur);
        // The later deadline wins.
        if until > p.throttled_until.unwrap_or(now) {
            p.throttled_until = Some(until);
            self.emit(
                i,
                EventKind::Throttled {
                    until_ms: until,
                    retry_after: told,
                },
            );
        }
    }

    /// Provider `i`'s next time-driven transition, if one is scheduled.
    pub(crate) fn due(&self, i: usize) -> Option<u64> {
        let p = &self.provs[i];
        let s = &self.s;
        let mut d: Vec<u64> = Vec::new();
        d.extend(p.throttled_until);
        match p.state {
            CircuitState::Open => d.push(p.open_until),
            CircuitState::Probing => d.extend(p.probes.iter().filter_map(|x| x.1)),
            CircuitState::Ramping => {
                if p.stage_samples >= s.ramp_min_samples {
                    d.push(p.stage_since.saturating_add(s.ramp[p.stage].1));
                }
            }
            CircuitState::Healthy => {
                if p.strikes > 0 {
                    d.push(p.healthy_since.saturating_add(s.backoff_decay_ms));
                }
            }
        }
        if matches!(p.state, CircuitState::Healthy | CircuitState::Ramping)
            && let Some(since) = p.breach_since
        {
            d.push(since.saturating_add(s.timeout_sustain_ms));
        }
        d.into_iter().min()
    }

    /// One round of provider `i`'s transitions due at `now`. Returns whether anything changed.
    pub(crate) fn timers(&mut self, i: usize, now: u64) -> bool {
        let before = self.provs[i].clone();
        let s = self.s.clone();
        if self.provs[i].state == CircuitState::Probing {
            let gone = |x: &(u32, Option<u64>)| x.1.is_some_and(|e| now >= e);
            let expired = self.provs[i].probes.iter().filter(|x| gone(x)).count();
            self.provs[i].probes.retain(|x| !gone(x));
            for _ in 0..expired {
                self.emit(i, EventKind::ProbeExpired);
            }
        }
        if let Some(u) = self.provs[i].throttled_until
            && now >= u
        {
            self.provs[i].throttled_until = None;
            self.emit(i, EventKind::Unthrottled);
        }
        let p = &self.provs[i];
        match p.state {
            CircuitState::Open if now >= p.open_until => {
                self.provs[i].state = CircuitState::Probing;
                self.provs[i].probe_ok = 0;
                self.provs[i].probe_slow = 0;
                self.emit(i, EventKind::Probing);
            }
            CircuitState::Ramping
                if p.stage_samples >= s.ramp_min_samples
                    && now >= p.stage_since.saturating_add(s.ramp[p.stage].1) =>
            {
                let next = p.stage + 1;
                self.enter_stage(i, next, now);
            }
            CircuitState::Healthy if p.strikes > 0 => {
                let periods = now.saturating_sub(p.healthy_since) / s.backoff_decay_ms;
                if periods > 0 {
                    let p = &mut self.provs[i];
                    p.strikes -= periods.min(u64::from(p.strikes)) as u32;
                    p.healthy_since = p
                        .healthy_since
                        .saturating_add(periods.saturating_mul(s.backoff_decay_ms));
                    let strikes = p.strikes;
                    self.emit(i, EventKind::BackoffDecayed { strikes });
                }
            }
            _ => {}
        }
        let p = &self.provs[i];
        if matches!(p.state, CircuitState::Healthy | CircuitState::Ramping)
            && p.breach_since
                .is_some_and(|since| since.saturating_add(s.timeout_sustain_ms) <= now)
        {
            let learn = p.state == CircuitState::Healthy;
            self.advance(i, now, learn);
            let w = self.stats(i);
            if let Some(r) = self.check_timeouts(i, &w, now) {
                self.provs[i].breach_since = None;
                self.trip(i, r, now);
            }
        }
        self.provs[i] != before
    }

    /// Performs every transition of provider `i` that is due at `now`.
    pub(crate) fn settle(&mut self, i: usize, now: u64) {
        for _ in 0..16 {
            if !self.timers(i, now) {
                return;
            }
        }
        panic!("model: provider {i} never settles at {now}");
    }

    /// "Every input first performs the transitions that are due."
    pub(crate) fn catch_up(&mut self) {
        for i in 0..self.provs.len() {
            self.settle(i, self.now);
        }
    }

    /// After an input changed provider `i`, what became due is performed at once; a deadline of
    /// `u64::MAX` means "never" until an input arrives at `u64::MAX` (`router.rs`).
    pub(crate) fn after_input(&mut self, i: usize) {
        if self.due(i).is_some_and(|d| d <= self.now && d != u64::MAX) {
            self.settle(i, self.now);
        }
    }

    pub(crate) fn apply(&mut self, i: usize, o: &Outcome, probe: bool, now: u64) {
        let state = self.provs[i].state;
        self.provs[i].last_seen = now;
        let throttled = self.provs[i].throttled_until.is_some();
        let learn = state == CircuitState::Healthy
            && !(throttled && self.sem.no_learning_on_records_while_throttled);
        self.advance(i, now, learn);
        if o.retry_after_ms.is_some() || o.kind == OutcomeKind::RateLimited {
            self.throttle(i, o, now);
        }
        if o.kind == OutcomeKind::Success
            && !(o.retry_after_ms.is_some() && self.sem.success_with_retry_after_keeps_doubling)
        {
            self.provs[i].throttle_streak = 0;
        }
        let judged = matches!(state, CircuitState::Healthy | CircuitState::Ramping);
        // "A probe that succeeds slower than the degradation limit answers, but too slowly".
        let slow = self.degraded_success(i, o.kind, o.latency_ms);
        let mut reason = self.health_record(i, o, now, judged);
        if state == CircuitState::Ramping {
            let rollback = self.ramp_record(i, o.kind);
            // The first trigger that fires wins.
            reason = reason.or(rollback);
        }
        if let Some(r) = reason {
            self.provs[i].breach_since = None;
            self.trip(i, r, now);
        } else if state == CircuitState::Probing && probe {
            let failed = is_hard(&self.s, o.kind) || o.kind == OutcomeKind::Timeout;
            if failed {
                let p = &self.provs[i];
                let r = Reason {
                    trigger: Trigger::ProbeFailed,
                    observed: u64::from(p.probe_ok),
                    threshold: u64::from(self.s.probe_successes),
                    volume: u64::from(p.probe_ok) + 1,
                    outcome: Some(o.kind),
                };
                self.trip(i, r, now);
            } else if o.kind == OutcomeKind::Success {
                let p = &mut self.provs[i];
                p.probe_ok = p.probe_ok.saturating_add(1);
                p.probe_slow = p.probe_slow.saturating_add(u32::from(slow));
                // "more than half were faster than that limit", else the phase fails.
                if p.probe_ok >= self.s.probe_successes && p.probe_slow * 2 > p.probe_ok {
                    let r = Reason {
                        trigger: Trigger::ProbeFailed,
                        observed: u64::from(p.probe_ok - p.probe_slow),
                        threshold: u64::from(self.s.probe_successes),
                        volume: u64::from(p.probe_ok),
                        outcome: Some(OutcomeKind::Success),
                    };
                    self.trip(i, r, now);
                } else if p.probe_ok >= self.s.probe_successes {
                    // Recovery confirmed: a new generation, and a fresh window for the ramp.
                    p.generation = p.generation.wrapping_add(1);
                    p.probes.clear();
                    self.enter_stage(i, 0, now);
                    let p = &mut self.provs[i];
                    p.recs.clear();
                    p.consecutive = 0;
                    p.timeout_run = 0;
                    p.breach_since = None;
                }
            }
        }
        self.after_input(i);
    }
}
