"""The ``shared_factors`` view kind: pairs of the toy that share exactly the chosen factors."""

from __future__ import annotations

import pytest
import torch

from infomin.data import ImageDataset, load
from infomin.data.toy import (
    FACTOR_PARAMS,
    FACTORS,
    NUISANCE_PARAMS,
    cell_masks,
    colorful_moving_digits,
)
from infomin.errors import SpecError
from infomin.views import build
from infomin.views.factors import FactorPairs


@pytest.fixture(scope="module")
def toy():
    return colorful_moving_digits("train", n=600, seed=0)


SHARED_CASES = [(), ("digit",), ("background",), ("position",), ("digit", "background"),
                ("digit", "position"), FACTORS]


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
            for key in FACTOR_PARAMS[f]:                         # and all that renders it
                assert torch.equal(p1[key], toy.params[key][idx]) and torch.equal(p2[key], p1[key]), key
        else:
            assert same < 0.3, (f, float(same))  # independent draws agree ~1/10, 1/12, 1/16
    for key in NUISANCE_PARAMS:  # never shared, whatever the views share
        differ = (p1[key] != p2[key]).flatten(1).any(1).float().mean()
        assert differ == 1, key
    # check the re-rendered pixels, not only the parameters
    r1, a1 = toy.renderer.render(p1, return_alpha=True)
    r2, a2 = toy.renderer.render(p2, return_alpha=True)
    assert torch.equal(r1, v1) and torch.equal(r2, v2)
    same_texture = (toy.renderer.background(p1) == toy.renderer.background(p2)).flatten(1).all(1)
    if "background" in shared:
        assert same_texture.all()      # the same grey texture, toned differently
        assert not torch.equal(v1, v2)
    else:
        assert same_texture.float().mean() < 0.1
    if "position" in shared:
        # both digits' ink lies inside the anchor's grid cell
        box = cell_masks()[toy.factors["position"][idx]]  # 300 x 1 x 32 x 32
        assert (a1[~box] == 0).all() and (a2[~box] == 0).all()
    if "digit" in shared:
        # same handwritten instance (up to translation): identical ink totals, different colours
        assert torch.allclose(a1.sum((1, 2, 3)), a2.sum((1, 2, 3)))
        assert not torch.equal(p1["color"], p2["color"])


def test_all_factors_shared_differ_only_in_the_nuisances(toy):
    idx = torch.tensor([3, 17, 5, 400])
    v1, v2, params = FactorPairs(toy, shared=FACTORS)(idx, 0)
    assert not torch.equal(v1, v2)
    # give view 2 view 1's nuisances and it is view 1; give it the anchor's and it is the anchor
    same = {**params["v2"], **{k: params["v1"][k] for k in NUISANCE_PARAMS}}
    assert torch.equal(toy.renderer.render(same), v1)
    anchor = {**params["v2"], **{k: toy.params[k][idx] for k in NUISANCE_PARAMS}}
    assert (toy.renderer.render(anchor) - toy.batch(idx)).abs().max() <= 0.5 / 255 + 1e-6


def test_pairs_are_seeded_and_replayable(toy):
    pairs = FactorPairs(toy, shared=("digit",))
    idx = torch.arange(20)
    a = pairs(idx, torch.Generator().manual_seed(5))
    b = pairs(idx, torch.Generator().manual_seed(5))
    c = pairs(idx, torch.Generator().manual_seed(6))
    assert torch.equal(a.v1, b.v1) and torch.equal(a.v2, b.v2)
    assert not torch.equal(a.v1, c.v1)
    r = pairs.replay(idx, a.params)
    assert torch.equal(r.v1, a.v1) and torch.equal(r.v2, a.v2)
    gen = build({"kind": "shared_factors", "shared": ["digit"]})
    assert gen.to_spec() == {"kind": "shared_factors", "shared": ["digit"]}
    assert pairs.channels == gen.channels == (3, 3)
    via_kind = gen.pairs(toy)(idx, torch.Generator().manual_seed(5))
    assert torch.equal(via_kind.v1, a.v1)


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




def test_the_kind_cannot_transform_a_pixel_batch():
    gen = build({"kind": "shared_factors"})
    assert gen.source == "dataset"
    with pytest.raises(SpecError, match=r"pairs\(dataset\)"):
        gen(torch.rand(2, 3, 32, 32))
