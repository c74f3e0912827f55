"""Appearance augmentations: per-sample equality with torchvision's functional ops, presets and
overrides, RandAugment-lite ops against closed forms and PIL."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF

from infomin.errors import SpecError
from infomin.seeding import make_generator
from infomin.views.augment import (
    OPS,
    PRESETS,
    RA_OPS,
    RA_OPS_CMC,
    AugmentViews,
    _affine,
    _ra_photometric,
    adjust_hue,
    augment_batch,
    resolve_ops,
    sample_augment,
)


def _x(b=16, h=16, w=16, seed=0):
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _reference_view(x: torch.Tensor, p: dict) -> torch.Tensor:
    """The per-sample torchvision pipeline with the same draws: flip, ColorJitter ops in order,
    grayscale (slow reference, one image at a time)."""
    names = ("brightness", "contrast", "saturation", "hue")
    fns = {"brightness": TF.adjust_brightness, "contrast": TF.adjust_contrast,
           "saturation": TF.adjust_saturation, "hue": TF.adjust_hue}
    out = []
    for i in range(x.shape[0]):
        img = x[i]
        if p["flip"][i]:
            img = TF.horizontal_flip(img)
        if p["jitter"][i]:
            for o in p["order"].tolist():
                img = fns[names[o]](img, float(p[names[o]][i]))
        if p["gray"][i]:
            img = TF.rgb_to_grayscale(img, num_output_channels=3)
        out.append(img)
    return torch.stack(out)


@pytest.mark.parametrize("preset", ["simclr", "simclr_imagenet"])
def test_jitter_gray_flip_match_torchvision_per_sample(preset):
    ops = resolve_ops(preset, overrides={"blur_p": 0.0})
    x = _x(64)
    for seed in range(3):
        p = sample_augment(64, ops, make_generator(seed))
        assert p["jitter"].any() and (~p["jitter"]).any() and p["gray"].any()
        np.testing.assert_allclose(augment_batch(x, p).numpy(), _reference_view(x, p).numpy(), atol=1e-5)


def test_adjust_hue_matches_torchvision_including_grey_pixels():
    x = _x(32)
    x[:4] = x[:4, :1]  # grey images: hue is undefined, output must equal input
    x[4, :, :2] = 1.0  # saturated corners
    shift = torch.linspace(-0.5, 0.5, 32)
    ref = torch.stack([TF.adjust_hue(x[i], float(shift[i])) for i in range(32)])
    assert torch.allclose(adjust_hue(x, shift), ref, atol=2e-6)
    assert torch.allclose(adjust_hue(x, torch.zeros(32)), x, atol=1e-6)
    assert torch.allclose(adjust_hue(x[:4], torch.ones(4) * 0.3), x[:4], atol=1e-6)


def test_factor_ranges_follow_torchvision_semantics():
    ops = resolve_ops("simclr", strength=2.0)   # brightness 0.8, hue 0.2
    p = sample_augment(4000, ops, make_generator(0))
    assert p["brightness"].min() >= 0.2 - 1e-6 and p["brightness"].max() <= 1.8 + 1e-6
    assert p["hue"].abs().max() <= 0.2 + 1e-6 and p["hue"].abs().max() > 0.19
    assert abs(p["jitter"].float().mean() - 0.8) < 0.03
    assert abs(p["gray"].float().mean() - 0.2) < 0.03
    assert resolve_ops("simclr", strength=10.0)["hue"] == 0.5          # capped
    assert resolve_ops("simclr", strength=3.0)["contrast"] == pytest.approx(1.2)


def test_strength_zero_and_none_preset_are_identity():
    x = _x()
    gen = AugmentViews("simclr", strength=0.0, overrides={"gray_p": 0.0, "flip_p": 0.0})
    v1, v2, _ = gen(x, generator=0)
    assert torch.allclose(v1, x, atol=1e-5) and torch.allclose(v2, x, atol=1e-5)
    v1, _, _ = AugmentViews("none")(x, generator=0)
    assert torch.equal(v1, x)


def test_views_are_independent_draws():
    v1, v2, p = AugmentViews("simclr")(_x(), generator=0)
    assert not torch.allclose(v1, v2)
    assert not torch.equal(p["view1"]["brightness"], p["view2"]["brightness"])


def test_unknown_override_lists_valid_keys():
    with pytest.raises(SpecError) as e:
        AugmentViews("simclr", overrides={"grey_p": 0.0})
    assert e.value.field == "overrides.grey_p" and "gray_p" in e.value.choices
    assert set(e.value.choices) == set(OPS)


@pytest.mark.parametrize("kwargs,field", [
    ({"preset": "byol"}, "preset"), ({"strength": -1.0}, "strength"),
    ({"overrides": {"gray_p": 1.5}}, "overrides.gray_p"), ({"overrides": {"hue": 0.7}}, "overrides.hue"),
    ({"overrides": {"ra_ops": "all"}}, "overrides.ra_ops"), ({"overrides": {"ra_n": 1.5}}, "overrides.ra_n"),
    ({"overrides": {"blur_sigma": [0.0, 1.0]}}, "overrides.blur_sigma"), ({"color": "no"}, "color"),
    ({"overrides": ["gray_p"]}, "overrides"),
])
def test_bad_arguments_raise_spec_error(kwargs, field):
    with pytest.raises(SpecError) as e:
        AugmentViews(**kwargs)
    assert e.value.field == field


def test_preset_table_is_data_and_complete():
    assert set(PRESETS) == {"none", "simclr", "simclr_imagenet", "infomin"}
    for name, table in PRESETS.items():
        assert set(table) <= set(OPS), name
    simclr = resolve_ops("simclr")
    assert (simclr["brightness"], simclr["contrast"], simclr["saturation"], simclr["hue"]) == (0.4, 0.4, 0.4, 0.1)
    assert (simclr["jitter_p"], simclr["gray_p"], simclr["blur_p"]) == (0.8, 0.2, 0.0)
    infomin = resolve_ops("infomin")
    assert (infomin["ra_n"], infomin["ra_m"], infomin["ra_mstd"]) == (2, 10.0, 0.5)


def test_color_false_skips_colour_ops_and_uses_cmc_randaugment():
    gen = AugmentViews("infomin", color=False)
    p = gen.sample(_x(256), make_generator(0))["view1"]
    assert not p["jitter"].any() and not p["gray"].any() and not p["solarize"].any()
    assert p["ra_ops"] == RA_OPS_CMC
    assert AugmentViews("infomin").sample(_x(8), make_generator(0))["view1"]["ra_ops"] == RA_OPS
    # with RandAugment and blur off, what is left (the flip) never changes a pixel's colour
    x = _x(64)
    gen = AugmentViews("simclr", strength=3.0, overrides={"gray_p": 1.0, "jitter_p": 1.0}, color=False)
    v1, _, p = gen(x, generator=1)
    flipped = p["view1"]["flip"].view(-1, 1, 1, 1)
    assert torch.equal(v1, torch.where(flipped, x.flip(-1), x))


def test_blur_is_a_normalised_gaussian():
    ops = resolve_ops("none", overrides={"blur_p": 1.0, "blur_sigma": [1.0, 1.0]})
    p = sample_augment(2, ops, make_generator(0))
    const = torch.full((2, 3, 20, 20), 0.3)
    assert torch.allclose(augment_batch(const, p), const, atol=1e-6)
    x = _x(2, 20, 20)
    out = augment_batch(x, p)
    assert out.std() < x.std()           # smoother
    import kornia

    assert torch.allclose(out, kornia.filters.gaussian_blur2d(x, (3, 3), (1.0, 1.0)), atol=1e-6)


# -- RandAugment-lite ops ----------------------------------------------------------------------

def test_affine_rotation_matches_pil_and_translation_is_a_shift():
    from PIL import Image

    img = (torch.rand(16, 16, 3, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    x = img.permute(2, 0, 1).float().unsqueeze(0) / 255
    for angle in (90.0, 180.0, -90.0):
        ours = _affine(x, torch.tensor([0]), torch.tensor([angle]))
        pil = np.asarray(Image.fromarray(img.numpy()).rotate(angle))
        np.testing.assert_allclose((ours[0].permute(1, 2, 0) * 255).numpy(), pil.astype(np.float64), atol=1e-3)
    # translate_x by 0.25 of the side: PIL's (1, 0, 4, 0, 1, 0) moves content 4 px left, fills the mean
    out = _affine(x, torch.tensor([3]), torch.tensor([0.25]))
    assert torch.allclose(out[..., :12], x[..., 4:], atol=1e-5)
    fill = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    assert torch.allclose(out[0, :, :, 12:], fill.expand(3, 16, 4), atol=1e-5)


def test_affine_shear_follows_pil_top_left_convention():
    from PIL import Image

    img = (torch.rand(16, 16, 3, generator=torch.Generator().manual_seed(1)) * 255).to(torch.uint8)
    x = img.permute(2, 0, 1).float().unsqueeze(0) / 255
    # shear f about the top-left corner: row y (centre y + 0.5) samples x + f (y + 0.5). With
    # f = 2/3 the shift is an integer on rows 1, 4, 7, 10 (1, 3, 5, 7 px), where bilinear == nearest
    f = 2 / 3
    ours = _affine(x, torch.tensor([1]), torch.tensor([f]))[0].permute(1, 2, 0) * 255
    pil = np.asarray(Image.fromarray(img.numpy()).transform((16, 16), Image.AFFINE, (1, f, 0, 0, 1, 0),
                                                            resample=Image.NEAREST))
    for y, shift in ((1, 1), (4, 3), (7, 5), (10, 7)):
        np.testing.assert_allclose(ours[y, : 16 - shift].numpy(), pil[y, : 16 - shift].astype(np.float64),
                                   atol=1e-3)
        np.testing.assert_allclose(ours[y, : 16 - shift].numpy(), img[y, shift:].numpy().astype(np.float64),
                                   atol=1e-3)


def test_photometric_ops_closed_forms():
    x = _x(4)
    lvl = torch.full((4,), 10.0)
    assert torch.allclose(_ra_photometric("invert", x, lvl), 1 - x)
    ac = _ra_photometric("auto_contrast", x * 0.5 + 0.2, lvl)
    assert torch.allclose(ac.amin(dim=(-2, -1)), torch.zeros(4, 3), atol=1e-6)
    assert torch.allclose(ac.amax(dim=(-2, -1)), torch.ones(4, 3), atol=1e-6)
    # PosterizeTpu at level 10 keeps 4 bits: the same as v & 0xF0 on 8-bit values
    v = torch.randint(0, 256, (4, 3, 8, 8))
    post = _ra_photometric("posterize", v.float() / 255, lvl)
    assert torch.equal(torch.round(post * 255).long(), v & 0xF0)
    # Solarize at level 5: threshold 128
    sol = _ra_photometric("solarize", v.float() / 255, torch.full((4,), 5.0))
    ref = torch.where(v >= 128, 255 - v, v).float() / 255
    assert torch.allclose(sol, ref, atol=1e-6)
    # enhance factors: level 10 -> 1.9, level 5 -> 1.0 (identity)
    for op in ("color", "contrast", "brightness", "sharpness"):
        assert torch.allclose(_ra_photometric(op, x, torch.full((4,), 5.0)), x, atol=1e-5), op


def test_posterize_has_a_straight_through_gradient():
    x = _x(2).requires_grad_()
    _ra_photometric("posterize", x, torch.full((2,), 10.0)).sum().backward()
    assert torch.allclose(x.grad, torch.ones_like(x))


def test_randaugment_layers_use_every_op_and_stay_in_range():
    ops = resolve_ops("infomin")
    p = sample_augment(2000, ops, make_generator(0))
    assert set(p["ra_op"].unique().tolist()) == set(range(len(RA_OPS)))
    assert abs(p["ra_on"].float().mean() - 0.5) < 0.03
    assert p["ra_level"].min() >= 0 and p["ra_level"].max() <= 10
    assert abs(p["ra_level"].mean() - 9.8) < 0.1   # N(10, 0.5) clipped at 10
    x = _x(64)
    v1, v2, _ = AugmentViews("infomin")(x, generator=0)
    assert torch.isfinite(v1).all() and v1.min() >= 0 and v1.max() <= 1


def test_augment_is_differentiable_wrt_input():
    x = _x(16).requires_grad_()
    v1, v2, _ = AugmentViews("infomin")(x, generator=0)
    (v1 * torch.rand_like(v1)).sum().add((v2 * torch.rand_like(v2)).sum()).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_gradcheck_hue_and_jitter_float64():
    x = torch.rand(2, 3, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2)).requires_grad_()
    shift = torch.tensor([0.13, -0.31], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: adjust_hue(a, shift), (x,))
    p = sample_augment(2, resolve_ops("simclr", overrides={"jitter_p": 1.0, "gray_p": 0.0}), make_generator(0))
    assert torch.autograd.gradcheck(lambda a: augment_batch(a * 0.5 + 0.25, p), (x,), atol=1e-5)
