"""Trial bookkeeping on a real SQLite storage and MLflow store: lineages and the budget,
duplicates, the reaper's retries and recoveries, a worker handing a late result over."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from infomin import tracking
from infomin.retry import STORAGE
from infomin.search import storage as st
from infomin.search import trials as tr
from infomin.search.reaper import Reaper, StaleTrialHandler
from infomin.search.runner import Outcome, Worker, WorkerArgs, sampler_seed, worker_sampler
from infomin.search.spec import load_study

STUDIES = Path(__file__).parent / "studies"
DIST = {"x": FloatDistribution(0.0, 1.0)}


@pytest.fixture
def rdb(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    storage = st.open_storage(url, heartbeat_interval=1, grace_period=2, create=True)
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    return url, study


def _add(study, state, x, value=None, **system_attrs):
    study.add_trial(optuna.trial.create_trial(state=state, params={"x": x}, distributions=DIST, value=value,
                                              system_attrs=system_attrs))
    return study.get_trials()[-1]


def test_sampler_seeds_differ_per_session_worker_and_replacement():
    seeds = {sampler_seed(7, s, r, i) for s in range(5) for r in range(4) for i in range(3)}
    assert len(seeds) == 60 and sampler_seed(7, 0, 0, 0) == 7
    assert sampler_seed(7, 2, 1) == sampler_seed(7, 2, 1), "a pure function: a command sequence replays"
    study = load_study(STUDIES / "sleepy.py")  # a random sampler
    assert worker_sampler(study, 3, 1)._rng.rng.random() != worker_sampler(study, 0, 0)._rng.rng.random()
    from dataclasses import replace

    qmc = replace(study, spec=replace(study.spec, sampler="qmc"))
    assert worker_sampler(qmc, 3, 1)._seed == worker_sampler(qmc, 0, 0)._seed == 0, "one QMC sequence for all"


def test_a_lineage_counts_once_and_pending_retries_do_not_count(rdb):
    _, study = rdb
    t0 = _add(study, TrialState.COMPLETE, 0.1, 1.0)
    dead = _add(study, TrialState.FAIL, 0.2)
    tr.add_follower(study, dead, TrialState.WAITING, death=True)
    trials = study.get_trials()
    assert trials[-1].system_attrs["retry_history"] == [dead.number] and tr.lineage(trials[-1]) == dead.number
    assert tr.follower_of(trials, dead.number).number == trials[-1].number
    assert tr.deaths(trials[-1]) == 1 and trials[-1].params == {"x": 0.2}
    assert tr.counted(study, trials) == {t0.number}
    assert tr.budget_state(study, 1) == "done" and tr.budget_state(study, 2) == "go"
    # a retry created twice across an outage, both finished: the lineage still counts once
    tr.add_follower(study, dead, TrialState.COMPLETE, value=0.5)
    trials = study.get_trials()
    for t in trials:
        if t.state == TrialState.WAITING:
            study._storage.set_trial_state_values(t._trial_id, TrialState.RUNNING)
            study._storage.set_trial_state_values(t._trial_id, TrialState.COMPLETE, [0.4])
    assert len(tr.counted(study, study.get_trials())) == 2


def test_an_enqueued_point_or_a_retry_that_already_ran_is_a_duplicate(rdb):
    _, study = rdb
    study.enqueue_trial({"x": 0.5})
    study.enqueue_trial({"x": 0.5})  # what skip_if_exists=False, or a race, would leave behind
    with tr.quiet_optuna():
        first = study.ask()
        first.suggest_float("x", 0.0, 1.0)
        study.tell(first, 0.5)
        second = study.ask()
    me = study._storage.get_trial(second._trial_id)
    assert tr.duplicate_of(study.get_trials(), me) == first.number
    fresh = _add(study, TrialState.FAIL, 0.7)
    retry_id = tr.add_follower(study, fresh, TrialState.WAITING)
    retry = [t for t in study.get_trials() if t.number == retry_id][0]
    assert tr.duplicate_of(study.get_trials(), retry) is None, "the original is superseded, not a holder"


def _stale_trial(study):
    """A RUNNING trial with one heartbeat, then silence beyond the 2 s grace period."""
    with tr.quiet_optuna():
        trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr(tr.A_WORKER, "host:1")
    study._storage.record_heartbeat(trial._trial_id)
    time.sleep(3.2)
    return trial


def _reaper(study, url, mlflow_uri, settle=0.0):
    exp = tracking.get_or_create_experiment("s", uri=mlflow_uri)
    handler = StaleTrialHandler(mlflow_uri, exp, "s", "eval/linear_acc")
    return Reaper(study, handler, st.Gate(url), period=1, settle=settle, grace=2), exp


def test_reaper_retries_a_dead_trial_and_links_its_run(rdb, mlflow_uri):
    url, study = rdb
    reaper, exp = _reaper(study, url, mlflow_uri)
    trial = _stale_trial(study)
    with tracking.start_run(experiment_id=exp, run_name="t", tags={"infomin.study": "s", "infomin.trial": trial.number},
                            uri=mlflow_uri, end=False) as run:
        pass
    assert reaper.reap_once() == 1
    trials = study.get_trials()
    dead = trials[trial.number]
    follower = tr.follower_of(trials, trial.number)
    assert dead.state == TrialState.FAIL and follower.state == TrialState.WAITING and follower.params == dead.params
    reason = tr.fail_reason(study, dead)
    assert "stopped sending heartbeats" in reason and f"retried as trial {follower.number}" in reason
    assert tr.trial_run_id(study, dead) == run.run_id, "the killed trial names its MLflow run"
    assert tracking.get_run(run.run_id, uri=mlflow_uri).info.status == "FAILED"
    assert reaper.reap_once() == 0, "handled once"


def test_reaper_recovers_a_finished_result_from_mlflow(rdb, mlflow_uri):
    url, study = rdb
    reaper, exp = _reaper(study, url, mlflow_uri)
    trial = _stale_trial(study)
    with tracking.start_run(experiment_id=exp, run_name="t", tags={"infomin.study": "s", "infomin.trial": trial.number},
                            uri=mlflow_uri) as run:
        run.log_metrics({"eval/linear_acc": 0.625, "mi/nce": 1.5})
    assert reaper.reap_once() == 1
    follower = tr.follower_of(study.get_trials(), trial.number)
    assert follower.state == TrialState.COMPLETE and follower.value == 0.625
    assert follower.user_attrs["metrics"]["mi/nce"] == 1.5 and follower.user_attrs[tr.A_RECOVERED] == trial.number
    assert tracking.get_run(run.run_id, uri=mlflow_uri).info.status == "FINISHED"
    assert tr.budget_state(study, 1) == "done"


def test_reaper_waits_for_the_storage_to_settle_after_an_outage(rdb, mlflow_uri):
    url, study = rdb
    reaper, _ = _reaper(study, url, mlflow_uri, settle=2.5)
    trial = _stale_trial(study)
    fails = iter([ConnectionRefusedError("refused")])

    def flaky():  # an outage seen by this process, as a heartbeat or a reaper probe would see it
        for e in fails:
            raise e

    STORAGE.call(flaky, what="test outage", patience=5)
    assert reaper.reap_once() == 0, "live workers get time to send a heartbeat again"
    assert study.get_trials()[trial.number].state == TrialState.RUNNING
    time.sleep(2.6)
    assert reaper.reap_once() == 1


def test_a_late_result_goes_to_the_follower_of_a_reaped_trial(rdb, mlflow_uri, tmp_path):
    url, study = rdb
    reaper, exp = _reaper(study, url, mlflow_uri)
    trial = _stale_trial(study)  # its worker is training, the storage did not hear from it
    reaper.reap_once()
    follower = tr.follower_of(study.get_trials(), trial.number)
    assert follower.state == TrialState.WAITING
    args = WorkerArgs(study_path=str(STUDIES / "sleepy.py"), study_name="s", storage_url=url, tracking_uri=mlflow_uri,
                      experiment_id=exp, parent_run_id="p", n_trials=1)
    lines: list[str] = []
    worker = Worker(load_study(args.study_path), args, study, st.Gate(url), reaper, lines.append)
    worker._finish(trial, Outcome(TrialState.COMPLETE, value=0.75, run_id="r1", metrics={"eval/linear_acc": 0.75}), 9.0)
    done = study.get_trials()[follower.number]
    assert done.state == TrialState.COMPLETE and done.value == 0.75 and done.user_attrs[tr.A_RUN] == "r1"
    assert f"recorded as trial {follower.number}" in lines[-1]
    assert tr.budget_state(study, 1) == "done"
