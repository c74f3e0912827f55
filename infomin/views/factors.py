"""``shared_factors``: view pairs of the toy that share exactly the chosen generative factors.

InfoMin (Tian et al. 2020, arXiv 2005.10243, sec. 3.1) controls what two views share
on a dataset whose factors are known: each view re-renders the anchor image keeping
the *shared* factors and resampling the others, so the factors the views share set
their mutual information. This kind does that for colorful-moving-digits
(:mod:`infomin.data.toy`).

Unlike the pixel-batch kinds it cannot transform an arbitrary image batch (its
``source`` is ``"dataset"``): views are re-rendered from the dataset's render
parameters, so it is used through :meth:`SharedFactors.pairs`, which returns a
:class:`FactorPairs` pair source like every other kind's.

>>> import torch
>>> from infomin.data.toy import colorful_moving_digits
>>> from infomin.views import build
>>> pairs = build({"kind": "shared_factors", "shared": ["digit"]}).pairs(
...     colorful_moving_digits("train", n=32, seed=0))
>>> v1, v2, params = pairs(torch.arange(8), torch.Generator().manual_seed(0))
>>> v1.shape, bool((params["v1"]["digit"] == params["v2"]["digit"]).all())
(torch.Size([8, 3, 32, 32]), True)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from infomin.data.toy import FACTOR_PARAMS, FACTORS, NAME, ColorfulMovingDigits
from infomin.errors import SpecError, check_choice
from infomin.seeding import SeedLike, make_generator
from infomin.views.base import Dataset, Params, ViewGenerator, ViewPair
from infomin.views.registry import register


def _check_shared(shared: Any) -> tuple[str, ...]:
    if isinstance(shared, str):
        shared = (shared,)
    if not isinstance(shared, Iterable):
        raise SpecError("shared", shared, "expected a list of factors", choices=list(FACTORS))
    shared = tuple(shared)
    for f in shared:
        check_choice("shared", f, FACTORS)
    return tuple(f for f in FACTORS if f in shared)  # canonical order, no duplicates


@register("shared_factors")
class SharedFactors(ViewGenerator):
    """Views of a colorful-moving-digits item that share exactly the factors in ``shared``.

    Args:
        shared: subset of ``("digit", "background", "position")``; ``[]`` shares nothing.

    A shared digit keeps the same handwritten instance and colour; a shared
    background the same region and cut; every other factor is redrawn per view from
    the dataset's pools. Only usable through :meth:`pairs` (``source = "dataset"``).
    """

    source = "dataset"
    in_channels = 3
    differentiable = frozenset()

    def __init__(self, shared: Any = ("digit",)) -> None:
        super().__init__()
        self.shared = _check_shared(shared)
        self._remember(shared=list(self.shared))

    @property
    def channels(self) -> tuple[int, int]:
        return (3, 3)

    def _needs_dataset(self) -> SpecError:
        return SpecError("views.kind", self.kind, f"re-renders {NAME} items from their factors and "
                         "cannot transform an image batch; bind it to the dataset: gen.pairs(dataset)")

    def sample(self, x: Tensor, rng: torch.Generator) -> Params:
        raise self._needs_dataset()

    def apply(self, x: Tensor, params: Params) -> tuple[Tensor, Tensor]:
        raise self._needs_dataset()

    def eval_inputs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x, x

    def pairs(self, dataset: Dataset) -> FactorPairs:
        return FactorPairs(dataset, self.shared)


class FactorPairs:
    """The :class:`~infomin.views.base.PairSource` of :class:`SharedFactors` on one dataset.

    Calling it with anchor indices (B,) re-renders two images per anchor: both keep the
    anchor's ``shared`` factors (a shared digit keeps the same handwritten instance; a shared
    background the same region, cut and flip), and each view resamples the other factors and
    the nuisances (the digit's colour, the background's tone:
    :data:`~infomin.data.toy.NUISANCE_PARAMS`) independently from the dataset's pools.
    ``params`` holds both views' render parameters and factor labels, so a pair can be replayed.
    """

    channels = (3, 3)

    def __init__(self, dataset: Any, shared: Iterable[str] = ("digit",)) -> None:
        if not isinstance(dataset, ColorfulMovingDigits):
            raise SpecError("dataset", getattr(dataset, "name", type(dataset).__name__),
                            "shared_factors views need a dataset with known factors", choices=[NAME])
        self.dataset = dataset
        self.shared = _check_shared(shared)

    def __repr__(self) -> str:
        return f"FactorPairs(shared={list(self.shared)})"

    def __call__(self, idx: Tensor, rng: SeedLike = None) -> ViewPair:
        """idx: (B,) anchor indices -> ViewPair(v1, v2 float (B, 3, 32, 32), params)."""
        rng = make_generator(rng)
        r = self.dataset.renderer
        out = idx.device
        idx = idx.to(r.device)
        anchor = {k: v[idx] for k, v in self.dataset.params.items()}
        views = []
        for _ in range(2):
            p = r.sample(idx.shape[0], rng)  # every parameter drawn, so the stream is the same for any `shared`
            for f in self.shared:
                for key in FACTOR_PARAMS[f]:
                    p[key] = anchor[key]
            views.append(p)
        params = {"v1": {**views[0], **r.factors(views[0])}, "v2": {**views[1], **r.factors(views[1])},
                  "shared": list(self.shared)}
        return ViewPair(r.render(views[0]).to(out), r.render(views[1]).to(out), params)

    def replay(self, idx: Tensor, params: Params) -> ViewPair:
        """Re-render the pair described by ``params`` (from an earlier call) on ``idx``'s device."""
        r = self.dataset.renderer
        p1, p2 = ({k: v.to(r.device) for k, v in params[v].items()} for v in ("v1", "v2"))
        return ViewPair(r.render(p1).to(idx.device), r.render(p2).to(idx.device), params)


__all__ = ["FactorPairs", "SharedFactors"]
