"""Identity Prompt (Reference): a prompt's [[profile_id]] written the way a local reference model reads it."""

from __future__ import annotations

from comfy_api.v0_0_2 import io

from ..identity.reference import reference_prompt
from .glue import Profiles


class IdentityPromptReference(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IdentityPromptReference",
            display_name="Identity Prompt (Reference)",
            category="identity",
            description="Replace each [[profile_id]] with 'the person in reference image N (Name)', N being the "
            "profile's place in 'profiles' (as Identity Condition (Reference) numbers them). Feed the "
            "text to the model's text encoder.",
            inputs=[
                io.String.Input(
                    "prompt",
                    multiline=True,
                    default="",
                    tooltip="name people as [[profile_id]] or [[their-name]], e.g. [[barack-obama]] waves",
                ),
                Profiles.Input("profiles", tooltip="from Profile Load, in the order of the reference images"),
            ],
            outputs=[io.String.Output(display_name="prompt")],
        )

    @classmethod
    def execute(cls, prompt: str, profiles: list) -> io.NodeOutput:
        return io.NodeOutput(reference_prompt(prompt, profiles))
