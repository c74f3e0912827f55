"""A test study with repeats: Lab, YUV and RGB splits of the toy, two seeds each (1 epoch on 256 images)."""

from infomin.search import StudySpec

STUDY = StudySpec(
    dataset="colorful-moving-digits",
    base_views={"kind": "channel_split", "space": "lab", "split": [[0], [1, 2]]},
    train={"epochs": 1, "batch_size": 64, "train_subset": 256, "test_subset": 128, "temperature": 0.2,
           "knn_k": 20, "device": "cpu"},
    sampler="grid",
    grid={"space": ["lab", "yuv", "rgb"]},
    pruner="none",
    n_trials=3,
    repeats=2,
    seed=0,
)


def suggest(trial):
    return {"views": {"space": trial.suggest_categorical("space", ["lab", "yuv", "rgb"])}, "train": {}}
