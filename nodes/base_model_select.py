"""Base Model Select: which closed model a request goes to, at which resolution, aspect ratio and quality."""

from __future__ import annotations

from dataclasses import dataclass

from comfy_api.v0_0_2 import io

from ..identity.remote.models import DEFAULT_MODEL, all_values, base_model, model_names, quality_choices

BaseModelSocket = io.Custom("IDENTITY_BASE_MODEL")


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
            category="identity/remote",
            description="Pick the closed model for Identity Generate/Edit/Enhance/Remix. API keys come from "
            "environment variables or ComfyUI/user/identity_layer/keys.json, never from a widget.",
            inputs=[
                io.Combo.Input(
                    "model",
                    options=model_names(),
                    default=DEFAULT_MODEL,
                    tooltip="add or override models in ComfyUI/user/identity_layer/models.json",
                ),
                io.Combo.Input("resolution", options=all_values("resolutions"), default="1K"),
                io.Combo.Input("aspect_ratio", options=all_values("aspect_ratios"), default="auto"),
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
    def execute(cls, model: str, resolution: str, aspect_ratio: str, quality: str) -> io.NodeOutput:
        chosen = base_model(model)
        chosen.validate(chosen.operations[0], resolution, aspect_ratio, quality, 1)
        return io.NodeOutput(BaseModelChoice(model, resolution, aspect_ratio, quality))
