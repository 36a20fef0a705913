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
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(config events http request classify headroom)
fi
jobs="${JOBS:-1}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
cargo fuzz build --sanitizer none

for target in "${targets[@]}"; do
  echo "==> fuzz $target for ${seconds}s (0 = until a finding) with $jobs job(s)"
  mkdir -p "corpus/$target"
  args=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
  if [ "$seconds" != 0 ]; then
    args+=(-max_total_time="$seconds")
  fi
  if [ "$jobs" -gt 1 ]; then
    args+=(-fork="$jobs")
  fi
  cargo fuzz run --sanitizer none "$target" "corpus/$target" "seeds/$target" -- "${args[@]}"
done
