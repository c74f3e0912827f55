"""A test study whose trials fail in two ways without training: ``raise`` (the scorer raises)
and ``nan`` (it returns NaN); ``ok`` scores like sleepy.py. Each failure must print one line."""

import math
from pathlib import Path

from infomin.search import StudySpec
from infomin.search.spec import load_study

MODES = ["ok", "raise", "nan"]
STUDY = StudySpec(
    dataset="colorful-moving-digits",
    base_views={"kind": "channel_split", "space": "lab", "split": [[0], [1, 2]]},
    sampler="grid",
    grid={"mode": MODES},
    pruner="none",
    n_trials=len(MODES),
    seed=0,
)
_score = load_study(Path(__file__).with_name("sleepy.py")).run
_LR = {"ok": 0.5, "raise": 0.25, "nan": 0.125}  # the scorer only sees the config: lr tells the modes apart


def suggest(trial):
    return {"views": {}, "train": {"lr": _LR[trial.suggest_categorical("mode", MODES)]}}


def run(views, config, **kwargs):
    result = _score(views, config, **kwargs)
    if config.lr == _LR["raise"]:
        raise ValueError("boom: the scorer failed on purpose")
    if config.lr == _LR["nan"]:
        result.metrics["eval/linear_acc"] = math.nan
    return result
