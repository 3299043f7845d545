"""Prompts that name people: [[refs]], subjects, and the layout that tells a model who is who."""

from __future__ import annotations

from dataclasses import replace

import pytest

from identity.errors import IdentityError
from identity.profile import ProfileStore
from identity.prompt import compile_prompt, referenced_ids, subjects
from identity.remote.call import Call, layout
from identity.remote.models import base_model


def test_references_are_found_once_in_order():
    assert referenced_ids("[[bob]] meets [[alice-1a2b3c]] and [[bob]]; [[Not_Valid]] [x]") == ["bob", "alice-1a2b3c"]


def test_refs_resolve_by_id_or_by_name_among_supplied_profiles_only(people):
    obama, biden = people["Barack Obama"], people["Joe Biden"]
    assert subjects(f"[[{obama.id}]] and [[joe-biden]]", [obama, biden]) == [obama, biden]
    assert subjects("a crowd", [obama, biden]) == [obama, biden], "no refs: every supplied profile is a subject"
    assert subjects("[[joe-biden]]", [obama, biden], candidates=[obama.id]) == [biden, obama]
    with pytest.raises(IdentityError, match=r"\[\[kamala-harris\]\], which is not among the supplied profiles"):
        subjects("[[kamala-harris]] at work", [obama, biden])
    with pytest.raises(IdentityError, match="not among the supplied"):
        subjects("[[joe-biden]]", [obama])


def test_a_prompt_written_before_a_rename_still_names_the_profile(tmp_path, people):
    """`[[joe-biden]]` in a saved workflow after "Joe Biden" became "Joseph Biden": the store's rename record
    gives the loaded profile its former names; a profile that holds the name now comes first."""
    store = ProfileStore(tmp_path)
    obama, biden = people["Barack Obama"], people["Joe Biden"]
    store.save(biden)
    store.save(obama)
    store.rename(biden.id, "Joseph Biden")
    renamed = store.load(biden.id)
    assert renamed.former_names == ("Joe Biden",)
    assert subjects("[[joe-biden]] waves", [obama, renamed]) == [renamed]
    assert subjects("[[joseph-biden]] waves", [obama, renamed]) == [renamed]
    assert compile_prompt("[[joe-biden]] waves", [renamed], lambda p: p.name) == "Joseph Biden waves"
    store.rename(obama.id, "Joe Biden")  # the former name taken by another profile: the current holder wins
    assert subjects("[[joe-biden]]", [store.load(obama.id), store.load(biden.id)]) == [store.load(obama.id)]
    with pytest.raises(IdentityError, match=r"\[\[joe-biden\]\], which is not among the supplied profiles"):
        subjects("[[joe-biden]]", [replace(renamed, former_names=())])  # without the record, no former name


def test_compile_replaces_each_ref(people):
    obama = people["Barack Obama"]
    assert compile_prompt("[[barack-obama]] smiles", [obama], lambda p: p.name.upper()) == "BARACK OBAMA smiles"


def _call(people, operation="generate", inputs=0, prompt="[[barack-obama]] with [[joe-biden]]", model="nb2"):
    obama, biden = people["Barack Obama"], people["Joe Biden"]
    return Call(
        operation=operation,
        model=base_model(model),
        resolution="1K",
        aspect_ratio="auto",
        quality="auto",
        prompt=prompt,
        subjects=[obama, biden],
        references=[[b"o1", b"o2"], [b"b1"]],
        inputs=[b"in"] * inputs,
    )


def test_numbered_layout_says_which_image_shows_whom(people):
    sent = layout(_call(people, "edit", inputs=1))
    assert sent.images == [b"in", b"o1", b"o2", b"b1"]
    assert sent.text.startswith(
        "Image 1 is the photo to edit. Images 2 and 3 show Barack Obama. Image 4 shows Joe Biden."
    )
    assert sent.text.endswith("Barack Obama (the person in images 2 and 3) with Joe Biden (the person in image 4)")


def test_reve_layout_uses_zero_based_img_tags(people):
    sent = layout(_call(people, "edit", inputs=1, model="reve"), tags=True)
    assert sent.text.startswith("<img>0</img> is the photo to edit.")
    assert "Barack Obama <img>1</img> <img>2</img> with Joe Biden <img>3</img>" in sent.text


def test_unnamed_subjects_are_still_announced(people):
    sent = layout(_call(people, "enhance", inputs=1, prompt=""))
    assert "Image 1 is the photo to enhance" in sent.text
    assert (
        "Keep the identity of Barack Obama (the person in images 2 and 3), Joe Biden (the person in image 4)."
        in sent.text
    )
