#!/usr/bin/env bash
# Fuzz smoke test: runs every fuzz target for a short bounded time, starting from the committed
# seeds (fuzz/seeds/<target>), on the stable toolchain (`--sanitizer none`; the default
# AddressSanitizer needs nightly-only -Z flags). Fails on any finding: a panic, a broken engine
# invariant (the targets check `Router::invariant_violation` after every step) or a timeout.
#
#   bash fuzz/smoke.sh                 # every target, FUZZ_SECONDS (default 30) each
#   FUZZ_SECONDS=10 bash fuzz/smoke.sh events
#
# Installs cargo-fuzz (`cargo install cargo-fuzz --locked`, about 30 s) when it is missing.
# For long runs use scripts/fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-30}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(config events http request classify headroom)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

echo "==> building the fuzz targets (release, with debug assertions and overflow checks)"
cargo fuzz build --sanitizer none

passed=0
failed=0
for target in "${targets[@]}"; do
  echo "==> fuzz $target for ${seconds}s"
  # The first corpus directory (ignored by git) collects what the fuzzer finds; the seeds are
  # read only.
  mkdir -p "corpus/$target"
  log="$(mktemp)"
  if cargo fuzz run --sanitizer none "$target" "corpus/$target" "seeds/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      >"$log" 2>&1; then
    grep -E "^(stat::number_of_executed_units|stat::new_units_added|Done)" "$log" || true
    passed=$((passed + 1))
  else
    echo "!! fuzz target $target found a failure:"
    grep -a -A2 "panicked at" "$log" | head -n 6 || true
    grep -av "Failed to find function __sanitizer" "$log" | tail -n 40
    ls -1 "artifacts/$target" 2>/dev/null | sed 's/^/   artifact: fuzz\/artifacts\/'"$target"'\//' || true
    failed=$((failed + 1))
  fi
  rm -f "$log"
done

echo "fuzz smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
