"""Training recipes: measured settings for a budget, as plain data.

A recipe is a dict of :class:`~infomin.config.TrainConfig` overrides, plus (optionally) the view
parameters that go with it (:data:`VIEW_OVERRIDES`: the training resolution, for instance). The
study modules and ``infomin train --recipe NAME`` start from a recipe and override what their
question needs; the figures behind each recipe are in README (Performance) and come from
``bench/time_to_accuracy.py``.

>>> from infomin.config import TrainConfig
>>> cfg = TrainConfig.from_dict({**get("CIFAR_CPU"), "dataset": "cifar10-npz", "epochs": 4})
>>> cfg.encoder, cfg.epochs
('convnet-512', 4)
>>> apply_views("CIFAR_CPU", {"kind": "pair", "spatial": {"kind": "random_resized_crop", "size": 32}})
{'kind': 'pair', 'spatial': {'kind': 'random_resized_crop', 'size': 16}}
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from infomin.errors import SpecError

#: CIFAR-10-sized images (32 px, tens of thousands of them) on a CPU of a few cores: the
#: settings with the highest linear-probe accuracy per minute of training among those measured
#: on 2 cores (README, Performance; issue 13). The small ConvNet widened to 512 features, SGD
#: with momentum, one warm-up epoch then cosine, batch 256 (510 negatives per anchor in the
#: NT-Xent form), tau 0.2, no per-epoch kNN monitor (a forward pass over train + test each
#: epoch). Goes with ``VIEW_OVERRIDES["CIFAR_CPU"]``: random resized crops made at 16 px for
#: training; the probes still see the 32 px images. Sized for 15,000 training images; studies
#: on smaller subsets set their own ``epochs``.
CIFAR_CPU: dict[str, Any] = {
    "encoder": "convnet-512",
    "epochs": 36,
    "batch_size": 256,
    "optimizer": "sgd",
    "lr": 0.1,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "warmup_epochs": 1.0,
    "temperature": 0.2,
    "eval_every": 0,
}

#: every recipe by name
RECIPES: dict[str, dict[str, Any]] = {
    "CIFAR_CPU": CIFAR_CPU,
}

#: view parameters that go with a recipe: ``{kind: {parameter: value}}``, set on every stage of
#: that kind in a view spec (see :func:`apply_views`). CIFAR_CPU: random resized crops are made
#: at 16 px for training (a quarter of the pixels of 32 px), while the probes see the full 32 px
#: images: a crop of 8-100 % of the image resized to 16 px shows objects at 0.5-1.8x their
#: size in a 32 px test image, so training and test object sizes overlap (the train-test
#: resolution discrepancy of "FixRes", Touvron et al. 2019, arXiv 1906.06423).
VIEW_OVERRIDES: dict[str, dict[str, dict[str, Any]]] = {
    "CIFAR_CPU": {"random_resized_crop": {"size": 16}},
}


def names() -> list[str]:
    """The recipe names."""
    return sorted(RECIPES)


def get(name: str) -> dict[str, Any]:
    """A copy of recipe ``name``'s TrainConfig overrides (:class:`SpecError` for an unknown name)."""
    if name not in RECIPES:
        raise SpecError("recipe", name, "unknown recipe", choices=names())
    return copy.deepcopy(RECIPES[name])


def apply_views(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """View ``spec`` with recipe ``name``'s :data:`VIEW_OVERRIDES` set on every stage of their kinds.

    Stages of other kinds are left alone (a ``patch_distance`` crop keeps its size, a
    colour split is unchanged); a recipe without view overrides returns a copy of ``spec``.
    """
    if name not in RECIPES:
        raise SpecError("recipe", name, "unknown recipe", choices=names())
    overrides = VIEW_OVERRIDES.get(name, {})

    def walk(node: Any) -> Any:
        if isinstance(node, Mapping):
            out = {k: walk(v) for k, v in node.items()}
            kind = out.get("kind")
            if kind in overrides:
                out.update(copy.deepcopy(overrides[kind]))
            if kind == "pair" and out.get("size") is not None:
                # a pair's own `size` wins over its spatial stage's: override it there too
                spatial = out.get("spatial") or "random_resized_crop"
                spatial_kind = spatial if isinstance(spatial, str) else spatial.get("kind")
                if "size" in overrides.get(spatial_kind, {}):
                    out["size"] = overrides[spatial_kind]["size"]
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(spec)
