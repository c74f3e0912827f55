"""How far apart should two patches be? The patch-distance sweep of InfoMin.

"we randomly crop two patches of the same size from the same image ... and vary the
distance between their centres" (Tian et al. 2020, arXiv 2005.10243, sec. 3.2): close
patches share much (including nuisances), far ones little; accuracy peaks in between.
Two 16 px patches of the 32 px toy images, centres 0 to 22 px apart (the largest that
fits is 16 sqrt 2 = 22.6 px), at fixed K (batch 256), tau (0.2) and encoder (convnet).
"""

from infomin import recipes
from infomin.search import StudySpec

TRAIN = recipes.TOY_CPU_LONG

STUDY = StudySpec(
    dataset="colorful-moving-digits",
    base_views="patch_distance",
    train=TRAIN,
    sampler="tpe",
    n_startup_trials=6,
    pruner="median",
    n_trials=16,
    seed=0,
    baselines=({"distance": 0.0}, {"distance": 8.0}, {"distance": 20.0}),
    fixed=recipes.comparable(TRAIN, 'ntxent', patch='16 px'),
)


def suggest(trial):
    distance = trial.suggest_float("distance", 0.0, 22.0)
    return {"views": {"kind": "patch_distance", "size": 16, "distance": distance, "jitter": 0.0}, "train": {}}
