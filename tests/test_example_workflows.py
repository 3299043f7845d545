"""The example workflows: listed as templates, in step with their API twins, and run end to end in ComfyUI."""

from __future__ import annotations

import json
import os
import re
import tempfile

import pytest
from comfyui import EXAMPLES, WORKFLOWS, api_twin, load_workflow, ui_to_api
from conftest import FACES, ROOT, needs_faces
from PIL import Image


def test_templates_endpoint_lists_the_packs_workflows(comfyui):
    listed = comfyui.client.request("/api/workflow_templates")
    assert sorted(listed.get("identity-layer", [])) == EXAMPLES and set(WORKFLOWS) <= set(EXAMPLES)
    for name in EXAMPLES:
        served = comfyui.client.request(f"/api/workflow_templates/identity-layer/{name}.json")
        assert served == load_workflow(name)


@pytest.mark.parametrize("name", EXAMPLES)
def test_ui_workflow_and_api_twin_stay_in_step(comfyui, name):
    converted = ui_to_api(load_workflow(name), comfyui.client.object_info())
    assert converted == api_twin(name), f"example_workflows/{name}.json and tests/workflows/{name}.api.json differ"


#: Deprecated core nodes a template may use while ComfyUI 0.3.75 lacks their replacement: ComfyUI 0.33.0 deprecates
#: ImageBatch and registers BatchImagesNode (not in 0.3.75) as its replacement, which its frontend offers to swap in.
KEPT_FOR_0_3_75 = {"ImageBatch": "BatchImagesNode"}


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_workflows_use_only_current_core_nodes_and_ours_on_the_embedded_engine(comfyui, name):
    info = comfyui.client.object_info()
    for node in api_twin(name).values():
        module = info[node["class_type"]]["python_module"]
        assert module == "custom_nodes.identity-layer" or not module.startswith("custom_nodes"), node
        replacement = KEPT_FOR_0_3_75.get(node["class_type"])
        assert not info[node["class_type"]].get("deprecated") or replacement in info, (
            f"{name} uses {node['class_type']}, deprecated in this ComfyUI"
        )
        if node["class_type"] == "IdentityFaceEngine":
            assert node["inputs"] == {"pack": "embedded", "provider": "auto"}


def _train(comfyui, name: str, folder: str):
    prompt = api_twin("train_profile_from_folder")
    trainer = next(n for n in prompt.values() if n["class_type"] == "IdentityProfileTrain")
    trainer["inputs"].update(name=name, folder=folder)
    run = comfyui.client.run(prompt)
    assert run.status == "success", run.error
    return run


@needs_faces
def test_the_three_example_workflows_find_the_right_people(comfyui):
    trained = _train(comfyui, "Barack Obama", "identity/obama")
    report = next(o["text"][0] for o in trained.outputs.values() if "text" in o and "READY" in o["text"][0])
    assert "5 of 5 photos accepted" in report, report
    _train(comfyui, "Joe Biden", "identity/biden")
    saved = [p.name for p in (comfyui.base / "models" / "identity_profiles").iterdir()]
    for stem in ("barack-obama", "joe-biden"):
        assert sum(bool(re.fullmatch(stem + r"-[0-9a-f]{6}\.safetensors", n)) for n in saved) == 1, saved

    # Score and rank the folder (kit1, obama4, rose2 in name order): only the photo of Obama passes
    # min_similarity 0.4; Kit Harington and Rose Leslie do not.
    run = comfyui.client.run(api_twin("score_and_rank_batch"))
    assert run.status == "success", run.error
    scores = next(o["identity_scores"] for o in run.outputs.values() if "identity_scores" in o)
    assert [s["index"] for s in scores] == [0, 1, 2]
    assert scores[1]["subjects"]["Barack Obama"] > 0.6
    assert scores[0]["score"] < 0.4 and scores[2]["score"] < 0.4
    report = json.loads(next(o["text"][0] for o in run.outputs.values() if "text" in o))
    by_image = {entry["image"]: entry["score"] for entry in report["images"]}  # relative to the input folder
    folder = "identity/score/"
    assert set(by_image) == {folder + n for n in ("kit1.jpg", "obama4.jpg", "rose2.jpg")}, by_image
    assert by_image[folder + "obama4.jpg"] > 0.6, by_image
    saved = [i for o in run.outputs.values() for i in o.get("images", []) if i["type"] == "output"]
    assert len(saved) == 1 and saved[0]["subfolder"] == "identity", "one image survives the filter"
    assert (comfyui.base / "output" / saved[0]["subfolder"] / saved[0]["filename"]).is_file()

    # Group photo: Biden left, Obama right, the child unknown.
    run = comfyui.client.run(api_twin("score_group_photo_two_profiles"))
    assert run.status == "success", run.error
    text = next(o["text"][0] for o in run.outputs.values() if "text" in o)
    report = json.loads(text)
    names = report["profiles"]
    assigned = [names.get(f["profile_id"]) for f in report["images"][0]["faces"]]
    assert assigned == ["Joe Biden", "Barack Obama", None], report
    assert report["images"][0]["subjects"] and report["images"][0]["score"] > 0.5


def _private_paths(comfyui) -> set[str]:
    """Where this machine keeps things: ComfyUI's folders, the temporary folder, the pack and the fixtures."""
    places = {comfyui.base, comfyui.user, tempfile.gettempdir(), ROOT, FACES}
    return {form for place in places for form in (str(place), os.path.realpath(place))}


@needs_faces
def test_no_artefact_of_the_example_workflows_holds_a_path_of_this_machine(comfyui):
    """Saved PNGs (their prompt chunk holds each node's cache fingerprint), node reports, history and route answers
    name files relative to ComfyUI's input folder at most."""
    runs = [_train(comfyui, "Private Paths", "identity/obama")]
    runs += [comfyui.client.run(api_twin(name)) for name in WORKFLOWS if name != "train_profile_from_folder"]
    assert [run.status for run in runs] == ["success"] * len(runs), [run.error for run in runs]
    profiles = comfyui.client.request("/identity/profiles")["profiles"]
    artefacts = {
        "history": json.dumps([comfyui.client.request(f"/history/{run.prompt_id}") for run in runs]),
        "outputs": json.dumps([run.outputs for run in runs]),
        "profile list": json.dumps(profiles),
        **{
            f"details of {p['id']}": json.dumps(comfyui.client.request(f"/identity/profiles/{p['id']}"))
            for p in profiles
        },
    }
    pngs = sorted((comfyui.base / "output").rglob("*.png"))
    assert pngs, "the workflows save images"
    for png in pngs:
        with Image.open(png) as image:
            artefacts[f"metadata of {png.name}"] = json.dumps(image.text)
            assert "prompt" in image.text, "ComfyUI saves the prompt in the PNG"
    trained = next(p["id"] for p in profiles if p["name"] == "Private Paths")
    header = (comfyui.base / "models" / "identity_profiles" / f"{trained}.safetensors").read_bytes()[:200_000]
    artefacts["the trained profile's header"] = header.decode("utf-8", "replace")
    assert "identity/obama/" in artefacts["the trained profile's header"], "its report names the photos"
    comfyui.client.request(f"/identity/profiles/{trained}", method="DELETE")  # other tests list the profiles
    for what, text in artefacts.items():
        found = sorted(path for path in _private_paths(comfyui) if path in text)
        assert not found, f"{what} holds {found}"
