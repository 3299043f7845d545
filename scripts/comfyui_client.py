"""Drive a real ComfyUI: start a server, queue workflows over HTTP, read their results.

The ComfyUI is the checkout named by `IDENTITY_COMFYUI` (any ComfyUI folder, run with the Python running this
code), else the v0.3.75 that scripts/setup.sh puts in `.comfyui/`. `IDENTITY_COMFYUI_FRONTEND` names another
frontend's `static` folder (ComfyUI's `--front-end-root`); otherwise ComfyUI serves its installed frontend.

Used by the demo (`scripts/demo.py`) and by the test suite. Workflows are the UI-format files in
`example_workflows/`; `ui_to_api()` turns them into the API format that `/prompt` takes, using `/object_info`
to know which widget value belongs to which input.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMFYUI = Path(os.environ.get("IDENTITY_COMFYUI") or ROOT / ".comfyui" / "ComfyUI").resolve()
FRONTEND = os.environ.get("IDENTITY_COMFYUI_FRONTEND")
PACK_NAME = "identity-layer"


class PromptRejected(Exception):
    """ComfyUI refused to queue a prompt (validation failed); `.body` holds its answer."""

    def __init__(self, body: dict):
        super().__init__(json.dumps(body)[:2000])
        self.body = body


@dataclass
class Run:
    """A finished prompt: its status, the UI outputs of each node, and the execution error if any."""

    prompt_id: str
    status: str  # "success" | "error"
    outputs: dict
    messages: list = field(default_factory=list)

    @property
    def error(self) -> dict | None:
        for event, data in self.messages:
            if event == "execution_error":
                return data
        return None


class ComfyUI:
    """An HTTP client for one ComfyUI server."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.client_id = uuid.uuid4().hex

    def request(self, path: str, body: dict | None = None, method: str | None = None, raw: bool = False):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method or ("POST" if data else "GET"),
            headers={"Content-Type": "application/json"} if data else {},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = response.read()
        return payload if raw else json.loads(payload or b"null")

    def object_info(self) -> dict:
        return self.request("/object_info")

    def queue(self, prompt: dict) -> str:
        try:
            return self.request("/prompt", {"prompt": prompt, "client_id": self.client_id})["prompt_id"]
        except urllib.error.HTTPError as exc:
            raise PromptRejected(json.loads(exc.read() or b"{}")) from None

    def wait(self, prompt_id: str, timeout: float = 600) -> Run:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.request(f"/history/{prompt_id}").get(prompt_id)
            if (
                entry
                and entry.get("status", {}).get("completed") is not None
                and (entry["status"].get("status_str") in ("success", "error"))
            ):
                status = entry["status"]
                return Run(prompt_id, status["status_str"], entry.get("outputs", {}), status.get("messages", []))
            time.sleep(0.2)
        raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout} s")

    def run(self, prompt: dict, timeout: float = 600) -> Run:
        return self.wait(self.queue(prompt), timeout)

    def view(self, image: dict) -> bytes:
        query = urllib.parse.urlencode({k: image[k] for k in ("filename", "subfolder", "type")})
        return self.request(f"/view?{query}", raw=True)


class Server:
    """A ComfyUI process on 127.0.0.1 with its own base folder (models, input, output, custom_nodes) and user folder
    (`base/user` unless given, as ComfyUI's `--user-directory` moves it)."""

    def __init__(self, base: Path, log: Path | None = None, user: Path | None = None):
        self.base = Path(base)
        self.user = Path(user) if user else self.base / "user"
        self.log_path = log or self.base / "comfyui.log"
        self.port = _free_port()
        self.process: subprocess.Popen | None = None
        self.client = ComfyUI(f"http://127.0.0.1:{self.port}")

    def prepare(self, models: dict[str, Path] | None = None) -> Server:
        """Folders, this pack linked into custom_nodes, and `models` (relative path → source) linked in."""
        for folder in (*(self.base / name for name in ("custom_nodes", "input", "output", "models")), self.user):
            folder.mkdir(parents=True, exist_ok=True)
        _link(ROOT, self.base / "custom_nodes" / PACK_NAME)
        for relative, source in (models or {}).items():
            _link(Path(source), self.base / "models" / relative)
        return self

    def start(self, timeout: float = 180) -> Server:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "main.py",
                "--cpu",
                "--listen",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--base-directory",
                str(self.base),
                "--user-directory",
                str(self.user),
                "--database-url",
                "sqlite:///:memory:",
                "--disable-auto-launch",
                *(["--front-end-root", str(Path(FRONTEND).resolve())] if FRONTEND else []),
            ],
            cwd=COMFYUI,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited during start-up:\n{self.log_tail()}")
            try:
                self.client.request("/system_stats")
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"ComfyUI did not answer within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def comfyui_version() -> str:
    """The version of the ComfyUI in `COMFYUI`, as its `comfyui_version.py` states it."""
    match = re.search(r"__version__\s*=\s*[\"']([^\"']+)", _read(COMFYUI / "comfyui_version.py"))
    return match.group(1) if match else "unknown"


def frontend_version() -> str:
    """The frontend the server serves: `IDENTITY_COMFYUI_FRONTEND`'s package, else the installed one."""
    if FRONTEND:
        found = sorted(Path(FRONTEND).resolve().parent.parent.glob("comfyui_frontend_package-*.dist-info"))
        return found[-1].name.removesuffix(".dist-info").split("-")[1] if found else f"from {FRONTEND}"
    try:
        return importlib.metadata.version("comfyui-frontend-package")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        if target.is_symlink() and target.resolve() == source.resolve():
            return
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
    os.symlink(source, target, target_is_directory=source.is_dir())


# ----- workflows -------------------------------------------------------------------------------------------


#: The example workflows: a short name for code, and the file name, which is the title (and description) ComfyUI's
#: template browser shows. A custom-node pack's templates are listed by file name alone (ComfyUI
#: app/custom_node_manager.py, GET /workflow_templates), and the frontend (comfyui-frontend-package 1.32 and 1.58,
#: the workflow templates store) makes each card {title: name, description: name with - and _ as spaces} and
#: asks for `/api/workflow_templates/<pack>/<name>.jpg` as its thumbnail. Cards come in the order the server
#: lists the files (the file system's), so each title starts with its place: local first, paid remote last, and
#: the browser's "Alphabetical" sort (numeric-aware) shows them in that order.
TEMPLATES = {
    "train_profile_from_folder": "1. Train a profile from a folder of photos",
    "score_group_photo_two_profiles": "2. Find two people in a group photo",
    "score_and_rank_batch": "3. Score and rank a folder of photos",
    "identity_gate_core_nodes_cpu": "4. Identity gate, re-roll until the person comes up",
    "flux_dev_identity_injection": "5. Flux.1 Dev drawing a profile (PuLID)",
    "flux_identity_then_arcface_rank": "6. Flux.1 Dev, four candidates ranked by ArcFace",
    "flux2_reference_identity": "7. FLUX.2 Dev with a profile's references and the identity gate",
    "kontext_reference_identity": "8. Flux.1 Kontext with a profile as reference image",
    "qwen_image_edit_references_gate": "9. Qwen-Image-Edit with a profile's pictures and the identity gate",
    "remote_generate_portrait_nb2": "10. Paid API, a portrait of a profile (Nano Banana 2)",
    "remote_edit_group_photo_gpt_image_2": "11. Paid API, edit a group photo (gpt-image-2)",
    "remote_enhance_nb2": "12. Paid API, enhance a photo (Nano Banana 2)",
    "remote_partner_nano_banana_pro_gate": "13. Paid API, ComfyUI's Nano Banana Pro node with references and the identity gate",
    "remote_partner_gpt_image_gate": "14. Paid API, ComfyUI's GPT Image node with two profiles and the identity gate",
    "remote_partner_flux2_pro_gate": "15. Paid API, ComfyUI's FLUX.2 Pro node with references and the identity gate",
    "remote_partner_qwen_image_edit_gate": "16. Paid API, ComfyUI's Qwen Image 3 Edit node with references and the identity gate",
}


def template_file(name: str) -> Path:
    return ROOT / "example_workflows" / f"{TEMPLATES[name]}.json"


def load_workflow(name: str) -> dict:
    return json.loads(template_file(name).read_text())


FRONTEND_ONLY = ("Note", "MarkdownNote")
DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3"


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    """The API form of a UI-format workflow: links become `[node id, output slot]`, widgets become values.

    Widget values follow the order of the node's inputs in `/object_info` (required, then optional), skipping
    inputs that arrive by link; a seed-style widget's extra 'control_after_generate' value is skipped. A V3
    DynamicCombo (ComfyUI 0.33.0) is its chosen key followed by that option's own inputs, named `combo.input` (an
    Autogrow's slots, `combo.images.image_1`, arrive by link), as the frontend writes them.
    """
    links = {link[0]: link for link in workflow.get("links", [])}
    prompt = {}
    for node in workflow["nodes"]:
        if node.get("mode", 0) in (2, 4) or node["type"] in FRONTEND_ONLY:  # muted, bypassed, or a note
            continue
        if node["type"] not in object_info:
            raise KeyError(f"node type {node['type']!r} (node {node['id']}) is not installed in this ComfyUI")
        info = object_info[node["type"]]
        linked = {}
        for slot in node.get("inputs", []):
            if slot.get("link") is not None:
                link = links[slot["link"]]
                linked[slot["name"]] = [str(link[1]), link[2]]
        values = list(node.get("widgets_values") or [])
        inputs = dict(linked)
        order = [
            (name, info["input"][group][name])
            for group in ("required", "optional")
            for name in info["input_order"].get(group, [])
        ]
        _take_widgets(order, "", node, linked, values, inputs)
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt


def _take_widgets(order: list, prefix: str, node: dict, linked: dict, values: list, inputs: dict) -> bool:
    """Assigns `values` to the widget inputs in `order` (named `prefix` + name); False once they run out."""
    for name, spec in order:
        name = prefix + name
        controlled = len(spec) > 1 and isinstance(spec[1], dict) and spec[1].get("control_after_generate")
        if name in linked:
            if any(s.get("name") == name and s.get("widget") for s in node.get("inputs", [])):
                # a widget converted to an input keeps its slot (and a seed its control value)
                del values[: 2 if controlled else 1]
            continue
        if not (_is_widget(spec) or spec[0] == DYNAMIC_COMBO):
            continue
        if not values:
            return False
        inputs[name] = values.pop(0)
        if controlled and values:
            values.pop(0)
        if spec[0] == DYNAMIC_COMBO:
            chosen = next(o["inputs"] for o in spec[1]["options"] if o["key"] == inputs[name])
            nested = [(n, s) for group in ("required", "optional") for n, s in chosen.get(group, {}).items()]
            if not _take_widgets(nested, name + ".", node, linked, values, inputs):
                return False
    return True


def _is_widget(spec) -> bool:
    kind = spec[0]
    return isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")


# ----- sample inputs for the example workflows -----------------------------------------------------------

#: Where the example workflows expect their photos (relative to ComfyUI's input folder), and which fixture
#: photo (relative to `../shared/fixtures/faces`) goes there.
EXAMPLE_INPUTS = {
    "identity/obama/obama1.jpg": "obama/obama1.jpg",
    "identity/obama/obama2.jpg": "obama/obama2.jpg",
    "identity/obama/obama3.jpg": "obama/obama3.jpg",
    "identity/obama/obama5_720p.jpg": "obama/obama5_720p.jpg",
    "identity/obama/obama_biden_a.jpg": "groups/obama_biden_a.jpg",
    "identity/biden/biden1.jpg": "biden/biden1.jpg",
    "identity/biden/biden2.jpg": "biden/biden2.jpg",
    "identity/score/obama4.jpg": "obama/obama4.jpg",
    "identity/score/kit1.jpg": "kit_harington/kit1.jpg",
    "identity/score/rose2.jpg": "rose_leslie/rose2.jpg",
    "identity/group/biden_obama_b.jpg": "groups/biden_obama_b.jpg",
}


def stage_example_inputs(input_dir: Path, faces: Path) -> None:
    """Copy the fixture photos to where the example workflows look for them."""
    for target, source in EXAMPLE_INPUTS.items():
        destination = Path(input_dir) / target
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(faces) / source, destination)
