"""The closed-model nodes in the real ComfyUI, pointed at the fake providers through the keys file."""

from __future__ import annotations

import json
import os
import time

import pytest
from comfyui import Listener, PromptRejected, api_twin, on_fixtures
from conftest import needs_faces

from identity.remote.keys import KEY_VARIABLES
from identity.remote.models import FACTS_FILE, list_prices

REMOTE_NODES = {
    "IdentityBaseModelSelect": ("Base Model Select", ["IDENTITY_BASE_MODEL"]),
    "IdentityConditionRemote": ("Identity Condition (remote)", ["IDENTITY_REMOTE"]),
    "IdentityGenerate": ("Identity Generate", ["IMAGE", "FLOAT", "STRING"]),
    "IdentityEdit": ("Identity Edit", ["IMAGE", "FLOAT", "STRING"]),
    "IdentityEnhance": ("Identity Enhance", ["IMAGE", "FLOAT", "STRING"]),
    "IdentityRemix": ("Identity Remix", ["IMAGE", "FLOAT", "STRING"]),
}


#: The paid nodes and the operation each sends.
PAID = {"IdentityGenerate": "generate", "IdentityEdit": "edit", "IdentityEnhance": "enhance", "IdentityRemix": "remix"}


def test_remote_nodes_are_listed_and_no_widget_takes_a_key(comfyui):
    info = comfyui.client.object_info()
    for node_id, (display, outputs) in REMOTE_NODES.items():
        assert info[node_id]["display_name"].startswith(display) and info[node_id]["output"] == outputs
    for node in info.values():
        if node["python_module"] == "custom_nodes.identity-layer":
            names = [n for group in node["input"].values() for n in group]
            assert not [n for n in names if "key" in n.lower() or "token" in n.lower()], (node["name"], names)
    models = info["IdentityBaseModelSelect"]["input"]["required"]["model"][1]["options"]
    assert models[:5] == ["nb2", "gpt-image-2", "qwen-image-2", "flux-2", "reve"]


def test_paid_nodes_show_the_price_per_image_from_models_json_in_a_menu_of_their_own(comfyui):
    info = comfyui.client.object_info()
    nb2 = json.loads(FACTS_FILE.read_text())["models"]["nb2"]["prices"]["usd"]
    for node_id, operation in PAID.items():
        spans = [span for span in list_prices(operation).values() if span]
        price = f"${min(s[0] for s in spans):.2f}–{max(s[1] for s in spans):.2f}/image"
        assert info[node_id]["display_name"] == f"{REMOTE_NODES[node_id][0]} (paid API, {price})"
        if operation != "enhance":  # enhance runs at 2K only
            assert f"nb2 ${min(nb2.values()):.3f}–{max(nb2.values()):.3f};" in info[node_id]["description"]
    for node_id in REMOTE_NODES:
        assert info[node_id]["category"] == "identity/paid API (your keys)" and not info[node_id]["api_node"]
    prompt = info["IdentityGenerate"]["input"]["required"]["prompt"][1]
    assert prompt["default"] == "" and "[[barack-obama]]" in prompt["placeholder"], "no untrained [[alice]]"


@needs_faces
def test_a_missing_key_is_named_when_the_prompt_is_queued_before_any_call(comfyui, remote):
    """Base Model Select checks its provider's key at queue time: ComfyUI refuses the prompt, naming the
    environment variables and the keys file, and nothing is sent."""
    if any(os.environ.get(v) for v in KEY_VARIABLES["gemini"]):
        pytest.skip("a Gemini key is set in this environment")
    remote.reset()
    keys = comfyui.user / "identity_layer" / "keys.json"
    saved = keys.read_text()
    keys.write_text(json.dumps({k: v for k, v in json.loads(saved).items() if k not in KEY_VARIABLES["gemini"]}))
    try:
        with pytest.raises(PromptRejected) as rejected:
            comfyui.client.queue(api_twin("remote_generate_portrait_nb2"))
    finally:
        keys.write_text(saved)
    errors = rejected.value.body["node_errors"]
    [(node, error)] = errors.items()
    assert error["class_type"] == "IdentityBaseModelSelect", errors
    details = error["errors"][0]["details"]
    assert "no API key for gemini: set GOOGLE_API_KEY or GEMINI_API_KEY" in details and "keys.json" in details
    assert remote.requests == [], "a provider was called"


def _run(comfyui, prompt):
    run = comfyui.client.run(prompt)
    assert run.status == "success", run.error
    badges = next(o["identity_scores"] for o in run.outputs.values() if "identity_scores" in o)
    report = json.loads(next(o["text"][0] for o in run.outputs.values() if "text" in o))
    saved = [i for o in run.outputs.values() for i in o.get("images", []) if i["type"] == "output"]
    return badges, report, saved


@needs_faces
def test_generate_a_portrait_on_nb2(comfyui, remote):
    remote.reset(faults=["stranger"])
    badges, report, saved = _run(comfyui, api_twin("remote_generate_portrait_nb2"))
    assert report["model"] == "nb2" and report["subjects"] and list(report["subjects"].values()) == ["Barack Obama"]
    assert report["images_received"] == 3 and report["rerolls"] == 1, "the stranger was re-rolled"
    assert all(o["passed"] for o in report["outputs"]) and len(saved) == 2
    assert [b["subjects"]["Barack Obama"] > 0.5 for b in badges] == [True, True]
    sent = remote.posts("gemini")[0].json["contents"][0]["parts"][-1]["text"]
    assert "Barack Obama (the person in images 1, 2, 3 and 4)" in sent


@needs_faces
def test_edit_a_group_photo_with_two_profiles_on_gpt_image_2(comfyui, remote):
    remote.reset()
    badges, report, saved = _run(comfyui, on_fixtures(api_twin("remote_edit_group_photo_gpt_image_2")))
    assert report["model"] == "gpt-image-2" and report["quality"] == "medium"
    assert sorted(report["subjects"].values()) == ["Barack Obama", "Joe Biden"]
    assert report["outputs"][0]["passed"] and len(saved) == 1
    form = remote.posts("openai")[0].form
    assert form["quality"] == "medium" and form["prompt"].startswith("Image 1 is the photo to edit.")


@needs_faces
def test_enhance_on_nb2(comfyui, remote):
    remote.reset()
    badges, report, saved = _run(comfyui, on_fixtures(api_twin("remote_enhance_nb2")))
    assert report["operation"] == "enhance" and report["resolution"] == "2K" and report["outputs"][0]["passed"]


@needs_faces
def test_remix_node(comfyui, remote):
    remote.reset()
    prompt = on_fixtures(api_twin("remote_enhance_nb2"))
    enhance_id = next(k for k, n in prompt.items() if n["class_type"] == "IdentityEnhance")
    node = prompt[enhance_id]
    image = node["inputs"].pop("image")
    prompt["90"] = {"class_type": "LoadImage", "inputs": {"image": "identity/score/rose2.jpg"}}
    node.update(class_type="IdentityRemix")
    node["inputs"].update(image=image, style_reference=["90", 0], prompt="as an oil painting")
    bm = next(n for n in prompt.values() if n["class_type"] == "IdentityBaseModelSelect")
    bm["inputs"].update(model="reve", resolution="1K")
    badges, report, _ = _run(comfyui, prompt)
    assert report["operation"] == "remix" and report["model"] == "reve" and report["outputs"][0]["passed"]
    assert remote.posts("reve")[0].path == "/v1/image/remix"


def refused_before_any_call(comfyui, remote, node: str, inputs: dict, *words: str) -> None:
    """The portrait example with `inputs` changed on its `node` fails with `words`, and no provider was called."""
    remote.reset()
    prompt = api_twin("remote_generate_portrait_nb2")
    next(n for n in prompt.values() if n["class_type"] == node)["inputs"].update(inputs)
    run = comfyui.client.run(prompt)
    assert run.status == "error", "the run should have been refused"
    for word in words:
        assert word in run.error["exception_message"], (word, run.error["exception_message"])
    assert remote.requests == [], "a provider was called"


@needs_faces
@pytest.mark.parametrize(
    "change,message",
    [
        ({"model": "reve", "resolution": "2K"}, "reve does not offer resolution '2K'; allowed resolutions: 1K"),
        ({"model": "nb2", "quality": "high"}, "quality applies only to gpt-image-2"),
    ],
)
def test_invalid_combinations_fail_before_any_call(comfyui, remote, change, message):
    refused_before_any_call(comfyui, remote, "IdentityBaseModelSelect", change, message)


@needs_faces
def test_an_unknown_person_in_the_prompt_fails_before_any_call(comfyui, remote):
    refused_before_any_call(
        comfyui,
        remote,
        "IdentityGenerate",
        {"prompt": "[[kamala-harris]] waves"},
        "[[kamala-harris]], which is not among the supplied profiles",
    )


@needs_faces
def test_progress_text_shows_status_time_and_cost_and_cancel_interrupts(comfyui, remote):
    remote.reset(delay=1.5)
    prompt = api_twin("remote_generate_portrait_nb2")
    node = next(k for k, n in prompt.items() if n["class_type"] == "IdentityGenerate")
    with Listener(comfyui) as heard:
        run = comfyui.client.run(prompt)
    assert run.status == "success", run.error
    texts = [e["text"] for e in heard.events if e.get("node") == node and "text" in e]
    assert any("Time elapsed:" in t and "Cost so far: $" in t for t in texts), texts

    remote.reset(delay=20)
    with Listener(comfyui) as heard:
        prompt_id = comfyui.client.queue(
            prompt | {node: {**prompt[node], "inputs": {**prompt[node]["inputs"], "seed": 99}}}
        )
        heard.wait_for_text(node, "waiting for")
        started = time.monotonic()
        comfyui.client.request("/interrupt", {})
        run = comfyui.client.wait(prompt_id)
    assert time.monotonic() - started < 5, "the waiting request was cancelled, not waited out"
    assert any(event == "execution_interrupted" for event, _ in run.messages), run.messages


@needs_faces
def test_a_key_echoed_by_a_proxy_reaches_neither_the_node_error_nor_history_nor_the_log(comfyui, remote):
    from fake_providers import KEYS

    prompt = api_twin("remote_generate_portrait_nb2")
    generate = next(n for n in prompt.values() if n["class_type"] == "IdentityGenerate")["inputs"]
    generate.update(rerolls=0, seed=4242, num_output_images=1)
    remote.reset(faults=["echo_key_text"])
    failed = comfyui.client.run(prompt)
    assert failed.status == "error" and "[redacted]" in failed.error["exception_message"], failed.error
    generate.update(rerolls=1, seed=4243)
    remote.reset(faults=["echo_key_text"])
    _, report, _ = _run(comfyui, prompt)
    assert "[redacted]" in report["failures"][0]["error"], "report_json keeps the failure, without the key"
    history = json.dumps([comfyui.client.request(f"/history/{r}") for r in (failed.prompt_id,)])
    log = comfyui.log_path.read_text(errors="replace")
    for text in (history, log, json.dumps(report)):
        assert not [
            KEYS["gemini"][i : i + 10] for i in range(len(KEYS["gemini"]) - 9) if KEYS["gemini"][i : i + 10] in text
        ]


@needs_faces
def test_an_unlinked_profile_on_a_phota_model_fails_before_any_call_saying_how_to_link_it(comfyui, remote):
    refused_before_any_call(
        comfyui,
        remote,
        "IdentityBaseModelSelect",
        {"model": "phota/nb2"},
        "not linked to a Phota profile",
        "Identity panel",
        "python -m identity phota-link",
    )


@needs_faces
def test_known_people_switches_telling_outputs_apart_from_the_other_profiles(comfyui, remote):
    """On (the default), each output's person is told apart from everyone in the store (Joe Biden is there): the
    report names the next known person; off, a single-profile check compares nobody else."""
    for known_people, seed in ((True, 11), (False, 12)):
        remote.reset()
        prompt = api_twin("remote_generate_portrait_nb2")
        node = next(n for n in prompt.values() if n["class_type"] == "IdentityGenerate")["inputs"]
        node.update(seed=seed, known_people=known_people, rerolls=0)
        _, report, _ = _run(comfyui, prompt)
        nexts = [o["next"] for o in report["outputs"]]
        if known_people:
            assert nexts and all(n.get(pid, "").startswith("next: ") for n in nexts for pid in report["subjects"]), (
                nexts
            )
        else:
            assert nexts and all(n == {} for n in nexts), nexts
    info = comfyui.client.object_info()
    for node_id in PAID:
        assert info[node_id]["input"]["optional"]["known_people"][1]["default"] is True
