"""Where models and profiles live when no one says otherwise.

Installed in ComfyUI (`ComfyUI/custom_nodes/<this pack>`, a folder or a link to a checkout), the pack uses
ComfyUI's own `models/` and `user/` folders, so the CLI and the nodes see the same profiles, packs, keys and
settings. Elsewhere it uses `models/` and `user/` inside the checkout.
Environment variables override both: `IDENTITY_MODELS_DIR` (a folder laid out like ComfyUI's `models/`) and
`IDENTITY_PROFILES_DIR`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import IdentityError

PACK_ROOT = Path(__file__).resolve().parent.parent
#: Where the pack was imported from, a link not followed: `custom_nodes/<pack>` even when that is a link.
INSTALLED_AT = Path(os.path.abspath(__file__)).parent.parent


def comfyui_root() -> Path | None:
    parent = INSTALLED_AT.parent
    return parent.parent if parent.name == "custom_nodes" else None


def models_dir() -> Path:
    if os.environ.get("IDENTITY_MODELS_DIR"):
        return Path(os.environ["IDENTITY_MODELS_DIR"]).expanduser()
    root = comfyui_root()
    return (root / "models") if root else (PACK_ROOT / "models")


def profiles_dir() -> Path:
    if os.environ.get("IDENTITY_PROFILES_DIR"):
        return Path(os.environ["IDENTITY_PROFILES_DIR"]).expanduser()
    return models_dir() / "identity_profiles"


def insightface_roots(insightface_folders: list[Path] | None = None) -> list[Path]:
    """Folders whose sub-folders are insightface packs, in the order they are searched: `models/` inside each
    insightface folder (default `<models>/insightface`; ComfyUI passes the ones it is configured with), then
    insightface's own `~/.insightface/models`. The CLI and the nodes search the same places."""
    folders = insightface_folders if insightface_folders is not None else [models_dir() / "insightface"]
    return [Path(folder) / "models" for folder in folders] + [Path.home() / ".insightface" / "models"]


def writable_folder(folder: Path, what: str) -> Path:
    """`folder`, created if missing, once a file could be written in it; checked before long work, so that a
    training or a scoring run is not lost at the end to a path that is a file or a place that cannot be written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        reason = "it is a file" if folder.is_file() else exc.strerror or str(exc)
        raise IdentityError(f"cannot write {what} to {folder} ({reason}); choose a folder you can write to") from None
    return folder
