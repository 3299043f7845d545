"""The Identity panel's HTTP routes on the real ComfyUI server: profiles, uploads, jobs, websocket pushes, refusals."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
from comfyui import Listener
from conftest import ROOT, TOM_HANKS, crafted, face, needs_faces, text_bomb_png, wait_until
from fake_providers import KEYS
from PIL import Image

OBAMA = ["obama/obama1.jpg", "obama/obama2.jpg", "obama/obama3.jpg", "obama/obama5_720p.jpg"]


def call(comfyui, method: str, path: str, body: bytes | dict | None = None, content_type: str | None = None):
    """(status, answer): JSON answers decoded, images as bytes; refusals are answers too, not exceptions."""
    if isinstance(body, dict):
        body, content_type = json.dumps(body).encode(), "application/json"
    request = urllib.request.Request(
        comfyui.client.url + path,
        data=body,
        method=method,
        headers={"Content-Type": content_type} if content_type else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, kind, data = response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as exc:
        status, kind, data = exc.code, exc.headers.get_content_type(), exc.read()
    return status, json.loads(data) if kind == "application/json" else data


def multipart(fields: dict, photos: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b""
    for name, value in fields.items():
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for filename, data in photos:
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="photos"; filename="{filename}"\r\n'
                f"Content-Type: image/jpeg\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(comfyui, name: str, photos: list[tuple[str, bytes]], **fields):
    return call(comfyui, "POST", "/identity/profiles", *multipart({"name": name, **fields}, photos))


def wait_for(comfyui, job: dict, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, job = call(comfyui, "GET", f"/identity/jobs/{job['job_id']}")
        assert status == 200, job
        if job["status"] in ("READY", "ERROR"):
            return job
        time.sleep(0.2)
    raise TimeoutError(f"training job {job['job_id']} still {job['status']} after {timeout} s")


def png(size=(300, 300), value=180) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (value, value, value)).save(buffer, format="PNG")
    return buffer.getvalue()


def tom() -> tuple[str, bytes]:
    return ("tom.png", TOM_HANKS.read_bytes())


def training_events(events: list[dict]) -> list[dict]:
    return [e["data"] for e in events if e.get("type") == "identity.training"]


def profile_files(comfyui) -> list[str]:
    folder = comfyui.base / "models" / "identity_profiles"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture(scope="module")
def obama(comfyui):
    """'Obama (web)' trained from uploads (four photos of him, one of someone else, one without a face),
    with the websocket events seen meanwhile."""
    if not face(OBAMA[0]).is_file():
        pytest.skip(f"fixture photos absent: {face(OBAMA[0])}")
    photos = [(path.split("/")[1], face(path).read_bytes()) for path in OBAMA]
    photos += [("biden1.jpg", face("biden/biden1.jpg").read_bytes()), ("blank.png", png())]
    with Listener(comfyui) as heard:
        status, answer = upload(comfyui, "Obama (web)", photos)
        assert status == 202, answer
        job = wait_for(comfyui, answer["job"])
        heard.wait_for(
            lambda e: (
                e.get("type") == "identity.training"
                and e["data"]["job_id"] == job["job_id"]
                and e["data"]["status"] == job["status"]
            ),
            f"the {job['status']} event of the training",
        )
    assert job["status"] == "READY", job
    return {"first": answer["job"], "job": job, "events": training_events(heard.events)}


@needs_faces
def test_an_upload_answers_at_once_and_trains_in_the_background(obama):
    first, job = obama["first"], obama["job"]
    assert first["status"] in ("VALIDATING", "QUEUING", "IN_PROGRESS", "READY") and first["name"] == "Obama (web)"
    assert job["profile_id"] == first["profile_id"] and job["progress"] == 1.0
    verdicts = {p["path"]: (p["verdict"], p["reason"]) for p in job["photos"]}
    assert verdicts["obama1.jpg"] == ("accepted", "good photo of the subject")
    assert verdicts["biden1.jpg"][0] == "rejected" and "not the main subject" in verdicts["biden1.jpg"][1]
    assert verdicts["blank.png"] == ("rejected", "no face found")


@needs_faces
def test_training_progress_is_pushed_over_the_websocket(obama):
    mine = [s for s in obama["events"] if s["job_id"] == obama["job"]["job_id"]]
    statuses = [s["status"] for i, s in enumerate(mine) if i == 0 or mine[i - 1]["status"] != s["status"]]
    assert statuses == ["VALIDATING", "QUEUING", "IN_PROGRESS", "READY"], statuses
    progress = [s["progress"] for s in mine]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert any("pending" in [p["verdict"] for p in s["photos"]] for s in mine), "photos not judged yet say so"


@needs_faces
def test_the_panel_gets_the_names_it_acts_on_from_the_server(comfyui, obama):
    """The JavaScript repeats none of the Python's names: what /identity/constants gives it is what a real training
    sends (its event, its statuses, its photos' verdicts) and what an upload accepts as a kind."""
    status, constants = call(comfyui, "GET", "/identity/constants")
    assert status == 200, constants
    assert constants["event"] == "identity.training" and obama["events"]  # the websocket messages' type
    statuses = list(constants["statuses"].values())
    seen = list(dict.fromkeys(s["status"] for s in obama["events"]))
    assert seen == [s for s in statuses if s != constants["statuses"]["ERROR"]], (seen, statuses)
    assert constants["finished"] == ["READY", "ERROR"]
    verdicts = {p["verdict"] for s in obama["events"] for p in s["photos"]}
    assert verdicts == set(constants["verdicts"].values()), verdicts
    status, refused = upload(comfyui, "Nobody", [tom()], kind="horse")
    kinds = [k["kind"] for k in constants["kinds"]]
    assert status == 400 and refused["error"].endswith(f"use one of: {', '.join(kinds)}"), refused
    assert all(k["label"] and k["note"] for k in constants["kinds"]), constants["kinds"]


@needs_faces
def test_the_list_details_and_images_of_a_profile(comfyui, obama):
    profile_id = obama["job"]["profile_id"]
    status, listing = call(comfyui, "GET", "/identity/profiles")
    assert status == 200
    entry = next(p for p in listing["profiles"] if p["id"] == profile_id)
    assert entry["name"] == entry["label"] == "Obama (web)"
    assert (entry["photos_accepted"], entry["photos_rejected"]) == (4, 2)
    assert entry["created"] and entry["thumbnail"].startswith(f"/identity/profiles/{profile_id}/thumbnail?v=")

    status, thumbnail = call(comfyui, "GET", entry["thumbnail"])
    assert status == 200 and Image.open(io.BytesIO(thumbnail)).format == "JPEG"
    assert Image.open(io.BytesIO(thumbnail)).size == (384, 384)

    status, details = call(comfyui, "GET", f"/api/identity/profiles/{profile_id}")  # ComfyUI's /api mirror too
    assert status == 200
    assert (
        details["calibration"]["confidence"] == "normal" and details["threshold"] == details["calibration"]["threshold"]
    )
    assert [p["verdict"] for p in details["report"]["photos"]].count("accepted") == 4
    assert {p["photo"] for p in details["portraits"]} <= {"obama1.jpg", "obama2.jpg", "obama3.jpg", "obama5_720p.jpg"}
    assert details["job"]["status"] == "READY"
    assert details["engine_info"]["name"] == entry["engine"], "trained with the default engine, as nodes are"
    last = details["portraits"][-1]
    assert call(comfyui, "GET", last["url"])[0] == 200
    status, answer = call(comfyui, "GET", f"/identity/profiles/{profile_id}/references/{last['index'] + 1}")
    assert status == 404 and "no reference portrait" in answer["error"]


@needs_faces
def test_profile_load_lists_the_new_profile_and_scores_with_it(comfyui, obama):
    options = comfyui.client.object_info()["IdentityProfileLoad"]["input"]["required"]["profile"][1]["options"]
    assert obama["job"]["profile_id"] in options, (
        "the picker's options (ids) are read afresh (the UI refreshes them after training)"
    )
    (comfyui.base / "input" / "score.jpg").write_bytes(face("obama/obama4.jpg").read_bytes())
    prompt = {
        "1": {"class_type": "IdentityProfileLoad", "inputs": {"profile": "Obama (web)"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "score.jpg"}},
        "3": {
            "class_type": "IdentityArcFaceScore",
            "inputs": {"images": ["2", 0], "profiles": ["1", 0], "min_similarity": 0.0, "top_k": 0},
        },
    }
    run = comfyui.client.run(prompt)
    assert run.status == "success", run.error
    assert run.outputs["3"]["identity_scores"][0]["subjects"]["Obama (web)"] > 0.5
    assert "1" not in run.outputs, "Profile Load leaves its thumbnail to the web extension"


def test_rename_keeps_the_id_and_refuses_a_taken_name(comfyui):
    status, answer = upload(comfyui, "Rename Me", [tom()])
    job = wait_for(comfyui, answer["job"])
    profile_id = job["profile_id"]
    status, answer = call(comfyui, "POST", f"/identity/profiles/{profile_id}/rename", {"name": "Renamed Person"})
    assert status == 200 and answer["profile"]["id"] == profile_id and answer["profile"]["name"] == "Renamed Person"
    options = comfyui.client.object_info()["IdentityProfileLoad"]["input"]["required"]["profile"][1]["options"]
    assert profile_id in options, "the picker lists ids, which a rename keeps"
    status, other = upload(comfyui, "Another Person", [tom()])
    other = wait_for(comfyui, other["job"])
    status, answer = call(
        comfyui, "POST", f"/identity/profiles/{other['profile_id']}/rename", {"name": "renamed person"}
    )
    assert status == 409 and "already exists" in answer["error"]
    for body in ({"name": ""}, {"name": "two\nlines"}, {"title": "x"}):
        status, answer = call(comfyui, "POST", f"/identity/profiles/{profile_id}/rename", body)
        assert status == 400 and answer["error"], body
    status, answer = call(comfyui, "POST", f"/identity/profiles/{profile_id}/rename", b"not json", "application/json")
    assert status == 400 and '{"name"' in answer["error"]


def test_delete_removes_the_profile_file_and_nothing_else(comfyui):
    status, answer = upload(comfyui, "Delete Me", [tom()])
    profile_id = wait_for(comfyui, answer["job"])["profile_id"]
    before = profile_files(comfyui)
    status, answer = call(comfyui, "DELETE", f"/identity/profiles/{profile_id}")
    assert status == 200 and answer == {"deleted": profile_id}
    assert profile_files(comfyui) == [n for n in before if n != f"{profile_id}.safetensors"]
    for method, path in (("DELETE", ""), ("GET", ""), ("GET", "/thumbnail")):
        status, answer = call(comfyui, method, f"/identity/profiles/{profile_id}{path}")
        assert status == 404 and f"no profile '{profile_id}'" in answer["error"]


def test_a_profile_is_linked_to_phota_once_phota_knows_the_id(comfyui, fake):
    """The panel's Phota link: checked with Phota (the fake, through ComfyUI's keys file), stored in ComfyUI's
    user folder, its training status shown; unknown ids, bad ids and a missing key get one sentence."""
    fake.reset()
    fake.phota_profiles.update(ph0bama="READY", phtraining="IN_PROGRESS")
    folder = comfyui.user / "identity_layer"
    folder.mkdir(parents=True, exist_ok=True)
    keys = fake.keys_file(folder)
    status, answer = upload(comfyui, "Phota Person", [tom()])
    profile_id = wait_for(comfyui, answer["job"])["profile_id"]
    path = f"/identity/profiles/{profile_id}/phota"
    assert call(comfyui, "GET", path) == (200, {"phota_id": None})
    status, answer = call(comfyui, "POST", path, {"phota_id": "nobody"})
    assert status == 400 and "Phota has no profile 'nobody'" in answer["error"]
    status, answer = call(comfyui, "POST", path, {"phota_id": "../etc"})
    assert status == 400 and "is not a Phota profile id" in answer["error"]
    assert call(comfyui, "GET", path) == (200, {"phota_id": None}), "nothing was linked"
    assert call(comfyui, "POST", path, {"phota_id": "phtraining"}) == (
        200,
        {"phota_id": "phtraining", "status": "IN_PROGRESS", "message": "training"},
    )
    assert call(comfyui, "POST", path, {"phota_id": "ph0bama"})[1]["status"] == "READY"
    assert json.loads((folder / "phota_links.json").read_text()) == {profile_id: "ph0bama"}
    assert call(comfyui, "GET", path) == (200, {"phota_id": "ph0bama", "status": "READY", "message": "ready to use"})
    keys.rename(folder / "keys.moved")
    try:
        status, answer = call(comfyui, "GET", path)
        assert status == 200 and answer["phota_id"] == "ph0bama" and "no API key for phota" in answer["error"]
        assert KEYS["phota"] not in json.dumps(answer)
    finally:
        (folder / "keys.moved").rename(keys)
    assert call(comfyui, "DELETE", path) == (200, {"unlinked": True})
    assert call(comfyui, "GET", path) == (200, {"phota_id": None})
    assert call(comfyui, "GET", "/identity/profiles/nobody-000000/phota")[0] == 404


def test_links_made_at_once_through_the_route_are_all_kept(comfyui, fake, tom_profile):
    """Twelve panels linking twelve profiles at the same moment: every link answered 200 is in the file."""
    import dataclasses
    from concurrent.futures import ThreadPoolExecutor

    from identity.profile import ProfileStore, new_id

    fake.reset()
    folder = comfyui.user / "identity_layer"
    folder.mkdir(parents=True, exist_ok=True)
    fake.keys_file(folder)
    (folder / "phota_links.json").unlink(missing_ok=True)
    store = ProfileStore(comfyui.base / "models" / "identity_profiles")
    ids = []
    for n in range(12):
        profile = dataclasses.replace(tom_profile, id=new_id(f"Link Race {n}"), name=f"Link Race {n}")
        store.save(profile)
        ids.append(profile.id)
        fake.phota_profiles[f"phrace{n}"] = "READY"
    try:
        with ThreadPoolExecutor(len(ids)) as pool:
            answers = list(
                pool.map(
                    lambda n: call(comfyui, "POST", f"/identity/profiles/{ids[n]}/phota", {"phota_id": f"phrace{n}"}),
                    range(len(ids)),
                )
            )
        assert [status for status, _ in answers] == [200] * len(ids), answers
        assert json.loads((folder / "phota_links.json").read_text()) == {i: f"phrace{n}" for n, i in enumerate(ids)}
    finally:
        for profile_id in ids:
            store.delete(profile_id)
        (folder / "phota_links.json").unlink(missing_ok=True)


@pytest.mark.parametrize("bad", ["UPPER", "a.b", "..%2F..%2Fsecret", "%2E%2E", "x" * 65, "-dash", "a%00b"])
def test_ids_are_checked_before_any_path_is_built(comfyui, bad):
    secret = comfyui.base / "models" / "secret.safetensors"
    secret.write_bytes(b"keep me")
    for method, path, body in (
        ("GET", "", None),
        ("DELETE", "", None),
        ("GET", "/thumbnail", None),
        ("POST", "/rename", {"name": "x"}),
        ("GET", "/references/0", None),
        ("GET", "/phota", None),
        ("POST", "/phota", {"phota_id": "p1"}),
        ("DELETE", "/phota", None),
    ):
        status, answer = call(comfyui, method, f"/identity/profiles/{bad}{path}", body)
        if status == 404:  # aiohttp matched no route (the id held a '/' once decoded): no handler ran
            assert answer == b"404: Not Found", (method, path, answer)
        else:  # a handler ran: it refused the id before building a path from it
            assert status == 400 and "invalid profile id" in answer["error"], (method, path, status, answer)
    assert secret.read_bytes() == b"keep me"
    status, answer = call(comfyui, "GET", "/identity/profiles/UPPER")
    assert status == 400 and "invalid profile id" in answer["error"]
    status, answer = call(comfyui, "GET", "/identity/jobs/nope")
    assert status == 404 and "no training job" in answer["error"]


def raw_upload(comfyui, body: bytes, content_type: str):
    return call(comfyui, "POST", "/identity/profiles", body, content_type)


@pytest.mark.parametrize(
    "case",
    [
        "text renamed .jpg",
        "oversized",
        "path-like name",
        "no photos",
        "too many",
        "no name",
        "not multipart",
        "unknown field",
        "exists",
        "exists in another case",
        "markup name",
        "text-chunk bomb",
        "no boundary",
        "wrong boundary",
        "huge part header",
        "unterminated",
    ],
)
def test_bad_uploads_are_refused_with_one_clear_sentence_and_write_nothing(comfyui, case):
    before = profile_files(comfyui)
    if case == "text renamed .jpg":
        status, answer = upload(comfyui, "X", [("notes.jpg", b"Meeting notes, not a photo")])
        expected = (400, "'notes.jpg' is not an image")
    elif case == "oversized":
        status, answer = upload(comfyui, "X", [("huge.jpg", b"\xff\xd8\xff\xe0" + bytes(33 * 1024 * 1024))])
        expected = (400, "'huge.jpg' is over 32 MiB")
    elif case == "path-like name":
        status, answer = upload(comfyui, "X", [("../../models/evil.jpg", TOM_HANKS.read_bytes())])
        expected = (400, "looks like a path")
    elif case == "no photos":
        status, answer = upload(comfyui, "X", [])
        expected = (400, "no photos uploaded")
    elif case == "too many":
        status, answer = upload(comfyui, "X", [tom()] * 51)
        expected = (400, "more than 50 photos")
    elif case == "no name":
        status, answer = upload(comfyui, "  ", [tom()])
        expected = (400, "needs a name")
    elif case == "not multipart":
        status, answer = call(comfyui, "POST", "/identity/profiles", {"name": "X"})
        expected = (400, "multipart/form-data")
    elif case == "unknown field":
        status, answer = upload(comfyui, "X", [tom()], path="/etc")
        expected = (400, "unexpected form field 'path'")
    elif case == "markup name":
        status, answer = upload(comfyui, '<img src=x onerror="alert(1)">', [tom()])
        expected = (400, "contains '<' or '>'")
    elif case == "text-chunk bomb":
        status, answer = upload(comfyui, "X", [("bomb.png", text_bomb_png())])
        expected = (400, "'bomb.png': unreadable")
    elif case == "no boundary":
        status, answer = raw_upload(comfyui, multipart({"name": "X"}, [tom()])[0], "multipart/form-data")
        expected = (400, "not well-formed multipart/form-data")
    elif case == "wrong boundary":
        body, _ = multipart({"name": "X"}, [tom()])
        status, answer = raw_upload(comfyui, body, "multipart/form-data; boundary=not-the-one-used")
        expected = (400, "not well-formed multipart/form-data")
    elif case == "huge part header":
        body = (
            b'--b\r\nContent-Disposition: form-data; name="name"\r\nX-Pad: '
            + b"a" * 200_000
            + b"\r\n\r\nX\r\n--b--\r\n"
        )
        status, answer = raw_upload(comfyui, body, "multipart/form-data; boundary=b")
        expected = (400, "not well-formed multipart/form-data")
    elif case == "unterminated":
        body, content_type = multipart({"name": "X"}, [tom()])
        status, answer = raw_upload(comfyui, body[:-200], content_type)
        expected = (400, "not well-formed multipart/form-data")
    else:
        status, answer = upload(comfyui, "Existing Person", [tom()], overwrite="true")
        wait_for(comfyui, answer["job"])
        before = profile_files(comfyui)
        status, answer = upload(comfyui, "Existing Person" if case == "exists" else "EXISTING person", [tom()])
        expected = (409, "already exists (existing-person-")
    assert status == expected[0] and expected[1] in answer["error"], (status, answer)
    assert not case.startswith("exists") or "send overwrite=true" in answer["error"], (
        "a refusal says how to get past it"
    )
    assert "Traceback" not in answer["error"] and "\n" not in answer["error"]
    assert profile_files(comfyui) == before
    assert call(comfyui, "GET", "/identity/profiles")[0] == 200, "the server keeps serving"


def test_an_upload_keeps_the_good_photos_and_lists_each_refused_file_with_its_reason(comfyui):
    files = [("notes.jpg", b"Meeting notes, not a photo"), tom(), ("bomb.png", text_bomb_png())]
    status, answer = upload(comfyui, "Kept Photos", files)
    assert status == 202, answer
    refused = {r["index"]: (r["name"], r["reason"]) for r in answer["refused"]}
    assert sorted(refused) == [0, 2], answer["refused"]
    assert refused[0][0] == "notes.jpg" and "'notes.jpg' is not an image" in refused[0][1]
    assert refused[2][0] == "bomb.png" and "unreadable" in refused[2][1]
    job = wait_for(comfyui, answer["job"])
    assert job["status"] == "READY" and [p["path"] for p in job["photos"]] == ["tom.png"], job
    call(comfyui, "DELETE", f"/identity/profiles/{job['profile_id']}")


def test_a_second_training_of_one_profile_is_refused_while_the_first_runs(comfyui):
    photos = [tom()] * 24  # enough work to still be running when the next requests arrive
    status, answer = upload(comfyui, "Busy Person", photos)
    assert status == 202, answer
    job = answer["job"]
    status, second = upload(comfyui, "Busy Person", [tom()])
    assert status == 409 and "already being trained" in second["error"]
    for method, path, body in (("DELETE", "", None), ("POST", "/rename", {"name": "Other"})):
        status, refused = call(comfyui, method, f"/identity/profiles/{job['profile_id']}{path}", body)
        assert status == 409 and "being trained right now" in refused["error"], refused
    assert [j["job_id"] for j in call(comfyui, "GET", "/identity/profiles")[1]["jobs"]] == [job["job_id"]]
    assert wait_for(comfyui, job)["status"] == "READY"
    status, answer = upload(comfyui, "Busy Person", [tom()], overwrite="true")
    assert status == 202 and answer["job"]["profile_id"] == job["profile_id"], "retraining keeps the id"
    wait_for(comfyui, answer["job"])


def test_a_stalled_upload_is_answered_and_let_go(comfyui):
    import re
    import socket
    from urllib.parse import urlsplit

    idle = int(re.search(r"^IDLE_SECONDS = (\d+)", (ROOT / "nodes" / "routes.py").read_text(), re.M)[1])

    body, content_type = multipart({"name": "Stalled"}, [tom()])
    address = urlsplit(comfyui.client.url)
    with socket.create_connection((address.hostname, address.port), timeout=idle + 30) as connection:
        connection.sendall(
            f"POST /identity/profiles HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
        started = time.monotonic()
        answer = connection.recv(65536).decode(errors="replace")  # nothing more is sent: the sender has stalled
        waited = time.monotonic() - started
    assert answer.startswith("HTTP/1.1 408"), answer[:200]
    assert "stalled" in answer and idle - 1 <= waited <= idle + 20, waited


def _half_sent(comfyui, name: str, **fields):
    """A connection that has sent the form's fields and half of its photo, then says nothing more."""
    import socket
    from urllib.parse import urlsplit

    body, content_type = multipart({"name": name, **fields}, [tom()])
    address = urlsplit(comfyui.client.url)
    connection = socket.create_connection((address.hostname, address.port), timeout=60)
    connection.sendall(
        f"POST /identity/profiles HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[: len(body) // 2]
    )
    return connection


def test_a_taken_name_is_refused_before_the_photos_are_read(comfyui):
    status, answer = upload(comfyui, "Taken Early", [tom()])
    profile_id = wait_for(comfyui, answer["job"])["profile_id"]
    try:
        with _half_sent(comfyui, "taken early") as connection:  # the rest of the photo never comes
            answer = connection.recv(65536).decode(errors="replace")
        assert answer.startswith("HTTP/1.1 409") and "already exists" in answer and "overwrite" in answer, answer
    finally:
        call(comfyui, "DELETE", f"/identity/profiles/{profile_id}")


def test_uploads_past_the_limit_are_told_when_to_try_again_before_their_body_is_read(comfyui):
    import re

    limit = int(re.search(r"^MAX_UPLOADS_AT_ONCE = (\d+)", (ROOT / "nodes" / "routes.py").read_text(), re.M)[1])
    held = [_half_sent(comfyui, f"Held Upload {n}") for n in range(limit)]
    try:
        wait_until(
            lambda: upload(comfyui, "One Too Many", [("blank.png", png())])[0] == 503,
            "the upload past the limit answered 503",
        )
        status, answer = call(
            comfyui, "POST", "/identity/profiles", *multipart({"name": "One Too Many"}, [("blank.png", png())])
        )
        assert status == 503 and "uploads are being received" in answer["error"], answer
        body, content_type = multipart({"name": "One Too Many"}, [("blank.png", png())])
        request = urllib.request.Request(
            comfyui.client.url + "/identity/profiles", data=body, method="POST", headers={"Content-Type": content_type}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        assert refused.value.code == 503 and refused.value.headers["Retry-After"] == "5"
    finally:
        for connection in held:
            connection.close()
    wait_until(
        lambda: upload(comfyui, "After The Held Ones", [("blank.png", png())])[0] != 503, "uploads accepted again"
    )


def test_a_huge_portrait_index_and_nested_json_get_a_sentence(comfyui):
    status, answer = call(comfyui, "GET", "/identity/profiles/nobody-000000/references/" + "9" * 4300)
    assert status == 404 and "no reference portrait" in answer["error"], answer
    status, answer = call(
        comfyui,
        "POST",
        "/identity/profiles/nobody-000000/rename",
        b'{"name": ' + b"[" * 1500 + b"]" * 1500 + b"}",
        "application/json",
    )
    assert status == 400 and '{"name"' in answer["error"], answer
    status, answer = call(
        comfyui, "POST", "/identity/profiles/nobody-000000/rename", b"[" * 100_000, "application/json"
    )
    assert status == 413 and "over 4096 bytes" in answer["error"], answer


def test_not_found_answers_show_no_path_and_no_other_profile(comfyui):
    status, answer = upload(comfyui, "Private Person", [tom()])
    wait_for(comfyui, answer["job"])
    for path in ("", "/thumbnail", "/references/0"):
        status, answer = call(comfyui, "GET", f"/identity/profiles/nobody-000000{path}")
        assert status == 404 and "no profile 'nobody-000000'" in answer["error"], answer
        assert str(comfyui.base) not in answer["error"] and "Private Person" not in answer["error"], answer


def test_a_rename_cannot_take_a_name_being_trained(comfyui):
    status, answer = upload(comfyui, "Someone Else", [tom()])
    other = wait_for(comfyui, answer["job"])["profile_id"]
    status, answer = upload(comfyui, "Name In Training", [tom()] * 24)
    assert status == 202, answer
    status, refused = call(comfyui, "POST", f"/identity/profiles/{other}/rename", {"name": "name in training"})
    assert status == 409 and "being trained right now" in refused["error"], refused
    assert wait_for(comfyui, answer["job"])["status"] == "READY"
    names = [p["name"] for p in call(comfyui, "GET", "/identity/profiles")[1]["profiles"]]
    assert names.count("Name In Training") == 1 and "name in training" not in names


def test_broken_files_in_the_profile_folder_hide_nothing(comfyui, tmp_path):
    import os

    from identity.profile import ProfileStore

    status, answer = upload(comfyui, "Survivor", [tom()])
    survivor = wait_for(comfyui, answer["job"])["profile_id"]
    folder = comfyui.base / "models" / "identity_profiles"
    profile = ProfileStore(folder).load(survivor)
    outside = tmp_path / "outside-000000.safetensors"
    crafted(outside, profile, id="outside-000000")
    hostile = {
        "outside-000000": lambda p: p.symlink_to(outside),
        "fifo-000000": os.mkfifo,
        "noname-000000": lambda p: crafted(p, profile, id="noname-000000", name=None),
        "threshold-000000": lambda p: crafted(p, profile, id="threshold-000000", calibration='{"threshold": "x"}'),
        "markup-000000": lambda p: crafted(p, profile, id="markup-000000", name="<img src=x onerror=alert(1)>"),
        "twin-000000": lambda p: crafted(p, profile, id="twin-000000", name="SURVIVOR"),
    }
    try:
        for profile_id, make in hostile.items():
            make(folder / f"{profile_id}.safetensors")
        status, listing = call(comfyui, "GET", "/identity/profiles")
        labels = {p["id"]: p["label"] for p in listing["profiles"]}
        assert status == 200 and set(hostile) & set(labels) == {"twin-000000"}, labels
        assert (labels[survivor], labels["twin-000000"]) == (f"Survivor ({survivor})", "SURVIVOR (twin-000000)"), (
            "a copied-in file whose name differs only in case is told apart by its id in the picker"
        )
        options = comfyui.client.object_info()["IdentityProfileLoad"]["input"]["required"]["profile"][1]["options"]
        assert survivor in options and "twin-000000" in options, "the picker lists ids; labels come with the listing"
        for profile_id in set(hostile) - {"twin-000000"}:
            status, answer = call(comfyui, "GET", f"/identity/profiles/{profile_id}")
            assert status in (400, 404) and "\n" not in answer["error"], (profile_id, answer)
        log = comfyui.log_tail(400)
        assert log.count("skipping profile file noname-000000.safetensors") == 1, "one warning per broken file"
    finally:
        for profile_id in hostile:
            (folder / f"{profile_id}.safetensors").unlink(missing_ok=True)


@needs_faces
def test_trainings_past_the_limit_are_told_when_to_try_again(comfyui):
    """Trainings run one at a time; those waiting or running are capped, so uploads cannot pile up photos in
    memory. Each accepted upload here is 24 photos (seconds of work), so the cap is reached long before the first
    is done; the 429 names the limit and when to try again, and uploads are taken again once trainings end."""
    import re

    limit = int(re.search(r"^MAX_UNFINISHED_TRAININGS = (\d+)", (ROOT / "nodes" / "routes.py").read_text(), re.M)[1])
    accepted, refused = [], None
    body_photos = [tom()] * 24
    for n in range(limit + 4):
        body, content_type = multipart({"name": f"Queued Person {n}"}, body_photos)
        request = urllib.request.Request(
            comfyui.client.url + "/identity/profiles", data=body, method="POST", headers={"Content-Type": content_type}
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                accepted.append(json.loads(response.read())["job"])
        except urllib.error.HTTPError as exc:
            refused = (exc.code, exc.headers["Retry-After"], json.loads(exc.read()))
            break
    try:
        assert refused is not None, f"{len(accepted)} trainings were all accepted"
        status, retry_after, answer = refused
        assert (status, retry_after) == (429, "30"), refused
        assert f"{limit} trainings are waiting or running" in answer["error"], answer
        unfinished = [
            j for j in call(comfyui, "GET", "/identity/profiles")[1]["jobs"] if j["status"] not in ("READY", "ERROR")
        ]
        assert len(accepted) >= limit and len(unfinished) >= limit - 1, (len(accepted), unfinished)
        for job in accepted:
            assert wait_for(comfyui, job)["status"] == "READY"
        status, answer = upload(comfyui, "Queued Person After", [tom()])
        assert status == 202, answer
        accepted.append(answer["job"])
        wait_for(comfyui, answer["job"])
    finally:
        for job in accepted:
            call(comfyui, "DELETE", f"/identity/profiles/{job['profile_id']}")
