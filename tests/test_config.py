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
    ("optimizer", "adamax", "adamw"),           # the valid choices are listed
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


# -- LearnViewsConfig ---------------------------------------------------------------------------
def test_learn_views_config_round_trips_through_yaml(tmp_path):
    from infomin.config import LearnViewsConfig

    cfg = LearnViewsConfig(mode="semi-supervised", seeds=[0, 1], label="hue", ce_weight=10.0,
                           generator={"kind": "flow_color", "start": "ydbdr"}, eval={"epochs": 6})
    path = tmp_path / "learn.yaml"
    cfg.to_yaml(path)
    again = LearnViewsConfig.from_yaml(path)
    assert again == cfg and again.seeds == (0, 1) and again.generator["start"] == "ydbdr"
    assert again.replace(epochs=2).epochs == 2


@pytest.mark.parametrize("key,value,match", [
    ("mode", "supervised", "learn.mode"),
    ("epoch", 3, "learn.epoch: got 3; unknown key"),
    ("seeds", [], "learn.seeds"),
    ("seeds", [1, 1], "seeds repeat"),
    ("generator", {"start": "rgb"}, "learn.generator"),
    ("ce_weight", -1.0, "learn.ce_weight"),
    ("betas", [0.5], "learn.betas"),
    ("eval", {"epochs": 0}, "learn.eval.epochs"),
    ("eval", {"dataset": "cifar10-npz"}, "learn.eval.dataset: got 'cifar10-npz'; the evaluation runs use the learner's dataset"),
    ("eval", {"train_subset": 10}, "learn.eval.train_subset"),
    ("eval", {"seed": 3}, "learn.eval.seed"),
])
def test_learn_views_config_names_the_bad_field(key, value, match):
    from infomin.config import LearnViewsConfig

    with pytest.raises(SpecError, match=match):
        LearnViewsConfig.from_dict({key: value})


def test_the_evaluation_follows_the_learners_data_and_takes_its_own_training_settings():
    from infomin.config import LearnViewsConfig

    cfg = LearnViewsConfig(dataset="cifar10-npz", train_subset=2048, test_subset=512, epochs=3,
                           batch_size=64, temperature=0.2, seeds=[4, 5], eval={"epochs": 9, "lr": 0.3})
    ev = cfg.eval_config(seed=5)
    assert (ev.dataset, ev.train_subset, ev.test_subset, ev.seed) == ("cifar10-npz", 2048, 512, 5)
    assert (ev.epochs, ev.lr, ev.batch_size, ev.temperature, ev.eval_every) == (9, 0.3, 64, 0.2, 0)
    assert cfg.eval_config().seed == 4
