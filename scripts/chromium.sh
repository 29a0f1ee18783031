#!/usr/bin/env bash
# Debian's chromium for the browser tests and benchmarks: Playwright's own browser download
# cannot work offline, so the tests launch /usr/bin/chromium.
set -euo pipefail
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver
fi
