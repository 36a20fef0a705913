"""`failover_core.otel` with the SDK's in-memory readers, checked against the golden list of
names and attributes shared with Node (fixtures/otel/names.json, documented in docs/otel.md);
a Prometheus scrape over HTTP on 127.0.0.1; and no OpenTelemetry import when it is not used."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import (  # noqa: E402
    Gauge,
    Histogram,
    InMemoryMetricReader,
    Sum,
)
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

from failover_core import Attempt, Router, otel  # noqa: E402
from failover_core._native import DURATION_BUCKETS_S  # noqa: E402

# The repository's fixtures (test.sh runs this suite outside the repository and says where).
_FIXTURES = (
    Path(os.environ["FAILOVER_SCENARIO_DIR"]).parent
    if os.environ.get("FAILOVER_SCENARIO_DIR")
    else Path(__file__).resolve().parents[3] / "fixtures"
)
GOLDEN: Dict[str, Any] = json.loads((_FIXTURES / "otel" / "names.json").read_text())
METRICS = {m["name"]: m for m in GOLDEN["metrics"]}


class Status(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


def tok(p: str, t: str) -> Dict[str, Any]:
    return {"id": p, "choices": [{"delta": {"content": t}, "finish_reason": None}]}


def stop(p: str) -> Dict[str, Any]:
    return {"id": p, "choices": [{"delta": {}, "finish_reason": "stop"}]}


Setup = Tuple[Router, "otel.Instrumentation", InMemoryMetricReader, InMemorySpanExporter]


@pytest.fixture
def setup() -> Iterator[Setup]:
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    router = Router(["openai", "anthropic"], consecutive_failures=1)
    handle = otel.instrument(
        router, meter_provider=mp, tracer_provider=tp, models={"openai": "gpt-4o"}
    )
    yield router, handle, reader, exporter
    handle.uninstrument()
    mp.shutdown()
    tp.shutdown()


def drive(router: Router) -> None:
    """A failover (openai 503, then anthropic answers: opens openai), then a stream."""

    def fn(a: Attempt) -> str:
        if a.provider == "openai":
            raise Status(503)
        return "ok"

    assert router.call(fn) == "ok"

    def chunks(a: Attempt) -> List[Any]:
        return [tok(a.provider, "Hel"), tok(a.provider, "lo"), stop(a.provider)]

    with router.stream(chunks) as s:
        assert len(list(s)) == 3


def points(reader: InMemoryMetricReader) -> Dict[str, Tuple[Any, List[Any]]]:
    data = reader.get_metrics_data()
    assert data is not None
    out: Dict[str, Tuple[Any, List[Any]]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            assert sm.scope.name == GOLDEN["meter"]
            for m in sm.metrics:
                out[m.name] = (m, list(m.data.data_points))
    return out


KIND = {"counter": Sum, "observable_counter": Sum, "histogram": Histogram, "observable_gauge": Gauge}


def test_metrics_match_the_golden_list(setup: Setup) -> None:
    router, _, reader, _ = setup
    drive(router)
    got = points(reader)
    assert set(got) == set(METRICS), "every golden metric is produced, and no other"
    for name, (metric, pts) in got.items():
        g = METRICS[name]
        assert metric.unit == g["unit"], name
        assert isinstance(metric.data, KIND[g["instrument"]]), name
        if g["instrument"].endswith("counter"):
            assert metric.data.is_monotonic, name
        assert pts, name
        for p in pts:
            if "boundaries" in g:  # the core's, not the SDK's millisecond defaults
                assert list(p.explicit_bounds) == g["boundaries"] == list(DURATION_BUCKETS_S), name
            keys = set(p.attributes)
            assert keys <= set(g["attributes"]), (name, keys)
            assert set(g["always"]) <= keys, (name, keys)

    def total(name: str, **attrs: str) -> float:
        return sum(
            p.value if hasattr(p, "value") else p.count
            for p in got[name][1]
            if all(p.attributes.get(k.replace("_", ".", 1)) == v for k, v in attrs.items())
        )

    attempts = {
        (p.attributes["gen_ai.provider.name"], p.attributes["failover.outcome"]): p.value
        for p in got["failover.attempts"][1]
    }
    assert attempts == {("openai", "server_error"): 1, ("anthropic", "success"): 2}
    assert [(p.attributes["gen_ai.provider.name"], p.value) for p in got["failover.fallbacks"][1]] == [
        ("anthropic", 1)
    ]
    assert sum(p.count for p in got["failover.attempt.duration"][1]) == 3
    assert sum(p.count for p in got["failover.time_to_first_token"][1]) == 1
    opened = [p for p in got["failover.transitions"][1] if p.attributes["failover.event"] == "opened"]
    assert [(p.attributes["gen_ai.provider.name"], p.attributes["failover.trigger"], p.value)
            for p in opened] == [("openai", "consecutive_failures", 1)]
    states = {p.attributes["gen_ai.provider.name"]: p.attributes["failover.state"]
              for p in got["failover.circuit.state"][1]}
    assert states == {"openai": "open", "anthropic": "healthy"}
    shares = {p.attributes["gen_ai.provider.name"]: p.value for p in got["failover.share"][1]}
    assert shares == {"openai": 0.0, "anthropic": 1.0}
    del total


def test_one_span_per_attempt_with_the_golden_attributes(setup: Setup) -> None:
    router, _, _, exporter = setup
    drive(router)
    spans = exporter.get_finished_spans()
    assert len(spans) == 3
    allowed, always = set(GOLDEN["span"]["attributes"]), set(GOLDEN["span"]["always"])
    for s in spans:
        keys = set(s.attributes or {})
        assert keys <= allowed and always <= keys, keys
        assert s.kind == SpanKind.CLIENT
        assert s.instrumentation_scope is not None
        assert s.instrumentation_scope.name == GOLDEN["tracer"]
        assert s.start_time is not None and s.end_time is not None
        assert s.start_time <= s.end_time
    first, second, streamed = spans
    a = dict(first.attributes or {})
    assert first.name == "chat gpt-4o"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o"
    assert a["error.type"] == "server_error"
    assert a["failover.attempt"] == 1
    assert a["failover.ticket_kind"] == "request"
    assert a["failover.result"] == "accepted"
    assert first.status.status_code == StatusCode.ERROR
    b = dict(second.attributes or {})
    assert second.name == "chat"
    assert (b["gen_ai.provider.name"], b["failover.attempt"], b["failover.outcome"]) == (
        "anthropic", 2, "success"
    )
    assert "error.type" not in b and "gen_ai.request.model" not in b
    # Why the providers ahead were passed over, from the core: none for a first choice; openai
    # tried by this request, then (the stream's attempt) open.
    assert "failover.excluded" not in a
    assert tuple(b["failover.excluded"]) == ("openai=tried",)
    s = dict(streamed.attributes or {})
    assert "failover.time_to_first_token_ms" in s
    assert tuple(s["failover.excluded"]) == ("openai=open",)


def test_acall_and_a_span_under_the_callers_span(setup: Setup) -> None:
    import asyncio

    router, _, _, exporter = setup
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = tp.get_tracer("app")

    async def fn(a: Attempt) -> str:
        return a.provider

    async def main() -> str:
        with tracer.start_as_current_span("request"):
            return await router.acall(fn)

    assert asyncio.run(main()) == "openai"
    spans = {s.name: s for s in exporter.get_finished_spans()}
    child, parent = spans["chat gpt-4o"], spans["request"]
    assert child.parent is not None and parent.context is not None
    assert child.parent.span_id == parent.context.span_id


def test_uninstrument_stops_recording(setup: Setup) -> None:
    router, handle, reader, exporter = setup
    handle.uninstrument()
    router.call(lambda a: 1)
    assert exporter.get_finished_spans() == ()
    data = reader.get_metrics_data()
    names = {
        m.name
        for rm in (data.resource_metrics if data is not None else [])
        for sm in rm.scope_metrics
        for m in sm.metrics
        if list(m.data.data_points)
    }
    assert "failover.attempts" not in names


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_observer_error_never_reaches_the_call() -> None:
    router = Router(["a", "b"])

    class Broken:
        def attempt(self, facts: Any) -> None:
            raise RuntimeError("observer bug")

        def events(self, dicts: Any) -> None:
            raise RuntimeError("observer bug")

    router._set_observer(Broken())
    assert router.call(lambda a: 7) == 7


def test_no_opentelemetry_import_when_unused() -> None:
    code = (
        "import sys, failover_core as fc\n"
        "r = fc.Router(['a', 'b'], on_event=lambda e: None)\n"
        "r.call(lambda a: 1)\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_prometheus_scrape_over_http() -> None:
    pytest.importorskip("opentelemetry.exporter.prometheus")
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import start_http_server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = start_http_server(port, addr="127.0.0.1")
    reader = PrometheusMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    router = Router(["openai", "anthropic"], consecutive_failures=1)
    handle = otel.instrument(router, meter_provider=mp, spans=False)
    try:
        drive(router)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
    finally:
        handle.uninstrument()
        mp.shutdown()  # also unregisters the reader's collector
        if isinstance(server, tuple):
            server[0].shutdown()
    lines: Set[str] = {line for line in text.splitlines() if not line.startswith("#")}
    assert any(
        line.startswith("failover_attempts_total{")
        and 'gen_ai_provider_name="openai"' in line
        and 'failover_outcome="server_error"' in line
        for line in lines
    ), text
    assert any(line.startswith("failover_circuit_state{") and 'failover_state="open"' in line
               for line in lines), text
    assert any(line.startswith("failover_attempt_duration_seconds_bucket{") for line in lines), text
