"""The example workflows: listed as templates with a title, a thumbnail and what they load, in step with their API
twins and the nodes' defaults, and run end to end in ComfyUI."""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
import urllib.parse

import pytest
from comfyui import (
    EXAMPLES,
    TEMPLATES,
    WORKFLOWS,
    PromptRejected,
    api_twin,
    comfyui_version,
    load_workflow,
    on_fixtures,
    ui_to_api,
)
from conftest import FACES, ROOT, needs_faces
from PIL import Image

SAMPLES = ROOT / "example_workflows" / "input"
#: Nodes whose run is a paid call: this pack's remote nodes (the user's own API keys) and the ComfyUI partner nodes
#: the templates use (comfy.org credits; /object_info says `api_node`, checked against this set below).
PAID = {
    *("IdentityGenerate", "IdentityEdit", "IdentityEnhance", "IdentityRemix"),
    *("GeminiImage2Node", "OpenAIGPTImage1", "Flux2ProImageNode", "QwenImageEditApi"),
}
MODEL_FILE = re.compile(r".+\.(safetensors|sft|pt|pth|ckpt)$")
PROFILE_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*-[0-9a-f]{6}")  # identity.profile ids: a slug and 6 hex digits
#: Settings a template sets on purpose away from the node's default (anything else must agree with the node).
TAUGHT = {
    ("IdentityConditionFlux", "start_at"): "0.2 for photos, as the PuLID authors advise (the note says so)",
    ("IdentityArcFaceScore", "top_k"): "the generate-then-rank template keeps the best two of four",
    ("IdentityGenerate", "num_output_images"): "the portrait template asks for two",
    ("IdentityGenerate", "rerolls"): "and shows re-rolls within a budget",
    ("IdentityGenerate", "max_cost_usd"): "(the budget)",
    ("IdentityEdit", "rerolls"): "the edit template re-rolls once",
    ("IdentityProfileTrain", "overwrite"): "the training template can be queued again after adding photos",
}
#: LiteGraph draws a node's title bar (30 px) above its `pos`; Profile Load's view is web/js/nodes.js's thumbnail.
TITLE_HEIGHT = 30
PROFILE_LOAD_ROWS = 80  # its combo, its chain input and the caption under the thumbnail


def _number(name: str) -> int:
    return int(TEMPLATES[name].split(".", 1)[0])


def _nodes(name: str) -> list[dict]:
    return load_workflow(name)["nodes"]


def test_template_titles_number_the_local_ones_first_and_the_paid_ones_last():
    """ComfyUI titles (and describes) a pack's template card with its file name, in the order the server lists
    them (see TEMPLATES): each title is a sentence that starts with its place, and the paid ones come last."""
    files = sorted(p.stem for p in (ROOT / "example_workflows").glob("*.json"))
    assert files == sorted(TEMPLATES.values())
    assert sorted(_number(n) for n in EXAMPLES) == list(range(1, len(EXAMPLES) + 1))
    for title in TEMPLATES.values():
        assert re.fullmatch(r"\d+\. [A-Z][^_/\\:*?\"<>|#%]+", title), (
            f"{title!r}: no '_' (shown as a space) or path characters"
        )
    paid = [_number(n) for n in EXAMPLES if PAID & {node["type"] for node in _nodes(n)}]
    local = [_number(n) for n in EXAMPLES if not PAID & {node["type"] for node in _nodes(n)}]
    assert paid and local and max(local) < min(paid)
    assert all("Paid API" in TEMPLATES[n] for n in EXAMPLES if _number(n) in paid)


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_template_has_a_note_a_jpeg_thumbnail_and_ships_what_it_loads(name):
    nodes = _nodes(name)
    note = next(n for n in nodes if n["type"] == "Note")
    assert len(note["widgets_values"][0]) > 80, "the note says what the template does and what it needs"
    thumbnail = (ROOT / "example_workflows" / f"{TEMPLATES[name]}.json").with_suffix(".jpg")
    assert thumbnail.read_bytes()[:3] == b"\xff\xd8\xff", f"{thumbnail.name} is not a JPEG file"
    with Image.open(thumbnail) as image:
        assert image.format == "JPEG" and image.width >= 256 and image.height >= 192
    for node in nodes:
        if node["type"] == "LoadImage":  # it lists only the input folder's top files; others show as missing
            photo = node["widgets_values"][0]
            assert "/" not in photo and (SAMPLES / photo).is_file(), f"{photo} is not shipped at the top"
        if node["type"] == "IdentityArcFaceScore" and len(node["widgets_values"]) > 2 and node["widgets_values"][2]:
            folder = SAMPLES / node["widgets_values"][2]
            assert folder.is_dir() and any(folder.glob("*.jpg")), f"{folder} is not shipped"


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_model_file_a_template_loads_has_a_download_entry(name):
    """ComfyUI's Missing Models dialog reads `properties.models` of the node whose widget names the file
    ({name, url, directory}; the frontend offers a download only for huggingface.co or civitai URLs)."""
    for node in _nodes(name):
        files = [v for v in node.get("widgets_values") or [] if isinstance(v, str) and MODEL_FILE.fullmatch(v)]
        entries = {m["name"]: m for m in node.get("properties", {}).get("models", [])}
        assert sorted(entries) == sorted(files), (node["type"], files, entries)
        for file, entry in entries.items():
            assert entry["url"].startswith("https://huggingface.co/") and entry["url"].endswith("/" + file), entry
            assert re.fullmatch(r"[a-z_]+", entry["directory"]), entry


@pytest.mark.parametrize("name", EXAMPLES)
def test_templates_name_profiles_never_by_a_machines_profile_id(name):
    for node in _nodes(name):
        for value in node.get("widgets_values") or []:
            if isinstance(value, str):
                named = re.findall(r"\[\[([^\]]+)\]\]", value)
                assert not [n for n in named if PROFILE_ID.fullmatch(n)], (node["type"], value)
                if node["type"] == "IdentityProfileLoad":
                    assert not PROFILE_ID.fullmatch(value), value


@pytest.mark.parametrize("name", EXAMPLES)
def test_no_node_covers_another_profile_load_included(name):
    thumb = int(re.search(r"THUMB_HEIGHT = (\d+)", (ROOT / "web" / "js" / "nodes.js").read_text()).group(1))
    boxes = []
    for node in _nodes(name):
        if node["type"] == "IdentityProfileLoad":
            assert node["size"][1] >= thumb + PROFILE_LOAD_ROWS, "Profile Load grows to hold its thumbnail"
        x, y = node["pos"]
        boxes.append((node["id"], x, y - TITLE_HEIGHT, x + node["size"][0], y + node["size"][1]))
    for i, (a, ax1, ay1, ax2, ay2) in enumerate(boxes):
        for b, bx1, by1, bx2, by2 in boxes[i + 1 :]:
            assert ax2 <= bx1 or bx2 <= ax1 or ay2 <= by1 or by2 <= ay1, f"nodes {a} and {b} overlap"


def test_templates_endpoint_lists_the_packs_workflows_with_their_thumbnails(comfyui):
    listed = comfyui.client.request("/api/workflow_templates")
    assert sorted(listed.get("identity-layer", [])) == sorted(TEMPLATES.values()) and set(WORKFLOWS) <= set(EXAMPLES)
    for name in EXAMPLES:
        url = "/api/workflow_templates/identity-layer/" + urllib.parse.quote(TEMPLATES[name])
        assert comfyui.client.request(url + ".json") == load_workflow(name)
        with Image.open(io.BytesIO(comfyui.client.request(url + ".jpg", raw=True))) as thumbnail:
            assert thumbnail.format == "JPEG"


def test_the_templates_photos_are_in_comfyuis_input_folder(comfyui):
    """The pack copies them there at start-up (Load Image reads only from the input folder)."""
    shipped = sorted(p.relative_to(SAMPLES) for p in SAMPLES.rglob("*.jpg"))
    assert shipped and all((comfyui.base / "input" / p).read_bytes() == (SAMPLES / p).read_bytes() for p in shipped)


#: Partner nodes a template uses that ComfyUI 0.3.75 lacks, and why no node both versions have stands in.
ONLY_IN_0_33 = {
    "QwenImageEditApi": "ComfyUI 0.3.75 has no Qwen Image API node (no comfy_api_nodes/nodes_qwen.py), nor the V3 "
    "DynamicCombo and Autogrow inputs QwenImageEditApi takes (comfy_api/latest/_io.py)",
}


def _object_info(comfyui, name: str) -> dict:
    """This server's /object_info, or a skip where the template needs a node this version lacks (ONLY_IN_0_33)."""
    info = comfyui.client.object_info()
    missing = sorted({node["class_type"] for node in api_twin(name).values()} - set(info))
    if missing:
        assert comfyui_version() == "0.3.75" and set(missing) <= set(ONLY_IN_0_33), f"{name} needs {missing}"
        pytest.skip(f"{TEMPLATES[name]}: " + "; ".join(ONLY_IN_0_33[t] for t in missing))
    return info


@pytest.mark.parametrize("name", EXAMPLES)
def test_templates_settings_agree_with_the_nodes_defaults(comfyui, name):
    info = _object_info(comfyui, name)
    for node in api_twin(name).values():
        definition = info[node["class_type"]]
        if definition["python_module"] != "custom_nodes.identity-layer":
            continue
        for group in ("required", "optional"):
            for input_name, spec in definition["input"].get(group, {}).items():
                value, options = node["inputs"].get(input_name), spec[1] if len(spec) > 1 else {}
                if spec[0] not in ("INT", "FLOAT", "BOOLEAN") or options.get("control_after_generate"):
                    continue  # files, names, prompts and seeds are what a template is about
                if value is not None and (node["class_type"], input_name) not in TAUGHT:
                    assert value == options["default"], (node["class_type"], input_name, value, options["default"])


@pytest.mark.parametrize("name", EXAMPLES)
def test_ui_workflow_and_api_twin_stay_in_step(comfyui, name):
    converted = ui_to_api(load_workflow(name), _object_info(comfyui, name))
    assert converted == api_twin(name), f"example_workflows/{name}.json and tests/workflows/{name}.api.json differ"


#: Deprecated core nodes a template may use while ComfyUI 0.3.75 lacks their replacement: ComfyUI 0.33.0 deprecates
#: ImageBatch and registers BatchImagesNode (not in 0.3.75) as its replacement, which its frontend offers to swap in;
#: likewise OpenAIGPTImage1 (comfy_api_nodes/nodes_openai.py, one `image` input that takes a batch) for
#: OpenAIGPTImageNodeV2 (a DynamicCombo `model` with Autogrow `image_N` inputs), which 0.3.75 lacks, and
#: Flux2ProImageNode (comfy_api_nodes/nodes_bfl.py, one `images` batch) for Flux2ImageNode (a DynamicCombo `model`,
#: [pro] or [max], with Autogrow `image_1`..`image_8`), which 0.3.75 lacks too.
KEPT_FOR_0_3_75 = {
    "ImageBatch": "BatchImagesNode",
    "OpenAIGPTImage1": "OpenAIGPTImageNodeV2",
    "Flux2ProImageNode": "Flux2ImageNode",
}


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_workflows_use_only_current_core_nodes_and_ours_on_the_embedded_engine(comfyui, name):
    info = _object_info(comfyui, name)
    for node in api_twin(name).values():
        module = info[node["class_type"]]["python_module"]
        assert module == "custom_nodes.identity-layer" or not module.startswith("custom_nodes"), node
        replacement = KEPT_FOR_0_3_75.get(node["class_type"])
        assert not info[node["class_type"]].get("deprecated") or replacement in info, (
            f"{name} uses {node['class_type']}, deprecated in this ComfyUI"
        )
        if node["class_type"] == "IdentityFaceEngine":
            assert node["inputs"] == {"pack": "embedded", "provider": "auto"}
        if info[node["class_type"]].get("api_node"):
            assert node["class_type"] in PAID, f"{node['class_type']} is a paid partner node: list it in PAID"


#: A profile no test trains: a template queued with it stops at Profile Load, before any sampler or paid call.
UNTRAINED = "Nobody Trained Here"


@pytest.mark.parametrize("name", [n for n in EXAMPLES if n not in WORKFLOWS])
def test_each_template_passes_comfyuis_own_validation(comfyui, name):
    """ComfyUI's own prompt validation (POST /prompt): every node exists, every link joins matching types, every
    value is one its input takes. Model files are not installed here, so the only errors allowed are core loaders'
    'not in list' for files with a download entry (PuLID-Flux Load checks its files when it runs), and Base Model
    Select's missing API key (it refuses at validation, before any paid work); a template that needs none is queued and stops at Profile
    Load, which names the missing profile (ComfyUI runs no node that depends on it: no sampler, no paid call).
    ComfyUI 0.3.75 and 0.33.0 both have every node the templates use (GeminiImage2Node, OpenAIGPTImage1 and
    Flux2ProImageNode are partner nodes in both) but QwenImageEditApi, which only 0.33.0 has: the Qwen Image 3
    Edit template is skipped on 0.3.75, saying why (ONLY_IN_0_33)."""
    _object_info(comfyui, name)
    prompt = api_twin(name)
    for node in prompt.values():
        if node["class_type"] == "IdentityProfileLoad":
            node["inputs"]["profile"] = UNTRAINED
    downloads = {m["name"] for node in _nodes(name) for m in node.get("properties", {}).get("models", [])}
    try:
        run = comfyui.client.run(prompt, timeout=120)
    except PromptRejected as rejected:
        errors = [
            (found["class_type"], error["type"], error["extra_info"].get("received_value"), error["details"])
            for found in rejected.body["node_errors"].values()
            for error in found["errors"]
        ]
        assert errors, rejected.body
        for node_type, kind, value, details in errors:
            missing_file = kind == "value_not_in_list" and value in downloads
            missing_key = node_type == "IdentityBaseModelSelect" and "no API key for" in details
            assert missing_file or missing_key, (node_type, kind, details)
        return
    assert not downloads, f"{name} loads {sorted(downloads)}, which are not installed here, yet it was queued"
    assert run.status == "error" and run.error["node_type"] == "IdentityProfileLoad", run.error
    assert UNTRAINED in run.error["exception_message"]


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
    run = comfyui.client.run(on_fixtures(api_twin("score_and_rank_batch")))
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
    run = comfyui.client.run(on_fixtures(api_twin("score_group_photo_two_profiles")))
    assert run.status == "success", run.error
    text = next(o["text"][0] for o in run.outputs.values() if "text" in o)
    report = json.loads(text)
    names = report["profiles"]
    assigned = [names.get(f["profile_id"]) for f in report["images"][0]["faces"]]
    assert assigned == ["Joe Biden", "Barack Obama", None], report
    assert report["images"][0]["subjects"] and report["images"][0]["score"] > 0.5

    # As shipped, the group template scores the sample photo: six people, none of them a trained profile.
    run = comfyui.client.run(api_twin("score_group_photo_two_profiles"))
    assert run.status == "success", run.error
    faces = json.loads(next(o["text"][0] for o in run.outputs.values() if "text" in o))["images"][0]["faces"]
    assert len(faces) == 6 and [f["profile_id"] for f in faces] == [None] * 6, faces


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
