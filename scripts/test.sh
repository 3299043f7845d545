#!/usr/bin/env bash
# Sets up .venv and the ComfyUIs, runs ruff (lint, format check), then the whole test suite (extra arguments go to pytest):
#   1. everything on ComfyUI v0.3.75 (.comfyui/, with its pinned frontend), in .venv;
#   2. when ../shared/comfyui holds the ComfyUI 0.33.0 source: every test that needs ComfyUI (marker `comfyui`)
#      again on it (.comfyui-0.33/, its own venv), with the newest frontend on PyPI.
# Each test's id names the ComfyUI it ran on ([comfyui-0.3.75], [comfyui-0.33.0]); the last lines sum both runs.
# To test another ComfyUI checkout: IDENTITY_COMFYUI=/path/to/ComfyUI /its/python -m pytest -m comfyui
# (that Python needs requirements-test.txt; IDENTITY_COMFYUI_FRONTEND=<a frontend's static folder> is optional).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
set -e
bash scripts/setup.sh
bash scripts/setup_debian.sh  # Debian packages the tests use: chromium, and sample photos of pets (they skip, saying why, without them)
set +e
NEWER=../shared/comfyui/ComfyUI-0.33.0.tar.gz
FRONTEND=1.58.1  # the newest comfyui-frontend-package on PyPI when this was written
if [ -f "$NEWER" ]; then  # set up while the first run tests (its log: .comfyui-0.33/setup.log)
  mkdir -p .comfyui-0.33
  .venv/bin/python scripts/setup_comfyui.py --source "$NEWER" --home .comfyui-0.33 --frontend "$FRONTEND" \
    >.comfyui-0.33/setup.log 2>&1 &
  newer_setup=$!
fi

summaries=()
closing=""
run() {  # run LABEL PYTHON PYTEST-ARGS...: one pytest run, its closing line kept for the summary
  local label=$1 python=$2 log rc
  shift 2
  log=$(mktemp)
  echo "===== $label ====="
  "$python" -m pytest "$@" | tee "$log"
  rc=${PIPESTATUS[0]}
  [ "$rc" = 5 ] && rc=0  # the arguments selected no test that needs ComfyUI: nothing to run there
  last=$(grep -E '^=+ .*(passed|failed|error|skipped|deselected|no tests ran).* =+$' "$log" | tail -1 | tr -d '=' | xargs)
  summaries+=("$label: $last (exit $rc)")
  closing="$closing $last,"
  rm -f "$log"
  status=$(( status > rc ? status : rc ))
}

status=0
echo "===== ruff (lint and format check) ====="
if .venv/bin/ruff check . && .venv/bin/ruff format --check .; then
  summaries+=("ruff: clean")
else
  summaries+=("ruff: found problems (above); fix them with: .venv/bin/ruff check --fix . && .venv/bin/ruff format .")
  status=1
fi
run "ComfyUI 0.3.75 (frontend $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("comfyui-frontend-package"))')): whole suite" \
    .venv/bin/python "$@"
if [ -f "$NEWER" ] && ! wait "$newer_setup"; then
  cat .comfyui-0.33/setup.log
  summaries+=("ComfyUI 0.33.0: its set-up failed (log above)")
  status=1
elif [ -f "$NEWER" ]; then
  IDENTITY_COMFYUI=$PWD/.comfyui-0.33/ComfyUI \
  IDENTITY_COMFYUI_FRONTEND=$PWD/.comfyui-0.33/frontend-$FRONTEND/comfyui_frontend_package/static \
    run "ComfyUI 0.33.0 (frontend $FRONTEND): tests that need ComfyUI" .comfyui-0.33/venv/bin/python -m comfyui "$@"
else
  summaries+=("ComfyUI 0.33.0: not tested ($NEWER is absent)")
fi

count() { grep -oE "[0-9]+ ($1)\b" <<<"$closing" | awk '{ n += $1 } END { print n + 0 }'; }
echo "===== summary ====="
printf '%s\n' "${summaries[@]}"
echo "total: $(count passed) passed, $(count 'failed|errors?') failed, $(count skipped) skipped"
exit "$status"
