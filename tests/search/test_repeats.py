"""Repeats: each candidate trains with several seeds, each seed its own MLflow run under its
trial's run; Optuna sees the seed mean; a retry trains only the seeds that are missing."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from optuna.trial import TrialState

from infomin import tracking
from infomin.errors import SpecError
from infomin.search import report as rep
from infomin.search import storage as st
from infomin.search.results import candidates_from_study
from infomin.search.runner import Objective, WorkerArgs, run_study, seed_means
from infomin.search.spec import load_study

STUDIES = Path(__file__).parent / "studies"


def test_seed_means_keep_what_every_seed_recorded():
    assert seed_means([{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]) == {"a": 2.0, "b": 3.0}
    assert seed_means([{"a": 1.0, "b": 2.0}, {"a": 3.0}]) == {"a": 2.0}
    assert seed_means([]) == {}


def test_bad_repeats_is_one_clear_error(tmp_path, mlflow_uri):
    with pytest.raises(SpecError, match="repeats") as e:
        run_study(STUDIES / "sleepy.py", repeats=0, out=tmp_path / "out")
    assert e.value.field == "repeats" and e.value.value == 0
    from infomin.search import StudySpec

    with pytest.raises(SpecError, match="STUDY.repeats"):
        StudySpec(dataset="colorful-moving-digits", base_views="simclr", n_trials=1, repeats=-1)


@pytest.mark.slow
def test_repeats_on_the_toy_with_two_workers_then_a_resume(tmp_path, mlflow_uri):
    """3 candidates x 2 seeds of real training on the toy, 2 worker processes; then a resume that
    extends the study: every seed's run is present under its trial's run, no seed runs twice,
    Optuna's value is the seed mean, and the report tests the candidates over the seeds."""
    res = run_study(STUDIES / "tiny_seeds.py", n_trials=2, workers=2, out=tmp_path / "out")  # STUDY.repeats=2
    assert res.counts["COMPLETE"] == 2
    again = run_study(STUDIES / "tiny_seeds.py", n_trials=3, workers=2, out=tmp_path / "out")
    assert again.counts["COMPLETE"] == 3 and again.parent_run_id == res.parent_run_id

    study = st.load_study(res.storage_url, "tiny_seeds")
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert sorted(t.params["space"] for t in trials) == ["lab", "rgb", "yuv"]
    client = tracking.client(mlflow_uri)
    runs = client.search_runs([res.experiment_id], max_results=1000)
    by_id = {r.info.run_id: r for r in runs}
    trial_runs = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == res.parent_run_id]
    seed_runs = [r for r in runs if "infomin.seed" in r.data.tags]
    assert len(trial_runs) == 3 and len(seed_runs) == 6 and len(runs) == 1 + 3 + 6
    assert len({(r.data.tags["infomin.trial"], r.data.tags["infomin.seed"]) for r in seed_runs}) == 6, \
        "no seed ran twice"
    for t in trials:
        group = by_id[t.user_attrs["mlflow_run_id"]]
        assert group.data.tags["mlflow.parentRunId"] == res.parent_run_id and group.info.status == "FINISHED"
        assert group.info.run_name == f"t{t.number:02d} {t.params['space']}"
        seeds = {}
        for s in (0, 1):
            run = by_id[t.user_attrs[f"seed/{s}/mlflow_run_id"]]
            assert run.data.tags["mlflow.parentRunId"] == group.info.run_id, "grouped under its trial"
            assert run.data.tags["infomin.seed"] == str(s) and run.info.status == "FINISHED"
            assert run.info.run_name == f"t{t.number:02d} {t.params['space']} s{s}"
            assert run.data.params["seed"] == str(s)
            seeds[s] = run.data.metrics["eval/linear_acc"]
            assert t.user_attrs[f"seed/{s}/metrics"]["eval/linear_acc"] == pytest.approx(seeds[s])
        assert t.value == pytest.approx(statistics.fmean(seeds.values()))
        assert group.data.metrics["eval/linear_acc"] == pytest.approx(t.value)
        assert group.data.metrics["seeds/n"] == 2
        note = group.data.tags["mlflow.note.content"]   # the run's description in the MLflow UI
        per_seed = ", ".join(f"{seeds[s]:.4f}" for s in (0, 1))
        assert f"Mean of 2 seeds (0, 1); eval/linear_acc per seed: {per_seed} (sd " in note, note
        assert f"{statistics.stdev(seeds.values()):.4f})" in note
        assert len(t.intermediate_values) == 1, "the pruner sees the first seed's curve only"
    # the report reads the seeds: two per candidate, tested
    cands = candidates_from_study(study)
    assert sorted(len(c.seeds) for c in cands) == [2, 2, 2]
    report = rep.make_report(study, tmp_path / "report", log=False)
    assert report.seed_counts == (2, 2)
    assert "2 seeds" in rep.markdown(report)


def test_a_retry_trains_only_the_missing_seeds(tmp_path, mlflow_uri):
    """A trial that inherits seed 0's result from an earlier attempt (its follower's user
    attributes) trains seed 1 and 2 only, and its value is the mean over all three."""
    import optuna

    calls = []
    study = load_study(STUDIES / "sleepy.py")

    def run(views, config, **kw):
        calls.append(config.seed)
        return study.run(views, config, **kw)

    uri = mlflow_uri
    exp = tracking.get_or_create_experiment("retry", uri=uri)
    with tracking.start_run(experiment_id=exp, run_name="parent", uri=uri, end=False) as parent:
        pass
    args = WorkerArgs(study_path=str(study.path), study_name="retry", storage_url="", tracking_uri=uri,
                      experiment_id=exp, parent_run_id=parent.run_id, n_trials=1, repeats=3)
    ostudy = optuna.create_study()
    ostudy.enqueue_trial({"x": 0.5}, user_attrs={"seed/0/metrics": {"eval/linear_acc": 0.2}})
    trial = ostudy.ask()
    out = Objective(study, args, run=run)(trial)
    assert calls == [1, 2], "seed 0 was inherited"
    assert out.state == TrialState.COMPLETE
    assert out.value == pytest.approx((0.2 + 0.5 + 0.5) / 3)
    assert set(out.seed_attrs) == {"seed/1/metrics", "seed/1/mlflow_run_id", "seed/2/metrics",
                                   "seed/2/mlflow_run_id"}
    assert trial.user_attrs["seed/2/metrics"]["eval/linear_acc"] == pytest.approx(0.5)


@pytest.mark.slow
def test_an_idle_worker_trains_open_seeds_of_a_running_trial(tmp_path, mlflow_uri, monkeypatch):
    """One candidate, 4 seeds, 2 workers: the trial's worker trains seed 0 (the pruner's), then the
    idle worker claims open seeds, so the seeds of one candidate run on different workers; every
    seed runs once and the trial's value is the mean of all four."""
    monkeypatch.setenv("INFOMIN_TEST_EPOCHS", "4")
    monkeypatch.setenv("INFOMIN_TEST_EPOCH_S", "0.75")
    res = run_study(STUDIES / "sleepy.py", n_trials=1, workers=2, repeats=4, out=tmp_path / "out")
    assert res.counts["COMPLETE"] == 1
    (t,) = st.load_study(res.storage_url, "sleepy").get_trials()
    client = tracking.client(mlflow_uri)
    seed_runs = [r for r in client.search_runs([res.experiment_id], max_results=1000) if "infomin.seed" in r.data.tags]
    assert sorted(int(r.data.tags["infomin.seed"]) for r in seed_runs) == [0, 1, 2, 3], "each seed once"
    assert all(r.data.tags["mlflow.parentRunId"] == t.user_attrs["mlflow_run_id"] for r in seed_runs)
    workers = {r.data.tags["infomin.seed"]: r.data.tags["infomin.worker"] for r in seed_runs}
    assert len(set(workers.values())) == 2, workers
    assert workers["0"] == t.user_attrs["worker"], "the first seed runs on the trial's own worker"
    assert all(f"seed/{s}/metrics" in t.user_attrs for s in range(4))
    assert t.value == pytest.approx(t.params["x"])


def test_a_seed_the_trials_worker_trains_stays_claimed_however_long_it_takes(tmp_path, mlflow_uri, monkeypatch):
    """Seeds that take longer than a claim's staleness (8 s against 4 s here): the trial's own
    worker keeps its claim alive while it trains, so a helper never takes the same seed again."""
    monkeypatch.setenv("INFOMIN_TEST_EPOCHS", "4")
    monkeypatch.setenv("INFOMIN_TEST_EPOCH_S", "2")
    res = run_study(STUDIES / "sleepy.py", n_trials=1, workers=2, repeats=4, out=tmp_path / "out",
                    heartbeat_interval=1, grace_period=4)
    assert res.counts["COMPLETE"] == 1
    client = tracking.client(mlflow_uri)
    seed_runs = [r for r in client.search_runs([res.experiment_id], max_results=1000) if "infomin.seed" in r.data.tags]
    assert sorted(int(r.data.tags["infomin.seed"]) for r in seed_runs) == [0, 1, 2, 3], "each seed trained once"


def test_claims_and_open_seeds_are_not_inherited_by_a_retry():
    from infomin.search.trials import _attempt_local

    assert _attempt_local("seed/2/claim") and _attempt_local("seeds_open")
    assert not _attempt_local("seed/2/metrics") and not _attempt_local("seed/2/mlflow_run_id")
