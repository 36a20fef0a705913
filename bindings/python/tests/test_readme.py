"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import List

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks() -> List[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_readme_has_python_examples() -> None:
    assert len(blocks()) >= 4


@pytest.mark.parametrize("code", blocks(), ids=lambda c: c.splitlines()[0][:40])
def test_readme_example_runs(code: str, capsys: pytest.CaptureFixture[str]) -> None:
    # An example of an optional extra needs that extra (test.sh's main run installs every one;
    # the runs on the other Python versions install pytest and hypothesis only).
    for module, needs in (("failover_core.fleet", "redis"), ("failover_core.otel", "opentelemetry")):
        if module in code:
            pytest.importorskip(needs)
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out
