"""``PolicyInForce`` (the type of ``Router.policy()``) against the core: its keys are the core's
field list (``POLICY_FIELDS``, the list ``policy-read-back.json`` pins) in the core's order, and
every value read back has its annotated type, with the optional triggers both on and off. A field
the core gains and the type lacks, or a value of another type, fails here."""

from __future__ import annotations

import json
import typing
from typing import Any, Dict, List

import pytest

import failover_core as fc
from failover_core import Router
from scenario_runner import scenario_dir

HINTS = typing.get_type_hints(fc.PolicyInForce)
OPTIONAL = [k for k, t in HINTS.items() if type(None) in typing.get_args(t)]


def conforms(value: Any, hint: Any) -> bool:
    """Whether `value` has the type `hint` (the few forms the policy uses), bool apart from int."""
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        return any(conforms(value, h) for h in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(conforms(v, item) for v in value)
    if hint is type(None):
        return value is None
    if isinstance(hint, type) and issubclass(hint, dict):  # a TypedDict
        hints = typing.get_type_hints(hint)
        return (isinstance(value, dict) and set(value) == set(hints)
                and all(conforms(value[k], hints[k]) for k in hints))
    return type(value) is hint


def test_the_keys_are_the_core_field_list_in_its_order() -> None:
    assert tuple(HINTS) == fc.POLICY_FIELDS
    pinned = json.loads((scenario_dir() / "policy-read-back.json").read_text(encoding="utf-8"))
    expect = next(s["expect"] for s in pinned["steps"] if "policy" in s)
    assert tuple(expect) == tuple(HINTS)
    # The input type names the same fields (all optional).
    assert set(typing.get_type_hints(fc.Policy)) == set(HINTS)


@pytest.mark.parametrize("optional", [None, "set"])
def test_every_value_read_back_has_its_type(optional: Any) -> None:
    on: Dict[str, Any] = {
        "error_rate_threshold": 0.4, "consecutive_failures": 3, "timeout_rate_threshold": 0.3,
        "slow_call_rate_threshold": 0.5, "latency_factor": 3.0, "health_check_interval_ms": 5000,
        "pace_watermark": 0.2,
    }
    assert sorted(on) == sorted(OPTIONAL)  # every optional field is exercised both ways
    policy = on if optional == "set" else {k: None for k in OPTIONAL}
    p = Router(["a", "b"], policy, probe_mode="health_checks", when_all_down="fail").policy()
    wrong: List[str] = [f"{k}={p[k]!r} is not {HINTS[k]}" for k in HINTS  # type: ignore[literal-required]
                        if not conforms(p[k], HINTS[k])]  # type: ignore[literal-required]
    assert wrong == []
    assert all((p[k] is None) == (optional is None) for k in OPTIONAL)  # type: ignore[literal-required]
