"""ComfyUI nodes: thin glue between ComfyUI types and `identity/`."""

import re

from comfy_api.v0_0_2 import ComfyExtension, io

from ..identity.errors import IdentityError
from ..identity.faces import find_packs, resolve_engine_spec
from ..identity.paths import PACK_ROOT
from .arcface_score import ArcFaceScore
from .base_model_select import BaseModelSelect
from .face_engine import FaceEngine
from .glue import insightface_roots, key_store, register_folders
from .identity_condition_edit import IdentityConditionQwenEdit, IdentityConditionReferenceLatents
from .identity_condition_flux import IdentityConditionFlux
from .identity_condition_reference import IdentityConditionReference
from .identity_condition_remote import IdentityConditionRemote
from .identity_gate import IdentityGate, IdentityGateStart
from .identity_prompt_reference import IdentityPromptReference
from .identity_references import IdentityReferences
from .identity_remote import IdentityEdit, IdentityEnhance, IdentityGenerate, IdentityRemix
from .profile_load import ProfileLoad
from .profile_train import ProfileTrain
from .pulid_load import PuLIDLoad

__all__ = ["IdentityExtension", "register_folders", "startup_line"]


def startup_line() -> str:
    """What a user checks first in ComfyUI's log: the pack's version, the face engine the nodes use without a Face
    Engine node, the insightface packs found and the providers with a key (names only)."""
    found = re.search(r'^version = "([^"]+)"', (PACK_ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.M)
    packs = find_packs(insightface_roots())
    try:
        providers = ", ".join(key_store().providers_with_keys()) or "none"
    except IdentityError:  # a broken keys file: the line still comes, and says so
        providers = "none (the keys file is unreadable; a remote node's run says why)"
    return (
        f"Identity Layer {found.group(1) if found else 'unknown version'}: face engine "
        f"{resolve_engine_spec(None, insightface_roots())[0]}, insightface packs: {', '.join(packs) or 'none'}, "
        f"API keys set for: {providers}"
    )


class IdentityExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [
            FaceEngine,
            ProfileTrain,
            ProfileLoad,
            ArcFaceScore,
            BaseModelSelect,
            IdentityConditionRemote,
            IdentityGenerate,
            IdentityEdit,
            IdentityEnhance,
            IdentityRemix,
            PuLIDLoad,
            IdentityConditionFlux,
            IdentityConditionReference,
            IdentityPromptReference,
            IdentityReferences,
            IdentityConditionQwenEdit,
            IdentityConditionReferenceLatents,
            IdentityGateStart,
            IdentityGate,
        ]
