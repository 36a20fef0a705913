//! The policy compiled into the integer form the engine runs on, and the rules checked on the way.

use crate::error::ConfigError;
use crate::outcome::OutcomeKind;
use crate::policy::{AllDown, MAX_PROBES, MAX_RAMP_STAGES, Policy, ProbeMode};

const PPM: u64 = 1_000_000;

fn ppm(field: &'static str, x: f64) -> Result<u32, ConfigError> {
    // `!(x > 0.0)` also rejects NaN.
    if !(x > 0.0 && x <= 1.0) {
        return Err(ConfigError::ThresholdOutOfRange { field });
    }
    // At least 1 ppm so a tiny positive threshold never becomes "always".
    Ok(((x * PPM as f64 + 0.5) as u32).clamp(1, PPM as u32))
}

fn opt_ppm(field: &'static str, x: Option<f64>) -> Result<Option<u32>, ConfigError> {
    x.map(|x| ppm(field, x)).transpose()
}

fn positive(field: &'static str, x: u64) -> Result<u64, ConfigError> {
    if x == 0 {
        Err(ConfigError::ZeroDuration { field })
    } else {
        Ok(x)
    }
}

fn count(field: &'static str, x: u32) -> Result<u32, ConfigError> {
    if x == 0 {
        Err(ConfigError::ZeroCount { field })
    } else {
        Ok(x)
    }
}

/// Strikes beyond this all use the capped open duration.
pub(crate) const MAX_STRIKES: usize = 64;

/// A validated policy in the integer form the engine runs on: rates in parts per million, the
/// open-duration ladder precomputed, so the hot path has no floating point.
#[derive(Clone, Debug)]
pub(crate) struct Compiled {
    pub bucket_ms: u64,
    pub buckets: usize,
    pub min_volume: u32,
    pub error_rate_ppm: Option<u32>,
    pub consecutive_failures: Option<u32>,
    pub timeout_rate_ppm: Option<u32>,
    pub timeout_sustain_ms: u64,
    pub slow_call_ms: u32,
    pub slow_call_rate_ppm: Option<u32>,
    /// Latency factor in thousandths.
    pub latency_factor_milli: Option<u64>,
    pub latency_quantile_ppm: u32,
    /// Baseline weight: the average moves 1/weight of the way to each new sample.
    pub baseline_weight: u64,
    /// Updates before the baseline judges.
    pub baseline_warmup: u32,
    pub count_client_errors: bool,
    /// Open duration for the n-th strike (index n − 1), before jitter.
    pub open_ladder: [u64; MAX_STRIKES],
    /// The strike at which the ladder reaches `open_max_ms`; strikes never exceed it.
    pub max_strikes: u32,
    pub open_max_ms: u64,
    pub jitter_ppm: u32,
    pub seed: u64,
    pub backoff_decay_ms: u64,
    pub probe_mode: ProbeMode,
    pub probe_max_in_flight: usize,
    pub probe_successes: u32,
    pub probe_timeout_ms: u64,
    pub health_check_interval_ms: Option<u64>,
    /// (share ppm, dwell ms).
    pub ramp: heapless::Vec<(u32, u64), MAX_RAMP_STAGES>,
    pub ramp_min_samples: u32,
    pub ramp_rollback_ppm: u32,
    pub throttle_base_ms: u64,
    pub throttle_max_ms: u64,
    pub max_retry_after_ms: u64,
    pub bench_ms: u64,
    pub request_timeout_ms: u64,
    pub attempt_timeout_ms: u64,
    pub max_wait_ms: u64,
    pub same_provider_retries: u32,
    pub first_token_timeout_ms: u64,
    pub first_token_min_ms: u64,
    pub first_token_factor: u64,
    pub stream_idle_ms: u64,
    pub when_all_down: AllDown,
    /// `None`: never pace.
    pub pace_watermark_ppm: Option<u32>,
    pub pace_max_age_ms: u64,
}

impl Compiled {
    /// A hard failure under this policy: what the consecutive-failure run and the error rate
    /// count (server and connection errors, and client errors when `count_client_errors`).
    #[inline]
    pub(crate) fn is_hard_failure(&self, kind: OutcomeKind) -> bool {
        kind.is_hard_failure() || (self.count_client_errors && kind == OutcomeKind::ClientError)
    }

    /// A failure of any kind under this policy: a hard failure or a timeout. What fails a probe
    /// and what a ramp's rollback counts.
    #[inline]
    pub(crate) fn is_failure(&self, kind: OutcomeKind) -> bool {
        self.is_hard_failure(kind) || kind.is_timeout()
    }

    /// A call that counts toward a ramp stage's samples: a success or a failure.
    #[inline]
    pub(crate) fn is_counted(&self, kind: OutcomeKind) -> bool {
        kind == OutcomeKind::Success || self.is_failure(kind)
    }
}

impl Policy {
    /// Checks every rule against a router holding `bucket_capacity` window buckets, and converts
    /// the policy into the engine's integer form. [`crate::Router::new`] calls this; it is public
    /// so tools can validate a policy without building a router.
    pub fn validate(&self, bucket_capacity: usize) -> Result<(), ConfigError> {
        self.compile(bucket_capacity).map(|_| ())
    }

    pub(crate) fn compile(&self, bucket_capacity: usize) -> Result<Compiled, ConfigError> {
        let bucket_ms = positive("bucket_ms", self.bucket_ms)?;
        let window_ms = positive("window_ms", self.window_ms)?;
        if window_ms % bucket_ms != 0 {
            return Err(ConfigError::WindowNotMultipleOfBucket {
                window_ms,
                bucket_ms,
            });
        }
        let buckets = window_ms / bucket_ms;
        if buckets > bucket_capacity as u64 {
            return Err(ConfigError::WindowTooLong {
                buckets,
                capacity: bucket_capacity,
            });
        }
        let min_volume = count("min_volume", self.min_volume)?;
        let error_rate_ppm = opt_ppm("error_rate_threshold", self.error_rate_threshold)?;
        let consecutive_failures = self
            .consecutive_failures
            .map(|n| count("consecutive_failures", n))
            .transpose()?;
        let timeout_rate_ppm = opt_ppm("timeout_rate_threshold", self.timeout_rate_threshold)?;
        let timeout_sustain_ms = positive("timeout_sustain_ms", self.timeout_sustain_ms)?;
        if self.slow_call_ms == 0 {
            return Err(ConfigError::ZeroDuration {
                field: "slow_call_ms",
            });
        }
        let slow_call_rate_ppm =
            opt_ppm("slow_call_rate_threshold", self.slow_call_rate_threshold)?;
        let latency_factor_milli = match self.latency_factor {
            None => None,
            Some(k) if k > 1.0 && k <= 1_000_000.0 => Some((k * 1000.0 + 0.5) as u64),
            Some(_) => return Err(ConfigError::FactorOutOfRange),
        };
        let latency_quantile_ppm = ppm("latency_quantile", self.latency_quantile)?;
        let baseline_ms = positive("latency_baseline_ms", self.latency_baseline_ms)?;
        let baseline_weight = (baseline_ms / bucket_ms).max(1);

        let open_base_ms = positive("open_base_ms", self.open_base_ms)?;
        let open_max_ms = positive("open_max_ms", self.open_max_ms)?;
        if open_max_ms < open_base_ms {
            return Err(ConfigError::OpenMaxBelowBase);
        }
        let m = self.open_multiplier;
        if !(m >= 1.0 && m.is_finite()) {
            return Err(ConfigError::MultiplierOutOfRange);
        }
        let mut open_ladder = [open_max_ms; MAX_STRIKES];
        let mut d = open_base_ms as f64;
        for slot in open_ladder.iter_mut() {
            if d >= open_max_ms as f64 {
                break;
            }
            *slot = d as u64;
            d *= m;
        }
        let max_strikes = open_ladder
            .iter()
            .position(|&d| d >= open_max_ms)
            .map_or(MAX_STRIKES, |i| i + 1) as u32;
        let j = self.open_jitter;
        if !(0.0..1.0).contains(&j) {
            return Err(ConfigError::JitterOutOfRange);
        }
        let jitter_ppm = (j * PPM as f64 + 0.5) as u32;
        let backoff_decay_ms = positive("backoff_decay_ms", self.backoff_decay_ms)?;

        if self.probe_max_in_flight == 0 || self.probe_max_in_flight as usize > MAX_PROBES {
            return Err(ConfigError::ProbeLimitOutOfRange);
        }
        let probe_successes = count("probe_successes", self.probe_successes)?;
        let probe_timeout_ms = positive("probe_timeout_ms", self.probe_timeout_ms)?;
        let health_check_interval_ms = self
            .health_check_interval_ms
            .map(|d| positive("health_check_interval_ms", d))
            .transpose()?;

        if self.ramp.is_empty() {
            return Err(ConfigError::EmptyRamp);
        }
        let mut ramp = heapless::Vec::new();
        let mut prev = 0u32;
        let last = self.ramp.len() - 1;
        for (i, st) in self.ramp.iter().enumerate() {
            let share = ppm("ramp.share", st.share)?;
            if share <= prev {
                return Err(ConfigError::RampNotIncreasing);
            }
            if i == last && share != PPM as u32 {
                return Err(ConfigError::RampNotEndingAtFull);
            }
            if i != last && st.dwell_ms == 0 {
                return Err(ConfigError::RampZeroDwell);
            }
            prev = share;
            // Cannot fail: both vectors have the same capacity.
            let _ = ramp.push((share, st.dwell_ms));
        }
        let ramp_min_samples = count("ramp_min_samples", self.ramp_min_samples)?;
        let ramp_rollback_ppm = ppm("ramp_rollback_threshold", self.ramp_rollback_threshold)?;

        let throttle_base_ms = positive("throttle_base_ms", self.throttle_base_ms)?;
        let throttle_max_ms = positive("throttle_max_ms", self.throttle_max_ms)?;
        if throttle_max_ms < throttle_base_ms {
            return Err(ConfigError::ThrottleMaxBelowBase);
        }
        let max_retry_after_ms = positive("max_retry_after_ms", self.max_retry_after_ms)?;
        let bench_ms = positive("bench_ms", self.bench_ms)?;
        let request_timeout_ms = positive("request_timeout_ms", self.request_timeout_ms)?;
        let attempt_timeout_ms = positive("attempt_timeout_ms", self.attempt_timeout_ms)?;
        let first_token_timeout_ms =
            positive("first_token_timeout_ms", self.first_token_timeout_ms)?;
        let first_token_min_ms = positive("first_token_min_ms", self.first_token_min_ms)?;
        if first_token_min_ms > first_token_timeout_ms {
            return Err(ConfigError::FirstTokenMinAboveTimeout);
        }
        let first_token_factor = count("first_token_factor", self.first_token_factor)?;
        let stream_idle_ms = positive("stream_idle_ms", self.stream_idle_ms)?;
        let pace_watermark_ppm = opt_ppm("pace_watermark", self.pace_watermark)?;
        let pace_max_age_ms = positive("pace_max_age_ms", self.pace_max_age_ms)?;

        Ok(Compiled {
            bucket_ms,
            buckets: buckets as usize,
            min_volume,
            error_rate_ppm,
            consecutive_failures,
            timeout_rate_ppm,
            timeout_sustain_ms,
            slow_call_ms: self.slow_call_ms,
            slow_call_rate_ppm,
            latency_factor_milli,
            latency_quantile_ppm,
            baseline_weight,
            baseline_warmup: buckets as u32,
            count_client_errors: self.count_client_errors,
            open_ladder,
            max_strikes,
            open_max_ms,
            jitter_ppm,
            seed: self.seed,
            backoff_decay_ms,
            probe_mode: self.probe_mode,
            probe_max_in_flight: self.probe_max_in_flight as usize,
            probe_successes,
            probe_timeout_ms,
            health_check_interval_ms,
            ramp,
            ramp_min_samples,
            ramp_rollback_ppm,
            throttle_base_ms,
            throttle_max_ms,
            max_retry_after_ms,
            bench_ms,
            request_timeout_ms,
            attempt_timeout_ms,
            max_wait_ms: self.max_wait_ms,
            same_provider_retries: self.same_provider_retries,
            first_token_timeout_ms,
            first_token_min_ms,
            first_token_factor: u64::from(first_token_factor),
            stream_idle_ms,
            when_all_down: self.when_all_down,
            pace_watermark_ppm,
            pace_max_age_ms,
        })
    }
}
