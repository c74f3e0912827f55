"""Which factors should two views share? The toy's shared-factor table (InfoMin, sec. 3.1).

On colorful-moving-digits each image has a digit, a background and a position. A view pair
re-renders one image twice, keeping the shared factors and resampling the others
(:class:`infomin.data.toy.FactorPairs`). InfoMin (Tian et al. 2020, arXiv 2005.10243):
"the representation learns the shared factor and discards the others"; the digit probe
is best when the views share the digit only. The parent run's report tabulates the
per-factor probes (``eval/linear_acc/<factor>``) of each subset.
"""

from infomin.search import StudySpec

SUBSETS = ("digit", "background", "position", "digit+background", "digit+position",
           "background+position", "digit+background+position")

STUDY = StudySpec(
    dataset="colorful-moving-digits",
    base_views={"kind": "shared_factors", "shared": ["digit"]},
    train={"epochs": 5, "batch_size": 256, "train_subset": 4096, "test_subset": 1024,
           "temperature": 0.2, "encoder": "convnet"},
    sampler="grid",
    grid={"shared": list(SUBSETS)},
    pruner="none",
    n_trials=len(SUBSETS),
    seed=0,
    fixed={"K": "batch 256", "tau": "0.2", "encoder": "convnet"},
)


def suggest(trial):
    shared = trial.suggest_categorical("shared", list(SUBSETS))
    return {"views": {"kind": "shared_factors", "shared": shared.split("+")}, "train": {}}
