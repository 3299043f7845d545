"""PuLID-Flux Load: the adapter (models/pulid/), the EVA-CLIP tower its encoder reads and the face-parsing network
that prepares the tower's input, each checked key by key."""

from __future__ import annotations

import logging
from pathlib import Path

import comfy.ops
import folder_paths
from comfy_api.v0_0_2 import io

from ..identity.flux import EVA_FILE, PULID_FILE, load_adapter
from ..identity.flux.weights import (
    EVA_SOURCE,
    PARSING_FILE,
    PARSING_SOURCE,
    PULID_SOURCE,
    load_parsing,
    missing_weights,
)
from .glue import EVA_CLIP_FOLDER, PARSING_FOLDER, PULID_FOLDER, AdapterHandle, FluxAdapterSocket, hashed

log = logging.getLogger(__name__)


def eva_files() -> list[str]:
    return [name for name in folder_paths.get_filename_list(EVA_CLIP_FOLDER) if "eva" in name.lower()]


def weights_path(folder: str, name: str | None, what: str, file: str, source: str) -> Path:
    """The chosen file, or an error naming the file to download and the folder it goes in."""
    if name:
        found = folder_paths.get_full_path(folder, name)
        return Path(found) if found else Path(folder_paths.get_folder_paths(folder)[0]) / name
    raise missing_weights(what, Path(folder_paths.get_folder_paths(folder)[0]), file, source)


def find_parser():
    """facexlib's parsing network from the folders PuLID packs keep it in, or (None, why not) with one warning."""
    found = folder_paths.get_full_path(PARSING_FOLDER, PARSING_FILE)
    if found:
        return load_parsing(Path(found)), ""
    folders = ", ".join(folder_paths.get_folder_paths(PARSING_FOLDER))
    missing = f"{PARSING_FILE} ({PARSING_SOURCE}) was not found in {folders}"
    log.warning(
        "PuLID-Flux: %s; the EVA-CLIP input falls back to a fixed face ellipse (hair and ears lost, weaker "
        "likeness): put the file in %s",
        missing,
        folder_paths.get_folder_paths(PARSING_FOLDER)[0],
    )
    return None, missing


class PuLIDLoad(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IdentityPuLIDLoader",
            display_name="PuLID-Flux Load",
            category="identity",
            description=f"Load a PuLID-Flux adapter ({PULID_FILE}, in models/pulid/) and the EVA-CLIP vision tower "
            f"its encoder reads ({EVA_FILE}, in models/clip_vision/), plus facexlib's {PARSING_FILE} "
            "(models/facexlib/) when present. Every tensor is checked.",
            inputs=[
                io.Combo.Input(
                    "pulid",
                    options=folder_paths.get_filename_list(PULID_FOLDER),
                    tooltip=f"PuLID-Flux weights in models/pulid/ ({PULID_FILE} or v0.9.0)",
                ),
                io.Combo.Input(
                    "eva_clip",
                    options=eva_files(),
                    tooltip=f"{EVA_FILE} in models/clip_vision/ (or models/clip/, text_encoders/, pulid/)",
                ),
                io.Boolean.Input(
                    "allow_other_recognizer",
                    default=False,
                    optional=True,
                    tooltip="accept a face engine other than antelopev2 (glintr100), which PuLID-Flux "
                    "was trained with; the likeness is weaker",
                ),
            ],
            outputs=[FluxAdapterSocket.Output(display_name="adapter")],
        )

    @classmethod
    def fingerprint_inputs(cls, **kwargs) -> str:
        """A parsing file put in place (or removed) after a run counts as a change: the next run picks it up."""
        found = folder_paths.get_full_path(PARSING_FOLDER, PARSING_FILE)
        return hashed(f"{found}:{Path(found).stat().st_mtime_ns}" if found else "")

    @classmethod
    def validate_inputs(cls, pulid: str, eva_clip: str, allow_other_recognizer: bool = False) -> bool:
        return True  # checked when the node runs, so a missing file gets a message naming where it goes

    @classmethod
    def execute(cls, pulid: str, eva_clip: str, allow_other_recognizer: bool = False) -> io.NodeOutput:
        pulid_path = weights_path(PULID_FOLDER, pulid, "PuLID-Flux", PULID_FILE, PULID_SOURCE)
        eva_path = weights_path(EVA_CLIP_FOLDER, eva_clip, "EVA-CLIP", EVA_FILE, EVA_SOURCE)
        parser, missing = find_parser()
        adapter = load_adapter(
            pulid_path, eva_path, ops=comfy.ops.manual_cast, parser=parser, any_recognizer=bool(allow_other_recognizer)
        )
        return io.NodeOutput(AdapterHandle(adapter, missing))
