"""infomin.recipes: every recipe is a valid TrainConfig, names are checked, view overrides reach
only the stages of their kind, and `infomin train --recipe` applies both."""

from __future__ import annotations

import pytest
import torch

import infomin.views as V
from infomin import recipes
from infomin.config import TrainConfig
from infomin.errors import SpecError
from infomin.models import build_encoder


@pytest.mark.parametrize("name", recipes.names())
def test_every_recipe_is_a_valid_config_with_a_buildable_encoder(name):
    cfg = TrainConfig.from_dict(recipes.get(name))
    assert build_encoder(cfg.encoder, 3).out_dim > 0
    assert set(recipes.VIEW_OVERRIDES) <= set(recipes.RECIPES)


def test_get_returns_a_copy_and_rejects_unknown_names():
    r = recipes.get("CIFAR_CPU")
    r["lr"] = 99.0
    assert recipes.get("CIFAR_CPU")["lr"] != 99.0
    with pytest.raises(SpecError) as e:
        recipes.get("cifar_cpu")
    assert e.value.field == "recipe" and "CIFAR_CPU" in e.value.choices
    with pytest.raises(SpecError):
        recipes.apply_views("nope", {"kind": "identity"})


def test_cifar_cpu_views_train_on_16px_random_resized_crops():
    spec = recipes.apply_views("CIFAR_CPU", V.load_spec("simclr"))
    assert spec["spatial"]["size"] == 16
    assert V.load_spec("simclr")["spatial"]["size"] == 32      # the preset itself is unchanged
    v1, v2, _ = V.build(spec)(torch.rand(4, 3, 32, 32), generator=0)
    assert v1.shape[-2:] == v2.shape[-2:] == (16, 16)


def test_view_overrides_leave_other_kinds_alone():
    for preset in ("lab_l_ab", "patch_distance", "disjoint_crops"):
        spec = V.load_spec(preset)
        assert recipes.apply_views("CIFAR_CPU", spec) == spec, preset
    # a pair's own size (which wins over its spatial stage's) is overridden too
    pair = {"kind": "pair", "size": 32, "augment": "simclr"}
    assert recipes.apply_views("CIFAR_CPU", pair)["size"] == 16
    assert recipes.apply_views("CIFAR_CPU", {**pair, "spatial": "patch_distance"})["size"] == 32
