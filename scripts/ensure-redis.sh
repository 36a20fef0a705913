#!/usr/bin/env bash
# Makes sure `redis-server` is on PATH for the fleet tests (issue #14): installs Debian's
# `redis-server` package with apt-get when it is missing. The package does not start a service
# here; the tests start their own server on a free loopback port and stop it by its pid.
# Prints the server's path. Exits non-zero, saying why, when it cannot install it.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  command -v redis-server
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: redis-server is missing and apt-get is not available; install Redis 7 yourself" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; else
    echo "error: redis-server is missing and installing it needs root (or sudo)" >&2
    exit 1
  fi
fi
echo "installing redis-server with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
# Bounded: a stuck mirror must not hang the test command.
timeout 300 $sudo apt-get update -qq >&2
timeout 300 $sudo apt-get install -y -qq --no-install-recommends redis-server >&2
command -v redis-server
