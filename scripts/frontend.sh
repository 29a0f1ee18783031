#!/usr/bin/env bash
# Builds the browser UI into frontend/dist (served by `tessera serve`). Idempotent: npm ci runs
# only when node_modules is missing or older than package-lock.json; the build always runs.
set -euo pipefail
cd "$(dirname "$0")/../frontend"
if ! command -v npm >/dev/null; then
  echo "frontend.sh: npm not found; install Node.js 20 or newer" >&2
  exit 1
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent
