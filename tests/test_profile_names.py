"""One name, one profile: names compare case- and Unicode-form-blind, and the rule holds across threads and processes
(concurrent renames, trainings in several CLI runs and in ComfyUI at once)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import unicodedata
from dataclasses import replace

import pytest
from conftest import ROOT, face, needs_faces
from test_web_routes import call, upload, wait_for

from identity.errors import ProfileExists
from identity.profile import ProfileStore, name_key

ZOE = "Zoë Saldaña"
#: One name as users type it: composed, decomposed (macOS file names), fullwidth, in another case.
FORMS = [
    unicodedata.normalize("NFC", ZOE),
    unicodedata.normalize("NFD", ZOE),
    "Ｚoë Saldaña",
    unicodedata.normalize("NFD", ZOE.upper()),
]


def test_names_that_look_alike_are_one_name(tmp_path, tom_profile):
    assert len(set(FORMS)) == len(FORMS) and len({name_key(f) for f in FORMS}) == 1
    store = ProfileStore(tmp_path)
    store.save(replace(tom_profile, id="zoe-000001", name=FORMS[0]))
    for number, form in enumerate(FORMS[1:], 2):
        with pytest.raises(ProfileExists, match="already exists"):
            store.save(replace(tom_profile, id=f"zoe-00000{number}", name=form))
        assert store.resolve(form) == "zoe-000001"
    assert store.ids() == ["zoe-000001"]


def _children(count: int, script: str) -> list[subprocess.Popen]:
    """`count` Python processes running `script` with their number as argv[1], each released (a line on its
    stdin) once all of them have said "ready": they then race."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(number)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for number in range(count)
    ]
    for child in children:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    return children


def test_processes_saving_one_name_at_once_make_one_profile(tmp_path, tom_profile):
    source = ProfileStore(tmp_path / "source")
    source.save(tom_profile)
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from dataclasses import replace
        from identity.errors import ProfileExists
        from identity.profile import ProfileStore
        forms = {FORMS!r}
        number = int(sys.argv[1])
        profile = replace(
            ProfileStore({str(source.folder)!r}).load({tom_profile.id!r}),
            id=f"zoe-{{number:06d}}",
            name=forms[number % len(forms)],
        )
        store = ProfileStore({str(tmp_path / "shared")!r})
        print("ready", flush=True)
        sys.stdin.readline()
        try:
            store.save(profile)
            print("saved", flush=True)
        except ProfileExists as exc:
            print("refused:", exc, flush=True)
    """)
    children = _children(6, script)
    answers = [child.communicate(timeout=120)[0].strip() for child in children]
    assert sorted(a.split(":")[0] for a in answers) == ["refused"] * 5 + ["saved"], answers
    assert len(ProfileStore(tmp_path / "shared").ids()) == 1


def test_concurrent_renames_to_one_name_one_wins(tmp_path, tom_profile):
    store = ProfileStore(tmp_path)
    for round_ in range(10):
        ids = [f"person-{round_}-{n}" for n in range(2)]
        for n, profile_id in enumerate(ids):
            store.save(replace(tom_profile, id=profile_id, name=f"Person {round_}.{n}"))
        start, outcomes = threading.Barrier(2), []

        def rename(profile_id: str, name: str) -> None:
            start.wait()
            try:
                store.rename(profile_id, name)
                outcomes.append("renamed")
            except ProfileExists:
                outcomes.append("refused")

        threads = [threading.Thread(target=rename, args=(i, FORMS[n] + f" {round_}")) for n, i in enumerate(ids)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(outcomes) == ["refused", "renamed"], (round_, outcomes)


def _comfyui_store(comfyui) -> ProfileStore:
    return ProfileStore(comfyui.base / "models" / "identity_profiles")


def _named(store: ProfileStore, name: str) -> list[str]:
    return [s["id"] for s in store.summaries() if name_key(s["name"]) == name_key(name)]


def test_concurrent_renames_on_the_route_one_wins(comfyui, tom_profile):
    store = _comfyui_store(comfyui)
    for round_ in range(10):
        ids = [f"route-rename-{round_}-{n}" for n in range(2)]
        for n, profile_id in enumerate(ids):
            store.save(replace(tom_profile, id=profile_id, name=f"Route rename {round_}.{n}"))
        start, statuses = threading.Barrier(2), []

        def rename(profile_id: str, name: str) -> None:
            start.wait()
            statuses.append(call(comfyui, "POST", f"/identity/profiles/{profile_id}/rename", {"name": name})[0])

        target = f"Zoë route {round_}"
        forms = [unicodedata.normalize("NFC", target), unicodedata.normalize("NFD", target.upper())]
        threads = [threading.Thread(target=rename, args=(i, forms[n])) for n, i in enumerate(ids)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(statuses) == [200, 409], (round_, statuses)
        assert len(_named(store, target)) == 1
        for profile_id in ids:
            store.delete(profile_id)


@needs_faces
def test_two_cli_trainings_and_a_route_training_of_one_name_make_one_profile(comfyui):
    store = _comfyui_store(comfyui)
    photos = [face(f"obama/{name}") for name in ("obama1.jpg", "obama2.jpg", "obama3.jpg", "obama5_720p.jpg")]
    name = "Barack Zoë Race"
    forms = [unicodedata.normalize("NFC", name), unicodedata.normalize("NFD", name.lower())]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    clis = [
        subprocess.Popen(
            [sys.executable, "-m", "identity", "train", *map(str, photos), "--name", form]
            + ["--store", str(store.folder), "--engine", "embedded"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for form in forms
    ]
    for cli in clis:  # both have checked the name and begun training
        line = cli.stderr.readline()
        while line and not line.startswith("VALIDATING"):
            line = cli.stderr.readline()
        assert line, "the CLI training ended before it began"
    status, answer = upload(comfyui, "Ｂarack ZOË race", [(p.name, p.read_bytes()) for p in photos])
    errors = [cli.communicate(timeout=300)[1] for cli in clis]
    outcomes = [cli.returncode for cli in clis]
    if status == 202:
        job = wait_for(comfyui, answer["job"], timeout=300)
        outcomes.append(0 if job["status"] == "READY" else job["message"])
    else:
        outcomes.append(answer["error"])
    assert len(_named(store, name)) == 1, (outcomes, errors)
    assert outcomes.count(0) == 1, (outcomes, errors)
    assert all("already exists" in str(o) for o in outcomes if o not in (0, 1)), outcomes
    assert all("already exists" in e for e, code in zip(errors, outcomes) if code == 1), errors
    for profile_id in _named(store, name):
        store.delete(profile_id)
