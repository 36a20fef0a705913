#!/usr/bin/env bash
# Tests of the Node package as a user installs it: the two npm tarballs of scripts/package.sh (the
# main package failover-core and the platform package failover-core-linux-x64-gnu with the .node
# file) are installed with `npm install --offline` into a fresh folder outside the repository, with
# cargo hidden from PATH; the test folder is copied there and every test runs against the installed
# package (`node --test`: the scenario and request suites, the latter compared line by line with
# the Rust runner's `observe` example, API, router.call, SDK and property tests,
# examples/prometheus.js scraped over HTTP, and fleet mode against a real redis-server, with a
# mixed fleet of Python and Node processes when the Python wheel is in the artifacts folder), then
# `tsc --noEmit` type-checks the TypeScript consumers against the installed types.
#
# The tarballs come from $FAILOVER_DIST_DIR (scripts/test-all.sh packages once for the whole run);
# without it this runs `scripts/package.sh node` first. Needs Rust (for the packaging and the
# observe example) and Node 20 + npm. Fails if any test fails or if no test ran.
#
# For a quick loop on the sources instead: `npm ci` here (builds the addon from source), then
# `node --test test/`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=../../scripts/lib-artifacts.sh
. "$root/scripts/lib-artifacts.sh"

step() { printf '\n--> %s\n' "$*"; }

dist="$(artifacts_dir "$root" node)"
version="$(node -p "require('$here/package.json').version")"
main_tgz="$dist/failover-core-$version.tgz"
plat_tgz="$dist/failover-core-linux-x64-gnu-$version.tgz"
for f in "$main_tgz" "$plat_tgz"; do
  [ -f "$f" ] || { echo "error: $f is missing (run scripts/package.sh node)" >&2; exit 1; }
done

# The Rust runner's compact lines, to compare with the request runner's step by step (built before
# cargo is hidden; `cargo test --workspace` has usually built it already).
step "building the Rust scenario runner (observe example) for the line-by-line comparison"
if (cd "$root" && cargo build --quiet -p failover-scenario --example observe); then
  export FAILOVER_RUST_OBSERVE="${CARGO_TARGET_DIR:-$root/target}/debug/examples/observe"
else
  echo "warning: the Rust observe example did not build; the request runner still checks every" \
       "expectation, but its lines are not compared with Rust's" >&2
fi

no_rust="$(path_without_rust)"
if PATH="$no_rust" command -v cargo >/dev/null; then
  echo "error: could not hide cargo from PATH" >&2
  exit 1
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/failover-node-test.XXXXXX")"
trap 'rm -rf "$work"' EXIT
app="$work/app"
mkdir "$app"
printf '{ "name": "failover-core-installed-test", "private": true }\n' >"$app/package.json"

step "npm install --offline of the two tarballs in $app (cargo hidden from PATH)"
start="$(now_ms)"
(cd "$app" && PATH="$no_rust" npm install --offline --no-audit --no-fund "$main_tgz" "$plat_tgz")
echo "node: tarballs installed in $(seconds_since "$start") s"
# npm skips a missing optional dependency silently: loading is the check.
(cd "$app" && PATH="$no_rust" node -e '
  const fc = require("failover-core");
  const addon = require.resolve("failover-core-linux-x64-gnu");
  if (!addon.startsWith(process.cwd() + "/node_modules/")) throw new Error(`addon from ${addon}`);
  new fc.Router(["a", "b"]);
  console.log(`failover-core ${require("failover-core/package.json").version} loads, addon ${addon}`);
')

step "test tools into $app (the versions bindings/node/package.json pins)"
tools="$(node -e '
  const dev = require(process.argv[1]).devDependencies;
  const names = ["@anthropic-ai/sdk", "@types/node", "fast-check", "openai", "typescript",
    "@opentelemetry/api", "@opentelemetry/sdk-metrics", "@opentelemetry/sdk-trace-base",
    "@opentelemetry/exporter-prometheus", "ioredis"];
  console.log(names.map((n) => `${n}@${dev[n]}`).join(" "));
' "$here/package.json")"
# shellcheck disable=SC2086  # one word per package
(cd "$app" && npm install --prefer-offline --no-audit --no-fund --save-dev $tools)
cp -R "$here/test" "$app/test"
cp -R "$here/examples" "$app/examples"  # test/prometheus.test.js runs examples/prometheus.js

# Fleet mode's tests run against a real redis-server (Debian's package, installed when missing);
# each starts its own on a free loopback port and stops it by its pid. With the server required,
# a missing one fails those tests instead of skipping them.
step "redis-server for the fleet tests (apt-get installs it when missing)"
bash "$root/scripts/ensure-redis.sh"
export FAILOVER_REQUIRE_REDIS=1

# The mixed fleet test (4 Python and 4 Node processes on one Redis) needs the Python package too:
# when the wheel is in the artifacts folder, a venv outside the repository gets it (no index,
# cargo hidden) and redis-py, and the test spawns Python's own fleet worker from it.
# FAILOVER_REQUIRE_MIXED=1 (scripts/test-all.sh, which packages both) makes a missing wheel fail.
wheel="$(ls "$dist"/failover_core-*-abi3-manylinux*.whl 2>/dev/null | head -n 1 || true)"
if [ -n "$wheel" ]; then
  step "a Python venv with $(basename "$wheel") and redis-py for the mixed fleet test"
  "${PYTHON:-python3}" -m venv "$work/fleet-venv"
  "$work/fleet-venv/bin/python" -m pip install --quiet --disable-pip-version-check "redis>=5"
  PATH="$no_rust" "$work/fleet-venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-index --no-deps "$wheel"
  mkdir "$app/test/py"
  cp "$root/bindings/python/tests/fleet_worker.py" "$app/test/py/"
  export FAILOVER_FLEET_PYTHON="$work/fleet-venv/bin/python"
  export FAILOVER_FLEET_PY_WORKER="$app/test/py/fleet_worker.py"
elif [ -n "${FAILOVER_REQUIRE_MIXED:-}" ]; then
  echo "error: no Python wheel in $dist for the mixed fleet test (run scripts/package.sh python)" >&2
  exit 1
else
  echo "node: no Python wheel in $dist: the mixed Python + Node fleet test is skipped"
fi

step "node --test (against $app/node_modules/failover-core; fixtures from $root/fixtures)"
report="$work/report.tap"
status=0
(cd "$app" && PATH="$no_rust" \
  FAILOVER_SCENARIO_DIR="$root/fixtures/scenarios" FAILOVER_REQUEST_DIR="$root/fixtures/requests" \
  node --expose-gc --test \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$report" \
  test/*.test.js test/*.test.mjs) || status=$?

count() { sed -n "s/^# $1 \([0-9][0-9]*\)$/\1/p" "$report" | tail -n 1; }
tests="$(count tests)"
passed="$(count pass)"
failed="$(count fail)"
skipped="$(count skipped)"
if [ -z "$tests" ] || [ "$tests" -eq 0 ] || [ -z "$passed" ] || [ "$passed" -eq 0 ]; then
  echo "error: no test ran" >&2
  exit 1
fi

step "tsc --noEmit (TypeScript consumer, against the installed types)"
(cd "$app" && PATH="$no_rust" npx --no-install tsc -p test/tsconfig.json)

echo
echo "node: ${passed} passed, ${failed:-0} failed, ${skipped:-0} skipped"
exit "$status"
