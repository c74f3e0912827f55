"""Which factors should two views share? The toy's shared-factor table (InfoMin, sec. 3.1).

On colorful-moving-digits each image has a digit, a background and a position. A view pair
re-renders one image twice, keeping the shared factors and redrawing the others and the
nuisances (:class:`infomin.data.toy.FactorPairs`). InfoMin (Tian et al. 2020, arXiv
2005.10243): "the representation learns the shared factor and discards the others"; the
digit probe is best when the views share the digit without the background. The parent
run's report tabulates the per-factor probes (``eval/linear_acc/<factor>``) of each subset.

One seed per subset at the quickstart's budget (``studies/quickstart.py``);
``repro_shared_factors`` runs three.
"""

from pathlib import Path

from infomin.search import StudySpec, load_study

SUBSETS = ("digit", "background", "position", "digit+background", "digit+position",
           "background+position", "digit+background+position")
QUICKSTART = load_study(Path(__file__).with_name("quickstart.py")).spec  # one budget for both

STUDY = StudySpec(
    dataset="colorful-moving-digits",
    base_views={"kind": "shared_factors", "shared": ["digit"]},
    train=QUICKSTART.train,
    probe=QUICKSTART.probe,
    metric="eval/linear_acc/digit",
    sampler="grid",
    grid={"shared": list(SUBSETS)},
    pruner="none",
    n_trials=len(SUBSETS),
    seed=0,
    fixed=QUICKSTART.fixed,
)


def suggest(trial):
    shared = trial.suggest_categorical("shared", list(SUBSETS))
    return {"views": {"kind": "shared_factors", "shared": shared.split("+")}, "train": {}}
