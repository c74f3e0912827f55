"""Reproduction (CPU scale): where is the colour-space sweet spot on real CIFAR-10?

Question: split ten colour spaces into channel 1 | channels 2:3 (view 1 = the first
channel, view 2 = the other two; CMC-style, one encoder per view) of one random resized
crop shared by both views (CMC's views), and train on the real CIFAR-10 arrays
(``cifar10-npz``: ``cifar10_train.npz`` trains the encoder and fits the probe,
``cifar10_test.npz`` scores it). With K, tau and encoder fixed the I_NCE values compare:
does linear accuracy trace a reverse U of I_NCE, and where do YDbDr and Lab land?

Paper's finding (InfoMin, Tian et al. 2020, arXiv 2005.10243, sec. 4.1, fig. 5, STL-10):
accuracy against I_NCE of the colour-space splits is a reverse U; YDbDr and Lab lie near
its top (the sweet spot), RGB-like splits that share much (or little) score lower.

CPU budget (``recipes.CIFAR_CPU_SHORT``): one ConvNet-512 per view, 6 epochs over 15,000
training images, the shared crop (scale 0.08-1, flip) made at 16 px, batch 256 (cross-view
InfoNCE, K = 256), SGD lr 0.1 with cosine decay, tau 0.2; the linear probe (full-batch
L-BFGS) reads both encoders' features of the whole 32 px images and is scored on the 10,000
test images; three seeds per space::

    infomin study run studies/repro_cifar_color.py --workers 2
    infomin study report repro_cifar_color

The Lab and RGB rows are the same views, recipe and seeds as the "shared crop" rows of
``repro_cifar_color_crops.py``, which adds views that share less than any colour split.

GPU scale: copy this file and set ``RECIPE = "CIFAR_GPU"`` (ResNet-18 CIFAR stem, crops at
32 px).
"""

from infomin import recipes
from infomin.search import StudySpec

SPACES = ("lab", "luv", "ycbcr", "yuv", "yiq", "ydbdr", "ypbpr", "xyz", "hsv", "rgb")

RECIPE = "CIFAR_CPU_SHORT"
TRAIN = recipes.get(RECIPE)


def views(space: str) -> dict:
    """The view spec of colour ``space`` (the study's recipe sets the crop's training size)."""
    return {
        "kind": "pair",
        "spatial": {"kind": "random_resized_crop", "size": 32, "scale": [0.08, 1.0], "flip": 0.5,
                    "shared": True},
        "split": {"kind": "channel_split", "space": space, "split": [[0], [1, 2]]},
    }


STUDY = StudySpec(
    dataset="cifar10-npz",
    base_views=views("lab"),
    recipe=RECIPE,   # its TrainConfig, and the crop made at its training resolution (16 px)
    probe="torch",
    sampler="grid",
    grid={"space": list(SPACES)},
    pruner="none",
    n_trials=len(SPACES),
    repeats=3,
    seed=0,
    fixed=recipes.comparable(TRAIN, "cross", split="channel 1 | channels 2:3"),
)


def suggest(trial):
    space = trial.suggest_categorical("space", list(SPACES))
    return {"views": views(space), "train": {}}
