#!/usr/bin/env bash
# The table tests read the gateway's CSV and TSV with pandas, as analysts do: Debian's python3-pandas
# (for /usr/bin/python3). `npm test` (through vitest's global setup) and .ci/run call this: it installs
# python3-pandas where it can (as root, or with sudo that needs no password), and otherwise stops with
# the one line that installs it.
set -euo pipefail
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import pandas' >/dev/null 2>&1; then exit 0; fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else
    echo "The tests need pandas for /usr/bin/python3. Install it with: sudo apt-get install -y python3-pandas" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "The tests need pandas for /usr/bin/python3 (Debian's python3-pandas); it is not installed." >&2
  exit 1
fi
echo "Installing python3-pandas (Debian's) for the table tests…" >&2
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or stale on a fresh machine: update them once if the install fails.
{ $sudo apt-get install -y -qq --no-install-recommends python3-pandas >/dev/null 2>&1 ||
  { $sudo apt-get update -qq >/dev/null 2>&1 && $sudo apt-get install -y -qq --no-install-recommends python3-pandas >/dev/null 2>&1; }; } ||
  { echo "Installing python3-pandas failed. Install it with: sudo apt-get install -y python3-pandas" >&2; exit 1; }
