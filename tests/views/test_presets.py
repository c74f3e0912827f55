"""Every preset in views/ (learned ones included) builds, declares its channels truthfully, and
starts with a comment saying what it is and where it comes from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import infomin.views as V
from infomin.views.spec import presets

PRESETS = sorted(presets())
EXPECTED = {"simclr", "infomin_aug", "identity", "lab_l_ab", "ycbcr_y_cbcr", "ydbdr_y_dbdr",
            "patch_distance", "disjoint_crops", "rgb_crops", "hsv_h_sv", "xyz_split", "cmc_lab",
            "infomin_ydbdr"}


def test_the_documented_presets_exist():
    assert EXPECTED <= set(PRESETS)


def test_readme_lists_every_preset():
    """README's "Presets live in `views/`" sentence names exactly the presets that ship."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    sentence = readme.split("Presets live in `views/`", 1)[1].split("learned ones in", 1)[0]
    assert set(re.findall(r"`([a-z0-9_]+)`", sentence)) == {p for p in PRESETS if not p.startswith("learned/")}


@pytest.mark.parametrize("name", PRESETS)
def test_preset_builds_and_runs(name):
    gen = V.build(name)
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    v1, v2, _ = gen(x, generator=0)
    assert (v1.shape[1], v2.shape[1]) == gen.channels
    assert torch.isfinite(v1).all() and torch.isfinite(v2).all()
    assert V.build(gen.to_spec()).to_spec() == gen.to_spec()


@pytest.mark.parametrize("name", [p for p in PRESETS if not p.startswith("learned/")])
def test_preset_file_starts_with_a_comment(name):
    first = presets()[name].read_text().splitlines()[0]
    assert first.startswith("# ") and len(first) > 20


def test_preset_channels():
    assert V.build("lab_l_ab").channels == (1, 2)
    assert V.build("xyz_split").channels == (1, 2)
    assert V.build("simclr").channels == (3, 3)
    assert V.build("cmc_lab").spatial.shared is True
    assert V.build("disjoint_crops").disjoint is True
