"""Face Engine: which face models the other identity nodes use, and on which onnxruntime provider."""

from __future__ import annotations

from comfy_api.v0_0_2 import io

from ..identity.faces import PROVIDER_CHOICES, find_packs
from .glue import EngineChoice, FaceEngineSocket, insightface_roots


def pack_options() -> list[str]:
    return ["embedded", *find_packs(insightface_roots())]


class FaceEngine(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IdentityFaceEngine",
            display_name="Face Engine",
            category="identity",
            description="Choose the face detector + recognizer for the identity nodes. Without this node they use "
            "the best insightface pack in models/insightface/models/, else the embedded engine.",
            inputs=[
                io.Combo.Input(
                    "pack",
                    options=pack_options(),
                    default="embedded",
                    tooltip="'embedded' needs no download; insightface packs live in models/insightface/models/<pack>/",
                ),
                io.Combo.Input(
                    "provider",
                    options=list(PROVIDER_CHOICES),
                    default="auto",
                    tooltip="onnxruntime provider; a GPU provider that is not installed is an error, never a silent CPU run",
                ),
            ],
            outputs=[FaceEngineSocket.Output(display_name="face_engine")],
        )

    @classmethod
    def execute(cls, pack: str, provider: str) -> io.NodeOutput:
        return io.NodeOutput(EngineChoice(pack, provider))
