"""Registry and spec: build from a dict, a YAML file or a preset name; SpecErrors that name the
field, the value and the choices; flat <-> nested round trips; duplicate registration."""

from __future__ import annotations

import pytest
import torch

import infomin.views as V
from infomin.errors import SpecError
from infomin.views.base import ViewGenerator
from infomin.views.crop import RandomResizedCropPair
from infomin.views.registry import available, register

SIMCLR_LIKE = {"kind": "pair",
               "spatial": {"kind": "random_resized_crop", "size": 16, "scale": [0.2, 1.0], "flip": 0.0},
               "augment": {"kind": "augment", "preset": "simclr", "overrides": {"gray_p": 0.5}},
               "split": None}


def test_build_from_dict_yaml_path_and_preset_name(tmp_path):
    x = torch.rand(4, 3, 32, 32)
    a = V.build(SIMCLR_LIKE)
    path = tmp_path / "mine.yaml"
    V.dump_spec(SIMCLR_LIKE, path, comment="a test preset")
    assert path.read_text().startswith("# a test preset\n")
    b = V.build(str(path))
    c = V.build(path)
    for g in (b, c):
        assert torch.equal(a(x, generator=1).v1, g(x, generator=1).v1)
    assert V.build("simclr").kind == "pair"
    assert V.build(a) is a


def test_load_spec_round_trip(tmp_path):
    path = tmp_path / "s.yaml"
    V.dump_spec(V.build(SIMCLR_LIKE).to_spec(), path)
    assert V.load_spec(path) == V.build(SIMCLR_LIKE).to_spec()


def test_unknown_kind_names_field_value_and_choices():
    with pytest.raises(SpecError) as e:
        V.build({"kind": "random_resized_crops"})
    assert e.value.field == "views.kind" and e.value.value == "random_resized_crops"
    assert "random_resized_crop" in e.value.choices and "pair" in e.value.choices
    with pytest.raises(SpecError) as e:
        V.build({"size": 3})
    assert e.value.field == "views.kind"


def test_unknown_parameter_lists_the_kind_parameters():
    with pytest.raises(SpecError) as e:
        V.build({"kind": "random_resized_crop", "sizes": 32})
    assert e.value.field == "views.sizes" and e.value.value == 32
    assert set(e.value.choices) == {"size", "scale", "ratio", "shared", "flip"}
    with pytest.raises(SpecError) as e:
        V.build({"kind": "pair", "spatial": {"kind": "patch_distance", "distanse": 3}})
    assert e.value.field == "views.spatial.distanse" and "distance" in e.value.choices


@pytest.mark.parametrize("spec,field,value", [
    ({"kind": "random_resized_crop", "scale": [0.5, 1.5]}, "views.scale[1]", 1.5),
    ({"kind": "random_resized_crop", "flip": -0.1}, "views.flip", -0.1),
    ({"kind": "patch_distance", "distance": -1.0}, "views.distance", -1.0),
    ({"kind": "overlap_crops", "iou": [0.8, 0.2]}, "views.iou", [0.8, 0.2]),
    ({"kind": "augment", "strength": "big"}, "views.strength", "big"),
    ({"kind": "pair", "augment": {"kind": "augment", "overrides": {"hue": 0.9}}}, "views.augment.overrides.hue", 0.9),
])
def test_out_of_range_values_name_field_and_value(spec, field, value):
    with pytest.raises(SpecError) as e:
        V.build(spec)
    assert e.value.field == field and e.value.value == value
    assert field.split(".")[-1].split("[")[0] in str(e.value)


def test_unknown_preset_lists_presets():
    with pytest.raises(SpecError) as e:
        V.build("simclr2")
    assert e.value.field == "views" and "simclr" in e.value.choices


def test_flatten_unflatten_round_trip_and_merge():
    spec = V.build(SIMCLR_LIKE).to_spec()
    flat = V.flatten(spec)
    assert flat["spatial.scale"] == [0.2, 1.0] and flat["augment.overrides.gray_p"] == 0.5
    assert V.unflatten(flat) == spec
    merged = V.merge(spec, {"spatial.scale": [0.5, 1.0], "augment.strength": 0.5})
    assert merged["spatial"]["scale"] == [0.5, 1.0] and merged["spatial"]["size"] == 16
    assert merged["augment"]["strength"] == 0.5 and spec["augment"]["strength"] == 1.0
    assert V.build(merged).spatial.scale == (0.5, 1.0)
    # a different kind replaces the sub-spec instead of merging into it
    swapped = V.merge(spec, {"spatial": {"kind": "patch_distance", "size": 8}})
    assert swapped["spatial"] == {"kind": "patch_distance", "size": 8}
    assert V.build(swapped).spatial.kind == "patch_distance"


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="already registered"):
        @register("random_resized_crop")
        class Other(RandomResizedCropPair):  # noqa: F841
            pass
    assert V.get("random_resized_crop") is RandomResizedCropPair
    assert issubclass(V.get("augment"), ViewGenerator)


def test_available_describes_every_kind():
    info = available()
    assert info["random_resized_crop"]["params"]["scale"] == (0.08, 1.0)
    assert info["random_resized_crop"]["differentiable"] == ["input", "params"]
    assert info["augment"]["params"]["preset"] == "simclr"
    assert all(v["doc"] for v in info.values())
