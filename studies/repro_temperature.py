"""Reproduction (CPU scale): how does the temperature tau trade uniformity against tolerance?

Question: with the SimCLR views, the batch (K) and the encoder fixed, sweep tau over
0.05..1.0 on colorful-moving-digits and read the digit probe accuracy, the uniformity
(Wang & Isola 2020, arXiv 2005.10242: log E exp(-2 |z_i - z_j|^2), lower = more uniform)
and the tolerance (mean similarity of same-class pairs) of the frozen representation.
I_NCE is not comparable across tau, so read accuracy, uniformity and tolerance against tau.

Paper's finding (Wang & Liu 2021, arXiv 2012.09740, CIFAR-10): uniformity becomes weaker
(the uniformity loss rises) and tolerance rises as tau grows; accuracy peaks in between
(near tau = 0.3 on CIFAR-10).

CPU budget: the quickstart's (``recipes.TOY_CPU``: small ConvNet, 2 epochs over 3,072
training images, 1,000 test images, batch 64, NT-Xent K = 127, AdamW lr 6e-3), the digit
probe, tau in {0.05, 0.1, 0.2, 0.5, 1.0}, three seeds per tau::

    infomin study run studies/repro_temperature.py --workers 2
    infomin study report repro_temperature

GPU scale (same study on CIFAR-10, ResNet-18 CIFAR stem, full data, 200 epochs): copy this
file and set ``dataset="cifar10-npz"``, ``train={"encoder": "resnet18", "epochs": 200,
"batch_size": 256, "train_subset": None, "test_subset": None, "optimizer": "adamw",
"lr": 2e-3}``.
"""

from infomin import recipes
from infomin.search import StudySpec

TAUS = (0.05, 0.1, 0.2, 0.5, 1.0)

TRAIN = recipes.TOY_CPU  # the quickstart's budget

STUDY = StudySpec(
    dataset="colorful-moving-digits",
    base_views="simclr",
    train=TRAIN,
    probe=recipes.TOY_PROBE,
    metric="eval/linear_acc/digit",
    sampler="grid",
    grid={"temperature": list(TAUS)},
    pruner="none",
    n_trials=len(TAUS),
    repeats=3,
    seed=0,
    fixed=recipes.comparable(TRAIN, 'ntxent', tau='the question (varies)', views='simclr'),
)


def suggest(trial):
    tau = trial.suggest_categorical("temperature", list(TAUS))
    return {"views": {}, "train": {"temperature": tau}}
