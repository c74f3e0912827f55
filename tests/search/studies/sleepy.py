"""A test study whose trials take a known time without training: each epoch sleeps, logs to
its MLflow run and reports to Optuna, like the real pipeline (so fault tests stay cheap).

``INFOMIN_TEST_EPOCHS`` and ``INFOMIN_TEST_EPOCH_S`` set the length of a trial (default 2
epochs of 0.2 s). The objective is the continuous parameter ``x``, so two trials with the same
parameters can only come from samplers that drew the same random numbers.
"""

import os
import time

from infomin import tracking
from infomin.protocols import CandidateResult
from infomin.search import StudySpec

STUDY = StudySpec(
    dataset="colorful-moving-digits",
    base_views={"kind": "channel_split", "space": "lab", "split": [[0], [1, 2]]},
    sampler="random",
    pruner="none",
    n_trials=4,
    seed=0,
)


def suggest(trial):
    return {"views": {}, "train": {"lr": trial.suggest_float("x", 0.01, 1.0)}}


def run(views, config, *, experiment_id, parent_run_id, run_name, tags, on_epoch, tracking_uri):
    epochs = int(os.environ.get("INFOMIN_TEST_EPOCHS", "2"))
    epoch_s = float(os.environ.get("INFOMIN_TEST_EPOCH_S", "0.2"))
    with tracking.start_run(experiment_id=experiment_id, parent_run_id=parent_run_id, run_name=run_name,
                            tags=tags, uri=tracking_uri) as r:
        for epoch in range(epochs):
            time.sleep(epoch_s)
            m = {"eval/knn_acc": config.lr, "train/loss": 1.0 / (epoch + 1)}
            r.log_metrics(m, step=epoch)
            on_epoch(epoch, m)
        r.log_metrics({"eval/linear_acc": config.lr}, step=epochs)
    return CandidateResult(run_id=r.run_id, metrics={"eval/linear_acc": config.lr})
