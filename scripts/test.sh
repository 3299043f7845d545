#!/usr/bin/env bash
# Sets up .venv and runs the whole test suite (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
bash scripts/setup_browser.sh  # Debian's chromium for the browser tests (they skip, saying why, without it)
exec .venv/bin/python -m pytest "$@"
