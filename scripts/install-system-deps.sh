#!/usr/bin/env bash
# System packages the test suite needs beyond Python, installed only when missing (Debian):
# - headless Chromium for the page tests;
# - Go with golang.org/x/mod (GOPATH mode, offline), the outside verifier of the ledger's checkpoints and proofs;
# - Prometheus's promtool, which unit-tests the alert rules in config/prometheus/;
# - Node.js (18 or later) for the GitHub Action's tests (tests/action, run by `node --test`).
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium chromium-driver)
command -v go >/dev/null 2>&1 || missing+=(golang-go)
[ -d /usr/share/gocode/src/golang.org/x/mod/sumdb ] || missing+=(golang-golang-x-mod-dev)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install these (Debian package names) to run the whole suite: ${missing[*]}" >&2
  exit 1
fi
