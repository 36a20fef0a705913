//! The configuration errors: one variant per broken rule, each with a stable code.

use core::fmt;

use crate::policy::{MAX_NAME_LEN, MAX_PROBES, MAX_RAMP_STAGES};

/// A configuration the core refuses. One variant per broken rule; [`ConfigError::code`] is a
/// stable identifier the bindings and scenario files use, `Display` gives the message.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The field name is not a policy field.
    UnknownField {
        /// The name given (truncated to 64 bytes).
        field: heapless::String<MAX_NAME_LEN>,
    },
    /// The value has the wrong type for the field.
    WrongType {
        /// The field.
        field: &'static str,
        /// What the field takes.
        expected: &'static str,
        /// What was given.
        got: &'static str,
    },
    /// A rate or fraction is outside (0, 1] (or is NaN).
    ThresholdOutOfRange {
        /// The field.
        field: &'static str,
    },
    /// A duration that must be positive is zero (or negative).
    ZeroDuration {
        /// The field.
        field: &'static str,
    },
    /// A count that must be positive is zero (or negative).
    ZeroCount {
        /// The field.
        field: &'static str,
    },
    /// An integer is negative or too large for its field.
    OutOfRange {
        /// The field.
        field: &'static str,
    },
    /// `window_ms` is not a whole multiple of `bucket_ms`.
    WindowNotMultipleOfBucket {
        /// `window_ms`.
        window_ms: u64,
        /// `bucket_ms`.
        bucket_ms: u64,
    },
    /// The window needs more buckets than the router was compiled with.
    WindowTooLong {
        /// Buckets the policy needs (`window_ms / bucket_ms`).
        buckets: u64,
        /// Buckets the router holds.
        capacity: usize,
    },
    /// `open_multiplier` is below 1, NaN or infinite.
    MultiplierOutOfRange,
    /// `open_jitter` is outside [0, 1) or NaN.
    JitterOutOfRange,
    /// `latency_factor` is not a finite number above 1.
    FactorOutOfRange,
    /// `open_max_ms` is below `open_base_ms`.
    OpenMaxBelowBase,
    /// `throttle_max_ms` is below `throttle_base_ms`.
    ThrottleMaxBelowBase,
    /// `first_token_min_ms` is above `first_token_timeout_ms` (the first-token deadline's bounds
    /// are reversed).
    FirstTokenMinAboveTimeout,
    /// `probe_max_in_flight` is zero or above [`MAX_PROBES`].
    ProbeLimitOutOfRange,
    /// The ramp has no stages.
    EmptyRamp,
    /// Ramp shares are not strictly increasing.
    RampNotIncreasing,
    /// The ramp's last stage is not 100 %.
    RampNotEndingAtFull,
    /// A ramp stage other than the last has a zero dwell.
    RampZeroDwell,
    /// More than [`MAX_RAMP_STAGES`] stages.
    RampTooLong,
    /// A string field got a value it does not know.
    InvalidValue {
        /// The field.
        field: &'static str,
    },
    /// No providers were given.
    NoProviders,
    /// More providers than the router was compiled with.
    TooManyProviders {
        /// Providers given.
        count: usize,
        /// Providers the router holds.
        capacity: usize,
    },
    /// A provider name is empty.
    EmptyName,
    /// A provider name is longer than [`MAX_NAME_LEN`] bytes.
    NameTooLong,
    /// Two providers have the same name.
    DuplicateName {
        /// The repeated name.
        name: heapless::String<MAX_NAME_LEN>,
    },
}

impl ConfigError {
    /// The policy field the broken rule is about (`ramp` for the ramp's rules), so a tool can point
    /// at it in a file; `None` for unknown fields and for rules about the provider names.
    #[must_use]
    pub fn field(&self) -> Option<&'static str> {
        Some(match self {
            ConfigError::WrongType { field, .. }
            | ConfigError::ThresholdOutOfRange { field }
            | ConfigError::ZeroDuration { field }
            | ConfigError::ZeroCount { field }
            | ConfigError::OutOfRange { field }
            | ConfigError::InvalidValue { field } => match *field {
                "ramp.share" | "ramp.dwell_ms" => "ramp",
                f => f,
            },
            ConfigError::WindowNotMultipleOfBucket { .. } | ConfigError::WindowTooLong { .. } => {
                "window_ms"
            }
            ConfigError::MultiplierOutOfRange => "open_multiplier",
            ConfigError::JitterOutOfRange => "open_jitter",
            ConfigError::FactorOutOfRange => "latency_factor",
            ConfigError::OpenMaxBelowBase => "open_max_ms",
            ConfigError::ThrottleMaxBelowBase => "throttle_max_ms",
            ConfigError::FirstTokenMinAboveTimeout => "first_token_min_ms",
            ConfigError::ProbeLimitOutOfRange => "probe_max_in_flight",
            ConfigError::EmptyRamp
            | ConfigError::RampNotIncreasing
            | ConfigError::RampNotEndingAtFull
            | ConfigError::RampZeroDwell
            | ConfigError::RampTooLong => "ramp",
            ConfigError::UnknownField { .. }
            | ConfigError::NoProviders
            | ConfigError::TooManyProviders { .. }
            | ConfigError::EmptyName
            | ConfigError::NameTooLong
            | ConfigError::DuplicateName { .. } => return None,
        })
    }

    /// A stable, snake_case identifier for the broken rule, the same in every language.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::UnknownField { .. } => "unknown_field",
            ConfigError::WrongType { .. } => "wrong_type",
            ConfigError::ThresholdOutOfRange { .. } => "threshold_out_of_range",
            ConfigError::ZeroDuration { .. } => "zero_duration",
            ConfigError::ZeroCount { .. } => "zero_count",
            ConfigError::OutOfRange { .. } => "out_of_range",
            ConfigError::WindowNotMultipleOfBucket { .. } => "window_not_multiple_of_bucket",
            ConfigError::WindowTooLong { .. } => "window_too_long",
            ConfigError::MultiplierOutOfRange => "multiplier_out_of_range",
            ConfigError::JitterOutOfRange => "jitter_out_of_range",
            ConfigError::FactorOutOfRange => "factor_out_of_range",
            ConfigError::OpenMaxBelowBase => "open_max_below_base",
            ConfigError::ThrottleMaxBelowBase => "throttle_max_below_base",
            ConfigError::FirstTokenMinAboveTimeout => "first_token_min_above_timeout",
            ConfigError::ProbeLimitOutOfRange => "probe_limit_out_of_range",
            ConfigError::EmptyRamp => "empty_ramp",
            ConfigError::RampNotIncreasing => "ramp_not_increasing",
            ConfigError::RampNotEndingAtFull => "ramp_not_ending_at_full",
            ConfigError::RampZeroDwell => "ramp_zero_dwell",
            ConfigError::RampTooLong => "ramp_too_long",
            ConfigError::InvalidValue { .. } => "invalid_value",
            ConfigError::NoProviders => "no_providers",
            ConfigError::TooManyProviders { .. } => "too_many_providers",
            ConfigError::EmptyName => "empty_name",
            ConfigError::NameTooLong => "name_too_long",
            ConfigError::DuplicateName { .. } => "duplicate_name",
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownField { field } => write!(f, "unknown policy field `{field}`"),
            ConfigError::WrongType {
                field,
                expected,
                got,
            } => write!(f, "`{field}` takes {expected}, got {got}"),
            ConfigError::ThresholdOutOfRange { field } => {
                write!(f, "`{field}` must be a fraction in (0, 1]")
            }
            ConfigError::ZeroDuration { field } => {
                write!(f, "`{field}` must be a positive number of milliseconds")
            }
            ConfigError::ZeroCount { field } => write!(f, "`{field}` must be at least 1"),
            ConfigError::OutOfRange { field } => {
                write!(f, "`{field}` is negative or too large")
            }
            ConfigError::WindowNotMultipleOfBucket {
                window_ms,
                bucket_ms,
            } => write!(
                f,
                "`window_ms` ({window_ms}) must be a whole multiple of `bucket_ms` ({bucket_ms})"
            ),
            ConfigError::WindowTooLong { buckets, capacity } => write!(
                f,
                "the window needs {buckets} buckets but this router holds {capacity}: \
                 raise `bucket_ms` or shorten `window_ms`"
            ),
            ConfigError::MultiplierOutOfRange => {
                write!(f, "`open_multiplier` must be a finite number ≥ 1")
            }
            ConfigError::JitterOutOfRange => write!(f, "`open_jitter` must be in [0, 1)"),
            ConfigError::FactorOutOfRange => {
                write!(f, "`latency_factor` must be a finite number > 1")
            }
            ConfigError::OpenMaxBelowBase => {
                write!(f, "`open_max_ms` must be at least `open_base_ms`")
            }
            ConfigError::ThrottleMaxBelowBase => {
                write!(f, "`throttle_max_ms` must be at least `throttle_base_ms`")
            }
            ConfigError::FirstTokenMinAboveTimeout => {
                write!(
                    f,
                    "`first_token_min_ms` must be at most `first_token_timeout_ms`"
                )
            }
            ConfigError::ProbeLimitOutOfRange => {
                write!(
                    f,
                    "`probe_max_in_flight` must be between 1 and {MAX_PROBES}"
                )
            }
            ConfigError::EmptyRamp => write!(f, "`ramp` must have at least one stage"),
            ConfigError::RampNotIncreasing => {
                write!(f, "`ramp` shares must be strictly increasing")
            }
            ConfigError::RampNotEndingAtFull => {
                write!(f, "`ramp` must end with a stage of share 1.0")
            }
            ConfigError::RampZeroDwell => write!(
                f,
                "every `ramp` stage before the last needs a positive `dwell_ms`"
            ),
            ConfigError::RampTooLong => {
                write!(f, "`ramp` has more than {MAX_RAMP_STAGES} stages")
            }
            ConfigError::InvalidValue { field } => match *field {
                "probe_mode" => write!(f, "`probe_mode` must be \"requests\" or \"health_checks\""),
                "when_all_down" => write!(f, "`when_all_down` must be \"soonest\" or \"fail\""),
                _ => write!(f, "`{field}` has an invalid value"),
            },
            ConfigError::NoProviders => write!(f, "at least one provider is needed"),
            ConfigError::TooManyProviders { count, capacity } => write!(
                f,
                "{count} providers given but this router holds at most {capacity}"
            ),
            ConfigError::EmptyName => write!(f, "provider names must not be empty"),
            ConfigError::NameTooLong => {
                write!(f, "provider names must be at most {MAX_NAME_LEN} bytes")
            }
            ConfigError::DuplicateName { name } => {
                write!(f, "provider name `{name}` is given twice")
            }
        }
    }
}

impl core::error::Error for ConfigError {}

pub(crate) fn truncated(s: &str) -> heapless::String<MAX_NAME_LEN> {
    let mut out = heapless::String::new();
    for c in s.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}
