"""Running studies for real: 2 worker processes on the embedded storage, bad trials, the budget."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from infomin import tracking
from infomin.errors import InfominError, SpecError
from infomin.search import storage as st
from infomin.search.runner import budget_state, check_value, fail_reason, run_study

STUDIES = Path(__file__).parent / "studies"


@pytest.mark.parametrize("value, problem", [
    (0.5, None), (np.float32(0.25), None), (torch.tensor(0.75), None), (1, None),
    (math.nan, "is nan"), (math.inf, "is inf"), (-math.inf, "is -inf"),
    ("0.5", "is a str"), (True, "is a bool"), (None, "is a NoneType"), (torch.ones(2), "is a Tensor"),
])
def test_check_value_accepts_only_finite_reals(value, problem):
    v, why = check_value({"eval/linear_acc": value}, "eval/linear_acc")
    if problem is None:
        assert why is None and v == pytest.approx(float(value))
    else:
        assert problem in why and math.isnan(v)
    assert "missing" in check_value({}, "eval/linear_acc")[1]


def _trial(state, number_attrs=None, value=None):
    return optuna.trial.create_trial(state=state, value=value, params={"x": "a"},
                                     distributions={"x": CategoricalDistribution(["a"])},
                                     system_attrs=number_attrs or {})


def test_budget_counts_finished_trials_retries_and_waits_for_running_ones():
    study = optuna.create_study()
    assert budget_state(study, 2) == "go"
    study.add_trial(_trial(TrialState.COMPLETE, value=1.0))             # 0
    study.add_trial(_trial(TrialState.FAIL))                             # 1: reaped, then retried as 2
    study.add_trial(_trial(TrialState.RUNNING, {"failed_trial": 1, "retry_history": [1]}))  # 2
    assert budget_state(study, 2) == "wait"   # 1 finished + 1 running: the running one may die
    assert budget_state(study, 3) == "go"
    study.add_trial(_trial(TrialState.WAITING))                          # an enqueued baseline
    assert budget_state(study, 2) == "wait"   # it counts against the budget like any trial
    study.add_trial(_trial(TrialState.WAITING, {"failed_trial": 0, "retry_history": [0]}))  # a retry
    assert budget_state(study, 2) == "go"     # waiting retries always run
    finished = optuna.create_study()
    for _ in range(2):
        finished.add_trial(_trial(TrialState.COMPLETE, value=1.0))
    finished.add_trial(_trial(TrialState.PRUNED))
    assert budget_state(finished, 3) == "done" and budget_state(finished, 4) == "go"


def test_storage_urls_are_normalised_and_redacted(tmp_path):
    assert st.normalize_url("postgresql://u:secret@h:5432/db") == "postgresql+psycopg://u:secret@h:5432/db"
    assert st.normalize_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert st.normalize_url("sqlite:///rel.db") == f"sqlite:///{tmp_path / 'rel.db'}"
    assert st.redact("postgresql+psycopg://u:secret@h/db") == "postgresql+psycopg://u:***@h/db"
    with pytest.raises(SpecError, match="unsupported storage scheme"):
        st.normalize_url("redis://h:6379")
    with pytest.raises(SpecError, match="in-memory"):
        st.normalize_url("sqlite:///:memory:")


def test_default_storage_sits_next_to_mlflow_db_in_wal_mode(tmp_path, mlflow_uri):
    url = st.default_storage_url()
    assert url == f"sqlite:///{tmp_path / 'optuna.db'}"
    st.open_storage(url, create=True)
    import sqlite3

    assert sqlite3.connect(tmp_path / "optuna.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unreachable_storage_fails_before_anything_runs(tmp_path, mlflow_uri):
    with pytest.raises(InfominError, match=r"storage postgresql\+psycopg://u:\*\*\*@127.0.0.1:9/db: cannot connect"):
        run_study(STUDIES / "tiny.py", storage="postgresql://u:secret@127.0.0.1:9/db")
    assert not (tmp_path / "mlflow.db").exists(), "nothing may be created before the storage answers"
    with pytest.raises(InfominError, match="no such database file"):
        st.load_study(f"sqlite:///{tmp_path / 'none.db'}", "x")


def test_bad_budget_and_workers(tmp_path, mlflow_uri):
    with pytest.raises(SpecError, match="n_trials"):
        run_study(STUDIES / "tiny.py", n_trials=0)
    with pytest.raises(SpecError, match="workers"):
        run_study(STUDIES / "tiny.py", workers=0)
    with pytest.raises(SpecError, match="grace_period"):
        run_study(STUDIES / "tiny.py", heartbeat_interval=5, grace_period=5)


@pytest.mark.slow
def test_two_worker_processes_on_the_embedded_storage(tmp_path, mlflow_uri):
    """One coordinator, 2 spawned workers: every trial completes, one parent run, one child run each."""
    res = run_study(STUDIES / "tiny.py", n_trials=3, workers=2, out=tmp_path / "out")
    assert res.counts["COMPLETE"] == 3 and res.dead_workers == []
    study = st.load_study(res.storage_url, "tiny")
    trials = study.get_trials()
    assert trials[0].params == {"space": "lab"}, "the baseline is enqueued first"
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2, "both worker processes ran trials"

    client = tracking.client(mlflow_uri)
    exp = client.get_experiment(res.experiment_id)
    assert exp.name == "tiny" and exp.artifact_location == (tmp_path / "out" / "mlartifacts").as_uri()
    runs = client.search_runs([res.experiment_id])
    parents = [r for r in runs if r.data.tags.get("infomin.role") == "study"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == res.parent_run_id]
    assert len(parents) == 1 and parents[0].info.run_id == res.parent_run_id
    assert len(children) == 3 == len(runs) - 1
    by_trial = {int(r.data.tags["infomin.trial"]): r for r in children}
    for t in trials:
        run = by_trial[t.number]
        assert t.user_attrs["mlflow_run_id"] == run.info.run_id and run.info.status == "FINISHED"
        assert run.data.tags["infomin.study"] == "tiny"
        assert t.value == pytest.approx(run.data.metrics["eval/linear_acc"])
        assert len(t.intermediate_values) == 1, "per-epoch kNN accuracy reported to Optuna"
        # what a person reads in the MLflow UI: a short distinct name, a description with the result
        assert run.info.run_name == f"t{t.number:02d} {t.params['space']}"
        note = run.data.tags["mlflow.note.content"]
        assert note.startswith(f"Trial {t.number} of study `tiny`: space = {t.params['space']}.")
        assert f"Result: eval/linear_acc = {t.value:.4f}" in note and "I_NCE = " in note
    assert len({r.data.tags["mlflow.runColor"] for r in children}) == 3, "each trial its own colour"
    assert parents[0].data.tags["mlflow.note.content"].startswith("A test study: is Lab, YUV or RGB")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert exp.tags["mlflow.experiment.primaryMetric.name"] == "eval/linear_acc"
    assert json.loads(exp.tags["mlflow.sharedViewState.infomin"])["orderByKey"] == "metrics.`eval/linear_acc`"
    assert study.metric_names == ["eval/linear_acc"], "optuna-dashboard names the objective"
    # Re-running with the same budget continues (nothing to do); a larger one extends it.
    again = run_study(STUDIES / "tiny.py", n_trials=3, workers=1, out=tmp_path / "out")
    assert again.counts["COMPLETE"] == 3 and again.parent_run_id == res.parent_run_id


@pytest.mark.slow
def test_bad_trials_fail_with_their_reason_and_the_study_goes_on(tmp_path, mlflow_uri):
    # Two workers on a grid: every grid point runs exactly once (Optuna's GridSampler alone can
    # hand the same point to two workers; the coordinator enqueues the grid instead).
    res = run_study(STUDIES / "faulty.py", workers=2, out=tmp_path / "out")
    study = st.load_study(res.storage_url, "faulty")
    assert sorted(t.params["mode"] for t in study.get_trials()) == sorted(["ok", "nan", "inf", "text", "raise"])
    by_mode = {t.params["mode"]: t for t in study.get_trials()}
    assert set(by_mode) == {"ok", "nan", "inf", "text", "raise"}
    assert by_mode["ok"].state == TrialState.COMPLETE
    expected = {"nan": "is nan (not finite)", "inf": "is inf (not finite)", "text": "is a str",
                "raise": "no-such-encoder"}
    client = tracking.client(mlflow_uri)
    for mode, words in expected.items():
        t = by_mode[mode]
        assert t.state == TrialState.FAIL, mode
        reason = fail_reason(study, t)
        assert words in reason, (mode, reason)
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert run.info.status == "FAILED", mode
        assert words in run.data.tags[tracking.FAILURE_TAG]
        assert run.data.tags["mlflow.parentRunId"] == res.parent_run_id


def test_a_bad_trial_is_pruned_and_its_run_killed(tmp_path, mlflow_uri):
    """Per-epoch kNN accuracy -> Optuna intermediate values -> MedianPruner -> PRUNED, run KILLED."""
    res = run_study(STUDIES / "prunable.py", workers=1, out=tmp_path / "out")
    assert res.counts["COMPLETE"] == 2 and res.counts["PRUNED"] == 1
    study = st.load_study(res.storage_url, "prunable")
    pruned = study.get_trials()[2]
    assert pruned.state == TrialState.PRUNED and pruned.params == {"x": 0.1}
    assert len(pruned.intermediate_values) < 3, "stopped before its last epoch"
    run = tracking.get_run(pruned.user_attrs["mlflow_run_id"], uri=mlflow_uri)
    assert run.info.status == "KILLED" and "pruned at epoch" in run.data.tags[tracking.FAILURE_TAG]
