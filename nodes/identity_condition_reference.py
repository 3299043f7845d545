"""Identity Condition (Reference), deprecated: the older FLUX.2 / Kontext reference node. ComfyUI keeps a node id
for good, so saved workflows that use it still run; it gives what Identity Condition (FLUX.2 / Kontext) gives (each
portrait its own reference latent at up to 1 MP, from the profile's large portraits), through the same code."""

from __future__ import annotations

from comfy_api.v0_0_2 import io

from ..identity.reference import MAX_PORTRAITS
from .glue import Profiles
from .identity_condition_edit import IdentityConditionReferenceLatents


class IdentityConditionReference(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IdentityConditionReference",
            display_name="Identity Condition (Reference)",
            category="identity",
            description="Deprecated: use Identity Condition (FLUX.2 / Kontext), which this node now runs. Each "
            "profile's portraits become reference latents at up to 1024x1024 px where its photos allow, after any "
            "the conditioning holds; 'size' is no longer used. With one portrait per profile (the default), "
            "profile N is still reference image N, as Identity Prompt (Reference) names it.",
            is_deprecated=True,
            inputs=[
                io.Conditioning.Input("conditioning", tooltip="the prompt's conditioning (CLIP Text Encode)"),
                io.Vae.Input("vae", tooltip="the model's VAE: it encodes the reference portraits"),
                Profiles.Input("profiles", tooltip="from Profile Load: each profile's portraits become references"),
                io.Int.Input("portraits", default=1, min=1, max=MAX_PORTRAITS, tooltip="references per profile"),
                # Kept so that saved workflows (which carry its value) load and validate as before.
                io.Int.Input(
                    "size",
                    default=384,
                    min=256,
                    max=1024,
                    step=16,
                    tooltip="no longer used: references keep the profile's best resolution, up to 1024 px",
                ),
            ],
            outputs=[io.Conditioning.Output(display_name="conditioning")],
        )

    @classmethod
    def execute(cls, conditioning, vae, profiles: list, portraits: int, size: int) -> io.NodeOutput:
        conditioning, _, shown = IdentityConditionReferenceLatents.referenced(
            conditioning, vae, profiles, "flux2", portraits
        )
        return io.NodeOutput(conditioning, ui=shown)
