"""The pack declares Python 3.10 (as ComfyUI does): vermin finds any newer API in the code that runs in ComfyUI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

#: The code a user's ComfyUI runs (tests and bench run on the project's own pinned Python).
SHIPPED = ["identity", "nodes", "scripts", "install.py", "__init__.py"]


def vermin() -> str:
    found = shutil.which("vermin", path=str(Path(sys.executable).parent)) or shutil.which("vermin")
    if not found:
        pytest.skip("vermin is not installed (it is in requirements-test.txt: run bash scripts/setup.sh)")
    return found


def test_the_shipped_code_runs_on_python_3_10():
    declared = "3.10"
    assert f'requires-python = ">={declared}"' in (ROOT / "pyproject.toml").read_text()
    result = subprocess.run(
        [
            vermin(),
            "-vvv",
            f"--target={declared}-",
            "--violations",
            "--eval-annotations",
            "--no-tips",
            "--no-parse-comments",
            *SHIPPED,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"code that needs a newer Python than {declared}:\n{result.stdout}{result.stderr}"


def test_vermin_names_the_offending_line(tmp_path):
    """The check above is a real one: a 3.11 API in a file fails it, naming the file and the line."""
    (tmp_path / "late.py").write_text(
        "import asyncio\n\n\nasync def f():\n    async with asyncio.timeout(1):\n        pass\n"
    )
    result = subprocess.run(
        [vermin(), "-vvv", "--target=3.10-", "--violations", "--no-tips", str(tmp_path / "late.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "asyncio.timeout" in result.stdout and "L5" in result.stdout, result.stdout
