"""The fresh-critic I_NCE estimate and the in-memory probe of frozen views."""

from __future__ import annotations

import pytest
import torch

from infomin.train.critic import estimate_mi

TINY = {"encoder_kwargs": {"width": 4}, "proj_dim": 16}


@pytest.fixture(scope="module")
def toy():
    from infomin.data.toy import colorful_moving_digits

    return colorful_moving_digits("train", n=128, seed=0)


def test_estimate_mi_separates_informative_from_destroyed_views(toy):
    """Closed-form ends: views that are the same image carry everything; views of
    independent noise carry nothing (the fresh critic's held-out I_NCE is ~0 or below)."""
    from infomin.views.base import ViewGenerator

    class Noise(ViewGenerator):
        kind = "test_noise"
        differentiable = frozenset()

        @property
        def channels(self):
            return (3, 3)

        def sample(self, x, rng):
            return {"n": torch.rand(2, *x.shape, generator=rng)}

        def apply(self, x, params):
            return params["n"][0], params["n"][1]

    class Same(Noise):
        kind = "test_same"

        def apply(self, x, params):
            return x, x

    kw = dict(steps=15, batch_size=32, seed=0, **TINY)
    same = estimate_mi(Same(), toy, **kw)
    noise = estimate_mi(Noise(), toy, **kw)
    assert same["mi"] > 1.0 and noise["mi"] < 0.3
    assert same["log_k"] == pytest.approx(torch.log(torch.tensor(63.0)).item())
    assert same["mi"] <= same["log_k"]


