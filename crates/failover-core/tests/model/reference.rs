//! The model: the window, the triggers and what an outcome does to a provider's health.

use crate::*;

// ------------------------------------------------------------------------------------------------
// The model.
// ------------------------------------------------------------------------------------------------

/// The half-octave histogram bin of a latency, as `window.rs` documents it: bin 2e holds
/// [2^e, 1.5·2^e) ms and bin 2e + 1 holds [1.5·2^e, 2^(e+1)) ms; 0 ms counts as 1 ms; 32 bins, the
/// last holds everything slower.
pub(crate) fn bin_of(latency: u32) -> usize {
    let x = u64::from(latency.max(1));
    let mut e = 0u64;
    while (2u64 << e) <= x {
        e += 1;
    }
    let bin = if 2 * x >= 3 << e { 2 * e + 1 } else { 2 * e };
    bin.min(31) as usize
}

/// The latency a bin stands for: the middle of its range.
pub(crate) fn bin_mid(bin: usize) -> u32 {
    let lo = 1u32 << (bin / 2);
    if bin.is_multiple_of(2) {
        lo + lo / 4
    } else {
        lo + lo / 2 + lo / 4
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Rec {
    pub(crate) bucket: u64,
    pub(crate) kind: OutcomeKind,
    pub(crate) slow: bool,
    pub(crate) latency: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MProv {
    // Passive health.
    pub(crate) recs: Vec<Rec>,
    /// Grid index of the window's current bucket (moves only when an outcome is recorded or a
    /// timeout breach is re-judged).
    pub(crate) win_bucket: u64,
    pub(crate) consecutive: u32,
    /// Timeouts (and stalls) in a row, and the first one's timestamp ("Timeouts have a run of
    /// their own ... a success ends both").
    pub(crate) timeout_run: u32,
    pub(crate) timeout_run_since: u64,
    pub(crate) breach_since: Option<u64>,
    pub(crate) baseline_milli: u64,
    pub(crate) baseline_updates: u32,
    // Circuit.
    pub(crate) state: CircuitState,
    pub(crate) generation: u32,
    pub(crate) strikes: u32,
    pub(crate) trips: u32,
    pub(crate) open_until: u64,
    pub(crate) healthy_since: u64,
    /// Outstanding probes: (sequence number, expiry; `None` when it cannot expire).
    pub(crate) probes: Vec<(u32, Option<u64>)>,
    pub(crate) probe_ok: u32,
    pub(crate) probe_slow: u32,
    pub(crate) next_seq: u32,
    pub(crate) stage: usize,
    pub(crate) stage_since: u64,
    pub(crate) stage_samples: u32,

    pub(crate) credit: u64,
    pub(crate) throttled_until: Option<u64>,
    pub(crate) throttle_streak: u32,
    // Active checks of idle healthy providers.
    /// When an outcome was last recorded for it.
    pub(crate) last_seen: u64,
    /// The outstanding idle check: (sequence number, expiry; `None` when it cannot expire).
    pub(crate) check: Option<(u32, Option<u64>)>,
    pub(crate) check_seq: u32,
}

impl MProv {
    pub(crate) fn new() -> MProv {
        MProv {
            recs: Vec::new(),
            win_bucket: 0,
            consecutive: 0,
            timeout_run: 0,
            timeout_run_since: 0,
            breach_since: None,
            baseline_milli: 0,
            baseline_updates: 0,
            state: CircuitState::Healthy,
            generation: 0,
            strikes: 0,
            trips: 0,
            open_until: 0,
            healthy_since: 0,
            probes: Vec::new(),
            probe_ok: 0,
            probe_slow: 0,
            next_seq: 0,
            stage: 0,
            stage_since: 0,
            stage_samples: 0,

            credit: 0,
            throttled_until: None,
            throttle_streak: 0,
            last_seen: 0,
            check: None,
            check_seq: 0,
        }
    }
}

/// A ticket as plain data (the engine's `ProviderId` has no public constructor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MTicket {
    pub(crate) provider: usize,
    pub(crate) kind: TicketKind,
    pub(crate) generation: u32,
    pub(crate) probe_seq: u32,
    pub(crate) degraded: bool,
    pub(crate) retry_after_ms: Option<u64>,
    pub(crate) issued_at_ms: u64,
}

impl From<&Ticket> for MTicket {
    fn from(t: &Ticket) -> MTicket {
        MTicket {
            provider: t.provider.index(),
            kind: t.kind,
            generation: t.generation,
            probe_seq: t.probe_seq,
            degraded: t.degraded,
            retry_after_ms: t.retry_after_ms,
            issued_at_ms: t.issued_at_ms,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MEvent {
    pub(crate) at_ms: u64,
    pub(crate) provider: usize,
    pub(crate) kind: EventKind,
}

/// A provider's view as plain data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MView {
    pub(crate) state: CircuitState,
    pub(crate) share_ppm: u32,
    pub(crate) throttled_until_ms: Option<u64>,
    pub(crate) open_until_ms: Option<u64>,
    pub(crate) ramp_stage: Option<u8>,
    pub(crate) strikes: u32,
    pub(crate) trips: u32,
    pub(crate) generation: u32,
    pub(crate) probes_in_flight: u32,
    pub(crate) probe_successes: u32,
    pub(crate) consecutive_failures: u32,
    pub(crate) window: WindowStats,
    pub(crate) latency_ms: Option<u32>,
    pub(crate) baseline_ms: Option<u32>,
    pub(crate) next_transition_ms: Option<u64>,
}

impl From<&ProviderView<'_>> for MView {
    fn from(v: &ProviderView<'_>) -> MView {
        MView {
            state: v.state,
            share_ppm: v.share_ppm,
            throttled_until_ms: v.throttled_until_ms,
            open_until_ms: v.open_until_ms,
            ramp_stage: v.ramp_stage,
            strikes: v.strikes,
            trips: v.trips,
            generation: v.generation,
            probes_in_flight: v.probes_in_flight,
            probe_successes: v.probe_successes,
            consecutive_failures: v.consecutive_failures,
            window: v.window,
            latency_ms: v.latency_ms,
            baseline_ms: v.baseline_ms,
            next_transition_ms: v.next_transition_ms,
        }
    }
}

pub(crate) struct Model {
    pub(crate) s: Spec,
    pub(crate) sem: Semantics,
    pub(crate) now: u64,
    pub(crate) provs: Vec<MProv>,
    pub(crate) events: Vec<MEvent>,
    /// Jittered open durations taken from the engine, (provider, until), oldest first.
    pub(crate) jitter_draws: VecDeque<(usize, u64)>,
    /// Documented promises the engine broke that the event comparison would not show.
    pub(crate) broken: Vec<String>,
}

pub(crate) fn is_hard(s: &Spec, kind: OutcomeKind) -> bool {
    kind.is_hard_failure() || (s.count_client_errors && kind == OutcomeKind::ClientError)
}

impl Model {
    pub(crate) fn new(s: &Spec, sem: Semantics) -> Model {
        Model {
            s: s.clone(),
            sem,
            now: 0,
            provs: (0..s.providers).map(|_| MProv::new()).collect(),
            events: Vec::new(),
            jitter_draws: VecDeque::new(),
            broken: Vec::new(),
        }
    }

    pub(crate) fn emit(&mut self, provider: usize, kind: EventKind) {
        self.events.push(MEvent {
            at_ms: self.now,
            provider,
            kind,
        });
    }

    /// "A `now` older than one already seen is treated as the latest time seen."
    pub(crate) fn clock(&mut self, t: u64) -> u64 {
        self.now = self.now.max(t);
        self.now
    }

    // --- the window -----------------------------------------------------------------------------

    pub(crate) fn live(&self, i: usize) -> impl Iterator<Item = &Rec> + '_ {
        self.live_at(i, self.provs[i].win_bucket)
    }

    /// The outcomes in provider `i`'s window when its current bucket is `cur`.
    pub(crate) fn live_at(&self, i: usize, cur: u64) -> impl Iterator<Item = &Rec> + '_ {
        let len = self.s.buckets;
        self.provs[i]
            .recs
            .iter()
            .filter(move |r| cur - r.bucket < len)
    }

    pub(crate) fn stats(&self, i: usize) -> WindowStats {
        self.stats_at(i, self.provs[i].win_bucket)
    }

    pub(crate) fn stats_at(&self, i: usize, cur: u64) -> WindowStats {
        let mut w = WindowStats::default();
        for r in self.live_at(i, cur) {
            match r.kind {
                OutcomeKind::Success => {
                    w.successes += 1;
                    w.slow += u64::from(r.slow);
                }
                OutcomeKind::RateLimited => w.rate_limited += 1,
                OutcomeKind::ServerError
                | OutcomeKind::ConnectionError
                | OutcomeKind::StreamCut => w.failures += 1,
                OutcomeKind::Timeout | OutcomeKind::Stalled => w.timeouts += 1,
                OutcomeKind::ClientError => {
                    w.client_errors += 1;
                    if self.s.count_client_errors {
                        w.failures += 1;
                    }
                }
                OutcomeKind::Cancelled
                | OutcomeKind::Refused
                | OutcomeKind::CredentialsRejected
                | OutcomeKind::QuotaExhausted => unreachable!("{:?} is not recorded", r.kind),
            }
        }
        w.volume = w.successes + w.failures + w.timeouts;
        w
    }

    pub(crate) fn latency_samples(&self, i: usize) -> u64 {
        self.live(i)
            .filter(|r| r.kind == OutcomeKind::Success)
            .count() as u64
    }

    /// The latency at quantile `q` of the window's successes: the smallest bin whose cumulative
    /// count reaches ceil(q · n) (at least 1).
    pub(crate) fn quantile(&self, i: usize, q: u32) -> Option<u32> {
        self.quantile_at(i, q, self.provs[i].win_bucket)
    }

    pub(crate) fn quantile_at(&self, i: usize, q: u32, cur: u64) -> Option<u32> {
        let mut bins = [0u64; 32];
        for r in self
            .live_at(i, cur)
            .filter(|r| r.kind == OutcomeKind::Success)
        {
            bins[bin_of(r.latency)] += 1;
        }
        let n: u64 = bins.iter().sum();
        if n == 0 {
            return None;
        }
        let rank = (u128::from(n) * u128::from(q))
            .div_ceil(u128::from(PPM))
            .max(1) as u64;
        let mut seen = 0;
        for (b, c) in bins.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bin_mid(b));
            }
        }
        unreachable!()
    }

    /// "A success at least `latency_factor` × the established baseline": too slow to confirm a
    /// recovery or to count as a good ramped call.
    pub(crate) fn degraded_success(&self, i: usize, kind: OutcomeKind, latency_ms: u32) -> bool {
        match (self.s.latency_factor_milli, self.baseline_established(i)) {
            (Some(k), Some(base)) if kind == OutcomeKind::Success => {
                u128::from(latency_ms) * 1000 >= u128::from(k) * u128::from(base) / 1000
            }
            _ => false,
        }
    }

    pub(crate) fn baseline_established(&self, i: usize) -> Option<u64> {
        let p = &self.provs[i];
        (p.baseline_updates as u64 >= self.s.buckets).then_some(p.baseline_milli)
    }

    /// Moves provider `i`'s window to `now`; on a bucket boundary a healthy provider's baseline
    /// learns the window's quantile.
    pub(crate) fn advance(&mut self, i: usize, now: u64, learn: bool) {
        let b = now / self.s.bucket_ms;
        if b <= self.provs[i].win_bucket {
            return;
        }
        self.provs[i].win_bucket = b;
        let len = self.s.buckets;
        self.provs[i].recs.retain(|r| b - r.bucket < len);
        if learn {
            self.learn(i);
        }
    }

    /// The baseline: an exponential average of the window's quantile with weight
    /// bucket_ms / latency_baseline_ms, learned only from a window with `min_volume` latency
    /// samples that is not itself degraded.
    pub(crate) fn learn(&mut self, i: usize) {
        if self.latency_samples(i) < u64::from(self.s.min_volume) {
            return;
        }
        let q = self.quantile(i, self.s.latency_quantile).unwrap();
        if let (Some(k), Some(base)) = (self.s.latency_factor_milli, self.baseline_established(i))
            && u128::from(q) * 1_000_000 >= u128::from(k) * u128::from(base)
        {
            return;
        }
        let weight = (self.s.latency_baseline_ms / self.s.bucket_ms).max(1);
        let p = &mut self.provs[i];
        let sample = u64::from(q) * 1000;
        if p.baseline_updates == 0 {
            p.baseline_milli = sample;
        } else if sample >= p.baseline_milli {
            p.baseline_milli += (sample - p.baseline_milli) / weight;
        } else {
            p.baseline_milli -= (p.baseline_milli - sample) / weight;
        }
        p.baseline_updates = p.baseline_updates.saturating_add(1);
    }

    // --- triggers ---------------------------------------------------------------------------------

    pub(crate) fn check_timeouts(&mut self, i: usize, w: &WindowStats, now: u64) -> Option<Reason> {
        let t = self.s.timeout_rate?;
        let breach = w.volume >= u64::from(self.s.min_volume) && reaches(w.timeouts, w.volume, t);
        let p = &mut self.provs[i];
        if !breach {
            p.breach_since = None;
            return None;
        }
        let since = *p.breach_since.get_or_insert(now);
        (now.saturating_sub(since) >= self.s.timeout_sustain_ms).then_some(Reason {
            trigger: Trigger::SustainedTimeouts,
            observed: rate(w.timeouts, w.volume),
            threshold: u64::from(t),
            volume: w.volume,
            outcome: None,
        })
    }

    /// Records `o` in the window, and judges the triggers in their documented order when
    /// `evaluate`.
    pub(crate) fn health_record(
        &mut self,
        i: usize,
        o: &Outcome,
        now: u64,
        evaluate: bool,
    ) -> Option<Reason> {
        let s = self.s.clone();
        let kind = o.kind;
        let slow = kind == OutcomeKind::Success && o.latency_ms >= s.slow_call_ms;
        let hard = is_hard(&s, kind);
        {
            let p = &mut self.provs[i];
            if kind != OutcomeKind::Cancelled {
                p.recs.push(Rec {
                    bucket: p.win_bucket,
                    kind,
                    slow,
                    latency: o.latency_ms,
                });
            }
            if hard {
                p.consecutive = p.consecutive.saturating_add(1);
            } else if kind.is_timeout() {
                if p.timeout_run == 0 {
                    p.timeout_run_since = now;
                }
                p.timeout_run = p.timeout_run.saturating_add(1);
            } else if kind == OutcomeKind::Success {
                p.consecutive = 0;
                p.timeout_run = 0;
            }
        }
        let counted = hard || matches!(kind, OutcomeKind::Success | OutcomeKind::Timeout);
        if !evaluate || !counted {
            return None;
        }
        let reason = |trigger, observed, threshold, volume| {
            Some(Reason {
                trigger,
                observed,
                threshold,
                volume,
                outcome: Some(kind),
            })
        };
        let w = self.stats(i);
        let consecutive = self.provs[i].consecutive;
        if let Some(n) = s.consecutive
            && hard
            && consecutive >= n
        {
            return reason(
                Trigger::ConsecutiveFailures,
                u64::from(consecutive),
                u64::from(n),
                w.volume,
            );
        }
        let run = self.provs[i].timeout_run;
        if let Some(n) = s.consecutive
            && kind.is_timeout()
            && run >= n
            && now.saturating_sub(self.provs[i].timeout_run_since) >= s.timeout_sustain_ms
        {
            return reason(
                Trigger::ConsecutiveTimeouts,
                u64::from(run),
                u64::from(n),
                w.volume,
            );
        }
        let enough = w.volume >= u64::from(s.min_volume);
        if let Some(t) = s.error_rate
            && (hard || !self.sem.error_rate_only_on_failures)
            && enough
            && reaches(w.failures, w.volume, t)
        {
            return reason(
                Trigger::ErrorRate,
                rate(w.failures, w.volume),
                u64::from(t),
                w.volume,
            );
        }
        if let Some(r) = self.check_timeouts(i, &w, now) {
            return Some(Reason {
                outcome: Some(kind),
                ..r
            });
        }
        if let Some(t) = s.slow_rate
            && (slow || !self.sem.slow_calls_only_on_slow_calls)
            && enough
            && reaches(w.slow, w.volume, t)
        {
            return reason(
                Trigger::SlowCalls,
                rate(w.slow, w.volume),
                u64::from(t),
                w.volume,
            );
        }
        if let (Some(k), Some(base)) = (s.latency_factor_milli, self.baseline_established(i)) {
            // factor × baseline, in µs·1000 units: q ms ≥ k/1000 × base/1000 ms.
            let limit = u128::from(k) * u128::from(base);
            let gate = if self.sem.latency_only_on_calls_above_limit {
                kind == OutcomeKind::Success && u128::from(o.latency_ms) * 1000 >= limit / 1000
            } else {
                true
            };
            let samples = self.latency_samples(i);
            if gate && samples >= u64::from(s.min_volume) {
                let q = self.quantile(i, s.latency_quantile).unwrap();
                if u128::from(q) * 1_000_000 >= limit {
                    return reason(
                        Trigger::LatencyDegradation,
                        u64::from(q),
                        (limit / 1_000_000) as u64,
                        samples,
                    );
                }
            }
        }
        None
    }
}
