#!/usr/bin/env bash
# The one command that runs every test: Rust (fmt, clippy, tests, no_std proof, fuzz smoke),
# Python and Node. Works from a fresh clone on a machine with Rust, Python 3.11 + pip and
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

step "cargo test (workspace)"
run cargo test --workspace

step "no_std, no-alloc proof: the core with no features in a bare no_std staticlib"
cargo build --manifest-path nostd-check/Cargo.toml --release

for part in bindings/python/test.sh bindings/node/test.sh fuzz/smoke.sh; do
  if [ -f "$part" ]; then
    step "$part"
    run bash "$part"
  fi
done

# One closing line over every runner: cargo test, pytest and node --test.
passed=0; failed=0
while read -r p f; do passed=$((passed + p)); failed=$((failed + f)); done < <(
  grep -aE '^test result: ' "$log" | sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/'
  grep -aE '^=+ .*[0-9]+ passed.* in [0-9.]+s' "$log" | sed -E 's/.* ([0-9]+) passed.*/\1 0/'
  grep -aE '^=+ .*[0-9]+ failed.* in [0-9.]+s' "$log" | sed -E 's/.* ([0-9]+) failed.*/0 \1/'
  grep -aE '^# (pass|fail) [0-9]+$' "$log" | awk '$2=="pass"{print $3, 0} $2=="fail"{print 0, $3}'
  # Summary lines of the bindings' and fuzz scripts: "node: N passed, N failed[, N skipped]".
  grep -aE '^[a-z]+: [0-9]+ passed, [0-9]+ failed' "$log" | sed -E 's/^[a-z]+: ([0-9]+) passed, ([0-9]+) failed.*/\1 \2/'
)
echo
echo "all test suites passed"
echo "tests: $passed passed, $failed failed"
