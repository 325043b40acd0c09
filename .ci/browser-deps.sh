#!/usr/bin/env bash
# Chromium for the real-browser tests (tests/browser); the playwright package comes from the dev extra.
# Playwright cannot download its own browsers here, so the tests drive Debian's /usr/bin/chromium.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium
