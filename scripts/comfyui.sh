#!/usr/bin/env bash
# Starts the project's ComfyUI with its UI on http://127.0.0.1:8188 (base folder .comfyui/demo, where the
# demo left its profiles and images). Extra arguments go to ComfyUI's main.py; on a GPU machine drop --cpu:
#   bash scripts/comfyui.sh            # CPU
#   COMFY_DEVICE= bash scripts/comfyui.sh --listen 0.0.0.0
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
base=.comfyui/demo
mkdir -p "$base/custom_nodes" "$base/user"
ln -sfn "$PWD" "$base/custom_nodes/identity-layer"
cd .comfyui/ComfyUI
exec ../../.venv/bin/python main.py ${COMFY_DEVICE---cpu} --base-directory "../../$base" --port 8188 "$@"
