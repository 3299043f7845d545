"""ID injection through ComfyUI's block patches, on ComfyUI's own Flux class at toy sizes (in this process, CPU)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from tiny_models import load_comfy, toy_flux, write_adapter

from identity.errors import WeightsMismatch
from identity.flux import (
    PULID_FLUX_V09,
    Injection,
    Subject,
    attach,
    check_flux1,
    load_adapter,
    placements,
    profile_tokens,
)
from identity.flux.injection import STATE_KEY, Step
from identity.flux.tokens import check_engine, encode, uncond_tokens

pytestmark = pytest.mark.comfyui  # ComfyUI's Flux in this process

STEPS = 2


@pytest.fixture(scope="module")
def flux():
    return toy_flux()


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    """A tiny adapter fed by the embedded engine's 128-d SFace, so another recognizer than glintr100 is allowed."""
    folder = tmp_path_factory.mktemp("adapter")
    return dataclasses.replace(
        load_adapter(*write_adapter(folder / "pulid", folder / "clip_vision")), any_recognizer=True
    )


@pytest.fixture(scope="module")
def tokens(adapter, tom_profile, embedded):
    return profile_tokens(adapter, tom_profile, embedded)


def where(flux, adapter):
    model = flux.model.diffusion_model
    return placements(adapter.config, model.hidden_size, len(model.double_blocks), len(model.single_blocks))


def injection(flux, adapter, subjects, weight=1.0, start_at=0.0, end_at=1.0):
    sampling = flux.get_model_object("model_sampling")
    return Injection(
        adapter.pulid.pulid_ca, subjects, weight, sampling.percent_to_sigma(start_at), sampling.percent_to_sigma(end_at)
    )


def sample(model, cfg: float = 1.0, area: tuple | None = None) -> torch.Tensor:
    """A full ComfyUI sampling run (`comfy.sample.sample`: wrappers, patches, model management); at `cfg` > 1 the
    negative prompt (another random text) runs in the same batch, as ComfyUI batches CFG; with `area` (latent
    `(height, width, y, x)`, as ConditioningSetArea leaves it) the prompt acts on that crop of the latent only."""
    load_comfy()
    import comfy.sample

    generator = torch.Generator().manual_seed(0)
    context = [[torch.randn(1, 6, 32, generator=generator), {"pooled_output": torch.randn(1, 32, generator=generator)}]]
    if area is not None:
        context[0][1] |= {"area": area, "strength": 1.0}
    noise = torch.randn(1, 16, 8, 8, generator=generator)
    negative = [
        [torch.randn(1, 6, 32, generator=generator), {"pooled_output": torch.randn(1, 32, generator=generator)}]
    ]
    return comfy.sample.sample(
        model,
        noise,
        STEPS,
        cfg,
        "euler",
        "simple",
        context,
        negative if cfg > 1 else context,
        torch.zeros(1, 16, 8, 8),
        seed=0,
        disable_pbar=True,
    )


def test_cross_attentions_go_after_the_blocks_pulid_flux_was_trained_for(flux, adapter, tokens):
    flux1 = placements(PULID_FLUX_V09, 3072, 19, 38)
    assert [(p.block, p.index) for p in flux1] == [("double_block", i) for i in range(0, 19, 2)] + [
        ("single_block", i) for i in range(0, 38, 4)
    ]
    assert [p.cross_attention for p in flux1] == list(range(20))

    patched = attach(flux, injection(flux, adapter, [Subject(tokens)]), where(flux, adapter))
    replaced = patched.model_options["transformer_options"]["patches_replace"]["dit"]
    assert sorted(replaced) == [("double_block", 0), ("double_block", 2), ("single_block", 0)]
    ran = []
    for key, patch in list(replaced.items()):

        def spy(args, extra, patch=patch):
            options = args["transformer_options"]
            ran.append((f"{options['block_type']}_block", options["block_index"]))
            return patch(args, extra)

        replaced[key] = spy
    called = []
    hooks = [
        ca.register_forward_hook(lambda module, i, o, n=n: called.append(n))
        for n, ca in enumerate(adapter.pulid.pulid_ca)
    ]
    try:
        sample(patched)
    finally:
        for hook in hooks:
            hook.remove()
    assert ran == [("double_block", 0), ("double_block", 2), ("single_block", 0)] * STEPS
    assert called == [0, 1, 2] * STEPS


def test_weight_zero_and_gating_outside_start_end_reproduce_the_unpatched_output_bit_exactly(flux, adapter, tokens):
    plain = sample(flux)
    subjects = [Subject(tokens)]
    assert torch.equal(
        sample(attach(flux, injection(flux, adapter, subjects, weight=0.0), where(flux, adapter))), plain
    )
    late = injection(flux, adapter, subjects, start_at=0.99, end_at=1.0)  # after both model calls
    assert torch.equal(sample(attach(flux, late, where(flux, adapter))), plain)
    full = sample(attach(flux, injection(flux, adapter, subjects), where(flux, adapter)))
    first_step_only = sample(attach(flux, injection(flux, adapter, subjects, end_at=0.3), where(flux, adapter)))
    assert not torch.equal(full, plain) and not torch.equal(first_step_only, plain)
    assert not torch.equal(first_step_only, full)


@pytest.mark.parametrize("weights, compute", [(torch.bfloat16, None), (torch.float8_e4m3fn, torch.bfloat16)])
def test_the_injection_follows_the_models_dtype(tmp_path, tokens, weights, compute):
    """Adapter weights as the node loads them (ComfyUI's casting ops), on a bf16 and an fp8 (bf16 compute) Flux."""
    load_comfy()
    import comfy.ops

    model = toy_flux(weight_dtype=weights, compute_dtype=compute)
    cast = load_adapter(*write_adapter(tmp_path / "pulid", tmp_path / "clip_vision"), ops=comfy.ops.manual_cast)
    plain = sample(model)
    at_zero = sample(attach(model, injection(model, cast, [Subject(tokens)], weight=0.0), where(model, cast)))
    injected = sample(attach(model, injection(model, cast, [Subject(tokens)]), where(model, cast)))
    assert torch.equal(at_zero, plain) and torch.isfinite(injected).all() and not torch.equal(injected, plain)


def test_true_cfg_gives_the_negative_pass_the_no_identity_tokens(flux, adapter, tokens):
    def run(subject, cfg=2.0):
        return sample(attach(flux, injection(flux, adapter, [subject]), where(flux, adapter)), cfg)

    none = uncond_tokens(adapter, torch.float32)
    assert none.shape == tokens.shape and not torch.allclose(none, tokens)
    both_get_the_person = run(Subject(tokens))  # off, as the ComfyUI ports
    assert torch.equal(run(Subject(tokens, uncond=tokens)), both_get_the_person), "only the negative rows change"
    true_cfg = run(Subject(tokens, uncond=none))
    assert torch.isfinite(true_cfg).all() and not torch.equal(true_cfg, both_get_the_person)
    assert torch.equal(run(Subject(tokens, uncond=none), cfg=1.0), run(Subject(tokens), cfg=1.0)), (
        "without a negative pass there is nothing to change"
    )


def test_the_input_model_stays_unpatched(flux, adapter, tokens):
    before = sample(flux)
    options = copy.deepcopy(flux.model_options)
    patched = attach(flux, injection(flux, adapter, [Subject(tokens)]), where(flux, adapter))
    assert flux.model_options == options and "patches_replace" not in flux.model_options["transformer_options"]
    assert not flux.get_all_wrappers("diffusion_model") and patched.get_all_wrappers("diffusion_model")
    assert patched.model is flux.model, "a clone: the weights are shared, not copied"
    assert torch.equal(sample(flux), before)


def test_clones_of_a_patched_model_share_the_adapter(flux, adapter, tokens):
    patched = attach(flux, injection(flux, adapter, [Subject(tokens)]), where(flux, adapter))
    again = patched.clone()  # ComfyUI deep-copies model options here
    first = patched.model_options["transformer_options"]["patches_replace"]["dit"][("double_block", 0)]
    second = again.model_options["transformer_options"]["patches_replace"]["dit"][("double_block", 0)]
    assert second is first and second.injection.cross_attentions is adapter.pulid.pulid_ca


def test_chained_injections_and_other_patches_all_run(flux, adapter, tokens):
    seen = []

    def other(args, extra):
        seen.append("other")
        return extra["original_block"](args)

    foreign = flux.clone()
    foreign.set_model_patch_replace(other, "dit", "double_block", 0)
    first = attach(foreign, injection(flux, adapter, [Subject(tokens)]), where(flux, adapter))
    both = attach(first, injection(flux, adapter, [Subject(tokens)], weight=0.5), where(flux, adapter))
    called = []
    hook = adapter.pulid.pulid_ca[0].register_forward_hook(lambda *_: called.append(0))
    try:
        output = sample(both)
    finally:
        hook.remove()
    assert seen == ["other"] * STEPS and called == [0, 0] * STEPS
    assert not torch.equal(output, sample(first))


# ----- several people ---------------------------------------------------------------------------------------


class Executor:
    """Stands in for ComfyUI's wrapper executor: records the transformer options the model would receive."""

    class_obj = type("Flux", (), {"patch_size": 2})()

    def __call__(self, x, *args, **kwargs):
        self.options = args[-1]


def step_for(subject_injection: Injection, latent=(8, 8), text=6, sigma=0.5) -> Step:
    executor = Executor()
    subject_injection.wrapper(
        executor,
        torch.zeros(1, 16, *latent),
        torch.tensor([sigma]),
        torch.zeros(1, text, 32),
        {"sigmas": torch.tensor([sigma])},
    )
    return executor.options[STATE_KEY][subject_injection.id]


@pytest.mark.parametrize("block, start", [("double", 0), ("single", 6)])
def test_two_subjects_with_disjoint_masks_change_only_their_own_tokens(flux, adapter, tokens, block, start):
    left, right = torch.zeros(64, 64), torch.zeros(64, 64)
    left[:, :32], right[:, 32:] = 1.0, 1.0  # the 4×4 token grid: columns 0-1 and 2-3
    other_tokens = tokens.flip(1) * 2  # a second person
    both = injection(flux, adapter, [Subject(tokens, left), Subject(other_tokens, right)])
    only_left = injection(flux, adapter, [Subject(tokens, left)])
    only_right = injection(flux, adapter, [Subject(other_tokens, right)])
    references = 5  # reference-latent tokens after the image's 16
    img = torch.randn(1, start + 16 + references, 64, generator=torch.Generator().manual_seed(1))

    def run(which: Injection) -> torch.Tensor:
        with torch.no_grad():
            return which.inject(0, img, start, step_for(which))

    out, out_left, out_right = run(both), run(only_left), run(only_right)
    grid = torch.arange(16).reshape(4, 4)
    left_tokens, right_tokens = start + grid[:, :2].flatten(), start + grid[:, 2:].flatten()
    untouched = torch.cat([torch.arange(start), torch.arange(start + 16, start + 16 + references)])
    assert torch.equal(out[:, untouched], img[:, untouched]), "text and reference tokens stay as they were"
    assert torch.equal(out_left[:, right_tokens], img[:, right_tokens]), "a subject leaves the other's tokens alone"
    assert torch.equal(out_right[:, left_tokens], img[:, left_tokens])
    assert torch.equal(out[:, left_tokens], out_left[:, left_tokens])
    assert torch.equal(out[:, right_tokens], out_right[:, right_tokens])
    assert not torch.equal(out[:, left_tokens], img[:, left_tokens])
    assert not torch.equal(out[:, right_tokens], img[:, right_tokens])


def test_masks_follow_the_latent_size(flux, adapter, tokens):
    region = torch.zeros(100, 200)
    region[:, :50] = 1.0  # the left quarter
    step = step_for(injection(flux, adapter, [Subject(tokens, region)]), latent=(16, 32))
    mask = step.masks[0].reshape(8, 16)
    assert step.image_tokens == 128 and step.text_tokens == 6
    assert torch.equal(mask[:, :4], torch.ones(8, 4)) and torch.equal(mask[:, 4:], torch.zeros(8, 12))


def test_a_subjects_region_is_cut_to_the_area_its_cond_covers(flux, adapter, tokens):
    """Under area conditioning ComfyUI runs the model on a crop of the latent: the region is cut the same way."""
    left = torch.zeros(64, 64)
    left[:, :32] = 1.0
    person_on_the_left = attach(flux, injection(flux, adapter, [Subject(tokens, left)]), where(flux, adapter))
    right_half, left_half = (8, 4, 0, 4), (8, 4, 0, 0)
    assert torch.equal(sample(person_on_the_left, area=right_half), sample(flux, area=right_half)), (
        "the cond covers the right half, where this person is not"
    )
    assert not torch.equal(sample(person_on_the_left, area=left_half), sample(flux, area=left_half))


def test_wrong_model_sizes_are_refused_with_what_fits(adapter):
    with pytest.raises(WeightsMismatch, match="width 64 with 3 cross-attention places.*width 3072, 8 double and 48"):
        placements(adapter.config, 3072, 8, 48)


# ----- ID tokens --------------------------------------------------------------------------------------------


def test_id_tokens_average_every_accepted_photo_and_are_cached(adapter, tom_profile, embedded):
    crops = np.stack(
        [tom_profile.crops[0], tom_profile.crops[0][:, ::-1], (tom_profile.crops[0] * 0.8).astype(np.uint8)]
    )
    faces = np.stack(
        [tom_profile.faces_512[0], tom_profile.faces_512[0][:, ::-1], (tom_profile.faces_512[0] * 0.8).astype(np.uint8)]
    )
    three = dataclasses.replace(tom_profile, id="three-photos", crops=crops, faces_512=faces)
    tokens = profile_tokens(adapter, three, embedded)
    each = [
        encode(adapter, torch.from_numpy(embedded.recognizer.embed(c[None])), f[None], torch.float32)
        for c, f in zip(crops, faces)
    ]
    torch.testing.assert_close(tokens, torch.cat(each).mean(0, keepdim=True))
    assert tokens.shape == (1, adapter.config.queries, adapter.config.token_dim)
    assert profile_tokens(adapter, three, embedded, prepare=pytest.fail) is tokens, "cached: no second encoding"
    older = dataclasses.replace(three, faces_512=None)  # trained before 512 px faces were kept
    assert not torch.equal(profile_tokens(adapter, older, embedded), tokens), "another input, another cache entry"


def test_id_tokens_need_the_arcface_the_adapter_was_trained_on(adapter, tom_profile, testpack):
    with pytest.raises(WeightsMismatch, match="128-d ArcFace embeddings.*gives 512-d.*antelopev2"):
        profile_tokens(adapter, tom_profile, testpack)


def test_only_antelopev2s_glintr100_feeds_the_encoder_unless_allowed(adapter, tom_profile, embedded):
    from identity.digests import GLINTR100_SHA256

    strict = dataclasses.replace(adapter, any_recognizer=False)
    with pytest.raises(
        WeightsMismatch,
        match="trained on antelopev2's glintr100.*'embedded' uses another recognizer.*"
        "models/insightface/models/antelopev2/.*allow_other_recognizer",
    ):
        profile_tokens(strict, tom_profile, embedded)
    glintr = copy.copy(embedded)
    glintr.info = dataclasses.replace(embedded.info, recognizer_sha256=GLINTR100_SHA256)
    check_engine(strict, glintr)  # recognised by its file's digest


def test_regions_from_an_image_cover_each_persons_head(tom_profile, embedded):
    from conftest import TOM_HANKS

    from identity.errors import IdentityError
    from identity.flux.regions import face_regions
    from identity.images import load_image
    from identity.scoring import score_images

    image = np.full((480, 640, 3), 128, np.uint8)
    image[200:312, 300:412] = load_image(TOM_HANKS)  # a 112-px face crop, placed with room around it
    scored = score_images([("photo", image)], [tom_profile], embedded)[0]
    (region,) = face_regions(scored, [tom_profile])
    x1, y1, x2, y2 = scored.faces[0].bbox
    rows, columns = np.nonzero(region)
    assert region.shape == image.shape[:2] and region.sum() == len(rows), "one box of ones"
    assert rows.min() < y1 and rows.max() > y2 and columns.min() < x1 and columns.max() > x2, "around the face"
    side = 2 * max(x2 - x1, y2 - y1)  # grown to cover the head and hair
    assert abs(rows.max() + 1 - rows.min() - side) <= 2 and abs(columns.max() + 1 - columns.min() - side) <= 2
    stranger = dataclasses.replace(tom_profile, id="stranger", name="Stranger")
    with pytest.raises(IdentityError, match="not found in the image: Stranger"):
        face_regions(dataclasses.replace(scored, faces=[]), [stranger])


def test_every_subject_needs_a_place_of_its_own(tom_profile):
    from identity.errors import IdentityError
    from identity.flux.regions import subject_regions

    twin = dataclasses.replace(tom_profile, id="twin", name="Twin")
    half = np.zeros((4, 4), np.float32)
    assert subject_regions([tom_profile]) == [None], "one person alone acts everywhere"
    assert [r is half for r in subject_regions([tom_profile, twin], masks=[half, half])] == [True, True]
    with pytest.raises(IdentityError, match="need a place each"):
        subject_regions([tom_profile, twin])
    with pytest.raises(IdentityError, match="2 profiles need 2 masks .* got 1"):
        subject_regions([tom_profile, twin], masks=[half])


@pytest.mark.parametrize("scheduler,steps", [("simple", 20), ("simple", 28), ("normal", 20), ("beta", 25)])
def test_start_and_end_act_on_the_steps_pulid_acts_on(flux, adapter, scheduler, steps):
    """PuLID-Flux's own rule (balazik/ComfyUI-PuLID-Flux, forward_orig): a step runs the identity when
    `(sigma_start >= timesteps) & (timesteps >= sigma_end)`, its bounds from `percent_to_sigma` (Python floats)
    and `timesteps` the float32 sigma ComfyUI's sampler passes; torch compares such a pair in float32."""
    load_comfy()
    import comfy.samplers

    sampling = flux.get_model_object("model_sampling")
    sigmas = comfy.samplers.calculate_sigmas(sampling, scheduler, steps)[:-1].float()
    for percent in np.round(np.arange(0.0, 1.0001, 0.01), 2):
        start, end = sampling.percent_to_sigma(float(percent)), sampling.percent_to_sigma(1.0)
        theirs = [bool((start >= s) & (s >= end)) for s in sigmas]
        ours = [injection(flux, adapter, [], 1.0, float(percent), 1.0).active(float(s)) for s in sigmas]
        assert ours == theirs, (percent, theirs.index(True) if True in theirs else None)


@pytest.mark.parametrize("name", ["HunyuanVideo", "Flux2", "Chroma"])
def test_a_model_that_is_not_flux1_is_refused_by_its_class(flux, name):
    """HunyuanVideo has Flux's block layout (it passes a shape check, then fails at the first step); FLUX.2 and
    Chroma subclass ComfyUI's Flux. The check reads only the class: an instance of ComfyUI's own is enough."""
    load_comfy()
    import comfy.model_base

    check_flux1(flux.model)
    other = getattr(comfy.model_base, name)
    with pytest.raises(WeightsMismatch, match=rf"FLUX\.1 models .* this MODEL is ComfyUI's {name}:"):
        check_flux1(other.__new__(other))
