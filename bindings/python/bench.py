"""Per-call overhead of failover-core's Python package against Python circuit breakers.

Not a test: a benchmark to run by hand and copy into the README. In one run, on the same workload
(a call that does nothing and succeeds), it times:

* ``pick`` + ``record`` with explicit timestamps, and with the default (monotonic) clock;
* ``router.call(noop)`` and ``await router.acall(async_noop)``, and ``router.call(noop)`` on a
  router with an ``on_event`` callback (issue 15's bar: at most 15 % more), also with
  ``failover_core.otel``'s counters (the same bar), its histograms, and its spans (quoted
  separately; needs opentelemetry-sdk, else skipped);
* pybreaker's ``breaker.call(noop)``;
* circuitbreaker's ``@circuit``-decorated ``noop()``;
* purgatory's async guard (its ``@breaker("name")``-decorated coroutine, which enters
  ``async with breaker`` on every call);
* the per-chunk overhead of ``router.stream``/``astream`` over iterating the same chunks.

Each figure is the median over ``--repeat`` runs of ``--iterations`` calls, per call, in ns;
"overhead" subtracts the cost of calling the bare ``noop`` in the same loop (for ``pick`` +
``record``, of an empty loop), so what is left is what the guard adds.

The peers are not dependencies of the package; install them in a throwaway venv::

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install ./bindings/python pybreaker circuitbreaker purgatory
    .venv-bench/bin/python bindings/python/bench.py

(versions measured for the README: pybreaker 1.4.1, circuitbreaker 2.1.3, purgatory 3.0.1).
A peer that is not installed is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import failover_core


def noop(provider: Any = None) -> None:
    return None


async def anoop(provider: Any = None) -> None:
    return None


Loop = Callable[[int], Any]


def run_once(loop: Loop, is_async: bool, n: int) -> float:
    """ns per iteration of one run of ``loop(n)``."""
    if is_async:
        async def timed() -> int:
            t0 = time.perf_counter_ns()
            await loop(n)
            return time.perf_counter_ns() - t0

        return asyncio.run(timed()) / n
    t0 = time.perf_counter_ns()
    loop(n)
    return (time.perf_counter_ns() - t0) / n


def cases() -> List[Tuple[str, bool, Optional[Loop]]]:
    """(name, is_async, loop) for every measured case; ``None`` for a peer not installed."""
    out: List[Tuple[str, bool, Optional[Loop]]] = []

    def empty(n: int) -> None:
        for _ in range(n):
            pass

    def bare(n: int) -> None:
        f = noop
        for _ in range(n):
            f("p")

    async def abare(n: int) -> None:
        f = anoop
        for _ in range(n):
            await f("p")

    out += [("empty loop", False, empty), ("noop() direct", False, bare),
            ("await anoop() direct", True, abare)]

    r1 = failover_core.Router(["primary", "secondary"])

    def pick_record_explicit(n: int) -> None:
        pick, record = r1.pick, r1.record
        now = 1_000_000
        for _ in range(n):
            t = pick(now)
            record(t, "success", 0, now)

    r2 = failover_core.Router(["primary", "secondary"])

    def pick_record_clock(n: int) -> None:
        pick, record = r2.pick, r2.record
        for _ in range(n):
            t = pick()
            record(t, "success", 0)

    r3 = failover_core.Router(["primary", "secondary"])

    def call(n: int) -> None:
        c = r3.call
        for _ in range(n):
            c(noop)

    events: List[Any] = []
    r5 = failover_core.Router(["primary", "secondary"], on_event=events.append)

    def call_observed(n: int) -> None:
        c = r5.call
        for _ in range(n):
            c(noop)

    r4 = failover_core.Router(["primary", "secondary"])

    async def acall(n: int) -> None:
        c = r4.acall
        for _ in range(n):
            await c(anoop)

    out += [
        ("pick+record (explicit now_ms)", False, pick_record_explicit),
        ("pick+record (monotonic clock)", False, pick_record_clock),
        ("router.call(noop)", False, call),
        ("router.call(noop), on_event set", False, call_observed),
        ("await router.acall(anoop)", True, acall),
    ]
    out += otel_cases(events)

    try:
        import pybreaker
    except ImportError:
        out.append(("pybreaker breaker.call(noop)", False, None))
    else:
        breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)

        def pb(n: int) -> None:
            c = breaker.call
            for _ in range(n):
                c(noop, "p")

        out.append(("pybreaker breaker.call(noop)", False, pb))

    try:
        from circuitbreaker import circuit
    except ImportError:
        out.append(("circuitbreaker @circuit noop()", False, None))
    else:
        guarded = circuit(failure_threshold=5, recovery_timeout=30)(noop)

        def cb(n: int) -> None:
            f = guarded
            for _ in range(n):
                f("p")

        out.append(("circuitbreaker @circuit noop()", False, cb))

    try:
        import purgatory
    except ImportError:
        out.append(("purgatory async guard", True, None))
    else:
        factory = purgatory.AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=30)
        aguarded = factory("primary")(anoop)

        async def pg(n: int) -> None:
            f = aguarded
            for _ in range(n):
                await f("p")

        out.append(("purgatory async guard", True, pg))
    return out


#: The OpenTelemetry cases, by name: (histograms, spans).
OTEL_CASES = {
    "router.call(noop), on_event + OTel counters": (False, False),
    "router.call(noop), on_event + OTel counters + histograms": (True, False),
    "router.call(noop), on_event + OTel metrics + spans": (True, True),
}


def otel_cases(events: List[Any]) -> List[Tuple[str, bool, Optional[Loop]]]:
    """``router.call(noop)`` with an ``on_event`` callback and ``failover_core.otel`` (the SDK's
    MeterProvider with an in-memory reader; spans through a SimpleSpanProcessor to an exporter
    that drops them: a BatchSpanProcessor's thread would keep exporting into the next rows and
    take the GIL from them). Skipped without opentelemetry-sdk."""
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            SimpleSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        from failover_core import otel
    except ImportError:
        return [(name, False, None) for name in OTEL_CASES]

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    mp = MeterProvider(metric_readers=[InMemoryMetricReader()])
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(Drop()))
    out: List[Tuple[str, bool, Optional[Loop]]] = []
    for name, (histograms, spans) in OTEL_CASES.items():
        r = failover_core.Router(["primary", "secondary"], on_event=events.append)
        otel.instrument(r, meter_provider=mp, tracer_provider=tp, histograms=histograms,
                        spans=spans)

        def loop(n: int, c: Any = r.call) -> None:
            for _ in range(n):
                c(noop)

        out.append((name, False, loop))
    return out


def bench(n: int, repeat: int, only: Optional[str] = None) -> Dict[str, Optional[float]]:
    """Median ns per call of every case (with ``only``: the baselines and the cases whose name
    contains it). The cases take turns round by round (after a warm-up round), so a slow spell
    of the machine hits them all alike."""
    all_cases = [
        c for c in cases()
        if only is None or only in c[0] or c[0] in ("empty loop", "noop() direct",
                                                     "await anoop() direct", "router.call(noop)")
    ]
    runs: Dict[str, List[float]] = {name: [] for name, _, _ in all_cases}
    for round_ in range(repeat + 1):
        for name, is_async, loop in all_cases:
            if loop is None:
                continue
            v = run_once(loop, is_async, n if round_ else max(1, n // 10))
            if round_:
                runs[name].append(v)
    return {name: (statistics.median(v) if v else None) for name, v in runs.items()}


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--iterations", type=int, default=200_000, help="calls per run")
    ap.add_argument("--repeat", type=int, default=7, help="runs; the median is reported")
    ap.add_argument("--only", default=None,
                    help="only the cases whose name contains this (and the baselines), e.g. "
                         "'on_event' for issue 15's bar")
    args = ap.parse_args(argv)
    res = bench(args.iterations, args.repeat, args.only)
    for name, _, _ in cases():
        res.setdefault(name, None)  # not run (--only): no row, no verdict

    empty = res["empty loop"] or 0.0
    sync_base = res["noop() direct"] or 0.0
    async_base = res["await anoop() direct"] or 0.0

    def overhead(name: str) -> Optional[float]:
        v = res[name]
        if v is None:
            return None
        if name.startswith("pick+record"):
            return v - empty
        if "await" in name or "async" in name:
            return v - async_base
        if name.endswith("direct") or name == "empty loop":
            return None
        return v - sync_base

    print(
        f"Python {platform.python_version()} on {platform.machine()}, failover-core "
        f"{failover_core.__version__}; {args.iterations} calls x {args.repeat} runs, median\n"
    )
    print("| what | ns per call | overhead, ns |")
    print("|---|---:|---:|")
    for name, v in res.items():
        if args.only is not None and v is None:
            continue
        o = overhead(name)
        vs = "not installed" if v is None else f"{v:,.0f}"
        os_ = "" if o is None else f"{o:,.0f}"
        print(f"| {name} | {vs} | {os_} |")

    call = overhead("router.call(noop)")
    pb = overhead("pybreaker breaker.call(noop)")
    cb = overhead("circuitbreaker @circuit noop()")
    pr = overhead("pick+record (explicit now_ms)")
    prc = overhead("pick+record (monotonic clock)")
    acall = overhead("await router.acall(anoop)")
    pg = overhead("purgatory async guard")
    print()
    ok = True
    if pr is not None:
        verdict = "ok" if pr <= 250 else "OVER"
        ok &= pr <= 250
        print(f"pick+record: {pr:,.0f} ns (explicit now_ms), {prc:,.0f} ns (clock); bar 250 ns: {verdict}")
    if call is not None and pb is not None:
        ok &= call < pb
        print(f"router.call vs pybreaker: {pb / call:.2f}x faster ({'ok' if call < pb else 'SLOWER'})")
    if call is not None and cb is not None:
        ok &= call <= cb
        print(f"router.call vs circuitbreaker: {cb / call:.2f}x ({'ok' if call <= cb else 'SLOWER'})")
    if acall is not None and pg is not None:
        print(f"router.acall vs purgatory: {pg / acall:.2f}x faster")
    if call is not None and cb is not None and pb is not None:
        bars = cb / call >= 2 and pb / call >= 4
        ok &= bars
        print(f"issue 13's bars (call >= 2x circuitbreaker, >= 4x pybreaker): "
              f"{'ok' if bars else 'MISSED'}")
    observed = res["router.call(noop), on_event set"]
    if observed is not None and res["router.call(noop)"]:
        ratio = observed / res["router.call(noop)"]
        ok &= ratio <= 1.15
        print(f"router.call with an on_event callback vs without: {ratio:.3f}x per call "
              f"(issue 15's bar <= 1.15x: {'ok' if ratio <= 1.15 else 'OVER'})")
    base = res["router.call(noop)"]
    counted = res["router.call(noop), on_event + OTel counters"]
    if counted is not None and base:
        ratio = counted / base
        ok &= ratio <= 1.15
        print(f"router.call with an on_event callback and the OTel counters vs neither: "
              f"{ratio:.3f}x per call (issue 15's bar <= 1.15x: {'ok' if ratio <= 1.15 else 'OVER'})")
        for name in list(OTEL_CASES)[1:]:
            v = res[name]
            if v is not None:
                print(f"  {name[len('router.call(noop), '):]}: {v / base:.2f}x "
                      f"(+{v - base:,.0f} ns per call; not under the bar)")
    if args.only is not None:
        return 0 if ok else 1
    sync_chunk, async_chunk = stream_overhead(args.repeat)
    print(f"router.stream per-chunk overhead over iterating the same chunks: {sync_chunk:,.0f} ns; "
          f"router.astream: {async_chunk:,.0f} ns (1,000-chunk streams, median)")
    return 0 if ok else 1


def stream_overhead(repeat: int, chunks: int = 1_000, streams: int = 100) -> "tuple[float, float]":
    """ns per chunk that ``router.stream``/``astream`` add to iterating the same OpenAI-shaped
    chunks directly (the request's start and end are spread over ``chunks``)."""
    data: "list[dict[str, Any]]" = [
        {"choices": [{"delta": {"content": "x"}, "finish_reason": None}]}] * (chunks - 1)
    data.append({"choices": [{"delta": {}, "finish_reason": "stop"}]})
    r = failover_core.Router(["primary", "secondary"])

    def direct() -> None:
        for _ in range(streams):
            for c in iter(data):
                pass

    def streamed() -> None:
        for _ in range(streams):
            with r.stream(lambda a: iter(data)) as it:
                for c in it:
                    pass

    async def agen() -> Any:
        for c in data:
            yield c

    async def adirect() -> None:
        for _ in range(streams):
            async for c in agen():
                pass

    async def astreamed() -> None:
        for _ in range(streams):
            async with r.astream(lambda a: agen()) as it:
                async for c in it:
                    pass

    def timed(f: Callable[[], Any], is_async: bool) -> float:
        t0 = time.perf_counter_ns()
        if is_async:
            asyncio.run(f())
        else:
            f()
        return (time.perf_counter_ns() - t0) / (streams * chunks)

    s, a = [], []
    for _ in range(repeat):
        s.append(timed(streamed, False) - timed(direct, False))
        a.append(timed(astreamed, True) - timed(adirect, True))
    return statistics.median(s), statistics.median(a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
