//! Every event in words, written once: what happened, the trigger and its figures, and until
//! when. The simulator prints these; the bindings can log them. No allocation: a description is
//! a [`core::fmt::Display`] value.

use core::fmt;

use crate::event::{Event, EventKind, Manual, Trigger};
use crate::outcome::OutcomeKind;

/// An event's description (the provider's name not included): see [`Event::describe`].
#[derive(Clone, Copy, Debug)]
pub struct Description<'a>(&'a Event);

impl Event {
    /// What happened, why, with the figures and until when, in words; for example
    /// `3 server errors in a row (limit 3) → open 30 s (strike 1)` or
    /// `rate limited → benched 5 s (Retry-After)`. Durations are rounded to what a person reads
    /// (`850 ms`, `30 s`, `1m04s`, `10 min`, `2h05m`), rates are percentages.
    #[must_use]
    pub fn describe(&self) -> Description<'_> {
        Description(self)
    }
}

/// A duration in ms as a person reads it.
struct Dur(u64);

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms < 1000 {
            return write!(f, "{ms} ms");
        }
        let s = ms.saturating_add(500) / 1000;
        if s < 60 {
            write!(f, "{s} s")
        } else if s < 3600 {
            if s.is_multiple_of(60) {
                write!(f, "{} min", s / 60)
            } else {
                write!(f, "{}m{:02}s", s / 60, s % 60)
            }
        } else if s.is_multiple_of(3600) {
            write!(f, "{} h", s / 3600)
        } else {
            write!(f, "{}h{:02}m", s / 3600, (s / 60) % 60)
        }
    }
}

/// A rate in parts per million as a percentage: `50 %`, `20.9 %`, `0.25 %`.
struct Pct(u64);

impl fmt::Display for Pct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0 as f64 / 1e6 * 100.0;
        // `p - trunc(p)`, with the truncation as a cast (no libm in no_std); p is far below 2^63.
        if p - (p as u64 as f64) == 0.0 {
            write!(f, "{p:.0} %")
        } else if p >= 1.0 {
            write!(f, "{p:.1} %")
        } else {
            write!(f, "{p:.2} %")
        }
    }
}

/// An outcome kind in words (`server_error` → `server error`).
struct Words(&'static str);

impl fmt::Display for Words {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in self.0.split('_').enumerate() {
            if part.0 > 0 {
                f.write_str(" ")?;
            }
            f.write_str(part.1)?;
        }
        Ok(())
    }
}

impl fmt::Display for Description<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        let since = |until: u64| Dur(until.saturating_sub(e.at_ms));
        match e.kind {
            EventKind::Opened {
                reason,
                until_ms,
                strikes,
                ..
            } => {
                let r = reason;
                match r.trigger {
                    Trigger::ConsecutiveFailures => {
                        let what = match r.outcome {
                            Some(OutcomeKind::ServerError) => "server error",
                            Some(OutcomeKind::ConnectionError) => "connection error",
                            _ => "failure",
                        };
                        // "1 server error (limit 1)", "3 server errors in a row (limit 3)".
                        let (s, row) = if r.observed == 1 {
                            ("", "")
                        } else {
                            ("s", " in a row")
                        };
                        write!(f, "{} {what}{s}{row} (limit {})", r.observed, r.threshold)
                    }
                    Trigger::ConsecutiveTimeouts if r.observed == 1 => {
                        write!(f, "1 timeout, no answer (limit {})", r.threshold)
                    }
                    Trigger::ConsecutiveTimeouts => write!(
                        f,
                        "{} timeouts in a row, no answer (limit {})",
                        r.observed, r.threshold
                    ),
                    Trigger::ErrorRate => write!(
                        f,
                        "error rate {} over {} calls (limit {})",
                        Pct(r.observed),
                        r.volume,
                        Pct(r.threshold)
                    ),
                    Trigger::SustainedTimeouts => write!(
                        f,
                        "timeouts at {} sustained (limit {})",
                        Pct(r.observed),
                        Pct(r.threshold)
                    ),
                    Trigger::SlowCalls => write!(
                        f,
                        "slow calls {} of {} (limit {})",
                        Pct(r.observed),
                        r.volume,
                        Pct(r.threshold)
                    ),
                    Trigger::LatencyDegradation => write!(
                        f,
                        "latency {} against a limit of {} (factor × baseline)",
                        Dur(r.observed),
                        Dur(r.threshold)
                    ),
                    Trigger::ProbeFailed => write!(
                        f,
                        "probe failed ({}) after {} of {} successes",
                        r.outcome.map_or("failure", OutcomeKind::name),
                        r.observed,
                        r.threshold
                    ),
                    Trigger::RampRollback => write!(
                        f,
                        "{} of {} ramped calls failed (limit {})",
                        Pct(r.observed),
                        r.volume,
                        Pct(r.threshold)
                    ),
                    Trigger::FleetOpen => write!(
                        f,
                        "opened by the fleet: {} of {} live instances opened it (quorum {})",
                        r.observed, r.volume, r.threshold
                    ),
                }?;
                write!(f, " → open {} (strike {strikes})", since(until_ms))
            }
            EventKind::Probing => f.write_str("open period over: probing"),
            EventKind::ProbeExpired => {
                f.write_str("a probe went unanswered: its permit is free again")
            }
            EventKind::RampStage {
                stage: 0,
                share_ppm,
            } => write!(
                f,
                "recovery confirmed by probes → ramp to {}",
                Pct(u64::from(share_ppm))
            ),
            EventKind::RampStage { share_ppm, .. } => {
                write!(f, "ramp to {}", Pct(u64::from(share_ppm)))
            }
            EventKind::Recovered => f.write_str("ramp complete: full traffic, healthy"),
            EventKind::Throttled {
                until_ms,
                retry_after,
            } => write!(
                f,
                "rate limited → benched {} ({})",
                since(until_ms),
                if retry_after {
                    "Retry-After"
                } else {
                    "backoff"
                }
            ),
            EventKind::Benched { until_ms, cause } => write!(
                f,
                "{} → benched {} (not a trip)",
                Words(cause.name()),
                since(until_ms)
            ),
            EventKind::Unthrottled => f.write_str("throttle over: full share again, no ramp"),
            EventKind::BackoffDecayed { strikes } => {
                write!(f, "healthy long enough: strikes down to {strikes}")
            }
            EventKind::Paced {
                headroom_ppm: 0,
                until_ms,
                ..
            } => write!(
                f,
                "rate-limit quota used up → no new traffic for {} (not a trip)",
                since(until_ms)
            ),
            EventKind::Paced {
                headroom_ppm,
                share_ppm,
                until_ms,
            } => write!(
                f,
                "rate-limit headroom {} → paced to {} of its share for {} (not a trip)",
                Pct(u64::from(headroom_ppm)),
                Pct(u64::from(share_ppm)),
                since(until_ms)
            ),
            EventKind::Unpaced {
                headroom_ppm: Some(h),
            } => write!(
                f,
                "rate-limit headroom back to {}: full share again, no ramp",
                Pct(u64::from(h))
            ),
            EventKind::Unpaced { headroom_ppm: None } => {
                f.write_str("rate-limit hint expired: full share again, no ramp")
            }
            EventKind::Manual(Manual::Isolated) => {
                f.write_str("isolated by hand: no traffic, probes or health checks until released")
            }
            EventKind::Manual(Manual::Released) => {
                f.write_str("released by hand: takes traffic again as its circuit allows")
            }
            EventKind::Manual(Manual::Reset) => {
                f.write_str("reset by hand: window, circuit, strikes and backoff cleared")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::string::ToString;

    use super::*;
    use crate::event::{CircuitState, ProviderId, Reason};

    fn text(at_ms: u64, kind: EventKind) -> std::string::String {
        Event {
            at_ms,
            provider: ProviderId(0),
            kind,
        }
        .describe()
        .to_string()
    }

    #[test]
    fn each_kind_reads_well() {
        let opened = |trigger, observed, threshold, volume, outcome| EventKind::Opened {
            reason: Reason {
                trigger,
                observed,
                threshold,
                volume,
                outcome,
            },
            from: CircuitState::Healthy,
            until_ms: 64_000 + 1_000,
            strikes: 2,
        };
        let cases = [
            (
                opened(
                    Trigger::ConsecutiveFailures,
                    3,
                    3,
                    9,
                    Some(OutcomeKind::ServerError),
                ),
                "3 server errors in a row (limit 3) → open 1m04s (strike 2)",
            ),
            (
                opened(
                    Trigger::ConsecutiveFailures,
                    1,
                    1,
                    1,
                    Some(OutcomeKind::ConnectionError),
                ),
                "1 connection error (limit 1) → open 1m04s (strike 2)",
            ),
            (
                opened(
                    Trigger::ConsecutiveTimeouts,
                    1,
                    1,
                    1,
                    Some(OutcomeKind::Timeout),
                ),
                "1 timeout, no answer (limit 1) → open 1m04s (strike 2)",
            ),
            (
                opened(
                    Trigger::ConsecutiveTimeouts,
                    4,
                    3,
                    4,
                    Some(OutcomeKind::Timeout),
                ),
                "4 timeouts in a row, no answer (limit 3) → open 1m04s (strike 2)",
            ),
            (
                opened(Trigger::ErrorRate, 500_000, 500_000, 20, None),
                "error rate 50 % over 20 calls (limit 50 %) → open 1m04s (strike 2)",
            ),
            (
                opened(Trigger::RampRollback, 208_955, 200_000, 67, None),
                "20.9 % of 67 ramped calls failed (limit 20 %) → open 1m04s (strike 2)",
            ),
            (
                opened(Trigger::LatencyDegradation, 2_560, 1_920, 60, None),
                "latency 3 s against a limit of 2 s (factor × baseline) → open 1m04s (strike 2)",
            ),
            (
                EventKind::Throttled {
                    until_ms: 1_000 + 850,
                    retry_after: false,
                },
                "rate limited → benched 850 ms (backoff)",
            ),
            (
                EventKind::Benched {
                    until_ms: 1_000 + 600_000,
                    cause: OutcomeKind::CredentialsRejected,
                },
                "credentials rejected → benched 10 min (not a trip)",
            ),
            (
                EventKind::RampStage {
                    stage: 0,
                    share_ppm: 2_500,
                },
                "recovery confirmed by probes → ramp to 0.25 %",
            ),
            (
                EventKind::BackoffDecayed { strikes: 1 },
                "healthy long enough: strikes down to 1",
            ),
            (
                EventKind::Paced {
                    headroom_ppm: 50_000,
                    share_ppm: 500_000,
                    until_ms: 1_000 + 30_000,
                },
                "rate-limit headroom 5 % → paced to 50 % of its share for 30 s (not a trip)",
            ),
            (
                EventKind::Paced {
                    headroom_ppm: 0,
                    share_ppm: 0,
                    until_ms: 1_000 + 12_000,
                },
                "rate-limit quota used up → no new traffic for 12 s (not a trip)",
            ),
            (
                EventKind::Unpaced {
                    headroom_ppm: Some(950_000),
                },
                "rate-limit headroom back to 95 %: full share again, no ramp",
            ),
            (
                EventKind::Unpaced { headroom_ppm: None },
                "rate-limit hint expired: full share again, no ramp",
            ),
        ];
        for (kind, want) in cases {
            assert_eq!(text(1_000, kind), want);
        }
        assert_eq!(
            Dur(2 * 3_600_000 + 5 * 60_000).to_string(),
            "2h05m",
            "hours and minutes"
        );
        assert_eq!(Dur(3_600_000).to_string(), "1 h");
    }

    /// Each unit takes over exactly where the smaller one would read 1000 ms, 60 s or 60 min
    /// (seconds are rounded to the nearest, so 59.5 s already reads as a minute).
    #[test]
    fn durations_change_unit_exactly_at_each_boundary() {
        let cases = [
            (999, "999 ms"),
            (1_000, "1 s"),
            (59_499, "59 s"),
            (59_500, "1 min"),
            (60_000, "1 min"),
            (60_500, "1m01s"),
            (3_599_499, "59m59s"),
            (3_599_500, "1 h"),
            (3_660_000, "1h01m"),
        ];
        for (ms, want) in cases {
            assert_eq!(Dur(ms).to_string(), want, "{ms} ms");
        }
    }
}
