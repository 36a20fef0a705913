#!/usr/bin/env bash
# Fuzz smoke test: runs every fuzz target for a short bounded time, starting from the committed
# seeds (fuzz/seeds/<target>), on the stable toolchain (`--sanitizer none`; the default
# AddressSanitizer needs nightly-only -Z flags). Fails on any finding: a panic, a broken engine
# invariant (the targets check the step's promises after every step, `Router::invariant_violation`
# and every view on a deterministic sample of steps and at the end of each input) or a timeout.
# Ends with one line per target (inputs run, engine steps, findings) and the pass/fail count.
#
#   bash fuzz/smoke.sh                 # every target, FUZZ_SECONDS (default 30) each
#   FUZZ_SECONDS=10 bash fuzz/smoke.sh events
#
# Installs cargo-fuzz (`cargo install cargo-fuzz --locked`, about 30 s) when it is missing.
# For long runs use scripts/fuzz.sh; to quote rates (inputs and engine steps per second at
# 8,192-byte inputs), fuzz/rate.sh.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-30}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(config events http request classify chunk headroom)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# The engine targets spend their time in the engine's compares, where libFuzzer's compare
# tracing costs about 3x the inputs per second: they are built without it, into their own target
# directory (so the two builds do not undo each other). The parsers keep it: it is what finds
# their keywords.
flags() {
  case "$1" in
    events | request) echo --sanitizer none --no-trace-compares --target-dir "$PWD/target/notrace" ;;
    *) echo --sanitizer none ;;
  esac
}

echo "==> building the fuzz targets (release, with debug assertions and overflow checks)"
for target in "${targets[@]}"; do
  # shellcheck disable=SC2046
  cargo fuzz build $(flags "$target") "$target"
done

passed=0
failed=0
summary=()
for target in "${targets[@]}"; do
  echo "==> fuzz $target for ${seconds}s"
  # The first corpus directory (ignored by git) collects what the fuzzer finds; the seeds are
  # read only.
  mkdir -p "corpus/$target"
  log="$(mktemp)"
  findings=0
  # shellcheck disable=SC2046
  if cargo fuzz run $(flags "$target") "$target" "corpus/$target" "seeds/$target" -- \
      -max_len=8192 -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 >"$log" 2>&1; then
    grep -aE "^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|stat::target_steps|Done)" "$log" || true
    passed=$((passed + 1))
  else
    findings=1
    echo "!! fuzz target $target found a failure:"
    grep -a -A2 "panicked at" "$log" | head -n 6 || true
    grep -av "Failed to find function __sanitizer" "$log" | tail -n 40
    ls -1 "artifacts/$target" 2>/dev/null | sed 's/^/   artifact: fuzz\/artifacts\/'"$target"'\//' || true
    failed=$((failed + 1))
  fi
  inputs="$(grep -a "stat::number_of_executed_units" "$log" | awk '{print $2}' | tail -n 1)" || true
  steps="$(grep -a "stat::target_steps" "$log" | awk '{print $2}' | tail -n 1)" || true
  rate="$(grep -a "stat::average_exec_per_sec" "$log" | awk '{print $2}' | tail -n 1)" || true
  summary+=("fuzz summary: $target ran ${inputs:-?} inputs (${rate:-?}/s), ${steps:-n/a} engine steps, in ${seconds}s: $findings finding(s)")
  rm -f "$log"
done

printf '%s\n' "${summary[@]}"
echo "fuzz smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
