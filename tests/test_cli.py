"""The command line: train, score, list, show, delete; JSON outputs; one clear line for every user error.

The commands run in this process through `identity.cli.main` (what `python -m identity` calls); one test runs
`python -m identity` itself, for what only a process shows: its exit status and stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, SHARED, TOM_HANKS, face, needs_faces, one_line_error, run_cli


def cli(*args, store=None, env=None):
    store_args = ["--store", store] if store is not None else []
    return run_cli(*args, *store_args, env={"IDENTITY_MODELS_DIR": str(SHARED / "models"), **(env or {})})


def test_python_m_identity_exits_with_the_status_and_stderr_of_each_outcome(tmp_path):
    """0 for work done, 1 with one `error:` line for a user error, 2 for a usage error."""

    def process(*args):
        command = [sys.executable, "-m", "identity", *map(str, args), "--store", str(tmp_path)]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ), timeout=300)

    listed = process("list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == [] and listed.stderr == "", listed.stderr
    one_line_error(process("show", "../../etc/passwd"), "invalid profile id")
    usage = process("score", TOM_HANKS)
    assert usage.returncode == 2 and "the following arguments are required: --profile" in usage.stderr, usage.stderr


@needs_faces
def test_train_and_score_as_json(tmp_path):
    trained = cli(
        "train",
        face("obama"),
        face("biden/biden1.jpg"),
        "--name",
        "Barack Obama",
        "--engine",
        "embedded",
        "--json",
        store=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr
    report = json.loads(trained.stdout)
    assert set(report) >= {"profile_id", "name", "status", "message", "engine", "photos", "calibration"}
    assert report["status"] == "READY" and report["engine"] == "embedded" and report["name"] == "Barack Obama"
    verdicts = {p["path"].rsplit("/", 1)[-1]: p["verdict"] for p in report["photos"]}
    assert verdicts["biden1.jpg"] == "rejected" and verdicts["obama1.jpg"] == "accepted"
    assert all(set(p) >= {"path", "verdict", "reason"} for p in report["photos"])
    assert report["calibration"]["threshold"] > 0

    scored = cli(
        "score",
        face("groups/biden_obama_b.jpg"),
        face("rose_leslie/rose1.jpg"),
        "--profile",
        "barack obama",
        "--engine",
        "embedded",
        "--annotate",
        tmp_path / "annotated",
        "--json",
        store=tmp_path,
    )
    assert scored.returncode == 0, scored.stderr
    output = json.loads(scored.stdout)
    assert output["engine"] == "embedded" and len(output["images"]) == 2
    group = output["images"][0]["faces"]
    assert [f["bbox"][0] for f in group] == sorted(f["bbox"][0] for f in group)
    assert [f["profile_id"] for f in group] == [None, report["profile_id"], None]
    assert (
        set(group[1]) == {"kind", "measures", "bbox", "profile_id", "similarity", "scores", "next", "margin"}
        and len(group[1]["bbox"]) == 4
    )
    assert group[1]["kind"] == "person" and "ArcFace" in group[1]["measures"]
    assert all(f["profile_id"] is None for f in output["images"][1]["faces"])
    assert sorted(p.name for p in (tmp_path / "annotated").iterdir()) == [
        "biden_obama_b.annotated.png",
        "rose1.annotated.png",
    ]


def test_list_show_delete(tmp_path):
    assert cli("train", TOM_HANKS, "--name", "Tom Hanks", "--engine", "embedded", store=tmp_path).returncode == 0
    listed = json.loads(cli("list", "--json", store=tmp_path).stdout)
    assert [p["name"] for p in listed] == ["Tom Hanks"]
    profile_id = listed[0]["id"]
    shown = cli("show", profile_id, "--json", store=tmp_path)
    assert json.loads(shown.stdout)["calibration"]["confidence"] == "low"
    assert cli("delete", profile_id, store=tmp_path).returncode == 0
    assert json.loads(cli("list", "--json", store=tmp_path).stdout) == []


def test_the_default_engine_is_named(tmp_path):
    result = cli(
        "train", TOM_HANKS, "--name", "Tom", store=tmp_path, env={"IDENTITY_MODELS_DIR": str(tmp_path / "none")}
    )
    assert result.returncode == 0
    assert "engine: embedded (no insightface pack found)" in result.stderr


@pytest.mark.parametrize(
    "case",
    [
        "unknown profile",
        "malformed id",
        "no photo accepted",
        "unreadable file",
        "missing model files",
        "existing name",
        "store is a file",
        "store inside a file",
        "annotate is a file",
    ],
)
def test_user_errors_are_one_clear_line(tmp_path, case):
    (tmp_path / "notes.jpg").write_text("not an image")
    if case == "unknown profile":
        one_line_error(
            cli("score", TOM_HANKS, "--profile", "nobody", "--engine", "embedded", store=tmp_path),
            "no profile 'nobody'",
        )
    elif case == "malformed id":
        one_line_error(cli("show", "../../etc/passwd", store=tmp_path), "invalid profile id")
        one_line_error(cli("delete", "Bad Id", store=tmp_path), "invalid profile id")
    elif case == "no photo accepted":
        one_line_error(
            cli("train", tmp_path / "notes.jpg", "--name", "X", "--engine", "embedded", store=tmp_path),
            "no photo accepted",
            "not an image",
        )
    elif case == "unreadable file":
        assert cli("train", TOM_HANKS, "--name", "Tom", "--engine", "embedded", store=tmp_path).returncode == 0
        one_line_error(
            cli("score", tmp_path / "notes.jpg", "--profile", "Tom", "--engine", "embedded", store=tmp_path),
            "notes.jpg",
            "not an image",
        )
    elif case == "missing model files":
        one_line_error(
            cli("train", TOM_HANKS, "--name", "X", "--engine", "antelopev2", store=tmp_path),
            "antelopev2",
            "insightface/models/antelopev2",
        )
    elif case == "existing name":
        assert cli("train", TOM_HANKS, "--name", "Tom", "--engine", "embedded", store=tmp_path).returncode == 0
        one_line_error(
            cli("train", TOM_HANKS, "--name", "Tom", "--engine", "embedded", store=tmp_path),
            "already exists",
            "--overwrite",
        )
    elif case in ("store is a file", "store inside a file"):
        store = tmp_path / "notes.jpg" if case == "store is a file" else tmp_path / "notes.jpg" / "profiles"
        result = cli("train", TOM_HANKS, "--name", "Tom", "--engine", "embedded", store=store)
        one_line_error(result, "cannot write profiles to", "choose a folder")
        assert "engine:" not in result.stderr and "VALIDATING" not in result.stderr, "refused before the work"
    else:
        assert cli("train", TOM_HANKS, "--name", "Tom", "--engine", "embedded", store=tmp_path).returncode == 0
        result = cli(
            "score",
            TOM_HANKS,
            "--profile",
            "Tom",
            "--engine",
            "embedded",
            "--annotate",
            tmp_path / "notes.jpg",
            store=tmp_path,
        )
        one_line_error(result, "cannot write annotated images to", "it is a file")
        assert "engine:" not in result.stderr, "refused before the work"
