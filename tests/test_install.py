"""The install keeps a GPU user's builds: requirements.txt, resolved in a fresh venv beside onnxruntime-gpu and
opencv-python-headless, adds no plain onnxruntime and no second OpenCV, and what install.py installs without its
dependencies needs nothing that requirements.txt lacks. pip asks the package index for metadata only
(`--dry-run --report`); without an index the tests are skipped, saying so."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import venv

import pytest
from conftest import ROOT

GPU_BUILDS = ["onnxruntime-gpu", "opencv-python-headless"]
UNREACHABLE = ("Could not find a version", "No matching distribution", "Failed to establish", "Network is unreachable")


def _install_module():
    spec = importlib.util.spec_from_file_location("pack_install", ROOT / "install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # its steps run only as a script
    return module


INSTALL = _install_module()


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fresh-venv")
    venv.create(folder, with_pip=True)
    return folder / "bin" / "python"


def dry_run(python, tmp_path, *args) -> list[dict]:
    """What `pip install --dry-run` would install (its report's entries), or a skip when no index answers."""
    report = tmp_path / "report.json"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0 and any(words in done.stderr for words in UNREACHABLE):
        pytest.skip(f"pip cannot reach a package index here: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr
    return json.loads(report.read_text())["install"]


def test_requirements_beside_gpu_builds_add_no_onnxruntime_and_no_second_opencv(fresh_python, tmp_path):
    names = {
        canonical(e["metadata"]["name"])
        for e in dry_run(fresh_python, tmp_path, "-r", ROOT / "requirements.txt", *GPU_BUILDS)
    }
    assert "onnxruntime" not in names, "a plain onnxruntime beside onnxruntime-gpu shadows it"
    opencv = {name for name in names if name in INSTALL.OPENCV_BUILDS}
    assert opencv == {"opencv-python-headless"}, f"OpenCV builds: {sorted(opencv)}"
    assert {canonical(name) for name in GPU_BUILDS} <= names


def test_what_install_py_adds_without_dependencies_needs_only_what_requirements_list(fresh_python, tmp_path):
    builds = {canonical(name) for name in INSTALL.ONNXRUNTIME_BUILDS + INSTALL.OPENCV_BUILDS}
    resolved = {
        canonical(e["metadata"]["name"]) for e in dry_run(fresh_python, tmp_path, "-r", ROOT / "requirements.txt")
    }
    entries = dry_run(fresh_python, tmp_path, "--no-deps", *INSTALL.WITHOUT_DEPENDENCIES)
    assert len(entries) == len(INSTALL.WITHOUT_DEPENDENCIES)
    for entry in entries:
        needs = {
            canonical(re.match(r"[A-Za-z0-9_.-]+", requirement).group())
            for requirement in entry["metadata"].get("requires_dist") or []
            if "extra ==" not in requirement
        }
        missing = needs - builds - resolved
        assert not missing, (
            f"{entry['metadata']['name']} needs {sorted(missing)}, which requirements.txt does not bring"
        )
