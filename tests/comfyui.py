"""The real ComfyUI server that the node tests talk to (started once per test session)."""

from __future__ import annotations

import asyncio
import json
import struct
import sys
import threading
import time

import pytest
from conftest import FACES, ROOT, TESTPACK

sys.path.insert(0, str(ROOT / "scripts"))

from comfyui_client import (
    COMFYUI,
    TEMPLATES,
    PromptRejected,
    Server,
    comfyui_version,
    frontend_version,
    load_workflow,  # noqa: E402
    stage_example_inputs,
    ui_to_api,
)

__all__ = [
    "COMFYUI",
    "Listener",
    "PromptRejected",
    "Server",
    "api_twin",
    "comfyui_version",
    "frontend_version",
    "load_workflow",
    "on_fixtures",
    "start_server",
    "ui_to_api",
]

#: The example workflows that run end to end here (the others need real model weights).
WORKFLOWS = ["train_profile_from_folder", "score_and_rank_batch", "score_group_photo_two_profiles"]
#: Every example workflow, by its short name (TEMPLATES gives its file's name, the title ComfyUI shows).
EXAMPLES = sorted(TEMPLATES)
#: The fixture photos that stand in for the templates' sample photos where a test needs people it knows (the
#: samples show six strangers); stage_example_inputs puts them in the input folder.
ON_FIXTURES = {
    "identity_example_group.jpg": "identity/group/biden_obama_b.jpg",
    "identity_example_face_1.jpg": "identity/score/kit1.jpg",
    "identity_example_face_2.jpg": "identity/score/rose2.jpg",
    "identity_example_face_3.jpg": "identity/score/obama4.jpg",
    "identity_examples": "identity/score",
}


def api_twin(name: str) -> dict:
    return json.loads((ROOT / "tests" / "workflows" / f"{name}.api.json").read_text())


def on_fixtures(graph: dict) -> dict:
    """An API prompt or a UI-format workflow with the templates' sample photos (and their folder) replaced by the
    fixture photos (ON_FIXTURES)."""
    swap = lambda value: ON_FIXTURES.get(value, value) if isinstance(value, str) else value  # noqa: E731
    if "nodes" in graph:
        for node in graph["nodes"]:
            node["widgets_values"] = [swap(v) for v in node.get("widgets_values") or []]
    else:
        for node in graph.values():
            node["inputs"] = {name: swap(value) for name, value in node["inputs"].items()}
    return graph


def score_prompt(image: str, profile: str, **arcface: object) -> dict:
    """Face Engine, Profile Load and LoadImage into ArcFace Score (node "4"); `arcface` adds or changes its inputs."""
    return {
        "1": {"class_type": "IdentityFaceEngine", "inputs": {"pack": "embedded", "provider": "auto"}},
        "2": {"class_type": "IdentityProfileLoad", "inputs": {"profile": profile}},
        "3": {"class_type": "LoadImage", "inputs": {"image": image}},
        "4": {
            "class_type": "IdentityArcFaceScore",
            "inputs": {
                "images": ["3", 0],
                "profiles": ["2", 0],
                "min_similarity": 0.0,
                "top_k": 0,
                "face_engine": ["1", 0],
                **arcface,
            },
        },
    }


def start_server(base) -> Server:
    if not (COMFYUI / "main.py").is_file():
        pytest.skip(
            f"no ComfyUI at {COMFYUI}: run bash scripts/setup.sh, or set IDENTITY_COMFYUI to a ComfyUI checkout"
        )
    # A user folder away from the base (`--user-directory`): the pack must follow ComfyUI's, wherever it is.
    server = Server(base, user=base / "elsewhere" / "user").prepare(
        models={"insightface/models/testpack": TESTPACK} if TESTPACK.is_dir() else {}
    )
    if FACES.is_dir():
        stage_example_inputs(base / "input", FACES)
    return server.start()


class Listener:
    """ComfyUI's websocket messages while the block runs (`events`): JSON events, and binary progress texts
    decoded as `{"type": "binary-<kind>", "node": id, "text": ...}`. The block ends once the last message of every
    prompt it saw start has arrived (ComfyUI sends it after writing the prompt's history, which is what
    `client.run` waits for)."""

    def __init__(self, server: Server):
        self.url = server.client.url.replace("http", "ws") + f"/ws?clientId={server.client.client_id}"
        self.events: list[dict] = []
        self._arrived = threading.Condition()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._listen()), daemon=True)

    def __enter__(self) -> Listener:
        self._thread.start()
        assert self._ready.wait(10), "the websocket did not open"
        return self

    def __exit__(self, error_type, *exc) -> None:
        try:
            if error_type is None:
                started = [e["data"]["prompt_id"] for e in list(self.events) if e.get("type") == "execution_start"]
                for prompt_id in started:
                    self.wait_for(
                        lambda e: (
                            e.get("type") == "executing"
                            and e["data"].get("node") is None
                            and e["data"].get("prompt_id") == prompt_id
                        ),
                        f"the last message of prompt {prompt_id}",
                    )
        finally:
            self._stop.set()
            self._thread.join(5)

    def wait_for(self, condition, what: str, timeout: float = 60) -> dict:
        """The first event, arrived or arriving within `timeout` seconds, for which `condition(event)` holds."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                found = next((e for e in self.events if condition(e)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    raise TimeoutError(f"{what} did not arrive over the websocket within {timeout:g} s")
                self._arrived.wait(min(left, 1.0))

    def wait_for_text(self, node: str, words: str, timeout: float = 60) -> dict:
        """The first progress text shown on `node` that holds `words`."""
        return self.wait_for(
            lambda e: e.get("node") == node and words in e.get("text", ""), f"node {node} showing {words!r}", timeout
        )

    def _heard(self, event: dict) -> None:
        with self._arrived:
            self.events.append(event)
            self._arrived.notify_all()

    async def _listen(self) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(self.url) as ws:
                self._ready.set()
                while not self._stop.is_set():
                    try:
                        message = await ws.receive(timeout=0.2)
                    except asyncio.TimeoutError:
                        continue
                    if message.type == aiohttp.WSMsgType.TEXT:
                        self._heard(json.loads(message.data))
                    elif message.type == aiohttp.WSMsgType.BINARY and len(message.data) > 8:
                        kind, length = struct.unpack(">II", message.data[:8])
                        self._heard(
                            {
                                "type": f"binary-{kind}",
                                "node": message.data[8 : 8 + length].decode(),
                                "text": message.data[8 + length :].decode(errors="replace"),
                            }
                        )
