#!/usr/bin/env bash
# System packages the test suite needs beyond Python: headless Chromium for the page tests.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
else
  echo "install Chromium (package 'chromium') to run the browser tests" >&2
  exit 1
fi
