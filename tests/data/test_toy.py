"""colorful-moving-digits: shapes, factor ranges, determinism, rendering, and factor-controlled pairs."""

from __future__ import annotations

import pytest
import torch

from infomin.data import ImageDataset, load
from infomin.data.toy import (
    BACKGROUND_REGIONS,
    FACTORS,
    GLYPH_SIZE,
    GRID_OFFSETS,
    FactorPairs,
    _glyph_pool,
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
    inside = _cell_masks()[params["position"]]  # 64 x 1 x 32 x 32
    assert (alpha[~inside] == 0).all()
    assert (alpha.masked_fill(~inside, 0).amax((1, 2, 3)) > 0.5).all()


def _cell_masks() -> torch.Tensor:
    g = len(GRID_OFFSETS)
    m = torch.zeros(g * g, 1, 32, 32, dtype=torch.bool)
    for p in range(g * g):
        oy, ox = GRID_OFFSETS[p // g], GRID_OFFSETS[p % g]
        m[p, 0, oy:oy + GLYPH_SIZE, ox:ox + GLYPH_SIZE] = True
    return m


SHARED_CASES = [(), ("digit",), ("background",), ("position",), ("digit", "position"), FACTORS]


@pytest.mark.parametrize("shared", SHARED_CASES)
def test_pairs_share_exactly_the_requested_factors(toy, shared):
    pairs = FactorPairs(toy, shared=shared)
    idx = torch.arange(300)
    v1, v2, params = pairs(idx, torch.Generator().manual_seed(0))
    assert v1.shape == v2.shape == (300, 3, 32, 32) and v1.dtype == torch.float32
    assert 0 <= float(v1.min()) and float(v1.max()) <= 1
    p1, p2 = params["v1"], params["v2"]
    for f in FACTORS:
        same = (p1[f] == p2[f]).float().mean()
        if f in shared:
            assert same == 1, f
            assert torch.equal(p1[f], toy.factors[f][idx]), f  # the anchor's factor
        else:
            assert same < 0.3, (f, float(same))  # independent draws agree ~1/10, 1/12, 1/16
    # check the re-rendered pixels, not only the parameters
    r1, a1 = toy.renderer.render(p1, return_alpha=True)
    r2, a2 = toy.renderer.render(p2, return_alpha=True)
    assert torch.equal(r1, v1) and torch.equal(r2, v2)
    if "background" in shared:
        bg = (a1 == 0) & (a2 == 0)
        assert torch.equal((v1 - v2).abs().amax(1, keepdim=True)[bg], torch.zeros(int(bg.sum())))
    if "position" in shared:
        # both digits' ink lies inside the anchor's grid cell
        box = _cell_masks()[toy.factors["position"][idx]]  # 300 x 1 x 32 x 32
        assert (a1[~box] == 0).all() and (a2[~box] == 0).all()
    if "digit" in shared:
        # same glyph (up to translation): identical ink totals and colours
        assert torch.allclose(a1.sum((1, 2, 3)), a2.sum((1, 2, 3)))
        assert torch.equal(p1["color"], p2["color"])


def test_all_factors_shared_reproduces_the_anchor_image(toy):
    idx = torch.tensor([3, 17, 5, 400])
    v1, v2, _ = FactorPairs(toy, shared=FACTORS)(idx, 0)
    assert torch.equal(v1, v2)
    assert (v1 - toy.batch(idx)).abs().max() <= 0.5 / 255 + 1e-6


def test_pairs_are_seeded_and_replayable(toy):
    pairs = FactorPairs(toy, shared=("digit",))
    idx = torch.arange(20)
    a = pairs(idx, torch.Generator().manual_seed(5))
    b = pairs(idx, torch.Generator().manual_seed(5))
    c = pairs(idx, torch.Generator().manual_seed(6))
    assert torch.equal(a.v1, b.v1) and torch.equal(a.v2, b.v2)
    assert not torch.equal(a.v1, c.v1)
    r = pairs.replay(a.params)
    assert torch.equal(r.v1, a.v1) and torch.equal(r.v2, a.v2)
    assert pairs.to_spec() == {"kind": "shared_factors", "shared": ["digit"]}
    assert pairs.channels == (3, 3)


def test_subset_keeps_what_rendering_needs(toy):
    sub = load("colorful-moving-digits", split="test", subset=50, seed=3)
    assert len(sub) == 50 and sub.labels.bincount().tolist() == [5] * 10
    v1, v2, params = FactorPairs(sub, shared=("position",))(torch.arange(50), 0)
    assert torch.equal(params["v1"]["position"], sub.factors["position"])
    assert sub.to("cpu") is sub


def test_errors(toy):
    with pytest.raises(SpecError, match="background") as e:
        FactorPairs(toy, shared=("colour",))
    assert e.value.field == "shared" and set(e.value.choices) == set(FACTORS)
    with pytest.raises(SpecError, match="colorful-moving-digits"):
        FactorPairs(ImageDataset(toy.images[:5], toy.labels[:5], toy.classes), shared=("digit",))
    with pytest.raises(SpecError, match="split"):
        colorful_moving_digits("val")
    with pytest.raises(SpecError, match="split"):
        load("colorful-moving-digits", split="val")


def test_relabelled_copy_moves_without_moving_the_original(toy):
    c = toy.relabel("position")
    c.to("meta")
    assert c.images.device.type == "meta" and c.renderer.glyphs.device.type == "meta"
    assert toy.images.device.type == "cpu" and toy.renderer.glyphs.device.type == "cpu"
    assert toy.params["color"].device.type == "cpu"
