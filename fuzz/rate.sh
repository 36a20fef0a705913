#!/usr/bin/env bash
# Measures each fuzz target's rate the way issue 19 quotes it: a fresh run from a scratch copy of
# the seeds, inputs up to 8,192 bytes from the first input on (`-max_len=8192 -len_control=0`),
# for FUZZ_SECONDS (default 20) each, with the builds fuzz/smoke.sh uses. Prints inputs per
# second and engine steps per second (wall and CPU time) and the load average before and after:
# on a shared machine quote the CPU figures with the load. (CPU time is sampled every 0.5 s, so
# it runs a little short.)
#
#   bash fuzz/rate.sh                  # every target
#   FUZZ_SECONDS=60 bash fuzz/rate.sh events
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-20}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(config events http request classify headroom chunk)
fi
flags() {
  case "$1" in
    events | request) echo --sanitizer none --no-trace-compares --target-dir "$PWD/target/notrace" ;;
    *) echo --sanitizer none ;;
  esac
}
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz="$(getconf CLK_TCK)"
for target in "${targets[@]}"; do
  # shellcheck disable=SC2046
  cargo fuzz build $(flags "$target") "$target" >/dev/null 2>&1
done
for target in "${targets[@]}"; do
  scratch="$(mktemp -d)"
  cp "seeds/$target"/* "$scratch/"
  log="$(mktemp)"
  load0="$(cut -d' ' -f1 /proc/loadavg)"
  start="$(date +%s.%N)"
  # shellcheck disable=SC2046
  cargo fuzz run $(flags "$target") "$target" "$scratch" -- -max_len=8192 -len_control=0 \
    -max_total_time="$seconds" -seed=1 -timeout=10 -print_final_stats=1 >"$log" 2>&1 &
  pid=$!
  # The fuzzer's own process: cargo's child.
  sleep 1
  child="$(pgrep -P "$pid" | head -n 1 || true)"
  ticks=0
  while kill -0 "$pid" 2>/dev/null; do
    if [ -n "$child" ] && [ -r "/proc/$child/stat" ]; then ticks="$(cpu "$child")"; fi
    sleep 0.5
  done
  wait "$pid" || true
  # The whole command's wall time (cargo's start-up included, about 0.3 s).
  wall="$(echo "$(date +%s.%N) - $start" | bc)"
  load1="$(cut -d' ' -f1 /proc/loadavg)"
  inputs="$(grep -a "stat::number_of_executed_units" "$log" | awk '{print $2}' | tail -n 1)" || true
  steps="$(grep -a "stat::target_steps" "$log" | awk '{print $2}' | tail -n 1)" || true
  cpus="$(echo "scale=2; $ticks / $hz" | bc)"
  awk -v t="$target" -v n="${inputs:-0}" -v s="${steps:-0}" -v w="$wall" -v c="$cpus" \
    -v l0="$load0" -v l1="$load1" 'BEGIN {
      c = (c > 0) ? c : w;
      printf "rate %s: %d inputs, %.0f/s wall, %.0f/s cpu (%.1f s cpu of %.1f s)", t, n, n / w, n / c, c, w;
      if (s > 0) printf "; %d engine steps, %.0f/s wall, %.0f/s cpu", s, s / w, s / c;
      printf "; load %s -> %s\n", l0, l1
    }'
  rm -rf "$scratch" "$log"
done
