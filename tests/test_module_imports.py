"""Every module of the library imports on its own, first, with its imports at the top: no import cycle is held
together by imports hidden inside functions (importing `identity.faces` first once failed that way)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

from conftest import ROOT

import identity

#: `python -m identity` itself: importing it runs the command line.
NOT_IMPORTED = {"identity.__main__"}

#: One interpreter: each module is imported after every module of the pack is forgotten, so each is the first
#: one imported (third-party packages stay loaded: a cycle can only run through the pack's own modules).
ALONE = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "identity" or m.startswith("identity.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(f"{name}:\\n{traceback.format_exc(limit=-3)}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def modules() -> list[str]:
    found = sorted(m.name for m in pkgutil.walk_packages(identity.__path__, "identity."))
    return [name for name in found if name not in NOT_IMPORTED]


def test_the_module_list_covers_the_library():
    names = modules()
    assert {"identity.faces", "identity.weights", "identity.flux", "identity.training", "identity.pets.engine"} <= set(
        names
    ), names


def test_every_identity_module_imports_alone_in_a_fresh_process():
    names = modules()
    result = subprocess.run(
        [sys.executable, "-c", ALONE, *names], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"modules that fail when imported first:\n{result.stdout}{result.stderr}"
