//! The triggers that open a circuit, judged on the outcomes themselves (no timer lag), over a
//! provider's window.
//!
//! Each trigger is judged when an outcome of its own kind is recorded, so a circuit never opens on
//! an outcome that shows nothing wrong: the consecutive-failure run and the error rate on a hard
//! failure, slow calls on a slow success, latency degradation on a success at least
//! `latency_factor` × baseline slow. The timeout breach is re-judged on every counted outcome
//! (it must notice the rate falling as well as rising) and when its sustain deadline passes.
//!
//! Order of evaluation, first match wins: consecutive failures, consecutive timeouts, error rate,
//! sustained timeouts, slow calls, latency degradation.
//!
//! Timeouts have a run of their own, apart from the hard failures' (neither ends the other; a
//! success ends both): `consecutive_failures` timeouts or stalls in a row, with no success
//! between them, open the circuit once the run has lasted `timeout_sustain_ms` (from the first
//! timeout's timestamp). A provider that answers nothing is down, whatever the traffic: a
//! sequential caller at one request a second benches it after a few calls. A burst of timeouts
//! shorter than that is a spike, left to the timeout-rate trigger. Every rate trigger needs `min_volume` calls in the window.

use crate::event::{Reason, Trigger};
use crate::outcome::{Outcome, OutcomeKind};
use crate::policy::Compiled;
use crate::window::{Window, WindowStats};

const PPM: u64 = 1_000_000;

/// `part / whole` in parts per million (0 when `whole` is 0).
#[inline]
pub(crate) fn rate_ppm(part: u64, whole: u64) -> u64 {
    if whole == 0 {
        0
    } else {
        (u128::from(part) * u128::from(PPM) / u128::from(whole)) as u64
    }
}

/// `part / whole ≥ threshold_ppm / 1e6`, exactly, in integers.
#[inline]
pub(crate) fn reaches(part: u64, whole: u64, threshold_ppm: u32) -> bool {
    whole > 0 && u128::from(part) * u128::from(PPM) >= u128::from(threshold_ppm) * u128::from(whole)
}

/// The long-horizon latency baseline: an exponential average of the window's latency quantile,
/// updated when the window crosses a bucket boundary (once per crossing, however many buckets an
/// idle gap skipped) while the provider is healthy (throttled or not) and not degraded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Baseline {
    /// Average in ms × 1000 (fixed point), 0 before the first update.
    milli_ms: u64,
    updates: u32,
}

impl Baseline {
    pub(crate) fn value_ms(&self) -> Option<u32> {
        (self.updates > 0).then_some((self.milli_ms / 1000).min(u64::from(u32::MAX)) as u32)
    }

    /// The baseline once it has seen enough updates to judge.
    fn established(&self, warmup: u32) -> Option<u64> {
        (self.updates >= warmup).then_some(self.milli_ms)
    }

    fn update(&mut self, sample_ms: u32, weight: u64) {
        let s = u64::from(sample_ms) * 1000;
        if self.updates == 0 {
            self.milli_ms = s;
        } else if s >= self.milli_ms {
            self.milli_ms += (s - self.milli_ms) / weight;
        } else {
            self.milli_ms -= (self.milli_ms - s) / weight;
        }
        self.updates = self.updates.saturating_add(1);
    }
}

/// The runs a success ends: hard failures in a row, and timeouts (or stalls) in a row. One word,
/// so that the success path ends both with one store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(8))]
pub(crate) struct Runs {
    /// Hard failures in a row.
    pub hard: u32,
    /// Timeouts and stalls in a row.
    pub timeouts: u32,
}

/// A provider's passive-health state: the window and what the triggers remember between events.
#[derive(Clone, Debug)]
pub(crate) struct Health<const B: usize> {
    pub window: Window<B>,
    /// Hard failures and timeouts in a row (a success ends both; neither ends the other).
    pub runs: Runs,
    /// When the current run of timeouts began (the first one's timestamp).
    timeout_run_since: u64,
    /// Since when the timeout rate has been at or above its threshold.
    pub timeout_breach_since: Option<u64>,
    pub baseline: Baseline,
    /// factor × baseline in ms × 1000, once the baseline is established (cached at each update).
    latency_limit: Option<u128>,
    /// A success faster than this (ms) can trip nothing: it is below the slow-call limit and below
    /// the latency-degradation limit. `min(slow_call_ms, ⌈latency_limit / 1000⌉)`.
    fast_below_ms: u32,
    /// A fact about the window's totals that outcomes other than timeouts keep true: the timeout
    /// trigger is off, or the window has `min_volume` calls, its timeout rate is below the
    /// threshold and no breach is running. While it holds, a success needs no timeout re-check.
    /// Cleared by a timeout, a bucket boundary and a reset; set by [`Health::check_timeouts`].
    timeouts_clear: bool,
    /// When the current run of hard failures began (the first one's timestamp; meaningful while
    /// `runs.hard > 0`).
    pub hard_run_since: u64,
    /// Fleet mode: the hard failures the other instances exported since this instance's current
    /// run began, as of the last merge (0 outside fleet mode, and when a new run begins).
    pub fleet_run: u32,
    /// Fleet mode: the merged run that opens the circuit, quorum × `consecutive_failures`.
    pub fleet_run_limit: u32,
}

impl<const B: usize> Health<B> {
    pub(crate) fn new(p: &Compiled) -> Self {
        Health {
            window: Window::new(p.buckets, p.bucket_ms),
            runs: Runs::default(),
            timeout_run_since: 0,
            timeout_breach_since: None,
            baseline: Baseline::default(),
            latency_limit: None,
            fast_below_ms: p.slow_call_ms,
            timeouts_clear: p.timeout_rate_ppm.is_none(),
            hard_run_since: 0,
            fleet_run: 0,
            fleet_run_limit: 0,
        }
    }

    /// Moves the window to `now`. On a bucket boundary, a healthy provider's baseline takes the
    /// window's latency quantile (if the window has `min_volume` latency samples and is not
    /// itself degraded).
    #[inline]
    pub(crate) fn advance(&mut self, p: &Compiled, now: u64, learn_baseline: bool) {
        if self.window.advance(now) > 0 {
            self.crossed(p, learn_baseline);
        }
    }

    /// The window crossed a bucket boundary: buckets left it, so the timeout rate must be judged
    /// again, and a healthy provider's baseline learns.
    #[cold]
    fn crossed(&mut self, p: &Compiled, learn_baseline: bool) {
        self.timeouts_clear = p.timeout_rate_ppm.is_none();
        if learn_baseline {
            self.learn(p);
        }
    }

    /// Records an ordinary success at `now` if it provably changes nothing but the window (no
    /// trigger can fire, no breach can start, no bucket boundary is crossed) and returns true;
    /// otherwise changes nothing and returns false (take the general path).
    #[inline(always)]
    pub(crate) fn record_quiet_success(&mut self, now: u64, latency_ms: u32) -> bool {
        if latency_ms < self.fast_below_ms && self.timeouts_clear && self.window.holds(now) {
            self.window.record_fast_success(latency_ms);
            self.runs = Runs::default();
            return true;
        }
        false
    }

    #[cold]
    fn learn(&mut self, p: &Compiled) {
        let (samples, q) = self.window.latency_summary(p.latency_quantile_ppm);
        if samples < u64::from(p.min_volume) {
            return;
        }
        let Some(q) = q else {
            return;
        };
        if let (Some(k), Some(base)) = (
            p.latency_factor_milli,
            self.baseline.established(p.baseline_warmup),
        ) {
            // Do not let a degradation become the new normal.
            if u64::from(q) * 1_000_000 >= k * base {
                return;
            }
        }
        self.baseline.update(q, p.baseline_weight);
        self.latency_limit = match (
            p.latency_factor_milli,
            self.baseline.established(p.baseline_warmup),
        ) {
            (Some(k), Some(base)) => Some(match k.checked_mul(base) {
                // In 64 bits when it fits: a 128-bit division is a library call.
                Some(kb) => u128::from(kb / 1000),
                None => u128::from(k) * u128::from(base) / 1000,
            }),
            _ => None,
        };
        // latency < ⌈limit / 1000⌉ ⟺ latency × 1000 < limit.
        let below_limit = self.latency_limit.map_or(u32::MAX, |l| {
            u64::try_from(l).map_or(u32::MAX, |l| {
                u32::try_from(l.div_ceil(1000)).unwrap_or(u32::MAX)
            })
        });
        self.fast_below_ms = p.slow_call_ms.min(below_limit);
    }

    pub(crate) fn stats(&self, p: &Compiled) -> WindowStats {
        self.window.stats(p.count_client_errors)
    }

    /// Forgets the window and the run of failures (the baseline stays: it is long-horizon).
    pub(crate) fn reset(&mut self, p: &Compiled) {
        self.window.reset();
        self.runs = Runs::default();
        self.fleet_run = 0;
        self.timeout_breach_since = None;
        self.timeouts_clear = p.timeout_rate_ppm.is_none();
    }

    /// Records a counted outcome at `now` (window already advanced) and returns the trigger that
    /// fires, if any. `evaluate` is false while the circuit is not closed: the window still learns,
    /// nothing trips.
    #[inline]
    pub(crate) fn record(
        &mut self,
        p: &Compiled,
        outcome: &Outcome,
        now: u64,
        evaluate: bool,
    ) -> Option<Reason> {
        let slow = outcome.kind == OutcomeKind::Success && outcome.latency_ms >= p.slow_call_ms;
        if outcome.kind == OutcomeKind::Success && !slow {
            // Fast path: an ordinary success can only start a timeout breach or lift the
            // latency quantile.
            self.window.record_fast_success(outcome.latency_ms);
            self.runs = Runs::default();
            if !evaluate {
                return None;
            }
            if !self.timeouts_clear {
                let s = self.stats(p);
                if let Some(r) = self.check_timeouts(p, &s, now) {
                    return Some(Reason {
                        outcome: Some(outcome.kind),
                        ..r
                    });
                }
            }
            return self.check_latency(p, outcome.latency_ms);
        }
        self.window.record(outcome, slow);
        if outcome.kind.is_timeout() {
            self.timeouts_clear = p.timeout_rate_ppm.is_none();
        }
        let hard = p.is_hard_failure(outcome.kind);
        let timeout = outcome.kind.is_timeout();
        if hard {
            if self.runs.hard == 0 {
                // A new run: the fleet's run, counted for the previous one, no longer applies.
                self.hard_run_since = now;
                self.fleet_run = 0;
            }
            self.runs.hard = self.runs.hard.saturating_add(1);
        } else if timeout {
            if self.runs.timeouts == 0 {
                self.timeout_run_since = now;
            }
            self.runs.timeouts = self.runs.timeouts.saturating_add(1);
        } else if outcome.kind == OutcomeKind::Success {
            self.runs = Runs::default();
        }
        if !evaluate {
            return None;
        }
        let counted = p.is_counted(outcome.kind);
        if !counted {
            return None;
        }
        let reason = |trigger, observed: u64, threshold: u64, volume: u64| Reason {
            trigger,
            observed,
            threshold,
            volume,
            outcome: Some(outcome.kind),
        };
        if hard
            && let Some(n) = p.consecutive_failures
            && self.runs.hard >= n
        {
            let vol = self.stats(p).volume;
            return Some(reason(
                Trigger::ConsecutiveFailures,
                u64::from(self.runs.hard),
                u64::from(n),
                vol,
            ));
        }
        if hard && let Some(r) = self.check_fleet_run(p) {
            return Some(Reason {
                outcome: Some(outcome.kind),
                ..r
            });
        }
        if timeout
            && let Some(n) = p.consecutive_failures
            && self.runs.timeouts >= n
            && now.saturating_sub(self.timeout_run_since) >= p.timeout_sustain_ms
        {
            let vol = self.stats(p).volume;
            return Some(reason(
                Trigger::ConsecutiveTimeouts,
                u64::from(self.runs.timeouts),
                u64::from(n),
                vol,
            ));
        }
        let s = self.stats(p);
        let enough = s.volume >= u64::from(p.min_volume);
        if hard
            && enough
            && let Some(t) = p.error_rate_ppm
            && reaches(s.failures, s.volume, t)
        {
            return Some(reason(
                Trigger::ErrorRate,
                rate_ppm(s.failures, s.volume),
                u64::from(t),
                s.volume,
            ));
        }
        if let Some(r) = self.check_timeouts(p, &s, now) {
            return Some(Reason {
                outcome: Some(outcome.kind),
                ..r
            });
        }
        if slow
            && enough
            && let Some(t) = p.slow_call_rate_ppm
            && reaches(s.slow, s.volume, t)
        {
            return Some(reason(
                Trigger::SlowCalls,
                rate_ppm(s.slow, s.volume),
                u64::from(t),
                s.volume,
            ));
        }
        if outcome.kind == OutcomeKind::Success {
            return self.check_latency(p, outcome.latency_ms);
        }
        None
    }

    /// Tracks the timeout breach and fires once it has lasted `timeout_sustain_ms`. Called on every
    /// counted outcome and when the breach's deadline passes.
    pub(crate) fn check_timeouts(
        &mut self,
        p: &Compiled,
        s: &WindowStats,
        now: u64,
    ) -> Option<Reason> {
        let t = p.timeout_rate_ppm?;
        let enough = s.volume >= u64::from(p.min_volume);
        let breach = enough && reaches(s.timeouts, s.volume, t);
        if !breach {
            self.timeout_breach_since = None;
            self.timeouts_clear = enough;
            return None;
        }
        self.timeouts_clear = false;
        let since = *self.timeout_breach_since.get_or_insert(now);
        if now.saturating_sub(since) >= p.timeout_sustain_ms {
            return Some(Reason {
                trigger: Trigger::SustainedTimeouts,
                observed: rate_ppm(s.timeouts, s.volume),
                threshold: u64::from(t),
                volume: s.volume,
                outcome: None,
            });
        }
        None
    }

    /// Whether the cached fast-path facts hold (see `timeouts_clear` and `fast_below_ms`). Debug
    /// builds only.
    #[cfg(debug_assertions)]
    pub(crate) fn check_invariants(&self, p: &Compiled) {
        self.window.check_invariants();
        if self.timeouts_clear
            && let Some(t) = p.timeout_rate_ppm
        {
            let s = self.stats(p);
            debug_assert!(
                s.volume >= u64::from(p.min_volume)
                    && !reaches(s.timeouts, s.volume, t)
                    && self.timeout_breach_since.is_none(),
                "timeouts_clear holds but the timeout rate needs judging"
            );
        }
        debug_assert!(self.fast_below_ms <= p.slow_call_ms);
        if let Some(l) = self.latency_limit {
            debug_assert!(self.fast_below_ms == 0 || u128::from(self.fast_below_ms - 1) * 1000 < l);
        }
    }

    /// Sets what the rest of the fleet counted in this window (fleet mode): every rate trigger
    /// then judges the merged figures. The timeout rate must be judged again. O(32).
    pub(crate) fn set_remote(&mut self, p: &Compiled, remote: &crate::window::Addend) {
        self.window.set_remote(remote);
        self.timeouts_clear = p.timeout_rate_ppm.is_none();
    }

    /// Fleet mode: sets the other instances' hard failures since this instance's run began and
    /// the merged run that opens the circuit (0, 0: none). O(1).
    pub(crate) fn set_fleet_run(&mut self, run: u32, limit: u32) {
        self.fleet_run = if self.runs.hard == 0 { 0 } else { run };
        self.fleet_run_limit = limit;
    }

    /// Fleet mode's merged consecutive-failure trigger: this instance's own run of hard failures
    /// plus the hard failures the others exported since it began reach `fleet_run_limit`
    /// (quorum × `consecutive_failures`). Needs a run here and failures there, so neither one
    /// instance's failures alone nor the others' alone (while this one's calls succeed) trip it.
    #[inline]
    fn check_fleet_run(&self, p: &Compiled) -> Option<Reason> {
        if self.fleet_run == 0 || self.runs.hard == 0 || p.consecutive_failures.is_none() {
            return None;
        }
        let run = self.runs.hard.saturating_add(self.fleet_run);
        (run >= self.fleet_run_limit).then(|| Reason {
            trigger: Trigger::ConsecutiveFailures,
            observed: u64::from(run),
            threshold: u64::from(self.fleet_run_limit),
            volume: self.stats(p).volume,
            outcome: None,
        })
    }

    /// Judges the triggers on the window as it stands, with no outcome (fleet mode: after a
    /// merge brought other instances' counts): the merged consecutive-failure run, error rate,
    /// sustained timeouts, slow calls, latency degradation, in that order. The local runs are
    /// judged when their outcomes are recorded, not here.
    pub(crate) fn judge(&mut self, p: &Compiled, now: u64) -> Option<Reason> {
        if let Some(r) = self.check_fleet_run(p) {
            return Some(r);
        }
        let s = self.stats(p);
        let enough = s.volume >= u64::from(p.min_volume);
        if enough
            && let Some(t) = p.error_rate_ppm
            && reaches(s.failures, s.volume, t)
        {
            return Some(Reason {
                trigger: Trigger::ErrorRate,
                observed: rate_ppm(s.failures, s.volume),
                threshold: u64::from(t),
                volume: s.volume,
                outcome: None,
            });
        }
        if let Some(r) = self.check_timeouts(p, &s, now) {
            return Some(r);
        }
        if enough
            && let Some(t) = p.slow_call_rate_ppm
            && reaches(s.slow, s.volume, t)
        {
            return Some(Reason {
                trigger: Trigger::SlowCalls,
                observed: rate_ppm(s.slow, s.volume),
                threshold: u64::from(t),
                volume: s.volume,
                outcome: None,
            });
        }
        let limit = self.latency_limit?;
        self.check_latency_slow(p, limit)
            .map(|r| Reason { outcome: None, ..r })
    }

    /// When a timeout breach would become sustained, if one is running.
    pub(crate) fn timeout_deadline(&self, p: &Compiled) -> Option<u64> {
        self.timeout_breach_since
            .map(|s| s.saturating_add(p.timeout_sustain_ms))
    }

    #[inline]
    fn check_latency(&self, p: &Compiled, latency_ms: u32) -> Option<Reason> {
        let limit_milli_ms = self.latency_limit?;
        // Cheap pre-check: only a call slower than the limit can lift the quantile over it.
        if u128::from(latency_ms) * 1000 < limit_milli_ms {
            return None;
        }
        self.check_latency_slow(p, limit_milli_ms)
    }

    /// A success at least `latency_factor` × the established baseline: too slow to confirm a
    /// recovery (a probe's) or to count as a good call of a ramp's traffic. False before the
    /// baseline is established.
    #[inline]
    pub(crate) fn degraded_latency(&self, latency_ms: u32) -> bool {
        self.latency_limit
            .is_some_and(|l| u128::from(latency_ms) * 1000 >= l)
    }

    #[cold]
    fn check_latency_slow(&self, p: &Compiled, limit_milli_ms: u128) -> Option<Reason> {
        let samples = self.window.latency_samples();
        if samples < u64::from(p.min_volume) {
            return None;
        }
        let q = self.window.latency_quantile(p.latency_quantile_ppm)?;
        if u128::from(q) * 1000 >= limit_milli_ms {
            return Some(Reason {
                trigger: Trigger::LatencyDegradation,
                observed: u64::from(q),
                threshold: (limit_milli_ms / 1000) as u64,
                volume: samples,
                outcome: Some(OutcomeKind::Success),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    #[test]
    fn rates_are_exact() {
        assert!(reaches(1, 2, 500_000));
        assert!(!reaches(499_999, 1_000_000, 500_000));
        assert!(!reaches(0, 0, 1));
        assert!(reaches(u64::MAX, u64::MAX, 1_000_000));
        assert_eq!(rate_ppm(1, 4), 250_000);
        assert_eq!(rate_ppm(5, 0), 0);
    }

    #[test]
    fn baseline_moves_slowly_and_resists_degradation() {
        let mut b = Baseline::default();
        b.update(1000, 10);
        assert_eq!(b.value_ms(), Some(1000));
        b.update(2000, 10);
        assert_eq!(b.value_ms(), Some(1100));
        b.update(0, 10);
        assert_eq!(b.value_ms(), Some(990));
        let _ = Policy::default();
    }

    /// The debug builds' check of the cached fast-path facts fires on a stale one: "no timeout
    /// rate to judge" claimed for a window with no calls at all.
    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "timeouts_clear holds but the timeout rate needs judging")]
    fn the_debug_check_fires_on_a_stale_timeout_fact() {
        let p = Policy::default().compile(120).unwrap();
        let mut h = Health::<120>::new(&p);
        h.check_invariants(&p);
        h.timeouts_clear = true;
        h.check_invariants(&p);
    }

    /// A call exactly at the latency-degradation limit is judged (the limit is reached, not
    /// passed: `quantile ≥ limit`): with the window full of such calls, the quantile (their bin's
    /// middle, 2,560 ms for 2,048) is over the limit and the trigger fires, naming the success
    /// that tripped it; a call 1 ms faster is not judged at all (the cheap pre-check). Judged with
    /// no outcome (after a fleet merge), the same window trips it with no outcome named.
    #[test]
    fn a_call_exactly_at_the_latency_limit_is_judged() {
        let p = Policy::default().compile(120).unwrap();
        let mut h = Health::<120>::new(&p);
        h.latency_limit = Some(2_048_000);
        for _ in 0..p.min_volume {
            assert!(h.record(&p, &Outcome::success(2_048), 0, false).is_none());
        }
        let r = h.check_latency(&p, 2_048).expect("the limit is reached");
        assert_eq!(
            (r.trigger, r.observed, r.threshold),
            (Trigger::LatencyDegradation, 2_560, 2_048)
        );
        assert!(h.check_latency(&p, 2_047).is_none());
        assert_eq!(r.outcome, Some(OutcomeKind::Success));
        // Judged with no outcome at hand (a fleet merge), the reason names none.
        let j = h
            .judge(&p, 0)
            .expect("the merged window reaches the limit too");
        assert_eq!(
            (j.trigger, j.observed, j.outcome),
            (Trigger::LatencyDegradation, 2_560, None)
        );
    }

    /// Fleet mode's merged run trips on the local failure that completes it, and names that
    /// failure (the run the others exported, plus this instance's, reaches quorum ×
    /// `consecutive_failures` before the local run alone does).
    #[test]
    fn the_merged_run_trips_on_the_local_failure_that_completes_it() {
        let p = Policy::default().compile(120).unwrap();
        let n = p
            .consecutive_failures
            .expect("the default policy counts runs");
        assert!(n >= 3, "two local failures must not trip the local run");
        let mut h = Health::<120>::new(&p);
        assert!(h.record(&p, &Outcome::server_error(5), 0, true).is_none());
        h.set_fleet_run(2 * n - 2, 2 * n);
        assert!(h.judge(&p, 10).is_none(), "one short of the limit");
        let r = h
            .record(&p, &Outcome::server_error(5), 20, true)
            .expect("the merged run reaches the limit");
        assert_eq!(
            (r.trigger, r.observed, r.threshold, r.outcome),
            (
                Trigger::ConsecutiveFailures,
                u64::from(2 * n),
                u64::from(2 * n),
                Some(OutcomeKind::ServerError)
            )
        );
    }

    /// `Health::record` judges a timeout breach that became sustained by the time of the outcome
    /// it records, on either path (an ordinary success's fast path, a slow success's general
    /// one), and names that outcome. (The router runs the due transitions before it records, so
    /// it trips such a breach at its deadline; this is the unit's own contract.)
    #[test]
    fn a_sustained_timeout_breach_is_judged_at_the_next_outcome() {
        let p = Policy::default().compile(120).unwrap();
        let breached = || {
            let mut h = Health::<120>::new(&p);
            for _ in 0..p.min_volume {
                assert!(h.record(&p, &Outcome::timeout(1), 0, true).is_none());
            }
            assert_eq!(h.timeout_deadline(&p), Some(p.timeout_sustain_ms));
            let now = p.timeout_sustain_ms;
            h.advance(&p, now, true);
            (h, now)
        };
        for latency in [100, p.slow_call_ms] {
            let (mut h, now) = breached();
            let r = h
                .record(&p, &Outcome::success(latency), now, true)
                .expect("the breach is sustained");
            assert_eq!(
                (r.trigger, r.outcome),
                (Trigger::SustainedTimeouts, Some(OutcomeKind::Success)),
                "a success of {latency} ms"
            );
            assert_eq!(
                (r.volume, r.observed),
                (u64::from(p.min_volume) + 1, 952_380)
            );
        }
    }
}
