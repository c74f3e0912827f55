"""A test study whose trials end in every way a trial can end badly.

``mode``: ``ok`` trains normally; ``nan``, ``inf`` and ``text`` train for real and then
replace the objective by NaN, infinity or a string (what a buggy custom trainer might
return); ``raise`` asks the real pipeline for an encoder that does not exist. The trainer
never sees the trial, so each mode is told apart by the colour space it trains on.
"""

import math

from infomin.protocols import run_candidate
from infomin.search import StudySpec

MODES = ["ok", "nan", "inf", "text", "raise"]
SPACE = {"ok": "lab", "nan": "yuv", "inf": "rgb", "text": "ycbcr", "raise": "lab"}
BAD = {"yuv": math.nan, "rgb": math.inf, "ycbcr": "0.5"}

STUDY = StudySpec(
    dataset="colorful-moving-digits",
    base_views={"kind": "channel_split", "space": "lab", "split": [[0], [1, 2]]},
    train={"epochs": 1, "batch_size": 64, "train_subset": 256, "test_subset": 128, "temperature": 0.2,
           "knn_k": 20, "device": "cpu"},
    sampler="grid",
    grid={"mode": MODES},
    pruner="none",
    n_trials=len(MODES),
    seed=0,
)


def suggest(trial):
    mode = trial.suggest_categorical("mode", MODES)
    return {"views": {"space": SPACE[mode]},
            "train": {"encoder": "no-such-encoder"} if mode == "raise" else {}}


def run(views, config, **kwargs):
    """The real pipeline, whose objective is then replaced for the bad colour spaces."""
    result = run_candidate(views, config, **kwargs)
    if views["space"] in BAD:
        result.metrics["eval/linear_acc"] = BAD[views["space"]]
    return result
