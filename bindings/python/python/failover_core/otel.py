"""OpenTelemetry metrics and spans for a :class:`~failover_core.Router` (the ``otel`` extra).

``pip install 'failover-core[otel]'``, then::

    from failover_core import otel
    handle = otel.instrument(router)                   # the global providers
    handle = otel.instrument(router, meter_provider=mp, tracer_provider=tp,
                             models={"openai": "gpt-4o"})
    handle.uninstrument()

Nothing here is imported by ``import failover_core``: a router that is not instrumented never
loads OpenTelemetry, and costs one atomic load per attempt. The names, units and attributes are
the ones of ``docs/otel.md`` (and ``fixtures/otel/names.json``), the same in Node.

The facts come from the core: after every attempt a request records (``call``, ``acall``,
``stream``, ``astream`` and the ``Request`` API), the router hands this module the report the
core keeps (provider, ticket kind, attempt number, outcome, start, first token and end in the
engine's milliseconds, and why the providers ahead were passed over); events arrive as they are pushed to ``on_event``; circuit state and share
are read from the views when a metric reader collects. Times are whole milliseconds, as the
engine measures them.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import _native
from ._router import Router

__all__ = ["Instrumentation", "instrument", "SCOPE"]

#: The instrumentation scope's name (meter and tracer).
SCOPE = "failover-core"

_PROVIDER = "gen_ai.provider.name"

#: One attempt's facts, as the native router hands them over.
_Facts = Tuple[
    str, str, int, str, str, int, int, Optional[int], Optional[int], Optional[Tuple[str, ...]]
]


class Instrumentation:
    """The metrics and spans of one router; :meth:`uninstrument` stops them."""

    def __init__(
        self,
        router: Router,
        meter_provider: Optional[metrics.MeterProvider],
        tracer_provider: Optional[trace.TracerProvider],
        models: Mapping[str, str],
        operation: str,
        spans: bool,
        histograms: bool,
    ) -> None:
        from . import __version__

        self.router = router
        meter = metrics.get_meter(SCOPE, __version__, meter_provider)
        # Counted natively (a Python call per attempt would cost more than `call` itself) and
        # read when a metric reader collects.
        self._attempts = meter.create_observable_counter(
            "failover.attempts",
            [self._observe_attempts],
            "{attempt}",
            "Attempts made to providers, by outcome and ticket kind",
        )
        self._fallbacks = meter.create_observable_counter(
            "failover.fallbacks",
            [self._observe_fallbacks],
            "{attempt}",
            "Attempts after a request's first (a retry or a move to another provider)",
        )
        # The core's boundaries (seconds; the SDK's defaults suit milliseconds).
        buckets = list(_native.DURATION_BUCKETS_S)
        self._duration = meter.create_histogram(
            "failover.attempt.duration", "s", "Attempt duration, start to outcome (streams: to the end)",
            explicit_bucket_boundaries_advisory=buckets,
        )
        self._ttft = meter.create_histogram(
            "failover.time_to_first_token", "s", "Streamed attempts: time to the first content",
            explicit_bucket_boundaries_advisory=buckets,
        )
        self._histograms = histograms
        self._transitions = meter.create_counter(
            "failover.transitions", "{event}", "Circuit events, by kind and trigger"
        )
        self._state = meter.create_observable_gauge(
            "failover.circuit.state",
            [self._observe_state],
            "1",
            "1 for each provider's current state (healthy, open, probing, ramping, isolated)",
        )
        self._share = meter.create_observable_gauge(
            "failover.share",
            [self._observe_share],
            "1",
            "Share of offered traffic each provider takes now (ramp stage, pacing; 0 when open)",
        )
        self._tracer: Optional[trace.Tracer] = (
            trace.get_tracer(SCOPE, __version__, tracer_provider) if spans else None
        )
        self._models = dict(models)
        self._operation = operation
        # Attribute dicts, built once per combination (recording reuses them).
        self._attrs: Dict[Tuple[str, str, str], Dict[str, str]] = {}
        self._provider_attrs: Dict[str, Dict[str, str]] = {}
        self._active = True
        router._count_attempts(True)
        # Counters only: no Python call per attempt; events still come to `events`.
        self._previous = router._set_observer(self, histograms or spans)

    # -- called by the native router -----------------------------------------------------------

    def attempt(self, f: _Facts) -> None:
        """One attempt's facts (see the module's doc)."""
        if self._histograms:
            key = (f[0], f[3], f[1])
            attrs = self._attrs.get(key)
            if attrs is None:
                attrs = self._attrs[key] = {
                    _PROVIDER: f[0],
                    "failover.outcome": f[3],
                    "failover.ticket_kind": f[1],
                }
            self._duration.record((f[6] - f[5]) / 1000, attrs)
            if f[7] is not None:
                self._ttft.record((f[7] - f[5]) / 1000, self._of(f[0]))
        if self._tracer is not None:
            self._span(f)

    def events(self, dicts: List[Dict[str, Any]]) -> None:
        """Events as dicts, as they are pushed."""
        for d in dicts:
            attrs = {_PROVIDER: d["provider"], "failover.event": d["kind"]}
            trigger = d.get("trigger")
            if trigger is not None:
                attrs["failover.trigger"] = trigger
            self._transitions.add(1, attrs)

    # -- the rest --------------------------------------------------------------------------------

    def _of(self, provider: str) -> Dict[str, str]:
        a = self._provider_attrs.get(provider)
        if a is None:
            a = self._provider_attrs[provider] = {_PROVIDER: provider}
        return a

    def _span(self, f: _Facts) -> None:
        assert self._tracer is not None
        provider, kind, number, outcome, result, started, ended, first, retry_after, excluded = f
        # Engine ms (the router's clock) to Unix ns.
        offset_ns = time.time_ns() - self.router.clock_ms() * 1_000_000
        model = self._models.get(provider)
        attrs: Dict[str, Any] = {
            "gen_ai.operation.name": self._operation,
            _PROVIDER: provider,
            "failover.attempt": number,
            "failover.ticket_kind": kind,
            "failover.outcome": outcome,
            "failover.result": result,
        }
        if model is not None:
            attrs["gen_ai.request.model"] = model
        if outcome != "success":
            attrs["error.type"] = outcome
        if retry_after is not None:
            attrs["failover.retry_after_ms"] = retry_after
        if first is not None:
            attrs["failover.time_to_first_token_ms"] = first - started
        if excluded:
            attrs["failover.excluded"] = list(excluded)
        name = self._operation if model is None else f"{self._operation} {model}"
        span = self._tracer.start_span(
            name,
            kind=SpanKind.CLIENT,
            attributes=attrs,
            start_time=started * 1_000_000 + offset_ns,
        )
        if outcome != "success":
            span.set_status(Status(StatusCode.ERROR, outcome))
        span.end(end_time=ended * 1_000_000 + offset_ns)

    def _observe_attempts(self, options: CallbackOptions) -> Iterable[Observation]:
        if not self._active:
            return []
        return [
            Observation(n, {_PROVIDER: p, "failover.outcome": o, "failover.ticket_kind": k})
            for p, o, k, n in self.router._attempt_counts()[0]
        ]

    def _observe_fallbacks(self, options: CallbackOptions) -> Iterable[Observation]:
        if not self._active:
            return []
        return [Observation(n, self._of(p)) for p, n in self.router._attempt_counts()[1]]

    def _observe_state(self, options: CallbackOptions) -> Iterable[Observation]:
        if not self._active:
            return []
        return [
            Observation(1, {_PROVIDER: v.name, "failover.state": v.state})
            for v in self.router.views()
        ]

    def _observe_share(self, options: CallbackOptions) -> Iterable[Observation]:
        if not self._active:
            return []
        return [Observation(v.share, {_PROVIDER: v.name}) for v in self.router.views()]

    def uninstrument(self) -> None:
        """Stops recording (the router's observer goes back to what it was before)."""
        if self._active:
            self._active = False
            self.router._set_observer(self._previous, True)
            self.router._count_attempts(False)


def instrument(
    router: Router,
    meter_provider: Optional[metrics.MeterProvider] = None,
    tracer_provider: Optional[trace.TracerProvider] = None,
    *,
    models: Optional[Mapping[str, str]] = None,
    operation: str = "chat",
    spans: bool = True,
    histograms: bool = True,
) -> Instrumentation:
    """Records ``router``'s metrics (and one span per attempt, unless ``spans=False``) with the
    given providers (default: the global ones). ``models`` maps provider names to the model they
    are asked for (``gen_ai.request.model``); ``operation`` is ``gen_ai.operation.name``. One
    instrumentation per router: instrumenting again replaces the observer (the previous one is
    restored by :meth:`Instrumentation.uninstrument`)."""
    return Instrumentation(
        router, meter_provider, tracer_provider, models or {}, operation, spans, histograms
    )
