"""Reproduction (CPU scale): do semi-supervised learned views beat their hand-designed start on CIFAR-10?

Question: InfoMin's semi-supervised view learner turns the RGB R|GB or YDbDr Y|DbDr split into
a learned flow colour transform g (min over g of I_NCE between its channel splits, plus
classifier heads on both views so both keep the label). Frozen, do g's views train a better
encoder than the split g started from? This study trains fresh encoders (no heads) on both,
three seeds each, and probes them on the real CIFAR-10 arrays (``cifar10-npz``).

Paper's finding (InfoMin, Tian et al. 2020, arXiv 2005.10243, sec. 4.2, STL-10): the
semi-supervised learned views beat their start for both RGB and YDbDr.

The six generators ship in ``views/learned/cifar10_semi_{rgb,ydbdr}_s{0,1,2}`` (their YAML
records the run and the command); they were learned with (22 and 19 min on 2 shared cores)::

    for start in rgb ydbdr; do
      infomin learn-views --dataset cifar10-npz --mode semi-supervised --start $start --repeats 3 \\
        --epochs 4 --labels 1000 --train-subset 4096 --test-subset 2000 --batch-size 128 \\
        --out learned_$start.yaml --experiment repro-learned-views-cifar
    done

and this study re-scores them (12 trials: 2 starts x 3 seeds, 6 learned generators each with
its own seed), so a reader reruns the comparison without rerunning the learner. Budget as in
the learner's own protocol: small ConvNet per view, 4 epochs on a 4,096-image training subset,
probe scored on 2,000 test images, batch 128 (cross-view InfoNCE, K = 128), Adam, tau 0.1::

    OMP_NUM_THREADS=2 infomin study run studies/repro_learned_views_cifar.py --workers 1
    infomin study report repro_learned_views_cifar

GPU scale: learn with ``--train-subset 0 --test-subset 0 --epochs 100 --batch-size 256
--labels 5000 --encoder resnet18 --device cuda`` and set ``train={"encoder": "resnet18",
"epochs": 200, "batch_size": 256, "train_subset": None, "test_subset": None}`` here.
"""

from infomin.search import StudySpec

STARTS = {"rgb": [[0], [1, 2]], "ydbdr": [[0], [1, 2]]}
SEEDS = (0, 1, 2)
CANDIDATES = tuple([f"{s}/seed{k}" for s in STARTS for k in SEEDS]
                   + [f"learned-{s}/seed{k}" for s in STARTS for k in SEEDS])

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
        spec = {"source": f"learned/cifar10_semi_{views.removeprefix('learned-')}_s{seed}"}
    else:
        spec = {"kind": "channel_split", "space": views, "split": STARTS[views]}
    return {"views": spec, "train": {"seed": int(seed)}}
