"""Identity Condition (Flux): a clone of a Flux MODEL that carries the profiles' identities (PuLID-Flux adapter)."""

from __future__ import annotations

import torch
from comfy_api.v0_0_2 import io

from ..identity.errors import IdentityError
from ..identity.flux import Injection, Subject, attach, check_flux1, placements, profile_tokens
from ..identity.flux.faces import describe, encoder_view
from ..identity.flux.regions import subject_regions
from ..identity.flux.tokens import check_people, no_identity_tokens
from ..identity.scoring import score_images
from ..identity.training import unsaved_profile
from .glue import AdapterHandle, EngineChoice, FluxAdapterSocket, Profiles, engine, face_engine_input, to_arrays


def regions(profiles: list, masks: torch.Tensor | None, image: torch.Tensor | None, chosen) -> list:
    """MASK / IMAGE → each profile's region as a tensor `[H, W]` (or None: the whole image)."""
    if image is not None and len(image) != 1:
        raise IdentityError(f"connect one image to place the people ({len(image)} given)")
    arrays = None if masks is None else list((masks if masks.ndim == 3 else masks[None]).float().cpu().numpy())
    scored = None if image is None else score_images([("image", to_arrays(image)[0])], profiles, chosen)[0]
    return [None if r is None else torch.from_numpy(r) for r in subject_regions(profiles, arrays, scored)]


class IdentityConditionFlux(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IdentityConditionFlux",
            display_name="Identity Condition (Flux)",
            category="identity",
            description="Make a Flux.1 model draw the profiles' people (PuLID-Flux ID injection through block "
            "patches on a copy of the model). Several people need a mask each, or an image to edit "
            "whose faces show where each one is.",
            inputs=[
                io.Model.Input("model", tooltip="the Flux.1 model (a patched copy is returned)"),
                Profiles.Input("profiles", optional=True, tooltip="from Profile Load; or connect photos"),
                FluxAdapterSocket.Input("adapter", tooltip="from PuLID-Flux Load"),
                io.Float.Input("weight", default=1.0, min=-1.0, max=5.0, step=0.05, tooltip="strength of the identity"),
                io.Float.Input(
                    "start_at",
                    default=0.0,
                    min=0.0,
                    max=1.0,
                    step=0.01,
                    tooltip="fraction of sampling before the identity acts (PuLID advises ~0.2 for "
                    "photoreal results, 0 for stylised ones)",
                ),
                io.Float.Input(
                    "end_at",
                    default=1.0,
                    min=0.0,
                    max=1.0,
                    step=0.01,
                    tooltip="fraction of sampling after which it stops",
                ),
                io.Mask.Input("masks", optional=True, tooltip="one mask per profile, in order: where each person is"),
                io.Image.Input(
                    "image", optional=True, tooltip="for edits: the image whose faces show where each person is"
                ),
                face_engine_input("ArcFace for the adapter: antelopev2 (the default when installed)"),
                io.Boolean.Input(
                    "true_cfg",
                    default=False,
                    optional=True,
                    tooltip="give the negative prompt's pass the encoder's no-identity tokens, as the "
                    "official PuLID pipeline's true CFG (needs cfg > 1); off: both passes get "
                    "the person, as the ComfyUI ports",
                ),
                io.Image.Input(
                    "photos",
                    optional=True,
                    tooltip="photos of one more person, used directly (a profile made in memory, nothing saved)",
                ),
            ],
            outputs=[
                io.Model.Output(display_name="model"),
                io.String.Output(display_name="report", tooltip="which face input the encoder read, per profile"),
                io.Image.Output(
                    display_name="encoder_input",
                    tooltip="what PuLID's encoder saw of each photo: the aligned face, parsed, grey on white",
                ),
            ],
        )

    @classmethod
    def execute(
        cls,
        model,
        adapter: AdapterHandle,
        weight: float,
        start_at: float,
        end_at: float,
        masks: torch.Tensor | None = None,
        image: torch.Tensor | None = None,
        face_engine: EngineChoice | None = None,
        true_cfg: bool = False,
        profiles: list | None = None,
        photos: torch.Tensor | None = None,
    ) -> io.NodeOutput:
        if not profiles and photos is None:
            raise IdentityError("Identity Condition (Flux) needs a person: connect Profile Load, or photos")
        if start_at > end_at:
            raise IdentityError(f"start_at ({start_at}) is after end_at ({end_at})")
        check_flux1(model.model)
        chosen = engine(face_engine)
        profiles = list(profiles or []) + ([unsaved_profile(to_arrays(photos), chosen)] if photos is not None else [])
        check_people(profiles)
        flux = model.get_model_object("diffusion_model")
        where = placements(
            adapter.adapter.config,
            getattr(flux, "hidden_size", 0),
            len(getattr(flux, "double_blocks", ())),
            len(getattr(flux, "single_blocks", ())),
        )
        uncond = no_identity_tokens(adapter.adapter, adapter.prepare_encoders) if true_cfg else None
        subjects = [
            Subject(profile_tokens(adapter.adapter, profile, chosen, adapter.prepare_encoders), region, uncond)
            for profile, region in zip(profiles, regions(profiles, masks, image, chosen))
        ]
        sampling = model.get_model_object("model_sampling")
        injection = Injection(
            adapter.adapter.cross_attentions,
            subjects,
            weight,
            sampling.percent_to_sigma(start_at),
            sampling.percent_to_sigma(end_at),
        )
        patched = attach(model, injection, where)
        adapter.ride_along(patched, model)
        report = "\n".join(f"{p.name}: {describe(p, adapter.adapter.parser, adapter.missing_parser)}" for p in profiles)
        size = adapter.adapter.eva.config.image_size
        seen = [torch.from_numpy(encoder_view(p, size, adapter.adapter.parser)) for p in profiles]
        return io.NodeOutput(patched, report, torch.cat(seen))
