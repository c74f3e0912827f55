"""Reproduction (CPU scale) on real CIFAR-10: how does tau trade uniformity against tolerance?

Question: with the SimCLR views, the batch (K) and the encoder fixed, sweep tau over
0.05..1.0 on the real CIFAR-10 arrays (``cifar10-npz``: train on ``cifar10_train.npz``,
score the probe on ``cifar10_test.npz``) and read the linear probe accuracy, the
uniformity (Wang & Isola 2020, arXiv 2005.10242: log E exp(-2 |z_i - z_j|^2), lower = more
uniform) and the tolerance (mean similarity of same-class pairs). I_NCE is not comparable
across tau, so read accuracy, uniformity and tolerance against tau. The toy version is
``studies/repro_temperature.py``.

Paper's finding (Wang & Liu 2021, arXiv 2012.09740, CIFAR-10): uniformity becomes weaker
(the uniformity loss rises) and tolerance rises as tau grows; accuracy peaks in between
(near tau = 0.3 on CIFAR-10).

CPU budget (``recipes.CIFAR_CPU_SHORT``): the ConvNet-512, 6 epochs over 15,000 training
images, the SimCLR views with crops made at 16 px, batch 256 (NT-Xent, K = 511), SGD lr 0.1 with
cosine decay; the linear probe (full-batch L-BFGS) is scored on the 10,000 test images; three
seeds per tau::

    infomin study run studies/repro_temperature_cifar.py --workers 2
    infomin study report repro_temperature_cifar

GPU scale (same study, ResNet-18 CIFAR stem, LARS, all 50,000 training images): copy this
file and set ``RECIPE = "CIFAR_GPU"`` (add ``train={"epochs": 200}`` for the paper's length).
"""

from infomin import recipes
from infomin.search import StudySpec

TAUS = (0.05, 0.1, 0.2, 0.5, 1.0)

RECIPE = "CIFAR_CPU_SHORT"
TRAIN = recipes.get(RECIPE)

STUDY = StudySpec(
    dataset="cifar10-npz",
    base_views="simclr",
    recipe=RECIPE,   # also makes the SimCLR preset's crops at the recipe's training resolution
    probe="torch",
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
