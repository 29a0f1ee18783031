#!/usr/bin/env bash
# Creates .venv and installs Tessera with the worker (torch, CPU wheel) and dev extras;
# installs Debian's chromium for the browser tests and builds the front end.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch is pinned to the CPU wheel this kind of machine carries (a looser pin pulls CUDA).
.venv/bin/python -m pip install --quiet -e ".[worker,dev]"
# Debian's chromium for the browser tests: Playwright's own browser download cannot work
# offline, so the tests launch /usr/bin/chromium.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver
fi
# The browser UI into frontend/dist (npm ci when needed, then the build).
bash scripts/frontend.sh
