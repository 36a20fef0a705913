//! Events: every state change, with the reason and the figures behind it, drained from a
//! fixed-capacity queue with [`crate::Router::poll_event`].

use crate::outcome::OutcomeKind;

/// A provider's position in the router, in priority order (0 is the primary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderId(pub(crate) u8);

impl ProviderId {
    /// The provider's index in the list given to [`crate::Router::new`].
    #[must_use]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A provider's circuit state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Takes its full share of traffic.
    Healthy,
    /// Takes no traffic until its open duration is over.
    Open,
    /// Open duration over: takes only probes until enough succeed.
    Probing,
    /// Recovery confirmed: takes a growing share of traffic, stage by stage, and rolls back to
    /// open if the ramped traffic fails.
    Ramping,
}

impl CircuitState {
    /// The stable snake_case name used by the bindings and scenario files.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            CircuitState::Healthy => "healthy",
            CircuitState::Open => "open",
            CircuitState::Probing => "probing",
            CircuitState::Ramping => "ramping",
        }
    }
}

/// What opened a circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// Hard failures / volume in the window reached `error_rate_threshold`.
    /// Figures: `observed` and `threshold` in parts per million, `volume` the window's volume.
    ErrorRate,
    /// `consecutive_failures` server or connection errors in a row.
    /// Figures: `observed` the run length, `threshold` the configured count.
    ConsecutiveFailures,
    /// `consecutive_failures` timeouts or stalls in a row, with no success between them, over at
    /// least `timeout_sustain_ms`: the provider answers nothing. Figures: `observed` the run
    /// length, `threshold` the configured count.
    ConsecutiveTimeouts,
    /// The timeout rate stayed at or above `timeout_rate_threshold` for `timeout_sustain_ms`.
    /// Figures: rates in ppm.
    SustainedTimeouts,
    /// Slow calls / volume reached `slow_call_rate_threshold`. Figures: rates in ppm.
    SlowCalls,
    /// The window's latency quantile reached `latency_factor` × the provider's baseline.
    /// Figures: `observed` the quantile in ms, `threshold` factor × baseline in ms, `volume` the
    /// latency samples.
    LatencyDegradation,
    /// A probe failed (server or connection error, or timeout), or the probes succeeded but most
    /// of them slower than the latency-degradation limit (outcome `success`: too slow to confirm
    /// recovery). Figures: `observed` successful (fast enough) probes so far, `threshold` those
    /// required.
    /// Figures: `observed` successful probes so far, `threshold` those required.
    ProbeFailed,
    /// The failure rate (hard failures and timeouts) of the ramped traffic in the window reached
    /// `ramp_rollback_threshold`. Figures: rates in ppm, `volume` the window's counted calls.
    RampRollback,
    /// Fleet mode: this instance adopted an open another instance decided, because a quorum of
    /// the live instances opened it (or, while this instance was not healthy itself, because the
    /// fleet's register says so). Figures: `observed` the live instances that opened it,
    /// `threshold` the quorum, `volume` the live instances.
    FleetOpen,
}

impl Trigger {
    /// The stable snake_case name used by the bindings and scenario files.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Trigger::ErrorRate => "error_rate",
            Trigger::ConsecutiveFailures => "consecutive_failures",
            Trigger::ConsecutiveTimeouts => "consecutive_timeouts",
            Trigger::SustainedTimeouts => "sustained_timeouts",
            Trigger::SlowCalls => "slow_calls",
            Trigger::LatencyDegradation => "latency_degradation",
            Trigger::ProbeFailed => "probe_failed",
            Trigger::RampRollback => "ramp_rollback",
            Trigger::FleetOpen => "fleet_open",
        }
    }
}

/// Why a circuit opened, with the figures that decided it (their units depend on the trigger; see
/// [`Trigger`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reason {
    /// Which trigger fired.
    pub trigger: Trigger,
    /// The measured figure.
    pub observed: u64,
    /// The configured limit it reached.
    pub threshold: u64,
    /// How many calls the figure was measured over.
    pub volume: u64,
    /// The outcome whose recording fired the trigger, if one did (a sustained-timeout trip found
    /// by a timer has none).
    pub outcome: Option<OutcomeKind>,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The circuit opened (from healthy, probing or ramping).
    Opened {
        /// Why.
        reason: Reason,
        /// The state it left.
        from: CircuitState,
        /// When probing may start, ms.
        until_ms: u64,
        /// The trip count that set the duration (after decay).
        strikes: u32,
    },
    /// The open duration is over; probes may go out.
    Probing,
    /// A probe was not reported within `probe_timeout_ms`; its permit is free again.
    ProbeExpired,
    /// The ramp entered a stage (stage 0 right after probing confirmed recovery).
    RampStage {
        /// The stage's index in the policy's ramp.
        stage: u8,
        /// Its share, in parts per million.
        share_ppm: u32,
    },
    /// The ramp completed: full traffic, healthy.
    Recovered,
    /// A 429 or `Retry-After` benched the provider until `until_ms` (not a trip).
    Throttled {
        /// End of the throttle, ms.
        until_ms: u64,
        /// Whether the provider said so (`Retry-After`) rather than the growing backoff.
        retry_after: bool,
    },
    /// The provider rejected the credentials or reported the quota exhausted: it is benched
    /// until `until_ms` (the policy's `bench_ms`; not a trip: no strike, no probe, no ramp). The
    /// end of a bench is reported as [`EventKind::Unthrottled`].
    Benched {
        /// End of the bench, ms.
        until_ms: u64,
        /// What benched it: `credentials_rejected` or `quota_exhausted`.
        cause: OutcomeKind,
    },
    /// The throttle (or bench) ended; the provider has its share back, with no ramp.
    Unthrottled,
    /// A sustained healthy period lowered the trip count that sets the next open duration.
    BackoffDecayed {
        /// The trip count now.
        strikes: u32,
    },
    /// The provider's rate-limit headers put its headroom below `pace_watermark`: its share is
    /// multiplied by `share_ppm` (headroom / watermark; none at zero headroom) until `until_ms`
    /// or a fresh header at or above the watermark. Not a trip, not a throttle.
    Paced {
        /// The smallest remaining / limit over the dimensions reported, ppm.
        headroom_ppm: u32,
        /// The factor applied to the provider's share, ppm.
        share_ppm: u32,
        /// When the hint expires (the quota's reset, or `pace_max_age_ms` after the header).
        until_ms: u64,
    },
    /// Pacing ended: the provider has its share back at once, with no ramp.
    Unpaced {
        /// The fresh headroom that ended it, ppm; `None` when the hint expired.
        headroom_ppm: Option<u32>,
    },
    /// An operator's hand on the provider: [`crate::Router::isolate`],
    /// [`crate::Router::release`] or [`crate::Router::reset`]. Named after the action
    /// (`isolated`, `released`, `reset`).
    Manual(Manual),
}

/// What an operator did to a provider by hand (in fleet mode, an isolation or a release on
/// another instance too, as this instance follows it: `fleet::Register::isolation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Manual {
    /// Isolated: no traffic, probes or health checks until released, even when every other
    /// provider is down.
    Isolated,
    /// Released from isolation: takes traffic again as its circuit allows.
    Released,
    /// Its state was cleared: window, circuit, strikes and backoff as new.
    Reset,
}

impl Manual {
    /// The stable snake_case name (the event's kind).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Manual::Isolated => "isolated",
            Manual::Released => "released",
            Manual::Reset => "reset",
        }
    }
}

impl EventKind {
    /// The stable snake_case name used by the bindings and scenario files.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            EventKind::Opened { .. } => "opened",
            EventKind::Probing => "probing",
            EventKind::ProbeExpired => "probe_expired",
            EventKind::RampStage { .. } => "ramp_stage",
            EventKind::Recovered => "recovered",
            EventKind::Throttled { .. } => "throttled",
            EventKind::Benched { .. } => "benched",
            EventKind::Unthrottled => "unthrottled",
            EventKind::BackoffDecayed { .. } => "backoff_decayed",
            EventKind::Paced { .. } => "paced",
            EventKind::Unpaced { .. } => "unpaced",
            EventKind::Manual(m) => m.name(),
        }
    }
}

/// A state change of one provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    /// When it happened (the engine's time, after clamping), ms.
    pub at_ms: u64,
    /// Which provider.
    pub provider: ProviderId,
    /// What happened.
    pub kind: EventKind,
}

/// The fixed-capacity event queue. When full, the oldest event is dropped to make room for the new
/// one, and counted: the newest events are the ones worth reading (what is happening now), and
/// a caller that drains after every input (the bindings' callbacks) never loses any.
#[derive(Clone, Debug)]
pub(crate) struct Events<const E: usize> {
    queue: heapless::Deque<Event, E>,
    dropped: u64,
    /// Events ever queued (drained, dropped or still queued).
    total: u64,
}

impl<const E: usize> Events<E> {
    pub(crate) const fn new() -> Self {
        Events {
            queue: heapless::Deque::new(),
            dropped: 0,
            total: 0,
        }
    }

    pub(crate) fn push(&mut self, at_ms: u64, provider: ProviderId, kind: EventKind) {
        let event = Event {
            at_ms,
            provider,
            kind,
        };
        self.total = self.total.wrapping_add(1);
        if let Err(event) = self.queue.push_back(event) {
            // Full: drop the oldest (E >= 1, so there is one) and keep the new one.
            let _ = self.queue.pop_front();
            self.dropped = self.dropped.saturating_add(1);
            let _ = self.queue.push_back(event);
        }
    }

    pub(crate) fn pop(&mut self) -> Option<Event> {
        self.queue.pop_front()
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// The `n` newest queued events, oldest first (fewer if fewer are queued).
    pub(crate) fn newest(&self, n: usize) -> impl Iterator<Item = &Event> + '_ {
        self.queue.iter().skip(self.queue.len().saturating_sub(n))
    }
}
