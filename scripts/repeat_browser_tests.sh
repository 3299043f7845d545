#!/usr/bin/env bash
# Proves the browser tests do not flake: runs every browser test (tests/test_web_ui.py, tests/test_pet_web_ui.py)
# N times in a row, each run a fresh pytest with a fresh ComfyUI, on each ComfyUI version, while one CPU-bound
# process per core keeps the machine busy (slow machines are where races show). Prints the runs and failures per
# version and in all; exits 1 if any test failed, errored or was skipped (a skipped test proves nothing).
#   bash scripts/repeat_browser_tests.sh [N] [VERSION ...]    N defaults to 10; VERSION: 0.3.75, 0.33.0 (default both)
# The window of each failed test is kept in output/repeat-failures/VERSION-run-N/.
# Needs what scripts/test.sh sets up: .venv with .comfyui (0.3.75) and .comfyui-0.33 (0.33.0, its own venv).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-10}
shift $(($# > 0 ? 1 : 0))
if [ $# -gt 0 ]; then versions=("$@"); else versions=(0.3.75 0.33.0); fi
case $runs in '' | *[!0-9]* | 0) echo "N must be a whole number above 0, not '$runs'" >&2; exit 2 ;; esac
TESTS=(tests/test_web_ui.py tests/test_pet_web_ui.py)

choose() {  # choose VERSION: sets `python` and `env` (the variables that pick that ComfyUI), or says what is missing
  case $1 in
    0.3.75) env=() python=.venv/bin/python ;;
    0.33.0)
      frontend=$(ls -d "$PWD"/.comfyui-0.33/frontend-*/comfyui_frontend_package/static 2>/dev/null | tail -1)
      env=(IDENTITY_COMFYUI="$PWD/.comfyui-0.33/ComfyUI" IDENTITY_COMFYUI_FRONTEND="$frontend")
      python=.comfyui-0.33/venv/bin/python ;;
    *) echo "unknown ComfyUI version '$1': use 0.3.75 or 0.33.0" >&2; return 2 ;;
  esac
  [ -x "$python" ] || { echo "ComfyUI $1 is not set up ($python is missing): run bash scripts/test.sh once" >&2; return 2; }
}
for version in "${versions[@]}"; do choose "$version" || exit 2; done

results=$(mktemp -d)
load=()
stop_load() {
  for pid in "${load[@]}"; do kill "$pid" 2>/dev/null; done
  rm -rf "$results"
}
trap stop_load EXIT
for _ in $(seq "$(nproc)"); do
  (while :; do :; done) &
  load+=($!)
done
echo "load: ${#load[@]} busy processes (pids ${load[*]}), one per core"

for version in "${versions[@]}"; do
  choose "$version"
  for run in $(seq "$runs"); do
    echo "===== ComfyUI $version: run $run of $runs ====="
    env "${env[@]}" "$python" -m pytest -q -p no:cacheprovider "${TESTS[@]}" --junitxml="$results/$version-$run.xml"
    for shot in output/test-artifacts/web/failed-*.png; do  # the next run clears them: keep each failure's window
      [ -e "$shot" ] || continue
      mkdir -p "output/repeat-failures/$version-run-$run"
      cp "$shot" "output/repeat-failures/$version-run-$run/"
      echo "kept $shot in output/repeat-failures/$version-run-$run/"
    done
  done
done

.venv/bin/python - "$results" "$runs" "${versions[@]}" <<'EOF'
"""Sums the runs' JUnit reports per version: runs, tests run, failures (failed or errored) and skips; a run that
left no report (pytest itself failed) counts as a failure."""
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

results, runs, versions = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
totals = [0, 0, 0, 0]  # runs, test runs, failures, skips
for version in versions:
    reports = sorted(results.glob(f"{version}-*.xml"))
    cases = [case for report in reports for case in ET.parse(report).iter("testcase")]
    broken = [case for case in cases if case.find("failure") is not None or case.find("error") is not None]
    failures = len(broken) + runs - len(reports)
    skipped = sum(1 for case in cases if case.find("skipped") is not None)
    names = sorted({case.get("name") for case in broken})
    print(f"ComfyUI {version}: {runs} runs, {len(cases)} test runs, {failures} failures, {skipped} skipped"
          + (f" (failed: {', '.join(names)})" if names else ""))
    totals = [a + b for a, b in zip(totals, (runs, len(cases), failures, skipped))]
print("in all: {} runs, {} test runs, {} failures, {} skipped".format(*totals))
sys.exit(1 if totals[2] or totals[3] or not totals[1] else 0)
EOF
