#!/usr/bin/env bash
# Runs the fuzz targets for as long as you like (stable toolchain, `--sanitizer none`).
#
#   scripts/fuzz.sh                      # every target, 10 minutes each
#   scripts/fuzz.sh 3600 events          # one target for an hour
#   scripts/fuzz.sh 0                    # every target in turn, each until it finds something
#   JOBS=2 scripts/fuzz.sh 600 events    # several libFuzzer workers on one target
#
# New inputs go to fuzz/corpus/<target> (git-ignored) and grow from run to run; findings go to
# fuzz/artifacts/<target>. Reproduce one with
#   cd fuzz && cargo fuzz run --sanitizer none <target> artifacts/<target>/<file>
# and shrink it with
#   cd fuzz && cargo fuzz tmin --sanitizer none <target> artifacts/<target>/<file>
# (events and request: add `--no-trace-compares --target-dir target/notrace`, as below, or the
# build starts over). The engine targets check their O(P · B) invariants on a deterministic
# sample of steps and at the end of each input, and `events` runs its lockstep witness on one
# input in eight: FAILOVER_FULL_CHECK_EVERY=1 FAILOVER_WITNESS_EVERY=1 checks everything on every
# step of every input, at a fraction of the speed.
#
# Ends with one line per target: inputs run, engine steps, findings (libFuzzer stops a run at its
# first finding; with JOBS > 1 each worker stops at its own).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(config events http request classify chunk headroom)
fi
jobs="${JOBS:-1}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
# The engine targets without libFuzzer's compare tracing (about 3x the inputs per second), in
# their own target directory; the parsers with it (see fuzz/smoke.sh).
flags() {
  case "$1" in
    events | request) echo --sanitizer none --no-trace-compares --target-dir "$PWD/target/notrace" ;;
    *) echo --sanitizer none ;;
  esac
}
for target in "${targets[@]}"; do
  # shellcheck disable=SC2046
  cargo fuzz build $(flags "$target") "$target"
done

summary=()
status=0
for target in "${targets[@]}"; do
  echo "==> fuzz $target for ${seconds}s (0 = until a finding) with $jobs job(s)"
  mkdir -p "corpus/$target" "artifacts/$target"
  args=(-max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
  if [ "$seconds" != 0 ]; then
    args+=(-max_total_time="$seconds")
  fi
  if [ "$jobs" -gt 1 ]; then
    args+=(-fork="$jobs")
  fi
  before="$(find "artifacts/$target" -type f | wc -l)"
  log="$(mktemp)"
  start="$(date +%s)"
  # shellcheck disable=SC2046
  if cargo fuzz run $(flags "$target") "$target" "corpus/$target" "seeds/$target" -- "${args[@]}" \
      2>&1 | tee "$log"; then
    :
  else
    status=1
  fi
  elapsed=$(($(date +%s) - start))
  findings=$(($(find "artifacts/$target" -type f | wc -l) - before))
  # Summed over workers (one line each with JOBS > 1).
  inputs="$(grep -a "stat::number_of_executed_units" "$log" | awk '{n += $2} END {print n + 0}')" || true
  steps="$(grep -a "stat::target_steps" "$log" | awk '{n += $2} END {print (NR ? n : "n/a")}')" || true
  rate=$((inputs / (elapsed > 0 ? elapsed : 1)))
  summary+=("fuzz summary: $target ran $inputs inputs (${rate}/s), $steps engine steps, in ${elapsed}s: $findings finding(s) in fuzz/artifacts/$target")
  rm -f "$log"
done

printf '%s\n' "${summary[@]}"
exit "$status"
