#!/usr/bin/env bash
# Tests of the Node package, from a fresh clone: installs the npm dependencies (`npm ci`, whose
# `install` script builds the native addon once with the napi CLI), runs every test with
# `node --test` (the scenario and request suites, the latter compared line by line with the Rust
# runner's `observe` example, API, router.call and property tests), then type-checks the
# TypeScript consumer with `tsc --noEmit`. Needs only Rust and Node 20 + npm. Idempotent.
#
# Outside CI, an existing node_modules that matches package-lock.json is kept and only the
# (incremental) native build runs. Fails if any test fails or if no test ran.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n--> %s\n' "$*"; }

if [ "${CI:-}" = "true" ] || [ ! -f node_modules/.package-lock.json ] ||
  [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "npm ci (installs dependencies and builds the native addon)"
  npm ci --no-audit --no-fund
else
  step "npm run build (dependencies already installed)"
  npm run --silent build
fi

# The Rust runner's compact lines, to compare with the request runner's step by step.
step "building the Rust scenario runner (observe example) for the line-by-line comparison"
root="$(cd ../.. && pwd)"
if cargo build --quiet -p failover-scenario --example observe; then
  export FAILOVER_RUST_OBSERVE="${CARGO_TARGET_DIR:-$root/target}/debug/examples/observe"
else
  echo "warning: the Rust observe example did not build; the request runner still checks every" \
       "expectation, but its lines are not compared with Rust's" >&2
fi

step "node --test"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
status=0
node --expose-gc --test \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$report" \
  test/*.test.js test/*.test.mjs || status=$?

count() { sed -n "s/^# $1 \([0-9][0-9]*\)$/\1/p" "$report" | tail -n 1; }
tests="$(count tests)"
passed="$(count pass)"
failed="$(count fail)"
skipped="$(count skipped)"
if [ -z "$tests" ] || [ "$tests" -eq 0 ] || [ -z "$passed" ] || [ "$passed" -eq 0 ]; then
  echo "error: no test ran" >&2
  exit 1
fi

step "tsc --noEmit (TypeScript consumer)"
npx --no-install tsc -p test/tsconfig.json

echo
echo "node: ${passed} passed, ${failed:-0} failed, ${skipped:-0} skipped"
exit "$status"
