"""The example workflows' media: the sample photos they load, and the `<name>.jpg` thumbnail of each template.

ComfyUI's template browser asks for `/api/workflow_templates/<pack>/<template name>.jpg` for every card of a
custom-node pack (see TEMPLATES in comfyui_client.py). The photos are the insightface wheel's `t1.jpg` (six people;
insightface is MIT-licensed, see example_workflows/input/NOTICE.md) and crops of its six faces; the pack copies them into ComfyUI's input folder at start-up (nodes/glue.py, place_template_photos), where
Load Image finds them. Thumbnails show those photos as the workflows use them, the group photo as the group
template annotates it. Run again after changing a template's title: `.venv/bin/python scripts/template_media.py`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from comfyui_client import TEMPLATES, template_file  # noqa: E402

from identity.faces import load_engine  # noqa: E402
from identity.images import load_image  # noqa: E402
from identity.scoring import annotate, score_images  # noqa: E402

SAMPLES = ROOT / "example_workflows" / "input"
GROUP = SAMPLES / "identity_example_group.jpg"
#: t1.jpg's six faces, left to right: the first three at the top of the input folder (Load Image lists only the
#: files there, and the frontend calls any other name missing), the other three a folder to score.
FACES = [SAMPLES / f"identity_example_face_{i}.jpg" for i in (1, 2, 3)]
FOLDER = [SAMPLES / "identity_examples" / f"face_{i}.jpg" for i in (4, 5, 6)]
THUMBNAIL = (512, 384)
#: What each thumbnail shows: the group photo as scored, one face, the three faces Load Image reads, or the folder's
#: three as scored.
SHOWS = {
    "train_profile_from_folder": "faces",
    "score_group_photo_two_profiles": "group",
    "score_and_rank_batch": "folder",
    "identity_gate_core_nodes_cpu": "faces",
    "flux_dev_identity_injection": "face",
    "flux_identity_then_arcface_rank": "faces",
    "flux2_reference_identity": "face",
    "kontext_reference_identity": "face",
    "qwen_image_edit_references_gate": "face",
    "remote_generate_portrait_nb2": "face",
    "remote_edit_group_photo_gpt_image_2": "group",
    "remote_enhance_nb2": "face",
    "remote_partner_nano_banana_pro_gate": "face",
    "remote_partner_gpt_image_gate": "faces",
    "remote_partner_flux2_pro_gate": "face",
    "remote_partner_qwen_image_edit_gate": "face",
}


def write_samples(t1: Path) -> None:
    """The group photo is t1.jpg as the wheel has it; each face crop is a square around one of its faces, half a
    face wide on each side."""
    SAMPLES.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(t1, GROUP)
    image = load_image(GROUP)
    faces = sorted(score_images([("t1", image)], [], load_engine("embedded"))[0].faces, key=lambda f: f.bbox[0])
    FOLDER[0].parent.mkdir(parents=True, exist_ok=True)
    for face, target in zip(faces, FACES + FOLDER, strict=True):
        x1, y1, x2, y2 = face.bbox
        side = 2 * max(x2 - x1, y2 - y1)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        box = [int(max(0, cx - side / 2)), int(max(0, cy - side / 2))]
        box += [int(min(image.shape[1], box[0] + side)), int(min(image.shape[0], box[1] + side))]
        Image.fromarray(image).crop(box).resize((256, 256), Image.LANCZOS).save(target, quality=92)


def _fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` scaled to cover `size` and cut to it, centred."""
    scale = max(size[0] / image.width, size[1] / image.height)
    scaled = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
    left, top = (scaled.width - size[0]) // 2, (scaled.height - size[1]) // 2
    return scaled.crop((left, top, left + size[0], top + size[1]))


def _picture(shows: str) -> Image.Image:
    if shows == "group":
        image = load_image(GROUP)
        scored = score_images([("group", image)], [], load_engine("embedded"))[0]
        return _fit(Image.fromarray(annotate(image, scored, {})), THUMBNAIL)
    if shows == "face":
        return _fit(Image.open(FACES[2]).convert("RGB"), THUMBNAIL)
    canvas = Image.new("RGB", THUMBNAIL, (24, 24, 28))
    width = THUMBNAIL[0] // 3
    for i, path in enumerate(FACES if shows == "faces" else FOLDER):
        image = load_image(path)
        if shows == "folder":
            image = annotate(image, score_images([(path.name, image)], [], load_engine("embedded"))[0], {})
        canvas.paste(_fit(Image.fromarray(image), (width - 4, THUMBNAIL[1])), (i * width + 2, 0))
    return canvas


def thumbnail(name: str) -> Image.Image:
    """The template's picture with its title on a band at the bottom."""
    picture = _picture(SHOWS[name])
    draw = ImageDraw.Draw(picture)
    title = TEMPLATES[name].split(". ", 1)[1]
    size = 22
    while ImageDraw.Draw(picture).textlength(title, font=ImageFont.load_default(size=size)) > THUMBNAIL[0] - 24:
        size -= 1
    font = ImageFont.load_default(size=size)
    band = 44
    draw.rectangle([0, THUMBNAIL[1] - band, THUMBNAIL[0], THUMBNAIL[1]], fill=(20, 20, 24))
    draw.text((12, THUMBNAIL[1] - band + 10), title, fill=(240, 240, 240), font=font)
    return picture


def main() -> None:
    import insightface

    write_samples(Path(insightface.__file__).parent / "data" / "images" / "t1.jpg")
    for name in TEMPLATES:
        target = template_file(name).with_suffix(".jpg")
        thumbnail(name).save(target, "JPEG", quality=88)
        print(target.relative_to(ROOT), np.asarray(Image.open(target)).shape)


if __name__ == "__main__":
    main()
