//! The one description of the data the core hands out: events, their reasons, provider views,
//! window figures, tickets and the request engine's steps, finishes and reports list their fields
//! here, by the stable snake_case names of the
//! scenario files (`fixtures/README.md`), in a fixed order. The Python dicts, the JS objects and
//! the scenario JSON are all built from it by one small [`Visitor`] each, so a new event kind or a
//! new view field is written once, here, and reaches every language.
//!
//! No allocation: a visit is a sequence of calls on the visitor.

use crate::event::{Event, EventKind, ProviderId, Reason};
use crate::request::{Attempt, Finish, Report, Step};
use crate::ticket::Ticket;
use crate::view::ProviderView;
use crate::window::WindowStats;

/// One field's value, as a visitor receives it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Field<'a> {
    /// No value (`None` / `null`).
    Null,
    /// A count or a timestamp in ms.
    U64(u64),
    /// A smaller count.
    U32(u32),
    /// A flag.
    Bool(bool),
    /// A name (a state, a trigger, an outcome kind, a provider's name in a view).
    Str(&'a str),
    /// A fraction given in parts per million (a share of traffic). The scenario files write it as
    /// the number `ppm / 1e6` ([`Field::fraction`]).
    Ppm(u32),
    /// A provider, by id: the visitor writes its name (it knows the router's names).
    Provider(ProviderId),
    /// A number that is not a whole count (a policy's rates and factors), written as it is.
    F64(f64),
}

impl Field<'_> {
    /// A fraction in parts per million as the number the scenario files write: `ppm / 1e6`.
    #[must_use]
    pub fn fraction(ppm: u32) -> f64 {
        f64::from(ppm) / 1e6
    }
}

impl From<u64> for Field<'_> {
    fn from(v: u64) -> Self {
        Field::U64(v)
    }
}

impl From<u32> for Field<'_> {
    fn from(v: u32) -> Self {
        Field::U32(v)
    }
}

impl From<u8> for Field<'_> {
    fn from(v: u8) -> Self {
        Field::U32(u32::from(v))
    }
}

impl From<f64> for Field<'_> {
    fn from(v: f64) -> Self {
        Field::F64(v)
    }
}

impl From<bool> for Field<'_> {
    fn from(v: bool) -> Self {
        Field::Bool(v)
    }
}

impl<'a> From<&'a str> for Field<'a> {
    fn from(v: &'a str) -> Self {
        Field::Str(v)
    }
}

impl<'a, T: Into<Field<'a>>> From<Option<T>> for Field<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Field::Null, Into::into)
    }
}

/// Receives the fields of a [`Fields`] value, in order. A binding implements it once to build its
/// native object (a dict, a JS object, a JSON map).
pub trait Visitor {
    /// What a failed write returns (a Python or JS exception; `Infallible` for JSON).
    type Error;

    /// One field.
    fn field(&mut self, name: &'static str, value: Field<'_>) -> Result<(), Self::Error>;

    /// A field whose value is itself a record (the view's `window`): the visitor builds a nested
    /// object from `value`'s fields.
    fn nested<F: Fields + ?Sized>(
        &mut self,
        name: &'static str,
        value: &F,
    ) -> Result<(), Self::Error>;

    /// A field whose value is a list of records (the policy's `ramp`): the visitor builds a list
    /// of nested objects, one per element, in order.
    fn list<F: Fields>(&mut self, name: &'static str, values: &[F]) -> Result<(), Self::Error>;
}

/// A value that describes itself field by field.
pub trait Fields {
    /// Calls `v` once per field, in the documented order. Cost: O(fields).
    fn visit<V: Visitor>(&self, v: &mut V) -> Result<(), V::Error>;
}

impl Fields for crate::policy::RampStage {
    /// `share` (a fraction), `dwell_ms`: the shape `ramp` takes in policy files.
    fn visit<V: Visitor>(&self, v: &mut V) -> Result<(), V::Error> {
        v.field("share", self.share.into())?;
        v.field("dwell_ms", self.dwell_ms.into())
    }
}

impl Fields for crate::policy::Policy {
    /// Every field of [`crate::policy::FIELDS`], in that order, by the names policy files use and
    /// with the values they take (`None` as null; `probe_mode` and `when_all_down` by name; `ramp`
    /// a list of `{share, dwell_ms}`): the policy in force read back, defaults included. A
    /// router's comes from [`crate::Router::policy_in_force`].
    fn visit<V: Visitor>(&self, v: &mut V) -> Result<(), V::Error> {
        v.field("bucket_ms", self.bucket_ms.into())?;
        v.field("window_ms", self.window_ms.into())?;
        v.field("min_volume", self.min_volume.into())?;
        v.field("error_rate_threshold", self.error_rate_threshold.into())?;
        v.field("consecutive_failures", self.consecutive_failures.into())?;
        v.field("timeout_rate_threshold", self.timeout_rate_threshold.into())?;
        v.field("timeout_sustain_ms", self.timeout_sustain_ms.into())?;
        v.field("slow_call_ms", self.slow_call_ms.into())?;
        v.field(
            "slow_call_rate_threshold",
            self.slow_call_rate_threshold.into(),
        )?;
        v.field("latency_factor", self.latency_factor.into())?;
        v.field("latency_quantile", self.latency_quantile.into())?;
        v.field("latency_baseline_ms", self.latency_baseline_ms.into())?;
        v.field("count_client_errors", self.count_client_errors.into())?;
        v.field("open_base_ms", self.open_base_ms.into())?;
        v.field("open_multiplier", self.open_multiplier.into())?;
        v.field("open_max_ms", self.open_max_ms.into())?;
        v.field("open_jitter", self.open_jitter.into())?;
        v.field("seed", self.seed.into())?;
        v.field("backoff_decay_ms", self.backoff_decay_ms.into())?;
        v.field("probe_mode", self.probe_mode.name().into())?;
        v.field("probe_max_in_flight", self.probe_max_in_flight.into())?;
        v.field("probe_successes", self.probe_successes.into())?;
        v.field("probe_timeout_ms", self.probe_timeout_ms.into())?;
        v.field(
            "health_check_interval_ms",
            self.health_check_interval_ms.into(),
        )?;
        v.field("ramp_min_samples", self.ramp_min_samples.into())?;
        v.field(
            "ramp_rollback_threshold",
            self.ramp_rollback_threshold.into(),
        )?;
        v.field("throttle_base_ms", self.throttle_base_ms.into())?;
        v.field("throttle_max_ms", self.throttle_max_ms.into())?;
        v.field("max_retry_after_ms", self.max_retry_after_ms.into())?;
        v.field("bench_ms", self.bench_ms.into())?;
        v.field("request_timeout_ms", self.request_timeout_ms.into())?;
        v.field("attempt_timeout_ms", self.attempt_timeout_ms.into())?;
        v.field("max_wait_ms", self.max_wait_ms.into())?;
        v.field("same_provider_retries", self.same_provider_retries.into())?;
        v.field("first_token_timeout_ms", self.first_token_timeout_ms.into())?;
        v.field("first_token_min_ms", self.first_token_min_ms.into())?;
        v.field("first_token_factor", self.first_token_factor.into())?;
        v.field("stream_idle_ms", self.stream_idle_ms.into())?;
        v.field("when_all_down", self.when_all_down.name().into())?;
        v.field("pace_watermark", self.pace_watermark.into())?;
        v.field("pace_max_age_ms", self.pace_max_age_ms.into())?;
        v.list("ramp", &self.ramp)
    }
}

impl Fields for WindowStats {
    /// `volume`, `successes`, `failures`, `timeouts`, `slow`, `rate_limited`, `client_errors`.
    fn visit<V: Visitor>(&self, v: &mut V) -> Result<(), V::Error> {
        v.field("volume", self.volume.into())?;
        v.field("successes", self.successes.into())?;
        v.field("failures", self.failures.into())?;
        v.field("timeouts", self.timeouts.into())?;
        v.field("slow", self.slow.into())?;
        v.field("rate_limited", self.rate_limited.into())?;
        v.field("client_errors", self.client_errors.into())
    }
}

impl Fields for ProviderView<'_> {
    /// `name`, `state`, `share` (ppm), `throttled_until_ms`, `open_until_ms`, `ramp_stage`,
    /// `strikes`, `trips`, `generation`, `probes_in_flight`, `probe_successes`,
    /// `consecutive_failures`, `latency_ms`, `baseline_ms`, `latency_p50_ms`, `latency_p90_ms`,
    /// `latency_p99_ms`, `next_transition_ms`, `paced_headroom` (ppm or null), `paced_until_ms`,
    /// `isolated`, `window`.
    fn visit<V: Visitor>(&self, v: &mut V) -> Result<(), V::Error> {
        v.field("name", self.name.into())?;
        v.field("state", self.state.name().into())?;
        v.field("share", Field::Ppm(self.share_ppm))?;
        v.field("throttled_until_ms", self.throttled_until_ms.into())?;
        v.field("open_until_ms", self.open_until_ms.into())?;
        v.field("ramp_stage", self.ramp_stage.into())?;
        v.field("strikes", self.strikes.into())?;
        v.field("trips", self.trips.into())?;
        v.field("generation", self.generation.into())?;
        v.field("probes_in_flight", self.probes_in_flight.into())?;
        v.field("probe_successes", self.probe_successes.into())?;
        v.field("consecutive_failures", self.consecutive_failures.into())?;
        v.field("latency_ms", self.latency_ms.into())?;
        v.field("baseline_ms", self.baseline_ms.into())?;
        v.field("latency_p50_ms", self.latency_p50_ms.into())?;
        v.field("latency_p90_ms", self.latency_p90_ms.into())?;
        v.field("latency_p99_ms", self.latency_p99_ms.into())?;
        v.field("next_transition_ms", self.next_transition_ms.into())?;
        v.field(
            "paced_headroom",
            self.paced_headroom_ppm.map_or(Field::Null, Field::Ppm),
        )?;
        v.field("paced_until_ms", self.paced_until_ms.into())?;
        v.field("isolated", self.isolated.into())?;
        v.nested("window", &self.window)
    }
}

impl Fields for Reason {
    /// `trigger`, `observed`, `threshold`, `volume`, `outcome` (a kind or null). An `opened` event
    /// carries these at its own level.
    fn visit<V: Visitor>(&self, v: &mut V) -> Result<(), V::Error> {
        v.field("trigger", self.trigger.name().into())?;
        v.field("observed", self.observed.into())?;
        v.field("threshold", self.threshold.into())?;
        v.field("volume", self.volume.into())?;
        v.field("outcome", self.outcome.map(|o| o.name()).into())
    }
}

impl Fields for EventKind {
    /// `kind` (its name), then the kind's own fields (see `fixtures/README.md`, "Events").
    fn visit<V: Visitor>(&self, v: &mut V) -> Result<(), V::Error> {
        v.field("kind", self.name().into())?;
        match *self {
            EventKind::Opened {
                reason,
                from,
                until_ms,
                strikes,
            } => {
                reason.visit(v)?;
                v.field("from", from.name().into())?;
                v.field("until_ms", until_ms.into())?;
                v.field("strikes", strikes.into())
            }
            EventKind::RampStage { stage, share_ppm } => {
                v.field("stage", stage.into())?;
                v.field("share", Field::Ppm(share_ppm))
            }
            EventKind::Throttled {
                until_ms,
                retry_after,
            } => {
                v.field("until_ms", until_ms.into())?;
                v.field("retry_after", retry_after.into())
            }
            EventKind::Benched { until_ms, cause } => {
                v.field("until_ms", until_ms.into())?;
                v.field("cause", cause.name().into())
            }
            EventKind::BackoffDecayed { strikes } => v.field("strikes", strikes.into()),
            EventKind::Paced {
                headroom_ppm,
                share_ppm,
                until_ms,
            } => {
                v.field("headroom", Field::Ppm(headroom_ppm))?;
                v.field("share", Field::Ppm(share_ppm))?;
                v.field("until_ms", until_ms.into())
            }
            EventKind::Unpaced { headroom_ppm } => {
                v.field("headroom", headroom_ppm.map_or(Field::Null, Field::Ppm))
            }
            EventKind::Probing
            | EventKind::ProbeExpired
            | EventKind::Recovered
            | EventKind::Unthrottled
            | EventKind::Manual(_) => Ok(()),
        }
    }
}

impl Fields for Event {
    /// `at_ms`, `provider`, then the kind's fields ([`EventKind`]'s visit).
    fn visit<V: Visitor>(&self, v: &mut V) -> Result<(), V::Error> {
        v.field("at_ms", self.at_ms.into())?;
        v.field("provider", Field::Provider(self.provider))?;
        self.kind.visit(v)
    }
}

impl Fields for Ticket {
    /// What a caller acts on, as the scenario files' `pick` expects it: `provider`, `kind`,
    /// `degraded`, `retry_after_ms`. (`generation`, `probe_seq` and `issued_at_ms` identify the
    /// decision for `record` and are not part of this shape.)
    fn visit<V: Visitor>(&self, v: &mut V) -> Result<(), V::Error> {
        v.field("provider", Field::Provider(self.provider))?;
        v.field("kind", self.kind.name().into())?;
        v.field("degraded", self.degraded.into())?;
        v.field("retry_after_ms", self.retry_after_ms.into())
    }
}

impl Fields for Attempt {
    /// `provider`, `kind` (the ticket's), `number`, `deadline_ms`, `timeout_ms`, `idle_ms` (a
    /// number or null), `last`.
    fn visit<V: Visitor>(&self, v: &mut V) -> Result<(), V::Error> {
        v.field("provider", Field::Provider(self.ticket.provider))?;
        v.field("kind", self.ticket.kind.name().into())?;
        v.field("number", self.number.into())?;
        v.field("deadline_ms", self.deadline_ms.into())?;
        v.field("timeout_ms", self.timeout_ms.into())?;
        v.field("idle_ms", self.idle_ms.into())?;
        v.field("last", self.last.into())
    }
}

impl Fields for Finish {
    /// `finish` (its name), then for `success` and `caller_error` the `provider`; for `gave_up`
    /// the `reason`, `last` (an outcome kind or null) and `retry_after_ms`; nothing more for
    /// `cancelled`.
    fn visit<V: Visitor>(&self, v: &mut V) -> Result<(), V::Error> {
        v.field("finish", self.name().into())?;
        match *self {
            Finish::Success { provider } | Finish::CallerError { provider } => {
                v.field("provider", Field::Provider(provider))
            }
            Finish::Cancelled => Ok(()),
            Finish::GaveUp {
                reason,
                last,
                retry_after_ms,
            } => {
                v.field("reason", reason.name().into())?;
                v.field("last", last.map(|k| k.name()).into())?;
                v.field("retry_after_ms", retry_after_ms.into())
            }
        }
    }
}

/// The record of [`Step::InFlight`].
struct InFlightFields {
    deadline_ms: u64,
}

impl Fields for InFlightFields {
    fn visit<V: Visitor>(&self, v: &mut V) -> Result<(), V::Error> {
        v.field("deadline_ms", self.deadline_ms.into())
    }
}

/// The record of [`Step::Wait`].
struct WaitFields {
    until_ms: u64,
    provider: ProviderId,
}

impl Fields for WaitFields {
    fn visit<V: Visitor>(&self, v: &mut V) -> Result<(), V::Error> {
        v.field("until_ms", self.until_ms.into())?;
        v.field("provider", Field::Provider(self.provider))
    }
}

impl Fields for Step {
    /// One field naming the step, whose value is its record: `attempt` ([`Attempt`]'s fields),
    /// `in_flight` (`deadline_ms`), `wait` (`until_ms`, `provider`) or `done` ([`Finish`]'s
    /// fields) — the scenario files' `next` (`fixtures/README.md`, "Request scenarios").
    fn visit<V: Visitor>(&self, v: &mut V) -> Result<(), V::Error> {
        match *self {
            Step::Attempt(a) => v.nested("attempt", &a),
            Step::InFlight { deadline_ms } => {
                v.nested("in_flight", &InFlightFields { deadline_ms })
            }
            Step::Wait { until_ms, provider } => {
                v.nested("wait", &WaitFields { until_ms, provider })
            }
            Step::Done(f) => v.nested("done", &f),
        }
    }
}

impl Fields for Report {
    /// `provider`, `outcome` (the kind recorded), `latency_ms` (the request's own measure),
    /// `result` (what the router did with it: `accepted`, `stale`, `unknown_provider`).
    fn visit<V: Visitor>(&self, v: &mut V) -> Result<(), V::Error> {
        v.field("provider", Field::Provider(self.provider))?;
        v.field("outcome", self.outcome.kind.name().into())?;
        v.field("latency_ms", self.outcome.latency_ms.into())?;
        v.field("result", self.recorded.name().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{CircuitState, Trigger};
    use crate::outcome::OutcomeKind;
    use core::convert::Infallible;
    use std::format;
    use std::string::String;
    use std::vec::Vec;

    /// Writes `name=value` lines, nesting with a prefix.
    struct Lines(Vec<String>, &'static str);
    type Done = Result<(), Infallible>;

    impl Visitor for Lines {
        type Error = Infallible;
        fn field(&mut self, name: &'static str, value: Field<'_>) -> Done {
            self.0.push(format!("{}{name}={value:?}", self.1));
            Ok(())
        }
        fn nested<F: Fields + ?Sized>(&mut self, name: &'static str, value: &F) -> Done {
            let mut inner = Lines(Vec::new(), "  ");
            value.visit(&mut inner)?;
            self.0.push(format!("{name}:"));
            self.0.extend(inner.0);
            Ok(())
        }
        fn list<F: Fields>(&mut self, name: &'static str, values: &[F]) -> Done {
            self.0.push(format!("{name}: [{}]", values.len()));
            for x in values {
                let mut inner = Lines(Vec::new(), "  - ");
                x.visit(&mut inner)?;
                self.0.extend(inner.0);
            }
            Ok(())
        }
    }

    #[test]
    fn a_policy_lists_every_field_in_order_with_the_ramp_last() {
        let l = lines(&crate::policy::Policy::default());
        let names: Vec<&str> = l
            .iter()
            .filter(|x| !x.starts_with("  "))
            .map(|x| x.split(['=', ':']).next().unwrap())
            .collect();
        assert_eq!(
            names,
            crate::policy::FIELDS,
            "every field of FIELDS, in order"
        );
        assert_eq!(
            l.last().unwrap(),
            "  - dwell_ms=U64(0)",
            "the ramp ends at 100 %"
        );
        assert!(l.iter().any(|x| x == "probe_mode=Str(\"requests\")"));
    }

    fn lines(f: &impl Fields) -> Vec<String> {
        let mut l = Lines(Vec::new(), "");
        let Ok(()) = f.visit(&mut l);
        l.0
    }

    #[test]
    fn an_opened_event_flattens_its_reason() {
        let e = Event {
            at_ms: 50,
            provider: ProviderId(1),
            kind: EventKind::Opened {
                reason: Reason {
                    trigger: Trigger::ConsecutiveFailures,
                    observed: 5,
                    threshold: 5,
                    volume: 5,
                    outcome: Some(OutcomeKind::ServerError),
                },
                from: CircuitState::Healthy,
                until_ms: 30_050,
                strikes: 1,
            },
        };
        assert_eq!(
            lines(&e),
            [
                "at_ms=U64(50)",
                "provider=Provider(ProviderId(1))",
                "kind=Str(\"opened\")",
                "trigger=Str(\"consecutive_failures\")",
                "observed=U64(5)",
                "threshold=U64(5)",
                "volume=U64(5)",
                "outcome=Str(\"server_error\")",
                "from=Str(\"healthy\")",
                "until_ms=U64(30050)",
                "strikes=U32(1)",
            ]
        );
    }

    #[test]
    fn a_benched_event_names_its_cause() {
        let e = Event {
            at_ms: 10,
            provider: ProviderId(0),
            kind: EventKind::Benched {
                until_ms: 600_010,
                cause: OutcomeKind::CredentialsRejected,
            },
        };
        assert_eq!(
            lines(&e),
            [
                "at_ms=U64(10)",
                "provider=Provider(ProviderId(0))",
                "kind=Str(\"benched\")",
                "until_ms=U64(600010)",
                "cause=Str(\"credentials_rejected\")",
            ]
        );
    }

    #[test]
    fn a_view_nests_its_window_last() {
        let v = ProviderView {
            id: ProviderId(0),
            name: "a",
            state: CircuitState::Ramping,
            share_ppm: 250_000,
            throttled_until_ms: None,
            open_until_ms: None,
            ramp_stage: Some(1),
            strikes: 1,
            trips: 1,
            generation: 2,
            probes_in_flight: 0,
            probe_successes: 0,
            consecutive_failures: 0,
            window: WindowStats::default(),
            latency_ms: Some(900),
            baseline_ms: None,
            latency_p50_ms: Some(700),
            latency_p90_ms: Some(900),
            latency_p99_ms: None,
            next_transition_ms: Some(7),
            paced_headroom_ppm: Some(50_000),
            paced_until_ms: Some(9),
            isolated: false,
        };
        let l = lines(&v);
        assert_eq!(l.len(), 22 + 7);
        assert_eq!(l[2], "share=Ppm(250000)");
        assert_eq!(l[5], "ramp_stage=U32(1)");
        assert_eq!(l[15], "latency_p90_ms=U32(900)");
        assert_eq!(l[18], "paced_headroom=Ppm(50000)");
        assert_eq!(l[19], "paced_until_ms=U64(9)");
        assert_eq!(l[20], "isolated=Bool(false)");
        assert_eq!(l[21], "window:");
        assert_eq!(l[28], "  client_errors=U64(0)");
        assert_eq!(Field::fraction(250_000), 0.25);
    }

    #[test]
    fn a_step_is_one_field_holding_its_record() {
        let wait = Step::Wait {
            until_ms: 1_500,
            provider: ProviderId(1),
        };
        assert_eq!(
            lines(&wait),
            [
                "wait:",
                "  until_ms=U64(1500)",
                "  provider=Provider(ProviderId(1))"
            ]
        );
        let gave_up = Step::Done(Finish::GaveUp {
            reason: crate::request::GiveUp::Deadline,
            last: Some(OutcomeKind::Timeout),
            retry_after_ms: 0,
        });
        assert_eq!(
            lines(&gave_up),
            [
                "done:",
                "  finish=Str(\"gave_up\")",
                "  reason=Str(\"deadline\")",
                "  last=Str(\"timeout\")",
                "  retry_after_ms=U64(0)",
            ]
        );
        assert_eq!(
            lines(&Step::Done(Finish::Cancelled)),
            ["done:", "  finish=Str(\"cancelled\")"]
        );
    }

    #[test]
    fn a_report_names_its_outcome_and_result() {
        let r = Report {
            provider: ProviderId(0),
            outcome: crate::outcome::Outcome {
                kind: OutcomeKind::ServerError,
                latency_ms: 250,
                retry_after_ms: None,
            },
            recorded: crate::ticket::Recorded::Stale,
            kind: crate::ticket::TicketKind::Request,
            number: 1,
            started_ms: 0,
            first_token_ms: None,
            ended_ms: 250,
            excluded: crate::request::Excluded::NONE,
        };
        assert_eq!(
            lines(&r),
            [
                "provider=Provider(ProviderId(0))",
                "outcome=Str(\"server_error\")",
                "latency_ms=U32(250)",
                "result=Str(\"stale\")",
            ]
        );
    }
}
