#!/usr/bin/env bash
# Sets Tessera up (.venv with the worker's CPU torch, the built front end) and runs the demo:
# `tessera serve --demo`, the API and a worker on the embedded SQLite database and file
# broker under data/, with a generated demo project whose first round is queried. It prints
# the URL and the demo logins; Ctrl-C stops everything.
#
#   bash scripts/run.sh                      # http://127.0.0.1:8000
#   HOST=0.0.0.0 PORT=8080 bash scripts/run.sh
#   bash scripts/run.sh --port 9000          # any other `tessera serve` option
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# exec: Ctrl-C and SIGTERM reach `tessera serve` itself, which stops its worker.
exec .venv/bin/tessera serve --demo --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" "$@"
