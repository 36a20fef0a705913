"""`Router.call` / `Router.acall` (drivers of the native request engine) and the health-check task.

Hypothesis drives random sequences of provider failures and checks that every attempt is numbered
and within the budget, that each is recorded exactly once against the provider called, and what
the caller gets."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import failover_core as fc
from failover_core import AllAttemptsFailed, Router, Unavailable


class APIStatusError(Exception):
    def __init__(self, status_code: int, retry_after: Optional[str] = None) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code
        self.headers = {"retry-after": retry_after} if retry_after else {}


BEHAVIOURS = ["ok", "server", "conn", "timeout", "ratelimit", "client", "bug"]


class Bug(Exception):
    """An exception nothing ties to the provider: re-raised, recorded nowhere."""


def raise_for(behaviour: str) -> None:
    if behaviour == "server":
        raise APIStatusError(503)
    if behaviour == "conn":
        raise ConnectionRefusedError("refused")
    if behaviour == "timeout":
        raise TimeoutError("slow")
    if behaviour == "ratelimit":
        raise APIStatusError(429, "1")
    if behaviour == "client":
        raise APIStatusError(400)
    if behaviour == "bug":
        raise Bug("a bug in the caller's function")


SCRIPTS = st.lists(st.lists(st.sampled_from(BEHAVIOURS), min_size=1, max_size=6), min_size=1,
                   max_size=8)

WINDOW_FIELD = {"ok": "successes", "server": "failures", "conn": "failures", "timeout": "timeouts",
                "ratelimit": "rate_limited", "client": "client_errors"}


def check_request(r: Router, calls: List[Tuple[fc.Attempt, str]], budget: int, outcome: Any,
                  expected: Dict[str, Dict[str, int]]) -> None:
    """What one request did: attempts numbered 1.. within the budget, each recorded once (the
    windows count exactly the calls made), and the caller got what the last attempt says."""
    assert [a.number for a, _ in calls] == list(range(1, len(calls) + 1))
    assert len(calls) <= budget
    for a, b in calls:
        assert isinstance(a, fc.Attempt) and a.timeout_ms > 0 and a.provider in r.providers
        if b in WINDOW_FIELD:
            expected[a.provider][WINDOW_FIELD[b]] += 1
    last = calls[-1][1] if calls else None
    if isinstance(outcome, AllAttemptsFailed):
        assert [(x.provider, x.number) for x in outcome.attempts] == [
            (a.provider, a.number) for a, _ in calls
        ]
        assert outcome.__cause__ is outcome.attempts[-1].error
        assert outcome.reason in ("attempts", "no_provider", "deadline")
        assert outcome.retry_after_ms is not None and outcome.retry_after_ms >= 0
    elif isinstance(outcome, Unavailable):
        assert not calls
    elif isinstance(outcome, APIStatusError):
        assert outcome.status_code == 400 and last == "client"
    elif isinstance(outcome, Bug):
        assert last == "bug"
    else:
        assert last == "ok" and outcome == f"answer from {calls[-1][0].provider}"
    for n in r.providers:
        w = r.view(n).window
        for field, count in expected[n].items():
            assert getattr(w, field) == count, (n, field)


def budget_of(n_providers: int, max_attempts: Optional[int]) -> int:
    # One attempt per provider plus the policy's same_provider_retries (default 1).
    return n_providers + 1 if max_attempts is None else max_attempts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts=SCRIPTS, n_providers=st.integers(1, 4),
       max_attempts=st.one_of(st.none(), st.integers(1, 5)),
       classified=st.booleans())
def test_call_under_random_failures(scripts: List[List[str]], n_providers: int,
                                    max_attempts: Optional[int], classified: bool) -> None:
    """The native path (and, ``classified``, the Python path with ``classify_result``): every
    attempt is numbered, within the budget, recorded exactly once against the provider called,
    and the caller gets the value, the caller's error, the unattributable error unchanged, or one
    AllAttemptsFailed/Unavailable."""
    names = [f"p{i}" for i in range(n_providers)]
    r = Router(names, consecutive_failures=2, open_jitter=0)
    expected = {n: {f: 0 for f in set(WINDOW_FIELD.values())} for n in names}
    for script in scripts:
        calls: List[Tuple[fc.Attempt, str]] = []
        behaviours = iter(script)

        def fn(attempt: fc.Attempt) -> str:
            b = next(behaviours, "ok")
            calls.append((attempt, b))
            raise_for(b)
            return f"answer from {attempt.provider}"

        try:
            if classified:
                outcome: Any = r.call(fn, max_attempts=max_attempts, max_wait_ms=0,
                                      classify_result=lambda v: None)
            else:
                outcome = r.call(fn, max_attempts=max_attempts, max_wait_ms=0)
        except (AllAttemptsFailed, Unavailable, APIStatusError, Bug) as e:
            outcome = e
        check_request(r, calls, budget_of(n_providers, max_attempts), outcome, expected)
    assert r.invariant_violation() is None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scripts=st.lists(st.lists(st.sampled_from(BEHAVIOURS), min_size=1, max_size=6), min_size=1,
                     max_size=6),
    n_providers=st.integers(1, 4),
    max_attempts=st.one_of(st.none(), st.integers(1, 5)),
)
def test_acall_under_random_failures(scripts: List[List[str]], n_providers: int,
                                     max_attempts: Optional[int]) -> None:
    names = [f"p{i}" for i in range(n_providers)]
    r = Router(names, consecutive_failures=2, open_jitter=0)
    expected = {n: {f: 0 for f in set(WINDOW_FIELD.values())} for n in names}

    async def main() -> None:
        for script in scripts:
            calls: List[Tuple[fc.Attempt, str]] = []
            behaviours = iter(script)

            async def fn(attempt: fc.Attempt) -> str:
                b = next(behaviours, "ok")
                calls.append((attempt, b))
                await asyncio.sleep(0)
                raise_for(b)
                return f"answer from {attempt.provider}"

            try:
                outcome: Any = await r.acall(fn, max_attempts=max_attempts, max_wait_ms=0)
            except (AllAttemptsFailed, Unavailable, APIStatusError, Bug) as e:
                outcome = e
            check_request(r, calls, budget_of(n_providers, max_attempts), outcome, expected)

    asyncio.run(main())
    assert r.invariant_violation() is None


def test_call_fails_over_and_returns() -> None:
    r = Router(["a", "b"])
    seen: List[fc.Attempt] = []

    def fn(a: fc.Attempt) -> str:
        seen.append(a)
        if a.provider == "a":
            raise APIStatusError(503)
        return "ok"

    assert r.call(fn) == "ok"
    assert [(a.provider, a.number, a.is_probe) for a in seen] == [("a", 1, False), ("b", 2, False)]
    assert seen[0].timeout_ms == 60_000 and seen[0].timeout_s == 60.0
    assert seen[0].deadline_s == seen[0].deadline_ms / 1000
    assert "provider=\"a\"" in repr(seen[0])
    assert r.view("a").window.failures == 1
    assert r.view("b").window.successes == 1


def test_client_errors_are_reraised_at_once() -> None:
    r = Router(["a", "b"])
    seen: List[str] = []

    def fn(a: fc.Attempt) -> None:
        seen.append(a.provider)
        raise APIStatusError(400)

    with pytest.raises(APIStatusError):
        r.call(fn)
    assert seen == ["a"]
    assert r.view("a").window.client_errors == 1


def test_unattributable_exceptions_are_reraised_and_recorded_nowhere() -> None:
    r = Router(["a", "b"])
    with pytest.raises(ZeroDivisionError):
        r.call(lambda a: 1 / 0)
    assert r.view("a").window.volume == 0 and r.view("b").window.volume == 0


def test_all_attempts_failed_chains_errors_and_carries_retry_after() -> None:
    r = Router(["a", "b"], open_jitter=0)

    def fn(a: fc.Attempt) -> None:
        raise APIStatusError(429, "30")

    with pytest.raises(AllAttemptsFailed) as info:
        r.call(fn)
    e = info.value
    assert isinstance(e, Unavailable) and isinstance(e, fc.FailoverError)
    assert [a.provider for a in e.attempts] == ["a", "b"]
    assert [a.outcome for a in e.attempts] == ["rate_limited", "rate_limited"]
    assert [a.kind for a in e.attempts] == ["rate_limited", "rate_limited"]  # deprecated name
    assert [a.retry_after_ms for a in e.attempts] == [30_000, 30_000]
    assert all(isinstance(x, APIStatusError) for x in e.errors)
    assert e.__cause__ is e.errors[-1]
    # Both are throttled for 30 s, more than the wait limit: the engine gives up with its hint.
    assert e.reason == "no_provider" and e.code == "all_providers_failed"
    assert e.retry_after_ms is not None and 29_000 <= e.retry_after_ms <= 30_000
    assert e.retry_after == e.retry_after_ms / 1000
    assert "all 2 attempts failed" in str(e)
    # Both are still throttled: the next request sends nothing.
    with pytest.raises(Unavailable) as u:
        r.call(fn)
    assert not isinstance(u.value, AllAttemptsFailed)
    assert u.value.retry_after_ms is not None and u.value.retry_after_ms > 25_000


def test_a_short_retry_after_is_waited_out() -> None:
    r = Router(["a"], same_provider_retries=0)  # one attempt per provider...
    seen: List[int] = []

    def fn(a: fc.Attempt) -> str:
        seen.append(a.number)
        if a.number == 1:
            raise APIStatusError(429, "0.05")
        return "ok"

    assert r.call(fn, max_attempts=2) == "ok"  # ...but two allowed: the second after the wait
    assert seen == [1, 2]


def test_unavailable_before_any_attempt_is_raised_as_is() -> None:
    r = Router(["a"], consecutive_failures=1)
    with pytest.raises(AllAttemptsFailed):
        r.call(lambda a: (_ for _ in ()).throw(ConnectionResetError()))
    with pytest.raises(Unavailable) as info:
        r.call(lambda a: "never")
    assert not isinstance(info.value, AllAttemptsFailed)
    assert info.value.retry_after_ms is not None and info.value.retry_after_ms > 0


def test_arguments_are_checked() -> None:
    r = Router(["a"])
    with pytest.raises(ValueError, match="max_attempts"):
        r.call(lambda a: a, max_attempts=0)
    with pytest.raises(TypeError, match="max_attempts"):
        r.call(lambda a: a, max_attempts=True)
    with pytest.raises(ValueError, match="timeout_ms"):
        r.call(lambda a: a, timeout_ms=-1)
    with pytest.raises(TypeError, match="max_wait_ms"):
        r.call(lambda a: a, max_wait_ms=1.5)  # type: ignore[arg-type]


def test_keyboard_interrupt_is_recorded_as_cancelled_and_reraised() -> None:
    r = Router(["a", "b"])

    def fn(a: fc.Attempt) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        r.call(fn)
    assert r.view("a").window.volume == 0


def test_custom_classifiers_and_unraised_error_responses() -> None:
    class Resp:
        def __init__(self, status_code: int) -> None:
            self.status_code = status_code
            self.headers: Dict[str, str] = {}

    r = Router(["a", "b"])
    got = r.call(lambda a: Resp(500 if a.provider == "a" else 200),
                 classify_result=fc.classify_response)
    assert got.status_code == 200
    assert r.view("a").window.failures == 1
    # A 400 response is returned to the caller as is.
    got = r.call(lambda a: Resp(400), classify_result=fc.classify_response)
    assert got.status_code == 400
    with pytest.raises(AllAttemptsFailed) as info:
        r.call(lambda a: Resp(503), classify_result=fc.classify_response, max_wait_ms=0)
    assert isinstance(info.value.errors[0], fc.ProviderResponseError)
    assert info.value.errors[0].status == 503
    # A classifier may say any exception is a provider failure.
    seen: List[str] = []

    def boom(a: fc.Attempt) -> str:
        seen.append(a.provider)
        if a.provider == "a":
            raise RuntimeError("provider-specific failure")
        return "ok"

    r2 = Router(["a", "b"])
    assert r2.call(boom, classify=lambda e: "server_error") == "ok"
    assert seen == ["a", "b"]
    with pytest.raises(TypeError, match="classifier"):
        r2.call(lambda a: 1 / 0, classify=lambda e: 42)  # type: ignore[arg-type,return-value]


def test_acall_cancels_an_attempt_at_its_deadline_and_records_a_timeout() -> None:
    r = Router(["a", "b"], attempt_timeout_ms=100)
    seen: List[fc.Attempt] = []

    async def fn(a: fc.Attempt) -> str:
        seen.append(a)
        if a.provider == "a":
            await asyncio.sleep(10)
        return a.provider

    async def main() -> str:
        return await asyncio.wait_for(r.acall(fn), 5)

    assert asyncio.run(main()) == "b"
    assert [a.timeout_ms for a in seen][0] == 100
    assert r.view("a").window.timeouts == 1 and r.view("b").window.successes == 1


def test_acall_cancellation_records_cancelled() -> None:
    r = Router(["a", "b"])

    async def main() -> None:
        started = asyncio.Event()

        async def fn(a: fc.Attempt) -> None:
            started.set()
            await asyncio.sleep(10)

        task = asyncio.ensure_future(r.acall(fn))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert r.view("a").window.volume == 0
    assert r.invariant_violation() is None


def test_call_with_key_stays_on_one_provider() -> None:
    r = Router(["a", "b"])
    assert r.call(lambda a: a.provider, key="conversation-7") == "a"


# -- health checks ---------------------------------------------------------------------------------


def test_health_checks_probe_an_open_provider_back() -> None:
    r = Router(
        ["a", "b"],
        consecutive_failures=1,
        open_jitter=0,
        open_base_ms=50,
        open_max_ms=50,
        probe_mode="health_checks",
        probe_successes=2,
        probe_max_in_flight=1,
    )
    r.record(r.pick(), "server_error", 1)
    assert r.view("a").state == "open"
    checked: List[str] = []
    events: List[fc.Event] = []

    async def check(p: str) -> None:
        checked.append(p)

    async def main() -> None:
        async with r.start_health_checks(check, on_event=events.append, max_interval_s=0.02) as hc:
            for _ in range(200):
                await asyncio.sleep(0.01)
                if r.view("a").state == "ramping":
                    break
            assert hc.running
        assert not hc.running

    asyncio.run(main())
    assert checked[:2] == ["a", "a"]
    assert r.view("a").state == "ramping"
    kinds = [e.kind for e in events]
    assert "probing" in kinds and "ramp_stage" in kinds


def test_health_check_failures_and_timeouts_are_outcomes() -> None:
    r = Router(["a", "b"], health_check_interval_ms=20, consecutive_failures=2, open_jitter=0)
    r.observe("a", "success", 1)
    r.observe("b", "success", 1)

    async def check(p: str) -> None:
        if p == "a":
            raise APIStatusError(503)
        await asyncio.sleep(1)  # b times out

    async def main() -> None:
        hc = fc.HealthChecker(r, check, max_interval_s=0.01, timeout_s=0.02)
        hc.start()
        for _ in range(300):
            await asyncio.sleep(0.01)
            if r.view("a").state == "open" and r.view("b").window.timeouts >= 1:
                break
        await hc.stop()
        assert hc.checks_sent >= 3

    asyncio.run(main())
    assert r.view("a").state == "open"
    assert r.view("b").window.timeouts >= 1
    assert r.invariant_violation() is None


def test_health_checker_arguments_are_checked() -> None:
    r = Router(["a"])
    with pytest.raises(TypeError):
        fc.HealthChecker(r, 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        fc.HealthChecker(r, lambda p: None, max_interval_s=0)  # type: ignore[arg-type,return-value]


def test_failed_calls_leave_no_uncollectable_cycle() -> None:
    """The exception, its traceback (holding call()'s frame) and the native failure object form
    a cycle; the collector must be able to free it."""
    import gc
    import weakref

    class Refused(Exception):
        status_code = 400

    class Reset(ConnectionResetError):
        pass

    r = Router(["a", "b"])
    refs = []
    for _ in range(3):
        try:
            r.call(lambda a: (_ for _ in ()).throw(Refused()))
        except Refused as e:
            refs.append(weakref.ref(e))
        try:
            r.call(lambda a: (_ for _ in ()).throw(Reset()), max_wait_ms=0)
        except AllAttemptsFailed as e:
            refs.append(weakref.ref(e))
            refs.append(weakref.ref(e.errors[0]))
    gc.collect()
    assert all(ref() is None for ref in refs)


class _Answer:
    """A response with headers, as httpx, requests or an SDK's raw response carry them."""

    def __init__(self, remaining: int, status_code: int = 200) -> None:
        self.status_code = status_code
        self.headers = {
            "x-ratelimit-limit-requests": "100",
            "x-ratelimit-remaining-requests": str(remaining),
            "x-ratelimit-reset-requests": "30s",
        }


class _Failed(Exception):
    def __init__(self, remaining: int) -> None:
        super().__init__("overloaded")
        self.status_code = 503
        self.response = _Answer(remaining, 503)


def test_call_paces_from_the_headers_of_every_answer() -> None:
    from failover_core import Paced, Unpaced

    r = Router(["a", "b"])
    # A success whose headers say the quota is gone: "a" takes no new traffic until the reset.
    assert isinstance(r.call(lambda a: _Answer(0)), _Answer)
    paced = [e for e in r.events() if isinstance(e, Paced)]
    assert [(e.provider, e.headroom, e.share) for e in paced] == [("a", 0.0, 0.0)]
    assert r.view("a").paced_headroom == 0.0
    assert r.call(lambda a: a.provider) == "b"
    # A failure's headers count too: "b" is paced to 5 / 10 of its share (5 % left).
    def fail(a: Any) -> None:
        raise _Failed(5)

    with pytest.raises(AllAttemptsFailed):
        r.call(fail, max_attempts=1)
    assert [(e.provider, e.headroom) for e in r.events() if isinstance(e, Paced)] == [("b", 0.05)]
    # A fresh answer with plenty left ends pacing.
    r.observe_headroom("a", {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "90"})
    assert [(e.provider, e.headroom) for e in r.events() if isinstance(e, Unpaced)] == [("a", 0.9)]
    # Answers without headers, or with unreadable ones, change nothing and never fail the call.
    assert r.call(lambda a: 42) == 42
    assert r.call(lambda a: type("X", (), {"headers": 5})()) is not None
