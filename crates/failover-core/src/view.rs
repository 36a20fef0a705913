//! A provider's state as plain data, for dashboards, logs and the bindings.

use crate::event::{CircuitState, ProviderId};
use crate::window::WindowStats;

/// A provider's state as plain data, for dashboards and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProviderView<'a> {
    /// Its id (priority position).
    pub id: ProviderId,
    /// Its name.
    pub name: &'a str,
    /// Circuit state.
    pub state: CircuitState,
    /// Share of offered traffic it takes now, in ppm: 1 000 000 healthy, the stage's share while
    /// ramping, 0 while open, probing or throttled; multiplied by the pacing factor while paced
    /// (0 at zero headroom).
    pub share_ppm: u32,
    /// End of the current throttle, if throttled.
    pub throttled_until_ms: Option<u64>,
    /// End of the open period, while open.
    pub open_until_ms: Option<u64>,
    /// Ramp stage index, while ramping.
    pub ramp_stage: Option<u8>,
    /// Trip count that sets the next open duration.
    pub strikes: u32,
    /// Trips ever.
    pub trips: u32,
    /// Circuit generation.
    pub generation: u32,
    /// Probe permits held.
    pub probes_in_flight: u32,
    /// Successful probes in the current probing phase (0 outside one).
    pub probe_successes: u32,
    /// Hard failures in a row.
    pub consecutive_failures: u32,
    /// Window figures as of the latest time the router has seen (buckets that have aged out since
    /// the provider's last outcome are left out).
    pub window: WindowStats,
    /// The window's latency quantile (`latency_quantile`), ms.
    pub latency_ms: Option<u32>,
    /// The long-horizon latency baseline, ms.
    pub baseline_ms: Option<u32>,
    /// The window's median latency of successes, ms, from its latency histogram (half-octave
    /// bins: a figure is the middle of its bin, within 25 % of the true value); `None` with no
    /// successes in the window.
    pub latency_p50_ms: Option<u32>,
    /// The window's 90th percentile latency, ms (as `latency_p50_ms`).
    pub latency_p90_ms: Option<u32>,
    /// The window's 99th percentile latency, ms (as `latency_p50_ms`).
    pub latency_p99_ms: Option<u32>,
    /// When the provider's next time-driven transition is due, if one is scheduled.
    pub next_transition_ms: Option<u64>,
    /// While paced: the rate-limit headroom of the latest hint, ppm (below `pace_watermark`).
    pub paced_headroom_ppm: Option<u32>,
    /// While paced: when the hint expires, ms.
    pub paced_until_ms: Option<u64>,
    /// Isolated by hand ([`crate::Router::isolate`]): it takes no traffic (its `share_ppm` is 0),
    /// probes or health checks until released; its circuit keeps its own state. In fleet mode,
    /// also when isolated by hand on another instance (it propagates; see `fleet`).
    pub isolated: bool,
}
