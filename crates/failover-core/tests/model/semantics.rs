//! What the model believes where the documentation and the engine once disagreed, and the
//! policy in exact units.

use crate::*;

// ------------------------------------------------------------------------------------------------
// What the model believes, where the documentation and the engine disagree.
// ------------------------------------------------------------------------------------------------

/// Each flag is one known disagreement between the documentation and the engine. `false` is what
/// the documentation says; `true` is what the engine does.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Semantics {
    /// `triggers.rs` header: the triggers are "evaluated on every counted outcome"; `Policy`:
    /// the error-rate trigger "trips when hard failures / counted calls in the window reach this
    /// fraction". The engine evaluates the error rate only when the outcome is itself a hard
    /// failure, so a success or timeout that brings the window to `min_volume` (or an expiry that
    /// raises the rate) never trips it.
    pub(crate) error_rate_only_on_failures: bool,
    /// Same for the slow-call trigger: the engine evaluates it only on a slow success.
    pub(crate) slow_calls_only_on_slow_calls: bool,
    /// Same for the latency trigger: the engine evaluates it only on a success at least as slow
    /// as factor × baseline ("only a call slower than the limit can lift the quantile over it",
    /// which is not true when the volume guard or a bucket expiry or a baseline update is what
    /// changes).
    pub(crate) latency_only_on_calls_above_limit: bool,
    /// The baseline "is updated once per bucket boundary while the provider is healthy and not
    /// degraded"; a throttle is not a state. The engine skips the update while the provider is
    /// throttled when the boundary is crossed by a recorded outcome, but not when it is crossed
    /// by the timer that re-judges a timeout breach.
    pub(crate) no_learning_on_records_while_throttled: bool,
    /// `throttle_base_ms`: "doubles with each further 429 until a success". The engine does not
    /// reset the doubling on a success that carries a `Retry-After`.
    pub(crate) success_with_retry_after_keeps_doubling: bool,
    /// `Router::poll_action`: "an unreported check expires after `probe_timeout_ms` (a new one
    /// may then be asked for, and the old ticket is stale)". The engine still accepts an expired
    /// check of an idle healthy provider until a new one has been asked for.
    pub(crate) idle_check_accepted_after_expiry: bool,
    /// `ProviderView::window`: "Window figures as of the last input". The engine's view shows the
    /// window as of the provider's last recorded outcome: picks and `handle_timeout` do not move
    /// it, so a provider idle for an hour still shows the failures of its last minute of traffic
    /// (and its `latency_ms`).
    pub(crate) view_window_as_of_last_outcome: bool,
}

impl Semantics {
    /// What the documentation says. The first three were settled by documenting the engine's rule
    /// (each trigger is judged on an outcome of its own kind: a circuit never opens on an outcome
    /// that shows nothing wrong); the rest by fixing the engine.
    pub(crate) const DOCUMENTED: Semantics = Semantics {
        error_rate_only_on_failures: true,
        slow_calls_only_on_slow_calls: true,
        latency_only_on_calls_above_limit: true,
        no_learning_on_records_while_throttled: false,
        success_with_retry_after_keeps_doubling: false,
        idle_check_accepted_after_expiry: false,
        view_window_as_of_last_outcome: false,
    };
    /// What the engine does today (every `true` is reported as a disagreement).
    pub(crate) const ENGINE: Semantics = Semantics::DOCUMENTED;
}

/// When something handed out at `now` with a timeout expires: nothing expires at the instant it
/// was issued, so when the deadline saturates to `now` (at `u64::MAX`) it never does.
pub(crate) fn expiry(now: u64, timeout: u64) -> Option<u64> {
    let d = now.saturating_add(timeout);
    (d > now).then_some(d)
}

// ------------------------------------------------------------------------------------------------
// The policy, in exact units.
// ------------------------------------------------------------------------------------------------

/// A policy with every rate given exactly in parts per million, so the model can compare rates
/// exactly (`part / whole >= ppm / 1e6`) without caring how the engine rounds a float.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    pub(crate) providers: usize,
    pub(crate) bucket_ms: u64,
    pub(crate) buckets: u64,
    pub(crate) min_volume: u32,
    pub(crate) error_rate: Option<u32>,
    pub(crate) consecutive: Option<u32>,
    pub(crate) timeout_rate: Option<u32>,
    pub(crate) timeout_sustain_ms: u64,
    pub(crate) slow_call_ms: u32,
    pub(crate) slow_rate: Option<u32>,
    /// Thousandths.
    pub(crate) latency_factor_milli: Option<u64>,
    pub(crate) latency_quantile: u32,
    pub(crate) latency_baseline_ms: u64,
    pub(crate) count_client_errors: bool,
    pub(crate) open_base_ms: u64,
    pub(crate) open_multiplier: f64,
    pub(crate) open_max_ms: u64,
    pub(crate) jitter: u32,
    pub(crate) seed: u64,
    pub(crate) backoff_decay_ms: u64,
    pub(crate) probe_mode: ProbeMode,
    pub(crate) probe_max: u32,
    pub(crate) probe_successes: u32,
    pub(crate) probe_timeout_ms: u64,
    pub(crate) health_check_interval_ms: Option<u64>,
    /// (share ppm, dwell ms).
    pub(crate) ramp: Vec<(u32, u64)>,
    pub(crate) ramp_min_samples: u32,
    pub(crate) rollback: u32,
    pub(crate) throttle_base_ms: u64,
    pub(crate) throttle_max_ms: u64,
    pub(crate) max_retry_after_ms: u64,
    pub(crate) all_down: AllDown,
}

pub(crate) fn frac(ppm: u32) -> f64 {
    f64::from(ppm) / 1e6
}

impl Spec {
    pub(crate) fn policy(&self) -> Policy {
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

    pub(crate) fn names(&self) -> Vec<String> {
        (0..self.providers).map(|i| format!("p{i}")).collect()
    }
}

/// `part / whole` reaches `ppm / 1e6`, exactly.
pub(crate) fn reaches(part: u64, whole: u64, ppm: u32) -> bool {
    whole > 0 && u128::from(part) * u128::from(PPM) >= u128::from(ppm) * u128::from(whole)
}

/// `part / whole` in ppm, rounded down.
pub(crate) fn rate(part: u64, whole: u64) -> u64 {
    if whole == 0 {
        0
    } else {
        (u128::from(part) * u128::from(PPM) / u128::from(whole)) as u64
    }
}
