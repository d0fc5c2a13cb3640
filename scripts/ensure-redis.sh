#!/usr/bin/env bash
# The shared-state tests run a real Redis (Debian's redis-server) on ports of their own. `npm test`
# (through vitest's global setup) and .ci/run call this: it installs redis-server where it can (as
# root, or with sudo that needs no password), and otherwise stops with the one line that installs it.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then exit 0; fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else
    echo "The tests need redis-server. Install it with: sudo apt-get install -y redis-server" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "The tests need redis-server (https://redis.io/docs/latest/operate/oss_and_stack/install/); it is not on PATH." >&2
  exit 1
fi
echo "Installing redis-server (Debian's) for the shared-state tests…" >&2
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or stale on a fresh machine: update them once if the install fails.
{ $sudo apt-get install -y -qq --no-install-recommends redis-server >/dev/null 2>&1 ||
  { $sudo apt-get update -qq >/dev/null 2>&1 && $sudo apt-get install -y -qq --no-install-recommends redis-server >/dev/null 2>&1; }; } ||
  { echo "Installing redis-server failed. Install it with: sudo apt-get install -y redis-server" >&2; exit 1; }
