"""Study machinery overhead per trial, and the quickstart's trials per minute.

1. Overhead: a study whose trainer does no training (a ``run`` hook that opens the child
   MLflow run and logs the metrics a real candidate logs) measures what infomin adds per
   trial: the budget gate, Optuna's ask/tell and heartbeat, user attributes, the MLflow run
   lookup and closing. Run in-process (1 worker) on the embedded SQLite storage.
2. The quickstart study (``studies/quickstart.py``: 6 trials, 2 epochs on 1,024 toy images),
   1 worker, as ``make demo`` runs it: wall time and trials per minute.

    python bench/study.py [--skip-quickstart] [--overhead-trials 20]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

NOOP_STUDY = '''
"""Benchmark: a study whose trainer does not train."""
import math
from infomin import tracking
from infomin.protocols import CandidateResult
from infomin.search import StudySpec

STUDY = StudySpec(dataset="colorful-moving-digits",
                  base_views={"kind": "channel_split", "space": "lab", "split": [[0], [1, 2]]},
                  sampler="tpe", pruner="median", n_trials=20, seed=0)

def suggest(trial):
    return {"views": {"space": trial.suggest_categorical("space", ["lab", "yuv", "rgb", "hsv"])},
            "train": {"temperature": trial.suggest_float("tau", 0.05, 1.0, log=True)}}

def run(views, config, *, experiment_id, parent_run_id, run_name, tags, on_epoch, tracking_uri):
    with tracking.start_run(experiment_id=experiment_id, parent_run_id=parent_run_id, run_name=run_name,
                            tags=tags, uri=tracking_uri) as r:
        r.log_params(config.to_dict())
        for epoch in range(config.epochs):
            m = {"train/loss": 1.0 / (epoch + 1), "eval/knn_acc": 0.1 * epoch}
            r.log_metrics(m, step=epoch)
            on_epoch(epoch, m)
        metrics = {"eval/linear_acc": 0.5, "mi/nce": 1.0, "mi/log_k": math.log(255), "mi/k": 255.0}
        r.log_metrics(metrics)
    return CandidateResult(run_id=r.run_id, metrics=metrics)
'''


def overhead(n_trials: int) -> None:
    from infomin.search.runner import run_study

    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{d}/mlflow.db"
        Path("noop.py").write_text(textwrap.dedent(NOOP_STUDY))
        t0 = time.perf_counter()
        run_study("noop.py", n_trials=1, workers=1)  # creates the stores: not counted
        setup = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = run_study("noop.py", n_trials=n_trials + 1, workers=1)
        wall = time.perf_counter() - t0
        os.chdir(REPO)
    print(f"study setup (storage, MLflow store, experiment, parent run, first trial): {setup:.2f} s")
    print(f"overhead per trial (no training, 2 epochs of metrics, 1 worker, SQLite): "
          f"{1000 * wall / n_trials:.0f} ms over {n_trials} trials ({res.counts['COMPLETE']} complete)")


def quickstart() -> None:
    from infomin.search.runner import run_study

    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{d}/mlflow.db"
        t0 = time.perf_counter()
        res = run_study(REPO / "studies" / "quickstart.py", workers=1)
        wall = time.perf_counter() - t0
        os.chdir(REPO)
    n = sum(res.counts.get(k, 0) for k in ("COMPLETE", "PRUNED", "FAIL"))
    print(f"quickstart: {n} trials in {wall:.1f} s = {60 * n / wall:.2f} trials/min "
          f"(1 worker, {os.cpu_count()} cores, torch threads {os.environ.get('OMP_NUM_THREADS', 'default')})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--overhead-trials", type=int, default=20)
    ap.add_argument("--skip-quickstart", action="store_true")
    args = ap.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    overhead(args.overhead_trials)
    if not args.skip_quickstart:
        quickstart()


if __name__ == "__main__":
    main()
