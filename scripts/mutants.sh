#!/usr/bin/env bash
# Mutation testing of the core (cargo-mutants), sharded so that a full run accumulates across
# sessions: each shard's results are appended to verification/mutants.tsv (committed), and a run
# with no shard given takes the next shards that file does not hold yet for this shard count.
#
#   scripts/mutants.sh                 # the next shard not yet in the results file
#   scripts/mutants.sh 3               # the next three
#   scripts/mutants.sh --shard 7       # shard 7 (of $SHARDS), run again even if recorded
#   scripts/mutants.sh --summary       # totals over the results file, then exit
#   scripts/mutants.sh --retest        # every mutant recorded as missed (or timed out), tested
#                                      # again at HEAD: after a test was added to kill it, its
#                                      # line is replaced (same shard, this commit, new outcome)
#   SHARDS=128 JOBS=2 scripts/mutants.sh 2
#
# Two cores, fastest: two clean worktrees of the same commit, each mutating in place (a stable
# path, so each mutant rebuilds only the core, incrementally) and taking every other shard, both
# appending to one results file (writes are locked):
#
#   git worktree add ../mut-a HEAD && git worktree add ../mut-b HEAD
#   (cd ../mut-a && IN_PLACE=1 STRIDE=2 OFFSET=0 RESULTS=$PWD/verification/mutants.tsv nice scripts/mutants.sh 99) &
#   (cd ../mut-b && IN_PLACE=1 STRIDE=2 OFFSET=1 RESULTS=$PWD/verification/mutants.tsv nice scripts/mutants.sh 99) &
#
# (RESULTS must name the main tree's file, as an absolute path.) Mutants are built with the
# `mutants` profile (Cargo.toml: opt-level 1, debug assertions and overflow checks on): the whole
# judging suite takes about 9 s there against 65 s in the dev profile, on a quiet machine.
#
# Installs cargo-mutants (pinned: $MUTANTS_VERSION) if it is missing. Mutates only
# crates/failover-core; the tests that judge a mutant are the core's own (unit, doc, property,
# model and story tests) AND the scenario crate's (every file in fixtures/, which pins most
# behaviour): `--test-package failover-core --test-package failover-scenario`. The Python and
# Node suites do not count (they replay the same fixtures through the bindings).
#
# Each line of the results file: shard/shards, commit, outcome (caught, missed, timeout,
# unviable), mutant. A mutant listed as missed is either killed by a new test later (run its
# shard again) or explained in verification/mutants-equivalent.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
MUTANTS_VERSION="${MUTANTS_VERSION:-27.1.0}"
shards="${SHARDS:-64}"
jobs="${JOBS:-1}"
stride="${STRIDE:-1}"
offset="${OFFSET:-0}"
results="${RESULTS:-$root/verification/mutants.tsv}"
mkdir -p "$(dirname "$results")"
touch "$results"

summary() {
  awk -F'\t' -v n="$shards" '
    $1 ~ "/" n "$" { last[$1 "\t" $4] = $3; shard[$1] = 1 }
    END {
      for (k in last) { c[last[k]]++; total++ }
      s = 0; for (k in shard) s++
      viable = c["caught"] + c["missed"] + c["timeout"]
      printf "mutants: %d shards of %d recorded; %d mutants: %d caught, %d missed, %d timeout, %d unviable",
        s, n, total, c["caught"], c["missed"], c["timeout"], c["unviable"]
      if (viable > 0) printf "; caught %.1f %% of viable (timeouts count as caught: %.1f %%)", 100 * c["caught"] / viable, 100 * (c["caught"] + c["timeout"]) / viable
      printf "\n"
    }' "$results"
}

count=1
forced=""
retest=""
case "${1:-}" in
  --summary) summary; exit 0 ;;
  --shard) forced="${2:?--shard needs a number}" ;;
  --retest) retest=1 ;;
  "") ;;
  *) count="$1" ;;
esac

if ! cargo mutants --version 2>/dev/null | grep -q "$MUTANTS_VERSION"; then
  echo "installing cargo-mutants $MUTANTS_VERSION" >&2
  cargo install cargo-mutants --version "$MUTANTS_VERSION" --locked
fi

next_shards() {
  local k want=$1
  for ((k = offset; k < shards && want > 0; k += stride)); do
    if ! grep -q "^$k/$shards	" "$results"; then
      echo "$k"
      want=$((want - 1))
    fi
  done
}

if [ -n "$retest" ]; then
  todo=()
elif [ -n "$forced" ]; then
  todo=("$forced")
else
  mapfile -t todo < <(next_shards "$count")
fi
if [ ${#todo[@]} -eq 0 ] && [ -z "$retest" ]; then
  echo "every shard of $shards is recorded in $results"
  summary
  exit 0
fi

# One target directory for every shard (cargo-mutants builds in a copy of the tree): the
# dependencies are built once, not once per shard. Jobs > 1 share it too (cargo serialises them).
# In place, the tree's own target directory is used, and the tree must be clean: cargo-mutants
# puts each mutated file back, and a dirty tree would be recorded under a commit it is not.
place=()
if [ -n "${IN_PLACE:-}" ]; then
  if [ -n "$(git status --porcelain -- crates)" ]; then
    echo "IN_PLACE needs a clean crates/ (commit or stash first)" >&2
    exit 1
  fi
  if [ "$jobs" != 1 ]; then
    echo "IN_PLACE runs one job per tree; use two worktrees for two cores" >&2
    exit 1
  fi
  place=(--in-place)
else
  place=(--jobs "$jobs")
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/mutants-build}"
fi

commit=$(git rev-parse --short HEAD)
if [ -n "$(git status --porcelain -- crates/failover-core crates/failover-scenario fixtures)" ]; then
  commit="$commit+dirty"
fi

# A shard is a slice of the list of mutants, which depends on the core's source: every shard of a
# run must come from one list. The run's version is the commit most of its lines name (--retest
# rewrites a few to later commits). When crates/failover-core/src differs at HEAD, a shard is run
# here only if its slice at HEAD is the run's slice, name for name (file, line, column,
# replacement), and the whole list is as long: true where only test code changed, since
# cargo-mutants mutates no #[cfg(test)] code and tests added at the end of a file move no line
# above them. Such a shard also meets the tests written since. A shard whose slice differs
# (a line above it moved) is skipped with a message: run it in a worktree at the run's commit
# (`git worktree add ../mut-a COMMIT`, see the top of this script), or start a new run
# (SHARDS=another count). --retest is the way to judge a survivor again at a newer commit.
list_mutants() {
  cargo mutants --package failover-core --list --no-shuffle "$@"
}
if [ -z "$retest" ] && [ ${#todo[@]} -gt 0 ]; then
  run=$(awk -F'\t' -v n="$shards" '$1 ~ "/" n "$" { sub(/\+dirty$/, "", $2); c[$2]++ }
    END { for (k in c) if (c[k] > best) { best = c[k]; run = k } print run }' "$results")
  if [ -n "$run" ] && ! git diff --quiet "$run" HEAD -- crates/failover-core/src 2>/dev/null; then
    then_dir=$(mktemp -d)
    git worktree add --quiet --detach "$then_dir/tree" "$run"
    same=()
    if [ "$(cd "$then_dir/tree" && list_mutants | wc -l)" != "$(list_mutants | wc -l)" ]; then
      echo "the run of $shards shards in $results is at $run, and HEAD has another number of mutants:" >&2
      echo "continue it in a worktree at $run (see the top of this script), or use another SHARDS" >&2
    else
      for k in "${todo[@]}"; do
        if cmp -s <(cd "$then_dir/tree" && list_mutants --shard "$k/$shards") <(list_mutants --shard "$k/$shards"); then
          same+=("$k")
        else
          echo "shard $k/$shards: its mutants at HEAD are not the run's (at $run; lines above them moved): skipped, run it at $run" >&2
        fi
      done
    fi
    git worktree remove --force "$then_dir/tree"
    rm -rf "$then_dir"
    if [ ${#same[@]} -eq 0 ]; then
      exit 1
    fi
    echo "crates/failover-core/src differs from the run's commit $run; shards ${same[*]} have the same mutants at HEAD: run here"
    todo=("${same[@]}")
  fi
fi

# The mutants recorded as missed or timed out, each tested again at HEAD by its exact name (file,
# line, column and the replacement: a mutant whose line moved since is not found, and says so).
# (cargo-mutants 27.1's --re also lets a file's struct-field deletions through: they are tested
# too, and their outcomes ignored: they belong to their own shard.)
if [ -n "$retest" ]; then
  out="$root/target/mutants-out/retest"
  # RETEST_RE narrows it to the names matching an extended regex (e.g. the ones a new test kills).
  mapfile -t again < <(awk -F'\t' -v n="$shards" -v re="${RETEST_RE:-.}" '$1 ~ "/" n "$" && ($3 == "missed" || $3 == "timeout") && $4 ~ re' "$results")
  echo "==> retesting ${#again[@]} mutants at $commit"
  for line in "${again[@]}"; do
    IFS=$'\t' read -r shard _ old m <<< "$line"
    file=${m%%:*}
    re=$(printf '%s' "$m" | sed 's/[][\.*^$()+?{}|]/\\&/g')
    rm -rf "$out"
    mkdir -p "$out"
    set +e
    cargo mutants --package failover-core "${place[@]}" --profile mutants \
      --test-package failover-core --test-package failover-scenario \
      --file "$file" --re "^$re\$" --output "$out" --no-shuffle \
      --baseline skip --timeout "${MUTANT_TIMEOUT:-300}" --build-timeout 900 > "$out.log" 2>&1
    rc=$?
    set -e
    now=""
    for outcome in caught missed timeout unviable; do
      f="$out/mutants.out/$outcome.txt"
      [ -f "$f" ] && grep -qxF "$m" "$f" && now=$outcome
    done
    if [ -z "$now" ]; then
      echo "not found at HEAD (exit $rc; moved or gone), left as $old: $m"
      continue
    fi
    echo "$old -> $now: $m"
    (
      flock 9
      awk -F'\t' -v s="$shard" -v m="$m" -v c="$commit" -v o="$now" 'BEGIN { OFS = "\t" }
        $1 == s && $4 == m { $2 = c; $3 = o } { print }' "$results" > "$results.tmp"
      mv "$results.tmp" "$results"
    ) 9>"$results.lock"
  done
  summary
  exit 0
fi

for k in "${todo[@]}"; do
  out="$root/target/mutants-out/shard-$k"
  rm -rf "$out"
  mkdir -p "$out"
  echo "==> shard $k/$shards ($(date -u +%H:%M:%S))"
  start=$(date +%s)
  # cargo-mutants exits 2 when it found missed mutants and 3 on timeouts: both are results here.
  set +e
  cargo mutants --package failover-core "${place[@]}" --profile mutants \
    --test-package failover-core --test-package failover-scenario \
    --shard "$k/$shards" --output "$out" --no-shuffle \
    --baseline skip --timeout "${MUTANT_TIMEOUT:-300}" --build-timeout 900
  rc=$?
  set -e
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ] && [ "$rc" -ne 3 ]; then
    echo "cargo mutants failed (exit $rc) on shard $k; nothing recorded" >&2
    exit "$rc"
  fi
  # A shard run again replaces its earlier lines. Two runs may share the file: lock it.
  (
    flock 9
    grep -v "^$k/$shards	" "$results" > "$results.tmp" || true
    for outcome in caught missed timeout unviable; do
      f="$out/mutants.out/$outcome.txt"
      [ -f "$f" ] || continue
      while IFS= read -r m; do
        [ -n "$m" ] && printf '%s\t%s\t%s\t%s\n' "$k/$shards" "$commit" "$outcome" "$m" >> "$results.tmp"
      done < "$f"
    done
    mv "$results.tmp" "$results"
  ) 9>"$results.lock"
  echo "shard $k/$shards: $(grep -c "^$k/$shards	" "$results") mutants in $(( $(date +%s) - start )) s"
done
summary
