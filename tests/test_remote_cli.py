"""`python -m identity generate|edit`: closed models from scripts and CI, keys and base URLs as for the nodes;
exit 0 when outputs were saved, otherwise one line and a non-zero exit (before any call where possible)."""

from __future__ import annotations

import json
import os

import pytest
from conftest import face, needs_faces, one_line_error, run_cli
from fake_providers import KEYS


@pytest.fixture
def setup(fake, tmp_path, people):
    from identity.profile import ProfileStore

    fake.reset()
    store = ProfileStore(tmp_path / "profiles")
    store.save(people["Barack Obama"])
    env = {
        "IDENTITY_USER_DIR": str(tmp_path / "user"),
        "OPENAI_API_KEY": KEYS["openai"],
        "GEMINI_API_KEY": KEYS["gemini"],
        "IDENTITY_OPENAI_BASE_URL": fake.urls["openai"],
        "IDENTITY_GEMINI_BASE_URL": fake.urls["gemini"],
    }
    return store.folder, env


def cli(*args, env):
    """The command in this process, with no API key but those in `env`."""
    return run_cli(*args, env={**dict.fromkeys(k for k in os.environ if k.endswith("_API_KEY")), **env})


@needs_faces
def test_generate_saves_verified_images_and_prints_the_nodes_report(fake, setup, tmp_path):
    store, env = setup
    result = cli(
        "generate",
        "--prompt",
        "[[barack-obama]] on a beach",
        "--profile",
        "barack obama",
        "--base-model",
        "gpt-image-2",
        "--resolution",
        "1K",
        "--aspect-ratio",
        "16:9",
        "--outputs",
        "2",
        "--store",
        store,
        "--out",
        tmp_path / "out",
        "--engine",
        "embedded",
        "--json",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (
        report["model"] == "gpt-image-2" and len(report["outputs"]) == 2 and all(o["passed"] for o in report["outputs"])
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["generate_1.png", "generate_2.png"]
    assert report["saved"] == [str(tmp_path / "out" / "generate_1.png"), str(tmp_path / "out" / "generate_2.png")]
    assert fake.posts("openai")[0].form["size"] == "1360x768"
    assert KEYS["openai"] not in result.stdout + result.stderr


@needs_faces
def test_edit_takes_photos_and_finds_the_people_in_them(fake, setup, tmp_path):
    store, env = setup
    result = cli(
        "edit",
        face("obama/obama1.jpg"),
        "--prompt",
        "Give [[barack-obama]] sunglasses",
        "--store",
        store,
        "--out",
        tmp_path / "out",
        "--engine",
        "embedded",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "edit_1.png").is_file() and "edit_1.png  weakest similarity" in result.stdout
    assert len(fake.posts("gemini")) == 1


@needs_faces
def test_an_edit_with_no_profile_anywhere_says_how_to_make_one_in_the_terminals_words(fake, setup, tmp_path):
    _, env = setup
    empty = tmp_path / "empty"
    result = cli(
        "edit", face("obama/obama1.jpg"), "--prompt", "Give [[x]] a hat", "--store", empty, "--out", tmp_path, env=env
    )
    one_line_error(result, f"{empty} holds no profiles", "python -m identity train")
    assert "connect" not in result.stderr and not fake.posts("gemini"), "no node words, and no call"


@needs_faces
def test_every_failure_is_one_line_and_a_non_zero_exit_before_any_call(fake, setup, tmp_path):
    store, env = setup
    common = ["--prompt", "[[barack-obama]]", "--profile", "barack obama", "--store", store, "--engine", "embedded"]
    no_key = {k: v for k, v in env.items() if k != "OPENAI_API_KEY"}
    one_line_error(
        cli("generate", *common, "--base-model", "gpt-image-2", "--out", tmp_path / "o", env=no_key),
        "no API key for openai",
        "OPENAI_API_KEY",
    )
    (tmp_path / "a-file").write_text("x")
    one_line_error(cli("generate", *common, "--out", tmp_path / "a-file", env=env), "cannot be used as a folder")
    one_line_error(
        cli("generate", *common, "--base-model", "flux-2", "--resolution", "4K", "--out", tmp_path / "o", env=env),
        "flux-2 does not offer resolution '4K'",
    )
    one_line_error(
        cli("generate", *common[:2], "--profile", "nobody", *common[4:], "--out", tmp_path / "o", env=env), "nobody"
    )
    one_line_error(
        cli(
            "edit",
            face("obama/obama1.jpg"),
            "--prompt",
            "make it sunny",
            "--store",
            store,
            "--out",
            tmp_path / "o",
            env=env,
        ),
        "name the people to keep",
    )
    assert cli("generate", *common, "--base-model", "dall-e", "--out", tmp_path / "o", env=env).returncode == 2
    assert fake.requests == []
