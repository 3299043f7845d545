"""The identity gate in a real ComfyUI, around core nodes only: three photos batched, core Image From Batch picking
`batch_index` = the gate's seed. The gate re-rolls until the person's photo comes up (through ComfyUI's graph
expansion), stops at its limit with the best when nobody passes, stops at once on Cancel, is served from
ComfyUI's cache when queued again, and refuses bad wiring in one sentence before anything between its nodes runs.
"""

from __future__ import annotations

import copy
import io
import json
import shutil
import time

import numpy as np
import pytest
from comfyui import Listener, api_twin, on_fixtures
from conftest import face, needs_faces
from PIL import Image

from identity.gate import GateError, check_count, check_profiles

pytestmark = needs_faces

STRANGERS = ("alex_lacamoire/alex1.jpg", "lin_manuel_miranda/lin1.png")
PERSON = "obama/obama4.jpg"  # held out: the profile is trained on obama1-3
PROFILE = "Gate Obama"
OUTSIDE = ("1", "2", "3", "4", "5", "10")  # photos, batches, profile: outside the loop
START, PICK, GATE = "6", "7", "8"


@pytest.fixture(scope="module")
def photos(comfyui):
    """The photos in ComfyUI's input folder, and a profile of the person trained through Profile Train."""
    folder = comfyui.base / "input" / "gate"
    (folder / "obama").mkdir(parents=True, exist_ok=True)
    for name in ("obama1.jpg", "obama2.jpg", "obama3.jpg"):
        shutil.copy(face(f"obama/{name}"), folder / "obama" / name)
    names = {}
    for photo in (*STRANGERS, PERSON):
        target = folder / photo.split("/")[-1]
        shutil.copy(face(photo), target)
        names[photo] = f"gate/{target.name}"
    train = {
        "1": {
            "class_type": "IdentityProfileTrain",
            "inputs": {"name": PROFILE, "folder": "gate/obama", "overwrite": True},
        }
    }
    run = comfyui.client.run(train)
    assert run.status == "success", run.error
    return names


def gate_prompt(
    photos: dict, pictures: tuple[str, ...], max_attempts: int = 5, seed: int = 0, profile: str = PROFILE
) -> dict:
    """LoadImage per photo, ImageBatch, the gate's start, ImageFromBatch(batch_index = seed), the gate, Profile
    Load, SaveImage for the images, PreviewAny for the report."""
    prompt = {str(i + 1): {"class_type": "LoadImage", "inputs": {"image": photos[p]}} for i, p in enumerate(pictures)}
    batch = ["1", 0]
    for i in range(1, len(pictures)):
        prompt[str(3 + i)] = {"class_type": "ImageBatch", "inputs": {"image1": batch, "image2": [str(i + 1), 0]}}
        batch = [str(3 + i), 0]
    prompt.update(
        {
            START: {"class_type": "IdentityGateStart", "inputs": {"seed": seed}},
            PICK: {
                "class_type": "ImageFromBatch",
                "inputs": {"image": batch, "batch_index": [START, 0], "length": 1},
            },
            GATE: {
                "class_type": "IdentityGate",
                "inputs": {
                    "gate": [START, 1],
                    "images": [PICK, 0],
                    "profiles": ["10", 0],
                    "max_attempts": max_attempts,
                    "time_budget_s": 0.0,
                },
            },
            "9": {"class_type": "SaveImage", "inputs": {"images": [GATE, 0], "filename_prefix": "gate/chosen"}},
            "10": {"class_type": "IdentityProfileLoad", "inputs": {"profile": profile}},
            "11": {"class_type": "PreviewAny", "inputs": {"source": [GATE, 2]}},
        }
    )
    return prompt


def three(photos) -> dict:
    return gate_prompt(photos, (STRANGERS[0], STRANGERS[1], PERSON))


def report_of(run) -> dict:
    return json.loads(run.outputs["11"]["text"][0])


def executed(events: list[dict], display: str) -> list[str]:
    """The node ids ComfyUI executed for the user's node `display` (the node itself and its copies)."""
    return [
        e["data"]["node"]
        for e in events
        if e.get("type") == "executing" and e["data"].get("node") and e["data"].get("display_node") == display
    ]


def arcface_scores(comfyui, photos, pictures, profile_id: str) -> list[float]:
    """ArcFace Score's own similarity of each photo's face to the profile (the oracle for the gate's report)."""
    prompt = gate_prompt(photos, pictures)
    for node in (START, PICK, GATE, "9", "11"):
        del prompt[node]
    last = str(3 + len(pictures) - 1)
    prompt["12"] = {
        "class_type": "IdentityArcFaceScore",
        "inputs": {"images": [last, 0], "profiles": ["10", 0], "min_similarity": 0.0, "top_k": 0},
    }
    prompt["13"] = {"class_type": "PreviewAny", "inputs": {"source": ["12", 2]}}
    run = comfyui.client.run(prompt)
    assert run.status == "success", run.error
    summary = json.loads(run.outputs["13"]["text"][0])
    return [max(f["scores"][profile_id] for f in image["faces"]) for image in summary["images"]]


def test_the_gate_nodes_are_listed_with_their_sockets(comfyui):
    info = comfyui.client.object_info()
    start, gate = info["IdentityGateStart"], info["IdentityGate"]
    assert start["display_name"] == "Identity Gate (start)" and gate["display_name"] == "Identity Gate"
    assert start["output"] == ["INT", "IDENTITY_GATE"]
    assert gate["input_order"]["required"] == ["gate", "images", "profiles", "max_attempts", "time_budget_s"]
    assert gate["input"]["required"]["images"][1]["lazy"] is True, "the profiles are checked before any sampling"
    assert gate["output"] == ["IMAGE", "FLOAT", "STRING", "BOOLEAN"]


def test_the_gate_rerolls_until_the_persons_photo_comes_up(comfyui, photos):
    with Listener(comfyui) as listener:
        events = listener.events
        run = comfyui.client.run(three(photos))
    assert run.status == "success", run.error
    report = report_of(run)
    profile_id = next(iter(report["profiles"]))
    assert report["passed"] and report["stopped"] == "an image passed", report["verdict"]
    assert [a["seed"] for a in report["attempts"]] == [0, 1, 2] and [a["passed"] for a in report["attempts"]] == [
        False,
        False,
        True,
    ]
    assert report["returned"] == {"attempt": 3, "seed": 2, "images": [0], "scores": report["returned"]["scores"]}
    assert report["verdict"].startswith("passed on attempt 3 of 3 (seed 2): Gate Obama")

    # The strangers' scores are ArcFace Score's own, each below the profile's threshold, and said so.
    expected = arcface_scores(comfyui, photos, (STRANGERS[0], STRANGERS[1], PERSON), profile_id)
    for attempt, similarity in zip(report["attempts"], expected):
        subject = attempt["images"][0]["subjects"][profile_id]
        assert subject["similarity"] == pytest.approx(similarity, abs=1e-4), (attempt, expected)
        assert subject["measures"] == "face identity similarity (ArcFace)"
    for attempt in report["attempts"][:2]:
        subject = attempt["images"][0]["subjects"][profile_id]
        assert not subject["passed"] and subject["similarity"] < subject["threshold"]
        assert (
            attempt["failed"] == [f"Gate Obama: {subject['why']}"] and "below Gate Obama's threshold" in subject["why"]
        )
    passed = report["attempts"][2]["images"][0]["subjects"][profile_id]
    assert (
        passed["passed"]
        and passed["similarity"] >= passed["threshold"]
        and report["returned"]["scores"] == [passed["similarity"]]
    )

    # The saved image is the person's photo: the library finds the profile's person in it.
    (saved,) = run.outputs["9"]["images"]
    from identity.faces import load_engine
    from identity.profile import ProfileStore
    from identity.scoring import score_images

    image = Image.open(io.BytesIO(comfyui.client.view(saved))).convert("RGB")
    profile = ProfileStore(comfyui.base / "models" / "identity_profiles").load(profile_id)
    (result,) = score_images([("saved", np.asarray(image))], [profile], load_engine(None, "auto"))
    assert result.subject_scores([profile_id])[profile_id] > 0, "the gate returned the person's photo"

    # Nodes outside the loop ran once; the nodes between start and gate ran once per attempt.
    for node in OUTSIDE:
        assert len(executed(events, node)) == 1, (node, executed(events, node))
    for node in (START, PICK, GATE):
        runs = list(dict.fromkeys(executed(events, node)))  # the gate shows twice: asking for its images, then
        assert len(runs) == 3 and runs[0] == node, runs  # scoring them


def test_a_second_identical_queue_runs_nothing(comfyui, photos):
    first = comfyui.client.run(three(photos))
    assert first.status == "success", first.error
    with Listener(comfyui) as listener:
        events = listener.events
        again = comfyui.client.run(three(photos))
    assert again.status == "success", again.error
    cached = next(data["nodes"] for event, data in again.messages if event == "execution_cached")
    assert sorted(cached) == sorted(three(photos)), "every node is served from ComfyUI's cache"
    assert [e for e in events if e.get("type") == "executing" and e["data"].get("node")] == [], "nothing ran"
    assert report_of(again) == report_of(first)


def test_with_only_strangers_it_stops_at_the_limit_and_returns_the_best(comfyui, photos):
    run = comfyui.client.run(gate_prompt(photos, STRANGERS, max_attempts=3))
    assert run.status == "success", run.error
    report = report_of(run)
    assert not report["passed"] and report["stopped"] == "attempt limit reached (3)"
    assert [a["seed"] for a in report["attempts"]] == [0, 1, 2] and not any(a["passed"] for a in report["attempts"])
    best = max(report["attempts"], key=lambda a: (a["images"][0]["score"], -a["attempt"]))
    assert report["returned"]["attempt"] == best["attempt"]
    assert report["verdict"].startswith(
        f"nobody passed in 3 attempts: returned the best image, from attempt {best['attempt']}"
    )
    assert len(run.outputs["9"]["images"]) == 1, "the best image is still returned (and saved)"


def test_cancel_during_the_second_attempt_stops_at_once_and_leaves_no_job(comfyui, photos):
    # Strangers only, from seed 100 (Image From Batch clamps the index): every attempt runs, none passes.
    prompt = gate_prompt(photos, (*STRANGERS, STRANGERS[0]), max_attempts=8, seed=100)
    with Listener(comfyui) as listener:
        events = listener.events
        prompt_id = comfyui.client.queue(prompt)
        deadline = time.monotonic() + 120
        while len(executed(events, PICK)) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        comfyui.client.request("/interrupt", {})
        pressed = time.monotonic()
        run = comfyui.client.wait(prompt_id)
    assert time.monotonic() - pressed < 10
    assert run.status == "error" and any(event == "execution_interrupted" for event, _ in run.messages), run.messages
    queue = comfyui.client.request("/queue")
    assert queue["queue_running"] == [] and queue["queue_pending"] == [], "no job is left in ComfyUI's queue"
    assert len(executed(events, PICK)) == 2, "no third attempt started after Cancel"
    assert "9" not in run.outputs, "nothing was saved"


def test_the_cpu_template_rerolls_until_the_person_comes_up(comfyui, photos):
    prompt = on_fixtures(api_twin("identity_gate_core_nodes_cpu"))  # Kit Harington, Rose Leslie, then Obama
    prompt["11"]["inputs"]["profile"] = PROFILE
    run = comfyui.client.run(prompt)
    assert run.status == "success", run.error
    report = json.loads(run.outputs["13"]["text"][0])
    assert report["passed"] and [a["seed"] for a in report["attempts"]] == [0, 1, 2], report["verdict"]
    assert len(run.outputs["10"]["images"]) == 1


def _expect_error(comfyui, prompt: dict, *words: str) -> dict:
    with Listener(comfyui) as listener:
        events = listener.events
        run = comfyui.client.run(prompt)
    assert run.status == "error", run.outputs
    message = run.error["exception_message"].strip()
    assert "Traceback" not in message and message.count("\n") == 0, message
    for word in words:
        assert word in message, (word, message)
    return {"message": message, "events": events}


def test_a_gate_with_no_generator_between_its_nodes_is_refused_before_anything_runs(comfyui, photos):
    assert comfyui.client.run(three(photos)).status == "success"  # the start is in ComfyUI's cache now
    prompt = three(photos)
    prompt[PICK]["inputs"]["batch_index"] = 0  # the seed drives nothing
    result = _expect_error(comfyui, prompt, "no generator between Identity Gate (start) #6 and Identity Gate #8")
    assert "connect the start's 'seed' to your generator" in result["message"]
    assert executed(result["events"], PICK) == [], "nothing between the two nodes ran"


def second_gate(photos, source: list) -> dict:
    """The three-photo gate and a second gate whose Image From Batch takes `source`."""
    prompt = three(photos)
    prompt["20"] = {"class_type": "IdentityGateStart", "inputs": {"seed": 0}}
    prompt["21"] = copy.deepcopy(prompt[GATE])
    prompt["22"] = {"class_type": "ImageFromBatch", "inputs": {"image": source, "batch_index": ["20", 0], "length": 1}}
    prompt["21"]["inputs"].update(gate=["20", 1], images=["22", 0])
    prompt["23"] = {"class_type": "PreviewAny", "inputs": {"source": ["21", 2]}}
    return prompt


def test_nested_and_crossing_gates_are_refused_before_anything_runs(comfyui, photos):
    nested = three(photos)  # an inner gate around the picker, inside the outer gate's loop
    nested["20"] = {"class_type": "IdentityGateStart", "inputs": {"seed": [START, 0]}}
    nested[PICK]["inputs"]["batch_index"] = ["20", 0]
    nested["21"] = copy.deepcopy(nested[GATE])
    nested["21"]["inputs"].update(gate=["20", 1], images=[PICK, 0])
    nested[GATE]["inputs"]["images"] = ["21", 0]
    result = _expect_error(comfyui, nested, "Identity Gate #8 and Identity Gate #21 are nested or crossing")
    assert executed(result["events"], PICK) == [], "nothing between the nodes ran"

    crossing = second_gate(photos, [PICK, 0])  # the second loop fed from inside the first, not by its gate
    result = _expect_error(comfyui, crossing, "nested or crossing (at #22)", "from the first gate's outputs")
    assert executed(result["events"], PICK) == []


def test_a_second_gate_fed_by_the_first_gates_output_runs_after_it(comfyui, photos):
    run = comfyui.client.run(second_gate(photos, [GATE, 0]))
    assert run.status == "success", run.error
    assert report_of(run)["returned"]["attempt"] == 3
    second = json.loads(run.outputs["23"]["text"][0])
    assert second["passed"] and len(second["attempts"]) == 1, "the first gate's person passes the second at once"


def test_a_generator_whose_image_count_changes_between_attempts_is_refused(comfyui, photos):
    prompt = gate_prompt(photos, (*STRANGERS, STRANGERS[0]), seed=1)
    prompt[PICK]["inputs"].update(batch_index=0, length=[START, 0])  # attempt n makes seed + n images
    _expect_error(comfyui, prompt, "gave 2 images on attempt 2 but 1 on attempt 1", "batch size fixed")


def test_bad_profiles_an_empty_generator_and_a_changing_count_are_refused_with_the_fix():
    class Named:  # what the check reads of a profile
        def __init__(self, name: str, kind: str):
            self.name, self.kind = name, kind

    with pytest.raises(GateError, match="connect Profile Load"):
        check_profiles([])
    with pytest.raises(GateError, match=r"people \(Ann\) and pets \(Rex\).*two Identity Gates"):
        check_profiles([Named("Ann", "person"), Named("Rex", "dog")])
    check_profiles([Named("Tom", "cat"), Named("Rex", "dog")])  # pets together are one measure: appearance
    with pytest.raises(GateError, match="gave no image on attempt 1: connect the IMAGE output"):
        check_count(1, 0, None)
    with pytest.raises(GateError, match="gave 2 images on attempt 2 but 1 on attempt 1.*batch size fixed"):
        check_count(2, 2, 1)


def test_the_gate_verifies_again_when_someone_is_added_renamed_or_deleted_in_the_store(
    comfyui, photos, tmp_path, embedded
):
    """Its verdict depends on everyone known (known_people), so a store changed by another process (this test's)
    is a new verdict, not ComfyUI's cached one; with known_people off, the cached one stands."""
    from identity.profile import ProfileStore
    from identity.training import photos_from_paths, train
    from identity.training.jobs import JobRegistry

    biden = train(photos_from_paths([face("biden/biden1.jpg")]), "Gate Biden", embedded, registry=JobRegistry()).profile
    live = ProfileStore(comfyui.base / "models" / "identity_profiles")

    def cached(prompt) -> list[str]:
        run = comfyui.client.run(prompt)
        assert run.status == "success", run.error
        return next(data["nodes"] for event, data in run.messages if event == "execution_cached")

    prompt = three(photos)
    cached(prompt)
    assert GATE in cached(prompt), "nothing changed: served from the cache"
    try:
        for change in (
            lambda: live.save(biden),
            lambda: live.rename(biden.id, "Gate Biden renamed"),
            lambda: live.delete(biden.id),
        ):
            change()
            assert GATE not in cached(prompt)
        off = copy.deepcopy(prompt)
        off[GATE]["inputs"]["known_people"] = False
        cached(off)
        live.save(biden)
        assert GATE in cached(off), "a single-profile check does not depend on the others"
    finally:
        if live.exists(biden.id):
            live.delete(biden.id)
