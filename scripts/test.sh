#!/usr/bin/env bash
# Install GSwarm with its test dependencies into .venv and run every test.
# Browser tests need the system Chromium, service-file tests systemd-analyze (Debian "chromium", "systemd"); as root both are installed here.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages the tests use: chromium (browser tests), systemd (systemd-analyze verify of generated units)
missing=""
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "note: install$missing (sudo apt-get install$missing) to run the browser and service-file tests" >&2
  fi
fi
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
exec .venv/bin/python -m pytest "$@"
