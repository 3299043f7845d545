#!/usr/bin/env bash
# Sets up .venv and runs the main job on the embedded face engine: trains a profile from sample photos,
# scores images against it, prints the report and writes annotated images under output/demo/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
