"""Quickstart: what must two views share for the encoder to learn the digit?

The InfoMin toy in a few minutes on 2 CPU cores (Tian et al. 2020, arXiv 2005.10243,
§3.1). Each colorful-moving-digits image has three factors: a digit, a background and a
position. A view pair re-renders one image twice, keeping the shared factors and
resampling the rest (:class:`infomin.data.toy.FactorPairs`), so the factors the views
share set their mutual information: nothing useful (position only), the digit alone,
or everything. The paper's finding, which this study lets you check: the encoder learns
what the views share, so the digit probe is best when the views share the digit and
little else — the sweet spot of accuracy against I_NCE — and sharing everything lets
the easy background win.

Five trials (a grid over the shared subsets), four epochs of the small ConvNet on 1,536
toy images each; K, tau and the encoder are fixed so the I_NCE values compare.

    infomin study run studies/quickstart.py --workers 2
    infomin study report quickstart
"""

from infomin import recipes
from infomin.search import StudySpec

SUBSETS = ("position", "digit", "digit+position", "background", "digit+background+position")

TRAIN = recipes.TOY_CPU

STUDY = StudySpec(
    dataset="colorful-moving-digits",
    base_views={"kind": "shared_factors", "shared": ["digit"]},
    train=TRAIN,
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
