"""Reproduction (CPU scale): where is the colour-space sweet spot on real CIFAR-10?

Question: split ten colour spaces into channel 1 | channels 2:3 (view 1 = the first
channel, view 2 = the other two; CMC-style, one encoder per view) and train on the real
CIFAR-10 arrays (``cifar10-npz``: ``cifar10_train.npz`` trains the encoder and fits the
probe, ``cifar10_test.npz`` scores it). With K, tau and encoder fixed the I_NCE values
compare: does linear accuracy trace a reverse U of I_NCE, and where do YDbDr and Lab land?

Paper's finding (InfoMin, Tian et al. 2020, arXiv 2005.10243, sec. 4.1, fig. 5, STL-10):
accuracy against I_NCE of the colour-space splits is a reverse U; YDbDr and Lab lie near
its top (the sweet spot), RGB-like splits that share much (or little) score lower.

CPU budget (2 shared cores, 1 worker; measured 18.7 min for the 10 trials, 1-3.5 min a trial with the load): small
ConvNet x 2 (one per view), 4 epochs on a 4,096-image training subset, probe scored on
2,000 test images, batch 256 (cross-view InfoNCE, K = 256), AdamW lr 2e-3, tau 0.2, one
seed, no augmentation (the split is the only view difference), no per-epoch kNN::

    OMP_NUM_THREADS=2 infomin study run studies/repro_cifar_color.py --workers 1
    infomin study report repro_cifar_color

GPU scale (same study, ResNet-18 CIFAR stem, full data, 200 epochs): copy this file and set
``train={"encoder": "resnet18", "epochs": 200, "batch_size": 256, "train_subset": None,
"test_subset": None, "optimizer": "adamw", "lr": 2e-3, "temperature": 0.2}``.
"""

from infomin import recipes
from infomin.search import StudySpec

SPACES = ("lab", "luv", "ycbcr", "yuv", "yiq", "ydbdr", "ypbpr", "xyz", "hsv", "rgb")

TRAIN = recipes.CIFAR_CPU_SMALL

STUDY = StudySpec(
    dataset="cifar10-npz",
    base_views="lab_l_ab",
    train=TRAIN,
    sampler="grid",
    grid={"space": list(SPACES)},
    pruner="none",
    n_trials=len(SPACES),
    seed=0,
    fixed=recipes.comparable(TRAIN, 'cross', split='channel 1 | channels 2:3'),
)


def suggest(trial):
    space = trial.suggest_categorical("space", list(SPACES))
    return {"views": {"kind": "channel_split", "space": space, "split": [[0], [1, 2]]}, "train": {}}
