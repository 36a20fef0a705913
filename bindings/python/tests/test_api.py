"""The router's Python API: construction, policy errors, timestamps, tickets, events, views, bad
input (hypothesis), threads and panics."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import failover_core as fc
from failover_core import ConfigError, Router, Unavailable


def test_policy_from_kwargs_and_dict_are_the_same() -> None:
    a = Router(["p", "s"], consecutive_failures=2, open_jitter=0)
    b = Router(["p", "s"], {"consecutive_failures": 2, "open_jitter": 0})
    for r in (a, b):
        for i in range(2):
            r.record(r.pick(i), "server_error", 1, i)
        (e,) = r.events()
        assert isinstance(e, fc.Opened)
        assert e.reason.trigger == "consecutive_failures"
        assert e.until_ms == 1 + 30_000


def test_kwargs_apply_after_the_dict() -> None:
    r = Router(["p"], {"consecutive_failures": 100}, consecutive_failures=1, open_jitter=0)
    r.record(r.pick(0), "server_error", 1, 0)
    assert [e.kind for e in r.events()] == ["opened"]


def test_config_error_carries_the_core_code_and_message() -> None:
    with pytest.raises(ConfigError) as info:
        Router(["a"], bucket_ms=0)
    e = info.value
    assert isinstance(e, ValueError)
    assert e.code == "zero_duration"
    assert e.field == "bucket_ms"
    assert e.message == str(e) == "`bucket_ms` must be a positive number of milliseconds"
    with pytest.raises(ConfigError) as info:
        Router(["a"], {"seed": [1]})
    assert (info.value.code, info.value.field) == ("wrong_type", "seed")
    assert str(info.value) == "`seed` takes a non-negative integer, got a list"
    with pytest.raises(ConfigError) as info:
        Router(["a", "a"])
    assert (info.value.code, info.value.field) == ("duplicate_name", None)


@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({"nope": 1}, "unknown_field"),
        ({"window_ms": "x"}, "wrong_type"),
        ({"window_ms": 1.5}, "wrong_type"),
        ({"window_ms": -1}, "out_of_range"),
        ({"window_ms": 2**200}, "out_of_range"),
        ({"window_ms": [1]}, "wrong_type"),
        ({"window_ms": {"a": 1}}, "wrong_type"),
        ({"window_ms": 1500}, "window_not_multiple_of_bucket"),
        ({"window_ms": 121_000}, "window_too_long"),
        ({"error_rate_threshold": math.nan}, "threshold_out_of_range"),
        ({"error_rate_threshold": 1.5}, "threshold_out_of_range"),
        ({"count_client_errors": 1}, "wrong_type"),
        ({"probe_mode": "x"}, "invalid_value"),
        ({"when_all_down": 3}, "wrong_type"),
        ({"ramp": []}, "empty_ramp"),
        ({"ramp": 5}, "wrong_type"),
        ({"ramp": [{"share": 0.5, "dwell_ms": 1}]}, "ramp_not_ending_at_full"),
        ({"ramp": [{"share": 0.5}]}, "wrong_type"),
        ({"ramp": [[0.5, 10], [1.0, 0]]}, "wrong_type"),
        ({"ramp": [{"share": 1.0, "dwell_ms": 0}] * 9}, "ramp_too_long"),
        ({"open_multiplier": 0.5}, "multiplier_out_of_range"),
        ({"probe_max_in_flight": 0}, "probe_limit_out_of_range"),
    ],
)
def test_policy_errors_are_the_core_codes(kwargs: Any, code: str) -> None:
    with pytest.raises(ConfigError) as info:
        Router(["a"], **kwargs)
    assert info.value.code == code
    with pytest.raises(ConfigError):
        fc.validate_policy(kwargs)


def test_a_valid_ramp_and_integral_floats_are_accepted() -> None:
    Router(
        ["a"],
        window_ms=30_000.0,
        ramp=[{"share": 0.5, "dwell_ms": 1000}, {"share": 1, "dwell_ms": 0}],
        consecutive_failures=None,
    )
    fc.validate_policy(window_ms=30_000)


@pytest.mark.parametrize(
    "names, code",
    [([], "no_providers"), (["a", "a"], "duplicate_name"), ([""], "empty_name"),
     (["x" * 65], "name_too_long"), ([f"p{i}" for i in range(17)], "too_many_providers")],
)
def test_provider_name_errors(names: Any, code: str) -> None:
    with pytest.raises(ConfigError) as info:
        Router(names)
    assert info.value.code == code


@pytest.mark.parametrize("bad", ["ab", b"ab", 3, None, [1], ["a", None]])
def test_providers_must_be_a_list_of_names(bad: Any) -> None:
    with pytest.raises(TypeError, match="providers"):
        Router(bad)


@pytest.mark.parametrize("bad", [[("window_ms", 1)], "x", 3])
def test_policy_must_be_a_mapping(bad: Any) -> None:
    with pytest.raises(TypeError, match="policy"):
        Router(["a"], bad)


def test_policy_keys_must_be_strings() -> None:
    with pytest.raises(TypeError, match="policy keys"):
        Router(["a"], {1: 2})


@pytest.mark.parametrize(
    "bad, exc",
    [(True, TypeError), (1.0, TypeError), ("1", TypeError), (-1, ValueError), (2**64, ValueError),
     (object(), TypeError)],
)
def test_timestamps_are_non_negative_ints(bad: Any, exc: type) -> None:
    r = Router(["a"])
    for call in (
        lambda: r.pick(bad),
        lambda: r.handle_timeout(bad),
        lambda: r.poll_action(bad),
        lambda: r.observe("a", "success", 1, bad),
        lambda: r.record(r.pick(0), "success", 1, bad),
    ):
        with pytest.raises(exc, match="now_ms"):
            call()


def test_timestamps_accept_the_whole_u64_range_and_int_subclasses() -> None:
    class Ms(int):
        pass

    r = Router(["a"])
    r.pick(Ms(5))
    t = r.pick(2**64 - 1)
    assert t.issued_at_ms == 2**64 - 1
    assert r.now_ms == 2**64 - 1


def test_the_default_clock_is_time_monotonic() -> None:
    r = Router(["a"])
    before = time.monotonic_ns() // 1_000_000
    t = r.pick()
    after = time.monotonic_ns() // 1_000_000
    assert before <= t.issued_at_ms <= after
    assert before <= fc.monotonic_ms() <= time.monotonic_ns() // 1_000_000


def test_time_never_goes_backwards_inside_the_engine() -> None:
    r = Router(["a"])
    r.pick(1000)
    t = r.pick(10)
    assert t.issued_at_ms == 1000


@pytest.mark.parametrize(
    "latency, exc",
    [(math.nan, ValueError), (-1, ValueError), (-0.5, ValueError), (math.inf, ValueError),
     (True, TypeError), ("1", TypeError)],
)
def test_latency_is_a_finite_non_negative_number(latency: Any, exc: type) -> None:
    r = Router(["a"])
    with pytest.raises(exc, match="latency_ms"):
        r.record(r.pick(0), "success", latency, 0)
    with pytest.raises(exc, match="latency_ms"):
        r.observe("a", "success", latency, 0)


def test_latency_floats_round_and_huge_values_saturate() -> None:
    r = Router(["a"], open_jitter=0)
    assert r.record(r.pick(0), "success", 12.6, 0) == "accepted"
    assert r.view("a").latency_ms is not None
    assert r.observe("a", "success", 2**40, 1) == "accepted"
    assert r.observe("a", "success", 1e300, 2) == "accepted"


@pytest.mark.parametrize("bad, exc", [(math.nan, ValueError), (-5, ValueError), (True, TypeError),
                                      ("5", TypeError)])
def test_retry_after_is_checked(bad: Any, exc: type) -> None:
    r = Router(["a"])
    with pytest.raises(exc, match="retry_after_ms"):
        r.record(r.pick(0), "rate_limited", 1, 0, retry_after_ms=bad)


def test_outcome_names() -> None:
    r = Router(["a"])
    with pytest.raises(ValueError, match="outcome"):
        r.record(r.pick(0), "fine", 1, 0)
    with pytest.raises(TypeError, match="outcome"):
        r.record(r.pick(0), 200, 1, 0)
    # A name built at run time (not an interned literal) works too.
    assert r.record(r.pick(0), "".join(["suc", "cess"]), 1, 0) == "accepted"
    assert fc.OUTCOMES == (
        "success", "rate_limited", "server_error", "connection_error", "timeout",
        "client_error", "cancelled", "refused", "credentials_rejected", "quota_exhausted",
        "stream_cut", "stalled",
    )


def test_unknown_providers_are_value_errors() -> None:
    r = Router(["a", "b"])
    with pytest.raises(ValueError, match="unknown provider 'c'|unknown provider \"c\""):
        r.observe("c", "success", 1, 0)
    with pytest.raises(ValueError, match="provider"):
        r.view("c")
    with pytest.raises(ValueError, match="tried"):
        r.pick(0, tried=["c"])
    with pytest.raises(TypeError, match="tried"):
        r.pick(0, tried="a")
    with pytest.raises(TypeError, match="provider"):
        r.view(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key"):
        r.pick(0, key=5)  # type: ignore[arg-type]


def test_tickets() -> None:
    r = Router(["a", "b"])
    t = r.pick(7)
    assert (t.provider, t.provider_index, t.kind, t.is_probe, t.degraded, t.retry_after_ms,
            t.issued_at_ms, t.generation) == ("a", 0, "request", False, False, None, 7, 0)
    assert "provider=\"a\"" in repr(t)
    with pytest.raises(TypeError):
        fc.Ticket()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="ticket"):
        r.record("a", "success", 1, 0)  # type: ignore[arg-type]
    other = Router(["a", "b"])
    with pytest.raises(ValueError, match="another router"):
        other.record(t, "success", 1, 8)


def test_a_ticket_from_before_a_trip_is_stale() -> None:
    r = Router(["a", "b"], consecutive_failures=1, open_jitter=0)
    old = r.pick(0)
    r.record(r.pick(0), "server_error", 1, 1)
    assert r.view("a").state == "open"
    assert r.record(old, "success", 1, 2) == "stale"


def test_tried_and_key() -> None:
    r = Router(["a", "b"])
    assert r.pick(0, tried=["a"]).provider == "b"
    assert r.pick(0, tried=("a",), key="conversation-1").provider == "b"
    assert r.pick(0, key=b"bytes").provider == "a"
    with pytest.raises(Unavailable) as info:
        r.pick(0, tried=["a", "b"])
    assert info.value.retry_after_ms == 0
    assert isinstance(info.value, fc.FailoverError)
    assert fc.hash_key("abc") == fc.hash_key(b"abc")


def test_unavailable_when_all_down_and_fail() -> None:
    r = Router(["a"], consecutive_failures=1, open_jitter=0, when_all_down="fail")
    r.record(r.pick(0), "server_error", 1, 0)
    with pytest.raises(Unavailable) as info:
        r.pick(1000)
    assert info.value.retry_after_ms == 29_000


def test_degraded_ticket_when_all_down_and_soonest() -> None:
    r = Router(["a"], consecutive_failures=1, open_jitter=0)
    r.record(r.pick(0), "server_error", 1, 0)
    t = r.pick(1000)
    assert t.degraded and t.retry_after_ms == 29_000


def test_events_are_typed_and_round_trip_to_the_scenario_shape() -> None:
    r = Router(["a", "b"], consecutive_failures=1, open_jitter=0, probe_successes=1,
               ramp=[{"share": 0.5, "dwell_ms": 1000}, {"share": 1.0, "dwell_ms": 0}],
               ramp_min_samples=1)
    r.record(r.pick(0), "rate_limited", 1, 0, retry_after_ms=500)
    r.record(r.pick(0, tried=["b"]), "server_error", 1, 1)
    r.handle_timeout(40_000)
    kinds = [type(e) for e in r.events()]
    assert kinds[:2] == [fc.Throttled, fc.Opened]
    assert fc.Probing in kinds
    t = r.pick(40_001)
    assert t.kind == "probe"
    r.record(t, "success", 5, 40_002)
    evs = r.events()
    stage = [e for e in evs if isinstance(e, fc.RampStage)]
    assert stage and stage[0].share == 0.5 and stage[0].share_ppm == 500_000
    d = stage[0].to_dict()
    assert d == {"at_ms": 40_002, "provider": "a", "kind": "ramp_stage", "stage": 0, "share": 0.5}
    opened = fc.Opened(1, "a", fc.Reason("error_rate", 1, 2, 3, None), "healthy", 9, 1)
    assert opened.to_dict()["from"] == "healthy"
    assert r.poll_event() is None
    assert r.pending_events == 0 and r.dropped_events == 0


def test_views_are_plain_data() -> None:
    r = Router(["a", "b"])
    r.observe("a", "success", 100, 0)
    v = r.view("a")
    assert isinstance(v, fc.ProviderView) and isinstance(v.window, fc.WindowStats)
    assert (v.name, v.state, v.share, v.share_ppm) == ("a", "healthy", 1.0, 1_000_000)
    assert v.window.successes == 1
    d = v.to_dict()
    assert "share_ppm" not in d and d["window"]["volume"] == 1
    assert [x.name for x in r.views()] == ["a", "b"]
    assert r.invariant_violation() is None


def test_record_returns_interned_names() -> None:
    r = Router(["a"])
    assert r.record(r.pick(0), "success", 1, 0) is "accepted"  # noqa: F632


def test_a_panic_becomes_internal_error_and_poisons_only_that_router() -> None:
    r = Router(["a"])
    other = Router(["a"])
    with pytest.raises(fc.InternalError, match="panicked"):
        r._debug_panic()
    with pytest.raises(fc.InternalError, match="poisoned"):
        r.pick(0)
    assert other.pick(0).provider == "a"


def test_one_router_shared_by_threads() -> None:
    r = Router([f"p{i}" for i in range(4)], consecutive_failures=3, open_jitter=0)
    errors: list = []
    barrier = threading.Barrier(8)

    def work(seed: int) -> None:
        try:
            barrier.wait()
            for i in range(3000):
                try:
                    t = r.pick()
                except Unavailable:
                    continue
                r.record(t, "server_error" if (i + seed) % 7 == 0 else "success", 5)
                if i % 100 == 0:
                    r.events()
                    r.views()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert r.invariant_violation() is None


# -- hypothesis: API misuse never crashes, only TypeError/ValueError/FailoverError -----------------

ANY = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.binary(max_size=8), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
ALLOWED = (TypeError, ValueError, fc.FailoverError)


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["pick", "record", "observe", "handle_timeout", "poll_action", "view"]),
    args=st.lists(ANY, max_size=5),
)
def test_random_arguments_raise_only_documented_errors(method: str, args: list) -> None:
    r = Router(["a", "b"])
    if method == "record" and args:
        args[0] = r.pick(0)
    try:
        getattr(r, method)(*args)
    except ALLOWED:
        pass
    assert r.invariant_violation() is None


@settings(max_examples=200, deadline=None)
@given(policy=st.dictionaries(st.sampled_from(list(fc.POLICY_FIELDS) + ["nope"]), ANY, max_size=4))
def test_random_policies_raise_only_config_errors(policy: dict) -> None:
    try:
        Router(["a", "b"], policy)
    except ConfigError as e:
        assert e.code and e.message
    try:
        fc.validate_policy(policy)
    except ConfigError:
        pass


OPS = st.lists(
    st.tuples(
        st.sampled_from(["pick", "record", "observe", "tick", "poll", "events", "view"]),
        st.integers(0, 200_000),
        st.sampled_from(fc.OUTCOMES),
        st.integers(0, 40_000),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops=OPS)
def test_random_sequences_keep_the_engine_consistent(ops: list) -> None:
    r = Router(["a", "b", "c"], consecutive_failures=2, min_volume=2, probe_successes=1,
               health_check_interval_ms=5_000)
    tickets: list = []
    for op, at, outcome, latency in ops:
        if op == "pick":
            try:
                tickets.append(r.pick(at))
            except Unavailable:
                pass
        elif op == "record" and tickets:
            assert r.record(tickets.pop(0), outcome, latency, at) in ("accepted", "stale")
        elif op == "observe":
            assert r.observe("b", outcome, latency, at) == "accepted"
        elif op == "tick":
            r.handle_timeout(at)
        elif op == "poll":
            t = r.poll_action(at)
            if t is not None:
                assert t.kind == "health_check"
                tickets.append(t)
        elif op == "events":
            for e in r.events():
                assert e.to_dict()["provider"] in r.providers
        else:
            for v in r.views():
                assert 0.0 <= v.share <= 1.0
        assert r.invariant_violation() is None
