#!/usr/bin/env bash
# Sets everything up and runs every check: ruff, mypy, then pytest (fast and slow tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/services.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# pytest exits 5 when it collected nothing; that must fail the run, and it does here.
.venv/bin/pytest "$@"
