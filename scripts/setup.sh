#!/usr/bin/env bash
# Creates .venv with the locked versions of everything (requirements/dev.txt: the API, the
# worker with PyTorch's CPU wheel, dev tools; every file checked against its hash), installs
# Tessera itself into it (editable), and builds the front end.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# The lock pins pip too; a package already at its locked version is left alone.
.venv/bin/python -m pip install --quiet --require-hashes -r requirements/dev.txt
# No dependencies here: they all came from the lock above (setuptools too, for the build).
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
# The browser UI into frontend/dist (npm ci when needed, then the build).
bash scripts/frontend.sh
