"""Base Model Select: which closed model a request goes to, at which resolution, aspect ratio and quality."""

from __future__ import annotations

from dataclasses import dataclass

from comfy_api.v0_0_2 import io

from ..identity.errors import IdentityError
from ..identity.remote.models import DEFAULT_MODEL, all_values, base_model, model_names, quality_choices
from .glue import key_store

BaseModelSocket = io.Custom("IDENTITY_BASE_MODEL")

#: The menu place of the closed-model nodes. Not ComfyUI's partner (API) nodes: `is_api_node` would make the
#: frontend (1.58, usePartnerNodesRunGate) ask for a comfy.org sign-in before Run, and ComfyUI hand the node the
#: user's comfy.org token (comfy_api/latest/_io.py, Schema.finalize); these nodes bill the user's own keys.
PAID_CATEGORY = "identity/paid API (your keys)"


@dataclass(frozen=True)
class BaseModelChoice:
    model: str
    resolution: str
    aspect_ratio: str
    quality: str


class BaseModelSelect(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IdentityBaseModelSelect",
            display_name="Base Model Select",
            category=PAID_CATEGORY,
            description="Pick the closed model for Identity Generate/Edit/Enhance/Remix. API keys come from "
            "environment variables or ComfyUI/user/identity_layer/keys.json, never from a widget.",
            inputs=[
                io.Combo.Input(
                    "model",
                    options=model_names(),
                    default=DEFAULT_MODEL,
                    tooltip="the closed model, billed to your own provider account (each paid node lists the "
                    "prices); add or override models in ComfyUI/user/identity_layer/models.json",
                ),
                io.Combo.Input(
                    "resolution",
                    options=all_values("resolutions"),
                    default="1K",
                    tooltip="output size, about 1024, 2048 or 4096 px on the long side (dearer at 2K and 4K)",
                ),
                io.Combo.Input(
                    "aspect_ratio",
                    options=all_values("aspect_ratios"),
                    default="auto",
                    tooltip="width:height of the output; auto lets the model follow the input photo or prompt",
                ),
                io.Combo.Input(
                    "quality",
                    options=quality_choices(),
                    default="auto",
                    tooltip="only gpt-image-2 has a quality setting",
                ),
            ],
            outputs=[BaseModelSocket.Output(display_name="base_model")],
        )

    @classmethod
    def validate_inputs(cls, model: str) -> bool | str:
        """Checked when the prompt is queued, before any paid work: the model is known and its provider's key is
        set; the message names the environment variables and the keys file."""
        try:
            key_store().credentials(base_model(model).provider)
        except IdentityError as error:
            return str(error)
        return True

    @classmethod
    def execute(cls, model: str, resolution: str, aspect_ratio: str, quality: str) -> io.NodeOutput:
        chosen = base_model(model)
        chosen.validate(chosen.operations[0], resolution, aspect_ratio, quality, 1)
        return io.NodeOutput(BaseModelChoice(model, resolution, aspect_ratio, quality))
