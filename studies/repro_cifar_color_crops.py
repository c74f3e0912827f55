"""Reproduction (CPU scale): both sides of the reverse U, colour splits combined with crops.

Question: on the real CIFAR-10 arrays (``cifar10-npz``), take views that share less and less:
an RGB split (R | GB) and a Lab split (L | ab) of one shared crop (CMC's views), then the Lab
split of two *independent* random resized crops of shrinking scale, down to crops of 2-8 %
of the image that rarely overlap. With K, tau and encoder fixed, does linear accuracy rise and
then fall as the views' I_NCE falls, with the sweet spot between the ends?

Paper's finding (InfoMin, Tian et al. 2020, arXiv 2005.10243, sec. 4.1-4.2, figs. 5-7):
accuracy against I_NCE is a reverse U; on colour spaces alone only its falling side shows
(too much shared), and combining the split with crops and augmentation moves the views
towards the sweet spot, while views that share too little lose the label.

CPU budget (``recipes.CIFAR_CPU_SHORT``): one ConvNet-512 per view (CMC), 6 epochs over 15,000
training images, crops made at 16 px, batch 256 (cross-view InfoNCE, K = 256), SGD lr 0.1
with cosine decay, tau 0.2; the linear probe (full-batch L-BFGS) reads both encoders'
features of the whole 32 px images and is scored on the 10,000 test images; three seeds per
candidate::

    infomin study run studies/repro_cifar_color_crops.py --workers 2
    infomin study report repro_cifar_color_crops

GPU scale: copy this file and set ``RECIPE = "CIFAR_GPU"`` (crops stay at 32 px there).
"""

from infomin import recipes
from infomin.search import StudySpec

RECIPE = "CIFAR_CPU_SHORT"
TRAIN = recipes.get(RECIPE)

#: candidate -> (colour space, crop scale range, same crop for both views)
CANDIDATES = {
    "rgb shared crop": ("rgb", [0.08, 1.0], True),
    "lab shared crop": ("lab", [0.08, 1.0], True),
    "lab crops 0.2-1": ("lab", [0.2, 1.0], False),
    "lab crops 0.08-1": ("lab", [0.08, 1.0], False),
    "lab crops 0.02-0.08": ("lab", [0.02, 0.08], False),
}


def views(name: str) -> dict:
    """The view spec of candidate ``name`` (the study's recipe sets the crops' training size)."""
    space, scale, shared = CANDIDATES[name]
    return {
        "kind": "pair",
        "spatial": {"kind": "random_resized_crop", "size": 32, "scale": scale, "flip": 0.5,
                    "shared": shared},
        "split": {"kind": "channel_split", "space": space, "split": [[0], [1, 2]]},
    }


STUDY = StudySpec(
    dataset="cifar10-npz",
    base_views=views("lab crops 0.08-1"),
    recipe=RECIPE,   # its TrainConfig, and crops made at its training resolution (16 px)
    probe="torch",
    sampler="grid",
    grid={"views": list(CANDIDATES)},
    pruner="none",
    n_trials=len(CANDIDATES),
    repeats=3,
    seed=0,
    fixed=recipes.comparable(TRAIN, "cross", split="channel 1 | channels 2:3"),
)


def suggest(trial):
    name = trial.suggest_categorical("views", list(CANDIDATES))
    return {"views": views(name), "train": {}}
