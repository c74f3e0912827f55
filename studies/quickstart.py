"""Quickstart: which colour-space channel split of the toy digits gives the best linear probe?

Six channel splits (one channel vs the other two, CMC style) of colorful-moving-digits,
two epochs of the small ConvNet on 1,024 images each: a few minutes on 2 CPU cores.
K, tau and the encoder are fixed, so the trials' I_NCE values are comparable and the
report can place them on one accuracy-vs-I_NCE curve (Tian et al. 2020, arXiv 2005.10243).

    infomin study run studies/quickstart.py
    infomin study report quickstart
"""

from infomin.search import StudySpec

SPACES = ("lab", "yuv", "ycbcr", "hsv", "xyz", "rgb")

STUDY = StudySpec(
    dataset="colorful-moving-digits",
    base_views="lab_l_ab",
    train={"epochs": 2, "batch_size": 128, "train_subset": 1024, "test_subset": 512,
           "temperature": 0.2, "encoder": "convnet", "lr": 0.1},
    sampler="grid",
    grid={"space": list(SPACES)},
    pruner="none",
    n_trials=len(SPACES),
    seed=0,
    fixed={"K": "batch 128 (cross-view InfoNCE: K = 128)", "tau": "0.2", "encoder": "convnet"},
)


def suggest(trial):
    space = trial.suggest_categorical("space", list(SPACES))
    return {"views": {"kind": "channel_split", "space": space, "split": [[0], [1, 2]]}, "train": {}}
