"""Composition: a spatial pair, then per-view appearance augmentation, then a colour split.

The ``pair`` kind chains three stages, each itself a view kind:

1. ``spatial``: a crop pair (``random_resized_crop``, ``patch_distance``,
   ``overlap_crops``, ``identity``, or any kind giving two RGB views);
2. ``augment`` (optional): the ``augment`` kind, drawn independently per view;
   its colour ops are skipped when a split follows (a colour jitter before an
   L | ab split changes what the channel groups share: InfoMin code's CMC mode);
3. ``split`` (optional): a colour stage such as ``channel_split``; ``v1`` takes
   the stage's first output of the first view, ``v2`` its second output of the
   second view.

This is how InfoMin builds its strongest views (arXiv 2005.10243, §4.3 and
PyContrast's aug "D": crops and InfoMin Aug on each view, then the Y | DbDr
split) and how SimCLR (arXiv 2002.05709) builds crop + colour views.

Shorthands: ``spatial="patch_distance"`` means ``{"kind": "patch_distance"}``,
``augment="simclr"`` means ``{"kind": "augment", "preset": "simclr"}`` and
``split="lab"`` means ``{"kind": "channel_split", "space": "lab"}``;
``size`` sets the spatial kind's output size.

>>> import torch
>>> from infomin.views.compose import Pair
>>> gen = Pair({"kind": "random_resized_crop", "size": 16}, augment="simclr", split="lab")
>>> v1, v2, params = gen(torch.rand(4, 3, 32, 32), rng=0)
>>> gen.channels, tuple(v1.shape), tuple(v2.shape), sorted(params)
((1, 2), (4, 1, 16, 16), (4, 2, 16, 16), ['augment1', 'augment2', 'spatial', 'split'])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from infomin.errors import SpecError, check_int
from infomin.views.augment import AugmentViews, augment_batch
from infomin.views.base import Params, ViewGenerator
from infomin.views.registry import build, kinds, parameters, register

__all__ = ["Pair"]


def _child(spec: Any, field: str, shorthand_key: str | None = None,
           shorthand_kind: str | None = None) -> ViewGenerator:
    """Build a stage from a spec, a generator or a shorthand string."""
    if isinstance(spec, str):
        spec = {"kind": shorthand_kind, shorthand_key: spec} if shorthand_kind else {"kind": spec}
    if not isinstance(spec, (dict, ViewGenerator)):
        raise SpecError(field, spec, "expected a spec mapping with a 'kind'")
    return build(spec, field=field)


def _chain_differentiable(stages: list[ViewGenerator | None]) -> frozenset[str]:
    """What gradients flow through stages applied one after the other.

    ``input`` reaches ``x`` only if every stage passes it; a stage's own
    ``params`` or ``weights`` get gradients if that stage declares them and every
    later stage passes gradients to its input.
    """
    parts = [p for p in stages if p is not None]
    out: set[str] = set()
    for i, part in enumerate(parts):
        later_pass = all("input" in q.differentiable for q in parts[i + 1:])
        if later_pass:
            out |= part.differentiable & {"params", "weights"}
    if all("input" in p.differentiable for p in parts):
        out.add("input")
    return frozenset(out)


@register("pair")
class Pair(ViewGenerator):
    """Spatial pair -> per-view augmentation -> colour split (the SimCLR / CMC / InfoMin pipeline).

    Args:
        spatial: spec of a kind that makes two RGB views (default ``random_resized_crop``).
        augment: ``augment`` spec (or preset name), applied independently to each view; ``None``: none.
        split: colour stage spec: ``channel_split`` (or a space name), or a learned
            ``flow_color`` (InfoMin's learned views after the crops: v1 is the first
            channel of crop 1's transform, v2 the other channels of crop 2's); ``None``: RGB views.
        size: if given, sets ``spatial.size`` (the output side).

    Params: ``{"spatial": ..., "augment1": ..., "augment2": ..., "split": ...}``
    (the augment and split entries only when those stages are set).
    Channels come from the split (``(3, 3)`` without one); gradients reach ``x``
    when every stage passes them, and a stage's own params or weights when every
    later stage passes gradients to its input (:func:`_chain_differentiable`).
    """

    differentiable = frozenset({"input", "params"})  # the default (crop only); see __init__

    def __init__(self, spatial: Any = None, augment: Any = None, split: Any = None,
                 size: int | None = None):
        super().__init__()
        if spatial is None:
            spatial = {"kind": "random_resized_crop"}
        if size is not None:
            check_int("size", size, 1)
            if isinstance(spatial, ViewGenerator):
                spatial = spatial.to_spec()
            if not isinstance(spatial, dict):
                raise SpecError("spatial", spatial, "expected a spec mapping with a 'kind'")
            if spatial.get("kind") in kinds() and "size" not in parameters(spatial["kind"]):
                raise SpecError("size", size, f"the spatial kind {spatial['kind']!r} has no 'size' parameter")
            spatial = {**spatial, "size": size}
        self.spatial = _child(spatial, "spatial")
        if self.spatial.channels != (3, 3):
            raise SpecError("spatial.kind", self.spatial.kind,
                            f"the spatial stage must make two RGB views, this one makes {self.spatial.channels}")
        self.augment = None if augment is None else _child(augment, "augment", "preset", "augment")
        if self.augment is not None and not isinstance(self.augment, AugmentViews):
            raise SpecError("augment.kind", self.augment.kind, choices=["augment"])
        self.split = None if split is None else _child(split, "split", "space", "channel_split")
        self.differentiable = _chain_differentiable([self.spatial, self.augment, self.split])
        self._remember(spatial=self.spatial, augment=self.augment, split=self.split, size=size)

    @property
    def channels(self) -> tuple[int, int]:
        return self.split.channels if self.split is not None else self.spatial.channels

    @property
    def stochastic(self) -> bool:
        return any(p.stochastic for p in (self.spatial, self.augment, self.split) if p is not None)

    @property
    def channel_names(self):
        return self.split.channel_names if self.split is not None else (None, None)

    def eval_inputs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The colour stage on the clean image (crops and augmentations are training-time only)."""
        if self.split is None:
            return x, x
        return self.split.eval_inputs(x)

    def sample(self, x: Tensor, rng: torch.Generator) -> Params:
        n = x.shape[0]
        params: Params = {"spatial": self.spatial.sample(x, rng)}
        if self.augment is not None:
            color = self.split is None
            params["augment1"] = self.augment.sample_view(n, rng, color=color)
            params["augment2"] = self.augment.sample_view(n, rng, color=color)
        if self.split is not None:
            # the colour stage runs once on the 2B stacked views; it samples from a placeholder of
            # their shape (no memory: an expanded zero)
            side = getattr(self.spatial, "size", None)
            hw = (side, side) if isinstance(side, int) else tuple(x.shape[-2:])
            placeholder = x.new_zeros(1, 1, 1, 1).expand(2 * n, x.shape[1], *hw)
            params["split"] = self.split.sample(placeholder, rng)
        return params

    def apply(self, x: Tensor, params: Params) -> tuple[Tensor, Tensor]:
        s1, s2 = self.spatial.apply(x, params["spatial"])
        same = s1 is s2
        if self.augment is not None:
            s1 = augment_batch(s1, params["augment1"])
            s2 = augment_batch(s2, params["augment2"])
            same = False
        if self.split is None:
            return s1, s2
        if same and not self.split.stochastic:
            # one shared view and a deterministic colour stage: convert once
            return self.split.apply(s1, params["split"])
        n = s1.shape[0]
        v1, v2 = self.split.apply(torch.cat([s1, s2]), params["split"])
        return v1[:n], v2[n:]
