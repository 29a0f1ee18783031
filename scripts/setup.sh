#!/usr/bin/env bash
# Creates .venv, installs Tessera with the worker (torch, CPU wheel) and dev extras, and
# builds the front end.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch is pinned to the CPU wheel this kind of machine carries (a looser pin pulls CUDA).
.venv/bin/python -m pip install --quiet -e ".[worker,dev]"
# The browser UI into frontend/dist (npm ci when needed, then the build).
bash scripts/frontend.sh
