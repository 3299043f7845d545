#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/test_web_ui.py drives it with Playwright; no browser is ever
# downloaded). Installed with apt-get when /usr/bin/chromium is missing and we are root; otherwise the browser
# tests skip and say why. Never fails the set-up: the rest of the suite does not need a browser.
set -uo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
  echo "setup: /usr/bin/chromium is missing and cannot be installed here (needs apt-get as root); browser tests will skip"
  exit 0
fi
echo "setup: installing Debian chromium for the browser tests"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq chromium; } >/tmp/identity-setup-chromium.log 2>&1; then
  echo "setup: installing chromium failed (log: /tmp/identity-setup-chromium.log); browser tests will skip"
fi
exit 0
