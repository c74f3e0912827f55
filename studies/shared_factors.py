"""Which factors should two views share? The toy's shared-factor table (InfoMin, sec. 3.1).

On colorful-moving-digits each image has a digit, a background and a position. A view pair
re-renders one image twice, keeping the shared factors and redrawing the others and the
nuisances (:class:`infomin.views.factors.FactorPairs`). InfoMin (Tian et al. 2020, arXiv
2005.10243): "the representation learns the shared factor and discards the others"; the
digit probe is best when the views share the digit without the background. The parent
run's report tabulates the per-factor probes (``eval/linear_acc/<factor>``) of each subset.

One seed per subset at the quickstart's budget (``studies/quickstart.py``);
``repro_shared_factors`` runs three.
"""

from infomin import recipes
from infomin.search import StudySpec

SUBSETS = ("digit", "background", "position", "digit+background", "digit+position",
           "background+position", "digit+background+position")

TRAIN = recipes.TOY_CPU  # the quickstart's budget

STUDY = StudySpec(
    dataset="colorful-moving-digits",
    base_views={"kind": "shared_factors", "shared": ["digit"]},
    train=TRAIN,
    probe=recipes.TOY_PROBE,
    metric="eval/linear_acc/digit",
    sampler="grid",
    grid={"shared": list(SUBSETS)},
    pruner="none",
    n_trials=len(SUBSETS),
    seed=0,
    fixed=recipes.comparable(TRAIN, 'ntxent'),
)


def suggest(trial):
    shared = trial.suggest_categorical("shared", list(SUBSETS))
    return {"views": {"kind": "shared_factors", "shared": shared.split("+")}, "train": {}}
