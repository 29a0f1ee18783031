#!/usr/bin/env bash
# Sets everything up and runs every check: ruff, mypy, the front end's unit tests (Vitest),
# then pytest (fast and slow tests, and the browser tests in tests/e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/chromium.sh
bash scripts/services.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# Known vulnerabilities in Python and npm dependencies fail the run (scripts/audit.py).
bash scripts/audit.sh
(cd frontend && npx vitest run)
# pytest exits 5 when it collected nothing; that must fail the run, and it does here.
.venv/bin/pytest "$@"
