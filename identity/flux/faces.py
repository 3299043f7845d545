"""What PuLID's ID encoder sees of a face, made as the reference pipeline makes it.

The reference (`pipeline_flux.get_id_embedding`) aligns the photo to facexlib's FFHQ template at 512 px, lets a
BiSeNet face-parsing network whiten background, neck, clothes, ears and accessories (hair and face stay), turns
the rest grey (ITU-R 601 luma), and resizes it bicubically (antialiased) to the EVA tower's input. Profiles keep
that 512 px face of each accepted photo (`Profile.faces_512`) and the parser is facexlib's `parsing_bisenet.pth`.
One difference remains: the five landmarks come from the profile's face engine (SCRFD, YuNet), not from
facexlib's RetinaFace, so the alignment can differ by a few pixels.

Two fallbacks, each named by `describe()` for the node's report: without the parsing file a fixed ellipse over
the face (brows to chin, cheek to cheek) is kept instead, so hair, ears and the jaw line turn white; a profile
trained before 512 px faces were kept has only its 112 px ArcFace crops, which are warped up into FFHQ geometry
(x2.2: blurry, and the crop cuts the jaw and hair).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..faces.align import CROP_SIZE, FFHQ_BORDER, FFHQ_SIZE, FFHQ_TEMPLATE, TEMPLATE, similarity_transform
from ..profile import Profile
from .parsing import BiSeNet, whitened

#: The face ellipse, in units of the eye distance (across) and of the eyes-to-mouth distance (down).
ELLIPSE_HALF_WIDTH = 1.1
ELLIPSE_HALF_HEIGHT = 1.45
ELLIPSE_RAISE = 0.15  # the centre sits this far above the midpoint of eyes and mouth
#: ITU-R 601 luma, as the reference's `to_gray`.
LUMA = (0.299, 0.587, 0.114)


def face_ellipse(size: int) -> torch.Tensor:
    """`[size, size]` bool: the face region in FFHQ-aligned coordinates."""
    points = FFHQ_TEMPLATE * (size / FFHQ_SIZE)
    eyes, mouth = points[:2].mean(axis=0), points[3:].mean(axis=0)
    across = float(np.linalg.norm(points[1] - points[0]))
    down = float(mouth[1] - eyes[1])
    centre_x, centre_y = eyes[0], (eyes[1] + mouth[1]) / 2 - ELLIPSE_RAISE * down
    y, x = np.mgrid[0:size, 0:size] + 0.5
    inside = ((x - centre_x) / (ELLIPSE_HALF_WIDTH * across)) ** 2 + (
        (y - centre_y) / (ELLIPSE_HALF_HEIGHT * down)
    ) ** 2
    return torch.from_numpy(inside <= 1.0)


def faces_from_crops(crops: np.ndarray) -> np.ndarray:
    """ArcFace-aligned RGB crops `[N, 112, 112, 3]` warped into FFHQ geometry at 512 (the older profiles' way)."""
    matrix = similarity_transform(TEMPLATE * (crops.shape[1] / CROP_SIZE), FFHQ_TEMPLATE)
    return np.stack(
        [
            cv2.warpAffine(
                np.ascontiguousarray(crop),
                matrix,
                (FFHQ_SIZE, FFHQ_SIZE),
                flags=cv2.INTER_CUBIC,
                borderValue=FFHQ_BORDER,
            )
            for crop in crops
        ]
    )


def profile_faces(profile: Profile) -> np.ndarray:
    """The profile's FFHQ-aligned 512 px faces `[N, 512, 512, 3]`: kept from training, else made from its crops."""
    return profile.faces_512 if profile.faces_512 is not None else faces_from_crops(profile.crops)


def describe(profile: Profile, parser: BiSeNet | None, missing_parser: str = "") -> str:
    """Which input the encoder gets for `profile`, and what the fallbacks cost, in one sentence."""
    faces = (
        "FFHQ-aligned 512 px faces from the photos"
        if profile.faces_512 is not None
        else f"the 112 px face crops warped to 512 (profile '{profile.name}' predates 512 px faces: retrain it for "
        "sharper input with hair and jaw)"
    )
    if parser is not None:
        return f"EVA-CLIP input: {faces}, background, neck, clothes and ears whitened by face parsing as in PuLID"
    return (
        f"EVA-CLIP input: {faces}, outside a fixed face ellipse whitened (hair, ears and jaw line lost; weaker "
        f"likeness){': ' + missing_parser if missing_parser else ''}"
    )


@torch.no_grad()
def encoder_pixels(faces: np.ndarray, size: int, parser: BiSeNet | None = None) -> torch.Tensor:
    """FFHQ-aligned RGB uint8 faces `[N, 512, 512, 3]` → grey faces on white `[N, 3, size, size]` in 0..1.

    White is where the parser finds background, neck, clothes, ears or accessories (or outside the face ellipse
    when there is no parser); the result is on the parser's device (else the CPU), in float32.
    """
    parameter = next(parser.parameters()) if parser is not None else None
    pixels = torch.from_numpy(np.ascontiguousarray(faces)).permute(0, 3, 1, 2)
    pixels = pixels.to(parameter.device if parameter is not None else "cpu", torch.float32) / 255.0
    white = (
        whitened(parser, pixels.to(parameter.dtype))
        if parameter is not None
        else ~face_ellipse(pixels.shape[-1]).to(pixels.device)[None, None]
    )
    luma = torch.tensor(LUMA, device=pixels.device)[None, :, None, None]
    grey = (pixels * luma).sum(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    out = torch.where(white, torch.ones_like(grey), grey)
    return F.interpolate(out, size=(size, size), mode="bicubic", align_corners=False, antialias=True)


def encoder_view(profile: Profile, size: int, parser: BiSeNet | None) -> np.ndarray:
    """What the encoder saw of each of the profile's faces, `[N, size, size, 3]` floats in 0..1 (a preview)."""
    return encoder_pixels(profile_faces(profile), size, parser).permute(0, 2, 3, 1).float().cpu().numpy()
