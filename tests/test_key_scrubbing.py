"""Keys never show, even in part: no run of 8 characters of a key, plain, JSON-escaped or URL-encoded, in an error,
a report or any log line of the HTTP libraries (their child loggers included)."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import FAST, PROVIDER_MODELS
from fake_providers import KEYS

from identity.errors import ProviderError
from identity.remote.keys import Credentials, KeyStore, excerpt, scrub
from identity.remote.phota_links import PhotaLinks
from identity.remote.runner import RemoteRequest, run

MIN_RUN = 8  # the issue: no 8-character run of a key in any output
KEY = "sk-live-4f9Qz7Lm2Xc8Vb1Nw6Tr3Yh5Jk0Pd"  # 35 characters, as in the campaign


def runs(key: str, text: str) -> list[str]:
    """Every 8-character run of `key` found in `text`."""
    return [key[i : i + MIN_RUN] for i in range(len(key) - MIN_RUN + 1) if key[i : i + MIN_RUN] in text]


@pytest.fixture(scope="module", autouse=True)
def key_in_use():
    Credentials("openai", "https://api.openai.com", KEY)  # handing a key out is what makes scrub know it


@pytest.mark.parametrize(
    "text",
    [
        f"invalid key {KEY[:-1]}",  # a proxy echoing all but the last character: 34 of 35 shown before
        f"key={KEY[1:]}&",
        f"cut at the limit: {KEY[:8]}",
        "".join(f"\\u{ord(c):04x}" for c in KEY),
        "".join(f"\\u{ord(c):04X}" for c in KEY[:-2]),
        "".join(f"%{ord(c):02x}" for c in KEY),
        KEY[:12] + "".join(f"\\u{ord(c):04x}" for c in KEY[12:20]) + "".join(f"%{ord(c):02X}" for c in KEY[20:]),
    ],
    ids=["less-last", "less-first", "first-8", "json-escaped", "json-upper-less-2", "url-encoded", "mixed"],
)
def test_any_run_of_8_characters_of_a_key_is_blanked_however_it_is_written(text):
    clean = scrub(text)
    decoded = json.loads(f'"{clean}"') if "\\u" in text else clean
    assert "[redacted]" in clean and not runs(KEY, clean) and not runs(KEY, decoded), clean
    assert scrub(f"keep {KEY[:7]} and 100%") == f"keep {KEY[:7]} and 100%", "shorter runs and lone % stay"


def test_an_excerpt_never_ends_in_a_piece_of_key():
    for cut in range(len(KEY)):
        text = "x" * (6000 - cut) + KEY + "tail"
        assert not runs(KEY, excerpt(text)) and not any(KEY[:n] in excerpt(text, 6000) for n in range(4, 8))


@pytest.fixture
def echoing(fake, tmp_path, monkeypatch, people):
    fake.reset()
    monkeypatch.setenv("IDENTITY_USER_DIR", str(tmp_path))
    fake.phota_profiles["ph0bama"] = "READY"
    PhotaLinks(tmp_path / "phota_links.json").link(people["Barack Obama"].id, "ph0bama")
    return KeyStore(fake.keys_file(tmp_path), environ={})


@pytest.mark.parametrize("provider", list(PROVIDER_MODELS))
def test_a_key_echoed_in_part_or_encoded_never_reaches_errors_reports_or_any_http_log(
    fake, echoing, people, embedded, caplog, provider
):
    caplog.set_level(logging.DEBUG)  # ComfyUI's --verbose DEBUG: httpcore.http11 logs every answer's headers
    request = RemoteRequest(
        operation="generate",
        model=PROVIDER_MODELS[provider],
        profiles=[people["Barack Obama"]],
        prompt="[[barack-obama]]",
    )
    fake.faults = ["echo_key_encoded"]
    with pytest.raises(ProviderError) as error:
        run(request, echoing, embedded, policy=FAST)
    assert not runs(KEYS[provider], str(error.value)), str(error.value)
    fake.reset(faults=["echo_key_encoded"])
    request.rerolls = 1
    result = run(request, echoing, embedded, policy=FAST)
    assert result.report["failures"] and not runs(KEYS[provider], json.dumps(result.report))
    assert any(r.name == "httpcore.http11" for r in caplog.records), "the child logger wrote"
    assert "X-Echo" in caplog.text and not runs(KEYS[provider], caplog.text)
