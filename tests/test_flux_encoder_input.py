"""The face PuLID-Flux's encoder reads, made as the reference pipeline makes it (ToTheBeginning/PuLID with facexlib):
an FFHQ-aligned 512 px face from the photo, parsed, grey on white, resized to the EVA tower's input."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TOM_HANKS
from reference_weights import pattern_weights
from safetensors import safe_open

from identity.faces.align import FFHQ_SIZE, FFHQ_TEMPLATE, ffhq_face
from identity.flux.faces import LUMA, describe, encoder_pixels, face_ellipse, profile_faces
from identity.flux.parsing import BiSeNet, whitened
from identity.flux.weights import shapes_of
from identity.images import load_image
from identity.profile import ProfileStore

DATA = Path(__file__).parent / "data" / "flux"


def test_ffhq_alignment_matches_facexlibs_template_and_crop():
    """facexlib's FaceRestoreHelper(face_size=512).align_warp_face, run on a fixed photo and landmarks."""
    with safe_open(str(DATA / "ffhq_align.safetensors"), framework="np") as handle:
        reference = {key: handle.get_tensor(key) for key in handle.keys()}
        template = np.array(json.loads(handle.metadata()["template"]))
    np.testing.assert_array_equal(FFHQ_TEMPLATE, template)
    photo = np.ascontiguousarray(reference["photo_bgr"][..., ::-1])  # ours takes RGB
    face = ffhq_face(photo, reference["landmarks"].astype(np.float64))
    assert face.shape == (FFHQ_SIZE, FFHQ_SIZE, 3)
    np.testing.assert_array_equal(face, reference["face_bgr"][..., ::-1])


def test_training_keeps_each_accepted_photos_ffhq_face(tom_profile, tmp_path):
    assert tom_profile.faces_512.shape == (len(tom_profile.embeddings), FFHQ_SIZE, FFHQ_SIZE, 3)
    np.testing.assert_array_equal(tom_profile.faces_512[0], ffhq_face(load_image(TOM_HANKS), tom_profile.landmarks[0]))
    store = ProfileStore(tmp_path)
    store.save(tom_profile)
    np.testing.assert_array_equal(store.load(tom_profile.id).faces_512, tom_profile.faces_512)
    older = dataclasses.replace(tom_profile, id="older", name="Older Tom", faces_512=None)  # a profile from before
    store.save(older)
    assert store.load("older").faces_512 is None
    assert profile_faces(store.load("older")).shape == tom_profile.faces_512.shape, "made from its 112 px crops"


@pytest.fixture(scope="module")
def parser() -> BiSeNet:
    """BiSeNet with made-up weights whose last layer only chooses between background (0) and skin (1)."""
    with torch.device("meta"):
        shapes = shapes_of(BiSeNet())
    weights = pattern_weights(shapes)
    head = weights["conv_out.conv_out.weight"]
    head[2:] = -1.0  # the other classes never win over the features' (non-negative) evidence
    head[:2] = torch.randn(2, *head.shape[1:], generator=torch.Generator().manual_seed(0))
    model = BiSeNet()
    model.load_state_dict(weights)
    return model.eval()


def test_parsed_input_is_grey_where_the_parser_keeps_and_white_where_it_whitens(tom_profile, parser):
    faces = tom_profile.faces_512[:1]
    pixels = encoder_pixels(faces, FFHQ_SIZE, parser)  # at 512, the resize is the identity
    source = torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 255.0
    white = whitened(parser, source)
    assert 0 < white.float().mean() < 1, "these weights label some pixels of each kind"
    grey = (source * torch.tensor(LUMA)[None, :, None, None]).sum(1, keepdim=True)
    torch.testing.assert_close(pixels, torch.where(white, 1.0, grey).expand(-1, 3, -1, -1), atol=1e-5, rtol=0)


def test_the_resize_is_the_references_torchvision_bicubic(tom_profile):
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import resize

    ours = encoder_pixels(tom_profile.faces_512[:1], 336)
    full = encoder_pixels(tom_profile.faces_512[:1], FFHQ_SIZE)
    torch.testing.assert_close(ours, resize(full, 336, InterpolationMode.BICUBIC), atol=1e-5, rtol=0)


def test_without_the_parsing_file_a_face_ellipse_is_kept_and_the_report_says_so(tom_profile):
    pixels = encoder_pixels(tom_profile.faces_512[:1], FFHQ_SIZE)
    inside = face_ellipse(FFHQ_SIZE)
    assert (pixels[0][:, ~inside] == 1.0).all(), "outside the ellipse is white"
    assert (pixels[0][:, inside] < 1.0).any() and torch.equal(pixels[0][0], pixels[0][2]), "inside, grey"
    reason = "parsing_bisenet.pth (facexlib release v0.2.0) was not found in /models/facexlib"
    fallback = describe(tom_profile, None, reason)
    assert fallback.startswith(
        "EVA-CLIP input: FFHQ-aligned 512 px faces from the photos, outside a fixed face ellipse"
    )
    assert fallback.endswith(reason) and "weaker likeness" in fallback


def test_the_report_names_each_input(tom_profile, parser):
    assert describe(tom_profile, parser) == (
        "EVA-CLIP input: FFHQ-aligned 512 px faces from the photos, background, "
        "neck, clothes and ears whitened by face parsing as in PuLID"
    )
    older = dataclasses.replace(tom_profile, faces_512=None)
    assert "the 112 px face crops warped to 512 (profile 'Tom Hanks' predates 512 px faces: retrain it" in describe(
        older, parser
    )
