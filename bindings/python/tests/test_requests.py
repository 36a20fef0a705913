"""Every request scenario in fixtures/requests, replayed through the native request engine
(``_native.Request``), plus the native class's own contract (errors, arguments).

One test per file (``pytest_generate_tests``); a scenario that Python skips must be listed in
``SKIPPED`` with its reason (there are none). ``FAILOVER_SCENARIO_DUMP=1`` prints the compact JSON
line of every step, and with ``FAILOVER_RUST_OBSERVE`` naming the Rust ``observe`` example every
line is compared with Rust's, as in ``test_scenarios.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Dict

import pytest

from failover_core import Router, _native
from scenario_runner import Failure, Scenario, compact, request_dir, request_files
from test_scenarios import _strict_equal

#: Request scenario file name -> why Python skips it. Keep empty: the three languages must agree.
SKIPPED: Dict[str, str] = {}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "request_path" in metafunc.fixturenames:
        files = request_files()
        metafunc.parametrize("request_path", files, ids=[p.stem for p in files])


def test_the_request_suite_is_found_and_not_empty() -> None:
    files = request_files()
    assert files, f"no request scenario files in {request_dir()}"
    for p in files:
        doc = json.loads(p.read_text(encoding="utf-8"))
        assert doc.get("name") == p.stem, f"{p}: `name` must match the file name"
        assert isinstance(doc.get("description"), str) and len(doc["description"]) > 20


def test_request_scenario(request_path: Path) -> None:
    if request_path.name in SKIPPED:
        pytest.skip(SKIPPED[request_path.name])
    dump = os.environ.get("FAILOVER_SCENARIO_DUMP") == "1"
    try:
        Scenario(request_path).check(dump=dump)
    except Failure as f:
        pytest.fail(str(f), pytrace=False)


@pytest.mark.skipif(
    not os.environ.get("FAILOVER_RUST_OBSERVE"),
    reason="set FAILOVER_RUST_OBSERVE to the Rust `observe` example to compare line by line",
)
def test_same_request_lines_as_the_rust_runner(request_path: Path) -> None:
    rust = subprocess.run(
        [os.environ["FAILOVER_RUST_OBSERVE"], str(request_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    py = [compact(r.to_json()) for r in Scenario(request_path).observe()]
    assert len(py) == len(rust), f"{len(py)} Python lines, {len(rust)} Rust lines"
    for i, (p, r) in enumerate(zip(py, rust)):
        assert p == r, f"step {i}:\n python {p}\n   rust {r}"
        assert _strict_equal(json.loads(p), json.loads(r)), f"step {i}: JSON types differ"


def test_a_request_runs_to_its_finish_in_the_scenario_shapes() -> None:
    r = Router(["a", "b"])
    req = _native.Request(r, 0)
    assert req.deadline_ms() == 120_000 and req.attempts() == 0
    step = req.poll(r, 0)
    assert step == {
        "attempt": {
            "provider": "a",
            "kind": "request",
            "number": 1,
            "deadline_ms": 60_000,
            "timeout_ms": 60_000,
            "idle_ms": None,
            "last": False,
        }
    }
    assert req.poll(r, 5) == {"in_flight": {"deadline_ms": 60_000}}
    assert req.in_flight() == {
        "provider": "a",
        "kind": "request",
        "degraded": False,
        "retry_after_ms": None,
    }
    assert req.last_report() == (None, 0)
    req.handle_outcome(r, "server_error", 100)
    assert req.last_report() == (
        {"provider": "a", "outcome": "server_error", "latency_ms": 100, "result": "accepted"},
        1,
    )
    assert req.poll(r, 100)["attempt"]["provider"] == "b"
    req.handle_outcome(r, "success", 150)
    assert req.finish() == {"finish": "success", "provider": "b"}
    assert req.poll(r, 150) == {"done": {"finish": "success", "provider": "b"}}
    assert req.attempts() == 2
    assert "attempts=2" in repr(req)


def test_refused_inputs_raise_request_error_with_the_core_name() -> None:
    r = Router(["a"])
    req = _native.Request(r, 0)
    with pytest.raises(_native.RequestError) as info:
        req.handle_outcome(r, "success", 0)
    assert info.value.code == "no_attempt"
    assert isinstance(info.value, _native.FailoverError)
    with pytest.raises(_native.RequestError) as info:
        req.handle_first_token(0)
    assert info.value.code == "not_streamed"
    req.handle_cancel(r, 1)
    assert req.finish() == {"finish": "cancelled"}
    with pytest.raises(_native.RequestError) as info:
        req.handle_chunk(2)
    assert info.value.code == "finished"
    assert info.value.message == "the request is over"


def test_a_request_is_driven_by_its_own_router_only() -> None:
    r, other = Router(["a"]), Router(["a"])
    req = _native.Request(r, 0)
    with pytest.raises(ValueError, match="another router"):
        req.poll(other, 0)
    with pytest.raises(TypeError, match="router must be"):
        req.poll("a", 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="router must be"):
        _native.Request(None, 0)  # type: ignore[arg-type]


def test_request_arguments_are_checked() -> None:
    r = Router(["a", "b"], same_provider_retries=0)
    with pytest.raises(ValueError, match="max_attempts"):
        _native.Request(r, 0, max_attempts=256)
    with pytest.raises(TypeError, match="stream must be a bool"):
        _native.Request(r, 0, stream=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key must be str or bytes"):
        _native.Request(r, 0, key=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="now_ms"):
        _native.Request(r, -1)
    req = _native.Request(r, 10, max_attempts=1, deadline_ms=500, stream=True, key=b"conv")
    assert req.deadline_ms() == 500
    attempt = req.poll(r, 10)["attempt"]
    # The only attempt the budget allows gets all the remaining time.
    assert attempt["last"] is True and attempt["deadline_ms"] == 500
    with pytest.raises(TypeError, match="complete must be a bool"):
        req.handle_end(r, 1, 20)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="outcome"):
        req.handle_outcome(r, "fine", 20)
    req.handle_first_token(20)
    req.handle_end(r, True, 30)
    assert req.last_report()[0] == {
        "provider": "a",
        "outcome": "success",
        "latency_ms": 10,
        "result": "accepted",
    }
