"""Training recipes: measured settings for a budget, as plain data.

A recipe is a dict of :class:`~infomin.config.TrainConfig` overrides, plus (optionally) the view
parameters that go with it (:data:`VIEW_OVERRIDES`: the training resolution, for instance). The
study modules (``StudySpec(recipe=NAME)``, which also applies the view parameters) and
``infomin train --recipe NAME`` start from a recipe and override what their question needs
(``{**recipes.TOY_CPU, "temperature": 0.5}``), so studies that answer related
questions train alike and their I_NCE values compare; the figures behind each recipe are in
README (Performance) and docs/toy.md, from ``bench/time_to_accuracy.py`` and the toy's table.

:func:`comparable` writes the settings that must not vary for I_NCE estimates to compare (K
from the batch size and the InfoNCE form, tau, the encoder), computed with
:func:`infomin.objectives.num_candidates`, for a study's ``fixed`` notes.

>>> from infomin.config import TrainConfig
>>> cfg = TrainConfig.from_dict({**get("CIFAR_CPU"), "dataset": "cifar10-npz", "epochs": 4})
>>> cfg.encoder, cfg.epochs
('convnet-512', 4)
>>> apply_views("CIFAR_CPU", {"kind": "pair", "spatial": {"kind": "random_resized_crop", "size": 32}})
{'kind': 'pair', 'spatial': {'kind': 'random_resized_crop', 'size': 16}}
>>> comparable(TOY_CPU, "ntxent")["K"]
'127 (batch 64, ntxent)'
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from infomin.errors import SpecError
from infomin.objectives import num_candidates

#: the toy at a few-minute budget on 2 CPU cores (the quickstart and the toy reproductions):
#: 96 steps of batch 64 over 3,072 images, probes scored on the 1,000 test images
#: (docs/toy.md has why: the same steps over twice the images lifted the digit probe)
TOY_CPU: dict[str, Any] = {
    "epochs": 2, "batch_size": 64, "train_subset": 3072, "test_subset": None,
    "optimizer": "adamw", "lr": 6e-3, "weight_decay": 1e-4, "warmup_epochs": 0.5,
    "temperature": 0.2, "encoder": "convnet", "eval_every": 0, "plots": False,
}

#: the linear probe of the toy studies: full-batch L-BFGS, sklearn's objective, ~10x faster here
TOY_PROBE = "torch"

#: the toy with more data and epochs (searches over views of the toy)
TOY_CPU_LONG: dict[str, Any] = {
    "epochs": 5, "batch_size": 256, "train_subset": 4096, "test_subset": 1024,
    "temperature": 0.2, "encoder": "convnet",
}

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

#: CIFAR_CPU cut to 6 epochs over the 15,000 training images: the budget of the three-seed CIFAR
#: reproductions on 2 CPU cores (README, Results, has their wall times). Same encoder, optimiser,
#: schedule shape and view overrides as CIFAR_CPU.
CIFAR_CPU_SHORT: dict[str, Any] = {**CIFAR_CPU, "epochs": 6, "train_subset": 15000, "plots": False}

#: CIFAR_CPU cut to 18 epochs over the 15,000 training images: three times CIFAR_CPU_SHORT, where
#: the recipe passes 0.60 linear accuracy (README, Performance); for rerunning a three-seed study
#: where 6 epochs leave trained encoders too close to untrained ones.
CIFAR_CPU_MEDIUM: dict[str, Any] = {**CIFAR_CPU_SHORT, "epochs": 18}

#: CIFAR-10 arrays on 2 CPU cores at the budget of README's CIFAR reproductions (4,096 images,
#: 4 epochs of the small ConvNet): what their published figures were measured with
CIFAR_CPU_SMALL: dict[str, Any] = {
    "epochs": 4, "batch_size": 256, "train_subset": 4096, "test_subset": 2000,
    "optimizer": "adamw", "lr": 2e-3, "weight_decay": 1e-4, "warmup_epochs": 0.5,
    "temperature": 0.2, "encoder": "convnet", "eval_every": 0, "plots": False,
}

#: CIFAR-10 on a GPU: ResNet-18 (CIFAR stem), LARS, large batch
CIFAR_GPU: dict[str, Any] = {
    "epochs": 30, "batch_size": 512, "temperature": 0.2, "encoder": "resnet18", "lr": 0.6,
    "optimizer": "lars", "warmup_epochs": 3,
}


#: The InfoMin authors' semi-supervised view-learner script (a public copy; STL-10 at 64 px,
#: 100 epochs there): Adam at 2e-4 with betas (0.5, 0.999) for the estimator and 5x that
#: rate for the generator and the classifiers, classification weight 1, the estimator and
#: the generator updated in turn, and views from *different crops*: two random resized
#: crops (scale 0.2-1, flip) each go through the colour flow, view 1 is the first channel
#: of crop 1's output and view 2 the other channels of crop 2's. LearnViewsConfig overrides.
LEARN_AUTHORS: dict[str, Any] = {
    "lr": 2e-4, "betas": [0.5, 0.999], "generator_lr": 1e-3, "classifier_lr": 1e-3,
    "ce_weight": 1.0, "update": "alternating",
    "generator": {"kind": "pair",
                  "spatial": {"kind": "random_resized_crop", "scale": [0.2, 1.0], "flip": 0.5},
                  "split": {"kind": "flow_color", "start": "rgb"}},
}

#: named LearnViewsConfig overrides (``infomin learn-views --recipe NAME``)
LEARN_RECIPES: dict[str, dict[str, Any]] = {"authors": LEARN_AUTHORS}


#: every recipe by name
RECIPES: dict[str, dict[str, Any]] = {
    "CIFAR_CPU": CIFAR_CPU, "CIFAR_CPU_MEDIUM": CIFAR_CPU_MEDIUM, "CIFAR_CPU_SHORT": CIFAR_CPU_SHORT,
    "CIFAR_CPU_SMALL": CIFAR_CPU_SMALL, "CIFAR_GPU": CIFAR_GPU,
    "TOY_CPU": TOY_CPU, "TOY_CPU_LONG": TOY_CPU_LONG,
}

#: view parameters that go with a recipe: ``{kind: {parameter: value}}``, set on every stage of
#: that kind in a view spec (see :func:`apply_views`). CIFAR_CPU: random resized crops are made
#: at 16 px for training (a quarter of the pixels of 32 px), while the probes see the full 32 px
#: images: a crop of 8-100 % of the image resized to 16 px shows objects at 0.5-1.8x their
#: size in a 32 px test image, so training and test object sizes overlap (the train-test
#: resolution discrepancy of "FixRes", Touvron et al. 2019, arXiv 1906.06423).
VIEW_OVERRIDES: dict[str, dict[str, dict[str, Any]]] = {
    name: {"random_resized_crop": {"size": 16}} for name in ("CIFAR_CPU", "CIFAR_CPU_MEDIUM", "CIFAR_CPU_SHORT")
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


def comparable(train: Mapping[str, Any], form: str, **extra: str) -> dict[str, str]:
    """The settings I_NCE estimates of a study share: K (from the batch size and ``form``,
    ``"ntxent"`` or ``"cross"``), tau and the encoder, plus ``extra`` notes."""
    batch = int(train.get("batch_size", 256))
    return {"K": f"{num_candidates(batch, form)} (batch {batch}, {form})",
            "tau": str(train.get("temperature", 0.2)), "encoder": str(train.get("encoder", "convnet")),
            **extra}


__all__ = ["CIFAR_CPU", "CIFAR_CPU_MEDIUM", "CIFAR_CPU_SHORT", "CIFAR_CPU_SMALL", "CIFAR_GPU", "LEARN_AUTHORS", "LEARN_RECIPES", "RECIPES", "TOY_CPU",
           "TOY_CPU_LONG", "TOY_PROBE", "VIEW_OVERRIDES", "apply_views", "comparable", "get", "names"]
