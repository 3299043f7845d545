"""Each provider over real HTTP on 127.0.0.1: the request in its documented format, verified outputs back."""

from __future__ import annotations

import base64
import io
import json

import pytest
from conftest import FAST, face
from fake_providers import KEYS
from PIL import Image

from identity.images import load_image
from identity.remote.models import BASE_MODELS, base_model
from identity.remote.phota_links import PhotaLinks
from identity.remote.runner import RemoteRequest, execute, plan, run


def generate(people, model, keys, embedded, prompt="A portrait of [[barack-obama]] on a beach", outputs=1, **extra):
    request = RemoteRequest(
        operation="generate", model=model, profiles=list(people.values()), prompt=prompt, outputs=outputs, **extra
    )
    return run(request, keys, embedded, policy=FAST)


VENDOR_MODELS = [name for name, model in BASE_MODELS.items() if model.provider != "phota"]  # Phota's five and newer


@pytest.mark.parametrize("model", VENDOR_MODELS)
def test_generate_sends_the_references_and_verifies_the_person(fake, keys, people, embedded, model):
    result = generate(people, model, keys, embedded, outputs=2)
    obama = people["Barack Obama"]
    assert len(result.images) == 2 and all(score > obama.threshold for score in result.scores)
    report = result.report
    assert report["model"] == model and report["subjects"] == {obama.id: "Barack Obama"}
    assert all(o["passed"] and o["scores"][obama.id] > obama.threshold for o in report["outputs"])
    assert report["cost_usd"] > 0
    provider = report["provider"]
    posts = fake.posts(provider)
    per_request = base_model_outputs(model)
    assert len(posts) == 2 // per_request, "one call per image where the provider returns one image per call"
    assert report["references"] == {obama.id: min(4, base_model(model).max_input_images)}


@pytest.mark.parametrize("model", VENDOR_MODELS)
def test_edit_of_a_group_photo_keeps_both_people_on_every_model(fake, keys, people, embedded, model):
    request = RemoteRequest(
        operation="edit",
        model=model,
        profiles=list(people.values()),
        prompt="Give [[barack-obama]] and [[joe-biden]] party hats",
        inputs=[load_image(face("groups/obama_biden_a.jpg"))],
    )
    result = run(request, keys, embedded, policy=FAST)
    check = result.report["outputs"][0]
    assert check["passed"] and set(check["scores"]) == {p.id for p in people.values()}, result.report["failures"]
    sent = fake.posts(base_model(model).provider)[0]
    body = json.dumps(sent.json) if sent.json is not None else json.dumps(sent.form)
    if base_model(model).api_model not in ("", "v2"):
        assert base_model(model).api_model in sent.path + body, "the vendor id of this model is the one sent"


def base_model_outputs(model: str) -> int:
    return min(2, base_model(model).max_outputs_per_request)


def test_gemini_request_format(fake, keys, people, embedded):
    generate(people, "nb2", keys, embedded)
    request = next(r for r in fake.requests if r.provider == "gemini")
    assert request.path == "/v1beta/models/gemini-nano-banana-2.1:generateContent", "never the retired id"
    assert request.headers["x-goog-api-key"] == KEYS["gemini"] and "authorization" not in request.headers
    parts = request.json["contents"][0]["parts"]
    inline = [p["inlineData"] for p in parts if "inlineData" in p]
    assert len(inline) == 4 and all(i["mimeType"] == "image/jpeg" for i in inline)
    Image.open(io.BytesIO(base64.b64decode(inline[0]["data"]))).verify()
    assert [p["text"] for p in parts if "text" in p][:2] == ["Image 1:", "Image 2:"]
    assert parts[-1]["text"].endswith("A portrait of Barack Obama (the person in images 1, 2, 3 and 4) on a beach")
    assert request.json["generationConfig"]["imageConfig"] == {"imageSize": "1K"}


def test_openai_edit_of_a_group_photo_with_two_profiles(fake, keys, people, embedded):
    group = load_image(face("groups/obama_biden_a.jpg"))
    request = RemoteRequest(
        operation="edit",
        model="gpt-image-2",
        profiles=list(people.values()),
        prompt="Give [[barack-obama]] and [[joe-biden]] party hats",
        quality="medium",
        aspect_ratio="3:2",
        inputs=[group],
    )
    result = run(request, keys, embedded, policy=FAST)
    sent = next(r for r in fake.requests if r.provider == "openai")
    assert sent.path == "/v1/images/edits" and sent.headers["authorization"] == f"Bearer {KEYS['openai']}"
    assert sent.form["model"] == "gpt-image-2" and sent.form["quality"] == "medium" and sent.form["size"] == "1248x832"
    assert [f[2] for f in sent.files] == ["image/png"] + ["image/jpeg"] * 6, "the photo first, then 4 + 2 references"
    assert sent.form["prompt"].startswith(
        "Image 1 is the photo to edit. Images 2, 3, 4 and 5 show Barack Obama. Images 6 and 7 show Joe Biden."
    )
    check = result.report["outputs"][0]
    assert check["passed"] and set(check["scores"]) == {p.id for p in people.values()}
    text_in, image_in, image_out, text_out = 200 * 5, 800 * 8, 3500 * 30, 500 * 10  # output text at its own rate
    assert result.report["cost_usd"] == pytest.approx((text_in + image_in + image_out + text_out) / 1e6, rel=1e-3)


def test_edit_references_follow_the_pose_in_the_input(people, embedded):
    from identity.remote import references
    from identity.remote.verify import input_poses

    obama = people["Barack Obama"]
    photo = load_image(face("obama/obama4.jpg"))  # turned about 28 degrees
    target = input_poses(photo, [obama], embedded)[obama.id]
    chosen = references.choose(obama, 2, target)
    yaws = obama.pose[obama.reference_photos][:, 0]
    assert abs(yaws[chosen[0]] - target[0]) == min(abs(yaws - target[0]))


def test_enhance_runs_on_nb2_at_2k_with_one_image(fake, keys, people, embedded):
    request = RemoteRequest(
        operation="enhance",
        model="nb2",
        profiles=[people["Barack Obama"]],
        inputs=[load_image(face("obama/obama4.jpg"))],
        resolution="1K",
    )
    result = run(request, keys, embedded, policy=FAST)
    sent = next(r for r in fake.requests if r.provider == "gemini")
    assert sent.json["generationConfig"]["imageConfig"]["imageSize"] == "2K" and result.report["resolution"] == "2K"
    assert result.report["outputs"][0]["passed"]


@pytest.mark.parametrize("model", ["reve", "nb2"])
def test_remix_keeps_the_person(fake, keys, people, embedded, model):
    photo, style = load_image(face("obama/obama1.jpg")), load_image(face("rose_leslie/rose1.jpg"))
    request = RemoteRequest(
        operation="remix", model=model, profiles=[people["Barack Obama"]], prompt="", inputs=[photo, style]
    )
    result = run(request, keys, embedded, policy=FAST)
    assert result.report["outputs"][0]["passed"]
    if model == "reve":
        sent = next(r for r in fake.requests if r.provider == "reve")
        assert sent.path == "/v1/image/remix" and len(sent.json["reference_images"]) == 6
        assert sent.json["prompt"].startswith("<img>0</img> is the input image and <img>1</img> is the style reference")


def test_bfl_polls_the_returned_url_and_downloads_the_sample(fake, keys, people, embedded):
    result = generate(people, "flux-2", keys, embedded)
    paths = [r.path.split("?")[0] for r in fake.requests if r.provider == "bfl"]
    assert paths[0] == "/v1/flux-2-pro" and paths.count("/v1/get_result") == 4 and paths[-1].startswith("/files/"), (
        "Pending, Reasoning, Generating, then Ready"
    )
    polls = [r for r in fake.requests if r.path.startswith("/v1/get_result")]
    assert all(r.headers.get("x-key") == KEYS["bfl"] for r in polls), "the key goes to the configured host only"
    sent = fake.requests[0].json
    assert sorted(k for k in sent if k.startswith("input_image")) == [
        "input_image",
        "input_image_2",
        "input_image_3",
        "input_image_4",
    ]
    assert result.report["provider_cost"] == [{"cost": 3.0, "input_mp": 1.0, "output_mp": 1.0}]


def test_dashscope_sends_data_urls_and_downloads_result_urls(fake, keys, people, embedded):
    result = generate(people, "qwen-image-2", keys, embedded, outputs=2)
    post = next(r for r in fake.requests if r.provider == "dashscope" and r.json)
    content = post.json["input"]["messages"][0]["content"]
    assert len([c for c in content if "image" in c]) == 3, "qwen-image-2 takes at most 3 images"
    assert post.json["model"] == "qwen-image-2.0-pro" and post.json["parameters"]["n"] == 2
    assert len(result.images) == 2, "both result URLs were downloaded"


def test_phota_sends_the_linked_phota_ids_never_local_ones_and_polls_the_job(fake, keys, people, embedded, tmp_path):
    obama = people["Barack Obama"]
    fake.phota_profiles.update({"phota42": "READY", "ph0bama": "READY"})
    links = PhotaLinks(tmp_path / "phota_links.json")
    links.link(obama.id, "ph0bama")
    request = RemoteRequest(
        operation="generate",
        model="phota/gpt-image-2",
        profiles=[obama],
        prompt="[[phota42]] and [[barack-obama]] at a desk",
        quality="high",
        outputs=2,
    )
    result = run_planned(request, keys, embedded, links)
    sent = fake.posts("phota")[0]
    assert sent.path == "/v1/phota/generate" and sent.headers["x-api-key"] == KEYS["phota"]
    assert sent.json["base_model"] == "gpt-image-2" and sent.json["quality"] == "high"
    assert sent.json["prompt"] == "[[phota42]] and [[ph0bama]] at a desk", "local refs become the linked Phota ids"
    assert obama.id not in json.dumps(sent.json) and "barack-obama" not in json.dumps(sent.json)
    assert result.report["provider_profiles"] == ["ph0bama", "phota42"]
    assert result.report["subjects"] == {obama.id: "Barack Obama"} and len(result.images) == 2
    checked = [r.path for r in fake.received("phota") if r.path.endswith("/status")]
    assert sorted(checked) == ["/v1/phota/profiles/ph0bama/status", "/v1/phota/profiles/phota42/status"]


def run_planned(request, keys, engine, links):
    import asyncio

    return asyncio.run(execute(plan(request, keys, engine, links), engine, FAST))
