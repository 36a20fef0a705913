"""Events pushed to ``on_event`` and to the ``failover_core`` logger, with the core's words for
them (issue 15)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, List, Optional

import pytest

from failover_core import Router
from failover_core.events import Event, Opened, Throttled, Unthrottled


class APIStatusError(Exception):
    def __init__(self, status_code: int, retry_after: Optional[str] = None) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code
        self.headers = {"retry-after": retry_after} if retry_after else {}


def fail_primary(attempt: Any) -> str:
    if attempt.provider == "a":
        raise APIStatusError(503)
    return "ok"


def test_an_event_reads_as_the_core_describes_it() -> None:
    r = Router(["a", "b"], consecutive_failures=3, open_jitter=0.0)
    for t in range(3):
        r.observe("a", "server_error", 10, 1_000 + t)
    (e,) = r.events()
    assert isinstance(e, Opened)
    assert e.describe() == "3 server errors in a row (limit 3) → open 30 s (strike 1)"
    assert str(e) == "a opened: 3 server errors in a row (limit 3) → open 30 s (strike 1)"
    # The caller's clock is in use: no wall-clock time.
    assert e.unix_ms is None
    # The description is not part of the event's data.
    assert "description" not in e.to_dict()


def test_call_pushes_its_events_with_wall_clock_time() -> None:
    got: List[Event] = []
    r = Router(["a", "b"], consecutive_failures=2, on_event=got.append)
    assert r.on_event is not None
    before = int(time.time() * 1000)
    for _ in range(2):
        assert r.call(fail_primary) == "ok"
    after = int(time.time() * 1000)
    assert [e.kind for e in got] == ["opened"]
    assert got[0].describe().startswith("2 server errors in a row (limit 2) → open")
    unix = got[0].unix_ms
    assert unix is not None and before - 5 <= unix <= after + 5
    # The polling queue is independent of the callback: it still holds the event.
    assert [e.kind for e in r.events()] == ["opened"]


def test_acall_and_astream_push_their_events() -> None:
    got: List[Event] = []
    r = Router(["a", "b"], consecutive_failures=1)
    assert r.set_on_event(got.append) is None

    async def fn(attempt: Any) -> str:
        if attempt.provider == "a":
            raise APIStatusError(503)
        return "ok"

    async def main() -> None:
        assert await r.acall(fn) == "ok"

    asyncio.run(main())
    assert [e.kind for e in got] == ["opened"]
    assert r.set_on_event(None) is not None
    assert r.on_event is None


def test_stream_pushes_its_events() -> None:
    got: List[Event] = []
    r = Router(["a", "b"], consecutive_failures=1, on_event=got.append)

    def fn(attempt: Any) -> Any:
        if attempt.provider == "a":
            raise APIStatusError(503)
        return iter([{"choices": [{"delta": {"content": "hi"}, "finish_reason": "stop"}]}])

    with r.stream(fn) as chunks:
        assert len(list(chunks)) == 1
    assert [e.kind for e in got] == ["opened"]


def test_no_event_is_lost_with_ten_thousand_transitions() -> None:
    got: List[Event] = []
    r = Router(["a", "b"], on_event=got.append)
    t = 1_000
    for _ in range(5_000):
        r.observe("a", "rate_limited", 10, t, retry_after_ms=5)  # throttled
        t += 10
        r.handle_timeout(t)  # unthrottled
    assert len(got) == 10_000
    assert all(isinstance(e, Throttled) for e in got[0::2])
    assert all(isinstance(e, Unthrottled) for e in got[1::2])
    assert [e.at_ms for e in got] == sorted(e.at_ms for e in got)
    # Nobody drained the queue: it kept the newest 64 and counted the rest.
    assert r.pending_events == 64
    assert r.dropped_events == 10_000 - 64
    last = r.events()
    assert last[-1].at_ms == got[-1].at_ms and last[-1].kind == "unthrottled"


def test_a_callback_that_raises_does_not_break_the_call(caplog: pytest.LogCaptureFixture) -> None:
    def boom(e: Event) -> None:
        raise RuntimeError("listener bug")

    r = Router(["a", "b"], consecutive_failures=1, on_event=boom)
    with caplog.at_level(logging.ERROR, logger="failover_core"):
        assert r.call(fail_primary) == "ok"
    assert any("on_event callback raised" in rec.getMessage() for rec in caplog.records)


def test_a_callback_may_use_the_router() -> None:
    seen: List[str] = []
    r: Router

    def look(e: Event) -> None:
        seen.append(r.view(e.provider).state)

    r = Router(["a", "b"], consecutive_failures=1, on_event=look)
    r.call(fail_primary)
    assert seen == ["open"]


def test_transitions_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    r = Router(["a", "b"], consecutive_failures=2, open_jitter=0.0)
    with caplog.at_level(logging.DEBUG, logger="failover_core"):
        r.observe("a", "server_error", 10, 1_000)
        r.observe("a", "server_error", 10, 1_000)
        r.handle_timeout(31_000)
    recs = [(rec.levelname, rec.getMessage()) for rec in caplog.records if rec.name == "failover_core"]
    assert recs == [
        ("INFO", "a opened: 2 server errors in a row (limit 2) → open 30 s (strike 1)"),
        ("DEBUG", "a probing: open period over: probing"),
    ]
    ev = [rec for rec in caplog.records if rec.name == "failover_core"][0].failover_event  # type: ignore[attr-defined]
    assert isinstance(ev, Opened)


def test_on_event_must_be_callable() -> None:
    with pytest.raises(TypeError, match="on_event"):
        Router(["a"], on_event=3)  # type: ignore[arg-type]


def test_isolate_release_reset_by_hand() -> None:
    from failover_core.events import Isolated, Released, Reset

    got: List[Event] = []
    r = Router(["a", "b"], consecutive_failures=2, on_event=got.append)
    assert r.isolate("a") is True and r.isolate("a") is False
    assert r.is_isolated("a")
    v = r.view("a")
    assert v.isolated and v.share == 0.0 and v.state == "healthy"
    called: List[str] = []

    def fn(attempt: Any) -> str:
        called.append(attempt.provider)
        return "ok"

    assert r.call(fn) == "ok" and called == ["b"]
    assert r.release("a") is True and not r.is_isolated("a")
    assert r.reset("b") is True
    assert [type(e) for e in got] == [Isolated, Released, Reset]
    assert str(got[0]).startswith("a isolated: isolated by hand")
    assert r.view("b").generation == 1


def test_the_policy_in_force_reads_back_and_round_trips() -> None:
    import failover_core

    r = Router(["a", "b"], consecutive_failures=4, error_rate_threshold=None)
    p = r.policy()
    assert tuple(p) == failover_core.POLICY_FIELDS  # every field, in the core's order
    assert p["consecutive_failures"] == 4 and p["error_rate_threshold"] is None
    assert p["open_base_ms"] == 30_000 and p["probe_mode"] == "requests"
    assert p["ramp"][-1] == {"share": 1.0, "dwell_ms": 0}
    assert Router(["a"], p).policy() == p
