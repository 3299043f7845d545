"""Vendors move: a model id the vendor no longer serves is named as such, with the models.json override that fixes
it; a deprecation on a successful answer is a notice in the report; `python -m identity models` prints the table
and `--check` asks the vendors' own listings which configured ids they still serve, without a paid call."""

from __future__ import annotations

import json

import pytest
from conftest import FAST

from identity.cli import main
from identity.errors import ModelMoved
from identity.remote.catalog import markdown
from identity.remote.models import registry
from identity.remote.runner import RemoteRequest, run

#: Per model: an id its vendor does not serve (retired or never), and how many calls the fake saw for it.
RETIRED = {
    "nb2": "gemini-3.1-flash-image",  # shut down on 2026-10-29
    "gpt-image-2": "gpt-image-1",  # shut down on 2026-10-23
    "qwen-image-2": "qwen-image-1.0-legacy",
    "flux-2": "flux-1-pro",
}


def override(tmp_path, **ids) -> None:
    """The user's models.json (in the `keys` fixture's user folder) pointing models at other vendor ids."""
    models = {name: {"api_model": api_model} for name, api_model in ids.items()}
    (tmp_path / "models.json").write_text(json.dumps({"models": models}))


@pytest.mark.parametrize("model", list(RETIRED))
def test_a_model_id_the_vendor_no_longer_serves_is_named_with_the_override_that_fixes_it(
    fake, keys, people, embedded, tmp_path, model
):
    override(tmp_path, **{model: RETIRED[model]})
    request = RemoteRequest(
        operation="generate", model=model, profiles=[people["Barack Obama"]], prompt="[[barack-obama]]"
    )
    with pytest.raises(ModelMoved) as moved:
        run(request, keys, embedded, policy=FAST)
    text = str(moved.value)
    provider = registry()[model].provider
    assert text.startswith(f"{provider} no longer serves model {RETIRED[model]!r} for {model}") and "\n" not in text
    assert (
        str(tmp_path / "models.json") in text and json.dumps({"models": {model: {"api_model": "<the new id>"}}}) in text
    )
    assert "python -m identity models --check" in text
    assert len(fake.posts(provider)) == 1, "not retried: the same id fails again"


def test_a_deprecation_on_a_successful_answer_is_a_notice_with_the_fix(fake, keys, people, embedded, tmp_path):
    fake.faults = ["deprecated"]
    request = RemoteRequest(
        operation="generate", model="nb2", profiles=[people["Barack Obama"]], prompt="[[barack-obama]]"
    )
    result = run(request, keys, embedded, policy=FAST)
    assert result.report["outputs"][0]["passed"], "the image is kept"
    (notice,) = result.report["notices"]
    assert notice.startswith("gemini says model 'gemini-nano-banana-2.1' (nb2) is deprecated (until Thu, 29 Oct 2026")
    assert str(tmp_path / "models.json") in notice


def test_the_models_command_prints_the_table_with_the_users_overrides(keys, tmp_path, capsys):
    override(tmp_path, nb2="gemini-nano-banana-2.2")
    assert main(["models"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == markdown(registry()) and "`gemini-nano-banana-2.2`" in printed
    assert printed.splitlines()[0].startswith("| base model | provider | vendor id | resolutions |")


def test_models_check_asks_the_vendors_listings_and_names_what_moved(fake, keys, tmp_path, capsys):
    keys_file = str(tmp_path / "keys.json")
    assert main(["models", "--check", "--keys-file", keys_file]) == 0, capsys.readouterr()
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["nb2"].startswith("gemini-nano-banana-2.1 (gemini): served")
    assert lines["gpt-image-2.5-flare"].startswith("gpt-image-2.5-flare (openai): served")
    assert "not checked; Black Forest Labs documents no models listing" in lines["flux-2"]
    assert [r.path for r in fake.requests if r.json is not None or r.form is not None] == [], "no paid call"
    assert {r.path.split("?")[0] for r in fake.requests} == {"/v1beta/models", "/v1/models"}

    fake.listed["gemini"].discard("gemini-3-pro-image")  # Google moved Nano Banana Pro
    try:
        assert main(["models", "--check", "--keys-file", keys_file]) == 1
    finally:
        fake.listed["gemini"].add("gemini-3-pro-image")
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith("nano-banana-pro:")]
    assert "NOT SERVED; gemini does not list it: set the id the vendor serves now in" in line
    assert str(tmp_path / "models.json") in line


def test_models_check_without_a_key_says_so_and_checks_the_rest(fake, keys, tmp_path, capsys):
    stored = json.loads((tmp_path / "keys.json").read_text())
    del stored["OPENAI_API_KEY"]
    (tmp_path / "keys.json").write_text(json.dumps(stored))
    assert main(["models", "--check", "--keys-file", str(tmp_path / "keys.json")]) == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert "not checked; no API key for openai: set OPENAI_API_KEY" in lines["gpt-image-2"]
    assert "served" in lines["nb2"]
