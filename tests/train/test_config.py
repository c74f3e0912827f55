"""TrainConfig: unknown keys and bad values are SpecErrors naming the field; YAML round trip."""

from __future__ import annotations

import pytest

from infomin.config import TrainConfig
from infomin.errors import SpecError


def test_unknown_key_lists_valid_keys():
    with pytest.raises(SpecError) as info:
        TrainConfig.from_dict({"epoch": 3})
    e = info.value
    assert e.field == "config.epoch" and e.value == 3
    assert "epochs" in e.choices and "temperature" in e.choices


@pytest.mark.parametrize("key,value,match", [
    ("epochs", 0, "epochs"),
    ("batch_size", 1, "batch_size"),
    ("lr", 0.0, "lr"),
    ("temperature", -0.1, "temperature"),
    ("momentum", 1.0, "momentum"),
    ("optimizer", "adam", "adamw"),           # the valid choices are listed
    ("loss", "infonce", "ntxent"),
    ("probe", "svm", "sklearn"),
    ("device", "tpu", "auto"),
    ("amp", "yes", "auto"),
    ("train_subset", 0, "train_subset"),
    ("epochs", 2.5, "integer"),
    ("compile", "no", "compile"),
])
def test_bad_values(key, value, match):
    with pytest.raises(SpecError, match=match):
        TrainConfig.from_dict({key: value})


def test_cross_field_checks():
    with pytest.raises(SpecError, match="checkpoint_dir"):
        TrainConfig(resume=True)
    with pytest.raises(SpecError, match="divisible by nproc"):
        TrainConfig(batch_size=30, nproc=4)


def test_yaml_round_trip(tmp_path):
    cfg = TrainConfig(epochs=7, lr=0.3, train_subset=100, amp=False)
    path = tmp_path / "cfg.yaml"
    cfg.to_yaml(path)
    assert TrainConfig.from_yaml(path) == cfg
    assert TrainConfig.from_yaml(path, epochs=2).epochs == 2       # overrides win
    path.write_text("epochs: 10.0\nlr: 1\n")                         # YAML number forms
    c = TrainConfig.from_yaml(path)
    assert c.epochs == 10 and isinstance(c.lr, float)
    with pytest.raises(SpecError, match="file not found"):
        TrainConfig.from_yaml(tmp_path / "missing.yaml")


def test_resolved_choices():
    c = TrainConfig()
    assert c.resolved_loss((1, 2)) == "cross" and c.resolved_loss((3, 3)) == "ntxent"
    assert TrainConfig(loss="ntxent").resolved_loss((1, 2)) == "ntxent"
    assert c.resolved_amp("cpu") is False and c.resolved_amp("cuda:0") is True
    assert TrainConfig(amp=True).resolved_amp("cpu") is True    # explicit wins (trainer refuses it)
    assert c.resolved_channels_last("cpu") is True
    assert c.resolved_device() in ("cpu", "cuda")


def test_frozen_and_replace():
    c = TrainConfig()
    with pytest.raises(AttributeError):
        c.epochs = 3
    assert c.replace(epochs=3).epochs == 3 and c.epochs == 5
