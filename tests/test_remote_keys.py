"""API keys: from the environment or the keys file, checked before any call, never shown anywhere."""

from __future__ import annotations

import json
import logging

import pytest

from identity.errors import MissingKey, ProviderError
from identity.remote.http import Policy
from identity.remote.keys import KeyStore
from identity.remote.runner import RemoteRequest, run

from fake_providers import KEYS


def test_a_missing_key_names_the_variable_and_the_file_before_any_call(fake, people, embedded, tmp_path):
    fake.reset()
    keys = KeyStore(tmp_path / "keys.json", environ={})
    with pytest.raises(MissingKey, match=r"set OPENAI_API_KEY in ComfyUI's environment or add it to .*keys.json"):
        run(RemoteRequest("generate", "gpt-image-2", [people["Barack Obama"]], "[[barack-obama]]"), keys, embedded)
    with pytest.raises(MissingKey, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        KeyStore(None, environ={}).credentials("gemini")
    assert fake.requests == []


def test_environment_wins_over_the_file_and_base_urls_can_be_overridden(tmp_path):
    file = tmp_path / "keys.json"
    file.write_text(json.dumps({"OPENAI_API_KEY": "from-file", "base_urls": {"openai": "http://proxy.local/"}}))
    assert KeyStore(file, environ={}).credentials("openai").key == "from-file"
    environ = {"OPENAI_API_KEY": "from-env", "IDENTITY_OPENAI_BASE_URL": "http://127.0.0.1:9/"}
    credentials = KeyStore(file, environ=environ).credentials("openai")
    assert credentials.key == "from-env" and credentials.base_url == "http://127.0.0.1:9"
    assert "from-env" not in repr(credentials)
    file.write_text("{not json")
    with pytest.raises(MissingKey, match="not valid JSON"):
        KeyStore(file, environ={}).credentials("openai")


def test_a_key_echoed_by_the_provider_never_reaches_errors_reports_or_logs(fake, people, embedded, tmp_path, caplog):
    fake.reset()
    wrong = "sk-wrong-key-0123456789abcdef"
    keys_file = fake.keys_file(tmp_path)
    stored = json.loads(keys_file.read_text())
    stored["GEMINI_API_KEY"] = wrong
    keys_file.write_text(json.dumps(stored))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ProviderError) as error:
        run(RemoteRequest("generate", "nb2", [people["Barack Obama"]], "[[barack-obama]]"), KeyStore(keys_file, environ={}),
            embedded, policy=Policy(base_delay=0.05))
    assert "rejected the API key (HTTP 401)" in str(error.value) and "GEMINI_API_KEY" in str(error.value)
    assert wrong not in str(error.value) and "[redacted]" in str(error.value)
    assert wrong not in caplog.text
    fake.reset()
    result = run(RemoteRequest("generate", "nb2", [people["Barack Obama"]], "[[barack-obama]]"),
                 KeyStore(fake.keys_file(tmp_path), environ={}), embedded)
    assert KEYS["gemini"] not in json.dumps(result.report)
