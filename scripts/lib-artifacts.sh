# Helpers shared by bindings/python/test.sh and bindings/node/test.sh, which test the packed
# artifacts of scripts/package.sh installed outside the repository. Sourced, not run.

# A PATH with every folder that holds `cargo` (or `rustc`) left out: installs and tests run
# with it, so nothing can fall back to a source build.
path_without_rust() {
  local out="" d
  local IFS=:
  for d in $PATH; do
    [ -n "$d" ] || continue
    [ -e "$d/cargo" ] || [ -e "$d/rustc" ] && continue
    out="${out:+$out:}$d"
  done
  printf '%s\n' "$out"
}

# The artifacts folder: $FAILOVER_DIST_DIR when scripts/test-all.sh (or the caller) packaged
# already, otherwise scripts/package.sh PART is run first into the repository's dist/.
artifacts_dir() {
  local root="$1" part="$2"
  if [ -n "${FAILOVER_DIST_DIR:-}" ]; then
    printf '%s\n' "$FAILOVER_DIST_DIR"
  else
    printf '\n--> no FAILOVER_DIST_DIR: bash scripts/package.sh %s\n' "$part" >&2
    bash "$root/scripts/package.sh" "$part" >&2
    printf '%s\n' "$root/dist"
  fi
}

# Milliseconds since the epoch, and a duration since such a stamp in seconds with one decimal.
now_ms() { date +%s%3N; }
seconds_since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }
