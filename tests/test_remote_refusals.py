"""A refusal reads as a refusal: Gemini answering in words alone (finishReason STOP) is a content refusal with
its words, not "no image returned"; it is not retried."""

from __future__ import annotations

import pytest

from identity.errors import ModerationRefused
from identity.remote.http import Policy
from identity.remote.keys import KeyStore
from identity.remote.runner import RemoteRequest, run


def test_a_gemini_answer_in_words_alone_is_a_refusal(fake, people, embedded, tmp_path, monkeypatch):
    fake.reset(faults=["text_only"])
    monkeypatch.setenv("IDENTITY_USER_DIR", str(tmp_path))
    request = RemoteRequest(
        operation="generate", model="nb2", profiles=[people["Barack Obama"]], prompt="[[barack-obama]]"
    )
    with pytest.raises(
        ModerationRefused, match=r"refused the request on content grounds: it answered in words, not an image: I can't"
    ):
        run(request, KeyStore(fake.keys_file(tmp_path), environ={}), embedded, policy=Policy(base_delay=0.05))
    assert len(fake.posts("gemini")) == 1
