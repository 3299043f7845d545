"""Each open edit model's own conditioning from profiles, built by ComfyUI's own nodes at run time: Qwen-Image-Edit
through `TextEncodeQwenImageEditPlus` (vision tokens and reference latents, positive and negative), FLUX.2 and
Kontext through `VAEEncode` + `ReferenceLatent`, so the result is what those nodes give for the same images."""

from __future__ import annotations

from comfy_api.v0_0_2 import io, ui
from comfy_extras.nodes_edit_model import ReferenceLatent
from comfy_extras.nodes_qwen import TextEncodeQwenImageEditPlus

from nodes import VAEEncode

from ..identity.reference import MAX_PORTRAITS
from ..identity.targets import references_for
from .glue import Profiles, to_images


class IdentityConditionQwenEdit(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IdentityConditionQwenEdit",
            display_name="Identity Condition (Qwen-Image-Edit)",
            category="identity",
            description="Qwen-Image-Edit 2509/2511 conditioning as TextEncodeQwenImageEditPlus builds it, with the "
            "profiles' portraits among its pictures: Picture 1 is your photo to edit (when connected), then each "
            "profile in order. [[profile_id]] in either prompt becomes 'the person in Picture N (Name)'. The node "
            "takes 3 pictures in all.",
            inputs=[
                io.Clip.Input("clip", tooltip="Qwen-Image-Edit's text encoder (Qwen2.5-VL), from Load CLIP"),
                io.Vae.Input("vae", tooltip="Qwen-Image's VAE: the pictures also go in as reference latents"),
                Profiles.Input("profiles", tooltip="from Profile Load: each profile's portraits become pictures"),
                io.String.Input("prompt", multiline=True, default="", tooltip="e.g. [[barack-obama]] waves"),
                io.String.Input(
                    "negative_prompt", multiline=True, default="", tooltip="what to avoid (it sees the pictures too)"
                ),
                io.Int.Input("portraits", default=1, min=1, max=MAX_PORTRAITS, tooltip="pictures per profile"),
                io.Image.Input("image", optional=True, tooltip="your photo to edit: Picture 1"),
            ],
            outputs=[
                io.Conditioning.Output(display_name="positive"),
                io.Conditioning.Output(display_name="negative"),
                io.String.Output(display_name="report"),
            ],
        )

    @classmethod
    def execute(
        cls, clip, vae, profiles: list, prompt: str, negative_prompt: str, portraits: int, image=None
    ) -> io.NodeOutput:
        own = [] if image is None else [image]
        found = references_for(profiles, "qwen-image-edit", prompt, portraits, len(own))
        negative = references_for(profiles, "qwen-image-edit", negative_prompt, portraits, len(own)).prompt
        pictures = own + [to_images([reference]) for reference in found.images]
        positive = TextEncodeQwenImageEditPlus.execute(clip, found.prompt, vae, *pictures).result[0]
        negative = TextEncodeQwenImageEditPlus.execute(clip, negative, vae, *pictures).result[0]
        report = "\n".join(found.report)
        return io.NodeOutput(positive, negative, report, ui=ui.PreviewText(report))


class IdentityConditionReferenceLatents(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IdentityConditionReferenceLatents",
            display_name="Identity Condition (FLUX.2 / Kontext)",
            category="identity",
            description="Each profile's portraits as reference latents, added as core ReferenceLatent adds them, "
            "after any the conditioning holds; each at up to 1024x1024 px (about 1 MP) where its photos allow. "
            "Name them in the prompt with Identity References (same target, own_images = references already "
            "in the conditioning).",
            inputs=[
                io.Conditioning.Input("conditioning", tooltip="the prompt's conditioning, from CLIP Text Encode"),
                io.Vae.Input("vae", tooltip="the model's VAE: each portrait is encoded into a reference latent"),
                Profiles.Input("profiles", tooltip="from Profile Load: each profile's portraits become references"),
                io.Combo.Input(
                    "target",
                    options=["flux2", "kontext"],
                    default="flux2",
                    tooltip="FLUX.2 [dev] or Flux.1 Kontext [dev]: whose limits the references are fitted to (up to 4, 1024 px)",
                ),
                io.Int.Input("portraits", default=1, min=1, max=MAX_PORTRAITS, tooltip="references per profile"),
            ],
            outputs=[io.Conditioning.Output(display_name="conditioning"), io.String.Output(display_name="report")],
        )

    @classmethod
    def execute(cls, conditioning, vae, profiles: list, target: str, portraits: int) -> io.NodeOutput:
        conditioning, report, shown = cls.referenced(conditioning, vae, profiles, target, portraits)
        return io.NodeOutput(conditioning, report, ui=shown)

    @staticmethod
    def referenced(conditioning, vae, profiles: list, target: str, portraits: int) -> tuple[list, str, ui.PreviewText]:
        """The conditioning with the references added, the report, and its preview (the deprecated Identity
        Condition (Reference) runs this too)."""
        found = references_for(profiles, target, "", portraits)
        for reference in found.images:
            (latent,) = VAEEncode().encode(vae, to_images([reference]))
            conditioning = ReferenceLatent.execute(conditioning, latent).result[0]
        report = "\n".join(found.report)
        return conditioning, report, ui.PreviewText(report)
