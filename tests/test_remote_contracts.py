"""The vendors' own SDKs are the oracle: the same logical request, sent by the official SDK and by our client to
the same fake, must arrive the same (path, method, auth header, body fields and values, multipart field names),
and every answer the fakes give must parse with the SDK's own response types. Phota has no Python SDK: its fake
checks every request, and every answer it gives, against Phota's OpenAPI document (tests/data/phota/)."""

from __future__ import annotations

import asyncio
import base64
import re

import httpx
import pytest
from conftest import FAST, T1
from fake_providers import KEYS, PHOTA

from identity.images import load_image
from identity.remote.call import Call
from identity.remote.http import Transport
from identity.remote.models import base_model
from identity.remote.providers import PROVIDERS
from identity.remote.sizes import fit, ratio_of

openai = pytest.importorskip("openai", reason="the OpenAI SDK is a test dependency (requirements-test.txt)")
genai = pytest.importorskip("google.genai", reason="google-genai is a test dependency (requirements-test.txt)")
dashscope = pytest.importorskip("dashscope", reason="dashscope is a test dependency (requirements-test.txt)")
reve = pytest.importorskip("reve", reason="reve (Reve's own SDK) is a test dependency (requirements-test.txt)")
from google.genai import types as genai_types  # noqa: E402


@pytest.fixture(scope="module")
def photo() -> bytes:
    return fit(load_image(T1)[:, :600], {"max_side": 600})  # a real photo, as our client would send it


def ours(fake, keys, provider: str, call: Call):
    """Send `call` with our client; returns what the fake recorded for the call (its POST)."""

    async def send():
        async with httpx.AsyncClient() as client:
            return await PROVIDERS[provider].run(call, Transport(provider, client, FAST), keys.credentials(provider))

    fake.reset()
    generated = asyncio.run(send())
    assert generated and all(g.image for g in generated)
    return fake.posts(provider)[0]


def edit_call(model: str, inputs: list[bytes], resolution="1K", aspect_ratio="3:2", quality="auto", outputs=1) -> Call:
    return Call(
        operation="edit",
        model=base_model(model),
        resolution=resolution,
        aspect_ratio=aspect_ratio,
        quality=quality,
        prompt="Put a red hat on everyone.",
        subjects=[],
        references=[],
        inputs=inputs,
        outputs=outputs,
        seed=None,
        ratio=ratio_of(aspect_ratio, []),
    )


@pytest.mark.parametrize(
    "model,resolution,ratio,quality",
    [
        ("gpt-image-2", "2K", "16:9", "medium"),
        ("gpt-image-2", "4K", "1:1", "high"),
        ("gpt-image-2.5-sunburst", "2K", "3:2", "xhigh"),
        ("gpt-image-2.5-flare", "4K", "16:9", "max"),
    ],
)
def test_openai_edit_matches_the_openai_sdk(fake, keys, photo, model, resolution, ratio, quality):
    sent = ours(fake, keys, "openai", edit_call(model, [photo, photo], resolution, ratio, quality, 2))
    sdk = openai.OpenAI(api_key=KEYS["openai"], base_url=fake.urls["openai"] + "/v1", max_retries=0)
    fake.reset()
    answer = sdk.images.edit(
        model=base_model(model).api_model,
        prompt=sent.form["prompt"],
        n=2,
        size=sent.form["size"],
        quality=quality,
        output_format="png",
        image=[(f[1], f[3], f[2]) for f in sent.files],
    )
    oracle = fake.posts("openai")[0]
    assert (sent.path, oracle.path) == ("/v1/images/edits", "/v1/images/edits")
    assert sent.headers["authorization"] == oracle.headers["authorization"] == f"Bearer {KEYS['openai']}"
    assert sent.form == oracle.form, "every form field and value as the SDK sends them"
    assert [f[:3] for f in sent.files] == [f[:3] for f in oracle.files] and {f[0] for f in sent.files} == {"image[]"}
    assert [f[3] for f in sent.files] == [f[3] for f in oracle.files]
    assert isinstance(answer, openai.types.ImagesResponse) and len(answer.data) == 2 and answer.usage.output_tokens
    width, height = (int(v) for v in sent.form["size"].split("x"))
    if (resolution, ratio) == ("4K", "1:1"):
        assert width * height >= 7_500_000 and (width, height) == (2880, 2880), "4K 1:1 is 8.3 MP, no 2160 cap"


def test_the_openai_fake_refuses_xhigh_on_gpt_image_2_as_the_sdk_documents(fake):
    sdk = openai.OpenAI(api_key=KEYS["openai"], base_url=fake.urls["openai"] + "/v1", max_retries=0)
    fake.reset()
    with pytest.raises(openai.BadRequestError, match="quality"):
        sdk.images.generate(model="gpt-image-2", prompt="a cat", size="1024x1024", quality="xhigh")


def test_openai_generation_and_errors_parse_with_the_sdk(fake, keys):
    call = Call(
        operation="generate",
        model=base_model("gpt-image-2"),
        resolution="1K",
        aspect_ratio="9:16",
        quality="high",
        prompt="A lighthouse.",
        subjects=[],
        references=[],
        inputs=[],
        outputs=1,
        seed=None,
        ratio=ratio_of("9:16", []),
    )
    sent = ours(fake, keys, "openai", call)
    sdk = openai.OpenAI(api_key=KEYS["openai"], base_url=fake.urls["openai"] + "/v1", max_retries=0)
    fake.reset()
    sdk.images.generate(**{k: v for k, v in sent.json.items()})
    oracle = fake.posts("openai")[0]
    assert sent.path == oracle.path == "/v1/images/generations" and sent.json == oracle.json
    assert sent.json["size"] == "768x1360", "1K 9:16 is 1,044,480 px, above gpt-image-2's 655,360 minimum"
    fake.reset(faults=["moderation"])
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.images.generate(**sent.json)
    assert refused.value.code == "moderation_blocked"
    fake.reset()
    with pytest.raises(openai.BadRequestError, match="655,360"):
        sdk.images.generate(**{**sent.json, "size": "1024x576"})  # what the old client asked for at 1K 16:9


@pytest.mark.parametrize("model,resolution", [("nb2", "2K"), ("nano-banana-pro", "4K"), ("nb2-lite", "1K")])
def test_gemini_matches_google_genai(fake, keys, photo, model, resolution):
    sent = ours(fake, keys, "gemini", edit_call(model, [photo], resolution, "16:9"))
    parts = sent.json["contents"][0]["parts"]
    sdk = genai.Client(
        api_key=KEYS["gemini"], http_options=genai_types.HttpOptions(base_url=fake.urls["gemini"], api_version="v1beta")
    )
    sdk_parts = [
        genai_types.Part.from_text(text=p["text"])
        if "text" in p
        else genai_types.Part.from_bytes(
            data=base64.b64decode(p["inlineData"]["data"]), mime_type=p["inlineData"]["mimeType"]
        )
        for p in parts
    ]
    level = base_model(model).options.get("thinking_level")
    config = genai_types.GenerateContentConfig(
        response_modalities=["IMAGE"],
        image_config=genai_types.ImageConfig(image_size=resolution, aspect_ratio="16:9"),
        thinking_config=genai_types.ThinkingConfig(thinking_level=level) if level else None,
    )
    fake.reset()
    answer = sdk.models.generate_content(
        model=base_model(model).api_model, contents=[genai_types.Content(role="user", parts=sdk_parts)], config=config
    )
    oracle = fake.posts("gemini")[0]
    assert sent.path == oracle.path == f"/v1beta/models/{base_model(model).api_model}:generateContent"
    assert sent.headers["x-goog-api-key"] == oracle.headers["x-goog-api-key"] and "authorization" not in sent.headers
    assert _decoded(sent.json) == _decoded(oracle.json), "the same JSON, base64 alphabets aside"
    assert isinstance(answer, genai_types.GenerateContentResponse)
    assert answer.candidates[0].content.parts[0].inline_data.data[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("retired", ["gemini-3.1-flash-image-preview", "gemini-3.1-flash-image"])
def test_the_retired_gemini_ids_are_refused_as_google_refuses_them(fake, keys, retired):
    sdk = genai.Client(
        api_key=KEYS["gemini"], http_options=genai_types.HttpOptions(base_url=fake.urls["gemini"], api_version="v1beta")
    )
    with pytest.raises(genai.errors.ClientError) as refused:
        sdk.models.generate_content(model=retired, contents="a cat")
    assert refused.value.code == 404 and refused.value.status == "NOT_FOUND"
    assert retired not in {m.name.removeprefix("models/") for m in sdk.models.list()}, "nor listed"


def test_the_models_listings_parse_with_the_sdks_and_match_what_the_check_reads(fake, keys):
    from identity.remote.providers import gemini as ours_gemini
    from identity.remote.providers import openai as ours_openai

    async def served(module, provider):
        async with httpx.AsyncClient() as client:
            return await module.served(Transport(provider, client, FAST), keys.credentials(provider))

    google = genai.Client(
        api_key=KEYS["gemini"], http_options=genai_types.HttpOptions(base_url=fake.urls["gemini"], api_version="v1beta")
    )
    listed = {m.name.removeprefix("models/") for m in google.models.list(config={"page_size": 1000})}
    assert asyncio.run(served(ours_gemini, "gemini")) == listed == fake.listed["gemini"], "every page read"
    sdk = openai.OpenAI(api_key=KEYS["openai"], base_url=fake.urls["openai"] + "/v1", max_retries=0)
    assert asyncio.run(served(ours_openai, "openai")) == {m.id for m in sdk.models.list()} == fake.listed["openai"]


def _decoded(body):
    """The request as proto JSON means it: keys in lowerCamelCase (parsers accept the proto field name too, and
    google-genai sends `thinking_level`), inlineData decoded (either base64 alphabet is accepted)."""
    if isinstance(body, list):
        return [_decoded(v) for v in body]
    if not isinstance(body, dict):
        return body
    camel = {re.sub(r"_([a-z])", lambda m: m[1].upper(), k): _decoded(v) for k, v in body.items()}
    if isinstance(camel.get("data"), str) and "mimeType" in camel:
        camel["data"] = base64.urlsafe_b64decode(camel["data"].replace("+", "-").replace("/", "_")).hex()
    return camel


@pytest.mark.parametrize("model,size", [("qwen-image-2", "1168*880"), ("qwen-image-3", "1168*880")])
def test_dashscope_matches_the_dashscope_sdk(fake, keys, photo, monkeypatch, model, size):
    call = edit_call(model, [photo], "1K", "4:3", outputs=2)
    call.seed = 7
    sent = ours(fake, keys, "dashscope", call)
    monkeypatch.setattr(dashscope, "base_http_api_url", fake.urls["dashscope"] + "/api/v1")
    body = sent.json
    fake.reset()
    answer = dashscope.MultiModalConversation.call(
        api_key=KEYS["dashscope"], model=body["model"], messages=body["input"]["messages"], **body["parameters"]
    )
    oracle = fake.posts("dashscope")[0]
    assert sent.path == oracle.path == "/api/v1/services/aigc/multimodal-generation/generation"
    assert sent.headers["authorization"] == oracle.headers["authorization"] == f"Bearer {KEYS['dashscope']}"
    assert sent.json == oracle.json
    assert (
        body["parameters"]["size"] == size
        and body["parameters"]["n"] == 2
        and body["model"] == base_model(model).api_model
    )
    assert answer.status_code == 200 and len(answer.output.choices[0].message.content) == 2
    fake.reset(faults=["moderation_algo"])
    refused = dashscope.MultiModalConversation.call(
        api_key=KEYS["dashscope"], model=body["model"], messages=body["input"]["messages"], **body["parameters"]
    )
    assert refused.status_code == 400 and refused.code == "InternalError.Algo.DataInspectionFailed"


@pytest.mark.parametrize("operation", ["generate", "edit"])
def test_reve_v2_matches_reves_own_sdk(fake, keys, photo, operation):
    from reve.v2.image import create
    from reve.v2.types import ImageInput

    call = edit_call("reve-v2", [photo], aspect_ratio="16:9")
    if operation == "generate":
        call.operation, call.inputs = "generate", []
    sent = ours(fake, keys, "reve", call)
    fake.reset()
    client = reve.ReveClient(api_token=KEYS["reve"], api_url=fake.urls["reve"])
    references = [ImageInput(data=base64.b64decode(r["data"])) for r in sent.json.get("references", [])]
    answer = create(sent.json["prompt"], references=references or None, aspect_ratio="16:9", client=client)
    oracle = fake.posts("reve")[0]
    assert sent.path == oracle.path == "/v2/image/create"
    assert sent.headers["authorization"] == oracle.headers["authorization"] == f"Bearer {KEYS['reve']}"
    assert sent.json == oracle.json and answer.image_bytes[:8] == b"\x89PNG\r\n\x1a\n" and answer.request_id
    assert ("references" in sent.json) == (operation == "edit")


def test_reve_remix_matches_reves_own_sdk_and_its_answers_parse_as_images_with_headers(fake, keys, photo):
    from reve.v1.image import remix

    call = edit_call("reve", [photo, photo], aspect_ratio="3:2")  # two inputs: the remix endpoint
    sent = ours(fake, keys, "reve", call)
    fake.reset()
    client = reve.ReveClient(api_token=KEYS["reve"], api_url=fake.urls["reve"])
    images = [base64.b64decode(i) for i in sent.json["reference_images"]]
    answer = remix(sent.json["prompt"], images, aspect_ratio="3:2", client=client)  # asks for image/png bytes
    oracle = fake.posts("reve")[0]
    assert sent.path == oracle.path == "/v1/image/remix" and sent.json == oracle.json
    assert answer.request_id and answer.credits_used
    fake.reset(faults=["moderation"])
    with pytest.raises(reve.exceptions.ReveContentViolationError):
        remix(sent.json["prompt"], images, client=client)


@pytest.mark.parametrize(
    "operation,model",
    [("generate", "phota/gpt-image-2"), ("edit", "phota/flux-2"), ("enhance", "phota/nb2"), ("remix", "phota/nb2")],
)
def test_every_phota_request_conforms_to_photas_openapi_document(fake, keys, photo, operation, model):
    fake.phota_profiles["ph0bama"] = "READY"
    inputs = {"generate": [], "edit": [photo], "enhance": [photo], "remix": [photo, photo]}[operation]
    call = Call(
        operation=operation,
        model=base_model(model),
        resolution="1K" if operation in ("generate", "edit") else "2K",
        aspect_ratio="auto",
        quality="high" if model == "phota/gpt-image-2" else "auto",
        prompt="[[ph0bama]] at the beach",
        subjects=[],
        references=[],
        inputs=inputs,
        outputs=2,
        seed=None,
        external_ids=["ph0bama"],
        ratio=None,
        request_id="req-123",
    )
    sent = ours(fake, keys, "phota", call)  # the fake refused it otherwise, and checked its own answers (conftest)
    assert PHOTA.request_problems("POST", sent.path, sent.json) == []
    assert sent.json["client_request_id"] == "req-123" and sent.json["async"] is True
    if operation == "generate":
        assert "profile_ids" not in sent.json, "/generate takes its profiles from [[id]] in the prompt only"
    if operation in ("enhance", "remix"):
        assert not {"base_model", "aspect_ratio", "resolution"} & set(sent.json), "Phota pins these to nb2 at 2K"


@pytest.mark.parametrize(
    "endpoint,body,field",
    [
        ("generate", {"base_model": "dall-e"}, "base_model"),
        ("generate", {"num_output_images": 5}, "num_output_images"),
        ("generate", {"profile_ids": ["ph0bama"]}, "profile_ids"),  # /generate takes no profile_ids
        ("generate", {"response_mode": "bytes"}, "response_mode"),  # async needs urls
        ("generate", {"callback_url": "http://example.com/done"}, "callback_url"),  # HTTPS only
        ("edit", {"images": ["aGk="] * 11}, "images"),
        ("edit", {"aspect_ratio": "21:9"}, "aspect_ratio"),
        ("enhance", {"image": "aGk=", "base_model": "nb2"}, "base_model"),  # pinned to nb2
        ("remix", {"input_image": "aGk=", "reference_image": "aGk=", "resolution": "4K"}, "resolution"),
        ("remix", {"input_image": "aGk="}, "reference_image"),
    ],
)
def test_the_phota_fake_refuses_what_photas_document_refuses_in_fastapis_shape(fake, endpoint, body, field):
    fake.reset()
    base = {"async": True, "response_mode": "urls", "num_output_images": 1, "output_format": "png"}
    base = {**base, "prompt": "x"} if endpoint in ("generate", "edit") else base
    answer = httpx.post(
        f"{fake.urls['phota']}/v1/phota/{endpoint}",
        json={**base, **body},
        timeout=30,
        headers={"x-api-key": KEYS["phota"]},
    )
    assert answer.status_code == 422, answer.text
    assert PHOTA.response_problems("POST", f"/v1/phota/{endpoint}", 422, answer.json()) == []
    assert [item["loc"] for item in answer.json()["detail"]] == [["body", field]]
    assert fake.charged == 0


def test_photas_openapi_document_is_valid_and_its_validation_errors_are_fastapis():
    """Phota's API is a FastAPI service (its operationIds and its APIKeyHeader scheme are FastAPI's), so the
    document's 422 schemas must be the ones FastAPI itself generates, and the document must be valid OpenAPI 3.1."""
    spec_validator = pytest.importorskip("openapi_spec_validator", reason="a test dependency (requirements-test.txt)")
    fastapi = pytest.importorskip("fastapi", reason="installed with dashscope (requirements-test.txt)")
    spec_validator.validate(PHOTA.document)
    app = fastapi.FastAPI()
    app.post("/v1/phota/edit")(lambda prompt: None)
    generated = app.openapi()["components"]["schemas"]
    for name in ("HTTPValidationError", "ValidationError"):
        assert PHOTA.document["components"]["schemas"][name] == generated[name], f"{name} differs from FastAPI's"
    if "x-assembled" in PHOTA.document["info"]:  # ours, not Phota's own file: every part says where it came from
        parts = [
            *(op for item in PHOTA.document["paths"].values() for op in item.values()),
            *(schema for name, schema in PHOTA.document["components"]["schemas"].items() if "Validation" not in name),
        ]
        sources = [
            source
            for part in parts
            for source in (part["x-source"] if isinstance(part["x-source"], list) else [part["x-source"]])
        ]
        assert all(s["url"].startswith("https://") and s["checked"] and s["how"] for s in sources)


def test_the_referee_catches_an_answer_outside_the_document():
    status = "/v1/phota/profiles/p1/status"
    assert PHOTA.response_problems("GET", status, 200, {"profile_id": "p1", "status": "READY", "message": ""}) == []
    assert PHOTA.response_problems("GET", status, 200, {"profile_id": "p1", "status": "TRAINING", "message": ""})
    assert PHOTA.response_problems("GET", status, 200, {"profile_id": "p1", "status": "READY"}), "message is required"
    assert PHOTA.response_problems("POST", "/v1/phota/edit", 202, {"job_id": "j1"}), "a JobHandle has a poll_url"
    assert PHOTA.response_problems("POST", "/v1/phota/edit", 429, {}), "the document declares no 429"


def test_the_client_knows_exactly_the_profile_states_phota_documents():
    from identity.remote.providers.phota import PROFILE_STATES

    documented = PHOTA.document["components"]["schemas"]["ProfileStatusResponse"]["properties"]["status"]["enum"]
    assert list(PROFILE_STATES) == documented


@pytest.mark.parametrize(
    "fault", [None, "moderation", "no_image", "inline_no_data", "error_string", "503", "thought", "deprecated"]
)
def test_every_gemini_answer_of_the_fake_parses_with_google_genai_types(fake, fault):
    fake.reset(faults=[fault] if fault else [])
    answer = httpx.post(
        f"{fake.urls['gemini']}/v1beta/models/{base_model('nb2').api_model}:generateContent",
        headers={"x-goog-api-key": KEYS["gemini"]},
        timeout=30,
        json={
            "contents": [{"role": "user", "parts": [{"text": "a cat"}]}],
            "generationConfig": {"responseModalities": ["IMAGE"]},
        },
    )
    if answer.status_code == 200:
        parsed = genai_types.GenerateContentResponse.model_validate(answer.json())
        thoughts = [p for p in parsed.candidates[0].content.parts if p.thought]
        assert len(thoughts) == (fault == "thought"), "the SDK reads the draft as a thought part"
    elif fault != "error_string":  # a string `error` is the hostile case: the SDK cannot read it either
        with pytest.raises(genai.errors.APIError) as error:
            genai.errors.APIError.raise_for_response(answer)
        assert error.value.code == answer.status_code and error.value.status


@pytest.mark.parametrize("fault", [None, "moderation", "503"])
def test_every_openai_answer_of_the_fake_parses_with_openai_types(fake, fault):
    fake.reset(faults=[fault] if fault else [])
    answer = httpx.post(
        f"{fake.urls['openai']}/v1/images/generations",
        timeout=30,
        headers={"authorization": f"Bearer {KEYS['openai']}"},
        json={"model": "gpt-image-2", "prompt": "a cat", "n": 1, "size": "1024x1024", "quality": "low"},
    )
    if answer.status_code == 200:
        openai.types.ImagesResponse.model_validate(answer.json())
    else:
        error = openai.OpenAI(api_key="x")._make_status_error_from_response(answer)
        assert isinstance(error, openai.APIStatusError) and error.status_code == answer.status_code
