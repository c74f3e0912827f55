"""A test grid study without training (sleepy.py's scorer): every grid point must run exactly
once, however many coordinators and workers share it."""

from pathlib import Path

from infomin.search import StudySpec
from infomin.search.spec import load_study

STUDY = StudySpec(
    dataset="colorful-moving-digits",
    base_views={"kind": "channel_split", "space": "lab", "split": [[0], [1, 2]]},
    sampler="grid",
    grid={"x": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]},
    pruner="none",
    n_trials=6,
    seed=0,
)
run = load_study(Path(__file__).with_name("sleepy.py")).run


def suggest(trial):
    return {"views": {}, "train": {"lr": trial.suggest_float("x", 0.01, 1.0)}}
