"""infomin.tracking: the default store, runs ending FINISHED / FAILED (with reason) / KILLED,
nested child runs by id, batched logging, figures and artifacts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import optuna
import pytest

from infomin import tracking


@pytest.fixture(scope="module")
def uri(tmp_path_factory) -> str:
    # one store for the module: creating an MLflow database takes seconds
    return f"sqlite:///{tmp_path_factory.mktemp('trk') / 'mlflow.db'}"


@pytest.fixture
def exp(uri) -> str:
    return tracking.get_or_create_experiment("tests", uri=uri)


def test_default_store_is_sqlite_in_cwd(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.tracking_uri() == f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    assert tracking.ui_command().endswith("infomin ui")   # the default store: no option needed
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/m.db")
    assert tracking.tracking_uri() == "sqlite:////elsewhere/m.db"
    assert tracking.tracking_uri("sqlite:////x.db") == "sqlite:////x.db"
    assert os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "false"


def test_experiment_is_created_once(uri):
    a = tracking.get_or_create_experiment("once", uri=uri)
    b = tracking.get_or_create_experiment("once", uri=uri)
    assert a == b


def test_experiments_are_model_training_with_a_runs_view(uri):
    """MLflow 3's UI reads these tags: the kind, the primary metric, infomin's runs-table view."""
    exp = tracking.get_or_create_experiment("kind", uri=uri)
    tags = tracking.client(uri).get_experiment(exp).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    assert tags["mlflow.experiment.primaryMetric.name"] == "eval/linear_acc"
    view = json.loads(tags["mlflow.sharedViewState.infomin"])
    assert view["selectedColumns"][:3] == ["metrics.`eval/linear_acc`", "metrics.`mi/nce`", "metrics.`mi/log_k`"]
    assert view["columnOrder"] == view["selectedColumns"]
    assert view["orderByKey"] == "metrics.`eval/linear_acc`" and view["orderByAsc"] is False
    # a study replaces the view with its objective; a reused experiment keeps it, its kind is restored
    tracking.set_runs_view(exp, "eval/linear_acc/digit", "minimize", uri=uri)
    tracking.client(uri).set_experiment_tag(exp, "mlflow.experimentKind", "genai_development")
    assert tracking.get_or_create_experiment("kind", uri=uri) == exp
    tags = tracking.client(uri).get_experiment(exp).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    assert tags["mlflow.experiment.primaryMetric.name"] == "eval/linear_acc/digit"
    view = json.loads(tags["mlflow.sharedViewState.infomin"])
    assert view["selectedColumns"][0] == "metrics.`eval/linear_acc/digit`"
    assert view["orderByKey"] == "metrics.`eval/linear_acc/digit`" and view["orderByAsc"] is True


def test_existing_experiment_without_tags_gets_them(uri):
    """Experiments made before infomin tagged them (or by plain MLflow) are tagged when reused."""
    exp = tracking.client(uri).create_experiment("untagged")
    assert "mlflow.experimentKind" not in tracking.client(uri).get_experiment(exp).tags
    assert tracking.get_or_create_experiment("untagged", uri=uri) == exp
    tags = tracking.client(uri).get_experiment(exp).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    assert "mlflow.sharedViewState.infomin" in tags


def test_finished_run_with_params_metrics_and_artifacts(uri, exp):
    params = {f"views.p{i}": i for i in range(150)}          # > 100: chunked batches
    with tracking.start_run(experiment_id=exp, run_name="ok", tags={"t": 1}, uri=uri) as run:
        run.log_params(params)
        run.log_metrics({"train/loss": 2.0, "train/mi_nce": float("nan")}, step=0)
        run.log_metrics({"train/loss": 1.0}, step=1)
        run.log_text("kind: identity\n", "views.yaml")
        fig = plt.figure()
        plt.plot([0, 1])
        run.log_figure(fig, "plots/curves.png")
    r = tracking.get_run(run.run_id, uri=uri)
    assert r.info.status == "FINISHED"
    assert len([k for k in r.data.params if k.startswith("views.p")]) == 150
    assert r.data.tags["t"] == "1" and r.data.tags["mlflow.runName"] == "ok"
    assert tracking.metric_history(run.run_id, "train/loss", uri=uri) == [(0, 2.0), (1, 1.0)]
    assert "train/mi_nce" not in r.data.metrics            # non-finite values are skipped
    assert tracking.list_artifacts(run.run_id, uri=uri) == ["plots/curves.png", "views.yaml"]
    local = tracking.download_artifacts(run.run_id, "views.yaml", uri=uri)
    assert local.read_text() == "kind: identity\n"


def test_one_log_batch_per_step(uri, exp, monkeypatch):
    calls = []
    with tracking.start_run(experiment_id=exp, uri=uri) as run:
        real = run.client.log_batch
        monkeypatch.setattr(run.client, "log_batch", lambda *a, **k: (calls.append(k), real(*a, **k)))
        run.log_metrics({f"m{i}": float(i) for i in range(7)}, step=3)
    assert len(calls) == 1 and len(calls[0]["metrics"]) == 7


def test_exception_fails_the_run_with_reason(uri, exp):
    with pytest.raises(ValueError, match="boom") as info:
        with tracking.start_run(experiment_id=exp, uri=uri):
            raise ValueError("boom\nsecond line")
    r = tracking.get_run(info.value.mlflow_run_id, uri=uri)
    assert r.info.status == "FAILED"
    assert r.data.tags[tracking.FAILURE_TAG] == "ValueError: boom"


def test_pruned_run_is_killed(uri, exp):
    with pytest.raises(optuna.TrialPruned) as info:
        with tracking.start_run(experiment_id=exp, uri=uri):
            raise optuna.TrialPruned("epoch 2")
    assert tracking.get_run(info.value.mlflow_run_id, uri=uri).info.status == "KILLED"


def test_nested_child_reopened_by_id(uri, exp):
    with tracking.start_run(experiment_id=exp, run_name="study", uri=uri) as parent:
        with tracking.start_run(experiment_id=exp, parent_run_id=parent.run_id, uri=uri,
                                end=False) as child:
            pass
        assert tracking.get_run(child.run_id, uri=uri).info.status == "RUNNING"
        # another process would re-open the child by id, log, and end it
        with tracking.start_run(run_id=child.run_id, uri=uri, tags={"trial": 3}) as again:
            again.log_metrics({"objective": 0.5})
    c = tracking.get_run(child.run_id, uri=uri)
    assert c.data.tags[tracking.PARENT_TAG] == parent.run_id
    assert c.data.tags["trial"] == "3" and c.info.status == "FINISHED"
    assert c.data.metrics["objective"] == 0.5


def test_end_run_validates_status(uri, exp):
    with tracking.start_run(experiment_id=exp, uri=uri, end=False) as run:
        pass
    with pytest.raises(Exception, match="DONE"):
        tracking.end_run(run.run_id, "DONE", uri=uri)
    tracking.end_run(run.run_id, "failed", "out of memory", uri=uri)
    r = tracking.get_run(run.run_id, uri=uri)
    assert r.info.status == "FAILED" and r.data.tags[tracking.FAILURE_TAG] == "out of memory"


_RACE = """
import sys, time
from infomin import tracking
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))   # every process starts at the same moment
exp = tracking.get_or_create_experiment("race", uri=sys.argv[1])
tracking.client(sys.argv[1]).create_run(exp, run_name=sys.argv[3])
"""


def test_processes_creating_one_new_sqlite_store_at_once_all_succeed(tmp_path):
    """Four `infomin train`-like processes opening the same *new* mlflow.db at the same moment (two
    `infomin train` started together in a fresh folder). Before the creation lock, every one failed
    in MLflow's schema migration (duplicate column name, alembic tables left half-made)."""
    import subprocess
    import sys
    import time

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    start = time.time() + 8.0   # after every interpreter has imported mlflow
    procs = [subprocess.Popen([sys.executable, "-c", _RACE, uri, str(start), f"r{i}"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(4)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, "\n".join(o[-1500:] for o in outs)
    c = tracking.client(uri)
    exp = c.get_experiment_by_name("race")
    runs = c.search_runs([exp.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["r0", "r1", "r2", "r3"]
