"""Identity References: the profiles' portraits as an IMAGE any image-conditioned node takes, with the prompt
written the way the chosen model names its images."""

from __future__ import annotations

from comfy_api.v0_0_2 import io, ui

from ..identity.reference import MAX_PORTRAITS
from ..identity.targets import TARGETS, references_for
from .glue import Profiles, to_images


class IdentityReferences(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IdentityReferences",
            display_name="Identity References",
            category="identity",
            description="Each profile's best portraits (up to 1024 px where its photos allow, never upscaled) as "
            "one IMAGE batch for the chosen model's node, and the prompt with each [[profile_id]] named as that "
            "model names its input images ('Picture 2', 'image 2', '@Image2'). Too many images for the model "
            "are refused before anything runs; 'report' says which image shows whom.",
            inputs=[
                Profiles.Input("profiles", tooltip="from Profile Load: the people whose references are made"),
                io.Combo.Input(
                    "target",
                    options=list(TARGETS),
                    default="qwen-image-edit",
                    tooltip="; ".join(f"{t.key}: {t.label}, up to {t.max_images} images" for t in TARGETS.values()),
                ),
                io.String.Input(
                    "prompt",
                    multiline=True,
                    default="",
                    tooltip="name people as [[profile_id]] or [[their-name]], e.g. [[barack-obama]] waves",
                ),
                io.Int.Input("portraits", default=1, min=1, max=MAX_PORTRAITS, tooltip="reference images per profile"),
                io.Int.Input(
                    "own_images",
                    default=0,
                    min=0,
                    max=15,
                    tooltip="images of your own the model gets before the references (e.g. 1: the photo to edit "
                    "is image 1), so that the references are numbered after them",
                ),
            ],
            outputs=[
                io.Image.Output(display_name="references"),
                io.String.Output(display_name="prompt"),
                io.String.Output(display_name="report"),
            ],
        )

    @classmethod
    def execute(cls, profiles: list, target: str, prompt: str, portraits: int, own_images: int) -> io.NodeOutput:
        found = references_for(profiles, target, prompt, portraits, own_images)
        report = "\n".join(found.report)
        return io.NodeOutput(to_images(found.images), found.prompt, report, ui=ui.PreviewText(report))
