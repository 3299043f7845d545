"""ArcFace Score: who is in each image and how much they look like themselves; rank and filter a batch (an IMAGE
batch and/or a folder of images under ComfyUI's input folder)."""

from __future__ import annotations

import json

from comfy_api.v0_0_2 import io, ui
from comfy_execution.graph_utils import ExecutionBlocker

from ..identity.errors import IdentityError
from ..identity.images import load_image
from ..identity.scoring import Scorer, annotate, badges, batch_report, rank
from .glue import (
    EngineChoice,
    Profiles,
    Progress,
    check_interrupt,
    engine,
    face_engine_input,
    folder_photos,
    folder_state,
    hashed,
    known_people_input,
    known_state,
    known_store,
    pet_engine,
    shown_path,
    to_arrays,
    to_images,
)

#: The default cut for the ranked output: above what two different people score with ArcFace (about 0.2), below
#: what photos of one person score (0.5 and up); the example workflows use the same value.
MIN_SIMILARITY = 0.4


class ArcFaceScore(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IdentityArcFaceScore",
            display_name="ArcFace Score",
            category="identity",
            description="Find the profiles' people (by face) and pets (by the animal detector) in each image, one "
            "per profile, score their likeness, and rank the batch by its weakest subject so that "
            "every one must look right. Pet scores measure appearance, not identity, unless a "
            "re-identification model is in models/pet_reid/.",
            inputs=[
                io.Image.Input("images", optional=True, tooltip="an IMAGE batch (a sampler's output, Load Image)"),
                Profiles.Input("profiles", tooltip="from Profile Load: the people (or pets) to find in each image"),
                io.Float.Input(
                    "min_similarity",
                    default=MIN_SIMILARITY,
                    min=-1.0,
                    max=1.0,
                    step=0.01,
                    tooltip="drop images whose weakest subject scores below this",
                ),
                io.Int.Input("top_k", default=0, min=0, max=4096, tooltip="keep the best k images (0 keeps all)"),
                io.String.Input(
                    "folder",
                    default="",
                    optional=True,
                    tooltip="also score the images in this folder inside ComfyUI's input folder, "
                    "e.g. 'renders/alice' (resized to the first image's size in the outputs)",
                ),
                face_engine_input(),
                known_people_input(),
            ],
            outputs=[
                io.Image.Output(display_name="annotated"),
                io.Float.Output(
                    display_name="scores",
                    is_output_list=True,
                    tooltip="per image, its weakest subject's similarity (0 when someone is missing)",
                ),
                io.String.Output(display_name="report_json"),
                io.Image.Output(display_name="ranked"),
            ],
            hidden=[io.Hidden.unique_id],
            is_output_node=True,
        )

    @classmethod
    def fingerprint_inputs(cls, folder: str = "", known_people: bool = True, **_) -> str:
        """The folder's photos (path, time, size) and, with `known_people`, the store's profiles, hashed: an image
        added to the folder, or a person to the store, is scored anew, not served from ComfyUI's cache."""
        return hashed((folder_state(folder), known_state() if known_people else None))

    @classmethod
    def execute(
        cls,
        profiles,
        min_similarity: float,
        top_k: int,
        images=None,
        folder: str = "",
        face_engine: EngineChoice | None = None,
        known_people: bool = True,
    ) -> io.NodeOutput:
        if not profiles:
            raise IdentityError("ArcFace Score needs at least one profile: connect Profile Load")
        named = [(f"image {i + 1}", array) for i, array in enumerate(to_arrays(images))] if images is not None else []
        named += [(shown_path(str(path)), load_image(path)) for path in folder_photos(folder)]
        if not named:
            raise IdentityError(
                "ArcFace Score needs images: connect an IMAGE batch or name a folder in ComfyUI's input folder"
            )
        progress = Progress(cls.hidden.unique_id)
        arrays = [array for _, array in named]
        scorer = Scorer(profiles, engine(face_engine), pet_engine, known_store(known_people))
        results = scorer.score(
            named, check_interrupt, lambda done, total: progress(done / total, f"scored {done} of {total} images")
        )
        order = rank(results, [p.id for p in profiles], min_similarity, top_k)
        names = {p.id: p.name for p in profiles}
        annotated = to_images([annotate(a, r, names) for a, r in zip(arrays, results)])
        summary = batch_report(results, profiles, order, scorer.left_out)
        if order:  # the input batch itself when it is all there is, else every image at the first one's size
            ranked = (images if images is not None and len(images) == len(named) else to_images(arrays))[order]
        else:
            ranked = ExecutionBlocker(None)
        return io.NodeOutput(
            annotated,
            [i["score"] for i in summary["images"]],
            json.dumps(summary),
            ranked,
            ui={
                **ui.PreviewImage(annotated, cls=cls).as_dict(),
                "identity_scores": badges([(i["score"], i["subjects"]) for i in summary["images"]], names, results),
            },
        )
