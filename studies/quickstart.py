"""Quickstart: what must two views share for the encoder to learn the digit?

The InfoMin toy in about five minutes on 2 CPU cores (Tian et al. 2020, arXiv 2005.10243,
§3.1). Each colorful-moving-digits image has three factors: a digit, a background and a
position. A view pair re-renders one image twice, keeping the shared factors and
redrawing the rest, the digit's colour and the background's tones included
(:class:`infomin.views.factors.FactorPairs`). The paper's finding, which this study lets you
check: the encoder learns what the views share. Views that share only the digit teach
the digit; add the background to what they share and the background, the easier
factor, wins: the digit probe falls back towards an untrained encoder's. The per-factor
probes (``eval/linear_acc/<factor>``) of every trial are in the report.

Five candidates (trials), three seeds each (``repeats=3``: 15 trainings): two epochs of the small ConvNet over 3,072
toy images (96 steps of batch 64), probes fitted on those 3,072 and scored on the 1,000
test images; K, tau and the encoder are fixed so the I_NCE values compare. docs/toy.md has
the measured table, the untrained encoder's floor and why this budget.

    infomin study run studies/quickstart.py --workers 2
    infomin study report quickstart
"""

from infomin import recipes
from infomin.search import StudySpec

SUBSETS = ("digit", "digit+background", "background", "position", "digit+position")

TRAIN = recipes.TOY_CPU

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
    repeats=3,   # seeds 0, 1, 2 of each candidate: the report gives intervals and tests
    seed=0,
    fixed=recipes.comparable(TRAIN, 'ntxent'),
)


def suggest(trial):
    shared = trial.suggest_categorical("shared", list(SUBSETS))
    return {"views": {"kind": "shared_factors", "shared": shared.split("+")}, "train": {}}
