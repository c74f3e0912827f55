"""Reproduction (CPU scale): which factor does the encoder learn when views share some factors?

Question: on colorful-moving-digits (digit, background, position), a view pair re-renders
one image twice keeping a subset of the factors and redrawing the others and the
nuisances (the digit's colour, the background's tones; :class:`infomin.views.factors.FactorPairs`).
For each of the 7 non-empty shared subsets, what does a linear probe read from the frozen
encoder about each factor (``eval/linear_acc/<factor>``), and how much do the views share
(I_NCE)?

Paper's finding (InfoMin, Tian et al. 2020, arXiv 2005.10243, sec. 3.1): "the
representation learns the shared factor and discards the others"; when several factors
are shared, one dominates: the easy background wins over the digit.

CPU budget: the quickstart's (``studies/quickstart.py``: small ConvNet, 2 epochs over 3,072
training images, 1,000 test images, batch 64, NT-Xent K = 127, AdamW lr 6e-3, tau 0.2),
three seeds per subset (7 trials x ``repeats=3``)::

    infomin study run studies/repro_shared_factors.py --workers 2
    infomin study report repro_shared_factors

docs/toy.md has the measured table. GPU scale (same study, ResNet-18 CIFAR stem, all 5,000
training images, more epochs): copy this file and override ``train``.
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
    repeats=3,   # seeds 0, 1, 2 of each candidate: the report gives intervals and tests
    seed=0,
    fixed=recipes.comparable(TRAIN, 'ntxent'),
)


def suggest(trial):
    shared = trial.suggest_categorical("shared", list(SUBSETS))
    return {"views": {"kind": "shared_factors", "shared": shared.split("+")}, "train": {}}
