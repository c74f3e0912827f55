"""The generator contract's plumbing: the seed argument, pair sources over a dataset, input checks."""

from __future__ import annotations

import pytest
import torch

import infomin.views as V
from infomin.data import ImageDataset
from infomin.errors import SpecError


def _x():
    return torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def test_generator_keyword_is_a_deprecated_name_for_rng():
    gen = V.build("simclr")
    with pytest.warns(DeprecationWarning, match="rng="):
        old = gen(_x(), generator=3)
    new = gen(_x(), rng=3)
    assert torch.equal(old.v1, new.v1) and torch.equal(old.v2, new.v2)


def test_image_pairs_are_the_generator_on_the_dataset_items():
    images = (torch.rand(10, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 255).to(torch.uint8)
    ds = ImageDataset(images, torch.arange(10) % 2, ["a", "b"])
    gen = V.build("simclr")
    pairs = gen.pairs(ds)
    idx = torch.tensor([3, 1, 7])
    a = pairs(idx, torch.Generator().manual_seed(5))
    b = gen(ds.batch(idx), rng=5)
    assert torch.equal(a.v1, b.v1) and torch.equal(a.v2, b.v2)
    assert torch.equal(pairs.replay(idx, a.params).v2, a.v2)
    assert isinstance(pairs, V.PairSource) and pairs.channels == (3, 3)


@pytest.mark.parametrize("x,field", [
    (torch.rand(3, 8, 8), "x.shape"),
    (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), "x.dtype"),
    (torch.rand(2, 1, 8, 8), "x.shape[1]"),
])
def test_bad_batches_name_the_problem(x, field):
    with pytest.raises(SpecError) as e:
        V.build("lab_l_ab")(x)
    assert e.value.field == field
