"""Reproduction (CPU scale): how far apart should two patches be, on real CIFAR-10?

Question: crop two 16 px patches from the same 32 px CIFAR-10 image with their centres a
fixed distance apart (0 to 20 px; 22.6 px is the most that fits), train one shared encoder
on the pairs (NT-Xent), and probe the frozen encoder on the real labels (``cifar10-npz``:
``cifar10_train.npz`` trains the encoder and fits the probe, ``cifar10_test.npz`` scores
it). With K, tau and encoder fixed the I_NCE values compare: does accuracy trace a reverse
U of the distance (and of I_NCE), and where is its peak?

Paper's finding (InfoMin, Tian et al. 2020, arXiv 2005.10243, sec. 3.2, fig. 3, DIV2K
patches, STL-10 probe): close patches share much, including nuisances; far ones share
little; accuracy against I_NCE is a reverse U whose top lies at an intermediate distance.

CPU budget (``recipes.CIFAR_CPU_SHORT``): the ConvNet-512 shared by both views, 6 epochs over
15,000 training images, batch 256 (NT-Xent, K = 511), SGD lr 0.1 with cosine decay, tau 0.2, no
other augmentation (the patch offset is the only view difference); the linear probe (full-batch
L-BFGS) reads the features of the whole 32 px images and is scored on the 10,000 test images;
three seeds per distance::

    infomin study run studies/repro_crop_distance_cifar.py --workers 2
    infomin study report repro_crop_distance_cifar

GPU scale (same study, ResNet-18 CIFAR stem, LARS, all 50,000 training images): copy this
file and set ``RECIPE = "CIFAR_GPU"`` (add ``train={"epochs": 200}`` for the paper's length).
"""

from infomin import recipes
from infomin.search import StudySpec

DISTANCES = (0.0, 8.0, 12.0, 16.0, 20.0)

RECIPE = "CIFAR_CPU_SHORT"   # patches are 16 px at any recipe: no view overrides to apply
TRAIN = recipes.get(RECIPE)

STUDY = StudySpec(
    dataset="cifar10-npz",
    base_views="patch_distance",
    recipe=RECIPE,
    probe="torch",
    sampler="grid",
    grid={"distance": list(DISTANCES)},
    pruner="none",
    n_trials=len(DISTANCES),
    repeats=3,
    seed=0,
    fixed=recipes.comparable(TRAIN, 'ntxent', patch='16 px of 32 px'),
)


def suggest(trial):
    distance = trial.suggest_categorical("distance", list(DISTANCES))
    return {"views": {"kind": "patch_distance", "size": 16, "distance": distance, "jitter": 0.0},
            "train": {}}
