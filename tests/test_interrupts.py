"""Cancel in ComfyUI stops every long-running path at once and leaves no job behind: Profile Train, the panel's
training, each closed-model node and the Flux nodes.

ComfyUI's interrupt is an `Exception` up to v0.19 and a `BaseException` since v0.20; scripts/test.sh runs these
on both kinds (the ComfyUI is in each test's id).
"""

from __future__ import annotations

import asyncio
import io
import time

import numpy as np
import pytest
from comfyui import Listener, api_twin, on_fixtures
from conftest import face, needs_faces, wait_until
from PIL import Image
from test_flux_nodes import identity_nodes, sampling_graph
from test_web_routes import call, upload, wait_for

from identity.remote.http import Policy
from identity.remote.keys import KeyStore
from identity.remote.runner import RemoteRequest, execute, plan

pytestmark = needs_faces


def many_photos(count: int = 40) -> list[np.ndarray]:
    """Enough large photos of one person that training runs for a few seconds."""
    big = np.asarray(Image.open(face("obama/obama3.jpg")).convert("RGB"))
    return [np.ascontiguousarray(np.roll(big, i * 7, axis=1)) for i in range(count)]


def jpeg(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def train_prompt(folder: str, name: str) -> dict:
    return {
        "1": {"class_type": "IdentityFaceEngine", "inputs": {"pack": "embedded", "provider": "auto"}},
        "2": {
            "class_type": "IdentityProfileTrain",
            "inputs": {"name": name, "folder": folder, "overwrite": True, "face_engine": ["1", 0]},
        },
    }


def running_jobs(comfyui, name: str) -> list[dict]:
    status, answer = call(comfyui, "GET", "/identity/profiles")
    assert status == 200, answer
    return [job for job in answer["jobs"] if job["name"] == name]


def interrupt(comfyui) -> float:
    """Presses Cancel (as the UI's Cancel button does when nothing else is named); returns when."""
    comfyui.client.request("/interrupt", {})
    return time.monotonic()


def assert_interrupted(comfyui, prompt_id: str, pressed: float, within: float = 10.0) -> None:
    run = comfyui.client.wait(prompt_id)
    assert time.monotonic() - pressed < within, "the work stopped when Cancel was pressed, not when it was done"
    assert run.status == "error" and any(event == "execution_interrupted" for event, _ in run.messages), run.messages
    queue = comfyui.client.request("/queue")
    assert queue["queue_running"] == [] and queue["queue_pending"] == [], "no job is left in ComfyUI's queue"


def profile_files(comfyui, stem: str) -> list[str]:
    folder = comfyui.base / "models" / "identity_profiles"
    return [p.name for p in folder.iterdir() if p.name.startswith(stem)] if folder.is_dir() else []


def test_cancel_stops_profile_train_and_the_name_can_be_trained_again(comfyui):
    folder = comfyui.base / "input" / "cancel_many"
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(many_photos()):
        (folder / f"photo{index:02d}.jpg").write_bytes(jpeg(image))
    prompt_id = comfyui.client.queue(train_prompt("cancel_many", "Cancelled Person"))
    wait_until(
        lambda: any(j["status"] == "IN_PROGRESS" for j in running_jobs(comfyui, "Cancelled Person")),
        "training reached IN_PROGRESS",
    )
    pressed = interrupt(comfyui)
    assert_interrupted(comfyui, prompt_id, pressed, within=30)  # training looks for Cancel between chunks of photos
    assert running_jobs(comfyui, "Cancelled Person") == [], "no job is left running"
    assert profile_files(comfyui, "cancelled-person") == [], "nothing was saved"

    run = comfyui.client.run(train_prompt("identity/obama", "Cancelled Person"))
    assert run.status == "success", run.error  # not "already being trained"
    assert len(profile_files(comfyui, "cancelled-person")) == 1


def test_cancel_stops_a_training_started_from_the_panel(comfyui):
    status, answer = upload(
        comfyui, "Panel Cancelled", [(f"p{i:02d}.jpg", jpeg(a)) for i, a in enumerate(many_photos())]
    )
    assert status == 202, answer
    job = answer["job"]
    wait_until(
        lambda: call(comfyui, "GET", f"/identity/jobs/{job['job_id']}")[1]["status"] == "IN_PROGRESS",
        "the panel's training reached IN_PROGRESS",
    )
    pressed = interrupt(comfyui)
    job = wait_for(comfyui, job, timeout=30)
    assert time.monotonic() - pressed < 30
    assert job["status"] == "ERROR" and "Cancel" in job["message"], job
    assert running_jobs(comfyui, "Panel Cancelled") == [] and profile_files(comfyui, "panel-cancelled") == []

    # ComfyUI clears its interrupt flag only when the next prompt starts: a new training must not inherit it.
    photos = [(name, face(f"obama/{name}").read_bytes()) for name in ("obama1.jpg", "obama2.jpg", "obama3.jpg")]
    status, answer = upload(comfyui, "Panel Cancelled", photos)
    assert status == 202, answer
    assert wait_for(comfyui, answer["job"])["status"] == "READY"
    assert comfyui.client.run(train_prompt("identity/biden", "After Cancel")).status == "success"


def remote_prompt(node_type: str) -> tuple[dict, str]:
    """An API prompt for each closed-model node (the example workflows, and Remix built from Enhance's)."""
    if node_type == "IdentityRemix":
        prompt = on_fixtures(api_twin("remote_enhance_nb2"))
        node = next(k for k, n in prompt.items() if n["class_type"] == "IdentityEnhance")
        inputs = {**prompt[node]["inputs"], "style_reference": prompt[node]["inputs"]["image"], "prompt": "in oils"}
        prompt[node] = {"class_type": "IdentityRemix", "inputs": inputs}
        return prompt, node
    name = {
        "IdentityGenerate": "remote_generate_portrait_nb2",
        "IdentityEdit": "remote_edit_group_photo_gpt_image_2",
        "IdentityEnhance": "remote_enhance_nb2",
    }[node_type]
    prompt = on_fixtures(api_twin(name))
    return prompt, next(k for k, n in prompt.items() if n["class_type"] == node_type)


class HostInterrupt(BaseException):
    """What ComfyUI raises on Cancel since v0.20: a BaseException, from its progress hook, once (the hook clears
    the interrupt flag as it raises, so `processing_interrupted()` says False afterwards)."""


def test_an_interrupt_raised_by_the_progress_hook_stops_the_calls(fake, people, embedded, tmp_path):
    fake.reset(delay=10)
    keys = KeyStore(fake.keys_file(tmp_path), environ={})
    planned = plan(
        RemoteRequest(
            operation="generate", model="nb2", profiles=list(people.values()), prompt="[[barack-obama]] in the rain"
        ),
        keys,
        embedded,
    )
    raised = []

    def progress(fraction: float, text: str) -> None:
        if fake.requests and not raised:  # Cancel once the call waits at the provider
            raised.append(True)
            raise HostInterrupt()

    started = time.monotonic()
    with pytest.raises(HostInterrupt):
        asyncio.run(execute(planned, embedded, progress=progress))
    assert time.monotonic() - started < 3, "the calls stopped with the interrupt, not when the provider answered"


@pytest.mark.parametrize("node_type", ["IdentityGenerate", "IdentityEdit", "IdentityEnhance", "IdentityRemix"])
def test_cancel_stops_each_closed_model_node_and_no_call_follows(comfyui, remote, node_type):
    prompt, node = remote_prompt(node_type)
    prompt[node]["inputs"]["seed"] = 4242  # not a cached result of another test
    remote.reset(delay=30)  # each call would take 30 s: stopping within 10 s means Cancel ended it
    with Listener(comfyui) as heard:
        prompt_id = comfyui.client.queue(prompt)
        wait_until(lambda: remote.requests, "the first call reached the provider")
        heard.wait_for_text(node, "waiting for")  # the node's progress ticks: Cancel is seen there and by the calls
        pressed = interrupt(comfyui)
        assert_interrupted(comfyui, prompt_id, pressed)
    calls = len(remote.requests)
    time.sleep(Policy().base_delay * 1.5)  # a retry would follow within its first backoff: none may come
    assert len(remote.requests) == calls, "no call is sent after Cancel"


def test_cancel_stops_flux_sampling_with_identity_and_the_graph_runs_again(tiny):
    prompt = {**sampling_graph("cancelled", ["23", 0], ["12", 0]), **identity_nodes(1.0)}
    prompt["14"]["inputs"].update(steps=400, seed=11)
    with Listener(tiny) as heard:
        prompt_id = tiny.client.queue(prompt)
        heard.wait_for(
            lambda e: e.get("type") == "progress" and e["data"].get("node") == "14",
            "sampling with the patched model",
            120,
        )
        pressed = interrupt(tiny)
        assert_interrupted(tiny, prompt_id, pressed)

    prompt["14"]["inputs"].update(steps=2, seed=12)
    run = tiny.client.run(prompt)
    assert run.status == "success", run.error
