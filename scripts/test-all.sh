#!/usr/bin/env bash
# The one command that runs every test: Rust (fmt, clippy, tests, no_std proof, fuzz smoke),
# and the Python and Node packages as users install them (built once by scripts/package.sh into
# dist/, installed outside the repository with no Rust on PATH, tested there). Works from a fresh clone on a machine with Rust, Python 3.11 + pip and
# Node 20 + npm; it installs everything else it needs itself.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

# Every runner's output is also kept, to add up the tests at the end.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
run() { "$@" 2>&1 | tee -a "$log"; return "${PIPESTATUS[0]}"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

# The simulator's PNG chart test renders through rsvg-convert (Debian: librsvg2-bin); without it
# that one test says it skipped, so the install is tried here and the test then requires it.
step "rsvg-convert for the simulator's PNG chart test"
if ! command -v rsvg-convert >/dev/null; then
  { apt-get install -y librsvg2-bin || { apt-get update && apt-get install -y librsvg2-bin; }; } >/dev/null 2>&1 || true
fi
if command -v rsvg-convert >/dev/null; then
  export FAILOVER_REQUIRE_RSVG=1
else
  echo "rsvg-convert unavailable (no apt-get, or no permission): the PNG chart test is skipped"
fi

# The Rust fleet example's test (crates/failover-fleet-redis-example) starts its own
# redis-server on a free loopback port: installed here when missing, then required.
step "redis-server for the fleet tests (apt-get installs it when missing)"
if bash scripts/ensure-redis.sh; then
  export FAILOVER_REQUIRE_REDIS=1
else
  echo "redis-server unavailable: the Rust fleet example's test is skipped (the Python suite will fail)"
fi

step "cargo test (workspace)"
run cargo test --workspace

step "no_std, no-alloc proof: the core with no features in a bare no_std staticlib"
cargo build --manifest-path nostd-check/Cargo.toml --release

# The Python wheel and sdist and the two npm tarballs, built once for the whole run; the bindings'
# test scripts install them outside the repository with cargo hidden and test the installed
# packages.
step "scripts/package.sh (the abi3 manylinux wheel from the sdist, the npm tarballs)"
export FAILOVER_DIST_DIR="$root/dist"
bash scripts/package.sh
# Both packages are built: the Node suite's mixed fleet test (4 Python and 4 Node processes on one
# Redis) must run, not skip.
export FAILOVER_REQUIRE_MIXED=1

for part in bindings/python/test.sh bindings/node/test.sh fuzz/smoke.sh; do
  if [ -f "$part" ]; then
    step "$part"
    run bash "$part"
  fi
done

# One closing line over every runner: cargo test, pytest, and the "name: N passed, N failed"
# lines the bindings' and fuzz scripts print. (A grep that matches nothing must not end the count,
# hence `set +e` in the subshell, which would otherwise inherit errexit and pipefail.)
counts() {
  set +e
  grep -aE '^test result: ' "$log" | sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/'
  grep -aE '^(=+ )?([0-9]+ failed, )?[0-9]+ passed.* in [0-9.]+s' "$log" |
    sed -E 's/^(=+ )?(([0-9]+) failed, )?([0-9]+) passed.*/\4 0\3/' | awk '{print $1, $2 + 0}'
  grep -aE '^[a-z][a-z ]*: [0-9]+ passed, [0-9]+ failed' "$log" |
    sed -E 's/^[a-z ]+: ([0-9]+) passed, ([0-9]+) failed.*/\1 \2/'
  return 0
}
passed=0; failed=0
while read -r p f; do passed=$((passed + p)); failed=$((failed + f)); done < <(counts)
echo
echo "all test suites passed"
echo "tests: $passed passed, $failed failed"
