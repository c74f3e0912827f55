"""Which colour space, split into one channel and the other two, gives the best views?

CMC (Tian et al. 2019, arXiv 1906.05849) contrasts L with ab in Lab; InfoMin (Tian et al.
2020, arXiv 2005.10243, sec. 4.1) compares splits of several colour spaces and finds the
downstream accuracy is a reverse U of the information the two channel groups share. This
study sweeps all eleven spaces of :mod:`infomin.views.color` (lab, luv, ycbcr, yuv, yiq,
ydbdr, ypbpr, xyz, hsv, hed, rgb) and which channel stands alone, on the toy digits, at a
fixed K (batch 256), tau (0.2) and encoder (convnet), so I_NCE values are comparable.
"""

from infomin import recipes
from infomin.search import StudySpec

SPACES = ("lab", "luv", "ycbcr", "yuv", "yiq", "ydbdr", "ypbpr", "xyz", "hsv", "hed", "rgb")
LEADS = (0, 1, 2)  # the channel that forms view 1; the other two form view 2

TRAIN = recipes.TOY_CPU_LONG

STUDY = StudySpec(
    dataset="colorful-moving-digits",
    base_views="lab_l_ab",
    train=TRAIN,
    sampler="grid",
    grid={"space": list(SPACES), "lead": list(LEADS)},
    pruner="median",
    n_trials=len(SPACES) * len(LEADS),
    seed=0,
    fixed=recipes.comparable(TRAIN, 'cross'),
)


def suggest(trial):
    space = trial.suggest_categorical("space", list(SPACES))
    lead = trial.suggest_categorical("lead", list(LEADS))
    rest = [c for c in (0, 1, 2) if c != lead]
    return {"views": {"kind": "channel_split", "space": space, "split": [[lead], rest]}, "train": {}}
