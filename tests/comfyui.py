"""The real ComfyUI server that the node tests talk to (started once per test session)."""

from __future__ import annotations

import sys

import pytest

from conftest import FACES, ROOT, TESTPACK

sys.path.insert(0, str(ROOT / "scripts"))

from comfyui_client import COMFYUI, PromptRejected, Server, load_workflow, stage_example_inputs, ui_to_api  # noqa: E402

__all__ = ["PromptRejected", "Server", "api_twin", "load_workflow", "start_server", "ui_to_api"]

#: The example workflows that run end to end here (the others need real model weights).
WORKFLOWS = ["train_profile_from_folder", "score_and_rank_batch", "score_group_photo_two_profiles"]
#: Every example workflow.
EXAMPLES = sorted(path.stem for path in (ROOT / "example_workflows").glob("*.json"))


def api_twin(name: str) -> dict:
    import json

    return json.loads((ROOT / "tests" / "workflows" / f"{name}.api.json").read_text())


def start_server(base) -> Server:
    if not (COMFYUI / "main.py").is_file():
        pytest.skip("ComfyUI is not set up in .comfyui/: run bash scripts/setup.sh")
    server = Server(base).prepare(models={"insightface/models/testpack": TESTPACK} if TESTPACK.is_dir() else {})
    if FACES.is_dir():
        stage_example_inputs(base / "input", FACES)
    return server.start()
