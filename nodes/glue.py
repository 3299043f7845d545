"""What every node needs from ComfyUI: folders, tensors, progress, interrupts, and the face engine choice."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import comfy.model_management
import comfy.model_patcher
import comfy.utils
import folder_paths
import numpy as np
import torch
from comfy_api.v0_0_2 import io
from PIL import Image
from server import PromptServer
from torch import nn

from ..identity import paths
from ..identity.cache import BoundedCache
from ..identity.errors import Cancelled, IdentityError
from ..identity.faces import FaceEngine, load_engine
from ..identity.flux import FluxAdapter
from ..identity.flux.injection import STATE_KEY
from ..identity.images import collect_photos
from ..identity.profile import ProfileStore
from ..identity.remote.keys import KeyStore
from ..identity.remote.models import user_folder
from ..identity.text import printable
from ..identity.training import check_kind

log = logging.getLogger(__name__)

PROFILES_FOLDER = "identity_profiles"
#: The sample photos the example workflows load, laid out as in ComfyUI's input folder.
TEMPLATE_PHOTOS = Path(__file__).resolve().parents[1] / "example_workflows" / "input"
PULID_FOLDER = "pulid"  # PuLID-Flux adapters, models/pulid/ (the folder other PuLID packs use)
EVA_CLIP_FOLDER = "identity_eva_clip"  # EVA-CLIP files: models/clip_vision/, clip/, text_encoders/ or pulid/
PARSING_FOLDER = "identity_face_parsing"  # parsing_bisenet.pth: models/facexlib/, facedetection/ or pulid/
WEIGHT_EXTENSIONS = {".safetensors", ".pt", ".pth"}

#: Socket types, named for what they carry.
Profiles = io.Custom("IDENTITY_PROFILES")  # a list of identity.profile.Profile
FaceEngineSocket = io.Custom("IDENTITY_FACE_ENGINE")  # an EngineChoice
FluxAdapterSocket = io.Custom("IDENTITY_FLUX_ADAPTER")  # an AdapterHandle

log = logging.getLogger(__name__)


def face_engine_input(tooltip: str = "from Face Engine; unconnected, the embedded engine (no download) is used"):
    """The optional face engine every scoring node takes."""
    return FaceEngineSocket.Input("face_engine", optional=True, tooltip=tooltip)


@dataclass(frozen=True)
class EngineChoice:
    pack: str  # "embedded" or an insightface pack name
    provider: str


def register_folders() -> None:
    """The model folders, and the pack's user folder: `identity_layer/` in ComfyUI's user folder (which follows
    `--user-directory`) holds keys, Phota links and model overrides; `identity/` finds it through
    `IDENTITY_USER_DIR`, which a user who set it keeps. Also places the example workflows' photos."""
    os.environ.setdefault("IDENTITY_USER_DIR", os.path.join(folder_paths.get_user_directory(), "identity_layer"))
    folder_paths.add_model_folder_path(
        PROFILES_FOLDER, os.path.join(folder_paths.models_dir, PROFILES_FOLDER), is_default=True
    )
    paths, extensions = folder_paths.folder_names_and_paths[PROFILES_FOLDER]
    extensions.add(".safetensors")
    for name, subfolders in (
        (PULID_FOLDER, ["pulid"]),
        (EVA_CLIP_FOLDER, ["clip_vision", "clip", "text_encoders", "pulid"]),
        (PARSING_FOLDER, ["facexlib", "facedetection", "pulid"]),
    ):
        for subfolder in subfolders:
            folder_paths.add_model_folder_path(name, os.path.join(folder_paths.models_dir, subfolder))
        folder_paths.folder_names_and_paths[name][1].update(WEIGHT_EXTENSIONS)
    place_template_photos()


def place_template_photos() -> None:
    """Copy the example workflows' photos into ComfyUI's input folder where missing (Load Image reads only from
    there), so that a template opens without 'Media input missing'; a file the user put there is kept."""
    root = Path(folder_paths.get_input_directory())
    for source in sorted(p for p in TEMPLATE_PHOTOS.rglob("*") if p.suffix in (".jpg", ".png")):
        target = root / source.relative_to(TEMPLATE_PHOTOS)
        if target.exists():
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        except OSError as error:
            log.warning("Identity Layer: the example workflows' photo %s was not copied: %s", target.name, error)


#: One store per profile folder for the process, so that its loaded profiles serve every node run (ComfyUI
#: has one profile folder; a few more are kept should its configuration change).
STORES: BoundedCache[ProfileStore] = BoundedCache(4)


def profile_store() -> ProfileStore:
    folder = folder_paths.get_folder_paths(PROFILES_FOLDER)[0]
    return STORES.get_or_make(folder, lambda: ProfileStore(folder))


def key_store() -> KeyStore:
    """Keys from ComfyUI's environment, or `keys.json` in the pack's user folder."""
    return KeyStore(user_folder() / "keys.json")


def insightface_roots() -> list[Path]:
    """`paths.insightface_roots` for the insightface folders ComfyUI is configured with."""
    try:
        folders = folder_paths.get_folder_paths("insightface")
    except KeyError:
        folders = [os.path.join(folder_paths.models_dir, "insightface")]
    return paths.insightface_roots([Path(folder) for folder in folders])


def engine(choice: EngineChoice | None) -> FaceEngine:
    if choice is None:
        return load_engine(None, "auto", roots=insightface_roots())
    return load_engine(choice.pack, choice.provider, roots=insightface_roots())


def training_engine(kind: str, choice: EngineChoice | None = None):
    """What finds the subject for a profile of this kind: the face engine for a person, the pet engine otherwise."""
    return engine(choice) if check_kind(kind) == "person" else pet_engine()


def pet_engine():
    """The pet engine from ComfyUI's models folder: `pets/` (installed by install.py) and the user's `pet_reid/`."""
    from ..identity.pets.engine import load_pet_engine  # the torch networks load on the first pet profile

    return load_pet_engine(Path(folder_paths.models_dir) / "pets", Path(folder_paths.models_dir) / "pet_reid")


def to_arrays(images: torch.Tensor) -> list[np.ndarray]:
    """ComfyUI IMAGE `[B,H,W,C]` floats in 0..1 → RGB uint8 arrays, once, at the boundary."""
    return [
        np.ascontiguousarray(image)
        for image in (images[..., :3].clamp(0, 1) * 255.0).round().to(torch.uint8).cpu().numpy()
    ]


def to_images(arrays: list[np.ndarray]) -> torch.Tensor:
    """RGB uint8 arrays → one ComfyUI IMAGE batch; images of another size are resized to the first one's."""
    height, width = arrays[0].shape[:2]
    same = [
        a if a.shape[:2] == (height, width) else np.asarray(Image.fromarray(a).resize((width, height), Image.LANCZOS))
        for a in arrays
    ]
    return torch.from_numpy(np.stack(same)).float() / 255.0


def check_interrupt() -> None:
    """Raises ComfyUI's interrupt exception when the user pressed Cancel."""
    comfy.model_management.throw_exception_if_processing_interrupted()


def cancel_check() -> Callable[[], None]:
    """For work outside the prompt queue (the panel's training): a check that raises `Cancelled` once the user
    presses Cancel in ComfyUI. It reads ComfyUI's interrupt flag without clearing it, so that a running prompt
    still sees the same Cancel; a Cancel left over from before the work started is not for it."""
    stale = comfy.model_management.processing_interrupted()

    def check() -> None:
        nonlocal stale
        interrupted = comfy.model_management.processing_interrupted()
        if stale:
            stale = interrupted
        elif interrupted:
            raise Cancelled("stopped: Cancel was pressed in ComfyUI; nothing was saved")

    return check


class Progress:
    """A ComfyUI progress bar (0..100 %) and the status text shown on the node."""

    def __init__(self, node_id: str | None):
        self.node_id = node_id
        self.bar = comfy.utils.ProgressBar(100, node_id=node_id)

    def __call__(self, fraction: float, text: str) -> None:
        self.bar.update_absolute(int(round(100 * max(0.0, min(1.0, fraction)))))
        server = PromptServer.instance
        if self.node_id is not None and server is not None:
            server.send_progress_text(text, self.node_id)


class AdapterHandle:
    """A loaded adapter with ComfyUI model patchers, so model management loads and offloads its weights."""

    def __init__(self, adapter: FluxAdapter, missing_parser: str = ""):
        self.adapter = adapter
        self.missing_parser = missing_parser  # why the parsing network is absent, for the report
        parts = {"eva": adapter.eva, "encoder": adapter.pulid.pulid_encoder}
        if adapter.parser is not None:
            parts["parser"] = adapter.parser
        self.encoders = comfy.model_patcher.ModelPatcher(
            nn.ModuleDict(parts),
            load_device=comfy.model_management.get_torch_device(),
            offload_device=comfy.model_management.unet_offload_device(),
        )
        self._cross_attentions: dict[tuple, comfy.model_patcher.ModelPatcher] = {}

    def prepare_encoders(self) -> torch.dtype:
        """Loads the EVA tower, ID encoder and parser where they compute; the dtype to compute in."""
        comfy.model_management.load_models_gpu([self.encoders])
        device = self.encoders.load_device
        if device.type == "cpu":
            return torch.float32
        return torch.bfloat16 if comfy.model_management.should_use_bf16(device) else torch.float16

    def cross_attentions(self, model) -> comfy.model_patcher.ModelPatcher:
        """The cross-attentions as a model that loads and offloads with `model` (an additional model of it)."""
        key = (model.load_device, model.offload_device)
        if key not in self._cross_attentions:
            self._cross_attentions[key] = comfy.model_patcher.ModelPatcher(
                self.adapter.cross_attentions, load_device=model.load_device, offload_device=model.offload_device
            )
        return self._cross_attentions[key]

    def ride_along(self, patched, model) -> None:
        """Make the cross-attentions load and offload with `patched` (a clone of `model`), replacing any that an
        earlier Identity Condition on the same model had put there."""
        weights = self.cross_attentions(model)
        others = [m for m in patched.get_additional_models_with_key(STATE_KEY) if m is not weights]
        patched.set_additional_models(STATE_KEY, [*others, weights])


def _inside(root: Path, path: Path) -> bool:
    return os.path.commonpath([root, path.resolve()]) == str(root)


def input_folder(folder: str) -> Path:
    """A folder given relative to ComfyUI's input folder; anything that resolves outside it is refused."""
    if "\0" in folder:
        raise IdentityError(f"folder {folder[:80]!r} contains a NUL character; give the folder's plain name")
    root = Path(folder_paths.get_input_directory()).resolve()
    target = (root / folder.strip()).resolve()
    if not _inside(root, target):
        raise IdentityError(f"folder {folder!r} is outside ComfyUI's input folder; give a path inside it")
    if not target.is_dir():
        raise IdentityError(f"folder {folder!r} does not exist in ComfyUI's input folder")
    return target


def folder_photos(folder: str) -> list[Path]:
    """The photos of a folder inside ComfyUI's input folder; none when no folder is named. A photo that is a link
    to a file outside the input folder is left out (and logged): a workflow reads only what the input folder holds."""
    if not (folder and folder.strip()):
        return []
    root = Path(folder_paths.get_input_directory()).resolve()
    photos = collect_photos([input_folder(folder)])
    for photo in photos:
        if not _inside(root, photo):
            log.warning("left out %s: it links to a file outside ComfyUI's input folder", printable(photo.name))
    return [photo for photo in photos if _inside(root, photo)]


def shown_path(label):
    """A photo's path as nodes report it and routes answer it: relative to ComfyUI's input folder, or the file name
    alone (a profile trained by the CLI holds server paths, which no report or client is to learn)."""
    if not isinstance(label, (str, os.PathLike)) or not os.path.isabs(label):
        return label
    root = os.path.realpath(folder_paths.get_input_directory())
    path = os.path.normpath(label)
    if os.path.commonpath([root, path]) == root:
        return os.path.relpath(path, root)
    return os.path.basename(path)


def hashed(state) -> str:
    """A cache fingerprint as ComfyUI stores it: ComfyUI writes each node's fingerprint into the prompt, which
    SaveImage saves in every PNG, so it carries a digest, never the paths, times and sizes it is made of."""
    return hashlib.sha256(repr(state).encode("utf-8", "surrogatepass")).hexdigest()


def folder_state(folder: str) -> str:
    """The photos of a folder (path, mtime, size), hashed: adding or replacing one is a change (the digest of None
    when it cannot be read: the run then says why)."""
    try:
        state = []
        for photo in folder_photos(folder):
            info = photo.stat()
            state.append((str(photo), info.st_mtime_ns, info.st_size))
    except (IdentityError, OSError):
        state = None
    return hashed(state)


# ----- the people a user knows: every verification tells faces apart from them ---------------------------------

KNOWN_PEOPLE = "known_people"


def known_people_input() -> io.Boolean.Input:
    """The switch of the look-alike rule, the same on every verifying node."""
    return io.Boolean.Input(
        KNOWN_PEOPLE,
        default=True,
        optional=True,
        tooltip="also compare each face with every other profile in the store: a face counts as a profile only "
        "when it is nearer to it than to anyone else known, so a look-alike is refused (off: a single-profile "
        "check, each profile's own threshold alone)",
    )


def known_store(use: bool = True) -> ProfileStore | None:
    """The cohort of a verification (the store, whose other profiles faces are told apart from: `matching.known`),
    None when switched off."""
    return profile_store() if use else None


def known_state() -> tuple:
    """The store's version (`ProfileStore.version`): a node whose verdicts depend on everyone known re-runs when
    a profile is trained, retrained, renamed or deleted, here or by another process."""
    return profile_store().version()
