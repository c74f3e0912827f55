"""Reproduction (CPU scale): which factor does the encoder learn when views share some factors?

Question: on colorful-moving-digits (digit, background, position), a view pair re-renders
one image twice keeping a subset of the factors and resampling the others
(:class:`infomin.data.toy.FactorPairs`). For each of the 7 non-empty shared subsets, what
does a linear probe read from the frozen encoder about each factor
(``eval/linear_acc/<factor>``), and how much do the views share (I_NCE)?

Paper's finding (InfoMin, Tian et al. 2020, arXiv 2005.10243, sec. 3.1): "the
representation learns the shared factor and discards the others"; when several factors
are shared, one dominates — the easy background wins over the digit.

CPU budget (2 shared cores, 1 worker; measured 11.3 min for the 7 trials): small
ConvNet, 4 epochs, 1,536 training / 512 test images, batch 128 (NT-Xent, K = 255),
AdamW lr 2e-3, tau 0.2, one seed, no per-epoch kNN, no per-run plots::

    OMP_NUM_THREADS=2 infomin study run studies/repro_shared_factors.py --workers 1
    infomin study report repro_shared_factors

GPU scale (same study, ResNet-18 CIFAR stem, full data, 200 epochs): copy this file and set
``train={"encoder": "resnet18", "epochs": 200, "batch_size": 256, "train_subset": None,
"test_subset": None, "optimizer": "adamw", "lr": 2e-3, "temperature": 0.2}``.
"""

from infomin import recipes
from infomin.search import StudySpec

SUBSETS = ("digit", "background", "position", "digit+background", "digit+position",
           "background+position", "digit+background+position")

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
