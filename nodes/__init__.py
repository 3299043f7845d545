"""ComfyUI nodes: thin glue between ComfyUI types and `identity/`."""

from comfy_api.v0_0_2 import ComfyExtension, io

from .arcface_score import ArcFaceScore
from .base_model_select import BaseModelSelect
from .face_engine import FaceEngine
from .glue import register_folders
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

__all__ = ["IdentityExtension", "register_folders"]


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
