import pytest
import torch

from infomin.errors import SpecError
from infomin.seeding import derive_seed, make_generator


def test_int_seed_is_reproducible_and_independent_of_global_state():
    a = torch.rand(5, generator=make_generator(7))
    torch.manual_seed(123)
    b = torch.rand(5, generator=make_generator(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, torch.rand(5, generator=make_generator(8)))


def test_generator_is_passed_through_and_none_is_fresh():
    g = make_generator(3)
    assert make_generator(g) is g
    assert make_generator(None).device.type == "cpu"
    assert derive_seed(make_generator(1)) == derive_seed(make_generator(1))


def test_bad_seed():
    with pytest.raises(SpecError, match="seed: got '3'"):
        make_generator("3")
