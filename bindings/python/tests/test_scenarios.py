"""Every scenario in fixtures/scenarios, replayed through the public Python API.

One test per file (``pytest_generate_tests``); a scenario that Python skips must be listed in
``SKIPPED`` with its reason (there are none). With ``FAILOVER_SCENARIO_DUMP=1`` the compact JSON
line of every step is printed (``pytest -s`` shows it), the same lines as the Rust runner's
``observe`` example. With ``FAILOVER_RUST_OBSERVE`` naming that example's binary, every line is
also compared with Rust's.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Dict

import pytest

from scenario_runner import Failure, Scenario, compact, matches, scenario_dir, scenario_files

#: Scenario file name -> why Python skips it. Keep empty: the three languages must agree.
SKIPPED: Dict[str, str] = {}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "scenario_path" in metafunc.fixturenames:
        files = scenario_files()
        metafunc.parametrize("scenario_path", files, ids=[p.stem for p in files])


def test_the_suite_is_found_and_not_empty() -> None:
    files = scenario_files()
    assert files, f"no scenario files in {scenario_dir()}"
    for p in files:
        doc = json.loads(p.read_text(encoding="utf-8"))
        assert doc.get("name") == p.stem, f"{p}: `name` must match the file name"
        assert isinstance(doc.get("description"), str) and len(doc["description"]) > 20


def test_scenario(scenario_path: Path) -> None:
    if scenario_path.name in SKIPPED:
        pytest.skip(SKIPPED[scenario_path.name])
    dump = os.environ.get("FAILOVER_SCENARIO_DUMP") == "1"
    try:
        Scenario(scenario_path).check(dump=dump)
    except Failure as f:
        pytest.fail(str(f), pytrace=False)


def _strict_equal(a: Any, b: Any) -> bool:
    """Equal values of equal JSON types (an int is not a float here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_strict_equal(x, y) for x, y in zip(a, b))
    return bool(a == b)


@pytest.mark.skipif(
    not os.environ.get("FAILOVER_RUST_OBSERVE"),
    reason="set FAILOVER_RUST_OBSERVE to the Rust `observe` example to compare line by line",
)
def test_same_lines_as_the_rust_runner(scenario_path: Path) -> None:
    rust = subprocess.run(
        [os.environ["FAILOVER_RUST_OBSERVE"], str(scenario_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    py = [compact(r.to_json()) for r in Scenario(scenario_path).observe()]
    assert len(py) == len(rust), f"{len(py)} Python lines, {len(rust)} Rust lines"
    for i, (p, r) in enumerate(zip(py, rust)):
        assert _strict_equal(json.loads(p), json.loads(r)), f"step {i}:\n python {p}\n   rust {r}"


def test_a_broken_expectation_names_the_file_and_step(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text(
        json.dumps(
            {
                "name": "broken",
                "description": "a scratch scenario whose second step is wrong",
                "providers": ["a", "b"],
                "steps": [
                    {"at": 0, "pick": {}, "expect": {"provider": "a"}},
                    {"at": 1, "pick": {}, "expect": {"provider": "b"}},
                ],
            }
        )
    )
    with pytest.raises(Failure) as info:
        Scenario(path).check()
    assert info.value.step == 1
    assert "broken.json: step 1" in str(info.value)


def test_expect_error_scenarios_use_the_core_code(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            {
                "name": "bad",
                "description": "a window that is not a multiple of the bucket",
                "policy": {"window_ms": 1500},
                "providers": ["a"],
                "expect_error": "window_not_multiple_of_bucket",
            }
        )
    )
    Scenario(path).check()
    path.write_text(
        json.dumps(
            {
                "name": "bad",
                "description": "a policy that is not an object",
                "policy": None,
                "providers": ["a"],
                "expect_error": "wrong_type",
            }
        )
    )
    Scenario(path).check()


def test_matches_follows_the_rust_rules() -> None:
    assert matches(0, 0.0)
    assert matches({"a": 1}, {"a": 1, "b": 2})
    assert not matches({"a": 1, "c": 3}, {"a": 1})
    assert not matches([1], [1, 2])
    assert not matches(True, 1)
    assert not matches(1, True)
    assert not matches(None, 0)
    assert matches("x", "x")
    assert not matches(2**64 - 1, 2**64 - 2)


FLEET_DIR = scenario_dir().parent / "fleet"


@pytest.mark.parametrize("name", sorted(p.stem for p in FLEET_DIR.glob("*.json")))
def test_fleet_scenario(name: str) -> None:
    """Fleet scenarios (``fixtures/fleet``) are listed here and skipped, with the reason."""
    pytest.skip(
        f"fleet scenario {name}: several routers sharing a store model; the Python package drives "
        "fleet mode against a real Redis only (tests/test_fleet.py), so only Rust replays it "
        "(cargo test -p failover-scenario --test fleet)"
    )
