"""A test study whose trials last several epochs, so a worker can be killed mid-trial."""

from infomin.search import StudySpec

STUDY = StudySpec(
    dataset="colorful-moving-digits",
    base_views={"kind": "channel_split", "space": "lab", "split": [[0], [1, 2]]},
    train={"epochs": 3, "batch_size": 64, "train_subset": 256, "test_subset": 128, "temperature": 0.2,
           "knn_k": 20, "device": "cpu"},
    sampler="random",
    pruner="none",
    n_trials=3,
    seed=0,
)


def suggest(trial):
    return {"views": {"space": trial.suggest_categorical("space", ["lab", "yuv", "rgb", "ycbcr"])}, "train": {}}
