"""The README's Python examples pass `mypy --strict`, and the types reject what the core would
refuse at run time: a misspelt policy field (keyword or dict key), a policy value of the wrong
type, a misspelt outcome."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import List

import pytest

from test_readme import blocks

api = pytest.importorskip("mypy.api")


def mypy(tmp_path: Path, sources: List[str]) -> str:
    files = []
    for i, src in enumerate(sources):
        f = tmp_path / f"example_{i}.py"
        f.write_text(src, encoding="utf-8")
        files.append(str(f))
    out, err, status = api.run(["--strict", "--no-error-summary", "--show-error-codes", *files])
    return out + err if status else ""


def test_the_readme_examples_pass_mypy_strict(tmp_path: Path) -> None:
    assert mypy(tmp_path, blocks()) == ""


@pytest.mark.parametrize(
    "code, error",
    [
        ('Router(["a"], consecutive_failure=3)', 'Unexpected keyword argument "consecutive_failure"'),
        ('Router(["a"], {"consecutive_failure": 3})', 'expected "Policy | PolicyInForce | None"'),
        ('Router(["a"], probe_mode="health_check")', "probe_mode"),
        ('Router(["a"], window_ms="60s")', "window_ms"),
        ('r = Router(["a"])\nr.record(r.pick(), "sucess")', '"record" of "Router" has incompatible'),
        ('r = Router(["a"])\nr.observe("a", "timed_out")', '"observe" of "Router" has incompatible'),
    ],
)
def test_the_types_reject_misspelt_fields_and_outcomes(tmp_path: Path, code: str, error: str) -> None:
    src = "from failover_core import Router\n" + textwrap.dedent(code) + "\n"
    assert error in mypy(tmp_path, [src])


def test_a_subclass_is_its_own_type(tmp_path: Path) -> None:
    src = textwrap.dedent(
        """
        from failover_core import Router

        class MyRouter(Router):
            def extra(self) -> int:
                return 1

        r = MyRouter(["a"], consecutive_failures=2)
        n: int = r.extra()
        """
    )
    assert mypy(tmp_path, [src]) == ""


def pyright(tmp_path: Path, sources: List[str]) -> "tuple[int, str]":
    import shutil
    import subprocess
    import sys

    exe = shutil.which("pyright", path=str(Path(sys.executable).parent)) or shutil.which("pyright")
    if exe is None:
        pytest.skip("pyright is not installed (test.sh installs it)")
    for i, src in enumerate(sources):
        (tmp_path / f"example_{i}.py").write_text(src, encoding="utf-8")
    p = subprocess.run([exe, "--pythonpath", sys.executable, str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout + p.stderr


def test_pyright_accepts_the_readme_examples_and_rejects_the_mistakes(tmp_path: Path) -> None:
    ok = tmp_path / "ok"
    ok.mkdir()
    rc, out = pyright(ok, blocks())
    assert rc == 0, out
    bad = tmp_path / "bad"
    bad.mkdir()
    rc, out = pyright(bad, [textwrap.dedent(
        """
        from failover_core import Router

        class MyRouter(Router):
            def extra(self) -> int:
                return 1

        Router(["a"], consecutive_failure=3)
        Router(["a"], {"consecutive_failure": 3})
        r = Router(["a"])
        r.record(r.pick(), "sucess")
        reveal_type(MyRouter(["a"]))
        """
    )])
    assert rc != 0
    assert 'No parameter named "consecutive_failure"' in out
    assert '"consecutive_failure" is an undefined item in "Policy"' in out or "Policy" in out
    assert "\"Literal['sucess']\" cannot be assigned" in out or "sucess" in out
    assert 'is "MyRouter"' in out
    assert out.count(" - error:") == 3, out


def test_the_policy_read_back_is_typed_field_by_field(tmp_path: Path) -> None:
    good = textwrap.dedent(
        """
        from typing import List, Optional
        from failover_core import PolicyInForce, RampStageSpec, Router

        r = Router(["a"], consecutive_failures=4)
        p: PolicyInForce = r.policy()
        window: int = p["window_ms"]
        rate: Optional[float] = p["error_rate_threshold"]
        ramp: List[RampStageSpec] = p["ramp"]
        share: float = ramp[0]["share"]
        Router(["a"], p)
        Router(["a"], **p)
        """
    )
    assert mypy(tmp_path, [good]) == ""
    bad = textwrap.dedent(
        """
        from failover_core import Router

        p = Router(["a"]).policy()
        window: str = p["window_ms"]
        rate: float = p["error_rate_threshold"]
        p["windows_ms"]
        """
    )
    out = mypy(tmp_path, [bad])
    assert out.count(" error: ") == 3, out
    assert '"windows_ms"' in out, out
