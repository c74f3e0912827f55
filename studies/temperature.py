"""How does the temperature tau trade uniformity against tolerance, and where is accuracy best?

Wang & Liu 2021 (arXiv 2012.09740): "a small temperature ... tends to separate
semantically similar samples (uniformity) ... a large one makes the loss tolerant to
them"; accuracy peaks in between. Wang & Isola 2020 (arXiv 2005.10242) define the
alignment and uniformity the report tabulates next to tolerance. tau is sampled
log-uniformly in [0.05, 1.0] with the SimCLR views fixed. Note: I_NCE is not comparable
across tau (the report warns), so read this study as accuracy, uniformity and tolerance
against tau (``infomin study show temperature``, the parent run's plots).
"""

from infomin.search import StudySpec

STUDY = StudySpec(
    dataset="colorful-moving-digits",
    base_views="simclr",
    train={"epochs": 5, "batch_size": 256, "train_subset": 4096, "test_subset": 1024, "encoder": "convnet"},
    sampler="tpe",
    n_startup_trials=5,
    pruner="median",
    n_trials=12,
    seed=0,
    baselines=({"temperature": 0.07}, {"temperature": 0.2}, {"temperature": 0.5}),
    fixed={"K": "batch 256 (NT-Xent: K = 2N - 1)", "views": "simclr", "encoder": "convnet"},
)


def suggest(trial):
    tau = trial.suggest_float("temperature", 0.05, 1.0, log=True)
    return {"views": {}, "train": {"temperature": tau}}
