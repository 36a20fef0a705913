#!/usr/bin/env bash
# Builds the release artifacts into dist/ (or $FAILOVER_DIST_DIR):
#
#   python: failover_core-<v>.tar.gz                  the sdist (maturin; carries the core crate)
#           failover_core-<v>-cp39-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
#                                                     built FROM that sdist, unpacked in a temporary
#                                                     folder outside the repository (so the sdist is
#                                                     proven to build on its own), linked by zig
#                                                     against glibc 2.17; `auditwheel show` checks it
#   node:   failover-core-<v>.tgz                     the main package (JavaScript, types; an
#                                                     optionalDependency on the platform package)
#           failover-core-linux-x64-gnu-<v>.tgz       the platform package holding the .node file
#                                                     (napi-rs layout, bindings/node/npm/), linked
#                                                     by zig against glibc 2.17 as well; on another
#                                                     host, that host's platform package
#
# Usage: bash scripts/package.sh [python] [node]     (no argument: both)
#
# Each binding is built once per run, in release mode. Needs Rust, Python >= 3.9 with pip and
# Node 20 + npm; the Python build tools (maturin, ziglang, auditwheel, all from PyPI) go into a
# virtual environment under target/, the napi CLI comes from bindings/node's package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dist="${FAILOVER_DIST_DIR:-$root/dist}"
python="${PYTHON:-python3}"

step() { printf '\n==> %s\n' "$*"; }
elapsed() { echo "$(($(date +%s) - $1)) s"; }

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(python node)
for part in "${parts[@]}"; do
  case "$part" in
    python | node) ;;
    *) echo "usage: $0 [python] [node]" >&2; exit 2 ;;
  esac
done

mkdir -p "$dist"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/failover-package.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)

tools="$root/target/package-tools"
ensure_tools() {
  if [ ! -x "$tools/bin/maturin" ] || [ ! -x "$tools/bin/auditwheel" ] ||
    ! "$tools/bin/python" -c 'import ziglang' 2>/dev/null; then
    step "build tools (maturin, ziglang, auditwheel from PyPI) into $tools"
    "$python" -m venv "$tools"
    "$tools/bin/python" -m pip install --quiet --disable-pip-version-check \
      "maturin>=1.9.4,<2" "ziglang==0.17.1" "auditwheel>=6.8,<7"
  fi
}

package_python() {
  local start sdist wheel src
  start=$(date +%s)
  ensure_tools
  rm -f "$dist"/failover_core-*.whl "$dist"/failover_core-*.tar.gz

  step "python: sdist (maturin sdist)"
  (cd bindings/python && "$tools/bin/maturin" sdist --out "$dist")
  sdist=$(ls "$dist"/failover_core-*.tar.gz)

  step "python: the abi3 manylinux2014 wheel, built from the sdist unpacked in $tmp (maturin build --zig)"
  mkdir -p "$tmp/sdist"
  tar -xzf "$sdist" -C "$tmp/sdist"
  src=$(ls -d "$tmp"/sdist/failover_core-*)
  # maturin writes the sdist's files with a fixed 2006 mtime, and cargo's freshness check is by
  # mtime against the previous build of the same crates in target/: without this, a second
  # packaging reuses the first build's native module whatever changed (a stale wheel).
  find "$src" -type f -exec touch {} +
  # The repository's target/ as cargo's cache only (crates.io dependencies compiled once); every
  # source file comes from the sdist. PATH gains the tools' bin/ for maturin to find zig.
  (cd "$src" && PATH="$tools/bin:$PATH" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}" \
    "$tools/bin/maturin" build --release --zig --compatibility manylinux2014 --out "$dist")
  wheel=$(ls "$dist"/failover_core-*.whl)

  step "python: auditwheel show (manylinux compliance)"
  "$tools/bin/auditwheel" show "$wheel" | tee "$tmp/auditwheel.txt"
  if ! grep -q 'consistent with the following platform tag' "$tmp/auditwheel.txt" ||
    ! grep -q '"manylinux_2_17_x86_64"' "$tmp/auditwheel.txt"; then
    echo "error: auditwheel does not find $wheel consistent with manylinux_2_17_x86_64" >&2
    exit 1
  fi
  echo "python: packaged in $(elapsed "$start")"
}

package_node() {
  local start here=bindings/node plat node_file
  start=$(date +%s)
  if [ "${CI:-}" = "true" ] || [ ! -f "$here/node_modules/.package-lock.json" ] ||
    [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
    step "node: npm ci --ignore-scripts (the napi CLI and the test tools; no build)"
    (cd "$here" && npm ci --ignore-scripts --no-audit --no-fund)
  fi
  rm -f "$dist"/failover-core-*.tgz

  rm -f "$here"/failover-core.*.node
  if [ "$(uname -s)-$(uname -m)" = Linux-x86_64 ]; then
    # Linked by zig against glibc 2.17, like the wheel (a plain build here needs the build
    # machine's glibc 2.34): maturin's `zig cc` wrapper as cargo's linker, as maturin --zig does.
    ensure_tools
    step "node: the native addon (napi build --platform --release, linked by zig for glibc 2.17)"
    printf '%s\n' '#!/bin/sh' \
      "export CARGO_ZIGBUILD_ZIG_COMMAND='$tools/bin/python' CARGO_ZIGBUILD_ZIG_COMMAND_ARGS='-m ziglang'" \
      "exec '$tools/bin/maturin' zig cc -- -g -fno-sanitize=all -target x86_64-linux-gnu.2.17 \"\$@\"" \
      >"$tools/zigcc"
    chmod +x "$tools/zigcc"
    (cd "$here" && CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER="$tools/zigcc" \
      npx --no-install napi build --platform --release --target x86_64-unknown-linux-gnu \
      --js native.js --dts native.d.ts)
  else
    step "node: the native addon (napi build --platform --release)"
    (cd "$here" && npx --no-install napi build --platform --release --js native.js --dts native.d.ts)
  fi
  node_file=$(cd "$here" && ls failover-core.*.node)
  plat=${node_file#failover-core.}
  plat=${plat%.node}

  step "node: the platform package failover-core-$plat (bindings/node/npm/$plat + $node_file)"
  mkdir -p "$tmp/npm/$plat"
  if [ -d "$here/npm/$plat" ]; then
    cp -R "$here/npm/$plat/." "$tmp/npm/$plat/"
  else
    # A platform this repository does not release (only linux-x64-gnu is committed): the same
    # package for this host, so a source build here packs like a release.
    echo "node: no bindings/node/npm/$plat; writing its package.json from npm/linux-x64-gnu's"
    node -e '
      const fs = require("node:fs");
      const [template, out, plat] = process.argv.slice(1);
      const pkg = JSON.parse(fs.readFileSync(template, "utf8"));
      const [os, cpu, abi] = plat.split("-");
      pkg.name = `failover-core-${plat}`;
      pkg.description = `The native addon of failover-core for ${plat}, built from source.`;
      pkg.main = `failover-core.${plat}.node`;
      pkg.files = [pkg.main];
      pkg.os = [os];
      pkg.cpu = [cpu];
      if (abi === "gnu") pkg.libc = ["glibc"];
      else if (abi === "musl") pkg.libc = ["musl"];
      else delete pkg.libc;
      fs.writeFileSync(out, JSON.stringify(pkg, null, 2) + "\n");
    ' "$here/npm/linux-x64-gnu/package.json" "$tmp/npm/$plat/package.json" "$plat"
  fi
  cp "$here/$node_file" "$tmp/npm/$plat/"
  (cd "$tmp/npm/$plat" && npm pack --silent --pack-destination "$dist" >/dev/null)

  step "node: the main package failover-core (npm pack, plus the optionalDependencies napi prepublish adds)"
  (cd "$here" && npm pack --silent --ignore-scripts --pack-destination "$tmp" >/dev/null)
  mkdir -p "$tmp/main"
  tar -xzf "$tmp/failover-core-$version.tgz" -C "$tmp/main"
  node -e '
    const fs = require("node:fs");
    const [file, plat] = process.argv.slice(1);
    const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
    // As `napi prepublish` does: one optional dependency per platform package, same version.
    pkg.optionalDependencies = { [`${pkg.name}-${plat}`]: pkg.version };
    // The addon comes prebuilt: no source build on install (install.js is not shipped either), so
    // npm runs nothing; and a user installs no test or build tools.
    delete pkg.scripts.install;
    pkg.files = pkg.files.filter((f) => f !== "install.js");
    delete pkg.devDependencies;
    fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n");
  ' "$tmp/main/package/package.json" "$plat"
  rm "$tmp/main/package/install.js"
  (cd "$tmp/main/package" && npm pack --silent --ignore-scripts --pack-destination "$dist" >/dev/null)
  echo "node: packaged in $(elapsed "$start")"
}

for part in "${parts[@]}"; do
  "package_$part"
done

step "artifacts in $dist"
ls -l "$dist"
