"""Reproduction (CPU scale): do semi-supervised learned views beat their hand-designed start on CIFAR-10?

Question: InfoMin's semi-supervised view learner turns the RGB R|GB or YDbDr Y|DbDr split (or,
with the authors' settings, the RGB split of two different crops) into a learned flow colour
transform g (min over g of I_NCE between its channel splits, plus
classifier heads on both views so both keep the label). Frozen, do g's views train a better
encoder than the split g started from? This study trains fresh encoders (no heads) on both,
three seeds each, and probes them on the real CIFAR-10 arrays (``cifar10-npz``).

Paper's finding (InfoMin, Tian et al. 2020, arXiv 2005.10243, sec. 4.2, STL-10): the
semi-supervised learned views beat their start for both RGB and YDbDr.

The nine generators ship in ``views/learned/cifar10_semi_{rgb,ydbdr,rgb_authors}_s{0,1,2}``
(their YAML records the run and the command); they were learned with::

    for start in rgb ydbdr; do
      infomin learn-views --dataset cifar10-npz --mode semi-supervised --start $start --repeats 3 \\
        --epochs 4 --labels 1000 --train-subset 4096 --test-subset 2000 --batch-size 128 \\
        --out learned_$start.yaml --experiment repro-learned-views-cifar
    done
    infomin learn-views --recipe authors --dataset cifar10-npz --mode semi-supervised --start rgb \\
      --repeats 3 --epochs 4 --labels 1000 --train-subset 4096 --test-subset 2000 --batch-size 128 \\
      --out learned_rgb_authors.yaml --experiment repro-learned-views-cifar-authors

and this study re-scores them (18 trials: 3 starts x 3 seeds, 9 learned generators each with
its own seed), so a reader reruns the comparison without rerunning the learner. Budget as in
the learner's own protocol: small ConvNet per view, 4 epochs on a 4,096-image training subset,
probe scored on 2,000 test images, batch 128 (cross-view InfoNCE, K = 128), Adam, tau 0.1::

    infomin study run studies/repro_learned_views_cifar.py --workers 2
    infomin study report repro_learned_views_cifar

GPU scale: learn with ``--train-subset 0 --test-subset 0 --epochs 100 --batch-size 256
--labels 5000 --encoder resnet18 --device cuda`` and set ``train={"encoder": "resnet18",
"epochs": 200, "batch_size": 256, "train_subset": None, "test_subset": None}`` here.
"""

from infomin.search import StudySpec

SEEDS = (0, 1, 2)
#: hand-designed start views -> the learned generators' preset stem (``views/learned/<stem>_s<seed>``)
STARTS = {
    "rgb": "cifar10_semi_rgb",
    "ydbdr": "cifar10_semi_ydbdr",
    "rgb-crops": "cifar10_semi_rgb_authors",
}
CANDIDATES = tuple([f"{s}/seed{k}" for s in STARTS for k in SEEDS]
                   + [f"learned-{s}/seed{k}" for s in STARTS for k in SEEDS])


def start_views(name: str) -> dict:
    """The hand-designed views a learner started from: a crop-less colour split, or (``rgb-crops``,
    the authors' views) the RGB split of two different random resized crops."""
    split = {"kind": "channel_split", "space": name.removesuffix("-crops"), "split": [[0], [1, 2]]}
    if not name.endswith("-crops"):
        return split
    return {"kind": "pair", "split": split,
            "spatial": {"kind": "random_resized_crop", "size": 32, "scale": [0.2, 1.0], "flip": 0.5,
                        "shared": False}}


STUDY = StudySpec(
    dataset="cifar10-npz",
    base_views="ydbdr_y_dbdr",
    train={"epochs": 4, "batch_size": 128, "train_subset": 4096, "test_subset": 2000,
           "temperature": 0.1, "encoder": "convnet", "eval_every": 0, "plots": False},
    sampler="grid",
    grid={"candidate": list(CANDIDATES)},
    pruner="none",
    n_trials=len(CANDIDATES),
    seed=0,
    fixed={"K": "batch 128 (cross-view InfoNCE, K = 128)", "tau": "0.1", "encoder": "convnet x 2",
           "split": "channel 1 | channels 2:3"},
)


def suggest(trial):
    candidate = trial.suggest_categorical("candidate", list(CANDIDATES))
    views, seed = candidate.split("/seed")
    if views.startswith("learned-"):
        spec = {"source": f"learned/{STARTS[views.removeprefix('learned-')]}_s{seed}"}
    else:
        spec = start_views(views)
    return {"views": spec, "train": {"seed": int(seed)}}
