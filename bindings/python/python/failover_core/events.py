"""Typed events: every state change of a provider, with the reason and the figures behind it.

Drain them with :meth:`failover_core.Router.poll_event` or :meth:`failover_core.Router.events`.
Each event is a frozen dataclass; :meth:`Event.to_dict` gives the JSON shape of the scenario files
(``fixtures/README.md``), the same in Rust, Python and Node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Mapping, Optional, Type

__all__ = [
    "Event",
    "Reason",
    "Opened",
    "Probing",
    "ProbeExpired",
    "RampStage",
    "Recovered",
    "Throttled",
    "Unthrottled",
    "Benched",
    "BackoffDecayed",
    "Paced",
    "Unpaced",
    "Isolated",
    "Released",
    "Reset",
    "event_from_dict",
]


@dataclass(frozen=True)
class Reason:
    """Why a circuit opened.

    ``trigger`` is one of ``error_rate``, ``consecutive_failures``, ``consecutive_timeouts``,
    ``sustained_timeouts``,
    ``slow_calls``, ``latency_degradation``, ``probe_failed``, ``ramp_rollback``, ``fleet_open``
    (fleet mode: an open adopted from the other instances). The units of
    ``observed`` and ``threshold`` depend on it: rates in parts per million, latencies in ms, run
    lengths and probe counts as counts. ``volume`` is how many calls the figure was measured over;
    ``outcome`` the outcome kind whose recording fired the trigger (``None`` for a trip found by a
    timer).
    """

    trigger: str
    observed: int
    threshold: int
    volume: int
    outcome: Optional[str]


@dataclass(frozen=True)
class Event:
    """A state change of one provider at ``at_ms`` (the engine's time).

    ``str(event)`` and :meth:`describe` give the core's words for it (the same text in Rust, the
    simulator, Python and Node); :attr:`unix_ms` its wall-clock time when the router runs on its
    own clock."""

    at_ms: int
    provider: str

    kind: ClassVar[str] = "event"

    def to_dict(self) -> Dict[str, Any]:
        """The scenario files' JSON shape of this event."""
        return {"at_ms": self.at_ms, "provider": self.provider, "kind": self.kind}

    def describe(self) -> str:
        """What happened, why, with the figures and until when, written by the core (for
        example ``3 server errors in a row (limit 3) → open 30 s (strike 1)``). The provider's
        name is not included; ``str(event)`` adds it."""
        return self.__dict__.get("_description") or self.kind.replace("_", " ")

    @property
    def unix_ms(self) -> Optional[int]:
        """When it happened on the wall clock (Unix ms), if the router runs on its own clock
        (no ``now_ms`` ever given); else ``None``: ``at_ms`` is then on the caller's clock."""
        v: Optional[int] = self.__dict__.get("_unix_ms")
        return v

    def __str__(self) -> str:
        return f"{self.provider} {self.kind}: {self.describe()}"


@dataclass(frozen=True)
class Opened(Event):
    """The circuit opened (from ``healthy``, ``probing`` or ``ramping``); no traffic until
    ``until_ms``. ``strikes`` is the trip count that set the duration."""

    reason: Reason
    from_state: str
    until_ms: int
    strikes: int

    kind: ClassVar[str] = "opened"

    def to_dict(self) -> Dict[str, Any]:
        d = Event.to_dict(self)
        d.update(
            trigger=self.reason.trigger,
            observed=self.reason.observed,
            threshold=self.reason.threshold,
            volume=self.reason.volume,
            outcome=self.reason.outcome,
            until_ms=self.until_ms,
            strikes=self.strikes,
        )
        d["from"] = self.from_state
        return d


@dataclass(frozen=True)
class Probing(Event):
    """The open period is over; probes may go out."""

    kind: ClassVar[str] = "probing"


@dataclass(frozen=True)
class ProbeExpired(Event):
    """A probe was not reported within ``probe_timeout_ms``; its permit is free again."""

    kind: ClassVar[str] = "probe_expired"


@dataclass(frozen=True)
class RampStage(Event):
    """The recovery ramp entered ``stage``: the provider takes ``share`` (0–1] of its traffic."""

    stage: int
    share: float
    share_ppm: int

    kind: ClassVar[str] = "ramp_stage"

    def to_dict(self) -> Dict[str, Any]:
        d = Event.to_dict(self)
        d.update(stage=self.stage, share=self.share)
        return d


@dataclass(frozen=True)
class Recovered(Event):
    """The ramp completed: full traffic, healthy."""

    kind: ClassVar[str] = "recovered"


@dataclass(frozen=True)
class Throttled(Event):
    """A 429 or ``Retry-After`` benched the provider until ``until_ms`` (not a trip).
    ``retry_after`` tells whether the provider said so rather than the growing backoff."""

    until_ms: int
    retry_after: bool

    kind: ClassVar[str] = "throttled"

    def to_dict(self) -> Dict[str, Any]:
        d = Event.to_dict(self)
        d.update(until_ms=self.until_ms, retry_after=self.retry_after)
        return d


@dataclass(frozen=True)
class Benched(Event):
    """The provider rejected the credentials or reported the quota exhausted (``cause``): it is
    benched until ``until_ms`` (the policy's ``bench_ms``; not a trip: no strike, probe or ramp)."""

    until_ms: int
    cause: str

    kind: ClassVar[str] = "benched"

    def to_dict(self) -> Dict[str, Any]:
        d = Event.to_dict(self)
        d.update(until_ms=self.until_ms, cause=self.cause)
        return d


@dataclass(frozen=True)
class Unthrottled(Event):
    """The throttle ended; the provider has its share back, with no ramp."""

    kind: ClassVar[str] = "unthrottled"


@dataclass(frozen=True)
class BackoffDecayed(Event):
    """A sustained healthy period lowered the trip count (``strikes``) that sets the next open
    duration."""

    strikes: int

    kind: ClassVar[str] = "backoff_decayed"

    def to_dict(self) -> Dict[str, Any]:
        d = Event.to_dict(self)
        d["strikes"] = self.strikes
        return d


@dataclass(frozen=True)
class Paced(Event):
    """The provider's rate-limit headers put its ``headroom`` (the smallest remaining / limit,
    0.0–1.0) below the policy's ``pace_watermark``: its share is multiplied by ``share``
    (headroom / watermark; 0 at zero headroom) until ``until_ms`` or a fresh header at or above
    the watermark. Not a trip, not a throttle."""

    headroom: float
    headroom_ppm: int
    share: float
    share_ppm: int
    until_ms: int

    kind: ClassVar[str] = "paced"

    def to_dict(self) -> Dict[str, Any]:
        d = Event.to_dict(self)
        d.update(headroom=self.headroom, share=self.share, until_ms=self.until_ms)
        return d


@dataclass(frozen=True)
class Unpaced(Event):
    """Pacing ended: the provider has its share back, with no ramp. ``headroom`` is the fresh
    figure that ended it, or ``None`` when the hint expired (its reset or ``pace_max_age_ms``)."""

    headroom: Optional[float]
    headroom_ppm: Optional[int]

    kind: ClassVar[str] = "unpaced"

    def to_dict(self) -> Dict[str, Any]:
        d = Event.to_dict(self)
        d["headroom"] = self.headroom
        return d


@dataclass(frozen=True)
class Isolated(Event):
    """Isolated by hand (``Router.isolate``): no traffic, probes or health checks until released.
    In fleet mode, also on every other instance, at the round that reads the isolation."""

    kind: ClassVar[str] = "isolated"


@dataclass(frozen=True)
class Released(Event):
    """Released from isolation by hand (``Router.release``); in fleet mode, also on every other
    instance, at the round that reads the release."""

    kind: ClassVar[str] = "released"


@dataclass(frozen=True)
class Reset(Event):
    """Its state was cleared by hand (``Router.reset``)."""

    kind: ClassVar[str] = "reset"


_SIMPLE: Mapping[str, Type[Event]] = {
    "probing": Probing,
    "probe_expired": ProbeExpired,
    "recovered": Recovered,
    "unthrottled": Unthrottled,
    "isolated": Isolated,
    "released": Released,
    "reset": Reset,
}


def event_from_dict(d: Mapping[str, Any]) -> Event:
    """Builds the typed event from the native module's dict (the scenario files' shape, with the
    core's ``description`` and the ``unix_ms`` wall-clock time when present)."""
    e = _typed(d)
    # Not dataclass fields: they stay out of equality, ``repr`` and ``to_dict``.
    object.__setattr__(e, "_description", d.get("description"))
    object.__setattr__(e, "_unix_ms", d.get("unix_ms"))
    return e


def _typed(d: Mapping[str, Any]) -> Event:
    kind = d["kind"]
    at_ms = d["at_ms"]
    provider = d["provider"]
    if kind == "opened":
        return Opened(
            at_ms,
            provider,
            Reason(d["trigger"], d["observed"], d["threshold"], d["volume"], d["outcome"]),
            d["from"],
            d["until_ms"],
            d["strikes"],
        )
    if kind == "ramp_stage":
        return RampStage(at_ms, provider, d["stage"], d["share"], d["share_ppm"])
    if kind == "throttled":
        return Throttled(at_ms, provider, d["until_ms"], d["retry_after"])
    if kind == "benched":
        return Benched(at_ms, provider, d["until_ms"], d["cause"])
    if kind == "backoff_decayed":
        return BackoffDecayed(at_ms, provider, d["strikes"])
    if kind == "paced":
        return Paced(
            at_ms, provider, d["headroom"], d["headroom_ppm"], d["share"], d["share_ppm"], d["until_ms"]
        )
    if kind == "unpaced":
        return Unpaced(at_ms, provider, d["headroom"], d.get("headroom_ppm"))
    cls = _SIMPLE.get(kind)
    if cls is None:
        raise ValueError(f"unknown event kind {kind!r}")
    return cls(at_ms, provider)
