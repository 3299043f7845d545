"""Identity Generate / Edit / Enhance / Remix: closed-model requests that carry, and verify, the people in them."""

from __future__ import annotations

import asyncio
import json

from comfy_api.v0_0_2 import io, ui

from ..identity.remote.runner import RemoteRequest, execute, plan
from ..identity.scoring import badges
from .glue import (
    EngineChoice,
    FaceEngineSocket,
    Progress,
    check_interrupt,
    engine,
    key_store,
    known_profiles,
    pet_engine,
    to_arrays,
    to_images,
)
from .identity_condition_remote import Conditioned, RemoteIdentity


def common_inputs() -> list:
    return [
        io.Int.Input("num_output_images", default=1, min=1, max=4),
        io.Int.Input(
            "rerolls",
            default=0,
            min=0,
            max=8,
            tooltip="extra images that may be requested for outputs whose people do not clear their threshold",
        ),
        io.Float.Input(
            "max_cost_usd",
            default=0.0,
            min=0.0,
            max=100.0,
            step=0.01,
            tooltip="stop re-rolling when the next round would pass this (0: no limit)",
        ),
        io.Int.Input("seed", default=0, min=0, max=2**31 - 1, control_after_generate=True),
        FaceEngineSocket.Input("face_engine", optional=True),
    ]


def common_outputs() -> list:
    return [
        io.Image.Output(display_name="images"),
        io.Float.Output(
            display_name="scores",
            is_output_list=True,
            tooltip="per image, its weakest requested person's similarity (0 when someone is missing)",
        ),
        io.String.Output(display_name="report_json"),
    ]


async def run(
    node,
    operation: str,
    identity: Conditioned,
    prompt: str,
    images: list,
    candidates: list[str],
    num_output_images: int,
    rerolls: int,
    max_cost_usd: float,
    seed: int,
    face_engine: EngineChoice | None,
) -> io.NodeOutput:
    choice = identity.base_model
    request = RemoteRequest(
        operation=operation,
        model=choice.model,
        profiles=list(identity.profiles),
        prompt=prompt,
        resolution=choice.resolution,
        aspect_ratio=choice.aspect_ratio,
        quality=choice.quality,
        candidates=candidates,
        inputs=images,
        outputs=num_output_images,
        rerolls=rerolls,
        max_cost=max_cost_usd,
        seed=seed,
        cohort=known_profiles(identity.profiles),
    )
    chosen = engine(face_engine)
    planned = await asyncio.to_thread(plan, request, key_store(), chosen)  # every refusal happens here, offline
    result = await execute(
        planned, chosen, progress=Progress(node.hidden.unique_id), check=check_interrupt, pet_engine=pet_engine
    )
    names = {p.id: p.name for p in planned.subjects}
    output = to_images(result.images)
    return io.NodeOutput(
        output,
        result.scores,
        json.dumps(result.report),
        ui={
            **ui.PreviewImage(output, cls=node).as_dict(),
            "identity_scores": badges([(o["weakest"], o["scores"]) for o in result.report["outputs"]], names),
        },
    )


def schema(node_id: str, display: str, description: str, inputs: list) -> io.Schema:
    return io.Schema(
        node_id=node_id,
        display_name=display,
        category="identity/remote",
        description=description,
        inputs=[RemoteIdentity.Input("identity"), *inputs, *common_inputs()],
        outputs=common_outputs(),
        hidden=[io.Hidden.unique_id],
        is_output_node=True,
    )


class IdentityGenerate(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            "IdentityGenerate",
            "Identity Generate",
            "A new image of the people named in the prompt as [[profile_id]] (or [[their-name]]).",
            [io.String.Input("prompt", multiline=True, default="A portrait of [[alice]]")],
        )

    @classmethod
    async def execute(cls, identity, prompt, num_output_images, rerolls, max_cost_usd, seed, face_engine=None):
        return await run(
            cls, "generate", identity, prompt, [], [], num_output_images, rerolls, max_cost_usd, seed, face_engine
        )


class IdentityEdit(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            "IdentityEdit",
            "Identity Edit",
            "Edit photos; the people in them keep their identity. Candidates are the [[ids]] in the prompt "
            "and the comma-separated profile_ids.",
            [
                io.Image.Input("images"),
                io.String.Input("prompt", multiline=True, default=""),
                io.String.Input("profile_ids", default="", tooltip="comma-separated profile ids or names-as-ids"),
            ],
        )

    @classmethod
    async def execute(
        cls, identity, images, prompt, profile_ids, num_output_images, rerolls, max_cost_usd, seed, face_engine=None
    ):
        candidates = [c.strip() for c in profile_ids.split(",") if c.strip()]
        return await run(
            cls,
            "edit",
            identity,
            prompt,
            to_arrays(images),
            candidates,
            num_output_images,
            rerolls,
            max_cost_usd,
            seed,
            face_engine,
        )


class IdentityEnhance(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            "IdentityEnhance",
            "Identity Enhance",
            "Restore the faces in one photo so that everyone looks like themselves (nb2, at 2K).",
            [io.Image.Input("image")],
        )

    @classmethod
    async def execute(cls, identity, image, num_output_images, rerolls, max_cost_usd, seed, face_engine=None):
        return await run(
            cls,
            "enhance",
            identity,
            "",
            to_arrays(image)[:1],
            [],
            num_output_images,
            rerolls,
            max_cost_usd,
            seed,
            face_engine,
        )


class IdentityRemix(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            "IdentityRemix",
            "Identity Remix",
            "Restyle an image after a style reference; the people keep their identity.",
            [
                io.Image.Input("image"),
                io.Image.Input("style_reference"),
                io.String.Input("prompt", multiline=True, default="", optional=True),
            ],
        )

    @classmethod
    async def execute(
        cls,
        identity,
        image,
        style_reference,
        num_output_images,
        rerolls,
        max_cost_usd,
        seed,
        prompt="",
        face_engine=None,
    ):
        return await run(
            cls,
            "remix",
            identity,
            prompt,
            to_arrays(image)[:1] + to_arrays(style_reference)[:1],
            [],
            num_output_images,
            rerolls,
            max_cost_usd,
            seed,
            face_engine,
        )
