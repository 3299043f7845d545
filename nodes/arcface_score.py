"""ArcFace Score: who is in each image and how much they look like themselves; rank and filter a batch."""

from __future__ import annotations

import json

from comfy_api.latest import io, ui
from comfy_execution.graph_utils import ExecutionBlocker

from ..identity.errors import IdentityError
from ..identity.scoring import annotate, batch_report, rank, score_images
from .glue import EngineChoice, FaceEngineSocket, Profiles, Progress, check_interrupt, engine, pet_engine, to_arrays, to_images


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
                io.Image.Input("images"),
                Profiles.Input("profiles"),
                io.Float.Input("min_similarity", default=0.0, min=-1.0, max=1.0, step=0.01,
                               tooltip="drop images whose weakest subject scores below this"),
                io.Int.Input("top_k", default=0, min=0, max=4096, tooltip="keep the best k images (0 keeps all)"),
                FaceEngineSocket.Input("face_engine", optional=True),
            ],
            outputs=[
                io.Image.Output(display_name="annotated"),
                io.Float.Output(display_name="scores", is_output_list=True,
                                tooltip="per image, its weakest subject's similarity (0 when someone is missing)"),
                io.String.Output(display_name="report_json"),
                io.Image.Output(display_name="ranked"),
            ],
            hidden=[io.Hidden.unique_id],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, images, profiles, min_similarity: float, top_k: int,
                face_engine: EngineChoice | None = None) -> io.NodeOutput:
        if not profiles:
            raise IdentityError("ArcFace Score needs at least one profile: connect Profile Load")
        progress = Progress(cls.hidden.unique_id)
        chosen = engine(face_engine)
        arrays = to_arrays(images)
        results = []
        for index, array in enumerate(arrays):
            check_interrupt()
            results += score_images([(f"image {index + 1}", array)], profiles, chosen, pet_engine)
            progress((index + 1) / len(arrays), f"scored {index + 1} of {len(arrays)} images")
        ids = [p.id for p in profiles]
        order = rank(results, ids, min_similarity, top_k)
        names = {p.id: p.name for p in profiles}
        annotated = to_images([annotate(a, r, names) for a, r in zip(arrays, results)])
        summary = batch_report(results, profiles, order)
        ranked = images[order] if order else ExecutionBlocker(None)
        badges = [{"index": i["index"], "score": i["score"], "subjects": {names[k]: v for k, v in i["subjects"].items()}}
                  for i in summary["images"]]
        return io.NodeOutput(annotated, [i["score"] for i in summary["images"]], json.dumps(summary), ranked,
                             ui={**ui.PreviewImage(annotated, cls=cls).as_dict(), "identity_scores": badges})
