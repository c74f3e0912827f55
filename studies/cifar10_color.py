"""On real images (CIFAR-10), which colour-space split and crop scale make the best views?

The colour-space question of InfoMin (Tian et al. 2020, arXiv 2005.10243, sec. 4.1) on
the real CIFAR-10 arrays (``cifar10-npz``: cifar10_{train,test}.npz in $INFOMIN_DATA_ROOT), with
random resized crops of a searched minimum scale applied to both views before the split.
Sized for one GPU (ResNet-18, 30 epochs, full training set); on a CPU lower ``epochs`` and
``train_subset`` (``--n-trials`` and a copy of this file).
"""

from infomin import recipes
from infomin.search import StudySpec

SPACES = ("lab", "luv", "ycbcr", "yuv", "yiq", "ydbdr", "ypbpr", "xyz", "hsv", "rgb")

TRAIN = recipes.CIFAR_GPU

STUDY = StudySpec(
    dataset="cifar10-npz",
    base_views="lab_l_ab",
    train=TRAIN,
    probe="torch",
    sampler="tpe",
    n_startup_trials=8,
    pruner="hyperband",
    n_trials=24,
    seed=0,
    baselines=({"space": "lab", "lead": 0, "min_scale": 0.2},),
    fixed=recipes.comparable(TRAIN, 'cross'),
)


def suggest(trial):
    space = trial.suggest_categorical("space", list(SPACES))
    lead = trial.suggest_categorical("lead", [0, 1, 2])
    min_scale = trial.suggest_float("min_scale", 0.08, 0.8)
    rest = [c for c in (0, 1, 2) if c != lead]
    return {"views": {"kind": "pair",
                      "spatial": {"kind": "random_resized_crop", "size": 32, "scale": [min_scale, 1.0]},
                      "augment": None,
                      "split": {"kind": "channel_split", "space": space, "split": [[lead], rest]}},
            "train": {}}
