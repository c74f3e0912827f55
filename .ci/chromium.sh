#!/usr/bin/env bash
# Headless Chromium for the browser tests (tests/test_ui.py): Debian's `chromium` package.
#
#   .ci/chromium.sh        # installs it when no chromium is on PATH, prints its version
#
# The tests start it themselves (headless, fresh profile, DevTools on 127.0.0.1) and find it on
# PATH; outside CI a missing chromium skips them with a message, in CI (CI=true) it fails them.
set -euo pipefail
log() { echo "chromium.sh: $*" >&2; }

if ! command -v chromium >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { log "chromium not found and not root: apt-get install chromium"; exit 1; }
  log "installing chromium from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq chromium >&2
fi
chromium --version 2>/dev/null | head -n 1 >&2
