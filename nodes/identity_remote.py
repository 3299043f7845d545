"""Identity Generate / Edit / Enhance / Remix: closed-model requests that carry, and verify, the people in them."""

from __future__ import annotations

import asyncio
import json

from comfy_api.v0_0_2 import io, ui

from ..identity.remote.models import list_prices
from ..identity.remote.runner import RemoteRequest, execute, plan
from ..identity.scoring import badges
from .glue import (
    EngineChoice,
    Progress,
    check_interrupt,
    engine,
    face_engine_input,
    key_store,
    known_people_input,
    known_store,
    pet_engine,
    to_arrays,
    to_images,
)
from .identity_condition_remote import PAID_CATEGORY, Conditioned, RemoteIdentity


def common_inputs() -> list:
    return [
        io.Int.Input(
            "num_output_images",
            default=1,
            min=1,
            max=4,
            tooltip="images to return; each one is a paid image (and re-rolls may add more)",
        ),
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
        io.Int.Input(
            "seed",
            default=0,
            min=0,
            max=2**31 - 1,
            control_after_generate=True,
            tooltip="sent to models that take a seed; a new seed is a new (paid) request, not a cached result",
        ),
        face_engine_input("from Face Engine: checks each output's faces; unconnected, the embedded engine"),
        known_people_input(),
    ]


def prompt_input(example: str, optional: bool = False):
    """The prompt: empty by default (a profile a new user has not trained is never named), with an example."""
    return io.String.Input(
        "prompt",
        multiline=True,
        default="",
        placeholder=f"e.g. {example}",
        optional=optional,
        tooltip="what to make; name people as [[profile name]] written like [[barack-obama]], or by [[profile id]]",
    )


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
    *,
    num_output_images: int,
    rerolls: int,
    max_cost_usd: float,
    seed: int,
    face_engine: EngineChoice | None = None,
    known_people: bool = True,
) -> io.NodeOutput:
    """What the four nodes share; each passes the common inputs (`common_inputs`) through as it got them."""
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
        cohort=known_store(known_people),
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


def _usd(span: tuple[float, float] | None) -> str:
    if span is None:
        return "metered (tokens) or priced by its base model"
    low, high = span
    return f"${low:.3f}" if low == high else f"${low:.3f}–{high:.3f}"


def paid(display: str, operation: str, description: str) -> tuple[str, str]:
    """The display name and description of a paid node: its price per image, cheapest to dearest model, in the name
    and each model's in the description (list prices from identity/remote/models.json and the user's overrides)."""
    prices = list_prices(operation)
    listed = [span for span in prices.values() if span]
    name = f"{display} (paid API, ${min(s[0] for s in listed):.2f}–{max(s[1] for s in listed):.2f}/image)"
    each = "; ".join(f"{model} {_usd(span)}" for model, span in prices.items())
    return name, (
        f"{description} Paid: every image is billed to your own provider account (keys from the environment or "
        f"ComfyUI/user/identity_layer/keys.json). List price per image: {each}."
    )


def schema(node_id: str, display: str, description: str, operation: str, inputs: list) -> io.Schema:
    name, described = paid(display, operation, description)
    return io.Schema(
        node_id=node_id,
        display_name=name,
        category=PAID_CATEGORY,
        description=described,
        inputs=[
            RemoteIdentity.Input("identity", tooltip="from Identity Condition (remote): the base model and the people"),
            *inputs,
            *common_inputs(),
        ],
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
            "generate",
            [prompt_input("A portrait of [[barack-obama]] in a navy suit")],
        )

    @classmethod
    async def execute(cls, identity, prompt, **settings):
        return await run(
            cls,
            "generate",
            identity,
            prompt,
            [],
            [],
            **settings,
        )


class IdentityEdit(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            "IdentityEdit",
            "Identity Edit",
            "Edit photos; the people in them keep their identity. Candidates are the [[ids]] in the prompt "
            "and the comma-separated profile_ids.",
            "edit",
            [
                io.Image.Input("images", tooltip="the photos to edit (all go with the request)"),
                prompt_input("Give [[barack-obama]] a party hat"),
                io.String.Input("profile_ids", default="", tooltip="comma-separated profile ids or names-as-ids"),
            ],
        )

    @classmethod
    async def execute(cls, identity, images, prompt, profile_ids, **settings):
        candidates = [c.strip() for c in profile_ids.split(",") if c.strip()]
        return await run(
            cls,
            "edit",
            identity,
            prompt,
            to_arrays(images),
            candidates,
            **settings,
        )


class IdentityEnhance(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            "IdentityEnhance",
            "Identity Enhance",
            "Restore the faces in one photo so that everyone looks like themselves (nb2, at 2K).",
            "enhance",
            [io.Image.Input("image", tooltip="the photo to enhance (the first of a batch)")],
        )

    @classmethod
    async def execute(cls, identity, image, **settings):
        return await run(
            cls,
            "enhance",
            identity,
            "",
            to_arrays(image)[:1],
            [],
            **settings,
        )


class IdentityRemix(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            "IdentityRemix",
            "Identity Remix",
            "Restyle an image after a style reference; the people keep their identity.",
            "remix",
            [
                io.Image.Input("image", tooltip="the photo to restyle (the first of a batch)"),
                io.Image.Input("style_reference", tooltip="the image whose style is taken (the first of a batch)"),
                prompt_input("in the style of the reference, [[barack-obama]] smiling", optional=True),
            ],
        )

    @classmethod
    async def execute(cls, identity, image, style_reference, prompt="", **settings):
        return await run(
            cls,
            "remix",
            identity,
            prompt,
            to_arrays(image)[:1] + to_arrays(style_reference)[:1],
            [],
            **settings,
        )
