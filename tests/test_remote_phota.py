"""Phota profiles, done right: a local profile id never goes to Phota; a local profile is linked to the Phota
profile of the same person (checked with Phota's status endpoint, whose training status is shown), and an
unlinked profile on a `phota/…` model is refused before any call with a message that says how to link it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import FAST

from identity.cli import main
from identity.errors import InvalidRequest
from identity.remote.runner import RemoteRequest, run


@pytest.fixture
def store(tmp_path, people):
    from identity.profile import ProfileStore

    folder = ProfileStore(tmp_path / "profiles")
    folder.save(people["Barack Obama"])
    return folder


def test_an_unlinked_profile_is_refused_before_any_call_with_how_to_link_it(fake, keys, people, embedded):
    obama = people["Barack Obama"]
    for prompt in ("[[barack-obama]] at a desk", f"[[{obama.id}]] at a desk", "someone at a desk"):
        with pytest.raises(
            InvalidRequest, match=rf"not linked to a Phota profile.*python -m identity phota-link {obama.id}"
        ):
            run(
                RemoteRequest(operation="generate", model="phota/nb2", profiles=[obama], prompt=prompt),
                keys,
                embedded,
                policy=FAST,
            )
    assert fake.requests == [], "nothing reached Phota"


def test_two_linked_people_go_as_their_phota_ids_in_the_ids_and_in_the_prompt(fake, keys, people, embedded, tmp_path):
    from identity.remote.phota_links import PhotaLinks

    obama, biden = people["Barack Obama"], people["Joe Biden"]
    fake.phota_profiles.update({"ph0bama": "READY", "phb1den": "READY"})
    links = PhotaLinks(tmp_path / "phota_links.json")
    links.link(obama.id, "ph0bama")
    links.link(biden.id, "phb1den")
    request = RemoteRequest(
        operation="edit",
        model="phota/nb2",
        profiles=[obama, biden],
        prompt="[[barack-obama]] and [[joe-biden]] shake hands",
        candidates=[biden.id],
        inputs=[np.zeros((600, 800, 3), np.uint8)],
    )
    result = run(request, keys, embedded, policy=FAST)
    sent = fake.posts("phota")[0].json
    assert sent["prompt"] == "[[ph0bama]] and [[phb1den]] shake hands" and sent["profile_ids"] == ["ph0bama", "phb1den"]
    assert result.report["provider_profiles"] == ["ph0bama", "phb1den"]


def test_a_profile_phota_is_still_training_is_refused_before_the_paid_call(fake, keys, people, embedded, tmp_path):
    from identity.remote.phota_links import PhotaLinks

    obama = people["Barack Obama"]
    fake.phota_profiles["ph0bama"] = "IN_PROGRESS"
    PhotaLinks(tmp_path / "phota_links.json").link(obama.id, "ph0bama")
    with pytest.raises(InvalidRequest, match="Phota profile 'ph0bama' is IN_PROGRESS, not READY"):
        run(
            RemoteRequest(
                operation="generate", model="phota/nb2", profiles=[obama], prompt="[[barack-obama]] at a desk"
            ),
            keys,
            embedded,
            policy=FAST,
        )
    assert fake.posts("phota") == [] and [r.path for r in fake.received("phota")] == [
        "/v1/phota/profiles/ph0bama/status"
    ]


def test_an_unknown_phota_id_in_the_prompt_is_refused_before_the_paid_call(fake, keys, people, embedded):
    with pytest.raises(InvalidRequest, match="Phota has no profile 'nobody42' on this account"):
        run(
            RemoteRequest(
                operation="generate",
                model="phota/nb2",
                profiles=[people["Barack Obama"]],
                prompt="[[nobody42]] at a desk",
            ),
            keys,
            embedded,
            policy=FAST,
        )
    assert fake.posts("phota") == []


def test_phota_link_checks_the_id_with_phota_shows_its_status_and_stores_the_link(fake, keys, store, tmp_path, capsys):
    fake.phota_profiles["ph0bama"] = "IN_PROGRESS"
    args = [
        "phota-link",
        "barack obama",
        "ph0bama",
        "--store",
        str(store.folder),
        "--keys-file",
        str(tmp_path / "keys.json"),
    ]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "Barack Obama" in out and "ph0bama: IN_PROGRESS" in out and "READY" in err
    obama_id = store.resolve("barack obama")
    assert json.loads((tmp_path / "phota_links.json").read_text()) == {obama_id: "ph0bama"}
    assert main([*args[:2], "unknown99", *args[3:]]) == 1
    assert "Phota has no profile 'unknown99'" in capsys.readouterr().err
    assert json.loads((tmp_path / "phota_links.json").read_text()) == {obama_id: "ph0bama"}, (
        "a failed link changes nothing"
    )
    assert main(["phota-link", "barack obama", "--unlink", "--store", str(store.folder)]) == 0
    assert json.loads((tmp_path / "phota_links.json").read_text()) == {}
