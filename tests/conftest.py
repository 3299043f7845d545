"""Shared test fixtures: real photos, real face models, and a skip with a reason where they are absent."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from identity.remote.http import Policy  # noqa: E402  (after the checkout is on sys.path)

SHARED = ROOT.parent / "shared"
FACES = SHARED / "fixtures" / "faces"
TESTPACK = SHARED / "models" / "insightface" / "models" / "testpack"
WHEEL_IMAGES = Path(list(importlib.util.find_spec("insightface").submodule_search_locations)[0]) / "data" / "images"
T1 = WHEEL_IMAGES / "t1.jpg"  # six people
TOM_HANKS = WHEEL_IMAGES / "Tom_Hanks_54745.png"

# The remote tests' one policy: short backoff and polls; read timeouts generous, as a loaded machine composes the
# fakes' images slowly (a test about timeouts derives its own short limit from it with dataclasses.replace).
FAST = Policy(base_delay=0.05, poll_interval=0.05, read_timeout=30, attempts=3)
#: One model per provider, for tests that go through every provider.
PROVIDER_MODELS = {
    "gemini": "nb2",
    "openai": "gpt-image-2",
    "dashscope": "qwen-image-2",
    "bfl": "flux-2",
    "reve": "reve",
    "phota": "phota/nb2",
}

ARTIFACTS = ROOT / "output" / "test-artifacts"
SCREENSHOTS = pytest.StashKey[list]()  # paths of the screenshots the browser tests saved in this run

needs_faces = pytest.mark.skipif(
    not FACES.is_dir(), reason=f"fixture photos absent: {FACES} (../shared not beside the checkout)"
)
needs_testpack = pytest.mark.skipif(
    not TESTPACK.is_dir(), reason=f"test face pack absent: {TESTPACK} (../shared not beside the checkout)"
)


def face(path: str) -> Path:
    """A fixture photo by its path in MANIFEST.json, e.g. 'obama/obama1.jpg'."""
    return FACES / path


def text_bomb_png() -> bytes:
    """A 300 px PNG carrying a zTXt chunk that inflates to 64 MiB (66 kB on disk): Pillow refuses it with a
    ValueError as it reads the header."""
    import io

    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "a" * (64 * 1024 * 1024), zip=True)
    buffer = io.BytesIO()
    Image.new("RGB", (300, 300), (120, 120, 120)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def crafted(path, profile, **metadata) -> None:
    """A profile file written by the safetensors library itself, with its header metadata changed (None drops a key)."""
    from safetensors.numpy import save_file

    header = {k: v for k, v in {**profile.metadata(), **metadata}.items() if v is not None}
    save_file(profile.tensors(), str(path), metadata=header)


def run_cli(*args, env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess:
    """`python -m identity ARGS` in this process, through `identity.cli.main` (loaded engines stay loaded): its exit
    status and what it printed, as a subprocess result holds them. `env` is set for the run only (None removes a
    variable); warnings logged meanwhile reach stderr as Python prints them in a process that configured no logging.
    """
    from identity.cli import main

    argv = [str(a) for a in args]
    stdout, stderr = io.StringIO(), io.StringIO()
    warnings = logging.StreamHandler(stderr)
    warnings.setLevel(logging.WARNING)
    with mock.patch.dict(os.environ), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        for name, value in (env or {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        logging.getLogger().addHandler(warnings)
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: 2 for a usage error, 0 for --help
            code = exc.code
        finally:
            logging.getLogger().removeHandler(warnings)
    return subprocess.CompletedProcess(argv, code, stdout.getvalue(), stderr.getvalue())


def one_line_error(result: subprocess.CompletedProcess, *words) -> None:
    """A CLI run (`run_cli`, or a process) that failed as a user error: exit 1, one `error:` line holding `words`,
    no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def manifest() -> dict:
    return json.loads((FACES / "MANIFEST.json").read_text())


def wait_until(condition, what: str, timeout: float = 60):
    """What `condition()` returns once it is true, asked every 50 ms; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.05)


def finished(job, timeout: float = 30.0) -> bool:
    """Waits for a background training job to end (True), failing after `timeout` seconds."""
    return wait_until(lambda: job.status.finished, f"training job {job.name!r} ending", timeout)


@pytest.fixture(scope="session")
def engines():
    """The tests' own loaded engines (not the process's), closed at the end."""
    from identity.faces import Engines

    loaded = Engines()
    yield loaded
    loaded.close()


@pytest.fixture(scope="session")
def embedded(engines):
    return engines.load("embedded", "cpu")


@pytest.fixture(scope="session")
def testpack(engines):
    if not TESTPACK.is_dir():
        pytest.skip(f"test face pack absent: {TESTPACK}")
    return engines.load(f"insightface:{TESTPACK}", "cpu")


@pytest.fixture(params=["embedded", "testpack"])
def engine(request):
    """Each test that takes `engine` runs once per engine."""
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="session")
def tom_profile(embedded):
    """A profile trained from the insightface wheel's own sample (available without ../shared)."""
    from identity.training import Photo, train
    from identity.training.jobs import JobRegistry

    return train([Photo(str(TOM_HANKS), TOM_HANKS)], "Tom Hanks", embedded, registry=JobRegistry()).profile


def _comfyui_label() -> str:
    from comfyui import comfyui_version

    return f"comfyui-{comfyui_version()}"


@pytest.fixture(scope="session", params=[_comfyui_label()], ids=str)
def comfyui(tmp_path_factory):
    """A real ComfyUI on 127.0.0.1 with this pack installed: the one in `IDENTITY_COMFYUI`, else the v0.3.75 that
    scripts/setup_comfyui.py installs. Its version is part of each test's id (`test_x[comfyui-0.3.75]`)."""
    from comfyui import start_server

    server = start_server(tmp_path_factory.mktemp("comfyui"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fake(embedded):
    """Fake providers on 127.0.0.1 (see fake_providers.py); strangers are fixture photos, else the six of t1.jpg.
    Its people are Obama and Biden as the group photo `obama_biden_a.jpg` shows them (left and right half), which
    no `people` profile was trained on."""
    from fake_providers import Fake, StandIns

    from identity.images import load_image

    strangers = (
        [load_image(face(p)) for p in ("alex_lacamoire/alex1.jpg", "lin_manuel_miranda/lin1.png")]
        if FACES.is_dir()
        else [load_image(T1)]
    )
    stand_ins = None
    if FACES.is_dir():
        group = load_image(face("groups/obama_biden_a.jpg"))
        half = group.shape[1] // 2
        stand_ins = StandIns(embedded, [group[:, :half].copy(), group[:, half:].copy()])
    server = Fake(strangers, stand_ins=stand_ins).start()
    yield server
    server.stop()


@pytest.fixture
def keys(fake, tmp_path, monkeypatch):
    """Credentials pointing every provider at the fakes (none from the environment), the fakes reset, and the user
    folder (Phota links) in the test's own tmp_path."""
    from identity.remote.keys import KeyStore

    fake.reset()
    monkeypatch.setenv("IDENTITY_USER_DIR", str(tmp_path))
    return KeyStore(fake.keys_file(tmp_path), environ={})


@pytest.fixture(autouse=True)
def _fakes_keep_their_contract(request):
    """A fake that answered outside its provider's published shapes fails the test that saw it."""
    yield
    if "fake" in request.fixturenames:
        fake = request.getfixturevalue("fake")
        breaches, fake.breaches[:] = list(fake.breaches), []
        assert not breaches, "the fake answered outside the provider's published shapes:\n" + "\n".join(breaches)


@pytest.fixture(scope="session")
def people(embedded):
    """Profiles for the remote tests: Obama and Biden from the fixtures (embedded engine)."""
    if not FACES.is_dir():
        pytest.skip(f"fixture photos absent: {FACES}")
    from identity.training import photos_from_paths, train
    from identity.training.jobs import JobRegistry

    return {
        name: train(photos_from_paths([FACES / folder]), name, embedded, registry=JobRegistry()).profile
        for name, folder in (("Barack Obama", "obama"), ("Joe Biden", "biden"))
    }


@pytest.fixture(scope="session")
def remote(comfyui, fake):
    """The live ComfyUI's keys file points every provider at the fakes; Obama and Biden are trained there."""
    from comfyui import api_twin

    folder = comfyui.user / "identity_layer"
    folder.mkdir(parents=True, exist_ok=True)
    fake.keys_file(folder)
    for name, source in (("Barack Obama", "identity/obama"), ("Joe Biden", "identity/biden")):
        prompt = api_twin("train_profile_from_folder")
        next(n for n in prompt.values() if n["class_type"] == "IdentityProfileTrain")["inputs"].update(
            name=name, folder=source
        )
        assert comfyui.client.run(prompt).status == "success"
    return fake


#: The profile that the `tiny` fixture trains in the live ComfyUI.
TINY_PROFILE = "Flux Tom"


@pytest.fixture(scope="session")
def tiny(comfyui):
    """Tiny model files in the server's folders (see tiny_models.py) and a profile, TINY_PROFILE, trained through
    the node; returns the server."""
    import shutil

    from tiny_models import write_adapter, write_clip_l, write_loadable_flux, write_taef1

    models = comfyui.base / "models"
    write_loadable_flux(models / "diffusion_models" / "tiny_flux.safetensors")
    write_clip_l(models / "text_encoders" / "tiny_clip_l.safetensors")
    write_taef1(models / "vae_approx")
    write_adapter(models / "pulid", models / "clip_vision", flux_dim=3072, cross_attentions=2, arcface_dim=128)
    shutil.copy(TOM_HANKS, comfyui.base / "input" / "flux_tom.png")
    run = comfyui.client.run(
        {
            "1": {"class_type": "LoadImage", "inputs": {"image": "flux_tom.png"}},
            "2": {"class_type": "IdentityFaceEngine", "inputs": {"pack": "embedded", "provider": "auto"}},
            "3": {
                "class_type": "IdentityProfileTrain",
                "inputs": {"name": TINY_PROFILE, "images": ["1", 0], "overwrite": True, "face_engine": ["2", 0]},
            },
        }
    )
    assert run.status == "success", run.error
    return comfyui


@pytest.fixture(scope="session")
def pet_models(tmp_path_factory):
    """A models folder with the pet appearance model installed, as install.py leaves it."""
    from identity.pets.engine import install

    folder = tmp_path_factory.mktemp("pet-models")
    install(folder / "pets")
    return folder


@pytest.fixture(scope="session")
def cat(pet_models, tmp_path_factory):
    """A cat profile: Chelsea (scikit-image's cat) from four photos of her as a user's set has them."""
    from pets import chelsea, variants
    from PIL import Image

    from identity.pets.engine import load_pet_engine
    from identity.training import photos_from_paths, train
    from identity.training.jobs import JobRegistry

    folder = tmp_path_factory.mktemp("chelsea")
    for label, image in variants(chelsea()).items():
        Image.fromarray(image).save(folder / f"{label}.png")
    engine = load_pet_engine(pet_models / "pets", pet_models / "pet_reid")
    return train(photos_from_paths([folder]), "Chelsea", engine, kind="cat", registry=JobRegistry()).profile


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "comfyui: needs a ComfyUI (a live server, or its modules in this process); "
        "scripts/test.sh runs these once per ComfyUI it tests",
    )


def pytest_collection_modifyitems(items):
    """Every test on the live server needs ComfyUI; in-process ones are marked where they are written."""
    for item in items:
        if "comfyui" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.comfyui)


def pytest_report_header(config):
    from comfyui import COMFYUI, comfyui_version, frontend_version

    return f"ComfyUI {comfyui_version()} at {COMFYUI}, frontend {frontend_version()}"


def pytest_terminal_summary(terminalreporter, config):
    """Says where the browser tests left their screenshots, so that a person can look at what was tested."""
    saved = config.stash.get(SCREENSHOTS, [])
    if saved:
        terminalreporter.write_sep("-", f"browser test screenshots ({len(saved)}): {ARTIFACTS}")
