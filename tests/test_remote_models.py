"""Base models as data: every combination a model cannot take is refused before any network call."""

from __future__ import annotations

import pytest

from identity.errors import InvalidRequest
from identity.remote.models import BASE_MODELS, DEFAULT_MODEL, base_model


@pytest.mark.parametrize(
    "model,operation,resolution,ratio,quality,outputs,allowed",
    [
        ("nb2", "generate", "8K", "1:1", "auto", 1, "1K, 2K, 4K"),
        ("qwen-image-2", "generate", "4K", "1:1", "auto", 1, "1K, 2K"),
        ("flux-2", "generate", "4K", "1:1", "auto", 1, "1K, 2K"),
        ("reve", "generate", "2K", "1:1", "auto", 1, "allowed resolutions: 1K"),
        ("nb2", "generate", "1K", "1:1", "high", 1, "quality applies only to gpt-image-2"),
        ("gpt-image-2", "generate", "1K", "1:1", "ultra", 1, "auto, low, medium, high"),
        ("gpt-image-2", "enhance", "2K", "auto", "auto", 1, "generate, edit, remix"),
        ("reve", "generate", "1K", "21:9", "auto", 1, "16:9, 9:16"),
        ("nb2", "generate", "1K", "1:1", "auto", 5, "1 to 4"),
        ("phota/reve", "remix", "1K", "auto", "auto", 1, "generate, edit"),
    ],
)
def test_invalid_combinations_name_the_allowed_values(model, operation, resolution, ratio, quality, outputs, allowed):
    with pytest.raises(InvalidRequest, match=allowed.replace("(", r"\(")):
        base_model(model).validate(operation, resolution, ratio, quality, outputs)


def test_the_brief_s_models_are_offered_and_each_takes_exactly_what_it_lists():
    assert {"nb2", "gpt-image-2", "qwen-image-2", "flux-2", "reve"} <= set(BASE_MODELS) and DEFAULT_MODEL == "nb2"
    assert any(name.startswith("phota/") for name in BASE_MODELS)
    for name, spec in BASE_MODELS.items():
        operation = next(o for o in spec.operations if o not in spec.pinned)
        for resolution in ("1K", "2K", "4K", "8K"):
            offered = resolution in spec.resolutions
            try:
                assert spec.validate(operation, resolution, "auto", "auto", 1) == resolution and offered, (
                    name,
                    resolution,
                )
            except InvalidRequest as exc:
                assert not offered and ", ".join(spec.resolutions) in str(exc), (name, resolution, exc)
        for quality in ("low", "high"):
            try:
                spec.validate(operation, spec.resolutions[0], "auto", quality, 1)
                assert quality in spec.qualities, (name, quality)
            except InvalidRequest:
                assert quality not in spec.qualities, (name, quality)


def test_enhance_is_pinned_to_2k_on_nb2():
    assert base_model("nb2").validate("enhance", "1K", "auto", "auto", 1) == "2K"
    assert base_model("nb2").validate("generate", "1K", "auto", "auto", 1) == "1K"


def test_unknown_model():
    with pytest.raises(InvalidRequest, match="unknown base model 'dall-e'; choose one of: nb2"):
        base_model("dall-e")


# ----- the facts as data, with their sources -------------------------------------------------------------------

import datetime  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import typing  # noqa: E402
from pathlib import Path  # noqa: E402

from identity.remote.models import FACTS_FILE, apply_overrides, registry  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def test_every_fact_names_its_source_and_the_day_it_was_checked():
    facts = json.loads(FACTS_FILE.read_text())
    entries = {
        **{f"provider {k}": v for k, v in facts["providers"].items()},
        **{f"model {k}": v for k, v in facts["models"].items()},
        "phota": facts["phota"],
    }
    for name, entry in entries.items():
        covered = set(entry["sources"])
        facts_here = (
            {"timeouts_s", "inputs"}
            if name.startswith("provider")
            else {"limits", "prices"} | ({"api_model"} if name.startswith("model") else set())
        )
        assert facts_here <= covered, f"{name}: no source for {facts_here - covered}"
        for fact, source in entry["sources"].items():
            assert re.match(r"https://[a-z0-9.-]+\.[a-z]+/", source["url"]), (name, fact)
            assert datetime.date.fromisoformat(source["checked"]) <= datetime.date.today(), (name, fact)


def test_the_nb2_id_is_one_google_genai_knows_and_the_retired_preview_is_not():
    genai_models = pytest.importorskip(
        "google.genai._gaos.types.interactions.model", reason="google-genai is a test dependency"
    )
    known = {value for arg in typing.get_args(genai_models.Model) for value in typing.get_args(arg)}
    assert base_model("nb2").api_model in known
    assert (
        "gemini-3.1-flash-image-preview" not in known
        and base_model("nb2").api_model != "gemini-3.1-flash-image-preview"
    )


def test_list_prices_follow_the_vendors_pricing():
    rates = base_model("gpt-image-2").prices["usd_per_million"]
    assert (rates["image_in"], rates["image_out"]) == (8.0, 30.0), "gpt-image-2, not gpt-image-1's 10/40"
    flux = base_model("flux-2")
    assert flux.estimated_cost("1K", 1) == pytest.approx(0.03 + 0.015 * 0.048576, abs=1e-4), "per megapixel"
    assert flux.estimated_cost("2K", 1) == pytest.approx(0.03 + 0.015 * 3, abs=1e-4), "2K is capped at 4 MP"
    assert flux.estimated_cost("1K", 1, input_pixels=2_000_000) == pytest.approx(0.0307 + 0.015 * 2, abs=1e-4), (
        "input MP too"
    )


def test_phota_remix_and_enhance_are_offered_only_on_nb2_which_phota_pins_them_to():
    assert set(base_model("phota/nb2").operations) == {"generate", "edit", "enhance", "remix"}
    for name in ("phota/gpt-image-2", "phota/qwen-image-2", "phota/flux-2", "phota/reve"):
        assert set(base_model(name).operations) == {"generate", "edit"}, name


def test_the_readme_table_is_the_one_the_models_command_prints_from_the_data():
    from identity.remote.catalog import markdown

    text = (ROOT / "README.md").read_text()
    shown = text.split("<!-- models table:", 1)[1].split("\n", 1)[1].split("\n<!-- end of models table -->", 1)[0]
    assert shown == markdown(BASE_MODELS), "README's table is stale: paste the output of `python -m identity models`"
    assert "`gemini-nano-banana-2.1`" in shown and "`gemini-3.1-flash-image`" not in shown


# ----- user overrides --------------------------------------------------------------------------------------------


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "models.json"
    path.write_text(text)
    return path


def test_users_override_a_model_id_and_prices_and_add_a_model_without_code(tmp_path, monkeypatch):
    path = write(
        tmp_path,
        json.dumps(
            {
                "models": {
                    "nb2": {"api_model": "gemini-3.2-flash-image", "prices": {"1K": 0.05}},
                    "gpt-image-2-cheap": {
                        "like": "gpt-image-2",
                        "api_model": "gpt-image-2-2026-04-21",
                        "prices": {"image_out": 20.0},
                    },
                }
            },
            indent=1,
        ),
    )
    models = apply_overrides(BASE_MODELS, path)
    assert models["nb2"].api_model == "gemini-3.2-flash-image" and models["nb2"].estimated_cost("1K", 2) == 0.1
    assert models["nb2"].estimated_cost("2K", 1) == BASE_MODELS["nb2"].estimated_cost("2K", 1), "other prices stay"
    added = models["gpt-image-2-cheap"]
    assert added.provider == "openai" and added.prices["usd_per_million"]["image_out"] == 20.0
    monkeypatch.setenv("IDENTITY_USER_DIR", str(tmp_path))
    assert base_model("gpt-image-2-cheap").api_model == "gpt-image-2-2026-04-21", "read from the user folder"
    assert "gpt-image-2-cheap" in registry()


@pytest.mark.parametrize(
    "text,line,says",
    [
        ('{"models": {\n "nb2": {\n  "api_model": "x",\n  "price": 1\n }\n}}', 4, "unknown field 'price'"),
        ('{"models": {\n "nb2": {\n  "prices": {"1K": "cheap"}\n }\n}}', 3, "must be a number of dollars"),
        ('{"models": {\n "nb2": {\n  "prices": {"8K": 1}\n }\n}}', 3, "prices takes 1K, 2K, 4K"),
        ('{"models": {\n "nb2": {\n  "api_model": "../../v1/files"\n }\n}}', 3, "api_model must be"),
        ('{"models": {\n "mine": {\n  "api_model": "m1"\n }\n}}', 2, "a new model needs names no known model"),
        ('{"models": {\n "Mine/x": {"like": "nb2"}\n}}', 2, "a model name is lower-case"),
        ('{"models": {\n "nb2": {\n  "api_model": "x",\n }\n}}', 4, "not valid JSON"),
    ],
)
def test_a_bad_override_names_the_file_and_the_line(tmp_path, monkeypatch, text, line, says):
    path = write(tmp_path, text)
    with pytest.raises(InvalidRequest, match=rf"models\.json line {line}: .*{re.escape(says)}"):
        apply_overrides(BASE_MODELS, path)
    monkeypatch.setenv("IDENTITY_USER_DIR", str(tmp_path))
    with pytest.raises(InvalidRequest, match=f"line {line}"):
        base_model("nb2")  # a request names the problem; the node's picker still lists the shipped models
    from identity.remote.models import model_names

    assert "nb2" in model_names()
