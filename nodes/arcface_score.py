"""ArcFace Score: who is in each image and how much they look like themselves; rank and filter a batch."""

from __future__ import annotations

import json

from comfy_api.latest import io, ui
from comfy_execution.graph_utils import ExecutionBlocker

from ..identity.errors import IdentityError
from ..identity.scoring import annotate, badges, batch_report, rank, score_images
from .glue import EngineChoice, FaceEngineSocket, Profiles, Progress, check_interrupt, engine, to_arrays, to_images


class ArcFaceScore(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IdentityArcFaceScore",
            display_name="ArcFace Score",
            category="identity",
            description="Find the profiles' people in each image (one face per person), score their likeness, "
                        "and rank the batch by its weakest subject so that every person must look right.",
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
        arrays = to_arrays(images)
        results = score_images([(f"image {i + 1}", a) for i, a in enumerate(arrays)], profiles, engine(face_engine),
                               check=check_interrupt,
                               progress=lambda done, total: progress(done / total, f"scored {done} of {total} images"))
        order = rank(results, [p.id for p in profiles], min_similarity, top_k)
        names = {p.id: p.name for p in profiles}
        annotated = to_images([annotate(a, r, names) for a, r in zip(arrays, results)])
        summary = batch_report(results, profiles, order)
        ranked = images[order] if order else ExecutionBlocker(None)
        return io.NodeOutput(annotated, [i["score"] for i in summary["images"]], json.dumps(summary), ranked,
                             ui={**ui.PreviewImage(annotated, cls=cls).as_dict(), "identity_scores":
                                 badges([(i["score"], i["subjects"]) for i in summary["images"]], names)})
