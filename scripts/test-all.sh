#!/usr/bin/env bash
# The one command that runs every test: Rust (fmt, clippy, tests, no_std proof, fuzz smoke),
# Python and Node. Works from a fresh clone on a machine with Rust, Python 3.11 + pip and
# Node 20 + npm; it installs everything else it needs itself.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test (workspace)"
cargo test --workspace

step "no_std, no-alloc proof: the core with no features in a bare no_std staticlib"
cargo build --manifest-path nostd-check/Cargo.toml --release

for part in bindings/python/test.sh bindings/node/test.sh fuzz/smoke.sh; do
  if [ -f "$part" ]; then
    step "$part"
    bash "$part"
  fi
done

echo
echo "all test suites passed"
