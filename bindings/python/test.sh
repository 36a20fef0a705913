#!/usr/bin/env bash
# Builds the Python package exactly as the README installs it (`pip install ./bindings/python`)
# into a virtual environment of its own, then runs the Python tests: every scenario in
# fixtures/scenarios, the API, classification and call/acall tests (with hypothesis), call/acall
# with the real openai and anthropic SDKs against a local fake provider (tests/fake_provider.py,
# 127.0.0.1 only), pyright and mypy --strict on the README's examples, the type stub against the built module (mypy.stubtest), and mypy --strict on
# the package.
#
# Needs only Rust and Python >= 3.9 with pip; installs the rest itself. Safe to run again: the
# venv (bindings/python/.venv-test, ignored by git) is reused and the package rebuilt.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv-test"
python="${PYTHON:-python3}"

step() { printf '\n--> %s\n' "$*"; }

if [ ! -x "$venv/bin/python" ]; then
  step "creating $venv"
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"

step "installing test tools (with the openai and anthropic SDKs, used against a local fake provider, and pyright)"
"$py" -m pip install --quiet --disable-pip-version-check "pytest>=8" "hypothesis>=6.100" "mypy>=2.4,<3" \
  "openai>=1.40" "anthropic>=0.34" "pyright>=1.1.400" \
  "opentelemetry-sdk>=1.27" "opentelemetry-exporter-prometheus>=0.48b0"

step "pip install ./bindings/python (builds the wheel with maturin)"
cd "$root"
"$py" -m pip install --quiet --disable-pip-version-check ./bindings/python
"$py" -c 'import failover_core, sys; print("failover_core", failover_core.__version__, "from", failover_core.__file__)'

# The Rust runner's compact lines, to compare with Python's step by step.
step "building the Rust scenario runner (observe example) for the line-by-line comparison"
if cargo build --quiet -p failover-scenario --example observe; then
  export FAILOVER_RUST_OBSERVE="${CARGO_TARGET_DIR:-$root/target}/debug/examples/observe"
else
  echo "warning: the Rust observe example did not build; the Python runner still checks every" \
       "expectation, but its lines are not compared with Rust's" >&2
fi

cd "$here"
step "pytest"
set +e
HYPOTHESIS_PROFILE=ci "$py" -m pytest -q tests
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
[ "$rc" -eq 0 ] || exit "$rc"

step "mypy.stubtest failover_core._native (the .pyi against the built module)"
"$py" -m mypy.stubtest failover_core._native

step "mypy --strict on the package"
"$py" -m mypy --strict -p failover_core
