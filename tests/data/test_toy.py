"""colorful-moving-digits: shapes, factor ranges, determinism, rendering, and factor-controlled pairs."""

from __future__ import annotations

import pytest
import torch

from infomin.data import load
from infomin.data.toy import (
    BACKGROUND_REGIONS,
    FACTORS,
    _glyph_pool,
    cell_masks,
    colorful_moving_digits,
)
from infomin.errors import SpecError


@pytest.fixture(scope="module")
def toy():
    return colorful_moving_digits("train", n=600, seed=0)


def test_default_sizes_shapes_and_ranges():
    ds = load("colorful-moving-digits", split="train")
    assert len(ds) == 5000 and len(load("colorful-moving-digits", split="test")) == 1000
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (5000, 3, 32, 32)
    assert ds.labels.dtype == torch.long and torch.equal(ds.labels, ds.factors["digit"])
    assert sorted(ds.factors) == ["background", "digit", "hue", "position"]
    assert len(BACKGROUND_REGIONS) >= 10
    # every value of every factor occurs, nothing outside the ranges
    for f, k in {"digit": 10, "background": len(BACKGROUND_REGIONS), "position": 16, "hue": 6}.items():
        assert ds.factors[f].unique().tolist() == list(range(k)), f
    assert ds.classes == [str(d) for d in range(10)]
    assert ds.images.float().std() > 30  # real pictures, not a blank canvas


def test_hue_is_the_digit_colour_bin_and_relabel_makes_it_the_label(toy):
    from infomin.data.toy import COLORS
    from infomin.views.color import rgb_to

    # reference: kornia's HSV hue of the digit's colour, binned to the nearest multiple of 1/6
    hue = rgb_to(toy.params["color"][:, :, None, None], "hsv")[:, 0, 0, 0]   # (N,) in [0, 1)
    assert torch.equal(torch.round(hue * 6).long() % 6, toy.factors["hue"])
    assert toy.factors["hue"].bincount(minlength=6).min() > 50               # every bin is used
    from infomin.data.toy import _hue_bin, _hue_to_rgb

    h = torch.rand(1000, generator=torch.Generator().manual_seed(0))  # the hue the renderer draws
    assert torch.equal(_hue_bin(_hue_to_rgb(h)), torch.round(h * 6).long() % 6)
    c = toy.relabel("hue")
    assert c.classes == list(COLORS) and torch.equal(c.labels, toy.factors["hue"])
    assert torch.equal(c.images, toy.images) and torch.equal(toy.labels, toy.factors["digit"])  # a copy
    assert c.subset(torch.arange(5)).classes == list(COLORS)
    with pytest.raises(SpecError, match="label: got 'colour'.*hue"):
        toy.relabel("colour")


def test_deterministic_given_seed(toy):
    again = colorful_moving_digits("train", n=600, seed=0)
    assert torch.equal(toy.images, again.images)
    assert all(torch.equal(toy.factors[f], again.factors[f]) for f in FACTORS)
    other = colorful_moving_digits("train", n=600, seed=1)
    assert not torch.equal(toy.images, other.images)
    # jittered background cuts: same background class never gives identical backgrounds everywhere
    assert len({tuple(p.tolist()) for p in toy.params["offset"]}) > 40


def test_train_and_test_use_disjoint_handwriting():
    train, _ = _glyph_pool("train")
    test, _ = _glyph_pool("test")
    flat_train = {tuple(g.flatten().tolist()) for g in train}
    assert sum(tuple(g.flatten().tolist()) in flat_train for g in test) <= 3  # sklearn has a few duplicates
    assert len(train) + len(test) == 1797


def test_digit_is_painted_inside_its_grid_cell(toy):
    idx = torch.arange(64)
    params = {k: v[idx] for k, v in toy.params.items()}
    x, alpha = toy.renderer.render(params, return_alpha=True)
    assert torch.allclose(x.mul(255).round(), toy.images[idx].float())
    inside = cell_masks()[params["position"]]  # 64 x 1 x 32 x 32
    assert (alpha[~inside] == 0).all()
    assert (alpha.masked_fill(~inside, 0).amax((1, 2, 3)) > 0.5).all()


def test_relabelled_copy_moves_without_moving_the_original(toy):
    c = toy.relabel("position")
    c.to("meta")
    assert c.images.device.type == "meta" and c.renderer.glyphs.device.type == "meta"
    assert toy.images.device.type == "cpu" and toy.renderer.glyphs.device.type == "cpu"
    assert toy.params["color"].device.type == "cpu"


def test_unknown_split_names_the_choices():
    with pytest.raises(SpecError, match="split"):
        colorful_moving_digits("val")
    with pytest.raises(SpecError, match="split"):
        load("colorful-moving-digits", split="val")
