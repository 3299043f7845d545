#!/usr/bin/env bash
# Debian packages the tests use, installed with apt-get when missing and we are root (never a browser or a file
# downloaded from anywhere else):
#   chromium    — the browser tests drive /usr/bin/chromium with Playwright (tests/test_web_ui.py);
#   darknet     — Darknet's own sample photos (dog.jpg, person.jpg) for the pet tests;
#   opencv-doc  — OpenCV's cat_det.jpg for the pet tests.
# Without them the tests that need them skip and say why. Never fails the set-up: the rest of the suite does not
# need them.
set -uo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -f /usr/share/darknet/data/dog.jpg ] || missing+=(darknet)
[ -d /usr/share/doc/opencv-doc ] || missing+=(opencv-doc)
[ ${#missing[@]} = 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
  echo "setup: ${missing[*]} missing and cannot be installed here (needs apt-get as root); the tests that use them will skip"
  exit 0
fi
echo "setup: installing Debian ${missing[*]} for the tests"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/tmp/identity-setup-debian.log 2>&1; then
  echo "setup: installing ${missing[*]} failed (log: /tmp/identity-setup-debian.log); the tests that use them will skip"
fi
exit 0
