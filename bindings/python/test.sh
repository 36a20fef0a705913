#!/usr/bin/env bash
# Tests of the Python package as a user installs it: the abi3 manylinux wheel of
# scripts/package.sh is installed with `pip install --no-index` into a fresh virtual environment
# outside the repository, with cargo hidden from PATH, and the tests (copied outside the
# repository with the README they check) run against the installed package: every scenario in
# fixtures/scenarios, the API, classification and call/acall tests (with hypothesis), call/acall
# with the real openai and anthropic SDKs against a local fake provider (tests/fake_provider.py,
# 127.0.0.1 only), pyright and mypy --strict on the README's examples, the type stub against the
# installed module (mypy.stubtest), and mypy --strict on the package.
#
# Python: the full suite on $PYTHON (default python3, 3.11 here); then pytest, without the SDKs
# (whose tests then skip), on every other CPython from 3.9 on that the machine has (python3.X on
# PATH or in pyenv), naming those it lacks. FAILOVER_PYTHONS="3.9 3.13" picks the others;
# FAILOVER_PYTHONS=none runs none.
#
# The wheel comes from $FAILOVER_DIST_DIR (scripts/test-all.sh packages once for the whole run);
# without it this runs `scripts/package.sh python` first. Needs Rust (for the packaging and the
# observe example) and Python >= 3.9 with pip; installs the rest itself.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=../../scripts/lib-artifacts.sh
. "$root/scripts/lib-artifacts.sh"
python="${PYTHON:-python3}"

step() { printf '\n--> %s\n' "$*"; }

dist="$(artifacts_dir "$root" python)"
wheel="$(ls "$dist"/failover_core-*-abi3-manylinux*.whl 2>/dev/null | head -n 1)"
[ -n "$wheel" ] || { echo "error: no abi3 manylinux wheel in $dist (run scripts/package.sh python)" >&2; exit 1; }

# The Rust runner's compact lines, to compare with Python's step by step (built before cargo is
# hidden; `cargo test --workspace` has usually built it already).
step "building the Rust scenario runner (observe example) for the line-by-line comparison"
if (cd "$root" && cargo build --quiet -p failover-scenario --example observe); then
  export FAILOVER_RUST_OBSERVE="${CARGO_TARGET_DIR:-$root/target}/debug/examples/observe"
else
  echo "warning: the Rust observe example did not build; the Python runner still checks every" \
       "expectation, but its lines are not compared with Rust's" >&2
fi

no_rust="$(path_without_rust)"
if PATH="$no_rust" command -v cargo >/dev/null; then
  echo "error: could not hide cargo from PATH" >&2
  exit 1
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/failover-python-test.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# The tests and the README they check, outside the repository: nothing on sys.path leads back to
# the checkout's python/ folder.
mkdir "$work/suite"
cp -R "$here/tests" "$here/README.md" "$work/suite/"
export FAILOVER_SCENARIO_DIR="$root/fixtures/scenarios" FAILOVER_REQUEST_DIR="$root/fixtures/requests"
export HYPOTHESIS_PROFILE=ci

# Creates a venv for interpreter $1 in $2 and installs the test tools $3..., then the wheel with
# no index and cargo hidden, then checks that the installed package is the one imported.
install_into_venv() {
  local interp="$1" venv="$2" start
  shift 2
  "$interp" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
  start="$(now_ms)"
  PATH="$no_rust" "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-index --no-deps "$wheel"
  echo "python: $(basename "$wheel") installed in $(seconds_since "$start") s"
  (cd "$work" && PATH="$no_rust" "$venv/bin/python" -c '
import sys, failover_core
assert failover_core.__file__.startswith(sys.prefix), failover_core.__file__
failover_core.Router(["a", "b"])
print("failover_core", failover_core.__version__, "from", failover_core.__file__, "on", sys.version.split()[0])
')
}

# pytest on the copied suite; exit 5 (no test collected) is a failure.
run_pytest() {
  local venv="$1" rc=0
  (cd "$work/suite" && PATH="$no_rust" "$venv/bin/python" -m pytest -q -p no:cacheprovider tests) || rc=$?
  if [ "$rc" -eq 5 ]; then
    echo "error: pytest collected no tests" >&2
    return 1
  fi
  return "$rc"
}

main_version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
venv="$work/venv-$main_version"
step "fresh venv $venv ($python $main_version): test tools (with the openai and anthropic SDKs, used against a local fake provider, and pyright), then the wheel"
install_into_venv "$python" "$venv" "pytest>=8" "hypothesis>=6.100" "mypy>=2.4,<3" \
  "openai>=1.40" "anthropic>=0.34" "pyright>=1.1.400" "redis>=5" \
  "opentelemetry-sdk>=1.27" "opentelemetry-exporter-prometheus>=0.48b0"

# Fleet mode's tests run against a real redis-server (Debian's package, installed when missing);
# each test starts its own on a free loopback port and stops it by its pid. With the server
# required, a missing one fails those tests instead of skipping them.
step "redis-server for the fleet tests (apt-get installs it when missing)"
bash "$root/scripts/ensure-redis.sh"
export FAILOVER_REQUIRE_REDIS=1

step "pytest on Python $main_version (against the installed wheel)"
run_pytest "$venv"

step "mypy.stubtest failover_core._native (the .pyi against the installed module)"
(cd "$work" && PATH="$no_rust" "$venv/bin/python" -m mypy.stubtest failover_core._native)

step "mypy --strict on the installed package"
(cd "$work" && PATH="$no_rust" "$venv/bin/python" -m mypy --strict -p failover_core)

# Every other CPython the abi3 wheel supports, where the machine has it.
find_python() {
  local v="$1" p
  for p in "$(command -v "python$v" 2>/dev/null || true)" \
    "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/"$v".*/bin/"python$v"; do
    if [ -n "$p" ] && [ -x "$p" ] && "$p" -c 'import sys, venv' >/dev/null 2>&1; then
      printf '%s\n' "$p"
      return 0
    fi
  done
  return 1
}
others="${FAILOVER_PYTHONS:-3.9 3.10 3.11 3.12 3.13 3.14}"
[ "$others" = none ] && others=""
tested=("$main_version") skipped=()
for v in $others; do
  [ "$v" = "$main_version" ] && continue
  if ! interp="$(find_python "$v")"; then
    skipped+=("$v")
    continue
  fi
  venv="$work/venv-$v"
  # pytest and hypothesis only: the SDK and type tests skip (they ran above), which keeps a version
  # to about 30 s.
  step "Python $v ($interp): fresh venv with pytest and hypothesis, the wheel, pytest"
  install_into_venv "$interp" "$venv" "pytest>=8" "hypothesis>=6.100"
  run_pytest "$venv"
  tested+=("$v")
done
echo
echo "python: the wheel was tested on CPython ${tested[*]}${skipped[*]:+; not found here, skipped: ${skipped[*]}}"
