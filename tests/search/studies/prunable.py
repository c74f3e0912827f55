"""A test study for the pruning wiring: a scorer without training whose per-epoch kNN
accuracy is the parameter ``x`` (so the third, much worse trial must be pruned).

It replaces the trainer through the study's ``run`` hook and opens its child run with
:func:`infomin.tracking.start_run`, as the pipeline does.
"""

from infomin import tracking
from infomin.protocols import CandidateResult
from infomin.search import StudySpec

STUDY = StudySpec(
    dataset="colorful-moving-digits",
    base_views={"kind": "channel_split", "space": "lab", "split": [[0], [1, 2]]},
    train={"epochs": 3},
    sampler="random",
    pruner="median",
    n_trials=3,
    baselines=({"x": 0.9}, {"x": 0.8}, {"x": 0.1}),
)


def suggest(trial):
    return {"views": {}, "train": {"lr": trial.suggest_float("x", 0.01, 1.0)}}


def run(views, config, *, experiment_id, parent_run_id, run_name, tags, on_epoch, tracking_uri):
    with tracking.start_run(experiment_id=experiment_id, parent_run_id=parent_run_id, run_name=run_name,
                            tags=tags, uri=tracking_uri) as r:
        for epoch in range(config.epochs):
            m = {"eval/knn_acc": config.lr}
            r.log_metrics(m, step=epoch)
            on_epoch(epoch, m)
    return CandidateResult(run_id=r.run_id, metrics={"eval/linear_acc": config.lr})
