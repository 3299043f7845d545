"""Identity Condition (Reference): the profiles' portraits as reference latents, for FLUX.2, Kontext, Qwen-Image-Edit."""

from __future__ import annotations

from comfy_api.v0_0_2 import io, ui

from ..identity.reference import MAX_PORTRAITS, MAX_SIDE, MIN_SIDE, MULTIPLE, reference_images, with_references
from .glue import Profiles, to_images


class IdentityConditionReference(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IdentityConditionReference",
            display_name="Identity Condition (Reference)",
            category="identity",
            description="Give a reference-capable model (FLUX.2, Flux Kontext, Qwen-Image-Edit) each profile's best "
            "portraits as a reference image. Profile N is reference image N, before any other "
            "references; Identity Prompt (Reference) writes [[profile_id]] that way.",
            inputs=[
                io.Conditioning.Input("conditioning", tooltip="the prompt's conditioning (CLIP Text Encode)"),
                io.Vae.Input("vae", tooltip="the model's VAE: it encodes the reference portraits"),
                Profiles.Input(
                    "profiles", tooltip="from Profile Load: each profile's best portrait becomes a reference"
                ),
                io.Int.Input(
                    "portraits",
                    default=1,
                    min=1,
                    max=MAX_PORTRAITS,
                    tooltip="portraits per profile, side by side in its reference image",
                ),
                io.Int.Input(
                    "size",
                    default=384,
                    min=MIN_SIDE,
                    max=MAX_SIDE,
                    step=MULTIPLE,
                    tooltip="side of each portrait in pixels (a reference image stays within 1 megapixel)",
                ),
            ],
            outputs=[io.Conditioning.Output(display_name="conditioning")],
        )

    @classmethod
    def execute(cls, conditioning, vae, profiles: list, portraits: int, size: int) -> io.NodeOutput:
        images = reference_images(profiles, portraits, size)
        latents = [vae.encode(to_images([image])) for image in images]
        report = [
            f"reference image {n}: {p.name}, {image.shape[1]}x{image.shape[0]} px, latent {list(latent.shape)}"
            for n, (p, image, latent) in enumerate(zip(profiles, images, latents), start=1)
        ]
        return io.NodeOutput(with_references(conditioning, latents), ui=ui.PreviewText("\n".join(report)))
