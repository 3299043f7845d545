"""Batch scoring at dataset scale: Parquet results, resume exactly once, unreadable images, matches, and the same
rows in this process and on a real local Ray cluster (2 CPUs on 127.0.0.1), also when a worker is killed mid-run."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FACES, ROOT, SHARED, needs_faces, run_cli

from identity.scale.cluster import LOOPBACK_ONLY

os.environ.update(LOOPBACK_ONLY)  # the test cluster, its workers and the commands that join it stay on 127.0.0.1

pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed (pip install '.[scale]')")

pytestmark = needs_faces


@pytest.fixture(scope="module")
def store(tmp_path_factory, people):
    """Obama's and Biden's profiles saved in a folder, as the command reads them."""
    from identity.profile import ProfileStore

    folder = tmp_path_factory.mktemp("profiles")
    for profile in people.values():
        ProfileStore(folder).save(profile)
    return folder


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """The fixture photos (in sub-folders) plus a file that is not an image."""
    folder = tmp_path_factory.mktemp("dataset")
    shutil.copytree(FACES, folder / "faces", ignore=shutil.ignore_patterns("*.json"))
    (folder / "faces" / "notes.jpg").write_text("not an image")
    return folder / "faces"


def batch(store, out, *sources, extra=(), background=False, here=False, as_json=True):
    """`python -m identity batch-score …`: in a subprocess as a user runs it, in this process (`here`, faster: the
    engine stays loaded), or left running in the background."""
    argv = [
        "batch-score",
        *map(str, sources),
        "--profile",
        "Barack Obama",
        "--profile",
        "Joe Biden",
        "--engine",
        "embedded",
        "--store",
        str(store),
        "--out",
        str(out),
        "--chunk",
        "4",
        *(["--json"] if as_json else []),
        *map(str, extra),
    ]
    if here:
        return run_cli(*argv)
    command = [sys.executable, "-m", "identity", *argv]
    environment = {**os.environ, "IDENTITY_MODELS_DIR": str(SHARED / "models")}
    if background:
        return subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
        )
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=environment, timeout=600)


def summary(result) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def rows(out: Path, table: str) -> list[dict]:
    """A results table's rows in a fixed order (Parquet parts arrive in whatever order workers finish)."""
    found = pq.read_table(out / table).to_pylist()
    return sorted(found, key=lambda r: (r["path"], r["sha256"], r.get("face", 0)))


def keys(out: Path) -> list[tuple[str, str]]:
    return [(r["path"], r["sha256"]) for r in rows(out, "images")]


@pytest.fixture
def background():
    """Starts `batch(…, background=True)` runs and kills any still running when the test ends (by its own pid)."""
    started = []

    def start(*args, **kwargs):
        started.append(batch(*args, background=True, **kwargs))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.fixture(scope="module")
def reference(store, dataset, tmp_path_factory):
    """One complete run in this process: what every other run must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "results"
    return out, summary(batch(store, out, dataset, here=True))


def test_results_have_a_row_per_face_and_per_image(reference, dataset, people):
    out, report = reference
    images, faces = rows(out, "images"), rows(out, "faces")
    photos = sorted(p for p in dataset.rglob("*") if p.is_file())
    assert [r["path"] for r in images] == [str(p) for p in photos]
    assert len(set(keys(out))) == len(images)
    obama, biden = people["Barack Obama"].id, people["Joe Biden"].id

    group = [f for f in faces if f["path"].endswith("groups/obama_biden_a.jpg")]
    assert [f["profile_id"] for f in group] == [obama, biden]  # left to right, as MANIFEST.json says
    assert all(set(f["scores"]) == {obama, biden} and len(f["bbox"]) == 4 and f["engine"] == "embedded" for f in faces)
    assert all(f["similarity"] == f["scores"][f["profile_id"]] for f in faces if f["profile_id"])
    portraits = [r for r in images if "/obama/" in r["path"]]
    assert len(portraits) == 6 and all(r["subjects"][obama] > 0.363 and r["subjects"][biden] == 0 for r in portraits)

    broken = [r for r in images if r["path"].endswith("notes.jpg")]
    assert broken[0]["status"] == "unreadable" and "not an image" in broken[0]["reason"]
    assert report["images"] == len(photos) and report["unreadable"] == 1 and report["faces"] == len(faces)
    assert report["this_run"] == {**report["this_run"], "scored": len(photos), "skipped": 0}
    both = [r["path"].rsplit("/", 1)[1] for r in images if r["score"] and r["score"] > 0]
    assert sorted(both) == ["biden_obama_b.jpg", "obama_biden_a.jpg"] and report["matches_all"] == 2
    assert report["matches"] == {
        obama: sum(1 for r in images if (r["subjects"] or {}).get(obama)),
        biden: sum(1 for r in images if (r["subjects"] or {}).get(biden)),
    }


def test_a_resumed_run_adds_only_what_is_missing(store, dataset, reference, tmp_path):
    out = tmp_path / "results"
    first = summary(batch(store, out, dataset / "obama", dataset / "groups", here=True))
    assert first["images"] == 9
    parts = sorted(p.name for p in (out / "images").iterdir())

    again = summary(batch(store, out, dataset / "obama", dataset / "groups", here=True))
    assert again["this_run"]["scored"] == 0 and again["this_run"]["skipped"] == 9
    assert sorted(p.name for p in (out / "images").iterdir()) == parts  # nothing written

    whole = summary(batch(store, out, dataset, here=True))
    assert whole["this_run"]["scored"] == whole["images"] - 9 and whole["this_run"]["skipped"] == 9
    assert rows(out, "images") == rows(reference[0], "images")
    assert rows(out, "faces") == rows(reference[0], "faces")


def test_a_changed_image_is_scored_again(store, dataset, tmp_path):
    images = tmp_path / "images"
    shutil.copytree(dataset / "biden", images)
    out = tmp_path / "results"
    summary(batch(store, out, images, here=True))
    shutil.copyfile(dataset / "obama" / "obama1.jpg", images / "biden1.jpg")
    changed = summary(batch(store, out, images, here=True))
    assert (
        changed["this_run"]["scored"] == 1 and changed["images"] == 3
    )  # the old content's row stays, keyed by its hash
    assert len(set(keys(out))) == 3


def test_a_run_killed_mid_way_resumes_exactly_once(store, dataset, reference, tmp_path, background):
    out = tmp_path / "results"
    running = background(store, out, dataset, extra=["--chunk", "1", "--part-size", "1"])
    deadline = time.monotonic() + 300
    while len(list((out / "images").glob("part-*.parquet"))) < 3 and time.monotonic() < deadline:
        assert running.poll() is None, running.communicate()[1][-3000:]
        time.sleep(0.05)
    os.kill(running.pid, signal.SIGKILL)
    running.wait()
    committed = keys(out)
    assert 3 <= len(committed) < len(keys(reference[0]))

    resumed = summary(batch(store, out, dataset, here=True))
    assert resumed["this_run"]["skipped"] == len(committed)
    assert resumed["this_run"]["scored"] == len(keys(reference[0])) - len(committed)
    assert rows(out, "images") == rows(reference[0], "images")
    assert rows(out, "faces") == rows(reference[0], "faces")
    assert not list(out.rglob(".*.tmp"))


def test_a_row_holds_what_the_score_command_finds_in_that_file(reference, dataset, people, embedded):
    """One way to score a file: a 2000 px JPEG is decoded at the scale detection needs, in batch-score as in
    `python -m identity score`, so both give the same faces and similarities."""
    from identity.images import load_reduced
    from identity.scoring import score_files

    paths = [
        dataset / "groups" / "biden_obama_b.jpg",
        dataset / "obama" / "obama3.jpg",
        dataset / "biden" / "biden1.jpg",
    ]
    assert load_reduced(paths[0], 640).factor == 2.0
    profiles = [people["Barack Obama"], people["Joe Biden"]]
    faces = rows(reference[0], "faces")
    for result in score_files([(str(p), p) for p in paths], profiles, embedded):
        found = [f for f in faces if f["path"] == result.label]
        assert [f["profile_id"] for f in found] == [f.profile_id for f in result.faces], result.label
        assert same_rows([f["bbox"] for f in found], [list(f.bbox) for f in result.faces]), result.label
        assert same_rows([f["similarity"] for f in found], [f.similarity for f in result.faces]), result.label


def test_faces_whose_commit_never_arrived_are_scored_again_not_twice(store, dataset, reference, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(reference[0], out)
    (out / "images" / "part-000000.parquet").unlink()  # killed between the faces and the images rename
    resumed = summary(batch(store, out, dataset, here=True))
    assert resumed["this_run"]["scored"] == len(keys(reference[0]))
    assert rows(out, "faces") == rows(reference[0], "faces")


def test_a_second_answer_for_an_image_is_never_written(store, dataset, people, tmp_path):
    """What a retried Ray task does: the same images answered twice (and an image listed twice)."""
    import pyarrow as pa

    from identity.profile import ProfileStore
    from identity.scale.results import ResultsFolder
    from identity.scale.worker import ImageScorer

    profiles = [ProfileStore(store).load(p.id) for p in people.values()]
    scorer = ImageScorer(
        "embedded", "cpu", profiles[0].engine.key, {p.id: ProfileStore(store).path(p.id).read_bytes() for p in profiles}
    )
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    paths = [str(p) for p in sorted((dataset / "biden").iterdir())] + [str(broken)]
    answer = scorer(pa.table({"path": paths + paths[:1]}))
    results = ResultsFolder(
        tmp_path / "results",
        {"name": "embedded", "key": profiles[0].engine.key},
        [{"id": p.id, "name": p.name, "created": p.created} for p in profiles],
    ).open()
    first = results.add(answer)  # what the progress line counts: each image once, the unreadable one too
    assert sorted(row["path"] for row in first) == sorted(paths)
    assert [row["path"] for row in first if row["status"] == "unreadable"] == [str(broken)]
    assert results.add(answer) == []
    results.close()
    assert sorted(keys(tmp_path / "results")) == sorted(set(keys(tmp_path / "results")))
    assert len(keys(tmp_path / "results")) == len(paths)


def test_a_results_folder_has_one_writer_at_a_time_in_this_process_and_in_another(tmp_path):
    import subprocess
    import sys

    from identity.errors import IdentityError
    from identity.scale.results import ResultsFolder

    def folder():
        return ResultsFolder(tmp_path / "results", {"name": "embedded", "key": "k"}, [])

    first = folder().open()
    with pytest.raises(IdentityError, match="another batch-score is writing"):
        folder().open()
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from identity.scale.results import ResultsFolder as R; "
            "R(sys.argv[1], {'name': 'embedded', 'key': 'k'}, []).open()",
            str(tmp_path / "results"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert other.returncode == 1 and "another batch-score is writing" in other.stderr, other.stderr
    first.close()
    folder().open().close()  # free again once the writer closed it


def test_copy_matches_copies_images_where_everyone_is_found(store, dataset, reference, tmp_path):
    out, copies = tmp_path / "results", tmp_path / "matches"
    shutil.copytree(reference[0], out)
    report = summary(batch(store, out, dataset, extra=["--copy-matches", copies, "--min-similarity", "0.4"], here=True))
    images = rows(out, "images")
    expected = [r for r in images if r["score"] and r["score"] >= 0.4]
    assert report["copied"] == len(expected) >= 1 and report["this_run"]["scored"] == 0
    expected = {f"{Path(r['path']).stem}-{r['sha256'][:8]}{Path(r['path']).suffix}": r["path"] for r in expected}
    assert sorted(p.name for p in copies.iterdir()) == sorted(expected)
    assert all((copies / name).read_bytes() == Path(path).read_bytes() for name, path in expected.items())


def test_sources_are_folders_files_and_lists(store, dataset, tmp_path):
    listing = tmp_path / "todo.txt"
    listing.write_text(f"# two photos\n{dataset / 'biden' / 'biden1.jpg'}\n\n{tmp_path / 'gone.png'}\n")
    out = tmp_path / "results"
    report = summary(batch(store, out, listing, dataset / "biden", dataset / "biden" / "biden2.jpg", here=True))
    assert [r["path"] for r in rows(out, "images")] == sorted(
        [str(dataset / "biden" / "biden1.jpg"), str(dataset / "biden" / "biden2.jpg"), str(tmp_path / "gone.png")]
    )
    assert report["failures"] == [{"path": str(tmp_path / "gone.png"), "reason": "no such file"}]

    text = batch(store, out, listing, here=True, as_json=False)
    assert text.returncode == 0 and "scoring 0 images" in text.stderr
    assert text.stdout.splitlines()[1:] == [
        f"  Barack Obama ({report_ids(report)[0]}): found in 0 images",
        f"  Joe Biden ({report_ids(report)[1]}): found in 2 images",
        "  all profiles found: 0 images",
        f"  ✗ {tmp_path / 'gone.png'}: no such file",
    ]


def report_ids(report: dict) -> list[str]:
    return sorted(report["profiles"], key=report["profiles"].get)


def test_a_results_folder_keeps_its_profiles(store, dataset, reference, tmp_path):
    from identity.cli import main

    out = tmp_path / "results"
    shutil.copytree(reference[0], out)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = main(
            [
                "batch-score",
                str(dataset),
                "--profile",
                "Joe Biden",
                "--engine",
                "embedded",
                "--store",
                str(store),
                "--out",
                str(out),
            ]
        )
    assert code == 1 and "Traceback" not in stderr.getvalue()
    assert "resume it with the same --engine and --profile options" in stderr.getvalue()
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(
        p.name for p in (reference[0] / "images").iterdir()
    )


def test_without_ray_the_error_says_how_to_install_it(store, dataset, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    result = batch(store, tmp_path / "results", dataset / "biden", extra=["--ray", "auto"], here=True)
    assert result.returncode == 1, result.stderr
    assert "error: --ray needs Ray" in result.stderr and "pip install 'comfyui-identity-layer[scale]'" in result.stderr


# ----- on a real Ray cluster -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    """A Ray cluster of 2 CPUs started by this process and stopped with it, on loopback only (Ray reads
    `LOOPBACK_ONLY` when first imported, which this module's import arranges); yields its 127.0.0.1:PORT."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install '.[scale]')")
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20, logging_level="WARNING"
    )
    try:
        address = ray.get_runtime_context().gcs_address
        assert address.startswith("127.0.0.1:"), f"the test cluster must stay on loopback, not {address}"
        yield address
    finally:
        ray.shutdown()


def same_rows(found: list[dict], expected: list[dict]) -> bool:
    """Equal, floats to 1e-6: onnxruntime's last bits depend on its thread count (a Ray worker runs one thread)."""

    def close(a, b):
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
        if isinstance(a, float) and isinstance(b, float):
            return abs(a - b) <= 1e-6
        return a == b

    return close(found, expected)


def test_ray_gives_the_same_rows_as_this_process(cluster, store, dataset, reference, tmp_path):
    out = tmp_path / "results"
    result = batch(store, out, dataset, extra=["--ray", cluster, "--workers", "2"])
    report = summary(result)
    assert report["this_run"]["where"] == f"Ray ({cluster})"
    assert f"Ray runtime at {cluster}: 2 CPUs, 2 workers" in result.stderr, result.stderr
    assert same_rows(rows(out, "images"), rows(reference[0], "images"))
    assert same_rows(rows(out, "faces"), rows(reference[0], "faces"))


def test_ray_auto_scores_on_a_runtime_of_its_own(store, dataset, reference, tmp_path):
    """`--ray auto` (no cluster to join): a local Ray runtime of the command's own, beside the test cluster; its
    rows are this process's rows."""
    images = tmp_path / "images"
    images.mkdir()
    for name in ("obama/obama1.jpg", "biden/biden1.jpg"):
        shutil.copy(dataset / name, images / name.replace("/", "_"))
    out = tmp_path / "results"
    result = batch(store, out, images, extra=["--ray", "auto", "--workers", "1"])
    report = summary(result)
    assert report["this_run"]["where"] == "Ray (auto)"
    assert re.search(r"^Ray runtime at 127\.0\.0\.1:\d+: ", result.stderr, re.M), (
        "--ray auto must stay on loopback:\n" + result.stderr
    )
    expected = {
        Path(r["path"]).name: r
        for r in rows(reference[0], "images")
        if Path(r["path"]).parent.name in ("obama", "biden") and Path(r["path"]).name in ("obama1.jpg", "biden1.jpg")
    }
    found = {Path(r["path"]).name.split("_", 1)[1]: r for r in rows(out, "images")}
    assert found.keys() == expected.keys() == {"obama1.jpg", "biden1.jpg"}
    assert all(same_rows(found[n]["score"], expected[n]["score"]) for n in found), (found, expected)


def test_a_killed_worker_still_yields_the_complete_result(cluster, store, dataset, reference, tmp_path, background):
    out = tmp_path / "results"
    running = background(store, out, dataset, extra=["--ray", cluster, "--workers", "2", "--part-size", "1"])
    deadline = time.monotonic() + 300
    while not list((out / "images").glob("part-*.parquet")) and time.monotonic() < deadline:
        assert running.poll() is None, running.communicate()[1][-3000:]
        time.sleep(0.05)
    victims = scorer_processes()
    assert victims, "no Ray worker scoring images was found"
    os.kill(victims[0], signal.SIGKILL)
    assert len(keys(out)) < len(keys(reference[0])) and running.poll() is None  # killed mid-run
    stdout, stderr = running.communicate(timeout=600)
    assert running.returncode == 0, stderr[-3000:]
    assert same_rows(rows(out, "images"), rows(reference[0], "images"))  # nothing lost, nothing twice
    assert same_rows(rows(out, "faces"), rows(reference[0], "faces"))


def scorer_processes() -> list[int]:
    """Pids of this test's Ray actors that hold an ImageScorer (descendants of this process only)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"ImageScorer" in command and _descends_from(int(entry.name), os.getpid()):
            found.append(int(entry.name))
    return found


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
    return False


def test_more_workers_than_the_cluster_has_cpus_is_refused(cluster, store, dataset, tmp_path):
    result = batch(store, tmp_path / "results", dataset / "biden", extra=["--ray", cluster, "--workers", "3"])
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "error: --workers 3 needs 3 CPUs but the Ray cluster has 2; use --workers 2 or add nodes" in result.stderr


def test_an_out_folder_that_is_a_file_is_refused_before_the_work(store, dataset, tmp_path):
    (tmp_path / "results").write_text("not a folder")
    result = batch(store, tmp_path / "results", dataset / "biden", here=True)
    assert result.returncode == 1 and "scoring" not in result.stderr
    assert f"error: cannot write batch results to {tmp_path / 'results'} (it is a file)" in result.stderr


@needs_faces
@pytest.mark.parametrize("where", ["here", "ray"])
def test_a_pet_profile_scores_every_animal_and_says_what_it_measured(
    people, tmp_path, monkeypatch, pet_models, where, request
):
    """A cat profile beside a person's, in this process and on Ray: faces and cats each get rows, labelled with
    their kind and what was measured."""
    from pets import chelsea, variants
    from PIL import Image

    from identity.pets.engine import load_pet_engine
    from identity.profile import ProfileStore
    from identity.training import photos_from_paths, train
    from identity.training.jobs import JobRegistry

    monkeypatch.setenv("IDENTITY_MODELS_DIR", str(pet_models))  # where the workers find the pet engine
    photos = tmp_path / "chelsea"
    photos.mkdir()
    for label, image in variants(chelsea()).items():
        Image.fromarray(image).save(photos / f"{label}.png")
    engine = load_pet_engine(pet_models / "pets", pet_models / "pet_reid")
    profiles = tmp_path / "profiles"
    ProfileStore(profiles).save(people["Barack Obama"])
    ProfileStore(profiles).save(
        train(photos_from_paths([photos]), "Chelsea", engine, kind="cat", registry=JobRegistry()).profile
    )
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(chelsea()).save(images / "cat.png")
    shutil.copy(FACES / "obama" / "obama1.jpg", images / "obama.jpg")
    argv = [
        "batch-score",
        str(images),
        "--profile",
        "Barack Obama",
        "--profile",
        "Chelsea",
        "--engine",
        "embedded",
        "--store",
        str(profiles),
        "--out",
        str(tmp_path / "results"),
        "--json",
    ]
    if where == "ray":  # a command of its own joins the test cluster, as a user runs it
        argv += ["--ray", request.getfixturevalue("cluster"), "--workers", "1"]
        done = subprocess.run(
            [sys.executable, "-m", "identity", *argv],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=600,
        )
    else:
        done = run_cli(*argv)
    assert done.returncode == 0, done.stderr
    faces = rows(tmp_path / "results", "faces")
    cats = [f for f in faces if f["kind"] == "cat"]
    people_rows = [f for f in faces if f["kind"] == "person"]
    assert cats and all(f["measures"] == "appearance similarity (not identity)" for f in cats), cats
    assert any(f["path"].endswith("cat.png") and f["profile_id"] for f in cats), (
        "the cat was not matched to its profile"
    )
    assert people_rows and all("identity" in f["measures"] and "not identity" not in f["measures"] for f in people_rows)
    assert any(f["path"].endswith("obama.jpg") and f["profile_id"] for f in people_rows)


def _as_format_2(out: Path) -> None:
    """The folder as the pack wrote it before the look-alike rule (results format 2, `git log -p --
    identity/scale/results.py`): a manifest without the cohort, faces parts without the next person's columns."""
    manifest = json.loads((out / "batch.json").read_text())
    assert manifest.pop("cohort") is None
    (out / "batch.json").write_text(json.dumps({**manifest, "format_version": 2}, indent=2))
    for part in (out / "faces").glob("part-*.parquet"):
        table = pq.read_table(part)
        pq.write_table(
            table.drop_columns(["next_name", "next_similarity", "margin", "refused"]), part, compression="zstd"
        )


def test_a_folder_of_the_older_format_resumes_as_it_was_scored(store, dataset, tmp_path):
    """Format 2 rows were scored with each profile's threshold alone: resumed with --no-cohort they are kept and
    the rest scored; with the look-alike rule on, one sentence names that fix."""
    out = tmp_path / "results"
    summary(batch(store, out, dataset / "obama", dataset / "groups", extra=["--no-cohort"], here=True))
    _as_format_2(out)
    old_faces = len(pq.read_table(out / "faces"))

    refused = batch(store, out, dataset, here=True)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert "was scored before the look-alike rule (results format 2" in refused.stderr
    assert "resume it with --no-cohort" in refused.stderr
    assert json.loads((out / "batch.json").read_text())["format_version"] == 2, "nothing was changed"

    whole = summary(batch(store, out, dataset, extra=["--no-cohort"], here=True))
    assert whole["this_run"]["skipped"] == 9 and whole["this_run"]["scored"] == whole["images"] - 9
    manifest = json.loads((out / "batch.json").read_text())
    assert manifest["format_version"] == 3 and manifest["cohort"] is None
    faces = rows(out, "faces")  # one table again: every part holds format 3's columns
    old = [f for f in faces if "/obama/" in f["path"] or "/groups/" in f["path"]]
    assert len(old) == old_faces and all(f["margin"] is None and f["refused"] is None for f in old)
    assert any(f["next_name"] is not None for f in faces if f not in old)
