//! A reference model of failover-core's documented semantics, and a property test that drives the
//! core and the model with the same random event sequences and asserts that they agree on every
//! decision (pick results, record results), every provider's state, share and figures, the next
//! deadline, and every event.
//!
//! The model is deliberately simple rather than fast: it allocates, keeps every outcome of the
//! window in a `Vec` and recounts it on every question, computes each open duration from scratch,
//! and is written from the doc comments of `Policy`, `Router`, `Trigger`, `EventKind` and the
//! modules' headers, not from the engine's code. It shares only the documented pure helpers
//! [`key_position`] (a key's position for keyed picks) and nothing else.
//!
//! Jitter: the documentation promises a factor in [1 − jitter, 1 + jitter] drawn
//! deterministically from the seed, the provider and its trip count, not a particular hash. The
//! model therefore takes each jittered open duration from the core's `Opened` event of the same
//! step and checks that it lies within the documented bounds (identical inputs giving identical
//! draws is checked in `invariants.rs`).
//!
//! [`Semantics`] records, in one place, the points where the documentation and the engine once
//! disagreed and how each was settled; the engine now follows the documentation on all of them.
//! The `repro_*` tests are minimal reproductions of each, kept as regression tests.

use std::collections::VecDeque;

use failover_core::{
    AllDown, CircuitState, EventKind, Outcome, OutcomeKind, PickRequest, Policy, ProbeMode,
    ProviderId, ProviderSet, ProviderView, RampStage, Reason, Recorded, Router, Ticket, TicketKind,
    Trigger, WindowStats, key_position,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

type Core = Router<4, 12, 256>;

const PPM: u64 = 1_000_000;
/// The ladder of open durations has this many rungs (`policy.rs`: "Strikes beyond this all use
/// the capped open duration").
const MAX_STRIKES: u32 = 64;

// ------------------------------------------------------------------------------------------------
// What the model believes, where the documentation and the engine disagree.
// ------------------------------------------------------------------------------------------------

/// Each flag is one known disagreement between the documentation and the engine. `false` is what
/// the documentation says; `true` is what the engine does.
#[derive(Clone, Copy, Debug)]
struct Semantics {
    /// `triggers.rs` header: the triggers are "evaluated on every counted outcome"; `Policy`:
    /// the error-rate trigger "trips when hard failures / counted calls in the window reach this
    /// fraction". The engine evaluates the error rate only when the outcome is itself a hard
    /// failure, so a success or timeout that brings the window to `min_volume` (or an expiry that
    /// raises the rate) never trips it.
    error_rate_only_on_failures: bool,
    /// Same for the slow-call trigger: the engine evaluates it only on a slow success.
    slow_calls_only_on_slow_calls: bool,
    /// Same for the latency trigger: the engine evaluates it only on a success at least as slow
    /// as factor × baseline ("only a call slower than the limit can lift the quantile over it",
    /// which is not true when the volume guard or a bucket expiry or a baseline update is what
    /// changes).
    latency_only_on_calls_above_limit: bool,
    /// The baseline "is updated once per bucket boundary while the provider is healthy and not
    /// degraded"; a throttle is not a state. The engine skips the update while the provider is
    /// throttled when the boundary is crossed by a recorded outcome, but not when it is crossed
    /// by the timer that re-judges a timeout breach.
    no_learning_on_records_while_throttled: bool,
    /// `throttle_base_ms`: "doubles with each further 429 until a success". The engine does not
    /// reset the doubling on a success that carries a `Retry-After`.
    success_with_retry_after_keeps_doubling: bool,
    /// `Router::poll_action`: "an unreported check expires after `probe_timeout_ms` (a new one
    /// may then be asked for, and the old ticket is stale)". The engine still accepts an expired
    /// check of an idle healthy provider until a new one has been asked for.
    idle_check_accepted_after_expiry: bool,
    /// `ProviderView::window`: "Window figures as of the last input". The engine's view shows the
    /// window as of the provider's last recorded outcome: picks and `handle_timeout` do not move
    /// it, so a provider idle for an hour still shows the failures of its last minute of traffic
    /// (and its `latency_ms`).
    view_window_as_of_last_outcome: bool,
}

impl Semantics {
    /// What the documentation says. The first three were settled by documenting the engine's rule
    /// (each trigger is judged on an outcome of its own kind: a circuit never opens on an outcome
    /// that shows nothing wrong); the rest by fixing the engine.
    const DOCUMENTED: Semantics = Semantics {
        error_rate_only_on_failures: true,
        slow_calls_only_on_slow_calls: true,
        latency_only_on_calls_above_limit: true,
        no_learning_on_records_while_throttled: false,
        success_with_retry_after_keeps_doubling: false,
        idle_check_accepted_after_expiry: false,
        view_window_as_of_last_outcome: false,
    };
    /// What the engine does today (every `true` is reported as a disagreement).
    const ENGINE: Semantics = Semantics::DOCUMENTED;
}

/// When something handed out at `now` with a timeout expires: nothing expires at the instant it
/// was issued, so when the deadline saturates to `now` (at `u64::MAX`) it never does.
fn expiry(now: u64, timeout: u64) -> Option<u64> {
    let d = now.saturating_add(timeout);
    (d > now).then_some(d)
}

// ------------------------------------------------------------------------------------------------
// The policy, in exact units.
// ------------------------------------------------------------------------------------------------

/// A policy with every rate given exactly in parts per million, so the model can compare rates
/// exactly (`part / whole >= ppm / 1e6`) without caring how the engine rounds a float.
#[derive(Clone, Debug)]
struct Spec {
    providers: usize,
    bucket_ms: u64,
    buckets: u64,
    min_volume: u32,
    error_rate: Option<u32>,
    consecutive: Option<u32>,
    timeout_rate: Option<u32>,
    timeout_sustain_ms: u64,
    slow_call_ms: u32,
    slow_rate: Option<u32>,
    /// Thousandths.
    latency_factor_milli: Option<u64>,
    latency_quantile: u32,
    latency_baseline_ms: u64,
    count_client_errors: bool,
    open_base_ms: u64,
    open_multiplier: f64,
    open_max_ms: u64,
    jitter: u32,
    seed: u64,
    backoff_decay_ms: u64,
    probe_mode: ProbeMode,
    probe_max: u32,
    probe_successes: u32,
    probe_timeout_ms: u64,
    health_check_interval_ms: Option<u64>,
    /// (share ppm, dwell ms).
    ramp: Vec<(u32, u64)>,
    ramp_min_samples: u32,
    rollback: u32,
    throttle_base_ms: u64,
    throttle_max_ms: u64,
    max_retry_after_ms: u64,
    all_down: AllDown,
}

fn frac(ppm: u32) -> f64 {
    f64::from(ppm) / 1e6
}

impl Spec {
    fn policy(&self) -> Policy {
        let mut ramp = heapless::Vec::new();
        for &(share, dwell_ms) in &self.ramp {
            ramp.push(RampStage {
                share: frac(share),
                dwell_ms,
            })
            .unwrap();
        }
        Policy {
            bucket_ms: self.bucket_ms,
            window_ms: self.bucket_ms * self.buckets,
            min_volume: self.min_volume,
            error_rate_threshold: self.error_rate.map(frac),
            consecutive_failures: self.consecutive,
            timeout_rate_threshold: self.timeout_rate.map(frac),
            timeout_sustain_ms: self.timeout_sustain_ms,
            slow_call_ms: self.slow_call_ms,
            slow_call_rate_threshold: self.slow_rate.map(frac),
            latency_factor: self.latency_factor_milli.map(|k| k as f64 / 1000.0),
            latency_quantile: frac(self.latency_quantile),
            latency_baseline_ms: self.latency_baseline_ms,
            count_client_errors: self.count_client_errors,
            open_base_ms: self.open_base_ms,
            open_multiplier: self.open_multiplier,
            open_max_ms: self.open_max_ms,
            open_jitter: frac(self.jitter),
            seed: self.seed,
            backoff_decay_ms: self.backoff_decay_ms,
            probe_mode: self.probe_mode,
            probe_max_in_flight: self.probe_max,
            probe_successes: self.probe_successes,
            probe_timeout_ms: self.probe_timeout_ms,
            health_check_interval_ms: self.health_check_interval_ms,
            ramp,
            ramp_min_samples: self.ramp_min_samples,
            ramp_rollback_threshold: frac(self.rollback),
            throttle_base_ms: self.throttle_base_ms,
            throttle_max_ms: self.throttle_max_ms,
            max_retry_after_ms: self.max_retry_after_ms,
                        when_all_down: self.all_down,
                        ..Policy::default()
        }
    }

    fn names(&self) -> Vec<String> {
        (0..self.providers).map(|i| format!("p{i}")).collect()
    }
}

/// `part / whole` reaches `ppm / 1e6`, exactly.
fn reaches(part: u64, whole: u64, ppm: u32) -> bool {
    whole > 0 && u128::from(part) * u128::from(PPM) >= u128::from(ppm) * u128::from(whole)
}

/// `part / whole` in ppm, rounded down.
fn rate(part: u64, whole: u64) -> u64 {
    if whole == 0 {
        0
    } else {
        (u128::from(part) * u128::from(PPM) / u128::from(whole)) as u64
    }
}

// ------------------------------------------------------------------------------------------------
// The model.
// ------------------------------------------------------------------------------------------------

/// The half-octave histogram bin of a latency, as `window.rs` documents it: bin 2e holds
/// [2^e, 1.5·2^e) ms and bin 2e + 1 holds [1.5·2^e, 2^(e+1)) ms; 0 ms counts as 1 ms; 32 bins, the
/// last holds everything slower.
fn bin_of(latency: u32) -> usize {
    let x = u64::from(latency.max(1));
    let mut e = 0u64;
    while (2u64 << e) <= x {
        e += 1;
    }
    let bin = if 2 * x >= 3 << e { 2 * e + 1 } else { 2 * e };
    bin.min(31) as usize
}

/// The latency a bin stands for: the middle of its range.
fn bin_mid(bin: usize) -> u32 {
    let lo = 1u32 << (bin / 2);
    if bin.is_multiple_of(2) {
        lo + lo / 4
    } else {
        lo + lo / 2 + lo / 4
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Rec {
    bucket: u64,
    kind: OutcomeKind,
    slow: bool,
    latency: u32,
}

#[derive(Clone, Debug, PartialEq)]
struct MProv {
    // Passive health.
    recs: Vec<Rec>,
    /// Grid index of the window's current bucket (moves only when an outcome is recorded or a
    /// timeout breach is re-judged).
    win_bucket: u64,
    consecutive: u32,
    breach_since: Option<u64>,
    baseline_milli: u64,
    baseline_updates: u32,
    // Circuit.
    state: CircuitState,
    generation: u32,
    strikes: u32,
    trips: u32,
    open_until: u64,
    healthy_since: u64,
    /// Outstanding probes: (sequence number, expiry; `None` when it cannot expire).
    probes: Vec<(u32, Option<u64>)>,
    probe_ok: u32,
    next_seq: u32,
    stage: usize,
    stage_since: u64,
    stage_samples: u32,
    credit: u64,
    throttled_until: Option<u64>,
    throttle_streak: u32,
    // Active checks of idle healthy providers.
    /// When an outcome was last recorded for it.
    last_seen: u64,
    /// The outstanding idle check: (sequence number, expiry; `None` when it cannot expire).
    check: Option<(u32, Option<u64>)>,
    check_seq: u32,
}

impl MProv {
    fn new() -> MProv {
        MProv {
            recs: Vec::new(),
            win_bucket: 0,
            consecutive: 0,
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
struct MTicket {
    provider: usize,
    kind: TicketKind,
    generation: u32,
    probe_seq: u32,
    degraded: bool,
    retry_after_ms: Option<u64>,
    issued_at_ms: u64,
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
struct MEvent {
    at_ms: u64,
    provider: usize,
    kind: EventKind,
}

/// A provider's view as plain data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MView {
    state: CircuitState,
    share_ppm: u32,
    throttled_until_ms: Option<u64>,
    open_until_ms: Option<u64>,
    ramp_stage: Option<u8>,
    strikes: u32,
    trips: u32,
    generation: u32,
    probes_in_flight: u32,
    probe_successes: u32,
    consecutive_failures: u32,
    window: WindowStats,
    latency_ms: Option<u32>,
    baseline_ms: Option<u32>,
    next_transition_ms: Option<u64>,
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

struct Model {
    s: Spec,
    sem: Semantics,
    now: u64,
    provs: Vec<MProv>,
    events: Vec<MEvent>,
    /// Jittered open durations taken from the engine, (provider, until), oldest first.
    jitter_draws: VecDeque<(usize, u64)>,
    /// Documented promises the engine broke that the event comparison would not show.
    broken: Vec<String>,
}

fn is_hard(s: &Spec, kind: OutcomeKind) -> bool {
    kind.is_hard_failure() || (s.count_client_errors && kind == OutcomeKind::ClientError)
}

impl Model {
    fn new(s: &Spec, sem: Semantics) -> Model {
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

    fn emit(&mut self, provider: usize, kind: EventKind) {
        self.events.push(MEvent {
            at_ms: self.now,
            provider,
            kind,
        });
    }

    /// "A `now` older than one already seen is treated as the latest time seen."
    fn clock(&mut self, t: u64) -> u64 {
        self.now = self.now.max(t);
        self.now
    }

    // --- the window -----------------------------------------------------------------------------

    fn live(&self, i: usize) -> impl Iterator<Item = &Rec> + '_ {
        self.live_at(i, self.provs[i].win_bucket)
    }

    /// The outcomes in provider `i`'s window when its current bucket is `cur`.
    fn live_at(&self, i: usize, cur: u64) -> impl Iterator<Item = &Rec> + '_ {
        let len = self.s.buckets;
        self.provs[i]
            .recs
            .iter()
            .filter(move |r| cur - r.bucket < len)
    }

    fn stats(&self, i: usize) -> WindowStats {
        self.stats_at(i, self.provs[i].win_bucket)
    }

    fn stats_at(&self, i: usize, cur: u64) -> WindowStats {
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

    fn latency_samples(&self, i: usize) -> u64 {
        self.live(i)
            .filter(|r| r.kind == OutcomeKind::Success)
            .count() as u64
    }

    /// The latency at quantile `q` of the window's successes: the smallest bin whose cumulative
    /// count reaches ceil(q · n) (at least 1).
    fn quantile(&self, i: usize, q: u32) -> Option<u32> {
        self.quantile_at(i, q, self.provs[i].win_bucket)
    }

    fn quantile_at(&self, i: usize, q: u32, cur: u64) -> Option<u32> {
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

    fn baseline_established(&self, i: usize) -> Option<u64> {
        let p = &self.provs[i];
        (p.baseline_updates as u64 >= self.s.buckets).then_some(p.baseline_milli)
    }

    /// Moves provider `i`'s window to `now`; on a bucket boundary a healthy provider's baseline
    /// learns the window's quantile.
    fn advance(&mut self, i: usize, now: u64, learn: bool) {
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
    fn learn(&mut self, i: usize) {
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

    fn check_timeouts(&mut self, i: usize, w: &WindowStats, now: u64) -> Option<Reason> {
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
    fn health_record(&mut self, i: usize, o: &Outcome, now: u64, evaluate: bool) -> Option<Reason> {
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
            } else if kind == OutcomeKind::Success {
                p.consecutive = 0;
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

    // --- the circuit ------------------------------------------------------------------------------

    /// The open duration for the current trip count before jitter: `open_base_ms` multiplied by
    /// `open_multiplier` for each further trip, capped at `open_max_ms`.
    fn ladder(&self, strikes: u32) -> u64 {
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
    fn max_strikes(&self) -> u32 {
        (1..=MAX_STRIKES)
            .find(|&k| self.ladder(k) >= self.s.open_max_ms)
            .unwrap_or(MAX_STRIKES)
    }

    fn trip(&mut self, i: usize, reason: Reason, now: u64) {
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

    fn enter_stage(&mut self, i: usize, stage: usize, now: u64) {
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
    fn ramp_record(&mut self, i: usize, kind: OutcomeKind) -> Option<Reason> {
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

    fn throttle(&mut self, i: usize, o: &Outcome, now: u64) {
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
    fn due(&self, i: usize) -> Option<u64> {
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
    fn timers(&mut self, i: usize, now: u64) -> bool {
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
    fn settle(&mut self, i: usize, now: u64) {
        for _ in 0..16 {
            if !self.timers(i, now) {
                return;
            }
        }
        panic!("model: provider {i} never settles at {now}");
    }

    /// "Every input first performs the transitions that are due."
    fn catch_up(&mut self) {
        for i in 0..self.provs.len() {
            self.settle(i, self.now);
        }
    }

    /// After an input changed provider `i`, what became due is performed at once; a deadline of
    /// `u64::MAX` means "never" until an input arrives at `u64::MAX` (`router.rs`).
    fn after_input(&mut self, i: usize) {
        if self.due(i).is_some_and(|d| d <= self.now && d != u64::MAX) {
            self.settle(i, self.now);
        }
    }

    fn apply(&mut self, i: usize, o: &Outcome, probe: bool, now: u64) {
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
                if p.probe_ok >= self.s.probe_successes {
                    // Recovery confirmed: a new generation, and a fresh window for the ramp.
                    p.generation = p.generation.wrapping_add(1);
                    p.probes.clear();
                    self.enter_stage(i, 0, now);
                    let p = &mut self.provs[i];
                    p.recs.clear();
                    p.consecutive = 0;
                    p.breach_since = None;
                }
            }
        }
        self.after_input(i);
    }

    // --- the router -------------------------------------------------------------------------------

    fn ticket(&self, i: usize, kind: TicketKind, seq: u32) -> MTicket {
        MTicket {
            provider: i,
            kind,
            generation: self.provs[i].generation,
            probe_seq: seq,
            degraded: false,
            retry_after_ms: None,
            issued_at_ms: self.now,
        }
    }

    fn free_permit(&self, i: usize) -> bool {
        let p = &self.provs[i];
        p.state == CircuitState::Probing && p.probes.len() < self.s.probe_max as usize
    }

    fn take_permit(&mut self, i: usize) -> u32 {
        let now = self.now;
        let p = &mut self.provs[i];
        let seq = p.next_seq;
        p.next_seq = p.next_seq.wrapping_add(1);
        p.probes.push((seq, expiry(now, self.s.probe_timeout_ms)));
        self.after_input(i);
        seq
    }

    fn available_at(&self, i: usize) -> u64 {
        let p = &self.provs[i];
        let now = self.now;
        let state_at = match p.state {
            CircuitState::Healthy | CircuitState::Ramping => now,
            CircuitState::Open => p.open_until,
            CircuitState::Probing if self.free_permit(i) => now,
            CircuitState::Probing => p
                .probes
                .iter()
                .filter_map(|x| x.1)
                .min()
                .unwrap_or(u64::MAX),
        };
        state_at.max(p.throttled_until.unwrap_or(now)).max(now)
    }

    fn pick(&mut self, t: u64, key: Option<u64>, tried: u64) -> Result<MTicket, u64> {
        let now = self.clock(t);
        self.catch_up();
        let mut first_ramping = None;
        for i in 0..self.provs.len() {
            if tried & (1 << i) != 0 || self.provs[i].throttled_until.is_some() {
                continue;
            }
            match self.provs[i].state {
                CircuitState::Healthy => return Ok(self.ticket(i, TicketKind::Request, 0)),
                CircuitState::Ramping => {
                    let share = u64::from(self.s.ramp[self.provs[i].stage].0);
                    let take = match key {
                        Some(h) => u64::from(key_position(h, i)) < share,
                        None => {
                            // Exactly `share` of the requests offered: a credit accumulator.
                            let p = &mut self.provs[i];
                            p.credit += share;
                            if p.credit >= PPM {
                                p.credit -= PPM;
                                true
                            } else {
                                false
                            }
                        }
                    };
                    if take {
                        return Ok(self.ticket(i, TicketKind::Request, 0));
                    }
                    first_ramping.get_or_insert(i);
                }
                CircuitState::Probing => {
                    if self.s.probe_mode == ProbeMode::Requests && self.free_permit(i) {
                        let seq = self.take_permit(i);
                        return Ok(self.ticket(i, TicketKind::Probe, seq));
                    }
                }
                CircuitState::Open => {}
            }
        }
        if let Some(i) = first_ramping {
            return Ok(self.ticket(i, TicketKind::Request, 0));
        }
        // Nobody can take it: the provider expected back soonest (first in priority on a tie).
        let soonest = |skip_tried: bool| {
            (0..self.provs.len())
                .filter(|&i| !(skip_tried && tried & (1 << i) != 0))
                .map(|i| (self.available_at(i), i))
                .min()
        };
        match soonest(true) {
            Some((at, i)) if self.s.all_down == AllDown::Soonest => {
                let mut t = self.ticket(i, TicketKind::Request, 0);
                t.degraded = true;
                t.retry_after_ms = Some(at - now);
                Ok(t)
            }
            Some((at, _)) => Err(at - now),
            None => Err(soonest(false).map_or(0, |(at, _)| at - now)),
        }
    }

    fn record(&mut self, t: &MTicket, o: &Outcome, at: u64) -> Recorded {
        let now = self.clock(at);
        self.catch_up();
        let i = t.provider;
        if i >= self.provs.len() {
            return Recorded::UnknownProvider;
        }
        if t.generation != self.provs[i].generation {
            return Recorded::Stale;
        }
        let mut probe = t.kind != TicketKind::Request;
        if t.kind == TicketKind::HealthCheck && self.provs[i].state == CircuitState::Healthy {
            // A check of an idle healthy provider: counted like a request.
            let accept_expired = self.sem.idle_check_accepted_after_expiry;
            match self.provs[i].check {
                Some((seq, until))
                    if seq == t.probe_seq && (until.is_none_or(|u| now < u) || accept_expired) =>
                {
                    self.provs[i].check = None;
                }
                _ => return Recorded::Stale,
            }
            probe = false;
        } else if probe {
            let Some(pos) = self.provs[i].probes.iter().position(|x| x.0 == t.probe_seq) else {
                return Recorded::Stale;
            };
            self.provs[i].probes.remove(pos);
        }
        self.apply(i, o, probe, now);
        Recorded::Accepted
    }

    fn observe(&mut self, i: usize, o: &Outcome, at: u64) -> Recorded {
        let now = self.clock(at);
        self.catch_up();
        if i >= self.provs.len() {
            return Recorded::UnknownProvider;
        }
        self.apply(i, o, false, now);
        Recorded::Accepted
    }

    /// When provider `i` next needs a health check, if it will: a free probe permit in the
    /// `health_checks` mode (now), or an idle healthy provider under `health_check_interval_ms`
    /// (once idle that long and no unexpired check is outstanding). Never while throttled.
    fn check_due_at(&self, i: usize) -> Option<u64> {
        let p = &self.provs[i];
        if p.throttled_until.is_some() {
            return None;
        }
        match p.state {
            CircuitState::Probing if self.s.probe_mode == ProbeMode::HealthChecks => {
                self.free_permit(i).then_some(self.now)
            }
            CircuitState::Healthy => {
                let idle = p.last_seen.saturating_add(self.s.health_check_interval_ms?);
                match p.check {
                    None => Some(idle),
                    Some((_, Some(until))) => Some(idle.max(until)),
                    // A check that cannot expire is never replaced.
                    Some((_, None)) => None,
                }
            }
            _ => None,
        }
    }

    fn poll_action(&mut self, at: u64) -> Option<MTicket> {
        let now = self.clock(at);
        self.catch_up();
        for i in 0..self.provs.len() {
            if self.check_due_at(i).is_none_or(|d| d > now) {
                continue;
            }
            if self.provs[i].state == CircuitState::Healthy {
                let p = &mut self.provs[i];
                let seq = p.check_seq;
                p.check_seq = seq.wrapping_add(1);
                p.check = Some((seq, expiry(now, self.s.probe_timeout_ms)));
                return Some(self.ticket(i, TicketKind::HealthCheck, seq));
            }
            let seq = self.take_permit(i);
            return Some(self.ticket(i, TicketKind::HealthCheck, seq));
        }
        None
    }

    fn handle_timeout(&mut self, at: u64) {
        self.clock(at);
        self.catch_up();
    }

    fn poll_timeout(&self) -> Option<u64> {
        let timers = (0..self.provs.len()).filter_map(|i| self.due(i));
        let checks =
            (0..self.provs.len()).filter_map(|i| self.check_due_at(i).map(|d| d.max(self.now)));
        let d = timers.chain(checks).min().unwrap_or(u64::MAX);
        (d != u64::MAX).then_some(d)
    }

    fn view(&self, i: usize) -> MView {
        let p = &self.provs[i];
        let cur = if self.sem.view_window_as_of_last_outcome {
            p.win_bucket
        } else {
            p.win_bucket.max(self.now / self.s.bucket_ms)
        };
        let share_ppm = if p.throttled_until.is_some() {
            0
        } else {
            match p.state {
                CircuitState::Healthy => PPM as u32,
                CircuitState::Ramping => self.s.ramp[p.stage].0,
                CircuitState::Open | CircuitState::Probing => 0,
            }
        };
        MView {
            state: p.state,
            share_ppm,
            throttled_until_ms: p.throttled_until,
            open_until_ms: (p.state == CircuitState::Open).then_some(p.open_until),
            ramp_stage: (p.state == CircuitState::Ramping).then_some(p.stage as u8),
            strikes: p.strikes,
            trips: p.trips,
            generation: p.generation,
            probes_in_flight: p.probes.len() as u32,
            // "in the current probing phase": none outside one.
            probe_successes: if p.state == CircuitState::Probing {
                p.probe_ok
            } else {
                0
            },
            consecutive_failures: p.consecutive,
            window: self.stats_at(i, cur),
            latency_ms: self.quantile_at(i, self.s.latency_quantile, cur),
            baseline_ms: (p.baseline_updates > 0)
                .then_some((p.baseline_milli / 1000).min(u64::from(u32::MAX)) as u32),
            next_transition_ms: self.due(i).filter(|&d| d != u64::MAX),
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Random policies and event sequences.
// ------------------------------------------------------------------------------------------------

fn ppm_of(choices: &'static [u32]) -> impl Strategy<Value = u32> {
    prop::sample::select(choices)
}

fn spec() -> impl Strategy<Value = Spec> {
    let window = (
        1..=4usize,
        prop_oneof![1 => Just(1u64), 1 => Just(10), 3 => Just(100), 2 => 1..=50u64, 1 => Just(250)],
        1..=12u64,
        1..=8u32,
    );
    let triggers = (
        prop::option::weighted(0.8, ppm_of(&[1, 100_000, 250_000, 500_000, 1_000_000])),
        prop::option::weighted(0.7, 1..=5u32),
        prop::option::weighted(0.7, ppm_of(&[100_000, 300_000, 500_000, 1_000_000])),
        1..=300u64,
        prop_oneof![
            Just(1u32),
            Just(50),
            Just(300),
            Just(2_000),
            1..=5_000u32,
            Just(30_000)
        ],
        prop::option::weighted(0.6, ppm_of(&[1, 200_000, 500_000, 1_000_000])),
        prop::option::weighted(
            0.7,
            prop::sample::select(&[1_001u64, 1_500, 2_000, 3_000][..]),
        ),
        ppm_of(&[1, 500_000, 900_000, 1_000_000]),
        1..=3_000u64,
        any::<bool>(),
    );
    let circuit = (
        1..=300u64,
        prop::sample::select(&[1.0f64, 1.5, 2.0, 3.7, 1e9][..]),
        0..=3_000u64,
        ppm_of(&[0, 0, 100_000, 500_000, 999_999]),
        any::<u64>(),
        1..=1_000u64,
    );
    let probes = (
        prop_oneof![3 => Just(ProbeMode::Requests), 1 => Just(ProbeMode::HealthChecks)],
        prop_oneof![4 => 1..=3u32, 1 => 1..=8u32],
        1..=3u32,
        1..=300u64,
        prop::option::weighted(0.3, 1..=500u64),
    );
    let ramp = (
        prop::sample::subsequence(
            vec![
                1u32, 50_000, 100_000, 250_000, 333_333, 500_000, 750_000, 999_999,
            ],
            0..=3,
        ),
        prop::collection::vec(1..=200u64, 4),
        prop_oneof![Just(0u64), 1..=100u64],
        1..=5u32,
        ppm_of(&[1, 200_000, 500_000, 1_000_000]),
    );
    let throttle = (
        1..=100u64,
        0..=1_000u64,
        1..=5_000u64,
        prop_oneof![Just(AllDown::Soonest), Just(AllDown::Fail)],
    );
    (window, triggers, circuit, probes, ramp, throttle).prop_map(
        |(
            (providers, bucket_ms, buckets, min_volume),
            (er, cf, tr, sustain, slow_ms, sr, lf, lq, lb, cce),
            (ob, om, omx, jit, seed, decay),
            (pm, pmax, ps, pt, hci),
            (shares, dwells, last_dwell, rms, rb),
            (tb, tmx, mra, ad),
        )| {
            let mut ramp: Vec<(u32, u64)> = shares.into_iter().zip(dwells).collect();
            ramp.push((PPM as u32, last_dwell));
            Spec {
                providers,
                bucket_ms,
                buckets,
                min_volume,
                error_rate: er,
                consecutive: cf,
                timeout_rate: tr,
                timeout_sustain_ms: sustain,
                slow_call_ms: slow_ms,
                slow_rate: sr,
                latency_factor_milli: lf,
                latency_quantile: lq,
                latency_baseline_ms: lb,
                count_client_errors: cce,
                open_base_ms: ob,
                open_multiplier: om,
                open_max_ms: ob + omx,
                jitter: jit,
                seed,
                backoff_decay_ms: decay,
                probe_mode: pm,
                probe_max: pmax,
                probe_successes: ps,
                probe_timeout_ms: pt,
                health_check_interval_ms: hci,
                ramp,
                ramp_min_samples: rms,
                rollback: rb,
                throttle_base_ms: tb,
                throttle_max_ms: tb + tmx,
                max_retry_after_ms: mra,
                all_down: ad,
            }
        },
    )
}

/// How the driver's clock moves before an input.
#[derive(Clone, Copy, Debug)]
enum Dt {
    Fwd(u64),
    Same,
    Back(u64),
    Jump(u64),
    NearMax(u64),
    Max,
}

fn dt() -> impl Strategy<Value = Dt> {
    // Rare enough that most cases never reach the end of time (it is sticky: time never goes
    // back inside the engine).
    prop_oneof![
        1_200 => (0..=60u64).prop_map(Dt::Fwd),
        100 => Just(Dt::Same),
        100 => (1..=2_000u64).prop_map(Dt::Back),
        60 => (1_000..=10_000_000u64).prop_map(Dt::Jump),
        3 => (0..=5_000u64).prop_map(Dt::NearMax),
        1 => Just(Dt::Max),
    ]
}

/// Raw randomness for one outcome; the driver turns it into an outcome that depends on whether
/// the provider is in a good or a bad phase.
#[derive(Clone, Copy, Debug)]
struct RawOutcome {
    kind: u8,
    latency: u16,
    scale: u8,
    retry_after: u8,
    retry_ms: u64,
}

fn raw_outcome() -> impl Strategy<Value = RawOutcome> {
    (
        any::<u8>(),
        any::<u16>(),
        any::<u8>(),
        any::<u8>(),
        any::<u64>(),
    )
        .prop_map(|(kind, latency, scale, retry_after, retry_ms)| RawOutcome {
            kind,
            latency,
            scale,
            retry_after,
            retry_ms,
        })
}

#[derive(Clone, Debug)]
enum Op {
    /// Picks, and (usually) records the ticket's outcome at once, as a request would.
    Pick {
        dt: Dt,
        key: Option<u8>,
        tried: u8,
        then: Option<(Dt, RawOutcome)>,
    },
    /// Records the `which`-th outstanding ticket (kept for a duplicate report when `keep`).
    Record {
        dt: Dt,
        which: usize,
        keep: bool,
        out: RawOutcome,
    },
    /// Records a ticket the router never issued (unknown provider, wrong generation, wrong probe).
    Forged {
        dt: Dt,
        provider: u8,
        kind: u8,
        generation: i8,
        seq: u32,
        out: RawOutcome,
    },
    Observe {
        dt: Dt,
        provider: u8,
        out: RawOutcome,
    },
    PollAction {
        dt: Dt,
    },
    HandleTimeout {
        dt: Dt,
    },
    /// `handle_timeout(poll_timeout())`, the run loop's sleep.
    SleepUntilDeadline,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        40 => (
            dt(),
            prop::option::weighted(0.2, 0..8u8),
            prop_oneof![6 => Just(0u8), 1 => any::<u8>()],
            prop::option::weighted(0.7, (dt(), raw_outcome())),
        )
            .prop_map(|(dt, key, tried, then)| Op::Pick { dt, key, tried, then }),
        15 => (dt(), any::<usize>(), prop::bool::weighted(0.05), raw_outcome())
            .prop_map(|(dt, which, keep, out)| Op::Record { dt, which, keep, out }),
        2 => (dt(), 0..6u8, any::<u8>(), -2..=2i8, 0..4u32, raw_outcome()).prop_map(
            |(dt, provider, kind, generation, seq, out)| Op::Forged {
                dt,
                provider,
                kind,
                generation,
                seq,
                out
            }
        ),
        8 => (dt(), 0..5u8, raw_outcome())
            .prop_map(|(dt, provider, out)| Op::Observe { dt, provider, out }),
        6 => dt().prop_map(|dt| Op::PollAction { dt }),
        5 => dt().prop_map(|dt| Op::HandleTimeout { dt }),
        5 => Just(Op::SleepUntilDeadline),
    ]
}

/// A case: a policy, where time starts, how long the good and bad phases last, and the inputs.
#[derive(Clone, Debug)]
struct Case {
    spec: Spec,
    start: u64,
    phase: usize,
    /// A healthy call's usual latency, ms.
    normal_latency: u32,
    /// What a bad phase looks like: 0 errors, 1 slow successes, 2 timeouts.
    flavour: u8,
    ops: Vec<Op>,
}

fn case(max_ops: usize) -> impl Strategy<Value = Case> {
    (
        spec(),
        prop_oneof![
            8 => Just(0u64),
            4 => 0..=1_000_000u64,
            2 => Just(1_764_000_000_000u64),
            1 => (u64::MAX - 100_000)..=u64::MAX,
        ],
        5..=60usize,
        (5..=500u32, 0..3u8, 0..10u8),
        prop::collection::vec(op(), 1..=max_ops),
    )
        .prop_map(
            |(mut spec, start, phase, (normal_latency, mut flavour, focus), ops)| {
                if focus < 2 {
                    // A short window that learns its baseline quickly, then slow phases: the
                    // latency trigger's home ground.
                    spec.bucket_ms = 100;
                    spec.buckets = spec.buckets.min(4);
                    spec.min_volume = spec.min_volume.min(3);
                    spec.latency_factor_milli.get_or_insert(2_000);
                    spec.slow_rate = None;
                    flavour = 1;
                } else if focus < 4 {
                    // Quick trips and recoveries with a growing, then decaying, backoff.
                    spec.probe_successes = 1;
                    spec.ramp_min_samples = spec.ramp_min_samples.min(2);
                    for stage in &mut spec.ramp {
                        stage.1 = stage.1.min(20);
                    }
                    spec.open_base_ms = spec.open_base_ms.min(50);
                    spec.open_max_ms = spec.open_base_ms * 1_000;
                    spec.backoff_decay_ms = spec.backoff_decay_ms % 30 + 1;
                }
                Case {
                    spec,
                    start,
                    phase,
                    normal_latency,
                    flavour,
                    ops,
                }
            },
        )
}

fn advance(t: u64, dt: Dt) -> u64 {
    match dt {
        Dt::Fwd(d) => t.saturating_add(d),
        Dt::Same => t,
        Dt::Back(d) => t.saturating_sub(d),
        Dt::Jump(d) => t.saturating_add(d),
        Dt::NearMax(d) => u64::MAX - d,
        Dt::Max => u64::MAX,
    }
}

/// The outcome a call has: mostly successes in a good phase, mostly failures in a bad one.
fn outcome(raw: RawOutcome, bad: bool, case: &Case) -> Outcome {
    let spec = &case.spec;
    use OutcomeKind as K;
    let r = raw.kind;
    let kind = if bad && case.flavour == 2 {
        match r {
            0..=99 => K::Success,
            100..=109 => K::ServerError,
            110..=229 => K::Timeout,
            230..=239 => K::RateLimited,
            _ => K::Cancelled,
        }
    } else if bad && case.flavour == 0 {
        match r {
            0..=49 => K::Success,
            50..=129 => K::ServerError,
            130..=149 => K::ConnectionError,
            150..=214 => K::Timeout,
            215..=229 => K::RateLimited,
            230..=244 => K::ClientError,
            _ => K::Cancelled,
        }
    } else {
        match r {
            0..=214 => K::Success,
            215..=221 => K::ServerError,
            222..=224 => K::ConnectionError,
            225..=233 => K::Timeout,
            234..=241 => K::RateLimited,
            242..=249 => K::ClientError,
            _ => K::Cancelled,
        }
    };
    let l = u32::from(raw.latency);
    let normal = case.normal_latency;
    let latency = match raw.scale % 32 {
        0..=24 => normal + l % (normal / 4 + 1),
        25..=27 => spec.slow_call_ms.saturating_sub(50) + l % 100,
        28..=30 => l,
        _ => u32::MAX - l % 3,
    };
    // A slow phase: successes several times slower than normal.
    let latency = if bad && case.flavour == 1 {
        latency.saturating_mul(4 + u32::from(raw.scale / 32))
    } else {
        latency
    };
    let retry_after_ms = match raw.retry_after {
        0..=239 => None,
        240..=241 => Some(0),
        242..=248 => Some(raw.retry_ms % 200),
        249..=252 => Some(raw.retry_ms % 20_000),
        253 | 254 => Some(raw.retry_ms),
        _ => Some(u64::MAX),
    };
    // A 429 carries a Retry-After more often than other kinds.
    let retry_after_ms =
        if kind == K::RateLimited && retry_after_ms.is_none() && raw.retry_ms.is_multiple_of(3) {
            Some(raw.retry_ms % 500)
        } else {
            retry_after_ms
        };
    Outcome {
        kind,
        latency_ms: latency,
        retry_after_ms,
    }
}

// ------------------------------------------------------------------------------------------------
// The lockstep driver.
// ------------------------------------------------------------------------------------------------

/// What a run exercised: how often each event, trigger and result was seen.
#[derive(Default, Debug)]
struct Coverage {
    seen: std::collections::BTreeMap<String, u64>,
}

impl Coverage {
    fn note(&mut self, what: impl Into<String>) {
        *self.seen.entry(what.into()).or_default() += 1;
    }
}

fn run(case: &Case, sem: Semantics, cov: &mut Coverage) -> Result<(), TestCaseError> {
    let spec = &case.spec;
    let policy = spec.policy();
    let names = spec.names();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut core = Core::new(&policy, &names)
        .map_err(|e| TestCaseError::fail(format!("a valid policy was refused: {e}")))?;
    // Ids of providers 0..8 for forged tickets (the core has at most four).
    let id_source = {
        let mut p = Policy {
            window_ms: 1_000,
            ..Policy::default()
        };
        p.bucket_ms = 1_000;
        Router::<8, 1, 1>::new(&p, &["a", "b", "c", "d", "e", "f", "g", "h"]).unwrap()
    };
    let ids: Vec<ProviderId> = (0..8).map(|i| id_source.provider_at(i).unwrap()).collect();
    let mut model = Model::new(spec, sem);
    let mut tickets: Vec<Ticket> = Vec::new();
    let mut t = case.start;

    for (step, op) in case.ops.iter().enumerate() {
        let bad = |provider: usize| ((step / case.phase) + provider).is_multiple_of(3);
        // Each input goes to the core first, so the model can take the core's jitter draws.
        let mut core_out = String::new();
        let mut model_out = String::new();
        let mut model_step: Box<dyn FnMut(&mut Model) -> String> = match op {
            Op::Pick {
                dt,
                key,
                tried,
                then,
            } => {
                t = advance(t, *dt);
                let key = key.map(|k| failover_core::hash_key(&[k]));
                let mut set = ProviderSet::new();
                for (i, id) in ids.iter().enumerate() {
                    if tried & (1 << i) != 0 {
                        set.insert(*id);
                    }
                }
                let r = core.pick_with(t, &PickRequest { key, tried: set });
                core_out = format!(
                    "{:?}",
                    r.as_ref().map(MTicket::from).map_err(|u| u.retry_after_ms)
                );
                let (at, mask) = (t, u64::from(*tried));
                let mut then_record = None;
                match (r, then) {
                    (Ok(ticket), Some((dt2, raw))) => {
                        t = advance(t, *dt2);
                        let o = outcome(*raw, bad(ticket.provider.index()), case);
                        core_out.push_str(&format!(" {:?}", core.record(&ticket, o, t)));
                        then_record = Some((MTicket::from(&ticket), o, t));
                    }
                    (Ok(ticket), None) => tickets.push(ticket),
                    (Err(_), _) => {}
                }
                Box::new(move |m: &mut Model| {
                    let mut out = format!("{:?}", m.pick(at, key, mask));
                    if let Some((mt, o, at2)) = then_record {
                        out.push_str(&format!(" {:?}", m.record(&mt, &o, at2)));
                    }
                    out
                })
            }
            Op::Record {
                dt,
                which,
                keep,
                out,
            } => {
                t = advance(t, *dt);
                if tickets.is_empty() {
                    Box::new(|_| String::new())
                } else {
                    let k = which % tickets.len();
                    let ticket = if *keep {
                        tickets[k]
                    } else {
                        tickets.swap_remove(k)
                    };
                    let o = outcome(*out, bad(ticket.provider.index()), case);
                    core_out = format!("{:?}", core.record(&ticket, o, t));
                    let (mt, at) = (MTicket::from(&ticket), t);
                    Box::new(move |m: &mut Model| format!("{:?}", m.record(&mt, &o, at)))
                }
            }
            Op::Forged {
                dt,
                provider,
                kind,
                generation,
                seq,
                out,
            } => {
                t = advance(t, *dt);
                let i = usize::from(*provider);
                let generation = core
                    .view(ids[i])
                    .map_or(0, |v| v.generation)
                    .wrapping_add_signed(i32::from(*generation));
                let kind = [
                    TicketKind::Request,
                    TicketKind::Probe,
                    TicketKind::HealthCheck,
                ][usize::from(*kind) % 3];
                let ticket = Ticket {
                    provider: ids[i],
                    kind,
                    generation,
                    probe_seq: *seq,
                    degraded: false,
                    retry_after_ms: None,
                    issued_at_ms: t,
                };
                let o = outcome(*out, bad(i), case);
                core_out = format!("{:?}", core.record(&ticket, o, t));
                let (mt, at) = (MTicket::from(&ticket), t);
                Box::new(move |m: &mut Model| format!("{:?}", m.record(&mt, &o, at)))
            }
            Op::Observe { dt, provider, out } => {
                t = advance(t, *dt);
                let i = usize::from(*provider);
                let o = outcome(*out, bad(i), case);
                core_out = format!("{:?}", core.observe(ids[i], o, t));
                let at = t;
                Box::new(move |m: &mut Model| format!("{:?}", m.observe(i, &o, at)))
            }
            Op::PollAction { dt } => {
                t = advance(t, *dt);
                let a = core.poll_action(t);
                let a = a.map(|failover_core::Action::HealthCheck(ticket)| {
                    tickets.push(ticket);
                    MTicket::from(&ticket)
                });
                core_out = format!("{a:?}");
                let at = t;
                Box::new(move |m: &mut Model| format!("{:?}", m.poll_action(at)))
            }
            Op::HandleTimeout { dt } => {
                t = advance(t, *dt);
                core.handle_timeout(t);
                let at = t;
                Box::new(move |m: &mut Model| {
                    m.handle_timeout(at);
                    String::new()
                })
            }
            Op::SleepUntilDeadline => {
                let d = core.poll_timeout();
                prop_assert_eq!(d, model.poll_timeout(), "poll_timeout before step {}", step);
                if let Some(d) = d {
                    t = d;
                    core.handle_timeout(d);
                    Box::new(move |m: &mut Model| {
                        m.handle_timeout(d);
                        String::new()
                    })
                } else {
                    Box::new(|_| String::new())
                }
            }
        };
        let core_events: Vec<MEvent> = std::iter::from_fn(|| core.poll_event())
            .map(|e| MEvent {
                at_ms: e.at_ms,
                provider: e.provider.index(),
                kind: e.kind,
            })
            .collect();
        model.jitter_draws = core_events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::Opened { until_ms, .. } => Some((e.provider, until_ms)),
                _ => None,
            })
            .collect();
        model_out.push_str(&model_step(&mut model));
        let model_events = std::mem::take(&mut model.events);

        for e in &core_events {
            cov.note(format!("event {}", e.kind.name()));
            if let EventKind::Opened { reason, from, .. } = e.kind {
                cov.note(format!("trigger {}", reason.trigger.name()));
                cov.note(format!("opened from {}", from.name()));
            }
        }
        let first_word = |s: &str| s.split(['(', ' ', '{']).next().unwrap_or("").to_string();
        match op {
            Op::Pick { .. } if core_out.contains("degraded: true") => cov.note("pick degraded"),
            Op::Pick { .. } if core_out.contains("Probe,") => cov.note("pick probe"),
            Op::Pick { .. } if core_out.starts_with("Err") => cov.note("pick unavailable"),
            Op::Pick { .. } => cov.note("pick request"),
            Op::PollAction { .. } if core_out.starts_with("Some") => cov.note("health check"),
            Op::Record { .. } | Op::Forged { .. } | Op::Observe { .. } if !core_out.is_empty() => {
                cov.note(format!("recorded {}", first_word(&core_out)))
            }
            _ => {}
        }
        if t == u64::MAX {
            cov.note("time at u64::MAX");
        }
        for i in 0..spec.providers {
            if model.baseline_established(i).is_some() {
                cov.note("baseline established");
            }
        }
        let ctx = || format!("step {step}: {op:?} at t = {t}");
        prop_assert_eq!(&core_out, &model_out, "result differs; {}", ctx());
        prop_assert_eq!(&core_events, &model_events, "events differ; {}", ctx());
        prop_assert!(model.broken.is_empty(), "{:?}; {}", model.broken, ctx());
        prop_assert_eq!(core.now(), model.now, "now differs; {}", ctx());
        prop_assert_eq!(core.dropped_events(), 0);
        for (i, id) in ids.iter().enumerate().take(spec.providers) {
            let cv = MView::from(&core.view(*id).unwrap());
            let mv = model.view(i);
            prop_assert_eq!(cv, mv, "provider {} differs; {}", i, ctx());
        }
        prop_assert_eq!(
            core.poll_timeout(),
            model.poll_timeout(),
            "poll_timeout differs; {}",
            ctx()
        );
        prop_assert_eq!(core.invariant_violation(), None, "{}", ctx());
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("MODEL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 20_000,
        .. ProptestConfig::default()
    })]

    /// The engine agrees with the model on every decision, state, share and event.
    #[test]
    fn engine_agrees_with_the_model(case in case(160)) {
        run(&case, Semantics::ENGINE, &mut Coverage::default())?;
    }
}

// ------------------------------------------------------------------------------------------------
// Directed checks of the model itself, so that agreement means something.
// ------------------------------------------------------------------------------------------------

#[test]
fn model_bins_match_the_documented_half_octaves() {
    assert_eq!(bin_of(0), 0);
    assert_eq!(bin_of(1), 0);
    assert_eq!(bin_of(2), 2);
    assert_eq!(bin_of(3), 3);
    assert_eq!(bin_of(4), 4);
    assert_eq!(bin_of(5), 4);
    assert_eq!(bin_of(6), 5);
    assert_eq!(bin_of(1000), 19);
    assert_eq!(bin_of(u32::MAX), 31);
    for b in 0..32 {
        // Bin 1 ([1.5, 2) ms) holds no integer latency; its middle rounds down into bin 0.
        let expect = if b == 1 { 0 } else { b };
        assert_eq!(bin_of(bin_mid(b)), expect);
    }
}

#[test]
fn model_ladder_follows_the_policy() {
    let s = Spec {
        open_base_ms: 30_000,
        open_multiplier: 2.0,
        open_max_ms: 600_000,
        ..default_spec()
    };
    let m = Model::new(&s, Semantics::DOCUMENTED);
    let ladder: Vec<u64> = (1..=7).map(|k| m.ladder(k)).collect();
    assert_eq!(
        ladder,
        [30_000, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000]
    );
    assert_eq!(m.max_strikes(), 6);
}

/// The defaults of `Policy`, as a `Spec`.
fn default_spec() -> Spec {
    Spec {
        providers: 2,
        bucket_ms: 1_000,
        buckets: 60,
        min_volume: 20,
        error_rate: Some(500_000),
        consecutive: Some(5),
        timeout_rate: Some(300_000),
        timeout_sustain_ms: 30_000,
        slow_call_ms: 30_000,
        slow_rate: Some(500_000),
        latency_factor_milli: Some(3_000),
        latency_quantile: 500_000,
        latency_baseline_ms: 1_800_000,
        count_client_errors: false,
        open_base_ms: 30_000,
        open_multiplier: 2.0,
        open_max_ms: 600_000,
        jitter: 100_000,
        seed: 0,
        backoff_decay_ms: 600_000,
        probe_mode: ProbeMode::Requests,
        probe_max: 1,
        probe_successes: 3,
        probe_timeout_ms: 60_000,
        health_check_interval_ms: None,
        ramp: vec![
            (50_000, 400_000),
            (250_000, 400_000),
            (500_000, 400_000),
            (1_000_000, 0),
        ],
        ramp_min_samples: 10,
        rollback: 200_000,
        throttle_base_ms: 1_000,
        throttle_max_ms: 60_000,
        max_retry_after_ms: 600_000,
        all_down: AllDown::Soonest,
    }
}

#[test]
fn default_spec_is_the_default_policy() {
    assert_eq!(default_spec().policy(), Policy::default());
}

/// The outage story of the domain brief, in lockstep: a long scripted run through every state.
#[test]
fn the_outage_story_agrees() {
    let mut ops = Vec::new();
    let ok = RawOutcome {
        kind: 0,
        latency: 5,
        scale: 0,
        retry_after: 0,
        retry_ms: 0,
    };
    for k in 0..4_000 {
        ops.push(Op::Pick {
            dt: Dt::Fwd(if k % 7 == 0 { 0 } else { 3 }),
            key: if k % 5 == 0 {
                Some((k % 8) as u8)
            } else {
                None
            },
            tried: 0,
            then: None,
        });
        ops.push(Op::Record {
            dt: Dt::Fwd(1),
            which: 0,
            keep: false,
            out: RawOutcome {
                kind: (k * 37 % 256) as u8,
                ..ok
            },
        });
        if k % 50 == 0 {
            ops.push(Op::SleepUntilDeadline);
        }
    }
    let spec = Spec {
        providers: 3,
        bucket_ms: 100,
        buckets: 12,
        min_volume: 5,
        timeout_sustain_ms: 500,
        slow_call_ms: 300,
        latency_baseline_ms: 2_000,
        open_base_ms: 200,
        open_max_ms: 2_000,
        backoff_decay_ms: 3_000,
        probe_timeout_ms: 300,
        ramp: vec![
            (50_000, 300),
            (250_000, 300),
            (500_000, 300),
            (1_000_000, 0),
        ],
        ramp_min_samples: 3,
        throttle_base_ms: 50,
        throttle_max_ms: 500,
        max_retry_after_ms: 400,
        ..default_spec()
    };
    let case = Case {
        spec,
        start: 0,
        phase: 150,
        normal_latency: 40,
        flavour: 0,
        ops,
    };
    let mut cov = Coverage::default();
    run(&case, Semantics::ENGINE, &mut cov).unwrap();
    for what in [
        "event opened",
        "event probing",
        "event ramp_stage",
        "event recovered",
    ] {
        assert!(cov.seen.contains_key(what), "{what} not reached: {cov:#?}");
    }
}

/// The random cases reach every event, every trigger and every kind of result, so that
/// agreement means something. Prints what it saw (`--nocapture`).
#[test]
fn random_cases_reach_every_behaviour() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = case(160);
    let mut cov = Coverage::default();
    for _ in 0..300 {
        let c = strategy.new_tree(&mut runner).unwrap().current();
        run(&c, Semantics::ENGINE, &mut cov).unwrap();
    }
    println!("{cov:#?}");
    let mut want: Vec<String> = [
        "opened",
        "probing",
        "probe_expired",
        "ramp_stage",
        "recovered",
        "throttled",
        "unthrottled",
        "backoff_decayed",
    ]
    .iter()
    .map(|e| format!("event {e}"))
    .collect();
    want.extend(
        [
            "error_rate",
            "consecutive_failures",
            "sustained_timeouts",
            "slow_calls",
            "latency_degradation",
            "probe_failed",
            "ramp_rollback",
        ]
        .iter()
        .map(|t| format!("trigger {t}")),
    );
    want.extend(
        [
            "opened from healthy",
            "opened from probing",
            "opened from ramping",
            "pick degraded",
            "pick probe",
            "pick unavailable",
            "pick request",
            "health check",
            "recorded Accepted",
            "recorded Stale",
            "recorded UnknownProvider",
            "time at u64::MAX",
        ]
        .map(String::from),
    );
    let missing: Vec<&String> = want.iter().filter(|w| !cov.seen.contains_key(*w)).collect();
    assert!(missing.is_empty(), "never reached: {missing:?}");
}

// ------------------------------------------------------------------------------------------------
// Minimal reproductions of the known disagreements (each asserts the documented behaviour).
// ------------------------------------------------------------------------------------------------

fn small_policy() -> Policy {
    Policy {
        bucket_ms: 1_000,
        window_ms: 10_000,
        min_volume: 4,
        consecutive_failures: None,
        timeout_rate_threshold: None,
        slow_call_rate_threshold: None,
        latency_factor: None,
        open_jitter: 0.0,
        ..Policy::default()
    }
}

/// A throttled provider is still healthy, but a bucket boundary crossed by a recorded outcome
/// while it is throttled does not teach its baseline (the timer path does).
#[test]
fn repro_baseline_does_not_learn_while_throttled() {
    let p = Policy {
        bucket_ms: 1_000,
        window_ms: 2_000,
        min_volume: 1,
        latency_factor: Some(3.0),
        ..small_policy()
    };
    let mut r: Router<2, 12, 16> = Router::new(&p, &["a", "b"]).unwrap();
    let a = r.provider_at(0).unwrap();
    r.observe(a, Outcome::success(100), 0);
    r.observe(a, Outcome::rate_limited(Some(10_000)), 500);
    let v = r.view(a).unwrap();
    assert_eq!(v.state, CircuitState::Healthy);
    assert_eq!(v.throttled_until_ms, Some(10_500));
    // Crosses a bucket boundary with one latency sample in the window.
    r.observe(a, Outcome::success(100), 1_000);
    assert_eq!(
        r.view(a).unwrap().baseline_ms,
        Some(112),
        "healthy (throttling is not a state): the baseline learns the window's p50"
    );
}

/// A success ends a run of 429s, also when it carries a `Retry-After`.
#[test]
fn repro_success_with_retry_after_keeps_the_429_doubling() {
    let mut r: Router<2, 12, 16> = Router::new(&small_policy(), &["a", "b"]).unwrap();
    let a = r.provider_at(0).unwrap();
    r.observe(a, Outcome::rate_limited(None), 0);
    assert_eq!(r.view(a).unwrap().throttled_until_ms, Some(1_000));
    let ok_with_hint = Outcome {
        retry_after_ms: Some(0),
        ..Outcome::success(10)
    };
    r.observe(a, ok_with_hint, 2_000);
    r.observe(a, Outcome::rate_limited(None), 3_000);
    assert_eq!(
        r.view(a).unwrap().throttled_until_ms,
        Some(4_000),
        "after a success the throttle starts again from throttle_base_ms"
    );
}

/// An idle check not reported within `probe_timeout_ms` has expired: its ticket is stale.
#[test]
fn repro_expired_idle_check_is_still_accepted() {
    let p = Policy {
        health_check_interval_ms: Some(1_000),
        probe_timeout_ms: 500,
        ..small_policy()
    };
    let mut r: Router<2, 12, 16> = Router::new(&p, &["a", "b"]).unwrap();
    let Some(failover_core::Action::HealthCheck(check)) = r.poll_action(1_000) else {
        panic!("an idle check is due at 1 000");
    };
    assert_eq!(
        r.record(&check, Outcome::success(10), 2_000),
        Recorded::Stale
    );
}

/// The view's window figures are "as of the last input", but picks and timers do not move it.
#[test]
fn repro_view_window_is_as_of_the_last_outcome() {
    let mut r: Router<2, 12, 16> = Router::new(&small_policy(), &["a", "b"]).unwrap();
    let a = r.provider_at(0).unwrap();
    r.observe(a, Outcome::server_error(10), 0);
    // An hour later, after inputs that are not outcomes of `a`.
    r.handle_timeout(3_600_000);
    let _ = r.pick(3_600_000);
    assert_eq!(
        r.view(a).unwrap().window.failures,
        0,
        "the 10 s window as of the last input holds nothing"
    );
}

/// At `now = u64::MAX` every saturated deadline is due at once; nothing may expire at the instant
/// it was issued, or `poll_action` would hand out a new check on every call and the documented
/// loop "call until `None`" would never end (a bug found by this model, now fixed).
#[test]
fn repro_poll_action_never_ends_at_the_end_of_time() {
    // An idle healthy provider: its check's expiry saturates to u64::MAX, which is "due".
    let p = Policy {
        health_check_interval_ms: Some(1_000),
        ..small_policy()
    };
    let mut r: Router<2, 12, 16> = Router::new(&p, &["a", "b"]).unwrap();
    let mut checks = 0;
    while let Some(failover_core::Action::HealthCheck(_)) = r.poll_action(u64::MAX) {
        checks += 1;
        assert!(checks <= 2, "{checks} checks at u64::MAX and counting");
    }
    // A probing provider in the health_checks mode: its probe expires as soon as it is issued.
    let p = Policy {
        probe_mode: ProbeMode::HealthChecks,
        consecutive_failures: Some(1),
        ..small_policy()
    };
    let mut r: Router<2, 12, 16> = Router::new(&p, &["a", "b"]).unwrap();
    let a = r.provider_at(0).unwrap();
    r.observe(a, Outcome::server_error(1), u64::MAX - 10);
    r.handle_timeout(u64::MAX);
    assert_eq!(r.view(a).unwrap().state, CircuitState::Probing);
    let mut checks = 0;
    while let Some(failover_core::Action::HealthCheck(_)) = r.poll_action(u64::MAX) {
        checks += 1;
        assert!(checks <= 1, "{checks} probes at u64::MAX and counting");
    }
}
