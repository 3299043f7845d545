"""Identity-gated best-of-N: re-roll outputs whose people do not look like themselves, within a budget."""

from __future__ import annotations

import pytest
from conftest import FAST, face

from identity.images import load_image
from identity.remote.runner import RemoteRequest, run


def generate(people, embedded, keys, **extra):
    request = RemoteRequest(
        operation="generate", model="nb2", profiles=[people["Barack Obama"]], prompt="[[barack-obama]] reading", **extra
    )
    return run(request, keys, embedded, policy=FAST)


def test_a_stranger_is_caught_and_re_rolled_until_the_person_is_there(fake, keys, people, embedded):
    fake.faults = ["stranger"]
    result = generate(people, embedded, keys, rerolls=2)
    report = result.report
    assert report["images_received"] == 2 and report["rerolls"] == 1
    assert report["stopped"] == "every subject cleared its threshold"
    assert report["outputs"][0]["attempt"] == 1 and report["outputs"][0]["passed"]


def test_without_re_rolls_the_failed_output_is_returned_and_says_so(fake, keys, people, embedded):
    fake.faults = ["stranger"]
    result = generate(people, embedded, keys)
    assert result.scores == [0.0] and not result.report["outputs"][0]["passed"]
    assert result.report["stopped"] == "no re-rolls allowed"


def test_the_re_roll_count_budget_ends_the_search(fake, keys, people, embedded):
    fake.faults = ["stranger"] * 4
    result = generate(people, embedded, keys, rerolls=2)
    assert result.report["images_received"] == 3 and result.report["stopped"] == "re-roll budget used"


def test_the_cost_budget_ends_the_search(fake, keys, people, embedded):
    fake.faults = ["stranger"] * 6
    result = generate(people, embedded, keys, rerolls=5, max_cost=0.05)
    report = result.report
    assert report["images_received"] == 1 and report["stopped"].startswith("cost budget reached")
    assert report["cost_usd"] == pytest.approx(0.0336) and report["cost_estimated"], "nb2's 1K list price"


def test_outputs_rank_by_their_weakest_subject(fake, keys, people, embedded):
    group = load_image(face("groups/obama_biden_a.jpg"))
    fake.faults = ["stranger"]
    request = RemoteRequest(
        operation="edit",
        model="nb2",
        profiles=list(people.values()),
        prompt="[[barack-obama]] and [[joe-biden]] in hats",
        inputs=[group],
        outputs=2,
    )
    result = run(request, keys, embedded, policy=FAST)
    first, second = result.report["outputs"]
    assert first["passed"] and not second["passed"], "the image with strangers ranks last"
    assert result.scores == sorted(result.scores, reverse=True) and result.scores[-1] == 0.0
