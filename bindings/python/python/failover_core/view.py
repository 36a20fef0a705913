"""A provider's state as plain data, for dashboards and logs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

__all__ = ["ProviderView", "WindowStats"]


@dataclass(frozen=True)
class WindowStats:
    """The rolling window's figures as of the last input.

    ``volume`` counts the calls that count toward rates (successes, server and connection errors,
    timeouts, and client errors when the policy counts them); ``rate_limited`` and
    ``client_errors`` are counted apart.
    """

    volume: int
    successes: int
    failures: int
    timeouts: int
    slow: int
    rate_limited: int
    client_errors: int

    def to_dict(self) -> Dict[str, int]:
        return {
            "volume": self.volume,
            "successes": self.successes,
            "failures": self.failures,
            "timeouts": self.timeouts,
            "slow": self.slow,
            "rate_limited": self.rate_limited,
            "client_errors": self.client_errors,
        }


@dataclass(frozen=True)
class ProviderView:
    """One provider's state.

    ``state`` is ``healthy``, ``open``, ``probing`` or ``ramping``; ``share`` the share of offered
    traffic it takes now (1.0 healthy, the stage's share while ramping, 0.0 while open, probing or
    throttled, multiplied by headroom / watermark while paced; ``share_ppm`` the same in parts per
    million). ``isolated``: isolated by hand (``Router.isolate``; in fleet mode also when isolated
    on another instance), with a share of 0.0. Times are ms of the router's clock.
    """

    name: str
    state: str
    share: float
    share_ppm: int
    throttled_until_ms: Optional[int]
    open_until_ms: Optional[int]
    ramp_stage: Optional[int]
    strikes: int
    trips: int
    generation: int
    probes_in_flight: int
    probe_successes: int
    consecutive_failures: int
    latency_ms: Optional[int]
    baseline_ms: Optional[int]
    next_transition_ms: Optional[int]
    #: While paced by its rate-limit headers: the headroom (0.0–1.0, below ``pace_watermark``).
    paced_headroom: Optional[float]
    paced_headroom_ppm: Optional[int]
    #: While paced: when the hint expires, ms.
    paced_until_ms: Optional[int]
    window: WindowStats
    #: Isolated by hand (``Router.isolate``): no traffic, probes or health checks until released.
    isolated: bool = False
    #: The window's latency percentiles of successes, ms, from its histogram (the middle of a
    #: half-octave bin: within 25 % of the true value); ``None`` with no successes.
    latency_p50_ms: Optional[int] = None
    latency_p90_ms: Optional[int] = None
    latency_p99_ms: Optional[int] = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ProviderView":
        """Builds a view from the native module's dict."""
        fields = dict(d)
        fields.setdefault("paced_headroom_ppm", None)
        fields["window"] = WindowStats(**d["window"])
        return cls(**fields)

    def to_dict(self) -> Dict[str, Any]:
        """The scenario files' JSON shape of the view (without ``share_ppm``)."""
        return {
            "name": self.name,
            "state": self.state,
            "share": self.share,
            "throttled_until_ms": self.throttled_until_ms,
            "open_until_ms": self.open_until_ms,
            "ramp_stage": self.ramp_stage,
            "strikes": self.strikes,
            "trips": self.trips,
            "generation": self.generation,
            "probes_in_flight": self.probes_in_flight,
            "probe_successes": self.probe_successes,
            "consecutive_failures": self.consecutive_failures,
            "latency_ms": self.latency_ms,
            "baseline_ms": self.baseline_ms,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p90_ms": self.latency_p90_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "next_transition_ms": self.next_transition_ms,
            "paced_headroom": self.paced_headroom,
            "paced_until_ms": self.paced_until_ms,
            "isolated": self.isolated,
            "window": self.window.to_dict(),
        }
