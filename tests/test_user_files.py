"""The user's files beside the keys (models.json, keys.json, phota_links.json) cannot freeze, crash or mislead:
a FIFO is skipped, bad bytes, bad JSON, deep nesting and wrong-typed fields get one sentence naming the file and
the field, a price must be a finite number (refused before any call), and links made at once are all kept."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import urllib.request

import pytest
from conftest import ROOT

from identity.errors import InvalidRequest, MissingKey
from identity.remote.keys import KeyStore
from identity.remote.models import base_model, model_names
from identity.remote.phota_links import PhotaLinks
from identity.remote.runner import RemoteRequest, run

DEEP = "[" * 5000 + "]" * 5000  # RecursionError in json.loads before


def cli(*args, user) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")} | {"IDENTITY_USER_DIR": str(user)}
    return subprocess.run(
        [sys.executable, "-m", "identity", *args], cwd=ROOT, capture_output=True, text=True, env=environment, timeout=60
    )


@pytest.fixture
def user(tmp_path, monkeypatch):
    monkeypatch.setenv("IDENTITY_USER_DIR", str(tmp_path))
    return tmp_path


def test_a_fifo_models_file_is_skipped_with_a_sentence_and_nothing_hangs(user, tmp_path):
    os.mkfifo(user / "models.json")  # no writer: a blocking open would wait for ever
    result = cli("list", "--store", str(tmp_path / "profiles"), user=user)
    assert result.returncode == 0, result.stderr
    assert "models.json is not a regular file" in result.stderr and "Traceback" not in result.stderr
    assert "nb2" in model_names(), "the node's picker lists the shipped models"
    with pytest.raises(InvalidRequest, match=r"models\.json is not a regular file .*skipped"):
        base_model("nb2")


@pytest.mark.parametrize("name", ["keys.json", "phota_links.json"])
def test_fifo_keys_and_links_files_are_refused_with_a_sentence(user, name):
    os.mkfifo(user / name)
    with pytest.raises((MissingKey, InvalidRequest), match=rf"{name} is not a regular file"):
        KeyStore(user / "keys.json", environ={}).credentials("openai") if name == "keys.json" else PhotaLinks(
            user / name
        ).all()


@pytest.mark.parametrize(
    "content,says",
    [
        (b'{"models": {"nb2": {"api_model": "caf\xe9"}}}', r"models\.json is not UTF-8 text \(byte 37"),
        (DEEP.encode(), r"models\.json is nested 5000 levels deep \(at most 32\)"),
        (b"\x00" * (2 * 1024 * 1024), r"models\.json is larger than 1 MB"),
    ],
    ids=["latin-1", "nested", "2MB"],
)
def test_a_models_file_of_bad_bytes_gets_a_sentence_and_the_picker_stays(user, content, says):
    (user / "models.json").write_bytes(content)
    assert "nb2" in model_names(), "Base Model Select keeps its list (it vanished from /object_info)"
    with pytest.raises(InvalidRequest, match=says):
        base_model("nb2")
    result = cli("list", "--json", "--store", str(user / "profiles"), user=user)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    "stored,says",
    [
        ({"OPENAI_API_KEY": "k" * 20, "base_urls": ["https://proxy"]}, "base_urls must be an object"),
        ({"OPENAI_API_KEY": "k" * 20, "base_urls": {"openai": 7}}, "base_urls.openai must be a URL, not a number"),
        (
            {"OPENAI_API_KEY": "k" * 20, "base_urls": {"openai": "file:///etc"}},
            "base_urls.openai must be an http:// or https:// URL",
        ),
        ({"OPENAI_API_KEY": ["k"]}, "OPENAI_API_KEY must be the key as text, not a list"),
        (["OPENAI_API_KEY"], "the file must be an object"),
    ],
)
def test_a_keys_file_with_a_wrong_typed_field_names_the_file_and_the_field(user, stored, says):
    (user / "keys.json").write_text(json.dumps(stored))
    with pytest.raises(MissingKey, match=rf"keys\.json: {re.escape(says)}"):
        KeyStore(user / "keys.json", environ={}).credentials("openai")


def test_deeply_nested_keys_and_links_files_get_a_sentence(user):
    (user / "keys.json").write_text(DEEP)
    with pytest.raises(MissingKey, match=r"keys\.json is nested 5000 levels deep"):
        KeyStore(user / "keys.json", environ={}).credentials("openai")
    (user / "phota_links.json").write_text('{"a": ' + DEEP + "}")
    with pytest.raises(InvalidRequest, match=r"phota_links\.json is nested 5001 levels deep"):
        PhotaLinks(user / "phota_links.json").all()
    (user / "phota_links.json").write_text('{"barack-obama-1a2b3c": ["ph0bama"]}')
    with pytest.raises(InvalidRequest, match=r"the link of 'barack-obama-1a2b3c' must be a Phota profile id"):
        PhotaLinks(user / "phota_links.json").all()


@pytest.mark.parametrize("price", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_price_that_is_not_a_finite_number_is_refused_before_any_call(fake, user, people, embedded, price):
    fake.reset()
    (user / "models.json").write_text('{"models": {"nb2": {"prices": {"1K": PRICE}}}}'.replace("PRICE", price))
    request = RemoteRequest(
        operation="generate",
        model="nb2",
        profiles=[people["Barack Obama"]],
        prompt="[[barack-obama]]",
        rerolls=6,
        max_cost=0.10,
    )
    with pytest.raises(InvalidRequest, match=rf"models\.json: {re.escape(price)} is not a finite number"):
        run(request, KeyStore(fake.keys_file(user), environ={}), embedded)
    assert fake.requests == [], "not one paid call (a NaN price made 7)"


@pytest.mark.parametrize("cost", [float("nan"), float("inf"), -1.0])
def test_a_cost_limit_that_is_not_a_finite_number_is_refused_before_any_call(fake, user, people, embedded, cost):
    fake.reset()
    request = RemoteRequest(
        operation="generate", model="nb2", profiles=[people["Barack Obama"]], prompt="[[barack-obama]]", max_cost=cost
    )
    with pytest.raises(InvalidRequest, match="max cost must be 0 or more"):
        run(request, KeyStore(fake.keys_file(user), environ={}), embedded)
    assert fake.requests == []


def test_links_made_at_once_are_all_kept_across_threads_and_processes(user):
    """Twelve at once from threads (as the panel's route makes them) and twelve from four processes (the CLI beside
    ComfyUI): 9, 6 and 5 of 12 were kept before."""
    links = PhotaLinks(user / "phota_links.json")
    start = threading.Barrier(12)

    def link(n: int) -> None:
        start.wait()
        links.link(f"person-{n:02d}", f"ph{n:02d}")

    threads = [threading.Thread(target=link, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert links.all() == {f"person-{n:02d}": f"ph{n:02d}" for n in range(12)}
    script = (
        "import sys, time; from pathlib import Path; from identity.remote.phota_links import PhotaLinks\n"
        "links = PhotaLinks(Path(sys.argv[1])); first = int(sys.argv[2])\n"
        "time.sleep(max(0.0, float(sys.argv[3]) - time.time()))\n"
        "for n in range(first, first + 3): links.link(f'process-{n:02d}', f'pp{n:02d}')\n"
    )
    import time

    at = str(time.time() + 3)
    workers = [
        subprocess.Popen([sys.executable, "-c", script, str(links.path), str(first), at], cwd=ROOT)
        for first in (0, 3, 6, 9)
    ]
    assert [w.wait(60) for w in workers] == [0, 0, 0, 0]
    assert {k: v for k, v in links.all().items() if k.startswith("process-")} == {
        f"process-{n:02d}": f"pp{n:02d}" for n in range(12)
    }
    assert len(links.all()) == 24


def test_comfyui_keeps_serving_with_a_fifo_or_latin_1_models_file(comfyui):
    """`/object_info` hung with a FIFO and lost Base Model Select with non-UTF-8 bytes."""
    folder = comfyui.user / "identity_layer"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "models.json"
    for make in (lambda: os.mkfifo(path), lambda: path.write_bytes(b'{"models": {"nb2": {"api_model": "\xe9"}}}')):
        make()
        try:
            with urllib.request.urlopen(comfyui.client.url + "/object_info", timeout=30) as answer:
                nodes = json.loads(answer.read())
            assert "nb2" in json.dumps(nodes["IdentityBaseModelSelect"]["input"])
        finally:
            path.unlink()
