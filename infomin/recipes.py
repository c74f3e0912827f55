"""Named training budgets shared by the study modules (``studies/*.py``), and what they fix.

A study states its question and search space; how long and with what encoder each
candidate trains is one of these recipes (TrainConfig overrides), so studies that
answer related questions train alike and their I_NCE values compare. Override single
keys in a study with ``{**recipes.TOY_CPU, "temperature": 0.5}``.

:func:`comparable` writes the settings that must not vary for I_NCE estimates to
compare (K from the batch size and the InfoNCE form, tau, the encoder), computed with
:func:`infomin.objectives.num_candidates`, for a study's ``fixed`` notes.

>>> comparable(TOY_CPU, "ntxent")["K"]
'127 (batch 64, ntxent)'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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

#: CIFAR-10 arrays on 2 CPU cores (the CIFAR reproductions)
CIFAR_CPU: dict[str, Any] = {
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


def comparable(train: Mapping[str, Any], form: str, **extra: str) -> dict[str, str]:
    """The settings I_NCE estimates of a study share: K (from the batch size and ``form``,
    ``"ntxent"`` or ``"cross"``), tau and the encoder, plus ``extra`` notes."""
    batch = int(train.get("batch_size", 256))
    return {"K": f"{num_candidates(batch, form)} (batch {batch}, {form})",
            "tau": str(train.get("temperature", 0.2)), "encoder": str(train.get("encoder", "convnet")),
            **extra}


__all__ = ["CIFAR_CPU", "CIFAR_GPU", "LEARN_AUTHORS", "LEARN_RECIPES", "TOY_CPU", "TOY_CPU_LONG", "TOY_PROBE",
           "comparable"]
