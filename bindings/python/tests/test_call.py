"""`Router.call` / `Router.acall` and the health-check task.

Hypothesis drives random sequences of provider failures and checks that the helper never calls a
provider the engine did not pick, never exceeds its attempt budget, and records every attempt
exactly once."""

from __future__ import annotations

import asyncio
from typing import Any, List, Optional, Tuple

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


class SpyRouter(Router):
    """Logs every pick and record, to check what call/acall do."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.picked: List[fc.Ticket] = []
        self.recorded: List[Tuple[fc.Ticket, str]] = []

    def pick(self, *args: Any, **kwargs: Any) -> fc.Ticket:  # type: ignore[override]
        t = super().pick(*args, **kwargs)
        self.picked.append(t)
        return t

    def record(self, ticket: fc.Ticket, outcome: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.recorded.append((ticket, outcome))
        return super().record(ticket, outcome, *args, **kwargs)


BEHAVIOURS = ["ok", "server", "conn", "timeout", "ratelimit", "client"]


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


def check_invariants(r: SpyRouter, calls: List[str], budget: int, outcome: Any) -> None:
    # fn was only ever called with the provider of the ticket picked just before.
    tickets = r.picked
    assert len(calls) == len(tickets), "one call per picked ticket"
    for provider, t in zip(calls, tickets):
        assert provider == t.provider
    # Never more attempts than the budget, never the same provider twice in one request.
    assert len(calls) <= budget
    assert len(set(calls)) == len(calls)
    # Every attempt recorded exactly once, against its own ticket.
    assert [t for t, _ in r.recorded] == tickets
    if isinstance(outcome, AllAttemptsFailed):
        assert len(outcome.attempts) == len(calls)
        assert [a.provider for a in outcome.attempts] == calls
        assert outcome.__cause__ is outcome.attempts[-1].error
        assert outcome.retry_after_ms is not None and outcome.retry_after_ms >= 0


SCRIPTS = st.lists(st.lists(st.sampled_from(BEHAVIOURS), min_size=1, max_size=6), min_size=1,
                   max_size=8)

WINDOW_FIELD = {"ok": "successes", "server": "failures", "conn": "failures", "timeout": "timeouts",
                "ratelimit": "rate_limited", "client": "client_errors"}


class NativeSpyRouter(Router):
    """Sees each native attempt's failure ticket (successes are recorded inside `_attempt`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.failures: List[fc.Ticket] = []

    def _attempt(self, fn_: Any, key: Any = None, tried: Any = None) -> Any:
        r = super()._attempt(fn_, key, tried)
        if type(r) is fc._native._Failure:
            self.failures.append(r.ticket)
        return r


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts=SCRIPTS, n_providers=st.integers(1, 4),
       max_attempts=st.one_of(st.none(), st.integers(1, 5)))
def test_call_under_random_failures(scripts: List[List[str]], n_providers: int,
                                    max_attempts: Optional[int]) -> None:
    """The native path: every call of `fn` is for the provider the engine picked (its failure
    ticket names it, its success is recorded against it), within the budget, each provider at most
    once per request, and every attempt is recorded exactly once."""
    names = [f"p{i}" for i in range(n_providers)]
    r = NativeSpyRouter(names, consecutive_failures=2, open_jitter=0)
    budget = n_providers if max_attempts is None else max_attempts
    expected = {n: {f: 0 for f in set(WINDOW_FIELD.values())} for n in names}
    for script in scripts:
        r.failures.clear()
        calls: List[Tuple[str, str]] = []
        behaviours = iter(script)

        def fn(provider: str) -> str:
            b = next(behaviours, "ok")
            calls.append((provider, b))
            expected[provider][WINDOW_FIELD[b]] += 1
            raise_for(b)
            return f"answer from {provider}"

        try:
            outcome: Any = r.call(fn, max_attempts=max_attempts)
        except AllAttemptsFailed as e:
            outcome = e
            assert [a.provider for a in e.attempts] == [p for p, _ in calls]
            assert e.__cause__ is e.attempts[-1].error
            assert e.retry_after_ms is not None and e.retry_after_ms >= 0
        except Unavailable:
            outcome = None
            assert not calls
        except APIStatusError as e:
            assert e.status_code == 400 and calls[-1][1] == "client"
        else:
            assert outcome == f"answer from {calls[-1][0]}" and calls[-1][1] == "ok"
        providers = [p for p, _ in calls]
        assert len(providers) <= budget
        assert len(set(providers)) == len(providers)
        failed = [p for p, b in calls if b != "ok"]
        assert [t.provider for t in r.failures] == failed
        # Every attempt recorded once, against the provider called (all within one window).
        for n in names:
            w = r.view(n).window
            for field, count in expected[n].items():
                assert getattr(w, field) == count, (n, field)
    assert r.invariant_violation() is None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts=SCRIPTS, n_providers=st.integers(1, 4),
       max_attempts=st.one_of(st.none(), st.integers(1, 5)))
def test_call_classified_path_under_random_failures(
    scripts: List[List[str]], n_providers: int, max_attempts: Optional[int]
) -> None:
    """The Python path (with `classify_result`): checked ticket by ticket."""
    r = SpyRouter([f"p{i}" for i in range(n_providers)], consecutive_failures=2, open_jitter=0)
    budget = n_providers if max_attempts is None else max_attempts
    for script in scripts:
        r.picked.clear()
        r.recorded.clear()
        calls: List[str] = []
        behaviours = iter(script)

        def fn(provider: str) -> str:
            calls.append(provider)
            raise_for(next(behaviours, "ok"))
            return f"answer from {provider}"

        try:
            outcome: Any = r.call(fn, max_attempts=max_attempts, classify_result=lambda v: None)
        except AllAttemptsFailed as e:
            outcome = e
        except Unavailable as e:
            outcome = e
            assert not calls
        except APIStatusError as e:
            outcome = e
            assert e.status_code == 400
            assert r.recorded[-1][1] == "client_error"
        else:
            assert outcome == f"answer from {calls[-1]}"
            assert r.recorded[-1][1] == "success"
        check_invariants(r, calls, budget, outcome)
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
    r = SpyRouter([f"p{i}" for i in range(n_providers)], consecutive_failures=2, open_jitter=0)
    budget = n_providers if max_attempts is None else max_attempts

    async def main() -> None:
        for script in scripts:
            r.picked.clear()
            r.recorded.clear()
            calls: List[str] = []
            behaviours = iter(script)

            async def fn(provider: str) -> str:
                calls.append(provider)
                await asyncio.sleep(0)
                raise_for(next(behaviours, "ok"))
                return provider

            try:
                outcome: Any = await r.acall(fn, max_attempts=max_attempts)
            except (AllAttemptsFailed, Unavailable, APIStatusError) as e:
                outcome = e
            else:
                assert outcome == calls[-1]
            check_invariants(r, calls, budget, outcome)

    asyncio.run(main())


def test_call_fails_over_and_returns() -> None:
    r = Router(["a", "b"])
    seen: List[str] = []

    def fn(p: str) -> str:
        seen.append(p)
        if p == "a":
            raise APIStatusError(503)
        return "ok"

    assert r.call(fn) == "ok"
    assert seen == ["a", "b"]
    assert r.view("a").window.failures == 1
    assert r.view("b").window.successes == 1


def test_client_errors_are_reraised_at_once() -> None:
    r = Router(["a", "b"])
    seen: List[str] = []

    def fn(p: str) -> None:
        seen.append(p)
        raise APIStatusError(400)

    with pytest.raises(APIStatusError):
        r.call(fn)
    assert seen == ["a"]
    assert r.view("a").window.client_errors == 1


def test_all_attempts_failed_chains_errors_and_carries_retry_after() -> None:
    r = Router(["a", "b"], open_jitter=0)

    def fn(p: str) -> None:
        raise APIStatusError(429, "30")

    with pytest.raises(AllAttemptsFailed) as info:
        r.call(fn)
    e = info.value
    assert isinstance(e, Unavailable) and isinstance(e, fc.FailoverError)
    assert [a.provider for a in e.attempts] == ["a", "b"]
    assert [a.kind for a in e.attempts] == ["rate_limited", "rate_limited"]
    assert all(isinstance(x, APIStatusError) for x in e.errors)
    assert e.__cause__ is e.errors[-1]
    # Both are throttled for 30 s: the engine's hint says so.
    assert e.retry_after_ms is not None and 29_000 <= e.retry_after_ms <= 30_000
    assert e.retry_after == e.retry_after_ms / 1000
    assert "all 2 attempts failed" in str(e)
    # Now both are throttled: the next call gets a degraded ticket and still tries.
    with pytest.raises(AllAttemptsFailed):
        r.call(fn, max_attempts=1)


def test_unavailable_before_any_attempt_is_raised_as_is() -> None:
    r = Router(["a"], consecutive_failures=1, when_all_down="fail")
    with pytest.raises(AllAttemptsFailed):
        r.call(lambda p: (_ for _ in ()).throw(ConnectionResetError()))
    with pytest.raises(Unavailable) as info:
        r.call(lambda p: "never")
    assert not isinstance(info.value, AllAttemptsFailed)
    assert info.value.retry_after_ms > 0


def test_max_attempts_is_checked() -> None:
    r = Router(["a"])
    with pytest.raises(ValueError, match="max_attempts"):
        r.call(lambda p: p, max_attempts=0)
    with pytest.raises(TypeError, match="max_attempts"):
        r.call(lambda p: p, max_attempts=True)


def test_keyboard_interrupt_is_recorded_as_cancelled_and_reraised() -> None:
    r = Router(["a", "b"])

    def fn(p: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        r.call(fn)
    assert r.view("a").window.volume == 0


def test_custom_classifiers_and_unraised_error_responses() -> None:
    class Resp:
        def __init__(self, status_code: int) -> None:
            self.status_code = status_code
            self.headers = {}

    r = Router(["a", "b"])
    got = r.call(lambda p: Resp(500 if p == "a" else 200), classify_result=fc.classify_response)
    assert got.status_code == 200
    assert r.view("a").window.failures == 1
    # A 400 response is returned to the caller as is.
    got = r.call(lambda p: Resp(400), classify_result=fc.classify_response)
    assert got.status_code == 400
    with pytest.raises(AllAttemptsFailed) as info:
        r.call(lambda p: Resp(503), classify_result=fc.classify_response)
    assert isinstance(info.value.errors[0], fc.ProviderResponseError)
    assert info.value.errors[0].status == 503
    # A classifier may say any exception is a provider failure.
    seen: List[str] = []

    def boom(p: str) -> str:
        seen.append(p)
        if p == "a":
            raise RuntimeError("provider-specific failure")
        return "ok"

    r2 = Router(["a", "b"])
    assert r2.call(boom, classify=lambda e: "server_error") == "ok"
    assert seen == ["a", "b"]
    with pytest.raises(TypeError, match="classifier"):
        r2.call(lambda p: 1 / 0, classify=lambda e: 42)  # type: ignore[arg-type,return-value]


def test_acall_cancellation_records_cancelled() -> None:
    r = Router(["a", "b"])

    async def main() -> None:
        started = asyncio.Event()

        async def fn(p: str) -> None:
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
    assert r.call(lambda p: p, key="conversation-7") == "a"


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
            r.call(lambda p: (_ for _ in ()).throw(Refused()))
        except Refused as e:
            refs.append(weakref.ref(e))
        try:
            r.call(lambda p: (_ for _ in ()).throw(Reset()))
        except AllAttemptsFailed as e:
            refs.append(weakref.ref(e))
            refs.append(weakref.ref(e.errors[0]))
    gc.collect()
    assert all(ref() is None for ref in refs)
